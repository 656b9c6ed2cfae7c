/*
 * backend_example.c - "exec.example": a small but complete execution backend
 * for script-executor, written to be copied as the start of your own.
 *
 * What it does: runs the step's script with the step's interpreter
 * (/bin/sh, /bin/bash, python3 or ruby; script_run has validated it) as a
 * child process of the host, started with posix_spawn:
 *
 *     <interpreter> <private dir>/script <args...>
 *
 * with stdin from <private dir>/stdin (or /dev/null), stdout and stderr
 * captured separately and streamed to the host as they arrive, a clean
 * environment (the executor's default_env, the step's env over it, PATH when
 * neither sets one), the step's working directory, its timeout, and cancel.
 * It reports the exit code or signal, the duration, CPU time and peak
 * memory.  Everything the SDK requires of a backend is here; everything
 * else is left out on purpose (see README.md: what a real backend adds).
 *
 * Read it top to bottom: options, plugin state, instances, describe,
 * render, run, and finally the tables the host reads.
 *
 * The rules this file follows (sdk/include/sx/sx_backend.h says them too):
 *   - exec_started() is called, and must return 0, BEFORE the script starts:
 *     that call makes the "exec.started" audit record durable.
 *   - output goes through host->exec_output() (the host caps and publishes it);
 *   - host->exec_cancel_fd() is polled: readable = stop now;
 *   - spec->timeout_ms is enforced by the backend, not the host;
 *   - run/render/describe are called from many threads at once: no mutable
 *     global state, every file descriptor created with O_CLOEXEC so a
 *     concurrent spawn cannot inherit it;
 *   - strings returned to the host are malloc(3)ed (the host frees them);
 *     errors are written into the caller's sx_error (sx_error_set).
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np (glibc >= 2.29), pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sx/sx_backend.h" /* sx_backend_ops, sx_exec_spec, sx_exec_result */
#include "sx/sx_util.h"    /* sx_error_set, sx_strmap_get, sx_now_monotonic, ... */

#define EXAMPLE_KIND "exec.example"
#define EXAMPLE_DEFAULT_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
/* After the script's main process is gone, how long the pipes may stay open
 * (held by something outside its process group) before we stop reading. */
#define EXAMPLE_DRAIN_SECONDS 2.0

/* ------------------------------------------------------------------------
 * Options of one executor instance.  The host parses the executor's config
 * entry against this table (unknown keys, wrong types, missing required keys
 * are refused with the key's path and line) and stores the values at the
 * given offsets.  `name`, `kind` and `max_output_bytes` belong to the host
 * and never reach us.
 *
 *   executors:
 *     - name: example
 *       kind: exec.example
 *       default_work_dir: /tmp
 *       default_env: {LANG: C.UTF-8}
 * ---------------------------------------------------------------------- */
typedef struct example_cfg {
    char *default_work_dir;     /* SX_OPT_STRING: malloc'd by the host */
    sx_strmap default_env;      /* SX_OPT_STRMAP */
} example_cfg;

