/*
 * audit_file.c - the "audit.file" event sink: one JSON line per record,
 * hash-chained (audit_chain.h), appended and fdatasync()ed before write()
 * returns, so a record the host was told is durable survives a crash of the
 * host or the machine.  Concurrent writers share fdatasync (group commit).
 *
 * The chain continues across host restarts (audit_files.c reads the tail of
 * the current file) and across rotations: once the file reaches
 * audit.rotate_size it gets a closing "audit.rotated" record, is renamed to
 * `log_file.<first seq>`, and a new file continues the chain; the oldest
 * rotated files beyond audit.rotate_keep are deleted.
 *
 * After a failed write, fdatasync or rotation the sink refuses every further
 * record (audit_unavailable) until the host restarts: what reached the disk
 * is then unknown, and executions must not run unaudited.
 *
 * Config (script_executor.audit, audit_settings.h): enabled, log_file,
 * rotate_size, rotate_keep, log_script_content, log_script_output,
 * log_environment, siem (read by the audit_siem plugin, which must then be
 * loaded before this one so that this sink can check it is there).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_chain.h"
#include "audit_files.h"
#include "audit_settings.h"
#include "group_commit.h"
#include "sx/sx_sink.h"
#include "sx/sx_util.h"

/* Member names the chain uses: a record's own members of these names are dropped. */
static const char *const chain_reserved[] = {"seq", "prev", "hash", NULL};

typedef struct sx_audit_file {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_audit_settings cfg;
    pthread_mutex_t lock;
    sx_gcommit gc;               /* durability of appended lines */
    pthread_cond_t rotate_cond;  /* writers wait here while a rotation runs */
    int rotating;
    sx_afile_state file;         /* fd, chain head, current file's first seq and size */
} sx_audit_file;

