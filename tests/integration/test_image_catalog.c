/*
 * test_image_catalog.c - the image_catalog plugin in the real host, over
 * nng, with the Docker backend against the real engine and the loopback
 * test registry (tools/docker-env.sh): image_ref resolves to an image and
 * a pull secret that the Docker backend then uses; unknown refs, blocked
 * and not-approved images are refused before anything runs; the catalog
 * file is replaced while the host runs and the new ref works without a
 * restart, while a broken file keeps the old catalog.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"

#define MINIMAL "sx-test/minimal:latest"
#define FULL "sx-test/full:latest"
#define REGISTRY_IMAGE "127.0.0.1:5000/sx-test/minimal:latest"
/* The loopback test registry's fixed credential (tools/docker-env.sh). */
#define REG_USER "sx-ci"
#define REG_PASS "sx-ci-password"

/* Docker executors carry this test's own host_id (see test_docker.c): the
 * leftover sweep only touches containers of the same host_id. */
static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_docker, backend_native, image_catalog, audit_file]\n"
    "  secrets:\n"
    "    secrets_dir: @DIR@/secrets\n"
    "    configmaps_dir: @DIR@/configmaps\n"
    "  executors:\n"
    "    - name: catbox\n"
    "      kind: exec.docker\n"
    "      host_id: @HOSTID@\n"
    "      image: " MINIMAL "\n"
    "    - name: catfull\n"         /* its own image is blocked */
    "      kind: exec.docker\n"
    "      host_id: @HOSTID@\n"
    "      image: " FULL "\n"
    "    - name: catshell\n"
    "      kind: exec.native\n"
    "      default_work_dir: /tmp\n"
    "  default_executor: catbox\n"
    "  image:\n"
    "    approved_images: [\"sx-test/*\", \"127.0.0.1:5000/sx-test/*\"]\n"
    "    blocked_images: [\"docker.io/sx-test/full*\", \"quay.io/*\"]\n"
    "    catalog:\n"
    "      file: @CATALOG@\n"
    "      reload_interval: 1s\n"
    "      configmap_name: script-image-catalog\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static const char *CATALOG_V1 =
    "minimal:\n"
    "  image: " MINIMAL "\n"
    "  description: busybox\n"
    "registry-minimal:\n"
    "  image: " REGISTRY_IMAGE "\n"
    "  pull_secret: reg-good\n"
    "  pull_policy: Always\n"
    "registry-bad-secret:\n"
    "  image: " REGISTRY_IMAGE "\n"
    "  pull_secret: reg-bad\n"
    "  pull_policy: Always\n"
    "full:\n"
    "  image: " FULL "\n";

static sx_harness H;
static char g_cat_dir[PATH_MAX];
static char g_cat_file[PATH_MAX + 32];

/* `text` with every `from` replaced by `to` (malloc'ed). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    char *r = strdup(text);
    char *at;
    size_t pos = 0;
    while ((at = strstr(r + pos, from)) != NULL) {
        char *next;
        size_t off = (size_t)(at - r);
        ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)off, r, to, at + strlen(from)), 0);
        free(r);
        r = next;
        pos = off + strlen(to);
    }
    return r;
}

/* Replace the catalog atomically (write + rename). */
static void write_catalog(const char *yaml)
{
    char tmp[PATH_MAX + 40];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_cat_file);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, g_cat_file), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static char *config_text(void)
{
    char id[64];
    snprintf(id, sizeof id, "sxcat-%d", (int)getpid());
    char *a = replace_all(CONFIG, "@HOSTID@", id);
    char *b = replace_all(a, "@CATALOG@", g_cat_file);
    free(a);
    return b;
}

static void start_host(void)
{
    snprintf(g_cat_dir, sizeof g_cat_dir, "/tmp/sxcat-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_cat_dir));
    snprintf(g_cat_file, sizeof g_cat_file, "%s/catalog.yaml", g_cat_dir);
    write_catalog(CATALOG_V1);
    char *cfg = config_text();
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    char secrets[400];
    snprintf(secrets, sizeof secrets, "%s/secrets", H.dir);
    mkdir(secrets, 0700);
    write_file(secrets, "reg-good/username", REG_USER);
    write_file(secrets, "reg-good/password", REG_PASS);
    write_file(secrets, "reg-bad/username", REG_USER);
    write_file(secrets, "reg-bad/password", "wrong");
}

static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
    unlink(g_cat_file);
    rmdir(g_cat_dir);
}

static cJSON *run(const char *id, const char *step, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req,
                              "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"%s\","
                              "\"type\":\"script.run\",\"caller\":{\"user\":\"alice\"},"
                              "\"with\":%s}", id, step, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void expect_status(cJSON *r, const char *status)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want %s: %s", status, text);
    free(text);
}

