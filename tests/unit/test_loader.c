/*
 * test_loader.c - the plugin loader's ABI gate and every way loading fails,
 * each with its own message naming the file and the reason; the kinds added
 * in 1.2 (load when built for 1.2, refused when built for 1.1); the host's
 * plugin loading (init failure, two files claiming one name); a plugin built
 * from each previous minor's frozen SDK headers (1.0, 1.1) loaded,
 * initialised and run by this host without it reading beyond the struct
 * sizes that minor had; and the host's reading of the optional ready op
 * (plugin_ready.h) only where a plugin's table has it.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "health.h"
#include "host.h"
#include "loader.h"
#include "plugin_ready.h"
#include "sx/sx_approval.h"
#include "sx/sx_backend.h"
#include "sx/sx_catalog.h"
#include "sx/sx_policy.h"
#include "sx/sx_sink.h"

/* Sizes as each previous minor had them (test_abi_layout.c,
 * abi_layout_1_N.c), indexed by minor: one entry per frozen SDK
 * (tests/fixtures/sdk-1.N) and fixture fx_sdk1N_backend. */
static const struct {
    unsigned descriptor, backend_ops, host_api;
} old_sizes[] = {
    {80, 64, 168}, /* 1.0 */
    {80, 64, 176}, /* 1.1: + sx_host_api.exec_set_info */
};
_Static_assert(sizeof old_sizes / sizeof old_sizes[0] == SX_ABI_MINOR,
               "one entry of old_sizes per previous minor");

static const char *fixture_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", SX_FIXTURE_DIR, name);
    return path;
}

static struct sx_plugin_ctx *load(const char *name, sx_error *err, int *rv)
{
    struct sx_plugin_ctx *p = NULL;
    memset(err, 0, sizeof *err);
    *rv = sx_plugin_open(fixture_path(name), &p, err);
    return p;
}

/* The message contains `what` (reported with the whole message if not). */
#define ck_assert_has(message, what)                                                    \
    ck_assert_msg(strstr((message), (what)) != NULL, "'%s' not in: %s", (what), (message))

START_TEST(current_abi_loads)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_current", &err, &rv);
    ck_assert_int_eq(rv, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->desc->name, "fx_current");
    ck_assert_uint_eq(p->desc->abi_minor, SX_ABI_MINOR);
    sx_plugin_close(p);
}
END_TEST

START_TEST(older_minor_loads)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_older_minor", &err, &rv);
    ck_assert_msg(rv == 0, "older minor refused: %s", err.message);
    ck_assert_uint_eq(p->desc->abi_minor, 0);
    ck_assert_uint_lt(p->desc->abi_minor, SX_ABI_MINOR);
    sx_plugin_close(p);
}
END_TEST

START_TEST(newer_minor_refused)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_newer_minor", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.code, "plugin_abi_mismatch");
    ck_assert_has(err.message, fixture_path("fx_newer_minor"));
    char want[256];
    snprintf(want, sizeof want, "built for SDK ABI %d.%d", SX_ABI_MAJOR, SX_ABI_MINOR + 1);
    ck_assert_has(err.message, want);
    snprintf(want, sizeof want, "newer than this host's ABI %d.%d", SX_ABI_MAJOR, SX_ABI_MINOR);
    ck_assert_has(err.message, want);
    snprintf(want, sizeof want, "upgrade the host or build the plugin against SDK %d.%d",
             SX_ABI_MAJOR, SX_ABI_MINOR);
    ck_assert_has(err.message, want);
}
END_TEST

START_TEST(other_major_refused)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_other_major", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.code, "plugin_abi_mismatch");
    ck_assert_has(err.message, fixture_path("fx_other_major"));
    char want[256];
    snprintf(want, sizeof want, "built for SDK ABI %d.0", SX_ABI_MAJOR + 1);
    ck_assert_has(err.message, want);
    snprintf(want, sizeof want, "this host speaks ABI %d.%d", SX_ABI_MAJOR, SX_ABI_MINOR);
    ck_assert_has(err.message, want);
    ck_assert_has(err.message, "major versions differ");
}
END_TEST

