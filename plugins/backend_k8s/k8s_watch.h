/*
 * k8s_watch.h - follow a collection (pods of a Job, ...) with watch
 * requests, the way client-go's reflector does: start from a known
 * resourceVersion (or list first), reconnect from the last one seen when
 * the server ends the stream, list again after 410 Gone (the version is
 * too old), keep the version current with bookmarks.
 *
 * One watch belongs to one run (one thread) and is driven by its
 * multiplexer: call sx_k8s_watch_pump() after each sx_k8s_mux_run().
 */
#ifndef SX_K8S_WATCH_H
#define SX_K8S_WATCH_H

#include <cjson/cJSON.h>

#include "k8s_api.h"

/* type: "ADDED", "MODIFIED", "DELETED" as the server sends them; after a
 * list: "SYNC" for each item, then "SYNCED" with object NULL (objects not
 * among the SYNC items since the last "SYNCED" are gone).  object
 * borrowed for the call. */
typedef void (*sx_k8s_watch_fn)(void *user, const char *type, const cJSON *object);

typedef struct sx_k8s_watch {
    /* set by the caller before sx_k8s_watch_start */
    sx_k8s_client *cl;
    sx_k8s_mux *mux;
    sx_k8s_counts *counts;      /* per-execution tally, may be NULL */
    const char *path;           /* collection, e.g. /api/v1/namespaces/NS/pods (borrowed) */
    const char *selector;       /* escaped query, e.g. labelSelector=job-name%3Dx (borrowed) */
    const char *what;           /* "the Job's pods", for messages */
    sx_k8s_watch_fn fn;
    void *user;
    /* state */
    char rv[64];                /* last resourceVersion seen */
    sx_k8s_stream *s;
    sx_k8s_lines lines;
    int gone;                   /* an ERROR event with 410: list again */
    int failures;               /* consecutive failed attempts */
    double retry_at;            /* sx_now_monotonic() of the next attempt, 0 = now */
    double down_since;          /* first failure of the current streak, 0 = none */
    long reconnects, relists, events;
    sx_error stream_err;        /* an ERROR event other than 410 */
} sx_k8s_watch;

/* Open the watch from resourceVersion `rv` (the version of an object the
 * caller just created, so nothing after it is missed), or list first when
 * rv is NULL or "".  Returns 0, or -1 with err (the list failed). */
int sx_k8s_watch_start(sx_k8s_watch *w, const char *rv, const sx_k8s_call *call, sx_error *err);
/* Handle an ended stream: reconnect (at once after a normal end, with
 * backoff after a failure), list again after 410.  Returns 0, or -1 with
 * err once the server has failed for longer than down_budget_ms, or
 * refused the watch (403, 404, ...). */
int sx_k8s_watch_pump(sx_k8s_watch *w, const sx_k8s_call *call, long down_budget_ms,
                      sx_error *err);
/* The longest the caller should wait before pumping again (ms): the time
 * to the next reconnect attempt, or `max_ms`. */
long sx_k8s_watch_wait_ms(const sx_k8s_watch *w, long max_ms);
/* Close the stream and free the buffers.  Safe twice. */
void sx_k8s_watch_stop(sx_k8s_watch *w);

#endif
