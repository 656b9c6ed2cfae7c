/*
 * test_backend_native.c - unit tests of the backend_native plugin, driving
 * the real .so (SX_BACKEND_NATIVE_SO) through dlopen + sx_plugin_entry with
 * the mock host of tests/support/mock_host.c.  Runs start the real
 * sx-native-supervisor, found next to the .so (SX_NATIVE_SUPERVISOR).
 */
#define _GNU_SOURCE
#include "config.h"
#include "mock_host.h"
#include "sx_check_main.h"
#include "sx/sx_backend.h"
#include "sx/sx_util.h"

#include <cJSON.h>
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#ifndef SX_BACKEND_NATIVE_SO
#error "SX_BACKEND_NATIVE_SO must name the plugin to test"
#endif
#ifndef SX_NATIVE_SUPERVISOR
#error "SX_NATIVE_SUPERVISOR must name the helper next to the plugin"
#endif

#define MIB (1024 * 1024)

static void *g_dl;
static const sx_plugin_descriptor *g_desc;
static const sx_backend_ops *g_ops;
static void *g_state;
static char g_tmp[PATH_MAX];        /* per-test directory, mode 0777 */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    g_dl = dlopen(SX_BACKEND_NATIVE_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(g_dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry;
    *(void **)&entry = dlsym(g_dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_msg(entry != NULL, "no %s", SX_PLUGIN_ENTRY_NAME);
    g_desc = entry();
    ck_assert_ptr_nonnull(g_desc);
    ck_assert_uint_eq(g_desc->abi_major, SX_ABI_MAJOR);
    ck_assert_uint_le(g_desc->abi_minor, SX_ABI_MINOR);
    ck_assert_int_eq(g_desc->kind, SX_KIND_BACKEND);
    ck_assert_str_eq(g_desc->name, "backend_native");
    ck_assert_str_eq(g_desc->provides, "exec.native");
    g_ops = g_desc->ops;
    ck_assert_ptr_nonnull(g_ops);
    ck_assert_uint_ge(g_ops->struct_size, sizeof(sx_backend_ops));
    sx_error err = {0};
    g_state = NULL;
    if (g_desc->init)
        ck_assert_msg(g_desc->init(sx_mock_ctx(), sx_mock_host_api(), &g_state,
                                   &err) == 0,
                      "init: %s", err.message);

    snprintf(g_tmp, sizeof g_tmp, "/tmp/sx-native-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_tmp));
    /* The scripts run as nobody when we are root: let them write here. */
    ck_assert_int_eq(chmod(g_tmp, 0777), 0);
}

static void teardown(void)
{
    if (g_desc && g_desc->fini)
        g_desc->fini(g_state);
    if (g_dl)
        dlclose(g_dl);
    g_dl = NULL;
    if (g_tmp[0])
        nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_tmp[0] = '\0';
    /* No test expects a warning (an unclean supervisor exit logs one). */
    ck_assert_int_eq(sx_mock_log_warn_count(), 0);
#if defined(__SANITIZE_ADDRESS__)
    /* Each test runs in its own forked process (CK_FORK), whose exit-time
     * leak report Check would not count: check here, per test. */
    ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
                  "memory leaked (see the LeakSanitizer report above)");
#endif
}

/* ---- helpers ------------------------------------------------------ */

/* snprintf that fails the test instead of truncating. */
static void xfmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xfmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < size, "formatting overflowed");
}

/* Create an instance from YAML (NULL = no config at all). */
static int try_instance(const char *name, const char *yaml, void **inst,
                        sx_error *err)
{
    sx_config_node *root = NULL;
    if (yaml != NULL) {
        int rc = sx_cfg_load_string(yaml, "test.yaml", &root, err);
        ck_assert_msg(rc == 0, "yaml: %s", err->message);
    }
    int rc = g_ops->instance_create(g_state, name, root, inst, err);
    sx_cfg_free(root);
    return rc;
}

static void *make_instance(const char *name, const char *yaml)
{
    void *inst = NULL;
    sx_error err = {0};
    int rc = try_instance(name, yaml, &inst, &err);
    ck_assert_msg(rc == 0, "instance_create: %s: %s", err.code, err.message);
    ck_assert_ptr_nonnull(inst);
    return inst;
}

static const char *const PATH_YAML = "default_env:\n  PATH: /usr/bin:/bin\n";

static sx_exec_spec spec_make(const char *interp, const char *script)
{
    sx_exec_spec s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.execution_id = "exec-test";
    s.step_name = "step";
    s.interpreter = interp;
    s.script = script;
    s.script_len = strlen(script);
    s.script_hash = "sha256:0";
    s.timeout_ms = 30000;
    s.params_json = "{}";
    return s;
}

typedef struct run_out {
    int rc;
    sx_exec_result res;
    sx_error err;
    sx_exec *exec;
    double wall;
} run_out;

/* Run spec; r->exec may be preset (else a fresh one is made). */
static void run_spec(void *inst, const sx_exec_spec *spec, run_out *r)
{
    if (r->exec == NULL)
        r->exec = sx_mock_exec_new();
    memset(&r->res, 0, sizeof r->res);
    r->res.struct_size = sizeof r->res;
    memset(&r->err, 0, sizeof r->err);
    double t0 = sx_now_monotonic();
    r->rc = g_ops->run(inst, spec, r->exec, &r->res, &r->err);
    r->wall = sx_now_monotonic() - t0;
}

static void run_done(run_out *r)
{
    sx_mock_exec_free(r->exec);
    r->exec = NULL;
}

#define OUT(r) sx_mock_exec_stdout((r)->exec)
#define ERR(r) sx_mock_exec_stderr((r)->exec)

static void assert_ran(const run_out *r)
{
    ck_assert_msg(r->rc == 0, "run failed: %s: %s", r->err.code, r->err.message);
}

static void assert_exited(const run_out *r, int code)
{
    assert_ran(r);
    ck_assert_msg(r->res.termination == SX_TERM_EXITED,
                  "termination %d signal %d, stderr: %s",
                  (int)r->res.termination, r->res.signal,
                  sx_mock_exec_stderr(r->exec));
    ck_assert_int_eq(r->res.exit_code, code);
}

