/*
 * test_approval_store.c - the approval store contract (sx_approval.h),
 * run against a real store plugin (.so) through dlopen + sx_plugin_entry
 * with the mock host: SX_APPROVAL_SO names the plugin, SX_APPROVAL_TYPE its
 * storage type ("sqlite": a file in a temp dir; "postgres": the server in
 * $SX_TEST_PG_DSN).  The same cases run for every store.
 *
 * Keys are unique per test run (pid + time), so runs never see each other's
 * records and nothing needs cleaning up in a shared database.
 */
#define _GNU_SOURCE
#include "config.h"
#include "mock_host.h"
#include "sx_check_main.h"
#include "sx/sx_approval.h"
#include "sx/sx_util.h"

#include <cJSON.h>
#include <check.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SX_APPROVAL_SO
#error "SX_APPROVAL_SO must name the store plugin to test"
#endif
#ifndef SX_APPROVAL_TYPE
#error "SX_APPROVAL_TYPE must be sqlite or postgres"
#endif

static char g_dir[PATH_MAX];
static char g_run[64];          /* unique prefix of this run's keys */
static int g_key;

typedef struct store {
    void *dl;
    const sx_approval_ops *ops;
    const sx_plugin_descriptor *desc;
    void *state;
    sx_config_node *cfg;
} store;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *next_key(void)
{
    static char k[96];
    snprintf(k, sizeof k, "%s-%d", g_run, ++g_key);
    return k;
}

/* Open the plugin with `storage` YAML (a flow map) as approval.storage. */
static int store_open_with(store *s, const char *storage, sx_error *err)
{
    memset(s, 0, sizeof *s);
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "script_executor:\n  approval:\n    storage: %s\n", storage);
    sx_config_node *root = NULL;
    ck_assert_int_eq(sx_cfg_load_string(yaml, "test", &root, err), 0);
    s->cfg = root;
    sx_mock_set_config(sx_cfg_get(root, "script_executor"));
    s->dl = dlopen(SX_APPROVAL_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(s->dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry;
    *(void **)&entry = dlsym(s->dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_ptr_nonnull(entry);
    s->desc = entry();
    ck_assert_int_eq(s->desc->kind, SX_KIND_APPROVAL);
    s->ops = s->desc->ops;
    int rc = s->desc->init(sx_mock_ctx(), sx_mock_host_api(), &s->state, err);
    sx_mock_set_config(NULL);
    return rc;
}

static const char *default_storage(void)
{
    static char buf[PATH_MAX + 256];
    if (strcmp(SX_APPROVAL_TYPE, "sqlite") == 0) {
        snprintf(buf, sizeof buf, "{type: sqlite, path: '%s/approvals.db'}", g_dir);
    } else {
        const char *dsn = getenv("SX_TEST_PG_DSN");
        ck_assert_msg(dsn != NULL, "SX_TEST_PG_DSN must name the test PostgreSQL server");
        snprintf(buf, sizeof buf, "{type: postgres, dsn: '%s'}", dsn);
    }
    return buf;
}

static void store_open(store *s)
{
    sx_error err = {{0}, {0}};
    int rc = store_open_with(s, default_storage(), &err);
    ck_assert_msg(rc == 0, "init: %s: %s", err.code, err.message);
}

static void store_close(store *s)
{
    if (s->desc && s->state)
        s->desc->fini(s->state);
    if (s->dl && getenv("SX_NO_DLCLOSE") == NULL)
        dlclose(s->dl);
    sx_cfg_free(s->cfg);
    memset(s, 0, sizeof *s);
}

static cJSON *parse_free(char *text)
{
    ck_assert_ptr_nonnull(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(o);
    return o;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *REQ = "{\"requester\":\"alice\",\"digest\":\"sha256:ab\",\"script\":\"echo hi\"}";

static cJSON *create(store *s, const char *key, int n, int64_t ttl_ms, int expect_rc)
{
    char *rec = NULL;
    sx_error err = {{0}, {0}};
    int64_t now = now_ms();
    int rc = s->ops->create(s->state, key, "step-1", REQ, n, now, now + ttl_ms, &rec, &err);
    ck_assert_msg(rc == expect_rc, "create %s: rc %d (%s: %s)", key, rc, err.code, err.message);
    return parse_free(rec);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/sx-apr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_run, sizeof g_run, "t%ld-%d", (long)time(NULL), (int)getpid());
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(create_is_idempotent_and_get_returns_it)
{
    store s;
    store_open(&s);
    const char *key = next_key();
    cJSON *a = create(&s, key, 1, 60000, 0);
    ck_assert_str_eq(str(a, "status"), "pending");
    ck_assert_str_eq(str(a, "execution_id"), key);
    ck_assert_str_eq(str(cJSON_GetObjectItem(a, "request"), "requester"), "alice");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(a, "approvals")), 0);
    cJSON *b = create(&s, key, 2, 1, 1); /* exists: the stored one comes back */
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(b, "approvals_required")), 1);
    char *text = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->get(s.state, key, "step-1", now_ms(), &text, &err), 0);
    cJSON *c = parse_free(text);
    ck_assert_str_eq(str(c, "created_at"), str(a, "created_at"));
    ck_assert_int_eq(s.ops->get(s.state, key, "other-step", now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "not_found");
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(c);
    store_close(&s);
}
END_TEST

