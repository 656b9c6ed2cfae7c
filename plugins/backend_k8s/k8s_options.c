/*
 * k8s_options.c - the executor options of exec.kubernetes: the option
 * tables, their layering over the config's sections, the checks a table
 * cannot express, and the list of options that loosen the strict defaults.
 *
 * Precedence, lowest first (a key set in a later layer wins; lists and maps
 * are replaced, not merged; nested maps - job_defaults, default_resources,
 * max_resources - are layered key by key):
 *   1. the built-in defaults of the tables below;
 *   2. script_executor.image: default_image, default_image_pull_secret,
 *      default_image_pull_policy (as image, image_pull_secret,
 *      image_pull_policy);
 *   3. script_executor.security: run_as_non_root, run_as_user, fs_group,
 *      read_only_root_filesystem, allow_privilege_escalation,
 *      drop_all_capabilities;
 *   4. script_executor.kubernetes: any executor option (the spec puts
 *      namespace, service_account, job_defaults, default_resources and
 *      max_resources there), for every kubernetes executor;
 *   5. the executor's own entry in script_executor.executors.
 * Layers 2 and 3 are shared with other plugins (script_run reads security,
 * the image catalog reads image): only the keys named above are read here.
 */
#define _POSIX_C_SOURCE 200809L
#include "k8s.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s_validate.h"
#include "sx/sx_util.h"

#define OPT(type, name, def, field, desc) \
    {type, name, def, 0, offsetof(sx_k8s_cfg, field), desc}

