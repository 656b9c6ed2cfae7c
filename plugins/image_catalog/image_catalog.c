/*
 * image_catalog.c - the "image.catalog" plugin (SX_KIND_IMAGE_CATALOG,
 * sdk/include/sx/sx_catalog.h; docs/image-catalog.md).
 *
 * Before a step reaches its step type the host asks resolve() which image
 * it runs: image_ref is looked up in the catalog file (the spec's
 * catalog.yaml of the ConfigMap script-image-catalog, mounted as a file),
 * the `image:` section's defaults fill what the step leaves open, and the
 * result is checked against approved_images / blocked_images.  The file is
 * reloaded when it changes; a broken new file keeps the old catalog.
 *
 * Config (script_executor.image): default_image, default_image_pull_secret,
 * default_image_pull_policy, approved_images, blocked_images, catalog
 * {enabled, file, reload_interval, configmap_name, configmap_namespace},
 * verify_image_access and scan_images_on_approval (both refused when true:
 * see the option table).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "sx/sx_util.h"

#define SX_IMG_DEFAULT_FILE "/etc/script-executor/image-catalog/catalog.yaml"
#define SX_IMG_SETTLE_MS 100    /* quiet time after a directory event before a check */

typedef struct sx_img_cfg {
    char *default_image;
    char *default_image_pull_secret;
    char *default_image_pull_policy;
    sx_strlist approved_images;
    sx_strlist blocked_images;
    const sx_config_node *catalog;
    int verify_image_access;
    int scan_images_on_approval;
} sx_img_cfg;

