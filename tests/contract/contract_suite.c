/*
 * contract_suite.c - the backend contract suite: what every execution
 * backend plugin must do, checked through the real host over nng exactly as
 * an orchestrator sees it.  One binary, any backend: the target (plugin
 * dir, plugins to load, executor kind and config, script dialect, leftover
 * hook) comes from the environment or the command line; see
 * docs/contract-suite.md and `contract_suite --help`.
 *
 * Each case is one check TCase with its own host (CK_RUN_CASE=timeout runs
 * one).  A case the target's dialect cannot express is SKIPPED and the skip
 * is printed, in the case and in the summary; a case listed with --xfail is
 * an EXPECTED FAILURE: its failure is printed loudly and does not fail the
 * run, and its passing does (remove it from the list).
 */
#define _GNU_SOURCE
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "contract.h"
#include "host_harness.h"

/* ------------------------------------------------------------------ */
/* The target                                                          */
/* ------------------------------------------------------------------ */

/* The two executors' names are unique per suite process: backends that
 * sweep "their" leftovers at start-up by executor name (exec.docker, by
 * host_id and executor) must not take a concurrent suite run's live
 * objects for leftovers. */
static char ct_exec_name[48], ct_exec_capped[64];
#define CT_EXECUTOR ct_exec_name
#define CT_EXECUTOR_CAPPED ct_exec_capped
#define CT_CAP 4096
#define CT_MAX_PLUGINS 16

typedef struct ct_target {
    const char *plugin_dir;   /* the backend plugin(s) under test */
    const char *core_dir;     /* script_run.so, audit_file.so */
    char *plugins[CT_MAX_PLUGINS];
    size_t n_plugins;
    const char *kind;         /* exec.native, ... */
    char *executor_yaml;      /* the executor entry's own keys */
    const char *executor_yaml_from;
    char *config_yaml;        /* extra sections under script_executor: */
    ct_dialect dialect;
    const char *interpreter;
    const char *work_dir;
    const char *leftover_cmd; /* %s = execution id; prints a count */
    double leftover_wait;     /* seconds to wait for the count to reach 0 */
    double slack;             /* seconds a timeout/cancel may take beyond its due */
    char *xfail;              /* ",case,case," */
    int fail_on_skip;
    /* derived */
    char host_plugin_dir[PATH_MAX];
    char merged_dir[PATH_MAX]; /* "" when the plugin dir is used as is */
    char notes_path[PATH_MAX];
    char *config;             /* the host config (harness fills @DIR@) */
} ct_target;

static ct_target T;
static sx_harness H;

/* ------------------------------------------------------------------ */
/* Case bookkeeping: cleanup registry, skip, expected failure           */
/* ------------------------------------------------------------------ */

/* Everything a case allocates is registered here and released when the
 * case ends, however it ends (pass, skip, expected failure, failure), so
 * the suite stays leak-free under LeakSanitizer. */
typedef struct ct_owned {
    void *p;
    void (*fn)(void *);
} ct_owned;
static ct_owned ct_pool[4096];
static size_t ct_npool;
static const char *ct_case_name = "?";
static int ct_case_xfail;
static int ct_case_ok; /* passed, skipped or failed as expected */
static jmp_buf ct_jmp;

static void *ct_keep(void *p, void (*fn)(void *))
{
    if (p == NULL)
        return NULL;
    if (ct_npool == sizeof ct_pool / sizeof ct_pool[0]) {
        fprintf(stderr, "contract: case %s allocates too much (raise ct_pool)\n", ct_case_name);
        abort();
    }
    ct_pool[ct_npool++] = (ct_owned){p, fn};
    return p;
}
static void ct_json_free(void *p) { cJSON_Delete(p); }
static cJSON *ct_json(cJSON *j) { return ct_keep(j, ct_json_free); }
static char *ct_str(char *s) { return ct_keep(s, free); }
static void ct_release(void)
{
    while (ct_npool > 0) {
        ct_npool--;
        ct_pool[ct_npool].fn(ct_pool[ct_npool].p);
    }
}

static char *ct_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ct_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(s);
    return ct_str(s);
}

static void ct_note(const char *what, const char *text)
{
    FILE *f = fopen(T.notes_path, "a");
    if (f == NULL)
        return;
    fprintf(f, "%s\t%s\t", what, ct_case_name);
    for (const char *c = text; c && *c; c++)
        fputc(*c == '\n' || *c == '\t' ? ' ' : *c, f);
    fputc('\n', f);
    fclose(f);
}

/* A failed check: the case fails, or, listed as an expected failure, ends
 * here with the failure printed loudly. */
static void ct_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void ct_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ct_release();
    if (ct_case_xfail) {
        printf("\n!!!!! EXPECTED FAILURE [%s, %s backend %s]: %s:%d: %s\n"
               "!!!!! (listed with --xfail / CONTRACT_XFAIL: a known backend bug; "
               "not counted as a failure)\n\n",
               ct_case_name, ct_dialect_name(T.dialect), T.kind, file, line, msg);
        fflush(stdout);
        ct_note("XFAIL", msg);
        longjmp(ct_jmp, 1);
    }
    /* check ends a failed test's process at once (no teardown): stop the
     * host here, so its runs are cancelled and nothing of it stays. */
    int rc = H.pid > 0 ? sx_harness_stop(&H) : -1;
    printf("      host log kept: %s\n", H.log_path);
    fflush(stdout);
    if (rc > 0)
        ck_abort_msg("[%s] %s:%d: %s (and the host exited with status %d)", ct_case_name, file,
                     line, msg, rc);
    ck_abort_msg("[%s] %s:%d: %s", ct_case_name, file, line, msg);
    abort(); /* not reached */
}

#define CT_CHECK(cond, ...)                                 \
    do {                                                    \
        if (!(cond))                                        \
            ct_fail(__FILE__, __LINE__, __VA_ARGS__);       \
    } while (0)

/* The case cannot be expressed for this target: print why and end it. */
static void ct_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void ct_skip(const char *fmt, ...)
{
    char msg[1000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ct_release();
    printf("----- SKIP [%s, dialect %s, backend %s]: %s\n", ct_case_name,
           ct_dialect_name(T.dialect), T.kind, msg);
    fflush(stdout);
    ct_note("SKIP", msg);
    longjmp(ct_jmp, 2);
}

static int ct_listed(const char *list, const char *name)
{
    if (list == NULL)
        return 0;
    char key[128];
    snprintf(key, sizeof key, ",%s,", name);
    return strstr(list, key) != NULL;
}

static void ct_case(const char *name, void (*body)(void))
{
    ct_case_name = name;
    ct_case_xfail = ct_listed(T.xfail, name);
    printf("===== case %s (dialect %s, backend %s)\n", name, ct_dialect_name(T.dialect), T.kind);
    fflush(stdout);
    if (setjmp(ct_jmp) != 0) {
        ct_case_ok = 1;
        return; /* skipped, or an expected failure (already printed) */
    }
    body();
    ct_release();
    if (ct_case_xfail) {
        printf("\n!!!!! UNEXPECTED PASS [%s]: listed as an expected failure but it passed; "
               "remove it from --xfail / CONTRACT_XFAIL\n\n", name);
        fflush(stdout);
        ct_note("XPASS", "passed although listed as an expected failure");
        sx_harness_stop(&H); /* no teardown after a failure: see ct_fail */
        ck_abort_msg("[%s] passed although listed as an expected failure", name);
    }
    ct_case_ok = 1;
    printf("----- PASS [%s]\n", name);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Talking to the host                                                  */
/* ------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void start_host(void)
{
    ct_case_ok = 0;
    if (sx_harness_start(&H, T.config) != 0) {
        if (H.pid > 0)
            sx_harness_stop(&H);
        ck_abort_msg("the host did not start on the contract config (log above, or in %s):\n%s",
                     H.log_path, T.config);
    }
    /* main stops it should this case's process be killed (check's timeout) */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)H.pid);
    ct_note("HOST", pid);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The host must exit 0 on SIGTERM (under ASan a leak or UB report in the
 * host makes it exit non-zero).  A case that ended well leaves no temp dir;
 * otherwise the host's log stays for a look. */
static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    if (ct_case_ok && (rc == 0 || rc == -1) && H.dir[0])
        nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("      host log kept: %s\n", H.log_path);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

