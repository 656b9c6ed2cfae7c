/*
 * bench_exec.c - sx_bench: what does script-executor add on top of a bare
 * process spawn?
 *
 * In one run it measures
 *   (a) raw:  posix_spawn("/bin/sh -c true") + waitpid, N times in a row
 *             (--baseline CMD: "/bin/sh -c CMD" instead, e.g. the docker CLI
 *             running the same container, see tools/bench/docker.sh);
 *   (b) host: N execute requests (inline_script "true") one after another
 *             over one REQ socket to a running script-executor;
 *   (c) host: N execute requests from C threads (default 8), each with its
 *             own REQ socket;
 * and prints per-execution latency (mean, p50, p99), executions per second
 * and the host/raw latency ratio.  A host execution counts only when its
 * reply says "succeeded" for the right execution_id with exit_code 0; every
 * other outcome is a failure, reported by error code.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sx_client.h"

extern char **environ;

#define MAX_THREADS 256
#define MAX_KINDS 8

typedef struct sx_bench_opts {
    const char *url;
    int count;
    int concurrency;
    int warmup;
    int timeout_ms;
    const char *interpreter;
    const char *executor;
    const char *baseline;       /* shell command of phase (a) */
    int json;
} sx_bench_opts;

/* Failures of one phase, grouped by code. */
typedef struct sx_fail_kind {
    char code[64];
    char message[256];
    int count;
} sx_fail_kind;

typedef struct sx_phase {
    const char *name;
    const char *key;            /* JSON key and execution-id tag */
    int n;
    double *lat_ms;             /* [n]; NAN where the execution failed */
    double wall_s;
    int ok;
    int failed;
    sx_fail_kind kinds[MAX_KINDS];
    int n_kinds;
    pthread_mutex_t mu;
} sx_phase;

typedef struct sx_stats {
    double mean, p50, p99, per_s;
} sx_stats;

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *jstr(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static void phase_fail(sx_phase *p, const char *code, const char *message)
{
    int i;

    pthread_mutex_lock(&p->mu);
    p->failed++;
    for (i = 0; i < p->n_kinds; i++)
        if (strcmp(p->kinds[i].code, code) == 0)
            break;
    if (i == p->n_kinds && p->n_kinds < MAX_KINDS) {
        snprintf(p->kinds[i].code, sizeof(p->kinds[i].code), "%s", code);
        snprintf(p->kinds[i].message, sizeof(p->kinds[i].message), "%s",
                 message);
        p->n_kinds++;
    }
    if (i < MAX_KINDS)
        p->kinds[i].count++;
    pthread_mutex_unlock(&p->mu);
}

static void phase_ok(sx_phase *p, int i, double ms)
{
    pthread_mutex_lock(&p->mu);
    p->ok++;
    p->lat_ms[i] = ms;
    pthread_mutex_unlock(&p->mu);
}

static int phase_init(sx_phase *p, const char *name, const char *key, int n)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->key = key;
    p->n = n;
    p->lat_ms = malloc((size_t)n * sizeof(double));
    if (p->lat_ms == NULL)
        return -1;
    for (int i = 0; i < n; i++)
        p->lat_ms[i] = NAN;
    pthread_mutex_init(&p->mu, NULL);
    return 0;
}

