/*
 * test_image_catalog.c - unit tests of the image_catalog plugin
 * (plugins/image_catalog): its modules compiled in (glob matching, image
 * names, rules and resolution, the catalog file, the store), and the real
 * .so (SX_IMAGE_CATALOG_SO) driven through dlopen + sx_plugin_entry with
 * the mock host of tests/support: config, describe, reload on file change,
 * a broken file keeping the old catalog, resolves racing reloads.
 */
#define _GNU_SOURCE
#include "config.h"
#include "img.h"
#include "mock_host.h"
#include "sx_check_main.h"
#include "sx/sx_catalog.h"
#include "sx/sx_util.h"

#include <cjson/cJSON.h>
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SX_IMAGE_CATALOG_SO
#error "SX_IMAGE_CATALOG_SO must name the plugin to test"
#endif
#ifndef SX_SOURCE_DIR
#error "SX_SOURCE_DIR must name the source tree (configs/image-catalog.yaml)"
#endif

#define SPEC_CATALOG SX_SOURCE_DIR "/configs/image-catalog.yaml"

/* The spec's `image:` rules (configs/script-executor.yaml). */
static const char *const spec_approved[] = {
    "harbor.company.internal/sre/*", "harbor.company.internal/engineering/*",
    "gcr.io/company-prod/*", "hashicorp/terraform:1.7.*"};
static const char *const spec_blocked[] = {"docker.io/*", "quay.io/*", "ghcr.io/*"};

static sx_img_rules spec_rules(void)
{
    sx_img_rules r = {0};
    r.default_image = "harbor.company.internal/sre/base:v1.0.0";
    r.default_pull_secret = "harbor-credentials";
    r.default_pull_policy = "IfNotPresent";
    r.approved.n = 4;
    r.approved.v = (char **)spec_approved;
    r.blocked.n = 3;
    r.blocked.v = (char **)spec_blocked;
    return r;
}

/* ================================================================ glob */

START_TEST(glob_literals_and_wildcards)
{
    ck_assert_int_eq(sx_img_glob_match("busybox", "busybox"), 1);
    ck_assert_int_eq(sx_img_glob_match("busybox", "busybox2"), 0);
    ck_assert_int_eq(sx_img_glob_match("busybox", "busybo"), 0);
    ck_assert_int_eq(sx_img_glob_match("*", ""), 1);
    ck_assert_int_eq(sx_img_glob_match("*", "anything/at:all"), 1);
    ck_assert_int_eq(sx_img_glob_match("", ""), 1);
    ck_assert_int_eq(sx_img_glob_match("", "x"), 0);
    ck_assert_int_eq(sx_img_glob_match("a?c", "abc"), 1);
    ck_assert_int_eq(sx_img_glob_match("a?c", "ac"), 0);
    ck_assert_int_eq(sx_img_glob_match("a*b*c", "a-x-b-y-c"), 1);
    ck_assert_int_eq(sx_img_glob_match("a*b*c", "a-x-c-y-b"), 0);
    ck_assert_int_eq(sx_img_glob_match("**x", "abx"), 1);
    ck_assert_int_eq(sx_img_glob_match("*x*", "x"), 1);
    /* escapes: a literal star and question mark */
    ck_assert_int_eq(sx_img_glob_match("a\\*", "a*"), 1);
    ck_assert_int_eq(sx_img_glob_match("a\\*", "ab"), 0);
    ck_assert_int_eq(sx_img_glob_match("a\\?", "a?"), 1);
    ck_assert_int_eq(sx_img_glob_match("a\\?", "ab"), 0);
    /* case matters */
    ck_assert_int_eq(sx_img_glob_match("Busybox", "busybox"), 0);
}
END_TEST

START_TEST(glob_star_crosses_slash)
{
    /* the spec's examples */
    const char *sre = "harbor.company.internal/sre/*";
    ck_assert_int_eq(sx_img_glob_match(sre, "harbor.company.internal/sre/base:v1.0.0"), 1);
    ck_assert_int_eq(sx_img_glob_match(sre, "harbor.company.internal/sre/team/tool:v2"), 1);
    ck_assert_int_eq(sx_img_glob_match(sre, "harbor.company.internal/sre"), 0);
    ck_assert_int_eq(sx_img_glob_match(sre, "harbor.company.internal/srex/base:v1"), 0);
    ck_assert_int_eq(sx_img_glob_match(sre, "evil.example/harbor.company.internal/sre/x"), 0);
    ck_assert_int_eq(sx_img_glob_match(sre, "harbor.company.internal.evil.example/sre/x"), 0);
    ck_assert_int_eq(sx_img_glob_match("docker.io/*", "docker.io/library/postgres:16"), 1);
    const char *tf = "hashicorp/terraform:1.7.*";
    ck_assert_int_eq(sx_img_glob_match(tf, "hashicorp/terraform:1.7.0"), 1);
    ck_assert_int_eq(sx_img_glob_match(tf, "hashicorp/terraform:1.7.5-alpine"), 1);
    ck_assert_int_eq(sx_img_glob_match(tf, "hashicorp/terraform:1.8.0"), 0);
    ck_assert_int_eq(sx_img_glob_match(tf, "hashicorp/terraform:1.70"), 0);
}
END_TEST

START_TEST(glob_is_not_exponential)
{
    /* backtracking patterns on long texts finish at once (no recursion) */
    char text[4001];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    double t0 = sx_now_monotonic();
    ck_assert_int_eq(sx_img_glob_match("*a*a*a*a*a*a*a*a*a*a*b", text), 0);
    ck_assert_int_eq(sx_img_glob_match("*a*a*a*a*a*a*a*a*a*a*", text), 1);
    ck_assert_msg(sx_now_monotonic() - t0 < 2.0, "glob matching took too long");
}
END_TEST

