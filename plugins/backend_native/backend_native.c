/*
 * backend_native.c - the "exec.native" execution backend: runs scripts as
 * local processes (bash, sh, python3, ruby).
 *
 * This file: the plugin descriptor, executor options, instances,
 * describe(), render() and load_script().  run() is in native_run.c,
 * starting the per-run supervisor (sx-native-supervisor, supervisor.c) in
 * spawn.c, argv/env/whitelist in command.c.
 */
#define _GNU_SOURCE
#include "native.h"
#include "supervisor.h"

#include "sx/sx_util.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NATIVE_KIND "exec.native"
/* load_script refuses bigger files (memory bound; scripts are ~500 KB). */
#define SCRIPT_FILE_MAX (16 * 1024 * 1024)
/* The uid/gid used when the host runs as root and none is configured. */
#define NOBODY_ID 65534

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

enum { OPT_WORK_DIR, OPT_ENV, OPT_WHITELIST, OPT_USER, OPT_GROUP, OPT_SCRIPTS,
       OPT_SUPERVISOR, OPT_COUNT };

/* The defaults of run_as_user/run_as_group depend on who the host runs as,
 * so instance_create works on a copy with them filled in. */
static const sx_option native_options[OPT_COUNT + 1] = {
    [OPT_WORK_DIR] = {SX_OPT_STRING, "default_work_dir", "/tmp", 0,
                      offsetof(sx_native_cfg, default_work_dir),
                      "working directory of scripts that set none (absolute)"},
    [OPT_ENV] = {SX_OPT_STRMAP, "default_env", NULL, 0,
                 offsetof(sx_native_cfg, default_env),
                 "environment of every script (the step's env wins); nothing "
                 "of the host's environment is passed"},
    [OPT_WHITELIST] = {SX_OPT_STRLIST, "command_whitelist", NULL, 0,
                       offsetof(sx_native_cfg, command_whitelist),
                       "when non-empty, only scripts equal (trimmed) to an "
                       "entry may run"},
    [OPT_USER] = {SX_OPT_INT, "run_as_user", NULL, 0,
                  offsetof(sx_native_cfg, run_as_user),
                  "uid scripts run as; -1 = the host's (default: 65534 when "
                  "the host is root, else the host's uid)"},
    [OPT_GROUP] = {SX_OPT_INT, "run_as_group", NULL, 0,
                   offsetof(sx_native_cfg, run_as_group),
                   "gid scripts run as; -1 = the host's (default: 65534 when "
                   "the host is root, else the host's gid)"},
    [OPT_SCRIPTS] = {SX_OPT_STRING, "scripts_dir", NULL, 0,
                     offsetof(sx_native_cfg, scripts_dir),
                     "directory of pre-registered scripts for script_path "
                     "(\"/scripts/x.sh\" maps onto it); unset = no script_path"},
    [OPT_SUPERVISOR] = {SX_OPT_STRING, "supervisor_path", NULL, 0,
                        offsetof(sx_native_cfg, supervisor_path),
                        "the per-run helper executable (default: "
                        SX_SUP_EXE_NAME " next to backend_native.so)"},
    [OPT_COUNT] = {SX_OPT_END, NULL, NULL, 0, 0, NULL},
};

/* NULL-terminated: no parameters beyond the common ones. */
static const char *const native_supported_params[] = {NULL};

/* ------------------------------------------------------------------ */
/* Plugin                                                               */
/* ------------------------------------------------------------------ */

static int native_init(sx_plugin_ctx *ctx, const sx_host_api *host,
                       void **state, sx_error *err)
{
    if (host == NULL || host->abi_major != SX_ABI_MAJOR ||
        !SX_HAS_FIELD(host, sx_host_api, exec_started))
        return sx_error_set(err, "invalid_config",
                            "backend_native needs host API %d.0 or later",
                            SX_ABI_MAJOR);
    sx_native_plugin *p = calloc(1, sizeof *p);
    if (p == NULL)
        return sx_error_set(err, "backend_error", "out of memory");
    p->ctx = ctx;
    p->host = host;
    p->default_supervisor = sx_native_supervisor_default_path();
    *state = p;
    return 0;
}

static void native_fini(void *state)
{
    sx_native_plugin *p = state;
    if (p != NULL)
        free(p->default_supervisor);
    free(p);
}

/* "<path of key> (line N)" for messages about a config key. */
static void key_where(const sx_native_plugin *p, const sx_config_node *config,
                      const char *key, char *buf, size_t size)
{
    const sx_host_api *h = p->host;
    const sx_config_node *v = config ? h->config_get(config, key) : NULL;
    if (v != NULL)
        snprintf(buf, size, "%s (line %d)", h->config_path(v), h->config_line(v));
    else if (config != NULL)
        snprintf(buf, size, "%s.%s", h->config_path(config), key);
    else
        snprintf(buf, size, "%s", key);
}

