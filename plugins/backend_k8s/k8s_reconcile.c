/*
 * k8s_reconcile.c - Jobs left by an earlier life of this host (k8s_run.h,
 * sx_k8s_reconcile).
 *
 * A host killed mid-run leaves its Jobs behind: nobody follows them, and a
 * running one may go on doing what it was asked.  At start (or before the
 * first run, when the API server could not be reached at start) every Job
 * labelled with this host_id and executor is found:
 *   finished (condition Complete or Failed): its pod's exit code is read,
 *     a durable "k8s.job_collected" record is written, then the Job is
 *     deleted (a Job whose record could not be written is kept for the next
 *     start);
 *   not finished (an orphan): deleted with background propagation (the
 *     Secret it owns goes with it) and its pods deleted with a grace of 1 s
 *     (the script stops now, not after the pod's whole grace period), and
 *     recorded as "k8s.orphan_deleted";
 * and per-execution Secrets of this instance are deleted (the garbage
 * collector does it for those whose Job is gone; this covers a cluster
 * where it lags).  Runs are held until it is done, so it never sees a Job
 * of this life.
 */
#define _POSIX_C_SOURCE 200809L
#include "k8s_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* GET a list; NULL with err. */
static cJSON *list(sx_k8s_instance *inst, const char *path, long timeout_ms, const char *what,
                   sx_error *err)
{
    sx_k8s_call call = {.timeout_ms = timeout_ms};
    sx_k8s_response resp;
    if (sx_k8s_request(inst->client, SX_K8S_LIST, path, NULL, NULL, 0, &call, what, &resp, err) !=
        0)
        return NULL;
    if (resp.status != 200) {
        sx_k8s_status_error(inst->client, &resp, what, err);
        sx_k8s_response_free(&resp);
        return NULL;
    }
    cJSON *j = cJSON_Parse(resp.body);
    sx_k8s_response_free(&resp);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        sx_error_set(err, "backend_error", "cannot %s: the answer is not a list", what);
        return NULL;
    }
    return j;
}

/* "Complete", "Failed" or NULL (still running). */
static const char *finished_as(const cJSON *job, const char **reason)
{
    const cJSON *c;
    *reason = NULL;
    cJSON_ArrayForEach(c, jget(jget(job, "status"), "conditions")) {
        const char *type = jstr(c, "type"), *status = jstr(c, "status");
        if (type && status && strcmp(status, "True") == 0 &&
            (strcmp(type, "Complete") == 0 || strcmp(type, "Failed") == 0)) {
            *reason = jstr(c, "reason");
            return type;
        }
    }
    return NULL;
}

/* The Job's pods (label job-name), or NULL. */
static cJSON *job_pods(sx_k8s_instance *inst, const char *ns, const char *job, long timeout_ms)
{
    char sel[400], esel[800], path[1200];
    snprintf(sel, sizeof sel, "job-name=%s", job);
    if (sx_k8s_escape(sel, esel, sizeof esel) != 0)
        return NULL;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s", ns, esel);
    sx_error e;
    return list(inst, path, timeout_ms, "list the Job's pods", &e);
}

/* Delete the pods of an orphaned Job at once (grace 1 s): the garbage
 * collector would give them their whole grace period, and a script that is
 * PID 1 ignores SIGTERM. */
static void delete_pods(sx_k8s_instance *inst, const char *ns, const char *job, long timeout_ms)
{
    char path[1200];
    sx_error e;
    cJSON *l = job_pods(inst, ns, job, timeout_ms);
    const cJSON *p;
    cJSON_ArrayForEach(p, jget(l, "items")) {
        const char *name = jstr(jget(p, "metadata"), "name");
        char en[300];
        if (name == NULL || sx_k8s_escape(name, en, sizeof en) != 0)
            continue;
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=1", ns, en);
        sx_k8s_call call = {.timeout_ms = timeout_ms};
        sx_k8s_response resp;
        if (sx_k8s_request(inst->client, SX_K8S_DELETE, path, NULL, NULL, 0, &call,
                           "delete a pod", &resp, &e) == 0)
            sx_k8s_response_free(&resp);
    }
    cJSON_Delete(l);
}