static void phase_fini(sx_phase *p)
{
    free(p->lat_ms);
    pthread_mutex_destroy(&p->mu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double percentile(const double *v, int n, double p)
{
    int rank = (int)ceil(p * n);

    return v[rank < 1 ? 0 : rank - 1];
}

static sx_stats phase_stats(const sx_phase *p)
{
    sx_stats s = {NAN, NAN, NAN, 0};
    double *v = malloc((size_t)(p->n > 0 ? p->n : 1) * sizeof(double));
    double sum = 0;
    int n = 0;

    if (v == NULL)
        return s;
    for (int i = 0; i < p->n; i++)
        if (!isnan(p->lat_ms[i])) {
            v[n++] = p->lat_ms[i];
            sum += p->lat_ms[i];
        }
    if (n > 0) {
        qsort(v, (size_t)n, sizeof(double), cmp_double);
        s.mean = sum / n;
        s.p50 = percentile(v, n, 0.50);
        s.p99 = percentile(v, n, 0.99);
    }
    s.per_s = p->wall_s > 0 ? n / p->wall_s : 0;
    free(v);
    return s;
}

/* ---- (a) raw spawn ------------------------------------------------------ */

static const char *baseline_cmd = "true";

static int spawn_true(void)
{
    char *argv[] = {"sh", "-c", (char *)baseline_cmd, NULL};
    pid_t pid;
    int status, rv;

    rv = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (rv != 0)
        return rv;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void run_raw(sx_phase *p, int warmup)
{
    double start;

    for (int i = 0; i < warmup; i++)
        spawn_true();
    start = now_s();
    for (int i = 0; i < p->n; i++) {
        double t0 = now_s();
        int rv = spawn_true();
        double ms = (now_s() - t0) * 1000.0;

        if (rv == 0)
            phase_ok(p, i, ms);
        else
            phase_fail(p, rv > 0 ? "spawn_error" : "nonzero_exit",
                       rv > 0 ? strerror(rv) : "/bin/sh -c true failed");
    }
    p->wall_s = now_s() - start;
}

/* ---- (b), (c) host executions ------------------------------------------- */

static cJSON *request_template(const sx_bench_opts *o)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *caller = cJSON_AddObjectToObject(req, "caller");
    cJSON *with;

    cJSON_AddStringToObject(req, "op", "execute");
    cJSON_AddStringToObject(req, "execution_id", "");
    cJSON_AddStringToObject(req, "step_name", "bench");
    cJSON_AddStringToObject(req, "runbook_id", "sx_bench");
    cJSON_AddStringToObject(req, "type", "script.run");
    cJSON_AddStringToObject(caller, "user", "sx_bench");
    cJSON_AddArrayToObject(caller, "groups");
    cJSON_AddFalseToObject(req, "approval_required");
    cJSON_AddArrayToObject(req, "approvers");
    with = cJSON_AddObjectToObject(req, "with");
    cJSON_AddStringToObject(with, "inline_script", "true");
    cJSON_AddStringToObject(with, "interpreter", o->interpreter);
    if (o->executor != NULL)
        cJSON_AddStringToObject(with, "executor", o->executor);
    if (cJSON_GetObjectItemCaseSensitive(with, "interpreter") == NULL) {
        cJSON_Delete(req);
        return NULL;
    }
    return req;
}

/* NULL when the reply is a success for id, else the failure code. */
static const char *check_reply(const cJSON *reply, const char *id,
                               const char **message)
{
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(reply, "output");
    const cJSON *exit_code = cJSON_GetObjectItemCaseSensitive(output,
                                                              "exit_code");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const char *status = jstr(reply, "status");

    *message = jstr(error, "message") ? jstr(error, "message") : status;
    if (strcmp(status, "succeeded") != 0)
        return jstr(error, "code") ? jstr(error, "code") : status;
    if (jstr(reply, "execution_id") == NULL ||
        strcmp(jstr(reply, "execution_id"), id) != 0) {
        *message = "the reply is for another execution_id";
        return "wrong_execution_id";
    }
    if (!cJSON_IsNumber(exit_code) || exit_code->valuedouble != 0) {
        *message = "succeeded without exit_code 0";
        return "bad_exit_code";
    }
    return NULL;
}

/* Run execution i of phase p over client c with request template req. */
static void host_once(sx_phase *p, sx_client *c, cJSON *req, int i)
{
    char id[160];
    const char *code, *message;
    cJSON *reply;
    sx_cerr err;
    double t0, ms;

    snprintf(id, sizeof(id), "bench-%ld-%lld-%s-%d", (long)getpid(),
             (long long)time(NULL), p->key, i);
    cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(req,
                                                          "execution_id"), id);
    t0 = now_s();
    if (sx_client_call(c, req, &reply, &err) != 0) {
        phase_fail(p, "transport", err.message);
        return;
    }
    ms = (now_s() - t0) * 1000.0;
    if ((code = check_reply(reply, id, &message)) == NULL)
        phase_ok(p, i, ms);
    else
        phase_fail(p, code, message);
    cJSON_Delete(reply);
}

static void run_sequential(sx_phase *p, sx_client *c, const cJSON *tmpl,
                           int warmup)
{
    cJSON *req = cJSON_Duplicate(tmpl, 1);
    sx_phase scratch;
    double start;

    if (phase_init(&scratch, "warmup", "w", warmup > 0 ? warmup : 1) == 0) {
        for (int i = 0; i < warmup; i++)
            host_once(&scratch, c, req, i);
        phase_fini(&scratch);
    }
    start = now_s();
    for (int i = 0; i < p->n; i++)
        host_once(p, c, req, i);
    p->wall_s = now_s() - start;
    cJSON_Delete(req);
}

/* Holds the workers until every one is ready, so the clock starts fair. */
typedef struct sx_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} sx_gate;

