/* host.c - configuration, plugin loading and executor instances (host.h). */
#define _POSIX_C_SOURCE 200809L
#include "host.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "catalog.h"
#include "config.h"
#include "executions.h"
#include "approval.h"
#include "health.h"
#include "host_events.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "subscriptions.h"
#include "sx/sx_util.h"

/* Sections of `script_executor:` the host itself reads. */
static const char *const host_sections[] = {
    "server", "plugins", "executors", "default_executor", "logging", NULL};

/* Sections plugins read (through config_section); bit i = plugin_sections[i]. */
static const char *const plugin_sections[] = {
    "security", "audit", "image", "kubernetes", "approval", "monitoring", "secrets",
    "identity", "rbac", "limits", NULL};

#define OPT(type, name, def, flags, field, desc) \
    {type, name, def, flags, offsetof(sx_host_settings, field), desc}

static const sx_option server_options[] = {
    OPT(SX_OPT_STRING, "listen", "ipc:///tmp/script-executor/ctl.sock", 0, listen,
        "nng URL of the REQ/REP control socket"),
    OPT(SX_OPT_STRING, "events", NULL, 0, events, "nng URL of the PUB event socket (optional)"),
    OPT(SX_OPT_SIZE, "max_message_size", "10485760", 0, max_message_size,
        "largest request accepted, bytes"),
    OPT(SX_OPT_INT, "max_concurrent", "64", 0, max_concurrent,
        "executions in flight; more get error 'busy'"),
    OPT(SX_OPT_DURATION, "shutdown_grace", "30s", 0, shutdown_grace_ms,
        "on SIGTERM, how long in-flight executions may finish before they are cancelled"),
    OPT(SX_OPT_INT, "idempotency_retention", "10000", 0, idempotency_retention,
        "finished (execution_id, step_name) results remembered for repeats"),
    OPT(SX_OPT_STRING, "http", NULL, 0, http,
        "HTTP address for /healthz, /readyz and plugins' routes, http://HOST:PORT (port 0 = any "
        "free port); absent or \"\" = no HTTP"),
    OPT(SX_OPT_SIZE, "http_max_body", "1Mi", 0, http_max_body,
        "largest HTTP request body accepted, bytes; more gets 413"),
    OPT(SX_OPT_NODE, "auth", NULL, 0, auth,
        "how callers on `listen` are verified: {mode, ipc_permissions} (docs/policy.md)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static const sx_option plugins_options[] = {
    OPT(SX_OPT_STRING, "dir", NULL, 0, plugin_dir,
        "directory of plugin .so files (default: the installed plugin directory, "
        "else build/plugins)"),
    OPT(SX_OPT_STRLIST, "load", NULL, SX_OPT_REQUIRED, load, "plugins to load, in order"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static const sx_option logging_options[] = {
    OPT(SX_OPT_STRING, "level", "info", 0, log_level, "debug | info | warn | error"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static int check_sections(sx_host *host, sx_error *err)
{
    for (size_t i = 0; i < sx_cfg_len(host->root); i++) {
        const char *key = sx_cfg_key_at(host->root, i);
        const sx_config_node *node = sx_cfg_at(host->root, i);
        int known = 0;
        for (const char *const *s = host_sections; *s && !known; s++)
            known = strcmp(*s, key) == 0;
        for (const char *const *s = plugin_sections; *s && !known; s++)
            known = strcmp(*s, key) == 0;
        if (known)
            continue;
        if (strcmp(key, "grpc") == 0)
            return sx_error_set(err, "invalid_config",
                                "%s (line %d): this service speaks nng, not gRPC: "
                                "use script_executor.server.listen",
                                sx_cfg_path(node), sx_cfg_line(node));
        return sx_error_set(err, "invalid_config",
                            "unknown key '%s' in script_executor (line %d); known keys: server, "
                            "plugins, executors, default_executor, logging, security, audit, "
                            "image, kubernetes, approval, monitoring, secrets, identity, rbac, "
                            "limits", key, sx_cfg_line(node));
    }
    return 0;
}

static int has_required(const sx_option *opts)
{
    for (; opts->type != SX_OPT_END; opts++)
        if (opts->flags & SX_OPT_REQUIRED)
            return 1;
    return 0;
}

static int apply_section(sx_host *host, const char *name, const sx_option *opts, sx_error *err)
{
    const sx_config_node *node = sx_cfg_get(host->root, name);
    if (node == NULL && has_required(opts))
        return sx_error_set(err, "invalid_config", "missing required key 'script_executor.%s'",
                            name);
    if (node && sx_cfg_kind(node) != SX_CFG_MAP)
        return sx_error_set(err, "invalid_config", "%s (line %d) must be a map",
                            sx_cfg_path(node), sx_cfg_line(node));
    return sx_cfg_apply(node, opts, &host->settings, err);
}

static int parse_settings(sx_host *host, sx_error *err)
{
    if (apply_section(host, "server", server_options, err) != 0 ||
        apply_section(host, "plugins", plugins_options, err) != 0 ||
        apply_section(host, "logging", logging_options, err) != 0)
        return -1;
    sx_host_settings *s = &host->settings;
    if (s->max_concurrent < 1 || s->max_concurrent > 4096)
        return sx_error_set(err, "invalid_config",
                            "script_executor.server.max_concurrent must be 1..4096, got %lld",
                            (long long)s->max_concurrent);
    if (s->max_message_size < 1024 || s->max_message_size > (int64_t)1 << 30)
        return sx_error_set(err, "invalid_config",
                            "script_executor.server.max_message_size must be 1KiB..1GiB");
    if (s->idempotency_retention < 1)
        return sx_error_set(err, "invalid_config",
                            "script_executor.server.idempotency_retention must be >= 1: a "
                            "finished step that is forgotten at once could run again");
    sx_log_level level;
    if (sx_log_level_parse(s->log_level, &level) != 0)
        return sx_error_set(err, "invalid_config",
                            "script_executor.logging.level: '%s' is not debug, info, warn or error",
                            s->log_level);
    sx_log_set_level(level);
    const sx_config_node *def = sx_cfg_get(host->root, "default_executor");
    if (def) {
        if (sx_cfg_kind(def) != SX_CFG_SCALAR)
            return sx_error_set(err, "invalid_config", "%s (line %d) must be a string",
                                sx_cfg_path(def), sx_cfg_line(def));
        s->default_executor = strdup(sx_cfg_scalar(def));
    }
    return 0;
}

static int load_plugins(sx_host *host, sx_error *err)
{
    const sx_strlist *load = &host->settings.load;
    host->plugins = calloc(load->n ? load->n : 1, sizeof *host->plugins);
    if (host->plugins == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (size_t i = 0; i < load->n; i++) {
        const char *name = load->v[i];
        if (strchr(name, '/') || name[0] == '\0' || name[0] == '.')
            return sx_error_set(err, "invalid_config",
                                "script_executor.plugins.load[%zu]: '%s' is not a plugin name", i,
                                name);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.so", host->settings.plugin_dir, name);
        struct sx_plugin_ctx *p;
        if (sx_plugin_open(path, &p, err) != 0)
            return -1;
        p->host = host;
        host->plugins[host->n_plugins++] = p;
        /* Names are unique.  Checked before "name = file name" (below,
         * once every file is open) so that two files claiming one name are
         * reported with both paths, whichever is listed first. */
        for (size_t j = 0; j + 1 < host->n_plugins; j++) {
            const struct sx_plugin_ctx *o = host->plugins[j];
            if (strcmp(o->desc->name, p->desc->name) != 0)
                continue;
            if (strcmp(o->path, path) == 0)
                return sx_error_set(err, "plugin_conflict",
                                    "plugin '%s' (%s) is listed twice in plugins.load", name, path);
            return sx_error_set(err, "plugin_conflict",
                                "plugins %s and %s both claim the name '%s': plugin names must be "
                                "unique (remove one of them from plugins.load)",
                                o->path, path, p->desc->name);
        }
        for (size_t j = 0; j + 1 < host->n_plugins; j++) {
            const sx_plugin_descriptor *o = host->plugins[j]->desc;
            if (o->kind == p->desc->kind && o->kind != SX_KIND_EVENT_SINK &&
                strcmp(o->provides, p->desc->provides) == 0)
                return sx_error_set(err, "plugin_conflict",
                                    "plugins '%s' (%s) and '%s' (%s) both provide %s '%s'", o->name,
                                    host->plugins[j]->path, p->desc->name, path,
                                    sx_plugin_kind_name(o->kind), o->provides);
        }
    }
    for (size_t i = 0; i < host->n_plugins; i++) {
        const struct sx_plugin_ctx *p = host->plugins[i];
        if (strcmp(p->desc->name, load->v[i]) != 0)
            return sx_error_set(err, "plugin_invalid", "plugin %s calls itself '%s', expected '%s'",
                                p->path, p->desc->name, load->v[i]);
        sx_log_fields(SX_LOG_INFO, "host", NULL, "loaded plugin %s %s (%s, provides %s, ABI %u.%u) from %s",
                      p->desc->name, p->desc->version, sx_plugin_kind_name(p->desc->kind),
                      p->desc->provides, p->desc->abi_major, p->desc->abi_minor, p->path);
    }
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->init == NULL) {
            p->initialized = 1;
            continue;
        }
        sx_error perr = {{0}, {0}};
        if (p->desc->init(p, &host->api, &p->state, &perr) != 0)
            return sx_error_set(err, perr.code[0] ? perr.code : "plugin_init_failed",
                                "plugin %s failed to initialise: %s", p->desc->name,
                                perr.message[0] ? perr.message : "no reason given");
        p->initialized = 1;
    }
    return 0;
}

static struct sx_plugin_ctx *find_plugin(sx_host *host, sx_plugin_kind kind, const char *provides)
{
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind == kind && strcmp(p->desc->provides, provides) == 0)
            return p;
    }
    return NULL;
}

struct sx_plugin_ctx *sx_host_step_type(sx_host *host, const char *type)
{
    return find_plugin(host, SX_KIND_STEP_TYPE, type);
}

sx_executor *sx_host_executor(sx_host *host, const char *name)
{
    if (name == NULL)
        name = host->settings.default_executor;
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < host->n_executors; i++)
        if (strcmp(host->executors[i].name, name) == 0)
            return &host->executors[i];
    return NULL;
}

static const char *scalar_key(const sx_config_node *entry, const char *key, int required,
                              sx_error *err)
{
    const sx_config_node *n = sx_cfg_get(entry, key);
    if (n == NULL) {
        if (required)
            sx_error_set(err, "invalid_config", "missing required key '%s' in %s (line %d)", key,
                         sx_cfg_path(entry), sx_cfg_line(entry));
        return NULL;
    }
    if (sx_cfg_kind(n) != SX_CFG_SCALAR || sx_cfg_scalar(n)[0] == '\0') {
        sx_error_set(err, "invalid_config", "%s (line %d) must be a non-empty string",
                     sx_cfg_path(n), sx_cfg_line(n));
        return NULL;
    }
    return sx_cfg_scalar(n);
}

static int create_executors(sx_host *host, sx_error *err)
{
    const sx_config_node *list = sx_cfg_get(host->root, "executors");
    if (list && sx_cfg_kind(list) != SX_CFG_SEQUENCE)
        return sx_error_set(err, "invalid_config", "%s (line %d) must be a list of executors",
                            sx_cfg_path(list), sx_cfg_line(list));
    size_t n = sx_cfg_len(list);
    host->executors = calloc(n ? n : 1, sizeof *host->executors);
    if (host->executors == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    static const char *const generic[] = {"name", "kind", "max_output_bytes", NULL};
    for (size_t i = 0; i < n; i++) {
        const sx_config_node *entry = sx_cfg_at(list, i);
        if (sx_cfg_kind(entry) != SX_CFG_MAP)
            return sx_error_set(err, "invalid_config", "%s (line %d) must be a map",
                                sx_cfg_path(entry), sx_cfg_line(entry));
        err->code[0] = '\0';
        const char *name = scalar_key(entry, "name", 1, err);
        if (name == NULL)
            return -1;
        const char *kind = scalar_key(entry, "kind", 1, err);
        if (kind == NULL)
            return -1;
        if (sx_host_executor(host, name))
            return sx_error_set(err, "invalid_config", "%s (line %d): executor name '%s' is used twice",
                                sx_cfg_path(entry), sx_cfg_line(entry), name);
        int64_t max_out = SX_DEFAULT_MAX_OUTPUT_BYTES;
        const sx_config_node *mo = sx_cfg_get(entry, "max_output_bytes");
        if (mo && (sx_cfg_kind(mo) != SX_CFG_SCALAR || sx_size_parse(sx_cfg_scalar(mo), &max_out) != 0 ||
                   max_out < 1024 || max_out > (int64_t)1 << 30))
            return sx_error_set(err, "invalid_config",
                                "%s (line %d) must be a size between 1Ki and 1Gi (e.g. 1048576 or \"4Mi\")",
                                sx_cfg_path(mo), sx_cfg_line(mo));
        struct sx_plugin_ctx *p = find_plugin(host, SX_KIND_BACKEND, kind);
        if (p == NULL)
            return sx_error_set(err, "invalid_config",
                                "%s (line %d): executor '%s' has kind '%s', which no loaded plugin "
                                "provides (add its backend plugin to plugins.load)",
                                sx_cfg_path(entry), sx_cfg_line(entry), name, kind);
        sx_executor *ex = &host->executors[host->n_executors];
        ex->name = strdup(name);
        ex->kind = strdup(kind);
        ex->max_output_bytes = max_out;
        ex->plugin = p;
        ex->ops = p->desc->ops;
        ex->line = sx_cfg_line(entry);
        host->n_executors++;
        sx_config_node *rest = sx_cfg_copy_without(entry, generic);
        sx_error berr = {{0}, {0}};
        int rv = ex->ops->instance_create(p->state, name, rest, &ex->instance, &berr);
        sx_cfg_free(rest);
        if (rv != 0)
            return sx_error_set(err, berr.code[0] ? berr.code : "invalid_config",
                                "executor '%s' (%s, line %d): %s", name, kind, ex->line,
                                berr.message);
    }
    const char *def = host->settings.default_executor;
    if (def && sx_host_executor(host, def) == NULL)
        return sx_error_set(err, "invalid_config",
                            "script_executor.default_executor: no executor is named '%s'", def);
    if (def == NULL && host->n_executors > 0)
        host->settings.default_executor = strdup(host->executors[0].name);
    return 0;
}

/* The install layout relative to the binary (host/CMakeLists.txt). */
#ifndef SX_PLUGIN_DIR_FROM_BINDIR
#define SX_PLUGIN_DIR_FROM_BINDIR "../lib/script-executor/plugins"
#endif
/* The development tree's plugin directory, relative to the working directory. */
#define SX_DEV_PLUGIN_DIR "build/plugins"

/*
 * plugins.dir when neither --plugin-dir nor the config sets it:
 *   1. the plugin directory of the installation this binary belongs to,
 *      <directory of the binary>/SX_PLUGIN_DIR_FROM_BINDIR
 *      (bin/../lib/script-executor/plugins), when it is a directory;
 *   2. else "build/plugins", relative to the working directory (a binary
 *      run from the build tree, started at the repository root).
 * malloc(3)ed; NULL when out of memory.
 */
static char *default_plugin_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* /proc/self/exe has no symlinks, so "../" may be resolved by
         * dropping a component: /usr/bin/.. -> /usr. */
        const char *rel = SX_PLUGIN_DIR_FROM_BINDIR;
        char *slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';                         /* the binary's directory */
        while (slash != NULL && strncmp(rel, "../", 3) == 0 &&
               (slash = strrchr(exe, '/')) != NULL && slash != exe) {
            *slash = '\0';
            rel += 3;
        }
        if (slash != NULL) {
            char candidate[PATH_MAX + sizeof SX_PLUGIN_DIR_FROM_BINDIR + 1];
            snprintf(candidate, sizeof candidate, "%s/%s", exe, rel);
            struct stat st;
            if (stat(candidate, &st) == 0 && S_ISDIR(st.st_mode))
                return strdup(candidate);
        }
    }
    return strdup(SX_DEV_PLUGIN_DIR);
}

