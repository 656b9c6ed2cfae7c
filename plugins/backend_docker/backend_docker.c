/*
 * backend_docker.c - the "exec.docker" execution backend: runs scripts in
 * containers through the Docker Engine API (no docker CLI).
 *
 * This file: the plugin descriptor, the executor options and their checks,
 * instances (one REST client each, leftover sweep at start), describe()
 * and render().  run() is docker_run.c; the create request is built in
 * container_plan.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "docker.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker_image.h"
#include "sx/sx_util.h"

#define OPT(type, name, def, field, desc) \
    {type, name, def, 0, offsetof(sx_docker_cfg, field), desc}

static const sx_option docker_options[] = {
    {SX_OPT_STRING, "image", NULL, SX_OPT_REQUIRED, offsetof(sx_docker_cfg, image),
     "image of steps that name none"},
    OPT(SX_OPT_STRING, "host", "unix:///var/run/docker.sock", host,
        "Docker daemon: unix:///path or tcp://HOST:PORT"),
    OPT(SX_OPT_STRING, "tls_ca", NULL, tls_ca, "tcp:// with TLS: CA bundle (PEM)"),
    OPT(SX_OPT_STRING, "tls_cert", NULL, tls_cert, "tcp:// with TLS: client certificate (PEM)"),
    OPT(SX_OPT_STRING, "tls_key", NULL, tls_key, "tcp:// with TLS: client key (PEM)"),
    OPT(SX_OPT_STRING, "default_work_dir", "/workspace", default_work_dir,
        "working directory of steps that set none"),
    OPT(SX_OPT_STRMAP, "default_env", NULL, default_env,
        "environment of every script (the step's env wins)"),
    OPT(SX_OPT_STRLIST, "command_whitelist", NULL, command_whitelist,
        "when non-empty, only scripts equal (trimmed) to an entry may run"),
    OPT(SX_OPT_STRING, "network_mode", "bridge", network_mode,
        "bridge | host | none | a user-defined network"),
    OPT(SX_OPT_STRLIST, "volumes", NULL, volumes, "bind mounts host:container[:ro|rw]"),
    OPT(SX_OPT_STRING, "user", "65534:65534", user, "user[:group] scripts run as"),
    OPT(SX_OPT_SIZE, "memory_limit", "0", memory_limit, "bytes, 0 = unlimited (min 6Mi)"),
    OPT(SX_OPT_INT, "cpu_quota", "0", cpu_quota,
        "microseconds per 100ms period: 100000 = 1 CPU, 0 = unlimited"),
    OPT(SX_OPT_BOOL, "auto_remove", "true", auto_remove,
        "remove the container after the run (false keeps it for inspection)"),
    OPT(SX_OPT_BOOL, "read_only_rootfs", "true", read_only_rootfs, "read-only root filesystem"),
    OPT(SX_OPT_BOOL, "no_new_privileges", "true", no_new_privileges,
        "no privilege escalation (setuid binaries do not gain privileges)"),
    OPT(SX_OPT_STRLIST, "cap_drop", "[ALL]", cap_drop, "capabilities to drop"),
    OPT(SX_OPT_STRLIST, "cap_add", NULL, cap_add, "capabilities to add back"),
    OPT(SX_OPT_INT, "pids_limit", "1024", pids_limit, "most processes, 0 = unlimited"),
    OPT(SX_OPT_STRMAP, "tmpfs", "{/tmp: 'rw,noexec,nosuid,nodev,size=64m,mode=1777', "
                                "/workspace: 'rw,nosuid,nodev,size=64m,mode=1777'}",
        tmpfs, "tmpfs mounts: path -> mount options"),
    OPT(SX_OPT_STRING, "image_pull_policy", "IfNotPresent", image_pull_policy,
        "Always | IfNotPresent | Never, for steps that set none"),
    OPT(SX_OPT_STRING, "image_pull_secret", NULL, image_pull_secret,
        "secret (local store) with registry credentials, for steps that set none"),
    OPT(SX_OPT_DURATION, "pull_timeout", "5m", pull_timeout_ms, "longest image pull"),
    OPT(SX_OPT_DURATION, "api_timeout", "30s", api_timeout_ms,
        "longest Engine call before the script starts (also bounded by the step's timeout)"),
    OPT(SX_OPT_STRING, "host_id", NULL, host_id,
        "names this host in container labels, for the leftover sweep (default: hostname)"),
    OPT(SX_OPT_BOOL, "init", "true", init, "run the script under the Engine's init (tini)"),
    OPT(SX_OPT_STRING, "script_delivery", "archive", script_delivery,
        "archive (a volume filled through the archive API) | bind (files written into bind_dir "
        "and bind-mounted; a local daemon only)"),
    OPT(SX_OPT_STRING, "bind_dir", "/run/script-executor/docker", bind_dir,
        "script_delivery bind: where the files are written (the daemon must see it at the same "
        "path; tmpfs)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct store_cfg {
    char *secrets_dir;
    char *configmaps_dir;
} store_cfg;

static const sx_option store_options[] = {
    {SX_OPT_STRING, "secrets_dir", NULL, 0, offsetof(store_cfg, secrets_dir),
     "directory with a directory per secret, a file per key"},
    {SX_OPT_STRING, "configmaps_dir", NULL, 0, offsetof(store_cfg, configmaps_dir),
     "directory with a directory per configmap, a file per key"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static const char *const docker_params[] = {
    "image", "image_ref", "image_pull_policy", "image_pull_secret", "env_from_secret", "env_from_configmap",
    "secret_env_all", "configmap_env_all", "volumes_from_secret", "volumes_from_configmap",
    "resources", "labels", "annotations", NULL};

/* ------------------------------------------------------------------ */
/* Plugin                                                               */
/* ------------------------------------------------------------------ */

