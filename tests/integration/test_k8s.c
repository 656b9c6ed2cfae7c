/*
 * test_k8s.c - the exec.kubernetes backend through the real host over nng,
 * against the fake Kubernetes API server (tests/k8s_fake, docs/k8s-fake.md),
 * which runs each Job's pod as a container on the local Docker engine
 * (images sx-test/full and sx-test/minimal, tools/docker-env.sh).
 *
 * Every test starts its own fake (its faults and counters are its own) and
 * its own host; the fake's API is also used as the observer: Jobs, pods and
 * Secrets that exist, request counts (GET /_fake/stats).
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"

#define FULL "sx-test/full:latest"
#define MINIMAL "sx-test/minimal:latest"
#define NS "sx-test"
/* The documented bound of API requests of one plain execution (inline
 * script, no Secrets read, output on both streams): create Job, create
 * Secret, watch pods, two logs (stdout, stderr), the one-time probes of the
 * log `stream` parameter and of metrics.k8s.io, a metrics sample of a run
 * longer than 5 s.  docs/backend-kubernetes.md states it. */
#define MAX_REQUESTS_PER_RUN 8

/* ------------------------------------------------------------ utilities */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run a shell command (observer only); its stdout, trimmed. */
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

/* ------------------------------------------------------------- the fake */

typedef struct fake {
    pid_t pid;
    char dir[256];
    int port;
    char url[128];
    char kubeconfig[300];
    int tls;
} fake;

static fake F;
static int fake_seq;

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    body *b = u;
    b->data = realloc(b->data, b->len + s * n + 1);
    memcpy(b->data + b->len, p, s * n);
    b->len += s * n;
    b->data[b->len] = '\0';
    return s * n;
}

/* One request to the fake (the control API or the Kubernetes API, no
 * credentials); the answer's body (malloc'ed, "" when none) and status. */