START_TEST(bad_requests_are_refused)
{
    store s;
    store_open(&s);
    char *rec = (char *)"unchanged";
    sx_error err = {{0}, {0}};
    int64_t now = now_ms();
    ck_assert_int_eq(s.ops->create(s.state, next_key(), "s", "[1,2]", 1, now, now + 1000, &rec, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_ptr_null(rec);
    ck_assert_int_eq(s.ops->create(s.state, next_key(), "s", REQ, 0, now, now + 1000, &rec, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_int_eq(s.ops->create(s.state, next_key(), "s", REQ, 1, now, now, &rec, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_int_eq(s.ops->decide(s.state, next_key(), "s", "bob", 1, NULL, now, &rec, &err), -1);
    ck_assert_str_eq(err.code, "not_found");
    store_close(&s);
}
END_TEST

START_TEST(approve_deny_and_four_eyes_counting)
{
    store s;
    store_open(&s);
    sx_error err = {{0}, {0}};
    char *text = NULL;
    /* one approver is enough */
    const char *k1 = strdup(next_key());
    cJSON_Delete(create(&s, k1, 1, 60000, 0));
    ck_assert_int_eq(s.ops->decide(s.state, k1, "step-1", "bob", 1, "ok", now_ms(), &text, &err), 0);
    cJSON *r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "approved");
    ck_assert_str_eq(str(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "approvals"), 0), "by"), "bob");
    ck_assert_ptr_nonnull(str(r, "decided_at"));
    cJSON_Delete(r);
    ck_assert_int_eq(s.ops->decide(s.state, k1, "step-1", "carol", 0, "late", now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "already_decided");
    cJSON_Delete(parse_free(text)); /* the record comes back with the refusal */
    /* two distinct approvers */
    const char *k2 = strdup(next_key());
    cJSON_Delete(create(&s, k2, 2, 60000, 0));
    ck_assert_int_eq(s.ops->decide(s.state, k2, "step-1", "bob", 1, NULL, now_ms(), &text, &err), 0);
    r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "pending");
    cJSON_Delete(r);
    ck_assert_int_eq(s.ops->decide(s.state, k2, "step-1", "bob", 1, NULL, now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "duplicate_approver");
    free(text);
    ck_assert_int_eq(s.ops->decide(s.state, k2, "step-1", "dave", 1, NULL, now_ms(), &text, &err), 0);
    r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "approved");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "approvals")), 2);
    cJSON_Delete(r);
    /* deny */
    const char *k3 = strdup(next_key());
    cJSON_Delete(create(&s, k3, 1, 60000, 0));
    ck_assert_int_eq(s.ops->decide(s.state, k3, "step-1", "bob", 0, "not today", now_ms(), &text, &err), 0);
    r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "denied");
    ck_assert_str_eq(str(r, "denied_by"), "bob");
    ck_assert_str_eq(str(r, "reason"), "not today");
    cJSON_Delete(r);
    free((void *)k1), free((void *)k2), free((void *)k3);
    store_close(&s);
}
END_TEST