START_TEST(glob_check_patterns)
{
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_glob_check("harbor.company.internal/sre/*", "p", &err), 0);
    ck_assert_int_eq(sx_img_glob_check("hashicorp/terraform:1.7.*", "p", &err), 0);
    ck_assert_int_eq(sx_img_glob_check("", "image.approved_images[0]", &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "image.approved_images[0]"));
    ck_assert_int_eq(sx_img_glob_check("a b", "p", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "whitespace"));
    ck_assert_int_eq(sx_img_glob_check("x\\", "p", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "lone"));
    ck_assert_int_eq(sx_img_glob_check("Harbor.example/*", "p", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "lower case"));
}
END_TEST

/* ================================================================ names */

static int has_spelling(const sx_img_name *n, const char *s)
{
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->spelling[i], s) == 0)
            return 1;
    return 0;
}

START_TEST(name_spellings)
{
    sx_img_name n;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_name_parse("postgres:16-alpine", &n, &err), 0);
    ck_assert_str_eq(n.registry, "docker.io");
    ck_assert(has_spelling(&n, "postgres:16-alpine"));
    ck_assert(has_spelling(&n, "docker.io/library/postgres:16-alpine"));
    ck_assert_uint_eq(n.n, 2);

    ck_assert_int_eq(sx_img_name_parse("postgres", &n, &err), 0);
    ck_assert(has_spelling(&n, "postgres"));
    ck_assert(has_spelling(&n, "docker.io/library/postgres"));
    ck_assert(has_spelling(&n, "docker.io/library/postgres:latest"));
    ck_assert_str_eq(n.canonical, "docker.io/library/postgres:latest");

    ck_assert_int_eq(sx_img_name_parse("DOCKER.IO/library/busybox:1.36", &n, &err), 0);
    ck_assert_str_eq(n.registry, "docker.io");
    ck_assert(has_spelling(&n, "docker.io/library/busybox:1.36"));
    ck_assert(has_spelling(&n, "busybox:1.36"));

    ck_assert_int_eq(sx_img_name_parse("index.docker.io/hashicorp/terraform:1.7.0", &n, &err), 0);
    ck_assert(has_spelling(&n, "docker.io/hashicorp/terraform:1.7.0"));
    ck_assert(has_spelling(&n, "hashicorp/terraform:1.7.0"));

    ck_assert_int_eq(sx_img_name_parse("registry-1.docker.io:443/x/y", &n, &err), 0);
    ck_assert_str_eq(n.registry, "docker.io");
    ck_assert(has_spelling(&n, "docker.io/x/y:latest"));

    ck_assert_int_eq(sx_img_name_parse("127.0.0.1:5000/sx-test/minimal", &n, &err), 0);
    ck_assert_str_eq(n.registry, "127.0.0.1:5000");
    ck_assert(has_spelling(&n, "127.0.0.1:5000/sx-test/minimal:latest"));

    ck_assert_int_eq(sx_img_name_parse("localhost/a__b/c-d.e:v_1", &n, &err), 0);
    ck_assert_str_eq(n.registry, "localhost");

    const char *digest = "harbor.company.internal/sre/base@sha256:"
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(sx_img_name_parse(digest, &n, &err), 0);
    ck_assert(has_spelling(&n, digest));
    ck_assert_uint_eq(n.n, 1); /* already fully qualified; no :latest with a digest */
    ck_assert_str_eq(n.canonical, digest);
    /* two spellings of one image share the canonical form */
    sx_img_name a, b;
    ck_assert_int_eq(sx_img_name_parse("busybox", &a, &err), 0);
    ck_assert_int_eq(sx_img_name_parse("index.docker.io/library/busybox:latest", &b, &err), 0);
    ck_assert_str_eq(a.canonical, b.canonical);
}
END_TEST

START_TEST(name_refusals)
{
    static const char *const bad[] = {
        "", "Busybox", "a b", "x:", "x:-tag", "x@sha256:zz", "x@sha256:0123",
        "x/../y", "x//y", "-x", "harbor..example/x", "x/y/", "é/x", NULL};
    for (const char *const *b = bad; *b; b++) {
        sx_img_name n;
        sx_error err = {{0}, {0}};
        ck_assert_msg(sx_img_name_parse(*b, &n, &err) == -1, "'%s' accepted", *b);
        ck_assert_str_eq(err.code, "invalid_parameter");
    }
    char longref[SX_IMG_REF_MAX + 10];
    memset(longref, 'a', sizeof longref - 1);
    longref[sizeof longref - 1] = '\0';
    sx_img_name n;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_name_parse(longref, &n, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "longer"));
}
END_TEST

/* ================================================================ rules */

START_TEST(rules_blocked_wins_and_approved)
{
    sx_img_rules r = spec_rules();
    const char *rule;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_rules_check(&r, "harbor.company.internal/sre/base:v1.0.0", &rule,
                                        &err), 0);
    ck_assert_str_eq(rule, "harbor.company.internal/sre/*");
    ck_assert_int_eq(sx_img_rules_check(&r, "gcr.io/company-prod/tool:1", &rule, &err), 0);
    ck_assert_str_eq(rule, "gcr.io/company-prod/*");

    /* Docker Hub in any spelling is blocked */
    static const char *const hub[] = {"postgres:16-alpine", "docker.io/library/postgres",
                                      "DOCKER.IO/x/y", "index.docker.io/library/busybox",
                                      "registry-1.docker.io:443/library/busybox", NULL};
    for (const char *const *h = hub; *h; h++) {
        ck_assert_msg(sx_img_rules_check(&r, *h, &rule, &err) == -1, "'%s' allowed", *h);
        ck_assert_str_eq(err.code, "image_not_allowed");
        ck_assert_ptr_nonnull(strstr(err.message, "blocked pattern 'docker.io/*'"));
        ck_assert_ptr_nonnull(strstr(err.message, "image.blocked_images[0]"));
    }
    /* approved by 'hashicorp/terraform:1.7.*', but it is Docker Hub: blocked wins */
    ck_assert_int_eq(sx_img_rules_check(&r, "hashicorp/terraform:1.7.0", &rule, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "docker.io/*"));
    ck_assert_int_eq(sx_img_rules_check(&r, "quay.io/prometheus/node-exporter", &rule, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "quay.io/*"));

    /* not approved: the message lists the approved patterns */
    ck_assert_int_eq(sx_img_rules_check(&r, "registry.example.com/tools/x:1", &rule, &err), -1);
    ck_assert_str_eq(err.code, "image_not_allowed");
    ck_assert_ptr_nonnull(strstr(err.message, "matches no pattern of image.approved_images"));
    ck_assert_ptr_nonnull(strstr(err.message, "gcr.io/company-prod/*"));

    /* malformed reference */
    ck_assert_int_eq(sx_img_rules_check(&r, "Not An Image", &rule, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
}
END_TEST

START_TEST(rules_empty_approved_allows_unblocked)
{
    static const char *const blocked[] = {"docker.io/library/*"};
    sx_img_rules r = {0};
    r.blocked.n = 1;
    r.blocked.v = (char **)blocked;
    const char *rule = "x";
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_rules_check(&r, "hashicorp/terraform:1.7.0", &rule, &err), 0);
    ck_assert_ptr_null(rule);
    ck_assert_int_eq(sx_img_rules_check(&r, "busybox", &rule, &err), -1);
    ck_assert_int_eq(sx_img_rules_check(&r, "127.0.0.1:5000/sx-test/minimal", &rule, &err), 0);
}
END_TEST

