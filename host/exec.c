/* exec.c - one execution in flight (see exec.h). */
#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "records.h"
#include "sx/sx_util.h"
#include "utf8.h"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int sx_exec_create(sx_host *host, const char *execution_id, const char *step_name,
                   const char *runbook_id, const char *user, sx_exec **out, sx_error *err)
{
    sx_exec *e = calloc(1, sizeof *e);
    if (e == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    e->host = host;
    e->execution_id = strdup(execution_id);
    e->step_name = strdup(step_name);
    e->runbook_id = dup_or_null(runbook_id);
    e->user = dup_or_null(user);
    e->info = cJSON_CreateObject();
    e->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    e->accepted_at = sx_now_monotonic();
    pthread_mutex_init(&e->lock, NULL);
    if (!e->execution_id || !e->step_name || !e->info || e->cancel_fd < 0) {
        sx_exec_destroy(e);
        return sx_error_set(err, "out_of_memory", "cannot create execution: %s", strerror(errno));
    }
    *out = e;
    return 0;
}

void sx_exec_destroy(sx_exec *e)
{
    if (e == NULL)
        return;
    if (e->cancel_fd >= 0)
        close(e->cancel_fd);
    sx_capbuf_free(&e->out);
    sx_capbuf_free(&e->err);
    cJSON_Delete(e->info);
    pthread_mutex_destroy(&e->lock);
    free(e->execution_id);
    free(e->step_name);
    free(e->runbook_id);
    free(e->user);
    free(e);
}

void sx_exec_cancel(sx_exec *e)
{
    if (atomic_exchange(&e->cancelled, 1) == 0) {
        uint64_t one = 1;
        ssize_t w = write(e->cancel_fd, &one, sizeof one);
        (void)w;
    }
}

/* Both captures are sized by the executor bound through exec_set_info, or
 * the default; caller holds the lock. */
static void ensure_capture(sx_exec *e)
{
    if (e->capture_ready)
        return;
    size_t cap = e->executor ? (size_t)e->executor->max_output_bytes
                             : (size_t)SX_DEFAULT_MAX_OUTPUT_BYTES;
    sx_capbuf_init(&e->out, cap);
    sx_capbuf_init(&e->err, cap);
    e->capture_ready = 1;
}

void sx_exec_output_cb(sx_exec *e, sx_stream stream, const char *data, size_t len)
{
    if (len == 0)
        return;
    pthread_mutex_lock(&e->lock);
    ensure_capture(e);
    sx_capbuf_append(stream == SX_STREAM_STDERR ? &e->err : &e->out, data, len);
    pthread_mutex_unlock(&e->lock);

    /* Live output for subscribers; best effort by design. */
    char *text = sx_utf8_sanitize(data, len);
    cJSON *ev = cJSON_CreateObject();
    if (text && ev) {
        cJSON_AddStringToObject(ev, "execution_id", e->execution_id);
        cJSON_AddStringToObject(ev, "step_name", e->step_name);
        cJSON_AddStringToObject(ev, "stream", stream == SX_STREAM_STDERR ? "stderr" : "stdout");
        cJSON_AddStringToObject(ev, "data", text);
        char *json = cJSON_PrintUnformatted(ev);
        if (json)
            sx_bus_publish(e->host->bus, "exec.output", json);
        free(json);
    }
    cJSON_Delete(ev);
    free(text);
}

int sx_exec_cancel_fd_cb(sx_exec *e) { return e->cancel_fd; }

int sx_exec_cancelled_cb(sx_exec *e) { return atomic_load(&e->cancelled); }

/* The spec's execution_start log fields (execution_id, user, runbook_id,
 * image) and a few more, from the start record (values of env never). */
static char *start_log_fields(const cJSON *rec)
{
    static const char *const keep[] = {"execution_id", "step_name", "user", "runbook_id", "image",
                                       "executor", "backend", "interpreter", "script_hash", NULL};
    cJSON *f = cJSON_CreateObject();
    for (const char *const *k = keep; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, *k);
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(f, *k, v->valuestring);
    }
    char *text = cJSON_PrintUnformatted(f);
    cJSON_Delete(f);
    return text;
}

int sx_exec_started_cb(sx_exec *e, const char *extra_json, sx_error *err)
{
    cJSON *extra = NULL;
    if (extra_json) {
        extra = cJSON_Parse(extra_json);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            return sx_error_set(err, "backend_error", "exec_started: extra is not a JSON object");
        }
    }
    if (atomic_load(&e->cancelled)) {
        cJSON_Delete(extra);
        return sx_error_set(err, "cancelled", "execution was cancelled before it started");
    }
    cJSON *rec = sx_record_new(e, "exec.started", "execution_start");
    cJSON *info = sx_exec_info_copy(e);
    sx_json_merge(rec, info);
    sx_json_merge(rec, extra);
    if (!cJSON_HasObjectItem(rec, "image")) /* one shape for every backend */
        cJSON_AddNullToObject(rec, "image");
    cJSON_Delete(info);
    cJSON_Delete(extra);
    char *log_fields = start_log_fields(rec);
    int rv = sx_record_commit(e->host, "exec.started", rec, err);
    if (rv == 0) {
        atomic_store(&e->started, 1);
        sx_log_event(SX_LOG_INFO, "host", "execution_start", log_fields,
                     "step %s/%s started", e->execution_id, e->step_name);
    }
    free(log_fields);
    return rv;
}

int sx_exec_set_info_cb(sx_exec *e, const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return -1;
    }
    pthread_mutex_lock(&e->lock);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(obj, "executor");
    if (cJSON_IsString(ex) && !e->capture_ready)
        e->executor = sx_host_executor(e->host, ex->valuestring);
    sx_json_merge(e->info, obj);
    pthread_mutex_unlock(&e->lock);
    cJSON_Delete(obj);
    return 0;
}

cJSON *sx_exec_info_copy(sx_exec *e)
{
    pthread_mutex_lock(&e->lock);
    cJSON *copy = cJSON_Duplicate(e->info, 1);
    pthread_mutex_unlock(&e->lock);
    return copy;
}

static void add_stream(cJSON *output, const char *name, sx_capbuf *b)
{
    size_t len = 0;
    char *raw = b->cap || b->total ? sx_capbuf_contents(b, &len) : NULL;
    char *text = sx_utf8_sanitize(raw ? raw : "", len);
    char key[32];
    cJSON_AddStringToObject(output, name, text ? text : "");
    snprintf(key, sizeof key, "%s_truncated", name);
    cJSON_AddBoolToObject(output, key, sx_capbuf_dropped(b) > 0);
    snprintf(key, sizeof key, "%s_dropped_bytes", name);
    cJSON_AddNumberToObject(output, key, (double)sx_capbuf_dropped(b));
    free(raw);
    free(text);
}

void sx_exec_add_output(sx_exec *e, cJSON *output)
{
    pthread_mutex_lock(&e->lock);
    ensure_capture(e);
    add_stream(output, "stdout", &e->out);
    add_stream(output, "stderr", &e->err);
    pthread_mutex_unlock(&e->lock);
}