static const sx_option k8s_options[] = {
    OPT(SX_OPT_STRING, "kubeconfig", NULL, kubeconfig,
        "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config); not with in_cluster"),
    OPT(SX_OPT_STRING, "context", NULL, context, "kubeconfig context (default: current-context)"),
    OPT(SX_OPT_BOOL, "in_cluster", "false", in_cluster,
        "use the pod's service account (token, CA, KUBERNETES_SERVICE_HOST/PORT)"),
    OPT(SX_OPT_STRING, "in_cluster_dir", NULL, in_cluster_dir,
        "in_cluster: the directory with the service account's token, ca.crt and namespace "
        "(default /var/run/secrets/kubernetes.io/serviceaccount)"),
    OPT(SX_OPT_DURATION, "api_timeout", "30s", api_timeout_ms,
        "longest API call (watches and log streams excepted)"),
    OPT(SX_OPT_STRING, "namespace", NULL, namespace_,
        "namespace of every Job (default: the kubeconfig's or the pod's namespace, else default)"),
    OPT(SX_OPT_STRING, "service_account", "script-executor-runner", service_account,
        "service account of the script pods, for steps that name none"),
    OPT(SX_OPT_STRLIST, "allowed_service_accounts", NULL, allowed_service_accounts,
        "when non-empty, with.service_account must be one of these (or service_account)"),
    OPT(SX_OPT_STRING, "image", NULL, image,
        "image of steps that name none (default: image.default_image; one of them is required)"),
    OPT(SX_OPT_STRING, "image_pull_policy", "IfNotPresent", image_pull_policy,
        "Always | IfNotPresent | Never, for steps that set none"),
    OPT(SX_OPT_STRING, "image_pull_secret", NULL, image_pull_secret,
        "imagePullSecret (a Secret in the namespace) for steps that set none"),
    OPT(SX_OPT_NODE, "job_defaults", NULL, job_defaults_node_,
        "ttl_seconds_after_finished (300), backoff_limit (0, max 3), active_deadline_seconds "
        "(1800: the longest timeout)"),
    OPT(SX_OPT_NODE, "default_resources", NULL, default_resources_node_,
        "requests/limits (cpu, memory, ephemeral_storage) of steps that set none"),
    OPT(SX_OPT_NODE, "max_resources", NULL, max_resources_node_,
        "requests/limits above these are refused"),
    OPT(SX_OPT_INT, "run_as_user", "65534", run_as_user, "uid of the script (-1: the image's)"),
    OPT(SX_OPT_INT, "run_as_group", "65534", run_as_group, "gid of the script (-1: the image's)"),
    OPT(SX_OPT_INT, "fs_group", "65534", fs_group, "pod fsGroup (-1: none)"),
    OPT(SX_OPT_BOOL, "run_as_non_root", "true", run_as_non_root,
        "the kubelet refuses to start a container as uid 0"),
    OPT(SX_OPT_BOOL, "read_only_root_filesystem", "true", read_only_root_filesystem,
        "read-only root filesystem (the workspace and /tmp are emptyDirs)"),
    OPT(SX_OPT_BOOL, "allow_privilege_escalation", "false", allow_privilege_escalation,
        "setuid binaries may gain privileges"),
    OPT(SX_OPT_BOOL, "drop_all_capabilities", "true", drop_all_capabilities,
        "drop every Linux capability"),
    OPT(SX_OPT_STRING, "seccomp_profile", "RuntimeDefault", seccomp_profile,
        "RuntimeDefault | Unconfined | localhost/<profile>"),
    OPT(SX_OPT_STRING, "default_work_dir", "/workspace", default_work_dir,
        "working directory of steps that set none; the workspace emptyDir is mounted here"),
    OPT(SX_OPT_STRMAP, "default_env", NULL, default_env,
        "environment of every script (the step's env wins)"),
    OPT(SX_OPT_STRLIST, "command_whitelist", NULL, command_whitelist,
        "when non-empty, only scripts equal (trimmed) to an entry may run"),
    OPT(SX_OPT_STRING, "scripts_configmap", NULL, scripts_configmap,
        "ConfigMap of pre-registered scripts, mounted at /scripts for with.script_path"),
    OPT(SX_OPT_STRING, "tmp_size_limit", "100Mi", tmp_size_limit, "size limit of /tmp (emptyDir)"),
    OPT(SX_OPT_DURATION, "unschedulable_grace", "30s", unschedulable_grace_ms,
        "a pod unschedulable this long fails the step (code unschedulable)"),
    OPT(SX_OPT_STRING, "host_id", NULL, host_id,
        "this host in the labels of its Jobs, for reconciliation (default: the hostname, which "
        "is the pod name in a cluster)"),
    OPT(SX_OPT_STRING, "log_streams", "auto", log_streams,
        "auto | separate | merged: stdout and stderr apart (log `stream` parameter) or merged"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

/* job_defaults: fields of sx_k8s_cfg too. */
static const sx_option job_default_options[] = {
    OPT(SX_OPT_INT, "ttl_seconds_after_finished", "300", ttl_seconds_after_finished,
        "seconds a finished Job is kept"),
    OPT(SX_OPT_INT, "backoff_limit", "0", backoff_limit, "retries of a failed pod, 0..3"),
    OPT(SX_OPT_INT, "active_deadline_seconds", "1800", active_deadline_seconds,
        "the longest a Job may run: a step's timeout above it is refused"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct resources_nodes {
    const sx_config_node *requests;
    const sx_config_node *limits;
} resources_nodes;

static const sx_option resources_options[] = {
    {SX_OPT_NODE, "requests", NULL, 0, offsetof(resources_nodes, requests),
     "cpu, memory, ephemeral_storage"},
    {SX_OPT_NODE, "limits", NULL, 0, offsetof(resources_nodes, limits),
     "cpu, memory, ephemeral_storage"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

#define QTY(name, def, field) \
    {SX_OPT_STRING, name, def, 0, offsetof(sx_k8s_quantities, field), "quantity (\"\": none)"}
static const sx_option default_requests_options[] = {
    QTY("cpu", "100m", cpu), QTY("memory", "64Mi", memory),
    QTY("ephemeral_storage", NULL, ephemeral_storage), {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
static const sx_option default_limits_options[] = {
    QTY("cpu", "500m", cpu), QTY("memory", "256Mi", memory),
    QTY("ephemeral_storage", "1Gi", ephemeral_storage), {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
static const sx_option max_requests_options[] = {
    QTY("cpu", NULL, cpu), QTY("memory", NULL, memory),
    QTY("ephemeral_storage", NULL, ephemeral_storage), {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
static const sx_option max_limits_options[] = {
    QTY("cpu", "4000m", cpu), QTY("memory", "8Gi", memory),
    QTY("ephemeral_storage", "20Gi", ephemeral_storage), {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

/* Keys of shared sections read as defaults: {section key, option name}. */
static const char *const image_section_keys[][2] = {
    {"default_image", "image"},
    {"default_image_pull_secret", "image_pull_secret"},
    {"default_image_pull_policy", "image_pull_policy"},
    {NULL, NULL}};
static const char *const security_section_keys[][2] = {
    {"run_as_non_root", "run_as_non_root"},
    {"run_as_user", "run_as_user"},
    {"fs_group", "fs_group"},
    {"read_only_root_filesystem", "read_only_root_filesystem"},
    {"allow_privilege_escalation", "allow_privilege_escalation"},
    {"drop_all_capabilities", "drop_all_capabilities"},
    {NULL, NULL}};

/* script_path is a common parameter (script_run never checks it against
 * this list and reads it through load_script, k8s_scripts.c); it is listed
 * because the builder also uses it (the scripts ConfigMap's mount). */
const char *const sx_k8s_supported_params[] = {
    "script_path", "image", "image_ref", "image_pull_policy", "image_pull_secret", "env_from_secret",
    "env_from_configmap", "secret_env_all", "configmap_env_all", "volumes_from_secret",
    "volumes_from_configmap", "node_selector", "tolerations", "affinity", "priority_class_name",
    "resources", "service_account", "ttl_seconds_after_finished", "backoff_limit", "labels",
    "annotations", NULL};

/* ------------------------------------------------------------------ */
/* Layering                                                             */
/* ------------------------------------------------------------------ */

/* One source of values: a map node (NULL = absent) and, for sections shared
 * with other plugins, which of its keys are read and as which option. */
typedef struct layer {
    const sx_config_node *node;
    const char *const (*keys)[2]; /* NULL: every key is an option name (checked) */
} layer;

typedef struct text_pool {
    char **v;
    size_t n;
} text_pool;

static void pool_free(text_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static char *pool_add(text_pool *p, char *s)
{
    char **v = s ? realloc(p->v, (p->n + 1) * sizeof *v) : NULL;
    if (v == NULL) {
        free(s);
        return NULL;
    }
    p->v = v;
    v[p->n++] = s;
    return s;
}

static cJSON *scalar_json(const sx_host_api *h, const sx_config_node *v)
{
    const char *t = h->config_scalar(v);
    return t ? cJSON_CreateString(t) : NULL;
}

/* A config value as YAML text for an option's default_value: strings
 * quoted (JSON is YAML), lists and maps as flow collections, other scalars
 * as written.  NULL when the node has the wrong shape. */
static char *node_text(const sx_host_api *h, const sx_config_node *v, sx_option_type type)
{
    cJSON *j = NULL;
    sx_config_kind k = h->config_kind(v);
    switch (type) {
    case SX_OPT_STRING:
        if (k == SX_CFG_SCALAR)
            j = scalar_json(h, v);
        break;
    case SX_OPT_STRLIST:
        if (k != SX_CFG_SEQUENCE)
            return NULL;
        j = cJSON_CreateArray();
        for (size_t i = 0; i < h->config_len(v); i++) {
            cJSON *s = scalar_json(h, h->config_at(v, i));
            if (s == NULL) {
                cJSON_Delete(j);
                return NULL;
            }
            cJSON_AddItemToArray(j, s);
        }
        break;
    case SX_OPT_STRMAP:
        if (k != SX_CFG_MAP)
            return NULL;
        j = cJSON_CreateObject();
        for (size_t i = 0; i < h->config_len(v); i++) {
            cJSON *s = scalar_json(h, h->config_at(v, i));
            if (s == NULL) {
                cJSON_Delete(j);
                return NULL;
            }
            cJSON_AddItemToObject(j, h->config_key_at(v, i), s);
        }
        break;
    default: {
        const char *t = k == SX_CFG_SCALAR ? h->config_scalar(v) : NULL;
        return t ? strdup(t) : NULL;
    }
    }
    if (j == NULL)
        return NULL;
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int is_null(const sx_host_api *h, const sx_config_node *v)
{
    if (v == NULL)
        return 1;
    if (h->config_kind(v) != SX_CFG_SCALAR)
        return 0;
    const char *t = h->config_scalar(v);
    return t == NULL || strcmp(t, "~") == 0 || strcmp(t, "null") == 0;
}

static sx_option *table_find(sx_option *t, const char *name)
{
    for (; t->type != SX_OPT_END; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* Apply `table` to `dst` (a struct of `size` bytes) from `layers`, lowest
 * first; the last layer is applied as usual (its errors name its keys),
 * the others become the defaults of a copy of the table, each checked
 * first so that a bad value is reported where it is written. */
static int apply_layers(const sx_k8s_plugin *p, const sx_option *table, const layer *layers,
                        size_t n_layers, void *dst, size_t size, sx_error *err)
{
    const sx_host_api *h = p->host;
    size_t n = 0;
    while (table[n].type != SX_OPT_END)
        n++;
    sx_option *t = malloc((n + 1) * sizeof *t);
    void *scratch = calloc(1, size);
    text_pool pool = {0};
    int rc = -1;
    if (t == NULL || scratch == NULL) {
        sx_error_set(err, "invalid_config", "out of memory");
        goto out;
    }
    memcpy(t, table, (n + 1) * sizeof *t);
    for (size_t li = 0; li + 1 < n_layers; li++) {
        const layer *L = &layers[li];
        if (is_null(h, L->node))
            continue;
        if (h->config_kind(L->node) != SX_CFG_MAP) {
            sx_error_set(err, "invalid_config", "%s (line %d): expected a map",
                         h->config_path(L->node), h->config_line(L->node));
            goto out;
        }
        if (L->keys == NULL) {
            int bad = h->config_apply(p->ctx, L->node, t, scratch, err);
            h->config_free(t, scratch);
            if (bad)
                goto out;
        }
        size_t count = L->keys ? 0 : h->config_len(L->node);
        for (size_t i = 0; L->keys ? L->keys[i][0] != NULL : i < count; i++) {
            const sx_config_node *v;
            sx_option *o;
            if (L->keys) {
                v = h->config_get(L->node, L->keys[i][0]);
                o = table_find(t, L->keys[i][1]);
            } else {
                v = h->config_at(L->node, i);
                o = table_find(t, h->config_key_at(L->node, i));
            }
            if (o == NULL || o->type == SX_OPT_NODE || is_null(h, v))
                continue;
            char *text = pool_add(&pool, node_text(h, v, o->type));
            if (text == NULL) {
                sx_error_set(err, "invalid_config", "%s (line %d): not a valid value for '%s'",
                             h->config_path(v), h->config_line(v), o->name);
                goto out;
            }
            if (L->keys) {
                /* a shared section: check this one value by itself */
                sx_option one[2] = {*o, {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
                one[0].default_value = text;
                sx_error e;
                int bad = h->config_apply(p->ctx, NULL, one, scratch, &e);
                h->config_free(one, scratch);
                if (bad) {
                    const char *why = strstr(e.message, ": ");
                    sx_error_set(err, "invalid_config", "%s (line %d)%s", h->config_path(v),
                                 h->config_line(v), why ? why : ": invalid value");
                    goto out;
                }
            }
            o->default_value = text;
        }
    }
    rc = h->config_apply(p->ctx, layers[n_layers - 1].node, t, dst, err);
out:
    pool_free(&pool);
    free(scratch);
    free(t);
    return rc;
}

static const sx_config_node *sub(const sx_host_api *h, const sx_config_node *map, const char *key)
{
    if (map == NULL || h->config_kind(map) != SX_CFG_MAP)
        return NULL;
    return h->config_get(map, key);
}

/* A nested resources map (default_resources, max_resources) from the
 * kubernetes section and the entry. */
static int apply_resources(const sx_k8s_plugin *p, const char *key,
                           const sx_config_node *section, const sx_config_node *entry,
                           const sx_option *req_opts, const sx_option *lim_opts,
                           sx_k8s_resources *dst, sx_error *err)
{
    const sx_host_api *h = p->host;
    layer outer[2] = {{sub(h, section, key), NULL}, {sub(h, entry, key), NULL}};
    resources_nodes rn = {0};
    /* check both levels' keys (requests, limits) */
    for (size_t i = 0; i < 2; i++) {
        if (h->config_apply(p->ctx, is_null(h, outer[i].node) ? NULL : outer[i].node,
                            resources_options, &rn, err) != 0)
            return -1;
    }
    layer req[2] = {{sub(h, outer[0].node, "requests"), NULL},
                    {sub(h, outer[1].node, "requests"), NULL}};
    layer lim[2] = {{sub(h, outer[0].node, "limits"), NULL},
                    {sub(h, outer[1].node, "limits"), NULL}};
    if (apply_layers(p, req_opts, req, 2, &dst->requests, sizeof dst->requests, err) != 0 ||
        apply_layers(p, lim_opts, lim, 2, &dst->limits, sizeof dst->limits, err) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */
/* ------------------------------------------------------------------ */

static int bad(sx_error *err, const sx_k8s_instance *inst, const char *key, const char *fmt,
               const char *value)
{
    char why[700];
    snprintf(why, sizeof why, fmt, value ? value : "");
    return sx_error_set(err, "invalid_config", "executor '%s': %s: %s", inst->name, key, why);
}

/* "" means "none" for quantities: drop it. */
static void empty_is_none(char **s)
{
    if (*s && (*s)[0] == '\0') {
        free(*s);
        *s = NULL;
    }
}

static const char *const qty_names[] = {"cpu", "memory", "ephemeral_storage"};

static char **qty_field(sx_k8s_quantities *q, size_t i)
{
    return i == 0 ? &q->cpu : i == 1 ? &q->memory : &q->ephemeral_storage;
}

static int check_quantities(const sx_k8s_instance *inst, const char *what,
                            sx_k8s_quantities *q, sx_error *err)
{
    for (size_t i = 0; i < 3; i++) {
        char **f = qty_field(q, i);
        empty_is_none(f);
        int64_t v;
        if (*f && sx_k8s_quantity_parse(*f, i == 0, &v) != 0) {
            char key[100];
            snprintf(key, sizeof key, "%s.%s", what, qty_names[i]);
            return bad(err, inst, key,
                       i == 0 ? "'%s' is not a CPU quantity (\"500m\", \"2\")"
                              : "'%s' is not a quantity (\"512Mi\", \"1Gi\")",
                       *f);
        }
    }
    return 0;
}

static int64_t qty_value(const char *text, size_t i)
{
    int64_t v = -1;
    if (text)
        sx_k8s_quantity_parse(text, i == 0, &v);
    return v;
}

static int check_options(sx_k8s_instance *inst, sx_error *err)
{
    sx_k8s_cfg *c = &inst->cfg;
    if (!sx_k8s_label_value_ok(inst->name) || inst->name[0] == '\0')
        return bad(err, inst, "name",
                   "'%s' must be a Kubernetes label value (at most 63 of [A-Za-z0-9._-], "
                   "alphanumeric at both ends): it labels the executor's Jobs", inst->name);
    if (c->in_cluster && c->kubeconfig)
        return bad(err, inst, "in_cluster", "%s",
                   "in_cluster and kubeconfig exclude each other: set one");
    if (c->in_cluster_dir && (!c->in_cluster || c->in_cluster_dir[0] != '/'))
        return bad(err, inst, "in_cluster_dir", "'%s' must be an absolute path, with in_cluster: "
                   "true", c->in_cluster_dir);
    if (c->api_timeout_ms < 1000)
        return bad(err, inst, "api_timeout", "%s", "must be at least 1s");
    if (c->namespace_ && !sx_k8s_dns_label_ok(c->namespace_))
        return bad(err, inst, "namespace", "'%s' is not a namespace name (DNS-1123 label)",
                   c->namespace_);
    if (c->service_account == NULL || !sx_k8s_dns_subdomain_ok(c->service_account))
        return bad(err, inst, "service_account", "'%s' is not a service account name",
                   c->service_account);
    for (size_t i = 0; i < c->allowed_service_accounts.n; i++)
        if (!sx_k8s_dns_subdomain_ok(c->allowed_service_accounts.v[i]))
            return bad(err, inst, "allowed_service_accounts", "'%s' is not a service account name",
                       c->allowed_service_accounts.v[i]);
    if (c->image == NULL || c->image[0] == '\0')
        return bad(err, inst, "image", "%s",
                   "no default image: set image in the executor, in script_executor.kubernetes, "
                   "or image.default_image");
    if (!sx_k8s_image_ok(c->image))
        return bad(err, inst, "image", "'%s' is not an image reference (no spaces)", c->image);
    if (!sx_k8s_pull_policy_ok(c->image_pull_policy))
        return bad(err, inst, "image_pull_policy", "'%s' must be Always, IfNotPresent or Never",
                   c->image_pull_policy);
    if (c->image_pull_secret && !sx_k8s_dns_subdomain_ok(c->image_pull_secret))
        return bad(err, inst, "image_pull_secret", "'%s' is not a Secret name",
                   c->image_pull_secret);
    if (c->ttl_seconds_after_finished < 0 || c->ttl_seconds_after_finished > 2147483647)
        return bad(err, inst, "job_defaults.ttl_seconds_after_finished", "%s",
                   "must be 0..2147483647");
    if (c->backoff_limit < 0 || c->backoff_limit > 3)
        return bad(err, inst, "job_defaults.backoff_limit", "%s", "must be 0..3");
    if (c->active_deadline_seconds < 1 || c->active_deadline_seconds > 2147483647)
        return bad(err, inst, "job_defaults.active_deadline_seconds", "%s", "must be at least 1");
    if (check_quantities(inst, "default_resources.requests", &c->default_resources.requests, err) ||
        check_quantities(inst, "default_resources.limits", &c->default_resources.limits, err) ||
        check_quantities(inst, "max_resources.requests", &c->max_resources.requests, err) ||
        check_quantities(inst, "max_resources.limits", &c->max_resources.limits, err))
        return -1;
    for (size_t i = 0; i < 3; i++) {
        int64_t dr = qty_value(*qty_field(&c->default_resources.requests, i), i);
        int64_t dl = qty_value(*qty_field(&c->default_resources.limits, i), i);
        int64_t mr = qty_value(*qty_field(&c->max_resources.requests, i), i);
        int64_t ml = qty_value(*qty_field(&c->max_resources.limits, i), i);
        char key[100];
        if (dr >= 0 && dl >= 0 && dr > dl) {
            snprintf(key, sizeof key, "default_resources.requests.%s", qty_names[i]);
            return bad(err, inst, key, "%s", "is above default_resources.limits");
        }
        if (dl >= 0 && ml >= 0 && dl > ml) {
            snprintf(key, sizeof key, "default_resources.limits.%s", qty_names[i]);
            return bad(err, inst, key, "%s", "is above max_resources.limits");
        }
        if (dr >= 0 && ((mr >= 0 && dr > mr) || (mr < 0 && ml >= 0 && dr > ml))) {
            snprintf(key, sizeof key, "default_resources.requests.%s", qty_names[i]);
            return bad(err, inst, key, "%s", "is above max_resources");
        }
    }
    const int64_t id_max = 2147483647;
    if (c->run_as_user < -1 || c->run_as_user > id_max)
        return bad(err, inst, "run_as_user", "%s", "must be -1 (the image's) or 0..2147483647");
    if (c->run_as_group < -1 || c->run_as_group > id_max)
        return bad(err, inst, "run_as_group", "%s", "must be -1 (the image's) or 0..2147483647");
    if (c->fs_group < -1 || c->fs_group > id_max)
        return bad(err, inst, "fs_group", "%s", "must be -1 (none) or 0..2147483647");
    if (c->run_as_non_root && c->run_as_user == 0)
        return bad(err, inst, "run_as_user", "%s",
                   "0 (root) contradicts run_as_non_root: true (the kubelet would refuse every "
                   "pod)");
    const char *sp = c->seccomp_profile;
    if (sp == NULL ||
        (strcmp(sp, "RuntimeDefault") && strcmp(sp, "Unconfined") &&
         !(strncmp(sp, "localhost/", 10) == 0 && sx_k8s_rel_path_ok(sp + 10))))
        return bad(err, inst, "seccomp_profile",
                   "'%s' must be RuntimeDefault, Unconfined or localhost/<profile path>", sp);
    const char *wd = c->default_work_dir;
    if (wd == NULL || !sx_k8s_abs_path_ok(wd) || strcmp(wd, "/") == 0 ||
        sx_k8s_path_within(wd, "/tmp") || sx_k8s_path_within(wd, SX_K8S_RUN_DIR) ||
        sx_k8s_path_within(wd, SX_K8S_SCRIPTS_DIR))
        return bad(err, inst, "default_work_dir",
                   "'%s' must be an absolute path outside /tmp, " SX_K8S_RUN_DIR " and "
                   SX_K8S_SCRIPTS_DIR, wd);
    for (size_t i = 0; i < c->default_env.n; i++)
        if (!sx_k8s_env_name_ok(c->default_env.keys[i]))
            return bad(err, inst, "default_env", "'%s' is not a variable name Kubernetes accepts",
                       c->default_env.keys[i]);
    if (c->scripts_configmap && !sx_k8s_dns_subdomain_ok(c->scripts_configmap))
        return bad(err, inst, "scripts_configmap", "'%s' is not a ConfigMap name",
                   c->scripts_configmap);
    int64_t tmp;
    if (c->tmp_size_limit == NULL || sx_k8s_quantity_parse(c->tmp_size_limit, 0, &tmp) != 0)
        return bad(err, inst, "tmp_size_limit", "'%s' is not a quantity (\"100Mi\")",
                   c->tmp_size_limit);
    if (c->unschedulable_grace_ms < 0)
        return bad(err, inst, "unschedulable_grace", "%s", "must not be negative");
    if (c->host_id == NULL || c->host_id[0] == '\0' || !sx_k8s_label_value_ok(c->host_id))
        return bad(err, inst, "host_id",
                   "'%s' must be a Kubernetes label value (1..63 of [A-Za-z0-9._-], "
                   "alphanumeric at both ends)", c->host_id);
    if (strcmp(c->log_streams, "auto") == 0)
        c->log_mode = SX_K8S_LOG_AUTO;
    else if (strcmp(c->log_streams, "separate") == 0)
        c->log_mode = SX_K8S_LOG_SEPARATE;
    else if (strcmp(c->log_streams, "merged") == 0)
        c->log_mode = SX_K8S_LOG_MERGED;
    else
        return bad(err, inst, "log_streams", "'%s' must be auto, separate or merged",
                   c->log_streams);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Entry points                                                         */
/* ------------------------------------------------------------------ */

static void free_resources(const sx_host_api *h, sx_k8s_resources *r, const sx_option *req,
                           const sx_option *lim)
{
    h->config_free(req, &r->requests);
    h->config_free(lim, &r->limits);
}

void sx_k8s_options_free(sx_k8s_instance *inst)
{
    const sx_host_api *h = inst->plugin->host;
    sx_k8s_cfg *c = &inst->cfg;
    free_resources(h, &c->default_resources, default_requests_options, default_limits_options);
    free_resources(h, &c->max_resources, max_requests_options, max_limits_options);
    h->config_free(k8s_options, c);
    /* ints of job_defaults need no freeing */
}

int sx_k8s_options_apply(sx_k8s_instance *inst, const sx_config_node *entry, sx_error *err)
{
    const sx_k8s_plugin *p = inst->plugin;
    const sx_host_api *h = p->host;
    sx_k8s_cfg *c = &inst->cfg;
    const sx_config_node *kube = h->config_section(p->ctx, "kubernetes");
    const sx_config_node *security = h->config_section(p->ctx, "security");
    const sx_config_node *image = h->config_section(p->ctx, "image");
    layer top[4] = {{image, image_section_keys},
                    {security, security_section_keys},
                    {kube, NULL},
                    {entry, NULL}};
    if (apply_layers(p, k8s_options, top, 4, c, sizeof *c, err) != 0)
        return -1;
    /* job_defaults: fields of the cfg itself; applying the table zeroes
     * only them */
    layer jd[2] = {{sub(h, kube, "job_defaults"), NULL}, {sub(h, entry, "job_defaults"), NULL}};
    if (apply_layers(p, job_default_options, jd, 2, c, sizeof *c, err) != 0)
        return -1;
    if (apply_resources(p, "default_resources", kube, entry, default_requests_options,
                        default_limits_options, &c->default_resources, err) != 0 ||
        apply_resources(p, "max_resources", kube, entry, max_requests_options,
                        max_limits_options, &c->max_resources, err) != 0)
        return -1;
    /* borrowed for this call only */
    c->job_defaults_node_ = c->default_resources_node_ = c->max_resources_node_ = NULL;
    if (c->host_id == NULL) {
        char hn[256] = "";
        gethostname(hn, sizeof hn - 1);
        char v[64];
        sx_k8s_label_value(hn, v);
        c->host_id = strdup(v[0] ? v : "localhost");
        if (c->host_id == NULL)
            return sx_error_set(err, "invalid_config", "out of memory");
    }
    return check_options(inst, err);
}

/* ------------------------------------------------------------------ */
/* describe                                                             */
/* ------------------------------------------------------------------ */

cJSON *sx_k8s_weakened(const sx_k8s_cfg *c)
{
    cJSON *w = cJSON_CreateArray();
#define WEAK(text) cJSON_AddItemToArray(w, cJSON_CreateString(text))
    if (c->run_as_user == 0)
        WEAK("run_as_user: 0 (scripts run as root)");
    else if (c->run_as_user < 0)
        WEAK("run_as_user: -1 (the image's user, which may be root)");
    if (c->run_as_group == 0)
        WEAK("run_as_group: 0 (scripts run with the root group)");
    if (!c->run_as_non_root)
        WEAK("run_as_non_root: false (the kubelet does not refuse uid 0)");
    if (!c->read_only_root_filesystem)
        WEAK("read_only_root_filesystem: false (scripts may change the image's files)");
    if (c->allow_privilege_escalation)
        WEAK("allow_privilege_escalation: true (setuid binaries gain privileges)");
    if (!c->drop_all_capabilities)
        WEAK("drop_all_capabilities: false (the runtime's default capabilities are kept)");
    if (c->seccomp_profile && strcmp(c->seccomp_profile, "Unconfined") == 0)
        WEAK("seccomp_profile: Unconfined (no system call filter)");
#undef WEAK
    return w;
}

static void add_quantities(cJSON *o, const char *name, const sx_k8s_quantities *q)
{
    cJSON *x = cJSON_AddObjectToObject(o, name);
    if (q->cpu)
        cJSON_AddStringToObject(x, "cpu", q->cpu);
    if (q->memory)
        cJSON_AddStringToObject(x, "memory", q->memory);
    if (q->ephemeral_storage)
        cJSON_AddStringToObject(x, "ephemeral_storage", q->ephemeral_storage);
}

static cJSON *strlist_json(const sx_strlist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
    return a;
}

cJSON *sx_k8s_options_json(const sx_k8s_cfg *c)
{
    cJSON *o = cJSON_CreateObject();
    if (c->kubeconfig)
        cJSON_AddStringToObject(o, "kubeconfig", c->kubeconfig);
    if (c->context)
        cJSON_AddStringToObject(o, "context", c->context);
    cJSON_AddBoolToObject(o, "in_cluster", c->in_cluster);
    if (c->in_cluster_dir)
        cJSON_AddStringToObject(o, "in_cluster_dir", c->in_cluster_dir);
    cJSON_AddNumberToObject(o, "api_timeout_seconds", (double)c->api_timeout_ms / 1000.0);
    if (c->namespace_)
        cJSON_AddStringToObject(o, "namespace", c->namespace_);
    cJSON_AddStringToObject(o, "service_account", c->service_account);
    cJSON_AddItemToObject(o, "allowed_service_accounts",
                          strlist_json(&c->allowed_service_accounts));
    cJSON_AddStringToObject(o, "image", c->image);
    cJSON_AddStringToObject(o, "image_pull_policy", c->image_pull_policy);
    if (c->image_pull_secret)
        cJSON_AddStringToObject(o, "image_pull_secret", c->image_pull_secret);
    cJSON *jd = cJSON_AddObjectToObject(o, "job_defaults");
    cJSON_AddNumberToObject(jd, "ttl_seconds_after_finished",
                            (double)c->ttl_seconds_after_finished);
    cJSON_AddNumberToObject(jd, "backoff_limit", (double)c->backoff_limit);
    cJSON_AddNumberToObject(jd, "active_deadline_seconds", (double)c->active_deadline_seconds);
    cJSON *dr = cJSON_AddObjectToObject(o, "default_resources");
    add_quantities(dr, "requests", &c->default_resources.requests);
    add_quantities(dr, "limits", &c->default_resources.limits);
    cJSON *mr = cJSON_AddObjectToObject(o, "max_resources");
    add_quantities(mr, "requests", &c->max_resources.requests);
    add_quantities(mr, "limits", &c->max_resources.limits);
    cJSON_AddNumberToObject(o, "run_as_user", (double)c->run_as_user);
    cJSON_AddNumberToObject(o, "run_as_group", (double)c->run_as_group);
    cJSON_AddNumberToObject(o, "fs_group", (double)c->fs_group);
    cJSON_AddBoolToObject(o, "run_as_non_root", c->run_as_non_root);
    cJSON_AddBoolToObject(o, "read_only_root_filesystem", c->read_only_root_filesystem);
    cJSON_AddBoolToObject(o, "allow_privilege_escalation", c->allow_privilege_escalation);
    cJSON_AddBoolToObject(o, "drop_all_capabilities", c->drop_all_capabilities);
    cJSON_AddStringToObject(o, "seccomp_profile", c->seccomp_profile);
    cJSON_AddStringToObject(o, "default_work_dir", c->default_work_dir);
    cJSON *env = cJSON_AddArrayToObject(o, "default_env_names");
    for (size_t i = 0; i < c->default_env.n; i++)
        cJSON_AddItemToArray(env, cJSON_CreateString(c->default_env.keys[i]));
    cJSON_AddNumberToObject(o, "command_whitelist_entries", (double)c->command_whitelist.n);
    if (c->scripts_configmap)
        cJSON_AddStringToObject(o, "scripts_configmap", c->scripts_configmap);
    else
        cJSON_AddNullToObject(o, "scripts_configmap");
    cJSON_AddStringToObject(o, "tmp_size_limit", c->tmp_size_limit);
    cJSON_AddNumberToObject(o, "unschedulable_grace_seconds",
                            (double)c->unschedulable_grace_ms / 1000.0);
    cJSON_AddStringToObject(o, "host_id", c->host_id);
    cJSON_AddStringToObject(o, "log_streams", c->log_streams);
    return o;
}
