/*
 * test_docker.c - the exec.docker backend against the real Docker engine
 * and a real registry (tools/docker-env.sh prepares both), driven through
 * the real host over nng.  Each test observes its option's effect inside
 * the container.  The docker CLI is used only as an observer (what
 * containers and volumes exist, what labels they carry); the product
 * never runs it.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <dirent.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"

#define MINIMAL "sx-test/minimal:latest"
#define FULL "sx-test/full:latest"
#define REGISTRY_IMAGE "127.0.0.1:5000/sx-test/minimal:latest"
/* The loopback test registry's fixed credential (tools/docker-env.sh). */
#define REG_USER "sx-ci"
#define REG_PASS "sx-ci-password"

static char hung_sock[108];

static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_concurrent: 8\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_docker, audit_file]\n"
    "  secrets:\n"
    "    secrets_dir: @DIR@/secrets\n"
    "    configmaps_dir: @DIR@/configmaps\n"
    "  executors:\n"
    "    - name: box\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "    - name: full\n"
    "      kind: exec.docker\n"
    "      image: " FULL "\n"
    "    - name: nonet\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      network_mode: none\n"
    "    - name: limited\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      pids_limit: 40\n"
    "      memory_limit: 64Mi\n"
    "      cpu_quota: 50000\n"
    "      max_output_bytes: 4096\n"
    "    - name: loose\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      user: \"1234:2345\"\n"
    "      read_only_rootfs: false\n"
    "      no_new_privileges: false\n"
    "      cap_drop: [ALL]\n"
    "      cap_add: [NET_RAW]\n"
    "      tmpfs: {/scratch: \"rw,size=1m,mode=1777\"}\n"
    "      volumes: [\"@DIR@/data:/data:ro\"]\n"
    "      default_work_dir: /scratch\n"
    "      default_env: {GREETING: hello, PATH: /bin}\n"
    "      auto_remove: false\n"
    "      init: false\n"
    "    - name: reg\n"
    "      kind: exec.docker\n"
    "      image: " REGISTRY_IMAGE "\n"
    "    - name: wl\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      command_whitelist: [\"echo allowed\"]\n"
    "    - name: dead\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      host: unix://@DIR@/no-daemon.sock\n"
    "    - name: hung\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      host: unix://@HUNG@\n"
    "      api_timeout: 2s\n"
    "    - name: fast\n"
    "      kind: exec.docker\n"
    "      image: " MINIMAL "\n"
    "      script_delivery: bind\n"
    "      bind_dir: @DIR@/bind\n"
    "  default_executor: box\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static sx_harness H;

/* `text` with the first `from` replaced by `to` (malloc'ed). */
static char *replace_once(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    ck_assert_ptr_nonnull(at);
    char *r;
    ck_assert_int_ge(asprintf(&r, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)), 0);
    return r;
}

/* CONFIG with @HUNG@ filled in (the harness knows @DIR@ only), and a
 * host_id of this test process on every Docker executor: the leftover
 * sweep of a host only touches its own objects, so test runs sharing the
 * daemon (or a developer's host) never remove each other's containers. */
static char *config_text(void)
{
    char *cfg = replace_once(CONFIG, "@HUNG@", hung_sock);
    char id[64];
    snprintf(id, sizeof id, "      kind: exec.docker\n      host_id: sxit-%d\n", (int)getpid());
    const char *from = "      kind: exec.docker\n";
    size_t pos = 0;
    char *at;
    while ((at = strstr(cfg + pos, from)) != NULL) {
        char *next;
        size_t off = (size_t)(at - cfg);
        ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)off, cfg, id, at + strlen(from)), 0);
        free(cfg);
        cfg = next;
        pos = off + strlen(id);
    }
    return cfg;
}

static void start_host(void)
{
    char *cfg = config_text();
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
}

static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

static cJSON *run(const char *id, const char *step, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req,
                              "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"%s\","
                              "\"runbook_id\":\"rb.docker\",\"type\":\"script.run\","
                              "\"caller\":{\"user\":\"alice\",\"groups\":[\"sre\"]},\"with\":%s}",
                              id, step, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *out(const cJSON *r, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "output.%s", field);
    return sx_json_str(r, path);
}

static void expect_status(cJSON *r, const char *status)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want %s: %s", status, text);
    free(text);
}

static void expect_error(cJSON *r, const char *status, const char *code)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0 &&
                      strcmp(sx_json_str(r, "error.code"), code) == 0,
                  "want %s/%s: %s", status, code, text);
    ck_assert_msg(strlen(sx_json_str(r, "error.message")) > 10, "no message: %s", text);
    free(text);
}

static int exit_code(const cJSON *r)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "exit_code");
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -1000;
}

/* Run a shell command (test observer only); its stdout, trimmed. */
static char *sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd;
    ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    pclose(p);
    free(cmd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* Containers (any state) and volumes carrying an execution's label. */
static int objects_of(const char *execution_id)
{
    /* this process's hosts only (host_id sxit-<pid>): a killed earlier run
     * may have left objects with the same execution id */
    char *c = sh("docker ps -aq --filter label=io.script-executor.execution-id=%s "
                 "--filter label=io.script-executor.host=sxit-%d | wc -l", execution_id, (int)getpid());
    char *v = sh("docker volume ls -q --filter label=io.script-executor.execution-id=%s "
                 "--filter label=io.script-executor.host=sxit-%d | wc -l", execution_id, (int)getpid());
    int n = atoi(c) + atoi(v);
    free(c);
    free(v);
    return n;
}

/* Removal happens right after the reply, off its path: wait (15 s at most)
 * until the execution's objects are gone; returns how many are left. */
static int gone_after_run(const char *execution_id)
{
    int n = objects_of(execution_id);
    for (int i = 0; i < 150 && n > 0; i++) {
        usleep(100 * 1000);
        n = objects_of(execution_id);
    }
    return n;
}

/* Entries in a directory (-1 when it cannot be read). */
static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* The executor fast's bind_dir is emptied when a run ends: wait (3 s at
 * most) until nothing is left in it; returns how many entries are left. */
