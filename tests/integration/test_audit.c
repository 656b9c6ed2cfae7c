/*
 * test_audit.c - the audit guarantees through the real host over nng
 * (ctest integration_audit):
 *
 *   siem      audit_siem against a real HTTP server on loopback
 *             (tests/support/siem_server.py) that answers, fails (500),
 *             stalls (never answers: the client times out), stores and then
 *             stalls (at-least-once duplicates), and recovers: every record
 *             of the audit file arrives, in order, duplicates only where a
 *             batch went unanswered; the spool survives kill -9 of the host;
 *             a full spool stops steps from starting (audit_unavailable)
 *             until delivery frees it; a rotated token is picked up; config
 *             errors are named.
 *   kill      a load of executions with the native backend, the host
 *             killed with SIGKILL at random moments, several rounds: every
 *             execution whose script ran has its durable start record,
 *             every reply a client got has its finish record, and
 *             `sxctl audit verify` passes on the rotated files.
 */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"
#include "sx_check_main.h"

#ifndef SX_SIEM_SERVER
#error "SX_SIEM_SERVER must name tests/support/siem_server.py"
#endif

static const char *TOKEN = "siem-test-token-7f3a";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_msg(f != NULL, "%s: %s", tmp, strerror(errno));
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* ------------------------------------------------------------------ */
/* The SIEM stand-in                                                    */
/* ------------------------------------------------------------------ */

typedef struct siem {
    char dir[256];
    pid_t pid;
    int port;
} siem;

static void siem_start(siem *s)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/sxsiem-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    /* the token, in the local secret store layout: secrets/<name>/<key> */
    char path[400];
    snprintf(path, sizeof path, "%s/secrets", s->dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/secrets/siem-token", s->dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/secrets/siem-token/token", s->dir);
    char text[128];
    snprintf(text, sizeof text, "%s\n", TOKEN);
    write_file(path, text);
    s->pid = fork();
    if (s->pid == 0) {
        execlp(SX_PYTHON, SX_PYTHON, SX_SIEM_SERVER, s->dir, TOKEN, (char *)NULL);
        _exit(127);
    }
    snprintf(path, sizeof path, "%s/port", s->dir);
    double deadline = now_s() + 20;
    while (now_s() < deadline) {
        char *p = sx_harness_slurp(path);
        if (p) {
            s->port = atoi(p);
            free(p);
            return;
        }
        sleep_ms(20);
    }
    ck_abort_msg("the SIEM server did not start");
}

static void siem_stop(siem *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    rm_rf(s->dir);
}

static void siem_mode(siem *s, const char *mode)
{
    char path[400];
    snprintf(path, sizeof path, "%s/mode", s->dir);
    write_file(path, mode);
}

static int siem_stat(siem *s, const char *key)
{
    char path[400];
    snprintf(path, sizeof path, "%s/stats.json", s->dir);
    char *text = sx_harness_slurp(path);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int n = cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
    cJSON_Delete(o);
    return n;
}

static void wait_stat(siem *s, const char *key, int at_least, double seconds)
{
    double deadline = now_s() + seconds;
    while (siem_stat(s, key) < at_least) {
        ck_assert_msg(now_s() < deadline, "SIEM stat %s stayed below %d (%d)", key, at_least,
                      siem_stat(s, key));
        sleep_ms(20);
    }
}

/* What the SIEM stored: an array of {"mode", "record"} (complete lines). */
static cJSON *siem_received(siem *s)
{
    char path[400];
    snprintf(path, sizeof path, "%s/received.jsonl", s->dir);
    cJSON *all = cJSON_CreateArray();
    char *text = sx_harness_slurp(path);
    if (text == NULL)
        return all;
    char *line = text, *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        if (o)
            cJSON_AddItemToArray(all, o);
        line = nl + 1;
    }
    free(text);
    return all;
}

static int siem_count(siem *s)
{
    cJSON *all = siem_received(s);
    int n = cJSON_GetArraySize(all);
    cJSON_Delete(all);
    return n;
}