typedef struct sx_worker {
    pthread_t thread;
    sx_phase *phase;
    sx_client *client;
    cJSON *req;
    atomic_int *next;
    sx_gate *gate;
} sx_worker;

static void *worker_main(void *arg)
{
    sx_worker *w = arg;
    int i;

    pthread_mutex_lock(&w->gate->mu);
    while (!w->gate->open)
        pthread_cond_wait(&w->gate->cv, &w->gate->mu);
    pthread_mutex_unlock(&w->gate->mu);
    while ((i = atomic_fetch_add(w->next, 1)) < w->phase->n)
        host_once(w->phase, w->client, w->req, i);
    return NULL;
}

static int open_workers(sx_worker *w, int n, const sx_bench_opts *o,
                        const cJSON *tmpl)
{
    sx_cerr err;

    for (int i = 0; i < n; i++) {
        if ((w[i].req = cJSON_Duplicate(tmpl, 1)) == NULL) {
            fprintf(stderr, "sx_bench: out of memory\n");
            return -1;
        }
        if (sx_client_open(o->url, o->timeout_ms, &w[i].client, &err) != 0) {
            fprintf(stderr, "sx_bench: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

static void close_workers(sx_worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        sx_client_close(w[i].client);
        cJSON_Delete(w[i].req);
    }
}

/* Start the workers; returns how many started. */
static int start_workers(sx_worker *w, int n, sx_phase *p, atomic_int *next,
                         sx_gate *gate)
{
    for (int i = 0; i < n; i++) {
        w[i].phase = p;
        w[i].next = next;
        w[i].gate = gate;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "sx_bench: cannot start thread %d of %d\n",
                    i + 1, n);
            atomic_store(next, p->n);   /* started ones stop at once */
            return i;
        }
    }
    return n;
}

static int run_concurrent(sx_phase *p, const sx_bench_opts *o,
                          const cJSON *tmpl)
{
    int n = o->concurrency, started = 0;
    sx_worker *w = calloc((size_t)n, sizeof(*w));
    sx_gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    atomic_int next = 0;
    double t0;

    if (w != NULL && open_workers(w, n, o, tmpl) == 0)
        started = start_workers(w, n, p, &next, &gate);
    t0 = now_s();
    pthread_mutex_lock(&gate.mu);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    for (int i = 0; i < started; i++)
        pthread_join(w[i].thread, NULL);
    p->wall_s = now_s() - t0;
    if (w != NULL)
        close_workers(w, n);
    free(w);
    return started == n ? 0 : -1;
}

/* ---- output ------------------------------------------------------------- */

/* A table cell: the value, or "-" when there is none. */
static const char *cell(char *buf, size_t len, const char *fmt, double v)
{
    if (isnan(v) || isinf(v))
        return "-";
    snprintf(buf, len, fmt, v);
    return buf;
}

static void print_row(const sx_phase *p)
{
    sx_stats s = phase_stats(p);
    char b[4][32];

    printf("%-32s %6d %6d %9s %9s %9s %9s\n", p->name, p->ok, p->failed,
           cell(b[0], sizeof(b[0]), "%.3f", s.mean),
           cell(b[1], sizeof(b[1]), "%.3f", s.p50),
           cell(b[2], sizeof(b[2]), "%.3f", s.p99),
           cell(b[3], sizeof(b[3]), "%.1f", s.per_s));
}

static void print_failures(const sx_phase *p)
{
    for (int i = 0; i < p->n_kinds; i++)
        printf("  %s: %d x %s: %s\n", p->name, p->kinds[i].count,
               p->kinds[i].code, p->kinds[i].message);
    if (p->failed > 0 && p->n_kinds == MAX_KINDS)
        printf("  %s: (only the first %d kinds of failure are listed)\n",
               p->name, MAX_KINDS);
}

static void print_table(const sx_bench_opts *o, sx_phase *ph, int n_ph)
{
    sx_stats raw = phase_stats(&ph[0]), seq = phase_stats(&ph[1]);
    char b[2][32];
    int failed = 0;

    printf("sx_bench: %d executions per phase, host %s\n", o->count, o->url);
    if (strcmp(o->baseline, "true") != 0)
        printf("baseline: sh -c '%s'\n", o->baseline);
    printf("%-32s %6s %6s %9s %9s %9s %9s\n", "phase", "ok", "fail",
           "mean ms", "p50 ms", "p99 ms", "exec/s");
    for (int i = 0; i < n_ph; i++)
        print_row(&ph[i]);
    printf("\nhost (concurrency 1) / %s latency: p50 %sx, mean %sx\n",
           strcmp(o->baseline, "true") ? "baseline" : "raw spawn",
           cell(b[0], sizeof(b[0]), "%.2f", seq.p50 / raw.p50),
           cell(b[1], sizeof(b[1]), "%.2f", seq.mean / raw.mean));
    for (int i = 0; i < n_ph; i++)
        failed += ph[i].failed;
    if (failed == 0) {
        printf("failures: none\n");
        return;
    }
    printf("failures: %d\n", failed);
    for (int i = 0; i < n_ph; i++)
        print_failures(&ph[i]);
}

static double json_num(double v)
{
    return isfinite(v) ? v : 0;
}

static cJSON *phase_json(const sx_phase *p)
{
    sx_stats s = phase_stats(p);
    cJSON *j = cJSON_CreateObject();
    cJSON *kinds;

    cJSON_AddStringToObject(j, "name", p->name);
    cJSON_AddNumberToObject(j, "count", p->n);
    cJSON_AddNumberToObject(j, "ok", p->ok);
    cJSON_AddNumberToObject(j, "failed", p->failed);
    cJSON_AddNumberToObject(j, "mean_ms", json_num(s.mean));
    cJSON_AddNumberToObject(j, "p50_ms", json_num(s.p50));
    cJSON_AddNumberToObject(j, "p99_ms", json_num(s.p99));
    cJSON_AddNumberToObject(j, "executions_per_second", s.per_s);
    cJSON_AddNumberToObject(j, "wall_seconds", p->wall_s);
    kinds = cJSON_AddArrayToObject(j, "failures");
    for (int i = 0; i < p->n_kinds; i++) {
        cJSON *k = cJSON_CreateObject();

        cJSON_AddStringToObject(k, "code", p->kinds[i].code);
        cJSON_AddStringToObject(k, "message", p->kinds[i].message);
        cJSON_AddNumberToObject(k, "count", p->kinds[i].count);
        cJSON_AddItemToArray(kinds, k);
    }
    return j;
}

static void print_json(const sx_bench_opts *o, sx_phase *ph, int n_ph)
{
    sx_stats raw = phase_stats(&ph[0]), seq = phase_stats(&ph[1]);
    cJSON *j = cJSON_CreateObject();
    cJSON *ratio;
    char *text;

    cJSON_AddStringToObject(j, "url", o->url);
    cJSON_AddNumberToObject(j, "count", o->count);
    cJSON_AddNumberToObject(j, "concurrency", o->concurrency);
    cJSON_AddStringToObject(j, "baseline", o->baseline);
    for (int i = 0; i < n_ph; i++)
        cJSON_AddItemToObject(j, ph[i].key, phase_json(&ph[i]));
    ratio = cJSON_AddObjectToObject(j, "host_over_raw_latency");
    cJSON_AddNumberToObject(ratio, "p50", json_num(seq.p50 / raw.p50));
    cJSON_AddNumberToObject(ratio, "mean", json_num(seq.mean / raw.mean));
    if ((text = cJSON_Print(j)) != NULL)
        puts(text);
    free(text);
    cJSON_Delete(j);
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: sx_bench [OPTIONS]\n"
"Measure script-executor against a bare posix_spawn of /bin/sh -c true.\n"
"\n"
"  --url URL           control socket of a running script-executor\n"
"                      (default: $SX_URL, else " SX_DEFAULT_URL ")\n"
"  -n, --count N       executions per phase (default 300)\n"
"  --concurrency C     threads for the concurrent phase (default 8)\n"
"  --warmup W          untimed executions before the phases (default 10)\n"
"  --timeout SECONDS   reply timeout per request (default 60)\n"
"  --interpreter PATH  with.interpreter (default /bin/sh)\n"
"  --executor NAME     with.executor (default: the server's)\n"
"  --baseline CMD      phase (a) runs /bin/sh -c CMD (default: true)\n"
"  --json              print the results as JSON\n"
"  -h, --help          show this help\n"
"\n"
"Exit status: 0 when every execution succeeded, 1 when any failed or the\n"
"host could not be reached, 2 for usage errors.\n");
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_timeout(const char *s, int *ms)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 2e6)
        return -1;
    *ms = v * 1000 < 1 ? 1 : (int)(v * 1000);
    return 0;
}

