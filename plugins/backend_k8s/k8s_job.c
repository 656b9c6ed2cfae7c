/*
 * k8s_job.c - from a step and the executor's options to the objects one
 * execution creates: the batch/v1 Job (as the spec's job builder builds
 * it) and, when the step has an inline script or stdin, a per-execution
 * Secret holding them (never argv, never the Job).  Pure: talks to no API
 * server, so render shows exactly what run creates.
 *
 * Every parameter is checked here the way the API server would check it,
 * and a value it would refuse is refused with invalid_parameter naming the
 * parameter (with.tolerations[1].operator, ...), before anything is created.
 */
#define _POSIX_C_SOURCE 200809L
#include "k8s.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_validate.h"
#include "sx/sx_util.h"

/* Parameter paths in messages are cut to fit their buffers, never overrun. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MASK "********"
#define PATH_MAX_TEXT 256
#define ANNOTATIONS_MAX (256 * 1024)

typedef struct builder {
    const sx_k8s_instance *inst;
    const sx_k8s_cfg *c;
    const sx_exec_spec *spec;
    const cJSON *with;
    sx_k8s_plan *plan;
    sx_error *err;
    cJSON *volumes;             /* pod spec volumes */
    cJSON *mounts;              /* container volumeMounts */
    char *ephemeral_limit;      /* limits.ephemeral-storage, for the workspace */
} builder;

static int perr(builder *b, const char *fmt, ...) SX_PRINTF(2, 3);
static int perr(builder *b, const char *fmt, ...)
{
    char msg[SX_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sx_error_set(b->err, "invalid_parameter", "%s", msg);
}

static int oom(builder *b)
{
    return sx_error_set(b->err, "out_of_memory", "out of memory");
}

static void note(builder *b, const char *fmt, ...) SX_PRINTF(2, 3);
static void note(builder *b, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(b->plan->notes, cJSON_CreateString(msg));
}

static const cJSON *get(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A scalar (string, number, boolean) as text: YAML writes `gpu: true`
 * and `port: 5432` without quotes.  0, or -1 when not a scalar. */
static int scalar_text(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
             fabs(v->valuedouble) < 9e15)
        snprintf(buf, size, "%lld", (long long)v->valuedouble);
    else if (cJSON_IsNumber(v))
        snprintf(buf, size, "%.17g", v->valuedouble);
    else
        return -1;
    return 0;
}

/* Refuse fields of `o` not in `known` (NULL-terminated). */
static int known_fields(builder *b, const cJSON *o, const char *where, const char *const *known)
{
    for (const cJSON *f = o->child; f; f = f->next) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, f->string) == 0;
        if (ok)
            continue;
        char list[400] = "";
        for (const char *const *k = known; *k; k++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", k == known ? "" : ", ", *k);
        }
        return perr(b, "%s: unknown field '%s' (known: %s)", where, f->string, list);
    }
    return 0;
}

/* An integer field: 0 absent, 1 set, -1 wrong. */
static int int_field(const cJSON *o, const char *k, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = get(o, k);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 1;
}

/* A boolean field: 0 absent/false, 1 true, -1 not a boolean. */
static int bool_field(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    if (v == NULL)
        return 0;
    if (!cJSON_IsBool(v))
        return -1;
    return cJSON_IsTrue(v);
}

/* A file mode: a number 0..0777 (YAML's 0600 arrives as 384) or an octal
 * string "0600". */
static int parse_mode(const cJSON *v, int *mode)
{
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < 0 || v->valuedouble > 0777 || v->valuedouble != floor(v->valuedouble))
            return -1;
        *mode = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        unsigned long m = strtoul(v->valuestring, &end, 8);
        if (v->valuestring[0] == '\0' || *end != '\0' || m > 0777)
            return -1;
        *mode = (int)m;
        return 0;
    }
    return -1;
}

static cJSON *escaped_string(const char *s)
{
    char *e = sx_k8s_escape_refs(s);
    if (e == NULL)
        return NULL;
    cJSON *j = cJSON_CreateString(e);
    free(e);
    return j;
}

/* ------------------------------------------------------------------ */
/* Names and labels                                                     */
/* ------------------------------------------------------------------ */

static int ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void sx_k8s_label_value(const char *in, char out[64])
{
    char tmp[64];
    size_t n = 0;
    for (const char *p = in ? in : ""; *p && n < 63; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        tmp[n++] = ok ? c : '_';
    }
    tmp[n] = '\0';
    size_t a = 0, e = n;
    while (a < e && !ascii_alnum(tmp[a]))
        a++;
    while (e > a && !ascii_alnum(tmp[e - 1]))
        e--;
    memcpy(out, tmp + a, e - a);
    out[e - a] = '\0';
}

/* Lowercase [a-z0-9] with single '-' between runs, at most `max` chars,
 * no '-' at either end. */
static void slug(const char *in, char *out, size_t max)
{
    size_t n = 0;
    int dash = 0;
    for (const char *p = in ? in : ""; *p && n < max; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && n > 0 && n + 1 < max)
                out[n++] = '-';
            dash = 0;
            out[n++] = c;
        } else {
            dash = 1;
        }
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

void sx_k8s_job_name(const char *execution_id, const char *step_name, char out[64])
{
    const char *x = execution_id ? execution_id : "";
    const char *s = step_name ? step_name : "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    size_t xl = strlen(x), sl = strlen(s);
    char *both = malloc(xl + sl + 2);
    if (both) {
        memcpy(both, x, xl + 1);
        memcpy(both + xl + 1, s, sl + 1);
        EVP_Digest(both, xl + sl + 1, md, &mdn, EVP_sha256(), NULL);
        free(both);
    }
    char hash[9] = "00000000";
    for (unsigned int i = 0; i < 4 && i < mdn; i++)
        snprintf(hash + 2 * i, 3, "%02x", md[i]);
    /* prefix (12) + body + '-' + 8 hex <= 63 */
    const size_t body_max = SX_K8S_NAME_MAX - strlen(SX_K8S_JOB_PREFIX) - 9;
    char a[64], c[64], body[128];
    slug(x, a, body_max);
    slug(s, c, body_max);
    snprintf(body, sizeof body, "%s%s%s", a, a[0] && c[0] ? "-" : "", c);
    slug(body, body, body_max); /* cut and tidy the ends again */
    snprintf(out, 64, "%s%s%s%s", SX_K8S_JOB_PREFIX, body, body[0] ? "-" : "", hash);
}

