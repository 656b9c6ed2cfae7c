/* host_api.c - the table of host services handed to plugins (sx_host_api). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "exec.h"
#include "host.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "records.h"
#include "subscriptions.h"
#include "sx/sx_util.h"

static void api_log(sx_plugin_ctx *ctx, sx_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_log_v(level, ctx ? ctx->desc->name : "plugin", NULL, fmt, ap);
    va_end(ap);
}

static const sx_config_node *api_config_section(sx_plugin_ctx *ctx, const char *section)
{
    return sx_host_config_section(ctx->host, section);
}

static int api_config_apply(sx_plugin_ctx *ctx, const sx_config_node *node, const sx_option *opts,
                            void *dst, sx_error *err)
{
    (void)ctx;
    return sx_cfg_apply(node, opts, dst, err);
}

static int api_publish(sx_plugin_ctx *ctx, const char *topic, const char *json)
{
    return sx_bus_publish(ctx->host->bus, topic, json);
}

/* A plugin's record gets what every audit record has: time, topic, the
 * plugin's name and a record_id (unless the plugin set them). */
static int api_record(sx_plugin_ctx *ctx, const char *topic, const char *json, sx_error *err)
{
    cJSON *rec = cJSON_Parse(json);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        return sx_error_set(err, "audit_unavailable", "record for %s is not a JSON object", topic);
    }
    if (!cJSON_HasObjectItem(rec, "time")) {
        char when[40];
        sx_time_utc(when, sizeof when, 6);
        cJSON_AddStringToObject(rec, "time", when);
    }
    if (!cJSON_HasObjectItem(rec, "topic"))
        cJSON_AddStringToObject(rec, "topic", topic);
    if (!cJSON_HasObjectItem(rec, "plugin"))
        cJSON_AddStringToObject(rec, "plugin", ctx->desc->name);
    sx_record_stamp(rec);
    char *full = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    if (full == NULL)
        return sx_error_set(err, "audit_unavailable", "out of memory encoding a record");
    int rv = sx_host_record(ctx->host, topic, full, err);
    free(full);
    return rv;
}

static int api_service_find(sx_plugin_ctx *ctx, sx_plugin_kind kind, const char *name,
                            sx_service *out)
{
    sx_host *host = ctx->host;
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->kind = kind;
    if (kind == SX_KIND_BACKEND) {
        sx_executor *ex = sx_host_executor(host, name);
        if (ex == NULL)
            return -1;
        out->name = ex->name;
        out->provides = ex->plugin->desc->provides;
        out->ops = ex->ops;
        out->instance = ex->instance;
        return 0;
    }
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind == kind && p->initialized &&
            (name == NULL || strcmp(p->desc->provides, name) == 0)) {
            out->name = p->desc->name;
            out->provides = p->desc->provides;
            out->ops = p->desc->ops;
            out->instance = p->state;
            return 0;
        }
    }
    return -1;
}

/* ABI 1.2: the policy pipeline (policy.c).  caller_authenticate runs the
 * policy plugins' authenticate chain (trusted claimed identity when none is
 * loaded); exec_check_script asks every policy plugin about the script of
 * this execution (exec NULL: the render in progress on this thread). */
static int api_caller_authenticate(sx_plugin_ctx *ctx, const sx_caller *caller, sx_identity *id,
                                   sx_error *err)
{
    return sx_policy_authenticate(ctx->host, caller, id, err);
}

static int api_exec_check_script(sx_exec *exec, const char *interpreter, const char *script,
                                 size_t script_len, char **findings, sx_error *err)
{
    return sx_policy_check_script(exec ? exec->host : NULL, exec ? exec->policy : NULL,
                                  interpreter, script, script_len, findings, err);
}

/* The route is copied into the listener's table (http.c); the handler
 * runs on the host's HTTP worker threads until shutdown, before fini(). */
static int api_http_route(sx_plugin_ctx *ctx, const sx_http_route *route, sx_error *err)
{
    return sx_http_add_route(ctx->host->http, ctx->desc->name, route, err);
}

/* A thread and a bounded queue per subscription (subscriptions.c); fn runs
 * there until the host stops the subscriptions, before any fini(). */
static int api_bus_subscribe(sx_plugin_ctx *ctx, const char *topic_prefix, sx_event_fn fn,
                             void *arg, sx_error *err)
{
    return sx_subs_add(ctx->host->subs, ctx->desc->name, topic_prefix, fn, arg, err);
}

void sx_host_api_init(sx_host_api *api)
{
    memset(api, 0, sizeof *api);
    api->struct_size = sizeof *api;
    api->abi_major = SX_ABI_MAJOR;
    api->abi_minor = SX_ABI_MINOR;
    api->log = api_log;
    api->config_section = api_config_section;
    api->config_apply = api_config_apply;
    api->config_free = sx_cfg_options_free;
    api->config_kind = sx_cfg_kind;
    api->config_scalar = sx_cfg_scalar;
    api->config_len = sx_cfg_len;
    api->config_at = sx_cfg_at;
    api->config_key_at = sx_cfg_key_at;
    api->config_get = sx_cfg_get;
    api->config_line = sx_cfg_line;
    api->config_path = sx_cfg_path;
    api->publish = api_publish;
    api->record = api_record;
    api->service_find = api_service_find;
    api->exec_output = sx_exec_output_cb;
    api->exec_cancel_fd = sx_exec_cancel_fd_cb;
    api->exec_cancelled = sx_exec_cancelled_cb;
    api->exec_started = sx_exec_started_cb;
    api->exec_set_info = sx_exec_set_info_cb;
    /* 1.2 */
    api->caller_authenticate = api_caller_authenticate;
    api->exec_check_script = api_exec_check_script;
    api->http_route = api_http_route;
    api->bus_subscribe = api_bus_subscribe;
}
