/*
 * approval_postgres.c - the "approval.postgres" approval store
 * (sx_approval.h) for several host replicas sharing one PostgreSQL database
 * (libpq).  Every change is one transaction that locks the approval's row
 * (SELECT ... FOR UPDATE), applies the state machine of approval_record.c
 * and writes the row back, so two approvers deciding at once yield one
 * decision and an approved step is consumed once, whichever replica asks.
 * The record returned to the host is committed (synchronous_commit as the
 * server sets it; on by default).
 *
 * Config: script_executor.approval.storage
 *   type       must be "postgres"
 *   dsn        libpq connection string or URI (contains the password: it
 *              is never logged; describe shows host, port and database)
 *   dsn_file   alternatively, a file holding the DSN (a mounted Secret)
 *   pool_size  connections (default 4); each serves one operation at a time
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approval_record.h"
#include "sx/sx_approval.h"
#include "sx/sx_util.h"

typedef struct sx_pg_cfg {
    char *type;
    char *dsn;
    char *dsn_file;
    int64_t pool_size;
} sx_pg_cfg;

#define POPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_pg_cfg, field), desc}
static const sx_option pg_options[] = {
    POPT(SX_OPT_STRING, "type", "postgres", type, "store type: postgres for this plugin"),
    POPT(SX_OPT_STRING, "dsn", NULL, dsn, "libpq connection string or URI (never logged)"),
    POPT(SX_OPT_STRING, "dsn_file", NULL, dsn_file, "file holding the DSN (e.g. a mounted Secret)"),
    POPT(SX_OPT_INT, "pool_size", "4", pool_size, "connections to the server (1-64)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_pg_store {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_pg_cfg cfg;
    char *conninfo;             /* the DSN in use; wiped on free */
    PGconn **conns;
    int *busy;
    int n;
    pthread_mutex_t lock;
    pthread_cond_t freed;
} sx_pg_store;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS sx_approvals ("
    " execution_id text NOT NULL,"
    " step_name text NOT NULL,"
    " status text NOT NULL,"
    " created_ms bigint NOT NULL,"
    " expires_ms bigint NOT NULL,"
    " record text NOT NULL,"
    " PRIMARY KEY (execution_id, step_name));"
    "CREATE INDEX IF NOT EXISTS sx_approvals_status ON sx_approvals (status, created_ms);";

static int pg_error(PGconn *c, sx_error *err, const char *what)
{
    const char *m = c ? PQerrorMessage(c) : "no connection";
    char msg[512];
    snprintf(msg, sizeof msg, "%s", m);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    return sx_error_set(err, "approval_store_unavailable", "approval store (postgres): %s: %s", what, msg);
}

/* A new connection: the DSN's settings, a 10 s connect timeout unless the
 * DSN sets one, and server-side timeouts so that a stuck lock or a dead
 * peer fails an operation instead of hanging a step. */
static PGconn *conn_open(const char *conninfo)
{
    const char *keys[] = {"connect_timeout", "dbname", NULL};
    const char *vals[] = {"10", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1); /* dbname expanded: the DSN wins */
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "SET statement_timeout = 30000; SET lock_timeout = 10000; "
                          "SET idle_in_transaction_session_timeout = 60000"));
    return c;
}

/* Take a connection (waits up to 30 s for a free one); reconnects a
 * broken one. */
static PGconn *conn_take(sx_pg_store *s, int *slot, sx_error *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&s->lock);
    int i;
    for (;;) {
        for (i = 0; i < s->n && s->busy[i]; i++)
            ;
        if (i < s->n)
            break;
        if (pthread_cond_timedwait(&s->freed, &s->lock, &until) != 0) {
            pthread_mutex_unlock(&s->lock);
            sx_error_set(err, "approval_store_unavailable", "approval store (postgres): all %d "
                         "connections stayed busy for 30 s", s->n);
            return NULL;
        }
    }
    s->busy[i] = 1;
    pthread_mutex_unlock(&s->lock);
    PGconn *c = s->conns[i];
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        if (c)
            PQfinish(c);
        c = s->conns[i] = conn_open(s->conninfo);
        if (PQstatus(c) != CONNECTION_OK) {
            pg_error(c, err, "connect");
            pthread_mutex_lock(&s->lock);
            s->busy[i] = 0;
            pthread_cond_signal(&s->freed);
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
    }
    *slot = i;
    return c;
}

static void conn_give(sx_pg_store *s, int slot)
{
    pthread_mutex_lock(&s->lock);
    s->busy[slot] = 0;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

static int run_cmd(PGconn *c, const char *sql, sx_error *err)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? 0 : pg_error(c, err, sql);
}

