/* audit_settings.c - the audit section and the content flags (see audit_settings.h). */
#define _POSIX_C_SOURCE 200809L
#include "audit_settings.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define AOPT(type, name, def, field, desc) \
    {type, name, def, 0, offsetof(sx_audit_settings, field), desc}
const sx_option sx_audit_options[] = {
    AOPT(SX_OPT_BOOL, "enabled", "true", enabled, "write audit records"),
    AOPT(SX_OPT_STRING, "log_file", "/var/log/ocr/script-audit.log", log_file,
         "audit_file: the JSON lines file (hash-chained)"),
    AOPT(SX_OPT_SIZE, "rotate_size", "100Mi", rotate_size,
         "audit_file: rotate the file once it reaches this size; 0 = never"),
    AOPT(SX_OPT_INT, "rotate_keep", "10", rotate_keep,
         "audit_file: rotated files kept (the oldest are deleted); 0 = keep all"),
    AOPT(SX_OPT_NODE, "siem", NULL, siem, "SIEM delivery (audit_siem plugin)"),
    AOPT(SX_OPT_BOOL, "log_script_content", "true", log_script_content, "keep the script text"),
    AOPT(SX_OPT_BOOL, "log_script_output", "true", log_script_output, "keep stdout/stderr"),
    AOPT(SX_OPT_BOOL, "log_environment", "false", log_environment,
         "keep env values (names are always kept)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

char *sx_audit_filter(const sx_audit_settings *s, const char *json, const char *const *drop)
{
    cJSON *rec = cJSON_Parse(json);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        return NULL;
    }
    if (!s->log_script_content)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "script");
    if (!s->log_script_output) {
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "stdout");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "stderr");
    }
    cJSON *env = cJSON_GetObjectItemCaseSensitive(rec, "env");
    if (env && !s->log_environment) {
        cJSON *names = cJSON_CreateArray();
        for (const cJSON *it = cJSON_IsObject(env) ? env->child : NULL; it; it = it->next)
            cJSON_AddItemToArray(names, cJSON_CreateString(it->string));
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "env");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "env_names");
        cJSON_AddItemToObject(rec, "env_names", names);
    }
    for (const char *const *d = drop; d && *d; d++)
        cJSON_DeleteItemFromObjectCaseSensitive(rec, *d);
    char *out = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    return out;
}
