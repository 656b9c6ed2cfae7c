/*
 * backend_k8s.c - the "exec.kubernetes" execution backend: each step runs
 * as a batch/v1 Job, created through the Kubernetes REST API (no kubectl).
 *
 * This file: the plugin descriptor, instances (options, the API client and
 * the runtime), describe() and render().  The options and their layering
 * are k8s_options.c, the Job and Secret k8s_job.c, run() is k8s_run.c,
 * load_script() k8s_scripts.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_api.h"
#include "k8s_run.h"
#include "k8s_validate.h"
#include "sx/sx_util.h"

/* ------------------------------------------------------------------ */
/* Plugin                                                               */
/* ------------------------------------------------------------------ */

static int k8s_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    if (host == NULL || host->abi_major != SX_ABI_MAJOR ||
        !SX_HAS_FIELD(host, sx_host_api, exec_started))
        return sx_error_set(err, "invalid_config", "backend_k8s needs host API %d.0 or later",
                            SX_ABI_MAJOR);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return sx_error_set(err, "backend_error", "libcurl failed to initialise");
    sx_k8s_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) {
        curl_global_cleanup();
        return sx_error_set(err, "backend_error", "out of memory");
    }
    p->ctx = ctx;
    p->host = host;
    *state = p;
    return 0;
}

static void k8s_fini(void *state)
{
    free(state);
    curl_global_cleanup();
}

/* ------------------------------------------------------------------ */
/* Instances                                                            */
/* ------------------------------------------------------------------ */

static void instance_free(sx_k8s_instance *inst)
{
    if (inst == NULL)
        return;
    sx_k8s_runtime_free(inst->rt);
    sx_k8s_client_free(inst->client);
    sx_k8s_options_free(inst);
    free(inst->namespace_);
    free(inst->name);
    free(inst);
}

static int k8s_instance_create(void *plugin_state, const char *name, const sx_config_node *config,
                               void **instance, sx_error *err)
{
    sx_k8s_plugin *p = plugin_state;
    const sx_host_api *h = p->host;
    sx_k8s_instance *inst = calloc(1, sizeof *inst);
    if (inst == NULL)
        return sx_error_set(err, "invalid_config", "out of memory");
    inst->plugin = p;
    inst->name = strdup(name ? name : "kubernetes");
    if (inst->name == NULL) {
        free(inst);
        return sx_error_set(err, "invalid_config", "out of memory");
    }
    if (sx_k8s_options_apply(inst, config, err) != 0) {
        if (err->code[0] == '\0')
            sx_error_set(err, "invalid_config", "out of memory");
        instance_free(inst);
        return -1;
    }
    const sx_k8s_cfg *c = &inst->cfg;
    sx_k8s_conn_cfg conn = {c->kubeconfig, c->context, c->in_cluster, (long)c->api_timeout_ms,
                            c->in_cluster_dir};
    if (sx_k8s_client_new(&conn, &inst->client, err) != 0) {
        if (strncmp(err->message, "executor", 8) != 0) {
            char msg[SX_ERROR_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "%s", err->message);
            sx_error_set(err, "invalid_config", "executor '%s': %s", inst->name, msg);
        }
        instance_free(inst);
        return -1;
    }
    /* the namespace: the option, else the kubeconfig's or the pod's, else default */
    const char *ns = c->namespace_ ? c->namespace_ : sx_k8s_client_namespace(inst->client);
    inst->namespace_ = strdup(ns ? ns : "default");
    if (inst->namespace_ == NULL) {
        instance_free(inst);
        return sx_error_set(err, "invalid_config", "out of memory");
    }
    if (!c->namespace_ && ns) {
        if (!sx_k8s_dns_label_ok(ns)) {
            sx_error_set(err, "invalid_config", "executor '%s': the namespace '%s' from %s is "
                         "not a namespace name", inst->name, ns,
                         sx_k8s_client_source(inst->client));
            instance_free(inst);
            return -1;
        }
    }
    inst->rt = sx_k8s_runtime_new(inst, err);
    if (inst->rt == NULL) {
        if (err->code[0] == '\0')
            sx_error_set(err, "invalid_config", "executor '%s': out of memory", inst->name);
        instance_free(inst);
        return -1;
    }
    cJSON *w = sx_k8s_weakened(c);
    const cJSON *it;
    cJSON_ArrayForEach(it, w)
        h->log(p->ctx, SX_LOG_WARN, "executor %s: %s (the default is stricter)", inst->name,
               it->valuestring);
    cJSON_Delete(w);
    *instance = inst;
    return 0;
}

static void k8s_instance_destroy(void *instance)
{
    instance_free(instance);
}

/* ------------------------------------------------------------------ */
/* describe / render / run                                              */
/* ------------------------------------------------------------------ */

