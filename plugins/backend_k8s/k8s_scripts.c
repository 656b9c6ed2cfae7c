/*
 * k8s_scripts.c - load_script for exec.kubernetes: read a pre-registered
 * script (with.script_path) from the executor's scripts ConfigMap through
 * the API (GET configmaps/{scripts_configmap}).
 *
 * script_run hashes the text returned here, checks its size and lines and
 * hands it to the policy's script check; the run then carries exactly that
 * text in the per-execution Secret (k8s_job.c), so what runs is what was
 * hashed and checked, not whatever the ConfigMap holds when the pod starts.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "k8s_api.h"
#include "k8s_validate.h"
#include "sx/sx_util.h"

/* A ConfigMap holds at most 1 MiB; a bigger answer is not a ConfigMap. */
#define SX_K8S_CONFIGMAP_MAX (1024 * 1024)

/* The key's value: data (text) or binaryData (base64).  NULL when absent
 * (*present 0), or on bad base64 / out of memory (*present 1). */
static char *key_value(const cJSON *cm, const char *key, size_t *len, int *present)
{
    *present = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(cm, "data"), key);
    if (cJSON_IsString(v)) {
        *present = 1;
        *len = strlen(v->valuestring);
        char *t = malloc(*len + 1);
        if (t)
            memcpy(t, v->valuestring, *len + 1);
        return t;
    }
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(cm, "binaryData"), key);
    if (cJSON_IsString(v)) {
        *present = 1;
        return sx_k8s_b64decode(v->valuestring, len);
    }
    return NULL;
}

int sx_k8s_load_script(sx_k8s_instance *inst, const char *script_path, char **text, size_t *len,
                       sx_error *err)
{
    *text = NULL;
    *len = 0;
    const char *cm_name = inst->cfg.scripts_configmap;
    if (cm_name == NULL)
        return sx_error_set(err, "unsupported_parameter",
                            "with.script_path: executor '%s' has no scripts_configmap (the "
                            "ConfigMap of pre-registered scripts mounted at " SX_K8S_SCRIPTS_DIR
                            ")", inst->name);
    const char *why;
    const char *key = sx_k8s_script_key(script_path, &why);
    if (key == NULL)
        return sx_error_set(err, "invalid_parameter", "with.script_path '%s' %s (ConfigMap %s)",
                            script_path ? script_path : "", why, cm_name);

    char ns[300], name[800], path[1200], what[400];
    if (sx_k8s_escape(inst->namespace_, ns, sizeof ns) != 0 ||
        sx_k8s_escape(cm_name, name, sizeof name) != 0)
        return sx_error_set(err, "backend_error", "executor %s: the ConfigMap's path is too long",
                            inst->name);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", ns, name);
    snprintf(what, sizeof what, "read script %.200s from ConfigMap %.150s", key, cm_name);
    sx_k8s_call call = {0};
    sx_k8s_response resp;
    /* transport, 429/5xx -> kubernetes_unavailable; 401/403 ->
     * kubernetes_forbidden (RBAC: configmaps get) */
    if (sx_k8s_request(inst->client, SX_K8S_GET, path, NULL, NULL, 0, &call, what, &resp, err) !=
        0)
        return -1;
    int rc = -1;
    if (resp.status == 404) {
        sx_error_set(err, "config_error",
                     "with.script_path '%s': the scripts ConfigMap '%s' (option scripts_configmap "
                     "of executor '%s') does not exist in namespace '%s'", script_path, cm_name,
                     inst->name, inst->namespace_);
        goto out;
    }
    if (resp.status != 200) {
        sx_k8s_status_error(inst->client, &resp, what, err);
        goto out;
    }
    if (resp.len > 2 * SX_K8S_CONFIGMAP_MAX) {
        sx_error_set(err, "backend_error", "%s: the answer is %zu bytes, not a ConfigMap", what,
                     resp.len);
        goto out;
    }
    cJSON *cm = cJSON_ParseWithLength(resp.body, resp.len);
    if (!cJSON_IsObject(cm)) {
        cJSON_Delete(cm);
        sx_error_set(err, "backend_error", "%s: the answer is not a JSON object", what);
        goto out;
    }
    int present;
    *text = key_value(cm, key, len, &present);
    cJSON_Delete(cm);
    if (*text == NULL) {
        if (present)
            sx_error_set(err, "backend_error", "%s: binaryData is not base64, or out of memory",
                         what);
        else
            sx_error_set(err, "invalid_parameter",
                         "with.script_path '%s': ConfigMap '%s' (namespace '%s') has no key '%s'",
                         script_path, cm_name, inst->namespace_, key);
        goto out;
    }
    rc = 0;
out:
    sx_k8s_response_free(&resp);
    return rc;
}
