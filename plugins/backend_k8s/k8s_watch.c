/* k8s_watch.c - watch a collection with resourceVersion, reconnect and
 * relist (k8s_watch.h). */
#define _POSIX_C_SOURCE 200809L
#include "k8s_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

/* The server ends a watch after this long; we reconnect at once. */
#define WATCH_TIMEOUT_S 300
/* Backoff between failed attempts: 200 ms doubling to 2 s. */
#define BACKOFF_MIN_S 0.2
#define BACKOFF_MAX_S 2.0

static void set_rv(sx_k8s_watch *w, const cJSON *obj)
{
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
    if (cJSON_IsString(rv) && rv->valuestring[0] && strlen(rv->valuestring) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv->valuestring);
}

static void on_line(void *user, char *line, size_t len)
{
    (void)len;
    sx_k8s_watch *w = user;
    cJSON *ev = cJSON_Parse(line);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
        cJSON_Delete(ev);
        return;
    }
    const char *t = type->valuestring;
    if (strcmp(t, "ERROR") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
        if (cJSON_IsNumber(code) && code->valueint == 410) {
            w->gone = 1;
        } else {
            sx_error_set(&w->stream_err, "kubernetes_unavailable",
                         "watching %s: the server sent an error (%d): %s", w->what,
                         cJSON_IsNumber(code) ? code->valueint : 0,
                         cJSON_IsString(msg) ? msg->valuestring : "?");
        }
    } else if (strcmp(t, "BOOKMARK") == 0) {
        set_rv(w, obj);
    } else if (!w->gone) {
        set_rv(w, obj);
        w->events++;
        w->fn(w->user, t, obj);
    }
    cJSON_Delete(ev);
}

static void on_data(void *user, const char *data, size_t len)
{
    sx_k8s_watch *w = user;
    sx_k8s_lines_feed(&w->lines, data, len);
}