static int bind_dir_left(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/bind", H.dir);
    int n = entries_in(dir);
    for (int i = 0; i < 30 && n != 0; i++) {
        usleep(100 * 1000);
        n = entries_in(dir);
    }
    return n;
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char *cmd;
    ck_assert_int_ge(asprintf(&cmd, "mkdir -p '%s'", path), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    *slash = '/';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void wait_started(const char *id, const char *step)
{
    for (int i = 0; i < 800 && sx_harness_audit_count(&H, "exec.started", id, step) == 0; i++)
        usleep(25 * 1000);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", id, step), 1);
}

struct call_arg {
    const char *req;
    char *reply;
};

static void *call_thread(void *p)
{
    struct call_arg *a = p;
    a->reply = sx_harness_call_raw(&H, a->req, strlen(a->req));
    return NULL;
}

/* ------------------------------------------------------------ output */

/* A script that prints on both streams and exits at once, run as step s<i>
 * of `id` on `executor`: every byte must be in the reply. */
static void short_lived_run(const char *id, int i, const char *executor)
{
    char step[16], with[300];
    snprintf(step, sizeof step, "s%d", i);
    snprintf(with, sizeof with, "{\"executor\":\"%s\",\"interpreter\":\"/bin/sh\","
             "\"inline_script\":\"echo first-line; echo to-stderr >&2; printf last-no-newline; "
             "exit 7\"}", executor);
    cJSON *r = run(id, step, with);
    expect_status(r, "failed");
    ck_assert_str_eq(out(r, "stdout"), "first-line\nlast-no-newline");
    ck_assert_str_eq(out(r, "stderr"), "to-stderr\n");
    ck_assert_int_eq(exit_code(r), 7);
    ck_assert_str_eq(out(r, "backend"), "exec.docker");
    ck_assert_str_eq(out(r, "termination.reason"), "exited");
    cJSON_Delete(r);
}

START_TEST(short_lived_output_is_complete)
{
    /* prints at once and exits: attach-before-start loses nothing */
    for (int i = 0; i < 15; i++)
        short_lived_run("dk-out", i, "box");
    ck_assert_int_eq(gone_after_run("dk-out"), 0); /* removed after each run */
}
END_TEST

START_TEST(interpreters_stdin_args_env)
{
    cJSON *r = run("dk-int", "bash", "{\"executor\":\"full\",\"inline_script\":"
                   "\"echo bash $BASH_VERSINFO $1 $2; read x; echo got:$x\","
                   "\"args\":[\"a1\",\"a 2\"],\"stdin\":\"from-stdin\\n\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "bash 5 a1 a 2\ngot:from-stdin\n");
    cJSON_Delete(r);
    r = run("dk-int", "py", "{\"executor\":\"full\",\"interpreter\":\"python3\",\"inline_script\":"
            "\"import sys, os\\nprint('py', sys.argv[1:], sys.stdin.read().strip(), "
            "os.environ['MODE'])\",\"args\":[\"x\"],\"stdin\":\"piped\",\"env\":{\"MODE\":\"dry\"}}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "py ['x'] piped dry\n");
    cJSON_Delete(r);
    r = run("dk-int", "rb", "{\"executor\":\"full\",\"interpreter\":\"ruby\",\"inline_script\":"
            "\"puts \\\"rb #{ARGV.join(',')} #{Dir.pwd}\\\"\",\"args\":[\"p\",\"q\"],"
            "\"working_dir\":\"/tmp\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "rb p,q /tmp\n");
    cJSON_Delete(r);
}
END_TEST

/* ~500 KB script in 900 lines with 300 KB of stdin, on `executor` (NULL:
 * the default, archive delivery). */
static void big_script_run(const char *id, const char *executor)
{
    size_t cap = 520 * 1024;
    char *script = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 900; i++)
        n += (size_t)snprintf(script + n, cap - n, "# %0560d\n", i);
    n += (size_t)snprintf(script + n, cap - n, "echo big-script-ran; wc -c\n");
    ck_assert_uint_gt(n, 500000);
    cJSON *with = cJSON_CreateObject();
    if (executor)
        cJSON_AddStringToObject(with, "executor", executor);
    cJSON_AddStringToObject(with, "interpreter", "/bin/sh");
    cJSON_AddStringToObject(with, "inline_script", script);
    char *in = malloc(300001);
    memset(in, 'x', 300000);
    in[300000] = '\0';
    cJSON_AddStringToObject(with, "stdin", in);
    char *w = cJSON_PrintUnformatted(with);
    cJSON_Delete(with);
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":"
                              "\"s\",\"type\":\"script.run\",\"with\":%s}", id, w), 0);
    cJSON *r = sx_harness_call(&H, req);
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "big-script-ran\n300000\n");
    cJSON_Delete(r);
    free(req);
    free(w);
    free(in);
    free(script);
}

START_TEST(large_script_and_stdin)
{
    big_script_run("dk-big", NULL); /* delivered through the archive API */
}
END_TEST

START_TEST(output_cap_and_live_events)
{
    nng_socket sub;
    ck_assert_int_eq(nng_sub0_open(&sub), 0);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "exec.output", 11);
    ck_assert_int_eq(nng_dial(sub, H.events_url, NULL, 0), 0);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 300);
    /* warm up until the subscription is live */
    int live = 0;
    for (int i = 0; i < 30 && !live; i++) {
        char step[16];
        snprintf(step, sizeof step, "w%d", i);
        cJSON_Delete(run("dk-warm", step, "{\"interpreter\":\"/bin/sh\",\"inline_script\":\"echo w\"}"));
        char *buf = NULL;
        size_t sz = 0;
        while (nng_recv(sub, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
            live = 1;
            nng_free(buf, sz);
        }
    }
    ck_assert(live);
    cJSON *e = run("dk-live", "s", "{\"interpreter\":\"/bin/sh\",\"inline_script\":"
                   "\"echo LIVE-MARK; echo LIVE-ERR >&2\"}");
    expect_status(e, "succeeded");
    cJSON_Delete(e);
    int saw = 0, saw_err = 0;
    char *buf = NULL;
    size_t sz = 0;
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 2000);
    while (!(saw && saw_err) && nng_recv(sub, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
        if (memmem(buf, sz, "dk-live", 7) && memmem(buf, sz, "LIVE-MARK", 9) &&
            memmem(buf, sz, "\"stdout\"", 8))
            saw = 1;
        if (memmem(buf, sz, "dk-live", 7) && memmem(buf, sz, "LIVE-ERR", 8) &&
            memmem(buf, sz, "\"stderr\"", 8))
            saw_err = 1;
        nng_free(buf, sz);
    }
    nng_close(sub);
    ck_assert_msg(saw && saw_err, "no live exec.output events of the container");
    /* 200 KB through an executor capped at 4096 bytes */
    cJSON *r = run("dk-cap", "s", "{\"executor\":\"limited\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"echo HEAD-MARK; i=0; while [ $i -lt 4000 ]; do "
                   "echo 0123456789012345678901234567890123456789012345; i=$((i+1)); done; "
                   "echo TAIL-MARK\"}");
    expect_status(r, "succeeded");
    const char *so = out(r, "stdout");
    ck_assert_uint_le(strlen(so), 4096 + 200); /* the cap plus the "bytes dropped" marker */
    ck_assert_ptr_nonnull(strstr(so, "bytes dropped"));
    ck_assert_ptr_nonnull(strstr(so, "HEAD-MARK"));
    ck_assert_ptr_nonnull(strstr(so, "TAIL-MARK"));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "stdout_truncated")));
    cJSON_Delete(r);
}
END_TEST

