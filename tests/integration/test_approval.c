/*
 * test_approval.c - the approval workflow through the real host: execute
 * over nng with JWT callers, decisions over the HTTP API with bearer JWTs,
 * with the real policy plugin, script_run, backend_native, audit_file and
 * an approval store: approval_sqlite, and approval_postgres against the
 * PostgreSQL server in $SX_TEST_PG_DSN (tools/pg-env.sh).
 *
 * The scripts append a line to a file in the host's directory, so "ran
 * once" is counted on disk, not inferred from replies.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"
#include "sx_check_main.h"
#include "sx_http_client.h"
#include "test_jwt.h"

static const char SECRET[] = "approval-integration-secret-0123456789abcdef";
static char KEYS[64];
static char RUN[48];           /* unique per test process: execution ids */

static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    http: \"http://127.0.0.1:0\"\n"
    "    max_concurrent: 8\n"
    "    shutdown_grace: 5s\n"
    "    auth: {mode: jwt}\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_native, audit_file, policy, @STORE@]\n"
    "  executors:\n"
    "    - name: shell\n"
    "      kind: exec.native\n"
    "      default_work_dir: @DIR@\n"
    "      default_env: {PATH: \"/usr/local/bin:/usr/bin:/bin\"}\n"
    "  default_executor: shell\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n"
    "  identity:\n"
    "    jwt:\n"
    "      algorithm: HS256\n"
    "      secret_file: \"@KEYS@/jwt.secret\"\n"
    "      issuer: https://idp.test\n"
    "      audience: script-executor\n"
    "  rbac:\n"
    "    roles:\n"
    "      - name: runner\n"
    "        permissions: [executors.use.script]\n"
    "    bindings:\n"
    "      - role: runner\n"
    "        groups: [sre, sre-leads, auto-ok]\n"
    "  approval:\n"
    "    approval_timeout: @TIMEOUT@\n"
    "    default_approvers: [sre-leads]\n"
    "    approvals_required: @N@\n"
    "    auto_approve:\n"
    "      enabled: true\n"
    "      rules:\n"
    "        - user_group: auto-ok\n"
    "          script_pattern: \"echo auto[a-z-]*\"\n"
    "    storage: @STORAGE@\n";

typedef struct store_kind {
    const char *plugin;
    const char *type;
} store_kind;

static const store_kind STORES[] = {{"approval_sqlite", "sqlite"}, {"approval_postgres", "postgres"}};

static char *replace_all(char *cur, const char *from, const char *to)
{
    char *at;
    while ((at = strstr(cur, from)) != NULL) {
        char *next;
        ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)(at - cur), cur, to, at + strlen(from)), 0);
        free(cur);
        cur = next;
    }
    return cur;
}

/* The config for a store; `db_dir` holds the SQLite file (so a restarted or
 * second host can share it). */
static char *config_for(const store_kind *s, const char *db_dir, const char *timeout, int n)
{
    char storage[1024], nbuf[16];
    if (strcmp(s->type, "sqlite") == 0) {
        snprintf(storage, sizeof storage, "{type: sqlite, path: \"%s/approvals.db\"}", db_dir);
    } else {
        const char *dsn = getenv("SX_TEST_PG_DSN");
        ck_assert_msg(dsn != NULL, "SX_TEST_PG_DSN must name the test PostgreSQL (tools/pg-env.sh)");
        snprintf(storage, sizeof storage, "{type: postgres, dsn: \"%s\"}", dsn);
    }
    snprintf(nbuf, sizeof nbuf, "%d", n);
    char *c = strdup(CONFIG);
    c = replace_all(c, "@STORE@", s->plugin);
    c = replace_all(c, "@STORAGE@", storage);
    c = replace_all(c, "@KEYS@", KEYS);
    c = replace_all(c, "@TIMEOUT@", timeout);
    c = replace_all(c, "@N@", nbuf);
    return c;
}