/* The run left no child of ours behind (no supervisor, no zombie). */
static void assert_no_children(void)
{
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

static long read_pid_file(const char *dir, const char *name)
{
    char path[PATH_MAX];
    xfmt(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    long pid = 0;
    ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    ck_assert_int_gt(pid, 1);
    return pid;
}

static void assert_process_gone(long pid)
{
    errno = 0;
    int rc = kill((pid_t)pid, 0);
    ck_assert_msg(rc == -1 && errno == ESRCH,
                  "process %ld is still there (kill: %d, errno %d)", pid, rc,
                  errno);
}

static int am_root(void)
{
    return geteuid() == 0;
}

static char *write_file(const char *dir, const char *name, const char *text,
                        mode_t mode)
{
    static char path[PATH_MAX];
    xfmt(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static cJSON *parse_json(const char *text)
{
    ck_assert_ptr_nonnull(text);
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL && cJSON_IsObject(j), "not a JSON object: %s", text);
    return j;
}

/* ---- tests -------------------------------------------------------- */

START_TEST(test_descriptor_and_params)
{
    ck_assert_ptr_nonnull(g_ops->supported_params);
    ck_assert_ptr_null(g_ops->supported_params[0]);
    ck_assert_ptr_nonnull(g_ops->run);
    ck_assert_ptr_nonnull(g_ops->render);
    ck_assert_ptr_nonnull(g_ops->describe);
    ck_assert_ptr_nonnull(g_ops->load_script);
}
END_TEST

START_TEST(test_describe)
{
    void *inst = make_instance("shell",
                               "default_work_dir: /var/tmp\n"
                               "default_env:\n"
                               "  ZETA: secret-zeta-value\n"
                               "  ALPHA: secret-alpha-value\n"
                               "command_whitelist: [\"echo a\", \"echo b\"]\n");
    char *d = g_ops->describe(inst);
    cJSON *j = parse_json(d);
    ck_assert_ptr_null(strstr(d, "secret-zeta-value"));
    ck_assert_ptr_null(strstr(d, "secret-alpha-value"));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "kind")->valuestring, "exec.native");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "default_work_dir")->valuestring,
                     "/var/tmp");
    cJSON *names = cJSON_GetObjectItem(j, "default_env_names");
    ck_assert_int_eq(cJSON_GetArraySize(names), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring, "ALPHA");
    ck_assert_str_eq(cJSON_GetArrayItem(names, 1)->valuestring, "ZETA");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "command_whitelist_size")->valueint, 2);
    int expect_id = am_root() ? 65534 : (int)getuid();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "run_as_user")->valueint, expect_id);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "scripts_dir")));
    /* The helper next to the .so, as an absolute path. */
    char *sup = realpath(SX_NATIVE_SUPERVISOR, NULL);
    ck_assert_ptr_nonnull(sup);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "supervisor")->valuestring, sup);
    free(sup);
    cJSON *caps = cJSON_GetObjectItem(j, "capabilities");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(caps, "kill_process_tree")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(caps, "stdin")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(caps, "separate_stderr")));
    cJSON_Delete(j);
    free(d);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_invalid_config)
{
    struct {
        const char *yaml;
        const char *needle;
    } cases[] = {
        {"bogus_key: 1\n", "bogus_key"},
        {"default_work_dir: relative/dir\n", "default_work_dir"},
        {"run_as_user: -5\n", "run_as_user"},
        {"run_as_group: abc\n", "run_as_group"},
        {"scripts_dir: /nonexistent/sx-scripts\n", "scripts_dir"},
        {"default_env: [a, b]\n", "default_env"},
        {"command_whitelist: 3\n", "command_whitelist"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *inst = NULL;
        sx_error err = {0};
        ck_assert_int_eq(try_instance("bad", cases[i].yaml, &inst, &err), -1);
        ck_assert_str_eq(err.code, "invalid_config");
        ck_assert_msg(strstr(err.message, cases[i].needle) != NULL,
                      "'%s' not in '%s'", cases[i].needle, err.message);
    }
}
END_TEST

/* ---- the supervisor helper ---------------------------------------- */

/* instance_create fails with invalid_config, naming `needle`. */
static void assert_config_refused(const char *yaml, const char *needle)
{
    void *inst = NULL;
    sx_error err = {0};
    ck_assert_int_eq(try_instance("sup", yaml, &inst, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' not in '%s'",
                  needle, err.message);
}

START_TEST(test_supervisor_path_refused)
{
    char yaml[PATH_MAX + 64], path[PATH_MAX];
    /* Missing. */
    xfmt(path, sizeof path, "%s/no-such-supervisor", g_tmp);
    xfmt(yaml, sizeof yaml, "supervisor_path: %s\n", path);
    assert_config_refused(yaml, path);
    assert_config_refused(yaml, "supervisor_path");
    /* Not executable (no x bit: root is refused too). */
    char *file = write_file(g_tmp, "sup-noexec", "#!/bin/sh\n", 0644);
    xfmt(path, sizeof path, "%s", file);
    xfmt(yaml, sizeof yaml, "supervisor_path: %s\n", path);
    assert_config_refused(yaml, path);
    /* A directory. */
    xfmt(yaml, sizeof yaml, "supervisor_path: %s\n", g_tmp);
    assert_config_refused(yaml, g_tmp);
}
END_TEST

/* backend_native.so without the helper next to it: instance_create names
 * the place it looked. */
START_TEST(test_supervisor_missing_next_to_plugin)
{
    char copy[PATH_MAX];
    xfmt(copy, sizeof copy, "%s/backend_native.so", g_tmp);
    FILE *in = fopen(SX_BACKEND_NATIVE_SO, "rb");
    FILE *out = fopen(copy, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);

    void *dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry;
    *(void **)&entry = dlsym(dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_ptr_nonnull(entry);
    const sx_plugin_descriptor *desc = entry();
    ck_assert_ptr_ne(desc, g_desc);     /* really the copy */
    const sx_backend_ops *ops = desc->ops;
    void *state = NULL;
    sx_error err = {0};
    ck_assert_int_eq(desc->init(sx_mock_ctx(), sx_mock_host_api(), &state, &err), 0);

    char *dir = realpath(g_tmp, NULL);
    char expect[PATH_MAX + 32];
    xfmt(expect, sizeof expect, "%s/sx-native-supervisor", dir);
    free(dir);
    void *inst = NULL;
    ck_assert_int_eq(ops->instance_create(state, "shell", NULL, &inst, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, expect) != NULL, "'%s' not in '%s'",
                  expect, err.message);
    ck_assert_ptr_nonnull(strstr(err.message, "supervisor_path"));

    /* supervisor_path rescues it. */
    char yaml[PATH_MAX + 64];
    xfmt(yaml, sizeof yaml, "supervisor_path: %s\n", SX_NATIVE_SUPERVISOR);
    sx_config_node *root = NULL;
    ck_assert_int_eq(sx_cfg_load_string(yaml, "t.yaml", &root, &err), 0);
    ck_assert_msg(ops->instance_create(state, "shell", root, &inst, &err) == 0,
                  "%s", err.message);
    sx_cfg_free(root);
    ops->instance_destroy(inst);
    desc->fini(state);
    dlclose(dl);
}
END_TEST

START_TEST(test_supervisor_path_used)
{
    /* A copy of the helper elsewhere: describe shows it, runs use it. */
    char path[PATH_MAX], yaml[PATH_MAX + 128];
    xfmt(path, sizeof path, "%s/my-supervisor", g_tmp);
    ck_assert_int_eq(link(SX_NATIVE_SUPERVISOR, path) == 0 ||
                         symlink(SX_NATIVE_SUPERVISOR, path) == 0,
                     1);
    xfmt(yaml, sizeof yaml, "supervisor_path: %s\n%s", path, PATH_YAML);
    void *inst = make_instance("own", yaml);
    char *d = g_ops->describe(inst);
    cJSON *j = parse_json(d);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "supervisor")->valuestring, path);
    cJSON_Delete(j);
    free(d);
    /* The script's parent is the helper, not a copy of the host. */
    sx_exec_spec spec = spec_make("/bin/bash", "cat /proc/$PPID/comm\n");
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "my-supervisor\n");
    run_done(&r);
    g_ops->instance_destroy(inst);

    /* Something that is not a supervisor: the run fails, naming it. */
    inst = make_instance("true", "supervisor_path: /bin/true\n");
    spec = spec_make("/bin/bash", "echo never\n");
    run_spec(inst, &spec, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err.code, "backend_error");
    ck_assert_ptr_nonnull(strstr(r.err.message, "/bin/true"));
    ck_assert_str_eq(OUT(&r), "");
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_supervisor_by_hand)
{
    /* Without the host's descriptors it says what it is and exits 2. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close_range(3, ~0U, 0);
        execl(SX_NATIVE_SUPERVISOR, SX_NATIVE_SUPERVISOR, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[512] = {0};
    ssize_t n, got = 0;
    while ((n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    close(p[0]);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    ck_assert_ptr_nonnull(strstr(buf, "not meant to be run by hand"));
}
END_TEST

START_TEST(test_clean_env)
{
    setenv("SX_TEST_HOST_SECRET", "host-secret-value", 1);
    void *inst = make_instance("envtest",
                               "default_env:\n"
                               "  PATH: /usr/bin:/bin\n"
                               "  A: from_default\n"
                               "  B: default_b\n");
    char *keys[] = {"B", "C"};
    char *vals[] = {"from_step", "step c"};
    sx_strmap env = {2, keys, vals};
    sx_exec_spec spec = spec_make("/bin/bash", "env\n");
    spec.env = &env;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    const char *out = OUT(&r);
    ck_assert_ptr_nonnull(strstr(out, "A=from_default\n"));
    ck_assert_ptr_nonnull(strstr(out, "B=from_step\n"));
    ck_assert_ptr_nonnull(strstr(out, "C=step c\n"));
    ck_assert_ptr_nonnull(strstr(out, "PATH=/usr/bin:/bin\n"));
    ck_assert_ptr_null(strstr(out, "default_b"));
    ck_assert_ptr_null(strstr(out, "SX_TEST_HOST_SECRET"));
    ck_assert_ptr_null(strstr(out, "host-secret-value"));
    /* Nothing but ours, and what bash adds itself. */
    static const char *const allowed[] = {"A", "B", "C", "PATH", "PWD",
                                          "SHLVL", "_"};
    char *copy = strdup(out);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t n = strcspn(line, "=");
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            if (strlen(allowed[i]) == n && strncmp(line, allowed[i], n) == 0)
                ok = 1;
        ck_assert_msg(ok, "unexpected variable in the script's env: %s", line);
    }
    free(copy);
    run_done(&r);
    unsetenv("SX_TEST_HOST_SECRET");
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_exit_codes)
{
    void *inst = make_instance("shell", PATH_YAML);
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "exit 0\n");
    spec.timeout_ms = INT64_MAX;                /* no overflow anywhere */
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    run_done(&r);

    spec = spec_make("/bin/sh", "echo three; exit 3\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 3);
    ck_assert_str_eq(OUT(&r), "three\n");
    ck_assert_int_eq(r.res.signal, 0);
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_signal_death)
{
    void *inst = make_instance("shell", PATH_YAML);
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "echo before\nkill -TERM $$\necho after\n");
    run_spec(inst, &spec, &r);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_SIGNALED);
    ck_assert_int_eq(r.res.signal, SIGTERM);
    ck_assert_str_eq(OUT(&r), "before\n");
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_host_signal_state_not_inherited)
{
    /* The host ignores SIGPIPE (host/main.c) and this thread blocks
     * SIGTERM: the script must still get default dispositions and an
     * empty mask. */
    void *inst = make_instance("shell", PATH_YAML);
    struct sigaction ign, old_pipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old_mask);

    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash",
                                  "yes | head -n 1\n"
                                  "grep -E '^Sig(Blk|Ign)' /proc/self/status\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "y\n"
                              "SigBlk:\t0000000000000000\n"
                              "SigIgn:\t0000000000000000\n");
    ck_assert_str_eq(ERR(&r), "");          /* no "yes: Broken pipe" */
    run_done(&r);

    spec = spec_make("/bin/bash", "kill -TERM $$\necho survived\n");
    run_spec(inst, &spec, &r);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_SIGNALED);
    ck_assert_int_eq(r.res.signal, SIGTERM);
    run_done(&r);

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_host_fds_not_inherited)
{
    void *inst = make_instance("shell", PATH_YAML);
    /* A descriptor without CLOEXEC, as a careless host library might have. */
    int leaked = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(leaked, 0);
    int leaked_hi = fcntl(leaked, F_DUPFD, 40);
    ck_assert_int_ge(leaked_hi, 40);
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash",
                                  "ls /proc/$$/fd\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    /* stdio, the script memfd, and bash's own script fd (255). */
    char *copy = strdup(OUT(&r));
    char *save = NULL;
    int seen[4] = {0};
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int fd = atoi(l);
        ck_assert_msg(fd <= 3 || fd == 255, "fd %s reached the script", l);
        if (fd <= 3)
            seen[fd] = 1;
    }
    ck_assert(seen[0] && seen[1] && seen[2] && seen[3]);
    free(copy);
    run_done(&r);
    close(leaked);
    close(leaked_hi);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_stdout_stderr)
{
    void *inst = make_instance("shell", PATH_YAML);
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash",
                                  "echo out1\necho err1 >&2\necho out2\n"
                                  "printf 'err2' >&2\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "out1\nout2\n");
    ck_assert_str_eq(ERR(&r), "err1\nerr2");
    ck_assert_int_eq(r.exec->bad_stream_calls, 0);
    ck_assert_int_eq(r.exec->started_calls, 1);
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_stdin_small_and_none)
{
    void *inst = make_instance("shell", PATH_YAML);
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "cat\necho done\n");
    spec.stdin_data = "hello\nworld\n";
    spec.stdin_len = strlen(spec.stdin_data);
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "hello\nworld\ndone\n");
    run_done(&r);

    /* No stdin: /dev/null, so cat ends at once. */
    spec = spec_make("/bin/bash",
                     "cat\necho done\n"
                     "[ /proc/self/fd/0 -ef /dev/null ] && echo devnull\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "done\ndevnull\n");
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

static char *pattern(size_t n)
{
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 31 + i / 977) % 26);
    return p;
}