START_TEST(expiry_on_the_hosts_clock)
{
    store s;
    store_open(&s);
    sx_error err = {{0}, {0}};
    char *text = NULL;
    const char *key = strdup(next_key());
    cJSON *a = create(&s, key, 1, 5000, 0);
    int64_t expires = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "expires_at_ms"));
    ck_assert_ptr_null(cJSON_GetObjectItem(a, "expired_now"));
    cJSON_Delete(a);
    /* one millisecond before: still pending */
    ck_assert_int_eq(s.ops->get(s.state, key, "step-1", expires - 1, &text, &err), 0);
    cJSON *r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "pending");
    cJSON_Delete(r);
    /* not listed as pending once due */
    ck_assert_int_eq(s.ops->list(s.state, "pending", 0, expires, &text, &err), 0);
    ck_assert_ptr_null(strstr(text, key));
    free(text);
    ck_assert_int_eq(s.ops->decide(s.state, key, "step-1", "bob", 1, NULL, expires, &text, &err), -1);
    ck_assert_str_eq(err.code, "expired");
    r = parse_free(text); /* this call stored the expiry: it says so, once */
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "expired_now")));
    cJSON_Delete(r);
    ck_assert_int_eq(s.ops->get(s.state, key, "step-1", expires + 1, &text, &err), 0);
    r = parse_free(text);
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "expired_now"));
    cJSON_Delete(r);
    /* and it stays expired even on an earlier clock (stored so) */
    ck_assert_int_eq(s.ops->get(s.state, key, "step-1", expires - 1000, &text, &err), 0);
    r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "expired");
    cJSON_Delete(r);
    free((void *)key);
    store_close(&s);
}
END_TEST

START_TEST(consume_once)
{
    store s;
    store_open(&s);
    sx_error err = {{0}, {0}};
    char *text = NULL;
    const char *key = strdup(next_key());
    cJSON_Delete(create(&s, key, 1, 60000, 0));
    ck_assert_int_eq(s.ops->consume(s.state, key, "step-1", "h1", now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "not_approved");
    free(text);
    ck_assert_int_eq(s.ops->decide(s.state, key, "step-1", "bob", 1, NULL, now_ms(), &text, &err), 0);
    free(text);
    ck_assert_int_eq(s.ops->consume(s.state, key, "step-1", "h1/r1", now_ms(), &text, &err), 0);
    cJSON *r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "consumed");
    ck_assert_str_eq(str(r, "consumed_by"), "h1/r1");
    cJSON_Delete(r);
    ck_assert_int_eq(s.ops->consume(s.state, key, "step-1", "h2/r9", now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "already_consumed");
    ck_assert_ptr_nonnull(strstr(err.message, "h1/r1"));
    free(text);
    /* a claim that did not run is given back by its claimer only */
    ck_assert_int_eq(s.ops->release(s.state, key, "step-1", "h2/r9", now_ms(), &text, &err), -1);
    ck_assert_str_eq(err.code, "not_consumed");
    free(text);
    ck_assert_int_eq(s.ops->release(s.state, key, "step-1", "h1/r1", now_ms(), &text, &err), 0);
    r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "approved");
    cJSON_Delete(r);
    ck_assert_int_eq(s.ops->consume(s.state, key, "step-1", "h3/r2", now_ms(), &text, &err), 0);
    free(text);
    free((void *)key);
    store_close(&s);
}
END_TEST