static void start(sx_harness *h, const store_kind *s, const char *timeout, int n)
{
    char *cfg = config_for(s, KEYS, timeout, n);
    ck_assert_int_eq(sx_harness_start(h, cfg), 0);
    free(cfg);
}

static void stop(sx_harness *h)
{
    int rc = sx_harness_stop(h);
    ck_assert_msg(rc == 0, "host exited with status %d", rc);
}

static char *token(const char *sub, const char *groups);

/* The bound URL of the host's HTTP listener, from describe. */
static void api_url(sx_harness *h, char *out, size_t size)
{
    char *tok = token("observer", "[\"sre\"]"), *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"describe\",\"caller\":{\"token\":\"%s\"}}", tok), 0);
    cJSON *d = sx_harness_call(h, req);
    free(req);
    free(tok);
    ck_assert_ptr_nonnull(d);
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "http"), "listeners");
    const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ls, 0), "url"));
    ck_assert_ptr_nonnull(url);
    snprintf(out, size, "%s", url);
    cJSON_Delete(d);
}

static char *token(const char *sub, const char *groups)
{
    long long now = (long long)time(NULL);
    char *payload;
    ck_assert_int_ge(asprintf(&payload, "{\"sub\":\"%s\",\"groups\":%s,\"iss\":\"https://idp.test\","
                                        "\"aud\":\"script-executor\",\"iat\":%lld,\"exp\":%lld}",
                              sub, groups, now - 5, now + 600), 0);
    char *t = sx_test_jwt("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "HS256", SECRET, sizeof SECRET - 1,
                          NULL);
    free(payload);
    return t;
}

/* execute of step "s" by the holder of tok, `extra` top-level fields
 * (JSON members text, e.g. "\"approval_required\":true,"), `with` as JSON. */
static cJSON *execute_raw(sx_harness *h, const char *id, const char *tok, const char *extra,
                          const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"s\","
                                    "\"runbook_id\":\"ops.delete-old-backups\",\"type\":\"script.run\","
                                    "%s\"caller\":{\"token\":\"%s\"},\"with\":%s}", id, extra, tok, with), 0);
    cJSON *r = sx_harness_call(h, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* `with` for a script with env TARGET (and more JSON members, may be ""). */
static char *with_for(const char *script, const char *more)
{
    cJSON *sj = cJSON_CreateString(script);
    char *st = cJSON_PrintUnformatted(sj);
    cJSON_Delete(sj);
    char *w;
    ck_assert_int_ge(asprintf(&w, "{\"inline_script\":%s,\"interpreter\":\"/bin/sh\","
                                  "\"env\":{\"TARGET\":\"v4lue-of-target\"}%s}", st, more), 0);
    free(st);
    return w;
}

/* execute of step "s" with approval_required, by the holder of tok. */
static cJSON *execute(sx_harness *h, const char *id, const char *tok, const char *script)
{
    char *with = with_for(script, "");
    cJSON *r = execute_raw(h, id, tok, "\"approval_required\":true,", with);
    free(with);
    return r;
}

static void expect(const cJSON *r, const char *status, const char *code)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want %s: %s", status, text);
    if (code)
        ck_assert_msg(strcmp(sx_json_str(r, "error.code"), code) == 0, "want %s: %s", code, text);
    free(text);
}

/* An HTTP call to the approval API; returns the status, *body parsed. */
static int http(const char *base, const char *method, const char *path, const char *tok, const char *body,
                cJSON **out)
{
    char url[512], *text = NULL;
    snprintf(url, sizeof url, "%s%s", base, path);
    int st = sx_http_call(method, url, tok, body, 10000, &text);
    ck_assert_msg(st != 0, "%s %s: %s", method, url, text);
    *out = cJSON_Parse(text);
    ck_assert_msg(*out != NULL, "%s %s: not JSON: %s", method, url, text);
    free(text);
    return st;
}