START_TEST(rules_validate)
{
    sx_img_rules r = spec_rules();
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_rules_validate(&r, &err), 0);
    r.default_image = "postgres:16";
    ck_assert_int_eq(sx_img_rules_validate(&r, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "image.default_image 'postgres:16'"));
    r = spec_rules();
    r.default_pull_policy = "Sometimes";
    ck_assert_int_eq(sx_img_rules_validate(&r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "default_image_pull_policy"));
    static const char *const bad[] = {"ok/*", "Bad.Host/*"};
    r = spec_rules();
    r.blocked.n = 2;
    r.blocked.v = (char **)bad;
    ck_assert_int_eq(sx_img_rules_validate(&r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "image.blocked_images[1]"));
}
END_TEST

/* ============================================================== catalog */

static sx_img_catalog *parse_ok(const char *yaml)
{
    sx_img_catalog *cat = NULL;
    sx_error err = {{0}, {0}};
    int rc = sx_img_catalog_parse(yaml, "test.yaml", &cat, &err);
    ck_assert_msg(rc == 0, "parse failed: %s", err.message);
    return cat;
}

static void parse_fails(const char *yaml, const char *needle)
{
    sx_img_catalog *cat = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_catalog_parse(yaml, "test.yaml", &cat, &err), -1);
    ck_assert_ptr_null(cat);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' not in: %s", needle, err.message);
    ck_assert_msg(strstr(err.message, "test.yaml") != NULL, "no file name in: %s", err.message);
}

START_TEST(catalog_spec_file)
{
    sx_img_catalog *cat = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_img_catalog_load(SPEC_CATALOG, &cat, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(cat->n, 11);
    static const char *const refs[] = {"base", "aws", "gcp", "azure", "terraform",
                                       "terraform-1.6", "ansible", "database", "postgres",
                                       "prometheus", "company-validator"};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        ck_assert_msg(sx_img_catalog_find(cat, refs[i]) != NULL, "no entry %s", refs[i]);
    const sx_img_entry *tf = sx_img_catalog_find(cat, "terraform");
    ck_assert_str_eq(tf->image, "harbor.company.internal/sre/terraform:v1.7.0");
    ck_assert_str_eq(tf->pull_secret, "harbor-credentials");
    ck_assert_ptr_null(tf->pull_policy);
    ck_assert_uint_eq(tf->tools.n, 4);
    ck_assert_str_eq(tf->tools.v[0], "terraform");
    ck_assert_str_eq(tf->approved_by, "infra-team@company.com");
    ck_assert_ptr_null(sx_img_catalog_find(cat, "terraform-1.7"));
    ck_assert_int_gt(cat->bytes, 1000);
    ck_assert_int_eq(cat->sig.exists, 1);
    ck_assert_ptr_nonnull(strstr(cat->source, "image-catalog.yaml"));
    sx_img_catalog_free(cat);
}
END_TEST

START_TEST(catalog_configmap_manifest)
{
    sx_img_catalog *cat = parse_ok(
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata: {name: script-image-catalog, namespace: opscontrolroom-system}\n"
        "data:\n"
        "  catalog.yaml: |\n"
        "    base:\n"
        "      image: harbor.company.internal/sre/base:v1.0.0\n"
        "      pull_policy: Always\n");
    ck_assert_uint_eq(cat->n, 1);
    ck_assert_str_eq(cat->entries[0].pull_policy, "Always");
    sx_img_catalog_free(cat);
    parse_fails("apiVersion: v1\nkind: ConfigMap\ndata: {other: x}\n", "catalog.yaml");
    parse_fails("apiVersion: v1\nkind: ConfigMap\ndata:\n  catalog.yaml: |\n    a: [\n",
                "data.\"catalog.yaml\"");
}
END_TEST

START_TEST(catalog_refusals)
{
    parse_fails("base:\n  image: x\n  imagee: y\n", "unknown key 'imagee'");
    parse_fails("base:\n  image: x\n  imagee: y\n", "pull_secret");    /* lists known keys */
    parse_fails("base:\n  image: a\nbase:\n  image: b\n", "base");     /* duplicate ref */
    parse_fails("base:\n  description: no image\n", "image");
    parse_fails("base: just-a-string\n", "must be a map");
    parse_fails("base:\n  image: Not/An/Image\n", "entry 'base'");
    parse_fails("base:\n  image: x\n  pull_policy: Sometimes\n", "pull_policy 'Sometimes'");
    parse_fails("\"bad ref\":\n  image: x\n", "image_ref 'bad ref'");
    parse_fails("base:\n  image: x\n  tools: notalist\n", "tools");
    parse_fails("base: {image: x\n", "line");                          /* malformed YAML */
    parse_fails("- base\n- aws\n", "map");                              /* top-level list */
    parse_fails("", "empty");
    parse_fails("a: &x {image: y}\nb: *x\n", "anchors are not allowed");
}
END_TEST

START_TEST(catalog_duplicate_message)
{
    sx_img_catalog *cat = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_catalog_parse("base:\n  image: a\naws:\n  image: b\nbase:\n  image: c\n",
                                          "dup.yaml", &cat, &err), -1);
    ck_assert_msg(strstr(err.message, "duplicate") || strstr(err.message, "twice"),
                  "not reported as duplicate: %s", err.message);
    ck_assert_ptr_nonnull(strstr(err.message, "line 5"));
}
END_TEST