/* A unique execution id for this case (also the leftover hook's key). */
static const char *ct_id(const char *what)
{
    return ct_fmt("ctr-%ld-%d-%s", (long)time(NULL), (int)getpid(), what);
}

/* A reply shown in a failure message (at most ~1500 chars). */
static const char *shown(const cJSON *r)
{
    if (r == NULL)
        return "(no reply)";
    char *t = ct_str(cJSON_PrintUnformatted(r));
    if (t && strlen(t) > 1500)
        strcpy(t + 1480, " ...(cut)");
    return t ? t : "(unprintable)";
}

/* The behaviours as a script of the target's dialect, or a printed skip. */
static const char *ct_script_of(const ct_beh *b, size_t n)
{
    const char *why = "?";
    char *s = ct_script(T.dialect, b, n, &why);
    if (s == NULL)
        ct_skip("the %s dialect cannot express this case: %s", ct_dialect_name(T.dialect), why);
    return ct_str(s);
}
#define SCRIPT(...)                                          \
    ct_script_of((const ct_beh[]){__VA_ARGS__},             \
                 sizeof((const ct_beh[]){__VA_ARGS__}) / sizeof(ct_beh))

/* A `with` object for the contract executor (registered). */
static cJSON *ct_with(const char *script, const char *timeout)
{
    cJSON *w = ct_json(cJSON_CreateObject());
    cJSON_AddStringToObject(w, "inline_script", script);
    cJSON_AddStringToObject(w, "interpreter", T.interpreter);
    cJSON_AddStringToObject(w, "executor", CT_EXECUTOR);
    cJSON_AddStringToObject(w, "timeout", timeout ? timeout : "60s");
    return w;
}

/* The request text (not registered: callers register or free). */
static char *ct_request(const char *op, const char *id, const char *step, const cJSON *with)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", op);
    if (id) {
        cJSON_AddStringToObject(req, "execution_id", id);
        cJSON_AddStringToObject(req, "step_name", step);
    }
    cJSON_AddStringToObject(req, "runbook_id", "contract.suite");
    cJSON_AddStringToObject(req, "type", "script.run");
    cJSON *caller = cJSON_AddObjectToObject(req, "caller");
    cJSON_AddStringToObject(caller, "user", "contract");
    cJSON_AddItemToObject(req, "with", cJSON_Duplicate(with, 1));
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    return text;
}

static cJSON *ct_call(const char *json)
{
    cJSON *r = ct_json(sx_harness_call(&H, json));
    CT_CHECK(r != NULL, "no reply (transport failure) to %.300s", json);
    return r;
}

static cJSON *ct_execute(const char *id, const char *step, const cJSON *with)
{
    return ct_call(ct_str(ct_request("execute", id, step, with)));
}

static const cJSON *item(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, part);
    return cur;
}

static const char *str_at(const cJSON *o, const char *path) { return sx_json_str(o, path); }

static void expect_status(const cJSON *r, const char *status, const char *code)
{
    CT_CHECK(strcmp(str_at(r, "status"), status) == 0, "want status '%s', got: %s", status, shown(r));
    if (code == NULL) {
        CT_CHECK(item(r, "error") == NULL, "a '%s' reply carries an error: %s", status, shown(r));
    } else {
        CT_CHECK(strcmp(str_at(r, "error.code"), code) == 0, "want error.code '%s', got: %s", code,
                 shown(r));
        CT_CHECK(strlen(str_at(r, "error.message")) > 0, "error without a message: %s", shown(r));
    }
}

static void expect_termination(const cJSON *r, const char *reason, int signal)
{
    CT_CHECK(strcmp(str_at(r, "output.termination.reason"), reason) == 0,
             "want output.termination.reason '%s', got: %s", reason, shown(r));
    const cJSON *sig = item(r, "output.termination.signal");
    if (signal > 0)
        CT_CHECK(cJSON_IsNumber(sig) && sig->valueint == signal,
                 "want output.termination.signal %d, got: %s", signal, shown(r));
    else if (signal == 0)
        CT_CHECK(cJSON_IsNull(sig), "want output.termination.signal null, got: %s", shown(r));
    /* signal < 0: any */
}

static void expect_exit_code(const cJSON *r, int code)
{
    const cJSON *v = item(r, "output.exit_code");
    if (code < 0)
        CT_CHECK(cJSON_IsNull(v), "want output.exit_code null (not an exit), got: %s", shown(r));
    else
        CT_CHECK(cJSON_IsNumber(v) && v->valueint == code, "want output.exit_code %d, got: %s",
                 code, shown(r));
}

static void expect_stream(const cJSON *r, const char *stream, const char *want)
{
    char path[64];
    snprintf(path, sizeof path, "output.%s", stream);
    const cJSON *v = item(r, path);
    CT_CHECK(cJSON_IsString(v), "no output.%s: %s", stream, shown(r));
    const char *got = v->valuestring;
    size_t at = 0;
    while (got[at] && got[at] == want[at])
        at++;
    size_t from = at > 40 ? at - 40 : 0;
    CT_CHECK(got[at] == want[at],
             "output.%s differs at byte %zu (want %zu bytes, got %zu): want \"...%.80s\", got "
             "\"...%.80s\"", stream, at, strlen(want), strlen(got), want + from, got + from);
}

static void expect_not_truncated(const cJSON *r, const char *stream)
{
    char path[64];
    snprintf(path, sizeof path, "output.%s_truncated", stream);
    CT_CHECK(cJSON_IsFalse(item(r, path)), "want %s false: %s", path, shown(r));
    snprintf(path, sizeof path, "output.%s_dropped_bytes", stream);
    const cJSON *d = item(r, path);
    CT_CHECK(cJSON_IsNumber(d) && d->valuedouble == 0, "want %s 0: %s", path, shown(r));
}

/* An execute on its own thread (a run to cancel or to watch). */
typedef struct ct_async {
    char *request;
    char *reply;
    double t_end;
    atomic_int done;
    pthread_t th;
} ct_async;

static void *async_main(void *p)
{
    ct_async *a = p;
    a->reply = sx_harness_call_raw(&H, a->request, strlen(a->request));
    a->t_end = now();
    atomic_store(&a->done, 1);
    return NULL;
}

static void async_start(ct_async *a, const char *id, const char *step, const cJSON *with)
{
    memset(a, 0, sizeof *a);
    a->request = ct_str(ct_request("execute", id, step, with));
    atomic_init(&a->done, 0);
    ck_assert_int_eq(pthread_create(&a->th, NULL, async_main, a), 0);
}

/* Join; the reply parsed (registered) or NULL. */
static cJSON *async_join(ct_async *a)
{
    pthread_join(a->th, NULL);
    ct_str(a->reply);
    return a->reply ? ct_json(cJSON_Parse(a->reply)) : NULL;
}

/* ------------------------------------------------------------------ */
/* Events                                                               */
/* ------------------------------------------------------------------ */

typedef struct ct_events {
    nng_socket sub;
    int open;
    /* this execution's events, in arrival order */
    cJSON *list; /* array of {"topic": .., "event": {..}} */
} ct_events;

static void ct_events_close(void *p)
{
    ct_events *ev = p;
    if (ev->open)
        nng_close(ev->sub);
    cJSON_Delete(ev->list);
    free(ev);
}

/* Subscribe to exec.* and make sure the subscription has reached the
 * publisher: run warm-up steps on the target until one of their events
 * arrives (the subscription travels asynchronously; no guessed delay). */
static ct_events *ct_events_open(const char *id)
{
    ct_events *ev = calloc(1, sizeof *ev);
    ck_assert_ptr_nonnull(ev);
    ct_keep(ev, ct_events_close);
    ev->list = cJSON_CreateArray();
    CT_CHECK(nng_sub0_open(&ev->sub) == 0, "cannot open a SUB socket");
    ev->open = 1;
    nng_socket_set(ev->sub, NNG_OPT_SUB_SUBSCRIBE, "exec.", 5);
    int rv = nng_dial(ev->sub, H.events_url, NULL, 0);
    CT_CHECK(rv == 0, "cannot dial the events socket %s: %s", H.events_url, nng_strerror(rv));
    nng_socket_set_ms(ev->sub, NNG_OPT_RECVTIMEO, 300);
    const char *warm_script = SCRIPT({CT_OUT, "warm", 0});
    cJSON *with = ct_with(warm_script, NULL);
    const char *warm_id = ct_fmt("%s-warmup", id);
    for (int i = 0; i < 50; i++) {
        char step[32];
        snprintf(step, sizeof step, "warm-%d", i);
        cJSON *r = ct_execute(warm_id, step, with);
        CT_CHECK(strcmp(str_at(r, "status"), "succeeded") == 0, "warm-up run failed: %s", shown(r));
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(ev->sub, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
            nng_free(buf, sz);
            return ev;
        }
    }
    CT_CHECK(0, "no event arrived on %s during 50 warm-up runs", H.events_url);
    return NULL;
}

