/* health.c - /healthz and /readyz (see health.h). */
#define _POSIX_C_SOURCE 200809L
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "loader.h"
#include "plugin_ready.h"
#include "sx/sx_util.h"

static void add_check(cJSON *checks, cJSON *reasons, const char *plugin, const char *kind,
                      const char *instance, int rv, const sx_error *err, double seconds)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "plugin", plugin);
    cJSON_AddStringToObject(c, "kind", kind);
    if (instance)
        cJSON_AddStringToObject(c, "instance", instance);
    cJSON_AddBoolToObject(c, "ready", rv == 0);
    cJSON_AddNumberToObject(c, "seconds", (double)((long long)(seconds * 1000.0)) / 1000.0);
    if (rv != 0) {
        const char *code = err->code[0] ? err->code : "not_ready";
        const char *msg = err->message[0] ? err->message : "its ready op said no, without a reason";
        cJSON_AddStringToObject(c, "code", code);
        cJSON_AddStringToObject(c, "message", msg);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "plugin", plugin);
        if (instance)
            cJSON_AddStringToObject(r, "instance", instance);
        cJSON_AddStringToObject(r, "code", code);
        cJSON_AddStringToObject(r, "message", msg);
        cJSON_AddItemToArray(reasons, r);
    }
    cJSON_AddItemToArray(checks, c);
}

static int ask(sx_plugin_ready_fn fn, void *arg, sx_error *err, double *seconds)
{
    memset(err, 0, sizeof *err);
    double t0 = sx_now_monotonic();
    int rv = fn(arg, err) == 0 ? 0 : -1;
    *seconds = sx_now_monotonic() - t0;
    return rv;
}

int sx_host_readiness(sx_host *host, cJSON **report)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *reasons = cJSON_CreateArray();
    cJSON *checks = cJSON_CreateArray();
    if (!atomic_load(&host->accepting)) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "plugin", "host");
        cJSON_AddStringToObject(r, "code", "shutting_down");
        cJSON_AddStringToObject(r, "message", "the script executor is shutting down");
        cJSON_AddItemToArray(reasons, r);
    }
    sx_error err;
    double secs;
    /* backends: per executor instance */
    for (size_t i = 0; i < host->n_executors; i++) {
        sx_executor *ex = &host->executors[i];
        sx_plugin_ready_fn fn = sx_plugin_ready_op(ex->plugin->desc);
        if (fn == NULL || ex->instance == NULL)
            continue;
        int rv = ask(fn, ex->instance, &err, &secs);
        add_check(checks, reasons, ex->plugin->desc->name, "backend", ex->name, rv, &err, secs);
    }
    /* sinks, services, approval stores: per plugin */
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (!p->initialized || p->desc->kind == SX_KIND_BACKEND)
            continue;
        sx_plugin_ready_fn fn = sx_plugin_ready_op(p->desc);
        if (fn == NULL)
            continue;
        int rv = ask(fn, p->state, &err, &secs);
        add_check(checks, reasons, p->desc->name, sx_plugin_kind_name(p->desc->kind), NULL, rv,
                  &err, secs);
    }
    int ready = cJSON_GetArraySize(reasons) == 0;
    cJSON_AddStringToObject(out, "status", ready ? "ready" : "not_ready");
    if (!ready)
        cJSON_AddItemToObject(out, "reasons", reasons);
    else
        cJSON_Delete(reasons);
    cJSON_AddItemToObject(out, "checks", checks);
    *report = out;
    return ready;
}

static int respond(sx_http_response *resp, int status, cJSON *body)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (resp->body == NULL)
        return -1;
    resp->body_len = strlen(resp->body);
    return 0;
}

static int healthz(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return respond(resp, 200, o);
}

static int readyz(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)req;
    cJSON *report = NULL;
    int ready = sx_host_readiness(arg, &report);
    return respond(resp, ready ? 200 : 503, report);
}

int sx_health_add_routes(sx_host *host, sx_error *err)
{
    if (!sx_http_enabled(host->http))
        return 0;
    sx_http_route r = {.struct_size = sizeof r, .method = "GET", .path = "/healthz",
                       .handler = healthz, .arg = host};
    if (sx_http_add_route(host->http, "host", &r, err) != 0)
        return -1;
    r.path = "/readyz";
    r.handler = readyz;
    return sx_http_add_route(host->http, "host", &r, err);
}