START_TEST(missing_file)
{
    sx_error err;
    int rv;
    load("fx_does_not_exist", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_not_found");
    ck_assert_has(err.message, fixture_path("fx_does_not_exist"));
    ck_assert_has(err.message, strerror(ENOENT));
}
END_TEST

START_TEST(not_elf)
{
    sx_error err;
    int rv;
    load("fx_not_elf", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, fixture_path("fx_not_elf"));
    ck_assert_has(err.message, "cannot load");
    /* and dlopen's own reason, whatever this libc words it as */
    ck_assert_ptr_null(dlopen(fixture_path("fx_not_elf"), RTLD_NOW | RTLD_LOCAL));
    char reason[1024];
    snprintf(reason, sizeof reason, "cannot load: %s", dlerror());
    ck_assert_has(err.message, reason);
}
END_TEST

START_TEST(no_entry_symbol)
{
    sx_error err;
    int rv;
    load("fx_no_entry", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, fixture_path("fx_no_entry"));
    ck_assert_has(err.message, "no entry symbol sx_plugin_entry()");
    ck_assert_has(err.message, "not a script-executor plugin");
}
END_TEST

START_TEST(null_required_op)
{
    sx_error err;
    int rv;
    load("fx_null_op", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, fixture_path("fx_null_op"));
    ck_assert_has(err.message, "required event_sink op 'write' is NULL");
}
END_TEST

START_TEST(abi_check_truncated_descriptor)
{
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = 0, .struct_size = 8};
    sx_error err;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "x.so", &err), -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, "plugin x.so: descriptor is 8 bytes, ABI 1.0 needs at least 80");
    ck_assert_int_eq(sx_plugin_abi_check(NULL, "x.so", &err), -1);
    ck_assert_has(err.message, "plugin x.so: sx_plugin_entry() returned NULL");
}
END_TEST

START_TEST(abi_check_unknown_kind)
{
    /* refused before the ops table is read: a bare struct_size will do */
    static const uint32_t ops_size = 64;
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = SX_ABI_MINOR,
                              .struct_size = sizeof d, .name = "a", .version = "1",
                              .provides = "p", .kind = (sx_plugin_kind)42, .ops = &ops_size};
    sx_error err;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "a.so", &err), -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, "plugin a.so (a): kind 42 (unknown) is not supported by this host");
    /* 1.1's reserved approval kind, from a plugin built for 1.1 */
    d.kind = SX_KIND_APPROVAL;
    d.abi_minor = 1;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "a.so", &err), -1);
    ck_assert_has(err.message, "plugin a.so (a): kind 4 (approval) exists since SDK ABI 1.2, but the "
                               "plugin was built for ABI 1.1");
}
END_TEST

START_TEST(real_plugins_pass_gate)
{
    const char *names[] = {"script_run", "audit_file", "backend_fake"};
    for (size_t i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.so", SX_PLUGIN_DIR, names[i]);
        struct sx_plugin_ctx *p = NULL;
        sx_error err;
        ck_assert_msg(sx_plugin_open(path, &p, &err) == 0, "%s: %s", path, err.message);
        ck_assert_str_eq(p->desc->name, names[i]);
        sx_plugin_close(p);
    }
}
END_TEST

/* ------------------------------------------------- kinds added in 1.2 */

static const struct {
    const char *fixture;    /* built for 1.2; "<fixture>_1_1" claims 1.1 */
    sx_plugin_kind kind;
    const char *kind_name;
    uint32_t ops_size;
} new_kinds[] = {
    {"fx_policy", SX_KIND_POLICY, "policy", sizeof(sx_policy_ops)},
    {"fx_catalog", SX_KIND_IMAGE_CATALOG, "image_catalog", sizeof(sx_catalog_ops)},
    {"fx_service", SX_KIND_SERVICE, "service", sizeof(sx_service_ops)},
    {"fx_approval", SX_KIND_APPROVAL, "approval", sizeof(sx_approval_ops)},
};
#define N_NEW_KINDS ((int)(sizeof new_kinds / sizeof new_kinds[0]))

