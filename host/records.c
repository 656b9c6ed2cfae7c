/* records.c - audit records and their durable delivery (see records.h). */
#define _POSIX_C_SOURCE 200809L
#include "records.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bus.h"
#include "exec.h"
#include "log.h"
#include "sx/sx_util.h"

static void add_time(cJSON *rec)
{
    char when[40];
    sx_time_utc(when, sizeof when, 6);
    cJSON_AddStringToObject(rec, "time", when);
}

void sx_record_stamp(cJSON *rec)
{
    if (cJSON_HasObjectItem(rec, "record_id"))
        return;
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EINTR)
            break;
    }
    if (got < sizeof b) { /* no getrandom (old kernel): time and a counter, still unique here */
        static atomic_ulong counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long c = atomic_fetch_add(&counter, 1);
        memcpy(b, &ts, sizeof ts < 8 ? sizeof ts : 8);
        memcpy(b + 8, &c, sizeof c < 8 ? sizeof c : 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* UUID version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char id[37];
    snprintf(id, sizeof id,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    cJSON_AddStringToObject(rec, "record_id", id);
}

cJSON *sx_record_new_ids(const char *topic, const char *event, const char *execution_id,
                         const char *step_name, const char *runbook_id, const char *user)
{
    cJSON *rec = cJSON_CreateObject();
    add_time(rec);
    sx_record_stamp(rec);
    cJSON_AddStringToObject(rec, "topic", topic);
    cJSON_AddStringToObject(rec, "event", event);
    if (execution_id)
        cJSON_AddStringToObject(rec, "execution_id", execution_id);
    if (step_name)
        cJSON_AddStringToObject(rec, "step_name", step_name);
    if (runbook_id)
        cJSON_AddStringToObject(rec, "runbook_id", runbook_id);
    if (user)
        cJSON_AddStringToObject(rec, "user", user);
    return rec;
}

cJSON *sx_record_new(const sx_exec *e, const char *topic, const char *event)
{
    return sx_record_new_ids(topic, event, e->execution_id, e->step_name, e->runbook_id, e->user);
}

void sx_json_merge(cJSON *into, const cJSON *from)
{
    if (into == NULL || from == NULL)
        return;
    for (const cJSON *it = from->child; it; it = it->next) {
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (copy == NULL)
            continue;
        if (cJSON_GetObjectItemCaseSensitive(into, it->string))
            cJSON_ReplaceItemInObjectCaseSensitive(into, it->string, copy);
        else
            cJSON_AddItemToObject(into, it->string, copy);
    }
}

/* The bus is for anyone who subscribes: env values (which may hold tokens)
 * never go there, only their names.  The sinks apply audit.log_environment. */
static char *bus_version(cJSON *rec)
{
    cJSON *env = cJSON_GetObjectItemCaseSensitive(rec, "env");
    if (!cJSON_IsObject(env))
        return NULL;
    cJSON *names = cJSON_CreateArray();
    for (const cJSON *it = env->child; it; it = it->next)
        cJSON_AddItemToArray(names, cJSON_CreateString(it->string));
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "env");
    cJSON_AddItemToObject(rec, "env_names", names);
    return cJSON_PrintUnformatted(rec);
}

int sx_record_commit(sx_host *host, const char *topic, cJSON *rec, sx_error *err)
{
    char *json = cJSON_PrintUnformatted(rec);
    if (json == NULL) {
        cJSON_Delete(rec);
        return sx_error_set(err, "audit_unavailable", "cannot encode audit record");
    }
    int rv = sx_host_record_sinks(host, topic, json, err);
    if (rv == 0) {
        char *public_json = bus_version(rec);
        sx_bus_publish(host->bus, topic, public_json ? public_json : json);
        free(public_json);
    }
    cJSON_Delete(rec);
    free(json);
    return rv;
}

/* Every sink gets the record even when an earlier one failed: a record
 * one sink refused (e.g. the SIEM spool is full) is still kept by the
 * others.  Any failure fails the call: what the record announces must not
 * happen. */
int sx_host_record_sinks(sx_host *host, const char *topic, const char *json, sx_error *err)
{
    int rv = 0;
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_EVENT_SINK || !p->initialized)
            continue;
        const sx_sink_ops *ops = p->desc->ops;
        sx_error serr = {{0}, {0}};
        if (ops->write(p->state, topic, json, &serr) != 0) {
            sx_log(SX_LOG_ERROR, "audit", "sink %s failed to record %s: %s", p->desc->name,
                   topic, serr.message);
            if (rv == 0)
                rv = sx_error_set(err, "audit_unavailable",
                                  "audit sink %s could not record %s: %s", p->desc->name, topic,
                                  serr.message[0] ? serr.message : "unknown error");
        }
    }
    return rv;
}

int sx_host_record(sx_host *host, const char *topic, const char *json, sx_error *err)
{
    if (sx_host_record_sinks(host, topic, json, err) != 0)
        return -1;
    sx_bus_publish(host->bus, topic, json);
    return 0;
}
