/*
 * test_k8s_job.c - the Kubernetes backend's pure parts (plugins/backend_k8s):
 * the executor options and their layering over the config's sections
 * (k8s_options.c), the Job and Secret builder (k8s_job.c) for every
 * parameter and every refusal, and the checks of what the API server
 * accepts (k8s_validate.c).  The Jobs built for every parameter, for the
 * spec's six examples and for an "everything" step are checked with the
 * offline validator ../shared/k8s/validate-job (official batch/v1 schema,
 * API rules, Pod Security Standards "restricted"); a Job built with
 * weakened options must fail it (the negative control).
 *
 * Config handling is the host's real config module behind the mock host
 * (tests/support/mock_host.c).
 */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "k8s.h"
#include "k8s_validate.h"
#include "mock_host.h"
#include "sx/sx_util.h"
#include "sx_check_main.h"

#ifndef SX_VALIDATE_JOB
#error "SX_VALIDATE_JOB (path of ../shared/k8s/validate-job) must be defined"
#endif

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */
/* ------------------------------------------------------------------ */

typedef struct fixture {
    sx_config_node *root;   /* sections (script_executor: ...) or NULL */
    sx_config_node *entry;  /* the executor entry */
    sx_k8s_plugin plugin;
    sx_k8s_instance inst;
} fixture;

/* Load the sections and the executor entry; apply the options.  Returns 0
 * or -1 with err (the instance is released either way on failure). */
static int fx_open(fixture *f, const char *sections, const char *entry, sx_error *err)
{
    memset(f, 0, sizeof *f);
    memset(err, 0, sizeof *err);
    sx_mock_set_config(NULL);
    if (sections) {
        if (sx_cfg_load_string(sections, "sections.yaml", &f->root, err) != 0)
            return -1;
        sx_mock_set_config(sx_cfg_get(f->root, "script_executor"));
    }
    if (sx_cfg_load_string(entry ? entry : "{}", "entry.yaml", &f->entry, err) != 0)
        return -1;
    f->plugin.ctx = sx_mock_ctx();
    f->plugin.host = sx_mock_host_api();
    f->inst.plugin = &f->plugin;
    f->inst.name = strdup("k8s");
    if (sx_k8s_options_apply(&f->inst, f->entry, err) != 0)
        return -1;
    f->inst.namespace_ = strdup(f->inst.cfg.namespace_ ? f->inst.cfg.namespace_ : "default");
    return 0;
}

static void fx_close(fixture *f)
{
    if (f->inst.plugin)
        sx_k8s_options_free(&f->inst);
    free(f->inst.name);
    free(f->inst.namespace_);
    sx_cfg_free(f->entry);
    sx_cfg_free(f->root);
    sx_mock_set_config(NULL);
    memset(f, 0, sizeof *f);
}

/* The default executor: an image, nothing else. */
#define ENTRY_MIN "image: registry.example/sre/base:v1\n"

static void fx_default(fixture *f)
{
    sx_error err;
    int rc = fx_open(f, NULL, ENTRY_MIN, &err);
    ck_assert_msg(rc == 0, "options: %s: %s", err.code, err.message);
}

/* A step as script_run hands it over: the common parameters pulled out of
 * `with`, the whole `with` as params_json. */
typedef struct step {
    sx_exec_spec spec;
    cJSON *with;
    char *params;
    sx_strmap env;
    char *env_text[64];
    const char *args[64];
} step;

static void step_init(step *s, const char *with_json)
{
    memset(s, 0, sizeof *s);
    s->with = cJSON_Parse(with_json);
    ck_assert_msg(s->with != NULL, "bad test JSON: %s", with_json);
    s->params = cJSON_PrintUnformatted(s->with);
    sx_exec_spec *p = &s->spec;
    p->struct_size = sizeof *p;
    p->execution_id = "run-42";
    p->step_name = "check-status";
    p->runbook_id = "ops.check-api-status";
    p->user = "alice@example.com";
    const cJSON *v = cJSON_GetObjectItem(s->with, "interpreter");
    p->interpreter = cJSON_IsString(v) ? v->valuestring : "/bin/bash";
    v = cJSON_GetObjectItem(s->with, "inline_script");
    p->script = cJSON_IsString(v) ? v->valuestring : "echo hi\n";
    p->script_len = strlen(p->script);
    p->script_hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    v = cJSON_GetObjectItem(s->with, "args");
    for (const cJSON *a = v ? v->child : NULL; a && p->n_args < 64; a = a->next)
        s->args[p->n_args++] = a->valuestring;
    p->args = s->args;
    v = cJSON_GetObjectItem(s->with, "working_dir");
    p->working_dir = cJSON_IsString(v) ? v->valuestring : NULL;
    v = cJSON_GetObjectItem(s->with, "stdin");
    if (cJSON_IsString(v)) {
        p->stdin_data = v->valuestring;
        p->stdin_len = strlen(v->valuestring);
    }
    p->timeout_ms = 300000;
    v = cJSON_GetObjectItem(s->with, "timeout");
    if (cJSON_IsString(v))
        ck_assert_int_eq(sx_duration_parse(v->valuestring, &p->timeout_ms), 0);
    v = cJSON_GetObjectItem(s->with, "env");
    size_t n = v ? (size_t)cJSON_GetArraySize(v) : 0;
    s->env.keys = calloc(n + 1, sizeof(char *));
    s->env.values = calloc(n + 1, sizeof(char *));
    for (const cJSON *e = v ? v->child : NULL; e; e = e->next) {
        char buf[64];
        const char *val = e->valuestring;
        if (!cJSON_IsString(e)) {
            snprintf(buf, sizeof buf, "%g", e->valuedouble);
            s->env_text[s->env.n] = strdup(buf);
            val = s->env_text[s->env.n];
        }
        s->env.keys[s->env.n] = e->string;
        s->env.values[s->env.n] = (char *)val;
        s->env.n++;
    }
    p->env = &s->env;
    p->params_json = s->params;
}

static void step_free(step *s)
{
    for (size_t i = 0; i < s->env.n; i++)
        free(s->env_text[i]);
    free(s->env.keys);
    free(s->env.values);
    free(s->params);
    cJSON_Delete(s->with);
}

/* Build; on failure err says why. */
static int build(fixture *f, const char *with_json, sx_k8s_plan *plan, sx_error *err)
{
    step s;
    step_init(&s, with_json);
    memset(err, 0, sizeof *err);
    int rc = sx_k8s_plan_build(&f->inst, &s.spec, plan, err);
    step_free(&s);
    return rc;
}

static void build_ok(fixture *f, const char *with_json, sx_k8s_plan *plan)
{
    sx_error err;
    int rc = build(f, with_json, plan, &err);
    ck_assert_msg(rc == 0, "build failed: %s: %s (with %s)", err.code, err.message, with_json);
}

/* Build must fail with `code` and a message containing `needle`. */
static void refused(fixture *f, const char *with_json, const char *code, const char *needle)
{
    sx_k8s_plan plan;
    sx_error err;
    int rc = build(f, with_json, &plan, &err);
    if (rc == 0)
        sx_k8s_plan_free(&plan);
    ck_assert_msg(rc == -1, "accepted: %s", with_json);
    ck_assert_msg(strcmp(err.code, code) == 0, "code %s (%s), expected %s, for %s", err.code,
                  err.message, code, with_json);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s' (with %s)",
                  err.message, needle, with_json);
}

/* Options must be refused with a message containing `needle`. */
static void options_refused(const char *sections, const char *entry, const char *needle)
{
    fixture f;
    sx_error err;
    int rc = fx_open(&f, sections, entry, &err);
    fx_close(&f);
    ck_assert_msg(rc == -1, "options accepted: %s / %s", sections ? sections : "-", entry);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
}

/* A JSON value by dotted path with [i] indices ("spec.template.spec.containers[0].name"). */
static const cJSON *jp(const cJSON *root, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = root;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br)
            *br = '\0';
        if (tok[0])
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        while (br && cur) {
            int idx = atoi(br + 1);
            cur = cJSON_GetArrayItem(cur, idx);
            br = strchr(br + 1, '[');
        }
    }
    return cur;
}

static const char *js(const cJSON *root, const char *path)
{
    const cJSON *v = jp(root, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *root, const char *path)
{
    const cJSON *v = jp(root, path);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

static const cJSON *container(const sx_k8s_plan *p)
{
    return jp(p->job, "spec.template.spec.containers[0]");
}

static const cJSON *pod(const sx_k8s_plan *p)
{
    return jp(p->job, "spec.template.spec");
}

static const cJSON *find_named(const cJSON *arr, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        const cJSON *n = cJSON_GetObjectItem(x, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return x;
    }
    return NULL;
}

static const cJSON *env_var(const sx_k8s_plan *p, const char *name)
{
    return find_named(cJSON_GetObjectItem(container(p), "env"), name);
}

static const cJSON *volume(const sx_k8s_plan *p, const char *name)
{
    return find_named(cJSON_GetObjectItem(pod(p), "volumes"), name);
}

static const cJSON *mount_at(const sx_k8s_plan *p, const char *path)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(container(p), "volumeMounts"))
    {
        const cJSON *x = cJSON_GetObjectItem(m, "mountPath");
        if (strcmp(x->valuestring, path) == 0)
            return m;
    }
    return NULL;
}

