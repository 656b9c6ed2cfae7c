/*
 * k8s_logs.h - follow a container's log (GET .../pods/NAME/log?follow=true)
 * and deliver its bytes exactly once, even across reconnects.
 *
 * The log API has no offsets, so a broken connection is resumed by asking
 * for the whole log again and dropping the bytes already delivered (the
 * kubelet serves the same file; a log rotated by the kubelet, at 10 MiB by
 * default, cannot be resumed exactly and is reported as such).
 *
 * With `which` STDOUT or STDERR the request carries stream=Stdout|Stderr
 * (PodLogsQuerySplitStreams, Kubernetes 1.32+ with the feature gate on); a
 * server that refuses the parameter answers 400/422, reported as
 * SX_K8S_LOG_NO_STREAM_PARAM so the caller can fall back to one merged log.
 */
#ifndef SX_K8S_LOGS_H
#define SX_K8S_LOGS_H

#include <stddef.h>

#include "k8s_api.h"

typedef enum sx_k8s_log_which {
    SX_K8S_LOG_BOTH = 0,        /* the merged log (no stream parameter) */
    SX_K8S_LOG_STDOUT = 1,
    SX_K8S_LOG_STDERR = 2
} sx_k8s_log_which;

typedef enum sx_k8s_log_state {
    SX_K8S_LOG_IDLE = 0,        /* not opened yet (or closed to reopen) */
    SX_K8S_LOG_STREAMING,       /* open */
    SX_K8S_LOG_EOF,             /* read to its end */
    SX_K8S_LOG_RETRY,           /* broken: reopen (after retry_at) */
    SX_K8S_LOG_NOT_READY,       /* the container has not started: reopen later */
    SX_K8S_LOG_NO_STREAM_PARAM, /* the server refused stream=... */
    SX_K8S_LOG_FAILED           /* refused for good (err in last_err) */
} sx_k8s_log_state;

/* stream: 1 stdout, 2 stderr (the merged log is reported as stdout). */
typedef void (*sx_k8s_log_emit_fn)(void *user, int stream, const char *data, size_t len);

typedef struct sx_k8s_log {
    /* set by the caller */
    sx_k8s_client *cl;
    sx_k8s_mux *mux;
    sx_k8s_counts *counts;
    const char *ns;             /* escaped namespace (borrowed) */
    const char *container;      /* "script" */
    sx_k8s_log_which which;
    sx_k8s_log_emit_fn emit;
    void *user;
    /* state */
    char pod[256];
    sx_k8s_stream *s;
    sx_k8s_log_state state;
    size_t delivered;           /* bytes handed to emit, over all attempts */
    size_t seen;                /* bytes of the current attempt */
    int attempts;
    double retry_at;
    sx_error last_err;
} sx_k8s_log;

/* (Re)open the log of `pod` (follow).  Returns 0, or -1 with err. */
int sx_k8s_log_open(sx_k8s_log *l, const char *pod, sx_error *err);
/* After sx_k8s_mux_run: update and return the state. */
sx_k8s_log_state sx_k8s_log_poll(sx_k8s_log *l);
/* Close (the state goes back to IDLE unless EOF/FAILED).  Safe twice. */
void sx_k8s_log_close(sx_k8s_log *l);

#endif