START_TEST(catalog_file_errors)
{
    sx_img_catalog *cat = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_catalog_load("/nonexistent/catalog.yaml", &cat, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/catalog.yaml"));
    char path[] = "/tmp/sx-img-nul-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "base:\0\n", 7), 7);
    close(fd);
    ck_assert_int_eq(sx_img_catalog_load(path, &cat, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "NUL"));
    unlink(path);
}
END_TEST

START_TEST(catalog_empty_map)
{
    sx_img_catalog *cat = parse_ok("{}\n");
    ck_assert_uint_eq(cat->n, 0);
    sx_img_catalog_free(cat);
}
END_TEST

/* ============================================================ resolution */

static sx_img_catalog *g_spec_cat;

static void spec_cat_setup(void)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_img_catalog_load(SPEC_CATALOG, &g_spec_cat, &err) == 0, "%s", err.message);
}

static void spec_cat_teardown(void)
{
    sx_img_catalog_free(g_spec_cat);
    g_spec_cat = NULL;
}

static sx_image_request request(const char *ref, const char *image, const char *secret,
                                const char *policy)
{
    sx_image_request q = {.struct_size = sizeof q, .executor = "k8s",
                          .executor_kind = "exec.kubernetes", .image_ref = ref, .image = image,
                          .pull_secret = secret, .pull_policy = policy, .user = "alice"};
    return q;
}

static void choice_free(sx_image_choice *c)
{
    free(c->image), free(c->pull_secret), free(c->pull_policy), free(c->ref), free(c->rule);
    memset(c, 0, sizeof *c);
}

START_TEST(resolve_catalog_ref)
{
    sx_img_rules r = spec_rules();
    sx_image_request q = request("terraform", NULL, NULL, NULL);
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_img_resolve(&r, g_spec_cat, &q, &c, &err) == 0, "%s", err.message);
    ck_assert_str_eq(c.image, "harbor.company.internal/sre/terraform:v1.7.0");
    ck_assert_str_eq(c.pull_secret, "harbor-credentials");
    ck_assert_str_eq(c.pull_policy, "IfNotPresent");    /* the default */
    ck_assert_str_eq(c.ref, "terraform");
    ck_assert_str_eq(c.rule, "harbor.company.internal/sre/*");
    choice_free(&c);

    /* the step's own pull secret and policy win over the entry and defaults */
    q = request("company-validator", NULL, "team-secret", "Always");
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), 0);
    ck_assert_str_eq(c.image, "harbor.company.internal/engineering/validator:v3.2.1");
    ck_assert_str_eq(c.pull_secret, "team-secret");
    ck_assert_str_eq(c.pull_policy, "Always");
    ck_assert_str_eq(c.rule, "harbor.company.internal/engineering/*");
    choice_free(&c);
}
END_TEST

START_TEST(resolve_unknown_ref_lists_known)
{
    sx_img_rules r = spec_rules();
    sx_image_request q = request("terraform-1.5", NULL, NULL, NULL);
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "unknown_image_ref");
    ck_assert_ptr_nonnull(strstr(err.message, "'terraform-1.5'"));
    ck_assert_ptr_nonnull(strstr(err.message, "known refs: base, aws, gcp, azure, terraform, "
                                              "terraform-1.6, ansible"));
    ck_assert_ptr_nonnull(strstr(err.message, "company-validator"));
    ck_assert_ptr_null(c.image);
}
END_TEST

START_TEST(resolve_unknown_ref_long_list_is_cut)
{
    char *yaml = malloc(200 * 64);
    size_t used = 0;
    for (int i = 0; i < 200; i++)
        used += (size_t)sprintf(yaml + used, "tool-with-a-long-name-%03d:\n  image: x/y:%d\n", i, i);
    sx_img_catalog *cat = parse_ok(yaml);
    free(yaml);
    sx_img_rules r = {0};
    sx_image_request q = request("nope", NULL, NULL, NULL);
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_resolve(&r, cat, &q, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "tool-with-a-long-name-000"));
    ck_assert_ptr_nonnull(strstr(err.message, "more)"));
    sx_img_catalog_free(cat);
}
END_TEST

START_TEST(resolve_blocked_entry)
{
    /* the spec's own catalog entry 'postgres' is Docker Hub: blocked */
    sx_img_rules r = spec_rules();
    sx_image_request q = request("postgres", NULL, NULL, NULL);
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "image_not_allowed");
    ck_assert_ptr_nonnull(strstr(err.message, "image_ref 'postgres'"));
    ck_assert_ptr_nonnull(strstr(err.message, "blocked pattern 'docker.io/*'"));
    ck_assert_ptr_null(c.image);
}
END_TEST

START_TEST(resolve_explicit_image)
{
    sx_img_rules r = spec_rules();
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    /* equal to a catalog entry's image: the entry's pull secret comes along */
    sx_image_request q = request(NULL, "harbor.company.internal/sre/aws-tools:v1.0.0", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), 0);
    ck_assert_str_eq(c.image, "harbor.company.internal/sre/aws-tools:v1.0.0");
    ck_assert_str_eq(c.ref, "aws");
    ck_assert_str_eq(c.pull_secret, "harbor-credentials");
    choice_free(&c);
    /* approved, not in the catalog */
    q = request(NULL, "gcr.io/company-prod/tool:2", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), 0);
    ck_assert_ptr_null(c.ref);
    ck_assert_str_eq(c.rule, "gcr.io/company-prod/*");
    ck_assert_str_eq(c.pull_secret, "harbor-credentials");      /* the default */
    choice_free(&c);
    /* not approved */
    q = request(NULL, "registry.example.com/x:1", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "image_not_allowed");
    /* blocked */
    q = request(NULL, "ghcr.io/org/tool:1", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "ghcr.io/*"));
    /* both image and image_ref */
    q = request("base", "harbor.company.internal/sre/base:v1.0.0", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    /* a bad pull policy */
    q = request("base", NULL, NULL, "Sometimes");
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_ptr_null(c.image);
}
END_TEST

