/*
 * sx_plugin.h - the plugin ABI of the script executor.
 *
 * A plugin is a shared object that exports exactly one function,
 * SX_PLUGIN_ENTRY_NAME ("sx_plugin_entry"), returning a static descriptor.
 * The host checks the descriptor's ABI version, calls init() with a table of
 * host services (sx_host_api), and from then on reaches the plugin through the
 * kind-specific ops table the descriptor points to (sx_step.h, sx_backend.h,
 * sx_sink.h, sx_policy.h, sx_catalog.h, sx_approval.h; sx_service_ops
 * below).
 *
 * Versioning (the sqlite3_vfs pattern):
 *   - abi_major changes when anything existing changes meaning or layout; the
 *     host refuses a plugin of another major.
 *   - abi_minor grows when fields or functions are appended to the END of a
 *     struct.  A host refuses a plugin built for a newer minor than it knows;
 *     a plugin built for an older minor loads, and the host reads only the
 *     fields its struct_size covers (SX_HAS_FIELD).  Plugins do the same with
 *     the host API table.
 *
 * History:
 *   1.0  first release.
 *   1.1  sx_host_api.exec_set_info.
 *   1.2  kinds SX_KIND_POLICY (sx_policy.h), SX_KIND_IMAGE_CATALOG
 *        (sx_catalog.h), SX_KIND_APPROVAL (sx_approval.h) and
 *        SX_KIND_SERVICE (sx_service_ops below); sx_host_api.caller_authenticate,
 *        exec_check_script, http_route, bus_subscribe (with the structs
 *        sx_http_request / sx_http_response / sx_http_route and the types
 *        sx_http_handler, sx_event_fn); sx_backend_ops.ready,
 *        sx_sink_ops.ready; sx_util.h: sx_identity_clear().
 * Every previous minor's headers are kept, frozen, in tests/fixtures/sdk-1.N;
 * plugins built from them must keep loading (tests/unit/test_loader.c,
 * test_abi_layout.c).  Before bumping to 1.3: copy these headers (1.2) byte
 * for byte to tests/fixtures/sdk-1.2/include/sx/ with a README and
 * SHA256SUMS (see tests/fixtures/sdk-1.1/README.md), build the fixture
 * plugin from them too, then append the new fields here and record them in
 * tests/unit/test_abi_layout.c.
 *
 * Ownership: every function says who owns what it receives and returns.
 * "Borrowed" means valid for the duration of the call only; copy to keep.
 *
 * Threading: init/fini and instance create/destroy run on the host's main
 * thread.  Ops marked "concurrent" are called from many threads at once and
 * must be thread-safe.  Host API functions are all thread-safe.
 */
#ifndef SX_PLUGIN_H
#define SX_PLUGIN_H

#include "sx_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SX_ABI_MAJOR 1
#define SX_ABI_MINOR 2

#define SX_PLUGIN_ENTRY_NAME "sx_plugin_entry"

#if defined(__GNUC__)
#define SX_PLUGIN_EXPORT __attribute__((visibility("default")))
#define SX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SX_PLUGIN_EXPORT
#define SX_PRINTF(a, b)
#endif

/* What a plugin is.  Values are stable; new kinds are appended. */
typedef enum sx_plugin_kind {
    SX_KIND_STEP_TYPE = 1,      /* handles a step "type" (ops: sx_step_ops) */
    SX_KIND_BACKEND = 2,        /* execution backend (ops: sx_backend_ops) */
    SX_KIND_EVENT_SINK = 3,     /* durable event sink (ops: sx_sink_ops) */
    SX_KIND_APPROVAL = 4,       /* approval store (ops: sx_approval_ops), since 1.2 */
    SX_KIND_IMAGE_CATALOG = 5,  /* image catalog (ops: sx_catalog_ops), since 1.2 */
    SX_KIND_POLICY = 6,         /* identity, RBAC, script checks (ops:
                                   sx_policy_ops), since 1.2 */
    SX_KIND_SERVICE = 7         /* a service beside the pipeline (metrics
                                   exporter, ...): does its work from init()
                                   with host services such as http_route and
                                   bus_subscribe (ops: sx_service_ops),
                                   since 1.2 */
} sx_plugin_kind;

/* Opaque handles owned by the host. */
typedef struct sx_plugin_ctx sx_plugin_ctx;   /* one per loaded plugin */
typedef struct sx_config_node sx_config_node; /* a node of the YAML config */
typedef struct sx_exec sx_exec;               /* one execution in flight */
typedef struct sx_caller sx_caller;           /* sx_policy.h */
typedef struct sx_identity sx_identity;       /* sx_policy.h */