/* Loop test: _i indexes new_kinds. */
START_TEST(kind_since_1_2_loads)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load(new_kinds[_i].fixture, &err, &rv);
    ck_assert_msg(rv == 0, "%s refused: %s", new_kinds[_i].fixture, err.message);
    ck_assert_str_eq(p->desc->name, new_kinds[_i].fixture);
    ck_assert_uint_eq(p->desc->abi_minor, 2);
    ck_assert_int_eq(p->desc->kind, new_kinds[_i].kind);
    ck_assert_str_eq(sx_plugin_kind_name(p->desc->kind), new_kinds[_i].kind_name);
    ck_assert_uint_eq(*(const uint32_t *)p->desc->ops, new_kinds[_i].ops_size);
    sx_plugin_close(p);
}
END_TEST

/* Loop test: the same plugin, its descriptor claiming 1.1. */
START_TEST(kind_since_1_2_refused_from_1_1_plugin)
{
    char name[64];
    snprintf(name, sizeof name, "%s_1_1", new_kinds[_i].fixture);
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load(name, &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.code, "plugin_invalid");
    char want[1200];
    snprintf(want, sizeof want, "plugin %s (%s): kind %d (%s) exists since SDK ABI 1.2, but the "
             "plugin was built for ABI 1.1", fixture_path(name), name, (int)new_kinds[_i].kind,
             new_kinds[_i].kind_name);
    ck_assert_has(err.message, want);
}
END_TEST

START_TEST(kind_since_1_2_required_ops)
{
    static const struct {
        const char *fixture, *message;
    } cases[] = {
        {"fx_catalog_no_resolve", "required image_catalog op 'resolve' is NULL"},
        {"fx_approval_no_decide", "required approval op 'decide' is NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sx_error err;
        int rv;
        struct sx_plugin_ctx *p = load(cases[i].fixture, &err, &rv);
        ck_assert_int_eq(rv, -1);
        ck_assert_ptr_null(p);
        ck_assert_str_eq(err.code, "plugin_invalid");
        ck_assert_has(err.message, fixture_path(cases[i].fixture));
        ck_assert_has(err.message, cases[i].message);
    }
}
END_TEST

/* ------------------------------------------- through the host (host.c) */

/* Open a host on a config whose plugins.dir is the fixture directory;
 * `rest` follows "    load: " (the list, then any other sections).  The
 * caller closes the host whatever the result, as main.c does. */
static int host_open(sx_host *host, const char *rest, sx_error *err)
{
    char path[] = "/tmp/sx-loader-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "script_executor:\n  plugins:\n    dir: \"%s\"\n    load: %s\n", SX_FIXTURE_DIR,
            rest);
    fclose(f);
    memset(err, 0, sizeof *err);
    int rv = sx_host_open(host, path, NULL, err);
    unlink(path);
    return rv;
}

START_TEST(init_failure_quotes_plugin_message)
{
    sx_host host;
    sx_error err;
    ck_assert_int_eq(host_open(&host, "[fx_current, fx_init_fails]\n", &err), -1);
    ck_assert_str_eq(err.code, "fixture_init_failed"); /* the plugin's own code */
    ck_assert_has(err.message, "plugin fx_init_fails failed to initialise: "
                               "fixture refuses to start: missing licence key");
    /* the plugin that did start is finalised and unloaded by close */
    ck_assert_int_eq((int)host.n_plugins, 2);
    ck_assert_int_eq(host.plugins[0]->initialized, 1);
    ck_assert_int_eq(host.plugins[1]->initialized, 0);
    sx_host_close(&host);
}
END_TEST

