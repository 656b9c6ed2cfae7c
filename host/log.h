/* log.h - structured JSON log lines on stderr, one object per line. */
#ifndef SX_HOST_LOG_H
#define SX_HOST_LOG_H

#include <stdarg.h>
#include "sx/sx_types.h"
#include "sx/sx_plugin.h"

/* Parse "debug" | "info" | "warn" | "error".  Returns 0 or -1. */
int sx_log_level_parse(const char *text, sx_log_level *level);
void sx_log_set_level(sx_log_level level);
/* Log `fmt` as "msg", with "component" and optional extra JSON object
 * fields (`fields_json` may be NULL).  Thread-safe; one write per line. */
void sx_log_fields(sx_log_level level, const char *component,
                   const char *fields_json, const char *fmt, ...) SX_PRINTF(4, 5);
void sx_log_v(sx_log_level level, const char *component, const char *fields_json,
              const char *fmt, va_list ap);
#define sx_log(level, component, ...) sx_log_fields(level, component, NULL, __VA_ARGS__)
/* A line that marks a moment the spec's structured logging names:
 * "execution_start", "execution_complete", "approval_requested",
 * "approval_granted" (and their kin).  `event` becomes the line's "event"
 * field, beside the fields of `fields_json` (a JSON object, may be NULL;
 * its own "event" is replaced).  Never pass secret values. */
void sx_log_event(sx_log_level level, const char *component, const char *event,
                  const char *fields_json, const char *fmt, ...) SX_PRINTF(5, 6);

#endif