static int docker_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    if (host == NULL || host->abi_major != SX_ABI_MAJOR ||
        !SX_HAS_FIELD(host, sx_host_api, exec_started))
        return sx_error_set(err, "invalid_config", "backend_docker needs host API %d.0 or later",
                            SX_ABI_MAJOR);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return sx_error_set(err, "backend_error", "libcurl failed to initialise");
    sx_docker_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) {
        curl_global_cleanup();
        return sx_error_set(err, "backend_error", "out of memory");
    }
    p->ctx = ctx;
    p->host = host;
    store_cfg sc = {0};
    if (host->config_apply(ctx, host->config_section(ctx, "secrets"), store_options, &sc, err) !=
            0 ||
        sx_store_init(&p->store, sc.secrets_dir, sc.configmaps_dir) != 0) {
        host->config_free(store_options, &sc);
        free(p);
        curl_global_cleanup();
        if (err->code[0] == '\0')
            sx_error_set(err, "invalid_config", "out of memory");
        return -1;
    }
    host->config_free(store_options, &sc);
    *state = p;
    return 0;
}

static void docker_fini(void *state)
{
    sx_docker_plugin *p = state;
    if (p == NULL)
        return;
    sx_store_free(&p->store);
    free(p);
    curl_global_cleanup();
}

/* ------------------------------------------------------------------ */
/* Instances                                                            */
/* ------------------------------------------------------------------ */

static void instance_free(sx_docker_instance *inst)
{
    if (inst == NULL)
        return;
    sx_dk_remover_stop(inst); /* removes what is still queued */
    inst->plugin->host->config_free(docker_options, &inst->cfg);
    sx_dk_client_free(&inst->client);
    pthread_mutex_destroy(&inst->lock);
    pthread_mutex_destroy(&inst->sweep_lock);
    free(inst->name);
    free(inst);
}

static int bad(sx_error *err, const sx_docker_instance *inst, const char *key, const char *fmt,
               const char *value)
{
    char why[600];
    snprintf(why, sizeof why, fmt, value ? value : "");
    return sx_error_set(err, "invalid_config", "executor '%s': %s: %s", inst->name, key, why);
}