/* ---------------------------------------------------------- security */

START_TEST(security_defaults_hold)
{
    cJSON *r = run("dk-sec", "s", "{\"interpreter\":\"/bin/sh\",\"inline_script\":"
                   "\"id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' "
                   "/proc/self/status; touch /rootfs-write 2>&1 || echo ro-ok; "
                   "touch /tmp/t && echo tmp-ok; touch /workspace/w && echo workspace-ok; pwd; env | sort\"}");
    expect_status(r, "succeeded");
    const char *so = out(r, "stdout");
    ck_assert_msg(strncmp(so, "65534\n65534\n", 12) == 0, "%s", so);
    ck_assert_ptr_nonnull(strstr(so, "CapEff:\t0000000000000000"));
    ck_assert_ptr_nonnull(strstr(so, "CapPrm:\t0000000000000000"));
    ck_assert_ptr_nonnull(strstr(so, "CapBnd:\t0000000000000000"));
    ck_assert_ptr_nonnull(strstr(so, "NoNewPrivs:\t1"));
    ck_assert_ptr_nonnull(strstr(so, "Seccomp:\t2")); /* the Engine's default profile */
    ck_assert_ptr_nonnull(strstr(so, "Read-only file system"));
    ck_assert_ptr_nonnull(strstr(so, "ro-ok"));
    ck_assert_ptr_nonnull(strstr(so, "tmp-ok"));
    ck_assert_ptr_nonnull(strstr(so, "workspace-ok\n/workspace\n")); /* writable default work dir */
    /* clean environment: nothing of the host's */
    ck_assert_ptr_null(strstr(so, "SX_"));
    ck_assert_ptr_null(strstr(so, "HOME=/root"));
    cJSON_Delete(r);
}
END_TEST

START_TEST(loose_executor_options_take_effect)
{
    char data[400];
    snprintf(data, sizeof data, "%s/data", H.dir);
    write_file(data, "in.txt", "bound-file\n", 0644);
    cJSON *r = run("dk-loose", "s", "{\"executor\":\"loose\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"id -u; id -g; pwd; echo $GREETING; "
                   "grep -E '^(CapBnd|NoNewPrivs):' /proc/self/status; "
                   "awk '$2==\\\"/\\\" {print \\\"root-\\\" substr($4,1,2)}' /proc/mounts; cat /data/in.txt; "
                   "touch /data/x 2>&1 || echo bind-ro; "
                   "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>&1; "
                   "echo done\",\"labels\":{\"team\":\"sre\"},\"annotations\":{\"ticket\":\"OPS-1\"}}");
    expect_status(r, "succeeded");
    const char *so = out(r, "stdout");
    ck_assert_msg(strncmp(so, "1234\n2345\n/scratch\nhello\n", 25) == 0, "%s", so);
    /* a non-root user keeps NET_RAW in its bounding set only */
    ck_assert_ptr_nonnull(strstr(so, "CapBnd:\t0000000000002000"));
    ck_assert_ptr_nonnull(strstr(so, "NoNewPrivs:\t0"));
    ck_assert_ptr_nonnull(strstr(so, "root-rw")); /* read_only_rootfs: false */
    ck_assert_ptr_nonnull(strstr(so, "bound-file"));
    ck_assert_ptr_nonnull(strstr(so, "bind-ro"));
    ck_assert_msg(strstr(so, "No space left on device") != NULL, "%s", so); /* tmpfs size=1m */
    /* auto_remove: false keeps the container, with our labels and the step's */
    char *labels = sh("docker inspect -f '{{json .Config.Labels}}' %s", out(r, "job_name"));
    ck_assert_ptr_nonnull(strstr(labels, "\"team\":\"sre\""));
    ck_assert_ptr_nonnull(strstr(labels, "\"ticket\":\"OPS-1\""));
    ck_assert_ptr_nonnull(strstr(labels, "\"io.script-executor.execution-id\":\"dk-loose\""));
    ck_assert_ptr_nonnull(strstr(labels, "\"io.script-executor.keep\":\"true\""));
    free(labels);
    ck_assert_int_ge(objects_of("dk-loose"), 1);
    free(sh("docker rm -fv %s", out(r, "job_name")));
    free(sh("docker volume ls -q --filter label=io.script-executor.execution-id=dk-loose | "
            "xargs -r docker volume rm"));
    cJSON_Delete(r);
}
END_TEST

START_TEST(network_none_has_only_loopback)
{
    cJSON *r = run("dk-net", "none", "{\"executor\":\"nonet\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"ls /sys/class/net | tr '\\\\n' ' '\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "lo ");
    cJSON_Delete(r);
    r = run("dk-net", "bridge", "{\"interpreter\":\"/bin/sh\","
            "\"inline_script\":\"ls /sys/class/net | tr '\\\\n' ' '\"}");
    expect_status(r, "succeeded");
    ck_assert_ptr_nonnull(strstr(out(r, "stdout"), "eth0"));
    cJSON_Delete(r);
}
END_TEST

START_TEST(pids_limit_stops_fork_bomb)
{
    /* a child shell forks until it cannot; the parent then reads the
     * cgroup's counters with builtins only (no fork left to spare) */
    cJSON *r = run("dk-pids", "s", "{\"executor\":\"limited\",\"interpreter\":\"/bin/sh\","
                   "\"timeout\":\"60s\",\"inline_script\":"
                   "\"sh -c 'i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null\\n"
                   "read cur < /sys/fs/cgroup/pids/pids.current\\n"
                   "read max < /sys/fs/cgroup/pids/pids.max\\n"
                   "echo current=$cur max=$max\"}");
    char *text = cJSON_PrintUnformatted(r);
    const char *so = out(r, "stdout");
    int cur = -1, max = -1;
    ck_assert_msg(sscanf(so, "current=%d max=%d", &cur, &max) == 2, "%s", text);
    ck_assert_int_eq(max, 40);
    ck_assert_msg(cur > 30 && cur <= 40, "pids in use: %d", cur); /* stopped at the limit */
    expect_status(r, "succeeded");
    free(text);
    cJSON_Delete(r);
}
END_TEST