static char *http(const fake *f, const char *method, const char *path, const char *json,
                  long *status)
{
    CURL *h = curl_easy_init();
    char url[1200];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (json)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    if (f->tls) {
        char ca[400];
        snprintf(ca, sizeof ca, "%s/tls/ca.crt", f->dir);
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    body b = {calloc(1, 1), 0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    if (status)
        *status = st;
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return b.data;
}

static cJSON *api(const char *method, const char *path, const char *json, long *status)
{
    char *t = http(&F, method, path, json, status);
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static void faults(const char *json)
{
    long st;
    char *t = http(&F, "POST", "/_fake/faults", json, &st);
    ck_assert_msg(st == 200, "faults %s: %ld %s", json, st, t);
    free(t);
}

static void reset_stats(void)
{
    long st;
    free(http(&F, "DELETE", "/_fake/stats", NULL, &st));
    ck_assert_int_eq(st, 200);
}

/* Requests since the last reset: total, and of one key ("create
 * /apis/batch/v1/namespaces/{namespace}/jobs"), summed over keys that
 * contain `part` when part is not NULL. */
static long stats_count(const char *part)
{
    long st;
    cJSON *j = api("GET", "/_fake/stats", NULL, &st);
    ck_assert_int_eq(st, 200);
    long n = 0;
    if (part == NULL) {
        n = (long)cJSON_GetObjectItem(j, "total")->valuedouble;
    } else {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "requests"))
            if (strstr(it->string, part))
                n += (long)it->valuedouble;
    }
    cJSON_Delete(j);
    return n;
}

static char *stats_text(void)
{
    return http(&F, "GET", "/_fake/stats", NULL, NULL);
}

/* Start a fake with extra command-line arguments (space-separated). */
static void fake_start_args(const char *extra, int tls)
{
    memset(&F, 0, sizeof F);
    F.tls = tls;
    snprintf(F.dir, sizeof F.dir, "/tmp/sxk8s-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(F.dir));
    char port_file[300], prefix[64], tls_dir[300];
    snprintf(port_file, sizeof port_file, "%s/port", F.dir);
    snprintf(F.kubeconfig, sizeof F.kubeconfig, "%s/kubeconfig", F.dir);
    snprintf(prefix, sizeof prefix, "sxk8s-%d-%d", (int)getpid(), fake_seq++);
    snprintf(tls_dir, sizeof tls_dir, "%s/tls", F.dir);
    char *argv[64];
    int n = 0;
    argv[n++] = SX_SOURCE_DIR "/tests/k8s_fake/k8s-fake";
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--kubeconfig-out";
    argv[n++] = F.kubeconfig;
    argv[n++] = "--namespace";
    argv[n++] = NS;
    argv[n++] = "--label-prefix";
    argv[n++] = prefix;
    argv[n++] = "--exit-with-parent";
    argv[n++] = "--job-backoff";
    argv[n++] = "1";
    if (tls) {
        argv[n++] = "--tls-dir";
        argv[n++] = tls_dir;
    }
    char *copy = strdup(extra ? extra : "");
    for (char *tok = strtok(copy, " "); tok && n < 62; tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n] = NULL;
    F.pid = fork();
    if (F.pid == 0) {
        /* its own session: check kills the test's process group when a
         * test fails, and a SIGKILLed fake could not remove its containers;
         * --exit-with-parent makes it clean up and exit when we die */
        setsid();
        char log[320];
        snprintf(log, sizeof log, "%s/fake.log", F.dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    free(copy);
    double until = now_s() + 60;
    FILE *pf = NULL;
    while (now_s() < until && (pf = fopen(port_file, "r")) == NULL) {
        int st;
        ck_assert_msg(waitpid(F.pid, &st, WNOHANG) == 0, "the fake exited (see %s/fake.log)",
                      F.dir);
        sleep_ms(50);
    }
    ck_assert_msg(pf != NULL, "the fake did not start within 60 s (see %s/fake.log)", F.dir);
    ck_assert_int_eq(fscanf(pf, "%d", &F.port), 1);
    fclose(pf);
    snprintf(F.url, sizeof F.url, "%s://127.0.0.1:%d", tls ? "https" : "http", F.port);
}

static void fake_stop(void)
{
    if (F.pid <= 0)
        return;
    kill(F.pid, SIGTERM);
    int st = 0;
    double until = now_s() + 60;
    while (waitpid(F.pid, &st, WNOHANG) == 0 && now_s() < until)
        sleep_ms(50);
    F.pid = 0;
    char *cmd;
    ck_assert_int_ge(asprintf(&cmd, "rm -rf '%s'", F.dir), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

/* Create a Secret or ConfigMap in the fake: kind "secrets"/"configmaps",
 * data as JSON {"key": "value"} (Secrets: stringData). */
static void create_object(const char *kind, const char *name, const char *data_json)
{
    char *body;
    int secret = strcmp(kind, "secrets") == 0;
    ck_assert_int_ge(asprintf(&body,
                              "{\"apiVersion\":\"v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
                              "\"namespace\":\"" NS "\"},\"%s\":%s}",
                              secret ? "Secret" : "ConfigMap", name,
                              secret ? "stringData" : "data", data_json), 0);
    char path[200];
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/%s", kind);
    long st;
    char *t = http(&F, "POST", path, body, &st);
    ck_assert_msg(st == 201, "create %s %s: %ld %s", kind, name, st, t);
    free(t);
    free(body);
}

/* ------------------------------------------------------------- the host */

static sx_harness H;

static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_concurrent: 8\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_k8s, audit_file]\n"
    "  executors:\n"
    "    - name: k8s\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: @KC@\n"
    "      image: " FULL "\n"
    "      service_account: default\n"
    "      host_id: @HOSTID@\n"
    "      unschedulable_grace: 3s\n"
    "      api_timeout: 5s\n"
    "@EXTRA@"
    "  default_executor: k8s\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static char *replace_all(const char *text, const char *from, const char *to)
{
    char *out = strdup(text);
    char *at;
    size_t pos = 0;
    while ((at = strstr(out + pos, from)) != NULL) {
        char *next;
        size_t off = (size_t)(at - out);
        ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)off, out, to, at + strlen(from)), 0);
        free(out);
        out = next;
        pos = off + strlen(to);
    }
    return out;
}

/* The config with the fake's kubeconfig, a host_id of this test process,
 * and `extra` executor entries (YAML under executors:, may use @KC@). */
static char *config_text(const char *extra)
{
    char hostid[64];
    snprintf(hostid, sizeof hostid, "sxit-k8s-%d", (int)getpid());
    char *a = replace_all(CONFIG, "@EXTRA@", extra ? extra : "");
    char *b = replace_all(a, "@KC@", F.kubeconfig);
    char *c = replace_all(b, "@HOSTID@", hostid);
    free(a);
    free(b);
    return c;
}

/* The start-up reconciliation runs on its own thread a moment after the
 * host starts (never from --check-config): wait until every Kubernetes
 * executor says it is done, so that runs measure only their own requests
 * and restarts find their orphans collected. */
static void wait_reconciled(void)
{
    double until = now_s() + 20;
    for (;;) {
        cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
        ck_assert_ptr_nonnull(d);
        char *text = cJSON_PrintUnformatted(d);
        cJSON_Delete(d);
        int done = strstr(text, "\"startup_reconciliation_attempted\":false") == NULL;
        free(text);
        if (done)
            return;
        ck_assert_msg(now_s() < until, "the start-up reconciliation was not attempted in 20 s");
        usleep(50 * 1000);
    }
}

static void host_start(const char *extra)
{
    char *cfg = config_text(extra);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    wait_reconciled();
}

static void host_stop(void)
{
    if (H.pid > 0) {
        int rc = sx_harness_stop(&H);
        ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
    }
}

static void setup(void)
{
    fake_start_args(NULL, 0);
    host_start(NULL);
}

static void teardown(void)
{
    host_stop();
    fake_stop();
}

static cJSON *run(const char *id, const char *step, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req,
                              "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"%s\","
                              "\"runbook_id\":\"rb.k8s\",\"type\":\"script.run\","
                              "\"caller\":{\"user\":\"alice\",\"groups\":[\"sre\"]},\"with\":%s}",
                              id, step, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *out(const cJSON *r, const char *field)
{
    char path[96];
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

static double duration(const cJSON *r)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "duration_seconds");
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* GET a namespaced object: its HTTP status. */
static long object_status(const char *group_path, const char *kind, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/namespaces/" NS "/%s/%s", group_path, kind, name);
    long st;
    cJSON *j = api("GET", path, NULL, &st);
    /* an object being deleted (deletionTimestamp) counts as gone */
    if (st == 200 && cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "deletionTimestamp"))
        st = 404;
    cJSON_Delete(j);
    return st;
}

/* Wait (up to `secs`) until the Job is gone; returns its last status. */
static long wait_job_gone(const char *job, double secs)
{
    double until = now_s() + secs;
    long st = object_status("/apis/batch/v1", "jobs", job);
    while (st != 404 && now_s() < until) {
        sleep_ms(100);
        st = object_status("/apis/batch/v1", "jobs", job);
    }
    return st;
}

/* Pods of an execution (label execution-id) in a phase (NULL = any). */
static int pods_of(const char *execution_id, const char *phase)
{
    char path[400];
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/pods?labelSelector=execution-id%%3D%s",
             execution_id);
    long st;
    cJSON *j = api("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    int n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "items")) {
        const char *ph = sx_json_str(p, "status.phase");
        if (phase == NULL || strcmp(ph, phase) == 0)
            n++;
    }
    cJSON_Delete(j);
    return n;
}

static void wait_running(const char *execution_id)
{
    double until = now_s() + 60;
    while (pods_of(execution_id, "Running") == 0 && now_s() < until)
        sleep_ms(100);
    ck_assert_msg(pods_of(execution_id, "Running") == 1, "no running pod of %s", execution_id);
}

static void wait_started(const char *id, const char *step)
{
    double until = now_s() + 30;
    while (sx_harness_audit_count(&H, "exec.started", id, step) == 0 && now_s() < until)
        sleep_ms(25);
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

/* The `kubernetes` object of the execution's exec.finished audit record. */
static cJSON *finished_info(const char *id, const char *step)
{
    cJSON *rec = sx_harness_audit_record(&H, "exec.finished", id, step);
    ck_assert_ptr_nonnull(rec);
    cJSON *k = cJSON_DetachItemFromObject(rec, "kubernetes");
    cJSON_Delete(rec);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* ------------------------------------------------------------ the tests */

START_TEST(success_with_stdout_and_stderr)
{
    reset_stats();
    cJSON *r = run("k8s-ok", "s", "{\"inline_script\":\"echo one; echo to-err >&2; echo two; "
                   "printf no-newline\"}");
    expect_status(r, "succeeded");
    ck_assert_int_eq(exit_code(r), 0);
    ck_assert_str_eq(out(r, "stdout"), "one\ntwo\nno-newline");
    ck_assert_str_eq(out(r, "stderr"), "to-err\n");
    ck_assert_str_eq(out(r, "termination.reason"), "exited");
    ck_assert_str_eq(out(r, "backend"), "exec.kubernetes");
    const char *job = out(r, "job_name");
    const char *pod = out(r, "pod_name");
    ck_assert_msg(strncmp(job, "script-exec-", 12) == 0, "job %s", job);
    ck_assert_msg(strncmp(pod, job, strlen(job)) == 0 && strlen(pod) > strlen(job), "pod %s", pod);
    ck_assert(duration(r) >= 0 && duration(r) < 30);
    /* API traffic of one execution: within the documented bound */
    long total = stats_count(NULL);
    char *stats = stats_text();
    ck_assert_msg(total >= 5 && total <= MAX_REQUESTS_PER_RUN, "%ld requests: %s", total, stats);
    ck_assert_msg(stats_count("create /apis/batch/v1") == 1, "%s", stats);
    ck_assert_msg(stats_count("watch /api/v1/namespaces/{namespace}/pods") == 1, "%s", stats);
    ck_assert_msg(stats_count("list /api/v1/namespaces/{namespace}/pods") == 0, "%s", stats);
    free(stats);
    /* the Job stays (ttl_seconds_after_finished); its Secret is owned by it */
    ck_assert_int_eq(object_status("/apis/batch/v1", "jobs", job), 200);
    char path[400];
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/secrets/%s", job);
    long st;
    cJSON *sec = api("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    const cJSON *owner = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sec, "metadata"), "ownerReferences"), 0);
    ck_assert_str_eq(sx_json_str(owner, "kind"), "Job");
    ck_assert_str_eq(sx_json_str(owner, "name"), job);
    cJSON_Delete(sec);
    /* the same figure in the finished record */
    cJSON *k = finished_info("k8s-ok", "s");
    ck_assert_str_eq(sx_json_str(k, "log_streams"), "separate");
    ck_assert_str_eq(sx_json_str(k, "job_name"), job);
    long mine = (long)cJSON_GetObjectItem(cJSON_GetObjectItem(k, "api_requests"), "total")->valuedouble;
    ck_assert_int_eq(mine, total);
    cJSON_Delete(k);
    /* a second run does not probe again */
    reset_stats();
    cJSON *r2 = run("k8s-ok", "again", "{\"inline_script\":\"echo x\"}");
    expect_status(r2, "succeeded");
    long second = stats_count(NULL);
    ck_assert_msg(second <= total - 2, "second run %ld requests, first %ld", second, total);
    cJSON_Delete(r2);
    cJSON_Delete(r);
}
END_TEST

START_TEST(nonzero_exit_and_interpreters)
{
    cJSON *r = run("k8s-exit", "s", "{\"inline_script\":\"echo before; exit 3\"}");
    expect_error(r, "failed", "script_failed");
    ck_assert_int_eq(exit_code(r), 3);
    ck_assert_str_eq(out(r, "stdout"), "before\n");
    cJSON_Delete(r);
    r = run("k8s-exit", "py", "{\"interpreter\":\"python3\",\"inline_script\":"
            "\"import sys; print(6*7); sys.exit(5)\"}");
    expect_error(r, "failed", "script_failed");
    ck_assert_int_eq(exit_code(r), 5);
    ck_assert_str_eq(out(r, "stdout"), "42\n");
    cJSON_Delete(r);
    r = run("k8s-exit", "rb", "{\"interpreter\":\"ruby\",\"inline_script\":\"puts 'hi from ruby'\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "hi from ruby\n");
    cJSON_Delete(r);
    /* a missing interpreter in the image: not a script failure */
    r = run("k8s-exit", "noi", "{\"image\":\"" MINIMAL "\",\"interpreter\":\"python3\","
            "\"inline_script\":\"print(1)\"}");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), "error") == 0 ||
                      (strcmp(sx_json_str(r, "status"), "failed") == 0 && exit_code(r) == 127),
                  "%s", text);
    free(text);
    cJSON_Delete(r);
}
END_TEST

START_TEST(stdin_args_env_working_dir)
{
    cJSON *r = run("k8s-in", "s", "{\"stdin\":\"line1\\nline2\\n\",\"args\":[\"a\",\"b c\"],"
                   "\"env\":{\"GREETING\":\"hello $x 'q'\"},\"inline_script\":"
                   "\"cat; echo \\\"[$1][$2][$#]\\\"; echo \\\"$GREETING\\\"; pwd; id -u\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "line1\nline2\n[a][b c][2]\nhello $x 'q'\n/workspace\n65534\n");
    cJSON_Delete(r);
    /* no stdin: end of file at once */
    r = run("k8s-in", "nostdin", "{\"timeout\":\"20s\",\"inline_script\":\"cat; echo after\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "after\n");
    cJSON_Delete(r);
    /* 200 KB of stdin (beyond any pipe buffer) comes back whole */
    size_t n = 200 * 1024;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    char *with;
    ck_assert_int_ge(asprintf(&with, "{\"stdin\":\"%s\",\"inline_script\":\"wc -c\"}", big), 0);
    r = run("k8s-in", "big", with);
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "204800\n");
    cJSON_Delete(r);
    free(with);
    free(big);
}
END_TEST

START_TEST(secrets_configmaps_env_and_volumes_masked)
{
    create_object("secrets", "db-cred", "{\"password\":\"pa55-w0rd-xyz\",\"user\":\"admin\"}");
    create_object("secrets", "tls-certs", "{\"tls.crt\":\"CERT-DATA-123\",\"tls.key\":\"KEY-DATA-456\"}");
    create_object("configmaps", "app-settings", "{\"config.json\":\"{\\\"a\\\":1}\",\"mode\":\"fast\"}");
    cJSON *r = run("k8s-sec", "s",
                   "{\"env_from_secret\":{\"DB_PASSWORD\":{\"secret_name\":\"db-cred\",\"key\":\"password\"}},"
                   "\"secret_env_all\":[\"db-cred\"],"
                   "\"env_from_configmap\":{\"APP_CONFIG\":{\"configmap_name\":\"app-settings\",\"key\":\"config.json\"}},"
                   "\"configmap_env_all\":[\"app-settings\"],"
                   "\"volumes_from_secret\":[{\"secret_name\":\"tls-certs\",\"mount_path\":\"/etc/certs\","
                   "\"items\":[{\"key\":\"tls.crt\",\"path\":\"server.crt\",\"mode\":256}]}],"
                   "\"volumes_from_configmap\":[{\"configmap_name\":\"app-settings\",\"mount_path\":\"/config\"}],"
                   "\"inline_script\":\"echo pw=$DB_PASSWORD; echo user=$user; echo cfg=$APP_CONFIG; "
                   "echo mode=$mode; cat /etc/certs/server.crt; echo; ls /etc/certs; "
                   "cat /config/mode; echo; echo err-$DB_PASSWORD >&2\"}");
    expect_status(r, "succeeded");
    const char *o = out(r, "stdout");
    ck_assert_msg(strstr(o, "pw=********\n") != NULL, "%s", o);
    ck_assert_msg(strstr(o, "user=********\n") != NULL, "%s", o); /* every value of db-cred */
    ck_assert_msg(strstr(o, "cfg={\"a\":1}\n") != NULL, "%s", o);
    ck_assert_msg(strstr(o, "mode=fast\n") != NULL, "%s", o);
    ck_assert_msg(strstr(o, "********\nserver.crt\n") != NULL, "%s", o); /* the cert is a secret value */
    ck_assert_msg(strstr(o, "fast\n") != NULL, "%s", o);
    ck_assert_ptr_null(strstr(o, "pa55-w0rd-xyz"));
    ck_assert_ptr_null(strstr(o, "CERT-DATA-123"));
    ck_assert_str_eq(out(r, "stderr"), "err-********\n");
    /* not in the audit trail either */
    char *audit = sx_harness_slurp(H.audit_path);
    ck_assert_ptr_null(strstr(audit, "pa55-w0rd-xyz"));
    free(audit);
    cJSON_Delete(r);
}
END_TEST

START_TEST(timeout_deletes_the_job)
{
    double t0 = now_s();
    cJSON *r = run("k8s-to", "s", "{\"timeout\":\"3s\",\"inline_script\":\"echo started; sleep 60; "
                   "echo never\"}");
    double took = now_s() - t0;
    expect_error(r, "timed_out", "timeout");
    ck_assert_str_eq(out(r, "termination.reason"), "timed_out");
    ck_assert_str_eq(out(r, "stdout"), "started\n");
    ck_assert_int_eq(exit_code(r), -1000);
    ck_assert_msg(took >= 2.9 && took < 15, "took %.1f s", took);
    ck_assert_int_eq(wait_job_gone(out(r, "job_name"), 30), 404);
    cJSON_Delete(r);
}
END_TEST

START_TEST(cancel_deletes_the_job)
{
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"k8s-cancel\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"inline_script\":"
                         "\"echo cancel-ready; sleep 60; echo never\"}}", NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &a);
    wait_started("k8s-cancel", "s");
    wait_running("k8s-cancel");
    double t0 = now_s();
    cJSON *c = sx_harness_call(&H, "{\"op\":\"cancel\",\"execution_id\":\"k8s-cancel\","
                                   "\"step_name\":\"s\"}");
    ck_assert_str_eq(sx_json_str(c, "status"), "ok");
    cJSON_Delete(c);
    pthread_join(th, NULL);
    ck_assert_msg(now_s() - t0 < 8, "cancel took %.1f s", now_s() - t0);
    cJSON *r = cJSON_Parse(a.reply);
    expect_error(r, "cancelled", "cancelled");
    ck_assert_str_eq(out(r, "termination.reason"), "cancelled");
    ck_assert_ptr_nonnull(strstr(out(r, "stdout"), "cancel-ready"));
    ck_assert_int_eq(wait_job_gone(out(r, "job_name"), 30), 404);
    cJSON_Delete(r);
    free(a.reply);
}
END_TEST

START_TEST(image_pull_failure_is_quick)
{
    faults("{\"image_pull_fail\":\"*nosuch*\"}");
    double t0 = now_s();
    cJSON *r = run("k8s-pull", "s", "{\"image\":\"sx-test/nosuch:1\",\"timeout\":\"60s\","
                   "\"inline_script\":\"true\"}");
    expect_error(r, "error", "image_pull_failed");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "sx-test/nosuch:1"));
    ck_assert_msg(now_s() - t0 < 20, "took %.1f s", now_s() - t0);
    cJSON_Delete(r);
    /* nothing is left running */
    double until = now_s() + 30;
    while (pods_of("k8s-pull", NULL) > 0 && now_s() < until)
        sleep_ms(100);
    ck_assert_int_eq(pods_of("k8s-pull", NULL), 0);
}
END_TEST