static void instance_free(sx_native_instance *inst)
{
    if (inst == NULL)
        return;
    inst->plugin->host->config_free(native_options, &inst->cfg);
    free(inst->scripts_dir_real);
    free(inst->supervisor);
    free(inst->name);
    free(inst);
}

/* Validate a run_as_* value. */
static int check_id(const sx_native_plugin *p, const sx_config_node *config,
                    const char *key, int64_t value, long own, const char *who,
                    sx_error *err)
{
    char where[512];
    if (value < -1 || value > 4294967294LL) {
        key_where(p, config, key, where, sizeof where);
        return sx_error_set(err, "invalid_config",
                            "%s: %lld is not a valid %s id (-1 = do not switch)",
                            where, (long long)value, who);
    }
    if (geteuid() != 0 && value != -1 && value != own) {
        key_where(p, config, key, where, sizeof where);
        return sx_error_set(err, "invalid_config",
                            "%s: running scripts as %s %lld needs the host to "
                            "run as root (it runs as uid %ld, %s %ld); use -1 "
                            "or %ld",
                            where, who, (long long)value, (long)geteuid(), who,
                            own, own);
    }
    return 0;
}

static int native_instance_create(void *plugin_state, const char *name,
                                  const sx_config_node *config,
                                  void **instance, sx_error *err)
{
    const sx_native_plugin *p = plugin_state;
    const sx_host_api *h = p->host;
    int root = geteuid() == 0;

    char uid_default[24], gid_default[24];
    snprintf(uid_default, sizeof uid_default, "%ld",
             root ? (long)NOBODY_ID : (long)getuid());
    snprintf(gid_default, sizeof gid_default, "%ld",
             root ? (long)NOBODY_ID : (long)getgid());
    sx_option options[OPT_COUNT + 1];
    memcpy(options, native_options, sizeof options);
    options[OPT_USER].default_value = uid_default;
    options[OPT_GROUP].default_value = gid_default;

    sx_native_instance *inst = calloc(1, sizeof *inst);
    if (inst == NULL)
        return sx_error_set(err, "invalid_config", "out of memory");
    inst->plugin = p;
    inst->name = strdup(name ? name : "native");
    if (inst->name == NULL) {
        free(inst);
        return sx_error_set(err, "invalid_config", "out of memory");
    }
    if (h->config_apply(p->ctx, config, options, &inst->cfg, err) != 0) {
        if (err && err->code[0] == '\0')
            sx_error_set(err, "invalid_config", "executor '%s': bad options",
                         inst->name);
        instance_free(inst);
        return -1;
    }

    sx_native_cfg *c = &inst->cfg;
    char where[512];
    if (c->default_work_dir == NULL || c->default_work_dir[0] != '/') {
        key_where(p, config, "default_work_dir", where, sizeof where);
        sx_error_set(err, "invalid_config",
                     "%s: default_work_dir must be an absolute path, not '%s'",
                     where, c->default_work_dir ? c->default_work_dir : "");
        goto fail;
    }
    for (size_t i = 0; i < c->default_env.n; i++) {
        const char *k = c->default_env.keys[i];
        if (k[0] == '\0' || strchr(k, '=') != NULL) {
            key_where(p, config, "default_env", where, sizeof where);
            sx_error_set(err, "invalid_config",
                         "%s: '%s' is not a valid environment variable name",
                         where, k);
            goto fail;
        }
    }
    if (check_id(p, config, "run_as_user", c->run_as_user, (long)getuid(),
                 "uid", err) != 0 ||
        check_id(p, config, "run_as_group", c->run_as_group, (long)getgid(),
                 "gid", err) != 0)
        goto fail;
    inst->switch_creds = root && (c->run_as_user != -1 || c->run_as_group != -1);

    if (c->scripts_dir != NULL) {
        struct stat st;
        inst->scripts_dir_real = realpath(c->scripts_dir, NULL);
        if (inst->scripts_dir_real == NULL ||
            stat(inst->scripts_dir_real, &st) != 0 || !S_ISDIR(st.st_mode)) {
            key_where(p, config, "scripts_dir", where, sizeof where);
            sx_error_set(err, "invalid_config",
                         "%s: scripts_dir '%s' is not a directory: %s", where,
                         c->scripts_dir,
                         inst->scripts_dir_real ? "not a directory"
                                                : strerror(errno));
            goto fail;
        }
    }

    /* The helper every run starts: refused here rather than at the first
     * run. */
    const char *sup = c->supervisor_path ? c->supervisor_path
                                         : p->default_supervisor;
    if (sup == NULL) {
        sx_error_set(err, "invalid_config",
                     "executor '%s': cannot locate backend_native.so to find "
                     SX_SUP_EXE_NAME " next to it; set supervisor_path",
                     inst->name);
        goto fail;
    }
    if ((inst->supervisor = strdup(sup)) == NULL) {
        sx_error_set(err, "invalid_config", "out of memory");
        goto fail;
    }
    const char *why = NULL;
    if (sx_native_supervisor_check(inst->supervisor, &why) != 0) {
        if (c->supervisor_path != NULL) {
            key_where(p, config, "supervisor_path", where, sizeof where);
            sx_error_set(err, "invalid_config",
                         "%s: supervisor '%s' is not usable: %s", where,
                         inst->supervisor, why);
        } else {
            sx_error_set(err, "invalid_config",
                         "executor '%s': supervisor '%s' (next to "
                         "backend_native.so) is not usable: %s; install it "
                         "there or set supervisor_path",
                         inst->name, inst->supervisor, why);
        }
        goto fail;
    }
    *instance = inst;
    return 0;
fail:
    instance_free(inst);
    return -1;
}