/* Receive until `stop(ev, arg)` holds or `seconds` pass; keeps only the
 * events of execution `id`.  Returns 1 when stop held. */
static int ct_events_pump(ct_events *ev, const char *id, double seconds,
                          int (*stop)(ct_events *, const void *), const void *arg)
{
    double end = now() + seconds;
    while (!stop(ev, arg)) {
        if (now() > end)
            return 0;
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(ev->sub, &buf, &sz, NNG_FLAG_ALLOC) != 0)
            continue;
        char *text = strndup(buf, sz);
        nng_free(buf, sz);
        char *space = text ? strchr(text, ' ') : NULL;
        if (space) {
            *space = '\0';
            cJSON *e = cJSON_Parse(space + 1);
            if (e && strcmp(sx_json_str(e, "execution_id"), id) == 0) {
                cJSON *rec = cJSON_CreateObject();
                cJSON_AddStringToObject(rec, "topic", text);
                cJSON_AddItemToObject(rec, "event", e);
                cJSON_AddItemToArray(ev->list, rec);
            } else {
                cJSON_Delete(e);
            }
        }
        free(text);
    }
    return 1;
}

/* Index of the first event with `topic` at or after `from`, or -1. */
static int ct_events_find(const ct_events *ev, const char *topic, int from)
{
    int n = cJSON_GetArraySize(ev->list);
    for (int i = from < 0 ? 0 : from; i < n; i++)
        if (strcmp(sx_json_str(cJSON_GetArrayItem(ev->list, i), "topic"), topic) == 0)
            return i;
    return -1;
}

/* All exec.output data of `stream` so far, concatenated (malloc'ed). */
static char *events_output_dup(const ct_events *ev, const char *stream)
{
    size_t cap = 1, len = 0;
    char *all = calloc(1, 1);
    int n = cJSON_GetArraySize(ev->list);
    for (int i = 0; i < n; i++) {
        const cJSON *rec = cJSON_GetArrayItem(ev->list, i);
        if (strcmp(sx_json_str(rec, "topic"), "exec.output") != 0)
            continue;
        const cJSON *e = cJSON_GetObjectItem(rec, "event");
        if (strcmp(sx_json_str(e, "stream"), stream) != 0)
            continue;
        const char *d = sx_json_str(e, "data");
        size_t dl = strlen(d);
        if (len + dl + 1 > cap) {
            cap = (len + dl + 1) * 2;
            all = realloc(all, cap);
        }
        memcpy(all + len, d, dl + 1);
        len += dl;
    }
    return all;
}

/* The same, registered. */
static const char *ct_events_output(const ct_events *ev, const char *stream)
{
    return ct_str(events_output_dup(ev, stream));
}

static int stop_on_topic(ct_events *ev, const void *topic)
{
    return ct_events_find(ev, topic, 0) >= 0;
}

static int stop_on_stdout_text(ct_events *ev, const void *text)
{
    char *all = events_output_dup(ev, "stdout");
    int found = all && strstr(all, text) != NULL;
    free(all);
    return found;
}

/* ------------------------------------------------------------------ */
/* The leftover hook                                                    */
/* ------------------------------------------------------------------ */

/* Run the hook for `id` (every %s replaced by it; also in the environment
 * as CONTRACT_EXECUTION_ID); the last number it prints, or -1 (-2: it
 * could not be run).  Its output goes to `out`.  Safe while a run's
 * thread is in flight (never ends the case). */
static long ct_leftovers(const char *id, char *out, size_t out_size)
{
    size_t idl = strlen(id), n = 0;
    for (const char *p = T.leftover_cmd; (p = strstr(p, "%s")) != NULL; p += 2)
        n++;
    char *cmd = malloc(strlen(T.leftover_cmd) + n * idl + 1), *o = cmd;
    for (const char *p = T.leftover_cmd; *p;) {
        if (p[0] == '%' && p[1] == 's') {
            memcpy(o, id, idl);
            o += idl;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    setenv("CONTRACT_EXECUTION_ID", id, 1);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        snprintf(out, out_size, "cannot run: %s: %s", cmd, strerror(errno));
        free(cmd);
        return -2;
    }
    free(cmd);
    char buf[4096];
    size_t got = fread(buf, 1, sizeof buf - 1, p);
    buf[got] = '\0';
    pclose(p);
    while (got > 0 && isspace((unsigned char)buf[got - 1]))
        buf[--got] = '\0';
    snprintf(out, out_size, "%s", buf);
    long last = -1;
    for (char *c = buf; *c;) {
        if (isdigit((unsigned char)*c)) {
            last = strtol(c, &c, 10);
        } else {
            c++;
        }
    }
    return last;
}

/* ------------------------------------------------------------------ */
/* The cases                                                            */
/* ------------------------------------------------------------------ */

/* describe lists both contract executors with the target's kind. */
static void case_describe(void)
{
    cJSON *r = ct_call("{\"op\":\"describe\"}");
    CT_CHECK(strcmp(str_at(r, "status"), "ok") == 0, "describe: %s", shown(r));
    const cJSON *execs = item(r, "executors");
    int seen = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, execs)
    {
        const char *name = sx_json_str(e, "name");
        if (strcmp(name, CT_EXECUTOR) != 0 && strcmp(name, CT_EXECUTOR_CAPPED) != 0)
            continue;
        seen++;
        CT_CHECK(strcmp(sx_json_str(e, "kind"), T.kind) == 0, "executor %s: kind is not %s: %s",
                 name, T.kind, shown(e));
        CT_CHECK(cJSON_IsArray(cJSON_GetObjectItem(e, "supported_params")),
                 "executor %s has no supported_params array: %s", name, shown(e));
        const cJSON *cap = cJSON_GetObjectItem(e, "max_output_bytes");
        if (strcmp(name, CT_EXECUTOR_CAPPED) == 0)
            CT_CHECK(cJSON_IsNumber(cap) && cap->valuedouble == CT_CAP,
                     "executor %s: max_output_bytes is not %d: %s", name, CT_CAP, shown(e));
    }
    CT_CHECK(seen == 2, "describe does not list executors %s and %s: %s", CT_EXECUTOR,
             CT_EXECUTOR_CAPPED, shown(r));
    for (size_t i = 0; i < T.n_plugins; i++) {
        int found = 0;
        cJSON_ArrayForEach(e, item(r, "plugins")) found |= strcmp(sx_json_str(e, "name"), T.plugins[i]) == 0;
        CT_CHECK(found, "describe does not list plugin %s: %s", T.plugins[i], shown(r));
    }
}

/* Exit codes 0, 1 and 42 come back as they are, with the right status. */
static void case_exit_codes(void)
{
    const int codes[] = {0, 1, 42};
    const char *id = ct_id("exit");
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *line = ct_fmt("exit-case-%d", codes[i]);
        const char *script = SCRIPT({CT_OUT, line, 0}, {CT_EXIT, NULL, codes[i]});
        cJSON *r = ct_execute(id, ct_fmt("exit-%d", codes[i]), ct_with(script, NULL));
        if (codes[i] == 0)
            expect_status(r, "succeeded", NULL);
        else
            expect_status(r, "failed", "script_failed");
        expect_exit_code(r, codes[i]);
        expect_termination(r, "exited", 0);
        expect_stream(r, "stdout", ct_fmt("%s\n", line));
        CT_CHECK(strcmp(str_at(r, "execution_id"), id) == 0, "execution_id not echoed: %s", shown(r));
        CT_CHECK(strcmp(str_at(r, "output.executor"), CT_EXECUTOR) == 0, "output.executor: %s", shown(r));
        CT_CHECK(strcmp(str_at(r, "output.backend"), T.kind) == 0, "output.backend is not %s: %s",
                 T.kind, shown(r));
        CT_CHECK(strncmp(str_at(r, "output.script_hash"), "sha256:", 7) == 0, "no script_hash: %s", shown(r));
        const cJSON *d = item(r, "output.duration_seconds");
        CT_CHECK(cJSON_IsNumber(d) && d->valuedouble >= 0, "no duration_seconds: %s", shown(r));
        const cJSON *ru = item(r, "output.resource_usage");
        CT_CHECK(cJSON_IsObject(ru), "no resource_usage object: %s", shown(r));
    }
}