static int valid_cap(const char *c)
{
    if (c[0] == '\0')
        return 0;
    for (const char *p = c; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

static int check_options(sx_docker_instance *inst, sx_error *err)
{
    sx_docker_cfg *c = &inst->cfg;
    sx_image_ref ref;
    if (sx_image_ref_parse(c->image, &ref, err) != 0)
        return bad(err, inst, "image", "'%s' is not an image reference", c->image);
    if (c->default_work_dir == NULL || c->default_work_dir[0] != '/')
        return bad(err, inst, "default_work_dir", "'%s' must be an absolute path",
                   c->default_work_dir);
    for (size_t i = 0; i < c->default_env.n; i++)
        if (c->default_env.keys[i][0] == '\0' || strchr(c->default_env.keys[i], '='))
            return bad(err, inst, "default_env", "'%s' is not a variable name",
                       c->default_env.keys[i]);
    const char *nm = c->network_mode;
    if (nm == NULL || nm[0] == '\0' || strncmp(nm, "container:", 10) == 0 || strchr(nm, '/'))
        return bad(err, inst, "network_mode",
                   "'%s': use bridge, host, none or a user-defined network (sharing another "
                   "container's namespace is not allowed)", nm);
    for (size_t i = 0; i < c->volumes.n; i++) {
        char v[1024];
        if (strlen(c->volumes.v[i]) >= sizeof v)
            return bad(err, inst, "volumes", "'%.100s...' is too long", c->volumes.v[i]);
        snprintf(v, sizeof v, "%s", c->volumes.v[i]);
        char *a = strchr(v, ':');
        char *b = a ? strchr(a + 1, ':') : NULL;
        if (a)
            *a = '\0';
        if (b)
            *b = '\0';
        if (a == NULL || v[0] != '/' || a[1] != '/' ||
            (b && strcmp(b + 1, "ro") != 0 && strcmp(b + 1, "rw") != 0))
            return bad(err, inst, "volumes",
                       "'%s' must be /host/path:/container/path with an optional :ro or :rw",
                       c->volumes.v[i]);
    }
    if (c->user == NULL || c->user[0] == '\0')
        return bad(err, inst, "user", "must not be empty ('65534:65534')", NULL);
    if (c->memory_limit != 0 && c->memory_limit < 6 * 1024 * 1024)
        return bad(err, inst, "memory_limit", "%s", "must be 0 (unlimited) or at least 6Mi");
    if (c->cpu_quota != 0 && (c->cpu_quota < 1000 || c->cpu_quota > 100000LL * 1024))
        return bad(err, inst, "cpu_quota", "%s",
                   "must be 0 (unlimited) or 1000..; 100000 = one CPU");
    if (c->pids_limit < 0)
        return bad(err, inst, "pids_limit", "%s", "must be >= 0 (0 = unlimited)");
    for (size_t i = 0; i < c->cap_drop.n; i++)
        if (!valid_cap(c->cap_drop.v[i]))
            return bad(err, inst, "cap_drop", "'%s' is not a capability name (NET_RAW, ALL)",
                       c->cap_drop.v[i]);
    for (size_t i = 0; i < c->cap_add.n; i++)
        if (!valid_cap(c->cap_add.v[i]))
            return bad(err, inst, "cap_add", "'%s' is not a capability name (NET_BIND_SERVICE)",
                       c->cap_add.v[i]);
    for (size_t i = 0; i < c->tmpfs.n; i++) {
        if (c->tmpfs.keys[i][0] != '/')
            return bad(err, inst, "tmpfs", "'%s' must be an absolute path", c->tmpfs.keys[i]);
        if (strlen(c->tmpfs.values[i]) > 400)
            return bad(err, inst, "tmpfs", "options of '%s' are too long", c->tmpfs.keys[i]);
    }
    const char *pp = c->image_pull_policy;
    if (strcmp(pp, "Always") && strcmp(pp, "IfNotPresent") && strcmp(pp, "Never"))
        return bad(err, inst, "image_pull_policy", "'%s' must be Always, IfNotPresent or Never",
                   pp);
    if (c->host_id == NULL || c->host_id[0] == '\0' || strlen(c->host_id) > 253)
        return bad(err, inst, "host_id", "%s", "must be 1..253 characters");
    if (c->pull_timeout_ms < 1000 || c->api_timeout_ms < 1000)
        return bad(err, inst, "pull_timeout/api_timeout", "%s", "must be at least 1s");
    if (strcmp(c->script_delivery, "archive") == 0)
        c->delivery = SX_DK_DELIVER_ARCHIVE;
    else if (strcmp(c->script_delivery, "bind") == 0)
        c->delivery = SX_DK_DELIVER_BIND;
    else
        return bad(err, inst, "script_delivery", "'%s' must be archive or bind",
                   c->script_delivery);
    /* bind: absolute, without trailing slashes (names are appended) */
    char *bd = c->bind_dir;
    size_t bl = bd ? strlen(bd) : 0;
    while (bl > 1 && bd[bl - 1] == '/')
        bd[--bl] = '\0';
    if (bd == NULL || bd[0] != '/' || bl < 2 || bl > 200)
        return bad(err, inst, "bind_dir", "'%s' must be an absolute path (not /, at most 200 "
                   "bytes)", bd);
    if (c->delivery == SX_DK_DELIVER_BIND && strncmp(c->host, "unix://", 7) != 0)
        return bad(err, inst, "script_delivery",
                   "bind needs a daemon on this machine (host unix://...): the daemon at '%s' "
                   "would not see the files written into bind_dir; use archive", c->host);
    return 0;
}

/* Options that loosen the strict defaults are allowed, and said: in the
 * log at start-up and in describe's "weakened". */
static cJSON *weakened(const sx_docker_instance *inst)
{
    const sx_docker_cfg *c = &inst->cfg;
    cJSON *w = cJSON_CreateArray();
    if (strncmp(c->host, "tcp://", 6) == 0 && inst->client.tls_cert == NULL)
        cJSON_AddItemToArray(w, cJSON_CreateString(
            "host: tcp:// without a TLS client certificate (anyone who reaches the port controls "
            "the daemon)"));
    if (strcmp(c->user, "0") == 0 || strncmp(c->user, "0:", 2) == 0 ||
        strcmp(c->user, "root") == 0 || strncmp(c->user, "root:", 5) == 0)
        cJSON_AddItemToArray(w, cJSON_CreateString("user: scripts run as root"));
    if (!c->read_only_rootfs)
        cJSON_AddItemToArray(w, cJSON_CreateString("read_only_rootfs: false"));
    if (!c->no_new_privileges)
        cJSON_AddItemToArray(w, cJSON_CreateString("no_new_privileges: false"));
    int drops_all = 0;
    for (size_t i = 0; i < c->cap_drop.n; i++)
        drops_all |= strcmp(c->cap_drop.v[i], "ALL") == 0;
    if (!drops_all)
        cJSON_AddItemToArray(w, cJSON_CreateString("cap_drop: does not drop ALL"));
    if (c->cap_add.n > 0)
        cJSON_AddItemToArray(w, cJSON_CreateString("cap_add: capabilities added back"));
    if (strcmp(c->network_mode, "host") == 0)
        cJSON_AddItemToArray(w, cJSON_CreateString("network_mode: host"));
    for (size_t i = 0; i < c->volumes.n; i++)
        if (strstr(c->volumes.v[i], "docker.sock") != NULL)
            cJSON_AddItemToArray(w, cJSON_CreateString(
                "volumes: the Docker socket is mounted (root on the host)"));
    return w;
}

static int docker_instance_create(void *plugin_state, const char *name,
                                  const sx_config_node *config, void **instance, sx_error *err)
{
    sx_docker_plugin *p = plugin_state;
    const sx_host_api *h = p->host;
    sx_docker_instance *inst = calloc(1, sizeof *inst);
    if (inst == NULL)
        return sx_error_set(err, "invalid_config", "out of memory");
    inst->plugin = p;
    pthread_mutex_init(&inst->lock, NULL);
    pthread_mutex_init(&inst->sweep_lock, NULL);
    inst->name = strdup(name ? name : "docker");
    if (inst->name == NULL || h->config_apply(p->ctx, config, docker_options, &inst->cfg, err) != 0) {
        if (err->code[0] == '\0')
            sx_error_set(err, "invalid_config", "out of memory");
        instance_free(inst);
        return -1;
    }
    if (inst->cfg.host_id == NULL) {
        char hn[256] = "";
        gethostname(hn, sizeof hn - 1);
        inst->cfg.host_id = strdup(hn[0] ? hn : "localhost");
        if (inst->cfg.host_id == NULL) {
            sx_error_set(err, "invalid_config", "out of memory");
            instance_free(inst);
            return -1;
        }
    }
    if (check_options(inst, err) != 0 ||
        sx_dk_client_init(&inst->client, inst->cfg.host, inst->cfg.tls_ca, inst->cfg.tls_cert,
                          inst->cfg.tls_key, (long)inst->cfg.api_timeout_ms, err) != 0) {
        if (strncmp(err->message, "executor", 8) != 0) {
            char msg[SX_ERROR_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "%s", err->message);
            sx_error_set(err, "invalid_config", "executor '%s': %s", inst->name, msg);
        }
        instance_free(inst);
        return -1;
    }
    if (inst->cfg.delivery == SX_DK_DELIVER_BIND && sx_dk_bind_dir_init(inst, err) != 0) {
        instance_free(inst);
        return -1;
    }
    if (sx_dk_remover_start(inst) != 0) {
        sx_error_set(err, "invalid_config", "executor '%s': cannot start a thread", inst->name);
        instance_free(inst);
        return -1;
    }
    cJSON *w = weakened(inst);
    const cJSON *it;
    cJSON_ArrayForEach(it, w)
        h->log(p->ctx, SX_LOG_WARN, "executor %s: %s (the default is stricter)", inst->name,
               it->valuestring);
    cJSON_Delete(w);
    /* Leftovers of a host that died mid-run: removed now if the daemon
     * answers (a short wait: a dead daemon must not hold up the start),
     * else before the first run. */
    sx_error se;
    long sweep_ms = inst->cfg.api_timeout_ms < 5000 ? (long)inst->cfg.api_timeout_ms : 5000;
    int n = sx_dk_sweep_leftovers(inst, sweep_ms, NULL, &se);
    if (n < 0)
        h->log(p->ctx, SX_LOG_WARN,
               "executor %s: %s; the leftover sweep runs before the first execution", inst->name,
               se.message);
    else if (n > 0)
        h->log(p->ctx, SX_LOG_WARN, "executor %s: removed %d leftover object(s)", inst->name, n);
    *instance = inst;
    return 0;
}

static void docker_instance_destroy(void *instance)
{
    instance_free(instance);
}

/* ------------------------------------------------------------------ */
/* describe / render / run                                              */
/* ------------------------------------------------------------------ */

static char *docker_describe(void *instance)
{
    sx_docker_instance *inst = instance;
    const sx_docker_cfg *c = &inst->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", SX_DOCKER_KIND);
    cJSON_AddStringToObject(o, "api_version", SX_DOCKER_API_VERSION);
    cJSON *engine = cJSON_AddObjectToObject(o, "engine");
    cJSON_AddStringToObject(engine, "host", sx_dk_address(&inst->client));
    sx_dk_response resp = {0};
    sx_error e = {{0}, {0}};
    int called = sx_dk_call(&inst->client, "GET", "/version", NULL, NULL, 0, NULL, 3000, NULL,
                            "read the Engine version", &resp, &e) == 0;
    if (called && resp.status == 200) {
        cJSON *v = cJSON_Parse(resp.body);
        const char *keys[] = {"Version", "ApiVersion", "MinAPIVersion", "Os", "Arch"};
        const char *names[] = {"version", "api_version", "min_api_version", "os", "arch"};
        for (size_t i = 0; i < 5; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, keys[i]);
            if (cJSON_IsString(x))
                cJSON_AddStringToObject(engine, names[i], x->valuestring);
        }
        cJSON_AddBoolToObject(engine, "reachable", 1);
        cJSON_Delete(v);
    } else {
        cJSON_AddBoolToObject(engine, "reachable", 0);
        cJSON_AddStringToObject(engine, "error", called ? "unexpected answer to /version"
                                                        : e.message);
    }
    if (called)
        sx_dk_response_free(&resp);
    cJSON *opt = cJSON_AddObjectToObject(o, "options");
    cJSON_AddStringToObject(opt, "image", c->image);
    cJSON_AddStringToObject(opt, "default_work_dir", c->default_work_dir);
    cJSON *env = cJSON_AddArrayToObject(opt, "default_env_names");
    for (size_t i = 0; i < c->default_env.n; i++)
        cJSON_AddItemToArray(env, cJSON_CreateString(c->default_env.keys[i]));
    cJSON_AddNumberToObject(opt, "command_whitelist_entries", (double)c->command_whitelist.n);
    cJSON_AddStringToObject(opt, "network_mode", c->network_mode);
    cJSON_AddItemToObject(opt, "volumes", sx_dk_strlist_json(&c->volumes));
    cJSON_AddStringToObject(opt, "user", c->user);
    cJSON_AddNumberToObject(opt, "memory_limit", (double)c->memory_limit);
    cJSON_AddNumberToObject(opt, "cpu_quota", (double)c->cpu_quota);
    cJSON_AddBoolToObject(opt, "auto_remove", c->auto_remove);
    cJSON_AddBoolToObject(opt, "read_only_rootfs", c->read_only_rootfs);
    cJSON_AddBoolToObject(opt, "no_new_privileges", c->no_new_privileges);
    cJSON_AddItemToObject(opt, "cap_drop", sx_dk_strlist_json(&c->cap_drop));
    cJSON_AddItemToObject(opt, "cap_add", sx_dk_strlist_json(&c->cap_add));
    cJSON_AddNumberToObject(opt, "pids_limit", (double)c->pids_limit);
    cJSON *t = cJSON_AddObjectToObject(opt, "tmpfs");
    for (size_t i = 0; i < c->tmpfs.n; i++)
        cJSON_AddStringToObject(t, c->tmpfs.keys[i], c->tmpfs.values[i]);
    cJSON_AddStringToObject(opt, "image_pull_policy", c->image_pull_policy);
    if (c->image_pull_secret)
        cJSON_AddStringToObject(opt, "image_pull_secret", c->image_pull_secret);
    cJSON_AddNumberToObject(opt, "pull_timeout_seconds", (double)c->pull_timeout_ms / 1000.0);
    cJSON_AddNumberToObject(opt, "api_timeout_seconds", (double)c->api_timeout_ms / 1000.0);
    cJSON_AddStringToObject(opt, "host_id", c->host_id);
    cJSON_AddBoolToObject(opt, "init", c->init);
    cJSON_AddStringToObject(opt, "script_delivery", c->script_delivery);
    if (c->delivery == SX_DK_DELIVER_BIND)
        cJSON_AddStringToObject(opt, "bind_dir", c->bind_dir);
    cJSON_AddItemToObject(o, "weakened", weakened(inst));
    cJSON *sp = cJSON_AddArrayToObject(o, "supported_params");
    for (const char *const *s = docker_params; *s; s++)
        cJSON_AddItemToArray(sp, cJSON_CreateString(*s));
    cJSON *notes = cJSON_AddArrayToObject(o, "notes");
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        "resources.requests map to soft limits (memory reservation, CPU shares); "
        "resources.*.ephemeral_storage is refused"));
    cJSON_AddItemToArray(notes, cJSON_CreateString(
        "resource_usage is sampled from the Engine's stats stream about once a second: "
        "null for runs shorter than the first sample"));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int docker_render(void *instance, const sx_exec_spec *spec, char **json_out, sx_error *err)
{
    sx_docker_instance *inst = instance;
    sx_dk_plan plan;
    if (sx_dk_plan_build(inst, spec, &plan, err) != 0)
        return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", plan.image);
    cJSON_AddStringToObject(o, "image_pull_policy", plan.pull_policy);
    if (plan.pull_secret)
        cJSON_AddStringToObject(o, "image_pull_secret", plan.pull_secret);
    else
        cJSON_AddNullToObject(o, "image_pull_secret");
    cJSON_AddStringToObject(o, "docker_host", sx_dk_address(&inst->client));
    cJSON_AddItemToObject(o, "container", plan.create_shown);
    plan.create_shown = NULL;
    *json_out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    sx_dk_plan_free(&plan);
    return *json_out ? 0 : sx_error_set(err, "out_of_memory", "out of memory");
}