/* ------------------------------------------------------------------ */
/* Audit records                                                        */
/* ------------------------------------------------------------------ */

typedef struct strv {
    char **v;
    size_t n;
} strv;

static void strv_push(strv *s, const char *x)
{
    s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = strdup(x);
}

static int strv_has(const strv *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return 1;
    return 0;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Run sxctl audit verify --json on `path`; returns its parsed output and
 * the exit status in *rc. */
static cJSON *audit_verify(const char *path, int *rc)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s --json audit verify '%s'", SX_SXCTL_BIN, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cJSON *o = cJSON_Parse(out);
    ck_assert_msg(o != NULL, "sxctl audit verify printed: %s", out);
    return o;
}

/* Every record of the audit files at `path` (a file or directory), in chain
 * order, after checking the chain verifies. */
static cJSON *audit_records(const char *path)
{
    int rc;
    cJSON *v = audit_verify(path, &rc);
    char *vt = cJSON_PrintUnformatted(v);
    ck_assert_msg(rc == 0 && cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")),
                  "the audit chain does not verify: %s", vt);
    free(vt);
    cJSON *all = cJSON_CreateArray();
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(v, "files"))
    {
        char *text = sx_harness_slurp(f->valuestring);
        ck_assert_ptr_nonnull(text);
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            cJSON *o = cJSON_Parse(line);
            ck_assert_ptr_nonnull(o);
            cJSON_AddItemToArray(all, o);
        }
        free(text);
    }
    cJSON_Delete(v);
    return all;
}

/* record_ids of the host's records, in audit order, and the execution each
 * belongs to ("" when none). */
static void audit_ids(const char *path, strv *ids, strv *execs)
{
    cJSON *all = audit_records(path);
    memset(ids, 0, sizeof *ids);
    memset(execs, 0, sizeof *execs);
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const char *id = sx_json_str(r, "record_id");
        if (id[0]) {
            strv_push(ids, id);
            strv_push(execs, sx_json_str(r, "execution_id"));
        }
    }
    cJSON_Delete(all);
}

/* Wait until the SIEM holds every record of the audit file - except those
 * of the executions in `refused` (NULL = none), which the SIEM may have
 * refused (spool full) - then check: in order of first arrival they are a
 * subsequence of the audit file's order (nothing else arrived); every
 * duplicate comes from a batch stored but not answered (stall_after_store).
 * Returns the number of duplicates. */
static int expect_siem_has_audit_but(siem *s, const char *audit_path, const strv *refused,
                                     double seconds)
{
    strv want, execs;
    audit_ids(audit_path, &want, &execs);
    ck_assert_uint_gt(want.n, 0);
    double deadline = now_s() + seconds;
    for (;;) {
        cJSON *got = siem_received(s);
        strv first = {0};
        int dups = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, got)
        {
            const char *id = sx_json_str(e, "record.record_id");
            ck_assert_msg(id[0], "a record without record_id reached the SIEM");
            if (strv_has(&first, id)) {
                dups++;
                /* a copy: some copy of it was stored by a batch never answered */
                int unanswered = 0;
                const cJSON *c;
                cJSON_ArrayForEach(c, got)
                if (strcmp(sx_json_str(c, "record.record_id"), id) == 0 &&
                    strcmp(sx_json_str(c, "mode"), "stall_after_store") == 0)
                    unanswered = 1;
                ck_assert_msg(unanswered, "record %s arrived twice from answered batches", id);
            } else {
                strv_push(&first, id);
            }
        }
        cJSON_Delete(got);
        /* in the audit file's order, and nothing else */
        size_t w = 0, missing = 0;
        for (size_t i = 0; i < first.n; i++) {
            while (w < want.n && strcmp(want.v[w], first.v[i]) != 0) {
                missing += !(refused && strv_has(refused, execs.v[w]));
                w++;
            }
            ck_assert_msg(w < want.n, "the SIEM got %s out of order or unknown to the audit "
                          "file (arrival %zu)", first.v[i], i);
            w++;
        }
        for (; w < want.n; w++)
            missing += !(refused && strv_has(refused, execs.v[w]));
        strv_free(&first);
        if (missing == 0) {
            strv_free(&want);
            strv_free(&execs);
            return dups;
        }
        if (now_s() > deadline) {
            strv_free(&want);
            strv_free(&execs);
            ck_abort_msg("the SIEM misses %zu of the audit file's records after %.0f s", missing,
                         seconds);
        }
        sleep_ms(50);
    }
}

