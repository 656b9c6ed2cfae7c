/* test_config.c - unit tests of the host's YAML config tree (host/config.c). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include "sx_check_main.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sx/sx_util.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static sx_config_node *load_ok(const char *yaml)
{
    sx_error err;
    memset(&err, 0, sizeof err);
    sx_config_node *root = NULL;
    int rc = sx_cfg_load_string(yaml, "test.yaml", &root, &err);
    ck_assert_msg(rc == 0, "load failed: %s", err.message);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(sx_cfg_kind(root), SX_CFG_MAP);
    return root;
}

/* Loading must fail with invalid_config and a message containing each
 * non-NULL substring. */
static void load_fails(const char *yaml, const char *s1, const char *s2,
                       const char *s3)
{
    sx_error err;
    memset(&err, 0, sizeof err);
    sx_config_node *root = (sx_config_node *)&err; /* must be reset to NULL */
    int rc = sx_cfg_load_string(yaml, "test.yaml", &root, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err.code, "invalid_config");
    const char *subs[] = { "test.yaml", s1, s2, s3 };
    for (size_t i = 0; i < 4; i++)
        if (subs[i] != NULL)
            ck_assert_msg(strstr(err.message, subs[i]) != NULL,
                          "message '%s' lacks '%s'", err.message, subs[i]);
}

/* A struct with one field of every option type. */
typedef struct test_opts {
    char *name;
    int64_t count;
    int enabled;
    int64_t timeout_ms;
    int64_t max_bytes;
    sx_strlist args;
    sx_strmap env;
    const sx_config_node *extra;
} test_opts;

static const sx_option test_options[] = {
    { SX_OPT_STRING, "name", "anon", 0, offsetof(test_opts, name), "name" },
    { SX_OPT_INT, "count", "3", 0, offsetof(test_opts, count), "count" },
    { SX_OPT_BOOL, "enabled", "yes", 0, offsetof(test_opts, enabled), "on?" },
    { SX_OPT_DURATION, "timeout", "1m30s", 0, offsetof(test_opts, timeout_ms), "t" },
    { SX_OPT_SIZE, "max_bytes", "64Ki", 0, offsetof(test_opts, max_bytes), "m" },
    { SX_OPT_STRLIST, "args", "[a, 'b c']", 0, offsetof(test_opts, args), "args" },
    { SX_OPT_STRMAP, "env", NULL, 0, offsetof(test_opts, env), "env" },
    { SX_OPT_NODE, "extra", NULL, 0, offsetof(test_opts, extra), "extra" },
    { 0 }
};

/* Same fields, no defaults, and `name` required. */
static const sx_option strict_options[] = {
    { SX_OPT_STRING, "name", NULL, SX_OPT_REQUIRED, offsetof(test_opts, name), "" },
    { SX_OPT_INT, "count", NULL, 0, offsetof(test_opts, count), "" },
    { SX_OPT_STRLIST, "args", NULL, 0, offsetof(test_opts, args), "" },
    { SX_OPT_STRMAP, "env", NULL, 0, offsetof(test_opts, env), "" },
    { SX_OPT_NODE, "extra", NULL, 0, offsetof(test_opts, extra), "" },
    { 0 }
};

/* Apply `options` to the map "section" of `yaml`; expect failure with a
 * message containing each non-NULL substring.  Checks that what was stored
 * is freeable (ASan runs catch leaks and double frees). */
