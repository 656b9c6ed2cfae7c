/*
 * audit_file.c - the "audit.file" event sink: one JSON line per record,
 * appended and fdatasync()ed before write() returns, so a record the host
 * was told is durable survives a crash of the host or the machine.
 *
 * After a failed write or fdatasync the sink refuses every further record
 * (audit_unavailable) until the host restarts: what reached the disk is
 * then unknown, and executions must not run unaudited.
 *
 * Config (script_executor.audit): enabled, log_file, log_script_content,
 * log_script_output, log_environment, siem (the SIEM sink is a separate
 * plugin; siem.enabled without it is refused, not ignored).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx/sx_sink.h"
#include "sx/sx_util.h"

typedef struct sx_audit_cfg {
    int enabled;
    char *log_file;
    const sx_config_node *siem;
    int log_script_content;
    int log_script_output;
    int log_environment;
} sx_audit_cfg;

#define AOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_audit_cfg, field), desc}
static const sx_option audit_options[] = {
    AOPT(SX_OPT_BOOL, "enabled", "true", enabled, "write audit records"),
    AOPT(SX_OPT_STRING, "log_file", "/var/log/ocr/script-audit.log", log_file, "JSON lines file"),
    AOPT(SX_OPT_NODE, "siem", NULL, siem, "SIEM delivery (audit_siem plugin)"),
    AOPT(SX_OPT_BOOL, "log_script_content", "true", log_script_content, "keep the script text"),
    AOPT(SX_OPT_BOOL, "log_script_output", "true", log_script_output, "keep stdout/stderr"),
    AOPT(SX_OPT_BOOL, "log_environment", "false", log_environment,
         "keep env values (names are always kept)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

/* Group commit: every writer appends its line under the lock; one of them
 * (the leader) runs fdatasync for all lines written so far while the others
 * wait for `synced` to cover theirs.  Each write() still returns only when
 * its own line is durable; concurrent executions share the cost. */
typedef struct sx_audit_file {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_audit_cfg cfg;
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t synced_cond;
    uint64_t written;   /* lines appended */
    uint64_t synced;    /* lines known durable */
    int syncing;        /* a leader is in fdatasync */
    int broken;         /* errno of a failed fdatasync: after one, what reached
                           the disk is unknown, so every later write fails */
} sx_audit_file;

static void audit_destroy(sx_audit_file *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->host->config_free(audit_options, &a->cfg);
    pthread_cond_destroy(&a->synced_cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* mkdir -p of the file's directory. */
static void make_parent_dirs(const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", file);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0750);
        *p = '/';
    }
}

static int audit_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_audit_file *a = calloc(1, sizeof *a);
    if (a == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    a->host = host;
    a->ctx = ctx;
    a->fd = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->synced_cond, NULL);
    if (host->config_apply(ctx, host->config_section(ctx, "audit"), audit_options, &a->cfg, err) != 0) {
        audit_destroy(a);
        return -1;
    }
    const sx_config_node *siem_enabled = host->config_get(a->cfg.siem, "enabled");
    const char *se = siem_enabled ? host->config_scalar(siem_enabled) : NULL;
    if (se && (strcmp(se, "true") == 0 || strcmp(se, "yes") == 0 || strcmp(se, "on") == 0)) {
        audit_destroy(a);
        return sx_error_set(err, "invalid_config",
                            "audit.siem.enabled is true (line %d) but SIEM delivery is the "
                            "audit_siem plugin's job, which is not available in this build",
                            host->config_line(siem_enabled));
    }
    if (!a->cfg.enabled) {
        host->log(ctx, SX_LOG_WARN, "audit.enabled is false: no audit records are written");
        *state = a;
        return 0;
    }
    make_parent_dirs(a->cfg.log_file);
    a->fd = open(a->cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        int e = errno;
        sx_error_set(err, "invalid_config", "cannot open audit.log_file %s: %s", a->cfg.log_file,
                     strerror(e));
        audit_destroy(a);
        return -1;
    }
    /* The directory entry must be durable too, for a file we just created. */
    fsync(a->fd);
    *state = a;
    return 0;
}

static void audit_fini(void *state) { audit_destroy(state); }

/* Apply the content flags; secrets never reach this sink (the host and
 * step plugins send no secret values). */
static char *filter_record(const sx_audit_file *a, const char *json)
{
    cJSON *rec = cJSON_Parse(json);
    if (rec == NULL)
        return NULL;
    if (!a->cfg.log_script_content)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "script");
    if (!a->cfg.log_script_output) {
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "stdout");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "stderr");
    }
    cJSON *env = cJSON_GetObjectItemCaseSensitive(rec, "env");
    if (env && !a->cfg.log_environment) {
        cJSON *names = cJSON_CreateArray();
        for (const cJSON *it = env->child; it; it = it->next)
            cJSON_AddItemToArray(names, cJSON_CreateString(it->string));
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "env");
        cJSON_AddItemToObject(rec, "env_names", names);
    }
    char *out = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    return out;
}

static int audit_write(void *state, const char *topic, const char *json, sx_error *err)
{
    sx_audit_file *a = state;
    (void)topic;
    if (!a->cfg.enabled)
        return 0;
    char *line = filter_record(a, json);
    if (line == NULL)
        return sx_error_set(err, "audit_unavailable", "record is not a JSON object");
    size_t len = strlen(line);
    line[len] = '\n'; /* the NUL becomes the newline; write len + 1 bytes */
    pthread_mutex_lock(&a->lock);
    int rv = a->broken ? -1 : sx_write_all(a->fd, line, len + 1);
    int e = a->broken ? a->broken : errno;
    if (rv != 0 && !a->broken)
        a->broken = e; /* a torn line would corrupt the next one */
    uint64_t mine = rv == 0 ? ++a->written : 0;
    while (rv == 0 && a->synced < mine) {
        if (a->syncing) {
            pthread_cond_wait(&a->synced_cond, &a->lock);
            continue;
        }
        a->syncing = 1;
        uint64_t target = a->written;
        pthread_mutex_unlock(&a->lock);
        int sr = fdatasync(a->fd);
        int se = errno;
        pthread_mutex_lock(&a->lock);
        a->syncing = 0;
        a->synced = target;
        if (sr != 0)
            a->broken = se;
        pthread_cond_broadcast(&a->synced_cond);
    }
    if (rv == 0 && a->broken) { /* our line was in a failed sync */
        rv = -1;
        e = a->broken;
    }
    pthread_mutex_unlock(&a->lock);
    free(line);
    if (rv != 0)
        return sx_error_set(err, "audit_unavailable", "cannot write %s: %s", a->cfg.log_file,
                            strerror(e));
    return 0;
}

static int audit_flush(void *state)
{
    sx_audit_file *a = state;
    return a->fd >= 0 ? fsync(a->fd) : 0;
}

static const sx_sink_ops audit_ops = {
    .struct_size = sizeof(sx_sink_ops),
    .write = audit_write,
    .flush = audit_flush,
};

static const sx_plugin_descriptor audit_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "audit_file",
    .version = "0.1.0",
    .description = "audit trail as durable JSON lines in a file",
    .kind = SX_KIND_EVENT_SINK,
    .provides = "audit.file",
    .init = audit_init,
    .fini = audit_fini,
    .ops = &audit_ops,
};

SX_PLUGIN_DEFINE(audit_descriptor)