/* Read (and lock) the record: 1 found, 0 absent, -1 error. */
static int row_read(PGconn *c, const char *eid, const char *step, cJSON **rec, sx_error *err)
{
    const char *p[2] = {eid, step};
    *rec = NULL;
    PGresult *r = PQexecParams(c, "SELECT record FROM sx_approvals WHERE execution_id=$1 AND step_name=$2 FOR UPDATE",
                               2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return pg_error(c, err, "select");
    }
    int found = PQntuples(r) > 0;
    if (found) {
        *rec = cJSON_Parse(PQgetvalue(r, 0, 0));
        if (*rec == NULL) {
            PQclear(r);
            return sx_error_set(err, "approval_store_unavailable",
                                "approval store (postgres): record %s/%s is not JSON", eid, step);
        }
    }
    PQclear(r);
    return found;
}

static int row_write(PGconn *c, const cJSON *rec, int64_t created_ms, sx_error *err)
{
    char *text = cJSON_PrintUnformatted(rec);
    if (text == NULL)
        return sx_error_set(err, "approval_store_unavailable", "out of memory");
    char created[24], expires[24];
    snprintf(created, sizeof created, "%lld", (long long)created_ms);
    snprintf(expires, sizeof expires, "%lld", (long long)sx_apr_expires_ms(rec));
    const char *p[6] = {cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "execution_id")),
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "step_name")),
                        sx_apr_status(rec), created, expires, text};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO sx_approvals (execution_id, step_name, status, created_ms, expires_ms, record)"
                               " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (execution_id, step_name) DO UPDATE"
                               " SET status=excluded.status, record=excluded.record",
                               6, NULL, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    free(text);
    return ok ? 0 : pg_error(c, err, "write");
}