/* stdout and stderr are captured apart, in order, byte for byte. */
static void case_stdout_stderr(void)
{
    const char *script = SCRIPT({CT_OUT, "out-line-1", 0}, {CT_ERR, "err-line-1", 0},
                                {CT_OUT, "out-line-2", 0}, {CT_ERR, "err-line-2", 0},
                                {CT_EXIT, NULL, 0});
    cJSON *r = ct_execute(ct_id("streams"), "streams", ct_with(script, NULL));
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", "out-line-1\nout-line-2\n");
    expect_stream(r, "stderr", "err-line-1\nerr-line-2\n");
    expect_not_truncated(r, "stdout");
    expect_not_truncated(r, "stderr");
}

/* The step's stdin reaches the script whole (200 KB, beyond any pipe
 * buffer); without stdin the script reads end-of-file, it does not hang. */
static void case_stdin(void)
{
    const char *script = SCRIPT({CT_ECHO_STDIN, NULL, 0}, {CT_EXIT, NULL, 0});
    size_t cap = 210000, len = 0;
    char *in = ct_str(malloc(cap));
    for (int i = 0; len < 200000; i++)
        len += (size_t)snprintf(in + len, cap - len, "stdin line %05d: the quick brown fox %s\n", i,
                                i % 2 ? "jumps" : "\xc3\xa9t\xc3\xa9");
    cJSON *with = ct_with(script, NULL);
    cJSON_AddStringToObject(with, "stdin", in);
    cJSON *r = ct_execute(ct_id("stdin"), "stdin", with);
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", in);
    expect_not_truncated(r, "stdout");

    script = SCRIPT({CT_ECHO_STDIN, NULL, 0}, {CT_OUT, "after-stdin", 0}, {CT_EXIT, NULL, 0});
    r = ct_execute(ct_id("stdin"), "no-stdin", ct_with(script, "30s"));
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", "after-stdin\n");
}

/* The step's env reaches the script, values untouched. */
static void case_env(void)
{
    const char *value = "contract value: spaces, $DOLLAR, 'single' \"double\" \\ and \xc3\xbcn\xc3\xaf" "c\xc3\xb6" "de";
    const char *script = SCRIPT({CT_PRINT_ENV, "CONTRACT_VAR", 0}, {CT_PRINT_ENV, "CONTRACT_SECOND", 0},
                                {CT_PRINT_ENV, "CONTRACT_NEVER_SET", 0}, {CT_EXIT, NULL, 0});
    cJSON *with = ct_with(script, NULL);
    cJSON *env = cJSON_AddObjectToObject(with, "env");
    cJSON_AddStringToObject(env, "CONTRACT_VAR", value);
    cJSON_AddStringToObject(env, "CONTRACT_SECOND", "second");
    cJSON *r = ct_execute(ct_id("env"), "env", with);
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", ct_fmt("%s\nsecond\n\n", value));
}

/* The step's working_dir is the script's working directory. */
static void case_working_dir(void)
{
    const char *script = SCRIPT({CT_PRINT_CWD, NULL, 0}, {CT_EXIT, NULL, 0});
    cJSON *with = ct_with(script, NULL);
    cJSON_AddStringToObject(with, "working_dir", T.work_dir);
    cJSON *r = ct_execute(ct_id("cwd"), "cwd", with);
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", ct_fmt("%s\n", T.work_dir));
}

/* A run past its timeout is killed: timed_out, within timeout + slack,
 * with the output it made before. */
static void case_timeout(void)
{
    const char *script = SCRIPT({CT_OUT, "before-timeout", 0}, {CT_SLEEP, NULL, 60},
                                {CT_OUT, "after-sleep", 0}, {CT_EXIT, NULL, 0});
    double t0 = now();
    cJSON *r = ct_execute(ct_id("timeout"), "timeout", ct_with(script, "2s"));
    double took = now() - t0;
    expect_status(r, "timed_out", "timeout");
    expect_termination(r, "timed_out", -1);
    expect_exit_code(r, -1);
    printf("      (timeout 2s: the reply came after %.2fs)\n", took);
    CT_CHECK(took >= 1.9, "returned after %.2fs, before its 2s timeout: %s", took, shown(r));
    CT_CHECK(took <= 2 + T.slack, "returned after %.2fs: more than timeout 2s + slack %.0fs", took,
             T.slack);
    CT_CHECK(strstr(str_at(r, "output.stdout"), "before-timeout\n") != NULL,
             "the output made before the timeout is lost: %s", shown(r));
    CT_CHECK(strstr(str_at(r, "output.stdout"), "after-sleep") == NULL, "the script went on: %s", shown(r));
}

/* `cancel` while the script runs (its first line already out) kills it:
 * cancelled, promptly, with the output it made before. */
static void case_cancel(void)
{
    const char *id = ct_id("cancel");
    const char *script = SCRIPT({CT_OUT, "cancel-ready", 0}, {CT_SLEEP, NULL, 60},
                                {CT_OUT, "after-sleep", 0}, {CT_EXIT, NULL, 0});
    ct_events *ev = ct_events_open(id);
    const char *cancel = ct_fmt("{\"op\":\"cancel\",\"execution_id\":\"%s\",\"step_name\":\"cancel\"}", id);
    ct_async run;
    async_start(&run, id, "cancel", ct_with(script, "120s"));
    /* nothing below may end the case before the run's thread is joined */
    int running = ct_events_pump(ev, id, 30 + T.slack, stop_on_stdout_text, "cancel-ready");
    double t_cancel = now();
    cJSON *c = ct_json(sx_harness_call(&H, cancel));
    cJSON *r = async_join(&run);
    CT_CHECK(c != NULL, "no reply to cancel");
    CT_CHECK(running, "the script's first line never arrived as an exec.output event; reply: %s", shown(r));
    CT_CHECK(strcmp(str_at(c, "status"), "ok") == 0 && strcmp(str_at(c, "cancel"), "requested") == 0,
             "cancel was not accepted: %s", shown(c));
    CT_CHECK(r != NULL, "no reply to the cancelled execute");
    expect_status(r, "cancelled", "cancelled");
    expect_termination(r, "cancelled", -1);
    expect_exit_code(r, -1);
    double took = run.t_end - t_cancel;
    printf("      (the reply came %.2fs after the cancel)\n", took);
    CT_CHECK(took <= T.slack, "the reply came %.2fs after the cancel (slack %.0fs)", took, T.slack);
    CT_CHECK(strstr(str_at(r, "output.stdout"), "cancel-ready\n") != NULL,
             "the output made before the cancel is lost: %s", shown(r));
    CT_CHECK(strstr(str_at(r, "output.stdout"), "after-sleep") == NULL, "the script went on: %s", shown(r));
    cJSON *st = ct_call(ct_fmt("{\"op\":\"status\",\"execution_id\":\"%s\",\"step_name\":\"cancel\"}", id));
    CT_CHECK(strcmp(str_at(st, "state"), "finished") == 0 &&
                 strcmp(str_at(st, "result.status"), "cancelled") == 0,
             "status after the cancel: %s", shown(st));
}

/* max_output_bytes 4096: the stream is cut in the middle, head and tail
 * kept, the loss counted exactly; the other stream is untouched. */