START_TEST(two_files_claiming_one_name_refused)
{
    /* fx_claims_current.so's descriptor says "fx_current" */
    const char *orders[] = {"[fx_current, fx_claims_current]\n",
                            "[fx_claims_current, fx_current]\n"};
    for (size_t i = 0; i < 2; i++) {
        sx_host host;
        sx_error err;
        ck_assert_int_eq(host_open(&host, orders[i], &err), -1);
        ck_assert_str_eq(err.code, "plugin_conflict");
        char both[2200];
        snprintf(both, sizeof both, "plugins %s and ",
                 fixture_path(i == 0 ? "fx_current" : "fx_claims_current"));
        ck_assert_has(err.message, both);
        snprintf(both, sizeof both, " and %s both claim the name 'fx_current'",
                 fixture_path(i == 0 ? "fx_claims_current" : "fx_current"));
        ck_assert_has(err.message, both);
        ck_assert_has(err.message, "plugin names must be unique");
        sx_host_close(&host);
    }
}
END_TEST

START_TEST(plugin_listed_twice_refused)
{
    sx_host host;
    sx_error err;
    ck_assert_int_eq(host_open(&host, "[fx_current, fx_current]\n", &err), -1);
    ck_assert_str_eq(err.code, "plugin_conflict");
    char want[1200];
    snprintf(want, sizeof want, "plugin 'fx_current' (%s) is listed twice in plugins.load",
             fixture_path("fx_current"));
    ck_assert_has(err.message, want);
    sx_host_close(&host);
}
END_TEST

START_TEST(file_name_and_plugin_name_differ_refused)
{
    sx_host host;
    sx_error err;
    ck_assert_int_eq(host_open(&host, "[fx_claims_current]\n", &err), -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    char want[1200];
    snprintf(want, sizeof want, "plugin %s calls itself 'fx_current', expected 'fx_claims_current'",
             fixture_path("fx_claims_current"));
    ck_assert_has(err.message, want);
    sx_host_close(&host);
}
END_TEST

/* ------------------ plugins built from a previous minor's frozen headers */

/* 1 when the byte at addr can be read (probed without touching it). */
static int readable(const void *addr)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ssize_t n = write(fds[1], addr, 1);
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    ck_assert_msg(n == 1 || e == EFAULT, "probe: %s", strerror(e));
    return n == 1;
}

/* The struct ends exactly where an inaccessible page begins. */
static void assert_guarded(const void *start, size_t size, const char *what)
{
    const unsigned char *end = (const unsigned char *)start + size;
    long page = sysconf(_SC_PAGESIZE);
    ck_assert_msg((uintptr_t)end % (uintptr_t)page == 0, "%s does not end at a page boundary", what);
    ck_assert_msg(readable(end - 1), "%s: its last byte is not readable", what);
    ck_assert_msg(!readable(end), "%s: the byte after it is readable (no guard page)", what);
}

/* Loop tests below: _i is the previous minor; its fixture is
 * fx_sdk1<_i>_backend, built from tests/fixtures/sdk-1.<_i>/include only. */

static const char *old_fixture(int minor)
{
    static char name[32];
    snprintf(name, sizeof name, "fx_sdk%d%d_backend", SX_ABI_MAJOR, minor);
    return name;
}

START_TEST(old_sdk_plugin_loads_and_is_guarded)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load(old_fixture(_i), &err, &rv);
    ck_assert_msg(rv == 0, "a plugin built from the 1.%d headers was refused: %s", _i, err.message);
    const sx_plugin_descriptor *d = p->desc;
    ck_assert_uint_eq(d->abi_major, SX_ABI_MAJOR);
    ck_assert_uint_eq(d->abi_minor, (unsigned)_i);
    ck_assert_uint_eq(d->struct_size, old_sizes[_i].descriptor);
    ck_assert_int_eq(d->kind, SX_KIND_BACKEND);
    char provides[32];
    snprintf(provides, sizeof provides, "exec.sdk%d%d", SX_ABI_MAJOR, _i);
    ck_assert_str_eq(d->provides, provides);
    const sx_backend_ops *ops = d->ops;
    ck_assert_uint_eq(ops->struct_size, old_sizes[_i].backend_ops);
    /* Any read past the 1.N sizes by the host faults: what the tests below
     * (and the load above) survive, the host did not read. */
    assert_guarded(d, d->struct_size, "the descriptor");
    assert_guarded(ops, ops->struct_size, "the backend ops table");
    /* sx_backend_ops.ready (1.2) lies in the unreadable page: the host's
     * accessor does not touch it */
    ck_assert_uint_ge(offsetof(sx_backend_ops, ready), ops->struct_size);
    ck_assert_ptr_null(sx_plugin_ready_op(d));
    sx_plugin_close(p);
}
END_TEST

