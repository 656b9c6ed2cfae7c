/* executions.c - idempotency and in-flight table (see executions.h). */
#define _POSIX_C_SOURCE 200809L
#include "executions.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "sx/sx_util.h"

#define SX_EXEC_BUCKETS 4096

typedef struct sx_waiter {
    sx_waiter_fn fn;
    void *arg;
    struct sx_waiter *next;
} sx_waiter;

typedef struct sx_run {
    char *execution_id;
    char *step_name;
    sx_exec *exec;              /* while running */
    char *reply;                /* once finished */
    double started_at;
    sx_waiter *waiters;         /* parked repeats, while running */
    struct sx_run *next;        /* hash chain */
    struct sx_run *done_next;   /* FIFO of finished runs */
} sx_run;

struct sx_executions {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    sx_run *buckets[SX_EXEC_BUCKETS];
    size_t running;
    size_t max_concurrent;
    size_t retention;
    size_t done_count;
    sx_run *done_head, *done_tail;
    size_t n_waiters;
    int closed;
    sx_load_fn observer;        /* told of every change of running / n_waiters */
    void *observer_arg;
};

/* Tell the observer (caller holds the lock, so reports come in order). */
static void notify_load(struct sx_executions *t)
{
    if (t->observer)
        t->observer(t->observer_arg, t->running, t->n_waiters, t->max_concurrent);
}

void sx_executions_set_observer(struct sx_executions *t, sx_load_fn fn, void *arg)
{
    pthread_mutex_lock(&t->lock);
    t->observer = fn;
    t->observer_arg = arg;
    notify_load(t);
    pthread_mutex_unlock(&t->lock);
}

static size_t bucket_of(const char *id, const char *step)
{
    /* FNV-1a over "id\x1fstep" */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *p = step; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)(h % SX_EXEC_BUCKETS);
}

static sx_run **find_slot(struct sx_executions *t, const char *id, const char *step)
{
    sx_run **slot = &t->buckets[bucket_of(id, step)];
    while (*slot && (strcmp((*slot)->execution_id, id) != 0 ||
                     strcmp((*slot)->step_name, step) != 0))
        slot = &(*slot)->next;
    return slot;
}

static void run_free(sx_run *r)
{
    free(r->execution_id);
    free(r->step_name);
    free(r->reply);
    free(r);
}

struct sx_executions *sx_executions_create(size_t max_concurrent, size_t retention)
{
    struct sx_executions *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->changed, &ca);
    pthread_condattr_destroy(&ca);
    t->max_concurrent = max_concurrent;
    t->retention = retention;
    return t;
}

void sx_executions_destroy(struct sx_executions *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < SX_EXEC_BUCKETS; i++) {
        sx_run *r = t->buckets[i];
        while (r) {
            sx_run *n = r->next;
            for (sx_waiter *w = r->waiters, *wn; w; w = wn) { /* undelivered */
                wn = w->next;
                free(w);
            }
            run_free(r);
            r = n;
        }
    }
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

sx_begin_result sx_executions_begin(struct sx_executions *t, const char *id,
                                    const char *step, sx_exec *exec, char **reply,
                                    sx_waiter_fn waiter, void *waiter_arg)
{
    pthread_mutex_lock(&t->lock);
    for (;;) {
        sx_run **slot = find_slot(t, id, step);
        sx_run *r = *slot;
        if (r && r->reply) {
            *reply = strdup(r->reply);
            pthread_mutex_unlock(&t->lock);
            return SX_BEGIN_DONE;
        }
        if (r && waiter) { /* in flight: park, never run it twice */
            sx_waiter *w = t->n_waiters < SX_EXECUTIONS_MAX_WAITERS ? malloc(sizeof *w) : NULL;
            if (w == NULL) {
                pthread_mutex_unlock(&t->lock);
                return SX_BEGIN_BUSY;
            }
            w->fn = waiter;
            w->arg = waiter_arg;
            w->next = r->waiters;
            r->waiters = w;
            t->n_waiters++;
            notify_load(t);
            pthread_mutex_unlock(&t->lock);
            return SX_BEGIN_PARKED;
        }
        if (r) { /* in flight: wait for it, never run it twice */
            pthread_cond_wait(&t->changed, &t->lock);
            continue;
        }
        if (t->closed) {
            pthread_mutex_unlock(&t->lock);
            return SX_BEGIN_CLOSED;
        }
        if (t->running >= t->max_concurrent) {
            pthread_mutex_unlock(&t->lock);
            return SX_BEGIN_BUSY;
        }
        r = calloc(1, sizeof *r);
        if (r == NULL || !(r->execution_id = strdup(id)) || !(r->step_name = strdup(step))) {
            if (r)
                run_free(r);
            pthread_mutex_unlock(&t->lock);
            return SX_BEGIN_BUSY;
        }
        r->exec = exec;
        r->started_at = sx_now_monotonic();
        *slot = r;
        t->running++;
        notify_load(t);
        pthread_mutex_unlock(&t->lock);
        return SX_BEGIN_NEW;
    }
}