static int expect_siem_has_audit(siem *s, const char *audit_path, double seconds)
{
    return expect_siem_has_audit_but(s, audit_path, NULL, seconds);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */
/* ------------------------------------------------------------------ */

/* execute a small /bin/sh script; the reply (caller frees) or NULL. */
static cJSON *execute(sx_harness *h, const char *id, const char *script, const char *env_json)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "execute");
    cJSON_AddStringToObject(req, "execution_id", id);
    cJSON_AddStringToObject(req, "step_name", "s");
    cJSON_AddStringToObject(req, "runbook_id", "rb.audit");
    cJSON_AddStringToObject(req, "type", "script.run");
    cJSON *caller = cJSON_AddObjectToObject(req, "caller");
    cJSON_AddStringToObject(caller, "user", "alice");
    cJSON *with = cJSON_AddObjectToObject(req, "with");
    cJSON_AddStringToObject(with, "inline_script", script);
    cJSON_AddStringToObject(with, "interpreter", "/bin/sh");
    if (env_json)
        cJSON_AddItemToObject(with, "env", cJSON_Parse(env_json));
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    cJSON *reply = sx_harness_call(h, text);
    free(text);
    return reply;
}

static void execute_ok(sx_harness *h, const char *id)
{
    cJSON *r = execute(h, id, "echo audited", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    cJSON_Delete(r);
}

/* ------------------------------------------------------------------ */
/* SIEM delivery                                                        */
/* ------------------------------------------------------------------ */

static char *siem_config(const siem *s, const char *extra_siem)
{
    char *cfg;
    ck_assert_int_ge(
        asprintf(&cfg,
                 "script_executor:\n"
                 "  server:\n"
                 "    listen: \"ipc://@DIR@/ctl.sock\"\n"
                 "    events: \"ipc://@DIR@/events.sock\"\n"
                 "  plugins:\n"
                 "    dir: \"@PLUGINS@\"\n"
                 "    load: [script_run, backend_native, audit_siem, audit_file]\n"
                 "  executors:\n"
                 "    - name: shell\n"
                 "      kind: exec.native\n"
                 "      default_work_dir: /tmp\n"
                 "      default_env: {PATH: \"/usr/bin:/bin\"}\n"
                 "  secrets:\n"
                 "    secrets_dir: \"%s/secrets\"\n"
                 "  audit:\n"
                 "    log_file: \"@DIR@/audit.log\"\n"
                 "    siem:\n"
                 "      enabled: true\n"
                 "      endpoint: \"http://127.0.0.1:%d/api/v1/events\"\n"
                 "      token_secret: {name: siem-token, key: token}\n"
                 "      request_timeout: 1s\n"
                 "      connect_timeout: 1s\n"
                 "      backoff_initial: 50ms\n"
                 "      backoff_max: 400ms\n"
                 "      batch_max_records: 5\n"
                 "      drain_timeout: 1s\n"
                 "%s",
                 s->dir, s->port, extra_siem ? extra_siem : ""),
        0);
    return cfg;
}

static void stop_host(sx_harness *h)
{
    int rc = sx_harness_stop(h);
    ck_assert_msg(rc == 0, "host exited with status %d", rc);
}

START_TEST(siem_delivers_through_failure_stall_and_recovery)
{
    siem s;
    siem_start(&s);
    char *cfg = siem_config(&s, NULL);
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    free(cfg);
    char id[64];

    /* answering: records arrive; env values never, names do */
    cJSON *r = execute(&h, "ok-env", "echo \"$API_TOKEN\" | wc -c",
                       "{\"API_TOKEN\":\"env-secret-value-91\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    cJSON_Delete(r);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "ok-%d", i);
        execute_ok(&h, id);
    }
    ck_assert_int_eq(expect_siem_has_audit(&s, h.audit_path, 30), 0);

    /* failing (500): executions go on, records wait in the spool */
    siem_mode(&s, "fail");
    int before = siem_count(&s);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "fail-%d", i);
        execute_ok(&h, id);
    }
    wait_stat(&s, "fail", 3, 30); /* retried, with backoff */
    ck_assert_int_eq(siem_count(&s), before);

    /* stalling (no answer; the client times out after request_timeout) */
    siem_mode(&s, "stall");
    for (int i = 0; i < 2; i++) {
        snprintf(id, sizeof id, "stall-%d", i);
        execute_ok(&h, id);
    }
    wait_stat(&s, "stall", 2, 30);

    /* storing but not answering: the batch is sent again (at-least-once) */
    siem_mode(&s, "stall_after_store");
    wait_stat(&s, "stall_after_store", 2, 30);

    /* recovery: everything arrives, in order */
    siem_mode(&s, "ok");
    int dups = expect_siem_has_audit(&s, h.audit_path, 60);
    ck_assert_int_ge(dups, 1); /* the unanswered batches came twice: deduplicated by record_id */
    ck_assert_int_eq(siem_stat(&s, "unauthorized"), 0);
    ck_assert_int_eq(siem_stat(&s, "bad"), 0);
    stop_host(&h);

    /* no secret in what left the host, in the audit file or the log */
    char path[400];
    snprintf(path, sizeof path, "%s/received.jsonl", s.dir);
    char *text = sx_harness_slurp(path);
    ck_assert_ptr_null(strstr(text, "env-secret-value-91"));
    ck_assert_ptr_nonnull(strstr(text, "API_TOKEN"));
    ck_assert_ptr_null(strstr(text, TOKEN));
    free(text);
    text = sx_harness_slurp(h.audit_path);
    ck_assert_ptr_null(strstr(text, "env-secret-value-91"));
    free(text);
    text = sx_harness_slurp(h.log_path);
    ck_assert_ptr_null(strstr(text, TOKEN));
    ck_assert_ptr_nonnull(strstr(text, "SIEM delivery")); /* the failures were logged */
    free(text);
    rm_rf(h.dir);
    siem_stop(&s);
}
END_TEST