START_TEST(old_sdk_backend_runs_in_host)
{
    const char *name = old_fixture(_i);
    sx_host host;
    sx_error err;
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg,
                              "[%s]\n"
                              "  executors:\n"
                              "    - name: old\n"
                              "      kind: exec.sdk%d%d\n"
                              "      greeting: \"hi from 1.%d\"\n"
                              "      exit_code: 3\n",
                              name, SX_ABI_MAJOR, _i, _i),
                     0);
    int rv = host_open(&host, cfg, &err);
    free(cfg);
    ck_assert_msg(rv == 0, "%s: %s", err.code, err.message);
    sx_executor *ex = sx_host_executor(&host, "old");
    ck_assert_ptr_nonnull(ex);
    ck_assert_str_eq(ex->plugin->desc->name, name);
    ck_assert_int_eq(ex->plugin->initialized, 1);

    /* what the plugin saw: this host's table, of which it reads its own
     * minor's bytes */
    char *desc = ex->ops->describe(ex->instance);
    ck_assert_ptr_nonnull(desc);
    char want[256];
    snprintf(want, sizeof want, "\"sdk\":\"%d.%d\",\"host_abi\":\"%d.%d\",\"host_api_size\":%zu",
             SX_ABI_MAJOR, _i, SX_ABI_MAJOR, SX_ABI_MINOR, sizeof(sx_host_api));
    ck_assert_has(desc, want);
    snprintf(want, sizeof want, "\"greeting\":\"hi from 1.%d\",\"exit_code\":3", _i);
    ck_assert_has(desc, want);
    free(desc);
    ck_assert_uint_gt(sizeof(sx_host_api), old_sizes[_i].host_api);

    /* the host's readiness probe (health.c, /readyz) over this plugin: its
     * table ends before `ready`, in front of an unreadable page; the probe
     * survives and lists no check for it (it counts as always ready) */
    cJSON *report = NULL;
    sx_host_readiness(&host, &report);
    ck_assert_ptr_nonnull(report);
    const cJSON *check;
    cJSON_ArrayForEach(check, cJSON_GetObjectItem(report, "checks"))
        ck_assert_str_ne(cJSON_GetStringValue(cJSON_GetObjectItem(check, "plugin")), name);
    cJSON_Delete(report);

    const char *script = "echo hi";
    sx_exec_spec spec = {.struct_size = sizeof spec, .execution_id = "run-1",
                         .step_name = "old", .interpreter = "/bin/sh", .script = script,
                         .script_len = strlen(script), .script_hash = "sha256:x",
                         .stdin_data = "from stdin\n", .stdin_len = 11, .timeout_ms = 5000,
                         .params_json = "{}"};
    char *plan = NULL;
    ck_assert_int_eq(ex->ops->render(ex->instance, &spec, &plan, &err), 0);
    snprintf(want, sizeof want,
             "{\"kind\":\"exec.sdk%d%d\",\"interpreter\":\"/bin/sh\",\"script_bytes\":7}",
             SX_ABI_MAJOR, _i);
    ck_assert_str_eq(plan, want);
    free(plan);

    sx_exec *exec = NULL;
    ck_assert_int_eq(sx_exec_create(&host, "run-1", "old", NULL, "alice", &exec, &err), 0);
    sx_exec_result result;
    memset(&result, 0, sizeof result);
    result.struct_size = sizeof result;
    ck_assert_msg(ex->ops->run(ex->instance, &spec, exec, &result, &err) == 0, "%s", err.message);
    ck_assert_int_eq(atomic_load(&exec->started), 1); /* exec_started called */
    ck_assert_int_eq(result.termination, SX_TERM_EXITED);
    ck_assert_int_eq(result.exit_code, 3);
    cJSON *out = cJSON_CreateObject();
    sx_exec_add_output(exec, out);
    snprintf(want, sizeof want, "hi from 1.%d\nfrom stdin\n", _i);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "stdout")->valuestring, want);
    snprintf(want, sizeof want, "sdk%d%d: script of 7 bytes\n", SX_ABI_MAJOR, _i);
    ck_assert_str_eq(cJSON_GetObjectItem(out, "stderr")->valuestring, want);
    cJSON_Delete(out);
    /* from 1.1 on the plugin attached info through exec_set_info (1.1) */
    cJSON *info = sx_exec_info_copy(exec);
    const cJSON *fixture_sdk = cJSON_GetObjectItem(info, "fixture_sdk");
    if (_i >= 1) {
        snprintf(want, sizeof want, "%d.%d", SX_ABI_MAJOR, _i);
        ck_assert_msg(cJSON_IsString(fixture_sdk) && strcmp(fixture_sdk->valuestring, want) == 0,
                      "exec_set_info from a 1.%d plugin did not arrive", _i);
    } else {
        ck_assert_ptr_null(fixture_sdk);
    }
    cJSON_Delete(info);
    sx_exec_destroy(exec);
    sx_host_close(&host); /* instance_destroy, fini, dlclose */
}
END_TEST