static char *k8s_describe(void *instance)
{
    sx_k8s_instance *inst = instance;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", SX_K8S_KIND);
    cJSON *api = cJSON_AddObjectToObject(o, "api");
    cJSON_AddStringToObject(api, "server", sx_k8s_client_server(inst->client));
    cJSON_AddStringToObject(api, "source", sx_k8s_client_source(inst->client));
    cJSON_AddStringToObject(api, "auth", sx_k8s_client_auth(inst->client));
    cJSON_AddStringToObject(o, "namespace", inst->namespace_);
    cJSON_AddItemToObject(o, "options", sx_k8s_options_json(&inst->cfg));
    cJSON_AddItemToObject(o, "weakened", sx_k8s_weakened(&inst->cfg));
    cJSON *rt = sx_k8s_runtime_describe(inst);
    if (rt)
        cJSON_AddItemToObject(o, "runtime", rt);
    char sel[512];
    if (sx_k8s_selector(inst, sel, sizeof sel) == 0)
        cJSON_AddStringToObject(o, "label_selector", sel);
    cJSON *sp = cJSON_AddArrayToObject(o, "supported_params");
    for (const char *const *s = sx_k8s_supported_params; *s; s++)
        cJSON_AddItemToArray(sp, cJSON_CreateString(*s));
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    sx_service catalog;
    const sx_k8s_plugin *p = inst->plugin;
    int have_catalog = p->host->service_find(p->ctx, SX_KIND_IMAGE_CATALOG, NULL, &catalog) == 0;
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        have_catalog ? "with.image_ref is resolved by the image catalog plugin before this backend "
                       "sees it"
                     : "with.image_ref needs the image catalog plugin (not loaded): it is refused "
                       "with unsupported_parameter; name the image with with.image"));
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        "the inline script and stdin travel in a per-execution Secret owned by the Job (deleted "
        "with it), mounted at " SX_K8S_RUN_DIR "; stdin needs /bin/sh in the image"));
    if (inst->cfg.scripts_configmap)
        cJSON_AddItemToArray(notes, cJSON_CreateString(
            "with.script_path is read from the scripts ConfigMap when the step is prepared "
            "(hashed and checked) and that text runs, from the per-execution Secret; the "
            "ConfigMap is also mounted at " SX_K8S_SCRIPTS_DIR " for the files a script "
            "sources"));
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        "log_streams: stdout and stderr are read apart only where the server takes the log "
        "`stream` parameter (Kubernetes 1.32+, PodLogsQueryStream); elsewhere stderr is merged "
        "into stdout (see runtime.log_streams)"));
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        "resource_usage comes from metrics.k8s.io when the cluster serves it, else null"));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int k8s_render(void *instance, const sx_exec_spec *spec, char **json_out, sx_error *err)
{
    sx_k8s_instance *inst = instance;
    sx_k8s_plan plan;
    if (sx_k8s_plan_build(inst, spec, &plan, err) != 0)
        return -1;
    cJSON *o = sx_k8s_plan_shown(&plan);
    cJSON_AddStringToObject(o, "server", sx_k8s_client_server(inst->client));
    *json_out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    sx_k8s_plan_free(&plan);
    return *json_out ? 0 : sx_error_set(err, "out_of_memory", "out of memory");
}

static int k8s_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                   sx_exec_result *result, sx_error *err)
{
    return sx_k8s_run(instance, spec, exec, result, err);
}

/* script_path: the text from the scripts ConfigMap (k8s_scripts.c); the
 * run carries it in the per-execution Secret. */
static int k8s_load_script(void *instance, const char *script_path, char **text, size_t *len,
                           sx_error *err)
{
    return sx_k8s_load_script(instance, script_path, text, len, err);
}

/* Readiness (/readyz): one list of this executor's Jobs, limit 1, within
 * about a second.  It proves the server answers, the credentials hold and
 * RBAC lets the executor see its Jobs; its answer is not used. */
#define SX_K8S_READY_TIMEOUT_MS 1000

static int k8s_ready(void *instance, sx_error *err)
{
    sx_k8s_instance *inst = instance;
    char ns[300], sel[512], esel[1536], path[2048];
    if (sx_k8s_escape(inst->namespace_, ns, sizeof ns) != 0 ||
        sx_k8s_selector(inst, sel, sizeof sel) != 0 || sx_k8s_escape(sel, esel, sizeof esel) != 0)
        return sx_error_set(err, "backend_error", "executor %s: the label selector is too long",
                            inst->name);
    snprintf(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs?limit=1&labelSelector=%s", ns,
             esel);
    sx_k8s_call call = {.timeout_ms = SX_K8S_READY_TIMEOUT_MS};
    sx_k8s_response resp;
    const char *what = "list the executor's Jobs (readiness)";
    if (sx_k8s_request(inst->client, SX_K8S_LIST, path, NULL, NULL, 0, &call, what, &resp, err) !=
        0)
        return -1;
    int rc = 0;
    if (resp.status != 200)
        rc = sx_k8s_status_error(inst->client, &resp, what, err);
    sx_k8s_response_free(&resp);
    return rc;
}

static const sx_backend_ops k8s_ops = {
    .struct_size = sizeof(sx_backend_ops),
    .supported_params = sx_k8s_supported_params,
    .instance_create = k8s_instance_create,
    .instance_destroy = k8s_instance_destroy,
    .describe = k8s_describe,
    .render = k8s_render,
    .run = k8s_run,
    .load_script = k8s_load_script,
    .ready = k8s_ready,
};

static const sx_plugin_descriptor k8s_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "backend_k8s",
    .version = "0.1.0",
    .description = "exec.kubernetes: run scripts as Kubernetes Jobs through the API server",
    .kind = SX_KIND_BACKEND,
    .provides = SX_K8S_KIND,
    .init = k8s_init,
    .fini = k8s_fini,
    .ops = &k8s_ops,
};

SX_PLUGIN_DEFINE(k8s_descriptor)
