/* params.c - the script.run parameter table (see params.h). */
#define _POSIX_C_SOURCE 200809L
#include "params.h"

#include <math.h>
#include <string.h>

#include "sx/sx_util.h"

const sx_param sx_script_run_params[] = {
    {"inline_script", SX_P_STRING, 1, NULL, "script text (exactly one of inline_script, script_path)"},
    {"script_path", SX_P_STRING, 1, NULL, "pre-registered script, e.g. /scripts/check.sh"},
    {"executor", SX_P_STRING, 1, "default_executor", "named executor from the config"},
    {"interpreter", SX_P_STRING, 1, "/bin/bash", "/bin/bash | /bin/sh | python3 | ruby"},
    {"args", SX_P_STRLIST, 1, NULL, "arguments passed to the script"},
    {"working_dir", SX_P_STRING, 1, "executor default", "working directory"},
    {"timeout", SX_P_STRING, 1, "security.default_timeout (5m)", "maximum run time, max security.max_timeout (30m)"},
    {"env", SX_P_STRMAP, 1, NULL, "environment variables from literal values"},
    {"stdin", SX_P_STRING, 1, NULL, "data passed to the script on stdin"},
    {"approval_required", SX_P_BOOL, 1, "false", "require approval before running (needs an approval plugin)"},
    {"approvers", SX_P_STRLIST, 1, NULL, "groups that may approve"},
    {"image", SX_P_STRING, 0, "image.default_image", "container image"},
    {"image_ref", SX_P_STRING, 0, NULL, "image catalog reference"},
    {"image_pull_policy", SX_P_STRING, 0, "IfNotPresent", "Always | IfNotPresent | Never"},
    {"image_pull_secret", SX_P_STRING, 0, NULL, "registry credential name"},
    {"env_from_secret", SX_P_OBJECT, 0, NULL, "env vars from secrets: NAME: {secret_name, key}"},
    {"env_from_configmap", SX_P_OBJECT, 0, NULL, "env vars from configmaps: NAME: {configmap_name, key}"},
    {"secret_env_all", SX_P_STRLIST, 0, NULL, "load every key of these secrets as env vars"},
    {"configmap_env_all", SX_P_STRLIST, 0, NULL, "load every key of these configmaps as env vars"},
    {"volumes_from_secret", SX_P_OBJLIST, 0, NULL, "mount secrets as files"},
    {"volumes_from_configmap", SX_P_OBJLIST, 0, NULL, "mount configmaps as files"},
    {"node_selector", SX_P_STRMAP, 0, NULL, "Kubernetes node selector labels"},
    {"tolerations", SX_P_OBJLIST, 0, NULL, "Kubernetes tolerations"},
    {"affinity", SX_P_OBJECT, 0, NULL, "Kubernetes node/pod affinity and anti-affinity"},
    {"priority_class_name", SX_P_STRING, 0, NULL, "Kubernetes priority class"},
    {"resources", SX_P_OBJECT, 0, NULL, "requests/limits: cpu, memory, ephemeral_storage"},
    {"allowed_commands", SX_P_STRLIST, 0, NULL, "command allowlist (script validator)"},
    {"blocked_commands", SX_P_STRLIST, 0, NULL, "extra blocked commands (script validator)"},
    {"service_account", SX_P_STRING, 0, "script-executor-runner", "Kubernetes service account"},
    {"ttl_seconds_after_finished", SX_P_INT, 0, "300", "time to keep the Job after it finished"},
    {"backoff_limit", SX_P_INT, 0, "0", "retries on failure, max 3"},
    {"labels", SX_P_STRMAP, 0, NULL, "extra labels"},
    {"annotations", SX_P_STRMAP, 0, NULL, "extra annotations"},
    {NULL, 0, 0, NULL, NULL}};

const sx_param *sx_param_find(const char *name)
{
    for (const sx_param *p = sx_script_run_params; p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static const char *type_name(sx_param_type t)
{
    switch (t) {
    case SX_P_STRING: return "a string";
    case SX_P_STRLIST: return "a list of strings";
    case SX_P_STRMAP: return "a map of strings";
    case SX_P_MAP:
    case SX_P_OBJECT: return "an object";
    case SX_P_OBJLIST: return "a list of objects";
    case SX_P_INT: return "an integer";
    case SX_P_BOOL: return "a boolean";
    }
    return "?";
}

static int scalar_ok(const cJSON *v)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v);
}

static int type_ok(const cJSON *v, sx_param_type t)
{
    switch (t) {
    case SX_P_STRING: return cJSON_IsString(v);
    case SX_P_BOOL: return cJSON_IsBool(v);
    case SX_P_INT:
        return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) < 9e15;
    case SX_P_MAP:
    case SX_P_OBJECT: return cJSON_IsObject(v);
    case SX_P_STRLIST:
        if (!cJSON_IsArray(v))
            return 0;
        for (const cJSON *i = v->child; i; i = i->next)
            if (!cJSON_IsString(i))
                return 0;
        return 1;
    case SX_P_OBJLIST:
        if (!cJSON_IsArray(v))
            return 0;
        for (const cJSON *i = v->child; i; i = i->next)
            if (!cJSON_IsObject(i))
                return 0;
        return 1;
    case SX_P_STRMAP:
        /* numbers and booleans are accepted and passed on as text: YAML
         * writes `PORT: 5432` and `DEBUG: true` without quotes */
        if (!cJSON_IsObject(v))
            return 0;
        for (const cJSON *i = v->child; i; i = i->next)
            if (!scalar_ok(i))
                return 0;
        return 1;
    }
    return 0;
}

int sx_params_check(const cJSON *with, sx_error *err)
{
    for (const cJSON *it = with->child; it; it = it->next) {
        const sx_param *p = sx_param_find(it->string);
        if (p == NULL)
            return sx_error_set(err, "invalid_parameter",
                                "unknown parameter 'with.%s' for script.run (see `sxctl describe` "
                                "for the parameter list)", it->string);
        if (cJSON_IsNull(it))
            continue;
        if (!type_ok(it, p->type))
            return sx_error_set(err, "invalid_parameter", "parameter 'with.%s' must be %s",
                                it->string, type_name(p->type));
    }
    return 0;
}

char *sx_params_describe(void)
{
    cJSON *arr = cJSON_CreateArray();
    for (const sx_param *p = sx_script_run_params; p->name; p++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "type", type_name(p->type));
        cJSON_AddBoolToObject(o, "common", p->common);
        if (p->default_text)
            cJSON_AddStringToObject(o, "default", p->default_text);
        cJSON_AddStringToObject(o, "description", p->description);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}