#define IOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(sx_img_cfg, field), desc}
static const sx_option image_options[] = {
    IOPT(SX_OPT_STRING, "default_image", NULL, default_image,
         "image of a step that names none (and whose executor has no image of its own)"),
    IOPT(SX_OPT_STRING, "default_image_pull_secret", NULL, default_image_pull_secret,
         "pull secret when neither the step nor its catalog entry names one"),
    IOPT(SX_OPT_STRING, "default_image_pull_policy", NULL, default_image_pull_policy,
         "Always | IfNotPresent | Never, when neither the step nor its catalog entry sets one"),
    IOPT(SX_OPT_STRLIST, "approved_images", NULL, approved_images,
         "glob patterns; when not empty, an image must match one"),
    IOPT(SX_OPT_STRLIST, "blocked_images", NULL, blocked_images,
         "glob patterns; an image matching one is refused (wins over approved)"),
    IOPT(SX_OPT_NODE, "catalog", NULL, catalog, "the catalog file: enabled, file, "
         "reload_interval, configmap_name, configmap_namespace"),
    IOPT(SX_OPT_BOOL, "verify_image_access", "false", verify_image_access,
         "not supported: true is refused (the backend reports a pull failure when it runs)"),
    IOPT(SX_OPT_BOOL, "scan_images_on_approval", "false", scan_images_on_approval,
         "not supported: true is refused (no image scanner is integrated)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_img_catalog_cfg {
    int enabled;
    char *file;
    int64_t reload_interval_ms;
    char *configmap_name;
    char *configmap_namespace;
} sx_img_catalog_cfg;

#define COPT(type, name, def, field, desc) \
    {type, name, def, 0, offsetof(sx_img_catalog_cfg, field), desc}
static const sx_option catalog_options[] = {
    COPT(SX_OPT_BOOL, "enabled", "true", enabled, "false: no image_ref resolution (rules and "
         "defaults still apply)"),
    COPT(SX_OPT_STRING, "file", SX_IMG_DEFAULT_FILE, file,
         "the catalog.yaml file (in Kubernetes: the ConfigMap mounted as a volume)"),
    COPT(SX_OPT_DURATION, "reload_interval", "2s", reload_interval_ms,
         "how often the file is stat()ed besides inotify; 0 = inotify only"),
    COPT(SX_OPT_STRING, "configmap_name", "script-image-catalog", configmap_name,
         "where the file comes from in a cluster (informational: mount it at `file`)"),
    COPT(SX_OPT_STRING, "configmap_namespace", NULL, configmap_namespace,
         "the ConfigMap's namespace (informational)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_img_plugin {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_img_cfg cfg;
    sx_img_catalog_cfg cat_cfg;
    sx_img_rules rules;         /* borrows cfg's strings */
    sx_img_store *store;
    sx_img_watch *watch;
    /* reload status (describe); the watch thread writes, describe reads */
    pthread_mutex_t status_lock;
    uint64_t reloads;
    uint64_t failures;
    char last_error[SX_ERROR_MESSAGE_MAX];
    char last_error_at[40];
    /* watch thread only: the broken (or missing) file already reported */
    int failed;
    sx_img_sig failed_sig;
} sx_img_plugin;

static void plugin_free(sx_img_plugin *p)
{
    if (p == NULL)
        return;
    sx_img_watch_stop(p->watch);
    sx_img_store_free(p->store);
    p->host->config_free(catalog_options, &p->cat_cfg);
    p->host->config_free(image_options, &p->cfg);
    pthread_mutex_destroy(&p->status_lock);
    free(p);
}

/* Warn about catalog entries the rules refuse: they are listed, but a step
 * naming them is refused. */
static void warn_refused_entries(sx_img_plugin *p, const sx_img_catalog *cat)
{
    for (size_t i = 0; i < cat->n; i++) {
        const char *rule;
        sx_error why = {{0}, {0}};
        if (sx_img_rules_check(&p->rules, cat->entries[i].image, &rule, &why) != 0)
            p->host->log(p->ctx, SX_LOG_WARN,
                         "image catalog %s: entry '%s' (line %d) can never be used: %s",
                         cat->source, cat->entries[i].name, cat->entries[i].line, why.message);
    }
}

/* The watch thread's tick: reload when the file is not the one loaded. */
static void check_reload(void *arg)
{
    sx_img_plugin *p = arg;
    const char *path = p->cat_cfg.file;
    sx_img_sig now;
    sx_img_sig_read(path, &now);
    const sx_img_catalog *cur = sx_img_store_acquire(p->store);
    int same = cur && sx_img_sig_equal(&cur->sig, &now);
    uint64_t gen = cur ? cur->generation : 0;
    size_t entries = cur ? cur->n : 0;
    char loaded_at[40];
    snprintf(loaded_at, sizeof loaded_at, "%s", cur ? cur->loaded_at : "");
    sx_img_store_release(p->store, cur);
    if (same || (p->failed && sx_img_sig_equal(&p->failed_sig, &now)))
        return;

    sx_img_catalog *next;
    sx_error err = {{0}, {0}};
    if (sx_img_catalog_load(path, &next, &err) != 0) {
        p->failed = 1;
        p->failed_sig = now;
        pthread_mutex_lock(&p->status_lock);
        p->failures++;
        snprintf(p->last_error, sizeof p->last_error, "%s", err.message);
        sx_time_utc(p->last_error_at, sizeof p->last_error_at, 3);
        pthread_mutex_unlock(&p->status_lock);
        p->host->log(p->ctx, SX_LOG_ERROR,
                     "image catalog %s changed but cannot be loaded; keeping the previous "
                     "catalog (generation %llu, %zu entries, loaded %s): %s", path,
                     (unsigned long long)gen, entries, loaded_at, err.message);
        return;
    }
    p->failed = 0;
    warn_refused_entries(p, next);
    size_t n = next->n;
    sx_img_store_swap(p->store, next);   /* next belongs to the store now */
    pthread_mutex_lock(&p->status_lock);
    p->reloads++;
    p->last_error[0] = '\0';
    p->last_error_at[0] = '\0';
    pthread_mutex_unlock(&p->status_lock);
    p->host->log(p->ctx, SX_LOG_INFO, "image catalog %s reloaded: %zu entries (was %zu), "
                 "generation %llu", path, n, entries, (unsigned long long)gen + 1);
}

static int refuse_unsupported(sx_img_plugin *p, sx_error *err)
{
    const char *which = p->cfg.verify_image_access ? "verify_image_access"
                      : p->cfg.scan_images_on_approval ? "scan_images_on_approval" : NULL;
    if (which == NULL)
        return 0;
    return sx_error_set(err, "invalid_config",
                        "image.%s is true, but the image_catalog plugin cannot honour it (%s); "
                        "set it to false", which,
                        p->cfg.verify_image_access
                            ? "it does not contact registries: a missing or unpullable image "
                              "is reported by the backend when the step runs (image_not_found, "
                              "image_pull_failed)"
                            : "no image scanner is integrated");
}

static int img_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_img_plugin *p = calloc(1, sizeof *p);
    if (p == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    p->host = host;
    p->ctx = ctx;
    pthread_mutex_init(&p->status_lock, NULL);
    if (host->config_apply(ctx, host->config_section(ctx, "image"), image_options, &p->cfg,
                           err) != 0 ||
        host->config_apply(ctx, p->cfg.catalog, catalog_options, &p->cat_cfg, err) != 0 ||
        refuse_unsupported(p, err) != 0)
        goto fail;
    p->rules.default_image = p->cfg.default_image;
    p->rules.default_pull_secret = p->cfg.default_image_pull_secret;
    p->rules.default_pull_policy = p->cfg.default_image_pull_policy;
    p->rules.approved = p->cfg.approved_images;
    p->rules.blocked = p->cfg.blocked_images;
    if (sx_img_rules_validate(&p->rules, err) != 0)
        goto fail;
    if (p->cat_cfg.reload_interval_ms < 0 || p->cat_cfg.reload_interval_ms > 3600000) {
        sx_error_set(err, "invalid_config", "image.catalog.reload_interval must be 0..1h");
        goto fail;
    }

    sx_img_catalog *cat = NULL;
    if (p->cat_cfg.enabled) {
        if (sx_img_catalog_load(p->cat_cfg.file, &cat, err) != 0) {
            char why[SX_ERROR_MESSAGE_MAX];
            snprintf(why, sizeof why, "%s", err->message);
            sx_error_set(err, "invalid_config", "image.catalog.file: %s", why);
            goto fail;
        }
        warn_refused_entries(p, cat);
    }
    size_t n = cat ? cat->n : 0;
    p->store = sx_img_store_new(cat);
    if (p->store == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto fail;
    }
    if (p->cat_cfg.enabled &&
        sx_img_watch_start(p->cat_cfg.file, p->cat_cfg.reload_interval_ms, SX_IMG_SETTLE_MS,
                           check_reload, p, &p->watch, err) != 0)
        goto fail;
    if (p->cat_cfg.enabled)
        host->log(ctx, SX_LOG_INFO, "image catalog %s: %zu entries; reloads on change (%s)",
                  p->cat_cfg.file, n, sx_img_watch_mode(p->watch));
    else
        host->log(ctx, SX_LOG_INFO, "image catalog disabled (image.catalog.enabled: false): "
                  "image_ref is refused; defaults and image rules apply");
    *state = p;
    return 0;
fail:
    plugin_free(p);
    return -1;
}

static void img_fini(void *state)
{
    plugin_free(state);
}

static int img_resolve(void *state, const sx_image_request *req, sx_image_choice *out,
                       sx_error *err)
{
    sx_img_plugin *p = state;
    if (req == NULL || out == NULL || !SX_HAS_FIELD(req, sx_image_request, user) ||
        !SX_HAS_FIELD(out, sx_image_choice, rule))
        return sx_error_set(err, "internal_error", "image catalog: request or choice too small");
    const sx_img_catalog *cat = sx_img_store_acquire(p->store);
    int rc = sx_img_resolve(&p->rules, cat, req, out, err);
    sx_img_store_release(p->store, cat);
    return rc;
}

static cJSON *string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *list_json(const sx_strlist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
    return a;
}

static cJSON *entry_json(const sx_img_plugin *p, const sx_img_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ref", e->name);
    cJSON_AddStringToObject(o, "image", e->image);
    cJSON_AddItemToObject(o, "pull_secret", string_or_null(e->pull_secret));
    cJSON_AddItemToObject(o, "pull_policy", string_or_null(e->pull_policy));
    cJSON_AddItemToObject(o, "description", string_or_null(e->description));
    cJSON_AddItemToObject(o, "tools", list_json(&e->tools));
    cJSON_AddItemToObject(o, "approved_by", string_or_null(e->approved_by));
    cJSON_AddItemToObject(o, "approved_at", string_or_null(e->approved_at));
    cJSON_AddNumberToObject(o, "line", e->line);
    const char *rule;
    sx_error why = {{0}, {0}};
    int ok = sx_img_rules_check(&p->rules, e->image, &rule, &why) == 0;
    cJSON_AddBoolToObject(o, "allowed", ok);
    if (ok)
        cJSON_AddItemToObject(o, "rule", string_or_null(rule));
    else
        cJSON_AddStringToObject(o, "refused", why.message);
    return o;
}

static char *img_describe(void *state)
{
    sx_img_plugin *p = state;
    cJSON *o = cJSON_CreateObject();
    cJSON *src = cJSON_AddObjectToObject(o, "source");
    cJSON_AddBoolToObject(src, "enabled", p->cat_cfg.enabled);
    cJSON_AddStringToObject(src, "file", p->cat_cfg.file);
    cJSON_AddItemToObject(src, "configmap_name", string_or_null(p->cat_cfg.configmap_name));
    cJSON_AddItemToObject(src, "configmap_namespace",
                          string_or_null(p->cat_cfg.configmap_namespace));
    cJSON_AddStringToObject(src, "watch", sx_img_watch_mode(p->watch));
    cJSON_AddNumberToObject(src, "reload_interval_ms", (double)p->cat_cfg.reload_interval_ms);

    const sx_img_catalog *cat = sx_img_store_acquire(p->store);
    if (cat) {
        cJSON_AddNumberToObject(o, "generation", (double)cat->generation);
        cJSON_AddStringToObject(o, "loaded_at", cat->loaded_at);
        cJSON_AddNumberToObject(o, "bytes", (double)cat->bytes);
        cJSON *entries = cJSON_AddArrayToObject(o, "entries");
        for (size_t i = 0; i < cat->n; i++)
            cJSON_AddItemToArray(entries, entry_json(p, &cat->entries[i]));
    } else {
        cJSON_AddNullToObject(o, "generation");
        cJSON_AddArrayToObject(o, "entries");
    }
    sx_img_store_release(p->store, cat);

    cJSON *reload = cJSON_AddObjectToObject(o, "reload");
    pthread_mutex_lock(&p->status_lock);
    cJSON_AddNumberToObject(reload, "reloads", (double)p->reloads);
    cJSON_AddNumberToObject(reload, "failures", (double)p->failures);
    cJSON_AddItemToObject(reload, "last_error", p->last_error[0]
                          ? cJSON_CreateString(p->last_error) : cJSON_CreateNull());
    cJSON_AddItemToObject(reload, "last_error_at", p->last_error_at[0]
                          ? cJSON_CreateString(p->last_error_at) : cJSON_CreateNull());
    pthread_mutex_unlock(&p->status_lock);

    cJSON *rules = cJSON_AddObjectToObject(o, "rules");
    cJSON_AddItemToObject(rules, "default_image", string_or_null(p->rules.default_image));
    cJSON_AddItemToObject(rules, "default_image_pull_secret",
                          string_or_null(p->rules.default_pull_secret));
    cJSON_AddItemToObject(rules, "default_image_pull_policy",
                          string_or_null(p->rules.default_pull_policy));
    cJSON_AddItemToObject(rules, "approved_images", list_json(&p->rules.approved));
    cJSON_AddItemToObject(rules, "blocked_images", list_json(&p->rules.blocked));
    cJSON_AddStringToObject(rules, "matching",
                            "glob: * matches any run of characters including '/', ? one "
                            "character; an image matches when any of its spellings does (as "
                            "written, fully qualified, with :latest, Docker Hub short form); "
                            "blocked wins over approved; an empty approved list allows every "
                            "image not blocked");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const sx_catalog_ops img_ops = {
    .struct_size = sizeof(sx_catalog_ops),
    .resolve = img_resolve,
    .describe = img_describe,
};

static const sx_plugin_descriptor img_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "image_catalog",
    .version = "0.1.0",
    .description = "image catalog: image_ref resolution, image defaults, approved/blocked "
                   "images, reload on file change",
    .kind = SX_KIND_IMAGE_CATALOG,
    .provides = "image.catalog",
    .init = img_init,
    .fini = img_fini,
    .ops = &img_ops,
};

SX_PLUGIN_DEFINE(img_descriptor)