START_TEST(list_by_status_oldest_first)
{
    store s;
    store_open(&s);
    sx_error err = {{0}, {0}};
    char *text = NULL;
    char k[3][96];
    for (int i = 0; i < 3; i++) {
        snprintf(k[i], sizeof k[i], "%s", next_key());
        cJSON_Delete(create(&s, k[i], 1, 60000, 0));
    }
    ck_assert_int_eq(s.ops->decide(s.state, k[1], "step-1", "bob", 0, "no", now_ms(), &text, &err), 0);
    free(text);
    ck_assert_int_eq(s.ops->list(s.state, "pending", 0, now_ms(), &text, &err), 0);
    char *p0 = strstr(text, k[0]), *p2 = strstr(text, k[2]);
    ck_assert_ptr_nonnull(p0);
    ck_assert_ptr_nonnull(p2);
    ck_assert(p0 < p2);
    ck_assert_ptr_null(strstr(text, k[1]));
    free(text);
    ck_assert_int_eq(s.ops->list(s.state, "denied", 0, now_ms(), &text, &err), 0);
    ck_assert_ptr_nonnull(strstr(text, k[1]));
    free(text);
    ck_assert_int_eq(s.ops->list(s.state, NULL, 1, now_ms(), &text, &err), 0);
    cJSON *arr = parse_free(text);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 1);
    cJSON_Delete(arr);
    store_close(&s);
}
END_TEST

/* ---- concurrency ---------------------------------------------------- */

#define RACERS 8
typedef struct racer {
    store *s;
    const char *key;
    int approve;
    int consume;
    pthread_barrier_t *go;
    int rc;
    char code[SX_ERROR_CODE_MAX];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char name[32], *text = NULL;
    sx_error err = {{0}, {0}};
    snprintf(name, sizeof name, "approver-%p", (void *)r);
    pthread_barrier_wait(r->go);
    if (r->consume)
        r->rc = r->s->ops->consume(r->s->state, r->key, "step-1", name, now_ms(), &text, &err);
    else
        r->rc = r->s->ops->decide(r->s->state, r->key, "step-1", name, r->approve, "race", now_ms(),
                                  &text, &err);
    snprintf(r->code, sizeof r->code, "%s", err.code);
    free(text);
    return NULL;
}

static int run_race(store *s, const char *key, int consume, int *winner_approved)
{
    pthread_t t[RACERS];
    racer r[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){s, key, i % 2, consume, &go, 0, ""};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    int wins = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        if (r[i].rc == 0) {
            wins++;
            *winner_approved = r[i].approve;
        } else {
            ck_assert_msg(strcmp(r[i].code, consume ? "already_consumed" : "already_decided") == 0,
                          "loser got %s", r[i].code);
        }
    }
    pthread_barrier_destroy(&go);
    return wins;
}

START_TEST(concurrent_deciders_yield_one_decision)
{
    store s;
    store_open(&s);
    for (int round = 0; round < 5; round++) {
        char key[96];
        snprintf(key, sizeof key, "%s", next_key());
        cJSON_Delete(create(&s, key, 1, 60000, 0));
        int approved = -1;
        ck_assert_int_eq(run_race(&s, key, 0, &approved), 1);
        char *text = NULL;
        sx_error err = {{0}, {0}};
        ck_assert_int_eq(s.ops->get(s.state, key, "step-1", now_ms(), &text, &err), 0);
        cJSON *r = parse_free(text);
        ck_assert_str_eq(str(r, "status"), approved ? "approved" : "denied");
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "approvals")), approved ? 1 : 0);
        cJSON_Delete(r);
    }
    store_close(&s);
}
END_TEST

START_TEST(concurrent_consumers_one_runs)
{
    store s;
    store_open(&s);
    for (int round = 0; round < 5; round++) {
        char key[96], *text = NULL;
        sx_error err = {{0}, {0}};
        snprintf(key, sizeof key, "%s", next_key());
        cJSON_Delete(create(&s, key, 1, 60000, 0));
        ck_assert_int_eq(s.ops->decide(s.state, key, "step-1", "bob", 1, NULL, now_ms(), &text, &err), 0);
        free(text);
        int dummy;
        ck_assert_int_eq(run_race(&s, key, 1, &dummy), 1);
    }
    store_close(&s);
}
END_TEST

/* Several processes (host replicas) with their own store instance on the
 * same storage: exactly one consumes. */