static void forget_oldest(struct sx_executions *t)
{
    sx_run *old = t->done_head;
    t->done_head = old->done_next;
    if (t->done_head == NULL)
        t->done_tail = NULL;
    t->done_count--;
    sx_run **slot = find_slot(t, old->execution_id, old->step_name);
    *slot = old->next;
    run_free(old);
}

/* Detach the run's parked waiters (caller holds the lock). */
static sx_waiter *take_waiters(struct sx_executions *t, sx_run *r)
{
    sx_waiter *w = r->waiters;
    r->waiters = NULL;
    for (sx_waiter *i = w; i; i = i->next)
        t->n_waiters--;
    return w;
}

/* Outside the lock: each waiter gets the reply once. */
static void deliver(sx_waiter *w, const char *reply)
{
    while (w) {
        sx_waiter *next = w->next;
        w->fn(w->arg, reply);
        free(w);
        w = next;
    }
}

void sx_executions_finish(struct sx_executions *t, const char *id, const char *step,
                          const char *reply)
{
    sx_waiter *waiters = NULL;
    pthread_mutex_lock(&t->lock);
    sx_run **slot = find_slot(t, id, step);
    sx_run *r = *slot;
    if (r && r->exec) {
        waiters = take_waiters(t, r);
        r->exec = NULL;
        t->running--;
        if ((r->reply = strdup(reply)) == NULL) {
            /* cannot remember it: forget it, so no repeat waits forever */
            *slot = r->next;
            run_free(r);
        } else {
            if (t->done_tail)
                t->done_tail->done_next = r;
            else
                t->done_head = r;
            t->done_tail = r;
            t->done_count++;
            while (t->done_count > t->retention && t->done_head)
                forget_oldest(t);
        }
        notify_load(t);
    }
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
    deliver(waiters, reply);
}

void sx_executions_abandon(struct sx_executions *t, const char *id, const char *step,
                           const char *reply)
{
    sx_waiter *waiters = NULL;
    pthread_mutex_lock(&t->lock);
    sx_run **slot = find_slot(t, id, step);
    sx_run *r = *slot;
    if (r && r->exec) {
        waiters = take_waiters(t, r);
        *slot = r->next;
        t->running--;
        run_free(r);
        notify_load(t);
    }
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
    deliver(waiters, reply);
}

int sx_executions_cancel(struct sx_executions *t, const char *id, const char *step)
{
    pthread_mutex_lock(&t->lock);
    sx_run *r = *find_slot(t, id, step);
    int rv = -1;
    if (r && r->exec) {
        sx_exec_cancel(r->exec);
        rv = 0;
    } else if (r) {
        rv = 1;
    }
    pthread_mutex_unlock(&t->lock);
    return rv;
}

cJSON *sx_executions_status(struct sx_executions *t, const char *id, const char *step)
{
    pthread_mutex_lock(&t->lock);
    sx_run *r = *find_slot(t, id, step);
    cJSON *out = NULL;
    if (r) {
        out = cJSON_CreateObject();
        if (r->exec) {
            cJSON_AddStringToObject(out, "state", "running");
            cJSON_AddNumberToObject(out, "running_seconds", sx_now_monotonic() - r->started_at);
            cJSON_AddBoolToObject(out, "cancel_requested", atomic_load(&r->exec->cancelled));
        } else {
            cJSON_AddStringToObject(out, "state", "finished");
            cJSON *result = cJSON_Parse(r->reply);
            if (result)
                cJSON_AddItemToObject(out, "result", result);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return out;
}

cJSON *sx_executions_list(struct sx_executions *t)
{
    cJSON *arr = cJSON_CreateArray();
    double now = sx_now_monotonic();
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < SX_EXEC_BUCKETS; i++) {
        for (sx_run *r = t->buckets[i]; r; r = r->next) {
            if (!r->exec)
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "execution_id", r->execution_id);
            cJSON_AddStringToObject(o, "step_name", r->step_name);
            cJSON_AddNumberToObject(o, "running_seconds", now - r->started_at);
            cJSON_AddBoolToObject(o, "cancel_requested", atomic_load(&r->exec->cancelled));
            cJSON_AddItemToArray(arr, o);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return arr;
}

size_t sx_executions_running(struct sx_executions *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->running;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void sx_executions_close(struct sx_executions *t)
{
    pthread_mutex_lock(&t->lock);
    t->closed = 1;
    pthread_mutex_unlock(&t->lock);
}

size_t sx_executions_wait_idle(struct sx_executions *t, int64_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    while (t->running > 0) {
        if (pthread_cond_timedwait(&t->changed, &t->lock, &deadline) == ETIMEDOUT)
            break;
    }
    size_t n = t->running;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void sx_executions_cancel_all(struct sx_executions *t)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < SX_EXEC_BUCKETS; i++)
        for (sx_run *r = t->buckets[i]; r; r = r->next)
            if (r->exec)
                sx_exec_cancel(r->exec);
    pthread_mutex_unlock(&t->lock);
}
