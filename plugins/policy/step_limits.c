/* step_limits.c - caps on timeout, resources, retries and Job TTL (see step_limits.h). */
#define _POSIX_C_SOURCE 200809L
#include "step_limits.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

const char *const sx_res_names[SX_RES_N] = {"cpu", "memory", "ephemeral_storage"};
const char *const sx_res_kind_names[SX_RES_KINDS] = {"requests", "limits"};

#define SX_MAX_BACKOFF_LIMIT 3          /* the spec's hard maximum */

typedef struct limits_section {
    const sx_config_node *max_resources;
    const sx_config_node *default_resources;
    int64_t max_backoff_limit;
    int64_t max_ttl;
} limits_section;

static const sx_option limits_options[] = {
    {SX_OPT_NODE, "max_resources", NULL, 0, offsetof(limits_section, max_resources),
     "hard caps {requests, limits: {cpu, memory, ephemeral_storage}}; absent = the spec's "
     "(limits 4000m, 8Gi, 20Gi)"},
    {SX_OPT_NODE, "default_resources", NULL, 0, offsetof(limits_section, default_resources),
     "filled in where a step sets none, for every backend that takes resources (use keys "
     "they all accept); absent = none (each backend's own defaults apply)"},
    {SX_OPT_INT, "max_backoff_limit", "3", 0, offsetof(limits_section, max_backoff_limit),
     "largest with.backoff_limit (at most 3)"},
    {SX_OPT_INT, "max_ttl_seconds_after_finished", "86400", 0, offsetof(limits_section, max_ttl),
     "largest with.ttl_seconds_after_finished"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct res_section {
    const sx_config_node *kinds[SX_RES_KINDS];
} res_section;

static const sx_option res_options[] = {
    {SX_OPT_NODE, "requests", NULL, 0, offsetof(res_section, kinds[SX_RES_REQUESTS]),
     "{cpu, memory, ephemeral_storage}"},
    {SX_OPT_NODE, "limits", NULL, 0, offsetof(res_section, kinds[SX_RES_LIMITS]),
     "{cpu, memory, ephemeral_storage}"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct quant_section {
    char *v[SX_RES_N];
} quant_section;

static const sx_option quant_options[] = {
    {SX_OPT_STRING, "cpu", NULL, 0, offsetof(quant_section, v[SX_RES_CPU]), "\"500m\", \"2\""},
    {SX_OPT_STRING, "memory", NULL, 0, offsetof(quant_section, v[SX_RES_MEMORY]), "\"256Mi\""},
    {SX_OPT_STRING, "ephemeral_storage", NULL, 0, offsetof(quant_section, v[SX_RES_EPHEMERAL]),
     "\"1Gi\""},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static int parse_quantity(int res, const char *text, int64_t *value)
{
    return res == SX_RES_CPU ? sx_quantity_cpu_millis(text, value)
                             : sx_quantity_bytes(text, value);
}

static int set_quantity(sx_quantity *q, int res, const char *text)
{
    if (strlen(text) >= sizeof q->text || parse_quantity(res, text, &q->value) != 0)
        return -1;
    snprintf(q->text, sizeof q->text, "%s", text);
    q->set = 1;
    return 0;
}

static int configure_resources(sx_resources *r, const sx_host_api *host, sx_plugin_ctx *ctx,
                               const sx_config_node *node, sx_error *err)
{
    memset(r, 0, sizeof *r);
    res_section rs;
    if (host->config_apply(ctx, node, res_options, &rs, err) != 0)
        return -1;
    for (int k = 0; k < SX_RES_KINDS; k++) {
        quant_section qs;
        int rv = host->config_apply(ctx, rs.kinds[k], quant_options, &qs, err);
        for (int i = 0; rv == 0 && i < SX_RES_N; i++)
            if (qs.v[i] && set_quantity(&r->q[k][i], i, qs.v[i]) != 0)
                rv = sx_error_set(err, "invalid_config",
                                  "%s.%s.%s (line %d): '%s' is not a %s quantity (e.g. %s)",
                                  host->config_path(node), sx_res_kind_names[k], sx_res_names[i],
                                  host->config_line(rs.kinds[k]), qs.v[i],
                                  i == SX_RES_CPU ? "CPU" : "size",
                                  i == SX_RES_CPU ? "\"500m\", \"2\"" : "\"256Mi\", \"1G\"");
        host->config_free(quant_options, &qs);
        if (rv != 0)
            return -1;
    }
    return 0;
}

/* The cap for requests.X: max.requests.X, else max.limits.X. */
static const sx_quantity *cap_for(const sx_limits *l, int kind, int res)
{
    const sx_quantity *q = &l->max.q[kind][res];
    if (kind == SX_RES_REQUESTS && !q->set)
        q = &l->max.q[SX_RES_LIMITS][res];
    return q->set ? q : NULL;
}

int sx_limits_configure(sx_limits *l, int64_t max_timeout_ms, const sx_host_api *host,
                        sx_plugin_ctx *ctx, const sx_config_node *section, sx_error *err)
{
    memset(l, 0, sizeof *l);
    l->max_timeout_ms = max_timeout_ms;
    limits_section s;
    if (host->config_apply(ctx, section, limits_options, &s, err) != 0)
        return -1;
    if (s.max_backoff_limit < 0 || s.max_backoff_limit > SX_MAX_BACKOFF_LIMIT)
        return sx_error_set(err, "invalid_config", "limits.max_backoff_limit must be 0..%d",
                            SX_MAX_BACKOFF_LIMIT);
    if (s.max_ttl < 0)
        return sx_error_set(err, "invalid_config", "limits.max_ttl_seconds_after_finished must be "
                                                   ">= 0");
    l->max_backoff_limit = s.max_backoff_limit;
    l->max_ttl_seconds = s.max_ttl;
    if (s.max_resources) {
        if (configure_resources(&l->max, host, ctx, s.max_resources, err) != 0)
            return -1;
    } else {
        set_quantity(&l->max.q[SX_RES_LIMITS][SX_RES_CPU], SX_RES_CPU, "4000m");
        set_quantity(&l->max.q[SX_RES_LIMITS][SX_RES_MEMORY], SX_RES_MEMORY, "8Gi");
        set_quantity(&l->max.q[SX_RES_LIMITS][SX_RES_EPHEMERAL], SX_RES_EPHEMERAL, "20Gi");
    }
    /* No built-in defaults: each backend has its own (kubernetes.
     * default_resources, a Docker executor's memory_limit and cpu_quota),
     * and a global default could contradict them. */
    if (s.default_resources &&
        configure_resources(&l->defaults, host, ctx, s.default_resources, err) != 0)
        return -1;
    for (int k = 0; k < SX_RES_KINDS; k++)
        for (int i = 0; i < SX_RES_N; i++) {
            const sx_quantity *d = &l->defaults.q[k][i];
            const sx_quantity *cap = cap_for(l, k, i);
            if (d->set && cap && d->value > cap->value)
                return sx_error_set(err, "invalid_config",
                                    "limits.default_resources.%s.%s (%s) is above its cap in "
                                    "limits.max_resources (%s)", sx_res_kind_names[k],
                                    sx_res_names[i], d->text, cap->text);
        }
    for (int i = 0; i < SX_RES_N; i++) {
        const sx_quantity *rq = &l->defaults.q[SX_RES_REQUESTS][i];
        const sx_quantity *lm = &l->defaults.q[SX_RES_LIMITS][i];
        if (rq->set && lm->set && rq->value > lm->value)
            return sx_error_set(err, "invalid_config",
                                "limits.default_resources.requests.%s (%s) is above "
                                "limits.default_resources.limits.%s (%s)", sx_res_names[i],
                                rq->text, sx_res_names[i], lm->text);
    }
    return 0;
}

static int res_index(const char *name)
{
    for (int i = 0; i < SX_RES_N; i++)
        if (strcmp(sx_res_names[i], name) == 0)
            return i;
    return -1;
}

/* The step's resources: given[k][i] = 1 and value when set.  Also checks
 * the shape.  0 or -1 with err. */
static int read_step_resources(const cJSON *res, int given[SX_RES_KINDS][SX_RES_N],
                               sx_quantity vals[SX_RES_KINDS][SX_RES_N], sx_error *err)
{
    if (!cJSON_IsObject(res))
        return sx_error_set(err, "invalid_parameter", "with.resources must be an object "
                                                      "{requests, limits}");
    for (const cJSON *k = res->child; k; k = k->next) {
        int kind = strcmp(k->string, "requests") == 0 ? SX_RES_REQUESTS
                   : strcmp(k->string, "limits") == 0 ? SX_RES_LIMITS : -1;
        if (kind < 0)
            return sx_error_set(err, "invalid_parameter", "with.resources.%s is not known; use "
                                "requests and limits", k->string);
        if (cJSON_IsNull(k))
            continue;
        if (!cJSON_IsObject(k))
            return sx_error_set(err, "invalid_parameter", "with.resources.%s must be an object "
                                "{cpu, memory, ephemeral_storage}", k->string);
        for (const cJSON *q = k->child; q; q = q->next) {
            int i = res_index(q->string);
            if (i < 0)
                return sx_error_set(err, "invalid_parameter", "with.resources.%s.%s is not "
                                    "known; use cpu, memory and ephemeral_storage", k->string,
                                    q->string);
            if (cJSON_IsNull(q))
                continue;
            char text[40];
            if (cJSON_IsString(q))
                snprintf(text, sizeof text, "%s", q->valuestring);
            else if (cJSON_IsNumber(q) && isfinite(q->valuedouble))
                snprintf(text, sizeof text, "%.15g", q->valuedouble);
            else
                text[0] = '\0';
            if ((cJSON_IsString(q) && strlen(q->valuestring) >= sizeof vals[0][0].text) ||
                set_quantity(&vals[kind][i], i, text) != 0)
                return sx_error_set(err, "invalid_parameter",
                                    "with.resources.%s.%s is not a %s quantity (e.g. %s)",
                                    k->string, q->string, i == SX_RES_CPU ? "CPU" : "size",
                                    i == SX_RES_CPU ? "\"500m\", \"2\"" : "\"256Mi\", \"1G\"");
            given[kind][i] = 1;
        }
    }
    return 0;
}

static cJSON *child_object(cJSON *parent, const char *name)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);
    if (cJSON_IsObject(o))
        return o;
    if (o != NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
    return cJSON_AddObjectToObject(parent, name);
}

static int apply_resources(const sx_limits *l, cJSON *with, int takes_resources, int *changed,
                           sx_error *err)
{
    cJSON *res = cJSON_GetObjectItemCaseSensitive(with, "resources");
    if (cJSON_IsNull(res))
        res = NULL;
    int given[SX_RES_KINDS][SX_RES_N] = {{0}};
    sx_quantity vals[SX_RES_KINDS][SX_RES_N];
    memset(vals, 0, sizeof vals);
    if (res && read_step_resources(res, given, vals, err) != 0)
        return -1;
    for (int k = 0; k < SX_RES_KINDS; k++)
        for (int i = 0; i < SX_RES_N; i++) {
            const sx_quantity *cap = cap_for(l, k, i);
            if (given[k][i] && cap && vals[k][i].value > cap->value)
                return sx_error_set(err, "invalid_parameter",
                                    "with.resources.%s.%s %s exceeds the cap of %s "
                                    "(limits.max_resources)", sx_res_kind_names[k],
                                    sx_res_names[i], vals[k][i].text, cap->text);
        }
    for (int i = 0; i < SX_RES_N; i++)
        if (given[SX_RES_REQUESTS][i] && given[SX_RES_LIMITS][i] &&
            vals[SX_RES_REQUESTS][i].value > vals[SX_RES_LIMITS][i].value)
            return sx_error_set(err, "invalid_parameter",
                                "with.resources.requests.%s %s is above with.resources.limits.%s %s",
                                sx_res_names[i], vals[SX_RES_REQUESTS][i].text, sx_res_names[i],
                                vals[SX_RES_LIMITS][i].text);
    if (!takes_resources)
        return 0;
    /* defaults below: limits first, never under the step's request; then
     * requests, never over the (step's or default) limit */
    sx_quantity add[SX_RES_KINDS][SX_RES_N];
    memset(add, 0, sizeof add);
    int any = 0;
    for (int i = 0; i < SX_RES_N; i++) {
        const sx_quantity *dl = &l->defaults.q[SX_RES_LIMITS][i];
        if (!given[SX_RES_LIMITS][i] && dl->set) {
            add[SX_RES_LIMITS][i] = *dl;
            if (given[SX_RES_REQUESTS][i] && vals[SX_RES_REQUESTS][i].value > dl->value)
                add[SX_RES_LIMITS][i] = vals[SX_RES_REQUESTS][i];
            vals[SX_RES_LIMITS][i] = add[SX_RES_LIMITS][i];
            any = 1;
        }
        const sx_quantity *dr = &l->defaults.q[SX_RES_REQUESTS][i];
        if (!given[SX_RES_REQUESTS][i] && dr->set) {
            add[SX_RES_REQUESTS][i] = *dr;
            const sx_quantity *lim = &vals[SX_RES_LIMITS][i];
            if (lim->set && lim->value < dr->value)
                add[SX_RES_REQUESTS][i] = *lim;
            any = 1;
        }
    }
    if (!any)
        return 0;
    if (res == NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(with, "resources"); /* a null */
        res = cJSON_AddObjectToObject(with, "resources");
    }
    for (int k = 0; k < SX_RES_KINDS; k++) {
        cJSON *kobj = NULL;
        for (int i = 0; i < SX_RES_N; i++) {
            if (!add[k][i].set)
                continue;
            if (kobj == NULL)
                kobj = child_object(res, sx_res_kind_names[k]);
            cJSON_DeleteItemFromObjectCaseSensitive(kobj, sx_res_names[i]); /* a null */
            cJSON_AddStringToObject(kobj, sx_res_names[i], add[k][i].text);
        }
    }
    *changed = 1;
    return 0;
}

/* An integer parameter within 0..max, when present. */
static int check_int(const cJSON *with, const char *name, int64_t max, const char *cap_name,
                     sx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(with, name);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return sx_error_set(err, "invalid_parameter", "with.%s must be an integer", name);
    if (v->valuedouble < 0 || v->valuedouble > (double)max)
        return sx_error_set(err, "invalid_parameter", "with.%s %.0f is outside 0..%lld (%s)", name,
                            v->valuedouble, (long long)max, cap_name);
    return 0;
}

static void format_duration(int64_t ms, char *buf, size_t size)
{
    if (ms % 60000 == 0)
        snprintf(buf, size, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, size, "%lldms", (long long)ms);
}

int sx_limits_apply(const sx_limits *l, cJSON *with, int takes_resources, int *changed,
                    sx_error *err)
{
    *changed = 0;
    const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(with, "timeout");
    if (timeout && !cJSON_IsNull(timeout)) {
        int64_t ms = 0;
        if (!cJSON_IsString(timeout) || sx_duration_parse(timeout->valuestring, &ms) != 0 || ms <= 0)
            return sx_error_set(err, "invalid_parameter",
                                "with.timeout must be a duration (e.g. \"30s\", \"10m\", \"1h\")");
        if (ms > l->max_timeout_ms) {
            char cap[32];
            format_duration(l->max_timeout_ms, cap, sizeof cap);
            return sx_error_set(err, "invalid_parameter",
                                "with.timeout '%s' exceeds security.max_timeout (%s)",
                                timeout->valuestring, cap);
        }
    }
    if (check_int(with, "backoff_limit", l->max_backoff_limit, "limits.max_backoff_limit", err) != 0 ||
        check_int(with, "ttl_seconds_after_finished", l->max_ttl_seconds,
                  "limits.max_ttl_seconds_after_finished", err) != 0)
        return -1;
    return apply_resources(l, with, takes_resources, changed, err);
}

static cJSON *resources_json(const sx_resources *r)
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < SX_RES_KINDS; k++) {
        cJSON *kobj = cJSON_AddObjectToObject(o, sx_res_kind_names[k]);
        for (int i = 0; i < SX_RES_N; i++)
            if (r->q[k][i].set)
                cJSON_AddStringToObject(kobj, sx_res_names[i], r->q[k][i].text);
    }
    return o;
}

cJSON *sx_limits_describe(const sx_limits *l)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max_timeout_seconds", (double)l->max_timeout_ms / 1000.0);
    cJSON_AddItemToObject(o, "max_resources", resources_json(&l->max));
    cJSON_AddItemToObject(o, "default_resources", resources_json(&l->defaults));
    cJSON_AddNumberToObject(o, "max_backoff_limit", (double)l->max_backoff_limit);
    cJSON_AddNumberToObject(o, "max_ttl_seconds_after_finished", (double)l->max_ttl_seconds);
    return o;
}