START_TEST(test_stdin_big_no_deadlock)
{
    void *inst = make_instance("shell", PATH_YAML);
    size_t n = MIB;
    char *data = pattern(n);

    /* Echo 1 MiB back while it is being written. */
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "cat\n");
    spec.stdin_data = data;
    spec.stdin_len = n;
    spec.timeout_ms = 20000;
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_uint_eq(r.exec->out.len, n);
    ck_assert(memcmp(r.exec->out.data, data, n) == 0);
    ck_assert_double_lt(r.wall, 10.0);
    run_done(&r);

    /* 1 MiB of output before reading any stdin. */
    spec = spec_make("/bin/bash",
                     "head -c 1048576 /dev/zero | tr '\\0' 'z'\n"
                     "wc -c >&2\n");
    spec.stdin_data = data;
    spec.stdin_len = n;
    spec.timeout_ms = 20000;
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_uint_eq(r.exec->out.len, n);
    ck_assert_str_eq(ERR(&r), "1048576\n");
    run_done(&r);

    /* The script never reads its stdin: no SIGPIPE for the host. */
    spec = spec_make("/bin/bash", "exec 0<&-\necho closed\n");
    spec.stdin_data = data;
    spec.stdin_len = n;
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "closed\n");
    run_done(&r);

    free(data);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_big_script)
{
    void *inst = make_instance("shell", PATH_YAML);
    size_t cap = 600 * 1024, len = 0;
    char *script = malloc(cap);
    ck_assert_ptr_nonnull(script);
    len += (size_t)sprintf(script + len, "v=0\n");
    int count = 0;
    while (len < 500 * 1024) {
        len += (size_t)sprintf(script + len, "v=$((v+1))\n");
        count++;
    }
    len += (size_t)sprintf(script + len, "echo \"LAST_LINE v=$v\"\n");
    ck_assert_uint_gt(len, 500 * 1024);

    sx_exec_spec spec = spec_make("/bin/bash", script);
    spec.script_len = len;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    char expect[64];
    xfmt(expect, sizeof expect, "LAST_LINE v=%d\n", count);
    ck_assert_str_eq(OUT(&r), expect);
    run_done(&r);
    free(script);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_script_delivery_memfd)
{
    void *inst = make_instance("shell", PATH_YAML);
    const char *args[] = {"a1"};
    sx_exec_spec spec = spec_make(
        "/bin/bash",
        "echo \"0=$0\"\n"
        "tr '\\0' ' ' < /proc/$$/cmdline; echo\n"
        "if echo junk >> \"$0\" 2>/dev/null; then echo writable; else echo sealed; fi\n");
    spec.args = args;
    spec.n_args = 1;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "0=/proc/self/fd/3\n"
                              "/bin/bash /proc/self/fd/3 a1 \n"
                              "sealed\n");
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_args)
{
    void *inst = make_instance("shell", PATH_YAML);
    const char *args[] = {"a", "b c", "", "$HOME;*"};
    sx_exec_spec spec = spec_make("/bin/bash", "printf '[%s]' \"$@\"; echo \" $#\"\n");
    spec.args = args;
    spec.n_args = 4;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "[a][b c][][$HOME;*] 4\n");
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_python3)
{
    void *inst = make_instance("py", PATH_YAML);
    const char *args[] = {"a", "b c"};
    sx_exec_spec spec = spec_make("python3",
                                  "import sys, os\n"
                                  "print('py', sys.argv[1:], os.getcwd())\n"
                                  "sys.stderr.write('to-stderr\\n')\n"
                                  "sys.exit(4)\n");
    spec.args = args;
    spec.n_args = 2;
    spec.working_dir = g_tmp;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 4);
    char expect[PATH_MAX + 64];
    xfmt(expect, sizeof expect, "py ['a', 'b c'] %s\n", g_tmp);
    ck_assert_str_eq(OUT(&r), expect);
    ck_assert_str_eq(ERR(&r), "to-stderr\n");
    run_done(&r);
    g_ops->instance_destroy(inst);

    /* No PATH at all: /usr/bin/python3. */
    inst = make_instance("py2", NULL);
    spec = spec_make("python3", "print('fallback')\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "fallback\n");
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_ruby)
{
    void *inst = make_instance("rb", PATH_YAML);
    const char *args[] = {"x", "y z"};
    sx_exec_spec spec = spec_make("ruby",
                                  "puts 'rb ' + ARGV.join('|')\n"
                                  "STDERR.puts 'rb-err'\n"
                                  "exit 2\n");
    spec.args = args;
    spec.n_args = 2;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    if (access("/usr/bin/ruby", X_OK) == 0 || access("/bin/ruby", X_OK) == 0) {
        assert_exited(&r, 2);
        ck_assert_str_eq(OUT(&r), "rb x|y z\n");
        ck_assert_str_eq(ERR(&r), "rb-err\n");
    } else {
        /* No ruby on this machine: the missing-interpreter error instead. */
        fprintf(stderr, "test_ruby: ruby is not installed; checking the "
                        "missing-interpreter error\n");
        ck_assert_int_eq(r.rc, -1);
        ck_assert_str_eq(r.err.code, "backend_error");
        ck_assert_ptr_nonnull(strstr(r.err.message, "ruby"));
        ck_assert_int_eq(r.exec->started_calls, 0);
    }
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_unknown_interpreter)
{
    void *inst = make_instance("shell", PATH_YAML);
    sx_exec_spec spec = spec_make("perl", "print 1\n");
    run_out r = {0};
    run_spec(inst, &spec, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err.code, "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(r.err.message, "perl"));
    ck_assert_int_eq(r.exec->started_calls, 0);
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_working_dir)
{
    char sub[PATH_MAX];
    xfmt(sub, sizeof sub, "%s/sub", g_tmp);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char yaml[PATH_MAX + 128];
    xfmt(yaml, sizeof yaml, "default_work_dir: %s\n%s", g_tmp, PATH_YAML);
    void *inst = make_instance("wd", yaml);
    run_out r = {0};

    sx_exec_spec spec = spec_make("/bin/bash", "pwd\n");
    run_spec(inst, &spec, &r);                  /* the default */
    assert_exited(&r, 0);
    char expect[PATH_MAX + 8];
    xfmt(expect, sizeof expect, "%s\n", g_tmp);
    ck_assert_str_eq(OUT(&r), expect);
    run_done(&r);

    spec.working_dir = sub;                     /* absolute */
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    xfmt(expect, sizeof expect, "%s\n", sub);
    ck_assert_str_eq(OUT(&r), expect);
    run_done(&r);

    spec.working_dir = "sub";                   /* under default_work_dir */
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), expect);
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_bad_working_dir)
{
    void *inst = make_instance("shell", PATH_YAML);
    char marker[PATH_MAX], script[PATH_MAX + 64];
    xfmt(marker, sizeof marker, "%s/ran", g_tmp);
    xfmt(script, sizeof script, "touch '%s'\necho ran\n", marker);
    run_out r = {0};

    sx_exec_spec spec = spec_make("/bin/bash", script);
    spec.working_dir = "/nonexistent/sx-dir";
    run_spec(inst, &spec, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err.code, "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(r.err.message, "/nonexistent/sx-dir"));
    ck_assert_str_eq(OUT(&r), "");
    run_done(&r);

    char *file = write_file(g_tmp, "plainfile", "x", 0644);
    char file_copy[PATH_MAX];
    xfmt(file_copy, sizeof file_copy, "%s", file);
    spec.working_dir = file_copy;
    run_spec(inst, &spec, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err.code, "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(r.err.message, file_copy));
    run_done(&r);

    if (am_root()) {
        /* Exists, but nobody (the script's user) may not enter it: found by
         * the child's chdir and reported through the error pipe. */
        char priv[PATH_MAX];
        xfmt(priv, sizeof priv, "%s/private", g_tmp);
        ck_assert_int_eq(mkdir(priv, 0700), 0);
        spec.working_dir = priv;
        run_spec(inst, &spec, &r);
        ck_assert_int_eq(r.rc, -1);
        ck_assert_str_eq(r.err.code, "invalid_parameter");
        ck_assert_ptr_nonnull(strstr(r.err.message, priv));
        ck_assert_str_eq(OUT(&r), "");
        run_done(&r);
    }
    ck_assert_int_eq(access(marker, F_OK), -1);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_whitelist)
{
    void *inst = make_instance("wl",
                               "default_env:\n  PATH: /usr/bin:/bin\n"
                               "command_whitelist:\n"
                               "  - echo allowed\n"
                               "  - exit 7\n");
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "\n  echo allowed \n\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "allowed\n");
    run_done(&r);

    spec = spec_make("/bin/sh", "exit 7");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 7);
    run_done(&r);

    const char *refused[] = {"echo allowed; id", "echo  allowed", "echo", ""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        spec = spec_make("/bin/bash", refused[i]);
        run_spec(inst, &spec, &r);
        ck_assert_int_eq(r.rc, -1);
        ck_assert_str_eq(r.err.code, "command_not_allowed");
        ck_assert_ptr_nonnull(strstr(r.err.message, "'wl'"));
        ck_assert_int_eq(r.exec->started_calls, 0);
        ck_assert_str_eq(OUT(&r), "");
        run_done(&r);
    }

    /* render refuses it the same way. */
    char *json = NULL;
    sx_error err = {0};
    spec = spec_make("/bin/bash", "rm -rf /");
    ck_assert_int_eq(g_ops->render(inst, &spec, &json, &err), -1);
    ck_assert_str_eq(err.code, "command_not_allowed");
    ck_assert_ptr_null(json);
    g_ops->instance_destroy(inst);
}
END_TEST

/* A script that starts a setsid'ed, double-forked daemon (holding stdout
 * open) and a plain background job, then `tail`. */
static void tree_script(char *buf, size_t size, const char *tail)
{
    xfmt(buf, size,
             "dir='%s'\n"
             "( setsid sh -c 'echo $$ > \"$1/daemon.pid\"; exec sleep 300' sh \"$dir\" & )\n"
             "sleep 300 &\n"
             "echo $! > \"$dir/bg.pid\"\n"
             "echo $$ > \"$dir/main.pid\"\n"
             "while [ ! -s \"$dir/daemon.pid\" ]; do sleep 0.02; done\n"
             "echo started\n"
             "%s",
             g_tmp, tail);
}

START_TEST(test_timeout_kills_tree)
{
    void *inst = make_instance("shell", PATH_YAML);
    char script[4096];
    tree_script(script, sizeof script, "sleep 300\necho not-reached\n");
    sx_exec_spec spec = spec_make("/bin/bash", script);
    spec.timeout_ms = 1000;
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_TIMED_OUT);
    ck_assert_int_eq(r.res.signal, SIGKILL);
    ck_assert_str_eq(OUT(&r), "started\n");
    ck_assert_double_ge(r.res.duration_seconds, 0.9);
    ck_assert_double_lt(r.res.duration_seconds, 5.0);
    ck_assert_double_lt(r.wall, 6.0);
    assert_process_gone(read_pid_file(g_tmp, "daemon.pid"));
    assert_process_gone(read_pid_file(g_tmp, "bg.pid"));
    assert_process_gone(read_pid_file(g_tmp, "main.pid"));
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_exit_kills_leftovers)
{
    void *inst = make_instance("shell", PATH_YAML);
    int warns = sx_mock_log_warn_count();
    char script[4096];
    tree_script(script, sizeof script, "exit 5\n");
    sx_exec_spec spec = spec_make("/bin/bash", script);
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 5);
    ck_assert_str_eq(OUT(&r), "started\n");
    /* The daemon held stdout open: without the tree kill this would wait
     * for the drain grace (and warn). */
    ck_assert_double_lt(r.wall, 1.5);
    ck_assert_int_eq(sx_mock_log_warn_count(), warns);
    assert_process_gone(read_pid_file(g_tmp, "daemon.pid"));
    assert_process_gone(read_pid_file(g_tmp, "bg.pid"));
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_output_flood)
{
    /* As fast as the script can write, on both streams: the timeout still
     * fires on time, and the output went through (the mock keeps 1 MiB). */
    void *inst = make_instance("shell", PATH_YAML);
    sx_exec_spec spec = spec_make("/bin/bash", "yes >&2 &\nexec yes\n");
    spec.timeout_ms = 700;
    run_out r = {0};
    r.exec = sx_mock_exec_new();
    r.exec->keep_max = MIB;
    run_spec(inst, &spec, &r);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_TIMED_OUT);
    ck_assert_double_lt(r.wall, 3.0);
    ck_assert_uint_gt(r.exec->total_out, MIB);
    ck_assert_uint_gt(r.exec->total_err, MIB);
    ck_assert_uint_eq(r.exec->out.len, MIB);
    ck_assert(strncmp(OUT(&r), "y\ny\ny\n", 6) == 0);
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

