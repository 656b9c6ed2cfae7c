/*
 * container_plan.c - from a step and the executor's options to the Engine's
 * create request: image, argv, environment (literal, secret, configmap),
 * user, hardening, limits, mounts, labels, and the files the per-execution
 * volumes receive.  Talks to no daemon, so render() shows exactly what run()
 * sends (with secret values replaced).
 */
#define _POSIX_C_SOURCE 200809L
#include "docker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_image.h"
#include "sx/sx_util.h"

/* render shows where each variable comes from, never a value (the bus and
 * the audit keep env names only; literal values may hold tokens too). */
#define SECRET_MASK_FMT "<from secret %s/%s>"
#define CONFIGMAP_MASK_FMT "<from configmap %s/%s>"

/* The parameters this file reads from `with` (besides the common ones). */
static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int valid_env_name(const char *k)
{
    if (k == NULL || k[0] == '\0' || strchr(k, '=') != NULL)
        return 0;
    return 1;
}

/* C identifier, as Kubernetes requires of envFrom keys. */
static int c_identifier(const char *k)
{
    if (!((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') || k[0] == '_'))
        return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Environment: an ordered name -> (value, shown) list, later wins.      */
/* ------------------------------------------------------------------ */

typedef struct env_entry {
    char *name;
    char *value;
    char *shown;        /* what render shows: the value, or a mask */
    int explicit_src;   /* set by env / env_from_secret / env_from_configmap */
} env_entry;

typedef struct env_list {
    env_entry *v;
    size_t n, cap;
} env_list;

static void env_free(env_list *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].name);
        if (e->v[i].value) {
            /* values may be secrets: do not leave them in freed memory */
            memset(e->v[i].value, 0, strlen(e->v[i].value));
            free(e->v[i].value);
        }
        free(e->v[i].shown);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

static env_entry *env_find(env_list *e, const char *name)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].name, name) == 0)
            return &e->v[i];
    return NULL;
}

/* Set name; `explicit_src` names the parameter for the duplicate check
 * (NULL for sources that may be overridden). */
static int env_set(env_list *e, const char *name, const char *value, size_t len,
                   const char *shown, const char *explicit_src, sx_error *err)
{
    env_entry *x = env_find(e, name);
    if (x && x->explicit_src && explicit_src)
        return sx_error_set(err, "invalid_parameter",
                            "environment variable '%s' is set twice (by with.env, "
                            "with.env_from_secret or with.env_from_configmap): keep one",
                            name);
    if (x == NULL) {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 16;
            env_entry *v = realloc(e->v, cap * sizeof *v);
            if (v == NULL)
                return sx_error_set(err, "out_of_memory", "out of memory");
            e->v = v;
            e->cap = cap;
        }
        x = &e->v[e->n++];
        memset(x, 0, sizeof *x);
        x->name = strdup(name);
    } else {
        if (x->value)
            memset(x->value, 0, strlen(x->value)); /* may be a secret */
        free(x->value);
        free(x->shown);
    }
    x->value = malloc(len + 1);
    if (x->value) {
        memcpy(x->value, value, len);
        x->value[len] = '\0';
    }
    x->shown = strdup(shown ? shown : x->value ? x->value : "");
    x->explicit_src = explicit_src != NULL;
    if (x->name == NULL || x->value == NULL || x->shown == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (memchr(value, '\0', len) != NULL)
        return sx_error_set(err, "invalid_parameter",
                            "environment variable '%s': the value contains a NUL byte", name);
    return 0;
}

/* Remember a secret value (and the value without a final newline, as a
 * file's content is often printed) so that the run can mask it in the
 * output.  Values above 4 KiB (certificates, keys) are not masked. */
static int add_secret(sx_dk_plan *plan, const char *value, size_t len, sx_error *err)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t n = len;
        if (pass == 1) {
            while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r'))
                n--;
            if (n == len)
                break;
        }
        if (n == 0 || n > 4096 || memchr(value, '\0', n) != NULL)
            continue;
        char **v = realloc(plan->secrets.v, (plan->secrets.n + 1) * sizeof *v);
        if (v == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        plan->secrets.v = v;
        v[plan->secrets.n] = strndup(value, n);
        if (v[plan->secrets.n] == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        plan->secrets.n++;
    }
    return 0;
}

/* Read one key of a secret/configmap; 1 = absent (and optional). */
static int store_value(const sx_docker_instance *inst, sx_store_kind kind, const char *obj,
                       const char *key, int optional, const char *param, char **value,
                       size_t *len, sx_error *err)
{
    int rc = sx_store_read(&inst->plugin->store, kind, obj, key, value, len, err);
    if (rc < 0)
        return -1;
    if (rc == 1 && !optional)
        return sx_error_set(err, "config_error",
                            "%s: %s '%s' has no key '%s' (or does not exist) in the local store; "
                            "set optional: true to run without it",
                            param, sx_store_kind_name(kind), obj, key);
    return rc;
}