/* ---------------------------------------------------------------------
 * HTTP routes (since 1.2).  The host serves HTTP (server.http, and any
 * other address a route names) and hands matching requests to the plugin
 * that registered the route.
 * ------------------------------------------------------------------- */
typedef struct sx_http_request sx_http_request;
struct sx_http_request {
    uint32_t struct_size;
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* the URI's path, percent-decoded, no query */
    const char *query;          /* the raw query after '?', "" when none */
    const char *body;           /* not NUL-safe: use body_len; "" when none */
    size_t body_len;
    const char *remote_addr;    /* "127.0.0.1:53412", may be "" */
    /* A request header by name (case-insensitive), or NULL.  The returned
     * string is borrowed like the request. */
    const char *(*header)(const sx_http_request *req, const char *name);
    void *host_private;         /* the host's; do not touch */
    /* Fields above are valid for ABI minor 2. */
};

/* The handler's answer.  The host zeroes it, sets struct_size and status
 * 200 and content_type "application/json". */
typedef struct sx_http_response {
    uint32_t struct_size;
    int status;                 /* HTTP status code */
    char content_type[96];
    char *body;                 /* malloc(3)ed by the handler, host frees; may be NULL */
    size_t body_len;
    /* Fields above are valid for ABI minor 2. */
} sx_http_response;

/* Handle one request: fill resp and return 0; -1 makes a 500 with a JSON
 * error.  req is borrowed for the call.  Called concurrently from the
 * host's HTTP threads; must not block for long (no step runs here). */
typedef int (*sx_http_handler)(void *arg, const sx_http_request *req,
                               sx_http_response *resp);

typedef struct sx_http_route {
    uint32_t struct_size;
    const char *method;         /* "GET", "POST", ... ; NULL = any */
    const char *path;           /* "/metrics", or a prefix ending in '/'
                                   ("/api/v1/approvals/") that matches
                                   everything below it */
    const char *listen;         /* NULL = the host's server.http address;
                                   else "http://ADDR:PORT" of its own */
    sx_http_handler handler;
    void *arg;                  /* passed to handler, owned by the plugin */
    /* Fields above are valid for ABI minor 2. */
} sx_http_route;

/* An event from the bus (bus_subscribe).  topic and json are borrowed for
 * the call. */
typedef void (*sx_event_fn)(void *arg, const char *topic, const char *json);

/* ---------------------------------------------------------------------
 * Declarative options (the Fluent Bit config-map pattern).  A plugin
 * describes its options in a table ending with {0}; the host parses a config
 * map against it, refuses unknown keys, wrong types and missing required
 * keys with the key's path and line, and stores values at dst + offset.
 * ------------------------------------------------------------------- */
typedef enum sx_option_type {
    SX_OPT_END = 0,
    SX_OPT_STRING,      /* char *            (NULL when absent, no default) */
    SX_OPT_INT,         /* int64_t */
    SX_OPT_BOOL,        /* int (0/1) */
    SX_OPT_DURATION,    /* int64_t milliseconds; "30s", "5m", "1h30m", "250ms" */
    SX_OPT_SIZE,        /* int64_t bytes; 1048576, "64Ki", "10Mi", "1Gi", "5MB" */
    SX_OPT_STRLIST,     /* sx_strlist        (empty when absent) */
    SX_OPT_STRMAP,      /* sx_strmap         (empty when absent) */
    SX_OPT_NODE         /* const sx_config_node * (borrowed, NULL when absent) */
} sx_option_type;

#define SX_OPT_REQUIRED 0x1

typedef struct sx_option {
    sx_option_type type;
    const char *name;           /* key in the YAML map */
    const char *default_value;  /* as YAML text; NULL = none */
    int flags;                  /* SX_OPT_REQUIRED */
    size_t offset;              /* offsetof(your_struct, field) */
    const char *description;    /* shown by `describe` */
} sx_option;

/* Kinds of config nodes. */
typedef enum sx_config_kind {
    SX_CFG_NONE = 0, SX_CFG_SCALAR, SX_CFG_SEQUENCE, SX_CFG_MAP
} sx_config_kind;

/* Another plugin's service, found by kind and name (see service_find). */
typedef struct sx_service {
    uint32_t struct_size;
    sx_plugin_kind kind;
    const char *name;       /* instance name ("shell"), borrowed from the host */
    const char *provides;   /* e.g. "exec.native", borrowed from the plugin */
    const void *ops;        /* the kind's ops table, borrowed */
    void *instance;         /* first argument for the ops, owned by its plugin */
} sx_service;

/*
 * Services the host offers plugins.  All functions are thread-safe.
 * Appended to only; check struct_size (SX_HAS_FIELD) for fields after minor 0.
 */