static int http_code(const char *base, const char *method, const char *path, const char *tok,
                     const char *body, const char *want_code)
{
    cJSON *o;
    int st = http(base, method, path, tok, body, &o);
    if (want_code) {
        char *t = cJSON_PrintUnformatted(o);
        ck_assert_msg(strcmp(sx_json_str(o, "error.code"), want_code) == 0, "want %s: %d %s", want_code, st, t);
        free(t);
    }
    cJSON_Delete(o);
    return st;
}

/* Lines in the marker file a script appends to (0 when absent). */
static int marker_lines(const sx_harness *h, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    char *text = sx_harness_slurp(path);
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    free(text);
    return n;
}

static void id_for(char *out, size_t size, const char *what)
{
    snprintf(out, size, "%s-%s", RUN, what);
}

static void keys_setup(void)
{
    snprintf(KEYS, sizeof KEYS, "/tmp/sxapr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(KEYS));
    char path[128];
    snprintf(path, sizeof path, "%s/jwt.secret", KEYS);
    ck_assert_int_eq(sx_test_write_file(path, SECRET, sizeof SECRET - 1), 0);
    snprintf(RUN, sizeof RUN, "apr%ld-%d", (long)time(NULL), (int)getpid());
}

static void keys_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", KEYS);
    ck_assert_int_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------ */

/* The whole flow, for each store (_i): pending, who may decide, approve,
 * run once with approved_by, audit records. */
START_TEST(request_approve_run_once)
{
    const store_kind *s = &STORES[_i];
    sx_harness h;
    start(&h, s, "1h", 1);
    char base[256], id[96], path[256];
    api_url(&h, base, sizeof base);
    id_for(id, sizeof id, s->type);
    char *alice = token("alice", "[\"sre\",\"sre-leads\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *dave = token("dave", "[\"sre\"]");
    const char *script = "echo deleting \"$TARGET\"; echo ran >> ran-flow.txt";

    cJSON *r = execute(&h, id, alice, script);
    expect(r, "pending_approval", NULL);
    char want_id[128];
    snprintf(want_id, sizeof want_id, "%s/s", id);
    ck_assert_str_eq(sx_json_str(r, "approval.id"), want_id);
    ck_assert_str_eq(sx_json_str(r, "approval.status"), "pending");
    ck_assert_str_eq(sx_json_str(r, "approval.requester"), "alice");
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(r, "approval"), "approvers"), 0)->valuestring,
                     "sre-leads");
    ck_assert(sx_json_str(r, "approval.expires_at")[0] != '\0');
    cJSON_Delete(r);
    /* a resend stays pending and requests nothing new */
    r = execute(&h, id, alice, script);
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&h, "approval.requested", id, "s"), 1);
    ck_assert_int_eq(marker_lines(&h, "ran-flow.txt"), 0);

    /* the approver sees it among the pending ones, with the request */
    cJSON *o;
    ck_assert_int_eq(http(base, "GET", "/api/v1/approvals/pending", bob, NULL, &o), 200);
    char *text = cJSON_PrintUnformatted(o);
    ck_assert_msg(strstr(text, want_id) != NULL, "%s", text);
    free(text);
    cJSON_Delete(o);
    /* dave (not an approver) does not see it */
    ck_assert_int_eq(http(base, "GET", "/api/v1/approvals/pending", dave, NULL, &o), 200);
    text = cJSON_PrintUnformatted(o);
    ck_assert_msg(strstr(text, want_id) == NULL, "%s", text);
    free(text);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s", id);
    ck_assert_int_eq(http(base, "GET", path, bob, NULL, &o), 200);
    ck_assert_str_eq(sx_json_str(o, "request.with.inline_script"), script);
    ck_assert_str_eq(sx_json_str(o, "request.requester"), "alice");
    ck_assert(strncmp(sx_json_str(o, "request.digest"), "sha256:", 7) == 0);
    text = cJSON_PrintUnformatted(o);
    ck_assert_msg(strstr(text, "TARGET") != NULL && strstr(text, "v4lue-of-target") == NULL,
                  "env names shown, values not: %s", text);
    free(text);
    cJSON_Delete(o);

    /* who may not decide */
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, NULL, NULL, "unauthenticated"), 401);
    ck_assert_int_eq(http_code(base, "POST", path, "not.a.token", NULL, "unauthenticated"), 401);
    ck_assert_int_eq(http_code(base, "POST", path, dave, NULL, "not_approver"), 403);
    ck_assert_int_eq(http_code(base, "POST", path, alice, NULL, "own_request"), 403);
    ck_assert_int_eq(http_code(base, "POST", "/api/v1/approvals/nope/s/approve", bob, NULL, "not_found"), 404);
    ck_assert_int_eq(http_code(base, "GET", path, bob, NULL, "method_not_allowed"), 405);
    ck_assert_int_eq(marker_lines(&h, "ran-flow.txt"), 0);

    /* bob approves; the resend runs, once */
    ck_assert_int_eq(http(base, "POST", path, bob, "{\"reason\":\"checked\"}", &o), 200);
    ck_assert_str_eq(sx_json_str(o, "status"), "approved");
    cJSON_Delete(o);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, "already_decided"), 409);
    ck_assert_int_eq(sx_harness_audit_count(&h, "approval.granted", id, "s"), 1);
    r = execute(&h, id, alice, script);
    expect(r, "succeeded", NULL);
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "deleting v4lue-of-target\n");
    ck_assert_str_eq(sx_json_str(r, "output.approved_by"), "bob");
    ck_assert(sx_json_str(r, "output.approved_at")[0] != '\0');
    cJSON_Delete(r);
    r = execute(&h, id, alice, script); /* the orchestrator retries */
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(marker_lines(&h, "ran-flow.txt"), 1);
    ck_assert_int_eq(sx_harness_audit_count(&h, "exec.started", id, "s"), 1);
    free(alice), free(bob), free(dave);
    stop(&h);
}
END_TEST