static void native_instance_destroy(void *instance)
{
    instance_free(instance);
}

/* ------------------------------------------------------------------ */
/* describe / render                                                    */
/* ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JSON array of the sorted names (never the values). */
static cJSON *names_array(const char *const *names, size_t n)
{
    const char **sorted = calloc(n + 1, sizeof *sorted);
    if (sorted == NULL)
        return NULL;
    if (n > 0)
        memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(sorted[i]));
    free(sorted);
    return arr;
}

static char *print_and_delete(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static char *native_describe(void *instance)
{
    const sx_native_instance *inst = instance;
    const sx_native_cfg *c = &inst->cfg;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "kind", NATIVE_KIND);
    cJSON_AddStringToObject(o, "name", inst->name);
    cJSON_AddStringToObject(o, "default_work_dir", c->default_work_dir);
    cJSON_AddItemToObject(o, "default_env_names",
                          names_array((const char *const *)c->default_env.keys,
                                      c->default_env.n));
    cJSON_AddNumberToObject(o, "command_whitelist_size",
                            (double)c->command_whitelist.n);
    cJSON_AddNumberToObject(o, "run_as_user", (double)c->run_as_user);
    cJSON_AddNumberToObject(o, "run_as_group", (double)c->run_as_group);
    if (c->scripts_dir)
        cJSON_AddStringToObject(o, "scripts_dir", c->scripts_dir);
    else
        cJSON_AddNullToObject(o, "scripts_dir");
    cJSON_AddStringToObject(o, "supervisor", inst->supervisor);
    cJSON_AddStringToObject(o, "script_delivery", "memfd");
    static const char *const interps[] = {"/bin/bash", "/bin/sh", "python3",
                                          "ruby"};
    cJSON_AddItemToObject(o, "interpreters", cJSON_CreateStringArray(interps, 4));
    cJSON *caps = cJSON_AddObjectToObject(o, "capabilities");
    if (caps) {
        cJSON_AddTrueToObject(caps, "kill_process_tree");
        cJSON_AddTrueToObject(caps, "stdin");
        cJSON_AddTrueToObject(caps, "separate_stderr");
    }
    return print_and_delete(o);
}

static int native_render(void *instance, const sx_exec_spec *spec,
                         char **json_out, sx_error *err)
{
    const sx_native_instance *inst = instance;
    sx_native_cmd cmd;
    if (sx_native_cmd_prepare(inst, spec, &cmd, err) != 0)
        return -1;

    const char **names = calloc(cmd.envc + 1, sizeof *names);
    char *names_buf = NULL;
    size_t total = 0;
    for (size_t i = 0; i < cmd.envc; i++)
        total += strlen(cmd.envp[i]) + 1;
    names_buf = malloc(total + 1);
    cJSON *o = cJSON_CreateObject();
    if (names == NULL || names_buf == NULL || o == NULL)
        goto oom;
    char *w = names_buf;
    for (size_t i = 0; i < cmd.envc; i++) {
        size_t n = strcspn(cmd.envp[i], "=");
        memcpy(w, cmd.envp[i], n);
        w[n] = '\0';
        names[i] = w;
        w += n + 1;
    }
    cJSON_AddItemToObject(o, "argv",
                          cJSON_CreateStringArray((const char *const *)cmd.argv,
                                                  (int)cmd.argc));
    cJSON_AddStringToObject(o, "working_dir", cmd.work_dir);
    cJSON_AddItemToObject(o, "env_names", names_array(names, cmd.envc));
    cJSON_AddNumberToObject(o, "run_as_user", (double)inst->cfg.run_as_user);
    cJSON_AddNumberToObject(o, "run_as_group", (double)inst->cfg.run_as_group);
    cJSON_AddStringToObject(o, "script_delivery", "memfd");
    free(names);
    free(names_buf);
    sx_native_cmd_free(&cmd);
    *json_out = print_and_delete(o);
    if (*json_out == NULL)
        return sx_error_set(err, "backend_error", "out of memory");
    return 0;
oom:
    free(names);
    free(names_buf);
    cJSON_Delete(o);
    sx_native_cmd_free(&cmd);
    return sx_error_set(err, "backend_error", "out of memory");
}