START_TEST(memory_hog_is_oom_killed)
{
    cJSON *r = run("dk-oom", "s", "{\"executor\":\"limited\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                   "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; x=$(head -c 300000000 /dev/zero | "
                   "tr '\\\\0' a); echo survived\"}");
    expect_error(r, "failed", "oom_killed");
    ck_assert_str_eq(out(r, "termination.reason"), "oom_killed");
    ck_assert_ptr_nonnull(strstr(out(r, "stdout"), "67108864\n50000\n"));
    ck_assert_ptr_null(strstr(out(r, "stdout"), "survived"));
    cJSON_Delete(r);
}
END_TEST

START_TEST(step_resources_map_to_limits)
{
    cJSON *r = run("dk-res", "ok", "{\"executor\":\"limited\",\"interpreter\":\"/bin/sh\","
                   "\"resources\":{\"limits\":{\"memory\":\"32Mi\",\"cpu\":\"250m\"},"
                   "\"requests\":{\"memory\":\"16Mi\",\"cpu\":\"100m\"}},\"inline_script\":"
                   "\"cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes "
                   "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "33554432\n16777216\n25000\n102\n");
    cJSON_Delete(r);
    r = run("dk-res", "above", "{\"executor\":\"limited\",\"inline_script\":\"true\","
            "\"resources\":{\"limits\":{\"memory\":\"1Gi\"}}}");
    expect_error(r, "rejected", "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "memory_limit"));
    cJSON_Delete(r);
    r = run("dk-res", "eph", "{\"inline_script\":\"true\","
            "\"resources\":{\"limits\":{\"ephemeral_storage\":\"1Gi\"}}}");
    expect_error(r, "rejected", "unsupported_parameter");
    cJSON_Delete(r);
}
END_TEST

/* ------------------------------------------------ timeout, cancel, limits */

START_TEST(timeout_kills_and_removes_container)
{
    cJSON *r = run("dk-to", "s", "{\"interpreter\":\"/bin/sh\",\"timeout\":\"2s\","
                   "\"inline_script\":\"echo started; sleep 60; echo never\"}");
    expect_error(r, "timed_out", "timeout");
    ck_assert_str_eq(out(r, "termination.reason"), "timed_out");
    ck_assert_str_eq(out(r, "stdout"), "started\n");
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "duration_seconds");
    ck_assert(d->valuedouble >= 1.9 && d->valuedouble < 10);
    ck_assert_int_eq(gone_after_run("dk-to"), 0);
    cJSON_Delete(r);
}
END_TEST

START_TEST(cancel_kills_container)
{
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"dk-cancel\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"interpreter\":\"/bin/sh\","
                         "\"inline_script\":\"echo started; sleep 60\"}}", NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &a);
    wait_started("dk-cancel", "s");
    ck_assert_int_ge(objects_of("dk-cancel"), 1);
    cJSON *c = sx_harness_call(&H, "{\"op\":\"cancel\",\"execution_id\":\"dk-cancel\","
                                   "\"step_name\":\"s\"}");
    ck_assert_str_eq(sx_json_str(c, "status"), "ok");
    cJSON_Delete(c);
    pthread_join(th, NULL);
    cJSON *r = cJSON_Parse(a.reply);
    expect_error(r, "cancelled", "cancelled");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(out(r, "termination.reason"), "cancelled") == 0, "%s", text);
    free(text);
    ck_assert_int_eq(gone_after_run("dk-cancel"), 0);
    cJSON_Delete(r);
    free(a.reply);
}
END_TEST

START_TEST(whitelist_and_bad_parameters)
{
    cJSON *r = run("dk-wl", "ok", "{\"executor\":\"wl\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"  echo allowed\\n\"}");
    expect_status(r, "succeeded");
    cJSON_Delete(r);
    r = run("dk-wl", "no", "{\"executor\":\"wl\",\"inline_script\":\"echo other\"}");
    expect_error(r, "rejected", "command_not_allowed");
    cJSON_Delete(r);
    r = run("dk-bad", "img", "{\"image\":\"Bad Image\",\"inline_script\":\"true\"}");
    expect_error(r, "rejected", "invalid_parameter");
    cJSON_Delete(r);
    r = run("dk-bad", "k8s", "{\"inline_script\":\"true\",\"node_selector\":{\"a\":\"b\"}}");
    expect_error(r, "rejected", "unsupported_parameter");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "node_selector"));
    cJSON_Delete(r);
    r = run("dk-bad", "ref", "{\"inline_script\":\"true\",\"image_ref\":\"terraform\"}");
    expect_error(r, "rejected", "unsupported_parameter");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "image catalog"));
    cJSON_Delete(r);
    /* malformed nested values are refused, in render too (no crash) */
    r = sx_harness_call(&H, "{\"op\":\"render\",\"type\":\"script.run\",\"with\":{"
                            "\"inline_script\":\"true\",\"volumes_from_secret\":[{\"secret_name\":"
                            "\"a\",\"mount_path\":\"/x\",\"items\":[[1],{\"key\":2}]}]}}");
    expect_error(r, "rejected", "invalid_parameter");
    cJSON_Delete(r);
    r = run("dk-bad", "sub", "{\"inline_script\":\"true\",\"volumes_from_secret\":"
            "[{\"secret_name\":\"a\",\"mount_path\":\"/x\",\"sub_path\":\"k\"}]}");
    expect_error(r, "rejected", "unsupported_parameter");
    cJSON_Delete(r);
    ck_assert_int_eq(gone_after_run("dk-bad"), 0);
}
END_TEST

