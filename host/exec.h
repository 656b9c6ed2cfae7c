/*
 * exec.h - one execution in flight (the sx_exec handed to plugins): its ids,
 * the bounded capture of its output, its cancel signal and the fields its
 * audit records carry.
 */
#ifndef SX_HOST_EXEC_H
#define SX_HOST_EXEC_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdint.h>

#include "capbuf.h"
#include "host.h"


struct sx_exec {
    sx_host *host;
    char *execution_id;
    char *step_name;
    char *runbook_id;
    char *user;
    int cancel_fd;                 /* eventfd, readable once cancelled */
    atomic_int cancelled;
    atomic_int started;            /* exec_started() succeeded */
    double accepted_at;            /* monotonic seconds */
    pthread_mutex_t lock;          /* guards out, err, info, executor */
    sx_capbuf out;
    sx_capbuf err;
    int capture_ready;
    cJSON *info;                   /* exec_set_info fields */
    sx_executor *executor;         /* bound by info "executor" */
    struct sx_policy_ctx *policy;  /* identity, executor, final `with` (policy.h);
                                      borrowed from the request, which outlives
                                      the exec (dispatch.c) */
};

int sx_exec_create(sx_host *host, const char *execution_id, const char *step_name,
                   const char *runbook_id, const char *user, sx_exec **out,
                   sx_error *err);
void sx_exec_destroy(sx_exec *exec);
/* Request cancellation (idempotent, thread-safe). */
void sx_exec_cancel(sx_exec *exec);

/* Fill `output` (a JSON object) with stdout, stderr, *_truncated and
 * *_dropped_bytes from the capture. */
void sx_exec_add_output(sx_exec *exec, cJSON *output);
/* A deep copy of the info fields (never NULL unless out of memory). */
cJSON *sx_exec_info_copy(sx_exec *exec);

/* Host API entries (host_api.c puts them in the table). */
void sx_exec_output_cb(sx_exec *exec, sx_stream stream, const char *data, size_t len);
int sx_exec_cancel_fd_cb(sx_exec *exec);
int sx_exec_cancelled_cb(sx_exec *exec);
int sx_exec_started_cb(sx_exec *exec, const char *extra_json, sx_error *err);
int sx_exec_set_info_cb(sx_exec *exec, const char *json);

#endif