START_TEST(missing_secret_or_configmap_is_config_error)
{
    /* named by the step and absent: found before anything is created */
    reset_stats();
    cJSON *r = run("k8s-miss", "env", "{\"env_from_secret\":{\"X\":{\"secret_name\":\"nope\","
                   "\"key\":\"k\"}},\"inline_script\":\"true\"}");
    expect_error(r, "error", "config_error");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "nope"));
    ck_assert_int_eq(stats_count("create"), 0);
    cJSON_Delete(r);
    /* exists but the kubelet cannot see it (env): CreateContainerConfigError */
    create_object("secrets", "hidden", "{\"k\":\"value-1234\"}");
    faults("{\"missing_secret\":\"hidden\",\"missing_configmap\":\"gone-cm\"}");
    double t0 = now_s();
    r = run("k8s-miss", "kubelet", "{\"env_from_secret\":{\"X\":{\"secret_name\":\"hidden\","
            "\"key\":\"k\"}},\"inline_script\":\"true\"}");
    expect_error(r, "error", "config_error");
    ck_assert_msg(now_s() - t0 < 20, "took %.1f s", now_s() - t0);
    cJSON_Delete(r);
    /* a volume: the pod stays ContainerCreating with a FailedMount event */
    create_object("configmaps", "gone-cm", "{\"a\":\"b\"}");
    t0 = now_s();
    r = run("k8s-miss", "volume", "{\"volumes_from_configmap\":[{\"configmap_name\":\"gone-cm\","
            "\"mount_path\":\"/cm\"}],\"inline_script\":\"true\"}");
    expect_error(r, "error", "config_error");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "gone-cm"));
    ck_assert_msg(now_s() - t0 < 20, "took %.1f s", now_s() - t0);
    cJSON_Delete(r);
    /* a configmap env var that does not exist at all */
    r = run("k8s-miss", "cmenv", "{\"env_from_configmap\":{\"Y\":{\"configmap_name\":\"absent\","
            "\"key\":\"k\"}},\"inline_script\":\"true\"}");
    expect_error(r, "error", "config_error");
    cJSON_Delete(r);
}
END_TEST

