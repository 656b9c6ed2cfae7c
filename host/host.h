/*
 * host.h - the host: configuration, loaded plugins, executor instances, the
 * event bus and the table of executions.  One sx_host per process.
 */
#ifndef SX_HOST_HOST_H
#define SX_HOST_HOST_H

#include <pthread.h>
#include <stdatomic.h>

#include "sx/sx_backend.h"
#include "sx/sx_plugin.h"
#include "sx/sx_sink.h"
#include "sx/sx_step.h"

#include "loader.h"

struct sx_bus;
struct sx_executions;
struct sx_http;
struct sx_subs;
struct sx_approvals;

#define SX_HOST_VERSION "0.1.0"
#define SX_DEFAULT_MAX_OUTPUT_BYTES (1024 * 1024)

/* script_executor.server / plugins / logging, parsed. */
typedef struct sx_host_settings {
    char *listen;
    char *events;
    int64_t max_message_size;
    int64_t max_concurrent;
    int64_t shutdown_grace_ms;
    int64_t idempotency_retention;     /* finished results remembered */
    char *plugin_dir;
    sx_strlist load;
    char *default_executor;
    char *log_level;
    char *http;                        /* server.http, NULL/"" = off */
    int64_t http_max_body;
    const sx_config_node *auth;        /* server.auth (borrowed; policy.c parses it) */
} sx_host_settings;

/* A named executor: an instance of a backend plugin. */
typedef struct sx_executor {
    char *name;
    char *kind;
    int64_t max_output_bytes;
    struct sx_plugin_ctx *plugin;
    const sx_backend_ops *ops;
    void *instance;
    int line;                          /* where it is configured */
} sx_executor;

typedef struct sx_host {
    sx_config_node *config;            /* the whole file (owned) */
    const sx_config_node *root;        /* script_executor: */
    sx_host_settings settings;
    struct sx_plugin_ctx **plugins;
    size_t n_plugins;
    sx_executor *executors;
    size_t n_executors;
    sx_host_api api;
    struct sx_bus *bus;
    struct sx_executions *executions;
    struct sx_http *http;              /* HTTP listeners and routes (http.h) */
    struct sx_subs *subs;              /* plugins' bus subscriptions */
    struct sx_approvals *approvals;    /* the approval workflow, NULL when no store */
    pthread_mutex_t sections_lock;
    unsigned sections_used;            /* bit per known section read by a plugin */
    atomic_int accepting;              /* 0 once shutdown began */
    int auth_mode;                     /* sx_auth_mode of the listener (policy.h) */
    int ipc_permissions;               /* ipc:// socket file mode, -1 = umask's */
} sx_host;

/* Load config, plugins and executors.  plugin_dir may override the
 * config's plugins.dir (NULL = keep).  Returns 0 or -1 with err. */
int sx_host_open(sx_host *host, const char *config_path, const char *plugin_dir,
                 sx_error *err);
/* Start the bus (needs settings.events); 0 or -1 with err. */
int sx_host_start_bus(sx_host *host, sx_error *err);
/* Ask every event sink to flush. */
void sx_host_flush_sinks(sx_host *host);
/* Flush sinks, destroy executors, fini and unload plugins, free all. */
void sx_host_close(sx_host *host);

/* Lookup helpers (NULL when absent). */
sx_executor *sx_host_executor(sx_host *host, const char *name);
struct sx_plugin_ctx *sx_host_step_type(sx_host *host, const char *type);
/* Warn about config sections no loaded plugin read. */
void sx_host_report_unused_sections(sx_host *host);

/* script_executor.<section> for a plugin, marking it as read (NULL when
 * absent or not a plugin section). */
const sx_config_node *sx_host_config_section(sx_host *host, const char *section);

/* Fill the host API table (host_api.c). */
void sx_host_api_init(sx_host_api *api);

/* Durable record: every event sink, then the bus (records.c).
 * 0, or -1 with err->code "audit_unavailable". */
int sx_host_record(sx_host *host, const char *topic, const char *json, sx_error *err);

#endif