/* Commit when ok, else roll back.  Returns 0 only when committed. */
static int finish(PGconn *c, int ok, sx_error *err)
{
    if (!ok) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    if (run_cmd(c, "COMMIT", err) != 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    return 0;
}

static int st_create(void *state, const char *eid, const char *step, const char *request_json,
                     int approvals_required, int64_t now_ms, int64_t expires_at_ms, char **record_json,
                     sx_error *err)
{
    sx_pg_store *s = state;
    *record_json = NULL;
    cJSON *fresh = sx_apr_new(eid, step, request_json, approvals_required, now_ms, expires_at_ms, err);
    if (fresh == NULL)
        return -1;
    int slot;
    PGconn *c = conn_take(s, &slot, err);
    if (c == NULL) {
        cJSON_Delete(fresh);
        return -1;
    }
    char *text = cJSON_PrintUnformatted(fresh);
    char created[24], expires[24];
    snprintf(created, sizeof created, "%lld", (long long)now_ms);
    snprintf(expires, sizeof expires, "%lld", (long long)expires_at_ms);
    const char *p[6] = {eid, step, "pending", created, expires, text};
    int ok = run_cmd(c, "BEGIN", err) == 0, existed = 0;
    cJSON *rec = NULL;
    if (ok) {
        PGresult *r = PQexecParams(c,
                                   "INSERT INTO sx_approvals (execution_id, step_name, status, created_ms, expires_ms, record)"
                                   " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                                   6, NULL, p, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        existed = ok && strcmp(PQcmdTuples(r), "0") == 0;
        PQclear(r);
        if (!ok)
            pg_error(c, err, "insert");
    }
    int expired = 0;
    if (ok && existed) {
        ok = row_read(c, eid, step, &rec, err) == 1;
        expired = ok && sx_apr_expire_if_due(rec, now_ms);
        if (expired)
            ok = row_write(c, rec, now_ms, err) == 0;
    }
    int rc = finish(c, ok, err);
    conn_give(s, slot);
    free(text);
    if (rc == 0)
        *record_json = sx_apr_result(existed ? rec : fresh, expired);
    cJSON_Delete(rec);
    cJSON_Delete(fresh);
    return rc == 0 ? existed : -1;
}

/* Read-modify-write of one record in one transaction holding its row lock
 * (approval_record.c decides); *record_json gets the record, also with a
 * refusal. */
static int modify(sx_pg_store *s, const char *eid, const char *step, int64_t now_ms,
                  const sx_apr_change *ch, char **record_json, sx_error *err)
{
    if (record_json)
        *record_json = NULL;
    int slot;
    PGconn *c = conn_take(s, &slot, err);
    if (c == NULL)
        return -1;
    cJSON *rec = NULL;
    int ok = run_cmd(c, "BEGIN", err) == 0, applied = 0, write_back = 0, expired = 0;
    sx_error aerr = {{0}, {0}};
    if (ok) {
        int found = row_read(c, eid, step, &rec, err);
        if (found == 0)
            sx_error_set(err, "not_found", "no approval for execution %s step %s", eid, step);
        ok = found == 1;
    }
    if (ok) {
        applied = sx_apr_apply(rec, ch, now_ms, &write_back, &expired, &aerr);
        if (write_back)
            ok = row_write(c, rec, now_ms, err) == 0;
    }
    int rc = finish(c, ok, err);
    conn_give(s, slot);
    if (rc == 0 && record_json)
        *record_json = sx_apr_result(rec, expired);
    cJSON_Delete(rec);
    if (rc != 0)
        return -1;
    if (applied != 0) {
        if (err)
            *err = aerr;
        return -1;
    }
    return 0;
}

static int st_get(void *state, const char *eid, const char *step, int64_t now_ms, char **record_json,
                  sx_error *err)
{
    sx_apr_change ch = {.op = SX_APR_GET};
    return modify(state, eid, step, now_ms, &ch, record_json, err);
}

static int st_decide(void *state, const char *eid, const char *step, const char *approver, int approve,
                     const char *reason, int64_t now_ms, char **record_json, sx_error *err)
{
    sx_apr_change ch = {.op = SX_APR_DECIDE, .who = approver, .approve = approve, .reason = reason};
    return modify(state, eid, step, now_ms, &ch, record_json, err);
}

static int st_consume(void *state, const char *eid, const char *step, const char *claimer,
                      int64_t now_ms, char **record_json, sx_error *err)
{
    sx_apr_change ch = {.op = SX_APR_CONSUME, .who = claimer};
    return modify(state, eid, step, now_ms, &ch, record_json, err);
}

static int st_release(void *state, const char *eid, const char *step, const char *claimer,
                      int64_t now_ms, char **record_json, sx_error *err)
{
    sx_apr_change ch = {.op = SX_APR_RELEASE, .who = claimer};
    return modify(state, eid, step, now_ms, &ch, record_json, err);
}

static int st_list(void *state, const char *status, size_t limit, int64_t now_ms, char **records_json,
                   sx_error *err)
{
    sx_pg_store *s = state;
    *records_json = NULL;
    int slot;
    PGconn *c = conn_take(s, &slot, err);
    if (c == NULL)
        return -1;
    char now[24], lim[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(lim, sizeof lim, "%zu", limit);
    /* a due pending record is not listed as pending; its expiry is stored
     * (and reported) by get/decide/consume */
    const char *p[3] = {lim, status, now};
    const char *sql = status == NULL
        ? "SELECT record FROM sx_approvals ORDER BY created_ms, execution_id, step_name"
          " LIMIT NULLIF($1::bigint, 0)"
        : strcmp(status, "pending") == 0
        ? "SELECT record FROM sx_approvals WHERE status=$2 AND expires_ms>$3::bigint"
          " ORDER BY created_ms, execution_id, step_name LIMIT NULLIF($1::bigint, 0)"
        : "SELECT record FROM sx_approvals WHERE status=$2"
          " ORDER BY created_ms, execution_id, step_name LIMIT NULLIF($1::bigint, 0)";
    int np = status == NULL ? 1 : strcmp(status, "pending") == 0 ? 3 : 2;
    PGresult *r = PQexecParams(c, sql, np, NULL, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    cJSON *out = cJSON_CreateArray();
    if (!ok)
        pg_error(c, err, "list");
    for (int i = 0; ok && i < PQntuples(r); i++) {
        cJSON *rec = cJSON_Parse(PQgetvalue(r, i, 0));
        if (rec)
            cJSON_AddItemToArray(out, rec);
    }
    PQclear(r);
    conn_give(s, slot);
    if (ok)
        *records_json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return ok ? 0 : -1;
}

static char *st_describe(void *state)
{
    sx_pg_store *s = state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "postgres");
    cJSON_AddNumberToObject(o, "pool_size", s->n);
    /* where, from the DSN (never the DSN: it holds the password); no
     * connection is taken, so describe never waits for the server */
    PQconninfoOption *opts = PQconninfoParse(s->conninfo, NULL);
    for (PQconninfoOption *op = opts; op && op->keyword; op++)
        if (op->val && (strcmp(op->keyword, "host") == 0 || strcmp(op->keyword, "port") == 0 ||
                        strcmp(op->keyword, "dbname") == 0 || strcmp(op->keyword, "user") == 0))
            cJSON_AddStringToObject(o, op->keyword, op->val);
    if (opts)
        PQconninfoFree(opts);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int st_ready(void *state, sx_error *err)
{
    sx_pg_store *s = state;
    int slot;
    PGconn *c = conn_take(s, &slot, err);
    if (c == NULL)
        return -1;
    int rc = run_cmd(c, "SELECT 1", err);
    conn_give(s, slot);
    return rc;
}

static void store_free(sx_pg_store *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->conns[i])
            PQfinish(s->conns[i]);
    free(s->conns);
    free(s->busy);
    if (s->conninfo) {
        memset(s->conninfo, 0, strlen(s->conninfo));
        free(s->conninfo);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    if (s->cfg.dsn) /* a credential */
        memset(s->cfg.dsn, 0, strlen(s->cfg.dsn));
    s->host->config_free(pg_options, &s->cfg);
    free(s);
}

static char *read_dsn_file(const char *path, sx_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        sx_error_set(err, "invalid_config", "approval.storage.dsn_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *dsn = strdup(buf);
    memset(buf, 0, sizeof buf);
    if (dsn == NULL || dsn[0] == '\0') {
        free(dsn);
        sx_error_set(err, "invalid_config", "approval.storage.dsn_file %s is empty", path);
        return NULL;
    }
    return dsn;
}

static int store_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_pg_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return sx_error_set(err, "plugin_init_failed", "out of memory");
    s->host = host;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    const sx_config_node *approval = host->config_section(ctx, "approval");
    const sx_config_node *storage = approval ? host->config_get(approval, "storage") : NULL;
    if (host->config_apply(ctx, storage, pg_options, &s->cfg, err) != 0)
        goto fail;
    if (strcmp(s->cfg.type, "postgres") != 0) {
        sx_error_set(err, "invalid_config", "approval.storage.type is '%s' but the loaded store is "
                     "approval_postgres (type postgres); load approval_sqlite for sqlite", s->cfg.type);
        goto fail;
    }
    if ((s->cfg.dsn == NULL) == (s->cfg.dsn_file == NULL)) {
        sx_error_set(err, "invalid_config", "approval.storage: set exactly one of dsn and dsn_file");
        goto fail;
    }
    if (s->cfg.pool_size < 1 || s->cfg.pool_size > 64) {
        sx_error_set(err, "invalid_config", "approval.storage.pool_size must be 1..64, not %lld",
                     (long long)s->cfg.pool_size);
        goto fail;
    }
    s->conninfo = s->cfg.dsn ? strdup(s->cfg.dsn) : read_dsn_file(s->cfg.dsn_file, err);
    if (s->conninfo == NULL)
        goto fail;
    char *why = NULL;
    PQconninfoOption *parsed = PQconninfoParse(s->conninfo, &why);
    if (parsed == NULL) { /* libpq's message may quote the password: not shown */
        if (why)
            PQfreemem(why);
        sx_error_set(err, "invalid_config", "approval.storage.%s is not a valid libpq connection "
                     "string or URI", s->cfg.dsn ? "dsn" : "dsn_file");
        goto fail;
    }
    PQconninfoFree(parsed);
    s->n = (int)s->cfg.pool_size;
    s->conns = calloc((size_t)s->n, sizeof *s->conns);
    s->busy = calloc((size_t)s->n, sizeof *s->busy);
    if (s->conns == NULL || s->busy == NULL) {
        sx_error_set(err, "plugin_init_failed", "out of memory");
        goto fail;
    }
    /* one connection now: a wrong DSN fails the start, not the first approval */
    int slot;
    PGconn *c = conn_take(s, &slot, err);
    if (c == NULL) {
        snprintf(err->code, sizeof err->code, "invalid_config");
        goto fail;
    }
    int ok = run_cmd(c, "BEGIN", err) == 0 &&
             run_cmd(c, "SELECT pg_advisory_xact_lock(727000101)", err) == 0 && /* replicas starting together */
             run_cmd(c, schema, err) == 0;
    ok = finish(c, ok, err) == 0;
    if (ok)
        host->log(ctx, SX_LOG_INFO, "approval store: postgres %s:%s/%s, %d connections", PQhost(c),
                  PQport(c), PQdb(c), s->n);
    conn_give(s, slot);
    if (!ok)
        goto fail;
    *state = s;
    return 0;
fail:
    store_free(s);
    return -1;
}

static void store_fini(void *state)
{
    store_free(state);
}

static const sx_approval_ops pg_ops = {
    .struct_size = sizeof(sx_approval_ops),
    .create = st_create,
    .get = st_get,
    .decide = st_decide,
    .consume = st_consume,
    .list = st_list,
    .describe = st_describe,
    .ready = st_ready,
    .release = st_release,
};

static const sx_plugin_descriptor pg_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "approval_postgres",
    .version = "0.1.0",
    .description = "approval store in PostgreSQL, for several host replicas (row locking)",
    .kind = SX_KIND_APPROVAL,
    .provides = "approval.postgres",
    .init = store_init,
    .fini = store_fini,
    .ops = &pg_ops,
};

SX_PLUGIN_DEFINE(pg_descriptor)