START_TEST(unschedulable_after_the_grace)
{
    faults("{\"unschedulable\":true}");
    double t0 = now_s();
    cJSON *r = run("k8s-sched", "s", "{\"timeout\":\"60s\",\"inline_script\":\"true\"}");
    double took = now_s() - t0;
    expect_error(r, "error", "unschedulable");
    ck_assert_msg(took >= 2.9 && took < 15, "took %.1f s (grace 3 s)", took);
    cJSON_Delete(r);
}
END_TEST

START_TEST(lost_watch_is_resumed)
{
    /* every watch is cut after one event, and the next reconnect's
     * resourceVersion is "too old": the run lists again and goes on */
    faults("{\"drop_watch_after\":1,\"expire_rv\":1}");
    reset_stats();
    cJSON *r = run("k8s-watch", "s", "{\"inline_script\":\"echo a; sleep 2; echo b >&2; exit 4\"}");
    expect_error(r, "failed", "script_failed");
    ck_assert_int_eq(exit_code(r), 4);
    ck_assert_str_eq(out(r, "stdout"), "a\n");
    ck_assert_str_eq(out(r, "stderr"), "b\n");
    cJSON *k = finished_info("k8s-watch", "s");
    const cJSON *rel = cJSON_GetObjectItem(k, "watch_relists");
    const cJSON *rec = cJSON_GetObjectItem(k, "watch_reconnects");
    ck_assert_msg(rel->valuedouble >= 1 && rec->valuedouble >= 2, "relists %g reconnects %g",
                  rel->valuedouble, rec->valuedouble);
    cJSON_Delete(k);
    ck_assert_int_ge(stats_count("list /api/v1/namespaces/{namespace}/pods"), 1);
    cJSON_Delete(r);
}
END_TEST

START_TEST(evicted_pod_is_lost)
{
    faults("{\"evict_pod\":\"*\"}");
    cJSON *r = run("k8s-evict", "s", "{\"timeout\":\"60s\",\"inline_script\":\"echo hi; sleep 30\"}");
    expect_error(r, "error", "execution_lost");
    ck_assert_str_eq(out(r, "termination.reason"), "lost");
    ck_assert(strlen(out(r, "pod_name")) > 0);
    ck_assert_int_eq(wait_job_gone(out(r, "job_name"), 30), 404);
    cJSON_Delete(r);
}
END_TEST

/* Someone deletes the running pod (kubectl delete pod): the script is not
 * PID 1, so the SIGTERM ends it at once with 143; that is `lost`, not a
 * script killed by a signal. */
START_TEST(deleted_pod_is_lost)
{
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"k8s-delpod\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"timeout\":\"60s\","
                         "\"inline_script\":\"echo started; sleep 60\"}}", NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &a);
    wait_running("k8s-delpod");
    long st;
    cJSON *list = api("GET", "/api/v1/namespaces/" NS "/pods?labelSelector=execution-id%3Dk8s-delpod",
                      NULL, &st);
    ck_assert_int_eq(st, 200);
    char path[400];
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/pods/%s?gracePeriodSeconds=20",
             sx_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), 0),
                         "metadata.name"));
    cJSON_Delete(list);
    double t0 = now_s();
    cJSON_Delete(api("DELETE", path, NULL, &st));
    ck_assert_int_eq(st, 200);
    pthread_join(th, NULL);
    double took = now_s() - t0;
    cJSON *r = cJSON_Parse(a.reply);
    ck_assert_msg(r != NULL, "%s", a.reply ? a.reply : "(no reply)");
    free(a.reply);
    expect_error(r, "error", "execution_lost");
    ck_assert_str_eq(out(r, "termination.reason"), "lost");
    ck_assert_str_eq(out(r, "stdout"), "started\n");
    /* SIGTERM ended it, not the 20 s grace */
    ck_assert_msg(took < 10, "took %.1f s", took);
    ck_assert_int_eq(wait_job_gone(out(r, "job_name"), 30), 404);
    cJSON_Delete(r);
}
END_TEST