static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "sx_bench: %s '%s'\nTry 'sx_bench --help'.\n", what,
            arg);
    return 2;
}

/* One option with a value; -1 when name is not one of these. */
static int set_valued(sx_bench_opts *o, const char *name, const char *v)
{
    if (!strcmp(name, "--url"))
        o->url = v;
    else if (!strcmp(name, "--count") || !strcmp(name, "-n"))
        return parse_int(v, 1, 10000000, &o->count) ? bad_usage(
                   "invalid count", v) : 0;
    else if (!strcmp(name, "--concurrency"))
        return parse_int(v, 1, MAX_THREADS, &o->concurrency) ? bad_usage(
                   "invalid concurrency (1-256)", v) : 0;
    else if (!strcmp(name, "--warmup"))
        return parse_int(v, 0, 1000000, &o->warmup) ? bad_usage(
                   "invalid warmup", v) : 0;
    else if (!strcmp(name, "--timeout"))
        return parse_timeout(v, &o->timeout_ms) ? bad_usage(
                   "invalid timeout", v) : 0;
    else if (!strcmp(name, "--interpreter"))
        o->interpreter = v;
    else if (!strcmp(name, "--executor"))
        o->executor = v;
    else if (!strcmp(name, "--baseline"))
        o->baseline = v;
    else
        return -1;
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(sx_bench_opts *o, int argc, char **argv)
{
    const char *env = getenv("SX_URL");

    *o = (sx_bench_opts){env && *env ? env : SX_DEFAULT_URL, 300, 8, 10,
                         60000, "/bin/sh", NULL, "true", 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rv;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (i + 1 >= argc)
            return bad_usage("unknown option or missing value", a);
        if ((rv = set_valued(o, a, argv[i + 1])) < 0)
            return bad_usage("unknown option", a);
        if (rv > 0)
            return rv;
        i++;
    }
    return -1;
}

/* ---- main --------------------------------------------------------------- */

static int run_all(const sx_bench_opts *o, sx_phase *ph)
{
    cJSON *tmpl = request_template(o);
    sx_client *c = NULL;
    sx_cerr err;
    int rv = 1;

    if (tmpl == NULL) {
        fprintf(stderr, "sx_bench: out of memory\n");
    } else if (sx_client_open(o->url, o->timeout_ms, &c, &err) != 0) {
        fprintf(stderr, "sx_bench: %s\n", err.message);
    } else {
        run_raw(&ph[0], o->warmup);
        run_sequential(&ph[1], c, tmpl, o->warmup);
        if (run_concurrent(&ph[2], o, tmpl) == 0)
            rv = 0;
    }
    sx_client_close(c);
    cJSON_Delete(tmpl);
    return rv;
}

int main(int argc, char **argv)
{
    char conc_name[64], raw_name[64];
    sx_bench_opts o;
    sx_phase ph[3];
    int rv = parse_args(&o, argc, argv), ready = 0;

    if (rv >= 0)
        return rv;
    snprintf(conc_name, sizeof(conc_name), "host execute, concurrency %d",
             o.concurrency);
    baseline_cmd = o.baseline;
    if (strcmp(o.baseline, "true") == 0)
        snprintf(raw_name, sizeof(raw_name), "raw posix_spawn sh -c true");
    else
        snprintf(raw_name, sizeof(raw_name), "baseline: %.20s...", o.baseline);
    if (phase_init(&ph[0], raw_name, "raw_spawn",
                   o.count) == 0 && ++ready &&
        phase_init(&ph[1], "host execute, concurrency 1", "host_sequential",
                   o.count) == 0 && ++ready &&
        phase_init(&ph[2], conc_name, "host_concurrent", o.count) == 0)
        ++ready;
    rv = ready < 3 ? 1 : run_all(&o, ph);
    if (ready < 3)
        fprintf(stderr, "sx_bench: out of memory\n");
    if (rv == 0) {
        if (o.json)
            print_json(&o, ph, 3);
        else
            print_table(&o, ph, 3);
        rv = ph[0].failed + ph[1].failed + ph[2].failed > 0 ? 1 : 0;
    }
    for (int i = 0; i < ready; i++)
        phase_fini(&ph[i]);
    sx_client_shutdown();
    return rv;
}