/* ------------------------------------------------------------------ */
/* load_script                                                          */
/* ------------------------------------------------------------------ */

static int native_load_script(void *instance, const char *script_path,
                              char **text, size_t *len, sx_error *err)
{
    const sx_native_instance *inst = instance;
    if (inst->scripts_dir_real == NULL)
        return sx_error_set(err, "unsupported_parameter",
                            "script_path needs scripts_dir: executor '%s' "
                            "(exec.native) has no scripts_dir configured",
                            inst->name);
    if (script_path == NULL || script_path[0] == '\0')
        return sx_error_set(err, "invalid_parameter", "script_path is empty");

    const char *dir = inst->scripts_dir_real;
    const char *rel = NULL;
    if (strncmp(script_path, "/scripts/", 9) == 0)
        rel = script_path + 9;
    else if (script_path[0] != '/')
        rel = script_path;
    char *cand;
    if (rel != NULL) {
        size_t dl = strlen(dir), rl = strlen(rel);
        cand = malloc(dl + 1 + rl + 1);
        if (cand != NULL) {
            memcpy(cand, dir, dl);
            cand[dl] = '/';
            memcpy(cand + dl + 1, rel, rl + 1);
        }
    } else {
        cand = strdup(script_path);
    }
    if (cand == NULL)
        return sx_error_set(err, "backend_error", "out of memory");

    char *real = realpath(cand, NULL);
    int e = errno;
    free(cand);
    if (real == NULL)
        return sx_error_set(err, "invalid_parameter",
                            "script_path '%s': %s (scripts_dir of executor "
                            "'%s' is %s)",
                            script_path, strerror(e), inst->name,
                            inst->cfg.scripts_dir);
    size_t dl = strlen(dir);
    int inside = strcmp(dir, "/") == 0 ||
                 (strncmp(real, dir, dl) == 0 && real[dl] == '/');
    if (!inside) {
        free(real);
        return sx_error_set(err, "invalid_parameter",
                            "script_path '%s' resolves outside scripts_dir "
                            "'%s' of executor '%s'",
                            script_path, inst->cfg.scripts_dir, inst->name);
    }

    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    e = errno;
    free(real);
    if (fd < 0)
        return sx_error_set(err, "invalid_parameter", "script_path '%s': %s",
                            script_path, strerror(e));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sx_error_set(err, "invalid_parameter",
                            "script_path '%s' is not a regular file",
                            script_path);
    }
    if (st.st_size > SCRIPT_FILE_MAX) {
        close(fd);
        return sx_error_set(err, "invalid_parameter",
                            "script_path '%s' is %lld bytes, more than the "
                            "%d allowed",
                            script_path, (long long)st.st_size, SCRIPT_FILE_MAX);
    }
    size_t cap = (size_t)st.st_size, used = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return sx_error_set(err, "backend_error", "out of memory");
    }
    for (;;) {
        if (used == cap) {
            /* The file grew since fstat: stop at the size we saw plus the
             * limit check above (never unbounded). */
            char probe;
            ssize_t n = read(fd, &probe, 1);
            if (n == 0)
                break;
            if (n < 0 && errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return sx_error_set(err, "invalid_parameter",
                                "script_path '%s' changed while being read",
                                script_path);
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            free(buf);
            close(fd);
            return sx_error_set(err, "invalid_parameter", "script_path '%s': %s",
                                script_path, strerror(e));
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    *text = buf;
    *len = used;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Descriptor                                                           */
/* ------------------------------------------------------------------ */

static const sx_backend_ops native_ops = {
    .struct_size = sizeof(sx_backend_ops),
    .supported_params = native_supported_params,
    .instance_create = native_instance_create,
    .instance_destroy = native_instance_destroy,
    .describe = native_describe,
    .render = native_render,
    .run = sx_native_run,
    .load_script = native_load_script,
};

static const sx_plugin_descriptor native_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "backend_native",
    .version = "0.1.0",
    .description = "runs scripts as local processes (bash, sh, python3, ruby) "
                   "with a clean environment, a per-run supervisor and "
                   "process-tree kill",
    .kind = SX_KIND_BACKEND,
    .provides = NATIVE_KIND,
    .init = native_init,
    .fini = native_fini,
    .ops = &native_ops,
};

SX_PLUGIN_DEFINE(native_descriptor)