typedef struct sx_host_api {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* Structured log line on the host's log (JSON on stderr).  fmt is
     * printf-style; the plugin's name is added.  Never log secret values. */
    void (*log)(sx_plugin_ctx *ctx, sx_log_level level, const char *fmt, ...)
        SX_PRINTF(3, 4);

    /* The config map "script_executor.<section>", or NULL when absent.
     * Borrowed; valid until the plugin's fini(). */
    const sx_config_node *(*config_section)(sx_plugin_ctx *ctx,
                                            const char *section);

    /* Parse map `node` against `options` into `dst`.  NULL node = all
     * defaults.  Returns 0, or -1 with err->code "invalid_config" and a
     * message naming the key path and line.  Strings, lists and maps stored
     * in dst are allocated by the host and owned by the caller, who releases
     * them with config_free() (also after a failed apply). */
    int (*config_apply)(sx_plugin_ctx *ctx, const sx_config_node *node,
                        const sx_option *options, void *dst, sx_error *err);
    /* Free what config_apply stored in dst (not dst itself). */
    void (*config_free)(const sx_option *options, void *dst);

    /* Raw read access to config nodes (borrowed, read-only). */
    sx_config_kind (*config_kind)(const sx_config_node *node);
    const char *(*config_scalar)(const sx_config_node *node); /* NULL unless scalar */
    size_t (*config_len)(const sx_config_node *node);         /* items or pairs */
    const sx_config_node *(*config_at)(const sx_config_node *node, size_t i);
    const char *(*config_key_at)(const sx_config_node *node, size_t i); /* maps */
    const sx_config_node *(*config_get)(const sx_config_node *map, const char *key);
    int (*config_line)(const sx_config_node *node);           /* 1-based */
    const char *(*config_path)(const sx_config_node *node);   /* "script_executor.executors[0].kind" */

    /* Publish an event on the bus (best effort: a slow subscriber may miss
     * it; never blocks).  topic e.g. "exec.output"; json is a JSON object.
     * Both borrowed.  Returns 0 or -1 when the bus is down. */
    int (*publish)(sx_plugin_ctx *ctx, const char *topic, const char *json);

    /* Durable record: delivered to every event sink, and returns only when
     * each has made it durable (then it is also published).  Returns 0, or -1
     * with err->code "audit_unavailable" when any sink failed: the caller must
     * then not proceed with what the record announces. */
    int (*record)(sx_plugin_ctx *ctx, const char *topic, const char *json,
                  sx_error *err);

    /* Find a service by kind and name: for SX_KIND_BACKEND the executor
     * instance name from the config ("shell"); for other kinds the plugin's
     * `provides`.  NULL name = the default (default_executor for backends).
     * Returns 0 and fills *out (its pointers stay valid until shutdown), or -1. */
    int (*service_find)(sx_plugin_ctx *ctx, sx_plugin_kind kind,
                        const char *name, sx_service *out);

    /* --- For backends, on the execution they were handed --- */

    /* Deliver script output as it arrives.  The host keeps the head and tail
     * within the executor's max_output_bytes, counts what it drops, and
     * publishes "exec.output" events.  data borrowed; any bytes. */
    void (*exec_output)(sx_exec *exec, sx_stream stream, const char *data,
                        size_t len);
    /* A file descriptor that becomes readable when the execution must stop
     * (cancel request or host shutdown).  Owned by the host: poll it, never
     * read or close it. */
    int (*exec_cancel_fd)(sx_exec *exec);
    /* Non-zero once cancellation was requested. */
    int (*exec_cancelled)(sx_exec *exec);
    /* Record the durable "exec.started" audit record for this execution.
     * `extra_json` (borrowed, may be NULL) is a JSON object merged into it
     * (e.g. {"image": ...}).  A backend or step MUST call this and get 0
     * before the script starts; on -1 it must not start it. */
    int (*exec_started)(sx_exec *exec, const char *extra_json, sx_error *err);

    /* Methods above are valid for ABI minor 0. */

    /* Attach fields (a JSON object, borrowed) to this execution's audit
     * records and its finished event: script_hash, interpreter, executor,
     * backend, script (the text; the audit sink drops it unless
     * log_script_content), env (the sink keeps names only unless
     * log_environment).  Never pass secret values.  Later calls merge over
     * earlier ones.  Returns 0, or -1 if json is not an object. */
    int (*exec_set_info)(sx_exec *exec, const char *json);

    /* Methods above are valid for ABI minor 1. */

    /* Verify a caller through the loaded policy plugins (sx_policy.h), as
     * the host does for nng requests; for HTTP routes.  Returns 0 with *id
     * filled (release with sx_identity_clear()), or -1 with err
     * ("unauthenticated").  caller borrowed. */
    int (*caller_authenticate)(sx_plugin_ctx *ctx, const sx_caller *caller,
                               sx_identity *id, sx_error *err);

    /* For step types: ask every policy plugin whether this script may run
     * in this execution (its caller, executor and `with` are the host's).
     * In render(), which gets no sx_exec, pass exec = NULL: the host knows
     * the render in progress on the calling thread.
     * Returns 0, or -1 with err ("blocked_command", "command_not_allowed",
     * ...) and, when findings is non-NULL, *findings set to a malloc(3)ed
     * JSON array of every finding (or NULL); the caller frees it.  The step
     * must then not run the script and reply rejected with err.  script
     * borrowed. */
    int (*exec_check_script)(sx_exec *exec, const char *interpreter,
                             const char *script, size_t script_len,
                             char **findings, sx_error *err);

    /* Serve an HTTP route (see sx_http_route).  Call from init() or
     * instance creation only (main thread); the route stays until
     * shutdown.  route is copied.  Returns 0, or -1 with err
     * ("invalid_config": bad address, path taken by another plugin, HTTP
     * disabled). */
    int (*http_route)(sx_plugin_ctx *ctx, const sx_http_route *route,
                      sx_error *err);

    /* Receive every bus event whose topic starts with topic_prefix ("" =
     * all), on a host thread of this subscription, in order, off every
     * execution's path: events queue (bounded) and a subscriber that falls
     * behind loses the oldest, counted in the host's describe.  Call from
     * init() only.  fn is called until fini() begins.  Returns 0 or -1 with
     * err. */
    int (*bus_subscribe)(sx_plugin_ctx *ctx, const char *topic_prefix,
                         sx_event_fn fn, void *arg, sx_error *err);

    /* Methods above are valid for ABI minor 2. */
} sx_host_api;