START_TEST(unreachable_server)
{
    /* a kubeconfig to a port nothing listens on */
    char kc[400];
    snprintf(kc, sizeof kc, "%s/dead-kubeconfig", F.dir);
    FILE *f = fopen(kc, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "current-context: d\nclusters:\n- name: d\n  cluster: {server: 'http://127.0.0.1:9'}\n"
               "contexts:\n- name: d\n  context: {cluster: d, namespace: " NS "}\n");
    fclose(f);
    host_stop();
    char extra[800];
    snprintf(extra, sizeof extra, "    - name: dead\n      kind: exec.kubernetes\n      kubeconfig: %s\n"
             "      image: " FULL "\n      api_timeout: 2s\n", kc);
    host_start(extra);
    double t0 = now_s();
    cJSON *r = run("k8s-dead", "s", "{\"executor\":\"dead\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "kubernetes_unavailable");
    ck_assert_msg(now_s() - t0 < 6, "took %.1f s", now_s() - t0);
    cJSON_Delete(r);
    /* describe still answers, saying what it knows */
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_msg(strstr(text, "http://127.0.0.1:9") != NULL, "%s", text);
    free(text);
    cJSON_Delete(d);
}
END_TEST

START_TEST(tls_token_and_forbidden)
{
    /* a second fake: HTTPS with a CA, bearer-token authentication */
    host_stop();
    fake_stop();
    fake_start_args("--token sx-good-token-123", 1);
    host_start(NULL);
    cJSON *r = run("k8s-tls", "ok", "{\"inline_script\":\"echo over tls\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "over tls\n");
    cJSON_Delete(r);
    /* a wrong token: 401 -> kubernetes_forbidden */
    char *kc = sx_harness_slurp(F.kubeconfig);
    ck_assert_ptr_nonnull(strstr(kc, "sx-good-token-123"));
    char *bad = replace_all(kc, "sx-good-token-123", "sx-wrong-token");
    char path[400];
    snprintf(path, sizeof path, "%s/bad-kubeconfig", F.dir);
    FILE *f = fopen(path, "w");
    fputs(bad, f);
    fclose(f);
    free(kc);
    free(bad);
    host_stop();
    char extra[800];
    snprintf(extra, sizeof extra, "    - name: badtoken\n      kind: exec.kubernetes\n"
             "      kubeconfig: %s\n      image: " FULL "\n      service_account: default\n", path);
    host_start(extra);
    r = run("k8s-tls", "bad", "{\"executor\":\"badtoken\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "kubernetes_forbidden");
    ck_assert_ptr_null(strstr(sx_json_str(r, "error.message"), "sx-wrong-token"));
    cJSON_Delete(r);
    /* a forbidden verb (RBAC): creating Jobs */
    faults("{\"forbid\":[\"create:jobs\"]}");
    r = run("k8s-tls", "rbac", "{\"inline_script\":\"true\"}");
    expect_error(r, "error", "kubernetes_forbidden");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "forbidden"));
    cJSON_Delete(r);
    /* the token never reaches the host's log */
    char *log = sx_harness_slurp(H.log_path);
    ck_assert_ptr_null(strstr(log, "sx-good-token-123"));
    ck_assert_ptr_null(strstr(log, "sx-wrong-token"));
    free(log);
}
END_TEST

START_TEST(restart_reconciles_orphans_and_finished_jobs)
{
    /* a run that finished (its Job kept for the TTL) and one in flight */
    cJSON *r = run("k8s-rec-done", "s", "{\"inline_script\":\"exit 6\"}");
    expect_error(r, "failed", "script_failed");
    char done_job[128];
    snprintf(done_job, sizeof done_job, "%s", out(r, "job_name"));
    cJSON_Delete(r);
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"k8s-rec-orphan\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"inline_script\":\"sleep 120\"}}", NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &a);
    wait_started("k8s-rec-orphan", "s");
    wait_running("k8s-rec-orphan");
    kill(H.pid, SIGKILL);
    waitpid(H.pid, NULL, 0);
    pthread_join(th, NULL);
    free(a.reply);
    ck_assert_int_eq(pods_of("k8s-rec-orphan", "Running"), 1); /* left running */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", H.dir);
    H.pid = -1;
    host_start(NULL); /* same host_id and executor */
    /* the orphan: deleted and recorded */
    ck_assert_int_eq(sx_harness_audit_count(&H, "k8s.orphan_deleted", "k8s-rec-orphan", "s"), 1);
    cJSON *rec = sx_harness_audit_record(&H, "k8s.orphan_deleted", "k8s-rec-orphan", "s");
    char job[128];
    snprintf(job, sizeof job, "%s", sx_json_str(rec, "job_name"));
    cJSON_Delete(rec);
    ck_assert_int_eq(wait_job_gone(job, 30), 404);
    double until = now_s() + 30;
    while (pods_of("k8s-rec-orphan", NULL) > 0 && now_s() < until)
        sleep_ms(100);
    ck_assert_int_eq(pods_of("k8s-rec-orphan", NULL), 0);
    /* the finished one: collected with its exit code, then deleted */
    rec = sx_harness_audit_record(&H, "k8s.job_collected", "k8s-rec-done", "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "job_name"), done_job);
    ck_assert_int_eq(cJSON_GetObjectItem(rec, "exit_code")->valueint, 6);
    ck_assert_str_eq(sx_json_str(rec, "job_state"), "Failed");
    cJSON_Delete(rec);
    ck_assert_int_eq(wait_job_gone(done_job, 30), 404);
    char *log = sx_harness_slurp(H.log_path);
    ck_assert_ptr_nonnull(strstr(log, "deleted orphaned Job"));
    free(log);
    char *cmd;
    ck_assert_int_ge(asprintf(&cmd, "rm -rf '%s'", dir), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}
END_TEST

/* The spec's six examples, in their shapes (image instead of image_ref:
 * no image catalog here; scripts that check what the parameters do instead
 * of calling real clouds; approval left to the approval plugin's tests). */
START_TEST(spec_examples)
{
    host_stop();
    fake_stop();
    fake_start_args("--node-label workload-type=terraform --node-label disk-type=ssd "
                    "--node-label cloud-provider=aws --node-label node-type=compute-optimized "
                    "--node-label gpu=true --node-label zone=us-east-1a "
                    "--priority-class high-priority", 0);
    host_start(NULL);
    create_object("secrets", "postgres-credentials", "{\"password\":\"pg-secret-pass\"}");
    create_object("configmaps", "terraform-code", "{\"main.tf\":\"resource x {}\"}");
    create_object("secrets", "aws-credentials", "{\"credentials\":\"[default]\\nkey=AKIAEXAMPLE\","
                  "\"AWS_REGION\":\"us-east-1\"}");
    create_object("secrets", "api-credentials", "{\"key\":\"api-key-0001\"}");
    create_object("configmaps", "data-processing-config", "{\"processing.json\":\"{\\\"dataset\\\":\\\"sales\\\"}\"}");
    create_object("configmaps", "feature-flags", "{\"FAST_PATH\":\"on\"}");

    /* 1: env and a timeout */
    cJSON *r = run("k8s-ex", "ex1", "{\"inline_script\":\"#!/bin/bash\\nset -euo pipefail\\n"
                   "echo \\\"Checking API at $API_URL\\\"\\n\",\"env\":{\"API_URL\":"
                   "\"https://api.company.com\"},\"timeout\":\"30s\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "Checking API at https://api.company.com\n");
    cJSON_Delete(r);
    /* 2: a password from a Secret, masked */
    r = run("k8s-ex", "ex2", "{\"inline_script\":\"echo \\\"vacuum $DB_NAME on $DB_HOST as "
            "$DB_USER:$DB_PASSWORD\\\"\",\"env_from_secret\":{\"DB_PASSWORD\":{\"secret_name\":"
            "\"postgres-credentials\",\"key\":\"password\"}},\"env\":{\"DB_HOST\":"
            "\"postgres.database.svc.cluster.local\",\"DB_USER\":\"admin\",\"DB_NAME\":"
            "\"production\"},\"timeout\":\"10m\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"),
                     "vacuum production on postgres.database.svc.cluster.local as admin:********\n");
    cJSON_Delete(r);
    /* 3: a ConfigMap volume, a Secret item with mode 0600, node selector,
     * resources (the credentials under /workspace/.aws, not /root/.aws: the
     * pods run as 65534, who cannot enter /root) */
    r = run("k8s-ex", "ex3", "{\"inline_script\":\"cd /workspace/terraform && cat main.tf && echo && "
            "stat -c %a /workspace/.aws/credentials\",\"volumes_from_configmap\":[{\"configmap_name\":"
            "\"terraform-code\",\"mount_path\":\"/workspace/terraform\"}],\"volumes_from_secret\":"
            "[{\"secret_name\":\"aws-credentials\",\"mount_path\":\"/workspace/.aws\",\"items\":[{\"key\":"
            "\"credentials\",\"path\":\"credentials\",\"mode\":384}]}],\"node_selector\":"
            "{\"workload-type\":\"terraform\",\"disk-type\":\"ssd\"},\"resources\":{\"requests\":"
            "{\"cpu\":\"500m\",\"memory\":\"512Mi\"},\"limits\":{\"cpu\":\"2000m\",\"memory\":\"2Gi\"}},"
            "\"timeout\":\"15m\"}");
    expect_status(r, "succeeded");
    /* 0600 as asked (0640 where fsGroup adds group read, as the kubelet does) */
    ck_assert_msg(strcmp(out(r, "stdout"), "resource x {}\n600\n") == 0 ||
                      strcmp(out(r, "stdout"), "resource x {}\n640\n") == 0,
                  "%s", out(r, "stdout"));
    cJSON_Delete(r);
    /* 4: all keys of a Secret as env, node selector and tolerations; the
     * GCP step has no node with its label */
    r = run("k8s-ex", "ex4-aws", "{\"inline_script\":\"echo region=$AWS_REGION\",\"secret_env_all\":"
            "[\"aws-credentials\"],\"node_selector\":{\"cloud-provider\":\"aws\"},\"tolerations\":"
            "[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"batch-jobs\",\"effect\":"
            "\"NoSchedule\"}]}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "region=********\n"); /* a value of the Secret */
    cJSON_Delete(r);
    r = run("k8s-ex", "ex4-gcp", "{\"inline_script\":\"echo gcp\",\"node_selector\":"
            "{\"cloud-provider\":\"gcp\"},\"tolerations\":[{\"key\":\"dedicated\",\"operator\":"
            "\"Equal\",\"value\":\"batch-jobs\",\"effect\":\"NoSchedule\"}]}");
    expect_error(r, "error", "unschedulable");
    cJSON_Delete(r);
    /* 5: python, ConfigMap volume, env from everywhere, affinity, priority */
    /* (the test image's python3 has no json module: the file is read as text) */
    r = run("k8s-ex", "ex5", "{\"interpreter\":\"python3\",\"inline_script\":\"import os\\n"
            "text = open('/config/processing.json').read()\\ndataset = "
            "text.split(':')[1].split('\\\\\\\"')[1]\\nprint(f\\\"Processing "
            "{dataset}...\\\")\\nprint(os.environ['PROCESSOR_MODE'], "
            "os.environ['FAST_PATH'], len(os.environ['API_KEY']))\\n\",\"volumes_from_configmap\":"
            "[{\"configmap_name\":\"data-processing-config\",\"mount_path\":\"/config\"}],\"env\":"
            "{\"PROCESSOR_MODE\":\"batch\",\"LOG_LEVEL\":\"info\"},\"env_from_secret\":{\"API_KEY\":"
            "{\"secret_name\":\"api-credentials\",\"key\":\"key\"}},\"configmap_env_all\":"
            "[\"feature-flags\"],\"node_selector\":{\"node-type\":\"compute-optimized\",\"gpu\":"
            "\"true\"},\"tolerations\":[{\"key\":\"gpu\",\"operator\":\"Exists\",\"effect\":"
            "\"NoSchedule\"},{\"key\":\"high-memory\",\"operator\":\"Equal\",\"value\":\"true\","
            "\"effect\":\"NoSchedule\"}],\"affinity\":{\"node_affinity\":{\"required\":"
            "{\"match_expressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":"
            "[\"us-east-1a\",\"us-east-1b\"]}]}},\"pod_anti_affinity\":{\"preferred\":[{\"weight\":"
            "100,\"pod_affinity_term\":{\"label_selector\":{\"match_expressions\":[{\"key\":\"app\","
            "\"operator\":\"In\",\"values\":[\"database\"]}]},\"topology_key\":"
            "\"kubernetes.io/hostname\"}}]}},\"priority_class_name\":\"high-priority\","
            "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"limits\":{\"cpu\":\"2\","
            "\"memory\":\"4Gi\"}},\"timeout\":\"60s\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "Processing sales...\nbatch on 12\n");
    cJSON_Delete(r);
    /* 6: all keys of a Secret, a long timeout (approval: the approval
     * plugin's tests) */
    r = run("k8s-ex", "ex6", "{\"inline_script\":\"#!/bin/bash\\nset -euo pipefail\\n"
            "echo \\\"Deleting backups older than 90 days in $AWS_REGION\\\"\\necho Deleted 0 backup files\","
            "\"secret_env_all\":[\"aws-credentials\"],\"timeout\":\"30m\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"),
                     "Deleting backups older than 90 days in ********\nDeleted 0 backup files\n");
    cJSON_Delete(r);
}
END_TEST

/* backoff_limit: the Job retries a failed pod; the run follows each
 * attempt, and the result is the last one's. */
START_TEST(retries_are_followed)
{
    cJSON *r = run("k8s-retry", "s", "{\"backoff_limit\":1,\"inline_script\":"
                   "\"echo attempt on $(hostname); exit 3\"}");
    expect_error(r, "failed", "script_failed");
    ck_assert_int_eq(exit_code(r), 3);
    const char *o = out(r, "stdout");
    const char *second = strstr(o, "attempt on ");
    ck_assert_ptr_nonnull(second);
    second = strstr(second + 1, "attempt on ");
    ck_assert_msg(second != NULL, "one attempt only: %s", o);
    ck_assert_int_eq(pods_of("k8s-retry", NULL), 2);
    /* the pod reported is the last attempt's */
    ck_assert_ptr_nonnull(strstr(second, out(r, "pod_name")));
    cJSON_Delete(r);
}
END_TEST

struct par_arg {
    int i;
    char *reply;
};

static void *par_thread(void *p)
{
    struct par_arg *a = p;
    char *req;
    if (asprintf(&req, "{\"op\":\"execute\",\"execution_id\":\"k8s-par\",\"step_name\":\"s%d\","
                 "\"type\":\"script.run\",\"with\":{\"inline_script\":\"echo run-%d; sleep 1; "
                 "echo err-%d >&2\"}}", a->i, a->i, a->i) < 0)
        return NULL;
    a->reply = sx_harness_call_raw(&H, req, strlen(req));
    free(req);
    return NULL;
}

/* Runs at once do not mix their pods, logs or results. */
START_TEST(concurrent_runs_stay_apart)
{
    struct par_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i].i = i;
        a[i].reply = NULL;
        pthread_create(&th[i], NULL, par_thread, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_ptr_nonnull(a[i].reply);
        cJSON *r = cJSON_Parse(a[i].reply);
        expect_status(r, "succeeded");
        char want[32];
        snprintf(want, sizeof want, "run-%d\n", i);
        ck_assert_str_eq(out(r, "stdout"), want);
        snprintf(want, sizeof want, "err-%d\n", i);
        ck_assert_str_eq(out(r, "stderr"), want);
        cJSON_Delete(r);
        free(a[i].reply);
    }
}
END_TEST

START_TEST(resource_usage_from_metrics)
{
    reset_stats();
    /* 7 s of busy CPU: sampled after 5 s of running */
    cJSON *r = run("k8s-usage", "s", "{\"inline_script\":\"end=$(( $(date +%s) + 7 )); "
                   "while [ $(date +%s) -lt $end ]; do :; done; echo done\"}");
    expect_status(r, "succeeded");
    const cJSON *ru = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "resource_usage");
    const cJSON *cpu = cJSON_GetObjectItem(ru, "cpu_millis");
    const cJSON *mem = cJSON_GetObjectItem(ru, "memory_mb");
    char *text = cJSON_PrintUnformatted(ru);
    ck_assert_msg(cJSON_IsNumber(cpu) && cpu->valuedouble > 500, "%s", text);
    ck_assert_msg(cJSON_IsNumber(mem) && mem->valuedouble >= 0, "%s", text);
    free(text);
    ck_assert_int_ge(stats_count("get /apis/metrics.k8s.io/v1beta1/namespaces"), 1);
    long total = stats_count(NULL);
    ck_assert_msg(total <= MAX_REQUESTS_PER_RUN, "%ld requests", total);
    cJSON_Delete(r);
}
END_TEST

START_TEST(merged_logs_without_the_stream_parameter)
{
    host_stop();
    fake_stop();
    fake_start_args("--no-log-stream-param --no-metrics", 0);
    host_start(NULL);
    /* (0.2 s apart: the fake merges the two streams by timestamp) */
    cJSON *r = run("k8s-merged", "s", "{\"inline_script\":\"echo out; sleep 0.2; echo err >&2; "
                   "sleep 6\"}");
    expect_status(r, "succeeded");
    /* no metrics.k8s.io: usage is null, not a made-up 0 */
    const cJSON *ru = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "resource_usage");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(ru, "cpu_millis")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(ru, "memory_mb")));
    /* merged into stdout, in order, nothing twice */
    ck_assert_str_eq(out(r, "stdout"), "out\nerr\n");
    ck_assert_str_eq(out(r, "stderr"), "");
    cJSON *k = finished_info("k8s-merged", "s");
    ck_assert_str_eq(sx_json_str(k, "log_streams"), "merged");
    cJSON_Delete(k);
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_msg(strstr(text, "stderr is reported in stdout") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "unavailable: no metrics.k8s.io") != NULL, "%s", text);
    free(text);
    cJSON_Delete(d);
    cJSON_Delete(r);
}
END_TEST