static int open_stream(sx_k8s_watch *w, sx_error *err)
{
    char rv[200];
    if (sx_k8s_escape(w->rv, rv, sizeof rv) != 0)
        return sx_error_set(err, "backend_error", "resourceVersion too long");
    size_t n = strlen(w->path) + strlen(w->selector ? w->selector : "") + strlen(rv) + 200;
    char *url = malloc(n);
    if (url == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    snprintf(url, n, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s%s%s",
             w->path, WATCH_TIMEOUT_S, rv, w->selector && w->selector[0] ? "&" : "",
             w->selector ? w->selector : "");
    sx_k8s_lines_reset(&w->lines);
    w->lines.fn = on_line;
    w->lines.user = w;
    w->stream_err.code[0] = '\0';
    w->s = sx_k8s_stream_open(w->mux, w->cl, SX_K8S_WATCH, url, on_data, w, w->counts, err);
    free(url);
    return w->s ? 0 : -1;
}

/* List the collection, hand every item to fn as SYNC, then SYNCED. */
static int relist(sx_k8s_watch *w, const sx_k8s_call *call, sx_error *err)
{
    size_t n = strlen(w->path) + strlen(w->selector ? w->selector : "") + 8;
    char *url = malloc(n);
    if (url == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    snprintf(url, n, "%s%s%s", w->path, w->selector && w->selector[0] ? "?" : "",
             w->selector ? w->selector : "");
    sx_k8s_response resp;
    char what[200];
    snprintf(what, sizeof what, "list %s", w->what);
    sx_k8s_call c = {0};
    if (call)
        c = *call;
    c.counts = w->counts;
    int rc = sx_k8s_request(w->cl, SX_K8S_LIST, url, NULL, NULL, 0, &c, what, &resp, err);
    free(url);
    if (rc != 0)
        return -1;
    if (resp.status != 200) {
        sx_k8s_status_error(w->cl, &resp, what, err);
        sx_k8s_response_free(&resp);
        return -1;
    }
    cJSON *list = cJSON_Parse(resp.body);
    sx_k8s_response_free(&resp);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    if (!cJSON_IsObject(list) || !(cJSON_IsArray(items) || cJSON_IsNull(items) || items == NULL)) {
        cJSON_Delete(list);
        return sx_error_set(err, "backend_error", "%s: the server's answer is not a list", what);
    }
    w->relists++;
    w->gone = 0;
    set_rv(w, list);
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
        if (cJSON_IsObject(it))
            w->fn(w->user, "SYNC", it);
    w->fn(w->user, "SYNCED", NULL);
    cJSON_Delete(list);
    return 0;
}

int sx_k8s_watch_start(sx_k8s_watch *w, const char *rv, const sx_k8s_call *call, sx_error *err)
{
    w->s = NULL;
    memset(&w->lines, 0, sizeof w->lines);
    w->gone = 0;
    w->failures = 0;
    w->retry_at = 0;
    w->down_since = 0;
    w->reconnects = w->relists = w->events = 0;
    w->rv[0] = '\0';
    if (rv && rv[0] && strlen(rv) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv);
    else if (relist(w, call, err) != 0)
        return -1;
    return open_stream(w, err);
}

static void failed(sx_k8s_watch *w)
{
    double now = sx_now_monotonic();
    if (w->down_since == 0)
        w->down_since = now;
    double delay = BACKOFF_MIN_S;
    for (int i = 0; i < w->failures && delay < BACKOFF_MAX_S; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_S)
        delay = BACKOFF_MAX_S;
    w->failures++;
    w->retry_at = now + delay;
}

int sx_k8s_watch_pump(sx_k8s_watch *w, const sx_k8s_call *call, long down_budget_ms,
                      sx_error *err)
{
    if (w->s && w->gone) {
        /* the rest of this stream is stale: list again */
        sx_k8s_stream_close(w->s);
        w->s = NULL;
    }
    if (w->s && w->stream_err.code[0] && !sx_k8s_stream_done(w->s)) {
        sx_k8s_stream_close(w->s); /* an ERROR event: the server ends it anyway */
        w->s = NULL;
        failed(w);
    }
    /* a reconnect that got its answer ends the outage: a later break gets
     * the whole budget again, not what is left of this one */
    if (w->s && (w->failures || w->down_since) && sx_k8s_stream_status(w->s) / 100 == 2 &&
        !w->stream_err.code[0]) {
        w->failures = 0;
        w->down_since = 0;
    }
    if (w->s && sx_k8s_stream_done(w->s)) {
        long status = sx_k8s_stream_status(w->s);
        sx_error e;
        int rc = sx_k8s_stream_result(w->s, w->what, &e);
        sx_k8s_stream_close(w->s);
        w->s = NULL;
        if (status == 410) {
            w->gone = 1;
        } else if (rc == 0 && !w->stream_err.code[0]) {
            /* the server ended a good watch (its timeout, a restart):
             * carry on from the last version seen, at once */
            w->failures = 0;
            w->down_since = 0;
            w->retry_at = 0;
        } else if (status == 401 || status == 403 || status == 404 || status == 400 ||
                   status == 422) {
            return sx_error_set(err, e.code, "%s", e.message);
        } else {
            if (w->stream_err.code[0])
                e = w->stream_err;
            failed(w);
            if (sx_now_monotonic() - w->down_since > (double)down_budget_ms / 1000.0)
                return sx_error_set(err, e.code[0] ? e.code : "kubernetes_unavailable", "%s",
                                    e.message);
        }
    }
    if (w->s != NULL)
        return 0;
    if (sx_now_monotonic() < w->retry_at)
        return 0;
    w->reconnects++;
    sx_error e;
    int rc = w->gone ? relist(w, call, &e) : 0;
    if (rc == 0)
        rc = open_stream(w, &e);
    if (rc != 0) {
        if (strcmp(e.code, "kubernetes_forbidden") == 0 || strcmp(e.code, "cancelled") == 0 ||
            strcmp(e.code, "out_of_memory") == 0)
            return sx_error_set(err, e.code, "%s", e.message);
        failed(w);
        if (sx_now_monotonic() - w->down_since > (double)down_budget_ms / 1000.0)
            return sx_error_set(err, e.code, "%s", e.message);
    }
    return 0;
}

long sx_k8s_watch_wait_ms(const sx_k8s_watch *w, long max_ms)
{
    if (w->s != NULL || w->retry_at == 0)
        return w->s ? max_ms : 0;
    double left = w->retry_at - sx_now_monotonic();
    long ms = left <= 0 ? 0 : (long)(left * 1000.0) + 1;
    return ms < max_ms ? ms : max_ms;
}

void sx_k8s_watch_stop(sx_k8s_watch *w)
{
    sx_k8s_stream_close(w->s);
    w->s = NULL;
    sx_k8s_lines_free(&w->lines);
}
