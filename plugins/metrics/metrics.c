/*
 * metrics.c - the "metrics" service plugin (SX_KIND_SERVICE): counts from
 * the event bus (collector.c), serves /metrics in the Prometheus text format
 * on its own address (monitoring.metrics), and optionally pushes the same
 * text to a Pushgateway (monitoring.pushgateway, push.c).
 *
 * It sits beside the pipeline: one bus subscription (all topics, its own
 * host thread and bounded queue) and one HTTP route; nothing it does is on
 * an execution's path, and a slow scrape or a dead Pushgateway delays no
 * step.  See docs/metrics.md.
 *
 * Config (script_executor.monitoring):
 *   metrics:     enabled (true), port (9090), path ("/metrics"),
 *                address ("0.0.0.0"; an addition to the spec)
 *   pushgateway: enabled (false), url ("http://pushgateway:9091"), and, in
 *                addition to the spec: interval ("15s"), job
 *                ("script-executor"), instance (the host name), timeout
 *                ("5s")
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "prom.h"
#include "push.h"
#include "sx/sx_plugin.h"
#include "sx/sx_util.h"

typedef struct sx_monitoring_cfg {
    const sx_config_node *metrics;
    const sx_config_node *pushgateway;
} sx_monitoring_cfg;

typedef struct sx_scrape_cfg {
    int enabled;
    int64_t port;
    char *path;
    char *address;
} sx_scrape_cfg;

typedef struct sx_pushgw_cfg {
    int enabled;
    char *url;
    int64_t interval_ms;
    char *job;
    char *instance;
    int64_t timeout_ms;
} sx_pushgw_cfg;

static const sx_option monitoring_options[] = {
    {SX_OPT_NODE, "metrics", NULL, 0, offsetof(sx_monitoring_cfg, metrics),
     "the /metrics endpoint"},
    {SX_OPT_NODE, "pushgateway", NULL, 0, offsetof(sx_monitoring_cfg, pushgateway),
     "pushes to a Prometheus Pushgateway"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

#define SOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_scrape_cfg, field), desc}
static const sx_option scrape_options[] = {
    SOPT(SX_OPT_BOOL, "enabled", "true", enabled, "serve the metrics for scraping"),
    SOPT(SX_OPT_INT, "port", "9090", port, "TCP port of the metrics endpoint (0 = any free port)"),
    SOPT(SX_OPT_STRING, "path", "/metrics", path, "HTTP path of the metrics"),
    SOPT(SX_OPT_STRING, "address", "0.0.0.0", address, "address to listen on"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

#define POPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_pushgw_cfg, field), desc}
static const sx_option pushgw_options[] = {
    POPT(SX_OPT_BOOL, "enabled", "false", enabled, "push the metrics to a Pushgateway"),
    POPT(SX_OPT_STRING, "url", "http://pushgateway:9091", url, "the Pushgateway's base URL"),
    POPT(SX_OPT_DURATION, "interval", "15s", interval_ms, "time between pushes"),
    POPT(SX_OPT_STRING, "job", "script-executor", job, "grouping key: job"),
    POPT(SX_OPT_STRING, "instance", NULL, instance, "grouping key: instance (default: host name)"),
    POPT(SX_OPT_DURATION, "timeout", "5s", timeout_ms, "time limit of one push"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_metrics {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_monitoring_cfg cfg;
    sx_scrape_cfg scrape;
    sx_pushgw_cfg push;
    char listen[300];
    sx_prom_registry *reg;
    sx_collector *collector;
    sx_pusher *pusher;
} sx_metrics;

static void metrics_free(sx_metrics *m)
{
    sx_pusher_stop(m->pusher);
    sx_collector_free(m->collector);
    sx_prom_registry_free(m->reg);
    m->host->config_free(pushgw_options, &m->push);
    m->host->config_free(scrape_options, &m->scrape);
    m->host->config_free(monitoring_options, &m->cfg);
    free(m);
}

/* Bus subscription: every event, in order, on the host's thread for it. */
static void on_event(void *arg, const char *topic, const char *json)
{
    sx_metrics *m = arg;
    sx_collector_event(m->collector, topic, json);
}

/* GET <path>: the text format.  Runs on a host HTTP worker. */
static int serve_metrics(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    sx_metrics *m = arg;
    (void)req;
    size_t len = 0;
    char *text = sx_prom_render(m->reg, &len);
    if (text == NULL)
        return -1;
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; version=0.0.4; charset=utf-8");
    resp->body = text;
    resp->body_len = len;
    return 0;
}