START_TEST(resolve_defaults)
{
    sx_img_rules r = spec_rules();
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    sx_image_request q = request(NULL, NULL, NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, g_spec_cat, &q, &c, &err), 0);
    ck_assert_str_eq(c.image, "harbor.company.internal/sre/base:v1.0.0");
    ck_assert_str_eq(c.pull_secret, "harbor-credentials");
    ck_assert_str_eq(c.pull_policy, "IfNotPresent");
    ck_assert_str_eq(c.rule, "harbor.company.internal/sre/*");
    ck_assert_ptr_null(c.ref);      /* a default, not a catalog entry */
    choice_free(&c);
    /* no defaults: nothing is chosen, the backend keeps its own */
    sx_img_rules none = {0};
    ck_assert_int_eq(sx_img_resolve(&none, g_spec_cat, &q, &c, &err), 0);
    ck_assert_ptr_null(c.image);
    ck_assert_ptr_null(c.pull_secret);
    ck_assert_ptr_null(c.pull_policy);
    choice_free(&c);
    /* only a default pull secret */
    none.default_pull_secret = "regcred";
    q = request(NULL, "127.0.0.1:5000/sx-test/minimal", NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&none, g_spec_cat, &q, &c, &err), 0);
    ck_assert_str_eq(c.pull_secret, "regcred");
    ck_assert_ptr_null(c.rule);
    choice_free(&c);
}
END_TEST

START_TEST(resolve_catalog_off)
{
    sx_img_rules r = spec_rules();
    sx_image_choice c = {.struct_size = sizeof c};
    sx_error err = {{0}, {0}};
    sx_image_request q = request("base", NULL, NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, NULL, &q, &c, &err), -1);
    ck_assert_str_eq(err.code, "unknown_image_ref");
    ck_assert_ptr_nonnull(strstr(err.message, "disabled"));
    q = request(NULL, NULL, NULL, NULL);
    ck_assert_int_eq(sx_img_resolve(&r, NULL, &q, &c, &err), 0);
    ck_assert_str_eq(c.image, "harbor.company.internal/sre/base:v1.0.0");
    choice_free(&c);
}
END_TEST

/* ================================================================ store */

static sx_img_catalog *catalog_with_image(const char *image)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml, "a:\n  image: %s\n", image);
    return parse_ok(yaml);
}

START_TEST(store_swap_keeps_readers)
{
    sx_img_store *s = sx_img_store_new(catalog_with_image("x/one:1"));
    const sx_img_catalog *held = sx_img_store_acquire(s);
    ck_assert_uint_eq(held->generation, 1);
    sx_img_store_swap(s, catalog_with_image("x/two:2"));
    /* the old catalog is still whole for its holder */
    ck_assert_str_eq(sx_img_catalog_find(held, "a")->image, "x/one:1");
    const sx_img_catalog *now = sx_img_store_acquire(s);
    ck_assert_uint_eq(now->generation, 2);
    ck_assert_str_eq(sx_img_catalog_find(now, "a")->image, "x/two:2");
    sx_img_store_release(s, held);     /* frees generation 1 (ASan would see a leak else) */
    sx_img_store_release(s, now);
    sx_img_store_free(s);
    sx_img_store *off = sx_img_store_new(NULL);
    ck_assert_ptr_null(sx_img_store_acquire(off));
    sx_img_store_release(off, NULL);
    sx_img_store_free(off);
}
END_TEST

typedef struct race_arg {
    sx_img_store *store;
    atomic_int stop;
    atomic_long reads;
    atomic_int bad;
} race_arg;

static void *race_reader(void *arg)
{
    race_arg *a = arg;
    while (!atomic_load(&a->stop)) {
        const sx_img_catalog *c = sx_img_store_acquire(a->store);
        const sx_img_entry *e = sx_img_catalog_find(c, "a");
        /* every generation's entry reads "x/gen:N" with N its generation - 1 */
        char want[64];
        snprintf(want, sizeof want, "x/gen:%llu", (unsigned long long)c->generation - 1);
        if (e == NULL || strcmp(e->image, want) != 0)
            atomic_fetch_add(&a->bad, 1);
        sx_img_store_release(a->store, c);
        atomic_fetch_add(&a->reads, 1);
    }
    return NULL;
}

START_TEST(store_concurrent_swaps)
{
    race_arg a = {.store = sx_img_store_new(catalog_with_image("x/gen:0"))};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_reader, &a), 0);
    /* at least 300 swaps, and on until the readers have overlapped them
     * (bounded, in case a reader never gets scheduled) */
    int g = 0;
    while (g < 300 || (atomic_load(&a.reads) < 2000 && g < 200000)) {
        char image[32];
        snprintf(image, sizeof image, "x/gen:%d", ++g);
        sx_img_store_swap(a.store, catalog_with_image(image));
    }
    atomic_store(&a.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&a.bad), 0);
    ck_assert_int_ge(atomic_load(&a.reads), 2000);
    const sx_img_catalog *c = sx_img_store_acquire(a.store);
    ck_assert_uint_eq(c->generation, (uint64_t)g + 1);
    sx_img_store_release(a.store, c);
    sx_img_store_free(a.store);
}
END_TEST

/* ========================================================= the plugin .so */

static void *g_dl;
static const sx_plugin_descriptor *g_desc;
static const sx_catalog_ops *g_ops;
static char g_dir[PATH_MAX];
static char g_file[PATH_MAX + 32];
static sx_config_node *g_cfg;