START_TEST(replicas_consume_once)
{
    store s;
    store_open(&s);
    char key[96], *text = NULL;
    sx_error err = {{0}, {0}};
    snprintf(key, sizeof key, "%s", next_key());
    cJSON_Delete(create(&s, key, 1, 60000, 0));
    ck_assert_int_eq(s.ops->decide(s.state, key, "step-1", "bob", 1, NULL, now_ms(), &text, &err), 0);
    free(text);
    store_close(&s);
    int pipefd[2], ready[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    ck_assert_int_eq(pipe(ready), 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            close(pipefd[1]);
            close(ready[0]);
            store c;
            store_open(&c);
            char b = 'r';
            if (write(ready[1], &b, 1) != 1) /* my store is open */
                _exit(3);
            if (read(pipefd[0], &b, 1) < 0) /* start together */
                _exit(3);
            char claimer[32], *t = NULL;
            sx_error e = {{0}, {0}};
            snprintf(claimer, sizeof claimer, "replica-%d", i);
            int rc = c.ops->consume(c.state, key, "step-1", claimer, now_ms(), &t, &e);
            free(t);
            store_close(&c);
            _exit(rc == 0 ? 0 : strcmp(e.code, "already_consumed") == 0 ? 1 : 2);
        }
    }
    close(pipefd[0]);
    close(ready[1]);
    for (int i = 0; i < 4; i++) { /* every child has its store open */
        char b;
        ck_assert_int_eq(read(ready[0], &b, 1), 1);
    }
    close(ready[0]);
    close(pipefd[1]);   /* EOF releases all of them at once */
    int zero = 0, one = 0;
    for (int i = 0; i < 4; i++) {
        int st;
        ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
        ck_assert(WIFEXITED(st));
        ck_assert_int_le(WEXITSTATUS(st), 1);
        WEXITSTATUS(st) == 0 ? zero++ : one++;
    }
    ck_assert_int_eq(zero, 1);
    ck_assert_int_eq(one, 3);
}
END_TEST

/* A record returned by create survives kill -9 of the process. */
START_TEST(pending_survives_kill_9)
{
    char key[96];
    snprintf(key, sizeof key, "%s", next_key());
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        store c;
        store_open(&c);
        char *t = NULL;
        sx_error e = {{0}, {0}};
        int64_t now = now_ms();
        if (c.ops->create(c.state, key, "step-1", REQ, 1, now, now + 60000, &t, &e) != 0)
            _exit(2);
        raise(SIGKILL); /* no fini, no close */
        _exit(3);
    }
    int st;
    ck_assert_int_eq(waitpid(kid, &st, 0), kid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    store s;
    store_open(&s);
    char *text = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->get(s.state, key, "step-1", now_ms(), &text, &err), 0);
    cJSON *r = parse_free(text);
    ck_assert_str_eq(str(r, "status"), "pending");
    cJSON_Delete(r);
    store_close(&s);
}
END_TEST

START_TEST(wrong_storage_type_is_refused)
{
    store s;
    sx_error err = {{0}, {0}};
    const char *other = strcmp(SX_APPROVAL_TYPE, "sqlite") == 0 ? "{type: postgres}" : "{type: sqlite}";
    ck_assert_int_eq(store_open_with(&s, other, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "approval.storage.type"));
    s.state = NULL;
    store_close(&s);
    ck_assert_int_eq(store_open_with(&s, "{type: " SX_APPROVAL_TYPE ", colour: blue}", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "colour"));
    s.state = NULL;
    store_close(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("approval_store_" SX_APPROVAL_TYPE);
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_is_idempotent_and_get_returns_it);
    tcase_add_test(tc, bad_requests_are_refused);
    tcase_add_test(tc, approve_deny_and_four_eyes_counting);
    tcase_add_test(tc, expiry_on_the_hosts_clock);
    tcase_add_test(tc, consume_once);
    tcase_add_test(tc, list_by_status_oldest_first);
    tcase_add_test(tc, concurrent_deciders_yield_one_decision);
    tcase_add_test(tc, concurrent_consumers_one_runs);
    tcase_add_test(tc, replicas_consume_once);
    tcase_add_test(tc, pending_survives_kill_9);
    tcase_add_test(tc, wrong_storage_type_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
