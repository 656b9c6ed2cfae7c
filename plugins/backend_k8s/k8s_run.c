/*
 * k8s_run.c - one execution as a Kubernetes Job, and the instance's
 * runtime (k8s_run.h).
 *
 *   the plan (k8s_job.c); the values of the Secrets the step reads, for
 *   masking (one GET per Secret; a missing one that is not optional is
 *   config_error before anything is created)
 *   the durable exec.started record
 *   POST the Job; then the per-execution Secret (script, stdin) with an
 *   ownerReference to the Job's uid, so that deleting the Job (or its TTL)
 *   deletes the Secret.  The pod mounts it; the kubelet retries the mount
 *   until it exists (a FailedMount for this Secret is not an error)
 *   watch the Job's pods (label job-name) from the Job's resourceVersion:
 *   no list; reconnect when the server ends the watch, list again after
 *   410 Gone
 *   follow the container's log once it runs: stdout and stderr apart when
 *   the server takes the log `stream` parameter, else merged into stdout;
 *   secret values masked; live exec.output
 *   the exit code only from the container's terminated state, the result
 *   only once the log is read to its end
 *   failure modes, each ending the run at once with its code: image pull
 *   (image_pull_failed), missing Secret/ConfigMap (config_error),
 *   Unschedulable beyond the grace (unschedulable), evicted or deleted pod
 *   (termination lost), API unreachable/forbidden
 *   timeout, cancel, failures: DELETE the Job (background propagation) and
 *   the pod (grace 1 s, so PID 1 - which ignores SIGTERM - goes at once)
 *   resource usage: samples of metrics.k8s.io while the container runs
 */
#define _GNU_SOURCE /* strcasestr, timegm */
#include "k8s_runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_logs.h"
#include "k8s_watch.h"
#include "output_mask.h"
#include "sx/sx_util.h"

/* A pod whose container has not started after this long gets its events
 * read (FailedMount of a missing Secret/ConfigMap), then every EVENTS_EVERY_S. */
#define EVENTS_AFTER_S 2.0
#define EVENTS_EVERY_S 3.0
/* After a timeout or cancel: how long the rest of the log may take. */
#define STOP_LOG_GRACE_S 2.0
/* After the container ended: how long its log may take to be read. */
#define LOG_AFTER_EXIT_S 30.0
/* A log that ended while the container still runs is reopened after this
 * long (the kubelet ends a follow at the container's exit, so an early end
 * is a broken connection). */
#define LOG_REOPEN_S 2.0
/* metrics.k8s.io: first sample after METRICS_FIRST_S of running, then every
 * METRICS_EVERY_S (metrics-server's default resolution is 15 s); absence is
 * checked again after METRICS_RECHECK_S. */
#define METRICS_FIRST_S 5.0
#define METRICS_EVERY_S 15.0
#define METRICS_RECHECK_S 600.0
/* Calls after the end (delete). */
#define CLEANUP_CALL_MS 5000L

/* ------------------------------------------------------------------ */
/* Runtime                                                              */
/* ------------------------------------------------------------------ */

/* The start-up reconciliation, 0.5 s after the instance was created unless
 * it is destroyed first (--check-config), or a run did it already (each
 * run reconciles first when nothing has yet). */
static void *delayed_reconcile(void *arg)
{
    sx_k8s_runtime *rt = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 500 * 1000000L; /* --check-config destroys its instances well before */
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rt->stop_lock);
    while (!rt->stopping && pthread_cond_timedwait(&rt->stop_cv, &rt->stop_lock, &until) == 0)
        ;
    int stop = rt->stopping;
    pthread_mutex_unlock(&rt->stop_lock);
    if (stop)
        return NULL;
    sx_k8s_instance *inst = rt->inst;
    long ms = inst->cfg.api_timeout_ms < 5000 ? (long)inst->cfg.api_timeout_ms : 5000;
    sx_error re;
    if (sx_k8s_reconcile(inst, ms, &re) < 0)
        inst->plugin->host->log(inst->plugin->ctx, SX_LOG_WARN,
                                "executor %s: %s; the reconciliation of earlier Jobs runs before the "
                                "first execution", inst->name, re.message);
    __atomic_store_n(&rt->startup_attempted, 1, __ATOMIC_RELEASE);
    return NULL;
}

sx_k8s_runtime *sx_k8s_runtime_new(sx_k8s_instance *inst, sx_error *err)
{
    sx_k8s_runtime *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    rt->inst = inst;
    rt->split_streams = -1;
    rt->metrics = -1;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->reconcile_lock, NULL);
    inst->rt = rt;
    pthread_mutex_init(&rt->stop_lock, NULL);
    pthread_cond_init(&rt->stop_cv, NULL);
    if (inst->client)
        rt->reconciler_started = pthread_create(&rt->reconciler, NULL, delayed_reconcile, rt) == 0;
    return rt;
}

void sx_k8s_runtime_free(sx_k8s_runtime *rt)
{
    if (rt == NULL)
        return;
    if (rt->reconciler_started) {
        pthread_mutex_lock(&rt->stop_lock);
        rt->stopping = 1;
        pthread_cond_signal(&rt->stop_cv);
        pthread_mutex_unlock(&rt->stop_lock);
        pthread_join(rt->reconciler, NULL);
    }
    pthread_mutex_destroy(&rt->stop_lock);
    pthread_cond_destroy(&rt->stop_cv);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->reconcile_lock);
    free(rt);
}

cJSON *sx_k8s_runtime_describe(const sx_k8s_instance *inst)
{
    cJSON *o = cJSON_CreateObject();
    sx_k8s_runtime *rt = inst->rt;
    int split = -1, metrics = -1;
    if (rt) {
        pthread_mutex_lock(&rt->lock);
        split = rt->split_streams;
        metrics = rt->metrics;
        pthread_mutex_unlock(&rt->lock);
    }
    if (inst->cfg.log_mode == SX_K8S_LOG_MERGED)
        split = 0;
    cJSON_AddStringToObject(o, "log_streams",
                            split == 1   ? "separate (log `stream` parameter)"
                            : split == 0 ? "merged: stderr is reported in stdout"
                                         : "not yet known (found at the first run)");
    cJSON_AddStringToObject(o, "resource_usage",
                            metrics == 1   ? "metrics.k8s.io samples"
                            : metrics == 0 ? "unavailable: no metrics.k8s.io (reported as null)"
                                           : "not yet known (found at the first run)");
    cJSON_AddBoolToObject(o, "reconciled",
                          rt && __atomic_load_n(&rt->reconciled, __ATOMIC_ACQUIRE));
    cJSON_AddBoolToObject(o, "startup_reconciliation_attempted",
                          rt && __atomic_load_n(&rt->startup_attempted, __ATOMIC_ACQUIRE));
    if (inst->client) {
        sx_k8s_counts c;
        sx_k8s_client_counts(inst->client, &c);
        cJSON_AddItemToObject(o, "api_requests", sx_k8s_counts_json(&c));
    }
    return o;
}