static void case_output_cap(void)
{
    const long n = 100000;
    const char *script = SCRIPT({CT_OUT_BYTES, NULL, n}, {CT_OUT, "END", 0}, {CT_ERR, "err-ok", 0},
                                {CT_EXIT, NULL, 0});
    cJSON *with = ct_with(script, NULL);
    cJSON_ReplaceItemInObject(with, "executor", cJSON_CreateString(CT_EXECUTOR_CAPPED));
    cJSON *r = ct_execute(ct_id("cap"), "cap", with);
    expect_status(r, "succeeded", NULL);
    CT_CHECK(cJSON_IsTrue(item(r, "output.stdout_truncated")), "stdout_truncated is not true: %s", shown(r));
    const cJSON *dropped = item(r, "output.stdout_dropped_bytes");
    CT_CHECK(cJSON_IsNumber(dropped) && (long)dropped->valuedouble == n + 4 - CT_CAP,
             "stdout_dropped_bytes: want %ld (produced %ld, kept %d): %s", n + 4 - CT_CAP, n + 4,
             CT_CAP, shown(r));
    const char *s = str_at(r, "output.stdout");
    size_t len = strlen(s);
    CT_CHECK(strstr(s, "bytes dropped") != NULL, "no dropped-bytes marker in stdout: %s", shown(r));
    CT_CHECK(len <= CT_CAP + 200, "stdout is %zu bytes, above the cap %d", len, CT_CAP);
    CT_CHECK(len >= CT_CAP / 2 + 4, "stdout is only %zu bytes", len);
    CT_CHECK(strspn(s, "x") >= CT_CAP / 2 - 1, "the head is not kept: stdout starts \"%.80s\"", s);
    CT_CHECK(strcmp(s + len - 4, "END\n") == 0, "the tail is not kept: stdout ends \"%s\"",
             len > 80 ? s + len - 80 : s);
    expect_stream(r, "stderr", "err-ok\n");
    expect_not_truncated(r, "stderr");
}

/* How a run ended, the same on every backend: an exit is `exited` (signal
 * null), a script killed by a signal it sent itself (SIGKILL, SIGTERM) is
 * `signaled` with that signal, never an exit code (a container backend
 * that sees 128+N reports signal N).  timed_out and cancelled: their cases. */
static void case_termination(void)
{
    const char *id = ct_id("termination");
    const char *script = SCRIPT({CT_OUT, "before-exit", 0}, {CT_EXIT, NULL, 3});
    cJSON *r = ct_execute(id, "exited", ct_with(script, NULL));
    expect_status(r, "failed", "script_failed");
    expect_termination(r, "exited", 0);
    expect_exit_code(r, 3);
    static const int signals[] = {9, 15};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        script = SCRIPT({CT_OUT, "before-signal", 0}, {CT_DIE_SIGNAL, NULL, signals[i]});
        r = ct_execute(id, ct_fmt("signal-%d", signals[i]), ct_with(script, NULL));
        expect_status(r, "failed", "killed_by_signal");
        expect_termination(r, "signaled", signals[i]);
        expect_exit_code(r, -1);
        expect_stream(r, "stdout", "before-signal\n");
    }
}

/* render answers ok with the backend's plan (a JSON object) and runs
 * nothing. */
static void case_render(void)
{
    const char *script = SCRIPT({CT_OUT, "render-only", 0}, {CT_EXIT, NULL, 0});
    cJSON *with = ct_with(script, "17s");
    cJSON *env = cJSON_AddObjectToObject(with, "env");
    cJSON_AddStringToObject(env, "CONTRACT_VAR", "x");
    cJSON *r = ct_call(ct_str(ct_request("render", NULL, NULL, with)));
    CT_CHECK(strcmp(str_at(r, "status"), "ok") == 0, "render: %s", shown(r));
    CT_CHECK(strcmp(str_at(r, "render.executor"), CT_EXECUTOR) == 0, "render.executor: %s", shown(r));
    CT_CHECK(strcmp(str_at(r, "render.backend"), T.kind) == 0, "render.backend: %s", shown(r));
    CT_CHECK(strcmp(str_at(r, "render.interpreter"), T.interpreter) == 0, "render.interpreter: %s", shown(r));
    const cJSON *to = item(r, "render.timeout_seconds");
    CT_CHECK(cJSON_IsNumber(to) && to->valuedouble == 17, "render.timeout_seconds: %s", shown(r));
    CT_CHECK(strlen(str_at(r, "render.script_hash")) == 7 + 64, "render.script_hash: %s", shown(r));
    CT_CHECK(cJSON_IsObject(item(r, "render.plan")),
             "render.plan is not a JSON object (the backend's render output): %s", shown(r));
    CT_CHECK(sx_harness_audit_count(&H, "exec.started", NULL, NULL) == 0, "render started a run");
}

/* A backend-specific parameter the backend does not list in
 * supported_params is refused by name, before anything runs; render too. */
static void case_unsupported_parameter(void)
{
    static const struct {
        const char *name, *json;
    } candidates[] = {
        {"node_selector", "{\"contract\":\"x\"}"},
        {"priority_class_name", "\"contract\""},
        {"tolerations", "[]"},
        {"service_account", "\"contract\""},
        {"backoff_limit", "1"},
        {"ttl_seconds_after_finished", "60"},
        {"image", "\"sx-contract/none:latest\""},
        {"labels", "{\"contract\":\"x\"}"},
    };
    cJSON *d = ct_call("{\"op\":\"describe\"}");
    const cJSON *supported = NULL, *e;
    cJSON_ArrayForEach(e, item(d, "executors")) if (strcmp(sx_json_str(e, "name"), CT_EXECUTOR) == 0)
        supported = cJSON_GetObjectItem(e, "supported_params");
    CT_CHECK(cJSON_IsArray(supported), "describe: no supported_params for %s: %s", CT_EXECUTOR, shown(d));
    const char *param = NULL, *value = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !param; i++) {
        int listed = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, supported) listed |=
            cJSON_IsString(s) && strcmp(s->valuestring, candidates[i].name) == 0;
        if (!listed) {
            param = candidates[i].name;
            value = candidates[i].json;
        }
    }
    if (param == NULL)
        ct_skip("the backend lists every candidate parameter as supported: %s", shown(supported));
    printf("      (refused parameter: %s)\n", param);
    const char *script = SCRIPT({CT_OUT, "must-not-run", 0}, {CT_EXIT, NULL, 0});
    cJSON *with = ct_with(script, NULL);
    cJSON_AddItemToObject(with, param, cJSON_Parse(value));
    const char *id = ct_id("unsupported");
    cJSON *r = ct_execute(id, "refused", with);
    expect_status(r, "rejected", "unsupported_parameter");
    CT_CHECK(strstr(str_at(r, "error.message"), param) != NULL, "the refusal does not name %s: %s",
             param, shown(r));
    CT_CHECK(sx_harness_audit_count(&H, "exec.started", id, "refused") == 0,
             "the refused step started anyway");
    r = ct_call(ct_str(ct_request("render", NULL, NULL, with)));
    expect_status(r, "rejected", "unsupported_parameter");
}

/* A run publishes exec.started, exec.output (both streams) and
 * exec.finished, in that order. */
static void case_events(void)
{
    const char *id = ct_id("events");
    const char *line = ct_fmt("event-out-%s", id);
    const char *script = SCRIPT({CT_OUT, line, 0}, {CT_ERR, "event-err", 0}, {CT_EXIT, NULL, 0});
    ct_events *ev = ct_events_open(id);
    cJSON *r = ct_execute(id, "events", ct_with(script, NULL));
    expect_status(r, "succeeded", NULL);
    int done = ct_events_pump(ev, id, 10, stop_on_topic, "exec.finished");
    const char *got = shown(ev->list);
    CT_CHECK(done, "no exec.finished event for %s within 10 s; got: %s", id, got);
    int started = ct_events_find(ev, "exec.started", 0);
    int output = ct_events_find(ev, "exec.output", 0);
    int finished = ct_events_find(ev, "exec.finished", 0);
    CT_CHECK(started >= 0, "no exec.started event; got: %s", got);
    CT_CHECK(output >= 0, "no exec.output event; got: %s", got);
    CT_CHECK(started < output && output < finished, "events out of order; got: %s", got);
    CT_CHECK(ct_events_find(ev, "exec.output", finished) < 0, "exec.output after exec.finished: %s", got);
    const cJSON *st = cJSON_GetObjectItem(cJSON_GetArrayItem(ev->list, started), "event");
    CT_CHECK(strcmp(sx_json_str(st, "executor"), CT_EXECUTOR) == 0 &&
                 strcmp(sx_json_str(st, "backend"), T.kind) == 0,
             "exec.started does not name executor and backend: %s", shown(st));
    CT_CHECK(strstr(ct_events_output(ev, "stdout"), line) != NULL, "stdout line not in exec.output: %s", got);
    CT_CHECK(strstr(ct_events_output(ev, "stderr"), "event-err") != NULL,
             "stderr line not in exec.output: %s", got);
    const cJSON *fin = cJSON_GetObjectItem(cJSON_GetArrayItem(ev->list, finished), "event");
    CT_CHECK(strcmp(sx_json_str(fin, "status"), "succeeded") == 0, "exec.finished: %s", shown(fin));
}

