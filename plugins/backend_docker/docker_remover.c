/*
 * docker_remover.c - getting rid of what runs leave on the Engine.
 *
 *   the removal queue: a finished run's container and volumes are removed
 *   by the instance's remover thread, off the reply path;
 *   the leftover sweep: objects labelled with this host and executor that a
 *   host killed mid-run left behind are removed at start-up (or before the
 *   first run), logged and audited; so are bind directories (script
 *   delivery "bind") whose container is gone.
 */
#define _POSIX_C_SOURCE 200809L
#include "docker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

/* One removal call; at shutdown the queue gets SHUTDOWN_BUDGET_S in all,
 * with short calls: what is left then is the next start's sweep's job. */
#define REMOVE_CALL_MS 15000L
#define SHUTDOWN_CALL_MS 2000L
#define SHUTDOWN_BUDGET_S 10.0

cJSON *sx_dk_labels(const sx_docker_instance *inst, const char *execution_id, const char *step)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, SX_DK_LABEL_MANAGED, "true");
    cJSON_AddStringToObject(l, SX_DK_LABEL_HOST, inst->cfg.host_id);
    cJSON_AddStringToObject(l, SX_DK_LABEL_EXECUTOR, inst->name);
    cJSON_AddStringToObject(l, SX_DK_LABEL_EXECUTION, execution_id);
    cJSON_AddStringToObject(l, SX_DK_LABEL_STEP, step);
    return l;
}

void sx_dk_name_prefix(const sx_docker_instance *inst, char *buf, size_t size)
{
    char exe[40];
    size_t j = 0;
    for (const char *p = inst->name; *p && j < sizeof exe - 1; p++)
        exe[j++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')
                       ? *p : '-';
    exe[j] = '\0';
    snprintf(buf, size, "sx-%s-", exe);
}

/* 0 when the object is gone (removed now, or already), -1 (logged) else. */
static int remove_one(sx_docker_instance *inst, const char *path, const char *what,
                      const char *id, long timeout_ms)
{
    const sx_host_api *h = inst->plugin->host;
    sx_dk_response resp;
    sx_error e;
    if (sx_dk_call(&inst->client, "DELETE", path, NULL, NULL, 0, NULL, timeout_ms, NULL, what,
                   &resp, &e) != 0) {
        h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: %.12s not removed: %s", inst->name,
               id, e.message);
        return -1;
    }
    int gone = resp.status == 204 || resp.status == 404;
    if (!gone)
        h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: %.12s not removed: HTTP %ld",
               inst->name, id, resp.status);
    sx_dk_response_free(&resp);
    return gone ? 0 : -1;
}