static void audit_destroy(sx_audit_file *a)
{
    if (a->file.fd >= 0)
        close(a->file.fd);
    a->host->config_free(sx_audit_options, &a->cfg);
    sx_gcommit_destroy(&a->gc);
    pthread_cond_destroy(&a->rotate_cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* A record of the sink itself (rotation, recovery) as a JSON object text. */
static char *own_record(const char *topic, const char *event, cJSON *fields)
{
    cJSON *o = fields ? fields : cJSON_CreateObject();
    char when[40];
    sx_time_utc(when, sizeof when, 6);
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "plugin", "audit_file");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Append one chained line; lock held.  Returns the line's group-commit
 * ticket, or 0 with errno (the sink is then failed). */
static uint64_t append_locked(sx_audit_file *a, const char *body)
{
    sx_chain_head next = a->file.head;
    size_t len = 0;
    char *line = sx_chain_line(&next, body, &len);
    if (line == NULL) {
        errno = ENOMEM;
        return 0;
    }
    int rv = sx_write_all(a->file.fd, line, len);
    int e = errno;
    free(line);
    if (rv != 0) {
        sx_gcommit_fail(&a->gc, e); /* a torn line would corrupt the next one */
        errno = e;
        return 0;
    }
    a->file.head = next;
    a->file.size += len;
    if (a->file.first_seq == 0)
        a->file.first_seq = next.seq;
    return sx_gcommit_ticket(&a->gc);
}

static int fail_locked(sx_audit_file *a, int e, const char *what)
{
    sx_gcommit_fail(&a->gc, e);
    a->host->log(a->ctx, SX_LOG_ERROR, "audit file %s: %s failed: %s; no more records are "
                 "accepted until a restart", a->cfg.log_file, what, strerror(a->gc.error));
    return -1;
}

/* Close the current file with an audit.rotated record, rename it to
 * log_file.<first seq>, continue the chain in a new file, prune.  Lock
 * held; writers are held off by `rotating`. */
static int rotate_locked(sx_audit_file *a)
{
    const char *path = a->cfg.log_file;
    char rotated[PATH_MAX + 32];
    sx_afile_rotated_name(path, a->file.first_seq, rotated, sizeof rotated);
    const char *slash = strrchr(rotated, '/');
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "rotated_to", slash ? slash + 1 : rotated);
    cJSON_AddNumberToObject(f, "keeps_from_seq",
                            (double)sx_afile_keeps_from(path, a->file.first_seq,
                                                        a->cfg.rotate_keep));
    char *body = own_record("audit.rotated", "audit_rotated", f);
    if (body == NULL)
        return fail_locked(a, ENOMEM, "rotation");
    uint64_t ticket = append_locked(a, body);
    free(body);
    if (ticket == 0)
        return fail_locked(a, errno, "writing the rotation record");
    if (sx_gcommit_sync_all(&a->gc, &a->lock, &a->file.fd) != 0)
        return fail_locked(a, a->gc.error, "fdatasync");
    if (sx_afile_rename(path, rotated) != 0 || sx_afile_sync_dir(path) != 0)
        return fail_locked(a, errno, "renaming the file for rotation");
    sx_afile_state fresh;
    sx_error err = {{0}, {0}};
    if (sx_afile_open(path, &fresh, &err) != 0) {
        a->host->log(a->ctx, SX_LOG_ERROR, "%s", err.message);
        return fail_locked(a, EIO, "opening the new file after rotation");
    }
    close(a->file.fd);
    a->file.fd = fresh.fd;
    a->file.size = fresh.size;
    a->file.first_seq = fresh.first_seq;
    /* fresh.head was read back from the file just rotated: the same head */
    if (sx_afile_prune(path, a->cfg.rotate_keep) < 0)
        a->host->log(a->ctx, SX_LOG_WARN, "audit file %s: cannot delete old rotated files: %s",
                     path, strerror(errno));
    return 0;
}

static int audit_write(void *state, const char *topic, const char *json, sx_error *err)
{
    sx_audit_file *a = state;
    (void)topic;
    if (!a->cfg.enabled)
        return 0;
    char *body = sx_audit_filter(&a->cfg, json, chain_reserved);
    if (body == NULL)
        return sx_error_set(err, "audit_unavailable", "record is not a JSON object");
    pthread_mutex_lock(&a->lock);
    while (a->rotating)
        pthread_cond_wait(&a->rotate_cond, &a->lock);
    int e = a->gc.error;
    uint64_t ticket = e ? 0 : append_locked(a, body);
    if (!e && ticket == 0)
        e = errno ? errno : EIO;
    if (!e)
        e = sx_gcommit_wait(&a->gc, &a->lock, &a->file.fd, ticket);
    if (!e && a->file.regular && a->cfg.rotate_size > 0 &&
        a->file.size >= (uint64_t)a->cfg.rotate_size && !a->rotating) {
        a->rotating = 1;
        rotate_locked(a); /* a failure fails later records; this one is durable */
        a->rotating = 0;
        pthread_cond_broadcast(&a->rotate_cond);
    }
    pthread_mutex_unlock(&a->lock);
    free(body);
    if (e)
        return sx_error_set(err, "audit_unavailable", "cannot write %s: %s", a->cfg.log_file,
                            strerror(e));
    return 0;
}

static int audit_flush(void *state)
{
    sx_audit_file *a = state;
    return a->file.fd >= 0 ? fsync(a->file.fd) : 0;
}

static int audit_ready(void *state, sx_error *err)
{
    sx_audit_file *a = state;
    pthread_mutex_lock(&a->lock);
    int e = a->gc.error;
    pthread_mutex_unlock(&a->lock);
    if (e)
        return sx_error_set(err, "audit_unavailable", "audit file %s failed: %s",
                            a->cfg.log_file, strerror(e));
    return 0;
}

/* audit.siem.enabled: true needs the audit_siem plugin, initialised before
 * this one; refused, not ignored. */
static int check_siem(sx_audit_file *a, sx_error *err)
{
    const sx_host_api *h = a->host;
    const sx_config_node *en = h->config_get(a->cfg.siem, "enabled");
    const char *v = en ? h->config_scalar(en) : NULL;
    if (!(v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0)))
        return 0;
    sx_service svc;
    if (h->service_find(a->ctx, SX_KIND_EVENT_SINK, "audit.siem", &svc) == 0)
        return 0;
    return sx_error_set(err, "invalid_config",
                        "audit.siem.enabled is true (line %d) but the audit_siem plugin is not "
                        "loaded before audit_file: list audit_siem before audit_file in "
                        "plugins.load",
                        h->config_line(en));
}