static const sx_option example_options[] = {
    {SX_OPT_STRING, "default_work_dir", "/tmp", 0, offsetof(example_cfg, default_work_dir),
     "working directory when the step sets none"},
    {SX_OPT_STRMAP, "default_env", NULL, 0, offsetof(example_cfg, default_env),
     "environment of every script; the step's env is merged over it"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

/* Plugin-wide state, made by init() and freed by fini(). */
typedef struct example_plugin {
    const sx_host_api *host;    /* borrowed from the host until fini() */
    sx_plugin_ctx *ctx;         /* our handle for host->log, config_apply... */
} example_plugin;

/* One configured executor. */
typedef struct example_instance {
    example_plugin *plugin;
    char *name;                 /* "example" */
    example_cfg cfg;
} example_instance;

/* ------------------------------------------------------------------------
 * Lifecycle: init/fini once per process, instance_create/destroy once per
 * configured executor.  All on the host's main thread.
 * ---------------------------------------------------------------------- */
static int example_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state,
                        sx_error *err)
{
    example_plugin *p = calloc(1, sizeof *p);
    if (p == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    p->host = host;
    p->ctx = ctx;
    *state = p;
    return 0;
}

static void example_fini(void *state) { free(state); }

static int example_instance_create(void *state, const char *name,
                                   const sx_config_node *config, void **instance,
                                   sx_error *err)
{
    example_plugin *p = state;
    example_instance *in = calloc(1, sizeof *in);
    if (in == NULL || (in->name = strdup(name)) == NULL) {
        free(in);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    in->plugin = p;
    /* config_apply fills err ("invalid_config", with path and line) itself. */
    if (p->host->config_apply(p->ctx, config, example_options, &in->cfg, err) != 0)
        goto fail;
    struct stat st;
    if (stat(in->cfg.default_work_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        sx_error_set(err, "invalid_config", "executor '%s': default_work_dir '%s' is not a directory",
                     name, in->cfg.default_work_dir);
        goto fail;
    }
    p->host->log(p->ctx, SX_LOG_INFO, "executor '%s' ready (work dir %s)", name,
                 in->cfg.default_work_dir);
    *instance = in;
    return 0;
fail:
    p->host->config_free(example_options, &in->cfg); /* also after a failed apply */
    free(in->name);
    free(in);
    return -1;
}

static void example_instance_destroy(void *instance)
{
    example_instance *in = instance;
    in->plugin->host->config_free(example_options, &in->cfg);
    free(in->name);
    free(in);
}

/* ------------------------------------------------------------------------
 * A tiny JSON writer, so that the example needs nothing but the SDK.  (The
 * bundled plugins use cJSON; use whatever you like, the host only wants a
 * malloc(3)ed JSON text.)
 * ---------------------------------------------------------------------- */
typedef struct jbuf {
    char *s;
    size_t len, cap;
    int failed;                 /* out of memory: the result is NULL */
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s2 = realloc(b->s, cap);
        if (s2 == NULL) {
            b->failed = 1;
            return;
        }
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void jb_raw(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

/* A JSON string: quotes, backslashes and control characters escaped. */
static void jb_str(jbuf *b, const char *s)
{
    jb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jb_put(b, esc, 6);
        } else {
            jb_put(b, s, 1);
        }
    }
    jb_put(b, "\"", 1);
}

/* Hand the text over to the host (it frees it), or NULL on failure. */
static char *jb_finish(jbuf *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

/* The names (never the values) of the variables a run would see. */
static void jb_env_names(jbuf *b, const example_cfg *cfg, const sx_strmap *step_env)
{
    jb_raw(b, "[");
    int first = 1;
    for (size_t i = 0; i < cfg->default_env.n; i++) {
        if (step_env && sx_strmap_get(step_env, cfg->default_env.keys[i]))
            continue; /* overridden by the step */
        jb_raw(b, first ? "" : ",");
        jb_str(b, cfg->default_env.keys[i]);
        first = 0;
    }
    for (size_t i = 0; step_env && i < step_env->n; i++) {
        jb_raw(b, first ? "" : ",");
        jb_str(b, step_env->keys[i]);
        first = 0;
    }
    if (!sx_strmap_get(&cfg->default_env, "PATH") && !(step_env && sx_strmap_get(step_env, "PATH")))
        jb_raw(b, first ? "\"PATH\"" : ",\"PATH\"");  /* build_env adds a default */
    jb_raw(b, "]");
}

/* ------------------------------------------------------------------------
 * describe: what `sxctl describe` shows for this executor.  Concurrent.
 * ---------------------------------------------------------------------- */
static char *example_describe(void *instance)
{
    example_instance *in = instance;
    jbuf b = {0};
    jb_raw(&b, "{\"kind\":\"" EXAMPLE_KIND "\",\"name\":");
    jb_str(&b, in->name);
    jb_raw(&b, ",\"default_work_dir\":");
    jb_str(&b, in->cfg.default_work_dir);
    jb_raw(&b, ",\"default_env\":");
    jb_env_names(&b, &in->cfg, NULL);
    jb_raw(&b, ",\"isolation\":\"none: a child process of the host, same user\"}");
    return jb_finish(&b);
}

/* ------------------------------------------------------------------------
 * render: what run() would do, without doing it.  Concurrent.
 * ---------------------------------------------------------------------- */
static const char *work_dir_of(const example_instance *in, const sx_exec_spec *spec)
{
    return spec->working_dir ? spec->working_dir : in->cfg.default_work_dir;
}

static int example_render(void *instance, const sx_exec_spec *spec, char **json_out,
                          sx_error *err)
{
    example_instance *in = instance;
    jbuf b = {0};
    jb_raw(&b, "{\"kind\":\"" EXAMPLE_KIND "\",\"executor\":");
    jb_str(&b, in->name);
    jb_raw(&b, ",\"argv\":[");
    jb_str(&b, spec->interpreter);
    jb_raw(&b, ",\"<script file>\"");
    for (size_t i = 0; i < spec->n_args; i++) {
        jb_raw(&b, ",");
        jb_str(&b, spec->args[i]);
    }
    jb_raw(&b, "],\"working_dir\":");
    jb_str(&b, work_dir_of(in, spec));
    jb_raw(&b, ",\"env\":");
    jb_env_names(&b, &in->cfg, spec->env);
    char num[64];
    snprintf(num, sizeof num, ",\"timeout_ms\":%lld,\"stdin\":%s}", (long long)spec->timeout_ms,
             spec->stdin_data ? "true" : "false");
    jb_raw(&b, num);
    if ((*json_out = jb_finish(&b)) == NULL)
        return sx_error_set(err, "backend_error", "out of memory");
    return 0;
}

/* ------------------------------------------------------------------------
 * run, part 1: what the child needs - a private directory holding the
 * script and stdin, the argv, the environment.  Everything is freed by
 * run_files_free() whatever happened.
 * ---------------------------------------------------------------------- */
typedef struct run_files {
    char dir[64];               /* "/tmp/sx-example-XXXXXX", "" when not made */
    char script[96];
    char stdin_path[96];
    char **argv;
    char **envp;
} run_files;

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = sx_write_all(fd, data, len);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* "KEY=VALUE", malloc'd. */
static char *env_entry(const char *key, const char *value)
{
    size_t n = strlen(key) + strlen(value) + 2;
    char *e = malloc(n);
    if (e != NULL)
        snprintf(e, n, "%s=%s", key, value);
    return e;
}

static int build_env(const example_cfg *cfg, const sx_strmap *step_env, char ***out)
{
    size_t n_step = step_env ? step_env->n : 0;
    char **envp = calloc(cfg->default_env.n + n_step + 2, sizeof *envp);
    if (envp == NULL)
        return -1;
    size_t k = 0;
    int have_path = 0;
    for (size_t i = 0; i < cfg->default_env.n; i++) {
        const char *key = cfg->default_env.keys[i];
        if (step_env && sx_strmap_get(step_env, key))
            continue;                               /* the step's value wins */
        have_path |= strcmp(key, "PATH") == 0;
        if ((envp[k++] = env_entry(key, cfg->default_env.values[i])) == NULL)
            goto oom;
    }
    for (size_t i = 0; i < n_step; i++) {
        have_path |= strcmp(step_env->keys[i], "PATH") == 0;
        if ((envp[k++] = env_entry(step_env->keys[i], step_env->values[i])) == NULL)
            goto oom;
    }
    if (!have_path && (envp[k++] = strdup(EXAMPLE_DEFAULT_PATH)) == NULL)
        goto oom;
    *out = envp;
    return 0;
oom:
    for (size_t i = 0; i < k; i++)
        free(envp[i]);
    free(envp);
    return -1;
}

static void run_files_free(run_files *f)
{
    if (f->dir[0]) {
        unlink(f->script);
        unlink(f->stdin_path);
        rmdir(f->dir);
    }
    if (f->envp)
        for (char **e = f->envp; *e; e++)
            free(*e);
    free(f->envp);
    free(f->argv);
}

static int run_files_make(run_files *f, const example_instance *in, const sx_exec_spec *spec,
                          sx_error *err)
{
    memset(f, 0, sizeof *f);
    /* The script is passed as a file, not with -c: a script may be 500 KB,
     * far beyond what one argv string may hold (128 KiB on Linux). */
    char tmpl[] = "/tmp/sx-example-XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        return sx_error_set(err, "backend_error", "mkdtemp: %s", strerror(errno));
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    snprintf(f->script, sizeof f->script, "%s/script", f->dir);
    snprintf(f->stdin_path, sizeof f->stdin_path, "%s/stdin", f->dir);
    if (write_file(f->script, spec->script, spec->script_len) != 0 ||
        (spec->stdin_data && write_file(f->stdin_path, spec->stdin_data, spec->stdin_len) != 0))
        return sx_error_set(err, "backend_error", "cannot write to %s: %s", f->dir,
                            strerror(errno));
    /* argv borrows its strings from spec and f: only the array is ours. */
    f->argv = calloc(spec->n_args + 3, sizeof *f->argv);
    if (f->argv == NULL || build_env(&in->cfg, spec->env, &f->envp) != 0)
        return sx_error_set(err, "backend_error", "out of memory");
    f->argv[0] = (char *)spec->interpreter;
    f->argv[1] = f->script;
    for (size_t i = 0; i < spec->n_args; i++)
        f->argv[2 + i] = (char *)spec->args[i];
    return 0;
}

/* ------------------------------------------------------------------------
 * run, part 2: start the child.  posix_spawn (not fork) so that nothing of
 * the host - its memory, its locks, its threads - is copied.
 * ---------------------------------------------------------------------- */
static int spawn_script(const run_files *f, const sx_exec_spec *spec, const char *work_dir,
                        int out_w, int err_w, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    /* stdin: the step's, or /dev/null; stdout/stderr: our pipes.  dup2 onto
     * 0/1/2 clears O_CLOEXEC there; every other descriptor of the host is
     * O_CLOEXEC and does not reach the script. */
    const char *in_path = spec->stdin_data ? f->stdin_path : "/dev/null";
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addchdir_np(&fa, work_dir);
    /* The host blocks SIGTERM/SIGINT/SIGHUP in all its threads and a child
     * inherits that mask: unblock everything and reset every handler.  Its
     * own process group lets us kill the script with what it started. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETPGROUP);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    /* posix_spawnp looks the interpreter up in the host's PATH ("python3"). */
    if (rc == 0)
        rc = posix_spawnp(pid, spec->interpreter, &fa, &attr, f->argv, f->envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* ------------------------------------------------------------------------
 * run, part 3: watch the child until it ends, the timeout passes or the
 * host cancels, forwarding output as it comes.
 *
 * Exit is detected with waitid(WNOWAIT), which leaves the child a zombie:
 * its pid - and so its process group id - cannot be reused until we reap
 * it, so kill(-pid) can only reach the script's own processes.  poll() does
 * not report a child's exit, hence the short ticks.
 * ---------------------------------------------------------------------- */
static void read_some(const sx_host_api *host, sx_exec *exec, struct pollfd *p,
                      sx_stream stream)
{
    char buf[65536];
    ssize_t n = read(p->fd, buf, sizeof buf);
    if (n > 0) {
        host->exec_output(exec, stream, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(p->fd);           /* EOF: every writer has gone */
        p->fd = -1;             /* poll() ignores negative descriptors */
    }
}

static sx_termination supervise(const sx_host_api *host, sx_exec *exec, pid_t pid,
                                int out_r, int err_r, double deadline)
{
    struct pollfd p[3] = {{.fd = out_r, .events = POLLIN},
                          {.fd = err_r, .events = POLLIN},
                          {.fd = host->exec_cancel_fd(exec), .events = POLLIN}};
    sx_termination stopped = SX_TERM_NONE;  /* set when WE ended it */
    int exited = 0;
    double drain_until = 0;
    for (;;) {
        double now = sx_now_monotonic();
        if (!exited) {
            siginfo_t si = {0};
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == pid) {
                exited = 1;
                /* The main process is done: whatever it left running in its
                 * group (`sleep 100 &`) goes too, and would otherwise keep
                 * the pipes open. */
                kill(-pid, SIGKILL);
                drain_until = now + EXAMPLE_DRAIN_SECONDS;
            } else if (stopped == SX_TERM_NONE && now >= deadline) {
                stopped = SX_TERM_TIMED_OUT;
                kill(-pid, SIGKILL);
            }
        }
        if (exited && ((p[0].fd < 0 && p[1].fd < 0) || now >= drain_until))
            break;
        /* Ticks: 100 ms while output may come, 5 ms once both pipes are
         * closed and only the exit is awaited. */
        int tick = (p[0].fd < 0 && p[1].fd < 0) ? 5 : 100;
        if (!exited && stopped == SX_TERM_NONE && (deadline - now) * 1000.0 < tick)
            tick = (int)((deadline - now) * 1000.0) + 1;
        if (tick < 1)
            tick = 1;           /* never 0 (spin) nor negative (no timeout) */
        if (poll(p, 3, tick) < 0 && errno != EINTR)
            break;
        if (p[0].fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            read_some(host, exec, &p[0], SX_STREAM_STDOUT);
        if (p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            read_some(host, exec, &p[1], SX_STREAM_STDERR);
        if (p[2].fd >= 0 && (p[2].revents & POLLIN)) {
            /* Cancel request or host shutdown.  The descriptor is the
             * host's: never read or close it; stop polling it, since it
             * stays readable. */
            p[2].fd = -1;
            if (!exited && stopped == SX_TERM_NONE) {
                stopped = SX_TERM_CANCELLED;
                kill(-pid, SIGKILL);
            }
        }
    }
    if (p[0].fd >= 0)
        close(p[0].fd);
    if (p[1].fd >= 0)
        close(p[1].fd);
    return stopped;
}

/* ------------------------------------------------------------------------
 * run: the whole execution.  Concurrent; blocks the calling worker thread
 * until the script is over.  Returns 0 with *result filled when the script
 * ran (whatever its outcome), -1 with err when it could not run it.
 * ---------------------------------------------------------------------- */
static int example_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                       sx_exec_result *result, sx_error *err)
{
    example_instance *in = instance;
    const sx_host_api *host = in->plugin->host;
    const char *work_dir = work_dir_of(in, spec);

    /* Refuse what cannot work BEFORE exec_started: a refused step has no
     * "started" record and its status is "rejected", not "failed". */
    struct stat st;
    if (stat(work_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return sx_error_set(err, "invalid_parameter", "with.working_dir '%s' is not a directory",
                            work_dir);

    run_files f;
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (run_files_make(&f, in, spec, err) != 0)
        goto fail;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        sx_error_set(err, "backend_error", "pipe: %s", strerror(errno));
        goto fail;
    }

    /* The durable "exec.started" record.  On failure (an audit sink is
     * down) err is filled ("audit_unavailable") and the script must not
     * start.  extra_json (NULL here) would be merged into the record. */
    if (host->exec_started(exec, NULL, err) != 0)
        goto fail;

    double t0 = sx_now_monotonic();
    pid_t pid;
    int rc = spawn_script(&f, spec, work_dir, out[1], errp[1], &pid);
    close(out[1]);              /* only the child writes now: EOF when it is gone */
    close(errp[1]);
    out[1] = errp[1] = -1;
    if (rc != 0) {
        sx_error_set(err, "backend_error", "cannot start %s: %s", spec->interpreter,
                     strerror(rc));
        goto fail;
    }

    double deadline = t0 + (double)spec->timeout_ms / 1000.0;
    sx_termination stopped = supervise(host, exec, pid, out[0], errp[0], deadline);
    out[0] = errp[0] = -1;      /* closed by supervise() */

    /* Stragglers that outlived the drain.  Still safe: the unreaped main
     * process keeps its pid, the group's id, from being reused. */
    kill(-pid, SIGKILL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;

    result->duration_seconds = sx_now_monotonic() - t0;
    result->cpu_millis = (int64_t)ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
                         (int64_t)ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000;
    result->memory_mb = ru.ru_maxrss / 1024;  /* ru_maxrss is in KiB on Linux */
    if (stopped != SX_TERM_NONE) {
        result->termination = stopped;        /* timed_out or cancelled */
        result->signal = SIGKILL;
    } else if (WIFEXITED(status)) {
        result->termination = SX_TERM_EXITED;
        result->exit_code = WEXITSTATUS(status);
    } else {
        result->termination = SX_TERM_SIGNALED;
        result->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    run_files_free(&f);
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    run_files_free(&f);
    return -1;
}

/* ------------------------------------------------------------------------
 * The tables the host reads.
 * ---------------------------------------------------------------------- */

/* `with` parameters honoured beyond the common ones (inline_script,
 * script_path, interpreter, args, working_dir, timeout, env, stdin,
 * executor): none.  A step that sets anything else (image, resources, ...)
 * is refused with "unsupported_parameter" before run() is called. */
static const char *const example_params[] = {NULL};

static const sx_backend_ops example_ops = {
    .struct_size = sizeof(sx_backend_ops),
    .supported_params = example_params,
    .instance_create = example_instance_create,
    .instance_destroy = example_instance_destroy,
    .describe = example_describe,
    .render = example_render,
    .run = example_run,
    .load_script = NULL,        /* no script_path: refused as unsupported */
};

static const sx_plugin_descriptor example_descriptor = {
    .abi_major = SX_ABI_MAJOR,  /* the ABI of the headers we were built with */
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "backend_example",  /* must equal the file name: backend_example.so */
    .version = "0.1.0",
    .description = "example backend: the script as a child process of the host",
    .kind = SX_KIND_BACKEND,
    .provides = EXAMPLE_KIND,   /* executors with `kind: exec.example` */
    .init = example_init,
    .fini = example_fini,
    .ops = &example_ops,
};

/* The one exported symbol: sx_plugin_entry() returning the descriptor. */
SX_PLUGIN_DEFINE(example_descriptor)