int sx_k8s_selector(const sx_k8s_instance *inst, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s=true,%s=%s,%s=%s", SX_K8S_LABEL_MANAGED, SX_K8S_LABEL_HOST,
                     inst->cfg.host_id, SX_K8S_LABEL_EXECUTOR, inst->name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int reserved_label(const char *k)
{
    static const char *const keys[] = {SX_K8S_LABEL_EXECUTOR_KIND, SX_K8S_LABEL_EXECUTION_ID,
                                       SX_K8S_LABEL_RUNBOOK_ID, SX_K8S_LABEL_USER,
                                       SX_K8S_LABEL_MANAGED_BY, "job-name", "controller-uid", NULL};
    for (const char *const *x = keys; *x; x++)
        if (strcmp(*x, k) == 0)
            return 1;
    return strncmp(k, SX_K8S_LABEL_PREFIX, strlen(SX_K8S_LABEL_PREFIX)) == 0 ||
           strncmp(k, "batch.kubernetes.io/", 20) == 0;
}

static int reserved_annotation(const char *k)
{
    static const char *const keys[] = {SX_K8S_ANN_SCRIPT_HASH, SX_K8S_ANN_EXECUTION_ID,
                                       SX_K8S_ANN_RUNBOOK_ID, SX_K8S_ANN_USER, SX_K8S_ANN_IMAGE,
                                       SX_K8S_ANN_CREATED_BY, NULL};
    for (const char *const *x = keys; *x; x++)
        if (strcmp(*x, k) == 0)
            return 1;
    return strncmp(k, SX_K8S_LABEL_PREFIX, strlen(SX_K8S_LABEL_PREFIX)) == 0;
}

/* The labels this backend sets: the spec's (all for the Job and the
 * Secret, executor and execution-id for the pod) and its own. */
static cJSON *own_labels(builder *b, int for_pod)
{
    const sx_exec_spec *s = b->spec;
    cJSON *l = cJSON_CreateObject();
    char v[64];
    cJSON_AddStringToObject(l, SX_K8S_LABEL_EXECUTOR_KIND, "script");
    sx_k8s_label_value(s->execution_id, v);
    cJSON_AddStringToObject(l, SX_K8S_LABEL_EXECUTION_ID, v);
    if (!for_pod) {
        if (s->runbook_id) {
            sx_k8s_label_value(s->runbook_id, v);
            cJSON_AddStringToObject(l, SX_K8S_LABEL_RUNBOOK_ID, v);
        }
        if (s->user) {
            sx_k8s_label_value(s->user, v);
            cJSON_AddStringToObject(l, SX_K8S_LABEL_USER, v);
        }
        cJSON_AddStringToObject(l, SX_K8S_LABEL_MANAGED_BY, "opscontrolroom");
    }
    cJSON_AddStringToObject(l, SX_K8S_LABEL_MANAGED, "true");
    cJSON_AddStringToObject(l, SX_K8S_LABEL_HOST, b->c->host_id);
    cJSON_AddStringToObject(l, SX_K8S_LABEL_EXECUTOR, b->inst->name);
    sx_k8s_label_value(s->step_name, v);
    cJSON_AddStringToObject(l, SX_K8S_LABEL_STEP, v);
    return l;
}

/* with.labels: checked and added to `l` (the pod's and the Job's). */
static int user_labels(builder *b, cJSON *l)
{
    const cJSON *m = get(b->with, "labels");
    if (m && !cJSON_IsObject(m))
        return perr(b, "with.labels must be a map of strings");
    for (const cJSON *it = m ? m->child : NULL; it; it = it->next) {
        char v[300];
        if (!sx_k8s_qualified_name_ok(it->string))
            return perr(b, "with.labels: '%s' is not a valid label key ([prefix/]name, the name at "
                        "most 63 of [A-Za-z0-9._-], alphanumeric at both ends)", it->string);
        if (reserved_label(it->string))
            return perr(b, "with.labels: '%s' is set by the executor itself and cannot be "
                        "changed", it->string);
        if (scalar_text(it, v, sizeof v) != 0 || !sx_k8s_label_value_ok(v))
            return perr(b, "with.labels.%s: '%.80s' is not a valid label value (at most 63 of "
                        "[A-Za-z0-9._-], alphanumeric at both ends)", it->string,
                        cJSON_IsString(it) ? it->valuestring : "?");
        cJSON_DeleteItemFromObjectCaseSensitive(l, it->string);
        cJSON_AddStringToObject(l, it->string, v);
    }
    return 0;
}

/* with.annotations, checked; NULL on error (err set), else a new object. */
static cJSON *user_annotations(builder *b)
{
    cJSON *a = cJSON_CreateObject();
    const cJSON *m = get(b->with, "annotations");
    size_t total = 0;
    if (m && !cJSON_IsObject(m)) {
        perr(b, "with.annotations must be a map of strings");
        goto fail;
    }
    for (const cJSON *it = m ? m->child : NULL; it; it = it->next) {
        if (!sx_k8s_qualified_name_ok(it->string)) {
            perr(b, "with.annotations: '%s' is not a valid annotation key ([prefix/]name, the "
                 "name at most 63 of [A-Za-z0-9._-], alphanumeric at both ends)", it->string);
            goto fail;
        }
        if (reserved_annotation(it->string)) {
            perr(b, "with.annotations: '%s' is set by the executor itself and cannot be changed",
                 it->string);
            goto fail;
        }
        char num[64];
        const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
        if (v == NULL) {
            if (scalar_text(it, num, sizeof num) != 0) {
                perr(b, "with.annotations.%s must be a string", it->string);
                goto fail;
            }
            v = num;
        }
        total += strlen(it->string) + strlen(v);
        if (total > ANNOTATIONS_MAX) {
            perr(b, "with.annotations: more than 256 KiB in total (the API server's limit)");
            goto fail;
        }
        cJSON_AddStringToObject(a, it->string, v);
    }
    return a;
fail:
    cJSON_Delete(a);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Environment                                                          */
/* ------------------------------------------------------------------ */

static int remember_secret(builder *b, const char *name, const char *key, int optional)
{
    sx_k8s_plan *p = b->plan;
    for (size_t i = 0; i < p->n_secret_refs; i++) {
        const sx_k8s_secret_ref *r = &p->secret_refs[i];
        if (strcmp(r->name, name) == 0 && (r->key == NULL || (key && strcmp(r->key, key) == 0)))
            return 0; /* already covered */
    }
    sx_k8s_secret_ref *v = realloc(p->secret_refs, (p->n_secret_refs + 1) * sizeof *v);
    if (v == NULL)
        return oom(b);
    p->secret_refs = v;
    sx_k8s_secret_ref *r = &v[p->n_secret_refs];
    r->name = strdup(name);
    r->key = key ? strdup(key) : NULL;
    r->optional = optional;
    if (r->name == NULL || (key && r->key == NULL)) {
        free(r->name);
        free(r->key);
        return oom(b);
    }
    p->n_secret_refs++;
    return 0;
}

/* Names set explicitly (env, env_from_secret, env_from_configmap): one
 * source each. */
typedef struct name_set {
    const char **v;
    size_t n;
    const char **src;
} name_set;

static int name_add(builder *b, name_set *s, const char *name, const char *src)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return perr(b, "environment variable '%s' is set twice (by with.%s and with.%s): keep "
                        "one", name, s->src[i], src);
    const char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (v == NULL)
        return oom(b);
    s->v = v;
    const char **w = realloc(s->src, (s->n + 1) * sizeof *w);
    if (w == NULL)
        return oom(b);
    s->src = w;
    s->v[s->n] = name;
    s->src[s->n] = src;
    s->n++;
    return 0;
}

static int name_in(const name_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

static int literal_env(builder *b, cJSON *env, const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON *v = escaped_string(value);
    if (e == NULL || v == NULL) {
        cJSON_Delete(e);
        cJSON_Delete(v);
        return oom(b);
    }
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddItemToObject(e, "value", v);
    cJSON_AddItemToArray(env, e);
    return 0;
}

/* env_from_secret / env_from_configmap: NAME: {secret_name|configmap_name, key, optional} */
static int env_refs(builder *b, int secret, cJSON *env, name_set *names)
{
    const char *param = secret ? "env_from_secret" : "env_from_configmap";
    const char *name_key = secret ? "secret_name" : "configmap_name";
    const char *kind = secret ? "Secret" : "ConfigMap";
    const cJSON *refs = get(b->with, param);
    if (refs && !cJSON_IsObject(refs))
        return perr(b, "with.%s must be a map NAME: {%s, key, optional}", param, name_key);
    for (const cJSON *r = refs ? refs->child : NULL; r; r = r->next) {
        char where[PATH_MAX_TEXT];
        snprintf(where, sizeof where, "with.%s.%s", param, r->string);
        if (!sx_k8s_env_name_ok(r->string))
            return perr(b, "with.%s: '%s' is not a valid environment variable name "
                        "([-._a-zA-Z][-._a-zA-Z0-9]*)", param, r->string);
        if (!cJSON_IsObject(r))
            return perr(b, "%s must be an object {%s, key, optional}", where, name_key);
        const char *const known[] = {name_key, "key", "optional", NULL};
        if (known_fields(b, r, where, known) != 0)
            return -1;
        const char *obj = str_of(r, name_key), *key = str_of(r, "key");
        int optional = bool_field(r, "optional");
        if (obj == NULL || key == NULL || optional < 0)
            return perr(b, "%s needs string fields %s and key (optional: a boolean)", where,
                        name_key);
        if (!sx_k8s_dns_subdomain_ok(obj))
            return perr(b, "%s.%s: '%s' is not a %s name (DNS-1123 subdomain)", where, name_key,
                        obj, kind);
        if (!sx_k8s_config_key_ok(key))
            return perr(b, "%s.key: '%s' is not a %s key ([-._a-zA-Z0-9]+)", where, key, kind);
        if (name_add(b, names, r->string, param) != 0)
            return -1;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->string);
        cJSON *vf = cJSON_AddObjectToObject(e, "valueFrom");
        cJSON *sel = cJSON_AddObjectToObject(vf, secret ? "secretKeyRef" : "configMapKeyRef");
        cJSON_AddStringToObject(sel, "name", obj);
        cJSON_AddStringToObject(sel, "key", key);
        cJSON_AddBoolToObject(sel, "optional", optional);
        cJSON_AddItemToArray(env, e);
        if (secret && remember_secret(b, obj, key, optional) != 0)
            return -1;
    }
    return 0;
}

/* secret_env_all / configmap_env_all -> envFrom */
static int env_from_all(builder *b, int secret, cJSON *env_from)
{
    const char *param = secret ? "secret_env_all" : "configmap_env_all";
    const cJSON *list = get(b->with, param);
    if (list && !cJSON_IsArray(list))
        return perr(b, "with.%s must be a list of names", param);
    int i = 0;
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next, i++) {
        if (!cJSON_IsString(it) || !sx_k8s_dns_subdomain_ok(it->valuestring))
            return perr(b, "with.%s[%d]: '%s' is not a %s name (DNS-1123 subdomain)", param, i,
                        cJSON_IsString(it) ? it->valuestring : "?",
                        secret ? "Secret" : "ConfigMap");
        cJSON *e = cJSON_CreateObject();
        cJSON *ref = cJSON_AddObjectToObject(e, secret ? "secretRef" : "configMapRef");
        cJSON_AddStringToObject(ref, "name", it->valuestring);
        cJSON_AddItemToArray(env_from, e);
        if (secret && remember_secret(b, it->valuestring, NULL, 0) != 0)
            return -1;
    }
    return 0;
}

static int build_env(builder *b, cJSON *container)
{
    const sx_exec_spec *s = b->spec;
    name_set names = {0};
    cJSON *env = cJSON_CreateArray();
    cJSON *literal = cJSON_CreateArray();
    cJSON *refs = cJSON_CreateArray();
    int rc = -1;
    for (size_t i = 0; s->env && i < s->env->n; i++) {
        if (!sx_k8s_env_name_ok(s->env->keys[i])) {
            perr(b, "with.env: '%s' is not a valid environment variable name "
                 "([-._a-zA-Z][-._a-zA-Z0-9]*)", s->env->keys[i]);
            goto out;
        }
        if (name_add(b, &names, s->env->keys[i], "env") != 0 ||
            literal_env(b, literal, s->env->keys[i], s->env->values[i]) != 0)
            goto out;
    }
    if (env_refs(b, 1, refs, &names) != 0 || env_refs(b, 0, refs, &names) != 0)
        goto out;
    /* default_env first (unless the step sets the name), then the step's */
    const sx_k8s_cfg *c = b->c;
    for (size_t i = 0; i < c->default_env.n; i++)
        if (!name_in(&names, c->default_env.keys[i]) &&
            literal_env(b, env, c->default_env.keys[i], c->default_env.values[i]) != 0)
            goto out;
    cJSON *x;
    while ((x = cJSON_DetachItemFromArray(literal, 0)) != NULL)
        cJSON_AddItemToArray(env, x);
    while ((x = cJSON_DetachItemFromArray(refs, 0)) != NULL)
        cJSON_AddItemToArray(env, x);
    if (cJSON_GetArraySize(env) > 0) {
        cJSON_AddItemToObject(container, "env", env);
        env = NULL;
    }
    cJSON *env_from = cJSON_CreateArray();
    if (env_from_all(b, 1, env_from) != 0 || env_from_all(b, 0, env_from) != 0) {
        cJSON_Delete(env_from);
        goto out;
    }
    if (cJSON_GetArraySize(env_from) > 0)
        cJSON_AddItemToObject(container, "envFrom", env_from);
    else
        cJSON_Delete(env_from);
    rc = 0;
out:
    cJSON_Delete(env);
    cJSON_Delete(literal);
    cJSON_Delete(refs);
    free(names.v);
    free(names.src);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Volumes                                                              */
/* ------------------------------------------------------------------ */

static cJSON *find_mount(const cJSON *mounts, const char *path)
{
    cJSON *m;
    cJSON_ArrayForEach(m, mounts)
    {
        const char *p = str_of(m, "mountPath");
        if (p && strcmp(p, path) == 0)
            return m;
    }
    return NULL;
}

static void add_mount(builder *b, const char *volume, const char *path, int read_only,
                      const char *sub_path)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", volume);
    cJSON_AddStringToObject(m, "mountPath", path);
    if (read_only)
        cJSON_AddBoolToObject(m, "readOnly", 1);
    if (sub_path)
        cJSON_AddStringToObject(m, "subPath", sub_path);
    cJSON_AddItemToArray(b->mounts, m);
}