static const char *label(const cJSON *meta_owner, const char *path, const char *key)
{
    const cJSON *l = jp(meta_owner, path);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(l, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ------------------------------------------------------------------ */
/* validate-job                                                         */
/* ------------------------------------------------------------------ */

typedef struct vdir {
    char dir[64];
    int n;
    char files[64][128];
} vdir;

static void vdir_open(vdir *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->dir, sizeof v->dir, "/tmp/sx-k8s-job-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(v->dir));
}

static const char *vdir_add(vdir *v, const char *name, const cJSON *job)
{
    ck_assert_int_lt(v->n, 64);
    char *text = cJSON_Print(job);
    char path[128];
    snprintf(path, sizeof path, "%s/%s.json", v->dir, name);
    memcpy(v->files[v->n], path, sizeof path);
    FILE *fp = fopen(v->files[v->n], "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
    free(text);
    return v->files[v->n++];
}

/* Run the validator on every file; returns its exit status and its output
 * (malloc'ed) in *out. */
static int vdir_run(vdir *v, char **out, const char *extra_args)
{
    ck_assert_msg(access(SX_VALIDATE_JOB, R_OK) == 0,
                  "the Job validator is missing: %s (../shared/k8s/validate-job)", SX_VALIDATE_JOB);
    size_t cap = 256 + (size_t)v->n * 140;
    char *cmd = malloc(cap);
    snprintf(cmd, cap, "python3 %s %s", SX_VALIDATE_JOB, extra_args ? extra_args : "");
    for (int i = 0; i < v->n; i++) {
        strcat(cmd, " ");
        strcat(cmd, v->files[i]);
    }
    strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = 0, size = 4096;
    char *buf = malloc(size);
    size_t r;
    while ((r = fread(buf + len, 1, size - len - 1, p)) > 0) {
        len += r;
        if (size - len < 1024)
            buf = realloc(buf, size *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    free(cmd);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void vdir_close(vdir *v)
{
    for (int i = 0; i < v->n; i++)
        unlink(v->files[i]);
    rmdir(v->dir);
}

/* Every file must pass: exit 0 and "ok: <file>" for each. */
static void vdir_assert_ok(vdir *v)
{
    char *out = NULL;
    int rc = vdir_run(v, &out, NULL);
    ck_assert_msg(rc == 0, "validate-job failed (%d):\n%.3000s", rc, out);
    for (int i = 0; i < v->n; i++) {
        char want[200];
        snprintf(want, sizeof want, "ok: %s\n", v->files[i]);
        ck_assert_msg(strstr(out, want) != NULL, "no '%s' in:\n%.3000s", want, out);
    }
    free(out);
}

/* ------------------------------------------------------------------ */
/* Checks of what the API accepts                                       */
/* ------------------------------------------------------------------ */

START_TEST(validators)
{
    ck_assert(sx_k8s_dns_label_ok("a"));
    ck_assert(sx_k8s_dns_label_ok("script-exec-1"));
    ck_assert(!sx_k8s_dns_label_ok("-a"));
    ck_assert(!sx_k8s_dns_label_ok("A"));
    ck_assert(!sx_k8s_dns_label_ok("a.b"));
    ck_assert(!sx_k8s_dns_label_ok(""));
    char s64[65];
    memset(s64, 'a', 64);
    s64[64] = '\0';
    ck_assert(!sx_k8s_dns_label_ok(s64));
    s64[63] = '\0';
    ck_assert(sx_k8s_dns_label_ok(s64));
    ck_assert(sx_k8s_dns_subdomain_ok("harbor-credentials"));
    ck_assert(sx_k8s_dns_subdomain_ok("a.b.c"));
    ck_assert(!sx_k8s_dns_subdomain_ok("a..b"));
    ck_assert(!sx_k8s_dns_subdomain_ok("a_b"));
    ck_assert(sx_k8s_label_value_ok(""));
    ck_assert(sx_k8s_label_value_ok("us-east-1a"));
    ck_assert(sx_k8s_label_value_ok("A.b_c-D"));
    ck_assert(!sx_k8s_label_value_ok("-x"));
    ck_assert(!sx_k8s_label_value_ok("x y"));
    ck_assert(sx_k8s_label_value_ok(s64)); /* 63 */
    s64[63] = 'a';
    ck_assert(!sx_k8s_label_value_ok(s64)); /* 64 */
    s64[63] = '\0';
    ck_assert(sx_k8s_qualified_name_ok("kubernetes.io/hostname"));
    ck_assert(sx_k8s_qualified_name_ok("cost-center"));
    ck_assert(!sx_k8s_qualified_name_ok("a/b/c"));
    ck_assert(!sx_k8s_qualified_name_ok("/x"));
    ck_assert(!sx_k8s_qualified_name_ok("Bad_Prefix/x"));
    ck_assert(!sx_k8s_qualified_name_ok("x/"));
    ck_assert(sx_k8s_env_name_ok("DB_PASSWORD"));
    ck_assert(sx_k8s_env_name_ok("my.var-1"));
    ck_assert(!sx_k8s_env_name_ok("1X"));
    ck_assert(!sx_k8s_env_name_ok("A=B"));
    ck_assert(!sx_k8s_env_name_ok("A B"));
    ck_assert(sx_k8s_config_key_ok("app.properties"));
    ck_assert(!sx_k8s_config_key_ok("a/b"));
    ck_assert(!sx_k8s_config_key_ok(".."));
    ck_assert(sx_k8s_rel_path_ok("a/b.txt"));
    ck_assert(!sx_k8s_rel_path_ok("../x"));
    ck_assert(!sx_k8s_rel_path_ok("a//b"));
    ck_assert(!sx_k8s_rel_path_ok("/abs"));
    ck_assert(sx_k8s_abs_path_ok("/"));
    ck_assert(sx_k8s_abs_path_ok("/root/.aws"));
    ck_assert(!sx_k8s_abs_path_ok("/a/../b"));
    ck_assert(!sx_k8s_abs_path_ok("/a/"));
    ck_assert(!sx_k8s_abs_path_ok("rel"));
    ck_assert(!sx_k8s_abs_path_ok("/a:b"));
    ck_assert(sx_k8s_path_within("/workspace/terraform", "/workspace"));
    ck_assert(sx_k8s_path_within("/workspace", "/workspace"));
    ck_assert(!sx_k8s_path_within("/workspaces", "/workspace"));
    ck_assert(sx_k8s_image_ok("harbor.company.internal/sre/aws-tools:v1.0.0"));
    ck_assert(!sx_k8s_image_ok(" busybox"));
    ck_assert(!sx_k8s_image_ok(""));
    int64_t v;
    ck_assert_int_eq(sx_k8s_quantity_parse("500m", 1, &v), 0);
    ck_assert_int_eq(v, 500);
    ck_assert_int_eq(sx_k8s_quantity_parse("2", 1, &v), 0);
    ck_assert_int_eq(v, 2000);
    ck_assert_int_eq(sx_k8s_quantity_parse("0.5", 1, &v), 0);
    ck_assert_int_eq(v, 500);
    ck_assert_int_eq(sx_k8s_quantity_parse("1e3", 1, &v), 0);
    ck_assert_int_eq(v, 1000000);
    ck_assert_int_eq(sx_k8s_quantity_parse("1Gi", 1, &v), -1);   /* not a CPU quantity here */
    ck_assert_int_eq(sx_k8s_quantity_parse("1Gi", 0, &v), 0);
    ck_assert_int_eq(v, 1073741824);
    ck_assert_int_eq(sx_k8s_quantity_parse("129e6", 0, &v), 0);
    ck_assert_int_eq(v, 129000000);
    ck_assert_int_eq(sx_k8s_quantity_parse("1.5Gi", 0, &v), 0);
    ck_assert_int_eq(sx_k8s_quantity_parse("128m", 0, &v), -1);  /* millibytes */
    ck_assert_int_eq(sx_k8s_quantity_parse("1 Gi", 0, &v), -1);
    ck_assert_int_eq(sx_k8s_quantity_parse("1.5e3Mi", 0, &v), -1);
    ck_assert_int_eq(sx_k8s_quantity_parse("0x10", 0, &v), -1);
    ck_assert_int_eq(sx_k8s_quantity_parse("-1", 0, &v), -1);
    ck_assert_int_eq(sx_k8s_quantity_parse("", 0, &v), -1);
    ck_assert_int_eq(sx_k8s_quantity_parse("Gi", 0, &v), -1);
    char *e = sx_k8s_escape_refs("a $(HOME) $$ $x $");
    ck_assert_str_eq(e, "a $$(HOME) $$$ $x $");
    free(e);
}
END_TEST

START_TEST(names_and_label_values)
{
    char v[64];
    sx_k8s_label_value("alice@example.com", v);
    ck_assert_str_eq(v, "alice_example.com");
    sx_k8s_label_value("--x--", v);
    ck_assert_str_eq(v, "x");
    sx_k8s_label_value("@@@", v);
    ck_assert_str_eq(v, "");
    sx_k8s_label_value(NULL, v);
    ck_assert_str_eq(v, "");
    char longv[200];
    memset(longv, 'b', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[62] = '-'; /* the cut would end on '-': trimmed */
    sx_k8s_label_value(longv, v);
    ck_assert_int_eq((int)strlen(v), 62);
    ck_assert(sx_k8s_label_value_ok(v));

    char a[64], b[64], c[64];
    sx_k8s_job_name("run-42", "check-status", a);
    ck_assert_msg(strncmp(a, "script-exec-run-42-check-status-", 32) == 0, "%s", a);
    ck_assert_int_eq((int)strlen(a), 40);
    ck_assert(sx_k8s_dns_label_ok(a));
    sx_k8s_job_name("run-42", "check-status", b);
    ck_assert_str_eq(a, b); /* deterministic */
    sx_k8s_job_name("run-42", "other-step", b);
    ck_assert_str_ne(a, b);
    /* names that slug alike still differ (the hash) */
    sx_k8s_job_name("Run_42", "Check Status", b);
    sx_k8s_job_name("run-42", "check-status", c);
    ck_assert(strncmp(b, c, 32) == 0 && strcmp(b, c) != 0);
    sx_k8s_job_name(longv, longv, b);
    ck_assert_int_le((int)strlen(b), 63);
    ck_assert(sx_k8s_dns_label_ok(b));
    sx_k8s_job_name("", "", b);
    ck_assert(sx_k8s_dns_label_ok(b));
    ck_assert_int_eq((int)strlen(b), 20); /* "script-exec-" + 8 hex */
    sx_k8s_job_name("ÄÖÜ/..", "***", b);
    ck_assert(sx_k8s_dns_label_ok(b));
}
END_TEST

/* ------------------------------------------------------------------ */
/* The default Job                                                      */
/* ------------------------------------------------------------------ */

START_TEST(default_job)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"inline_script\": \"echo hi\\n\"}", &p);
    const cJSON *j = p.job;
    ck_assert_str_eq(js(j, "apiVersion"), "batch/v1");
    ck_assert_str_eq(js(j, "kind"), "Job");
    ck_assert_str_eq(js(j, "metadata.name"), p.job_name);
    ck_assert_str_eq(js(j, "metadata.namespace"), "default");
    ck_assert_str_eq(p.namespace_, "default");
    /* the spec's labels, sanitised, and ours */
    ck_assert_str_eq(label(j, "metadata.labels", "executor"), "script");
    ck_assert_str_eq(label(j, "metadata.labels", "execution-id"), "run-42");
    ck_assert_str_eq(label(j, "metadata.labels", "runbook-id"), "ops.check-api-status");
    ck_assert_str_eq(label(j, "metadata.labels", "user"), "alice_example.com");
    ck_assert_str_eq(label(j, "metadata.labels", "managed-by"), "opscontrolroom");
    ck_assert_str_eq(label(j, "metadata.labels", SX_K8S_LABEL_MANAGED), "true");
    ck_assert_str_eq(label(j, "metadata.labels", SX_K8S_LABEL_EXECUTOR), "k8s");
    ck_assert_str_eq(label(j, "metadata.labels", SX_K8S_LABEL_HOST), f.inst.cfg.host_id);
    ck_assert_str_eq(label(j, "metadata.labels", SX_K8S_LABEL_STEP), "check-status");
    /* the spec's annotations, exact */
    ck_assert_str_eq(label(j, "metadata.annotations", "user"), "alice@example.com");
    ck_assert_str_eq(label(j, "metadata.annotations", "execution-id"), "run-42");
    ck_assert_str_eq(label(j, "metadata.annotations", "runbook-id"), "ops.check-api-status");
    ck_assert_str_eq(label(j, "metadata.annotations", "image"), "registry.example/sre/base:v1");
    ck_assert_str_eq(label(j, "metadata.annotations", "created-by"), "script-executor");
    ck_assert_ptr_nonnull(label(j, "metadata.annotations", "script-hash"));
    ck_assert_str_eq(label(j, "metadata.annotations", SX_K8S_ANN_STEP_NAME), "check-status");
    /* pod template: executor, execution-id and ours; no runbook/user */
    ck_assert_str_eq(label(j, "spec.template.metadata.labels", "executor"), "script");
    ck_assert_str_eq(label(j, "spec.template.metadata.labels", "execution-id"), "run-42");
    ck_assert_ptr_null(label(j, "spec.template.metadata.labels", "user"));
    ck_assert_str_eq(label(j, "spec.template.metadata.labels", SX_K8S_LABEL_HOST),
                     f.inst.cfg.host_id);
    /* job defaults */
    ck_assert_int_eq((int)jnum(j, "spec.backoffLimit"), 0);
    ck_assert_int_eq((int)jnum(j, "spec.ttlSecondsAfterFinished"), 300);
    ck_assert_int_eq((int)jnum(j, "spec.activeDeadlineSeconds"), 301); /* 5m + 1 s */
    /* pod */
    ck_assert_str_eq(js(pod(&p), "restartPolicy"), "Never");
    /* the pause container is PID 1, not the script */
    ck_assert(cJSON_IsTrue(jp(pod(&p), "shareProcessNamespace")));
    ck_assert_str_eq(js(pod(&p), "serviceAccountName"), "script-executor-runner");
    ck_assert_ptr_null(jp(pod(&p), "imagePullSecrets"));
    ck_assert_ptr_null(jp(pod(&p), "nodeSelector"));
    ck_assert(cJSON_IsTrue(jp(pod(&p), "securityContext.runAsNonRoot")));
    ck_assert_int_eq((int)jnum(pod(&p), "securityContext.runAsUser"), 65534);
    ck_assert_int_eq((int)jnum(pod(&p), "securityContext.runAsGroup"), 65534);
    ck_assert_int_eq((int)jnum(pod(&p), "securityContext.fsGroup"), 65534);
    ck_assert_str_eq(js(pod(&p), "securityContext.seccompProfile.type"), "RuntimeDefault");
    /* container */
    const cJSON *c = container(&p);
    ck_assert_str_eq(js(c, "name"), "script");
    ck_assert_str_eq(js(c, "image"), "registry.example/sre/base:v1");
    ck_assert_str_eq(js(c, "imagePullPolicy"), "IfNotPresent");
    ck_assert_str_eq(js(c, "command[0]"), "/bin/bash");
    ck_assert_str_eq(js(c, "command[1]"), "/run/script-executor/script.sh");
    ck_assert_int_eq(cJSON_GetArraySize(jp(c, "command")), 2);
    ck_assert_ptr_null(jp(c, "args"));
    ck_assert_ptr_null(jp(c, "env"));
    ck_assert_str_eq(js(c, "workingDir"), "/workspace");
    ck_assert(cJSON_IsFalse(jp(c, "securityContext.allowPrivilegeEscalation")));
    ck_assert(cJSON_IsTrue(jp(c, "securityContext.readOnlyRootFilesystem")));
    ck_assert(cJSON_IsTrue(jp(c, "securityContext.runAsNonRoot")));
    ck_assert_int_eq((int)jnum(c, "securityContext.runAsUser"), 65534);
    ck_assert_str_eq(js(c, "securityContext.capabilities.drop[0]"), "ALL");
    ck_assert_str_eq(js(c, "resources.requests.cpu"), "100m");
    ck_assert_str_eq(js(c, "resources.requests.memory"), "64Mi");
    ck_assert_str_eq(js(c, "resources.limits.cpu"), "500m");
    ck_assert_str_eq(js(c, "resources.limits.memory"), "256Mi");
    ck_assert_str_eq(js(c, "resources.limits.ephemeral-storage"), "1Gi");
    /* volumes: workspace (sized like the ephemeral limit), tmp, the script */
    ck_assert_str_eq(js(volume(&p, "workspace"), "emptyDir.sizeLimit"), "1Gi");
    ck_assert_str_eq(js(volume(&p, "tmp"), "emptyDir.sizeLimit"), "100Mi");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.secretName"), p.job_name);
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[0].key"), "script");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[0].path"), "script.sh");
    ck_assert_int_eq(cJSON_GetArraySize(jp(volume(&p, "script"), "secret.items")), 1);
    ck_assert_str_eq(js(mount_at(&p, "/workspace"), "name"), "workspace");
    ck_assert_str_eq(js(mount_at(&p, "/tmp"), "name"), "tmp");
    ck_assert(cJSON_IsTrue(jp(mount_at(&p, "/run/script-executor"), "readOnly")));
    /* the script is not in the Job at all */
    char *text = cJSON_PrintUnformatted(p.job);
    ck_assert_ptr_null(strstr(text, "echo hi"));
    free(text);
    /* the Secret: the script (base64), owned by the Job once its uid is known */
    ck_assert_str_eq(p.secret_name, p.job_name);
    ck_assert_str_eq(js(p.secret, "kind"), "Secret");
    ck_assert_str_eq(js(p.secret, "metadata.name"), p.job_name);
    ck_assert_str_eq(js(p.secret, "data.script"), "ZWNobyBoaQo="); /* "echo hi\n" */
    ck_assert_ptr_null(jp(p.secret, "data.stdin"));
    ck_assert(cJSON_IsTrue(jp(p.secret, "immutable")));
    ck_assert_str_eq(js(p.secret, "metadata.ownerReferences[0].kind"), "Job");
    ck_assert_str_eq(js(p.secret, "metadata.ownerReferences[0].apiVersion"), "batch/v1");
    ck_assert_str_eq(js(p.secret, "metadata.ownerReferences[0].name"), p.job_name);
    ck_assert_str_eq(js(p.secret, "metadata.ownerReferences[0].uid"), "");
    ck_assert_str_eq(label(p.secret, "metadata.labels", SX_K8S_LABEL_HOST), f.inst.cfg.host_id);
    sx_error err;
    ck_assert_int_eq(sx_k8s_plan_set_owner(&p, "1b2c-uid", &err), 0);
    ck_assert_str_eq(js(p.secret, "metadata.ownerReferences[0].uid"), "1b2c-uid");
    /* nothing to mask known to the builder; the secrets read: none */
    ck_assert_int_eq((int)p.secret_values.n, 0);
    ck_assert_int_eq((int)p.n_secret_refs, 0);
    ck_assert_int_eq((int)p.active_deadline_seconds, 301); /* timeout + 1 s */
    vdir v;
    vdir_open(&v);
    vdir_add(&v, "default", p.job);
    vdir_assert_ok(&v);
    vdir_close(&v);
    sx_k8s_plan_free(&p);
    ck_assert_ptr_null(p.job); /* zeroed */
    sx_k8s_plan_free(&p);      /* and safe twice */
    char sel[256];
    ck_assert_int_eq(sx_k8s_selector(&f.inst, sel, sizeof sel), 0);
    ck_assert_msg(strstr(sel, "script-executor.io/executor=k8s") != NULL, "%s", sel);
    ck_assert_int_eq(sx_k8s_selector(&f.inst, sel, 10), -1);
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Each parameter                                                       */
/* ------------------------------------------------------------------ */

START_TEST(param_image)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"image\": \"harbor.company.internal/sre/aws-tools:v1.0.0\", "
                 "\"image_pull_policy\": \"Always\", \"image_pull_secret\": \"harbor-credentials\"}",
             &p);
    ck_assert_str_eq(js(container(&p), "image"), "harbor.company.internal/sre/aws-tools:v1.0.0");
    ck_assert_str_eq(js(container(&p), "imagePullPolicy"), "Always");
    ck_assert_str_eq(js(pod(&p), "imagePullSecrets[0].name"), "harbor-credentials");
    ck_assert_str_eq(label(p.job, "metadata.annotations", "image"),
                     "harbor.company.internal/sre/aws-tools:v1.0.0");
    ck_assert_str_eq(p.image_pull_secret, "harbor-credentials");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"image_ref\": \"terraform\"}", "unsupported_parameter",
            "image_ref needs the image catalog plugin");
    refused(&f, "{\"image\": \"bad image\"}", "invalid_parameter", "with.image");
    refused(&f, "{\"image\": \"\"}", "invalid_parameter", "with.image");
    refused(&f, "{\"image_pull_policy\": \"Sometimes\"}", "invalid_parameter",
            "with.image_pull_policy 'Sometimes'");
    refused(&f, "{\"image_pull_secret\": \"Bad_Name\"}", "invalid_parameter",
            "with.image_pull_secret");
    fx_close(&f);
    /* executor defaults */
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "image_pull_policy: Never\n"
                                       "image_pull_secret: regcred\n", &err), 0);
    build_ok(&f, "{}", &p);
    ck_assert_str_eq(js(container(&p), "imagePullPolicy"), "Never");
    ck_assert_str_eq(js(pod(&p), "imagePullSecrets[0].name"), "regcred");
    sx_k8s_plan_free(&p);
    fx_close(&f);
}
END_TEST