/* After a run nothing of it is left: the backend's leftover hook counts
 * the run's objects (processes, containers, volumes, pods, ...).  The hook
 * must see them while the script runs (or it observes nothing) and see
 * none a few seconds after the reply.  The script leaves background
 * processes behind when the dialect can express that. */
static void case_cleanup(void)
{
    if (T.leftover_cmd == NULL || T.leftover_cmd[0] == '\0')
        ct_skip("no leftover hook for this backend (--leftover-cmd / CONTRACT_LEFTOVER_CMD): "
                "nothing to observe");
    const char *id = ct_id("cleanup");
    const char *marker = ct_str(ct_leftover_marker(id));
    const char *why = NULL;
    const ct_beh with_leftover[] = {{CT_LEAVE_PROCESS, marker, 0}, {CT_OUT, "spawned", 0},
                                    {CT_SLEEP, NULL, 3}, {CT_EXIT, NULL, 0}};
    char *text = ct_script(T.dialect, with_leftover, 4, &why);
    if (text == NULL) {
        printf("      (the %s dialect cannot leave processes behind (%s); the run is a plain one)\n",
               ct_dialect_name(T.dialect), why);
        text = ct_script(T.dialect, with_leftover + 1, 3, &why);
        CT_CHECK(text != NULL, "dialect: %s", why);
    }
    ct_str(text);
    ct_async run;
    double t0 = now();
    async_start(&run, id, "cleanup", ct_with(text, "60s"));
    long during = -1, max_during = -1;
    char hook_out[4096] = "";
    while (!atomic_load(&run.done)) {
        during = ct_leftovers(id, hook_out, sizeof hook_out);
        if (during > max_during)
            max_during = during;
        sleep_s(0.1);
    }
    cJSON *r = async_join(&run);
    double took = run.t_end - t0;
    printf("      (a 3s script: the reply came after %.2fs; the hook counted up to %ld while it ran)\n",
           took, max_during);
    CT_CHECK(r != NULL, "no reply");
    expect_status(r, "succeeded", NULL);
    expect_stream(r, "stdout", "spawned\n");
    CT_CHECK(took <= 3 + 2 * T.slack,
             "the run took %.1fs for a 3s script: it waited for what the script left behind", took);
    CT_CHECK(max_during >= 1,
             "the leftover hook never counted anything of %s while it ran (last output: \"%s\"): "
             "it must count the run's live objects", id, hook_out);
    long left = ct_leftovers(id, hook_out, sizeof hook_out);
    double until = now() + T.leftover_wait;
    while (left != 0 && now() < until) {
        sleep_s(0.2);
        left = ct_leftovers(id, hook_out, sizeof hook_out);
    }
    CT_CHECK(left >= 0, "the leftover hook printed no count for %s (output: \"%s\")", id, hook_out);
    CT_CHECK(left == 0, "%ld object(s) of execution %s left %.0fs after the reply (hook output: \"%s\")",
             left, id, T.leftover_wait, hook_out);
}

/* ------------------------------------------------------------------ */
/* The suite                                                            */
/* ------------------------------------------------------------------ */

#define CASES(X)                               \
    X(describe)                                \
    X(exit_codes)                              \
    X(stdout_stderr)                           \
    X(stdin)                                   \
    X(env)                                     \
    X(working_dir)                             \
    X(timeout)                                 \
    X(cancel)                                  \
    X(output_cap)                              \
    X(termination)                             \
    X(render)                                  \
    X(unsupported_parameter)                   \
    X(events)                                  \
    X(cleanup)

