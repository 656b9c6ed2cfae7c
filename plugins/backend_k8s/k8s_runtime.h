/*
 * k8s_runtime.h - the runtime's fields, private to k8s_run.c and
 * k8s_reconcile.c (others use k8s_run.h).
 */
#ifndef SX_K8S_RUNTIME_H
#define SX_K8S_RUNTIME_H

#include <pthread.h>

#include "k8s_run.h"

/* What the instance learnt about the server; -1 = not known yet. */
struct sx_k8s_runtime {
    sx_k8s_instance *inst;
    pthread_mutex_t lock;       /* the caches below */
    int split_streams;          /* the log `stream` parameter works: 1, not: 0 */
    int metrics;                /* metrics.k8s.io served: 1, not: 0 */
    double metrics_checked;     /* sx_now_monotonic() of the last check */
    pthread_mutex_t reconcile_lock; /* one reconciliation at a time */
    int reconciled;             /* atomic reads */
    int collected, orphans_deleted, secrets_deleted;
    /* the start-up reconciliation runs on its own thread a moment after the
     * instance is created, so that `--check-config` (which creates the
     * instances and exits) never deletes the Jobs of the live host it
     * checks for */
    pthread_t reconciler;
    int reconciler_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cv;
    int stopping;
    int startup_attempted;      /* the delayed start-up reconciliation ran (ok or
                                   not); atomic reads */
};

/* The JSON body of DELETE with background propagation, and the query. */
#define SX_K8S_DELETE_BACKGROUND "?propagationPolicy=Background"

/* DELETE the Job `name` with background propagation (its pods and the
 * Secret it owns go with it).  0 when it is gone (deleted now or already),
 * else -1 with err. */
int sx_k8s_delete_job(sx_k8s_instance *inst, const char *name, long timeout_ms,
                      sx_k8s_counts *counts, sx_error *err);

#endif