static void apply_fails(const char *yaml, const sx_option *options,
                        const char *s1, const char *s2, const char *s3)
{
    sx_config_node *root = load_ok(yaml);
    test_opts o;
    memset(&o, 0xA5, sizeof o);         /* garbage: apply must zero it */
    sx_error err;
    memset(&err, 0, sizeof err);
    int rc = sx_cfg_apply(sx_cfg_get(root, "section"), options, &o, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err.code, "invalid_config");
    const char *subs[] = { s1, s2, s3 };
    for (size_t i = 0; i < 3; i++)
        if (subs[i] != NULL)
            ck_assert_msg(strstr(err.message, subs[i]) != NULL,
                          "message '%s' lacks '%s'", err.message, subs[i]);
    sx_cfg_options_free(options, &o);
    sx_cfg_options_free(options, &o);   /* twice is safe */
    sx_cfg_free(root);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                              */
/* ------------------------------------------------------------------ */

static const char nested_yaml[] =
    "# comment\n"                                   /* 1 */
    "script_executor:\n"                            /* 2 */
    "  server:\n"                                   /* 3 */
    "    listen: \"tcp://127.0.0.1:5555\"\n"        /* 4 */
    "    timeout: 30s\n"                            /* 5 */
    "  executors:\n"                                /* 6 */
    "    - name: shell\n"                           /* 7 */
    "      kind: exec.native\n"                     /* 8 */
    "    - name: box\n"                             /* 9 */
    "      kind: exec.docker\n"                     /* 10 */
    "      env:\n"                                  /* 11 */
    "        A: '1'\n"                              /* 12 */
    "  tags: [x, y, z]\n"                           /* 13 */
    "other: ~\n";                                   /* 14 */

START_TEST(test_parse_nested_lines_and_paths)
{
    sx_config_node *root = load_ok(nested_yaml);
    ck_assert_str_eq(sx_cfg_path(root), "");
    ck_assert_uint_eq(sx_cfg_len(root), 2);
    ck_assert_str_eq(sx_cfg_key_at(root, 0), "script_executor");
    ck_assert_str_eq(sx_cfg_key_at(root, 1), "other");

    const sx_config_node *se = sx_cfg_get(root, "script_executor");
    ck_assert_int_eq(sx_cfg_kind(se), SX_CFG_MAP);
    ck_assert_str_eq(sx_cfg_path(se), "script_executor");
    ck_assert_int_eq(sx_cfg_line(se), 3);  /* a block map starts at its first key */
    ck_assert_uint_eq(sx_cfg_len(se), 3);
    /* keys in file order */
    ck_assert_str_eq(sx_cfg_key_at(se, 0), "server");
    ck_assert_str_eq(sx_cfg_key_at(se, 1), "executors");
    ck_assert_str_eq(sx_cfg_key_at(se, 2), "tags");

    const sx_config_node *listen =
        sx_cfg_get(sx_cfg_get(se, "server"), "listen");
    ck_assert_int_eq(sx_cfg_kind(listen), SX_CFG_SCALAR);
    ck_assert_str_eq(sx_cfg_scalar(listen), "tcp://127.0.0.1:5555");
    ck_assert_int_eq(sx_cfg_line(listen), 4);
    ck_assert_str_eq(sx_cfg_path(listen), "script_executor.server.listen");

    const sx_config_node *execs = sx_cfg_get(se, "executors");
    ck_assert_int_eq(sx_cfg_kind(execs), SX_CFG_SEQUENCE);
    ck_assert_uint_eq(sx_cfg_len(execs), 2);
    ck_assert_ptr_null(sx_cfg_key_at(execs, 0));     /* not a map */
    ck_assert_ptr_null(sx_cfg_scalar(execs));

    const sx_config_node *e1 = sx_cfg_at(execs, 1);
    ck_assert_str_eq(sx_cfg_path(e1), "script_executor.executors[1]");
    ck_assert_int_eq(sx_cfg_line(e1), 9);
    const sx_config_node *kind = sx_cfg_get(e1, "kind");
    ck_assert_str_eq(sx_cfg_scalar(kind), "exec.docker");
    ck_assert_str_eq(sx_cfg_path(kind), "script_executor.executors[1].kind");
    ck_assert_int_eq(sx_cfg_line(kind), 10);

    const sx_config_node *a = sx_cfg_get(sx_cfg_get(e1, "env"), "A");
    ck_assert_str_eq(sx_cfg_scalar(a), "1");
    ck_assert_str_eq(sx_cfg_path(a), "script_executor.executors[1].env.A");
    ck_assert_int_eq(sx_cfg_line(a), 12);

    const sx_config_node *e0name = sx_cfg_get(sx_cfg_at(execs, 0), "name");
    ck_assert_str_eq(sx_cfg_scalar(e0name), "shell");
    ck_assert_str_eq(sx_cfg_path(e0name), "script_executor.executors[0].name");
    ck_assert_int_eq(sx_cfg_line(e0name), 7);

    const sx_config_node *tags = sx_cfg_get(se, "tags");
    ck_assert_uint_eq(sx_cfg_len(tags), 3);
    ck_assert_str_eq(sx_cfg_scalar(sx_cfg_at(tags, 2)), "z");
    ck_assert_str_eq(sx_cfg_path(sx_cfg_at(tags, 2)), "script_executor.tags[2]");
    ck_assert_int_eq(sx_cfg_line(sx_cfg_at(tags, 2)), 13);
    ck_assert_ptr_null(sx_cfg_at(tags, 3));

    const sx_config_node *other = sx_cfg_get(root, "other");
    ck_assert_int_eq(sx_cfg_kind(other), SX_CFG_SCALAR);
    ck_assert_str_eq(sx_cfg_scalar(other), "~");
    ck_assert_int_eq(sx_cfg_line(other), 14);

    ck_assert_ptr_null(sx_cfg_get(root, "missing"));
    ck_assert_ptr_null(sx_cfg_get(listen, "x"));     /* not a map */
    sx_cfg_free(root);
}
END_TEST

START_TEST(test_accessors_null_safe)
{
    ck_assert_int_eq(sx_cfg_kind(NULL), SX_CFG_NONE);
    ck_assert_ptr_null(sx_cfg_scalar(NULL));
    ck_assert_uint_eq(sx_cfg_len(NULL), 0);
    ck_assert_ptr_null(sx_cfg_at(NULL, 0));
    ck_assert_ptr_null(sx_cfg_key_at(NULL, 0));
    ck_assert_ptr_null(sx_cfg_get(NULL, "a"));
    ck_assert_int_eq(sx_cfg_line(NULL), 0);
    ck_assert_str_eq(sx_cfg_path(NULL), "");
    ck_assert_ptr_null(sx_cfg_copy_without(NULL, NULL));
    sx_cfg_free(NULL);
    sx_cfg_options_free(test_options, NULL);
    sx_cfg_options_free(NULL, NULL);
}
END_TEST

START_TEST(test_parse_bool)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes",
                                       "on", "ON" };
    static const char *const no[] = { "false", "False", "no", "NO", "off", "Off" };
    static const char *const bad[] = { "", "1", "0", "y", "n", "truee", " true",
                                       "enabled" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        int v = -7;
        ck_assert_int_eq(sx_cfg_parse_bool(yes[i], &v), 0);
        ck_assert_int_eq(v, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        int v = -7;
        ck_assert_int_eq(sx_cfg_parse_bool(no[i], &v), 0);
        ck_assert_int_eq(v, 0);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int v = -7;
        ck_assert_msg(sx_cfg_parse_bool(bad[i], &v) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(v, -7);
    }
    ck_assert_int_eq(sx_cfg_parse_bool(NULL, NULL), -1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parse errors                                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_err_duplicate_key)
{
    load_fails("a:\n"
               "  name: one\n"
               "  other: 2\n"
               "  name: two\n",
               "duplicate key 'name' in a", "line 2", "line 4");
    /* at the top level too */
    load_fails("x: 1\ny: 2\nx: 3\n", "duplicate key 'x' in the top level",
               "first at line 1", "again at line 3");
}
END_TEST

START_TEST(test_err_alias_anchor)
{
    load_fails("a: &anc 1\nb: 2\n", "anchors are not allowed", "&anc", "line 1");
    load_fails("a: 1\nb: *ref\n", "aliases are not allowed", "*ref", "line 2");
    load_fails("base: &b {x: 1}\nderived:\n  <<: *b\n", "anchors", "line 1", NULL);
}
END_TEST

START_TEST(test_err_documents_and_top_level)
{
    load_fails("", "empty configuration", NULL, NULL);
    load_fails("# only a comment\n\n", "empty configuration", NULL, NULL);
    load_fails("---\n", "empty configuration", NULL, NULL);
    load_fails("a: 1\n---\nb: 2\n", "more than one YAML document", "line 2", NULL);
    load_fails("- a\n- b\n", "top level must be a map", "found a sequence",
               "line 1");
    load_fails("just text\n", "top level must be a map", "found a scalar", NULL);
}
END_TEST

START_TEST(test_err_non_scalar_key)
{
    load_fails("ok: 1\n? [a, b]\n: 1\n", "map keys must be scalars",
               "found a sequence", "line 2");
    load_fails("m:\n  {x: 1}: 2\n", "map keys must be scalars", "found a map",
               "in m");
}
END_TEST

START_TEST(test_err_syntax_quotes_libyaml)
{
    /* libyaml: "did not find expected ',' or ']'" */
    load_fails("a: 1\nb: [1, 2\nc: 3\n", "did not find expected", "line ", NULL);
    /* tab indentation: "found character that cannot start any token" */
    load_fails("a:\n\tb: 1\n", "line 2", "cannot start any token", NULL);
    load_fails("a: 1\n  b: 2\n", "line 2", "mapping values are not allowed",
               NULL);
    /* reader errors have an offset, not a line */
    load_fails("a: \xff\n", "invalid leading UTF-8 octet", "byte offset 3",
               NULL);
}
END_TEST

START_TEST(test_err_nul_and_depth)
{
    load_fails("a: \"x\\0y\"\n", "NUL", "line 1", NULL);
    char deep[512];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "a: ");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n++] = '\n';
    deep[n] = '\0';
    load_fails(deep, "nesting deeper than", NULL, NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* sx_cfg_apply                                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_apply_values)
{
    sx_config_node *root = load_ok(
        "section:\n"                                     /* 1 */
        "  name: worker\n"                               /* 2 */
        "  count: -42\n"                                 /* 3 */
        "  enabled: off\n"                               /* 4 */
        "  timeout: 1h30m\n"                             /* 5 */
        "  max_bytes: 10Mi\n"                            /* 6 */
        "  args:\n"                                      /* 7 */
        "    - --verbose\n"                              /* 8 */
        "    - '2'\n"                                    /* 9 */
        "    - \"\"\n"                                   /* 10 */
        "  env: {HOME: /root, PORT: 8080, EMPTY: ''}\n"  /* 11 */
        "  extra:\n"                                     /* 12 */
        "    deep: [1, 2]\n");                           /* 13 */
    test_opts o;
    sx_error err;
    memset(&err, 0, sizeof err);
    int rc = sx_cfg_apply(sx_cfg_get(root, "section"), test_options, &o, &err);
    ck_assert_msg(rc == 0, "apply failed: %s", err.message);
    ck_assert_str_eq(o.name, "worker");
    ck_assert_int_eq(o.count, -42);
    ck_assert_int_eq(o.enabled, 0);
    ck_assert_int_eq(o.timeout_ms, 5400000);
    ck_assert_int_eq(o.max_bytes, 10 * 1024 * 1024);
    ck_assert_uint_eq(o.args.n, 3);
    ck_assert_str_eq(o.args.v[0], "--verbose");
    ck_assert_str_eq(o.args.v[1], "2");
    ck_assert_str_eq(o.args.v[2], "");
    ck_assert_uint_eq(o.env.n, 3);
    ck_assert_str_eq(o.env.keys[0], "HOME");
    ck_assert_str_eq(o.env.values[0], "/root");
    ck_assert_str_eq(sx_strmap_get(&o.env, "PORT"), "8080");
    ck_assert_str_eq(sx_strmap_get(&o.env, "EMPTY"), "");
    ck_assert_int_eq(sx_cfg_kind(o.extra), SX_CFG_MAP);
    ck_assert_str_eq(sx_cfg_path(o.extra), "section.extra");
    ck_assert_int_eq(sx_cfg_line(o.extra), 13);
    ck_assert_ptr_eq(o.extra, sx_cfg_get(sx_cfg_get(root, "section"), "extra"));
    ck_assert_uint_eq(sx_cfg_len(sx_cfg_get(o.extra, "deep")), 2);

    sx_cfg_options_free(test_options, &o);
    ck_assert_ptr_null(o.name);
    ck_assert_uint_eq(o.args.n, 0);
    ck_assert_ptr_null(o.args.v);
    ck_assert_uint_eq(o.env.n, 0);
    ck_assert_ptr_null(o.env.keys);
    ck_assert_ptr_null(o.extra);
    sx_cfg_options_free(test_options, &o);
    sx_cfg_free(root);
}
END_TEST

START_TEST(test_apply_defaults)
{
    test_opts o;
    memset(&o, 0x5A, sizeof o);
    sx_error err;
    memset(&err, 0, sizeof err);
    /* NULL node: defaults only */
    ck_assert_int_eq(sx_cfg_apply(NULL, test_options, &o, &err), 0);
    ck_assert_str_eq(o.name, "anon");
    ck_assert_int_eq(o.count, 3);
    ck_assert_int_eq(o.enabled, 1);
    ck_assert_int_eq(o.timeout_ms, 90000);
    ck_assert_int_eq(o.max_bytes, 65536);
    ck_assert_uint_eq(o.args.n, 2);
    ck_assert_str_eq(o.args.v[0], "a");
    ck_assert_str_eq(o.args.v[1], "b c");       /* the default is YAML text */
    ck_assert_uint_eq(o.env.n, 0);
    ck_assert_ptr_null(o.env.keys);
    ck_assert_ptr_null(o.extra);
    sx_cfg_options_free(test_options, &o);

    /* present keys override, absent ones and nulls take the default */
    sx_config_node *root = load_ok("section:\n"
                                   "  count: 9\n"
                                   "  name: ~\n"
                                   "  args:\n"
                                   "  env: null\n"
                                   "  extra:\n");
    ck_assert_int_eq(sx_cfg_apply(sx_cfg_get(root, "section"), test_options, &o,
                                  &err), 0);
    ck_assert_int_eq(o.count, 9);
    ck_assert_str_eq(o.name, "anon");
    ck_assert_uint_eq(o.args.n, 2);
    ck_assert_uint_eq(o.env.n, 0);
    ck_assert_ptr_null(o.extra);
    ck_assert_int_eq(o.timeout_ms, 90000);
    sx_cfg_options_free(test_options, &o);

    /* no defaults: absent fields are zero, empty [] and {} are fine */
    sx_cfg_free(root);
    root = load_ok("section:\n  name: n\n  args: []\n  env: {}\n");
    ck_assert_int_eq(sx_cfg_apply(sx_cfg_get(root, "section"), strict_options,
                                  &o, &err), 0);
    ck_assert_str_eq(o.name, "n");
    ck_assert_int_eq(o.count, 0);
    ck_assert_uint_eq(o.args.n, 0);
    ck_assert_uint_eq(o.env.n, 0);
    ck_assert_ptr_null(o.extra);
    sx_cfg_options_free(strict_options, &o);

    /* a section written as "section:" with nothing is all defaults */
    sx_cfg_free(root);
    root = load_ok("section:\n");
    ck_assert_int_eq(sx_cfg_apply(sx_cfg_get(root, "section"), test_options, &o,
                                  &err), 0);
    ck_assert_str_eq(o.name, "anon");
    sx_cfg_options_free(test_options, &o);
    sx_cfg_free(root);
}
END_TEST

START_TEST(test_apply_int_edges)
{
    static const char *const good[] = { "0", "+7", "-1", "9223372036854775807",
                                        "-9223372036854775808" };
    static const int64_t want[] = { 0, 7, -1, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "section:\n  name: n\n  count: %s\n", good[i]);
        sx_config_node *root = load_ok(yaml);
        test_opts o;
        sx_error err;
        ck_assert_int_eq(sx_cfg_apply(sx_cfg_get(root, "section"), strict_options,
                                      &o, &err), 0);
        ck_assert_int_eq(o.count, want[i]);
        sx_cfg_options_free(strict_options, &o);
        sx_cfg_free(root);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* sx_cfg_apply errors                                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_err_unknown_key)
{
    apply_fails("section:\n"
                "  name: x\n"
                "  colour: red\n",
                test_options,
                "unknown key 'colour' in section (line 3); known keys: "
                "name, count, enabled, timeout, max_bytes, args, env, extra",
                NULL, NULL);
}
END_TEST

START_TEST(test_err_wrong_type)
{
    apply_fails("section:\n  name: [a, b]\n", test_options,
                "section.name (line 2)", "expected a string", "found a sequence");
    apply_fails("section:\n  args: solo\n", test_options,
                "section.args (line 2)", "expected a sequence of strings",
                "found 'solo'");
    apply_fails("section:\n  env: [A]\n", test_options, "section.env (line 2)",
                "expected a map of strings", "found a sequence");
    apply_fails("section:\n  count: {a: 1}\n", test_options,
                "section.count (line 2)", "expected an integer", "found a map");
    /* a bad item after good ones: what was stored must still be freed */
    apply_fails("section:\n"
                "  args:\n"
                "    - one\n"
                "    - two\n"
                "    - {three: 3}\n",
                test_options, "section.args[2] (line 5)", "expected a string",
                "found a map");
    apply_fails("section:\n"
                "  name: kept\n"
                "  env:\n"
                "    A: a\n"
                "    B: [b]\n",
                test_options, "section.env.B (line 5)",
                "expected a string", "found a sequence");
    apply_fails("section:\n  env:\n    A: ~\n", test_options, "found null", NULL,
                NULL);
    apply_fails("section:\n  args: [a, ~]\n", test_options, "section.args[1] (line 2)",
                "found null", NULL);
    /* a block value starts on the next line; the error names the key's line */
    apply_fails("section:\n"
                "  name: x\n"
                "  args:\n"
                "    k: v\n",
                test_options, "section.args (line 3): expected a sequence of strings",
                "found a map", NULL);
    apply_fails("section: [1, 2]\n", test_options, "section (line 1)",
                "expected a map", "found a sequence");
}
END_TEST

START_TEST(test_err_missing_required)
{
    apply_fails("section:\n  count: 1\n", strict_options,
                "missing required key 'name' in section (line 2)", NULL, NULL);
    apply_fails("section:\n  name: ~\n", strict_options,
                "required key 'name' in section (line 2) has no value", NULL, NULL);
    test_opts o;
    sx_error err;
    ck_assert_int_eq(sx_cfg_apply(NULL, strict_options, &o, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "missing required key 'name'"));
    sx_cfg_options_free(strict_options, &o);
}
END_TEST

START_TEST(test_err_bad_duration)
{
    apply_fails("section:\n  timeout: 5 minutes\n", test_options,
                "section.timeout (line 2)", "expected a duration",
                "found '5 minutes'");
    apply_fails("section:\n  timeout: -5s\n", test_options, "found '-5s'", NULL,
                NULL);
    apply_fails("section:\n  timeout:\n", test_options, "section.timeout",
                "expected a duration", "found null");
}
END_TEST

START_TEST(test_err_bad_size)
{
    apply_fails("section:\n  name: n\n  max_bytes: 10Qi\n", test_options,
                "section.max_bytes (line 3)", "expected a size", "found '10Qi'");
    apply_fails("section:\n  max_bytes: 99999999999T\n", test_options,
                "section.max_bytes", "found '99999999999T'", NULL);
}
END_TEST

START_TEST(test_err_bad_bool)
{
    apply_fails("section:\n  enabled: maybe\n", test_options,
                "section.enabled (line 2)", "expected a boolean", "found 'maybe'");
    apply_fails("section:\n  enabled: 1\n", test_options, "found '1'", NULL, NULL);
}
END_TEST

START_TEST(test_err_bad_int)
{
    static const char *const bad[] = { "12abc", "1.5", "0x10", "''", "' 12'",
                                       "99999999999999999999", "'-'", "1e3", "+" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[128];
        snprintf(yaml, sizeof yaml, "section:\n  name: n\n  count: %s\n", bad[i]);
        apply_fails(yaml, strict_options, "section.count (line 3)",
                    "expected an integer", "found '");
    }
}
END_TEST

START_TEST(test_err_bad_default)
{
    static const sx_option bad_default[] = {
        { SX_OPT_DURATION, "t", "soon", 0, 0, "" },
        { 0 }
    };
    int64_t t = 5;
    sx_error err;
    ck_assert_int_eq(sx_cfg_apply(NULL, bad_default, &t, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "default value of 't'"));
    ck_assert_ptr_nonnull(strstr(err.message, "found 'soon'"));
    ck_assert_int_eq(t, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Copy, files                                                          */
/* ------------------------------------------------------------------ */

START_TEST(test_copy_without)
{
    sx_config_node *root = load_ok("exec:\n"              /* 1 */
                                   "  kind: native\n"     /* 2 */
                                   "  name: shell\n"      /* 3 */
                                   "  opts:\n"            /* 4 */
                                   "    kind: inner\n"    /* 5 */
                                   "    list: [a, b]\n"   /* 6 */
                                   "  plugin: x\n");      /* 7 */
    const char *const drop[] = { "kind", "plugin", NULL };
    sx_config_node *copy = sx_cfg_copy_without(sx_cfg_get(root, "exec"), drop);
    sx_cfg_free(root);                  /* the copy must not depend on it */
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(sx_cfg_kind(copy), SX_CFG_MAP);
    ck_assert_str_eq(sx_cfg_path(copy), "exec");
    ck_assert_int_eq(sx_cfg_line(copy), 2);
    ck_assert_uint_eq(sx_cfg_len(copy), 2);
    ck_assert_str_eq(sx_cfg_key_at(copy, 0), "name");
    ck_assert_str_eq(sx_cfg_key_at(copy, 1), "opts");
    ck_assert_ptr_null(sx_cfg_get(copy, "kind"));
    ck_assert_ptr_null(sx_cfg_get(copy, "plugin"));
    /* only the top level is filtered */
    const sx_config_node *inner = sx_cfg_get(sx_cfg_get(copy, "opts"), "kind");
    ck_assert_str_eq(sx_cfg_scalar(inner), "inner");
    ck_assert_str_eq(sx_cfg_path(inner), "exec.opts.kind");
    ck_assert_int_eq(sx_cfg_line(inner), 5);
    const sx_config_node *b = sx_cfg_at(sx_cfg_get(sx_cfg_get(copy, "opts"), "list"), 1);
    ck_assert_str_eq(sx_cfg_scalar(b), "b");
    ck_assert_str_eq(sx_cfg_path(b), "exec.opts.list[1]");
    ck_assert_int_eq(sx_cfg_line(b), 6);

    /* an apply on the copy reports lines of the original file */
    static const sx_option only_name[] = {
        { SX_OPT_STRING, "name", NULL, 0, 0, "" },
        { 0 }
    };
    char *name = NULL;
    sx_error err;
    ck_assert_int_eq(sx_cfg_apply(copy, only_name, &name, &err), -1);
    ck_assert_str_eq(err.message,
                     "unknown key 'opts' in exec (line 4); known keys: name");
    sx_cfg_options_free(only_name, &name);

    /* NULL key list: full copy */
    sx_config_node *full = sx_cfg_copy_without(copy, NULL);
    ck_assert_uint_eq(sx_cfg_len(full), 2);
    sx_cfg_free(full);
    sx_cfg_free(copy);
}
END_TEST

START_TEST(test_load_file)
{
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("server:\n  listen: ipc:///tmp/x\n  workers: 4\n", f);
    fclose(f);

    sx_config_node *root = NULL;
    sx_error err;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_cfg_load_file(path, &root, &err), 0);
    const sx_config_node *w = sx_cfg_get(sx_cfg_get(root, "server"), "workers");
    ck_assert_str_eq(sx_cfg_scalar(w), "4");
    ck_assert_int_eq(sx_cfg_line(w), 3);
    ck_assert_str_eq(sx_cfg_path(w), "server.workers");
    sx_cfg_free(root);

    /* errors in a file name the file */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("a: 1\nb: 2\na: 3\n", f);
    fclose(f);
    ck_assert_int_eq(sx_cfg_load_file(path, &root, &err), -1);
    ck_assert_ptr_null(root);
    char want[128];
    snprintf(want, sizeof want, "%s: line 3: duplicate key 'a'", path);
    ck_assert_msg(strncmp(err.message, want, strlen(want)) == 0,
                  "got '%s'", err.message);
    unlink(path);

    /* a missing file */
    ck_assert_int_eq(sx_cfg_load_file(path, &root, &err), -1);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.message, "No such file"));
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");

    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_nested_lines_and_paths);
    tcase_add_test(tc, test_accessors_null_safe);
    tcase_add_test(tc, test_parse_bool);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse_errors");
    tcase_add_test(tc, test_err_duplicate_key);
    tcase_add_test(tc, test_err_alias_anchor);
    tcase_add_test(tc, test_err_documents_and_top_level);
    tcase_add_test(tc, test_err_non_scalar_key);
    tcase_add_test(tc, test_err_syntax_quotes_libyaml);
    tcase_add_test(tc, test_err_nul_and_depth);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_add_test(tc, test_apply_values);
    tcase_add_test(tc, test_apply_defaults);
    tcase_add_test(tc, test_apply_int_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply_errors");
    tcase_add_test(tc, test_err_unknown_key);
    tcase_add_test(tc, test_err_wrong_type);
    tcase_add_test(tc, test_err_missing_required);
    tcase_add_test(tc, test_err_bad_duration);
    tcase_add_test(tc, test_err_bad_size);
    tcase_add_test(tc, test_err_bad_bool);
    tcase_add_test(tc, test_err_bad_int);
    tcase_add_test(tc, test_err_bad_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("copy_and_files");
    tcase_add_test(tc, test_copy_without);
    tcase_add_test(tc, test_load_file);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return sx_check_run(config_suite());
}