START_TEST(param_interpreter_args_working_dir)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"interpreter\": \"python3\", \"args\": [\"--verbose\", \"$(HOME)\", \"a$$b\"], "
                 "\"working_dir\": \"/workspace/sub\"}", &p);
    const cJSON *c = container(&p);
    ck_assert_str_eq(js(c, "command[0]"), "python3");
    ck_assert_str_eq(js(c, "command[1]"), "/run/script-executor/script.py");
    ck_assert_str_eq(js(c, "args[0]"), "--verbose");
    /* $(VAR) and $$ escaped so that the container sees them unchanged */
    ck_assert_str_eq(js(c, "args[1]"), "$$(HOME)");
    ck_assert_str_eq(js(c, "args[2]"), "a$$$b");
    ck_assert_str_eq(js(c, "workingDir"), "/workspace/sub");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[0].path"), "script.py");
    sx_k8s_plan_free(&p);
    build_ok(&f, "{\"interpreter\": \"ruby\"}", &p);
    ck_assert_str_eq(js(container(&p), "command[1]"), "/run/script-executor/script.rb");
    sx_k8s_plan_free(&p);
    build_ok(&f, "{\"interpreter\": \"/bin/sh\"}", &p);
    ck_assert_str_eq(js(container(&p), "command[0]"), "/bin/sh");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"working_dir\": \"relative/dir\"}", "invalid_parameter", "with.working_dir");
    refused(&f, "{\"working_dir\": \"/a/../b\"}", "invalid_parameter", "with.working_dir");
    fx_close(&f);
}
END_TEST

START_TEST(param_timeout_job_settings)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"timeout\": \"1500ms\", \"ttl_seconds_after_finished\": 3600, "
                 "\"backoff_limit\": 3}", &p);
    ck_assert_int_eq((int)jnum(p.job, "spec.activeDeadlineSeconds"), 3); /* rounded up, + 1 s */
    ck_assert_int_eq((int)jnum(p.job, "spec.ttlSecondsAfterFinished"), 3600);
    ck_assert_int_eq((int)jnum(p.job, "spec.backoffLimit"), 3);
    sx_k8s_plan_free(&p);
    build_ok(&f, "{\"timeout\": \"30m\", \"ttl_seconds_after_finished\": 0}", &p);
    ck_assert_int_eq((int)jnum(p.job, "spec.activeDeadlineSeconds"), 1801);
    ck_assert_int_eq((int)jnum(p.job, "spec.ttlSecondsAfterFinished"), 0);
    sx_k8s_plan_free(&p);
    refused(&f, "{\"timeout\": \"31m\"}", "invalid_parameter",
            "job_defaults.active_deadline_seconds (1800s)");
    refused(&f, "{\"backoff_limit\": 4}", "invalid_parameter", "with.backoff_limit");
    refused(&f, "{\"backoff_limit\": -1}", "invalid_parameter", "with.backoff_limit");
    refused(&f, "{\"backoff_limit\": 1.5}", "invalid_parameter", "with.backoff_limit");
    refused(&f, "{\"ttl_seconds_after_finished\": -5}", "invalid_parameter",
            "with.ttl_seconds_after_finished");
    fx_close(&f);
    /* executor job_defaults */
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "job_defaults: {ttl_seconds_after_finished: 60, "
                                       "backoff_limit: 2, active_deadline_seconds: 600}\n", &err), 0);
    build_ok(&f, "{\"timeout\": \"10m\"}", &p);
    ck_assert_int_eq((int)jnum(p.job, "spec.ttlSecondsAfterFinished"), 60);
    ck_assert_int_eq((int)jnum(p.job, "spec.backoffLimit"), 2);
    ck_assert_int_eq((int)jnum(p.job, "spec.activeDeadlineSeconds"), 601);
    sx_k8s_plan_free(&p);
    refused(&f, "{\"timeout\": \"11m\"}", "invalid_parameter", "(600s)");
    fx_close(&f);
}
END_TEST

START_TEST(param_env)
{
    fixture f;
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "default_env: {PATH: '/usr/bin:/bin', "
                                       "LOG_LEVEL: info}\n", &err), 0);
    sx_k8s_plan p;
    build_ok(&f, "{\"env\": {\"API_URL\": \"https://api.company.com\", \"LOG_LEVEL\": \"debug\", "
                 "\"REF\": \"$(PATH)\"}}", &p);
    ck_assert_str_eq(js(env_var(&p, "PATH"), "value"), "/usr/bin:/bin");
    ck_assert_str_eq(js(env_var(&p, "API_URL"), "value"), "https://api.company.com");
    ck_assert_str_eq(js(env_var(&p, "LOG_LEVEL"), "value"), "debug"); /* the step wins */
    ck_assert_str_eq(js(env_var(&p, "REF"), "value"), "$$(PATH)");    /* not expanded */
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, jp(container(&p), "env")) n += strcmp(js(e, "name"), "LOG_LEVEL") == 0;
    ck_assert_int_eq(n, 1);
    sx_k8s_plan_free(&p);
    refused(&f, "{\"env\": {\"1BAD\": \"x\"}}", "invalid_parameter", "with.env: '1BAD'");
    fx_close(&f);
}
END_TEST

START_TEST(param_env_from)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"env_from_secret\": {\"DB_PASSWORD\": {\"secret_name\": \"postgres-credentials\", "
                 "\"key\": \"password\"}, \"API_TOKEN\": {\"secret_name\": \"api-tokens\", "
                 "\"key\": \"github-token\", \"optional\": true}}, "
                 "\"env_from_configmap\": {\"APP_CONFIG\": {\"configmap_name\": \"app-settings\", "
                 "\"key\": \"config.json\"}}, "
                 "\"secret_env_all\": [\"database-credentials\", \"api-tokens\"], "
                 "\"configmap_env_all\": [\"feature-flags\"]}", &p);
    const cJSON *d = env_var(&p, "DB_PASSWORD");
    ck_assert_str_eq(js(d, "valueFrom.secretKeyRef.name"), "postgres-credentials");
    ck_assert_str_eq(js(d, "valueFrom.secretKeyRef.key"), "password");
    ck_assert(cJSON_IsFalse(jp(d, "valueFrom.secretKeyRef.optional")));
    ck_assert_ptr_null(jp(d, "value"));
    ck_assert(cJSON_IsTrue(jp(env_var(&p, "API_TOKEN"), "valueFrom.secretKeyRef.optional")));
    ck_assert_str_eq(js(env_var(&p, "APP_CONFIG"), "valueFrom.configMapKeyRef.name"),
                     "app-settings");
    ck_assert_str_eq(js(env_var(&p, "APP_CONFIG"), "valueFrom.configMapKeyRef.key"), "config.json");
    const cJSON *ef = jp(container(&p), "envFrom");
    ck_assert_int_eq(cJSON_GetArraySize(ef), 3);
    ck_assert_str_eq(js(ef, "[0].secretRef.name"), "database-credentials");
    ck_assert_str_eq(js(ef, "[1].secretRef.name"), "api-tokens");
    ck_assert_str_eq(js(ef, "[2].configMapRef.name"), "feature-flags");
    /* the Secrets the run reads for masking: names and keys, no values */
    ck_assert_int_eq((int)p.n_secret_refs, 4);
    ck_assert_str_eq(p.secret_refs[0].name, "postgres-credentials");
    ck_assert_str_eq(p.secret_refs[0].key, "password");
    ck_assert_int_eq(p.secret_refs[1].optional, 1);
    ck_assert_str_eq(p.secret_refs[2].name, "database-credentials");
    ck_assert_ptr_null(p.secret_refs[2].key);
    ck_assert_str_eq(p.secret_refs[3].name, "api-tokens");
    ck_assert_ptr_null(p.secret_refs[3].key);
    sx_k8s_plan_free(&p);
    refused(&f, "{\"env_from_secret\": {\"A\": {\"secret_name\": \"Bad_Name\", \"key\": \"k\"}}}",
            "invalid_parameter", "with.env_from_secret.A.secret_name");
    refused(&f, "{\"env_from_secret\": {\"A\": {\"secret_name\": \"s\"}}}", "invalid_parameter",
            "with.env_from_secret.A needs");
    refused(&f, "{\"env_from_secret\": {\"A\": {\"secret_name\": \"s\", \"key\": \"a/b\"}}}",
            "invalid_parameter", "with.env_from_secret.A.key");
    refused(&f, "{\"env_from_secret\": {\"A\": {\"secret_name\": \"s\", \"key\": \"k\", "
                "\"extra\": 1}}}", "invalid_parameter", "unknown field 'extra'");
    refused(&f, "{\"env_from_secret\": {\"A\": \"s/k\"}}", "invalid_parameter", "must be an object");
    refused(&f, "{\"env_from_secret\": {\"A\": {\"secret_name\": \"s\", \"key\": \"k\", "
                "\"optional\": \"yes\"}}}", "invalid_parameter", "optional");
    refused(&f, "{\"env_from_configmap\": {\"B C\": {\"configmap_name\": \"c\", \"key\": \"k\"}}}",
            "invalid_parameter", "with.env_from_configmap: 'B C'");
    refused(&f, "{\"env\": {\"X\": \"1\"}, \"env_from_secret\": {\"X\": {\"secret_name\": \"s\", "
                "\"key\": \"k\"}}}", "invalid_parameter", "'X' is set twice");
    refused(&f, "{\"secret_env_all\": [\"UPPER\"]}", "invalid_parameter", "with.secret_env_all[0]");
    refused(&f, "{\"configmap_env_all\": [\"ok\", \"a_b\"]}", "invalid_parameter",
            "with.configmap_env_all[1]");
    fx_close(&f);
}
END_TEST