/* Returns what removing the container returned (0 when there is none). */
static int remove_objects(sx_docker_instance *inst, const char *container_id, char **volumes,
                          size_t n_volumes, long timeout_ms)
{
    char path[300];
    int rc = 0;
    if (container_id && container_id[0]) {
        snprintf(path, sizeof path, "/containers/%s?force=1&v=1", container_id);
        rc = remove_one(inst, path, "remove the container", container_id, timeout_ms);
    }
    for (size_t i = 0; i < n_volumes; i++) {
        if (volumes[i] == NULL)
            continue;
        snprintf(path, sizeof path, "/volumes/%s", volumes[i]);
        remove_one(inst, path, "remove a volume", volumes[i], timeout_ms);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* The removal queue                                                    */
/* ------------------------------------------------------------------ */

static void garbage_free(sx_dk_garbage *g)
{
    for (size_t i = 0; i < g->n_volumes; i++)
        free(g->volumes[i]);
    free(g->volumes);
    free(g->container_id);
    free(g);
}

static void *remover_main(void *arg)
{
    sx_docker_instance *inst = arg;
    double stop_deadline = 0;
    pthread_mutex_lock(&inst->lock);
    for (;;) {
        while (inst->garbage_head == NULL && !inst->remover_stop)
            pthread_cond_wait(&inst->garbage_cv, &inst->lock);
        sx_dk_garbage *g = inst->garbage_head;
        if (g == NULL)
            break; /* stopping, queue drained */
        inst->garbage_head = g->next;
        if (inst->garbage_head == NULL)
            inst->garbage_tail = NULL;
        int stopping = inst->remover_stop;
        pthread_mutex_unlock(&inst->lock);
        if (stopping && stop_deadline == 0)
            stop_deadline = sx_now_monotonic() + SHUTDOWN_BUDGET_S;
        if (!stopping || sx_now_monotonic() < stop_deadline)
            remove_objects(inst, g->container_id, g->volumes, g->n_volumes,
                           stopping ? SHUTDOWN_CALL_MS : REMOVE_CALL_MS);
        else
            inst->plugin->host->log(inst->plugin->ctx, SX_LOG_WARN,
                                    "executor %s: container %.12s left for the next start's "
                                    "sweep (shutdown)", inst->name,
                                    g->container_id ? g->container_id : "-");
        garbage_free(g);
        pthread_mutex_lock(&inst->lock);
    }
    pthread_mutex_unlock(&inst->lock);
    return NULL;
}

int sx_dk_remover_start(sx_docker_instance *inst)
{
    pthread_cond_init(&inst->garbage_cv, NULL);
    if (pthread_create(&inst->remover, NULL, remover_main, inst) != 0) {
        pthread_cond_destroy(&inst->garbage_cv);
        return -1;
    }
    inst->remover_started = 1;
    return 0;
}

void sx_dk_remover_stop(sx_docker_instance *inst)
{
    if (!inst->remover_started)
        return;
    pthread_mutex_lock(&inst->lock);
    inst->remover_stop = 1;
    pthread_cond_signal(&inst->garbage_cv);
    pthread_mutex_unlock(&inst->lock);
    pthread_join(inst->remover, NULL);
    pthread_cond_destroy(&inst->garbage_cv);
    inst->remover_started = 0;
}

void sx_dk_remove_later(sx_docker_instance *inst, const char *container_id, char *const *volumes,
                        size_t n_volumes)
{
    sx_dk_garbage *g = calloc(1, sizeof *g);
    if (g == NULL)
        return; /* the next start's sweep removes them */
    g->container_id = container_id && container_id[0] ? strdup(container_id) : NULL;
    g->volumes = calloc(n_volumes + 1, sizeof(char *));
    for (size_t i = 0; g->volumes && i < n_volumes; i++)
        if (volumes[i])
            g->volumes[g->n_volumes++] = strdup(volumes[i]);
    pthread_mutex_lock(&inst->lock);
    if (inst->garbage_tail)
        inst->garbage_tail->next = g;
    else
        inst->garbage_head = g;
    inst->garbage_tail = g;
    pthread_cond_signal(&inst->garbage_cv);
    pthread_mutex_unlock(&inst->lock);
}

/* ------------------------------------------------------------------ */
/* The leftover sweep                                                   */
/* ------------------------------------------------------------------ */

static char *label_filter(const sx_docker_instance *inst)
{
    cJSON *f = cJSON_CreateObject();
    cJSON *l = cJSON_AddArrayToObject(f, "label");
    char buf[600];
    cJSON_AddItemToArray(l, cJSON_CreateString(SX_DK_LABEL_MANAGED "=true"));
    snprintf(buf, sizeof buf, SX_DK_LABEL_HOST "=%s", inst->cfg.host_id);
    cJSON_AddItemToArray(l, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, SX_DK_LABEL_EXECUTOR "=%s", inst->name);
    cJSON_AddItemToArray(l, cJSON_CreateString(buf));
    char *json = cJSON_PrintUnformatted(f);
    cJSON_Delete(f);
    if (json == NULL)
        return NULL;
    size_t n = strlen(json) * 3 + 1;
    char *esc = malloc(n);
    if (esc && sx_dk_escape(json, esc, n) != 0) {
        free(esc);
        esc = NULL;
    }
    free(json);
    return esc;
}

static void record_leftover(sx_docker_instance *inst, const char *what, const char *id,
                            const cJSON *labels, const char *state)
{
    const sx_host_api *h = inst->plugin->host;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_EXECUTION);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_STEP);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "docker_leftover_removed");
    cJSON_AddStringToObject(o, "executor", inst->name);
    cJSON_AddStringToObject(o, "object", what);
    cJSON_AddStringToObject(o, "id", id);
    if (cJSON_IsString(ex))
        cJSON_AddStringToObject(o, "execution_id", ex->valuestring);
    if (cJSON_IsString(st))
        cJSON_AddStringToObject(o, "step_name", st->valuestring);
    if (state)
        cJSON_AddStringToObject(o, "state", state);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    /* Engine ids are shown short; a bind directory by its whole name */
    int shown = strcmp(what, "bind_dir") == 0 ? 200 : 12;
    h->log(inst->plugin->ctx, SX_LOG_WARN,
           "executor %s: removed leftover %s %.*s of execution %s step %s (state %s), left by "
           "a host that stopped mid-run", inst->name, what, shown, id,
           cJSON_IsString(ex) ? ex->valuestring : "?", cJSON_IsString(st) ? st->valuestring : "?",
           state ? state : "-");
    sx_error e;
    if (json == NULL || h->record(inst->plugin->ctx, "docker.leftover_removed", json, &e) != 0)
        h->log(inst->plugin->ctx, SX_LOG_ERROR,
               "executor %s: could not audit the removal of leftover %s %.*s", inst->name, what,
               shown, id);
    free(json);
}

/* GET `path` and parse it; NULL with err on failure. */
static cJSON *get_json(sx_docker_instance *inst, const char *path, long timeout_ms,
                       const sx_dk_abort *hook, const char *what, sx_error *err)
{
    sx_dk_response resp;
    if (sx_dk_call(&inst->client, "GET", path, NULL, NULL, 0, NULL, timeout_ms, hook, what, &resp,
                   err) != 0)
        return NULL;
    cJSON *j = resp.status == 200 ? cJSON_Parse(resp.body) : NULL;
    if (j == NULL) {
        char msg[600];
        sx_error_set(err, "backend_error", "cannot %s: the Docker Engine answered %ld: %s", what,
                     resp.status, sx_dk_message(&resp, msg, sizeof msg));
    }
    sx_dk_response_free(&resp);
    return j;
}