/* The Job's last pod and its container's exit code (-1 when unknown). */
static void last_pod(sx_k8s_instance *inst, const char *ns, const char *job, long timeout_ms,
                     char *pod, size_t pod_size, int *exit_code)
{
    *exit_code = -1;
    pod[0] = '\0';
    cJSON *l = job_pods(inst, ns, job, timeout_ms);
    const char *newest = NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, jget(l, "items")) {
        const char *created = jstr(jget(p, "metadata"), "creationTimestamp");
        if (newest && created && strcmp(created, newest) < 0)
            continue; /* RFC 3339 UTC sorts as text */
        newest = created ? created : "";
        snprintf(pod, pod_size, "%s", jstr(jget(p, "metadata"), "name") ? jstr(jget(p, "metadata"), "name") : "");
        *exit_code = -1;
        const cJSON *cs;
        cJSON_ArrayForEach(cs, jget(jget(p, "status"), "containerStatuses")) {
            const cJSON *code = jget(jget(jget(cs, "state"), "terminated"), "exitCode");
            if (cJSON_IsNumber(code))
                *exit_code = code->valueint;
        }
    }
    cJSON_Delete(l);
}

static int record(sx_k8s_instance *inst, const char *topic, const cJSON *job, const char *state,
                  const char *reason, const char *pod, int exit_code)
{
    const sx_host_api *h = inst->plugin->host;
    const cJSON *meta = jget(job, "metadata");
    const cJSON *ann = jget(meta, "annotations");
    const char *name = jstr(meta, "name");
    const char *ex = jstr(ann, SX_K8S_ANN_EXECUTION_ID);
    const char *step = jstr(ann, SX_K8S_ANN_STEP_NAME);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", strcmp(topic, "k8s.job_collected") == 0
                                            ? "k8s_job_collected" : "k8s_orphan_deleted");
    cJSON_AddStringToObject(o, "executor", inst->name);
    cJSON_AddStringToObject(o, "namespace", inst->namespace_);
    cJSON_AddStringToObject(o, "job_name", name ? name : "");
    if (ex)
        cJSON_AddStringToObject(o, "execution_id", ex);
    if (step)
        cJSON_AddStringToObject(o, "step_name", step);
    cJSON_AddStringToObject(o, "job_state", state);
    if (reason)
        cJSON_AddStringToObject(o, "reason", reason);
    if (pod && pod[0])
        cJSON_AddStringToObject(o, "pod_name", pod);
    if (exit_code >= 0)
        cJSON_AddNumberToObject(o, "exit_code", exit_code);
    else if (strcmp(state, "Running") != 0)
        cJSON_AddNullToObject(o, "exit_code");
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    sx_error e;
    int rc = json ? h->record(inst->plugin->ctx, topic, json, &e) : -1;
    free(json);
    if (rc != 0)
        h->log(inst->plugin->ctx, SX_LOG_ERROR, "executor %s: could not record %s of Job %s",
               inst->name, topic, name ? name : "?");
    return rc;
}

static void delete_secrets(sx_k8s_instance *inst, const char *ns, const char *esel,
                           long timeout_ms)
{
    const sx_host_api *h = inst->plugin->host;
    sx_k8s_runtime *rt = inst->rt;
    char path[3000];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets?labelSelector=%s", ns, esel);
    sx_error e;
    cJSON *l = list(inst, path, timeout_ms, "list this executor's Secrets", &e);
    if (l == NULL) {
        h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: %s", inst->name, e.message);
        return;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, jget(l, "items")) {
        const char *name = jstr(jget(s, "metadata"), "name");
        char en[300];
        if (name == NULL || sx_k8s_escape(name, en, sizeof en) != 0)
            continue;
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets/%s", ns, en);
        sx_k8s_call call = {.timeout_ms = timeout_ms};
        sx_k8s_response resp;
        if (sx_k8s_request(inst->client, SX_K8S_DELETE, path, NULL, NULL, 0, &call,
                           "delete a Secret", &resp, &e) == 0) {
            if (resp.status == 200 || resp.status == 202)
                rt->secrets_deleted++;
            sx_k8s_response_free(&resp);
        }
    }
    /* data values are in the list: wipe them */
    cJSON_ArrayForEach(s, jget(l, "items")) {
        for (cJSON *kv = jget(s, "data") ? jget(s, "data")->child : NULL; kv; kv = kv->next)
            if (kv->valuestring)
                memset(kv->valuestring, 0, strlen(kv->valuestring));
    }
    cJSON_Delete(l);
}