START_TEST(deny_and_mismatch)
{
    const store_kind *s = &STORES[0];
    sx_harness h;
    start(&h, s, "1h", 1);
    char base[256], id[96], path[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *carol = token("carol", "[\"sre-leads\"]");
    /* deny */
    id_for(id, sizeof id, "deny");
    cJSON *r = execute(&h, id, alice, "echo ran >> ran-deny.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/deny", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, "{\"reason\":\"not during the freeze\"}", NULL), 200);
    ck_assert_int_eq(http_code(base, "POST", path, bob, "{\"colour\":1}", "invalid_request"), 400);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, carol, NULL, "already_decided"), 409);
    r = execute(&h, id, alice, "echo ran >> ran-deny.txt");
    expect(r, "denied", "denied");
    ck_assert(strstr(sx_json_str(r, "error.message"), "not during the freeze") != NULL);
    ck_assert(strstr(sx_json_str(r, "error.message"), "bob") != NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&h, "approval.denied", id, "s"), 1);
    /* approved, then a different script arrives: never run */
    id_for(id, sizeof id, "mismatch");
    r = execute(&h, id, alice, "echo ran >> ran-mismatch.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    r = execute(&h, id, alice, "echo ran >> ran-mismatch.txt; echo extra >> ran-mismatch.txt");
    expect(r, "rejected", "approval_mismatch");
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&h, "approval.mismatch", id, "s"), 1);
    ck_assert_int_eq(marker_lines(&h, "ran-mismatch.txt"), 0);
    r = execute(&h, id, alice, "echo ran >> ran-mismatch.txt"); /* the approved one still runs */
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(marker_lines(&h, "ran-mismatch.txt"), 1);
    ck_assert_int_eq(marker_lines(&h, "ran-deny.txt"), 0);
    free(alice), free(bob), free(carol);
    stop(&h);
}
END_TEST