/* After an incomplete last line was cut off, or an unchained file moved
 * aside: say so in the chain. */
static int record_recovery(sx_audit_file *a, sx_error *err)
{
    cJSON *f = cJSON_CreateObject();
    if (a->file.torn_bytes > 0) {
        cJSON_AddNumberToObject(f, "torn_bytes", (double)a->file.torn_bytes);
        cJSON_AddStringToObject(f, "torn_sha256", a->file.torn_sha256);
        cJSON_AddStringToObject(f, "reason", "an incomplete last record (a write cut by a "
                                             "crash, never acknowledged) was removed at start-up");
        a->host->log(a->ctx, SX_LOG_WARN,
                     "audit file %s: removed an incomplete last record of %" PRIu64
                     " bytes (a write cut by a crash; sha256 %s)",
                     a->cfg.log_file, a->file.torn_bytes, a->file.torn_sha256);
    } else {
        const char *slash = strrchr(a->file.moved_to, '/');
        cJSON_AddStringToObject(f, "moved_unchained_file", slash ? slash + 1 : a->file.moved_to);
        cJSON_AddStringToObject(f, "reason", "the file held records without the hash chain (an "
                                             "older format): it was moved aside and a new chain "
                                             "begins");
        a->host->log(a->ctx, SX_LOG_WARN,
                     "audit file %s held records without the hash chain: moved to %s, a new "
                     "chain begins",
                     a->cfg.log_file, a->file.moved_to);
    }
    char *body = own_record("audit.recovered", "audit_recovered", f);
    pthread_mutex_lock(&a->lock);
    uint64_t ticket = body ? append_locked(a, body) : 0;
    int e = ticket ? sx_gcommit_wait(&a->gc, &a->lock, &a->file.fd, ticket) : (errno ? errno : EIO);
    pthread_mutex_unlock(&a->lock);
    free(body);
    if (e)
        return sx_error_set(err, "invalid_config", "cannot write %s: %s", a->cfg.log_file,
                            strerror(e));
    return 0;
}

static int audit_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_audit_file *a = calloc(1, sizeof *a);
    if (a == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    a->host = host;
    a->ctx = ctx;
    a->file.fd = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->rotate_cond, NULL);
    sx_gcommit_init(&a->gc);
    if (host->config_apply(ctx, host->config_section(ctx, "audit"), sx_audit_options, &a->cfg,
                           err) != 0 ||
        check_siem(a, err) != 0) {
        audit_destroy(a);
        return -1;
    }
    if (a->cfg.rotate_keep < 0) {
        sx_error_set(err, "invalid_config", "audit.rotate_keep must be 0 (keep all) or more");
        audit_destroy(a);
        return -1;
    }
    if (!a->cfg.enabled) {
        host->log(ctx, SX_LOG_WARN, "audit.enabled is false: no audit records are written");
        *state = a;
        return 0;
    }
    if (sx_afile_open(a->cfg.log_file, &a->file, err) != 0 ||
        ((a->file.torn_bytes > 0 || a->file.moved_to[0]) && record_recovery(a, err) != 0)) {
        audit_destroy(a);
        return -1;
    }
    host->log(ctx, SX_LOG_INFO, "audit file %s: chain continues after seq %" PRIu64,
              a->cfg.log_file, a->file.head.seq);
    *state = a;
    return 0;
}

static void audit_fini(void *state) { audit_destroy(state); }

static const sx_sink_ops audit_ops = {
    .struct_size = sizeof(sx_sink_ops),
    .write = audit_write,
    .flush = audit_flush,
    .ready = audit_ready,
};

static const sx_plugin_descriptor audit_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "audit_file",
    .version = "0.2.0",
    .description = "audit trail as durable, hash-chained JSON lines in a rotated file",
    .kind = SX_KIND_EVENT_SINK,
    .provides = "audit.file",
    .init = audit_init,
    .fini = audit_fini,
    .ops = &audit_ops,
};

SX_PLUGIN_DEFINE(audit_descriptor)