typedef struct cancel_arg {
    sx_exec *exec;
    int delay_ms;
} cancel_arg;

static void *cancel_later(void *p)
{
    cancel_arg *a = p;
    struct timespec ts = {a->delay_ms / 1000, (a->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    sx_mock_exec_cancel(a->exec);
    return NULL;
}

START_TEST(test_cancel)
{
    void *inst = make_instance("shell", PATH_YAML);
    char script[4096];
    tree_script(script, sizeof script, "sleep 300\n");
    sx_exec_spec spec = spec_make("/bin/bash", script);
    run_out r = {0};
    r.exec = sx_mock_exec_new();
    cancel_arg a = {r.exec, 500};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cancel_later, &a), 0);
    run_spec(inst, &spec, &r);
    pthread_join(t, NULL);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_CANCELLED);
    ck_assert_int_eq(r.res.signal, SIGKILL);
    ck_assert_double_ge(r.wall, 0.4);
    ck_assert_double_lt(r.wall, 5.0);
    ck_assert_str_eq(OUT(&r), "started\n");
    assert_process_gone(read_pid_file(g_tmp, "daemon.pid"));
    assert_process_gone(read_pid_file(g_tmp, "bg.pid"));
    run_done(&r);

    /* Cancelled before it starts: stopped at once. */
    r.exec = sx_mock_exec_new();
    sx_mock_exec_cancel(r.exec);
    spec = spec_make("/bin/bash", "sleep 300\n");
    run_spec(inst, &spec, &r);
    assert_ran(&r);
    ck_assert_int_eq(r.res.termination, SX_TERM_CANCELLED);
    ck_assert_double_lt(r.wall, 3.0);
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