static void plugin_setup(void)
{
    g_dl = dlopen(SX_IMAGE_CATALOG_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(g_dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry;
    *(void **)&entry = dlsym(g_dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_ptr_nonnull(entry);
    g_desc = entry();
    ck_assert_int_eq(g_desc->kind, SX_KIND_IMAGE_CATALOG);
    ck_assert_str_eq(g_desc->name, "image_catalog");
    ck_assert_str_eq(g_desc->provides, "image.catalog");
    g_ops = g_desc->ops;
    snprintf(g_dir, sizeof g_dir, "/tmp/sx-img-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_file, sizeof g_file, "%s/catalog.yaml", g_dir);
}

static void plugin_teardown(void)
{
    sx_mock_set_config(NULL);
    sx_cfg_free(g_cfg);
    g_cfg = NULL;
    unlink(g_file);
    char tmp[PATH_MAX + 40];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
    unlink(tmp);
    rmdir(g_dir);
    if (getenv("SX_NO_DLCLOSE") == NULL)
        dlclose(g_dl);
}

/* Replace the catalog file atomically (write + rename, as editors and
 * Kubernetes do). */
static void write_catalog(const char *yaml)
{
    char tmp[PATH_MAX + 40];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(yaml, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, g_file), 0);
}

/* Load `image_yaml` (the body of the image: section, %s = the catalog file)
 * as the config and init the plugin.  Returns init's result. */
static int plugin_init(const char *image_yaml, void **state, sx_error *err)
{
    char body[4096], yaml[4400];
    snprintf(body, sizeof body, image_yaml, g_file);
    snprintf(yaml, sizeof yaml, "script_executor:\n  image:\n%s", body);
    sx_cfg_free(g_cfg);
    g_cfg = NULL;
    sx_error cerr = {{0}, {0}};
    ck_assert_msg(sx_cfg_load_string(yaml, "test-config", &g_cfg, &cerr) == 0, "%s", cerr.message);
    sx_mock_set_config(sx_cfg_get(g_cfg, "script_executor"));
    *state = NULL;
    return g_desc->init(sx_mock_ctx(), sx_mock_host_api(), state, err);
}

static int resolve_ref(void *state, const char *ref, char *image, size_t n, sx_error *err)
{
    sx_image_request q = request(ref, NULL, NULL, NULL);
    sx_image_choice c = {.struct_size = sizeof c};
    int rc = g_ops->resolve(state, &q, &c, err);
    if (rc == 0 && image)
        snprintf(image, n, "%s", c.image ? c.image : "");
    choice_free(&c);
    return rc;
}

static cJSON *describe(void *state)
{
    char *s = g_ops->describe(state);
    ck_assert_ptr_nonnull(s);
    cJSON *o = cJSON_Parse(s);
    free(s);
    ck_assert_ptr_nonnull(o);
    return o;
}

static double describe_number(void *state, const char *a, const char *b)
{
    cJSON *o = describe(state);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(o);
    return d;
}

/* Wait (deadline 10 s) until describe's a[.b] reaches `want`. */
static int wait_describe(void *state, const char *a, const char *b, double want)
{
    double deadline = sx_now_monotonic() + 10.0;
    while (sx_now_monotonic() < deadline) {
        if (describe_number(state, a, b) >= want)
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

#define SPEC_RULES                                                               \
    "    default_image: harbor.company.internal/sre/base:v1.0.0\n"               \
    "    default_image_pull_secret: harbor-credentials\n"                        \
    "    approved_images: ['harbor.company.internal/sre/*',\n"                   \
    "                      'harbor.company.internal/engineering/*']\n"           \
    "    blocked_images: ['docker.io/*', 'quay.io/*', 'ghcr.io/*']\n"

START_TEST(plugin_spec_catalog_and_describe)
{
    char yaml[65536];
    FILE *f = fopen(SPEC_CATALOG, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(yaml, 1, sizeof yaml - 1, f);
    fclose(f);
    yaml[n] = '\0';
    write_catalog(yaml);
    void *state;
    sx_error err = {{0}, {0}};
    int warns = sx_mock_log_warn_count();
    ck_assert_msg(plugin_init(SPEC_RULES
                              "    catalog:\n      file: %s\n"
                              "      configmap_name: script-image-catalog\n"
                              "      configmap_namespace: opscontrolroom-system\n",
                              &state, &err) == 0, "%s", err.message);
    /* 'postgres' (Docker Hub) is listed but can never be used: warned */
    ck_assert_int_gt(sx_mock_log_warn_count(), warns);
    char image[256];
    ck_assert_int_eq(resolve_ref(state, "aws", image, sizeof image, &err), 0);
    ck_assert_str_eq(image, "harbor.company.internal/sre/aws-tools:v1.0.0");
    ck_assert_int_eq(resolve_ref(state, "postgres", image, sizeof image, &err), -1);
    ck_assert_str_eq(err.code, "image_not_allowed");
    ck_assert_int_eq(resolve_ref(state, "nope", image, sizeof image, &err), -1);
    ck_assert_str_eq(err.code, "unknown_image_ref");

    cJSON *o = describe(state);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(o, "entries");
    ck_assert_int_eq(cJSON_GetArraySize(entries), 11);
    int refused = 0;
    for (const cJSON *e = entries->child; e; e = e->next) {
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "allowed"))) {
            refused++;
            ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "ref")->valuestring, "postgres");
        }
    }
    ck_assert_int_eq(refused, 1);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(src, "file")->valuestring, g_file);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(src, "configmap_name")->valuestring,
                     "script-image-catalog");
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(o, "rules");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rules,
                                                                         "blocked_images")), 3);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(o, "generation")->valuedouble, 1);
    cJSON_Delete(o);
    g_desc->fini(state);
}
END_TEST