#define DEFINE_TEST(name)                      \
    START_TEST(test_##name)                    \
    {                                          \
        ct_case(#name, case_##name);           \
    }                                          \
    END_TEST
CASES(DEFINE_TEST)

static const char *const case_names[] = {
#define NAME_OF(name) #name,
    CASES(NAME_OF)
#undef NAME_OF
};

static void usage(FILE *to)
{
    fprintf(to,
        "usage: contract_suite [options]   (each option also from the environment)\n"
        "  --plugin-dir DIR       CONTRACT_PLUGIN_DIR     the backend plugin's directory\n"
        "                                                 (default: this build's plugins)\n"
        "  --plugin NAME          CONTRACT_PLUGINS        plugin(s) to load (repeat, or comma-separated)\n"
        "  --kind KIND            CONTRACT_KIND           executor kind, e.g. exec.native\n"
        "  --executor-yaml FILE   CONTRACT_EXECUTOR_YAML_FILE, or the text in CONTRACT_EXECUTOR_YAML:\n"
        "                                                 the executor entry's own keys (not name,\n"
        "                                                 kind, max_output_bytes); @DIR@ = host temp dir\n"
        "  --config-yaml FILE     CONTRACT_CONFIG_YAML_FILE extra sections under script_executor:\n"
        "  --dialect sh|fake      CONTRACT_DIALECT        how cases become scripts (default sh)\n"
        "  --interpreter PATH     CONTRACT_INTERPRETER    (default /bin/sh)\n"
        "  --work-dir DIR         CONTRACT_WORK_DIR       working_dir for that case (default /tmp)\n"
        "  --leftover-cmd CMD     CONTRACT_LEFTOVER_CMD   sh command printing how many objects of\n"
        "                                                 execution %%s exist (none: case skipped)\n"
        "  --leftover-wait SECS   CONTRACT_LEFTOVER_WAIT  (default 15)\n"
        "  --slack SECS           CONTRACT_SLACK          a timeout/cancel may take this long (default 5)\n"
        "  --xfail CASE[,CASE]    CONTRACT_XFAIL          known backend bugs: printed, not failed\n"
        "  --fail-on-skip         CONTRACT_FAIL_ON_SKIP=1 a skipped case fails the run\n"
        "  --core-plugin-dir DIR  CONTRACT_CORE_PLUGIN_DIR where script_run.so, audit_file.so are\n"
        "  --list                 print the case names\n"
        "One case: CK_RUN_CASE=NAME.  Cases:");
    for (size_t i = 0; i < sizeof case_names / sizeof case_names[0]; i++)
        fprintf(to, " %s", case_names[i]);
    fprintf(to, "\n");
}

static char *read_file_or_die(const char *path, const char *what)
{
    char *t = sx_harness_slurp(path);
    if (t == NULL) {
        fprintf(stderr, "contract: cannot read %s %s: %s\n", what, path, strerror(errno));
        exit(2);
    }
    return t;
}

static void add_plugins(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    for (char *p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        if (T.n_plugins == CT_MAX_PLUGINS) {
            fprintf(stderr, "contract: more than %d plugins\n", CT_MAX_PLUGINS);
            exit(2);
        }
        T.plugins[T.n_plugins++] = strdup(p);
    }
    free(copy);
}

static void add_xfail(const char *list)
{
    size_t old = T.xfail ? strlen(T.xfail) : 0;
    char *x = malloc(old + strlen(list) + 3);
    snprintf(x, old + strlen(list) + 3, "%s%s,", T.xfail ? T.xfail : ",", list);
    for (char *c = x; *c; c++)
        if (*c == ' ')
            *c = ',';
    free(T.xfail);
    T.xfail = x;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void parse_target(int argc, char **argv)
{
    T.plugin_dir = env_or("CONTRACT_PLUGIN_DIR", SX_PLUGIN_DIR);
    T.core_dir = env_or("CONTRACT_CORE_PLUGIN_DIR", SX_PLUGIN_DIR);
    T.kind = env_or("CONTRACT_KIND", NULL);
    T.interpreter = env_or("CONTRACT_INTERPRETER", "/bin/sh");
    T.work_dir = env_or("CONTRACT_WORK_DIR", "/tmp");
    T.leftover_cmd = env_or("CONTRACT_LEFTOVER_CMD", NULL);
    T.leftover_wait = atof(env_or("CONTRACT_LEFTOVER_WAIT", "15"));
    T.slack = atof(env_or("CONTRACT_SLACK", "5"));
    T.fail_on_skip = atoi(env_or("CONTRACT_FAIL_ON_SKIP", "0"));
    const char *dialect = env_or("CONTRACT_DIALECT", "sh");
    const char *yaml_file = env_or("CONTRACT_EXECUTOR_YAML_FILE", NULL);
    const char *config_file = env_or("CONTRACT_CONFIG_YAML_FILE", NULL);
    if (env_or("CONTRACT_EXECUTOR_YAML", NULL)) {
        T.executor_yaml = strdup(getenv("CONTRACT_EXECUTOR_YAML"));
        T.executor_yaml_from = "CONTRACT_EXECUTOR_YAML";
    }
    if (env_or("CONTRACT_PLUGINS", NULL))
        add_plugins(getenv("CONTRACT_PLUGINS"));
    if (env_or("CONTRACT_XFAIL", NULL))
        add_xfail(getenv("CONTRACT_XFAIL"));

    enum { O_PLUGIN_DIR = 1, O_PLUGIN, O_KIND, O_EXEC_YAML, O_CONFIG_YAML, O_DIALECT, O_INTERP,
           O_WORK_DIR, O_LEFTOVER, O_LEFTOVER_WAIT, O_SLACK, O_XFAIL, O_FAIL_ON_SKIP, O_CORE_DIR,
           O_LIST, O_HELP };
    static const struct option opts[] = {
        {"plugin-dir", required_argument, NULL, O_PLUGIN_DIR},
        {"plugin", required_argument, NULL, O_PLUGIN},
        {"kind", required_argument, NULL, O_KIND},
        {"executor-yaml", required_argument, NULL, O_EXEC_YAML},
        {"config-yaml", required_argument, NULL, O_CONFIG_YAML},
        {"dialect", required_argument, NULL, O_DIALECT},
        {"interpreter", required_argument, NULL, O_INTERP},
        {"work-dir", required_argument, NULL, O_WORK_DIR},
        {"leftover-cmd", required_argument, NULL, O_LEFTOVER},
        {"leftover-wait", required_argument, NULL, O_LEFTOVER_WAIT},
        {"slack", required_argument, NULL, O_SLACK},
        {"xfail", required_argument, NULL, O_XFAIL},
        {"fail-on-skip", no_argument, NULL, O_FAIL_ON_SKIP},
        {"core-plugin-dir", required_argument, NULL, O_CORE_DIR},
        {"list", no_argument, NULL, O_LIST},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    int c;
    int cli_plugins = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_PLUGIN_DIR: T.plugin_dir = optarg; break;
        case O_PLUGIN:
            if (!cli_plugins) { /* the command line replaces the environment's list */
                for (size_t i = 0; i < T.n_plugins; i++)
                    free(T.plugins[i]);
                T.n_plugins = 0;
                cli_plugins = 1;
            }
            add_plugins(optarg);
            break;
        case O_KIND: T.kind = optarg; break;
        case O_EXEC_YAML: yaml_file = optarg; break;
        case O_CONFIG_YAML: config_file = optarg; break;
        case O_DIALECT: dialect = optarg; break;
        case O_INTERP: T.interpreter = optarg; break;
        case O_WORK_DIR: T.work_dir = optarg; break;
        case O_LEFTOVER: T.leftover_cmd = optarg; break;
        case O_LEFTOVER_WAIT: T.leftover_wait = atof(optarg); break;
        case O_SLACK: T.slack = atof(optarg); break;
        case O_XFAIL: add_xfail(optarg); break;
        case O_FAIL_ON_SKIP: T.fail_on_skip = 1; break;
        case O_CORE_DIR: T.core_dir = optarg; break;
        case O_LIST:
            for (size_t i = 0; i < sizeof case_names / sizeof case_names[0]; i++)
                printf("%s\n", case_names[i]);
            exit(0);
        case 'h':
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "contract: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(2);
    }
    if (yaml_file) {
        free(T.executor_yaml);
        T.executor_yaml = read_file_or_die(yaml_file, "executor YAML");
        T.executor_yaml_from = yaml_file;
    }
    if (config_file)
        T.config_yaml = read_file_or_die(config_file, "config YAML");
    if (T.kind == NULL || T.n_plugins == 0) {
        fprintf(stderr, "contract: say which backend: --plugin NAME and --kind KIND "
                        "(or CONTRACT_PLUGINS, CONTRACT_KIND)\n");
        usage(stderr);
        exit(2);
    }
    if (ct_dialect_parse(dialect, &T.dialect) != 0) {
        fprintf(stderr, "contract: unknown dialect '%s' (sh, fake)\n", dialect);
        exit(2);
    }
    if (T.slack <= 0 || T.leftover_wait < 0) {
        fprintf(stderr, "contract: --slack must be > 0 and --leftover-wait >= 0\n");
        exit(2);
    }
    const char *only = getenv("CK_RUN_CASE");
    if (only && *only) {
        int known = 0;
        for (size_t i = 0; i < sizeof case_names / sizeof case_names[0]; i++)
            known |= strcmp(case_names[i], only) == 0;
        if (!known) {
            fprintf(stderr, "contract: CK_RUN_CASE: no case '%s' (--list)\n", only);
            exit(2);
        }
    }
    if (T.xfail) {
        char *copy = strdup(T.xfail), *save = NULL;
        for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            int known = 0;
            for (size_t i = 0; i < sizeof case_names / sizeof case_names[0]; i++)
                known |= strcmp(case_names[i], p) == 0;
            if (!known) {
                fprintf(stderr, "contract: --xfail: no case '%s' (--list)\n", p);
                exit(2);
            }
        }
        free(copy);
    }
}

/* The executor entry's keys, each line indented under "- name: ..." */
static char *indent_entry(const char *yaml)
{
    size_t cap = strlen(yaml) * 2 + 64, o = 0;
    char *out = calloc(1, cap);
    const char *p = yaml;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            blank &= p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank && p[0] != '#') {
            static const char *const reserved[] = {"name:", "kind:", "max_output_bytes:"};
            for (size_t i = 0; i < 3; i++)
                if (strncmp(p, reserved[i], strlen(reserved[i])) == 0) {
                    fprintf(stderr, "contract: the executor YAML (%s) may not set '%.*s': the suite "
                                    "sets it\n", T.executor_yaml_from, (int)strlen(reserved[i]) - 1,
                            reserved[i]);
                    exit(2);
                }
            memcpy(out + o, "      ", 6);
            o += 6;
            memcpy(out + o, p, n);
            o += n;
            out[o++] = '\n';
        }
        p = nl ? nl + 1 : NULL;
    }
    return out;
}

static char *indent_config(const char *yaml)
{
    size_t cap = strlen(yaml) * 2 + 8, o = 0;
    char *out = calloc(1, cap);
    for (const char *p = yaml; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        memcpy(out + o, "  ", 2);
        o += 2;
        memcpy(out + o, p, n);
        o += n;
        out[o++] = '\n';
        p = nl ? nl + 1 : p + n;
    }
    return out;
}

