/*
 * test_loader.c - the plugin loader's ABI gate and every way loading fails,
 * each with its own message naming the file and the reason; the host's
 * plugin loading (init failure, two files claiming one name); and a plugin
 * built from the frozen SDK 1.0 headers loaded, initialised and run by this
 * host without it reading beyond the struct sizes 1.0 had.
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
#include "host.h"
#include "loader.h"
#include "sx/sx_backend.h"

/* Sizes as ABI 1.0 had them (test_abi_layout.c, abi_layout_1_0.c). */
#define SX_1_0_DESCRIPTOR_SIZE 80u
#define SX_1_0_BACKEND_OPS_SIZE 64u
#define SX_1_0_HOST_API_SIZE 168u

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
    ck_assert_has(err.message, "built for SDK ABI 1.2");
    ck_assert_has(err.message, "newer than this host's ABI 1.1");
    ck_assert_has(err.message, "upgrade the host or build the plugin against SDK 1.1");
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
    ck_assert_has(err.message, "built for SDK ABI 2.0");
    ck_assert_has(err.message, "this host speaks ABI 1.1");
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

START_TEST(abi_check_reserved_kind)
{
    static const uint32_t ops_size = 64;
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = SX_ABI_MINOR,
                              .struct_size = sizeof d, .name = "a", .version = "1",
                              .provides = "p", .kind = SX_KIND_APPROVAL, .ops = &ops_size};
    sx_error err;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "a.so", &err), -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_has(err.message, "plugin a.so (a): kind 4 (approval) is not supported by this host");
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

/* ------------------------------- a plugin built from the SDK 1.0 headers */

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

START_TEST(sdk_1_0_plugin_loads_and_is_guarded)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_sdk10_backend", &err, &rv);
    ck_assert_msg(rv == 0, "a plugin built from the 1.0 headers was refused: %s", err.message);
    const sx_plugin_descriptor *d = p->desc;
    ck_assert_uint_eq(d->abi_major, 1);
    ck_assert_uint_eq(d->abi_minor, 0);
    ck_assert_uint_eq(d->struct_size, SX_1_0_DESCRIPTOR_SIZE);
    ck_assert_int_eq(d->kind, SX_KIND_BACKEND);
    ck_assert_str_eq(d->provides, "exec.sdk10");
    const sx_backend_ops *ops = d->ops;
    ck_assert_uint_eq(ops->struct_size, SX_1_0_BACKEND_OPS_SIZE);
    /* Any read past the 1.0 sizes by the host faults: what the tests below
     * (and the load above) survive, the host did not read. */
    assert_guarded(d, d->struct_size, "the descriptor");
    assert_guarded(ops, ops->struct_size, "the backend ops table");
    sx_plugin_close(p);
}
END_TEST

START_TEST(sdk_1_0_backend_runs_in_host)
{
    sx_host host;
    sx_error err;
    int rv = host_open(&host,
                       "[fx_sdk10_backend]\n"
                       "  executors:\n"
                       "    - name: old\n"
                       "      kind: exec.sdk10\n"
                       "      greeting: \"hi from 1.0\"\n"
                       "      exit_code: 3\n",
                       &err);
    ck_assert_msg(rv == 0, "%s: %s", err.code, err.message);
    sx_executor *ex = sx_host_executor(&host, "old");
    ck_assert_ptr_nonnull(ex);
    ck_assert_str_eq(ex->plugin->desc->name, "fx_sdk10_backend");
    ck_assert_int_eq(ex->plugin->initialized, 1);

    /* what the plugin saw: this host's 1.1 table, of which it reads 168 bytes */
    char *desc = ex->ops->describe(ex->instance);
    ck_assert_ptr_nonnull(desc);
    char want[128];
    snprintf(want, sizeof want, "\"sdk\":\"1.0\",\"host_abi\":\"%d.%d\",\"host_api_size\":%zu",
             SX_ABI_MAJOR, SX_ABI_MINOR, sizeof(sx_host_api));
    ck_assert_has(desc, want);
    ck_assert_has(desc, "\"greeting\":\"hi from 1.0\",\"exit_code\":3");
    free(desc);
    ck_assert_uint_gt(sizeof(sx_host_api), SX_1_0_HOST_API_SIZE);

    const char *script = "echo hi";
    sx_exec_spec spec = {.struct_size = sizeof spec, .execution_id = "run-1",
                         .step_name = "old", .interpreter = "/bin/sh", .script = script,
                         .script_len = strlen(script), .script_hash = "sha256:x",
                         .stdin_data = "from stdin\n", .stdin_len = 11, .timeout_ms = 5000,
                         .params_json = "{}"};
    char *plan = NULL;
    ck_assert_int_eq(ex->ops->render(ex->instance, &spec, &plan, &err), 0);
    ck_assert_str_eq(plan, "{\"kind\":\"exec.sdk10\",\"interpreter\":\"/bin/sh\",\"script_bytes\":7}");
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
    ck_assert_str_eq(cJSON_GetObjectItem(out, "stdout")->valuestring, "hi from 1.0\nfrom stdin\n");
    ck_assert_str_eq(cJSON_GetObjectItem(out, "stderr")->valuestring, "sdk10: script of 7 bytes\n");
    cJSON_Delete(out);
    sx_exec_destroy(exec);
    sx_host_close(&host); /* instance_destroy, fini, dlclose */
}
END_TEST

START_TEST(sdk_1_0_backend_option_errors)
{
    sx_host host;
    sx_error err;
    ck_assert_int_eq(host_open(&host,
                               "[fx_sdk10_backend]\n"
                               "  executors:\n"
                               "    - name: old\n"
                               "      kind: exec.sdk10\n"
                               "      exit_code: three\n",
                               &err),
                     -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_has(err.message, "executor 'old' (exec.sdk10, line 6)");
    ck_assert_has(err.message, "script_executor.executors[0].exit_code (line 8): "
                               "expected an integer, found 'three'");
    sx_host_close(&host);
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
    tcase_add_test(abi, abi_check_reserved_kind);
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
    TCase *old = tcase_create("sdk_1_0");
    tcase_add_test(old, sdk_1_0_plugin_loads_and_is_guarded);
    tcase_add_test(old, sdk_1_0_backend_runs_in_host);
    tcase_add_test(old, sdk_1_0_backend_option_errors);
    suite_add_tcase(s, old);
    return sx_check_run(s);
}