START_TEST(kubectl_sees_what_the_backend_made)
{
    cJSON *r = run("k8s-kubectl", "s", "{\"inline_script\":\"echo seen-by-kubectl\"}");
    expect_status(r, "succeeded");
    char *jobs = sh("kubectl --kubeconfig '%s' get jobs -n " NS " -o name 2>&1", F.kubeconfig);
    ck_assert_msg(strstr(jobs, out(r, "job_name")) != NULL, "%s", jobs);
    char *logs = sh("kubectl --kubeconfig '%s' logs -n " NS " '%s' 2>&1", F.kubeconfig,
                    out(r, "pod_name"));
    ck_assert_str_eq(logs, "seen-by-kubectl");
    free(jobs);
    free(logs);
    cJSON_Delete(r);
}
END_TEST

/* ------------------------------------------- script_path and in-cluster */

/* The scripts ConfigMap: check.sh sources lib.sh (a sibling) and shows the
 * ConfigMap's version file as mounted in the pod. */
#define SCRIPT_V1                                                                                \
    ". /scripts/lib.sh\necho \"ran v1: $(greet \"$1\")\"\necho \"script=$0\"\n"                  \
    "echo \"mounted: $(cat /scripts/version)\"\n"
#define SCRIPTS_V1_JSON                                                                          \
    "{\"check.sh\":\". /scripts/lib.sh\\necho \\\"ran v1: $(greet \\\"$1\\\")\\\"\\n"            \
    "echo \\\"script=$0\\\"\\necho \\\"mounted: $(cat /scripts/version)\\\"\\n\","               \
    "\"lib.sh\":\"greet() { echo \\\"hello $1\\\"; }\\n\",\"version\":\"1\","                  \
    "\"blocked.sh\":\"echo about to\\nreboot\\n\"}"