START_TEST(siem_spool_survives_host_kill)
{
    siem s;
    siem_start(&s);
    siem_mode(&s, "fail");
    char *cfg = siem_config(&s, NULL);
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    free(cfg);
    char id[64];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "before-kill-%d", i);
        execute_ok(&h, id);
    }
    wait_stat(&s, "fail", 1, 30);
    ck_assert_int_eq(sx_harness_kill(&h), 0);
    ck_assert_int_eq(siem_count(&s), 0);

    siem_mode(&s, "ok");
    ck_assert_int_eq(sx_harness_restart(&h), 0);
    execute_ok(&h, "after-restart");
    ck_assert_int_eq(expect_siem_has_audit(&s, h.audit_path, 60), 0);
    /* and across a clean stop with the endpoint down: drained later */
    siem_mode(&s, "fail");
    execute_ok(&h, "before-stop");
    stop_host(&h);
    siem_mode(&s, "ok");
    ck_assert_int_eq(sx_harness_restart(&h), 0);
    ck_assert_int_eq(expect_siem_has_audit(&s, h.audit_path, 60), 0);
    stop_host(&h);
    rm_rf(h.dir);
    siem_stop(&s);
}
END_TEST

START_TEST(siem_full_spool_stops_steps)
{
    siem s;
    siem_start(&s);
    siem_mode(&s, "fail");
    char *cfg = siem_config(&s, "      spool_max_bytes: 8Ki\n      spool_segment_bytes: 4Ki\n");
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    free(cfg);
    char id[64], script[600], path[600];
    int refused = 0, refused_unstarted = 0;
    strv refused_ids = {0};
    for (int i = 0; i < 100 && refused < 2; i++) {
        snprintf(id, sizeof id, "fill-%d", i);
        snprintf(script, sizeof script, "touch '%s/ran-%s'", h.dir, id);
        cJSON *r = execute(&h, id, script, NULL);
        ck_assert_ptr_nonnull(r);
        snprintf(path, sizeof path, "%s/ran-%s", h.dir, id);
        int ran = access(path, F_OK) == 0;
        int start_recorded = sx_harness_audit_count(&h, "exec.started", id, "s") == 1;
        /* whatever happened, a script ran only after its start record */
        ck_assert_int_eq(ran, start_recorded);
        if (strcmp(sx_json_str(r, "status"), "succeeded") != 0) {
            /* refused when the accepted, started or finished record could
             * not be spooled; the audit file still has what it got */
            ck_assert_str_eq(sx_json_str(r, "error.code"), "audit_unavailable");
            ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "spool"));
            refused++;
            refused_unstarted += !ran;
            strv_push(&refused_ids, id);
        } else {
            ck_assert(ran);
            ck_assert_int_eq(refused, 0);
        }
        cJSON_Delete(r);
    }
    ck_assert_int_eq(refused, 2);
    ck_assert_int_ge(refused_unstarted, 1); /* a full spool: nothing starts */

    /* the endpoint is back: the spool drains and steps run again */
    siem_mode(&s, "ok");
    double deadline = now_s() + 30;
    int ok = 0;
    for (int i = 0; !ok; i++) {
        ck_assert_msg(now_s() < deadline, "steps still refused after the SIEM recovered");
        snprintf(id, sizeof id, "after-%d", i);
        cJSON *r = execute(&h, id, "true", NULL);
        ok = strcmp(sx_json_str(r, "status"), "succeeded") == 0;
        cJSON_Delete(r);
        if (!ok) {
            strv_push(&refused_ids, id);
            sleep_ms(50);
        }
    }
    ck_assert_int_eq(expect_siem_has_audit_but(&s, h.audit_path, &refused_ids, 60), 0);
    strv_free(&refused_ids);
    stop_host(&h);
    rm_rf(h.dir);
    siem_stop(&s);
}
END_TEST