static int open_approvals(sx_host *host, sx_error *err);

int sx_host_open(sx_host *host, const char *config_path, const char *plugin_dir, sx_error *err)
{
    memset(host, 0, sizeof *host);
    pthread_mutex_init(&host->sections_lock, NULL);
    atomic_store(&host->accepting, 1);
    sx_host_api_init(&host->api);
    if (sx_cfg_load_file(config_path, &host->config, err) != 0)
        return -1;
    host->root = sx_cfg_get(host->config, "script_executor");
    if (host->root == NULL || sx_cfg_kind(host->root) != SX_CFG_MAP)
        return sx_error_set(err, "invalid_config", "%s: the top level must be a map 'script_executor:'",
                            config_path);
    if (sx_cfg_len(host->config) != 1)
        return sx_error_set(err, "invalid_config",
                            "%s: only 'script_executor' may appear at the top level", config_path);
    if (check_sections(host, err) != 0 || parse_settings(host, err) != 0)
        return -1;
    if (plugin_dir) {
        free(host->settings.plugin_dir);
        host->settings.plugin_dir = strdup(plugin_dir);
    } else if (host->settings.plugin_dir == NULL) {
        host->settings.plugin_dir = default_plugin_dir();
    }
    if (host->settings.plugin_dir == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    host->executions = sx_executions_create((size_t)host->settings.max_concurrent,
                                            (size_t)host->settings.idempotency_retention);
    if (host->executions == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (host->settings.http_max_body < 0 || host->settings.http_max_body > (int64_t)1 << 30)
        return sx_error_set(err, "invalid_config",
                            "script_executor.server.http_max_body must be 0..1GiB");
    /* before plugins: their init() may subscribe and add HTTP routes */
    host->subs = sx_subs_create(SX_SUBS_QUEUE_EVENTS, SX_SUBS_QUEUE_BYTES);
    if (host->subs == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (sx_http_create(&host->http, host->settings.http, host->settings.http_max_body, err) != 0 ||
        sx_health_add_routes(host, err) != 0)
        return -1;
    if (load_plugins(host, err) != 0 || sx_host_catalog_check(host, err) != 0 ||
        create_executors(host, err) != 0 || sx_policy_configure(host, err) != 0 ||
        open_approvals(host, err) != 0)
        return -1;
    return 0;
}

/* The approval workflow (approval.h) when a store is loaded, and its HTTP
 * API: without server.http nobody could decide, so that is refused. */
static int open_approvals(sx_host *host, sx_error *err)
{
    if (sx_approvals_open(host, &host->approvals, err) != 0)
        return -1;
    if (host->approvals == NULL)
        return 0;
    if (!sx_http_enabled(host->http))
        return sx_error_set(err, "invalid_config", "an approval store is loaded but "
                            "script_executor.server.http is not set: the approval API "
                            "(/api/v1/approvals/) needs it, or nobody could approve");
    sx_http_route r = {.struct_size = sizeof r, .method = NULL, .path = "/api/v1/approvals/",
                       .handler = sx_approval_http, .arg = host->approvals};
    return sx_http_add_route(host->http, "host", &r, err);
}

int sx_host_start_bus(sx_host *host, sx_error *err)
{
    return sx_bus_open(&host->bus, host->settings.events, host->subs, err);
}

void sx_host_report_unused_sections(sx_host *host)
{
    for (size_t i = 0; plugin_sections[i]; i++) {
        const sx_config_node *n = sx_cfg_get(host->root, plugin_sections[i]);
        if (n && !(host->sections_used & (1u << i)))
            sx_log(SX_LOG_WARN, "config",
                   "section script_executor.%s (line %d) is not read by any loaded plugin: "
                   "its settings have no effect in this deployment",
                   plugin_sections[i], sx_cfg_line(n));
    }
}

/* Used by the host API's config_section. */
const sx_config_node *sx_host_config_section(sx_host *host, const char *section)
{
    for (size_t i = 0; plugin_sections[i]; i++) {
        if (strcmp(plugin_sections[i], section) == 0) {
            pthread_mutex_lock(&host->sections_lock);
            host->sections_used |= 1u << i;
            pthread_mutex_unlock(&host->sections_lock);
            return sx_cfg_get(host->root, section);
        }
    }
    return NULL;
}

void sx_host_flush_sinks(sx_host *host)
{
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->initialized && p->desc->kind == SX_KIND_EVENT_SINK) {
            const sx_sink_ops *ops = p->desc->ops;
            if (ops->flush)
                ops->flush(p->state);
        }
    }
}

void sx_host_close(sx_host *host)
{
    /* No HTTP handler, bus subscriber or load report may reach a plugin
     * or the bus from here on: they stop before anything is torn down. */
    sx_http_stop(host->http);
    sx_subs_stop(host->subs);
    sx_host_events_stop(host);
    sx_approvals_close(host->approvals); /* before the store's fini */
    host->approvals = NULL;
    sx_host_flush_sinks(host);
    for (size_t i = 0; i < host->n_executors; i++) {
        sx_executor *ex = &host->executors[i];
        if (ex->instance)
            ex->ops->instance_destroy(ex->instance);
        free(ex->name);
        free(ex->kind);
    }
    free(host->executors);
    for (size_t i = host->n_plugins; i-- > 0;)
        sx_plugin_close(host->plugins[i]);
    free(host->plugins);
    sx_bus_close(host->bus);
    sx_http_destroy(host->http);
    sx_subs_destroy(host->subs);
    sx_executions_destroy(host->executions);
    sx_cfg_options_free(server_options, &host->settings);
    sx_cfg_options_free(plugins_options, &host->settings);
    sx_cfg_options_free(logging_options, &host->settings);
    free(host->settings.default_executor);
    sx_cfg_free(host->config);
    pthread_mutex_destroy(&host->sections_lock);
}