/*
 * The descriptor a plugin's entry function returns.  Static storage, owned
 * by the plugin, valid while the library is loaded.
 */
typedef struct sx_plugin_descriptor {
    uint32_t abi_major;      /* SX_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;      /* SX_ABI_MINOR the plugin was built with */
    uint32_t struct_size;    /* sizeof(sx_plugin_descriptor) as built */
    const char *name;        /* unique plugin name, e.g. "backend_native" */
    const char *version;     /* plugin version, e.g. "0.1.0" */
    const char *description; /* one line */
    sx_plugin_kind kind;
    const char *provides;    /* step type ("script.run"), backend kind
                                ("exec.native") or sink name ("audit.file") */

    /* Called once after loading.  ctx and host are owned by the host and
     * valid until fini() returns.  Set *state (plugin-owned) and return 0, or
     * fill err and return -1: the host then unloads the plugin and refuses to
     * start, quoting err->message.  May be NULL. */
    int (*init)(sx_plugin_ctx *ctx, const sx_host_api *host, void **state,
                sx_error *err);
    /* Release everything init allocated.  Called once, after every instance
     * is destroyed and no op is running.  May be NULL. */
    void (*fini)(void *state);

    /* The kind's ops table (sx_step_ops, sx_backend_ops, sx_sink_ops,
     * sx_policy_ops, sx_catalog_ops, sx_approval_ops, sx_service_ops),
     * static, owned by the plugin.  Starts with uint32_t struct_size. */
    const void *ops;

    /* Fields above are valid for ABI minor 0. */
} sx_plugin_descriptor;

/* Ops of an SX_KIND_SERVICE plugin (since 1.2). */
typedef struct sx_service_ops {
    uint32_t struct_size;
    /* The service's state as a JSON object for `describe`; malloc(3)ed,
     * caller frees.  May be NULL.  Concurrent. */
    char *(*describe)(void *state);
    /* Optional: can the service do its job now?  0, or -1 with err saying
     * why.  Answers within about a second.  Concurrent. */
    int (*ready)(void *state, sx_error *err);
    /* Fields above are valid for ABI minor 2. */
} sx_service_ops;

/* The one symbol a plugin exports. */
typedef const sx_plugin_descriptor *(*sx_plugin_entry_fn)(void);

/* Convenience for plugin sources:
 *   SX_PLUGIN_DEFINE(my_descriptor)
 * defines the exported entry function returning &my_descriptor. */
#define SX_PLUGIN_DEFINE(desc)                                             \
    SX_PLUGIN_EXPORT const sx_plugin_descriptor *sx_plugin_entry(void);    \
    SX_PLUGIN_EXPORT const sx_plugin_descriptor *sx_plugin_entry(void)     \
    {                                                                      \
        return &(desc);                                                    \
    }

#ifdef __cplusplus
}
#endif
#endif /* SX_PLUGIN_H */