START_TEST(streams_closed_before_exit)
{
    /* without init the script is PID 1: closing its streams ends the
     * attach, yet the run waits for the real exit (and its timeout) */
    cJSON *r = run("dk-closed", "exit", "{\"executor\":\"loose\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"echo before; exec >&- 2>&-; sleep 2; exit 4\"}");
    expect_status(r, "failed");
    ck_assert_int_eq(exit_code(r), 4);
    ck_assert_str_eq(out(r, "stdout"), "before\n");
    free(sh("docker rm -fv %s >/dev/null 2>&1", out(r, "job_name")));
    cJSON_Delete(r);
    r = run("dk-closed", "timeout", "{\"executor\":\"loose\",\"interpreter\":\"/bin/sh\","
            "\"timeout\":\"2s\",\"inline_script\":\"exec >&- 2>&-; sleep 60\"}");
    expect_error(r, "timed_out", "timeout");
    free(sh("docker rm -fv %s >/dev/null 2>&1", out(r, "job_name")));
    cJSON_Delete(r);
    free(sh("docker volume ls -q --filter label=io.script-executor.execution-id=dk-closed | "
            "xargs -r docker volume rm >/dev/null 2>&1"));
}
END_TEST

/* ---------------------------------------------------------- secrets */

START_TEST(secrets_and_configmaps_reach_the_script_only)
{
    char base[400];
    snprintf(base, sizeof base, "%s/secrets", H.dir);
    write_file(base, "db/password", "pa55-W0rd-zz9", 0600);
    write_file(base, "db/user", "dbadmin", 0600);
    write_file(base, "api/TOKEN_A", "tok-aaa-771", 0600);
    write_file(base, "api/bad-name", "x", 0600);
    snprintf(base, sizeof base, "%s/configmaps", H.dir);
    write_file(base, "app/config.json", "{\"level\":\"debug\"}", 0644);
    write_file(base, "app/REGION", "eu-west-1", 0644);
    const char *with =
        "{\"interpreter\":\"/bin/sh\",\"env_from_secret\":{\"DB_PASSWORD\":{\"secret_name\":\"db\","
        "\"key\":\"password\"}},\"secret_env_all\":[\"api\"],\"configmap_env_all\":[\"app\"],"
        "\"env_from_configmap\":{\"APP_CONFIG\":{\"configmap_name\":\"app\",\"key\":\"config.json\"}},"
        "\"volumes_from_secret\":[{\"secret_name\":\"db\",\"mount_path\":\"/etc/db\","
        "\"items\":[{\"key\":\"password\",\"path\":\"pw/file\",\"mode\":256}]}],"
        "\"volumes_from_configmap\":[{\"configmap_name\":\"app\",\"mount_path\":\"/etc/app\"}],"
        "\"inline_script\":\"echo db=${DB_PASSWORD%%-*}:${#DB_PASSWORD} tok=${TOKEN_A%%-*}:${#TOKEN_A} "
        "region=$REGION cfg=$APP_CONFIG; f=$(cat /etc/db/pw/file); echo file=${f%%-*}:${#f}; "
        "stat -c '%a %u %g' /etc/db/pw/file; ls /etc/app | tr '\\\\n' ' '; "
        "cat /etc/app/REGION\"}";
    cJSON *r = run("dk-sec2", "s", with);
    expect_status(r, "succeeded");
    const char *so = out(r, "stdout");
    /* the script checks the values: printing them would put them in its
     * output, which is the script's doing (and audited with
     * log_script_output) */
    ck_assert_msg(strstr(so, "db=pa55:13 tok=tok:11 region=eu-west-1 cfg={\"level\":\"debug\"}\n"
                             "file=pa55:13\n") == so, "%s", so);
    ck_assert_ptr_nonnull(strstr(so, "\n440 0 65534\n")); /* 0400 | group read, root:gid */
    ck_assert_ptr_nonnull(strstr(so, "REGION config.json eu-west-1"));
    cJSON_Delete(r);
    /* render shows sources, never secret values */
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"render\",\"type\":\"script.run\",\"with\":%s}", with), 0);
    r = sx_harness_call(&H, req);
    free(req);
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    ck_assert_ptr_nonnull(strstr(text, "DB_PASSWORD=<from secret db/password>"));
    ck_assert_ptr_null(strstr(text, "pa55-W0rd-zz9"));
    ck_assert_ptr_null(strstr(text, "tok-aaa-771"));
    free(text);
    cJSON_Delete(r);
    /* nor the audit trail or the host's log */
    char *audit = sx_harness_slurp(H.audit_path);
    char *log = sx_harness_slurp(H.log_path);
    ck_assert_ptr_nonnull(audit);
    ck_assert_ptr_nonnull(strstr(audit, "dk-sec2"));
    ck_assert_ptr_null(strstr(audit, "pa55-W0rd-zz9"));
    ck_assert_ptr_null(strstr(audit, "tok-aaa-771"));
    ck_assert_ptr_null(strstr(log, "pa55-W0rd-zz9"));
    free(audit);
    free(log);
    /* a script that prints secrets (one split over two writes) shows the
     * mask: the values reach neither the reply nor the events or audit */
    r = run("dk-sec2", "print", "{\"interpreter\":\"/bin/sh\",\"env_from_secret\":{\"DB_PASSWORD\":"
            "{\"secret_name\":\"db\",\"key\":\"password\"}},\"secret_env_all\":[\"api\"],"
            "\"volumes_from_secret\":[{\"secret_name\":\"db\",\"mount_path\":\"/etc/db\"}],"
            "\"inline_script\":\"echo db=$DB_PASSWORD; cat /etc/db/password; echo; "
            "echo tok=$TOKEN_A >&2; v=$DB_PASSWORD; printf '%s' \\\"${v%%-*}\\\"; sleep 0.3; "
            "printf '%s\\\\n' \\\"-${v#*-}\\\"; echo user=$(cat /etc/db/user)\"}");
    expect_status(r, "succeeded");
    /* db/user is a key of the mounted secret too: masked as well */
    ck_assert_str_eq(out(r, "stdout"), "db=********\n********\n********\nuser=********\n");
    ck_assert_str_eq(out(r, "stderr"), "tok=********\n");
    cJSON_Delete(r);
    audit = sx_harness_slurp(H.audit_path);
    ck_assert_ptr_nonnull(strstr(audit, "\"print\""));
    ck_assert_ptr_null(strstr(audit, "pa55-W0rd-zz9"));
    ck_assert_ptr_null(strstr(audit, "tok-aaa-771"));
    free(audit);
    /* a missing secret is a config error, unless optional */
    r = run("dk-sec2", "missing", "{\"inline_script\":\"true\",\"env_from_secret\":{\"X\":"
            "{\"secret_name\":\"nope\",\"key\":\"k\"}}}");
    expect_error(r, "error", "config_error");
    cJSON_Delete(r);
    r = run("dk-sec2", "optional", "{\"interpreter\":\"/bin/sh\",\"inline_script\":\"echo x=${X:-unset}\","
            "\"env_from_secret\":{\"X\":{\"secret_name\":\"nope\",\"key\":\"k\",\"optional\":true}}}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "x=unset\n");
    cJSON_Delete(r);
}
END_TEST

