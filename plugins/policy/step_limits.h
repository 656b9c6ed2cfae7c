/*
 * step_limits.h - the configuration's caps on what a step may ask for, the same
 * for every backend (script_executor.limits, and security.max_timeout):
 * timeout, resources (refused above max_resources; default_resources, when
 * configured, fill what a step leaves unset, when its backend takes
 * `resources`),
 * backoff_limit and ttl_seconds_after_finished.
 *
 * Configured once at init, read-only afterwards (thread-safe).
 */
#ifndef SX_POLICY_STEP_LIMITS_H
#define SX_POLICY_STEP_LIMITS_H

#include <cjson/cJSON.h>

#include "sx/sx_plugin.h"

/* One resource quantity: the text as configured and its value (millicores
 * for cpu, bytes otherwise); set = 0 when not configured. */
typedef struct sx_quantity {
    int set;
    char text[32];
    int64_t value;
} sx_quantity;

enum { SX_RES_CPU, SX_RES_MEMORY, SX_RES_EPHEMERAL, SX_RES_N };
enum { SX_RES_REQUESTS, SX_RES_LIMITS, SX_RES_KINDS };

typedef struct sx_resources {
    sx_quantity q[SX_RES_KINDS][SX_RES_N];
} sx_resources;

typedef struct sx_limits {
    int64_t max_timeout_ms;             /* security.max_timeout */
    sx_resources max;                   /* limits.max_resources */
    sx_resources defaults;              /* limits.default_resources */
    int64_t max_backoff_limit;          /* <= 3 */
    int64_t max_ttl_seconds;            /* ttl_seconds_after_finished cap */
} sx_limits;

/* Parse `section` (script_executor.limits, may be NULL: the spec's caps,
 * no default resources).
 * Returns 0, or -1 with err (invalid_config). */
int sx_limits_configure(sx_limits *limits, int64_t max_timeout_ms, const sx_host_api *host,
                        sx_plugin_ctx *ctx, const sx_config_node *section, sx_error *err);

/* Check `with` (a JSON object, modified in place) against the caps:
 * returns 0, or -1 with err->code "invalid_parameter" and a message naming
 * the parameter and the cap.  When `takes_resources` (the executor's
 * backend lists "resources" in supported_params), unset requests/limits
 * are filled from default_resources and *changed is set. */
int sx_limits_apply(const sx_limits *limits, cJSON *with, int takes_resources, int *changed,
                    sx_error *err);

cJSON *sx_limits_describe(const sx_limits *limits);

/* "cpu", "memory", "ephemeral_storage" and "requests", "limits". */
extern const char *const sx_res_names[SX_RES_N];
extern const char *const sx_res_kind_names[SX_RES_KINDS];

#endif
