/* k8s_logs.c - follow a container's log, exactly once (k8s_logs.h). */
#define _GNU_SOURCE /* strcasestr */
#include "k8s_logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sx/sx_util.h"

#define RETRY_MIN_S 0.2
#define RETRY_MAX_S 2.0

static void on_data(void *user, const char *data, size_t len)
{
    sx_k8s_log *l = user;
    /* a resumed attempt repeats what was delivered: drop that part */
    size_t before = l->seen;
    l->seen += len;
    if (l->seen <= l->delivered)
        return;
    size_t skip = before < l->delivered ? l->delivered - before : 0;
    l->emit(l->user, l->which == SX_K8S_LOG_STDERR ? 2 : 1, data + skip, len - skip);
    l->delivered += len - skip;
}

int sx_k8s_log_open(sx_k8s_log *l, const char *pod, sx_error *err)
{
    sx_k8s_log_close(l);
    char epod[600];
    if (sx_k8s_escape(pod, epod, sizeof epod) != 0)
        return sx_error_set(err, "backend_error", "pod name too long");
    if (strcmp(l->pod, pod) != 0) {
        /* another pod (a retry of the Job): its log starts afresh */
        snprintf(l->pod, sizeof l->pod, "%s", pod);
        l->delivered = 0;
    }
    char path[1400];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/log?container=%s&follow=true%s", l->ns,
             epod, l->container,
             l->which == SX_K8S_LOG_STDOUT   ? "&stream=Stdout"
             : l->which == SX_K8S_LOG_STDERR ? "&stream=Stderr" : "");
    l->seen = 0;
    l->attempts++;
    l->s = sx_k8s_stream_open(l->mux, l->cl, SX_K8S_LOG, path, on_data, l, l->counts, err);
    if (l->s == NULL)
        return -1;
    l->state = SX_K8S_LOG_STREAMING;
    return 0;
}

static void retry_later(sx_k8s_log *l)
{
    double delay = RETRY_MIN_S;
    for (int i = 1; i < l->attempts && delay < RETRY_MAX_S; i++)
        delay *= 2;
    l->retry_at = sx_now_monotonic() + (delay > RETRY_MAX_S ? RETRY_MAX_S : delay);
}

sx_k8s_log_state sx_k8s_log_poll(sx_k8s_log *l)
{
    if (l->s == NULL || !sx_k8s_stream_done(l->s))
        return l->state;
    long status = sx_k8s_stream_status(l->s);
    sx_error e;
    int rc = sx_k8s_stream_result(l->s, "read the container's log", &e);
    const char *body = sx_k8s_stream_error_body(l->s);
    if (rc == 0) {
        l->state = SX_K8S_LOG_EOF;
        l->attempts = 0;
    } else if ((status == 400 || status == 422) && l->which != SX_K8S_LOG_BOTH &&
               strcasestr(body, "stream") != NULL && strcasestr(body, "waiting") == NULL) {
        l->state = SX_K8S_LOG_NO_STREAM_PARAM;
        l->last_err = e;
    } else if (status == 400 || status == 404) {
        /* "container ... is waiting to start", or the pod's log is not
         * there yet: ask again on the next pod update */
        l->state = SX_K8S_LOG_NOT_READY;
        l->last_err = e;
        retry_later(l);
    } else if (status == 401 || status == 403) {
        l->state = SX_K8S_LOG_FAILED;
        l->last_err = e;
    } else {
        l->state = SX_K8S_LOG_RETRY; /* transport, 5xx */
        l->last_err = e;
        retry_later(l);
    }
    sx_k8s_stream_close(l->s);
    l->s = NULL;
    return l->state;
}

void sx_k8s_log_close(sx_k8s_log *l)
{
    if (l->s) {
        sx_k8s_stream_close(l->s);
        l->s = NULL;
        if (l->state == SX_K8S_LOG_STREAMING)
            l->state = SX_K8S_LOG_IDLE;
    }
}
