/*
 * push.h - push the metrics to a Prometheus Pushgateway (the spec's
 * monitoring.pushgateway): every `interval`, and once more at shutdown,
 * PUT <url>/metrics/job/<job>/instance/<instance> with the same text that
 * /metrics serves (PUT replaces the group's previous metrics).  A failed
 * push is logged (once per run of failures) and retried at the next tick;
 * it never touches an execution.
 */
#ifndef SX_METRICS_PUSH_H
#define SX_METRICS_PUSH_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "prom.h"
#include "sx/sx_plugin.h"

typedef struct sx_pusher sx_pusher;

typedef struct sx_push_cfg {
    const char *url;            /* "http://pushgateway:9091" */
    const char *job;
    const char *instance;
    int64_t interval_ms;
    int64_t timeout_ms;
} sx_push_cfg;

/* Start the push thread.  cfg strings are copied; reg, host and ctx are
 * borrowed and must outlive the pusher.  Returns 0 with *out, or -1 with
 * err ("invalid_config" for a bad url; "out_of_memory"). */
int sx_pusher_start(const sx_push_cfg *cfg, sx_prom_registry *reg, const sx_host_api *host,
                    sx_plugin_ctx *ctx, sx_pusher **out, sx_error *err);

/* Stop the thread after one last push (bounded by the timeout), free.
 * NULL is a no-op. */
void sx_pusher_stop(sx_pusher *p);

/* {"url","interval_seconds","pushes","failures","last_error"} */
cJSON *sx_pusher_describe(sx_pusher *p);

/* The target URL for cfg (exposed for tests): url + "/metrics/job/JOB
 * /instance/INSTANCE", each value percent-escaped.  0, or -1 if it does
 * not fit. */
int sx_push_target(const sx_push_cfg *cfg, char *out, size_t size);

#endif