static const char *SCRIPTS_EXECUTORS =
    "    - name: k8s-scripts\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: @KC@\n"
    "      image: " FULL "\n"
    "      service_account: default\n"
    "      host_id: @HOSTID@\n"
    "      unschedulable_grace: 60s\n"
    "      scripts_configmap: sx-scripts\n"
    "    - name: k8s-nocm\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: @KC@\n"
    "      image: " FULL "\n"
    "      service_account: default\n"
    "      host_id: @HOSTID@\n"
    "      scripts_configmap: sx-no-such-configmap\n";

/* "sha256:<hex>" of a text, computed outside the host (sha256sum). */
static char *sha256_of(const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/hash-input", F.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    char *hex = sh("sha256sum '%s' | cut -d' ' -f1", path);
    char *out;
    ck_assert_int_ge(asprintf(&out, "sha256:%s", hex), 0);
    free(hex);
    return out;
}

START_TEST(script_path_runs_the_text_that_was_hashed)
{
    create_object("configmaps", "sx-scripts", SCRIPTS_V1_JSON);
    host_stop();
    host_start(SCRIPTS_EXECUTORS);
    char *want_hash = sha256_of(SCRIPT_V1);
    /* the pod is held unscheduled while the ConfigMap changes: what runs is
     * still the text that was read, hashed and checked (from the Secret);
     * the files it sources come from /scripts, the ConfigMap as mounted
     * when the pod starts (lib.sh and version changed) */
    faults("{\"unschedulable\": true}");
    reset_stats();
    struct call_arg a = {"{\"op\":\"execute\",\"execution_id\":\"k8s-spath\",\"step_name\":\"s\","
                         "\"type\":\"script.run\",\"with\":{\"executor\":\"k8s-scripts\","
                         "\"script_path\":\"/scripts/check.sh\",\"args\":[\"world\"]}}", NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &a);
    double until = now_s() + 60;
    while (pods_of("k8s-spath", "Pending") == 0 && now_s() < until)
        sleep_ms(50);
    ck_assert_int_eq(pods_of("k8s-spath", "Pending"), 1);
    long st;
    cJSON *v2 = api("PUT", "/api/v1/namespaces/" NS "/configmaps/sx-scripts",
                    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                    "\"sx-scripts\",\"namespace\":\"" NS "\"},\"data\":{\"check.sh\":"
                    "\"echo ran v2\\n\",\"lib.sh\":\"greet() { echo changed; }\\n\","
                    "\"version\":\"2\"}}", &st);
    ck_assert_int_eq(st, 200);
    cJSON_Delete(v2);
    faults("{\"unschedulable\": null}");
    pthread_join(th, NULL);
    cJSON *r = cJSON_Parse(a.reply);
    ck_assert_msg(r != NULL, "%s", a.reply ? a.reply : "(no reply)");
    free(a.reply);
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"),
                     "ran v1: changed\nscript=/run/script-executor/script.sh\nmounted: 2\n");
    ck_assert_str_eq(out(r, "script_hash"), want_hash);
    /* one read of the ConfigMap (load_script), then the usual run */
    ck_assert_int_eq(stats_count("get /api/v1/namespaces/{namespace}/configmaps/{name}"), 1);
    ck_assert_int_eq(stats_count("create /apis/batch/v1/namespaces/{namespace}/jobs"), 1);
    ck_assert_int_eq(stats_count("create /api/v1/namespaces/{namespace}/secrets"), 1);
    /* the Job says which script and which hash */
    char path[300];
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/" NS "/jobs/%s", out(r, "job_name"));
    cJSON *job = api("GET", path, NULL, &st);
    ck_assert_int_eq(st, 200);
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(job, "metadata"), "annotations");
    ck_assert_str_eq(cJSON_GetObjectItem(ann, "script-hash")->valuestring, want_hash);
    ck_assert_str_eq(cJSON_GetObjectItem(ann, "script-executor.io/script-path")->valuestring,
                     "/scripts/check.sh");
    cJSON_Delete(job);
    /* exec.started carries the same hash */
    cJSON *rec = sx_harness_audit_record(&H, "exec.started", "k8s-spath", "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "script_hash"), want_hash);
    cJSON_Delete(rec);
    cJSON_Delete(r);
    /* a bare key is relative to /scripts, and the new text runs now */
    r = run("k8s-spath", "again", "{\"executor\":\"k8s-scripts\",\"script_path\":\"check.sh\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "ran v2\n");
    cJSON_Delete(r);
    free(want_hash);
}
END_TEST

START_TEST(script_path_refusals)
{
    create_object("configmaps", "sx-scripts", SCRIPTS_V1_JSON);
    host_stop();
    host_start(SCRIPTS_EXECUTORS);
    reset_stats();
    /* a key the ConfigMap does not have: named with the ConfigMap */
    cJSON *r = run("k8s-spath-bad", "missing",
                   "{\"executor\":\"k8s-scripts\",\"script_path\":\"/scripts/nosuch.sh\"}");
    expect_error(r, "rejected", "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "nosuch.sh"));
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "sx-scripts"));
    cJSON_Delete(r);
    ck_assert_int_eq(stats_count("get /api/v1/namespaces/{namespace}/configmaps/{name}"), 1);
    /* traversal and paths outside /scripts: refused before any request */
    static const char *const bad[] = {"/scripts/../etc/passwd", "../check.sh", "/etc/passwd",
                                      "/scripts/sub/check.sh"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char with[300];
        snprintf(with, sizeof with, "{\"executor\":\"k8s-scripts\",\"script_path\":\"%s\"}",
                 bad[i]);
        r = run("k8s-spath-bad", "traversal", with);
        expect_error(r, "rejected", "invalid_parameter");
        ck_assert_msg(strstr(sx_json_str(r, "error.message"), bad[i]) != NULL, "%s",
                      sx_json_str(r, "error.message"));
        cJSON_Delete(r);
    }
    ck_assert_int_eq(stats_count("get /api/v1/namespaces/{namespace}/configmaps/{name}"), 1);
    ck_assert_int_eq(stats_count("create "), 0);
    /* the ConfigMap itself is missing: a deployment error */
    r = run("k8s-spath-bad", "nocm", "{\"executor\":\"k8s-nocm\",\"script_path\":\"check.sh\"}");
    expect_error(r, "error", "config_error");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "sx-no-such-configmap"));
    cJSON_Delete(r);
    /* RBAC without configmaps get */
    faults("{\"forbid\": [\"get:configmaps\"]}");
    r = run("k8s-spath-bad", "rbac", "{\"executor\":\"k8s-scripts\",\"script_path\":\"check.sh\"}");
    expect_error(r, "error", "kubernetes_forbidden");
    cJSON_Delete(r);
    faults("{\"forbid\": null}");
    /* render reads it too: the text travels in the Secret (masked) */
    r = sx_harness_call(&H, "{\"op\":\"render\",\"type\":\"script.run\",\"execution_id\":\"k8s-r\","
                            "\"step_name\":\"s\",\"with\":{\"executor\":\"k8s-scripts\","
                            "\"script_path\":\"/scripts/check.sh\"}}");
    ck_assert_ptr_nonnull(r);
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), "ok") == 0 ||
                      strcmp(sx_json_str(r, "status"), "succeeded") == 0, "%s", text);
    ck_assert_msg(strstr(text, "/run/script-executor/script.sh") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "greet") == NULL, "the script's text in render: %s", text);
    free(text);
    cJSON_Delete(r);
    ck_assert_int_eq(stats_count("create "), 0);
}
END_TEST

