/* img_rules.c - defaults, approved/blocked rules and resolution (see img.h). */
#define _POSIX_C_SOURCE 200809L
#include "img.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

static int policy_ok(const char *p)
{
    return strcmp(p, "Always") == 0 || strcmp(p, "IfNotPresent") == 0 || strcmp(p, "Never") == 0;
}

/* "a, b, c" of a list into buf, shortened with "... (N more)" to fit. */
static void join_list(char *buf, size_t size, const char *const *v, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(v[i]) + (i ? 2 : 0);
        /* keep room for the "... (N more)" tail */
        if (used + need + 24 >= size) {
            snprintf(buf + used, size - used, "%s... (%zu more)", i ? ", " : "", n - i);
            return;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", v[i]);
    }
}

int sx_img_rules_validate(const sx_img_rules *r, sx_error *err)
{
    char where[64];
    for (size_t i = 0; i < r->approved.n; i++) {
        snprintf(where, sizeof where, "image.approved_images[%zu]", i);
        if (sx_img_glob_check(r->approved.v[i], where, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < r->blocked.n; i++) {
        snprintf(where, sizeof where, "image.blocked_images[%zu]", i);
        if (sx_img_glob_check(r->blocked.v[i], where, err) != 0)
            return -1;
    }
    if (r->default_pull_policy && !policy_ok(r->default_pull_policy))
        return sx_error_set(err, "invalid_config",
                            "image.default_image_pull_policy '%s' must be Always, IfNotPresent or "
                            "Never", r->default_pull_policy);
    if (r->default_image) {
        const char *rule;
        sx_error why = {{0}, {0}};
        if (sx_img_rules_check(r, r->default_image, &rule, &why) != 0)
            return sx_error_set(err, "invalid_config",
                                "image.default_image '%s' is refused by the image rules: %s",
                                r->default_image, why.message);
    }
    return 0;
}

int sx_img_rules_check(const sx_img_rules *r, const char *image, const char **rule, sx_error *err)
{
    *rule = NULL;
    sx_img_name name;
    if (sx_img_name_parse(image, &name, err) != 0)
        return -1;
    for (size_t i = 0; i < r->blocked.n; i++)
        if (sx_img_name_matches(&name, r->blocked.v[i]))
            return sx_error_set(err, "image_not_allowed",
                                "image '%s' matches blocked pattern '%s' "
                                "(image.blocked_images[%zu]); blocked patterns win over approved "
                                "ones", image, r->blocked.v[i], i);
    if (r->approved.n == 0)
        return 0;
    for (size_t i = 0; i < r->approved.n; i++) {
        if (sx_img_name_matches(&name, r->approved.v[i])) {
            *rule = r->approved.v[i];
            return 0;
        }
    }
    char list[640];
    join_list(list, sizeof list, (const char *const *)r->approved.v, r->approved.n);
    return sx_error_set(err, "image_not_allowed",
                        "image '%s' matches no pattern of image.approved_images (%s)", image,
                        list);
}

/* The first entry whose image is `image` (any spelling equal), or NULL. */
static const sx_img_entry *entry_of_image(const sx_img_catalog *cat, const char *image)
{
    if (cat == NULL)
        return NULL;
    sx_img_name want;
    if (sx_img_name_parse(image, &want, NULL) != 0)
        return NULL;
    for (size_t i = 0; i < cat->n; i++) {
        sx_img_name have;
        if (sx_img_name_parse(cat->entries[i].image, &have, NULL) == 0 &&
            strcmp(have.canonical, want.canonical) == 0)
            return &cat->entries[i];
    }
    return NULL;
}

static int unknown_ref(const sx_img_catalog *cat, const char *ref, sx_error *err)
{
    if (cat == NULL)
        return sx_error_set(err, "unknown_image_ref",
                            "image_ref '%s' cannot be resolved: the image catalog is disabled "
                            "(image.catalog.enabled: false); name an image instead", ref);
    if (cat->n == 0)
        return sx_error_set(err, "unknown_image_ref",
                            "image_ref '%s' is not in the image catalog (%s), which is empty", ref,
                            cat->source);
    const char **names = malloc(cat->n * sizeof *names);
    char list[700] = "";
    if (names) {
        for (size_t i = 0; i < cat->n; i++)
            names[i] = cat->entries[i].name;
        join_list(list, sizeof list, names, cat->n);
        free(names);
    }
    return sx_error_set(err, "unknown_image_ref",
                        "image_ref '%s' is not in the image catalog (%s); known refs: %s", ref,
                        cat->source, list);
}

static char *dup_or_null(const char *s, int *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

int sx_img_resolve(const sx_img_rules *r, const sx_img_catalog *cat,
                   const sx_image_request *req, sx_image_choice *out, sx_error *err)
{
    const sx_img_entry *entry = NULL;
    const char *image;
    if (req->image_ref) {
        if (req->image)
            return sx_error_set(err, "invalid_parameter",
                                "with.image ('%s') and with.image_ref ('%s') are both set: name "
                                "the image one way", req->image, req->image_ref);
        entry = cat ? sx_img_catalog_find(cat, req->image_ref) : NULL;
        if (entry == NULL)
            return unknown_ref(cat, req->image_ref, err);
        image = entry->image;
    } else if (req->image) {
        image = req->image;
        entry = entry_of_image(cat, image);
    } else {
        image = r->default_image;
    }
    const char *secret = req->pull_secret ? req->pull_secret
                       : entry && entry->pull_secret ? entry->pull_secret
                       : r->default_pull_secret;
    const char *policy = req->pull_policy ? req->pull_policy
                       : entry && entry->pull_policy ? entry->pull_policy
                       : r->default_pull_policy;
    if (policy && !policy_ok(policy))
        return sx_error_set(err, "invalid_parameter",
                            "with.image_pull_policy '%s' must be Always, IfNotPresent or Never",
                            policy);
    const char *rule = NULL;
    if (image && sx_img_rules_check(r, image, &rule, err) != 0) {
        if (entry && req->image_ref) {
            /* say where the image came from */
            sx_error why = *err;
            sx_error_set(err, why.code, "image_ref '%s' (catalog entry, line %d): %s",
                         req->image_ref, entry->line, why.message);
        }
        return -1;
    }
    int oom = 0;
    out->image = dup_or_null(image, &oom);
    out->pull_secret = dup_or_null(secret, &oom);
    out->pull_policy = dup_or_null(policy, &oom);
    out->ref = dup_or_null(entry ? entry->name : NULL, &oom);
    out->rule = dup_or_null(rule, &oom);
    if (oom) {
        free(out->image), free(out->pull_secret), free(out->pull_policy);
        free(out->ref), free(out->rule);
        out->image = out->pull_secret = out->pull_policy = out->ref = out->rule = NULL;
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    return 0;
}