/* ------------------------------------------------ script_delivery: bind */

START_TEST(bind_delivery_runs_and_leaves_nothing)
{
    char bind[400];
    snprintf(bind, sizeof bind, "%s/bind", H.dir);
    struct stat st;
    ck_assert_int_eq(stat(bind, &st), 0); /* created at start */
    ck_assert_int_eq(st.st_mode & 07777, 0711);
    /* prints at once and exits: nothing lost, nothing left behind */
    for (int i = 0; i < 10; i++) {
        short_lived_run("dk-fast", i, "fast");
        ck_assert_int_eq(bind_dir_left(), 0);
        ck_assert_int_eq(gone_after_run("dk-fast"), 0);
    }
    big_script_run("dk-fast-big", "fast");
    ck_assert_int_eq(bind_dir_left(), 0);
    ck_assert_int_eq(gone_after_run("dk-fast-big"), 0);
    /* secret and configmap mounts: modes and group as with the archive,
     * every mount read-only */
    char base[400];
    snprintf(base, sizeof base, "%s/secrets", H.dir);
    write_file(base, "db/password", "pa55-W0rd-zz9", 0600);
    snprintf(base, sizeof base, "%s/configmaps", H.dir);
    write_file(base, "app/config.json", "{\"level\":\"debug\"}", 0644);
    write_file(base, "app/REGION", "eu-west-1", 0644);
    const char *with =
        "{\"executor\":\"fast\",\"interpreter\":\"/bin/sh\","
        "\"volumes_from_secret\":[{\"secret_name\":\"db\",\"mount_path\":\"/etc/db\","
        "\"items\":[{\"key\":\"password\",\"path\":\"pw/file\",\"mode\":256}]}],"
        "\"volumes_from_configmap\":[{\"configmap_name\":\"app\",\"mount_path\":\"/etc/app\"}],"
        "\"inline_script\":\"f=$(cat /etc/db/pw/file); echo file=${f%%-*}:${#f}; "
        "stat -c '%a %u %g' /etc/db/pw/file; stat -c '%a %u' /etc/db/pw /etc/db /run/script-executor; "
        "ls /etc/app | tr '\\\\n' ' '; cat /etc/app/REGION; echo; "
        "touch /etc/db/x 2>/dev/null || echo secret-ro; "
        "touch /run/script-executor/x 2>/dev/null || echo script-ro\"}";
    cJSON *r = run("dk-fast-sec", "s", with);
    expect_status(r, "succeeded");
    const char *so = out(r, "stdout");
    ck_assert_msg(strcmp(so, "file=pa55:13\n"
                             "440 0 65534\n" /* 0400 | group read, root:gid */
                             "755 0\n755 0\n755 0\n"
                             "REGION config.json eu-west-1\n"
                             "secret-ro\nscript-ro\n") == 0, "%s", so);
    cJSON_Delete(r);
    ck_assert_int_eq(bind_dir_left(), 0);
    ck_assert_int_eq(gone_after_run("dk-fast-sec"), 0);
    /* render shows the bind mounts, never the secret */
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"render\",\"type\":\"script.run\",\"with\":%s}", with), 0);
    r = sx_harness_call(&H, req);
    free(req);
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    char src[500];
    snprintf(src, sizeof src, "\"type\":\"bind\",\"source\":\"%s/<container name>/v1\","
             "\"target\":\"/etc/db\",\"read_only\":true", bind);
    ck_assert_msg(strstr(text, src) != NULL, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "pw/file (0440, 13 bytes)"));
    ck_assert_ptr_null(strstr(text, "pa55-W0rd-zz9"));
    ck_assert_ptr_null(strstr(text, "\"type\":\"volume\""));
    free(text);
    cJSON_Delete(r);
}
END_TEST

START_TEST(bind_delivery_config_checks)
{
    const char *head = "script_executor:\n  plugins:\n    dir: \"@PLUGINS@\"\n"
                       "    load: [script_run, backend_docker]\n  executors:\n"
                       "    - name: f\n      kind: exec.docker\n      image: " MINIMAL "\n";
    struct {
        const char *extra, *want;
    } refused[] = {
        {"      script_delivery: bind\n      host: tcp://127.0.0.1:2375\n", "script_delivery"},
        {"      script_delivery: copy\n", "script_delivery"},
        {"      script_delivery: bind\n      bind_dir: relative/dir\n", "bind_dir"},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *cfg;
        ck_assert_int_ge(asprintf(&cfg, "%s%s", head, refused[i].extra), 0);
        int rc = sx_harness_check_config(cfg, out, sizeof out);
        free(cfg);
        ck_assert_msg(rc == 2, "case %zu: rc %d: %s", i, rc, out);
        ck_assert_msg(strstr(out, "invalid_config") && strstr(out, refused[i].want), "case %zu: %s",
                      i, out);
    }
    /* bind with a local daemon and an absolute bind_dir is fine */
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "%s      script_delivery: bind\n      bind_dir: @DIR@/b\n",
                              head), 0);
    int rc = sx_harness_check_config(cfg, out, sizeof out);
    free(cfg);
    ck_assert_msg(rc == 0, "%s", out);
}
END_TEST

/* ---------------------------------------------------------- registry */