START_TEST(old_sdk_backend_option_errors)
{
    sx_host host;
    sx_error err;
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg,
                              "[%s]\n"
                              "  executors:\n"
                              "    - name: old\n"
                              "      kind: exec.sdk%d%d\n"
                              "      exit_code: three\n",
                              old_fixture(_i), SX_ABI_MAJOR, _i),
                     0);
    ck_assert_int_eq(host_open(&host, cfg, &err), -1);
    free(cfg);
    ck_assert_str_eq(err.code, "invalid_config");
    char want[128];
    snprintf(want, sizeof want, "executor 'old' (exec.sdk%d%d, line 6)", SX_ABI_MAJOR, _i);
    ck_assert_has(err.message, want);
    ck_assert_has(err.message, "script_executor.executors[0].exit_code (line 8): "
                               "expected an integer, found 'three'");
    sx_host_close(&host);
}
END_TEST

/* ------------------------------ the optional ready op (plugin_ready.h) */

static int ready_yes(void *state, sx_error *err)
{
    (void)state, (void)err;
    return 0;
}

START_TEST(ready_op_only_where_the_table_has_it)
{
    sx_backend_ops bops = {.struct_size = sizeof bops, .ready = ready_yes};
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = SX_ABI_MINOR,
                              .struct_size = sizeof d, .kind = SX_KIND_BACKEND, .ops = &bops};
    ck_assert_ptr_eq(sx_plugin_ready_op(&d), ready_yes);
    /* a table built before 1.2 ends where ready begins: whatever lies there
     * is not the plugin's ready op */
    bops.struct_size = offsetof(sx_backend_ops, ready);
    ck_assert_ptr_null(sx_plugin_ready_op(&d));
    bops.struct_size = offsetof(sx_backend_ops, ready) + sizeof(void *) - 1;
    ck_assert_ptr_null(sx_plugin_ready_op(&d));
    bops.struct_size = sizeof bops;
    bops.ready = NULL; /* built for 1.2, no ready op: always ready */
    ck_assert_ptr_null(sx_plugin_ready_op(&d));

    sx_sink_ops sops = {.struct_size = sizeof sops, .ready = ready_yes};
    d.kind = SX_KIND_EVENT_SINK;
    d.ops = &sops;
    ck_assert_ptr_eq(sx_plugin_ready_op(&d), ready_yes);
    sops.struct_size = offsetof(sx_sink_ops, ready);
    ck_assert_ptr_null(sx_plugin_ready_op(&d));

    sx_service_ops vops = {.struct_size = sizeof vops, .ready = ready_yes};
    d.kind = SX_KIND_SERVICE;
    d.ops = &vops;
    ck_assert_ptr_eq(sx_plugin_ready_op(&d), ready_yes);
    sx_approval_ops aops = {.struct_size = sizeof aops, .ready = ready_yes};
    d.kind = SX_KIND_APPROVAL;
    d.ops = &aops;
    ck_assert_ptr_eq(sx_plugin_ready_op(&d), ready_yes);

    /* kinds without a ready op, and no descriptor at all */
    sx_policy_ops pops = {.struct_size = sizeof pops};
    d.kind = SX_KIND_POLICY;
    d.ops = &pops;
    ck_assert_ptr_null(sx_plugin_ready_op(&d));
    ck_assert_ptr_null(sx_plugin_ready_op(NULL));
}
END_TEST