typedef struct decider {
    const char *base, *path, *tok, *body;
    pthread_barrier_t *go;
    int status;
} decider;

static void *decide_thread(void *arg)
{
    decider *d = arg;
    char url[512], *text = NULL;
    snprintf(url, sizeof url, "%s%s", d->base, d->path);
    pthread_barrier_wait(d->go);
    d->status = sx_http_call("POST", url, d->tok, d->body, 10000, &text);
    free(text);
    return NULL;
}

/* approve and deny at the same moment, for each store: one wins */
START_TEST(parallel_approve_and_deny_one_wins)
{
    const store_kind *s = &STORES[_i];
    sx_harness h;
    start(&h, s, "1h", 1);
    char base[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *carol = token("carol", "[\"sre-leads\"]");
    for (int round = 0; round < 5; round++) {
        char id[96], what[32], pa[256], pd[256];
        snprintf(what, sizeof what, "race%s%d", s->type, round);
        id_for(id, sizeof id, what);
        cJSON *r = execute(&h, id, alice, "echo race");
        expect(r, "pending_approval", NULL);
        cJSON_Delete(r);
        snprintf(pa, sizeof pa, "/api/v1/approvals/%s/s/approve", id);
        snprintf(pd, sizeof pd, "/api/v1/approvals/%s/s/deny", id);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        decider a = {base, pa, bob, NULL, &go, 0}, d = {base, pd, carol, "{\"reason\":\"race\"}", &go, 0};
        pthread_t ta, td;
        pthread_create(&ta, NULL, decide_thread, &a);
        pthread_create(&td, NULL, decide_thread, &d);
        pthread_join(ta, NULL);
        pthread_join(td, NULL);
        pthread_barrier_destroy(&go);
        ck_assert_msg((a.status == 200) + (d.status == 200) == 1, "approve %d, deny %d", a.status, d.status);
        ck_assert_msg((a.status == 409) + (d.status == 409) == 1, "approve %d, deny %d", a.status, d.status);
        r = execute(&h, id, alice, "echo race");
        expect(r, a.status == 200 ? "succeeded" : "denied", NULL);
        cJSON_Delete(r);
    }
    free(alice), free(bob), free(carol);
    stop(&h);
}
END_TEST

START_TEST(four_eyes_needs_n_distinct_approvers)
{
    sx_harness h;
    start(&h, &STORES[0], "1h", 2);
    char base[256], id[96], path[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *carol = token("carol", "[\"sre-leads\"]");
    id_for(id, sizeof id, "two");
    cJSON *r = execute(&h, id, alice, "echo two");
    expect(r, "pending_approval", NULL);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(r, "approval"), "approvals_required")), 2);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    cJSON *o;
    ck_assert_int_eq(http(base, "POST", path, bob, NULL, &o), 200);
    ck_assert_str_eq(sx_json_str(o, "status"), "pending");
    cJSON_Delete(o);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, "duplicate_approver"), 409);
    r = execute(&h, id, alice, "echo two");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(http(base, "POST", path, carol, NULL, &o), 200);
    ck_assert_str_eq(sx_json_str(o, "status"), "approved");
    cJSON_Delete(o);
    r = execute(&h, id, alice, "echo two");
    expect(r, "succeeded", NULL);
    char *dbg = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "output.approved_by"), "bob,carol") == 0, "%s", dbg);
    free(dbg);
    cJSON_Delete(r);
    free(alice), free(bob), free(carol);
    stop(&h);
}
END_TEST

