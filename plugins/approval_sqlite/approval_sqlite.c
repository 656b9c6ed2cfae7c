/*
 * approval_sqlite.c - the "approval.sqlite" approval store (sx_approval.h):
 * the embedded default.  One SQLite database file; every change is one
 * BEGIN IMMEDIATE transaction (read the record, apply the state machine of
 * approval_record.c, write it back), so concurrent deciders in this process
 * or in other processes sharing the file see one decision.  WAL journal,
 * synchronous=FULL: a record returned to the host is on disk, so a pending
 * approval survives kill -9 of the host (and of the machine).
 *
 * Config: script_executor.approval.storage
 *   type          must be "sqlite"
 *   path          database file (default /var/lib/script-executor/approvals.db)
 *   busy_timeout  how long to wait for another writer's lock (default 5s)
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "approval_record.h"
#include "sx/sx_approval.h"
#include "sx/sx_util.h"

typedef struct sx_sqlite_cfg {
    char *type;
    char *path;
    int64_t busy_timeout_ms;
} sx_sqlite_cfg;

#define QOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_sqlite_cfg, field), desc}
static const sx_option sqlite_options[] = {
    QOPT(SX_OPT_STRING, "type", "sqlite", type, "store type: sqlite for this plugin"),
    QOPT(SX_OPT_STRING, "path", "/var/lib/script-executor/approvals.db", path,
         "SQLite database file (its directory must exist and be writable)"),
    QOPT(SX_OPT_DURATION, "busy_timeout", "5s", busy_timeout_ms,
         "longest wait for another writer's lock (other threads or host replicas)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_sqlite_store {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_sqlite_cfg cfg;
    sqlite3 *db;
    pthread_mutex_t lock;       /* one transaction at a time on the connection */
} sx_sqlite_store;

static int db_error(sx_sqlite_store *s, sx_error *err, const char *what)
{
    return sx_error_set(err, "approval_store_unavailable", "approval store %s: %s: %s", s->cfg.path,
                        what, sqlite3_errmsg(s->db));
}

static int exec_sql(sx_sqlite_store *s, const char *sql, sx_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sx_error_set(err, "approval_store_unavailable", "approval store %s: %s: %s", s->cfg.path,
                     sql, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS sx_approvals ("
    " execution_id TEXT NOT NULL,"
    " step_name TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " record TEXT NOT NULL,"
    " PRIMARY KEY (execution_id, step_name));"
    "CREATE INDEX IF NOT EXISTS sx_approvals_status ON sx_approvals (status, created_ms);";

/* Read the record for the key inside the current transaction: 1 found (*rec
 * set), 0 absent, -1 error. */
static int row_read(sx_sqlite_store *s, const char *eid, const char *step, cJSON **rec, sx_error *err)
{
    sqlite3_stmt *st = NULL;
    *rec = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT record FROM sx_approvals WHERE execution_id=?1 AND step_name=?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(s, err, "prepare");
    sqlite3_bind_text(st, 1, eid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *rec = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
        found = 1;
        if (*rec == NULL) {
            sqlite3_finalize(st);
            return sx_error_set(err, "approval_store_unavailable",
                                "approval store %s: record %s/%s is not JSON", s->cfg.path, eid, step);
        }
    } else if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_error(s, err, "select");
    }
    sqlite3_finalize(st);
    return found;
}

/* Insert or replace the record inside the current transaction. */
static int row_write(sx_sqlite_store *s, const cJSON *rec, int64_t created_ms, sx_error *err)
{
    char *text = cJSON_PrintUnformatted(rec);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (text == NULL)
        return sx_error_set(err, "approval_store_unavailable", "out of memory");
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO sx_approvals (execution_id, step_name, status, created_ms, expires_ms, record)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (execution_id, step_name) DO UPDATE"
                           " SET status=excluded.status, record=excluded.record",
                           -1, &st, NULL) != SQLITE_OK) {
        free(text);
        return db_error(s, err, "prepare");
    }
    sqlite3_bind_text(st, 1, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "execution_id")),
                      -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "step_name")),
                      -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sx_apr_status(rec), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, created_ms);
    sqlite3_bind_int64(st, 5, sx_apr_expires_ms(rec));
    sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else
        db_error(s, err, "write");
    sqlite3_finalize(st);
    free(text);
    return rc;
}

static int begin(sx_sqlite_store *s, sx_error *err)
{
    pthread_mutex_lock(&s->lock);
    if (exec_sql(s, "BEGIN IMMEDIATE", err) != 0) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    return 0;
}

/* Commit when ok, else roll back; releases the lock.  Returns ok ? 0 : -1
 * (or -1 when the commit itself failed, with err). */