START_TEST(siem_rotated_token_is_picked_up)
{
    siem s;
    siem_start(&s);
    char path[400];
    snprintf(path, sizeof path, "%s/secrets/siem-token/token", s.dir);
    write_file(path, "an-old-token\n");
    char *cfg = siem_config(&s, NULL);
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    free(cfg);
    execute_ok(&h, "tok-1");
    wait_stat(&s, "unauthorized", 2, 30);
    ck_assert_int_eq(siem_count(&s), 0);
    char text[128];
    snprintf(text, sizeof text, "%s\n", TOKEN);
    write_file(path, text); /* the secret is rotated: the next attempt uses it */
    ck_assert_int_eq(expect_siem_has_audit(&s, h.audit_path, 30), 0);
    stop_host(&h);
    char *log = sx_harness_slurp(h.log_path);
    ck_assert_ptr_null(strstr(log, "an-old-token"));
    ck_assert_ptr_nonnull(strstr(log, "HTTP 401"));
    free(log);
    rm_rf(h.dir);
    siem_stop(&s);
}
END_TEST

START_TEST(siem_config_errors_are_named)
{
    siem s;
    siem_start(&s);
    char out[4096];
    struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"name: siem-token", "name: no-such-secret", "no-such-secret"},
        {"http://127.0.0.1", "ftp://127.0.0.1", "http:// or https://"},
        {"token_secret: {name: siem-token, key: token}", "token_file: /nonexistent/token",
         "/nonexistent/token"},
        {"token_secret: {name: siem-token, key: token}", "endpoint_typo: 1", "endpoint_typo"},
        {"audit_siem, audit_file", "audit_file, audit_siem", "before audit_file"},
        {"batch_max_records: 5", "batch_max_records: 0", "batch_max_records"},
    };
    char *base = siem_config(&s, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *at = strstr(base, cases[i].from);
        ck_assert_ptr_nonnull(at);
        char *cfg;
        ck_assert_int_ge(asprintf(&cfg, "%.*s%s%s", (int)(at - base), base, cases[i].to,
                                  at + strlen(cases[i].from)), 0);
        int rc = sx_harness_check_config(cfg, out, sizeof out);
        ck_assert_msg(rc == 2 && strstr(out, cases[i].expect),
                      "case %zu: exit %d, output: %s", i, rc, out);
        ck_assert_ptr_null(strstr(out, TOKEN));
        free(cfg);
    }
    free(base);
    siem_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* kill -9 under load                                                   */