START_TEST(plugin_config_refusals)
{
    write_catalog("base:\n  image: harbor.company.internal/sre/base:v1\n");
    void *state;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(plugin_init("    verify_image_access: true\n    catalog: {file: %s}\n",
                                 &state, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "image.verify_image_access"));
    ck_assert_int_eq(plugin_init("    scan_images_on_approval: yes\n    catalog: {file: %s}\n",
                                 &state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "image.scan_images_on_approval"));
    ck_assert_int_eq(plugin_init("    catalog: {file: %s.missing}\n", &state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "image.catalog.file"));
    ck_assert_ptr_nonnull(strstr(err.message, ".missing"));
    ck_assert_int_eq(plugin_init("    blocked_images: ['']\n    catalog: {file: %s}\n",
                                 &state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "image.blocked_images[0]"));
    ck_assert_int_eq(plugin_init("    default_image: quay.io/x/y:1\n"
                                 "    blocked_images: ['quay.io/*']\n    catalog: {file: %s}\n",
                                 &state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "image.default_image"));
    ck_assert_int_eq(plugin_init("    catalog: {file: %s, colour: blue}\n", &state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "colour"));
    ck_assert_int_eq(plugin_init("    default_imag: x\n    catalog: {file: %s}\n", &state, &err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err.message, "default_imag"));
    /* accepted: false for both, and the ConfigMap coordinates */
    ck_assert_msg(plugin_init("    verify_image_access: false\n"
                              "    scan_images_on_approval: false\n"
                              "    catalog: {enabled: true, file: %s, configmap_name: c, "
                              "configmap_namespace: ns}\n", &state, &err) == 0, "%s", err.message);
    g_desc->fini(state);
}
END_TEST

START_TEST(plugin_catalog_disabled)
{
    void *state;
    sx_error err = {{0}, {0}};
    ck_assert_msg(plugin_init(SPEC_RULES "    catalog: {enabled: false, file: %s.none}\n",
                              &state, &err) == 0, "%s", err.message);
    ck_assert_int_eq(resolve_ref(state, "base", NULL, 0, &err), -1);
    ck_assert_str_eq(err.code, "unknown_image_ref");
    ck_assert_ptr_nonnull(strstr(err.message, "disabled"));
    char image[256];
    ck_assert_int_eq(resolve_ref(state, NULL, image, sizeof image, &err), 0);
    ck_assert_str_eq(image, "harbor.company.internal/sre/base:v1.0.0");
    g_desc->fini(state);
}
END_TEST

START_TEST(plugin_reload_on_change)
{
    write_catalog("one:\n  image: harbor.company.internal/sre/one:v1\n");
    void *state;
    sx_error err = {{0}, {0}};
    ck_assert_msg(plugin_init(SPEC_RULES "    catalog: {file: %s, reload_interval: 200ms}\n",
                              &state, &err) == 0, "%s", err.message);
    char image[256];
    ck_assert_int_eq(resolve_ref(state, "one", image, sizeof image, &err), 0);
    ck_assert_int_eq(resolve_ref(state, "two", image, sizeof image, &err), -1);

    /* a valid new catalog replaces the old one */
    write_catalog("one:\n  image: harbor.company.internal/sre/one:v2\n"
                  "two:\n  image: harbor.company.internal/sre/two:v1\n");
    ck_assert_msg(wait_describe(state, "generation", NULL, 2), "no reload seen");
    ck_assert_int_eq(resolve_ref(state, "two", image, sizeof image, &err), 0);
    ck_assert_str_eq(image, "harbor.company.internal/sre/two:v1");
    ck_assert_int_eq(resolve_ref(state, "one", image, sizeof image, &err), 0);
    ck_assert_str_eq(image, "harbor.company.internal/sre/one:v2");

    /* a broken one is refused, logged, and the previous one stays */
    int errors = sx_mock_log_warn_count();
    write_catalog("one:\n  image: harbor.company.internal/sre/one:v3\n  bogus: field\n");
    ck_assert_msg(wait_describe(state, "reload", "failures", 1), "no failed reload seen");
    ck_assert_int_gt(sx_mock_log_warn_count(), errors);
    ck_assert_int_eq(resolve_ref(state, "two", image, sizeof image, &err), 0);
    ck_assert_int_eq(resolve_ref(state, "one", image, sizeof image, &err), 0);
    ck_assert_str_eq(image, "harbor.company.internal/sre/one:v2");
    cJSON *o = describe(state);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(o, "generation")->valuedouble, 2);
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(o, "reload"), "last_error");
    ck_assert(cJSON_IsString(last));
    ck_assert_ptr_nonnull(strstr(last->valuestring, "bogus"));
    cJSON_Delete(o);

    /* the file vanishing is a failure too: the catalog stays */
    unlink(g_file);
    ck_assert_msg(wait_describe(state, "reload", "failures", 2), "vanished file not seen");
    ck_assert_int_eq(resolve_ref(state, "two", image, sizeof image, &err), 0);

    /* fixed again: reloaded, the error cleared */
    write_catalog("three:\n  image: harbor.company.internal/sre/three:v1\n");
    ck_assert_msg(wait_describe(state, "generation", NULL, 3), "no reload after the fix");
    ck_assert_int_eq(resolve_ref(state, "three", image, sizeof image, &err), 0);
    ck_assert_int_eq(resolve_ref(state, "two", image, sizeof image, &err), -1);
    o = describe(state);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(o, "reload"), "last_error")));
    cJSON_Delete(o);
    g_desc->fini(state);
}
END_TEST

START_TEST(plugin_reload_inotify_only)
{
    /* reload_interval 0: inotify alone must notice the rename */
    write_catalog("one:\n  image: harbor.company.internal/sre/one:v1\n");
    void *state;
    sx_error err = {{0}, {0}};
    ck_assert_msg(plugin_init("    catalog: {file: %s, reload_interval: 0}\n", &state, &err) == 0,
                  "%s", err.message);
    cJSON *o = describe(state);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(o, "source"), "watch")->valuestring, "inotify");
    cJSON_Delete(o);
    write_catalog("two:\n  image: harbor.company.internal/sre/two:v1\n");
    ck_assert_msg(wait_describe(state, "generation", NULL, 2), "inotify did not trigger");
    ck_assert_int_eq(resolve_ref(state, "two", NULL, 0, &err), 0);
    g_desc->fini(state);
}
END_TEST