static cJSON *add_volume(builder *b, const char *name)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", name);
    cJSON_AddItemToArray(b->volumes, v);
    return v;
}

/* volumes_from_secret / volumes_from_configmap */
static int user_volumes(builder *b, int secret)
{
    const char *param = secret ? "volumes_from_secret" : "volumes_from_configmap";
    const char *name_key = secret ? "secret_name" : "configmap_name";
    const char *kind = secret ? "Secret" : "ConfigMap";
    const cJSON *list = get(b->with, param);
    if (list && !cJSON_IsArray(list))
        return perr(b, "with.%s must be a list of objects", param);
    int idx = 0;
    for (const cJSON *m = list ? list->child : NULL; m; m = m->next, idx++) {
        char where[PATH_MAX_TEXT];
        snprintf(where, sizeof where, "with.%s[%d]", param, idx);
        if (!cJSON_IsObject(m))
            return perr(b, "%s must be an object {%s, mount_path, ...}", where, name_key);
        const char *const known[] = {name_key, "mount_path", "items", "default_mode", "optional",
                                     "sub_path", "read_only", NULL};
        if (known_fields(b, m, where, known) != 0)
            return -1;
        const char *obj = str_of(m, name_key), *path = str_of(m, "mount_path");
        if (obj == NULL || !sx_k8s_dns_subdomain_ok(obj))
            return perr(b, "%s.%s: '%s' is not a %s name (DNS-1123 subdomain)", where, name_key,
                        obj ? obj : "", kind);
        if (path == NULL || !sx_k8s_abs_path_ok(path) || strcmp(path, "/") == 0)
            return perr(b, "%s.mount_path: '%s' must be an absolute path (not /, no '..', no "
                        "':')", where, path ? path : "");
        if (sx_k8s_path_within(path, SX_K8S_RUN_DIR) ||
            sx_k8s_path_within(path, SX_K8S_SCRIPTS_DIR))
            return perr(b, "%s.mount_path: '%s' is reserved for the executor (%s, %s)", where,
                        path, SX_K8S_RUN_DIR, SX_K8S_SCRIPTS_DIR);
        const cJSON *mounted = find_mount(b->mounts, path);
        if (mounted)
            return perr(b, "%s.mount_path: '%s' clashes with the mount of volume '%s' at the same "
                        "path", where, path, str_of(mounted, "name"));
        int ro = bool_field(m, "read_only");
        if (ro < 0 || (get(m, "read_only") && ro == 0))
            return perr(b, "%s.read_only: %s volumes are always read-only", where, kind);
        int optional = bool_field(m, "optional");
        if (optional < 0)
            return perr(b, "%s.optional must be a boolean", where);
        const char *sub_path = NULL;
        const cJSON *sp = get(m, "sub_path");
        if (sp && (!cJSON_IsString(sp) || !sx_k8s_rel_path_ok(sp->valuestring)))
            return perr(b, "%s.sub_path must be a relative path without '..'", where);
        if (sp)
            sub_path = sp->valuestring;
        int def_mode = -1;
        const cJSON *dm = get(m, "default_mode");
        if (dm && parse_mode(dm, &def_mode) != 0)
            return perr(b, "%s.default_mode must be a file mode 0..0777 (e.g. 0644)", where);

        char vname[32];
        snprintf(vname, sizeof vname, "%s-%d", secret ? "secret" : "configmap", idx);
        cJSON *vol = add_volume(b, vname);
        cJSON *src = cJSON_AddObjectToObject(vol, secret ? "secret" : "configMap");
        cJSON_AddStringToObject(src, secret ? "secretName" : "name", obj);
        cJSON_AddBoolToObject(src, "optional", optional);
        if (def_mode >= 0)
            cJSON_AddNumberToObject(src, "defaultMode", def_mode);
        const cJSON *items = get(m, "items");
        if (items && !cJSON_IsArray(items))
            return perr(b, "%s.items must be a list of {key, path, mode}", where);
        int any_key = 0;
        if (items && cJSON_GetArraySize(items) > 0) {
            cJSON *out = cJSON_AddArrayToObject(src, "items");
            int j = 0;
            for (const cJSON *it = items->child; it; it = it->next, j++) {
                char iw[PATH_MAX_TEXT + 20];
                snprintf(iw, sizeof iw, "%s.items[%d]", where, j);
                if (!cJSON_IsObject(it))
                    return perr(b, "%s must be an object {key, path, mode}", iw);
                const char *const ik[] = {"key", "path", "mode", NULL};
                if (known_fields(b, it, iw, ik) != 0)
                    return -1;
                const char *key = str_of(it, "key"), *ip = str_of(it, "path");
                if (key == NULL || !sx_k8s_config_key_ok(key))
                    return perr(b, "%s.key: '%s' is not a %s key ([-._a-zA-Z0-9]+)", iw,
                                key ? key : "", kind);
                if (ip == NULL)
                    ip = key;
                if (!sx_k8s_rel_path_ok(ip))
                    return perr(b, "%s.path: '%s' must be a relative path without '..'", iw, ip);
                int mode = -1;
                const cJSON *md = get(it, "mode");
                if (md && parse_mode(md, &mode) != 0)
                    return perr(b, "%s.mode must be a file mode 0..0777 (e.g. 0600)", iw);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "key", key);
                cJSON_AddStringToObject(o, "path", ip);
                if (mode >= 0)
                    cJSON_AddNumberToObject(o, "mode", mode);
                cJSON_AddItemToArray(out, o);
                if (secret && remember_secret(b, obj, key, optional) != 0)
                    return -1;
                any_key = 1;
            }
        }
        if (secret && !any_key && remember_secret(b, obj, NULL, optional) != 0)
            return -1;
        add_mount(b, vname, path, 1, sub_path);
    }
    return 0;
}