/* ------------------------------------------------------------------ */

#define KILL_ROUNDS 5
#define KILL_CLIENTS 4

typedef struct kill_state {
    sx_harness *h;
    int round;
    atomic_int stop;
    atomic_int replies;        /* this round */
    pthread_mutex_t lock;
    strv replied;              /* "id status" of every reply received */
} kill_state;

typedef struct client_arg {
    kill_state *k;
    int client;
} client_arg;

/* One request with a short reply timeout (a killed host never answers). */
static cJSON *call_with_timeout(const char *url, const char *json, int ms)
{
    nng_socket sock;
    if (nng_req0_open(&sock) != 0)
        return NULL;
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, ms);
    nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, ms); /* the pipe may die before the send */
    nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    cJSON *reply = NULL;
    if (nng_dial(sock, url, NULL, 0) == 0 && nng_send(sock, (void *)json, strlen(json), 0) == 0) {
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(sock, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
            reply = cJSON_ParseWithLength(buf, sz);
            nng_free(buf, sz);
        }
    }
    nng_close(sock);
    return reply;
}

static void *kill_client(void *p)
{
    client_arg *a = p;
    kill_state *k = a->k;
    for (int n = 0; !atomic_load(&k->stop); n++) {
        char id[64], req[1024];
        snprintf(id, sizeof id, "k%d-c%d-%d", k->round, a->client, n);
        /* the marker proves the script ran; the output makes records big
         * enough to rotate the audit file during the load */
        snprintf(req, sizeof req,
                 "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"s\","
                 "\"runbook_id\":\"rb.kill\",\"type\":\"script.run\","
                 "\"caller\":{\"user\":\"bob\"},\"with\":{\"interpreter\":\"/bin/sh\","
                 "\"inline_script\":\": > \\\"$MARK\\\"; printf '%%01500d' 0\","
                 "\"env\":{\"MARK\":\"%s/ran/%s\"}}}",
                 id, k->h->dir, id);
        cJSON *r = call_with_timeout(k->h->ctl_url, req, 5000);
        if (r == NULL)
            break; /* the host is gone */
        char line[128];
        snprintf(line, sizeof line, "%s %s", id, sx_json_str(r, "status"));
        cJSON_Delete(r);
        pthread_mutex_lock(&k->lock);
        strv_push(&k->replied, line);
        pthread_mutex_unlock(&k->lock);
        atomic_fetch_add(&k->replies, 1);
    }
    return NULL;
}