/* The labels of the listed container named `name` (NULL if not listed). */
static const cJSON *labels_of(const cJSON *containers, const char *name)
{
    const cJSON *c, *n;
    cJSON_ArrayForEach(c, containers) {
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(c, "Names")) {
            if (cJSON_IsString(n) && n->valuestring[0] == '/' &&
                strcmp(n->valuestring + 1, name) == 0)
                return cJSON_GetObjectItemCaseSensitive(c, "Labels");
        }
    }
    return NULL;
}

/* Bind directories whose container does not exist any more (a host killed
 * mid-run, or a kept container removed since); `containers` is the sweep's
 * listing, for the labels of containers it just removed. */
static int sweep_bind_dirs(sx_docker_instance *inst, const cJSON *containers, long timeout_ms,
                           const sx_dk_abort *hook)
{
    const sx_host_api *h = inst->plugin->host;
    sx_strlist names = {0, NULL};
    if (sx_dk_bind_stale(inst, &names) != 0)
        h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: cannot read bind_dir %s",
               inst->name, inst->cfg.bind_dir);
    int removed = 0;
    for (size_t i = 0; i < names.n; i++) {
        char path[300];
        snprintf(path, sizeof path, "/containers/%s/json", names.v[i]);
        sx_dk_response resp;
        sx_error e;
        if (sx_dk_call(&inst->client, "GET", path, NULL, NULL, 0, NULL, timeout_ms, hook,
                       "inspect a container", &resp, &e) != 0)
            break; /* the daemon went away: the next sweep */
        long status = resp.status;
        sx_dk_response_free(&resp);
        if (status != 404)
            continue; /* it exists (kept for inspection, or another host's) */
        if (sx_dk_bind_remove(inst, names.v[i]) != 0) {
            h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: leftover %s/%s not fully "
                   "removed", inst->name, inst->cfg.bind_dir, names.v[i]);
            continue;
        }
        record_leftover(inst, "bind_dir", names.v[i], labels_of(containers, names.v[i]), NULL);
        removed++;
    }
    sx_strlist_clear(&names);
    return removed;
}

int sx_dk_sweep_leftovers(sx_docker_instance *inst, long timeout_ms, const sx_dk_abort *hook,
                          sx_error *err)
{
    char *filter = label_filter(inst);
    if (filter == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    size_t n = strlen(filter) + 64;
    char *path = malloc(n);
    if (path == NULL) {
        free(filter);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    int removed = 0;
    snprintf(path, n, "/containers/json?all=1&filters=%s", filter);
    cJSON *list = get_json(inst, path, timeout_ms, hook, "list leftover containers", err);
    if (list == NULL) {
        free(path);
        free(filter);
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "Id");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(c, "Labels");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(c, "State");
        const cJSON *keep = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_KEEP);
        if (!cJSON_IsString(id))
            continue;
        /* kept on purpose (auto_remove: false) and finished: not a leftover */
        if (cJSON_IsString(keep) && cJSON_IsString(state) &&
            (strcmp(state->valuestring, "exited") == 0 || strcmp(state->valuestring, "dead") == 0))
            continue;
        if (remove_objects(inst, id->valuestring, NULL, 0, timeout_ms) != 0)
            continue; /* logged; the next sweep tries again */
        record_leftover(inst, "container", id->valuestring, labels,
                        cJSON_IsString(state) ? state->valuestring : NULL);
        removed++;
    }
    snprintf(path, n, "/volumes?filters=%s", filter);
    sx_error verr;
    cJSON *vl = get_json(inst, path, timeout_ms, hook, "list leftover volumes", &verr);
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(vl, "Volumes")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "Name");
        if (!cJSON_IsString(name))
            continue;
        char vpath[300];
        snprintf(vpath, sizeof vpath, "/volumes/%s", name->valuestring);
        sx_dk_response resp;
        sx_error e;
        if (sx_dk_call(&inst->client, "DELETE", vpath, NULL, NULL, 0, NULL, timeout_ms, NULL,
                       "remove a leftover volume", &resp, &e) != 0)
            continue;
        if (resp.status == 204) { /* 409: in use by a kept container */
            record_leftover(inst, "volume", name->valuestring,
                            cJSON_GetObjectItemCaseSensitive(v, "Labels"), NULL);
            removed++;
        }
        sx_dk_response_free(&resp);
    }
    cJSON_Delete(vl);
    if (inst->cfg.delivery == SX_DK_DELIVER_BIND)
        removed += sweep_bind_dirs(inst, list, timeout_ms, hook);
    cJSON_Delete(list);
    free(path);
    free(filter);
    inst->swept = 1;
    return removed;
}