START_TEST(param_volumes)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"volumes_from_secret\": ["
                 "{\"secret_name\": \"tls-certs\", \"mount_path\": \"/etc/certs\", \"optional\": false},"
                 "{\"secret_name\": \"ssh-keys\", \"mount_path\": \"/home/u/.ssh\", \"default_mode\": \"0400\","
                 " \"items\": [{\"key\": \"id_rsa\", \"path\": \"id_rsa\", \"mode\": 384}]},"
                 "{\"secret_name\": \"one-file\", \"mount_path\": \"/etc/app/token\", \"sub_path\": \"token\","
                 " \"read_only\": true}],"
                 "\"volumes_from_configmap\": ["
                 "{\"configmap_name\": \"nginx-config\", \"mount_path\": \"/etc/nginx\", \"optional\": true},"
                 "{\"configmap_name\": \"application-properties\", \"mount_path\": \"/workspace/config\","
                 " \"items\": [{\"key\": \"app.properties\", \"path\": \"application.properties\"}]}]}",
             &p);
    const cJSON *v0 = volume(&p, "secret-0");
    ck_assert_str_eq(js(v0, "secret.secretName"), "tls-certs");
    ck_assert(cJSON_IsFalse(jp(v0, "secret.optional")));
    ck_assert_ptr_null(jp(v0, "secret.items"));
    const cJSON *v1 = volume(&p, "secret-1");
    ck_assert_int_eq((int)jnum(v1, "secret.defaultMode"), 0400);
    ck_assert_str_eq(js(v1, "secret.items[0].key"), "id_rsa");
    ck_assert_int_eq((int)jnum(v1, "secret.items[0].mode"), 0600);
    ck_assert_str_eq(js(mount_at(&p, "/etc/app/token"), "subPath"), "token");
    ck_assert(cJSON_IsTrue(jp(mount_at(&p, "/etc/certs"), "readOnly")));
    ck_assert_str_eq(js(mount_at(&p, "/etc/certs"), "name"), "secret-0");
    const cJSON *c0 = volume(&p, "configmap-0");
    ck_assert_str_eq(js(c0, "configMap.name"), "nginx-config");
    ck_assert(cJSON_IsTrue(jp(c0, "configMap.optional")));
    ck_assert_str_eq(js(volume(&p, "configmap-1"), "configMap.items[0].path"),
                     "application.properties");
    /* nested below the workspace is fine */
    ck_assert_str_eq(js(mount_at(&p, "/workspace/config"), "name"), "configmap-1");
    ck_assert_int_eq((int)p.n_secret_refs, 3);
    ck_assert_str_eq(p.secret_refs[1].key, "id_rsa");
    sx_k8s_plan_free(&p);
    /* clashes and bad values */
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\"}],"
                "\"volumes_from_configmap\": [{\"configmap_name\": \"b\", \"mount_path\": \"/x\"}]}",
            "invalid_parameter", "with.volumes_from_configmap[0].mount_path: '/x' clashes");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/tmp\"}]}",
            "invalid_parameter", "clashes with the mount of volume 'tmp'");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/workspace\"}]}",
            "invalid_parameter", "clashes with the mount of volume 'workspace'");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", "
                "\"mount_path\": \"/run/script-executor/x\"}]}", "invalid_parameter", "reserved");
    refused(&f, "{\"volumes_from_configmap\": [{\"configmap_name\": \"a\", \"mount_path\": \"/scripts\"}]}",
            "invalid_parameter", "reserved");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"etc\"}]}",
            "invalid_parameter", "with.volumes_from_secret[0].mount_path");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/\"}]}",
            "invalid_parameter", "with.volumes_from_secret[0].mount_path");
    refused(&f, "{\"volumes_from_secret\": [{\"mount_path\": \"/x\"}]}", "invalid_parameter",
            "with.volumes_from_secret[0].secret_name");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"items\": [{\"key\": \"k\", \"path\": \"../k\"}]}]}", "invalid_parameter",
            "with.volumes_from_secret[0].items[0].path");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"items\": [{\"key\": \"k\", \"mode\": 512}]}]}", "invalid_parameter",
            "with.volumes_from_secret[0].items[0].mode");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"items\": [{\"path\": \"p\"}]}]}", "invalid_parameter", "items[0].key");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"default_mode\": \"0999\"}]}", "invalid_parameter", "default_mode");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"sub_path\": \"../y\"}]}", "invalid_parameter", "sub_path");
    refused(&f, "{\"volumes_from_secret\": [{\"secret_name\": \"a\", \"mount_path\": \"/x\", "
                "\"read_only\": false}]}", "invalid_parameter", "always read-only");
    refused(&f, "{\"volumes_from_configmap\": [{\"configmap_name\": \"a\", \"mount_path\": \"/x\", "
                "\"size\": 1}]}", "invalid_parameter", "unknown field 'size'");
    fx_close(&f);
}
END_TEST

START_TEST(param_node_selector_priority_service_account)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"node_selector\": {\"workload-type\": \"batch\", \"disk-type\": \"ssd\", "
                 "\"gpu\": true}, \"priority_class_name\": \"high-priority\", "
                 "\"service_account\": \"custom-runner\"}", &p);
    ck_assert_str_eq(js(pod(&p), "nodeSelector.workload-type"), "batch");
    ck_assert_str_eq(js(pod(&p), "nodeSelector.gpu"), "true");
    ck_assert_str_eq(js(pod(&p), "priorityClassName"), "high-priority");
    ck_assert_str_eq(js(pod(&p), "serviceAccountName"), "custom-runner");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"node_selector\": {\"bad key!\": \"x\"}}", "invalid_parameter",
            "with.node_selector: 'bad key!'");
    refused(&f, "{\"node_selector\": {\"zone\": \"us east\"}}", "invalid_parameter",
            "with.node_selector.zone");
    refused(&f, "{\"priority_class_name\": \"High\"}", "invalid_parameter",
            "with.priority_class_name");
    refused(&f, "{\"service_account\": \"no_underscores\"}", "invalid_parameter",
            "with.service_account");
    fx_close(&f);
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "allowed_service_accounts: [reader]\n", &err), 0);
    build_ok(&f, "{\"service_account\": \"reader\"}", &p);
    sx_k8s_plan_free(&p);
    build_ok(&f, "{\"service_account\": \"script-executor-runner\"}", &p); /* the default */
    sx_k8s_plan_free(&p);
    refused(&f, "{\"service_account\": \"cluster-admin\"}", "invalid_parameter",
            "allowed_service_accounts");
    fx_close(&f);
}
END_TEST

START_TEST(param_tolerations)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", "
                 "\"value\": \"batch-jobs\", \"effect\": \"NoSchedule\"}, {\"key\": \"gpu\", "
                 "\"operator\": \"Exists\", \"effect\": \"NoSchedule\"}, {\"key\": \"node.kubernetes.io/unreachable\", "
                 "\"operator\": \"Exists\", \"effect\": \"NoExecute\", \"toleration_seconds\": 30}, "
                 "{\"operator\": \"Exists\"}, {\"key\": \"k\", \"value\": \"v\"}]}", &p);
    const cJSON *t = jp(pod(&p), "tolerations");
    ck_assert_int_eq(cJSON_GetArraySize(t), 5);
    ck_assert_str_eq(js(t, "[0].value"), "batch-jobs");
    ck_assert_ptr_null(jp(t, "[1].value"));
    ck_assert_int_eq((int)jnum(t, "[2].tolerationSeconds"), 30);
    ck_assert_ptr_null(jp(t, "[3].key"));
    ck_assert_str_eq(js(t, "[4].operator"), "Equal"); /* the default */
    sx_k8s_plan_free(&p);
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"operator\": \"Equals\"}]}", "invalid_parameter",
            "with.tolerations[0].operator 'Equals' must be Equal or Exists");
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\", \"value\": \"x\"}]}",
            "invalid_parameter", "with.tolerations[0].value must be empty");
    refused(&f, "{\"tolerations\": [{\"operator\": \"Equal\", \"value\": \"x\"}]}",
            "invalid_parameter", "empty key needs operator Exists");
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"effect\": \"NoRun\"}]}", "invalid_parameter",
            "with.tolerations[0].effect 'NoRun'");
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"effect\": \"NoSchedule\", "
                "\"toleration_seconds\": 5}]}", "invalid_parameter", "needs effect NoExecute");
    refused(&f, "{\"tolerations\": [{\"key\": \"bad key\"}]}", "invalid_parameter",
            "with.tolerations[0].key");
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"value\": \"not valid!\"}]}",
            "invalid_parameter", "with.tolerations[0].value");
    refused(&f, "{\"tolerations\": [{\"key\": \"a\", \"tolerationSeconds\": 5}]}",
            "invalid_parameter", "unknown field 'tolerationSeconds'");
    fx_close(&f);
}
END_TEST

START_TEST(param_affinity)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    /* the spec's parameter example (shorthand preferred term) */
    build_ok(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": "
                 "[{\"key\": \"zone\", \"operator\": \"In\", \"values\": [\"us-east-1a\", \"us-east-1b\"]}]}}, "
                 "\"pod_anti_affinity\": {\"preferred\": [{\"weight\": 100, \"match_expressions\": "
                 "[{\"key\": \"app\", \"operator\": \"In\", \"values\": [\"database\"]}]}]}}}", &p);
    const cJSON *a = jp(pod(&p), "affinity");
    ck_assert_str_eq(js(a, "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                           "nodeSelectorTerms[0].matchExpressions[0].values[1]"), "us-east-1b");
    const cJSON *pr = jp(a, "podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]");
    ck_assert_int_eq((int)jnum(pr, "weight"), 100);
    ck_assert_str_eq(js(pr, "podAffinityTerm.labelSelector.matchExpressions[0].key"), "app");
    ck_assert_str_eq(js(pr, "podAffinityTerm.topologyKey"), "kubernetes.io/hostname");
    ck_assert_int_ge(cJSON_GetArraySize(p.notes), 1); /* the defaulted topology key is said */
    sx_k8s_plan_free(&p);
    /* every form: node terms list, node preferred (both forms), Gt, pod affinity
     * required with namespaces and match_labels, anti-affinity full form */
    build_ok(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"node_selector_terms\": ["
                 "{\"match_expressions\": [{\"key\": \"cpu-count\", \"operator\": \"Gt\", \"values\": [\"4\"]}]},"
                 "{\"match_fields\": [{\"key\": \"metadata.name\", \"operator\": \"NotIn\", \"values\": [\"n1\"]}]}]},"
                 "\"preferred\": [{\"weight\": 10, \"preference\": {\"match_expressions\": [{\"key\": \"ssd\", "
                 "\"operator\": \"Exists\"}]}}, {\"weight\": 1, \"match_expressions\": [{\"key\": \"hdd\", "
                 "\"operator\": \"DoesNotExist\"}]}]},"
                 "\"pod_affinity\": {\"required\": [{\"label_selector\": {\"match_labels\": {\"app\": \"cache\"}}, "
                 "\"topology_key\": \"topology.kubernetes.io/zone\", \"namespaces\": [\"data\"]}]},"
                 "\"pod_anti_affinity\": {\"required\": {\"match_labels\": {\"app\": \"batch\"}, "
                 "\"topology_key\": \"kubernetes.io/hostname\"}, \"preferred\": [{\"weight\": 50, "
                 "\"pod_affinity_term\": {\"label_selector\": {\"match_expressions\": [{\"key\": \"tier\", "
                 "\"operator\": \"NotIn\", \"values\": [\"web\"]}]}, \"topology_key\": \"kubernetes.io/hostname\"}}]}}}",
             &p);
    a = jp(pod(&p), "affinity");
    ck_assert_int_eq(cJSON_GetArraySize(jp(a, "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")), 2);
    ck_assert_str_eq(js(a, "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1]."
                           "matchFields[0].key"), "metadata.name");
    ck_assert_int_eq((int)jnum(a, "nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[1].weight"), 1);
    ck_assert_str_eq(js(a, "nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[1].preference."
                           "matchExpressions[0].operator"), "DoesNotExist");
    ck_assert_str_eq(js(a, "podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector."
                           "matchLabels.app"), "cache");
    ck_assert_str_eq(js(a, "podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaces[0]"),
                     "data");
    ck_assert_str_eq(js(a, "podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
                     "kubernetes.io/hostname");
    ck_assert_int_eq((int)jnum(a, "podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"), 50);
    vdir v;
    vdir_open(&v);
    vdir_add(&v, "affinity-all", p.job);
    vdir_assert_ok(&v);
    vdir_close(&v);
    sx_k8s_plan_free(&p);
    /* refusals */
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": "
                "[{\"key\": \"zone\", \"operator\": \"Within\", \"values\": [\"a\"]}]}}}}", "invalid_parameter",
            "with.affinity.node_affinity.required.match_expressions[0].operator 'Within'");
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": "
                "[{\"key\": \"zone\", \"operator\": \"In\"}]}}}}", "invalid_parameter",
            "values must not be empty");
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": "
                "[{\"key\": \"zone\", \"operator\": \"Exists\", \"values\": [\"a\"]}]}}}}",
            "invalid_parameter", "values must be empty for operator Exists");
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": "
                "[{\"key\": \"n\", \"operator\": \"Gt\", \"values\": [\"four\"]}]}}}}", "invalid_parameter",
            "must be an integer for operator Gt");
    refused(&f, "{\"affinity\": {\"pod_affinity\": {\"required\": [{\"match_expressions\": "
                "[{\"key\": \"n\", \"operator\": \"Gt\", \"values\": [\"4\"]}]}]}}}", "invalid_parameter",
            "must be In, NotIn, Exists or DoesNotExist");
    refused(&f, "{\"affinity\": {\"pod_anti_affinity\": {\"preferred\": [{\"weight\": 0, "
                "\"match_labels\": {\"a\": \"b\"}}]}}}", "invalid_parameter",
            "with.affinity.pod_anti_affinity.preferred[0].weight must be an integer 1..100");
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"preferred\": [{\"weight\": 101, "
                "\"match_expressions\": [{\"key\": \"a\", \"operator\": \"Exists\"}]}]}}}",
            "invalid_parameter", "weight must be an integer 1..100");
    refused(&f, "{\"affinity\": {\"pod_affinity\": {\"required\": [{\"topology_key\": \"kubernetes.io/hostname\"}]}}}",
            "invalid_parameter", "needs a label selector");
    refused(&f, "{\"affinity\": {\"pod_affinity\": {\"required\": [{\"match_labels\": {\"a\": \"b\"}, "
                "\"topology_key\": \"bad key\"}]}}}", "invalid_parameter", "topology_key");
    refused(&f, "{\"affinity\": {\"node_affinity\": {\"required\": {}}}}", "invalid_parameter",
            "needs match_expressions or match_fields");
    refused(&f, "{\"affinity\": {\"nodeAffinity\": {}}}", "invalid_parameter",
            "with.affinity: unknown field 'nodeAffinity'");
    refused(&f, "{\"affinity\": {\"pod_affinity\": {\"required\": [{\"match_labels\": {\"a\": \"b\"}, "
                "\"namespaces\": [\"Bad\"]}]}}}", "invalid_parameter", "namespaces: 'Bad'");
    fx_close(&f);
}
END_TEST