static int check_scrape(const sx_metrics *m, sx_error *err)
{
    const sx_scrape_cfg *s = &m->scrape;
    if (s->port < 0 || s->port > 65535)
        return sx_error_set(err, "invalid_config",
                            "monitoring.metrics.port must be 0..65535 (0 = any free port), got %lld",
                            (long long)s->port);
    if (s->path == NULL || s->path[0] != '/')
        return sx_error_set(err, "invalid_config",
                            "monitoring.metrics.path must start with '/', got '%s'",
                            s->path ? s->path : "");
    if (s->address == NULL || s->address[0] == '\0' || strpbrk(s->address, "/ ?#") != NULL)
        return sx_error_set(err, "invalid_config",
                            "monitoring.metrics.address must be a host name or an IP address");
    return 0;
}

static int metrics_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    if (!SX_HAS_FIELD(host, sx_host_api, bus_subscribe))
        return sx_error_set(err, "plugin_abi_mismatch",
                            "the metrics plugin needs a host with ABI 1.2 (http_route, "
                            "bus_subscribe)");
    sx_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    m->host = host;
    m->ctx = ctx;
    if (host->config_apply(ctx, host->config_section(ctx, "monitoring"), monitoring_options,
                           &m->cfg, err) != 0 ||
        host->config_apply(ctx, m->cfg.metrics, scrape_options, &m->scrape, err) != 0 ||
        host->config_apply(ctx, m->cfg.pushgateway, pushgw_options, &m->push, err) != 0 ||
        check_scrape(m, err) != 0) {
        metrics_free(m);
        return -1;
    }
    if (!m->scrape.enabled && !m->push.enabled) {
        host->log(ctx, SX_LOG_INFO, "monitoring.metrics and monitoring.pushgateway are both "
                  "disabled: nothing is counted");
        *state = m;
        return 0;
    }
    m->reg = sx_prom_registry_new();
    m->collector = m->reg ? sx_collector_new(m->reg) : NULL;
    if (m->collector == NULL) {
        metrics_free(m);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    if (m->scrape.enabled) {
        const char *a = m->scrape.address;
        snprintf(m->listen, sizeof m->listen, strchr(a, ':') && a[0] != '[' ? "http://[%s]:%lld"
                                                                          : "http://%s:%lld",
                 a, (long long)m->scrape.port);
        sx_http_route route = {.struct_size = sizeof route, .method = "GET",
                               .path = m->scrape.path, .listen = m->listen,
                               .handler = serve_metrics, .arg = m};
        if (host->http_route(ctx, &route, err) != 0) {
            metrics_free(m);
            return -1;
        }
    }
    if (m->push.enabled) {
        char hn[256] = "";
        if (m->push.instance == NULL)
            gethostname(hn, sizeof hn - 1);
        sx_push_cfg pc = {.url = m->push.url, .job = m->push.job,
                          .instance = m->push.instance ? m->push.instance
                                                       : (hn[0] ? hn : "localhost"),
                          .interval_ms = m->push.interval_ms, .timeout_ms = m->push.timeout_ms};
        if (sx_pusher_start(&pc, m->reg, host, ctx, &m->pusher, err) != 0) {
            metrics_free(m);
            return -1;
        }
    }
    /* last: a subscription cannot be undone, and its thread uses m */
    if (host->bus_subscribe(ctx, "", on_event, m, err) != 0) {
        metrics_free(m);
        return -1;
    }
    *state = m;
    return 0;
}

/* The host stopped the subscription (every queued event counted) before
 * this: the pusher's last push carries the final counts. */
static void metrics_fini(void *state) { metrics_free(state); }

static char *metrics_describe(void *state)
{
    sx_metrics *m = state;
    cJSON *o = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddBoolToObject(s, "enabled", m->scrape.enabled);
    if (m->scrape.enabled) {
        cJSON_AddStringToObject(s, "listen", m->listen);
        cJSON_AddStringToObject(s, "path", m->scrape.path);
    }
    if (m->collector) {
        cJSON_AddNumberToObject(o, "events_handled", (double)sx_collector_handled(m->collector));
        cJSON_AddNumberToObject(o, "events_ignored", (double)sx_collector_ignored(m->collector));
        cJSON_AddNumberToObject(o, "series_refused", (double)sx_prom_overflow(m->reg));
    }
    if (m->pusher)
        cJSON_AddItemToObject(o, "pushgateway", sx_pusher_describe(m->pusher));
    else
        cJSON_AddFalseToObject(o, "pushgateway");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static const sx_service_ops metrics_ops = {
    .struct_size = sizeof(sx_service_ops),
    .describe = metrics_describe,
    .ready = NULL, /* a metrics exporter never holds back executions */
};

static const sx_plugin_descriptor metrics_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "metrics",
    .version = "0.1.0",
    .description = "Prometheus metrics from the event bus: /metrics and Pushgateway pushes",
    .kind = SX_KIND_SERVICE,
    .provides = "metrics.prometheus",
    .init = metrics_init,
    .fini = metrics_fini,
    .ops = &metrics_ops,
};

SX_PLUGIN_DEFINE(metrics_descriptor)