#ifdef SX_HAVE_POLICY
/* The policy's script check applies to the text read from the ConfigMap. */
START_TEST(script_path_text_is_checked_by_the_policy)
{
    create_object("configmaps", "sx-scripts", SCRIPTS_V1_JSON);
    host_stop();
    char *base = config_text(SCRIPTS_EXECUTORS);
    char *a = replace_all(base, "    max_concurrent: 8\n",
                          "    max_concurrent: 8\n    auth: {mode: trusted}\n");
    char *b = replace_all(a, "load: [script_run, backend_k8s, audit_file]",
                          "load: [script_run, backend_k8s, audit_file, policy]");
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "%s  security:\n    blocked_commands: [reboot]\n"
                                    "  rbac:\n    roles:\n      - name: all\n"
                                    "        permissions: [\"executors.use.*\"]\n"
                                    "    bindings:\n      - {role: all, groups: [sre]}\n", b), 0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    wait_reconciled();
    free(base);
    free(a);
    free(b);
    free(cfg);
    reset_stats();
    cJSON *r = run("k8s-spath-pol", "blocked",
                   "{\"executor\":\"k8s-scripts\",\"script_path\":\"/scripts/blocked.sh\"}");
    expect_error(r, "rejected", "blocked_command");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strstr(text, "reboot") != NULL, "%s", text);
    char *hash = sha256_of("echo about to\nreboot\n");
    ck_assert_msg(strstr(text, hash) != NULL, "no %s in %s", hash, text);
    free(hash);
    free(text);
    cJSON_Delete(r);
    ck_assert_int_eq(stats_count("create "), 0);
    r = run("k8s-spath-pol", "ok", "{\"executor\":\"k8s-scripts\",\"script_path\":\"check.sh\","
                                   "\"args\":[\"policy\"]}");
    expect_status(r, "succeeded");
    ck_assert_ptr_nonnull(strstr(out(r, "stdout"), "ran v1: hello policy\n"));
    cJSON_Delete(r);
}
END_TEST
#endif

/* in_cluster with in_cluster_dir: the token, ca.crt and namespace of that
 * directory, the server from KUBERNETES_SERVICE_HOST/PORT (the fake, HTTPS
 * with a token). */
START_TEST(in_cluster_dir_reaches_the_fake)
{
    host_stop();
    fake_stop();
    fake_start_args("--token sx-incluster-token-1 --namespace sx-other", 1);
    char sa[300], port[16];
    snprintf(sa, sizeof sa, "%s/serviceaccount", F.dir);
    char *o = sh("mkdir -p '%s' && cp '%s/tls/ca.crt' '%s/ca.crt' && printf sx-incluster-token-1 "
                 "> '%s/token' && printf 'sx-other\\n' > '%s/namespace' && echo ok", sa, F.dir, sa,
                 sa, sa);
    ck_assert_str_eq(o, "ok");
    free(o);
    snprintf(port, sizeof port, "%d", F.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    char extra[800];
    snprintf(extra, sizeof extra,
             "    - name: incluster\n      kind: exec.kubernetes\n      in_cluster: true\n"
             "      in_cluster_dir: %s\n      image: " FULL "\n      service_account: default\n"
             "      host_id: @HOSTID@\n", sa);
    host_start(extra);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    cJSON *r = run("k8s-incluster", "s", "{\"executor\":\"incluster\",\"inline_script\":"
                                         "\"echo from the service account\"}");
    expect_status(r, "succeeded");
    ck_assert_str_eq(out(r, "stdout"), "from the service account\n");
    /* the Job is in the namespace of the directory's namespace file (the
     * kubeconfig's context says sx-test) */
    char *jobs = sh("kubectl --kubeconfig '%s' get jobs -n sx-other -o name 2>&1", F.kubeconfig);
    ck_assert_msg(strstr(jobs, out(r, "job_name")) != NULL, "%s", jobs);
    free(jobs);
    cJSON_Delete(r);
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    char *text = cJSON_PrintUnformatted(d);
    char want[400];
    snprintf(want, sizeof want, "in-cluster (%s)", sa);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    ck_assert_msg(strstr(text, "sx-incluster-token-1") == NULL, "token in describe: %s", text);
    free(text);
    cJSON_Delete(d);
    /* the token is read from that directory: a wrong one is refused */
    o = sh("printf sx-wrong-token > '%s/token' && echo ok", sa);
    ck_assert_str_eq(o, "ok");
    free(o);
    r = run("k8s-incluster", "wrong", "{\"executor\":\"incluster\",\"inline_script\":\"true\"}");
    expect_error(r, "error", "kubernetes_forbidden");
    cJSON_Delete(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k8s");
    TCase *t = tcase_create("run");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, success_with_stdout_and_stderr);
    tcase_add_test(t, nonzero_exit_and_interpreters);
    tcase_add_test(t, stdin_args_env_working_dir);
    tcase_add_test(t, secrets_configmaps_env_and_volumes_masked);
    tcase_add_test(t, timeout_deletes_the_job);
    tcase_add_test(t, cancel_deletes_the_job);
    tcase_add_test(t, kubectl_sees_what_the_backend_made);
    tcase_add_test(t, resource_usage_from_metrics);
    tcase_add_test(t, retries_are_followed);
    tcase_add_test(t, concurrent_runs_stay_apart);
    tcase_set_timeout(t, 180);
    suite_add_tcase(s, t);
    TCase *f = tcase_create("failures");
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_add_test(f, image_pull_failure_is_quick);
    tcase_add_test(f, missing_secret_or_configmap_is_config_error);
    tcase_add_test(f, unschedulable_after_the_grace);
    tcase_add_test(f, lost_watch_is_resumed);
    tcase_add_test(f, evicted_pod_is_lost);
    tcase_add_test(f, deleted_pod_is_lost);
    tcase_add_test(f, unreachable_server);
    tcase_add_test(f, tls_token_and_forbidden);
    tcase_add_test(f, merged_logs_without_the_stream_parameter);
    tcase_set_timeout(f, 180);
    suite_add_tcase(s, f);
    TCase *k = tcase_create("restart");
    tcase_add_checked_fixture(k, setup, teardown);
    tcase_add_test(k, restart_reconciles_orphans_and_finished_jobs);
    tcase_set_timeout(k, 180);
    suite_add_tcase(s, k);
    TCase *sp = tcase_create("scripts");
    tcase_add_checked_fixture(sp, setup, teardown);
    tcase_add_test(sp, script_path_runs_the_text_that_was_hashed);
    tcase_add_test(sp, script_path_refusals);
#ifdef SX_HAVE_POLICY
    tcase_add_test(sp, script_path_text_is_checked_by_the_policy);
#endif
    tcase_add_test(sp, in_cluster_dir_reaches_the_fake);
    tcase_set_timeout(sp, 180);
    suite_add_tcase(s, sp);
    TCase *e = tcase_create("examples");
    tcase_add_checked_fixture(e, setup, teardown);
    tcase_add_test(e, spec_examples);
    tcase_set_timeout(e, 300);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = sx_check_run(suite());
    curl_global_cleanup();
    return rc;
}
