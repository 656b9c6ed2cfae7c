/* log.c - structured JSON log lines on stderr. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include "sx/sx_util.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int sx_log_min_level = SX_LOG_INFO;

static const char *const sx_log_names[] = {"debug", "info", "warn", "error"};

int sx_log_level_parse(const char *text, sx_log_level *level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, sx_log_names[i]) == 0) {
            *level = (sx_log_level)i;
            return 0;
        }
    }
    if (strcmp(text, "warning") == 0) {
        *level = SX_LOG_WARN;
        return 0;
    }
    return -1;
}

void sx_log_set_level(sx_log_level level) { sx_log_min_level = (int)level; }

void sx_log_v(sx_log_level level, const char *component, const char *fields_json,
              const char *fmt, va_list ap)
{
    if ((int)level < SX_LOG_DEBUG || (int)level > SX_LOG_ERROR)
        level = SX_LOG_ERROR; /* a plugin passed a value outside the enum */
    if ((int)level < sx_log_min_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    char when[40];
    sx_time_utc(when, sizeof when, 3);

    cJSON *line = fields_json ? cJSON_Parse(fields_json) : NULL;
    if (line == NULL || !cJSON_IsObject(line)) {
        cJSON_Delete(line);
        line = cJSON_CreateObject();
    }
    cJSON_AddStringToObject(line, "time", when);
    cJSON_AddStringToObject(line, "level", sx_log_names[level]);
    cJSON_AddStringToObject(line, "component", component ? component : "host");
    cJSON_AddStringToObject(line, "msg", msg);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (text == NULL)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL; we write len + 1 bytes */
    ssize_t w = write(STDERR_FILENO, text, len + 1);
    (void)w;
    free(text);
}

void sx_log_fields(sx_log_level level, const char *component,
                   const char *fields_json, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_log_v(level, component, fields_json, fmt, ap);
    va_end(ap);
}

void sx_log_event(sx_log_level level, const char *component, const char *event,
                  const char *fields_json, const char *fmt, ...)
{
    if ((int)level < sx_log_min_level)
        return;
    cJSON *fields = fields_json ? cJSON_Parse(fields_json) : NULL;
    if (!cJSON_IsObject(fields)) {
        cJSON_Delete(fields);
        fields = cJSON_CreateObject();
    }
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "event");
    cJSON_AddStringToObject(fields, "event", event ? event : "");
    char *text = cJSON_PrintUnformatted(fields);
    cJSON_Delete(fields);
    va_list ap;
    va_start(ap, fmt);
    sx_log_v(level, component, text, fmt, ap);
    va_end(ap);
    free(text);
}