START_TEST(param_resources)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"resources\": {\"requests\": {\"cpu\": \"250m\"}, \"limits\": {\"memory\": \"1Gi\", "
                 "\"ephemeral_storage\": \"2Gi\"}}}", &p);
    const cJSON *c = container(&p);
    ck_assert_str_eq(js(c, "resources.requests.cpu"), "250m");
    ck_assert_str_eq(js(c, "resources.requests.memory"), "64Mi"); /* default */
    ck_assert_str_eq(js(c, "resources.limits.cpu"), "500m");
    ck_assert_str_eq(js(c, "resources.limits.memory"), "1Gi");
    ck_assert_str_eq(js(c, "resources.limits.ephemeral-storage"), "2Gi");
    ck_assert_str_eq(js(volume(&p, "workspace"), "emptyDir.sizeLimit"), "2Gi");
    sx_k8s_plan_free(&p);
    /* a request above the default limit raises the limit; numbers are quantities */
    build_ok(&f, "{\"resources\": {\"requests\": {\"cpu\": 2, \"memory\": \"512Mi\"}, "
                 "\"limits\": {\"ephemeral-storage\": \"3Gi\"}}}", &p);
    c = container(&p);
    ck_assert_str_eq(js(c, "resources.requests.cpu"), "2");
    ck_assert_str_eq(js(c, "resources.limits.cpu"), "2");
    ck_assert_str_eq(js(c, "resources.limits.memory"), "512Mi");
    ck_assert_str_eq(js(c, "resources.limits.ephemeral-storage"), "3Gi");
    ck_assert_int_ge(cJSON_GetArraySize(p.notes), 2);
    sx_k8s_plan_free(&p);
    /* a limit below the default request lowers the request */
    build_ok(&f, "{\"resources\": {\"limits\": {\"cpu\": \"50m\"}}}", &p);
    ck_assert_str_eq(js(container(&p), "resources.requests.cpu"), "50m");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"resources\": {\"limits\": {\"cpu\": \"8000m\"}}}", "invalid_parameter",
            "with.resources.limits.cpu '8000m' is above the executor's max_resources.limits.cpu (4000m)");
    refused(&f, "{\"resources\": {\"limits\": {\"memory\": \"16Gi\"}}}", "invalid_parameter",
            "max_resources.limits.memory (8Gi)");
    refused(&f, "{\"resources\": {\"limits\": {\"ephemeral_storage\": \"50Gi\"}}}", "invalid_parameter",
            "max_resources.limits.ephemeral_storage (20Gi)");
    refused(&f, "{\"resources\": {\"requests\": {\"memory\": \"9Gi\"}}}", "invalid_parameter",
            "with.resources.requests.memory '9Gi' is above the executor's max_resources.limits.memory");
    refused(&f, "{\"resources\": {\"requests\": {\"cpu\": \"2\"}, \"limits\": {\"cpu\": \"1\"}}}",
            "invalid_parameter", "with.resources.requests.cpu '2' is above with.resources.limits.cpu '1'");
    refused(&f, "{\"resources\": {\"limits\": {\"memory\": \"1 Gi\"}}}", "invalid_parameter",
            "with.resources.limits.memory '1 Gi' is not a quantity");
    refused(&f, "{\"resources\": {\"limits\": {\"memory\": \"128m\"}}}", "invalid_parameter",
            "with.resources.limits.memory '128m'");
    refused(&f, "{\"resources\": {\"limits\": {\"cpu\": \"1Gi\"}}}", "invalid_parameter",
            "with.resources.limits.cpu '1Gi' is not a CPU quantity");
    refused(&f, "{\"resources\": {\"limits\": {\"cpu\": \"0\"}}}", "invalid_parameter",
            "with.resources.limits.cpu '0'");
    refused(&f, "{\"resources\": {\"limits\": {\"gpu\": \"1\"}}}", "invalid_parameter",
            "unknown resource 'gpu'");
    refused(&f, "{\"resources\": {\"maximum\": {}}}", "invalid_parameter", "unknown field 'maximum'");
    fx_close(&f);
}
END_TEST

START_TEST(param_stdin)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"stdin\": \"{\\\"key\\\": \\\"value\\\"}\", \"args\": [\"x y\"]}", &p);
    const cJSON *c = container(&p);
    ck_assert_str_eq(js(c, "command[0]"), "/bin/sh");
    ck_assert_str_eq(js(c, "command[1]"), "-c");
    ck_assert_str_eq(js(c, "command[2]"), "exec \"$0\" \"$@\" < /run/script-executor/stdin");
    ck_assert_str_eq(js(c, "command[3]"), "/bin/bash");
    ck_assert_str_eq(js(c, "command[4]"), "/run/script-executor/script.sh");
    ck_assert_str_eq(js(c, "args[0]"), "x y");
    ck_assert_str_eq(js(p.secret, "data.stdin"), "eyJrZXkiOiAidmFsdWUifQ==");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[1].key"), "stdin");
    char *text = cJSON_PrintUnformatted(p.job);
    ck_assert_ptr_null(strstr(text, "value"));
    free(text);
    sx_k8s_plan_free(&p);
    /* a 500 KB script with stdin fits; more than the 1 MiB a Secret holds does not */
    char *big = malloc(600 * 1024 + 64);
    memset(big, 'x', 600 * 1024);
    big[600 * 1024] = '\0';
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "stdin", big);
    char *wj = cJSON_PrintUnformatted(w);
    sx_error err;
    step s;
    step_init(&s, wj);
    s.spec.script = big;
    s.spec.script_len = 500 * 1024;
    int rc = sx_k8s_plan_build(&f.inst, &s.spec, &p, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_msg(strstr(err.message, "at most 1 MiB") != NULL, "%s", err.message);
    s.spec.stdin_len = 100 * 1024;
    s.spec.stdin_data = big;
    rc = sx_k8s_plan_build(&f.inst, &s.spec, &p, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_gt((int)strlen(js(p.secret, "data.script")), 500 * 1024);
    sx_k8s_plan_free(&p);
    step_free(&s);
    free(wj);
    cJSON_Delete(w);
    free(big);
    fx_close(&f);
}
END_TEST

START_TEST(param_labels_annotations)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, "{\"labels\": {\"team\": \"platform\", \"cost-center\": \"engineering\", "
                 "\"app.kubernetes.io/name\": \"proc\", \"tier\": 3}, "
                 "\"annotations\": {\"description\": \"Database maintenance\", "
                 "\"owner\": \"data-team@company.com\"}}", &p);
    ck_assert_str_eq(label(p.job, "metadata.labels", "team"), "platform");
    ck_assert_str_eq(label(p.job, "metadata.labels", "tier"), "3");
    ck_assert_str_eq(label(p.job, "spec.template.metadata.labels", "cost-center"), "engineering");
    ck_assert_str_eq(label(p.job, "spec.template.metadata.labels", "app.kubernetes.io/name"), "proc");
    ck_assert_str_eq(label(p.job, "metadata.annotations", "description"), "Database maintenance");
    ck_assert_str_eq(label(p.job, "spec.template.metadata.annotations", "owner"),
                     "data-team@company.com");
    ck_assert_str_eq(label(p.job, "metadata.annotations", "created-by"), "script-executor");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"labels\": {\"execution-id\": \"x\"}}", "invalid_parameter",
            "with.labels: 'execution-id' is set by the executor");
    refused(&f, "{\"labels\": {\"script-executor.io/host\": \"other\"}}", "invalid_parameter",
            "set by the executor");
    refused(&f, "{\"labels\": {\"bad key\": \"x\"}}", "invalid_parameter", "not a valid label key");
    refused(&f, "{\"labels\": {\"description\": \"Nightly job\"}}", "invalid_parameter",
            "with.labels.description");
    refused(&f, "{\"annotations\": {\"user\": \"mallory\"}}", "invalid_parameter",
            "with.annotations: 'user' is set by the executor");
    refused(&f, "{\"annotations\": {\"-x\": \"y\"}}", "invalid_parameter", "not a valid annotation key");
    size_t n = 300 * 1024;
    char *big = malloc(n + 64);
    strcpy(big, "{\"annotations\": {\"a\": \"");
    size_t at = strlen(big);
    memset(big + at, 'x', n - at - 8);
    strcpy(big + n - 8, "\"}}");
    refused(&f, big, "invalid_parameter", "256 KiB");
    free(big);
    fx_close(&f);
}
END_TEST

START_TEST(param_script_path)
{
    fixture f;
    fx_default(&f);
    refused(&f, "{\"script_path\": \"/scripts/check-db-lag.sh\"}", "unsupported_parameter",
            "has no scripts_configmap");
    fx_close(&f);
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "scripts_configmap: sre-scripts\n", &err), 0);
    sx_k8s_plan p;
    /* the text script_run read through load_script runs from the Secret,
     * like an inline script; the whole ConfigMap is mounted at /scripts */
    build_ok(&f, "{\"script_path\": \"/scripts/check-db-lag.sh\", \"args\": [\"--db\", \"main\"]}", &p);
    const cJSON *c = container(&p);
    ck_assert_str_eq(js(c, "command[0]"), "/bin/bash");
    ck_assert_str_eq(js(c, "command[1]"), "/run/script-executor/script.sh");
    ck_assert_int_eq(cJSON_GetArraySize(jp(c, "command")), 2);
    ck_assert_str_eq(js(c, "args[1]"), "main");
    ck_assert_ptr_nonnull(p.secret);
    ck_assert_str_eq(p.secret_name, p.job_name);
    ck_assert_str_eq(js(p.secret, "data.script"), "ZWNobyBoaQo="); /* "echo hi\n": the spec's text */
    ck_assert_ptr_null(jp(p.secret, "data.stdin"));
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[0].key"), "script");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[0].path"), "script.sh");
    ck_assert_str_eq(js(volume(&p, "scripts"), "configMap.name"), "sre-scripts");
    ck_assert_ptr_null(jp(volume(&p, "scripts"), "configMap.items")); /* siblings too */
    ck_assert_int_eq((int)jnum(volume(&p, "scripts"), "configMap.defaultMode"), 0555);
    ck_assert(cJSON_IsFalse(jp(volume(&p, "scripts"), "configMap.optional")));
    ck_assert(cJSON_IsTrue(jp(mount_at(&p, "/scripts"), "readOnly")));
    ck_assert(cJSON_IsTrue(jp(mount_at(&p, "/run/script-executor"), "readOnly")));
    ck_assert_str_eq(label(p.job, "metadata.annotations", SX_K8S_ANN_SCRIPT_PATH),
                     "/scripts/check-db-lag.sh");
    ck_assert_str_eq(label(p.job, "metadata.annotations", SX_K8S_ANN_SCRIPT_HASH),
                     "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    char *notes = cJSON_PrintUnformatted(p.notes);
    ck_assert_msg(strstr(notes, "key check-db-lag.sh of ConfigMap sre-scripts") != NULL, "%s", notes);
    free(notes);
    sx_k8s_plan_free(&p);
    /* a bare key is relative to /scripts; stdin joins the script in the Secret */
    build_ok(&f, "{\"script_path\": \"x.py\", \"interpreter\": \"python3\", \"stdin\": \"in\"}", &p);
    ck_assert_str_eq(js(p.secret, "data.stdin"), "aW4=");
    ck_assert_str_eq(js(p.secret, "data.script"), "ZWNobyBoaQo=");
    ck_assert_str_eq(js(container(&p), "command[4]"), "/run/script-executor/script.py");
    ck_assert_str_eq(js(volume(&p, "script"), "secret.items[1].key"), "stdin");
    ck_assert_str_eq(label(p.job, "metadata.annotations", SX_K8S_ANN_SCRIPT_PATH), "x.py");
    sx_k8s_plan_free(&p);
    refused(&f, "{\"script_path\": \"/etc/passwd\"}", "invalid_parameter",
            "with.script_path '/etc/passwd' is outside /scripts");
    refused(&f, "{\"script_path\": \"/scripts/a/b.sh\"}", "invalid_parameter", "subdirectory");
    refused(&f, "{\"script_path\": \"/scripts/..\"}", "invalid_parameter", "'..'");
    refused(&f, "{\"script_path\": \"/scripts/../etc/passwd\"}", "invalid_parameter", "'..'");
    refused(&f, "{\"script_path\": \"../x.sh\"}", "invalid_parameter", "'..'");
    refused(&f, "{\"script_path\": \"/scriptsx/a.sh\"}", "invalid_parameter", "outside /scripts");
    refused(&f, "{\"script_path\": \"/scripts/a b.sh\"}", "invalid_parameter", "ConfigMap sre-scripts");
    fx_close(&f);
}
END_TEST