static int symlink_dir_entries(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (d == NULL) {
        fprintf(stderr, "contract: cannot open plugin dir %s: %s\n", from, strerror(errno));
        return -1;
    }
    char real[PATH_MAX];
    if (realpath(from, real) == NULL) {
        closedir(d);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char src[PATH_MAX * 2], dst[PATH_MAX * 2];
        snprintf(src, sizeof src, "%s/%s", real, e->d_name);
        struct stat st;
        if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        unlink(dst);
        if (symlink(src, dst) != 0) {
            fprintf(stderr, "contract: symlink %s: %s\n", dst, strerror(errno));
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

/* The host reads one plugin dir: when the backend's dir is not the core
 * plugins' dir, a private dir holds links to both (the backend's win). */
static void prepare_plugin_dir(void)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (realpath(T.plugin_dir, a) == NULL) {
        fprintf(stderr, "contract: plugin dir %s: %s\n", T.plugin_dir, strerror(errno));
        exit(2);
    }
    if (realpath(T.core_dir, b) == NULL) {
        fprintf(stderr, "contract: core plugin dir %s: %s\n", T.core_dir, strerror(errno));
        exit(2);
    }
    for (size_t i = 0; i < T.n_plugins; i++) {
        char so[PATH_MAX * 2];
        snprintf(so, sizeof so, "%s/%s.so", a, T.plugins[i]);
        if (access(so, R_OK) != 0) {
            fprintf(stderr, "contract: no plugin %s: %s\n", so, strerror(errno));
            exit(2);
        }
    }
    if (strcmp(a, b) == 0) {
        snprintf(T.host_plugin_dir, sizeof T.host_plugin_dir, "%s", a);
        return;
    }
    snprintf(T.merged_dir, sizeof T.merged_dir, "/tmp/sx-contract-plugins-XXXXXX");
    if (mkdtemp(T.merged_dir) == NULL || symlink_dir_entries(b, T.merged_dir) != 0 ||
        symlink_dir_entries(a, T.merged_dir) != 0) {
        fprintf(stderr, "contract: cannot prepare a plugin dir\n");
        exit(2);
    }
    snprintf(T.host_plugin_dir, sizeof T.host_plugin_dir, "%s", T.merged_dir);
}

static void build_config(void)
{
    char *entry = indent_entry(T.executor_yaml ? T.executor_yaml : "");
    char *extra = T.config_yaml ? indent_config(T.config_yaml) : strdup("");
    char load[1024] = "script_run";
    for (size_t i = 0; i < T.n_plugins; i++) {
        if (strcmp(T.plugins[i], "script_run") == 0 || strcmp(T.plugins[i], "audit_file") == 0)
            continue;
        strncat(load, ", ", sizeof load - strlen(load) - 1);
        strncat(load, T.plugins[i], sizeof load - strlen(load) - 1);
    }
    strncat(load, ", audit_file", sizeof load - strlen(load) - 1);
    if (asprintf(&T.config,
                 "script_executor:\n"
                 "  server:\n"
                 "    listen: \"ipc://@DIR@/ctl.sock\"\n"
                 "    events: \"ipc://@DIR@/events.sock\"\n"
                 "    max_concurrent: 8\n"
                 "    shutdown_grace: 10s\n"
                 "  plugins:\n"
                 "    dir: \"%s\"\n"
                 "    load: [%s]\n"
                 "  executors:\n"
                 "    - name: %s\n"
                 "      kind: %s\n"
                 "%s"
                 "    - name: %s\n"
                 "      kind: %s\n"
                 "      max_output_bytes: %d\n"
                 "%s"
                 "  default_executor: %s\n"
                 "  audit:\n"
                 "    log_file: \"@DIR@/audit.log\"\n"
                 "%s",
                 T.host_plugin_dir, load, CT_EXECUTOR, T.kind, entry, CT_EXECUTOR_CAPPED, T.kind,
                 CT_CAP, entry, CT_EXECUTOR, extra) < 0)
        exit(2);
    free(entry);
    free(extra);
}

/* Print the per-case outcome table from check's results and the notes the
 * cases left (skips, expected failures).  Returns the number of skips. */
static int summary(SRunner *sr, int *xfails)
{
    char *notes = sx_harness_slurp(T.notes_path);
    int nr = srunner_ntests_run(sr), skips = 0;
    TestResult **res = srunner_results(sr);
    printf("\n==== contract suite: backend %s, plugin(s)", T.kind);
    for (size_t i = 0; i < T.n_plugins; i++)
        printf(" %s", T.plugins[i]);
    printf(", dialect %s ====\n", ct_dialect_name(T.dialect));
    *xfails = 0;
    for (int i = 0; i < nr; i++) {
        const char *name = tr_tcname(res[i]);
        const char *verdict = tr_rtype(res[i]) == CK_PASS ? "PASS" : "FAIL";
        const char *why = tr_rtype(res[i]) == CK_PASS ? "" : tr_msg(res[i]);
        char reason[600] = "";
        for (char *line = notes; line && *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            char kind[8] = "", cname[128] = "";
            if (sscanf(line, "%7[^\t]\t%127[^\t]", kind, cname) == 2 && strcmp(cname, name) == 0 &&
                tr_rtype(res[i]) == CK_PASS && strcmp(kind, "HOST") != 0) {
                size_t skip = strlen(kind) + 1 + strlen(cname) + 1;
                snprintf(reason, sizeof reason, "%.*s", skip < len ? (int)(len - skip) : 0,
                         line + (skip < len ? skip : len));
                if (strcmp(kind, "SKIP") == 0) {
                    verdict = "SKIP";
                    skips++;
                } else if (strcmp(kind, "XFAIL") == 0) {
                    verdict = "XFAIL (expected failure, known backend bug)";
                    (*xfails)++;
                }
                why = reason;
            }
            line = nl ? nl + 1 : NULL;
        }
        printf("  %-22s %s%s%s\n", name, verdict, why[0] ? ": " : "", why);
    }
    free(res); /* the array is the caller's; the results are the runner's */
    free(notes);
    return skips;
}

/* Hosts whose case process was killed (check's per-case timeout) outlive
 * it: stop every host the cases started that still runs. */
static void stop_stray_hosts(void)
{
    char *notes = sx_harness_slurp(T.notes_path);
    char host_bin[PATH_MAX];
    if (notes == NULL || realpath(SX_HOST_BIN, host_bin) == NULL) {
        free(notes);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(notes, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char cname[128];
        int pid = 0;
        if (sscanf(line, "HOST\t%127[^\t]\t%d", cname, &pid) != 2 || pid <= 1)
            continue;
        char link[64], exe[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%d/exe", pid);
        ssize_t n = readlink(link, exe, sizeof exe - 1);
        if (n <= 0)
            continue; /* gone: stopped by its case */
        exe[n] = '\0';
        if (strcmp(exe, host_bin) != 0)
            continue; /* the pid was reused */
        printf("!!!!! case %s left its host (pid %d) running: stopping it\n", cname, pid);
        kill(pid, SIGTERM);
        for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
            sleep_s(0.05);
        if (kill(pid, 0) == 0)
            kill(pid, SIGKILL);
    }
    free(notes);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(ct_exec_name, sizeof ct_exec_name, "contract-%d", (int)getpid());
    snprintf(ct_exec_capped, sizeof ct_exec_capped, "%s-capped", ct_exec_name);
    parse_target(argc, argv);
    prepare_plugin_dir();
    build_config();
    char notes_dir[] = "/tmp/sx-contract-notes-XXXXXX";
    if (mkdtemp(notes_dir) == NULL) {
        perror("contract: mkdtemp");
        return 2;
    }
    snprintf(T.notes_path, sizeof T.notes_path, "%s/notes", notes_dir);
    printf("contract suite: kind %s, dialect %s, interpreter %s, plugin dir %s%s%s", T.kind,
           ct_dialect_name(T.dialect), T.interpreter, T.plugin_dir,
           T.merged_dir[0] ? " (merged with the core plugins in " : "",
           T.merged_dir[0] ? T.merged_dir : "");
    if (T.merged_dir[0])
        printf(")\n");
    else
        printf("\n");
    printf("executors: %s, %s (max_output_bytes %d)\n", CT_EXECUTOR, CT_EXECUTOR_CAPPED, CT_CAP);
    printf("leftover hook: %s\n", T.leftover_cmd ? T.leftover_cmd : "(none: cleanup is skipped)");
    if (T.xfail && strlen(T.xfail) > 1)
        printf("expected failures: %s\n", T.xfail);

    Suite *s = suite_create("backend_contract");
#define ADD_CASE(name)                                          \
    {                                                           \
        TCase *tc = tcase_create(#name);                        \
        tcase_add_checked_fixture(tc, start_host, stop_host);   \
        tcase_add_test(tc, test_##name);                        \
        tcase_set_timeout(tc, 180);                             \
        suite_add_tcase(s, tc);                                 \
    }
    CASES(ADD_CASE)
#undef ADD_CASE

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    stop_stray_hosts();
    int failed = srunner_ntests_failed(sr);
    int xfails = 0;
    int skips = summary(sr, &xfails);
    if (skips)
        printf("%d case(s) SKIPPED: the %s dialect cannot express them, or the target gives no "
               "way to observe them (see above); a skip is not a pass.\n", skips,
               ct_dialect_name(T.dialect));
    if (xfails)
        printf("!!!!! %d EXPECTED FAILURE(S): known backend bugs, listed with --xfail; fix the "
               "backend and remove them.\n", xfails);
    srunner_free(sr);

    unlink(T.notes_path);
    rmdir(notes_dir);
    if (T.merged_dir[0]) {
        DIR *d = opendir(T.merged_dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char p[PATH_MAX * 2];
            snprintf(p, sizeof p, "%s/%s", T.merged_dir, e->d_name);
            if (e->d_name[0] != '.')
                unlink(p);
        }
        if (d)
            closedir(d);
        rmdir(T.merged_dir);
    }
    for (size_t i = 0; i < T.n_plugins; i++)
        free(T.plugins[i]);
    free(T.executor_yaml);
    free(T.config_yaml);
    free(T.xfail);
    free(T.config);
    if (failed)
        return EXIT_FAILURE;
    if (skips && T.fail_on_skip) {
        printf("--fail-on-skip: failing because of %d skipped case(s)\n", skips);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