static int end(sx_sqlite_store *s, int ok, sx_error *err)
{
    int rc = ok ? 0 : -1;
    if (ok) {
        if (exec_sql(s, "COMMIT", err) != 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            rc = -1;
        }
    } else {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int st_create(void *state, const char *eid, const char *step, const char *request_json,
                     int approvals_required, int64_t now_ms, int64_t expires_at_ms, char **record_json,
                     sx_error *err)
{
    sx_sqlite_store *s = state;
    *record_json = NULL;
    cJSON *fresh = sx_apr_new(eid, step, request_json, approvals_required, now_ms, expires_at_ms, err);
    if (fresh == NULL)
        return -1;
    if (begin(s, err) != 0) {
        cJSON_Delete(fresh);
        return -1;
    }
    cJSON *rec = NULL;
    int found = row_read(s, eid, step, &rec, err), ok = found >= 0, existed = found == 1;
    int expired = ok && existed && sx_apr_expire_if_due(rec, now_ms);
    if (expired)
        ok = row_write(s, rec, now_ms, err) == 0;
    if (ok && !existed) {
        ok = row_write(s, fresh, now_ms, err) == 0;
        rec = fresh;
        fresh = NULL;
    }
    int rc = end(s, ok, err);
    if (rc == 0)
        *record_json = sx_apr_result(rec, expired);
    cJSON_Delete(rec);
    cJSON_Delete(fresh);
    return rc == 0 ? (existed ? 1 : 0) : -1;
}

/* Read-modify-write of one record in one transaction (approval_record.c
 * decides); *record_json gets the record, also with a refusal. */
static int modify(sx_sqlite_store *s, const char *eid, const char *step, int64_t now_ms,
                  const sx_apr_change *ch, char **record_json, sx_error *err)
{
    if (record_json)
        *record_json = NULL;
    if (begin(s, err) != 0)
        return -1;
    cJSON *rec = NULL;
    int found = row_read(s, eid, step, &rec, err);
    if (found <= 0) {
        if (found == 0)
            sx_error_set(err, "not_found", "no approval for execution %s step %s", eid, step);
        end(s, 0, NULL);
        return -1;
    }
    sx_error aerr = {{0}, {0}};
    int write_back, expired;
    int applied = sx_apr_apply(rec, ch, now_ms, &write_back, &expired, &aerr);
    int ok = !write_back || row_write(s, rec, now_ms, err) == 0;
    int rc = end(s, ok, err);
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
    sx_sqlite_store *s = state;
    *records_json = NULL;
    /* a pending record that is due is not pending any more, but its
     * expiry is stored (and reported) by get/decide/consume, not here */
    const char *sql = status == NULL ? "SELECT record FROM sx_approvals ORDER BY created_ms, rowid"
                    : strcmp(status, "pending") == 0
                        ? "SELECT record FROM sx_approvals WHERE status=?1 AND expires_ms>?2"
                          " ORDER BY created_ms, rowid"
                        : "SELECT record FROM sx_approvals WHERE status=?1 ORDER BY created_ms, rowid";
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(s, err, "prepare");
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    if (status) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        if (strcmp(status, "pending") == 0)
            sqlite3_bind_int64(st, 2, now_ms);
    }
    cJSON *out = cJSON_CreateArray();
    size_t n = 0;
    int rc;
    while ((limit == 0 || n < limit) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *r = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
        if (r) {
            cJSON_AddItemToArray(out, r);
            n++;
        }
    }
    int ok = limit != 0 && n >= limit ? 1 : rc == SQLITE_DONE;
    if (!ok)
        db_error(s, err, "list");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    if (ok)
        *records_json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return ok ? 0 : -1;
}

static char *st_describe(void *state)
{
    sx_sqlite_store *s = state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "sqlite");
    cJSON_AddStringToObject(o, "path", s->cfg.path);
    cJSON_AddNumberToObject(o, "busy_timeout_ms", (double)s->cfg.busy_timeout_ms);
    cJSON_AddStringToObject(o, "sqlite_version", sqlite3_libversion());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int st_ready(void *state, sx_error *err)
{
    sx_sqlite_store *s = state;
    pthread_mutex_lock(&s->lock);
    int rc = exec_sql(s, "SELECT count(*) FROM sx_approvals WHERE 0", err);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void store_free(sx_sqlite_store *s)
{
    if (s == NULL)
        return;
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    s->host->config_free(sqlite_options, &s->cfg);
    free(s);
}

static int store_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return sx_error_set(err, "plugin_init_failed", "out of memory");
    s->host = host;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    const sx_config_node *approval = host->config_section(ctx, "approval");
    const sx_config_node *storage = approval ? host->config_get(approval, "storage") : NULL;
    if (host->config_apply(ctx, storage, sqlite_options, &s->cfg, err) != 0) {
        store_free(s);
        return -1;
    }
    if (strcmp(s->cfg.type, "sqlite") != 0) {
        sx_error_set(err, "invalid_config", "approval.storage.type is '%s' but the loaded store is "
                     "approval_sqlite (type sqlite); load approval_postgres for postgres", s->cfg.type);
        store_free(s);
        return -1;
    }
    if (sqlite3_open_v2(s->cfg.path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        sx_error_set(err, "invalid_config", "approval.storage.path %s: %s", s->cfg.path,
                     s->db ? sqlite3_errmsg(s->db) : "cannot open");
        store_free(s);
        return -1;
    }
    /* the requests (scripts, env names, requesters) are for the host and
     * approvers only; the -wal and -shm files take the database's mode */
    if (chmod(s->cfg.path, 0600) != 0)
        host->log(ctx, SX_LOG_WARN, "approval store %s: chmod 0600: %s", s->cfg.path, strerror(errno));
    sqlite3_busy_timeout(s->db, (int)s->cfg.busy_timeout_ms);
    if (exec_sql(s, "PRAGMA journal_mode=WAL", err) != 0 || exec_sql(s, "PRAGMA synchronous=FULL", err) != 0 ||
        exec_sql(s, schema, err) != 0) {
        if (err)
            snprintf(err->code, sizeof err->code, "invalid_config");
        store_free(s);
        return -1;
    }
    host->log(ctx, SX_LOG_INFO, "approval store: sqlite %s (SQLite %s)", s->cfg.path, sqlite3_libversion());
    *state = s;
    return 0;
}

static void store_fini(void *state)
{
    store_free(state);
}

static const sx_approval_ops sqlite_ops = {
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

static const sx_plugin_descriptor sqlite_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "approval_sqlite",
    .version = "0.1.0",
    .description = "approval store in an SQLite file (the embedded default)",
    .kind = SX_KIND_APPROVAL,
    .provides = "approval.sqlite",
    .init = store_init,
    .fini = store_fini,
    .ops = &sqlite_ops,
};

SX_PLUGIN_DEFINE(sqlite_descriptor)