START_TEST(script_key_of_a_path)
{
    const char *why;
    ck_assert_str_eq(sx_k8s_script_key("/scripts/check.sh", &why), "check.sh");
    ck_assert_ptr_null(why);
    ck_assert_str_eq(sx_k8s_script_key("check.sh", &why), "check.sh");
    ck_assert_str_eq(sx_k8s_script_key("/scripts/.hidden_1-x", &why), ".hidden_1-x");
    static const char *const bad[][2] = {
        {"", "empty"}, {"/scripts/..", "'..'"}, {"..", "'..'"}, {"/scripts/../../etc/passwd", "'..'"},
        {"a/../b", "'..'"}, {"/etc/passwd", "outside"}, {"/scripts", "outside"},
        {"/scripts-other/x", "outside"}, {"/", "outside"}, {"/scripts/", "not /scripts/<key"},
        {"/scripts/a/b", "subdirectory"}, {"a/b", "subdirectory"}, {"/scripts/.", "not /scripts/<key"},
        {"/scripts/a:b", "not /scripts/<key"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(sx_k8s_script_key(bad[i][0], &why) == NULL, "accepted '%s'", bad[i][0]);
        ck_assert_msg(why && strstr(why, bad[i][1]), "'%s': %s", bad[i][0], why ? why : "(null)");
    }
    ck_assert_ptr_null(sx_k8s_script_key(NULL, &why));
}
END_TEST

START_TEST(command_whitelist_and_with)
{
    fixture f;
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "command_whitelist: ['echo hi']\n", &err), 0);
    sx_k8s_plan p;
    build_ok(&f, "{\"inline_script\": \"  echo hi\\n\"}", &p);
    sx_k8s_plan_free(&p);
    refused(&f, "{\"inline_script\": \"rm -rf /\"}", "command_not_allowed", "command_whitelist");
    fx_close(&f);
    fx_default(&f);
    step s;
    step_init(&s, "{}");
    s.spec.params_json = "[1]";
    ck_assert_int_eq(sx_k8s_plan_build(&f.inst, &s.spec, &p, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    step_free(&s);
    fx_close(&f);
}
END_TEST

START_TEST(render_masks)
{
    fixture f;
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "default_env: {HTTP_PROXY: 'http://u:pw@proxy:3128'}\n",
                             &err), 0);
    sx_k8s_plan p;
    build_ok(&f, "{\"env\": {\"TOKEN\": \"s3cr3t-literal\"}, \"stdin\": \"stdin-secret\", "
                 "\"env_from_secret\": {\"DB\": {\"secret_name\": \"db\", \"key\": \"pw\"}}}", &p);
    cJSON *shown = sx_k8s_plan_shown(&p);
    char *text = cJSON_PrintUnformatted(shown);
    ck_assert_ptr_null(strstr(text, "s3cr3t-literal"));
    ck_assert_ptr_null(strstr(text, "u:pw@proxy"));
    ck_assert_ptr_null(strstr(text, js(p.secret, "data.stdin")));
    ck_assert_ptr_null(strstr(text, js(p.secret, "data.script")));
    ck_assert_ptr_nonnull(strstr(text, "\"TOKEN\""));
    ck_assert_str_eq(js(shown, "secret.data.stdin"), "********");
    ck_assert_str_eq(js(shown, "secret.data.script"), "********");
    ck_assert_str_eq(js(shown, "job.metadata.name"), p.job_name);
    ck_assert_str_eq(js(shown, "secrets_read[0].name"), "db");
    /* the rest is the Job as created: only values differ */
    cJSON *jc = cJSON_Duplicate(p.job, 1);
    cJSON *env = (cJSON *)jp(jc, "spec.template.spec.containers[0].env");
    cJSON *e;
    cJSON_ArrayForEach(e, env) if (cJSON_GetObjectItem(e, "value"))
        cJSON_ReplaceItemInObject(e, "value", cJSON_CreateString("********"));
    ck_assert(cJSON_Compare(jc, jp(shown, "job"), 1));
    cJSON_Delete(jc);
    free(text);
    cJSON_Delete(shown);
    /* the real objects keep the values */
    ck_assert_str_eq(js(env_var(&p, "TOKEN"), "value"), "s3cr3t-literal");
    sx_k8s_plan_free(&p);
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Options and their precedence                                          */
/* ------------------------------------------------------------------ */

static const char *const SECTIONS =
    "script_executor:\n"
    "  kubernetes:\n"
    "    namespace: opscontrolroom-system\n"
    "    service_account: script-executor-runner\n"
    "    job_defaults:\n"
    "      ttl_seconds_after_finished: 600\n"
    "      backoff_limit: 1\n"
    "    default_resources:\n"
    "      requests: {cpu: 200m}\n"
    "      limits: {memory: 512Mi}\n"
    "    max_resources:\n"
    "      limits: {cpu: 8000m, memory: 16Gi, ephemeral_storage: 50Gi}\n"
    "  image:\n"
    "    default_image: harbor.company.internal/sre/base:v1.0.0\n"
    "    default_image_pull_secret: harbor-credentials\n"
    "    default_image_pull_policy: Always\n"
    "    approved_images: ['harbor.company.internal/sre/*']\n"
    "  security:\n"
    "    max_script_size: 524288\n"
    "    run_as_user: 1000\n"
    "    fs_group: 2000\n"
    "    read_only_root_filesystem: true\n";

START_TEST(options_precedence)
{
    fixture f;
    sx_error err;
    /* built-in defaults */
    fx_default(&f);
    const sx_k8s_cfg *c = &f.inst.cfg;
    ck_assert_ptr_null(c->namespace_);
    ck_assert_str_eq(c->service_account, "script-executor-runner");
    ck_assert_int_eq((int)c->ttl_seconds_after_finished, 300);
    ck_assert_int_eq((int)c->backoff_limit, 0);
    ck_assert_int_eq((int)c->active_deadline_seconds, 1800);
    ck_assert_str_eq(c->default_resources.limits.cpu, "500m");
    ck_assert_str_eq(c->max_resources.limits.memory, "8Gi");
    ck_assert_ptr_null(c->max_resources.requests.cpu);
    ck_assert_int_eq((int)c->run_as_user, 65534);
    ck_assert_int_eq((int)c->run_as_group, 65534);
    ck_assert_int_eq((int)c->fs_group, 65534);
    ck_assert(c->run_as_non_root && c->read_only_root_filesystem && c->drop_all_capabilities);
    ck_assert(!c->allow_privilege_escalation);
    ck_assert_str_eq(c->seccomp_profile, "RuntimeDefault");
    ck_assert_str_eq(c->default_work_dir, "/workspace");
    ck_assert_int_eq((int)c->api_timeout_ms, 30000);
    ck_assert_int_eq((int)c->unschedulable_grace_ms, 30000);
    ck_assert_int_eq(c->log_mode, SX_K8S_LOG_AUTO);
    ck_assert(sx_k8s_label_value_ok(c->host_id) && c->host_id[0]);
    ck_assert_ptr_null(c->job_defaults_node_);
    cJSON *w = sx_k8s_weakened(c);
    ck_assert_int_eq(cJSON_GetArraySize(w), 0);
    cJSON_Delete(w);
    cJSON *oj = sx_k8s_options_json(c);
    ck_assert_str_eq(js(oj, "default_resources.limits.ephemeral_storage"), "1Gi");
    ck_assert_int_eq((int)jnum(oj, "job_defaults.backoff_limit"), 0);
    cJSON_Delete(oj);
    fx_close(&f);

    /* the sections as defaults */
    ck_assert_msg(fx_open(&f, SECTIONS, "{}", &err) == 0, "%s", err.message);
    c = &f.inst.cfg;
    ck_assert_str_eq(c->namespace_, "opscontrolroom-system");
    ck_assert_str_eq(c->image, "harbor.company.internal/sre/base:v1.0.0");
    ck_assert_str_eq(c->image_pull_secret, "harbor-credentials");
    ck_assert_str_eq(c->image_pull_policy, "Always");
    ck_assert_int_eq((int)c->ttl_seconds_after_finished, 600);
    ck_assert_int_eq((int)c->backoff_limit, 1);
    ck_assert_int_eq((int)c->active_deadline_seconds, 1800); /* built-in */
    ck_assert_str_eq(c->default_resources.requests.cpu, "200m");
    ck_assert_str_eq(c->default_resources.requests.memory, "64Mi"); /* built-in */
    ck_assert_str_eq(c->default_resources.limits.memory, "512Mi");
    ck_assert_str_eq(c->max_resources.limits.cpu, "8000m");
    ck_assert_int_eq((int)c->run_as_user, 1000);
    ck_assert_int_eq((int)c->fs_group, 2000);
    ck_assert_int_eq((int)c->run_as_group, 65534);
    sx_k8s_plan p;
    build_ok(&f, "{\"resources\": {\"limits\": {\"cpu\": \"6\"}}}", &p); /* max raised */
    ck_assert_str_eq(js(p.job, "metadata.namespace"), "opscontrolroom-system");
    ck_assert_int_eq((int)jnum(pod(&p), "securityContext.runAsUser"), 1000);
    sx_k8s_plan_free(&p);
    fx_close(&f);

    /* the executor's entry wins, key by key in nested maps */
    ck_assert_msg(fx_open(&f, SECTIONS,
                          "namespace: team-a\n"
                          "image: other/image:2\n"
                          "run_as_user: 3000\n"
                          "job_defaults: {backoff_limit: 3}\n"
                          "default_resources: {limits: {memory: 1Gi, cpu: ''}}\n"
                          "max_resources: {limits: {cpu: '2'}}\n", &err) == 0, "%s", err.message);
    c = &f.inst.cfg;
    ck_assert_str_eq(c->namespace_, "team-a");
    ck_assert_str_eq(c->image, "other/image:2");
    ck_assert_str_eq(c->image_pull_secret, "harbor-credentials");
    ck_assert_int_eq((int)c->run_as_user, 3000);
    ck_assert_int_eq((int)c->backoff_limit, 3);
    ck_assert_int_eq((int)c->ttl_seconds_after_finished, 600);
    ck_assert_str_eq(c->default_resources.limits.memory, "1Gi");
    ck_assert_ptr_null(c->default_resources.limits.cpu); /* "" removes a default */
    ck_assert_str_eq(c->default_resources.requests.cpu, "200m");
    ck_assert_str_eq(c->max_resources.limits.cpu, "2");
    ck_assert_str_eq(c->max_resources.limits.memory, "16Gi");
    build_ok(&f, "{}", &p);
    ck_assert_ptr_null(jp(container(&p), "resources.limits.cpu"));
    sx_k8s_plan_free(&p);
    fx_close(&f);
}
END_TEST

