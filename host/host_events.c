/* host_events.c - host.started and host.load on the bus (see host_events.h). */
#define _POSIX_C_SOURCE 200809L
#include "host_events.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus.h"
#include "executions.h"
#include "http.h"
#include "loader.h"

/* Called under the executions table's lock: format and publish, nothing
 * else (publishing never blocks). */
static void publish_load(void *arg, size_t running, size_t waiting, size_t max_concurrent)
{
    sx_host *host = arg;
    char json[160];
    snprintf(json, sizeof json, "{\"in_flight\":%zu,\"waiting\":%zu,\"max_concurrent\":%zu}",
             running, waiting, max_concurrent);
    sx_bus_publish(host->bus, "host.load", json);
}

void sx_host_events_start(sx_host *host)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", SX_HOST_VERSION);
    char abi[16];
    snprintf(abi, sizeof abi, "%d.%d", SX_ABI_MAJOR, SX_ABI_MINOR);
    cJSON_AddStringToObject(o, "abi", abi);
    cJSON *plugins = cJSON_AddArrayToObject(o, "plugins");
    for (size_t i = 0; i < host->n_plugins; i++) {
        const sx_plugin_descriptor *d = host->plugins[i]->desc;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", d->name);
        cJSON_AddStringToObject(p, "version", d->version);
        cJSON_AddStringToObject(p, "kind", sx_plugin_kind_name(d->kind));
        cJSON_AddStringToObject(p, "provides", d->provides);
        snprintf(abi, sizeof abi, "%u.%u", d->abi_major, d->abi_minor);
        cJSON_AddStringToObject(p, "abi", abi);
        cJSON_AddItemToArray(plugins, p);
    }
    cJSON *execs = cJSON_AddArrayToObject(o, "executors");
    for (size_t i = 0; i < host->n_executors; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", host->executors[i].name);
        cJSON_AddStringToObject(e, "kind", host->executors[i].kind);
        cJSON_AddStringToObject(e, "plugin", host->executors[i].plugin->desc->name);
        cJSON_AddItemToArray(execs, e);
    }
    cJSON_AddNumberToObject(o, "max_concurrent", (double)host->settings.max_concurrent);
    cJSON_AddItemToObject(o, "http", sx_http_describe(host->http));
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (json)
        sx_bus_publish(host->bus, "host.started", json);
    free(json);
    sx_executions_set_observer(host->executions, publish_load, host);
}

void sx_host_events_stop(sx_host *host)
{
    if (host->executions)
        sx_executions_set_observer(host->executions, NULL, NULL);
}