static void expect_error(cJSON *r, const char *status, const char *code, const char *needle)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0 &&
                      strcmp(sx_json_str(r, "error.code"), code) == 0,
                  "want %s/%s: %s", status, code, text);
    ck_assert_msg(needle == NULL || strstr(sx_json_str(r, "error.message"), needle),
                  "'%s' not in: %s", needle, text);
    free(text);
}

/* The image the exec.started audit record names ("" when none). */
static char *started_image(const char *id, const char *step)
{
    cJSON *rec = sx_harness_audit_record(&H, "exec.started", id, step);
    char *image = strdup(rec ? sx_json_str(rec, "image") : "");
    cJSON_Delete(rec);
    return image;
}

/* How many lines of the host's log contain `needle`. */
static int log_count(const char *needle)
{
    char *log = sx_harness_slurp(H.log_path);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}

/* Wait (deadline 20 s) until the host's log has `n` lines with `needle`. */
static int wait_log(const char *needle, int n)
{
    for (double t = 0; t < 20.0; t += 0.02) {
        if (log_count(needle) >= n)
            return 1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

START_TEST(image_ref_runs_end_to_end)
{
    cJSON *r = run("cat-e2e", "minimal", "{\"image_ref\":\"minimal\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"echo from-catalog\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "from-catalog\n");
    cJSON_Delete(r);
    char *image = started_image("cat-e2e", "minimal");
    ck_assert_str_eq(image, MINIMAL);
    free(image);
}
END_TEST

START_TEST(image_ref_pull_secret_from_catalog)
{
    /* pull_policy Always from the entry: the pull must authenticate with
     * the entry's secret; a wrong one fails the pull */
    const char *script = "\"interpreter\":\"/bin/sh\",\"inline_script\":\"echo pulled-ok\"";
    char with[400];
    snprintf(with, sizeof with, "{\"image_ref\":\"registry-bad-secret\",%s}", script);
    cJSON *r = run("cat-reg", "bad", with);
    expect_error(r, "error", "image_pull_failed", NULL);
    cJSON_Delete(r);
    snprintf(with, sizeof with, "{\"image_ref\":\"registry-minimal\",%s}", script);
    r = run("cat-reg", "good", with);
    expect_status(r, "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "pulled-ok\n");
    cJSON_Delete(r);
    char *image = started_image("cat-reg", "good");
    ck_assert_str_eq(image, REGISTRY_IMAGE);
    free(image);
    /* the step's own secret overrides the entry's */
    snprintf(with, sizeof with, "{\"image_ref\":\"registry-bad-secret\","
             "\"image_pull_secret\":\"reg-good\",%s}", script);
    r = run("cat-reg", "override", with);
    expect_status(r, "succeeded");
    cJSON_Delete(r);
}
END_TEST

START_TEST(refusals_before_anything_runs)
{
    cJSON *r = run("cat-no", "unknown", "{\"image_ref\":\"terraform\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "unknown_image_ref", "known refs: minimal, registry-minimal");
    cJSON_Delete(r);
    /* blocked: sx-test/full is docker.io/sx-test/full, whichever way it is named */
    r = run("cat-no", "blocked", "{\"image\":\"" FULL "\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "image_not_allowed", "blocked pattern 'docker.io/sx-test/full*'");
    cJSON_Delete(r);
    r = run("cat-no", "blocked-ref", "{\"image_ref\":\"full\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "image_not_allowed", "image_ref 'full'");
    cJSON_Delete(r);
    r = run("cat-no", "blocked-spelling",
            "{\"image\":\"docker.io/sx-test/full:latest\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "image_not_allowed", "blocked");
    cJSON_Delete(r);
    /* not approved */
    r = run("cat-no", "unapproved", "{\"image\":\"busybox:1.36\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "image_not_allowed", "matches no pattern of image.approved_images");
    cJSON_Delete(r);
    /* the executor's own image is checked when the step names none */
    r = run("cat-no", "executor-image", "{\"executor\":\"catfull\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "image_not_allowed", FULL);
    cJSON_Delete(r);
    /* image and image_ref together */
    r = run("cat-no", "both", "{\"image\":\"" MINIMAL "\",\"image_ref\":\"minimal\","
            "\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "invalid_parameter", "image_ref");
    cJSON_Delete(r);
    /* a backend without images is not the catalog's business: it refuses
     * image_ref as before */
    r = run("cat-no", "native", "{\"executor\":\"catshell\",\"image_ref\":\"minimal\","
            "\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "unsupported_parameter", "image_ref");
    cJSON_Delete(r);
    /* nothing of these started, and each refusal is audited */
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "cat-no", NULL), 0);
    ck_assert_int_ge(sx_harness_audit_count(&H, NULL, "cat-no", "unknown"), 1);
}
END_TEST

START_TEST(catalog_changes_while_running)
{
    cJSON *r = run("cat-re", "before", "{\"image_ref\":\"later\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "unknown_image_ref", NULL);
    cJSON_Delete(r);

    char *v2 = NULL;
    ck_assert_int_ge(asprintf(&v2, "%slater:\n  image: " MINIMAL "\n", CATALOG_V1), 0);
    write_catalog(v2);
    free(v2);
    ck_assert_msg(wait_log("reloaded: 5 entries", 1), "no reload in the host log");
    r = run("cat-re", "after", "{\"image_ref\":\"later\",\"interpreter\":\"/bin/sh\","
            "\"inline_script\":\"echo reloaded-ok\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "reloaded-ok\n");
    cJSON_Delete(r);

    /* a broken file: logged, the catalog stays */
    write_catalog("later:\n  image: " MINIMAL "\n  colour: blue\n");
    ck_assert_msg(wait_log("keeping the previous catalog", 1), "broken file not reported");
    r = run("cat-re", "still", "{\"image_ref\":\"later\",\"interpreter\":\"/bin/sh\","
            "\"inline_script\":\"echo still-ok\"}");
    expect_status(r, "succeeded");
    cJSON_Delete(r);
    r = run("cat-re", "still-minimal", "{\"image_ref\":\"minimal\",\"interpreter\":\"/bin/sh\","
            "\"inline_script\":\"true\"}");
    expect_status(r, "succeeded");
    cJSON_Delete(r);
}
END_TEST

START_TEST(config_refusals_at_start)
{
    snprintf(g_cat_dir, sizeof g_cat_dir, "/tmp/sxcat-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_cat_dir));
    snprintf(g_cat_file, sizeof g_cat_file, "%s/catalog.yaml", g_cat_dir);
    write_catalog(CATALOG_V1);
    char *base = config_text();
    static const struct { const char *from, *to, *want; } cases[] = {
        {"  image:\n", "  image:\n    verify_image_access: true\n", "image.verify_image_access"},
        {"  image:\n", "  image:\n    scan_images_on_approval: true\n",
         "image.scan_images_on_approval"},
        {"catalog.yaml\n", "nothere.yaml\n", "image.catalog.file"},
        {"  image:\n", "  image:\n    default_image: quay.io/x/y:1\n", "image.default_image"},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cfg = replace_all(base, cases[i].from, cases[i].to);
        int rc = sx_harness_check_config(cfg, out, sizeof out);
        free(cfg);
        ck_assert_msg(rc == 2, "case %zu: rc %d: %s", i, rc, out);
        ck_assert_msg(strstr(out, "invalid_config") && strstr(out, cases[i].want), "case %zu: %s",
                      i, out);
    }
    int rc = sx_harness_check_config(base, out, sizeof out);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "image_catalog"));

    /* a second image catalog plugin (the loader's fixture) is refused: a
     * plugin directory of links to both */
    char plugdir[] = "/tmp/sxcat-plugins-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(plugdir));
    static const char *const sos[] = {"script_run", "backend_docker", "backend_native",
                                      "image_catalog", "audit_file", NULL};
    char from[PATH_MAX], to[PATH_MAX];
    for (const char *const *so = sos; *so; so++) {
        snprintf(from, sizeof from, "%s/%s.so", SX_PLUGIN_DIR, *so);
        snprintf(to, sizeof to, "%s/%s.so", plugdir, *so);
        ck_assert_int_eq(symlink(from, to), 0);
    }
    snprintf(from, sizeof from, "%s/fx_catalog.so", SX_FIXTURE_DIR);
    snprintf(to, sizeof to, "%s/fx_catalog.so", plugdir);
    ck_assert_int_eq(symlink(from, to), 0);
    char *a = replace_all(base, "@PLUGINS@", plugdir);
    char *two = replace_all(a, "image_catalog, audit_file]", "image_catalog, fx_catalog, audit_file]");
    free(a);
    rc = sx_harness_check_config(two, out, sizeof out);
    free(two);
    ck_assert_msg(rc == 2 && strstr(out, "plugin_conflict") && strstr(out, "fx_catalog") &&
                  strstr(out, "at most one"), "rc %d: %s", rc, out);
    for (const char *const *so = sos; *so; so++) {
        snprintf(to, sizeof to, "%s/%s.so", plugdir, *so);
        unlink(to);
    }
    snprintf(to, sizeof to, "%s/fx_catalog.so", plugdir);
    unlink(to);
    rmdir(plugdir);
    free(base);
    unlink(g_cat_file);
    rmdir(g_cat_dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_catalog_integration");
    TCase *t = tcase_create("host");
    tcase_add_checked_fixture(t, start_host, stop_host);
    tcase_add_test(t, image_ref_runs_end_to_end);
    tcase_add_test(t, image_ref_pull_secret_from_catalog);
    tcase_add_test(t, refusals_before_anything_runs);
    tcase_add_test(t, catalog_changes_while_running);
    tcase_set_timeout(t, 240);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("config");
    tcase_add_test(c, config_refusals_at_start);
    tcase_set_timeout(c, 60);
    suite_add_tcase(s, c);
    return sx_check_run(s);
}