START_TEST(options_refusals)
{
    options_refused(NULL, "{}", "no default image");
    options_refused(NULL, ENTRY_MIN "in_cluster: true\nkubeconfig: /x\n", "exclude each other");
    options_refused(NULL, ENTRY_MIN "namespace: Bad_NS\n", "namespace: 'Bad_NS'");
    options_refused(NULL, ENTRY_MIN "image_pull_policy: Often\n", "image_pull_policy");
    options_refused(NULL, ENTRY_MIN "job_defaults: {backoff_limit: 4}\n", "job_defaults.backoff_limit");
    options_refused(NULL, ENTRY_MIN "job_defaults: {retries: 4}\n", "unknown key 'retries'");
    options_refused(NULL, ENTRY_MIN "job_defaults: 5\n", "expected a map");
    options_refused(NULL, ENTRY_MIN "default_resources: {limits: {cpu: lots}}\n",
                    "default_resources.limits.cpu: 'lots'");
    options_refused(NULL, ENTRY_MIN "default_resources: {limits: {gpu: 1}}\n", "unknown key 'gpu'");
    options_refused(NULL, ENTRY_MIN "default_resources: {maximum: {}}\n", "unknown key 'maximum'");
    options_refused(NULL, ENTRY_MIN "default_resources: {limits: {cpu: '5'}}\n",
                    "default_resources.limits.cpu: is above max_resources");
    options_refused(NULL, ENTRY_MIN "default_resources: {requests: {memory: 1Gi}}\n",
                    "default_resources.requests.memory: is above default_resources.limits");
    options_refused(NULL, ENTRY_MIN "run_as_user: 0\n", "contradicts run_as_non_root");
    options_refused(NULL, ENTRY_MIN "run_as_user: -2\n", "run_as_user");
    options_refused(NULL, ENTRY_MIN "run_as_user: lots\n", "run_as_user");
    options_refused(NULL, ENTRY_MIN "seccomp_profile: none\n", "seccomp_profile");
    options_refused(NULL, ENTRY_MIN "seccomp_profile: localhost/../x\n", "seccomp_profile");
    options_refused(NULL, ENTRY_MIN "default_work_dir: /tmp/w\n", "default_work_dir");
    options_refused(NULL, ENTRY_MIN "default_env: {'1A': x}\n", "default_env");
    options_refused(NULL, ENTRY_MIN "host_id: 'two words'\n", "host_id");
    options_refused(NULL, ENTRY_MIN "log_streams: both\n", "log_streams");
    options_refused(NULL, ENTRY_MIN "tmp_size_limit: big\n", "tmp_size_limit");
    options_refused(NULL, ENTRY_MIN "scripts_configmap: Not_Valid\n", "scripts_configmap");
    options_refused(NULL, ENTRY_MIN "allowed_service_accounts: [A_B]\n", "allowed_service_accounts");
    options_refused(NULL, ENTRY_MIN "nmespace: x\n", "unknown key 'nmespace'");
    options_refused(NULL, ENTRY_MIN "api_timeout: 10ms\n", "api_timeout");
    /* bad values in the sections are reported where they are written */
    options_refused("script_executor:\n  kubernetes:\n    namespace: [a]\n", ENTRY_MIN,
                    "script_executor.kubernetes.namespace");
    options_refused("script_executor:\n  kubernetes:\n    nmespace: a\n", ENTRY_MIN,
                    "unknown key 'nmespace' in script_executor.kubernetes");
    options_refused("script_executor:\n  kubernetes:\n    job_defaults: {backoff_limit: x}\n",
                    ENTRY_MIN, "script_executor.kubernetes.job_defaults.backoff_limit");
    options_refused("script_executor:\n  security:\n    run_as_user: nobody\n", ENTRY_MIN,
                    "script_executor.security.run_as_user (line 3)");
    options_refused("script_executor:\n  image:\n    default_image_pull_policy: [x]\n", "{}",
                    "script_executor.image.default_image_pull_policy");
    /* the executor's name labels its Jobs */
    fixture f;
    sx_error err;
    memset(&f, 0, sizeof f);
    ck_assert_int_eq(sx_cfg_load_string(ENTRY_MIN, "e.yaml", &f.entry, &err), 0);
    f.plugin.ctx = sx_mock_ctx();
    f.plugin.host = sx_mock_host_api();
    f.inst.plugin = &f.plugin;
    f.inst.name = strdup("bad name");
    ck_assert_int_eq(sx_k8s_options_apply(&f.inst, f.entry, &err), -1);
    ck_assert_msg(strstr(err.message, "label value") != NULL, "%s", err.message);
    fx_close(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Every parameter, the spec's examples, everything at once: validate-job */
/* ------------------------------------------------------------------ */

/* One step per parameter (and combinations); each Job must pass. */
static const char *const PARAM_STEPS[] = {
    "{}",
    "{\"image\": \"busybox:1.36\", \"image_pull_policy\": \"Never\", \"image_pull_secret\": \"regcred\"}",
    "{\"interpreter\": \"python3\", \"args\": [\"--verbose\", \"--dry-run\", \"$(X)\"]}",
    "{\"interpreter\": \"ruby\", \"working_dir\": \"/tmp\"}",
    "{\"timeout\": \"10m\", \"ttl_seconds_after_finished\": 3600, \"backoff_limit\": 3}",
    "{\"env\": {\"AWS_REGION\": \"us-east-1\", \"LOG_LEVEL\": \"debug\", \"my.dotted-name\": \"x\"}}",
    "{\"env_from_secret\": {\"DB_PASSWORD\": {\"secret_name\": \"postgres-credentials\", \"key\": \"password\"}}}",
    "{\"env_from_configmap\": {\"APP_CONFIG\": {\"configmap_name\": \"app-settings\", \"key\": \"config.json\", \"optional\": true}}}",
    "{\"secret_env_all\": [\"database-credentials\", \"api-tokens\"]}",
    "{\"configmap_env_all\": [\"app-config\", \"feature-flags\"]}",
    "{\"volumes_from_secret\": [{\"secret_name\": \"tls-certs\", \"mount_path\": \"/etc/certs\", \"optional\": false},"
    " {\"secret_name\": \"ssh-keys\", \"mount_path\": \"/home/user/.ssh\", \"items\": [{\"key\": \"id_rsa\", \"path\": \"id_rsa\", \"mode\": 384}]}]}",
    "{\"volumes_from_configmap\": [{\"configmap_name\": \"nginx-config\", \"mount_path\": \"/etc/nginx\", \"default_mode\": 420},"
    " {\"configmap_name\": \"application-properties\", \"mount_path\": \"/config/app.properties\", \"sub_path\": \"app.properties\"}]}",
    "{\"node_selector\": {\"workload-type\": \"batch\", \"disk-type\": \"ssd\"}}",
    "{\"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"batch-jobs\", \"effect\": \"NoSchedule\"},"
    " {\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"},"
    " {\"key\": \"node.kubernetes.io/not-ready\", \"operator\": \"Exists\", \"effect\": \"NoExecute\", \"toleration_seconds\": 60}]}",
    "{\"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": [{\"key\": \"zone\", \"operator\": \"In\", \"values\": [\"us-east-1a\"]}]}},"
    " \"pod_affinity\": {\"preferred\": [{\"weight\": 20, \"match_labels\": {\"app\": \"cache\"}}]},"
    " \"pod_anti_affinity\": {\"required\": [{\"match_expressions\": [{\"key\": \"app\", \"operator\": \"Exists\"}], \"topology_key\": \"kubernetes.io/hostname\"}]}}}",
    "{\"priority_class_name\": \"high-priority\"}",
    "{\"resources\": {\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\", \"ephemeral_storage\": \"100Mi\"},"
    " \"limits\": {\"cpu\": \"1000m\", \"memory\": \"1Gi\", \"ephemeral_storage\": \"2Gi\"}}}",
    "{\"resources\": {\"requests\": {\"cpu\": 3}}}",
    "{\"service_account\": \"custom-runner\"}",
    "{\"stdin\": \"{\\\"key\\\": \\\"value\\\"}\"}",
    "{\"labels\": {\"team\": \"platform\", \"cost-center\": \"engineering\"}, \"annotations\": {\"description\": \"Database maintenance\"}}",
    NULL};

START_TEST(param_jobs_validate)
{
    fixture f;
    fx_default(&f);
    vdir v;
    vdir_open(&v);
    int n = 0;
    for (const char *const *s = PARAM_STEPS; *s; s++, n++) {
        sx_k8s_plan p;
        build_ok(&f, *s, &p);
        char name[32];
        snprintf(name, sizeof name, "param-%02d", n);
        vdir_add(&v, name, p.job);
        sx_k8s_plan_free(&p);
    }
    fx_close(&f);
    /* script_path needs its ConfigMap */
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "scripts_configmap: sre-scripts\n", &err), 0);
    sx_k8s_plan p;
    build_ok(&f, "{\"script_path\": \"/scripts/check-db-lag.sh\"}", &p);
    vdir_add(&v, "param-script-path", p.job);
    sx_k8s_plan_free(&p);
    fx_close(&f);
    ck_assert_int_eq(v.n, n + 1);
    vdir_assert_ok(&v);
    vdir_close(&v);
}
END_TEST

/* The spec's six examples, image_ref replaced by image (no catalog yet). */
static const char *const EXAMPLES[][2] = {
    {"example-1",
     "{\"image\": \"harbor.company.internal/sre/base:v1.0.0\","
     " \"inline_script\": \"#!/bin/bash\\nset -euo pipefail\\necho \\\"Checking API at $API_URL\\\"\\n"
     "STATUS=$(curl -s -o /dev/null -w \\\"%{http_code}\\\" \\\"$API_URL/health\\\")\\n\","
     " \"env\": {\"API_URL\": \"https://api.company.com\"}, \"timeout\": \"30s\"}"},
    {"example-2",
     "{\"image\": \"harbor.company.internal/sre/postgres:15\","
     " \"inline_script\": \"#!/bin/bash\\nset -euo pipefail\\npsql -h \\\"$DB_HOST\\\" -U \\\"$DB_USER\\\" -d \\\"$DB_NAME\\\" -c \\\"VACUUM ANALYZE;\\\"\\n\","
     " \"env_from_secret\": {\"DB_PASSWORD\": {\"secret_name\": \"postgres-credentials\", \"key\": \"password\"}},"
     " \"env\": {\"DB_HOST\": \"postgres.database.svc.cluster.local\", \"DB_USER\": \"admin\", \"DB_NAME\": \"production\"},"
     " \"timeout\": \"10m\"}"},
    {"example-3",
     "{\"image\": \"harbor.company.internal/sre/terraform:1.7.5\","
     " \"inline_script\": \"#!/bin/bash\\nset -euo pipefail\\ncd /workspace/terraform\\nterraform init\\n\","
     " \"volumes_from_configmap\": [{\"configmap_name\": \"terraform-code\", \"mount_path\": \"/workspace/terraform\"}],"
     " \"volumes_from_secret\": [{\"secret_name\": \"aws-credentials\", \"mount_path\": \"/root/.aws\","
     "   \"items\": [{\"key\": \"credentials\", \"path\": \"credentials\", \"mode\": 384}]}],"
     " \"node_selector\": {\"workload-type\": \"terraform\", \"disk-type\": \"ssd\"},"
     " \"resources\": {\"requests\": {\"cpu\": \"500m\", \"memory\": \"512Mi\"}, \"limits\": {\"cpu\": \"2000m\", \"memory\": \"2Gi\"}},"
     " \"timeout\": \"15m\"}"},
    {"example-4a",
     "{\"image\": \"harbor.company.internal/sre/aws:2\", \"inline_script\": \"#!/bin/bash\\naws s3 ls s3://prod-backups/ --recursive | tail -10\\n\","
     " \"secret_env_all\": [\"aws-credentials\"], \"node_selector\": {\"cloud-provider\": \"aws\"},"
     " \"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"batch-jobs\", \"effect\": \"NoSchedule\"}]}"},
    {"example-4b",
     "{\"image\": \"harbor.company.internal/sre/gcp:1\", \"inline_script\": \"#!/bin/bash\\ngsutil ls gs://prod-backups/ | tail -10\\n\","
     " \"secret_env_all\": [\"gcp-credentials\"], \"node_selector\": {\"cloud-provider\": \"gcp\"},"
     " \"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"batch-jobs\", \"effect\": \"NoSchedule\"}]}"},
    {"example-5",
     "{\"image\": \"harbor.company.internal/data/processor:v2.1.0\", \"image_pull_secret\": \"harbor-credentials\","
     " \"interpreter\": \"python3\", \"inline_script\": \"#!/usr/bin/env python3\\nimport os\\nprint('x')\\n\","
     " \"volumes_from_configmap\": [{\"configmap_name\": \"data-processing-config\", \"mount_path\": \"/config\"}],"
     " \"env\": {\"PROCESSOR_MODE\": \"batch\", \"LOG_LEVEL\": \"info\"},"
     " \"env_from_secret\": {\"API_KEY\": {\"secret_name\": \"api-credentials\", \"key\": \"key\"}},"
     " \"configmap_env_all\": [\"feature-flags\"],"
     " \"node_selector\": {\"node-type\": \"compute-optimized\", \"gpu\": \"true\"},"
     " \"tolerations\": [{\"key\": \"gpu\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"},"
     "   {\"key\": \"high-memory\", \"operator\": \"Equal\", \"value\": \"true\", \"effect\": \"NoSchedule\"}],"
     " \"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": [{\"key\": \"zone\", \"operator\": \"In\", \"values\": [\"us-east-1a\", \"us-east-1b\"]}]}},"
     "   \"pod_anti_affinity\": {\"preferred\": [{\"weight\": 100, \"pod_affinity_term\": {\"label_selector\": {\"match_expressions\":"
     "     [{\"key\": \"app\", \"operator\": \"In\", \"values\": [\"database\"]}]}, \"topology_key\": \"kubernetes.io/hostname\"}}]}},"
     " \"priority_class_name\": \"high-priority-batch\","
     " \"resources\": {\"requests\": {\"cpu\": \"2000m\", \"memory\": \"4Gi\"}, \"limits\": {\"cpu\": \"8000m\", \"memory\": \"16Gi\", \"ephemeral_storage\": \"50Gi\"}},"
     " \"timeout\": \"2h\","
     " \"labels\": {\"app\": \"data-processor\", \"team\": \"data-engineering\", \"cost-center\": \"analytics\"},"
     " \"annotations\": {\"description\": \"Nightly data processing job\", \"owner\": \"data-team@company.com\"}}"},
    {"example-6",
     "{\"image\": \"harbor.company.internal/sre/aws:2\","
     " \"inline_script\": \"#!/bin/bash\\nset -euo pipefail\\nDAYS_OLD=90\\nBUCKET=\\\"s3://prod-backups\\\"\\n"
     "CUTOFF_DATE=$(date -d \\\"$DAYS_OLD days ago\\\" +%Y-%m-%d)\\necho \\\"Deleting backups older than $CUTOFF_DATE\\\"\\n\","
     " \"secret_env_all\": [\"aws-credentials\"], \"timeout\": \"30m\"}"},
};

/* For example 5 (2h timeout, 8 CPUs, 16Gi): an executor that allows it. */
#define ENTRY_BIG ENTRY_MIN                                                   \
    "job_defaults: {active_deadline_seconds: 7200}\n"                          \
    "max_resources: {limits: {cpu: '8', memory: 16Gi, ephemeral_storage: 50Gi}}\n"

START_TEST(spec_examples_validate)
{
    fixture f;
    sx_error err;
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_BIG, &err), 0);
    vdir v;
    vdir_open(&v);
    for (size_t i = 0; i < sizeof EXAMPLES / sizeof EXAMPLES[0]; i++) {
        sx_k8s_plan p;
        step s;
        step_init(&s, EXAMPLES[i][1]);
        /* script.run turns 2h into its timeout only up to max_timeout; the
         * builder is handed what the step type allows */
        int rc = sx_k8s_plan_build(&f.inst, &s.spec, &p, &err);
        ck_assert_msg(rc == 0, "%s: %s: %s", EXAMPLES[i][0], err.code, err.message);
        vdir_add(&v, EXAMPLES[i][0], p.job);
        if (p.secret) {
            /* the script reached the Secret, not the Job */
            char *job = cJSON_PrintUnformatted(p.job);
            ck_assert_ptr_null(strstr(job, "set -euo pipefail"));
            free(job);
        }
        sx_k8s_plan_free(&p);
        step_free(&s);
    }
    vdir_assert_ok(&v);
    vdir_close(&v);
    fx_close(&f);
    /* example 5 with the spec's max_resources is refused, naming the limit */
    fx_default(&f);
    step s;
    step_init(&s, EXAMPLES[5][1]);
    s.spec.timeout_ms = 30 * 60 * 1000;
    sx_k8s_plan p;
    ck_assert_int_eq(sx_k8s_plan_build(&f.inst, &s.spec, &p, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_msg(strstr(err.message, "max_resources.limits.cpu (4000m)") != NULL, "%s",
                  err.message);
    step_free(&s);
    fx_close(&f);
}
END_TEST

static const char *const EVERYTHING =
    "{\"image\": \"harbor.company.internal/sre/aws-tools:v1.0.0\", \"image_pull_policy\": \"Always\","
    " \"image_pull_secret\": \"harbor-credentials\", \"interpreter\": \"python3\","
    " \"inline_script\": \"import sys\\nprint(sys.stdin.read())\\n\","
    " \"args\": [\"--verbose\", \"$(NOT_EXPANDED)\"], \"working_dir\": \"/workspace/run\", \"timeout\": \"20m\","
    " \"env\": {\"AWS_REGION\": \"us-east-1\"},"
    " \"env_from_secret\": {\"DB_PASSWORD\": {\"secret_name\": \"postgres-credentials\", \"key\": \"password\", \"optional\": true}},"
    " \"env_from_configmap\": {\"APP_CONFIG\": {\"configmap_name\": \"app-settings\", \"key\": \"config.json\"}},"
    " \"secret_env_all\": [\"api-tokens\"], \"configmap_env_all\": [\"feature-flags\"],"
    " \"volumes_from_secret\": [{\"secret_name\": \"tls-certs\", \"mount_path\": \"/etc/certs\", \"default_mode\": 256,"
    "   \"items\": [{\"key\": \"tls.crt\", \"path\": \"tls.crt\"}, {\"key\": \"tls.key\", \"path\": \"private/tls.key\", \"mode\": 256}]}],"
    " \"volumes_from_configmap\": [{\"configmap_name\": \"nginx-config\", \"mount_path\": \"/etc/nginx/nginx.conf\", \"sub_path\": \"nginx.conf\", \"optional\": true}],"
    " \"node_selector\": {\"workload-type\": \"batch\"},"
    " \"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"batch-jobs\", \"effect\": \"NoSchedule\"}],"
    " \"affinity\": {\"node_affinity\": {\"required\": {\"match_expressions\": [{\"key\": \"zone\", \"operator\": \"In\", \"values\": [\"a\", \"b\"]}]},"
    "   \"preferred\": [{\"weight\": 5, \"preference\": {\"match_expressions\": [{\"key\": \"ssd\", \"operator\": \"Exists\"}]}}]},"
    "   \"pod_affinity\": {\"required\": [{\"label_selector\": {\"match_labels\": {\"app\": \"cache\"}}, \"topology_key\": \"topology.kubernetes.io/zone\"}]},"
    "   \"pod_anti_affinity\": {\"preferred\": [{\"weight\": 100, \"match_expressions\": [{\"key\": \"app\", \"operator\": \"In\", \"values\": [\"database\"]}]}]}},"
    " \"priority_class_name\": \"high-priority\","
    " \"resources\": {\"requests\": {\"cpu\": \"250m\", \"memory\": \"256Mi\", \"ephemeral_storage\": \"500Mi\"},"
    "   \"limits\": {\"cpu\": \"2\", \"memory\": \"2Gi\", \"ephemeral_storage\": \"4Gi\"}},"
    " \"service_account\": \"custom-runner\", \"ttl_seconds_after_finished\": 3600, \"backoff_limit\": 2,"
    " \"stdin\": \"{\\\"key\\\": \\\"value\\\"}\","
    " \"labels\": {\"team\": \"platform\", \"cost-center\": \"engineering\"},"
    " \"annotations\": {\"description\": \"Everything at once\"}}";

START_TEST(everything_validates)
{
    fixture f;
    fx_default(&f);
    sx_k8s_plan p;
    build_ok(&f, EVERYTHING, &p);
    const cJSON *c = container(&p);
    /* every parameter is somewhere in the Job */
    ck_assert_str_eq(js(c, "image"), "harbor.company.internal/sre/aws-tools:v1.0.0");
    ck_assert_str_eq(js(c, "command[3]"), "python3");
    ck_assert_str_eq(js(c, "args[1]"), "$$(NOT_EXPANDED)");
    ck_assert_str_eq(js(c, "workingDir"), "/workspace/run");
    ck_assert_int_eq((int)jnum(p.job, "spec.activeDeadlineSeconds"), 1201);
    ck_assert_int_eq((int)jnum(p.job, "spec.backoffLimit"), 2);
    ck_assert_int_eq((int)jnum(p.job, "spec.ttlSecondsAfterFinished"), 3600);
    ck_assert_int_eq(cJSON_GetArraySize(jp(c, "env")), 3);
    ck_assert_int_eq(cJSON_GetArraySize(jp(c, "envFrom")), 2);
    ck_assert_str_eq(js(volume(&p, "secret-0"), "secret.items[1].path"), "private/tls.key");
    ck_assert_str_eq(js(mount_at(&p, "/etc/nginx/nginx.conf"), "subPath"), "nginx.conf");
    ck_assert_ptr_nonnull(jp(pod(&p), "affinity.podAffinity"));
    ck_assert_str_eq(js(pod(&p), "priorityClassName"), "high-priority");
    ck_assert_str_eq(js(pod(&p), "serviceAccountName"), "custom-runner");
    ck_assert_str_eq(js(p.secret, "data.stdin"), "eyJrZXkiOiAidmFsdWUifQ==");
    ck_assert_str_eq(label(p.job, "metadata.labels", "team"), "platform");
    vdir v;
    vdir_open(&v);
    vdir_add(&v, "everything", p.job);
    vdir_assert_ok(&v);
    vdir_close(&v);
    sx_k8s_plan_free(&p);
    fx_close(&f);
}
END_TEST

/* The negative control: the same Job with weakened options must fail the
 * restricted profile (proving the validation bites), and describe lists
 * each weakening. */
START_TEST(weakened_options_flagged)
{
    fixture f;
    sx_error err;
    int rc = fx_open(&f, NULL, ENTRY_MIN
                     "run_as_non_root: false\nrun_as_user: 0\nrun_as_group: 0\n"
                     "allow_privilege_escalation: true\ndrop_all_capabilities: false\n"
                     "read_only_root_filesystem: false\nseccomp_profile: Unconfined\n", &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    cJSON *w = sx_k8s_weakened(&f.inst.cfg);
    char *wt = cJSON_PrintUnformatted(w);
    ck_assert_int_eq(cJSON_GetArraySize(w), 7);
    ck_assert_ptr_nonnull(strstr(wt, "run_as_user: 0"));
    ck_assert_ptr_nonnull(strstr(wt, "seccomp_profile: Unconfined"));
    ck_assert_ptr_nonnull(strstr(wt, "allow_privilege_escalation: true"));
    free(wt);
    cJSON_Delete(w);
    sx_k8s_plan p;
    build_ok(&f, "{}", &p);
    ck_assert(cJSON_IsFalse(jp(pod(&p), "securityContext.runAsNonRoot")));
    ck_assert_int_eq((int)jnum(pod(&p), "securityContext.runAsUser"), 0);
    ck_assert_ptr_null(jp(container(&p), "securityContext.capabilities"));
    vdir v;
    vdir_open(&v);
    vdir_add(&v, "weakened", p.job);
    char *out = NULL;
    int st = vdir_run(&v, &out, NULL);
    ck_assert_msg(st == 1, "validate-job accepted a weakened Job (%d):\n%s", st, out);
    ck_assert_ptr_nonnull(strstr(out, "FAIL: "));
    ck_assert_ptr_nonnull(strstr(out, "pss-restricted"));
    ck_assert_ptr_nonnull(strstr(out, "runAsNonRoot"));
    ck_assert_ptr_nonnull(strstr(out, "allowPrivilegeEscalation"));
    ck_assert_ptr_nonnull(strstr(out, "capabilities.drop"));
    ck_assert_ptr_nonnull(strstr(out, "seccomp"));
    free(out);
    /* with the baseline profile only seccomp Unconfined is left */
    st = vdir_run(&v, &out, "--profile baseline");
    ck_assert_msg(st == 1 && strstr(out, "Unconfined") != NULL, "%s", out);
    free(out);
    vdir_close(&v);
    sx_k8s_plan_free(&p);
    fx_close(&f);
    /* run_as_user -1 (the image's user) is weakened too, and still valid */
    ck_assert_int_eq(fx_open(&f, NULL, ENTRY_MIN "run_as_user: -1\nfs_group: -1\n"
                                       "seccomp_profile: localhost/profiles/audit.json\n", &err), 0);
    w = sx_k8s_weakened(&f.inst.cfg);
    ck_assert_int_eq(cJSON_GetArraySize(w), 1);
    cJSON_Delete(w);
    build_ok(&f, "{}", &p);
    ck_assert_ptr_null(jp(pod(&p), "securityContext.runAsUser"));
    ck_assert_ptr_null(jp(pod(&p), "securityContext.fsGroup"));
    ck_assert_str_eq(js(pod(&p), "securityContext.seccompProfile.type"), "Localhost");
    ck_assert_str_eq(js(pod(&p), "securityContext.seccompProfile.localhostProfile"),
                     "profiles/audit.json");
    vdir_open(&v);
    vdir_add(&v, "image-user", p.job);
    vdir_assert_ok(&v);
    vdir_close(&v);
    sx_k8s_plan_free(&p);
    fx_close(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k8s_job");
    TCase *t = tcase_create("builder");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, validators);
    tcase_add_test(t, names_and_label_values);
    tcase_add_test(t, default_job);
    tcase_add_test(t, param_image);
    tcase_add_test(t, param_interpreter_args_working_dir);
    tcase_add_test(t, param_timeout_job_settings);
    tcase_add_test(t, param_env);
    tcase_add_test(t, param_env_from);
    tcase_add_test(t, param_volumes);
    tcase_add_test(t, param_node_selector_priority_service_account);
    tcase_add_test(t, param_tolerations);
    tcase_add_test(t, param_affinity);
    tcase_add_test(t, param_resources);
    tcase_add_test(t, param_stdin);
    tcase_add_test(t, param_labels_annotations);
    tcase_add_test(t, param_script_path);
    tcase_add_test(t, script_key_of_a_path);
    tcase_add_test(t, command_whitelist_and_with);
    tcase_add_test(t, render_masks);
    tcase_add_test(t, options_precedence);
    tcase_add_test(t, options_refusals);
    tcase_add_test(t, param_jobs_validate);
    tcase_add_test(t, spec_examples_validate);
    tcase_add_test(t, everything_validates);
    tcase_add_test(t, weakened_options_flagged);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