static int docker_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                      sx_exec_result *result, sx_error *err)
{
    return sx_dk_run(instance, spec, exec, result, err);
}

/* Readiness: the daemon answers GET /_ping with 200 within a second. */
static int docker_ready(void *instance, sx_error *err)
{
    sx_docker_instance *inst = instance;
    sx_dk_response resp;
    if (sx_dk_call(&inst->client, "GET", "/_ping", NULL, NULL, 0, NULL, SX_DK_READY_TIMEOUT_MS,
                   NULL, "ping the Docker daemon", &resp, err) != 0)
        return -1;
    long status = resp.status;
    char msg[300];
    sx_dk_message(&resp, msg, sizeof msg);
    sx_dk_response_free(&resp);
    if (status != 200)
        return sx_error_set(err, "docker_unavailable",
                            "executor %s: the Docker daemon at %s answered /_ping with %ld: %s",
                            inst->name, sx_dk_address(&inst->client), status, msg);
    return 0;
}

static const sx_backend_ops docker_ops = {
    .struct_size = sizeof(sx_backend_ops),
    .supported_params = docker_params,
    .instance_create = docker_instance_create,
    .instance_destroy = docker_instance_destroy,
    .describe = docker_describe,
    .render = docker_render,
    .run = docker_run,
    .load_script = NULL,
    .ready = docker_ready,
};

static const sx_plugin_descriptor docker_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "backend_docker",
    .version = "0.1.0",
    .description = "exec.docker: run scripts in Docker containers through the Engine API",
    .kind = SX_KIND_BACKEND,
    .provides = SX_DOCKER_KIND,
    .init = docker_init,
    .fini = docker_fini,
    .ops = &docker_ops,
};

SX_PLUGIN_DEFINE(docker_descriptor)