START_TEST(kill9_during_load_keeps_the_guarantee)
{
    static const char *cfg =
        "script_executor:\n"
        "  server:\n"
        "    listen: \"ipc://@DIR@/ctl.sock\"\n"
        "    events: \"ipc://@DIR@/events.sock\"\n"
        "    max_concurrent: 32\n"
        "  plugins:\n"
        "    dir: \"@PLUGINS@\"\n"
        "    load: [script_run, backend_native, audit_file]\n"
        "  executors:\n"
        "    - name: shell\n"
        "      kind: exec.native\n"
        "      default_work_dir: /tmp\n"
        "      default_env: {PATH: \"/usr/bin:/bin\"}\n"
        "  audit:\n"
        "    log_file: \"@DIR@/audit/audit.log\"\n"
        "    rotate_size: 64Ki\n"
        "    rotate_keep: 0\n";
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    char ran[400];
    snprintf(ran, sizeof ran, "%s/ran", h.dir);
    ck_assert_int_eq(mkdir(ran, 01777), 0);
    chmod(ran, 01777); /* scripts run as nobody when the host is root */
    kill_state k = {.h = &h};
    pthread_mutex_init(&k.lock, NULL);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "kill test seed %u\n", seed);
    for (int round = 0; round < KILL_ROUNDS; round++) {
        if (round > 0)
            ck_assert_int_eq(sx_harness_restart(&h), 0);
        k.round = round;
        atomic_store(&k.stop, 0);
        atomic_store(&k.replies, 0);
        int kill_after = 5 + (int)(rand_r(&seed) % 40); /* replies before the kill */
        pthread_t t[KILL_CLIENTS];
        client_arg a[KILL_CLIENTS];
        for (int c = 0; c < KILL_CLIENTS; c++) {
            a[c] = (client_arg){&k, c};
            pthread_create(&t[c], NULL, kill_client, &a[c]);
        }
        double deadline = now_s() + 120;
        while (atomic_load(&k.replies) < kill_after) {
            ck_assert_msg(now_s() < deadline, "round %d: only %d replies", round,
                          atomic_load(&k.replies));
            sleep_ms(1);
        }
        ck_assert_int_eq(sx_harness_kill(&h), 0); /* in the middle of the load */
        atomic_store(&k.stop, 1);
        for (int c = 0; c < KILL_CLIENTS; c++)
            pthread_join(t[c], NULL);
        fprintf(stderr, "round %d: killed after %d replies\n", round, atomic_load(&k.replies));
    }
    /* one more start: it recovers a torn record if a kill cut one */
    ck_assert_int_eq(sx_harness_restart(&h), 0);
    stop_host(&h);

    char audit_dir[400];
    snprintf(audit_dir, sizeof audit_dir, "%s/audit", h.dir);
    cJSON *all = audit_records(audit_dir); /* the chain verifies (sxctl audit verify) */
    strv started = {0}, finished = {0};
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const char *topic = sx_json_str(r, "topic");
        const char *id = sx_json_str(r, "execution_id");
        if (strcmp(topic, "exec.started") == 0)
            strv_push(&started, id);
        else if (strcmp(topic, "exec.finished") == 0 || strcmp(topic, "exec.rejected") == 0)
            strv_push(&finished, id);
    }
    cJSON_Delete(all);

    /* every script that ran had its start record first */
    DIR *d = opendir(ran);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    size_t markers = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        markers++;
        ck_assert_msg(strv_has(&started, de->d_name), "%s ran without a start record",
                      de->d_name);
    }
    closedir(d);
    /* every reply a client got has its finish record */
    for (size_t i = 0; i < k.replied.n; i++) {
        char id[128];
        snprintf(id, sizeof id, "%s", k.replied.v[i]);
        char *status = strchr(id, ' ');
        *status++ = '\0';
        ck_assert_msg(strcmp(status, "succeeded") == 0, "reply '%s'", k.replied.v[i]);
        ck_assert_msg(strv_has(&finished, id), "reply '%s' has no finish record",
                      k.replied.v[i]);
    }
    int rc;
    cJSON *v = audit_verify(audit_dir, &rc);
    fprintf(stderr,
            "kill test: %d rounds, %zu replies, %zu scripts ran, %zu start records, %zu finish "
            "records, %d audit files, %d records, %d torn records recovered\n",
            KILL_ROUNDS, k.replied.n, markers, started.n, finished.n,
            cJSON_GetArraySize(cJSON_GetObjectItem(v, "files")),
            (int)cJSON_GetObjectItem(v, "records")->valuedouble,
            (int)cJSON_GetObjectItem(v, "recoveries")->valuedouble);
    ck_assert_uint_ge(markers, k.replied.n);
    ck_assert_int_gt(cJSON_GetArraySize(cJSON_GetObjectItem(v, "files")), 1); /* rotated */
    cJSON_Delete(v);
    strv_free(&started);
    strv_free(&finished);
    strv_free(&k.replied);
    pthread_mutex_destroy(&k.lock);
    rm_rf(h.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* sxctl audit verify, as a person runs it                              */
/* ------------------------------------------------------------------ */

/* Run `sxctl ARGS`; its exit status, and stdout+stderr in out. */
static int sxctl(const char *args, char *out, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", SX_SXCTL_BIN, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(sxctl_audit_verify_reports_and_exits)
{
    static const char *cfg =
        "script_executor:\n"
        "  server:\n"
        "    listen: \"ipc://@DIR@/ctl.sock\"\n"
        "  plugins:\n"
        "    dir: \"@PLUGINS@\"\n"
        "    load: [script_run, backend_native, audit_file]\n"
        "  executors:\n"
        "    - name: shell\n"
        "      kind: exec.native\n"
        "      default_work_dir: /tmp\n"
        "  audit:\n"
        "    log_file: \"@DIR@/audit.log\"\n";
    sx_harness h;
    ck_assert_int_eq(sx_harness_start(&h, cfg), 0);
    execute_ok(&h, "v-1");
    execute_ok(&h, "v-2");
    stop_host(&h);
    char out[4096], args[600];
    snprintf(args, sizeof args, "audit verify '%s'", h.audit_path);
    ck_assert_int_eq(sxctl(args, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "OK: 6 records (seq 1..6) in 1 file") != NULL, "%s", out);
    snprintf(args, sizeof args, "audit verify '%s'", h.dir); /* the directory: host.log skipped */
    ck_assert_int_eq(sxctl(args, out, sizeof out), 0);

    /* change the exit code recorded for v-1 */
    char *text = sx_harness_slurp(h.audit_path);
    char *at = strstr(text, "\"exit_code\":0");
    ck_assert_ptr_nonnull(at);
    at[12] = '3';
    write_file(h.audit_path, text);
    int line = 1;
    for (char *c = text; c < at; c++)
        line += *c == '\n';
    free(text);
    snprintf(args, sizeof args, "audit verify '%s'", h.audit_path);
    ck_assert_int_eq(sxctl(args, out, sizeof out), 1);
    char want[700];
    snprintf(want, sizeof want, "BROKEN: %s line %d (seq %d): edited:", h.audit_path, line, line);
    ck_assert_msg(strstr(out, want) != NULL, "want '%s' in: %s", want, out);
    snprintf(args, sizeof args, "--json audit verify '%s'", h.audit_path);
    ck_assert_int_eq(sxctl(args, out, sizeof out), 1);
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(sx_json_str(j, "kind"), "edited");
    ck_assert_int_eq((int)cJSON_GetObjectItem(j, "line")->valuedouble, line);
    cJSON_Delete(j);

    ck_assert_int_eq(sxctl("audit verify /nonexistent/audit.log", out, sizeof out), 3);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent/audit.log"));
    ck_assert_int_eq(sxctl("audit verify", out, sizeof out), 2);
    ck_assert_int_eq(sxctl("audit check x", out, sizeof out), 2);
    rm_rf(h.dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("audit");
    TCase *siem = tcase_create("siem");
    tcase_set_timeout(siem, 300);
    tcase_add_test(siem, siem_delivers_through_failure_stall_and_recovery);
    tcase_add_test(siem, siem_spool_survives_host_kill);
    tcase_add_test(siem, siem_full_spool_stops_steps);
    tcase_add_test(siem, siem_rotated_token_is_picked_up);
    tcase_add_test(siem, siem_config_errors_are_named);
    suite_add_tcase(s, siem);
    TCase *cli = tcase_create("sxctl");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, sxctl_audit_verify_reports_and_exits);
    suite_add_tcase(s, cli);
    TCase *kill = tcase_create("kill");
    tcase_set_timeout(kill, 600);
    tcase_add_test(kill, kill9_during_load_keeps_the_guarantee);
    suite_add_tcase(s, kill);
    return s;
}

int main(void) { return sx_check_run(suite()); }