/* The host dies mid-run: the supervisor (PDEATHSIG) kills the tree and
 * exits.  A forked copy of this process plays the host; we are a child
 * subreaper, so the orphaned supervisor becomes our child and we can see
 * it end. */
START_TEST(test_host_death_kills_tree)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    void *inst = make_instance("shell", PATH_YAML);
    char script[4096];
    tree_script(script, sizeof script, "sleep 300\n");
    pid_t host = fork();
    ck_assert_int_ge(host, 0);
    if (host == 0) {
        sx_exec_spec spec = spec_make("/bin/bash", script);
        run_out r = {0};
        run_spec(inst, &spec, &r);
        _exit(3);                           /* not reached: killed */
    }
    char path[PATH_MAX];
    xfmt(path, sizeof path, "%s/daemon.pid", g_tmp);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
        usleep(20 * 1000);
    usleep(100 * 1000);                     /* the pid is written */
    long daemon = read_pid_file(g_tmp, "daemon.pid");
    long bg = read_pid_file(g_tmp, "bg.pid");
    long main_pid = read_pid_file(g_tmp, "main.pid");

    /* The supervisor: the fake host's only child. */
    xfmt(path, sizeof path, "/proc/%ld/task/%ld/children", (long)host,
         (long)host);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long sup = 0;
    ck_assert_int_eq(fscanf(f, "%ld", &sup), 1);
    fclose(f);

    ck_assert_int_eq(kill(host, SIGKILL), 0);
    int st = 0;
    ck_assert_int_eq(waitpid(host, &st, 0), host);
    ck_assert(WIFSIGNALED(st));

    /* It stops within the kill rounds, and exits cleanly. */
    pid_t r = 0;
    for (int i = 0; i < 500 && (r = waitpid((pid_t)sup, &st, WNOHANG)) == 0; i++)
        usleep(20 * 1000);
    ck_assert_int_eq(r, (pid_t)sup);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "supervisor status %d", st);
    assert_process_gone(daemon);
    assert_process_gone(bg);
    assert_process_gone(main_pid);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_exec_started_refusal)
{
    void *inst = make_instance("shell", PATH_YAML);
    char marker[PATH_MAX], script[PATH_MAX + 64];
    xfmt(marker, sizeof marker, "%s/ran", g_tmp);
    xfmt(script, sizeof script, "touch '%s'\necho ran\n", marker);
    sx_exec_spec spec = spec_make("/bin/bash", script);
    run_out r = {0};
    r.exec = sx_mock_exec_new();
    r.exec->started_refuse = 1;
    run_spec(inst, &spec, &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err.code, "audit_unavailable");
    ck_assert_int_eq(r.exec->started_calls, 1);
    ck_assert_str_eq(OUT(&r), "");
    ck_assert_int_eq(access(marker, F_OK), -1);
    run_done(&r);

    /* The same run, allowed: it does run (so the check above can fail). */
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_int_eq(r.exec->started_calls, 1);
    ck_assert_int_eq(access(marker, F_OK), 0);
    run_done(&r);
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

START_TEST(test_rusage)
{
    void *inst = make_instance("shell", PATH_YAML);
    sx_exec_spec spec = spec_make("python3",
                                  "import time\n"
                                  "t = time.process_time()\n"
                                  "while time.process_time() - t < 0.3:\n"
                                  "    pass\n"
                                  "print('burned')\n");
    run_out r = {0};
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_str_eq(OUT(&r), "burned\n");
    ck_assert_int_ge(r.res.cpu_millis, 200);
    ck_assert_int_lt(r.res.cpu_millis, 10000);
    ck_assert_int_ge(r.res.memory_mb, 1);
    ck_assert_int_lt(r.res.memory_mb, 4096);
    ck_assert_double_ge(r.res.duration_seconds, 0.25);
    ck_assert_double_lt(r.res.duration_seconds, 10.0);
    run_done(&r);

    /* CPU burnt by a grandchild counts too; an idle script shows little. */
    spec = spec_make("/bin/bash",
                     "python3 -c 'import time\nt=time.process_time()\n"
                     "while time.process_time()-t < 0.3: pass'\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_int_ge(r.res.cpu_millis, 200);
    run_done(&r);

    spec = spec_make("/bin/bash", "sleep 0.5\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    ck_assert_int_lt(r.res.cpu_millis, 200);
    ck_assert_double_ge(r.res.duration_seconds, 0.45);
    ck_assert_double_lt(r.res.duration_seconds, 5.0);
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_render)
{
    void *inst = make_instance("shell",
                               "default_env:\n"
                               "  PATH: /usr/bin:/bin\n"
                               "  SECRET_TOKEN: s3cr3t-value\n");
    char *keys[] = {"ZED", "ALPHA"};
    char *vals[] = {"zed-value", "alpha-value"};
    sx_strmap env = {2, keys, vals};
    const char *args[] = {"x", "y z"};
    sx_exec_spec spec = spec_make("/bin/bash", "echo hi\n");
    spec.env = &env;
    spec.args = args;
    spec.n_args = 2;
    spec.working_dir = "sub";
    char *json = NULL;
    sx_error err = {0};
    ck_assert_msg(g_ops->render(inst, &spec, &json, &err) == 0, "%s",
                  err.message);
    cJSON *j = parse_json(json);
    ck_assert_ptr_null(strstr(json, "s3cr3t-value"));
    ck_assert_ptr_null(strstr(json, "zed-value"));
    ck_assert_ptr_null(strstr(json, "echo hi"));
    cJSON *argv = cJSON_GetObjectItem(j, "argv");
    ck_assert_int_eq(cJSON_GetArraySize(argv), 4);
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 0)->valuestring, "/bin/bash");
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 1)->valuestring, "/proc/self/fd/3");
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 2)->valuestring, "x");
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 3)->valuestring, "y z");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "working_dir")->valuestring, "/tmp/sub");
    cJSON *names = cJSON_GetObjectItem(j, "env_names");
    const char *expect[] = {"ALPHA", "PATH", "SECRET_TOKEN", "ZED"};
    ck_assert_int_eq(cJSON_GetArraySize(names), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(cJSON_GetArrayItem(names, i)->valuestring, expect[i]);
    int id = am_root() ? 65534 : (int)getuid();
    ck_assert_int_eq(cJSON_GetObjectItem(j, "run_as_user")->valueint, id);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "script_delivery")->valuestring, "memfd");
    cJSON_Delete(j);
    free(json);

    /* python3 is resolved on the step's PATH. */
    spec = spec_make("python3", "print(1)\n");
    json = NULL;
    ck_assert_int_eq(g_ops->render(inst, &spec, &json, &err), 0);
    j = parse_json(json);
    argv = cJSON_GetObjectItem(j, "argv");
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 0)->valuestring, "/usr/bin/python3");
    cJSON_Delete(j);
    free(json);
    g_ops->instance_destroy(inst);
}
END_TEST