START_TEST(expiry_and_auto_approve)
{
    sx_harness h;
    start(&h, &STORES[0], "2s", 1);
    char id[96], base[256], path[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *robot = token("robot", "[\"auto-ok\"]");
    id_for(id, sizeof id, "expire");
    cJSON *r = execute(&h, id, alice, "echo late");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    /* the expiry is a wall-clock deadline: poll the resend until it passes */
    const char *st = "pending_approval";
    for (int i = 0; i < 100 && strcmp(st, "pending_approval") == 0; i++) {
        usleep(100 * 1000);
        r = execute(&h, id, alice, "echo late");
        st = strcmp(sx_json_str(r, "status"), "expired") == 0 ? "expired" : "pending_approval";
        if (strcmp(st, "expired") == 0)
            expect(r, "expired", "expired");
        cJSON_Delete(r);
    }
    ck_assert_str_eq(st, "expired");
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, "expired"), 409);
    r = execute(&h, id, alice, "echo late"); /* more resends: still one expiry record */
    expect(r, "expired", "expired");
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&h, "approval.expired", id, "s"), 1);
    /* auto-approve: the rule's group and pattern */
    id_for(id, sizeof id, "auto");
    r = execute_raw(&h, id, robot, "\"approval_required\":true,",
                    "{\"inline_script\":\"echo auto-approved\",\"interpreter\":\"/bin/sh\"}");
    expect(r, "succeeded", NULL);
    ck_assert_str_eq(sx_json_str(r, "output.approved_by"), "auto-approve:rules[0]");
    cJSON_Delete(r);
    cJSON *rec = sx_harness_audit_record(&h, "approval.granted", id, "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "user"), "auto-approve:rules[0]");
    cJSON_Delete(rec);
    /* the same group with another script waits for a human: the pattern
     * must match the whole script, and env/args/stdin are not "plain" */
    id_for(id, sizeof id, "notauto");
    r = execute(&h, id, robot, "rm -rf /tmp/x; echo auto");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    id_for(id, sizeof id, "notauto2");
    r = execute(&h, id, robot, "echo auto; echo tail >> ran-auto.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    id_for(id, sizeof id, "notauto3");
    r = execute_raw(&h, id, robot, "\"approval_required\":true,",
                    "{\"inline_script\":\"echo auto\",\"interpreter\":\"/bin/bash\","
                    "\"env\":{\"BASH_ENV\":\"/tmp/evil.sh\"}}");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(marker_lines(&h, "ran-auto.txt"), 0);
    free(alice), free(bob), free(robot);
    stop(&h);
}
END_TEST

/* kill -9 with a pending and an approved request; both survive. */
START_TEST(kill_9_and_restart)
{
    sx_harness h;
    start(&h, &STORES[0], "1h", 1);
    char base[256], pending[96], approved[96], path[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    id_for(pending, sizeof pending, "k9pending");
    id_for(approved, sizeof approved, "k9approved");
    cJSON *r = execute(&h, pending, alice, "echo p >> ran-k9.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    r = execute(&h, approved, alice, "echo a >> ran-k9.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", approved);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    ck_assert_int_eq(sx_harness_kill(&h), 0);
    ck_assert_int_eq(sx_harness_restart(&h), 0);
    api_url(&h, base, sizeof base); /* a new port */
    r = execute(&h, pending, alice, "echo p >> ran-k9.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    r = execute(&h, approved, alice, "echo a >> ran-k9.txt");
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", pending);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    r = execute(&h, pending, alice, "echo p >> ran-k9.txt");
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(marker_lines(&h, "ran-k9.txt"), 2);
    free(alice), free(bob);
    stop(&h);
}
END_TEST

typedef struct sender {
    sx_harness *h;
    const char *id, *tok;
    pthread_barrier_t *go;
    char status[32], code[48];
} sender;

static void *send_thread(void *arg)
{
    sender *s = arg;
    pthread_barrier_wait(s->go);
    cJSON *r = execute(s->h, s->id, s->tok, "echo replica >> ran-replica.txt");
    snprintf(s->status, sizeof s->status, "%s", sx_json_str(r, "status"));
    snprintf(s->code, sizeof s->code, "%s", sx_json_str(r, "error.code"));
    cJSON_Delete(r);
    return NULL;
}

/* Two host replicas sharing one store (for each store): the approved step
 * sent to both at once runs on exactly one. */
START_TEST(two_replicas_run_once)
{
    const store_kind *st = &STORES[_i];
    sx_harness a, b;
    start(&a, st, "1h", 1);
    start(&b, st, "1h", 1);
    char base[256], id[96], what[32], path[256];
    api_url(&a, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    snprintf(what, sizeof what, "replicas-%s", st->type);
    id_for(id, sizeof id, what);
    cJSON *r = execute(&a, id, alice, "echo replica >> ran-replica.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    r = execute(&b, id, alice, "echo replica >> ran-replica.txt"); /* b sees the same approval */
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    sender sa = {&a, id, alice, &go, "", ""}, sb = {&b, id, alice, &go, "", ""};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, send_thread, &sa);
    pthread_create(&tb, NULL, send_thread, &sb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&go);
    int ok = (strcmp(sa.status, "succeeded") == 0) + (strcmp(sb.status, "succeeded") == 0);
    ck_assert_msg(ok == 1, "a: %s %s, b: %s %s", sa.status, sa.code, sb.status, sb.code);
    ck_assert_str_eq(strcmp(sa.status, "succeeded") == 0 ? sb.code : sa.code, "already_executed");
    ck_assert_int_eq(marker_lines(&a, "ran-replica.txt") + marker_lines(&b, "ran-replica.txt"), 1);
    free(alice), free(bob);
    stop(&a);
    stop(&b);
}
END_TEST

/* Ways around the workflow that must not work. */
START_TEST(bypasses_are_refused)
{
    sx_harness h;
    start(&h, &STORES[0], "1h", 1);
    char base[256], id[96], path[256];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    char *dave = token("dave", "[\"sre\"]");
    /* duplicate keys: an approver's JSON reader would see the last one */
    id_for(id, sizeof id, "dup");
    cJSON *r = execute_raw(&h, id, alice, "\"approval_required\":true,",
                           "{\"inline_script\":\"echo EVIL >> ran-dup.txt\",\"interpreter\":\"/bin/sh\","
                           "\"inline_script\":\"echo harmless\"}");
    expect(r, "rejected", "invalid_request");
    cJSON_Delete(r);
    /* the requester does not pick their own teammates as approvers */
    id_for(id, sizeof id, "groups");
    char *w = with_for("echo x", "");
    r = execute_raw(&h, id, alice, "\"approval_required\":true,\"approvers\":[\"sre\"],", w);
    expect(r, "rejected", "invalid_parameter");
    cJSON_Delete(r);
    free(w);
    /* approved for alice, sent by dave: not his */
    id_for(id, sizeof id, "other");
    r = execute(&h, id, alice, "echo ran >> ran-other.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    r = execute(&h, id, dave, "echo ran >> ran-other.txt");
    expect(r, "rejected", "approval_mismatch");
    cJSON_Delete(r);
    /* an env value changed after approval */
    w = with_for("echo ran >> ran-other.txt", "");
    char *w2 = strdup(w);
    char *v = strstr(w2, "v4lue-of-target");
    v[0] = 'V';
    r = execute_raw(&h, id, alice, "\"approval_required\":true,", w2);
    expect(r, "rejected", "approval_mismatch");
    cJSON_Delete(r);
    free(w), free(w2);
    ck_assert_int_eq(marker_lines(&h, "ran-other.txt"), 0);
    /* denied, then resent without approval_required: still denied */
    id_for(id, sizeof id, "noflag");
    r = execute(&h, id, alice, "echo ran >> ran-noflag.txt");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/deny", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    w = with_for("echo ran >> ran-noflag.txt", "");
    r = execute_raw(&h, id, alice, "", w);
    expect(r, "denied", "denied");
    cJSON_Delete(r);
    free(w);
    ck_assert_int_eq(marker_lines(&h, "ran-noflag.txt"), 0);
    /* stdin may hold credentials: approvers see its hash, never its text */
    id_for(id, sizeof id, "stdin");
    w = with_for("cat >/dev/null", ",\"stdin\":\"db-password=hunter2\"");
    r = execute_raw(&h, id, alice, "\"approval_required\":true,", w);
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    free(w);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s", id);
    cJSON *o;
    ck_assert_int_eq(http(base, "GET", path, bob, NULL, &o), 200);
    char *text = cJSON_PrintUnformatted(o);
    ck_assert_msg(strstr(text, "hunter2") == NULL, "%s", text);
    ck_assert(strncmp(sx_json_str(o, "request.with.stdin.sha256"), "sha256:", 7) == 0);
    free(text);
    cJSON_Delete(o);
    /* a step refused before it starts does not use up its approval */
    id_for(id, sizeof id, "wd");
    char wd[400], *more;
    snprintf(wd, sizeof wd, "%s/later", h.dir);
    ck_assert_int_ge(asprintf(&more, ",\"working_dir\":\"%s\"", wd), 0);
    w = with_for("echo ran >> ../ran-wd.txt", more);
    r = execute_raw(&h, id, alice, "\"approval_required\":true,", w);
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "/api/v1/approvals/%s/s/approve", id);
    ck_assert_int_eq(http_code(base, "POST", path, bob, NULL, NULL), 200);
    r = execute_raw(&h, id, alice, "\"approval_required\":true,", w);
    ck_assert_str_ne(sx_json_str(r, "status"), "succeeded"); /* the work dir is missing */
    cJSON_Delete(r);
    ck_assert_int_eq(mkdir(wd, 01777), 0);
    r = execute_raw(&h, id, alice, "\"approval_required\":true,", w);
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(marker_lines(&h, "ran-wd.txt"), 1);
    free(w), free(more);
    free(alice), free(bob), free(dave);
    stop(&h);
}
END_TEST

/* sxctl approvals against the same API. */
START_TEST(sxctl_approvals)
{
    sx_harness h;
    start(&h, &STORES[0], "1h", 1);
    char base[256], id[96], cmd[4096];
    api_url(&h, base, sizeof base);
    char *alice = token("alice", "[\"sre\"]");
    char *bob = token("bob", "[\"sre-leads\"]");
    id_for(id, sizeof id, "sxctl");
    cJSON *r = execute(&h, id, alice, "echo via sxctl");
    expect(r, "pending_approval", NULL);
    cJSON_Delete(r);
    snprintf(cmd, sizeof cmd, "SX_TOKEN='%s' '%s' approvals list --api-url '%s' | grep -q '%s/s'", bob,
             SX_SXCTL_BIN, base, id);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' approvals approve '%s' s --api-url '%s' --token '%s' 2>/dev/null",
             SX_SXCTL_BIN, id, base, alice);
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1); /* own request */
    snprintf(cmd, sizeof cmd, "'%s' approvals approve '%s' s --api-url '%s' --token '%s' | grep -q approved",
             SX_SXCTL_BIN, id, base, bob);
    ck_assert_int_eq(system(cmd), 0);
    r = execute(&h, id, alice, "echo via sxctl");
    expect(r, "succeeded", NULL);
    cJSON_Delete(r);
    free(alice), free(bob);
    stop(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("approval");
    TCase *tc = tcase_create("flow");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_loop_test(tc, request_approve_run_once, 0, 2);
    tcase_add_test(tc, deny_and_mismatch);
    tcase_add_loop_test(tc, parallel_approve_and_deny_one_wins, 0, 2);
    tcase_add_test(tc, four_eyes_needs_n_distinct_approvers);
    tcase_add_test(tc, expiry_and_auto_approve);
    tcase_add_test(tc, kill_9_and_restart);
    tcase_add_loop_test(tc, two_replicas_run_once, 0, 2);
    tcase_add_test(tc, sxctl_approvals);
    tcase_add_test(tc, bypasses_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