int sx_k8s_reconcile(sx_k8s_instance *inst, long call_timeout_ms, sx_error *err)
{
    sx_k8s_runtime *rt = inst->rt;
    const sx_host_api *h = inst->plugin->host;
    if (__atomic_load_n(&rt->reconciled, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&rt->reconcile_lock);
    if (rt->reconciled) {
        pthread_mutex_unlock(&rt->reconcile_lock);
        return 0;
    }
    char ns[300], sel[1200], esel[2400], path[3000];
    if (sx_k8s_escape(inst->namespace_, ns, sizeof ns) != 0 ||
        sx_k8s_selector(inst, sel, sizeof sel) != 0 || sx_k8s_escape(sel, esel, sizeof esel) != 0) {
        pthread_mutex_unlock(&rt->reconcile_lock);
        return sx_error_set(err, "invalid_config", "executor %s: namespace or labels too long",
                            inst->name);
    }
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs?labelSelector=%s", ns, esel);
    cJSON *jobs = list(inst, path, call_timeout_ms, "list this executor's Jobs", err);
    if (jobs == NULL) {
        pthread_mutex_unlock(&rt->reconcile_lock);
        return -1;
    }
    int handled = 0;
    const cJSON *job;
    cJSON_ArrayForEach(job, jget(jobs, "items")) {
        const char *name = jstr(jget(job, "metadata"), "name");
        if (name == NULL)
            continue;
        const char *reason = NULL;
        const char *state = finished_as(job, &reason);
        sx_error e;
        if (state) {
            char pod[256];
            int exit_code;
            last_pod(inst, ns, name, call_timeout_ms, pod, sizeof pod, &exit_code);
            if (record(inst, "k8s.job_collected", job, state, reason, pod, exit_code) != 0)
                continue; /* kept: collected by the next start */
            if (sx_k8s_delete_job(inst, name, call_timeout_ms, NULL, &e) != 0)
                h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: Job %s not deleted: %s",
                       inst->name, name, e.message);
            h->log(inst->plugin->ctx, SX_LOG_WARN,
                   "executor %s: collected Job %s (%s, exit code %d) left by an earlier run of "
                   "this host", inst->name, name, state, exit_code);
            rt->collected++;
        } else {
            int gone = sx_k8s_delete_job(inst, name, call_timeout_ms, NULL, &e) == 0;
            delete_pods(inst, ns, name, call_timeout_ms);
            if (!gone)
                h->log(inst->plugin->ctx, SX_LOG_ERROR,
                       "executor %s: orphaned Job %s not deleted: %s", inst->name, name,
                       e.message);
            else
                h->log(inst->plugin->ctx, SX_LOG_WARN,
                       "executor %s: deleted orphaned Job %s (still running, left by a host that "
                       "stopped mid-run)", inst->name, name);
            record(inst, "k8s.orphan_deleted", job, gone ? "Running" : "Running (delete failed)",
                   NULL, NULL, -1);
            rt->orphans_deleted += gone;
        }
        handled++;
    }
    cJSON_Delete(jobs);
    delete_secrets(inst, ns, esel, call_timeout_ms);
    __atomic_store_n(&rt->reconciled, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rt->reconcile_lock);
    return handled;
}