START_TEST(pull_policies_and_pull_secrets)
{
    free(sh("docker rmi -f " REGISTRY_IMAGE " >/dev/null 2>&1"));
    char base[400];
    snprintf(base, sizeof base, "%s/secrets", H.dir);
    write_file(base, "reg-good/username", REG_USER, 0600);
    write_file(base, "reg-good/password", REG_PASS, 0600);
    write_file(base, "reg-bad/.dockerconfigjson",
               "{\"auths\":{\"127.0.0.1:5000\":{\"username\":\"sx-ci\",\"password\":\"wrong\"}}}",
               0600);
    const char *script = "\"interpreter\":\"/bin/sh\",\"inline_script\":\"echo pulled-ok\"";
    char with[600];
    /* absent + Never */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_policy\":\"Never\",%s}", script);
    cJSON *r = run("dk-pull", "never-absent", with);
    expect_error(r, "error", "image_not_found");
    cJSON_Delete(r);
    /* no credentials: the registry says unauthorized */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",%s}", script);
    r = run("dk-pull", "no-creds", with);
    ck_assert_str_eq(sx_json_str(r, "status"), "error");
    ck_assert_msg(!strcmp(sx_json_str(r, "error.code"), "image_pull_failed") ||
                  !strcmp(sx_json_str(r, "error.code"), "image_not_found"), "%s",
                  sx_json_str(r, "error.code"));
    cJSON_Delete(r);
    /* wrong password */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_secret\":\"reg-bad\",%s}", script);
    r = run("dk-pull", "bad-creds", with);
    expect_error(r, "error", "image_pull_failed");
    ck_assert_ptr_null(strstr(sx_json_str(r, "error.message"), "wrong"));
    cJSON_Delete(r);
    /* right credentials */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_secret\":\"reg-good\",%s}", script);
    r = run("dk-pull", "good-creds", with);
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "pulled-ok\n");
    cJSON_Delete(r);
    /* present now: Never and IfNotPresent run without credentials */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_policy\":\"Never\",%s}", script);
    r = run("dk-pull", "never-present", with);
    expect_status(r, "succeeded");
    cJSON_Delete(r);
    snprintf(with, sizeof with, "{\"executor\":\"reg\",%s}", script);
    r = run("dk-pull", "ifnotpresent-present", with);
    expect_status(r, "succeeded");
    cJSON_Delete(r);
    /* Always goes to the registry even though the image is here */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_policy\":\"Always\","
             "\"image_pull_secret\":\"reg-bad\",%s}", script);
    r = run("dk-pull", "always-bad", with);
    expect_error(r, "error", "image_pull_failed");
    cJSON_Delete(r);
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image_pull_policy\":\"Always\","
             "\"image_pull_secret\":\"reg-good\",%s}", script);
    r = run("dk-pull", "always-good", with);
    expect_status(r, "succeeded");
    cJSON_Delete(r);
    /* a tag that does not exist */
    snprintf(with, sizeof with, "{\"executor\":\"reg\",\"image\":\"127.0.0.1:5000/sx-test/"
             "minimal:no-such-tag\",\"image_pull_secret\":\"reg-good\",%s}", script);
    r = run("dk-pull", "no-tag", with);
    expect_error(r, "error", "image_not_found");
    cJSON_Delete(r);
    /* a registry that does not answer */
    snprintf(with, sizeof with, "{\"image\":\"127.0.0.1:5999/x/y:1\",%s}", script);
    r = run("dk-pull", "no-registry", with);
    expect_error(r, "error", "image_pull_failed");
    cJSON_Delete(r);
    free(sh("docker rmi -f " REGISTRY_IMAGE " >/dev/null 2>&1"));
}
END_TEST

/* ---------------------------------------------------- daemon failures */

START_TEST(dead_or_hung_daemon_fails_fast)
{
    time_t t0 = time(NULL);
    cJSON *r = run("dk-dead", "s", "{\"executor\":\"dead\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "docker_unavailable");
    cJSON_Delete(r);
    ck_assert_int_le(time(NULL) - t0, 3);
    /* a daemon that accepts and never answers: bounded by the timeouts */
    t0 = time(NULL);
    r = run("dk-dead", "hung", "{\"executor\":\"hung\",\"timeout\":\"3s\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "docker_unavailable");
    cJSON_Delete(r);
    ck_assert_int_le(time(NULL) - t0, 8);
    /* a pull is bounded by the same budget while the daemon does not answer */
    t0 = time(NULL);
    r = run("dk-dead", "hung-pull", "{\"executor\":\"hung\",\"timeout\":\"3s\","
            "\"image_pull_policy\":\"Always\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "docker_unavailable");
    cJSON_Delete(r);
    ck_assert_int_le(time(NULL) - t0, 8);
    /* describe says which engine is reachable */
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_ptr_nonnull(strstr(text, "\"api_version\":\"1.41\""));
    ck_assert_ptr_nonnull(strstr(text, "\"reachable\":false"));
    ck_assert_ptr_nonnull(strstr(text, "\"reachable\":true"));
    ck_assert_ptr_nonnull(strstr(text, "\"version\":\"20.10"));
    free(text);
    cJSON_Delete(d);
}
END_TEST

START_TEST(leftovers_removed_after_kill_9)
{
    /* fast's bind_dir must outlive the first host's temp dir */
    char bind[64];
    snprintf(bind, sizeof bind, "/tmp/sx-bind-%d", (int)getpid());
    char *with_hung = config_text();
    char *cfg = replace_once(with_hung, "@DIR@/bind", bind);
    free(with_hung);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"dk-left\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"interpreter\":\"/bin/sh\","
                         "\"inline_script\":\"sleep 120\"}}", NULL};
    struct call_arg b = {"{\"op\":\"execute\",\"execution_id\":\"dk-leftb\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"executor\":\"fast\","
                         "\"interpreter\":\"/bin/sh\",\"inline_script\":\"sleep 120\"}}", NULL};
    pthread_t th, thb;
    pthread_create(&th, NULL, call_thread, &a);
    pthread_create(&thb, NULL, call_thread, &b);
    wait_started("dk-left", "s");
    wait_started("dk-leftb", "s");
    kill(H.pid, SIGKILL);
    waitpid(H.pid, NULL, 0);
    pthread_join(th, NULL);
    pthread_join(thb, NULL);
    free(a.reply);
    free(b.reply);
    ck_assert_int_ge(objects_of("dk-left"), 2); /* the container and its script volume */
    ck_assert_int_eq(objects_of("dk-leftb"), 1); /* the container; no volume with bind */
    char *left = sh("ls '%s'", bind);            /* its bind directory */
    ck_assert_msg(strncmp(left, "sx-fast-", 8) == 0 && strchr(left, '\n') == NULL, "%s", left);
    /* a new host (same config, same host_id) sweeps them away on start */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", H.dir);
    H.pid = -1;
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    ck_assert_int_eq(objects_of("dk-left"), 0);
    ck_assert_int_eq(objects_of("dk-leftb"), 0);
    ck_assert_int_eq(entries_in(bind), 0);
    ck_assert_int_ge(sx_harness_audit_count(&H, "docker.leftover_removed", "dk-left", "s"), 2);
    ck_assert_int_eq(sx_harness_audit_count(&H, "docker.leftover_removed", "dk-leftb", "s"), 2);
    char *audit = sx_harness_slurp(H.audit_path);
    char want[200];
    snprintf(want, sizeof want, "\"object\":\"bind_dir\",\"id\":\"%s\"", left);
    ck_assert_msg(strstr(audit, want) != NULL, "%s", audit);
    free(audit);
    char *log = sx_harness_slurp(H.log_path);
    ck_assert_ptr_nonnull(strstr(log, "leftover container"));
    snprintf(want, sizeof want, "leftover bind_dir %s of execution dk-leftb", left);
    ck_assert_msg(strstr(log, want) != NULL, "%s", log);
    free(log);
    free(left);
    stop_host();
    char *cmd;
    ck_assert_int_ge(asprintf(&cmd, "rm -rf '%s' '%s'", dir, bind), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}
END_TEST

/* The shipped example runbook, through sxctl, on the shipped config's
 * executors (configs/docker-local.yaml with paths moved into the test dir). */
START_TEST(example_runbook_through_sxctl)
{
    char *cfg = sx_harness_slurp(SX_SOURCE_DIR "/configs/docker-local.yaml");
    ck_assert_ptr_nonnull(cfg);
    char *text = NULL;
    /* point sockets, audit, plugins and the local store at test paths */
    const char *from[] = {"ipc:///tmp/script-executor/", "/tmp/script-executor/audit.log",
                          "\"build/plugins\"", "configs/examples/local-store"};
    const char *to[] = {"ipc://@DIR@/", "@DIR@/audit.log", "\"@PLUGINS@\"",
                        SX_SOURCE_DIR "/configs/examples/local-store"};
    text = strdup(cfg);
    for (size_t i = 0; i < 4; i++) {
        size_t pos = 0;
        char *at;
        while ((at = strstr(text + pos, from[i])) != NULL) {
            char *next;
            size_t off = (size_t)(at - text);
            ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)off, text, to[i],
                                      at + strlen(from[i])), 0);
            free(text);
            text = next;
            pos = off + strlen(to[i]); /* the replacement may contain the pattern */
        }
    }
    free(cfg);
    ck_assert_int_eq(sx_harness_start(&H, text), 0);
    free(text);
    char *res = sh("cd '%s' && '%s' --url '%s' --events-url '%s' run configs/examples/docker-check.yaml "
                   "2>&1; echo rc=$?", SX_SOURCE_DIR, SX_SXCTL_BIN, H.ctl_url, H.events_url);
    ck_assert_msg(strstr(res, "rc=0") != NULL, "%s", res);
    ck_assert_msg(strstr(res, "Checking status file for api as 65534") != NULL, "%s", res);
    ck_assert_msg(strstr(res, "Would run VACUUM ANALYZE as ******** (password: 21 characters)") != NULL,
                  "%s", res);
    ck_assert_msg(strstr(res, "\"batch\": 50") != NULL, "%s", res);
    ck_assert_msg(strstr(res, "args: ['--dry-run']") != NULL, "%s", res);
    ck_assert_msg(strstr(res, "greets alice and bob") != NULL, "%s", res);
    ck_assert_ptr_null(strstr(res, "example-only-password"));
    free(res);
    char *audit = sx_harness_slurp(H.audit_path);
    ck_assert_ptr_nonnull(audit);
    ck_assert_ptr_null(strstr(audit, "example-only-password"));
    free(audit);
    stop_host();
}
END_TEST