/* The workspace and tmp emptyDirs, and the script's volume. */
static int builtin_volumes(builder *b, const char *script_file, int with_stdin,
                           const char *script_key)
{
    const sx_k8s_cfg *c = b->c;
    cJSON *ws = add_volume(b, "workspace");
    cJSON *ed = cJSON_AddObjectToObject(ws, "emptyDir");
    if (b->ephemeral_limit)
        cJSON_AddStringToObject(ed, "sizeLimit", b->ephemeral_limit);
    add_mount(b, "workspace", c->default_work_dir, 0, NULL);
    cJSON *tmp = add_volume(b, "tmp");
    cJSON *ted = cJSON_AddObjectToObject(tmp, "emptyDir");
    cJSON_AddStringToObject(ted, "sizeLimit", c->tmp_size_limit);
    add_mount(b, "tmp", "/tmp", 0, NULL);
    if (b->plan->secret_name) {
        cJSON *v = add_volume(b, "script");
        cJSON *src = cJSON_AddObjectToObject(v, "secret");
        cJSON_AddStringToObject(src, "secretName", b->plan->secret_name);
        cJSON_AddNumberToObject(src, "defaultMode", 0444);
        cJSON_AddBoolToObject(src, "optional", 0);
        cJSON *items = cJSON_AddArrayToObject(src, "items");
        if (script_file) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", SX_K8S_SECRET_KEY_SCRIPT);
            cJSON_AddStringToObject(o, "path", script_file);
            cJSON_AddItemToArray(items, o);
        }
        if (with_stdin) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", SX_K8S_SECRET_KEY_STDIN);
            cJSON_AddStringToObject(o, "path", SX_K8S_SECRET_KEY_STDIN);
            cJSON_AddItemToArray(items, o);
        }
        add_mount(b, "script", SX_K8S_RUN_DIR, 1, NULL);
    }
    if (script_key) {
        /* the whole scripts ConfigMap (the script may source its siblings);
         * the script itself runs from the Secret: the text that was hashed
         * and checked, not what the ConfigMap holds when the pod starts */
        cJSON *v = add_volume(b, "scripts");
        cJSON *src = cJSON_AddObjectToObject(v, "configMap");
        cJSON_AddStringToObject(src, "name", c->scripts_configmap);
        cJSON_AddNumberToObject(src, "defaultMode", 0555);
        cJSON_AddBoolToObject(src, "optional", 0);
        add_mount(b, "scripts", SX_K8S_SCRIPTS_DIR, 1, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Resources                                                            */
/* ------------------------------------------------------------------ */

static const char *const res_param[] = {"cpu", "memory", "ephemeral_storage"};
static const char *const res_api[] = {"cpu", "memory", "ephemeral-storage"};

static const char *qty_of(const sx_k8s_quantities *q, int i)
{
    return i == 0 ? q->cpu : i == 1 ? q->memory : q->ephemeral_storage;
}

static int build_resources(builder *b, cJSON *container)
{
    const sx_k8s_cfg *c = b->c;
    char text[2][3][64];
    int have[2][3] = {{0}}, by_step[2][3] = {{0}};
    int64_t val[2][3];
    for (int i = 0; i < 3; i++) {
        const char *d[2] = {qty_of(&c->default_resources.requests, i),
                            qty_of(&c->default_resources.limits, i)};
        for (int p = 0; p < 2; p++)
            if (d[p]) {
                snprintf(text[p][i], sizeof text[p][i], "%s", d[p]);
                have[p][i] = 1;
            }
    }
    const cJSON *res = get(b->with, "resources");
    if (res && !cJSON_IsObject(res))
        return perr(b, "with.resources must be an object {requests, limits}");
    for (const cJSON *part = res ? res->child : NULL; part; part = part->next) {
        int p = strcmp(part->string, "requests") == 0 ? 0
                : strcmp(part->string, "limits") == 0 ? 1
                                                        : -1;
        if (p < 0)
            return perr(b, "with.resources: unknown field '%s' (known: requests, limits)",
                        part->string);
        if (cJSON_IsNull(part))
            continue;
        if (!cJSON_IsObject(part))
            return perr(b, "with.resources.%s must be an object {cpu, memory, ephemeral_storage}",
                        part->string);
        for (const cJSON *q = part->child; q; q = q->next) {
            int i = -1;
            for (int k = 0; k < 3; k++)
                if (strcmp(q->string, res_param[k]) == 0 || strcmp(q->string, res_api[k]) == 0)
                    i = k;
            if (i < 0)
                return perr(b, "with.resources.%s: unknown resource '%s' (known: cpu, memory, "
                            "ephemeral_storage)", part->string, q->string);
            char t[64];
            int64_t v;
            if ((!cJSON_IsString(q) && !cJSON_IsNumber(q)) || scalar_text(q, t, sizeof t) != 0 ||
                sx_k8s_quantity_parse(t, i == 0, &v) != 0 || v <= 0)
                return perr(b, i == 0 ? "with.resources.%s.%s '%s' is not a CPU quantity "
                                        "(\"500m\", \"2\")"
                                      : "with.resources.%s.%s '%s' is not a quantity (\"512Mi\", "
                                        "\"1Gi\")",
                            part->string, res_param[i], cJSON_IsString(q) ? q->valuestring : t);
            snprintf(text[p][i], sizeof text[p][i], "%s", t);
            have[p][i] = by_step[p][i] = 1;
        }
    }
    for (int i = 0; i < 3; i++) {
        for (int p = 0; p < 2; p++)
            if (have[p][i])
                sx_k8s_quantity_parse(text[p][i], i == 0, &val[p][i]);
        if (have[0][i] && have[1][i] && val[0][i] > val[1][i]) {
            if (by_step[0][i] && by_step[1][i])
                return perr(b, "with.resources.requests.%s '%s' is above with.resources.limits.%s "
                            "'%s'", res_param[i], text[0][i], res_param[i], text[1][i]);
            int from = by_step[0][i] ? 0 : 1, to = 1 - from;
            note(b, "resources.%s.%s %s to %s to match the step's %s (the executor's default "
                 "was %s)", to ? "limits" : "requests", res_param[i], to ? "raised" : "lowered",
                 text[from][i], from ? "limit" : "request", text[to][i]);
            memcpy(text[to][i], text[from][i], sizeof text[to][i]);
            val[to][i] = val[from][i];
        }
        const char *ml = qty_of(&c->max_resources.limits, i);
        const char *mr = qty_of(&c->max_resources.requests, i);
        int64_t mlv = -1, mrv = -1;
        if (ml)
            sx_k8s_quantity_parse(ml, i == 0, &mlv);
        if (mr)
            sx_k8s_quantity_parse(mr, i == 0, &mrv);
        if (have[0][i]) {
            const char *lim_name = mr ? "requests" : "limits";
            const char *lim_text = mr ? mr : ml;
            int64_t lim = mr ? mrv : mlv;
            if (lim_text && val[0][i] > lim)
                return perr(b, "with.resources.requests.%s '%s' is above the executor's "
                            "max_resources.%s.%s (%s)", res_param[i], text[0][i], lim_name,
                            res_param[i], lim_text);
        }
        if (have[1][i] && ml && val[1][i] > mlv)
            return perr(b, "with.resources.limits.%s '%s' is above the executor's "
                        "max_resources.limits.%s (%s)", res_param[i], text[1][i], res_param[i], ml);
    }
    cJSON *r = cJSON_AddObjectToObject(container, "resources");
    for (int p = 0; p < 2; p++) {
        cJSON *o = NULL;
        for (int i = 0; i < 3; i++) {
            if (!have[p][i])
                continue;
            if (o == NULL)
                o = cJSON_AddObjectToObject(r, p ? "limits" : "requests");
            cJSON_AddStringToObject(o, res_api[i], text[p][i]);
        }
    }
    if (have[1][2]) {
        b->ephemeral_limit = strdup(text[1][2]);
        if (b->ephemeral_limit == NULL)
            return oom(b);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                           */
/* ------------------------------------------------------------------ */

static int build_node_selector(builder *b, cJSON *pod)
{
    const cJSON *m = get(b->with, "node_selector");
    if (m == NULL)
        return 0;
    if (!cJSON_IsObject(m))
        return perr(b, "with.node_selector must be a map of labels");
    cJSON *ns = cJSON_CreateObject();
    for (const cJSON *it = m->child; it; it = it->next) {
        char v[300];
        if (!sx_k8s_qualified_name_ok(it->string)) {
            cJSON_Delete(ns);
            return perr(b, "with.node_selector: '%s' is not a valid label key", it->string);
        }
        if (scalar_text(it, v, sizeof v) != 0 || !sx_k8s_label_value_ok(v)) {
            cJSON_Delete(ns);
            return perr(b, "with.node_selector.%s: not a valid label value (at most 63 of "
                        "[A-Za-z0-9._-], alphanumeric at both ends)", it->string);
        }
        cJSON_AddStringToObject(ns, it->string, v);
    }
    if (cJSON_GetArraySize(ns) > 0)
        cJSON_AddItemToObject(pod, "nodeSelector", ns);
    else
        cJSON_Delete(ns);
    return 0;
}

static int build_tolerations(builder *b, cJSON *pod)
{
    const cJSON *list = get(b->with, "tolerations");
    if (list == NULL)
        return 0;
    if (!cJSON_IsArray(list))
        return perr(b, "with.tolerations must be a list of objects");
    cJSON *out = cJSON_AddArrayToObject(pod, "tolerations");
    int i = 0;
    for (const cJSON *t = list->child; t; t = t->next, i++) {
        char w[64];
        snprintf(w, sizeof w, "with.tolerations[%d]", i);
        if (!cJSON_IsObject(t))
            return perr(b, "%s must be an object {key, operator, value, effect}", w);
        const char *const known[] = {"key",    "operator",           "value",
                                     "effect", "toleration_seconds", NULL};
        if (known_fields(b, t, w, known) != 0)
            return -1;
        const cJSON *jk = get(t, "key"), *jo = get(t, "operator"), *je = get(t, "effect");
        const cJSON *jv = get(t, "value");
        if ((jk && !cJSON_IsString(jk)) || (jo && !cJSON_IsString(jo)) ||
            (je && !cJSON_IsString(je)))
            return perr(b, "%s: key, operator and effect must be strings", w);
        const char *key = jk ? jk->valuestring : "";
        const char *op = jo ? jo->valuestring : "Equal";
        const char *effect = je ? je->valuestring : "";
        char value[300] = "";
        if (jv && scalar_text(jv, value, sizeof value) != 0)
            return perr(b, "%s.value must be a string", w);
        if (strcmp(op, "Equal") && strcmp(op, "Exists"))
            return perr(b, "%s.operator '%s' must be Equal or Exists", w, op);
        if (key[0] && !sx_k8s_qualified_name_ok(key))
            return perr(b, "%s.key '%s' is not a valid label key", w, key);
        if (key[0] == '\0' && strcmp(op, "Exists") != 0)
            return perr(b, "%s: an empty key needs operator Exists (it then tolerates every taint)",
                        w);
        if (strcmp(op, "Exists") == 0 && value[0])
            return perr(b, "%s.value must be empty when operator is Exists", w);
        if (strcmp(op, "Equal") == 0 && !sx_k8s_label_value_ok(value))
            return perr(b, "%s.value '%s' is not a valid label value", w, value);
        if (effect[0] && strcmp(effect, "NoSchedule") && strcmp(effect, "PreferNoSchedule") &&
            strcmp(effect, "NoExecute"))
            return perr(b, "%s.effect '%s' must be NoSchedule, PreferNoSchedule or NoExecute", w,
                        effect);
        int64_t secs = 0;
        int has_secs = int_field(t, "toleration_seconds", -9000000000000000LL,
                                 9000000000000000LL, &secs);
        if (has_secs < 0)
            return perr(b, "%s.toleration_seconds must be an integer", w);
        if (has_secs && strcmp(effect, "NoExecute") != 0)
            return perr(b, "%s.toleration_seconds needs effect NoExecute", w);
        cJSON *o = cJSON_CreateObject();
        if (key[0])
            cJSON_AddStringToObject(o, "key", key);
        cJSON_AddStringToObject(o, "operator", op);
        if (value[0])
            cJSON_AddStringToObject(o, "value", value);
        if (effect[0])
            cJSON_AddStringToObject(o, "effect", effect);
        if (has_secs)
            cJSON_AddNumberToObject(o, "tolerationSeconds", (double)secs);
        cJSON_AddItemToArray(out, o);
    }
    return 0;
}

/* match_expressions: node selector requirements (node != 0: In NotIn
 * Exists DoesNotExist Gt Lt) or label selector requirements (In NotIn
 * Exists DoesNotExist). */
static cJSON *match_expressions(builder *b, const cJSON *list, const char *where, int node)
{
    if (!cJSON_IsArray(list)) {
        perr(b, "%s must be a list of {key, operator, values}", where);
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        char w[PATH_MAX_TEXT + 20];
        snprintf(w, sizeof w, "%s[%d]", where, i);
        const char *const known[] = {"key", "operator", "values", NULL};
        if (!cJSON_IsObject(e)) {
            perr(b, "%s must be an object {key, operator, values}", w);
            goto fail;
        }
        if (known_fields(b, e, w, known) != 0)
            goto fail;
        const char *key = str_of(e, "key"), *op = str_of(e, "operator");
        if (key == NULL || !sx_k8s_qualified_name_ok(key)) {
            perr(b, "%s.key '%s' is not a valid label key", w, key ? key : "");
            goto fail;
        }
        static const char *const node_ops[] = {"In", "NotIn", "Exists", "DoesNotExist",
                                               "Gt", "Lt",    NULL};
        int known_op = 0;
        for (const char *const *o = node_ops; op && *o && !known_op; o++)
            known_op = strcmp(*o, op) == 0 && (node || (strcmp(op, "Gt") && strcmp(op, "Lt")));
        if (!known_op) {
            perr(b, "%s.operator '%s' must be %s", w, op ? op : "",
                 node ? "In, NotIn, Exists, DoesNotExist, Gt or Lt"
                      : "In, NotIn, Exists or DoesNotExist");
            goto fail;
        }
        const cJSON *vals = get(e, "values");
        if (vals && !cJSON_IsArray(vals)) {
            perr(b, "%s.values must be a list", w);
            goto fail;
        }
        int n = vals ? cJSON_GetArraySize(vals) : 0;
        int in = !strcmp(op, "In") || !strcmp(op, "NotIn");
        int cmp = !strcmp(op, "Gt") || !strcmp(op, "Lt");
        if (in && n == 0) {
            perr(b, "%s.values must not be empty for operator %s", w, op);
            goto fail;
        }
        if (!in && !cmp && n != 0) {
            perr(b, "%s.values must be empty for operator %s", w, op);
            goto fail;
        }
        if (cmp && n != 1) {
            perr(b, "%s.values must hold exactly one integer for operator %s", w, op);
            goto fail;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(out, o);
        cJSON_AddStringToObject(o, "key", key);
        cJSON_AddStringToObject(o, "operator", op);
        if (n == 0)
            continue;
        cJSON *vs = cJSON_AddArrayToObject(o, "values");
        int j = 0;
        for (const cJSON *v = vals->child; v; v = v->next, j++) {
            char t[300];
            if (scalar_text(v, t, sizeof t) != 0) {
                perr(b, "%s.values[%d] must be a string", w, j);
                goto fail;
            }
            if (cmp) {
                char *end;
                strtoll(t, &end, 10);
                if (t[0] == '\0' || *end != '\0') {
                    perr(b, "%s.values[%d] '%s' must be an integer for operator %s", w, j, t, op);
                    goto fail;
                }
            } else if (!sx_k8s_label_value_ok(t)) {
                perr(b, "%s.values[%d] '%s' is not a valid label value", w, j, t);
                goto fail;
            }
            cJSON_AddItemToArray(vs, cJSON_CreateString(t));
        }
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* A node selector term {match_expressions, match_fields}. */
static cJSON *node_term(builder *b, const cJSON *t, const char *where)
{
    if (!cJSON_IsObject(t)) {
        perr(b, "%s must be an object {match_expressions, match_fields}", where);
        return NULL;
    }
    const char *const known[] = {"match_expressions", "match_fields", NULL};
    if (known_fields(b, t, where, known) != 0)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    const char *keys[2] = {"match_expressions", "match_fields"};
    const char *api[2] = {"matchExpressions", "matchFields"};
    for (int i = 0; i < 2; i++) {
        const cJSON *l = get(t, keys[i]);
        if (l == NULL)
            continue;
        char w[PATH_MAX_TEXT + 20];
        snprintf(w, sizeof w, "%s.%s", where, keys[i]);
        cJSON *x = match_expressions(b, l, w, 1);
        if (x == NULL) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, api[i], x);
    }
    if (o->child == NULL) {
        cJSON_Delete(o);
        perr(b, "%s needs match_expressions or match_fields", where);
        return NULL;
    }
    return o;
}

static int weight_of(builder *b, const cJSON *o, const char *where, int64_t *w)
{
    if (int_field(o, "weight", 1, 100, w) != 1)
        return perr(b, "%s.weight must be an integer 1..100", where);
    return 0;
}

static cJSON *node_affinity(builder *b, const cJSON *na)
{
    const char *where = "with.affinity.node_affinity";
    if (!cJSON_IsObject(na)) {
        perr(b, "%s must be an object {required, preferred}", where);
        return NULL;
    }
    const char *const known[] = {"required", "preferred", NULL};
    if (known_fields(b, na, where, known) != 0)
        return NULL;
    cJSON *out = cJSON_CreateObject();
    const cJSON *req = get(na, "required");
    if (req) {
        /* one term {match_expressions}, {node_selector_terms: [...]}, or a list of terms */
        const cJSON *terms = req;
        int single = 0;
        char w[PATH_MAX_TEXT];
        snprintf(w, sizeof w, "%s.required", where);
        if (cJSON_IsObject(req) && get(req, "node_selector_terms")) {
            const char *const k2[] = {"node_selector_terms", NULL};
            if (known_fields(b, req, w, k2) != 0)
                goto fail;
            terms = get(req, "node_selector_terms");
            snprintf(w, sizeof w, "%s.required.node_selector_terms", where);
            if (!cJSON_IsArray(terms)) {
                perr(b, "%s must be a list of terms", w);
                goto fail;
            }
        } else if (cJSON_IsObject(req)) {
            single = 1;
        } else if (!cJSON_IsArray(req) || cJSON_GetArraySize(req) == 0) {
            perr(b, "%s must be a term {match_expressions} or a non-empty list of terms", w);
            goto fail;
        }
        cJSON *r = cJSON_AddObjectToObject(out, "requiredDuringSchedulingIgnoredDuringExecution");
        cJSON *nst = cJSON_AddArrayToObject(r, "nodeSelectorTerms");
        if (single) {
            cJSON *t = node_term(b, req, w);
            if (t == NULL)
                goto fail;
            cJSON_AddItemToArray(nst, t);
        } else {
            int i = 0;
            for (const cJSON *x = terms->child; x; x = x->next, i++) {
                char tw[PATH_MAX_TEXT + 20];
                snprintf(tw, sizeof tw, "%s[%d]", w, i);
                cJSON *t = node_term(b, x, tw);
                if (t == NULL)
                    goto fail;
                cJSON_AddItemToArray(nst, t);
            }
            if (i == 0) {
                perr(b, "%s must not be empty", w);
                goto fail;
            }
        }
    }
    const cJSON *pref = get(na, "preferred");
    if (pref) {
        if (!cJSON_IsArray(pref)) {
            perr(b, "%s.preferred must be a list of {weight, preference}", where);
            goto fail;
        }
        cJSON *p = cJSON_AddArrayToObject(out, "preferredDuringSchedulingIgnoredDuringExecution");
        int i = 0;
        for (const cJSON *x = pref->child; x; x = x->next, i++) {
            char w[PATH_MAX_TEXT];
            snprintf(w, sizeof w, "%s.preferred[%d]", where, i);
            if (!cJSON_IsObject(x)) {
                perr(b, "%s must be an object {weight, preference}", w);
                goto fail;
            }
            int64_t weight = 0;
            if (weight_of(b, x, w, &weight) != 0)
                goto fail;
            cJSON *t;
            if (get(x, "preference")) {
                const char *const k2[] = {"weight", "preference", NULL};
                if (known_fields(b, x, w, k2) != 0)
                    goto fail;
                char pw[PATH_MAX_TEXT + 20];
                snprintf(pw, sizeof pw, "%s.preference", w);
                t = node_term(b, get(x, "preference"), pw);
            } else {
                /* shorthand: {weight, match_expressions, match_fields} */
                cJSON *copy = cJSON_Duplicate(x, 1);
                cJSON_DeleteItemFromObjectCaseSensitive(copy, "weight");
                t = node_term(b, copy, w);
                cJSON_Delete(copy);
            }
            if (t == NULL)
                goto fail;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "weight", (double)weight);
            cJSON_AddItemToObject(o, "preference", t);
            cJSON_AddItemToArray(p, o);
        }
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* A pod affinity term: {label_selector: {match_labels, match_expressions},
 * topology_key, namespaces}, or the shorthand with match_labels /
 * match_expressions at the top (topology_key defaults to
 * kubernetes.io/hostname). */
static cJSON *pod_term(builder *b, const cJSON *t, const char *where, int allow_weight)
{
    if (!cJSON_IsObject(t)) {
        perr(b, "%s must be an object {label_selector, topology_key}", where);
        return NULL;
    }
    const char *const known_w[] = {"label_selector", "topology_key", "namespaces",
                                   "match_labels", "match_expressions", "weight", NULL};
    const char *const *known = known_w;
    const char *const known_nw[] = {"label_selector", "topology_key", "namespaces",
                                    "match_labels", "match_expressions", NULL};
    if (!allow_weight)
        known = known_nw;
    if (known_fields(b, t, where, known) != 0)
        return NULL;
    const cJSON *ls = get(t, "label_selector");
    if (ls && (get(t, "match_labels") || get(t, "match_expressions"))) {
        perr(b, "%s: set label_selector or match_labels/match_expressions, not both", where);
        return NULL;
    }
    const cJSON *sel_src = ls ? ls : t;
    char sw[PATH_MAX_TEXT + 20];
    snprintf(sw, sizeof sw, "%s%s", where, ls ? ".label_selector" : "");
    if (ls) {
        if (!cJSON_IsObject(ls)) {
            perr(b, "%s must be an object {match_labels, match_expressions}", sw);
            return NULL;
        }
        const char *const k2[] = {"match_labels", "match_expressions", NULL};
        if (known_fields(b, ls, sw, k2) != 0)
            return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *sel = cJSON_AddObjectToObject(o, "labelSelector");
    const cJSON *ml = get(sel_src, "match_labels");
    if (ml) {
        if (!cJSON_IsObject(ml)) {
            perr(b, "%s.match_labels must be a map of labels", sw);
            goto fail;
        }
        cJSON *m = cJSON_AddObjectToObject(sel, "matchLabels");
        for (const cJSON *it = ml->child; it; it = it->next) {
            char v[300];
            if (!sx_k8s_qualified_name_ok(it->string) || scalar_text(it, v, sizeof v) != 0 ||
                !sx_k8s_label_value_ok(v)) {
                perr(b, "%s.match_labels.%s: not a valid label key and value", sw, it->string);
                goto fail;
            }
            cJSON_AddStringToObject(m, it->string, v);
        }
    }
    const cJSON *me = get(sel_src, "match_expressions");
    if (me) {
        char w[PATH_MAX_TEXT + 40];
        snprintf(w, sizeof w, "%s.match_expressions", sw);
        cJSON *x = match_expressions(b, me, w, 0);
        if (x == NULL)
            goto fail;
        cJSON_AddItemToObject(sel, "matchExpressions", x);
    }
    if (ml == NULL && me == NULL) {
        perr(b, "%s needs a label selector (match_labels or match_expressions)", sw);
        goto fail;
    }
    const cJSON *ns = get(t, "namespaces");
    if (ns) {
        if (!cJSON_IsArray(ns)) {
            perr(b, "%s.namespaces must be a list of namespace names", where);
            goto fail;
        }
        cJSON *a = cJSON_AddArrayToObject(o, "namespaces");
        for (const cJSON *n = ns->child; n; n = n->next) {
            if (!cJSON_IsString(n) || !sx_k8s_dns_label_ok(n->valuestring)) {
                perr(b, "%s.namespaces: '%s' is not a namespace name", where,
                     cJSON_IsString(n) ? n->valuestring : "?");
                goto fail;
            }
            cJSON_AddItemToArray(a, cJSON_CreateString(n->valuestring));
        }
    }
    const cJSON *tk = get(t, "topology_key");
    if (tk && (!cJSON_IsString(tk) || !sx_k8s_qualified_name_ok(tk->valuestring))) {
        perr(b, "%s.topology_key must be a label key (e.g. kubernetes.io/hostname)", where);
        goto fail;
    }
    if (tk == NULL)
        note(b, "%s: topology_key defaults to kubernetes.io/hostname", where);
    cJSON_AddStringToObject(o, "topologyKey", tk ? tk->valuestring : "kubernetes.io/hostname");
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static cJSON *pod_affinity(builder *b, const cJSON *pa, const char *name)
{
    char where[PATH_MAX_TEXT];
    snprintf(where, sizeof where, "with.affinity.%s", name);
    if (!cJSON_IsObject(pa)) {
        perr(b, "%s must be an object {required, preferred}", where);
        return NULL;
    }
    const char *const known[] = {"required", "preferred", NULL};
    if (known_fields(b, pa, where, known) != 0)
        return NULL;
    cJSON *out = cJSON_CreateObject();
    const cJSON *req = get(pa, "required");
    if (req) {
        if (!cJSON_IsArray(req) && !cJSON_IsObject(req)) {
            perr(b, "%s.required must be a list of terms {label_selector, topology_key}", where);
            goto fail;
        }
        cJSON *r = cJSON_AddArrayToObject(out, "requiredDuringSchedulingIgnoredDuringExecution");
        if (cJSON_IsObject(req)) {
            char w[PATH_MAX_TEXT + 20];
            snprintf(w, sizeof w, "%s.required", where);
            cJSON *t = pod_term(b, req, w, 0);
            if (t == NULL)
                goto fail;
            cJSON_AddItemToArray(r, t);
        } else {
            int i = 0;
            for (const cJSON *x = req->child; x; x = x->next, i++) {
                char w[PATH_MAX_TEXT + 20];
                snprintf(w, sizeof w, "%s.required[%d]", where, i);
                cJSON *t = pod_term(b, x, w, 0);
                if (t == NULL)
                    goto fail;
                cJSON_AddItemToArray(r, t);
            }
        }
    }
    const cJSON *pref = get(pa, "preferred");
    if (pref) {
        if (!cJSON_IsArray(pref)) {
            perr(b, "%s.preferred must be a list of {weight, pod_affinity_term}", where);
            goto fail;
        }
        cJSON *p = cJSON_AddArrayToObject(out, "preferredDuringSchedulingIgnoredDuringExecution");
        int i = 0;
        for (const cJSON *x = pref->child; x; x = x->next, i++) {
            char w[PATH_MAX_TEXT + 20];
            snprintf(w, sizeof w, "%s.preferred[%d]", where, i);
            if (!cJSON_IsObject(x)) {
                perr(b, "%s must be an object {weight, pod_affinity_term}", w);
                goto fail;
            }
            int64_t weight = 0;
            if (weight_of(b, x, w, &weight) != 0)
                goto fail;
            cJSON *t;
            if (get(x, "pod_affinity_term")) {
                const char *const k2[] = {"weight", "pod_affinity_term", NULL};
                if (known_fields(b, x, w, k2) != 0)
                    goto fail;
                char tw[PATH_MAX_TEXT + 40];
                snprintf(tw, sizeof tw, "%s.pod_affinity_term", w);
                t = pod_term(b, get(x, "pod_affinity_term"), tw, 0);
            } else {
                t = pod_term(b, x, w, 1); /* shorthand */
            }
            if (t == NULL)
                goto fail;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "weight", (double)weight);
            cJSON_AddItemToObject(o, "podAffinityTerm", t);
            cJSON_AddItemToArray(p, o);
        }
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

static int build_affinity(builder *b, cJSON *pod)
{
    const cJSON *a = get(b->with, "affinity");
    if (a == NULL)
        return 0;
    if (!cJSON_IsObject(a))
        return perr(b, "with.affinity must be an object {node_affinity, pod_affinity, "
                    "pod_anti_affinity}");
    const char *const known[] = {"node_affinity", "pod_affinity", "pod_anti_affinity", NULL};
    if (known_fields(b, a, "with.affinity", known) != 0)
        return -1;
    cJSON *out = cJSON_CreateObject();
    const cJSON *x;
    cJSON *y;
    if ((x = get(a, "node_affinity")) != NULL) {
        if ((y = node_affinity(b, x)) == NULL)
            goto fail;
        cJSON_AddItemToObject(out, "nodeAffinity", y);
    }
    if ((x = get(a, "pod_affinity")) != NULL) {
        if ((y = pod_affinity(b, x, "pod_affinity")) == NULL)
            goto fail;
        cJSON_AddItemToObject(out, "podAffinity", y);
    }
    if ((x = get(a, "pod_anti_affinity")) != NULL) {
        if ((y = pod_affinity(b, x, "pod_anti_affinity")) == NULL)
            goto fail;
        cJSON_AddItemToObject(out, "podAntiAffinity", y);
    }
    if (out->child)
        cJSON_AddItemToObject(pod, "affinity", out);
    else
        cJSON_Delete(out);
    return 0;
fail:
    cJSON_Delete(out);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Security contexts                                                    */
/* ------------------------------------------------------------------ */

static cJSON *pod_security(const sx_k8s_cfg *c)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddBoolToObject(s, "runAsNonRoot", c->run_as_non_root);
    if (c->run_as_user >= 0)
        cJSON_AddNumberToObject(s, "runAsUser", (double)c->run_as_user);
    if (c->run_as_group >= 0)
        cJSON_AddNumberToObject(s, "runAsGroup", (double)c->run_as_group);
    if (c->fs_group >= 0)
        cJSON_AddNumberToObject(s, "fsGroup", (double)c->fs_group);
    cJSON *sp = cJSON_AddObjectToObject(s, "seccompProfile");
    if (strncmp(c->seccomp_profile, "localhost/", 10) == 0) {
        cJSON_AddStringToObject(sp, "type", "Localhost");
        cJSON_AddStringToObject(sp, "localhostProfile", c->seccomp_profile + 10);
    } else {
        cJSON_AddStringToObject(sp, "type", c->seccomp_profile);
    }
    return s;
}

static cJSON *container_security(const sx_k8s_cfg *c)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddBoolToObject(s, "allowPrivilegeEscalation", c->allow_privilege_escalation);
    cJSON_AddBoolToObject(s, "readOnlyRootFilesystem", c->read_only_root_filesystem);
    cJSON_AddBoolToObject(s, "runAsNonRoot", c->run_as_non_root);
    if (c->run_as_user >= 0)
        cJSON_AddNumberToObject(s, "runAsUser", (double)c->run_as_user);
    if (c->drop_all_capabilities) {
        cJSON *caps = cJSON_AddObjectToObject(s, "capabilities");
        cJSON *d = cJSON_AddArrayToObject(caps, "drop");
        cJSON_AddItemToArray(d, cJSON_CreateString("ALL"));
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* The per-execution Secret                                             */
/* ------------------------------------------------------------------ */

static cJSON *base64_string(const char *data, size_t len)
{
    size_t n = 4 * ((len + 2) / 3) + 1;
    unsigned char *out = malloc(n);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock(out, (const unsigned char *)data, (int)len);
    cJSON *j = cJSON_CreateString((const char *)out);
    memset(out, 0, n);
    free(out);
    return j;
}

static int build_secret(builder *b, const cJSON *labels, int with_script, int with_stdin)
{
    sx_k8s_plan *p = b->plan;
    const sx_exec_spec *s = b->spec;
    cJSON *sec = cJSON_CreateObject();
    p->secret = sec;
    cJSON_AddStringToObject(sec, "apiVersion", "v1");
    cJSON_AddStringToObject(sec, "kind", "Secret");
    cJSON *md = cJSON_AddObjectToObject(sec, "metadata");
    cJSON_AddStringToObject(md, "name", p->secret_name);
    cJSON_AddStringToObject(md, "namespace", p->namespace_);
    cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, 1));
    cJSON *owners = cJSON_AddArrayToObject(md, "ownerReferences");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "batch/v1");
    cJSON_AddStringToObject(o, "kind", "Job");
    cJSON_AddStringToObject(o, "name", p->job_name);
    cJSON_AddStringToObject(o, "uid", ""); /* sx_k8s_plan_set_owner */
    cJSON_AddBoolToObject(o, "controller", 1);
    cJSON_AddItemToArray(owners, o);
    cJSON_AddStringToObject(sec, "type", "Opaque");
    cJSON_AddBoolToObject(sec, "immutable", 1);
    cJSON *data = cJSON_AddObjectToObject(sec, "data");
    if (with_script) {
        cJSON *v = base64_string(s->script ? s->script : "", s->script ? s->script_len : 0);
        if (v == NULL)
            return oom(b);
        cJSON_AddItemToObject(data, SX_K8S_SECRET_KEY_SCRIPT, v);
    }
    if (with_stdin) {
        cJSON *v = base64_string(s->stdin_data, s->stdin_len);
        if (v == NULL)
            return oom(b);
        cJSON_AddItemToObject(data, SX_K8S_SECRET_KEY_STDIN, v);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The plan                                                             */
/* ------------------------------------------------------------------ */

static const char *script_file_name(const char *interpreter)
{
    if (strcmp(interpreter, "python3") == 0)
        return "script.py";
    if (strcmp(interpreter, "ruby") == 0)
        return "script.rb";
    return "script.sh";
}

static void wipe_json_strings(cJSON *j)
{
    for (; j; j = j->next) {
        if (cJSON_IsString(j) && j->valuestring)
            memset(j->valuestring, 0, strlen(j->valuestring));
        wipe_json_strings(j->child);
    }
}

void sx_k8s_plan_free(sx_k8s_plan *plan)
{
    free(plan->namespace_);
    free(plan->job_name);
    free(plan->secret_name);
    cJSON_Delete(plan->job);
    if (plan->secret) {
        wipe_json_strings(plan->secret->child); /* the script and stdin */
        cJSON_Delete(plan->secret);
    }
    free(plan->image);
    free(plan->image_pull_policy);
    free(plan->image_pull_secret);
    free(plan->service_account);
    for (size_t i = 0; i < plan->n_secret_refs; i++) {
        free(plan->secret_refs[i].name);
        free(plan->secret_refs[i].key);
    }
    free(plan->secret_refs);
    for (size_t i = 0; i < plan->secret_values.n; i++)
        if (plan->secret_values.v[i])
            memset(plan->secret_values.v[i], 0, strlen(plan->secret_values.v[i]));
    sx_strlist_clear(&plan->secret_values);
    cJSON_Delete(plan->notes);
    memset(plan, 0, sizeof *plan);
}

int sx_k8s_plan_set_owner(sx_k8s_plan *plan, const char *job_uid, sx_error *err)
{
    if (plan->secret == NULL)
        return 0;
    cJSON *md = cJSON_GetObjectItemCaseSensitive(plan->secret, "metadata");
    cJSON *owners = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences");
    cJSON *o = cJSON_GetArrayItem(owners, 0);
    cJSON *uid = cJSON_CreateString(job_uid ? job_uid : "");
    if (o == NULL || uid == NULL) {
        cJSON_Delete(uid);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    cJSON_ReplaceItemInObjectCaseSensitive(o, "uid", uid);
    return 0;
}

static void mask_env(cJSON *env)
{
    cJSON *e;
    cJSON_ArrayForEach(e, env)
    {
        if (cJSON_GetObjectItemCaseSensitive(e, "value"))
            cJSON_ReplaceItemInObjectCaseSensitive(e, "value", cJSON_CreateString(MASK));
    }
}

cJSON *sx_k8s_plan_shown(const sx_k8s_plan *plan)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "namespace", plan->namespace_);
    cJSON_AddStringToObject(o, "job_name", plan->job_name);
    cJSON_AddStringToObject(o, "image", plan->image);
    cJSON_AddStringToObject(o, "image_pull_policy", plan->image_pull_policy);
    if (plan->image_pull_secret)
        cJSON_AddStringToObject(o, "image_pull_secret", plan->image_pull_secret);
    else
        cJSON_AddNullToObject(o, "image_pull_secret");
    cJSON_AddStringToObject(o, "service_account", plan->service_account);
    cJSON *job = cJSON_Duplicate(plan->job, 1);
    cJSON *tspec = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(job, "spec"), "template"),
        "spec");
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(tspec, "containers"))
        mask_env(cJSON_GetObjectItemCaseSensitive(c, "env"));
    cJSON_AddItemToObject(o, "job", job);
    if (plan->secret) {
        cJSON *sec = cJSON_Duplicate(plan->secret, 1);
        cJSON *data = cJSON_GetObjectItemCaseSensitive(sec, "data");
        cJSON *d;
        cJSON_ArrayForEach(d, data) cJSON_SetValuestring(d, MASK);
        cJSON_AddItemToObject(o, "secret", sec);
    } else {
        cJSON_AddNullToObject(o, "secret");
    }
    cJSON *order = cJSON_AddArrayToObject(o, "create");
    cJSON_AddItemToArray(order, cJSON_CreateString("POST .../jobs (the Job)"));
    if (plan->secret)
        cJSON_AddItemToArray(order, cJSON_CreateString(
            "POST .../secrets (the Secret, ownerReferences[0].uid = the created Job's uid)"));
    cJSON *refs = cJSON_AddArrayToObject(o, "secrets_read");
    for (size_t i = 0; i < plan->n_secret_refs; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", plan->secret_refs[i].name);
        if (plan->secret_refs[i].key)
            cJSON_AddStringToObject(r, "key", plan->secret_refs[i].key);
        else
            cJSON_AddNullToObject(r, "key");
        cJSON_AddItemToArray(refs, r);
    }
    cJSON_AddItemToObject(o, "notes", cJSON_Duplicate(plan->notes, 1));
    return o;
}

/* image, pull policy and secret, service account, job settings */
static int resolve_basics(builder *b)
{
    const sx_k8s_cfg *c = b->c;
    sx_k8s_plan *p = b->plan;
    const cJSON *with = b->with;
    const cJSON *v;
    if ((v = get(with, "image_ref")) != NULL)
        return sx_error_set(b->err, "unsupported_parameter",
                            "with.image_ref needs the image catalog plugin, which is not loaded "
                            "(name the image with with.image)");
    const char *image = c->image;
    if ((v = get(with, "image")) != NULL) {
        if (!cJSON_IsString(v) || !sx_k8s_image_ok(v->valuestring))
            return perr(b, "with.image: '%s' is not an image reference (non-empty, no spaces)",
                        cJSON_IsString(v) ? v->valuestring : "?");
        image = v->valuestring;
    }
    const char *policy = c->image_pull_policy;
    if ((v = get(with, "image_pull_policy")) != NULL) {
        if (!cJSON_IsString(v) || !sx_k8s_pull_policy_ok(v->valuestring))
            return perr(b, "with.image_pull_policy '%s' must be Always, IfNotPresent or Never",
                        cJSON_IsString(v) ? v->valuestring : "?");
        policy = v->valuestring;
    }
    const char *pull_secret = c->image_pull_secret;
    if ((v = get(with, "image_pull_secret")) != NULL) {
        if (!cJSON_IsString(v) || !sx_k8s_dns_subdomain_ok(v->valuestring))
            return perr(b, "with.image_pull_secret: '%s' is not a Secret name (DNS-1123 subdomain)",
                        cJSON_IsString(v) ? v->valuestring : "?");
        pull_secret = v->valuestring;
    }
    const char *sa = c->service_account;
    if ((v = get(with, "service_account")) != NULL) {
        if (!cJSON_IsString(v) || !sx_k8s_dns_subdomain_ok(v->valuestring))
            return perr(b, "with.service_account: '%s' is not a service account name",
                        cJSON_IsString(v) ? v->valuestring : "?");
        sa = v->valuestring;
        int ok = c->allowed_service_accounts.n == 0 || strcmp(sa, c->service_account) == 0;
        for (size_t i = 0; i < c->allowed_service_accounts.n && !ok; i++)
            ok = strcmp(sa, c->allowed_service_accounts.v[i]) == 0;
        if (!ok)
            return perr(b, "with.service_account: '%s' is not one of the executor's "
                        "allowed_service_accounts", sa);
    }
    p->backoff_limit = c->backoff_limit;
    int r = int_field(with, "backoff_limit", 0, 3, &p->backoff_limit);
    if (r < 0)
        return perr(b, "with.backoff_limit must be an integer 0..3");
    p->ttl_seconds_after_finished = c->ttl_seconds_after_finished;
    r = int_field(with, "ttl_seconds_after_finished", 0, 2147483647,
                  &p->ttl_seconds_after_finished);
    if (r < 0)
        return perr(b, "with.ttl_seconds_after_finished must be an integer 0..2147483647");
    if ((v = get(with, "priority_class_name")) != NULL &&
        (!cJSON_IsString(v) || !sx_k8s_dns_subdomain_ok(v->valuestring)))
        return perr(b, "with.priority_class_name: '%s' is not a PriorityClass name (DNS-1123 "
                    "subdomain)", cJSON_IsString(v) ? v->valuestring : "?");
    int64_t secs = (b->spec->timeout_ms + 999) / 1000;
    if (secs < 1)
        secs = 1;
    if (secs > c->active_deadline_seconds)
        return perr(b, "with.timeout (%llds) is above the executor's "
                    "job_defaults.active_deadline_seconds (%llds)", (long long)secs,
                    (long long)c->active_deadline_seconds);
    /* one second more than the timeout: the API keeps the Job's startTime
     * to the second, so the Job controller may count up to a second short;
     * the run's own deadline (the Job's creation + the timeout) comes first */
    p->active_deadline_seconds = secs + 1;
    p->image = strdup(image);
    p->image_pull_policy = strdup(policy);
    p->image_pull_secret = pull_secret ? strdup(pull_secret) : NULL;
    p->service_account = strdup(sa);
    if (!p->image || !p->image_pull_policy || (pull_secret && !p->image_pull_secret) ||
        !p->service_account)
        return oom(b);
    return 0;
}

int sx_k8s_plan_build(const sx_k8s_instance *inst, const sx_exec_spec *spec, sx_k8s_plan *plan,
                      sx_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sx_k8s_cfg *c = &inst->cfg;
    cJSON *with = cJSON_Parse(spec->params_json ? spec->params_json : "{}");
    builder bb = {inst, c, spec, with, plan, err, NULL, NULL, NULL};
    builder *b = &bb;
    cJSON *job_labels = NULL, *pod_labels = NULL, *ann = NULL, *container = NULL, *pod = NULL;
    int rc = -1;
    plan->notes = cJSON_CreateArray();
    b->volumes = cJSON_CreateArray();
    b->mounts = cJSON_CreateArray();
    if (!cJSON_IsObject(with)) {
        perr(b, "'with' must be a JSON object");
        goto out;
    }
    if (c->command_whitelist.n > 0 && spec->script &&
        !sx_whitelist_match(&c->command_whitelist, spec->script, spec->script_len)) {
        sx_error_set(err, "command_not_allowed",
                     "executor '%s' only runs the %zu commands of its command_whitelist, and "
                     "this script is not one of them", inst->name, c->command_whitelist.n);
        goto out;
    }
    if (resolve_basics(b) != 0)
        goto out;

    /* where the script comes from */
    const char *script_path = str_of(with, "script_path");
    const char *script_key = NULL;
    if (script_path) {
        if (c->scripts_configmap == NULL) {
            sx_error_set(err, "unsupported_parameter",
                         "with.script_path: executor '%s' has no scripts_configmap (the ConfigMap "
                         "of pre-registered scripts mounted at " SX_K8S_SCRIPTS_DIR ")",
                         inst->name);
            goto out;
        }
        const char *why;
        script_key = sx_k8s_script_key(script_path, &why);
        if (script_key == NULL) {
            perr(b, "with.script_path '%s' %s (ConfigMap %s)", script_path, why,
                 c->scripts_configmap);
            goto out;
        }
    }
    /* script_path: script_run read the text through load_script (the
     * ConfigMap's key), hashed and checked it; that text runs, from the
     * Secret like an inline script */
    if (spec->script == NULL) {
        perr(b, "with.script_path '%s': the script was not read (load_script)",
             script_path ? script_path : "");
        goto out;
    }
    int with_stdin = spec->stdin_data != NULL && spec->stdin_len > 0;
    size_t secret_bytes = spec->script_len + (with_stdin ? spec->stdin_len : 0);
    if (secret_bytes > SX_K8S_SECRET_MAX - 1024) {
        perr(b, "%s: the script and stdin are %zu bytes together; they travel in a "
             "Kubernetes Secret, which holds at most 1 MiB",
             with_stdin ? "with.stdin" : script_path ? "with.script_path" : "with.inline_script",
             secret_bytes);
        goto out;
    }
    const char *wd = spec->working_dir ? spec->working_dir : c->default_work_dir;
    if (!sx_k8s_abs_path_ok(wd)) {
        perr(b, "with.working_dir '%s' must be an absolute path (no '..', no ':')", wd);
        goto out;
    }

    char name[64];
    sx_k8s_job_name(spec->execution_id, spec->step_name, name);
    plan->job_name = strdup(name);
    plan->namespace_ = strdup(inst->namespace_ ? inst->namespace_ : "default");
    plan->secret_name = strdup(name);
    if (!plan->job_name || !plan->namespace_ || !plan->secret_name) {
        oom(b);
        goto out;
    }

    /* labels and annotations */
    job_labels = own_labels(b, 0);
    pod_labels = own_labels(b, 1);
    if (user_labels(b, job_labels) != 0 || user_labels(b, pod_labels) != 0)
        goto out;
    ann = user_annotations(b);
    if (ann == NULL)
        goto out;

    /* the container */
    container = cJSON_CreateObject();
    cJSON_AddStringToObject(container, "name", SX_K8S_CONTAINER);
    cJSON_AddStringToObject(container, "image", plan->image);
    cJSON_AddStringToObject(container, "imagePullPolicy", plan->image_pull_policy);
    const char *file_name = script_file_name(spec->interpreter);
    char script_file[300];
    snprintf(script_file, sizeof script_file, "%s/%s", SX_K8S_RUN_DIR, file_name);
    cJSON *cmd = cJSON_AddArrayToObject(container, "command");
    if (with_stdin) {
        /* stdin from the Secret's file; "$0" "$@" carry the interpreter,
         * the script and the arguments unquoted-safe */
        cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
        cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
        cJSON_AddItemToArray(cmd, cJSON_CreateString(
            "exec \"$0\" \"$@\" < " SX_K8S_RUN_DIR "/" SX_K8S_SECRET_KEY_STDIN));
    }
    cJSON_AddItemToArray(cmd, cJSON_CreateString(spec->interpreter));
    cJSON_AddItemToArray(cmd, cJSON_CreateString(script_file));
    if (spec->n_args > 0) {
        cJSON *args = cJSON_AddArrayToObject(container, "args");
        for (size_t i = 0; i < spec->n_args; i++) {
            cJSON *a = escaped_string(spec->args[i]);
            if (a == NULL) {
                oom(b);
                goto out;
            }
            cJSON_AddItemToArray(args, a);
        }
    }
    cJSON_AddStringToObject(container, "workingDir", wd);
    if (build_env(b, container) != 0 || build_resources(b, container) != 0)
        goto out;
    if (builtin_volumes(b, file_name, with_stdin, script_key) != 0 ||
        user_volumes(b, 1) != 0 || user_volumes(b, 0) != 0)
        goto out;
    cJSON_AddItemToObject(container, "volumeMounts", b->mounts);
    b->mounts = NULL;
    cJSON_AddItemToObject(container, "securityContext", container_security(c));

    /* the pod */
    pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "restartPolicy", "Never");
    /* the pause container is PID 1, not the script: a script that signals
     * itself (kill -9 $$) dies of it, and the pod's SIGTERM reaches it
     * (PID 1 ignores signals it has no handler for) */
    cJSON_AddBoolToObject(pod, "shareProcessNamespace", 1);
    cJSON_AddStringToObject(pod, "serviceAccountName", plan->service_account);
    if (plan->image_pull_secret) {
        cJSON *ips = cJSON_AddArrayToObject(pod, "imagePullSecrets");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", plan->image_pull_secret);
        cJSON_AddItemToArray(ips, o);
    }
    cJSON_AddItemToObject(pod, "securityContext", pod_security(c));
    if (build_node_selector(b, pod) != 0 || build_tolerations(b, pod) != 0 ||
        build_affinity(b, pod) != 0)
        goto out;
    const char *pcn = str_of(with, "priority_class_name");
    if (pcn)
        cJSON_AddStringToObject(pod, "priorityClassName", pcn);
    cJSON *containers = cJSON_AddArrayToObject(pod, "containers");
    cJSON_AddItemToArray(containers, container);
    container = NULL;
    cJSON_AddItemToObject(pod, "volumes", b->volumes);
    b->volumes = NULL;

    /* the Job */
    cJSON *job = cJSON_CreateObject();
    plan->job = job;
    cJSON_AddStringToObject(job, "apiVersion", "batch/v1");
    cJSON_AddStringToObject(job, "kind", "Job");
    cJSON *md = cJSON_AddObjectToObject(job, "metadata");
    cJSON_AddStringToObject(md, "name", plan->job_name);
    cJSON_AddStringToObject(md, "namespace", plan->namespace_);
    cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(job_labels, 1));
    cJSON *ja = cJSON_AddObjectToObject(md, "annotations");
    if (spec->script_hash)
        cJSON_AddStringToObject(ja, SX_K8S_ANN_SCRIPT_HASH, spec->script_hash);
    cJSON_AddStringToObject(ja, SX_K8S_ANN_EXECUTION_ID, spec->execution_id);
    if (spec->runbook_id)
        cJSON_AddStringToObject(ja, SX_K8S_ANN_RUNBOOK_ID, spec->runbook_id);
    if (spec->user)
        cJSON_AddStringToObject(ja, SX_K8S_ANN_USER, spec->user);
    cJSON_AddStringToObject(ja, SX_K8S_ANN_IMAGE, plan->image);
    cJSON_AddStringToObject(ja, SX_K8S_ANN_CREATED_BY, "script-executor");
    cJSON_AddStringToObject(ja, SX_K8S_ANN_STEP_NAME, spec->step_name);
    cJSON *a;
    cJSON_ArrayForEach(a, ann) cJSON_AddStringToObject(ja, a->string, a->valuestring);
    cJSON *js = cJSON_AddObjectToObject(job, "spec");
    cJSON_AddNumberToObject(js, "backoffLimit", (double)plan->backoff_limit);
    cJSON_AddNumberToObject(js, "ttlSecondsAfterFinished",
                            (double)plan->ttl_seconds_after_finished);
    cJSON_AddNumberToObject(js, "activeDeadlineSeconds", (double)plan->active_deadline_seconds);
    cJSON *tpl = cJSON_AddObjectToObject(js, "template");
    cJSON *tmd = cJSON_AddObjectToObject(tpl, "metadata");
    cJSON_AddItemToObject(tmd, "labels", pod_labels);
    pod_labels = NULL;
    if (ann->child) {
        cJSON_AddItemToObject(tmd, "annotations", ann);
        ann = NULL;
    }
    cJSON_AddItemToObject(tpl, "spec", pod);
    pod = NULL;

    if (script_key) {
        cJSON_AddStringToObject(ja, SX_K8S_ANN_SCRIPT_PATH, script_path);
        char note[600];
        snprintf(note, sizeof note, "with.script_path %s: the text read from key %s of ConfigMap "
                 "%s (script-hash) runs from the Secret; the ConfigMap is mounted at "
                 SX_K8S_SCRIPTS_DIR " for the files it sources", script_path, script_key,
                 c->scripts_configmap);
        cJSON_AddItemToArray(plan->notes, cJSON_CreateString(note));
    }
    if (build_secret(b, job_labels, 1, with_stdin) != 0)
        goto out;
    rc = 0;
out:
    cJSON_Delete(job_labels);
    cJSON_Delete(pod_labels);
    cJSON_Delete(ann);
    cJSON_Delete(container);
    cJSON_Delete(pod);
    cJSON_Delete(b->volumes);
    cJSON_Delete(b->mounts);
    free(b->ephemeral_limit);
    cJSON_Delete(with);
    if (rc != 0)
        sx_k8s_plan_free(plan);
    return rc;
}