int sx_k8s_delete_job(sx_k8s_instance *inst, const char *name, long timeout_ms,
                      sx_k8s_counts *counts, sx_error *err)
{
    char ns[300], en[300], path[800];
    if (sx_k8s_escape(inst->namespace_, ns, sizeof ns) != 0 ||
        sx_k8s_escape(name, en, sizeof en) != 0)
        return sx_error_set(err, "backend_error", "name too long");
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs/%s" SX_K8S_DELETE_BACKGROUND,
             ns, en);
    sx_k8s_call call = {.timeout_ms = timeout_ms, .counts = counts};
    sx_k8s_response resp;
    if (sx_k8s_request(inst->client, SX_K8S_DELETE, path, NULL, NULL, 0, &call, "delete the Job",
                       &resp, err) != 0)
        return -1;
    int rc = 0;
    if (resp.status != 200 && resp.status != 202 && resp.status != 404)
        rc = sx_k8s_status_error(inst->client, &resp, "delete the Job", err);
    sx_k8s_response_free(&resp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* One run                                                              */
/* ------------------------------------------------------------------ */

/* What the pod watch told us about one pod. */
typedef struct pod_state {
    char name[256];
    char uid[80];
    int present;
    int deleted;                /* DELETED, or missing after a list */
    int sync_seen;              /* in the last list */
    char phase[32];
    char reason[64];            /* status.reason: Evicted, DeadlineExceeded, ... */
    char message[400];
    int disrupted;              /* condition DisruptionTarget True */
    double unschedulable_since; /* PodScheduled False/Unschedulable, local clock */
    char unschedulable_msg[400];
    char waiting[64];           /* containerStatuses[0].state.waiting.reason */
    char waiting_msg[400];
    double pending_since;       /* first seen without a started container */
    int running;                /* state.running seen (or terminated) */
    double running_at;          /* local clock, first seen started */
    int terminated;
    int exit_code;
    int signal;
    char term_reason[64];
    char term_msg[400];
    int killed_by_deletion;     /* ended non-zero while the pod was being deleted
                                   (deletionTimestamp set): the Job controller at
                                   activeDeadlineSeconds, an eviction, kubectl */
    char started_at[48], finished_at[48];
    double terminated_at;       /* local clock */
} pod_state;

typedef enum outcome {
    GO_ON = 0,
    FINISHED,                   /* terminated and log read */
    STOPPED,                    /* timeout or cancel: termination in r->stop */
    LOST,                       /* evicted or deleted */
    FAILED                      /* could not run: r->fail */
} outcome;

typedef struct run_ctx {
    sx_k8s_instance *inst;
    sx_k8s_runtime *rt;
    sx_k8s_client *cl;
    const sx_host_api *host;
    const sx_exec_spec *spec;
    sx_exec *exec;
    sx_k8s_plan plan;
    sx_k8s_counts counts;
    sx_k8s_call call;           /* setup calls: api timeout, counted */
    char ns[300];               /* escaped namespace */
    char job_uid[80];
    char job_rv[64];
    char selector[700];         /* labelSelector=job-name%3D<job> */
    char pods_path[400];
    sx_k8s_mux *mux;
    sx_k8s_watch watch;
    int watching;
    pod_state pod;              /* the pod being followed */
    pod_state next;             /* a newer pod (a retry), waiting for its turn */
    int failed_attempts;        /* pods of this Job that failed */
    char done_pods[4][256];     /* failed attempts: their events are ignored */
    double t_created;           /* local clock: the Job was created */
    double deadline;
    /* logs */
    int split;                  /* stdout/stderr apart */
    sx_k8s_log logs[2];
    int n_logs;
    double log_eof_at[2];
    sx_masker masker;
    int masker_ready;
    /* events (FailedMount) */
    double events_at;
    /* metrics */
    int metrics;
    double metrics_at, metrics_last;
    double cpu_ns;              /* integrated nanocore-seconds */
    int64_t mem_peak;
    int samples;
    /* outcome */
    sx_termination stop;
    sx_error fail;
    int log_incomplete;
} run_ctx;

static int cancelled_hook(void *arg)
{
    run_ctx *r = arg;
    return r->host->exec_cancelled(r->exec);
}

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* RFC 3339 -> seconds since the epoch, 0 on error; *frac set when the
 * text has fractional seconds. */
static double parse_time(const char *s, int *frac)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (frac)
        *frac = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || tm.tm_year < 1971)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double t = (double)timegm(&tm);
    const char *p = s + n;
    if (*p == '.') {
        if (frac)
            *frac = 1;
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            t += (*p - '0') * scale;
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */
/* ------------------------------------------------------------------ */

static void emit_output(void *user, int stream, const char *data, size_t len)
{
    run_ctx *r = user;
    r->host->exec_output(r->exec, stream == 2 ? SX_STREAM_STDERR : SX_STREAM_STDOUT, data, len);
}

static void log_bytes(void *user, int stream, const char *data, size_t len)
{
    run_ctx *r = user;
    sx_mask_feed(&r->masker, stream, data, len);
}

/* How stdout and stderr are read: 1 apart, 0 merged, -1 not known yet (the
 * probe needs a pod, see probe_split). */
static int split_wanted(run_ctx *r)
{
    if (r->inst->cfg.log_mode == SX_K8S_LOG_MERGED)
        return 0;
    if (r->inst->cfg.log_mode == SX_K8S_LOG_SEPARATE)
        return 1;
    pthread_mutex_lock(&r->rt->lock);
    int split = r->rt->split_streams;
    pthread_mutex_unlock(&r->rt->lock);
    return split;
}

/* Whether the server takes the log `stream` parameter (Kubernetes 1.32+
 * with PodLogsQuerySplitStreams), found once per instance on the first
 * run's pod: a log request with an invalid stream value.  A server that
 * knows the parameter refuses it (422 "Unsupported value ... supported
 * values"); one that does not ignores it (200, the merged log: limitBytes=1
 * keeps that short) or forbids it (422 "may not be specified").  Taking
 * the parameter where it is ignored would send the merged log twice. */
static int probe_split(run_ctx *r, const char *pod)
{
    char epod[600], path[1400];
    if (sx_k8s_escape(pod, epod, sizeof epod) != 0)
        return 0;
    snprintf(path, sizeof path,
             "/api/v1/namespaces/%s/pods/%s/log?container=" SX_K8S_CONTAINER
             "&stream=Probe&limitBytes=1", r->ns, epod);
    sx_k8s_response resp;
    sx_error e;
    if (sx_k8s_request(r->cl, SX_K8S_LOG, path, NULL, NULL, 0, &r->call,
                       "probe the log stream parameter", &resp, &e) != 0)
        return 0; /* unknown: merged this time, probe again next run */
    long status = resp.status;
    int split = (status == 422 || status == 400) && resp.body &&
                (strstr(resp.body, "Unsupported value") || strstr(resp.body, "supported values"));
    sx_k8s_response_free(&resp);
    if (!split && status != 200 && status != 422 && status != 400)
        return 0; /* e.g. the pod went away: decide next run */
    pthread_mutex_lock(&r->rt->lock);
    r->rt->split_streams = split;
    pthread_mutex_unlock(&r->rt->lock);
    r->host->log(r->inst->plugin->ctx, SX_LOG_INFO,
                 "executor %s: the API server %s the log `stream` parameter: %s", r->inst->name,
                 split ? "takes" : "does not take",
                 split ? "stdout and stderr are read apart" : "stderr is reported in stdout");
    return split;
}

static void logs_setup(run_ctx *r, int split)
{
    r->split = split;
    r->n_logs = split < 0 ? 0 : split ? 2 : 1;
    for (int i = 0; i < 2; i++) {
        sx_k8s_log_close(&r->logs[i]);
        memset(&r->logs[i], 0, sizeof r->logs[i]);
        sx_k8s_log *l = &r->logs[i];
        l->cl = r->cl;
        l->mux = r->mux;
        l->counts = &r->counts;
        l->ns = r->ns;
        l->container = SX_K8S_CONTAINER;
        l->which = !split ? SX_K8S_LOG_BOTH : i == 0 ? SX_K8S_LOG_STDOUT : SX_K8S_LOG_STDERR;
        l->emit = log_bytes;
        l->user = r;
        r->log_eof_at[i] = 0;
    }
}

static int logs_done(const run_ctx *r)
{
    if (r->split < 0)
        return 0;
    for (int i = 0; i < r->n_logs; i++)
        if (r->logs[i].state != SX_K8S_LOG_EOF && r->logs[i].state != SX_K8S_LOG_FAILED)
            return 0;
    return 1;
}

/* Open, reopen and check the log streams of the current pod. */
static int pump_logs(run_ctx *r, sx_error *err)
{
    pod_state *p = &r->pod;
    if (!p->present || !(p->running || p->terminated))
        return 0;
    if (r->split < 0)
        logs_setup(r, probe_split(r, p->name));
    double now = sx_now_monotonic();
    for (int i = 0; i < r->n_logs; i++) {
        sx_k8s_log *l = &r->logs[i];
        sx_k8s_log_state st = sx_k8s_log_poll(l);
        if (st == SX_K8S_LOG_NO_STREAM_PARAM) {
            /* remember, and read the merged log instead */
            pthread_mutex_lock(&r->rt->lock);
            r->rt->split_streams = 0;
            pthread_mutex_unlock(&r->rt->lock);
            r->host->log(r->inst->plugin->ctx, SX_LOG_INFO,
                         "executor %s: the API server does not take the log `stream` parameter "
                         "(%s): stderr is reported in stdout", r->inst->name,
                         l->last_err.message);
            logs_setup(r, 0);
            return pump_logs(r, err);
        }
        if (st == SX_K8S_LOG_FAILED)
            return sx_error_set(err, l->last_err.code, "%s", l->last_err.message);
        if (st == SX_K8S_LOG_EOF && r->log_eof_at[i] == 0)
            r->log_eof_at[i] = now;
        int open = 0;
        if (st == SX_K8S_LOG_IDLE)
            open = 1;
        else if ((st == SX_K8S_LOG_RETRY || st == SX_K8S_LOG_NOT_READY) && now >= l->retry_at)
            open = 1;
        else if (st == SX_K8S_LOG_EOF && !p->terminated && now - r->log_eof_at[i] > LOG_REOPEN_S)
            open = 1; /* ended early: resume */
        if (open) {
            r->log_eof_at[i] = 0;
            if (sx_k8s_log_open(l, p->name, err) != 0)
                return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The pod                                                              */
/* ------------------------------------------------------------------ */

static void pod_update(pod_state *p, const cJSON *pod)
{
    const cJSON *meta = jget(pod, "metadata");
    const cJSON *st = jget(pod, "status");
    double now = sx_now_monotonic();
    copy_str(p->name, sizeof p->name, jstr(meta, "name"));
    copy_str(p->uid, sizeof p->uid, jstr(meta, "uid"));
    p->present = 1;
    copy_str(p->phase, sizeof p->phase, jstr(st, "phase"));
    copy_str(p->reason, sizeof p->reason, jstr(st, "reason"));
    copy_str(p->message, sizeof p->message, jstr(st, "message"));
    const cJSON *c;
    int unsched = 0;
    cJSON_ArrayForEach(c, jget(st, "conditions")) {
        const char *type = jstr(c, "type"), *status = jstr(c, "status");
        if (type == NULL || status == NULL)
            continue;
        if (strcmp(type, "PodScheduled") == 0 && strcmp(status, "False") == 0 &&
            strcmp(jstr(c, "reason") ? jstr(c, "reason") : "", "Unschedulable") == 0) {
            unsched = 1;
            copy_str(p->unschedulable_msg, sizeof p->unschedulable_msg, jstr(c, "message"));
        }
        if (strcmp(type, "DisruptionTarget") == 0 && strcmp(status, "True") == 0)
            p->disrupted = 1;
    }
    if (unsched && p->unschedulable_since == 0)
        p->unschedulable_since = now;
    else if (!unsched)
        p->unschedulable_since = 0;
    /* the container named "script" (the only one) */
    const cJSON *cs = NULL, *it;
    cJSON_ArrayForEach(it, jget(st, "containerStatuses")) {
        const char *n = jstr(it, "name");
        if (cs == NULL || (n && strcmp(n, SX_K8S_CONTAINER) == 0))
            cs = it;
    }
    const cJSON *state = jget(cs, "state");
    const cJSON *waiting = jget(state, "waiting");
    const cJSON *running = jget(state, "running");
    const cJSON *term = jget(state, "terminated");
    p->waiting[0] = p->waiting_msg[0] = '\0';
    if (cJSON_IsObject(waiting)) {
        copy_str(p->waiting, sizeof p->waiting, jstr(waiting, "reason"));
        copy_str(p->waiting_msg, sizeof p->waiting_msg, jstr(waiting, "message"));
    }
    if ((cJSON_IsObject(running) || cJSON_IsObject(term)) && !p->running) {
        p->running = 1;
        p->running_at = now;
    }
    if (cJSON_IsObject(term) && !p->terminated) {
        const cJSON *code = jget(term, "exitCode");
        const cJSON *sig = jget(term, "signal");
        p->terminated = 1;
        p->terminated_at = now;
        p->exit_code = cJSON_IsNumber(code) ? code->valueint : -1;
        p->signal = cJSON_IsNumber(sig) ? sig->valueint : 0;
        copy_str(p->term_reason, sizeof p->term_reason, jstr(term, "reason"));
        copy_str(p->term_msg, sizeof p->term_msg, jstr(term, "message"));
        copy_str(p->started_at, sizeof p->started_at, jstr(term, "startedAt"));
        copy_str(p->finished_at, sizeof p->finished_at, jstr(term, "finishedAt"));
        /* the script is not PID 1 (shareProcessNamespace), so a deletion's
         * SIGTERM ends it at once: that is not the script's own ending */
        p->killed_by_deletion = jstr(meta, "deletionTimestamp") != NULL && p->exit_code != 0;
    }
    if (!p->running && p->pending_since == 0)
        p->pending_since = now;
}

static void on_pod_event(void *user, const char *type, const cJSON *obj)
{
    run_ctx *r = user;
    if (strcmp(type, "SYNCED") == 0) {
        /* after a list: a pod we followed that is not in it is gone */
        if (r->pod.present && !r->pod.sync_seen && !r->pod.terminated)
            r->pod.deleted = 1;
        r->pod.sync_seen = 0;
        return;
    }
    const char *name = jstr(jget(obj, "metadata"), "name");
    if (name == NULL)
        return;
    for (int i = 0; i < r->failed_attempts && i < 4; i++)
        if (strcmp(r->done_pods[i], name) == 0)
            return; /* an attempt we are done with */
    pod_state *p = NULL;
    if (!r->pod.present || strcmp(r->pod.name, name) == 0) {
        p = &r->pod;
    } else if (r->pod.terminated || r->pod.deleted) {
        /* a newer pod while ours has ended: the Job retries */
        if (!r->next.present || strcmp(r->next.name, name) == 0)
            p = &r->next;
    }
    if (p == NULL)
        return;
    if (strcmp(type, "DELETED") == 0) {
        pod_update(p, obj);
        p->deleted = 1;
        return;
    }
    pod_update(p, obj);
    if (strcmp(type, "SYNC") == 0)
        p->sync_seen = 1;
}

static int is_pull_error(const char *reason)
{
    static const char *const pull[] = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                       "ErrImageNeverPull", "RegistryUnavailable",
                                       "SignatureValidationFailed", NULL};
    for (const char *const *p = pull; *p; p++)
        if (strcmp(reason, *p) == 0)
            return 1;
    return 0;
}

/* The Job's conditions: "DeadlineExceeded" when it failed at its deadline. */
static int job_deadline_exceeded(run_ctx *r)
{
    char path[800], en[300];
    sx_k8s_escape(r->plan.job_name, en, sizeof en);
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs/%s", r->ns, en);
    sx_k8s_response resp;
    sx_error e;
    sx_k8s_call call = {.timeout_ms = CLEANUP_CALL_MS, .counts = &r->counts};
    if (sx_k8s_request(r->cl, SX_K8S_GET, path, NULL, NULL, 0, &call, "read the Job", &resp,
                       &e) != 0)
        return 0;
    cJSON *j = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
    sx_k8s_response_free(&resp);
    int exceeded = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(jget(j, "status"), "conditions")) {
        const char *reason = jstr(c, "reason");
        if (reason && strcmp(reason, "DeadlineExceeded") == 0)
            exceeded = 1;
    }
    cJSON_Delete(j);
    return exceeded;
}

/* FailedMount events of the pod naming a Secret or ConfigMap that does not
 * exist (not ours: the kubelet retries until the run creates it). */
static int check_events(run_ctx *r, sx_error *err)
{
    char pod[600], path[1400];
    char sel[700];
    snprintf(sel, sizeof sel, "involvedObject.name=%s", r->pod.name);
    if (sx_k8s_escape(sel, pod, sizeof pod) != 0)
        return 0;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/events?fieldSelector=%s", r->ns, pod);
    sx_k8s_response resp;
    sx_error e;
    if (sx_k8s_request(r->cl, SX_K8S_LIST, path, NULL, NULL, 0, &r->call,
                       "read the pod's events", &resp, &e) != 0)
        return 0; /* best effort: the timeout still bounds the run */
    cJSON *list = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
    sx_k8s_response_free(&resp);
    int rc = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, jget(list, "items")) {
        const char *reason = jstr(ev, "reason");
        const char *msg = jstr(ev, "message");
        if (reason == NULL || msg == NULL || strcmp(reason, "FailedMount") != 0 ||
            strstr(msg, "not found") == NULL)
            continue;
        char own[400] = "";
        if (r->plan.secret_name)
            snprintf(own, sizeof own, "\"%s\" not found", r->plan.secret_name);
        if (own[0] && strstr(msg, own))
            continue;
        rc = sx_error_set(err, "config_error",
                          "pod %s cannot start: %s (a Secret or ConfigMap the step mounts is "
                          "missing)", r->pod.name, msg);
        break;
    }
    cJSON_Delete(list);
    return rc;
}

/* What the pod's state means for the run. */
static outcome judge_pod(run_ctx *r)
{
    pod_state *p = &r->pod;
    double now = sx_now_monotonic();
    if (!p->present)
        return GO_ON;
    if (p->disrupted || strcmp(p->reason, "Evicted") == 0 || strcmp(p->reason, "Preempting") == 0) {
        sx_error_set(&r->fail, "execution_lost", "pod %s was %s: %s", p->name,
                     p->reason[0] ? p->reason : "disrupted", p->message);
        return LOST;
    }
    if (p->terminated) {
        if (strcmp(p->term_reason, "StartError") == 0 ||
            strcmp(p->term_reason, "ContainerCannotRun") == 0) {
            sx_error_set(&r->fail, "backend_error",
                         "the container of pod %s could not start (%s): %s (is the interpreter "
                         "'%s' in image '%s', and the working directory valid?)",
                         p->name, p->term_reason, p->term_msg, r->spec->interpreter,
                         r->plan.image);
            return FAILED;
        }
        if (strcmp(p->term_reason, "DeadlineExceeded") == 0) {
            r->stop = SX_TERM_TIMED_OUT;
            return STOPPED;
        }
        if (p->killed_by_deletion) {
            /* the Job's activeDeadlineSeconds (its controller deletes the
             * pod; the Job's condition may lag the pod's end, hence also the
             * time since the Job's creation, which precedes its startTime),
             * else someone deleted the pod: not the script's failure */
            if (sx_now_monotonic() - r->t_created >= (double)r->plan.active_deadline_seconds - 1 ||
                job_deadline_exceeded(r)) {
                r->stop = SX_TERM_TIMED_OUT;
                return STOPPED;
            }
            sx_error_set(&r->fail, "execution_lost",
                         "pod %s was deleted while its container ran (exit code %d)", p->name,
                         p->exit_code);
            return LOST;
        }
        return GO_ON; /* finished once the log is read (run loop) */
    }
    if (p->deleted) {
        if (job_deadline_exceeded(r)) {
            r->stop = SX_TERM_TIMED_OUT;
            return STOPPED;
        }
        sx_error_set(&r->fail, "execution_lost", "pod %s was deleted before its container ended",
                     p->name);
        return LOST;
    }
    if (strcmp(p->phase, "Failed") == 0) {
        if (strcmp(p->reason, "DeadlineExceeded") == 0) {
            r->stop = SX_TERM_TIMED_OUT;
            return STOPPED;
        }
        sx_error_set(&r->fail, "execution_lost", "pod %s failed without an exit state: %s %s",
                     p->name, p->reason, p->message);
        return LOST;
    }
    if (p->waiting[0]) {
        if (is_pull_error(p->waiting)) {
            sx_error_set(&r->fail, "image_pull_failed",
                         "pod %s cannot pull image '%s' (%s): %s", p->name, r->plan.image,
                         p->waiting, p->waiting_msg);
            return FAILED;
        }
        if (strcmp(p->waiting, "CreateContainerConfigError") == 0) {
            sx_error_set(&r->fail, "config_error",
                         "pod %s cannot start (%s): %s (a Secret, ConfigMap or key the step "
                         "uses is missing)", p->name, p->waiting, p->waiting_msg);
            return FAILED;
        }
        if (strcmp(p->waiting, "CreateContainerError") == 0 ||
            strcmp(p->waiting, "RunContainerError") == 0) {
            sx_error_set(&r->fail, "backend_error", "pod %s cannot start its container (%s): %s",
                         p->name, p->waiting, p->waiting_msg);
            return FAILED;
        }
    }
    if (p->unschedulable_since > 0 &&
        now - p->unschedulable_since >= (double)r->inst->cfg.unschedulable_grace_ms / 1000.0) {
        sx_error_set(&r->fail, "unschedulable",
                     "pod %s could not be scheduled for %.0f s: %s", p->name,
                     now - p->unschedulable_since, p->unschedulable_msg);
        return FAILED;
    }
    if (!p->running && p->unschedulable_since == 0 && p->pending_since > 0 &&
        now - p->pending_since >= EVENTS_AFTER_S && now >= r->events_at) {
        r->events_at = now + EVENTS_EVERY_S;
        if (check_events(r, &r->fail) != 0)
            return FAILED;
    }
    return GO_ON;
}

/* ------------------------------------------------------------------ */
/* Usage (metrics.k8s.io)                                               */
/* ------------------------------------------------------------------ */

/* A CPU quantity ("12345n", "150u", "3m", "1") in nanocores; -1 on error. */
static double nanocores(const char *q)
{
    if (q == NULL)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(q, &end);
    if (errno || end == q || v < 0)
        return -1;
    if (strcmp(end, "n") == 0)
        return v;
    if (strcmp(end, "u") == 0)
        return v * 1e3;
    if (strcmp(end, "m") == 0)
        return v * 1e6;
    if (*end == '\0')
        return v * 1e9;
    return -1;
}

static int metrics_available(run_ctx *r)
{
    double now = sx_now_monotonic();
    pthread_mutex_lock(&r->rt->lock);
    int m = r->rt->metrics;
    int stale = m == 0 && now - r->rt->metrics_checked > METRICS_RECHECK_S;
    pthread_mutex_unlock(&r->rt->lock);
    if (m >= 0 && !stale)
        return m;
    sx_k8s_response resp;
    sx_error e;
    if (sx_k8s_request(r->cl, SX_K8S_GET, "/apis/metrics.k8s.io/v1beta1", NULL, NULL, 0,
                       &r->call, "discover metrics.k8s.io", &resp, &e) != 0)
        return 0; /* unknown: try again next run */
    m = resp.status == 200;
    sx_k8s_response_free(&resp);
    pthread_mutex_lock(&r->rt->lock);
    r->rt->metrics = m;
    r->rt->metrics_checked = now;
    pthread_mutex_unlock(&r->rt->lock);
    return m;
}

static void sample_metrics(run_ctx *r)
{
    char pod[600], path[1400];
    if (sx_k8s_escape(r->pod.name, pod, sizeof pod) != 0)
        return;
    snprintf(path, sizeof path, "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods/%s", r->ns, pod);
    sx_k8s_response resp;
    sx_error e;
    sx_k8s_call call = {.timeout_ms = CLEANUP_CALL_MS, .counts = &r->counts};
    if (sx_k8s_request(r->cl, SX_K8S_GET, path, NULL, NULL, 0, &call, "read the pod's metrics",
                       &resp, &e) != 0)
        return;
    cJSON *j = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
    sx_k8s_response_free(&resp);
    const cJSON *c;
    double now = sx_now_monotonic();
    cJSON_ArrayForEach(c, jget(j, "containers")) {
        const char *n = jstr(c, "name");
        if (n && strcmp(n, SX_K8S_CONTAINER) != 0)
            continue;
        const cJSON *usage = jget(c, "usage");
        double cpu = nanocores(jstr(usage, "cpu"));
        int64_t mem = -1;
        const char *mq = jstr(usage, "memory");
        if (mq && sx_quantity_bytes(mq, &mem) != 0)
            mem = -1;
        if (cpu >= 0) {
            double since = r->metrics_last > 0 ? r->metrics_last : r->pod.running_at;
            r->cpu_ns += cpu * (now - since); /* nanocores x seconds = ns of CPU */
            r->metrics_last = now;
            r->samples++;
        }
        if (mem > r->mem_peak)
            r->mem_peak = mem;
    }
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */
/* ------------------------------------------------------------------ */

/* The values of the Secrets the step reads, for masking.  A missing
 * Secret (or key) that is not optional: config_error, before anything is
 * created.  Not allowed to read Secrets: a warning, no masking. */
static int fetch_secret_values(run_ctx *r, sx_error *err)
{
    for (size_t i = 0; i < r->plan.n_secret_refs; i++) {
        const sx_k8s_secret_ref *ref = &r->plan.secret_refs[i];
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(r->plan.secret_refs[j].name, ref->name) == 0 &&
                  (r->plan.secret_refs[j].key == NULL ||
                   (ref->key && strcmp(r->plan.secret_refs[j].key, ref->key) == 0));
        if (dup)
            continue;
        char en[300], path[800];
        if (sx_k8s_escape(ref->name, en, sizeof en) != 0)
            return sx_error_set(err, "invalid_parameter", "secret name too long");
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets/%s", r->ns, en);
        sx_k8s_response resp;
        sx_error e;
        if (sx_k8s_request(r->cl, SX_K8S_GET, path, NULL, NULL, 0, &r->call, "read a Secret",
                           &resp, &e) != 0) {
            if (strcmp(e.code, "kubernetes_forbidden") == 0) {
                r->host->log(r->inst->plugin->ctx, SX_LOG_WARN,
                             "executor %s: may not read Secret %s (%s): its values are not "
                             "masked in the output", r->inst->name, ref->name, e.message);
                continue;
            }
            return sx_error_set(err, e.code, "%s", e.message);
        }
        if (resp.status == 404) {
            sx_k8s_response_free(&resp);
            if (ref->optional)
                continue;
            return sx_error_set(err, "config_error",
                                "Secret '%s' does not exist in namespace %s", ref->name,
                                r->inst->namespace_);
        }
        if (resp.status != 200) {
            sx_k8s_status_error(r->cl, &resp, "read a Secret", err);
            sx_k8s_response_free(&resp);
            return -1;
        }
        cJSON *s = cJSON_Parse(resp.body);
        sx_k8s_response_free(&resp);
        const cJSON *data = jget(s, "data");
        int found = ref->key == NULL;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, data) {
            if (!cJSON_IsString(kv) || (ref->key && strcmp(kv->string, ref->key) != 0))
                continue;
            found = 1;
            size_t n = 0;
            char *v = sx_k8s_b64decode(kv->valuestring, &n);
            if (v == NULL)
                continue;
            if (strlen(v) == n && n >= SX_MASK_MIN && n <= 4096) {
                char **nv = realloc(r->plan.secret_values.v,
                                    (r->plan.secret_values.n + 1) * sizeof(char *));
                if (nv) {
                    r->plan.secret_values.v = nv;
                    r->plan.secret_values.v[r->plan.secret_values.n++] = v;
                    v = NULL;
                }
            }
            sx_k8s_wipe_free(v, n);
        }
        /* the answer holds every value of the Secret: wipe the tree */
        for (cJSON *it = data ? data->child : NULL; it; it = it->next)
            if (it->valuestring)
                memset(it->valuestring, 0, strlen(it->valuestring));
        cJSON_Delete(s);
        if (!found && !ref->optional)
            return sx_error_set(err, "config_error", "Secret '%s' has no key '%s'", ref->name,
                                ref->key);
    }
    return 0;
}

static int create_object(run_ctx *r, const char *path, const cJSON *obj, const char *what,
                         cJSON **created, sx_error *err)
{
    /* the body may hold the script and stdin: one buffer, wiped after */
    char *json = NULL;
    for (int size = 64 * 1024; size <= (1 << 26) && json == NULL; size *= 4) {
        char *buf = malloc((size_t)size);
        if (buf == NULL)
            break;
        if (cJSON_PrintPreallocated((cJSON *)obj, buf, size, 0))
            json = buf;
        else
            sx_k8s_wipe_free(buf, (size_t)size);
    }
    if (json == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    sx_k8s_response resp;
    int rc = sx_k8s_request(r->cl, SX_K8S_CREATE, path, "application/json", json, strlen(json),
                            &r->call, what, &resp, err);
    sx_k8s_wipe_free(json, 0);
    if (rc != 0)
        return -1;
    if (resp.status != 201 && resp.status != 200) {
        char msg[600], reason[64];
        sx_k8s_status_message(&resp, msg, sizeof msg, reason, sizeof reason);
        if (resp.status == 422 || resp.status == 400)
            rc = sx_error_set(err, "invalid_parameter",
                              "cannot %s: the Kubernetes API server refused it: %s", what, msg);
        else if (resp.status == 404)
            rc = sx_error_set(err, "config_error", "cannot %s in namespace %s: %s", what,
                              r->inst->namespace_, msg);
        else if (resp.status == 409)
            rc = sx_error_set(err, "backend_error",
                              "cannot %s: it already exists (%s); an earlier run of this "
                              "execution and step left it", what, msg);
        else
            rc = sx_k8s_status_error(r->cl, &resp, what, err);
        sx_k8s_response_free(&resp);
        return rc;
    }
    if (created) {
        *created = cJSON_Parse(resp.body);
        if (*created && r->plan.secret && obj == r->plan.secret) {
            /* do not keep a copy of the script */
            cJSON_Delete(*created);
            *created = NULL;
        }
    }
    sx_k8s_response_free(&resp);
    return 0;
}

static int create_job(run_ctx *r, sx_error *err)
{
    char path[600];
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs", r->ns);
    cJSON *job = NULL;
    if (create_object(r, path, r->plan.job, "create the Job", &job, err) != 0)
        return -1;
    const cJSON *meta = jget(job, "metadata");
    copy_str(r->job_uid, sizeof r->job_uid, jstr(meta, "uid"));
    copy_str(r->job_rv, sizeof r->job_rv, jstr(meta, "resourceVersion"));
    cJSON_Delete(job);
    r->t_created = sx_now_monotonic();
    if (r->job_uid[0] == '\0')
        return sx_error_set(err, "backend_error",
                            "the API server created Job %s but returned no uid", r->plan.job_name);
    return 0;
}

static int create_secret(run_ctx *r, sx_error *err)
{
    if (r->plan.secret == NULL)
        return 0;
    if (sx_k8s_plan_set_owner(&r->plan, r->job_uid, err) != 0)
        return -1;
    char path[600];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets", r->ns);
    return create_object(r, path, r->plan.secret, "create the execution's Secret", NULL, err);
}

/* Delete the Job (background) and the pod (grace 1 s).  Best effort. */
static void stop_job(run_ctx *r)
{
    sx_error e;
    if (sx_k8s_delete_job(r->inst, r->plan.job_name, CLEANUP_CALL_MS, &r->counts, &e) != 0)
        r->host->log(r->inst->plugin->ctx, SX_LOG_WARN,
                     "executor %s: Job %s not deleted (%s); the next start's reconciliation "
                     "deletes it", r->inst->name, r->plan.job_name, e.message);
    if (!r->pod.present || r->pod.deleted || r->pod.terminated)
        return;
    char pod[600], path[1400];
    if (sx_k8s_escape(r->pod.name, pod, sizeof pod) != 0)
        return;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=1", r->ns, pod);
    sx_k8s_call call = {.timeout_ms = CLEANUP_CALL_MS, .counts = &r->counts};
    sx_k8s_response resp;
    if (sx_k8s_request(r->cl, SX_K8S_DELETE, path, NULL, NULL, 0, &call, "delete the pod", &resp,
                       &e) == 0)
        sx_k8s_response_free(&resp);
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */
/* ------------------------------------------------------------------ */

static void adopt_next_pod(run_ctx *r)
{
    r->pod = r->next;
    memset(&r->next, 0, sizeof r->next);
}

static outcome follow(run_ctx *r, sx_error *err)
{
    int cancel_fd = r->host->exec_cancel_fd(r->exec);
    double timeout_s = (double)r->spec->timeout_ms / 1000.0;
    double stop_until = 0;
    long down_ms = (long)r->inst->cfg.api_timeout_ms;
    for (;;) {
        double now = sx_now_monotonic();
        /* the timeout counts from the Job's creation, as its
         * activeDeadlineSeconds (timeout + 1 s, k8s_job.c) does: scheduling
         * and the image pull are part of it.  (The script is not PID 1, so
         * the Job controller's deletion at its deadline ends it at once.) */
        r->deadline = r->t_created + timeout_s;
        /* a container that has exited keeps its exit code: only the log's
         * grace is left (LOG_AFTER_EXIT_S), no timeout or cancel wins now */
        if (r->stop == SX_TERM_NONE && !r->pod.terminated) {
            if (r->host->exec_cancelled(r->exec))
                r->stop = SX_TERM_CANCELLED;
            else if (now >= r->deadline)
                r->stop = SX_TERM_TIMED_OUT;
            if (r->stop != SX_TERM_NONE) {
                stop_job(r);
                stop_until = sx_now_monotonic() + STOP_LOG_GRACE_S;
            }
        }
        if (r->stop != SX_TERM_NONE) {
            pump_logs(r, err);
            if (logs_done(r) || now >= stop_until || !r->pod.running)
                return STOPPED;
        } else {
            if (sx_k8s_watch_pump(&r->watch, &r->call, down_ms, err) != 0)
                return FAILED;
            outcome o = judge_pod(r);
            if (o == STOPPED) {
                stop_until = sx_now_monotonic() + STOP_LOG_GRACE_S;
                stop_job(r);
                continue;
            }
            if (o != GO_ON)
                return o;
            if (pump_logs(r, err) != 0)
                return FAILED;
            pod_state *p = &r->pod;
            if (p->terminated && logs_done(r)) {
                int failed = p->exit_code != 0 || strcmp(p->term_reason, "OOMKilled") == 0;
                if (!failed || r->failed_attempts + 1 > r->plan.backoff_limit)
                    return FINISHED;
                /* the Job retries (backoff_limit): follow the next pod; the
                 * output of every attempt is part of the run's output */
                if (r->failed_attempts < 4)
                    copy_str(r->done_pods[r->failed_attempts], sizeof r->done_pods[0], p->name);
                r->failed_attempts++;
                memset(&r->pod, 0, sizeof r->pod);
                logs_setup(r, r->split);
            }
            if (!r->pod.present && r->next.present)
                adopt_next_pod(r);
            if (p->terminated && !logs_done(r) && now - p->terminated_at > LOG_AFTER_EXIT_S) {
                r->log_incomplete = 1;
                return FINISHED;
            }
            if (r->metrics && p->running && !p->terminated) {
                if (r->metrics_at == 0) {
                    r->metrics_at = p->running_at + METRICS_FIRST_S;
                } else if (now >= r->metrics_at) {
                    sample_metrics(r);
                    r->metrics_at = now + METRICS_EVERY_S;
                }
            }
        }
        /* wait for the network, the cancel fd, or the next deadline */
        double until = r->stop != SX_TERM_NONE ? stop_until
                       : r->pod.terminated ? r->pod.terminated_at + LOG_AFTER_EXIT_S
                                           : r->deadline;
        long ms = (long)((until - sx_now_monotonic()) * 1000.0) + 1;
        if (r->stop == SX_TERM_NONE) {
            ms = sx_k8s_watch_wait_ms(&r->watch, ms);
            if (r->pod.unschedulable_since > 0) {
                double u = r->pod.unschedulable_since +
                           (double)r->inst->cfg.unschedulable_grace_ms / 1000.0;
                long ums = (long)((u - sx_now_monotonic()) * 1000.0) + 1;
                ms = ums < ms ? ums : ms;
            }
            if (r->pod.present && !r->pod.running)
                ms = ms > 1000 ? 1000 : ms; /* events checks, log retries */
            for (int i = 0; i < r->n_logs; i++)
                if (r->logs[i].state == SX_K8S_LOG_RETRY || r->logs[i].state == SX_K8S_LOG_NOT_READY ||
                    r->logs[i].state == SX_K8S_LOG_EOF)
                    ms = ms > 250 ? 250 : ms;
            if (r->metrics && r->pod.running && !r->pod.terminated && r->metrics_at > 0) {
                long mms = (long)((r->metrics_at - sx_now_monotonic()) * 1000.0) + 1;
                ms = mms < ms ? mms : ms;
            }
        }
        if (ms < 1)
            ms = 1;
        sx_k8s_mux_run(r->mux, r->stop == SX_TERM_NONE ? cancel_fd : -1, ms);
    }
}

/* The terminated state as the result. */
static void fill_result(run_ctx *r, sx_exec_result *res)
{
    pod_state *p = &r->pod;
    int frac0 = 0, frac1 = 0;
    double t0 = parse_time(p->started_at, &frac0), t1 = parse_time(p->finished_at, &frac1);
    double local = p->terminated_at > p->running_at ? p->terminated_at - p->running_at : 0;
    if (t0 > 0 && t1 >= t0 && frac0 && frac1)
        res->duration_seconds = t1 - t0;
    else if (t0 > 0 && t1 >= t0)
        res->duration_seconds = t1 - t0 > local ? t1 - t0 : local; /* second resolution */
    else
        res->duration_seconds = local;
    if (strcmp(p->term_reason, "OOMKilled") == 0) {
        res->termination = SX_TERM_OOM_KILLED;
        res->signal = 9;
    } else if (p->signal > 0) {
        res->termination = SX_TERM_SIGNALED;
        res->signal = p->signal;
    } else if (p->exit_code > 128 && p->exit_code < 128 + 65) {
        /* the runtime reports a death by signal N as 128+N */
        res->termination = SX_TERM_SIGNALED;
        res->signal = p->exit_code - 128;
    } else {
        res->termination = SX_TERM_EXITED;
        res->exit_code = p->exit_code;
    }
}

static int reconcile_if_needed(run_ctx *r, sx_error *err)
{
    if (__atomic_load_n(&r->rt->reconciled, __ATOMIC_ACQUIRE))
        return 0;
    sx_error e;
    if (sx_k8s_reconcile(r->inst, (long)r->inst->cfg.api_timeout_ms, &e) < 0)
        return sx_error_set(err, e.code, "%s", e.message);
    return 0;
}

static void set_info(run_ctx *r, const char *log_streams)
{
    cJSON *info = cJSON_CreateObject();
    cJSON *k = cJSON_AddObjectToObject(info, "kubernetes");
    cJSON_AddStringToObject(k, "namespace", r->inst->namespace_);
    cJSON_AddStringToObject(k, "job_name", r->plan.job_name);
    if (r->pod.name[0])
        cJSON_AddStringToObject(k, "pod_name", r->pod.name);
    if (log_streams)
        cJSON_AddStringToObject(k, "log_streams", log_streams);
    cJSON_AddNumberToObject(k, "watch_reconnects", (double)r->watch.reconnects);
    cJSON_AddNumberToObject(k, "watch_relists", (double)r->watch.relists);
    cJSON_AddItemToObject(k, "api_requests", sx_k8s_counts_json(&r->counts));
    char *json = cJSON_PrintUnformatted(info);
    cJSON_Delete(info);
    if (json)
        r->host->exec_set_info(r->exec, json);
    free(json);
}

int sx_k8s_run(sx_k8s_instance *inst, const sx_exec_spec *spec, sx_exec *exec,
               sx_exec_result *res, sx_error *err)
{
    const sx_host_api *h = inst->plugin->host;
    run_ctx *r = calloc(1, sizeof *r);
    if (r == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    r->inst = inst;
    r->rt = inst->rt;
    r->cl = inst->client;
    r->host = h;
    r->spec = spec;
    r->exec = exec;
    r->call.counts = &r->counts;
    res->cpu_millis = -1;
    res->memory_mb = -1;
    int rc = -1, created = 0;
    if (r->rt == NULL || r->cl == NULL) {
        sx_error_set(err, "backend_error", "executor %s has no connection to Kubernetes",
                     inst->name);
        goto out;
    }
    if (sx_k8s_escape(inst->namespace_, r->ns, sizeof r->ns) != 0) {
        sx_error_set(err, "invalid_config", "namespace too long");
        goto out;
    }
    if (reconcile_if_needed(r, err) != 0)
        goto out;
    if (sx_k8s_plan_build(inst, spec, &r->plan, err) != 0)
        goto out;
    /* before anything exists: the Secrets the step reads (masking) */
    r->call.abort_fn = cancelled_hook;
    r->call.abort_arg = r;
    if (fetch_secret_values(r, err) != 0)
        goto out;
    int split = split_wanted(r);
    r->metrics = metrics_available(r);
    r->call.abort_fn = NULL; /* creating is not interrupted half-way */

    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "image", r->plan.image);
    cJSON_AddStringToObject(extra, "namespace", inst->namespace_);
    cJSON_AddStringToObject(extra, "job_name", r->plan.job_name);
    char *extra_json = cJSON_PrintUnformatted(extra);
    cJSON_Delete(extra);
    int started = extra_json ? h->exec_started(exec, extra_json, err)
                             : sx_error_set(err, "out_of_memory", "out of memory");
    free(extra_json);
    if (started != 0)
        goto out;
    if (h->exec_cancelled(exec)) {
        sx_error_set(err, "cancelled", "cancelled before the Job was created");
        goto out;
    }
    if (create_job(r, err) != 0)
        goto out;
    created = 1;
    snprintf(res->job_name, sizeof res->job_name, "%s", r->plan.job_name);
    if (create_secret(r, err) != 0)
        goto out;

    r->mux = sx_k8s_mux_new();
    if (r->mux == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    sx_mask_init(&r->masker, &r->plan.secret_values, emit_output, r);
    r->masker_ready = 1;
    logs_setup(r, split);
    char sel[300];
    snprintf(sel, sizeof sel, "job-name=%s", r->plan.job_name);
    char esel[600];
    sx_k8s_escape(sel, esel, sizeof esel);
    snprintf(r->selector, sizeof r->selector, "labelSelector=%s", esel);
    snprintf(r->pods_path, sizeof r->pods_path, "/api/v1/namespaces/%s/pods", r->ns);
    r->watch.cl = r->cl;
    r->watch.mux = r->mux;
    r->watch.counts = &r->counts;
    r->watch.path = r->pods_path;
    r->watch.selector = r->selector;
    r->watch.what = "the Job's pods";
    r->watch.fn = on_pod_event;
    r->watch.user = r;
    if (sx_k8s_watch_start(&r->watch, r->job_rv, &r->call, err) != 0)
        goto out;
    r->watching = 1;

    outcome o = follow(r, err);
    for (int i = 0; i < 2; i++)
        sx_k8s_log_close(&r->logs[i]);
    sx_mask_flush(&r->masker);
    snprintf(res->pod_name, sizeof res->pod_name, "%s", r->pod.name);
    if (r->samples > 0) {
        res->cpu_millis = (int64_t)(r->cpu_ns / 1e6 + 0.5);
        res->memory_mb = r->mem_peak > 0 ? (r->mem_peak + (1 << 20) - 1) >> 20 : -1;
    }
    switch (o) {
    case FINISHED:
        fill_result(r, res);
        if (r->log_incomplete)
            h->log(inst->plugin->ctx, SX_LOG_WARN,
                   "executor %s: the log of pod %s was not read to its end within %.0f s of "
                   "the container's exit", inst->name, r->pod.name, LOG_AFTER_EXIT_S);
        created = 0; /* kept for ttl_seconds_after_finished */
        rc = 0;
        break;
    case STOPPED:
        res->termination = r->stop;
        res->signal = 9;
        res->duration_seconds =
            sx_now_monotonic() - (r->pod.running ? r->pod.running_at : r->t_created);
        created = 0; /* deleted */
        rc = 0;
        break;
    case LOST:
        h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: %s", inst->name, r->fail.message);
        res->termination = SX_TERM_LOST;
        res->duration_seconds = r->pod.running ? sx_now_monotonic() - r->pod.running_at : 0;
        rc = 0;
        break;
    case FAILED:
    case GO_ON:
        if (r->fail.code[0])
            *err = r->fail;
        rc = -1;
        break;
    }
    if (o == FINISHED || o == STOPPED)
        set_info(r, r->split > 0 ? "separate" : "merged");
out:
    if (created) {
        /* failure, lost: nothing may keep running */
        stop_job(r);
        set_info(r, NULL);
    }
    if (r->watching)
        sx_k8s_watch_stop(&r->watch);
    for (int i = 0; i < 2; i++)
        sx_k8s_log_close(&r->logs[i]);
    sx_k8s_mux_free(r->mux);
    if (r->masker_ready)
        sx_mask_free(&r->masker);
    h->log(inst->plugin->ctx, SX_LOG_DEBUG,
           "executor %s: job %s: %ld API requests (get %ld, list %ld, watch %ld, create %ld, "
           "patch %ld, delete %ld, log %ld)", inst->name,
           r->plan.job_name ? r->plan.job_name : "-", sx_k8s_counts_total(&r->counts),
           r->counts.n[SX_K8S_GET], r->counts.n[SX_K8S_LIST], r->counts.n[SX_K8S_WATCH],
           r->counts.n[SX_K8S_CREATE], r->counts.n[SX_K8S_PATCH], r->counts.n[SX_K8S_DELETE],
           r->counts.n[SX_K8S_LOG]);
    sx_k8s_plan_free(&r->plan);
    free(r);
    return rc;
}