START_TEST(plugin_first_change_is_a_vanished_file)
{
    /* the very first change: the file disappears (never loaded-and-failed
     * before); reported, and the catalog stays */
    write_catalog("one:\n  image: harbor.company.internal/sre/one:v1\n");
    void *state;
    sx_error err = {{0}, {0}};
    ck_assert_msg(plugin_init("    catalog: {file: %s, reload_interval: 100ms}\n", &state,
                              &err) == 0, "%s", err.message);
    unlink(g_file);
    ck_assert_msg(wait_describe(state, "reload", "failures", 1), "vanished file not reported");
    ck_assert_int_eq(resolve_ref(state, "one", NULL, 0, &err), 0);
    write_catalog("two:\n  image: harbor.company.internal/sre/two:v1\n");
    ck_assert_msg(wait_describe(state, "generation", NULL, 2), "no reload after it came back");
    ck_assert_int_eq(resolve_ref(state, "two", NULL, 0, &err), 0);
    g_desc->fini(state);
}
END_TEST

typedef struct resolver_arg {
    void *state;
    atomic_int stop;
    atomic_long ok;
    atomic_int failed;
    char last_error[SX_ERROR_MESSAGE_MAX];
} resolver_arg;

static void *resolver(void *arg)
{
    resolver_arg *a = arg;
    while (!atomic_load(&a->stop)) {
        char image[256];
        sx_error err = {{0}, {0}};
        /* 'stable' is in every version of the file */
        if (resolve_ref(a->state, "stable", image, sizeof image, &err) != 0 ||
            strncmp(image, "harbor.company.internal/sre/stable:v", 36) != 0) {
            if (atomic_fetch_add(&a->failed, 1) == 0)
                snprintf(a->last_error, sizeof a->last_error, "%s", err.message);
        } else {
            atomic_fetch_add(&a->ok, 1);
        }
        free(g_ops->describe(a->state));
    }
    return NULL;
}

START_TEST(plugin_resolves_during_reloads)
{
    write_catalog("stable:\n  image: harbor.company.internal/sre/stable:v0\n");
    resolver_arg a = {0};
    sx_error err = {{0}, {0}};
    ck_assert_msg(plugin_init(SPEC_RULES "    catalog: {file: %s, reload_interval: 50ms}\n",
                              &a.state, &err) == 0, "%s", err.message);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, resolver, &a), 0);
    for (int g = 1; g <= 20; g++) {
        char yaml[512];
        /* every other version is broken: it must never fail a resolve */
        snprintf(yaml, sizeof yaml,
                 "stable:\n  image: harbor.company.internal/sre/stable:v%d\n"
                 "extra-%d:\n  image: harbor.company.internal/sre/extra:v%d\n%s",
                 g, g, g, g % 2 ? "" : "broken: [\n");
        write_catalog(yaml);
        if (g % 2)
            ck_assert_msg(wait_describe(a.state, "reload", "reloads", (g + 1) / 2),
                          "reload %d not seen", g);
        else
            ck_assert_msg(wait_describe(a.state, "reload", "failures", g / 2),
                          "failure %d not seen", g);
    }
    atomic_store(&a.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_msg(atomic_load(&a.failed) == 0, "%d resolves failed: %s", atomic_load(&a.failed),
                  a.last_error);
    ck_assert_int_gt(atomic_load(&a.ok), 0);
    char image[256];
    ck_assert_int_eq(resolve_ref(a.state, "extra-19", image, sizeof image, &err), 0);
    ck_assert_int_eq(resolve_ref(a.state, "extra-20", image, sizeof image, &err), -1);
    g_desc->fini(a.state);
}
END_TEST

static Suite *image_catalog_suite(void)
{
    Suite *s = suite_create("image_catalog");
    TCase *tc = tcase_create("glob");
    tcase_add_test(tc, glob_literals_and_wildcards);
    tcase_add_test(tc, glob_star_crosses_slash);
    tcase_add_test(tc, glob_is_not_exponential);
    tcase_add_test(tc, glob_check_patterns);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, name_spellings);
    tcase_add_test(tc, name_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_add_test(tc, rules_blocked_wins_and_approved);
    tcase_add_test(tc, rules_empty_approved_allows_unblocked);
    tcase_add_test(tc, rules_validate);
    suite_add_tcase(s, tc);

    tc = tcase_create("catalog");
    tcase_add_test(tc, catalog_spec_file);
    tcase_add_test(tc, catalog_configmap_manifest);
    tcase_add_test(tc, catalog_refusals);
    tcase_add_test(tc, catalog_duplicate_message);
    tcase_add_test(tc, catalog_file_errors);
    tcase_add_test(tc, catalog_empty_map);
    suite_add_tcase(s, tc);

    tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, spec_cat_setup, spec_cat_teardown);
    tcase_add_test(tc, resolve_catalog_ref);
    tcase_add_test(tc, resolve_unknown_ref_lists_known);
    tcase_add_test(tc, resolve_unknown_ref_long_list_is_cut);
    tcase_add_test(tc, resolve_blocked_entry);
    tcase_add_test(tc, resolve_explicit_image);
    tcase_add_test(tc, resolve_defaults);
    tcase_add_test(tc, resolve_catalog_off);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_add_test(tc, store_swap_keeps_readers);
    tcase_add_test(tc, store_concurrent_swaps);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("plugin");
    tcase_add_checked_fixture(tc, plugin_setup, plugin_teardown);
    tcase_add_test(tc, plugin_spec_catalog_and_describe);
    tcase_add_test(tc, plugin_config_refusals);
    tcase_add_test(tc, plugin_catalog_disabled);
    tcase_add_test(tc, plugin_reload_on_change);
    tcase_add_test(tc, plugin_reload_inotify_only);
    tcase_add_test(tc, plugin_first_change_is_a_vanished_file);
    tcase_add_test(tc, plugin_resolves_during_reloads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(image_catalog_suite());
}