START_TEST(ready_op_of_loaded_plugins)
{
    /* services and approval stores built for 1.2 have theirs */
    const char *with_ready[] = {"fx_service", "fx_approval"};
    for (size_t i = 0; i < 2; i++) {
        sx_error err;
        int rv;
        struct sx_plugin_ctx *p = load(with_ready[i], &err, &rv);
        ck_assert_msg(rv == 0, "%s", err.message);
        sx_plugin_ready_fn ready = sx_plugin_ready_op(p->desc);
        ck_assert_ptr_nonnull(ready);
        ck_assert_int_eq(ready(p->state, &err), 0);
        sx_plugin_close(p);
    }
    /* a 1.2 sink that left it NULL */
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_current", &err, &rv);
    ck_assert_int_eq(rv, 0);
    ck_assert_ptr_null(sx_plugin_ready_op(p->desc));
    sx_plugin_close(p);
    /* the frozen-SDK backends: old_sdk_plugin_loads_and_is_guarded */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *abi = tcase_create("abi");
    tcase_add_test(abi, current_abi_loads);
    tcase_add_test(abi, older_minor_loads);
    tcase_add_test(abi, newer_minor_refused);
    tcase_add_test(abi, other_major_refused);
    tcase_add_test(abi, abi_check_truncated_descriptor);
    tcase_add_test(abi, abi_check_unknown_kind);
    tcase_add_test(abi, real_plugins_pass_gate);
    suite_add_tcase(s, abi);
    TCase *fail = tcase_create("failures");
    tcase_add_test(fail, missing_file);
    tcase_add_test(fail, not_elf);
    tcase_add_test(fail, no_entry_symbol);
    tcase_add_test(fail, null_required_op);
    suite_add_tcase(s, fail);
    TCase *host = tcase_create("host");
    tcase_add_test(host, init_failure_quotes_plugin_message);
    tcase_add_test(host, two_files_claiming_one_name_refused);
    tcase_add_test(host, plugin_listed_twice_refused);
    tcase_add_test(host, file_name_and_plugin_name_differ_refused);
    suite_add_tcase(s, host);
    TCase *kinds = tcase_create("kinds_1_2");
    tcase_add_loop_test(kinds, kind_since_1_2_loads, 0, N_NEW_KINDS);
    tcase_add_loop_test(kinds, kind_since_1_2_refused_from_1_1_plugin, 0, N_NEW_KINDS);
    tcase_add_test(kinds, kind_since_1_2_required_ops);
    suite_add_tcase(s, kinds);
    /* every previous minor, 1.0 .. current-1 */
    TCase *old = tcase_create("old_sdk");
    tcase_add_loop_test(old, old_sdk_plugin_loads_and_is_guarded, 0, SX_ABI_MINOR);
    tcase_add_loop_test(old, old_sdk_backend_runs_in_host, 0, SX_ABI_MINOR);
    tcase_add_loop_test(old, old_sdk_backend_option_errors, 0, SX_ABI_MINOR);
    suite_add_tcase(s, old);
    TCase *ready = tcase_create("ready_op");
    tcase_add_test(ready, ready_op_only_where_the_table_has_it);
    tcase_add_test(ready, ready_op_of_loaded_plugins);
    suite_add_tcase(s, ready);
    return sx_check_run(s);
}