START_TEST(test_run_as_user)
{
    run_out r = {0};
    sx_exec_spec spec = spec_make("/bin/bash", "id -u; id -g; id -G\n");
    void *inst = make_instance("shell", PATH_YAML);
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    if (am_root()) {
        ck_assert_str_eq(OUT(&r), "65534\n65534\n65534\n");
    } else {
        char expect[64];
        xfmt(expect, sizeof expect, "%ld\n", (long)getuid());
        ck_assert_ptr_nonnull(strstr(OUT(&r), expect));
    }
    run_done(&r);
    g_ops->instance_destroy(inst);

    /* -1: keep the host's ids. */
    inst = make_instance("keep", "run_as_user: -1\nrun_as_group: -1\n"
                                 "default_env:\n  PATH: /usr/bin:/bin\n");
    spec = spec_make("/bin/bash", "id -u; id -g\n");
    run_spec(inst, &spec, &r);
    assert_exited(&r, 0);
    char expect[64];
    xfmt(expect, sizeof expect, "%ld\n%ld\n", (long)geteuid(), (long)getegid());
    ck_assert_str_eq(OUT(&r), expect);
    run_done(&r);
    g_ops->instance_destroy(inst);
}
END_TEST

/* As a non-root host: defaults to its own uid, refuses another one. */
START_TEST(test_non_root_config)
{
    if (!am_root()) {
        void *inst = NULL;
        sx_error err = {0};
        ck_assert_int_eq(try_instance("x", "run_as_user: 0\n", &inst, &err), -1);
        ck_assert_str_eq(err.code, "invalid_config");
        return;
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            _exit(10);
        sx_config_node *root = NULL;
        sx_error err = {0};
        void *inst = NULL;
        if (sx_cfg_load_string("run_as_user: 0\n", "t.yaml", &root, &err) != 0)
            _exit(11);
        int rc = g_ops->instance_create(g_state, "x", root, &inst, &err);
        sx_cfg_free(root);
        if (rc != -1 || strcmp(err.code, "invalid_config") != 0 ||
            strstr(err.message, "run_as_user") == NULL)
            _exit(12);
        if (g_ops->instance_create(g_state, "y", NULL, &inst, &err) != 0)
            _exit(13);
        char *d = g_ops->describe(inst);
        cJSON *j = d ? cJSON_Parse(d) : NULL;
        cJSON *u = j ? cJSON_GetObjectItem(j, "run_as_user") : NULL;
        cJSON *g = j ? cJSON_GetObjectItem(j, "run_as_group") : NULL;
        int ok = u && g && u->valueint == 65534 && g->valueint == 65534;
        cJSON_Delete(j);
        free(d);
        g_ops->instance_destroy(inst);
        _exit(ok ? 0 : 14);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "non-root check failed: status %d", st);
}
END_TEST