/* env_from_secret / env_from_configmap: NAME: {secret_name|configmap_name, key, optional} */
static int env_from_refs(const sx_docker_instance *inst, const cJSON *with, sx_store_kind kind,
                         env_list *env, sx_dk_plan *plan, sx_error *err)
{
    const char *param = kind == SX_STORE_SECRET ? "env_from_secret" : "env_from_configmap";
    const char *name_key = kind == SX_STORE_SECRET ? "secret_name" : "configmap_name";
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(with, param);
    if (refs == NULL || cJSON_IsNull(refs))
        return 0;
    for (const cJSON *r = refs->child; r; r = r->next) {
        if (!valid_env_name(r->string))
            return sx_error_set(err, "invalid_parameter",
                                "with.%s: '%s' is not a valid environment variable name", param,
                                r->string);
        if (!cJSON_IsObject(r))
            return sx_error_set(err, "invalid_parameter",
                                "with.%s.%s must be an object {%s, key, optional}", param,
                                r->string, name_key);
        for (const cJSON *f = r->child; f; f = f->next)
            if (strcmp(f->string, name_key) && strcmp(f->string, "key") &&
                strcmp(f->string, "optional"))
                return sx_error_set(err, "invalid_parameter",
                                    "with.%s.%s: unknown field '%s' (known: %s, key, optional)",
                                    param, r->string, f->string, name_key);
        const char *obj = str_of(r, name_key), *key = str_of(r, "key");
        const cJSON *opt = cJSON_GetObjectItemCaseSensitive(r, "optional");
        if (obj == NULL || key == NULL || (opt && !cJSON_IsBool(opt)))
            return sx_error_set(err, "invalid_parameter",
                                "with.%s.%s needs string fields %s and key (optional: a boolean)",
                                param, r->string, name_key);
        char where[300];
        snprintf(where, sizeof where, "with.%s.%s", param, r->string);
        char *value = NULL;
        size_t len = 0;
        int rc = store_value(inst, kind, obj, key, cJSON_IsTrue(opt), where, &value, &len, err);
        if (rc < 0)
            return -1;
        if (rc == 1)
            continue;
        char mask[600];
        snprintf(mask, sizeof mask, kind == SX_STORE_SECRET ? SECRET_MASK_FMT : CONFIGMAP_MASK_FMT,
                 obj, key);
        rc = env_set(env, r->string, value, len, mask, param, err);
        if (rc == 0 && kind == SX_STORE_SECRET)
            rc = add_secret(plan, value, len, err);
        memset(value, 0, len);
        free(value);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* secret_env_all / configmap_env_all: every key that is a C identifier. */
static int env_from_all(const sx_docker_instance *inst, const cJSON *with, sx_store_kind kind,
                        env_list *env, sx_dk_plan *plan, cJSON *notes, sx_error *err)
{
    const char *param = kind == SX_STORE_SECRET ? "secret_env_all" : "configmap_env_all";
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(with, param);
    for (const cJSON *it = cJSON_IsArray(list) ? list->child : NULL; it; it = it->next) {
        sx_strlist keys = {0, NULL};
        int rc = sx_store_keys(&inst->plugin->store, kind, it->valuestring, &keys, err);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return sx_error_set(err, "config_error", "with.%s: %s '%s' does not exist in the "
                                "local store", param, sx_store_kind_name(kind), it->valuestring);
        for (size_t i = 0; i < keys.n; i++) {
            if (!c_identifier(keys.v[i])) {
                char note[800];
                snprintf(note, sizeof note, "%s '%s': key '%s' is not a valid environment "
                         "variable name and was not set", sx_store_kind_name(kind),
                         it->valuestring, keys.v[i]);
                cJSON_AddItemToArray(notes, cJSON_CreateString(note));
                continue;
            }
            char *value = NULL;
            size_t len = 0;
            rc = store_value(inst, kind, it->valuestring, keys.v[i], 0, param, &value, &len, err);
            if (rc != 0) {
                sx_strlist_clear(&keys);
                return -1;
            }
            char mask[600];
            snprintf(mask, sizeof mask,
                     kind == SX_STORE_SECRET ? SECRET_MASK_FMT : CONFIGMAP_MASK_FMT,
                     it->valuestring, keys.v[i]);
            rc = env_set(env, keys.v[i], value, len, mask, NULL, err);
            if (rc == 0 && kind == SX_STORE_SECRET)
                rc = add_secret(plan, value, len, err);
            memset(value, 0, len);
            free(value);
            if (rc != 0) {
                sx_strlist_clear(&keys);
                return -1;
            }
        }
        sx_strlist_clear(&keys);
    }
    return 0;
}

static int build_env(const sx_docker_instance *inst, const sx_exec_spec *spec, const cJSON *with,
                     sx_dk_plan *plan, cJSON *notes, sx_error *err)
{
    env_list env = {0};
    int rc = -1;
    const sx_docker_cfg *c = &inst->cfg;
    for (size_t i = 0; i < c->default_env.n; i++)
        if (env_set(&env, c->default_env.keys[i], c->default_env.values[i],
                    strlen(c->default_env.values[i]), "<executor default_env>", NULL,
                    err) != 0)
            goto out;
    if (env_from_all(inst, with, SX_STORE_CONFIGMAP, &env, plan, notes, err) != 0 ||
        env_from_all(inst, with, SX_STORE_SECRET, &env, plan, notes, err) != 0)
        goto out;
    for (size_t i = 0; spec->env && i < spec->env->n; i++)
        if (env_set(&env, spec->env->keys[i], spec->env->values[i],
                    strlen(spec->env->values[i]), "<with.env>", "env", err) != 0)
            goto out;
    if (env_from_refs(inst, with, SX_STORE_CONFIGMAP, &env, plan, err) != 0 ||
        env_from_refs(inst, with, SX_STORE_SECRET, &env, plan, err) != 0)
        goto out;
    cJSON *real = cJSON_AddArrayToObject(plan->create, "Env");
    cJSON *shown = cJSON_AddArrayToObject(plan->create_shown, "Env");
    for (size_t i = 0; i < env.n; i++) {
        size_t n = strlen(env.v[i].name) + strlen(env.v[i].value) + 2;
        char *kv = malloc(n);
        if (kv == NULL) {
            sx_error_set(err, "out_of_memory", "out of memory");
            goto out;
        }
        snprintf(kv, n, "%s=%s", env.v[i].name, env.v[i].value);
        cJSON_AddItemToArray(real, cJSON_CreateString(kv));
        memset(kv, 0, n);
        free(kv);
        n = strlen(env.v[i].name) + strlen(env.v[i].shown) + 2;
        kv = malloc(n);
        if (kv == NULL) {
            sx_error_set(err, "out_of_memory", "out of memory");
            goto out;
        }
        snprintf(kv, n, "%s=%s", env.v[i].name, env.v[i].shown);
        cJSON_AddItemToArray(shown, cJSON_CreateString(kv));
        free(kv);
    }
    rc = 0;
out:
    env_free(&env);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Volumes from secrets and configmaps                                  */
/* ------------------------------------------------------------------ */

static sx_dk_volume *volume_add(sx_dk_plan *plan, const char *mount, const char *what)
{
    sx_dk_volume *v = realloc(plan->volumes, (plan->n_volumes + 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    plan->volumes = v;
    sx_dk_volume *x = &v[plan->n_volumes++];
    memset(x, 0, sizeof *x);
    x->mount_path = strdup(mount);
    x->what = strdup(what);
    return x->mount_path && x->what ? x : NULL;
}

/* Takes `data` only on success. */
static int file_add(sx_dk_volume *v, const char *path, char *data, size_t len, unsigned mode)
{
    char *p = strdup(path);
    sx_dk_file *f = p ? realloc(v->files, (v->n_files + 1) * sizeof *f) : NULL;
    if (f == NULL) {
        free(p);
        return -1;
    }
    v->files = f;
    f[v->n_files].path = p;
    f[v->n_files].data = data;
    f[v->n_files].len = len;
    f[v->n_files].mode = mode;
    v->n_files++;
    return 0;
}

/* A relative path without "..": what Kubernetes allows as an item path. */
static int safe_rel_path(const char *p)
{
    if (p == NULL || p[0] == '\0' || p[0] == '/' || strlen(p) > 200)
        return 0;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.'))
            return 0;
        s += n;
        if (*s == '/')
            s++;
    }
    return 1;
}

/* A file mode from JSON: a number 0..0777 (YAML's 0600 arrives as 384), or
 * an octal string "0600". */
static int parse_mode(const cJSON *v, unsigned *mode)
{
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < 0 || v->valuedouble > 0777 ||
            v->valuedouble != (double)(int)v->valuedouble)
            return -1;
        *mode = (unsigned)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        unsigned long m = strtoul(v->valuestring, &end, 8);
        if (v->valuestring[0] == '\0' || *end != '\0' || m > 0777)
            return -1;
        *mode = (unsigned)m;
        return 0;
    }
    return -1;
}

static int mounts_from(const sx_docker_instance *inst, const cJSON *with, sx_store_kind kind,
                       sx_dk_plan *plan, cJSON *notes, sx_error *err)
{
    const char *param = kind == SX_STORE_SECRET ? "volumes_from_secret" : "volumes_from_configmap";
    const char *name_key = kind == SX_STORE_SECRET ? "secret_name" : "configmap_name";
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(with, param);
    int idx = 0;
    for (const cJSON *m = cJSON_IsArray(list) ? list->child : NULL; m; m = m->next, idx++) {
        for (const cJSON *f = m->child; f; f = f->next) {
            if (strcmp(f->string, "sub_path") == 0)
                return sx_error_set(err, "unsupported_parameter",
                                    "with.%s[%d].sub_path: the Docker Engine API this backend "
                                    "speaks (%s) cannot mount part of a volume; mount the whole "
                                    "%s at a directory instead", param, idx,
                                    SX_DOCKER_API_VERSION, sx_store_kind_name(kind));
            if (strcmp(f->string, name_key) && strcmp(f->string, "mount_path") &&
                strcmp(f->string, "items") && strcmp(f->string, "default_mode") &&
                strcmp(f->string, "optional") && strcmp(f->string, "read_only"))
                return sx_error_set(err, "invalid_parameter",
                                    "with.%s[%d]: unknown field '%s' (known: %s, mount_path, "
                                    "items, default_mode, optional, read_only)", param, idx,
                                    f->string,
                                    name_key);
        }
        const char *obj = str_of(m, name_key), *mount = str_of(m, "mount_path");
        if (obj == NULL || mount == NULL || mount[0] != '/' || strlen(mount) > 200)
            return sx_error_set(err, "invalid_parameter",
                                "with.%s[%d] needs %s and an absolute mount_path (at most 200 "
                                "bytes)", param, idx, name_key);
        const cJSON *ro = cJSON_GetObjectItemCaseSensitive(m, "read_only");
        if (ro && !cJSON_IsTrue(ro))
            return sx_error_set(err, "invalid_parameter",
                                "with.%s[%d].read_only: %s volumes are always read-only", param,
                                idx, sx_store_kind_name(kind));
        if (strncmp(mount, SX_DK_SCRIPT_DIR, strlen(SX_DK_SCRIPT_DIR)) == 0)
            return sx_error_set(err, "invalid_parameter",
                                "with.%s[%d].mount_path: %s is reserved for the script", param,
                                idx, SX_DK_SCRIPT_DIR);
        unsigned def_mode = 0644;
        const cJSON *dm = cJSON_GetObjectItemCaseSensitive(m, "default_mode");
        if (dm && parse_mode(dm, &def_mode) != 0)
            return sx_error_set(err, "invalid_parameter",
                                "with.%s[%d].default_mode must be a file mode 0..0777 (0644)",
                                param, idx);
        int optional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "optional"));
        char what[400];
        snprintf(what, sizeof what, "%s %s", sx_store_kind_name(kind), obj);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(m, "items");
        sx_strlist keys = {0, NULL};
        if (!cJSON_IsArray(items) || cJSON_GetArraySize(items) == 0) {
            int rc = sx_store_keys(&inst->plugin->store, kind, obj, &keys, err);
            if (rc < 0)
                return -1;
            if (rc == 1) {
                if (!optional)
                    return sx_error_set(err, "config_error",
                                        "with.%s[%d]: %s does not exist in the local store; set "
                                        "optional: true to run without it", param, idx, what);
                char note[500];
                snprintf(note, sizeof note, "%s is absent (optional): %s is an empty directory",
                         what, mount);
                cJSON_AddItemToArray(notes, cJSON_CreateString(note));
            }
        }
        sx_dk_volume *v = volume_add(plan, mount, what);
        if (v == NULL) {
            sx_strlist_clear(&keys);
            return sx_error_set(err, "out_of_memory", "out of memory");
        }
        size_t n_items = cJSON_IsArray(items) ? (size_t)cJSON_GetArraySize(items) : 0;
        size_t total = n_items ? n_items : keys.n;
        for (size_t i = 0; i < total; i++) {
            const char *key, *path;
            unsigned mode = def_mode;
            if (n_items) {
                const cJSON *it = cJSON_GetArrayItem(items, (int)i);
                if (!cJSON_IsObject(it)) {
                    sx_strlist_clear(&keys);
                    return sx_error_set(err, "invalid_parameter",
                                        "with.%s[%d].items[%zu] must be an object {key, path, "
                                        "mode}", param, idx, i);
                }
                key = str_of(it, "key");
                path = str_of(it, "path");
                const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "mode");
                for (const cJSON *f = it ? it->child : NULL; f; f = f->next)
                    if (strcmp(f->string, "key") && strcmp(f->string, "path") &&
                        strcmp(f->string, "mode"))
                        return sx_error_set(err, "invalid_parameter",
                                            "with.%s[%d].items[%zu]: unknown field '%s' (known: "
                                            "key, path, mode)", param, idx, i, f->string);
                if (key == NULL || !safe_rel_path(path ? path : key))
                    return sx_error_set(err, "invalid_parameter",
                                        "with.%s[%d].items[%zu] needs a key and a relative path "
                                        "without '..'", param, idx, i);
                if (path == NULL)
                    path = key;
                if (md && parse_mode(md, &mode) != 0)
                    return sx_error_set(err, "invalid_parameter",
                                        "with.%s[%d].items[%zu].mode must be a file mode 0..0777",
                                        param, idx, i);
            } else {
                key = path = keys.v[i];
            }
            char *value = NULL;
            size_t len = 0;
            char where[300];
            snprintf(where, sizeof where, "with.%s[%d]", param, idx);
            int rc = store_value(inst, kind, obj, key, optional, where, &value, &len, err);
            if (rc < 0) {
                sx_strlist_clear(&keys);
                return -1;
            }
            if (rc == 1)
                continue;
            /* like a pod's fsGroup: group-readable by the script's group
             * (world-readable when the group is not known); never writable */
            unsigned m = (mode & ~0222u) | (plan->gid_known ? 0440u : 0444u);
            if (kind == SX_STORE_SECRET && add_secret(plan, value, len, err) != 0) {
                memset(value, 0, len);
                free(value);
                sx_strlist_clear(&keys);
                return -1;
            }
            if (file_add(v, path, value, len, m) != 0) {
                free(value);
                sx_strlist_clear(&keys);
                return sx_error_set(err, "out_of_memory", "out of memory");
            }
        }
        sx_strlist_clear(&keys);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Resources                                                            */
/* ------------------------------------------------------------------ */

static int build_resources(const sx_docker_instance *inst, const cJSON *with, cJSON *hc,
                           sx_error *err)
{
    const sx_docker_cfg *c = &inst->cfg;
    int64_t memory = c->memory_limit, quota = c->cpu_quota, reservation = 0, shares = 0;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(with, "resources");
    for (const cJSON *part = cJSON_IsObject(res) ? res->child : NULL; part; part = part->next) {
        int limits = strcmp(part->string, "limits") == 0;
        if (!limits && strcmp(part->string, "requests") != 0)
            return sx_error_set(err, "invalid_parameter",
                                "with.resources: unknown field '%s' (known: requests, limits)",
                                part->string);
        if (!cJSON_IsObject(part))
            return sx_error_set(err, "invalid_parameter", "with.resources.%s must be an object",
                                part->string);
        for (const cJSON *q = part->child; q; q = q->next) {
            char text[64];
            if (cJSON_IsString(q))
                snprintf(text, sizeof text, "%s", q->valuestring);
            else if (cJSON_IsNumber(q))
                snprintf(text, sizeof text, "%.17g", q->valuedouble);
            else
                return sx_error_set(err, "invalid_parameter",
                                    "with.resources.%s.%s must be a quantity", part->string,
                                    q->string);
            int64_t v;
            if (strcmp(q->string, "cpu") == 0) {
                if (sx_quantity_cpu_millis(text, &v) != 0 || v <= 0)
                    return sx_error_set(err, "invalid_parameter",
                                        "with.resources.%s.cpu '%s' is not a CPU quantity "
                                        "(\"500m\", \"2\")", part->string, text);
                if (limits) {
                    int64_t q_us = v * 100; /* period 100000us = 1 CPU */
                    if (q_us < 1000)
                        q_us = 1000;
                    if (c->cpu_quota > 0 && q_us > c->cpu_quota)
                        return sx_error_set(err, "invalid_parameter",
                                            "with.resources.limits.cpu '%s' is above the "
                                            "executor's cpu_quota (%lld = %.2f CPU)", text,
                                            (long long)c->cpu_quota, c->cpu_quota / 100000.0);
                    quota = q_us;
                } else {
                    shares = v * 1024 / 1000;
                    if (shares < 2)
                        shares = 2;
                }
            } else if (strcmp(q->string, "memory") == 0) {
                if (sx_quantity_bytes(text, &v) != 0 || v <= 0)
                    return sx_error_set(err, "invalid_parameter",
                                        "with.resources.%s.memory '%s' is not a memory quantity "
                                        "(\"512Mi\", \"1Gi\")", part->string, text);
                if (limits) {
                    if (v < 6 * 1024 * 1024)
                        return sx_error_set(err, "invalid_parameter",
                                            "with.resources.limits.memory '%s': the Docker "
                                            "Engine's minimum is 6Mi", text);
                    if (c->memory_limit > 0 && v > c->memory_limit)
                        return sx_error_set(err, "invalid_parameter",
                                            "with.resources.limits.memory '%s' is above the "
                                            "executor's memory_limit (%lld bytes)", text,
                                            (long long)c->memory_limit);
                    memory = v;
                } else {
                    reservation = v;
                }
            } else if (strcmp(q->string, "ephemeral_storage") == 0 ||
                       strcmp(q->string, "ephemeral-storage") == 0) {
                return sx_error_set(err, "unsupported_parameter",
                                    "with.resources.%s.%s: the Docker backend cannot limit "
                                    "ephemeral storage (the root filesystem is read-only and "
                                    "tmpfs sizes are set by the executor's tmpfs option)",
                                    part->string, q->string);
            } else {
                return sx_error_set(err, "invalid_parameter",
                                    "with.resources.%s: unknown resource '%s' (known: cpu, "
                                    "memory, ephemeral_storage)", part->string, q->string);
            }
        }
    }
    if (reservation > 0 && memory > 0 && reservation > memory)
        return sx_error_set(err, "invalid_parameter",
                            "with.resources.requests.memory is above the memory limit");
    if (memory > 0) {
        cJSON_AddNumberToObject(hc, "Memory", (double)memory);
        cJSON_AddNumberToObject(hc, "MemorySwap", (double)memory); /* no swap on top */
    }
    if (reservation > 0)
        cJSON_AddNumberToObject(hc, "MemoryReservation", (double)reservation);
    if (quota > 0) {
        cJSON_AddNumberToObject(hc, "CpuPeriod", 100000);
        cJSON_AddNumberToObject(hc, "CpuQuota", (double)quota);
    }
    if (shares > 0)
        cJSON_AddNumberToObject(hc, "CpuShares", (double)shares);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Labels                                                               */
/* ------------------------------------------------------------------ */

static int add_user_labels(const cJSON *with, const char *param, cJSON *labels, sx_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(with, param);
    for (const cJSON *it = cJSON_IsObject(m) ? m->child : NULL; it; it = it->next) {
        if (strncmp(it->string, SX_DK_LABEL_PREFIX, strlen(SX_DK_LABEL_PREFIX)) == 0)
            return sx_error_set(err, "invalid_parameter",
                                "with.%s.%s: the prefix '%s' is reserved for the executor's own "
                                "labels", param, it->string, SX_DK_LABEL_PREFIX);
        if (it->string[0] == '\0' || strlen(it->string) > 253)
            return sx_error_set(err, "invalid_parameter", "with.%s: empty or over-long key",
                                param);
        if (cJSON_GetObjectItemCaseSensitive(labels, it->string))
            return sx_error_set(err, "invalid_parameter",
                                "with.%s.%s: also set by with.labels (containers have one label "
                                "namespace; annotations become labels)", param, it->string);
        char text[64];
        const char *v = it->valuestring;
        if (!cJSON_IsString(it)) {
            if (cJSON_IsBool(it))
                v = cJSON_IsTrue(it) ? "true" : "false";
            else {
                snprintf(text, sizeof text, "%.17g", it->valuedouble);
                v = text;
            }
        }
        cJSON_AddStringToObject(labels, it->string, v);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The plan                                                             */
/* ------------------------------------------------------------------ */

/* "uid[:gid]" when numeric: who owns tmpfs mounts and delivered files. */
static void parse_user(const char *user, sx_dk_plan *plan)
{
    char *end;
    unsigned long uid = strtoul(user, &end, 10);
    if (end == user || (*end != '\0' && *end != ':') || uid > 0xfffffffeUL)
        return; /* a name: the image's passwd decides */
    plan->uid = (unsigned)uid;
    plan->uid_known = 1;
    if (*end == ':') {
        const char *g = end + 1;
        unsigned long gid = strtoul(g, &end, 10);
        if (end != g && *end == '\0' && gid <= 0xfffffffeUL) {
            plan->gid = (unsigned)gid;
            plan->gid_known = 1;
        }
    }
}

static const char *script_file_name(const char *interpreter)
{
    if (strcmp(interpreter, "python3") == 0)
        return "script.py";
    if (strcmp(interpreter, "ruby") == 0)
        return "script.rb";
    return "script.sh";
}

cJSON *sx_dk_strlist_json(const sx_strlist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
    return a;
}

void sx_dk_plan_free(sx_dk_plan *plan)
{
    free(plan->image);
    free(plan->pull_policy);
    free(plan->pull_secret);
    sx_dk_json_wipe_delete(plan->create); /* holds secret env values */
    for (size_t i = 0; i < plan->secrets.n; i++)
        memset(plan->secrets.v[i], 0, strlen(plan->secrets.v[i]));
    sx_strlist_clear(&plan->secrets);
    cJSON_Delete(plan->create_shown);
    for (size_t i = 0; i < plan->n_volumes; i++) {
        sx_dk_volume *v = &plan->volumes[i];
        for (size_t j = 0; j < v->n_files; j++) {
            free(v->files[j].path);
            if (v->files[j].data)
                memset(v->files[j].data, 0, v->files[j].len);
            free(v->files[j].data);
        }
        free(v->files);
        free(v->mount_path);
        free(v->what);
        free(v->name);
    }
    free(plan->volumes);
    memset(plan, 0, sizeof *plan);
}

int sx_dk_plan_build(const sx_docker_instance *inst, const sx_exec_spec *spec,
                     sx_dk_plan *plan, sx_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sx_docker_cfg *c = &inst->cfg;
    cJSON *with = cJSON_Parse(spec->params_json ? spec->params_json : "{}");
    cJSON *notes = cJSON_CreateArray();
    int rc = -1;
    if (!cJSON_IsObject(with)) {
        sx_error_set(err, "invalid_parameter", "'with' must be a JSON object");
        goto out;
    }
    if (c->command_whitelist.n > 0 &&
        !sx_whitelist_match(&c->command_whitelist, spec->script, spec->script_len)) {
        sx_error_set(err, "command_not_allowed",
                     "executor '%s' only runs the %zu commands of its command_whitelist, and "
                     "this script is not one of them", inst->name, c->command_whitelist.n);
        goto out;
    }
    if (str_of(with, "image_ref")) {
        sx_error_set(err, "unsupported_parameter",
                     "with.image_ref needs the image catalog plugin, which is not loaded");
        goto out;
    }
    const char *image = str_of(with, "image");
    sx_image_ref ref;
    if (image == NULL)
        image = c->image;
    if (sx_image_ref_parse(image, &ref, err) != 0) {
        char msg[SX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        sx_error_set(err, "invalid_parameter", "image '%s': %s", image, msg);
        goto out;
    }
    const char *policy = str_of(with, "image_pull_policy");
    const char *secret = str_of(with, "image_pull_secret");
    plan->image = strdup(image);
    plan->pull_policy = strdup(policy ? policy : c->image_pull_policy);
    plan->pull_secret = secret ? strdup(secret) : c->image_pull_secret ? strdup(c->image_pull_secret) : NULL;
    plan->open_stdin = spec->stdin_data != NULL;

    const char *wd = spec->working_dir ? spec->working_dir : c->default_work_dir;
    if (wd == NULL || wd[0] != '/') {
        sx_error_set(err, "invalid_parameter", "working_dir '%s' must be an absolute path",
                     wd ? wd : "");
        goto out;
    }

    cJSON *cr = cJSON_CreateObject();
    plan->create = cr;
    cJSON_AddStringToObject(cr, "Image", image);
    cJSON *argv = cJSON_AddArrayToObject(cr, "Entrypoint");
    cJSON_AddItemToArray(argv, cJSON_CreateString(spec->interpreter));
    char script_path[128];
    snprintf(script_path, sizeof script_path, "%s/%s", SX_DK_SCRIPT_DIR,
             script_file_name(spec->interpreter));
    cJSON_AddItemToArray(argv, cJSON_CreateString(script_path));
    for (size_t i = 0; i < spec->n_args; i++)
        cJSON_AddItemToArray(argv, cJSON_CreateString(spec->args[i]));
    cJSON_AddStringToObject(cr, "WorkingDir", wd);
    cJSON_AddStringToObject(cr, "User", c->user);
    cJSON_AddBoolToObject(cr, "Tty", 0);
    cJSON_AddBoolToObject(cr, "AttachStdout", 1);
    cJSON_AddBoolToObject(cr, "AttachStderr", 1);
    cJSON_AddBoolToObject(cr, "AttachStdin", plan->open_stdin);
    cJSON_AddBoolToObject(cr, "OpenStdin", plan->open_stdin);
    cJSON_AddBoolToObject(cr, "StdinOnce", plan->open_stdin);

    cJSON *labels = cJSON_AddObjectToObject(cr, "Labels");
    if (add_user_labels(with, "labels", labels, err) != 0 ||
        add_user_labels(with, "annotations", labels, err) != 0)
        goto out;
    cJSON_AddStringToObject(labels, SX_DK_LABEL_MANAGED, "true");
    cJSON_AddStringToObject(labels, SX_DK_LABEL_HOST, c->host_id);
    cJSON_AddStringToObject(labels, SX_DK_LABEL_EXECUTOR, inst->name);
    cJSON_AddStringToObject(labels, SX_DK_LABEL_EXECUTION, spec->execution_id);
    cJSON_AddStringToObject(labels, SX_DK_LABEL_STEP, spec->step_name);
    if (!c->auto_remove)
        cJSON_AddStringToObject(labels, SX_DK_LABEL_KEEP, "true");

    parse_user(c->user, plan);
    cJSON *hc = cJSON_AddObjectToObject(cr, "HostConfig");
    cJSON_AddStringToObject(hc, "NetworkMode", c->network_mode);
    cJSON_AddItemToObject(hc, "Binds", sx_dk_strlist_json(&c->volumes));
    cJSON_AddBoolToObject(hc, "ReadonlyRootfs", c->read_only_rootfs);
    cJSON *sec = cJSON_AddArrayToObject(hc, "SecurityOpt");
    if (c->no_new_privileges)
        cJSON_AddItemToArray(sec, cJSON_CreateString("no-new-privileges"));
    cJSON_AddItemToObject(hc, "CapDrop", sx_dk_strlist_json(&c->cap_drop));
    cJSON_AddItemToObject(hc, "CapAdd", sx_dk_strlist_json(&c->cap_add));
    if (c->pids_limit > 0)
        cJSON_AddNumberToObject(hc, "PidsLimit", (double)c->pids_limit);
    /* tmpfs mounts belong to the script's user: when the working directory
     * is a tmpfs, the Engine copies the directory's root-owned 0755 onto the
     * mount (whatever mode= says), so ownership is what makes it writable.
     * Options that set uid= or gid= are left as they are. */
    cJSON *tmpfs = cJSON_AddObjectToObject(hc, "Tmpfs");
    for (size_t i = 0; i < c->tmpfs.n; i++) {
        const char *o = c->tmpfs.values[i];
        if (plan->uid_known && strstr(o, "uid=") == NULL && strstr(o, "gid=") == NULL) {
            char opts[600];
            if (plan->gid_known)
                snprintf(opts, sizeof opts, "%s%suid=%u,gid=%u", o, o[0] ? "," : "",
                         plan->uid, plan->gid);
            else
                snprintf(opts, sizeof opts, "%s%suid=%u", o, o[0] ? "," : "", plan->uid);
            cJSON_AddStringToObject(tmpfs, c->tmpfs.keys[i], opts);
        } else {
            cJSON_AddStringToObject(tmpfs, c->tmpfs.keys[i], o);
        }
    }
    /* The backend removes the container itself after reading its exit
     * state (auto_remove); the Engine's AutoRemove would race that. */
    cJSON_AddBoolToObject(hc, "AutoRemove", 0);
    /* The Engine's init (tini) as PID 1: the script gets default signal
     * behaviour and its orphans are reaped, as outside a container. */
    cJSON_AddBoolToObject(hc, "Init", c->init);
    if (build_resources(inst, with, hc, err) != 0)
        goto out;

    /* The script's volume first, then secrets and configmaps. */
    sx_dk_volume *sv = volume_add(plan, SX_DK_SCRIPT_DIR, "script");
    char *script = sv ? malloc(spec->script_len ? spec->script_len : 1) : NULL;
    if (script == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    memcpy(script, spec->script, spec->script_len);
    if (file_add(sv, script_file_name(spec->interpreter), script, spec->script_len, 0444) != 0) {
        free(script);
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    if (mounts_from(inst, with, SX_STORE_SECRET, plan, notes, err) != 0 ||
        mounts_from(inst, with, SX_STORE_CONFIGMAP, plan, notes, err) != 0)
        goto out;
    for (size_t i = 0; i < plan->n_volumes; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(plan->volumes[i].mount_path, plan->volumes[j].mount_path) == 0) {
                sx_error_set(err, "invalid_parameter", "mount_path '%s' is used twice",
                             plan->volumes[i].mount_path);
                goto out;
            }

    plan->create_shown = cJSON_Duplicate(cr, 1);
    if (build_env(inst, spec, with, plan, notes, err) != 0)
        goto out;
    /* the mounts run() adds to HostConfig.Mounts, per script_delivery */
    int bind = c->delivery == SX_DK_DELIVER_BIND;
    cJSON *shown_mounts = cJSON_AddArrayToObject(plan->create_shown, "Volumes (per execution)");
    for (size_t i = 0; i < plan->n_volumes; i++) {
        cJSON *o = cJSON_CreateObject();
        char src[400];
        if (bind)
            snprintf(src, sizeof src, "%s/<container name>/v%zu", c->bind_dir, i);
        else
            snprintf(src, sizeof src, "<container name>-v%zu", i);
        cJSON_AddStringToObject(o, "type", bind ? "bind" : "volume");
        cJSON_AddStringToObject(o, "source", src);
        cJSON_AddStringToObject(o, "target", plan->volumes[i].mount_path);
        cJSON_AddBoolToObject(o, "read_only", bind); /* the archive API writes to rw mounts only */
        cJSON_AddStringToObject(o, "content", plan->volumes[i].what);
        cJSON *files = cJSON_AddArrayToObject(o, "files");
        for (size_t j = 0; j < plan->volumes[i].n_files; j++) {
            const sx_dk_file *fl = &plan->volumes[i].files[j];
            char f[300];
            snprintf(f, sizeof f, "%s (%04o, %zu bytes)", fl->path,
                     bind ? sx_dk_bind_file_mode(plan, fl->mode) : fl->mode, fl->len);
            cJSON_AddItemToArray(files, cJSON_CreateString(f));
        }
        cJSON_AddItemToArray(shown_mounts, o);
    }
    cJSON_AddItemToObject(plan->create_shown, "Notes", notes);
    notes = NULL;
    rc = 0;
out:
    cJSON_Delete(notes);
    cJSON_Delete(with);
    if (rc != 0)
        sx_dk_plan_free(plan);
    return rc;
}