/* A unix socket that accepts connections and never answers. */
static int hung_fd = -1;
static void start_hung_daemon(void)
{
    snprintf(hung_sock, sizeof hung_sock, "/tmp/sx-hung-%d.sock", (int)getpid());
    unlink(hung_sock);
    hung_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", hung_sock);
    if (bind(hung_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(hung_fd, 64) != 0) {
        perror("hung daemon socket");
        exit(2);
    }
}

static int docker_reachable(void)
{
    return system("docker info >/dev/null 2>&1") == 0 &&
           system("docker image inspect " MINIMAL " " FULL " >/dev/null 2>&1") == 0 &&
           system("curl -s -o /dev/null -w %{http_code} http://127.0.0.1:5000/v2/ | grep -q 401") == 0;
}

int main(void)
{
    if (!docker_reachable()) {
        fprintf(stderr, "integration_docker needs the Docker engine, the sx-test images and the "
                        "loopback registry: run `bash tools/docker-env.sh` first\n");
        return EXIT_FAILURE;
    }
    start_hung_daemon();
    Suite *s = suite_create("docker");
    TCase *t = tcase_create("docker");
    tcase_add_checked_fixture(t, start_host, stop_host);
    tcase_add_test(t, short_lived_output_is_complete);
    tcase_add_test(t, interpreters_stdin_args_env);
    tcase_add_test(t, large_script_and_stdin);
    tcase_add_test(t, output_cap_and_live_events);
    tcase_add_test(t, security_defaults_hold);
    tcase_add_test(t, loose_executor_options_take_effect);
    tcase_add_test(t, network_none_has_only_loopback);
    tcase_add_test(t, pids_limit_stops_fork_bomb);
    tcase_add_test(t, memory_hog_is_oom_killed);
    tcase_add_test(t, step_resources_map_to_limits);
    tcase_add_test(t, timeout_kills_and_removes_container);
    tcase_add_test(t, cancel_kills_container);
    tcase_add_test(t, streams_closed_before_exit);
    tcase_add_test(t, whitelist_and_bad_parameters);
    tcase_add_test(t, secrets_and_configmaps_reach_the_script_only);
    tcase_add_test(t, bind_delivery_runs_and_leaves_nothing);
    tcase_add_test(t, pull_policies_and_pull_secrets);
    tcase_add_test(t, dead_or_hung_daemon_fails_fast);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    TCase *ex = tcase_create("examples");
    tcase_add_test(ex, example_runbook_through_sxctl);
    tcase_set_timeout(ex, 120);
    suite_add_tcase(s, ex);
    TCase *cc = tcase_create("config");
    tcase_add_test(cc, bind_delivery_config_checks);
    tcase_set_timeout(cc, 60);
    suite_add_tcase(s, cc);
    TCase *k = tcase_create("leftovers");
    tcase_add_test(k, leftovers_removed_after_kill_9);
    tcase_set_timeout(k, 120);
    suite_add_tcase(s, k);
    int rc = sx_check_run(s);
    close(hung_fd);
    unlink(hung_sock);
    return rc;
}