START_TEST(test_load_script)
{
    void *inst = make_instance("noscripts", NULL);
    char *text = NULL;
    size_t len = 0;
    sx_error err = {0};
    ck_assert_int_eq(g_ops->load_script(inst, "/scripts/a.sh", &text, &len, &err), -1);
    ck_assert_str_eq(err.code, "unsupported_parameter");
    ck_assert_ptr_nonnull(strstr(err.message, "scripts_dir"));
    g_ops->instance_destroy(inst);

    char dir[PATH_MAX], sub[PATH_MAX + 8], link[PATH_MAX + 16], outside[PATH_MAX + 16];
    xfmt(dir, sizeof dir, "%s/scripts", g_tmp);
    xfmt(sub, sizeof sub, "%s/sub", dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    write_file(dir, "hello.sh", "echo hello\n", 0644);
    write_file(sub, "x.sh", "echo x\n", 0644);
    write_file(g_tmp, "outside.sh", "echo outside\n", 0644);
    xfmt(link, sizeof link, "%s/link.sh", dir);
    xfmt(outside, sizeof outside, "%s/outside.sh", g_tmp);
    ck_assert_int_eq(symlink(outside, link), 0);

    char yaml[PATH_MAX + 64];
    xfmt(yaml, sizeof yaml, "scripts_dir: %s\n", dir);
    inst = make_instance("scripts", yaml);
    const char *good[] = {"/scripts/hello.sh", "hello.sh", "./hello.sh"};
    for (size_t i = 0; i < 3; i++) {
        text = NULL;
        ck_assert_msg(g_ops->load_script(inst, good[i], &text, &len, &err) == 0,
                      "%s: %s", good[i], err.message);
        ck_assert_uint_eq(len, 11);
        ck_assert_str_eq(text, "echo hello\n");
        free(text);
    }
    text = NULL;
    ck_assert_int_eq(g_ops->load_script(inst, "/scripts/sub/x.sh", &text, &len, &err), 0);
    ck_assert_str_eq(text, "echo x\n");
    free(text);

    const char *bad[] = {"/scripts/../outside.sh", "/scripts/link.sh",
                         "/scripts/missing.sh", "/etc/passwd", "../outside.sh",
                         "/scripts/sub"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = NULL;
        memset(&err, 0, sizeof err);
        ck_assert_msg(g_ops->load_script(inst, bad[i], &text, &len, &err) == -1,
                      "%s was loaded", bad[i]);
        ck_assert_str_eq(err.code, "invalid_parameter");
        ck_assert_ptr_null(text);
    }
    char *d = g_ops->describe(inst);
    ck_assert_ptr_nonnull(strstr(d, dir));
    free(d);
    g_ops->instance_destroy(inst);
}
END_TEST

typedef struct conc_arg {
    void *inst;
    int id;
    run_out r;
    char expect[64];
} conc_arg;

static void *conc_run(void *p)
{
    conc_arg *a = p;
    char id[16];
    xfmt(id, sizeof id, "%d", a->id);
    const char *args[] = {id};
    sx_exec_spec spec = spec_make("/bin/bash",
                                  "echo start-$1\nsleep 0.3\nread x\n"
                                  "echo end-$1-$x\necho e$1 >&2\nexit $1\n");
    spec.args = args;
    spec.n_args = 1;
    spec.stdin_data = id;
    spec.stdin_len = strlen(id);
    xfmt(a->expect, sizeof a->expect, "start-%d\nend-%d-%d\n", a->id, a->id,
             a->id);
    run_spec(a->inst, &spec, &a->r);
    return NULL;
}

START_TEST(test_concurrent_runs)
{
    void *inst = make_instance("shell", PATH_YAML);
    enum { N = 6 };
    conc_arg args[N];
    pthread_t t[N];
    double t0 = sx_now_monotonic();
    for (int i = 0; i < N; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].inst = inst;
        args[i].id = i + 1;
        ck_assert_int_eq(pthread_create(&t[i], NULL, conc_run, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    double wall = sx_now_monotonic() - t0;
    for (int i = 0; i < N; i++) {
        assert_exited(&args[i].r, i + 1);
        ck_assert_str_eq(OUT(&args[i].r), args[i].expect);
        char e[16];
        xfmt(e, sizeof e, "e%d\n", i + 1);
        ck_assert_str_eq(ERR(&args[i].r), e);
        run_done(&args[i].r);
    }
    ck_assert_double_lt(wall, 0.3 * N);     /* they ran side by side */
    g_ops->instance_destroy(inst);
    assert_no_children();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backend_native");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_descriptor_and_params);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_invalid_config);
    tcase_add_test(tc, test_supervisor_path_refused);
    tcase_add_test(tc, test_supervisor_missing_next_to_plugin);
    tcase_add_test(tc, test_supervisor_path_used);
    tcase_add_test(tc, test_supervisor_by_hand);
    tcase_add_test(tc, test_clean_env);
    tcase_add_test(tc, test_exit_codes);
    tcase_add_test(tc, test_signal_death);
    tcase_add_test(tc, test_stdout_stderr);
    tcase_add_test(tc, test_host_signal_state_not_inherited);
    tcase_add_test(tc, test_host_fds_not_inherited);
    tcase_add_test(tc, test_stdin_small_and_none);
    tcase_add_test(tc, test_stdin_big_no_deadlock);
    tcase_add_test(tc, test_big_script);
    tcase_add_test(tc, test_script_delivery_memfd);
    tcase_add_test(tc, test_args);
    tcase_add_test(tc, test_python3);
    tcase_add_test(tc, test_ruby);
    tcase_add_test(tc, test_unknown_interpreter);
    tcase_add_test(tc, test_working_dir);
    tcase_add_test(tc, test_bad_working_dir);
    tcase_add_test(tc, test_whitelist);
    tcase_add_test(tc, test_timeout_kills_tree);
    tcase_add_test(tc, test_exit_kills_leftovers);
    tcase_add_test(tc, test_output_flood);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_host_death_kills_tree);
    tcase_add_test(tc, test_exec_started_refusal);
    tcase_add_test(tc, test_rusage);
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_run_as_user);
    tcase_add_test(tc, test_non_root_config);
    tcase_add_test(tc, test_load_script);
    tcase_add_test(tc, test_concurrent_runs);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
