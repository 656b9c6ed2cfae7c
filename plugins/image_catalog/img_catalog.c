/*
 * img_catalog.c - the catalog file (see img.h).
 *
 * The YAML is read with the host's own config module (host/config.c,
 * linked into the plugin statically and hidden by the plugin's version
 * script): the same strictness as the config file, for free - duplicate
 * keys, anchors/aliases and several documents are refused, and every error
 * names a path and a line.
 */
#define _POSIX_C_SOURCE 200809L
#include "img.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "sx/sx_util.h"

#define CATALOG_MAX_BYTES (4 * 1024 * 1024)
#define REF_MAX 128

typedef struct entry_fields {
    char *image;
    char *pull_secret;
    char *pull_policy;
    char *description;
    sx_strlist tools;
    char *approved_by;
    char *approved_at;
} entry_fields;

#define EOPT(type, name, flags, field, desc) \
    {type, name, NULL, flags, offsetof(entry_fields, field), desc}
static const sx_option entry_options[] = {
    EOPT(SX_OPT_STRING, "image", SX_OPT_REQUIRED, image, "full image reference"),
    EOPT(SX_OPT_STRING, "pull_secret", 0, pull_secret, "imagePullSecret / local store secret name"),
    EOPT(SX_OPT_STRING, "pull_policy", 0, pull_policy, "Always | IfNotPresent | Never"),
    EOPT(SX_OPT_STRING, "description", 0, description, "what the image is for"),
    EOPT(SX_OPT_STRLIST, "tools", 0, tools, "tools the image provides"),
    EOPT(SX_OPT_STRING, "approved_by", 0, approved_by, "who approved the image"),
    EOPT(SX_OPT_STRING, "approved_at", 0, approved_at, "when (ISO 8601)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

void sx_img_sig_read(const char *path, sx_img_sig *sig)
{
    memset(sig, 0, sizeof *sig);
    struct stat st;
    if (path == NULL || stat(path, &st) != 0)
        return;
    sig->exists = 1;
    sig->dev = (uint64_t)st.st_dev;
    sig->ino = (uint64_t)st.st_ino;
    sig->size = (int64_t)st.st_size;
    sig->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    sig->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

int sx_img_sig_equal(const sx_img_sig *a, const sx_img_sig *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void entry_clear(sx_img_entry *e)
{
    free(e->name);
    free(e->image);
    free(e->pull_secret);
    free(e->pull_policy);
    free(e->description);
    sx_strlist_clear(&e->tools);
    free(e->approved_by);
    free(e->approved_at);
}

void sx_img_catalog_free(sx_img_catalog *cat)
{
    if (cat == NULL)
        return;
    for (size_t i = 0; i < cat->n; i++)
        entry_clear(&cat->entries[i]);
    free(cat->entries);
    free(cat->source);
    free(cat);
}

const sx_img_entry *sx_img_catalog_find(const sx_img_catalog *cat, const char *ref)
{
    for (size_t i = 0; cat && ref && i < cat->n; i++)
        if (strcmp(cat->entries[i].name, ref) == 0)
            return &cat->entries[i];
    return NULL;
}

static int ref_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REF_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* One entry: the map `node` under key `ref`.  Fills e (zeroed) or fails. */
static int parse_entry(const char *name, const char *ref, const sx_config_node *node,
                       sx_img_entry *e, sx_error *err)
{
    int line = sx_cfg_line(node);
    if (!ref_ok(ref))
        return sx_error_set(err, "invalid_config",
                            "%s: line %d: image_ref '%.64s' must be 1-%d letters, digits, '.', '_' "
                            "or '-'", name, line, ref, REF_MAX);
    if (sx_cfg_kind(node) != SX_CFG_MAP)
        return sx_error_set(err, "invalid_config",
                            "%s: line %d: entry '%s' must be a map with at least 'image'", name,
                            line, ref);
    entry_fields f = {0};
    sx_error why = {{0}, {0}};
    if (sx_cfg_apply(node, entry_options, &f, &why) != 0) {
        sx_cfg_options_free(entry_options, &f);
        return sx_error_set(err, "invalid_config", "%s: %s", name, why.message);
    }
    sx_img_name parsed;
    if (sx_img_name_parse(f.image, &parsed, &why) != 0) {
        sx_cfg_options_free(entry_options, &f);
        return sx_error_set(err, "invalid_config", "%s: line %d: entry '%s': %s", name, line,
                            ref, why.message);
    }
    if (f.pull_policy && strcmp(f.pull_policy, "Always") != 0 &&
        strcmp(f.pull_policy, "IfNotPresent") != 0 && strcmp(f.pull_policy, "Never") != 0) {
        sx_error_set(err, "invalid_config",
                     "%s: line %d: entry '%s': pull_policy '%s' must be Always, IfNotPresent or "
                     "Never", name, line, ref, f.pull_policy);
        sx_cfg_options_free(entry_options, &f);
        return -1;
    }
    e->name = strdup(ref);
    if (e->name == NULL) {
        sx_cfg_options_free(entry_options, &f);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    /* the option table's allocations become the entry's */
    e->image = f.image;
    e->pull_secret = f.pull_secret;
    e->pull_policy = f.pull_policy;
    e->description = f.description;
    e->tools = f.tools;
    e->approved_by = f.approved_by;
    e->approved_at = f.approved_at;
    e->line = line;
    return 0;
}

/* A ConfigMap manifest: its data."catalog.yaml" text, else NULL. */
static const char *configmap_catalog(const sx_config_node *root, const char *name, int *is_cm,
                                     sx_error *err)
{
    *is_cm = 0;
    const char *kind = sx_cfg_scalar(sx_cfg_get(root, "kind"));
    if (kind == NULL || strcmp(kind, "ConfigMap") != 0 ||
        sx_cfg_scalar(sx_cfg_get(root, "apiVersion")) == NULL)
        return NULL;
    *is_cm = 1;
    const sx_config_node *text = sx_cfg_get(sx_cfg_get(root, "data"), "catalog.yaml");
    if (sx_cfg_kind(text) != SX_CFG_SCALAR) {
        sx_error_set(err, "invalid_config",
                     "%s: a ConfigMap manifest without data.\"catalog.yaml\" (the key the "
                     "image catalog reads)", name);
        return NULL;
    }
    return sx_cfg_scalar(text);
}

int sx_img_catalog_parse(const char *yaml, const char *name, sx_img_catalog **out, sx_error *err)
{
    *out = NULL;
    sx_config_node *root = NULL, *inner = NULL;
    if (sx_cfg_load_string(yaml, name, &root, err) != 0)
        return -1;
    int is_cm;
    const char *text = configmap_catalog(root, name, &is_cm, err);
    const sx_config_node *map = root;
    char inner_name[600];
    if (is_cm) {
        if (text == NULL) {
            sx_cfg_free(root);
            return -1;
        }
        snprintf(inner_name, sizeof inner_name, "%s (data.\"catalog.yaml\")", name);
        if (sx_cfg_load_string(text, inner_name, &inner, err) != 0) {
            sx_cfg_free(root);
            return -1;
        }
        map = inner;
        name = inner_name;
    }
    sx_img_catalog *cat = calloc(1, sizeof *cat);
    size_t n = sx_cfg_len(map);
    int rc = -1;
    if (cat == NULL || (cat->entries = calloc(n ? n : 1, sizeof *cat->entries)) == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (parse_entry(name, sx_cfg_key_at(map, i), sx_cfg_at(map, i), &cat->entries[i],
                        err) != 0)
            goto out;
        cat->n++;
    }
    cat->source = strdup(name);
    if (cat->source == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    cat->bytes = (int64_t)strlen(yaml);
    sx_time_utc(cat->loaded_at, sizeof cat->loaded_at, 3);
    atomic_init(&cat->refs, 0);
    *out = cat;
    cat = NULL;
    rc = 0;
out:
    sx_img_catalog_free(cat);
    sx_cfg_free(inner);
    sx_cfg_free(root);
    return rc;
}

int sx_img_catalog_load(const char *path, sx_img_catalog **out, sx_error *err)
{
    *out = NULL;
    sx_img_sig sig;
    sx_img_sig_read(path, &sig);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sx_error_set(err, "invalid_config", "image catalog %s: cannot open: %s", path,
                            strerror(errno));
    char *buf = malloc(CATALOG_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    size_t len = fread(buf, 1, CATALOG_MAX_BYTES + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return sx_error_set(err, "invalid_config", "image catalog %s: read error", path);
    }
    if (len > CATALOG_MAX_BYTES) {
        free(buf);
        return sx_error_set(err, "invalid_config", "image catalog %s is larger than %d bytes",
                            path, CATALOG_MAX_BYTES);
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        free(buf);
        return sx_error_set(err, "invalid_config",
                            "image catalog %s contains a NUL byte: not a YAML text file", path);
    }
    int rc = sx_img_catalog_parse(buf, path, out, err);
    free(buf);
    if (rc == 0)
        (*out)->sig = sig;
    return rc;
}
