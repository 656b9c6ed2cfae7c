/*
 * executions.h - the table of executions by (execution_id, step_name).
 *
 * It makes execute idempotent: a pair runs at most once; a repeat gets the
 * recorded reply, or the reply of the run in flight when it ends (this is
 * also what makes nng REQ's automatic resend harmless).  A repeat waiting
 * for a run is parked here, not in a thread: the run's end delivers the
 * reply to every parked waiter through its callback.  It also bounds concurrency
 * (max_concurrent), and serves status, cancel and list.  Finished replies
 * are remembered up to `retention` entries, oldest forgotten first.
 */
#ifndef SX_HOST_EXECUTIONS_H
#define SX_HOST_EXECUTIONS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sx/sx_plugin.h"

struct sx_executions;

/* Receives the final reply of the run a repeat was parked on (borrowed for
 * the call).  Called exactly once, from the thread that ends the run. */
typedef void (*sx_waiter_fn)(void *arg, const char *reply);

/* Parked waiters at most, over all runs; more repeats get SX_BEGIN_BUSY. */
#define SX_EXECUTIONS_MAX_WAITERS 4096

typedef enum sx_begin_result {
    SX_BEGIN_NEW = 1,   /* caller owns the run; must call finish or abandon */
    SX_BEGIN_DONE,      /* *reply is a copy of the recorded reply (caller frees) */
    SX_BEGIN_PARKED,    /* in flight: waiter(arg, reply) will be called once */
    SX_BEGIN_BUSY,      /* max_concurrent runs already in flight */
    SX_BEGIN_CLOSED     /* shutting down: no new runs */
} sx_begin_result;

struct sx_executions *sx_executions_create(size_t max_concurrent, size_t retention);
void sx_executions_destroy(struct sx_executions *t);

/* With waiter == NULL a repeat of a run in flight blocks until it ends and
 * gets SX_BEGIN_DONE; with a waiter it is parked (SX_BEGIN_PARKED). */
sx_begin_result sx_executions_begin(struct sx_executions *t, const char *execution_id,
                                    const char *step_name, sx_exec *exec, char **reply,
                                    sx_waiter_fn waiter, void *waiter_arg);
/* Record the final reply (copied), deliver it to parked waiters, wake
 * blocked ones. */
void sx_executions_finish(struct sx_executions *t, const char *execution_id,
                          const char *step_name, const char *reply);
/* Forget a run that is not to be remembered (nothing started); parked
 * waiters get `reply`, blocked ones look again. */
void sx_executions_abandon(struct sx_executions *t, const char *execution_id,
                           const char *step_name, const char *reply);

/* 0 = cancellation requested, 1 = already finished, -1 = unknown. */
int sx_executions_cancel(struct sx_executions *t, const char *execution_id,
                         const char *step_name);
/* {"state": "running"|"finished", "running_seconds"|"result": ...} or NULL
 * when unknown.  Caller frees with cJSON_Delete. */
cJSON *sx_executions_status(struct sx_executions *t, const char *execution_id,
                            const char *step_name);
/* Array of {"execution_id","step_name","running_seconds","cancelled"}. */
cJSON *sx_executions_list(struct sx_executions *t);
size_t sx_executions_running(struct sx_executions *t);

/* Told of every change of the load: runs in flight, parked repeats
 * waiting for one, and max_concurrent.  Called with the table's lock held
 * (so reports arrive in order): it must be quick and must not call back
 * into the table. */
typedef void (*sx_load_fn)(void *arg, size_t running, size_t waiting, size_t max_concurrent);
/* Set the observer (NULL = none) and report the current load to it once. */
void sx_executions_set_observer(struct sx_executions *t, sx_load_fn fn, void *arg);

/* Refuse new runs from now on (they get SX_BEGIN_CLOSED). */
void sx_executions_close(struct sx_executions *t);
/* Wait until no run is in flight or `timeout_ms` passed; returns the
 * number still running. */
size_t sx_executions_wait_idle(struct sx_executions *t, int64_t timeout_ms);
/* Cancel every run in flight. */
void sx_executions_cancel_all(struct sx_executions *t);

#endif
