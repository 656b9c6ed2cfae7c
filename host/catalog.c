/* catalog.c - the image catalog in the step pipeline (see catalog.h). */
#define _POSIX_C_SOURCE 200809L
#include "catalog.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sx/sx_catalog.h"
#include "sx/sx_util.h"

/* The initialised image catalog plugin, or NULL. */
static struct sx_plugin_ctx *catalog_plugin(const sx_host *host)
{
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind == SX_KIND_IMAGE_CATALOG && p->initialized)
            return p;
    }
    return NULL;
}

int sx_host_catalog_check(const sx_host *host, sx_error *err)
{
    const struct sx_plugin_ctx *first = NULL;
    for (size_t i = 0; i < host->n_plugins; i++) {
        const struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_IMAGE_CATALOG)
            continue;
        if (first)
            return sx_error_set(err, "plugin_conflict",
                                "plugins '%s' (%s) and '%s' (%s) are both image catalogs: at most "
                                "one may be loaded (remove one from plugins.load)",
                                first->desc->name, first->path, p->desc->name, p->path);
        first = p;
    }
    return 0;
}

static int backend_takes(const sx_executor *ex, const char *param)
{
    for (const char *const *s = ex->ops->supported_params; s && *s; s++)
        if (strcmp(*s, param) == 0)
            return 1;
    return 0;
}

/* with[key] as a string; NULL when absent or null.  -1 when it is another
 * type. */
static int with_string(const cJSON *with, const char *key, const char **out, sx_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(with, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return sx_error_set(err, "invalid_parameter", "with.%s must be a string", key);
    *out = v->valuestring;
    return 0;
}

/* A scalar key of the executor's config entry, or NULL. */
static const char *executor_option(const sx_host *host, const sx_executor *ex, const char *key)
{
    const sx_config_node *list = sx_cfg_get(host->root, "executors");
    for (size_t i = 0; i < sx_cfg_len(list); i++) {
        const sx_config_node *entry = sx_cfg_at(list, i);
        const char *name = sx_cfg_scalar(sx_cfg_get(entry, "name"));
        if (name == NULL || strcmp(name, ex->name) != 0)
            continue;
        const sx_config_node *v = sx_cfg_get(entry, key);
        const char *s = sx_cfg_kind(v) == SX_CFG_SCALAR ? sx_cfg_scalar(v) : NULL;
        return s && *s ? s : NULL;
    }
    return NULL;
}

static void choice_clear(sx_image_choice *c)
{
    free(c->image);
    free(c->pull_secret);
    free(c->pull_policy);
    free(c->ref);
    free(c->rule);
}

/* Set with[key] = value when the backend takes key; counts real changes. */
static void with_set(cJSON *with, const sx_executor *ex, const char *key, const char *value,
                     int *changed)
{
    if (value == NULL)
        return;
    if (!backend_takes(ex, key)) {
        sx_log(SX_LOG_DEBUG, "catalog", "executor '%s' (%s) does not take %s: the catalog's "
               "'%s' is not passed on", ex->name, ex->kind, key, value);
        return;
    }
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(with, key);
    if (cJSON_IsString(old) && strcmp(old->valuestring, value) == 0)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(with, key);
    cJSON_AddStringToObject(with, key, value);
    (*changed)++;
}

int sx_host_catalog_apply(sx_host *host, const char *executor, const char *with_json,
                          const char *user, char **with_out, sx_error *err)
{
    *with_out = NULL;
    struct sx_plugin_ctx *cat = catalog_plugin(host);
    if (cat == NULL)
        return 0;
    sx_executor *ex = sx_host_executor(host, executor);
    if (ex == NULL || !backend_takes(ex, "image"))
        return 0;
    cJSON *with = cJSON_Parse(with_json ? with_json : "{}");
    if (!cJSON_IsObject(with)) {
        cJSON_Delete(with);
        return sx_error_set(err, "invalid_parameter", "'with' must be a JSON object");
    }
    sx_image_request req = {.struct_size = sizeof req, .executor = ex->name,
                            .executor_kind = ex->kind, .user = user};
    if (with_string(with, "image_ref", &req.image_ref, err) != 0 ||
        with_string(with, "image", &req.image, err) != 0 ||
        with_string(with, "image_pull_secret", &req.pull_secret, err) != 0 ||
        with_string(with, "image_pull_policy", &req.pull_policy, err) != 0) {
        cJSON_Delete(with);
        return -1;
    }
    if (req.image_ref == NULL && req.image == NULL) {
        /* the executor's own image is more specific than the catalog's
         * global default: it stands for the step's, and is checked */
        req.image = executor_option(host, ex, "image");
        if (req.image && req.pull_secret == NULL)
            req.pull_secret = executor_option(host, ex, "image_pull_secret");
        if (req.image && req.pull_policy == NULL)
            req.pull_policy = executor_option(host, ex, "image_pull_policy");
    }

    sx_image_choice choice = {.struct_size = sizeof choice};
    const sx_catalog_ops *ops = cat->desc->ops;
    sx_error cerr = {{0}, {0}};
    if (ops->resolve(cat->state, &req, &choice, &cerr) != 0) {
        choice_clear(&choice);
        cJSON_Delete(with);
        return sx_error_set(err, cerr.code[0] ? cerr.code : "image_not_allowed", "%s",
                            cerr.message[0] ? cerr.message : "the image catalog refused the image");
    }
    int changed = 0;
    if (cJSON_GetObjectItemCaseSensitive(with, "image_ref")) {
        cJSON_DeleteItemFromObjectCaseSensitive(with, "image_ref");
        changed++;
    }
    with_set(with, ex, "image", choice.image, &changed);
    with_set(with, ex, "image_pull_secret", choice.pull_secret, &changed);
    with_set(with, ex, "image_pull_policy", choice.pull_policy, &changed);
    sx_log(SX_LOG_DEBUG, "catalog", "executor '%s': image %s%s%s%s%s", ex->name,
           choice.image ? choice.image : (req.image ? req.image : "(backend default)"),
           choice.ref ? " from catalog entry " : "", choice.ref ? choice.ref : "",
           choice.rule ? " allowed by " : "", choice.rule ? choice.rule : "");
    choice_clear(&choice);
    if (changed)
        *with_out = cJSON_PrintUnformatted(with);
    cJSON_Delete(with);
    if (changed && *with_out == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory rewriting 'with'");
    return 0;
}

char *sx_host_catalog_describe(sx_host *host)
{
    struct sx_plugin_ctx *cat = catalog_plugin(host);
    if (cat == NULL)
        return NULL;
    const sx_catalog_ops *ops = cat->desc->ops;
    return ops->describe ? ops->describe(cat->state) : NULL;
}
