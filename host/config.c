/*
 * config.c - the host's YAML configuration tree (see config.h).
 *
 * The file is read with libyaml's event API and turned into a tree of
 * sx_config_node by a small recursive-descent builder.  Every node keeps the
 * 1-based line of its start mark and its dotted path, computed while
 * building, so later errors (sx_cfg_apply) can name both without access to
 * the parser.  The builder refuses what would make a config ambiguous:
 * duplicate keys, aliases/anchors, several documents, non-scalar keys.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "sx/sx_util.h"

#define CFG_ERROR "invalid_config"

/* Deeper nesting than this is refused, so that hostile input cannot
 * exhaust the stack of the recursive builder. */
#define CFG_MAX_DEPTH 64

/* How many characters of an offending scalar an error message quotes. */
#define CFG_QUOTE_MAX 40

struct sx_config_node {
    sx_config_kind kind;
    int line;                 /* 1-based line of the node's start mark */
    int is_null;              /* plain untagged "", "~", "null" or !!null */
    char *path;               /* "" for the root */
    char *text;               /* SX_CFG_SCALAR: the scalar's text */
    size_t len;               /* sequence items or map pairs */
    size_t cap;
    sx_config_node **items;   /* sequence items, or map values */
    char **keys;              /* SX_CFG_MAP: keys, parallel to items */
    int *key_lines;           /* SX_CFG_MAP: line of each key */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* printf into a fresh malloc'ed string; NULL on failure. */
static char *str_printf(const char *fmt, ...) SX_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Path of the value under `key` in the map at `path`. */
static char *path_key(const char *path, const char *key)
{
    if (path == NULL || *path == '\0')
        return strdup(key);
    return str_printf("%s.%s", path, key);
}

/* Human-readable place for messages: the root's path is empty. */
static const char *path_show(const char *path)
{
    return (path == NULL || *path == '\0') ? "the top level" : path;
}

static int mark_line(yaml_mark_t mark)
{
    return mark.line >= (size_t)0x7fffffff ? 0x7fffffff : (int)mark.line + 1;
}

static const char *kind_name(sx_config_kind kind)
{
    switch (kind) {
    case SX_CFG_SCALAR: return "a scalar";
    case SX_CFG_SEQUENCE: return "a sequence";
    case SX_CFG_MAP: return "a map";
    default: return "nothing";
    }
}

/* Describe what a node is, for "expected X, found Y" messages.  Scalars are
 * quoted (shortened) since their text is what the user has to fix. */
static void describe_found(const sx_config_node *node, char *buf, size_t size)
{
    if (node == NULL) {
        snprintf(buf, size, "nothing");
    } else if (node->kind != SX_CFG_SCALAR) {
        snprintf(buf, size, "%s", kind_name(node->kind));
    } else if (node->is_null) {
        snprintf(buf, size, "null");
    } else if (strlen(node->text) > CFG_QUOTE_MAX) {
        snprintf(buf, size, "'%.*s...'", CFG_QUOTE_MAX, node->text);
    } else {
        snprintf(buf, size, "'%s'", node->text);
    }
}

static int is_null_scalar(const yaml_event_t *ev)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag != NULL)
        return strcmp(tag, YAML_NULL_TAG) == 0;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* ------------------------------------------------------------------ */
/* Nodes                                                                */
/* ------------------------------------------------------------------ */

static sx_config_node *node_new(sx_config_kind kind, int line, char *path)
{
    sx_config_node *node = calloc(1, sizeof *node);
    if (node == NULL) {
        free(path);
        return NULL;
    }
    node->kind = kind;
    node->line = line;
    node->path = path;
    return node;
}

void sx_cfg_free(sx_config_node *node)
{
    if (node == NULL)
        return;
    for (size_t i = 0; i < node->len; i++) {
        sx_cfg_free(node->items[i]);
        if (node->keys != NULL)
            free(node->keys[i]);
    }
    free(node->items);
    free(node->keys);
    free(node->key_lines);
    free(node->text);
    free(node->path);
    free(node);
}

/* Append a child (and, for maps, its key, whose ownership passes too).
 * On failure nothing is taken over. */
static int node_append(sx_config_node *node, sx_config_node *child,
                       char *key, int key_line)
{
    if (node->len == node->cap) {
        size_t cap = node->cap ? node->cap * 2 : 4;
        sx_config_node **items = realloc(node->items, cap * sizeof *items);
        if (items == NULL)
            return -1;
        node->items = items;
        if (node->kind == SX_CFG_MAP) {
            char **keys = realloc(node->keys, cap * sizeof *keys);
            if (keys == NULL)
                return -1;
            node->keys = keys;
            int *lines = realloc(node->key_lines, cap * sizeof *lines);
            if (lines == NULL)
                return -1;
            node->key_lines = lines;
        }
        node->cap = cap;
    }
    node->items[node->len] = child;
    if (node->kind == SX_CFG_MAP) {
        node->keys[node->len] = key;
        node->key_lines[node->len] = key_line;
    }
    node->len++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                              */
/* ------------------------------------------------------------------ */

typedef struct parse_ctx {
    yaml_parser_t parser;
    const char *name;   /* file name or caller-supplied label */
    sx_error *err;
} parse_ctx;

/* "<name>: line N: <message>" */
static int parse_fail(parse_ctx *ctx, int line, const char *fmt, ...)
    SX_PRINTF(3, 4);
static int parse_fail(parse_ctx *ctx, int line, const char *fmt, ...)
{
    char msg[SX_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        return sx_error_set(ctx->err, CFG_ERROR, "%s: line %d: %s", ctx->name,
                            line, msg);
    return sx_error_set(ctx->err, CFG_ERROR, "%s: %s", ctx->name, msg);
}

static int parse_oom(parse_ctx *ctx)
{
    return parse_fail(ctx, 0, "out of memory");
}

/* Quote libyaml's own diagnosis: its problem, where, and its context. */
static int parser_fail(parse_ctx *ctx)
{
    const yaml_parser_t *p = &ctx->parser;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR)
        return parse_oom(ctx);
    if (p->error == YAML_READER_ERROR)
        return parse_fail(ctx, 0, "%s at byte offset %zu", problem,
                          p->problem_offset);
    char context[256] = "";
    if (p->context != NULL)
        snprintf(context, sizeof context, " (%s, started at line %d)",
                 p->context, mark_line(p->context_mark));
    return parse_fail(ctx, mark_line(p->problem_mark), "%s at column %zu%s",
                      problem, p->problem_mark.column + 1, context);
}

/* Next event, refusing aliases and anchors right away.  On success the
 * caller owns *ev and must yaml_event_delete() it. */
static int next_event(parse_ctx *ctx, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ctx->parser, ev))
        return parser_fail(ctx);
    const yaml_char_t *anchor = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        int line = mark_line(ev->start_mark);
        char name[64];
        snprintf(name, sizeof name, "%s", (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return parse_fail(ctx, line, "aliases are not allowed (*%s)", name);
    }
    case YAML_SCALAR_EVENT: anchor = ev->data.scalar.anchor; break;
    case YAML_SEQUENCE_START_EVENT: anchor = ev->data.sequence_start.anchor; break;
    case YAML_MAPPING_START_EVENT: anchor = ev->data.mapping_start.anchor; break;
    default: break;
    }
    if (anchor != NULL) {
        int line = mark_line(ev->start_mark);
        char name[64];
        snprintf(name, sizeof name, "%s", (const char *)anchor);
        yaml_event_delete(ev);
        return parse_fail(ctx, line, "anchors are not allowed (&%s)", name);
    }
    return 0;
}

static int parse_node(parse_ctx *ctx, yaml_event_t *ev, char *path, int depth,
                      sx_config_node **out);

/* Items of a sequence, up to its end event. */
static int parse_sequence_items(parse_ctx *ctx, sx_config_node *seq, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(ctx, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        char *path = str_printf("%s[%zu]", seq->path, seq->len);
        if (path == NULL) {
            yaml_event_delete(&ev);
            return parse_oom(ctx);
        }
        sx_config_node *child;
        if (parse_node(ctx, &ev, path, depth + 1, &child) != 0)
            return -1;
        if (node_append(seq, child, NULL, 0) != 0) {
            sx_cfg_free(child);
            return parse_oom(ctx);
        }
    }
}

/* Key/value pairs of a map, up to its end event. */
static int parse_map_pairs(parse_ctx *ctx, sx_config_node *map, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(ctx, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        int key_line = mark_line(ev.start_mark);
        if (ev.type != YAML_SCALAR_EVENT) {
            const char *what = ev.type == YAML_MAPPING_START_EVENT
                                   ? "a map" : "a sequence";
            yaml_event_delete(&ev);
            return parse_fail(ctx, key_line,
                              "map keys must be scalars, found %s as a key in %s",
                              what, path_show(map->path));
        }
        if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length) {
            yaml_event_delete(&ev);
            return parse_fail(ctx, key_line, "key in %s contains a NUL character",
                              path_show(map->path));
        }
        char *key = strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (key == NULL)
            return parse_oom(ctx);
        for (size_t i = 0; i < map->len; i++) {
            if (strcmp(map->keys[i], key) == 0) {
                parse_fail(ctx, key_line,
                           "duplicate key '%s' in %s (first at line %d, again at line %d)",
                           key, path_show(map->path), map->key_lines[i], key_line);
                free(key);
                return -1;
            }
        }
        char *path = path_key(map->path, key);
        if (path == NULL) {
            free(key);
            return parse_oom(ctx);
        }
        if (next_event(ctx, &ev) != 0) {
            free(path);
            free(key);
            return -1;
        }
        sx_config_node *child;
        if (parse_node(ctx, &ev, path, depth + 1, &child) != 0) {
            free(key);
            return -1;
        }
        if (node_append(map, child, key, key_line) != 0) {
            sx_cfg_free(child);
            free(key);
            return parse_oom(ctx);
        }
    }
}

/* Build the node that starts with *ev (a scalar, sequence-start or
 * mapping-start event).  Takes ownership of *ev and of path. */
static int parse_node(parse_ctx *ctx, yaml_event_t *ev, char *path, int depth,
                      sx_config_node **out)
{
    *out = NULL;
    int line = mark_line(ev->start_mark);
    yaml_event_type_t type = ev->type;

    if (depth > CFG_MAX_DEPTH) {
        yaml_event_delete(ev);
        free(path);
        return parse_fail(ctx, line, "nesting deeper than %d levels",
                          CFG_MAX_DEPTH);
    }

    if (type == YAML_SCALAR_EVENT) {
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            yaml_event_delete(ev);
            parse_fail(ctx, line, "value of %s contains a NUL character",
                       path_show(path));
            free(path);
            return -1;
        }
        sx_config_node *node = node_new(SX_CFG_SCALAR, line, path);
        if (node == NULL) {
            yaml_event_delete(ev);
            return parse_oom(ctx);
        }
        node->is_null = is_null_scalar(ev);
        node->text = strdup((const char *)ev->data.scalar.value);
        yaml_event_delete(ev);
        if (node->text == NULL) {
            sx_cfg_free(node);
            return parse_oom(ctx);
        }
        *out = node;
        return 0;
    }

    yaml_event_delete(ev);
    if (type != YAML_SEQUENCE_START_EVENT && type != YAML_MAPPING_START_EVENT) {
        /* Cannot happen with a well-behaved libyaml. */
        free(path);
        return parse_fail(ctx, line, "unexpected YAML event %d", (int)type);
    }
    sx_config_node *node = node_new(
        type == YAML_MAPPING_START_EVENT ? SX_CFG_MAP : SX_CFG_SEQUENCE, line, path);
    if (node == NULL)
        return parse_oom(ctx);
    int rc = node->kind == SX_CFG_MAP ? parse_map_pairs(ctx, node, depth)
                                      : parse_sequence_items(ctx, node, depth);
    if (rc != 0) {
        sx_cfg_free(node);
        return -1;
    }
    *out = node;
    return 0;
}

/* Parse a one-document stream.  With `map_only` the top level must be a
 * map and an empty stream is an error; otherwise any top level is accepted
 * and an empty stream yields *root == NULL (used for option defaults). */
static int parse_stream(const char *data, size_t len, const char *name,
                        int map_only, sx_config_node **root, sx_error *err)
{
    *root = NULL;
    parse_ctx ctx = { .name = name ? name : "<string>", .err = err };
    if (!yaml_parser_initialize(&ctx.parser))
        return parse_oom(&ctx);
    yaml_parser_set_input_string(&ctx.parser, (const unsigned char *)data, len);

    sx_config_node *node = NULL;
    yaml_event_t ev;
    int rc = -1;

    if (next_event(&ctx, &ev) != 0)          /* STREAM-START */
        goto out;
    yaml_event_delete(&ev);
    if (next_event(&ctx, &ev) != 0)          /* DOCUMENT-START or STREAM-END */
        goto out;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        if (map_only) {
            parse_fail(&ctx, 0, "empty configuration (no YAML document)");
            goto out;
        }
        rc = 0;
        goto out;
    }
    yaml_event_delete(&ev);

    if (next_event(&ctx, &ev) != 0)          /* the top-level node */
        goto out;
    if (map_only && ev.type != YAML_MAPPING_START_EVENT) {
        int line = mark_line(ev.start_mark);
        int empty = ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev);
        const char *what = ev.type == YAML_SEQUENCE_START_EVENT ? "a sequence"
                                                                : "a scalar";
        yaml_event_delete(&ev);
        if (empty)
            parse_fail(&ctx, line, "empty configuration (the document is null)");
        else
            parse_fail(&ctx, line, "the top level must be a map, found %s", what);
        goto out;
    }
    char *path = strdup("");
    if (path == NULL) {
        yaml_event_delete(&ev);
        parse_oom(&ctx);
        goto out;
    }
    if (parse_node(&ctx, &ev, path, 0, &node) != 0)
        goto out;

    if (next_event(&ctx, &ev) != 0)          /* DOCUMENT-END */
        goto out;
    yaml_event_delete(&ev);
    if (next_event(&ctx, &ev) != 0)          /* STREAM-END, or another doc */
        goto out;
    if (ev.type != YAML_STREAM_END_EVENT) {
        int line = mark_line(ev.start_mark);
        yaml_event_delete(&ev);
        parse_fail(&ctx, line, "more than one YAML document");
        goto out;
    }
    yaml_event_delete(&ev);
    *root = node;
    node = NULL;
    rc = 0;
out:
    sx_cfg_free(node);
    yaml_parser_delete(&ctx.parser);
    return rc;
}

int sx_cfg_load_string(const char *yaml, const char *name, sx_config_node **root,
                       sx_error *err)
{
    if (root == NULL)
        return sx_error_set(err, CFG_ERROR, "sx_cfg_load_string: root is NULL");
    *root = NULL;
    if (yaml == NULL)
        return sx_error_set(err, CFG_ERROR, "%s: no YAML text",
                            name ? name : "<string>");
    return parse_stream(yaml, strlen(yaml), name, 1, root, err);
}

int sx_cfg_load_file(const char *path, sx_config_node **root, sx_error *err)
{
    if (root == NULL)
        return sx_error_set(err, CFG_ERROR, "sx_cfg_load_file: root is NULL");
    *root = NULL;
    if (path == NULL)
        return sx_error_set(err, CFG_ERROR, "no config file given");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sx_error_set(err, CFG_ERROR, "cannot open config file '%s': %s",
                            path, strerror(errno));
    /* Read it whole: configs are small, and the parser then works on a
     * buffer whose length it knows. */
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int rc = -1;
    if (buf == NULL) {
        sx_error_set(err, CFG_ERROR, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                sx_error_set(err, CFG_ERROR, "%s: out of memory", path);
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        sx_error_set(err, CFG_ERROR, "cannot read config file '%s': %s", path,
                     strerror(errno));
        goto out;
    }
    rc = parse_stream(buf, len, path, 1, root, err);
out:
    free(buf);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Read access                                                          */
/* ------------------------------------------------------------------ */

sx_config_kind sx_cfg_kind(const sx_config_node *node)
{
    return node ? node->kind : SX_CFG_NONE;
}

const char *sx_cfg_scalar(const sx_config_node *node)
{
    return (node && node->kind == SX_CFG_SCALAR) ? node->text : NULL;
}

size_t sx_cfg_len(const sx_config_node *node)
{
    return node ? node->len : 0;
}

const sx_config_node *sx_cfg_at(const sx_config_node *node, size_t i)
{
    return (node && i < node->len) ? node->items[i] : NULL;
}

const char *sx_cfg_key_at(const sx_config_node *node, size_t i)
{
    return (node && node->kind == SX_CFG_MAP && i < node->len) ? node->keys[i]
                                                               : NULL;
}

/* Index of `key` in map `map`, or -1. */
static long map_find(const sx_config_node *map, const char *key)
{
    if (map == NULL || map->kind != SX_CFG_MAP || key == NULL)
        return -1;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i], key) == 0)
            return (long)i;
    return -1;
}

const sx_config_node *sx_cfg_get(const sx_config_node *map, const char *key)
{
    long i = map_find(map, key);
    return i < 0 ? NULL : map->items[i];
}

int sx_cfg_line(const sx_config_node *node)
{
    return node ? node->line : 0;
}

const char *sx_cfg_path(const sx_config_node *node)
{
    return node ? node->path : "";
}

int sx_cfg_parse_bool(const char *text, int *value)
{
    static const char *const truths[] = { "true", "yes", "on" };
    static const char *const falsehoods[] = { "false", "no", "off" };
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof truths / sizeof truths[0]; i++) {
        if (strcasecmp(text, truths[i]) == 0) {
            if (value)
                *value = 1;
            return 0;
        }
        if (strcasecmp(text, falsehoods[i]) == 0) {
            if (value)
                *value = 0;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Option tables                                                        */
/* ------------------------------------------------------------------ */

static void *field_at(void *dst, const sx_option *opt)
{
    return (char *)dst + opt->offset;
}

/* Zero an option's field (without freeing what it holds). */
static void field_zero(void *dst, const sx_option *opt)
{
    void *f = field_at(dst, opt);
    switch (opt->type) {
    case SX_OPT_STRING: *(char **)f = NULL; break;
    case SX_OPT_INT:
    case SX_OPT_DURATION:
    case SX_OPT_SIZE: *(int64_t *)f = 0; break;
    case SX_OPT_BOOL: *(int *)f = 0; break;
    case SX_OPT_STRLIST: memset(f, 0, sizeof(sx_strlist)); break;
    case SX_OPT_STRMAP: memset(f, 0, sizeof(sx_strmap)); break;
    case SX_OPT_NODE: *(const sx_config_node **)f = NULL; break;
    default: break;
    }
}

void sx_cfg_options_free(const sx_option *options, void *dst)
{
    if (options == NULL || dst == NULL)
        return;
    for (const sx_option *opt = options; opt->type != SX_OPT_END; opt++) {
        void *f = field_at(dst, opt);
        switch (opt->type) {
        case SX_OPT_STRING:
            free(*(char **)f);
            *(char **)f = NULL;
            break;
        case SX_OPT_STRLIST: sx_strlist_clear(f); break;
        case SX_OPT_STRMAP: sx_strmap_clear(f); break;
        case SX_OPT_NODE: *(const sx_config_node **)f = NULL; break;
        default: break;
        }
    }
}

static const char *expected_text(sx_option_type type)
{
    switch (type) {
    case SX_OPT_STRING: return "a string";
    case SX_OPT_INT: return "an integer";
    case SX_OPT_BOOL: return "a boolean (true/false, yes/no, on/off)";
    case SX_OPT_DURATION: return "a duration (e.g. 250ms, 30s, 5m, 1h30m)";
    case SX_OPT_SIZE: return "a size (e.g. 1048576, 64Ki, 10Mi, 5MB)";
    case SX_OPT_STRLIST: return "a sequence of strings";
    case SX_OPT_STRMAP: return "a map of strings";
    case SX_OPT_NODE: return "a node";
    default: return "a value";
    }
}

/* "<where>: expected X, found Y" */
static int type_fail(sx_error *err, const char *where, const char *expected,
                     const sx_config_node *found)
{
    char what[CFG_QUOTE_MAX + 16];
    describe_found(found, what, sizeof what);
    return sx_error_set(err, CFG_ERROR, "%s: expected %s, found %s", where,
                        expected, what);
}

/* Strict base-10 int64: optional sign, digits only, no overflow. */
static int parse_int64(const char *text, int64_t *out)
{
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1;                      /* also rejects "", " 1", "+" */
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* The text of a non-null scalar, or NULL. */
static const char *scalar_text(const sx_config_node *v)
{
    return (v && v->kind == SX_CFG_SCALAR && !v->is_null) ? v->text : NULL;
}

/* Where an item of a list/map value is, for messages: its own path and
 * line in the file, or, for a default value (whose tree has no meaningful
 * paths), the default's description plus the item's path within it. */
static void item_place(char *buf, size_t size, const char *where,
                       int is_default, const sx_config_node *item, int line)
{
    if (is_default)
        snprintf(buf, size, "%s, item %s", where, item->path);
    else
        snprintf(buf, size, "%s (line %d)", item->path, line);
}

/* Store value node `v` (non-NULL, not a null counting as absent) into the
 * field of `opt`.  `where` names the value in messages.  The field is zero
 * on entry; on failure it holds only what sx_cfg_options_free can free. */
static int store_value(const sx_option *opt, const sx_config_node *v,
                       const char *where, int is_default, void *dst,
                       sx_error *err)
{
    void *f = field_at(dst, opt);
    const char *text = scalar_text(v);
    const char *expected = expected_text(opt->type);

    switch (opt->type) {
    case SX_OPT_STRING: {
        if (text == NULL)
            return type_fail(err, where, expected, v);
        char *s = strdup(text);
        if (s == NULL)
            return sx_error_set(err, CFG_ERROR, "%s: out of memory", where);
        *(char **)f = s;
        return 0;
    }
    case SX_OPT_INT:
        if (text == NULL || parse_int64(text, (int64_t *)f) != 0)
            return type_fail(err, where, expected, v);
        return 0;
    case SX_OPT_BOOL:
        if (text == NULL || sx_cfg_parse_bool(text, (int *)f) != 0)
            return type_fail(err, where, expected, v);
        return 0;
    case SX_OPT_DURATION:
        if (text == NULL || sx_duration_parse(text, (int64_t *)f) != 0)
            return type_fail(err, where, expected, v);
        return 0;
    case SX_OPT_SIZE:
        if (text == NULL || sx_size_parse(text, (int64_t *)f) != 0)
            return type_fail(err, where, expected, v);
        return 0;
    case SX_OPT_STRLIST: {
        if (v->kind != SX_CFG_SEQUENCE)
            return type_fail(err, where, expected, v);
        sx_strlist *list = f;
        if (v->len == 0)
            return 0;
        list->v = calloc(v->len, sizeof *list->v);
        if (list->v == NULL)
            return sx_error_set(err, CFG_ERROR, "%s: out of memory", where);
        for (size_t i = 0; i < v->len; i++) {
            const sx_config_node *item = v->items[i];
            const char *t = scalar_text(item);
            if (t == NULL) {
                char item_where[SX_ERROR_MESSAGE_MAX / 2];
                item_place(item_where, sizeof item_where, where, is_default,
                           item, item->line);
                return type_fail(err, item_where, "a string", item);
            }
            if ((list->v[i] = strdup(t)) == NULL)
                return sx_error_set(err, CFG_ERROR, "%s: out of memory", where);
            list->n = i + 1;
        }
        return 0;
    }
    case SX_OPT_STRMAP: {
        if (v->kind != SX_CFG_MAP)
            return type_fail(err, where, expected, v);
        sx_strmap *map = f;
        if (v->len == 0)
            return 0;
        map->keys = calloc(v->len, sizeof *map->keys);
        map->values = calloc(v->len, sizeof *map->values);
        if (map->keys == NULL || map->values == NULL)
            return sx_error_set(err, CFG_ERROR, "%s: out of memory", where);
        for (size_t i = 0; i < v->len; i++) {
            const sx_config_node *item = v->items[i];
            const char *t = scalar_text(item);
            if (t == NULL) {
                char item_where[SX_ERROR_MESSAGE_MAX / 2];
                item_place(item_where, sizeof item_where, where, is_default,
                           item, v->key_lines[i]);
                return type_fail(err, item_where, "a string", item);
            }
            map->keys[i] = strdup(v->keys[i]);
            map->values[i] = strdup(t);
            /* Count the pair before checking, so a half-made one is freed. */
            map->n = i + 1;
            if (map->keys[i] == NULL || map->values[i] == NULL)
                return sx_error_set(err, CFG_ERROR, "%s: out of memory", where);
        }
        return 0;
    }
    case SX_OPT_NODE:
        *(const sx_config_node **)f = v;
        return 0;
    default:
        return sx_error_set(err, CFG_ERROR, "%s: unsupported option type %d",
                            where, (int)opt->type);
    }
}

/* Whether a null value stands for "absent" for this option type. */
static int null_is_absent(sx_option_type type)
{
    return type == SX_OPT_STRING || type == SX_OPT_STRLIST ||
           type == SX_OPT_STRMAP || type == SX_OPT_NODE;
}

/* Apply an option's default_value, parsed as YAML text. */
static int apply_default(const sx_option *opt, const char *map_path, void *dst,
                         sx_error *err)
{
    char where[SX_ERROR_MESSAGE_MAX / 2];
    snprintf(where, sizeof where, "default value of '%s' in %s", opt->name,
             path_show(map_path));
    if (opt->type == SX_OPT_NODE)
        return sx_error_set(err, CFG_ERROR,
                            "%s: options of type node cannot have a default",
                            where);
    sx_config_node *tree;
    sx_error perr;
    if (parse_stream(opt->default_value, strlen(opt->default_value), where, 0,
                     &tree, &perr) != 0)
        return sx_error_set(err, CFG_ERROR, "%s", perr.message);
    int rc = 0;
    /* An empty or null default means "no value". */
    if (tree != NULL && !(tree->kind == SX_CFG_SCALAR && tree->is_null &&
                          null_is_absent(opt->type)))
        rc = store_value(opt, tree, where, 1, dst, err);
    sx_cfg_free(tree);
    return rc;
}

/* Error for a key the table does not know, listing those it does. */
static int unknown_key_fail(const sx_config_node *map, size_t i,
                            const sx_option *options, sx_error *err)
{
    char known[SX_ERROR_MESSAGE_MAX / 2];
    size_t used = 0;
    known[0] = '\0';
    for (const sx_option *opt = options; opt && opt->type != SX_OPT_END; opt++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s",
                         used ? ", " : "", opt->name);
        if (n < 0 || (size_t)n >= sizeof known - used)
            break;                      /* truncated: the message stays valid */
        used += (size_t)n;
    }
    return sx_error_set(err, CFG_ERROR, "unknown key '%s' in %s (line %d); known keys: %s",
                        map->keys[i], path_show(map->path), map->key_lines[i],
                        used ? known : "(none)");
}

int sx_cfg_apply(const sx_config_node *node, const sx_option *options,
                 void *dst, sx_error *err)
{
    static const sx_option no_options[1];   /* just the terminator */
    if (options == NULL)
        options = no_options;
    if (dst == NULL)
        return sx_error_set(err, CFG_ERROR, "sx_cfg_apply: no destination");

    /* Start from a clean struct, so that whatever happens below every
     * field is either zero or owned by us (and freeable). */
    for (const sx_option *opt = options; opt->type != SX_OPT_END; opt++)
        field_zero(dst, opt);

    /* A section written as "key:" with nothing under it is a null scalar;
     * treat it like an absent section. */
    if (node != NULL && node->kind == SX_CFG_SCALAR && node->is_null)
        node = NULL;
    if (node != NULL && node->kind != SX_CFG_MAP) {
        char what[CFG_QUOTE_MAX + 16];
        describe_found(node, what, sizeof what);
        return sx_error_set(err, CFG_ERROR, "%s (line %d): expected a map, found %s",
                            path_show(node->path), node->line, what);
    }

    /* Unknown keys first: a typo is the likeliest mistake. */
    for (size_t i = 0; node != NULL && i < node->len; i++) {
        const sx_option *opt = options;
        while (opt->type != SX_OPT_END && strcmp(opt->name, node->keys[i]) != 0)
            opt++;
        if (opt->type == SX_OPT_END)
            return unknown_key_fail(node, i, options, err);
    }

    const char *map_path = node ? node->path : "";
    for (const sx_option *opt = options; opt->type != SX_OPT_END; opt++) {
        long i = map_find(node, opt->name);
        const sx_config_node *v = NULL;
        int key_line = 0;
        if (node != NULL && i >= 0) {
            v = node->items[i];
            key_line = node->key_lines[i];
        }
        int absent = v == NULL ||
                     (v->kind == SX_CFG_SCALAR && v->is_null &&
                      null_is_absent(opt->type));

        if (absent) {
            if (opt->flags & SX_OPT_REQUIRED) {
                if (v != NULL)
                    return sx_error_set(err, CFG_ERROR,
                                        "required key '%s' in %s (line %d) has no value",
                                        opt->name, path_show(map_path), key_line);
                if (node == NULL)
                    return sx_error_set(err, CFG_ERROR,
                                        "missing required key '%s' (no config section)",
                                        opt->name);
                return sx_error_set(err, CFG_ERROR,
                                    "missing required key '%s' in %s (line %d)",
                                    opt->name, path_show(map_path), node->line);
            }
            if (opt->default_value != NULL &&
                apply_default(opt, map_path, dst, err) != 0)
                return -1;
            continue;
        }
        char where[SX_ERROR_MESSAGE_MAX / 2];
        snprintf(where, sizeof where, "%s (line %d)", v->path, key_line);
        if (store_value(opt, v, where, 0, dst, err) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Copy                                                                 */
/* ------------------------------------------------------------------ */

static int key_listed(const char *key, const char *const *keys)
{
    for (size_t i = 0; keys && keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return 1;
    return 0;
}

/* Deep copy of `node`; at its top level, map keys in `skip` are left out. */
static sx_config_node *copy_node(const sx_config_node *node,
                                 const char *const *skip)
{
    char *path = strdup(node->path);
    if (path == NULL)
        return NULL;
    sx_config_node *copy = node_new(node->kind, node->line, path);
    if (copy == NULL)
        return NULL;
    copy->is_null = node->is_null;
    if (node->text != NULL && (copy->text = strdup(node->text)) == NULL)
        goto fail;
    for (size_t i = 0; i < node->len; i++) {
        char *key = NULL;
        if (node->kind == SX_CFG_MAP) {
            if (key_listed(node->keys[i], skip))
                continue;
            if ((key = strdup(node->keys[i])) == NULL)
                goto fail;
        }
        sx_config_node *child = copy_node(node->items[i], NULL);
        if (child == NULL) {
            free(key);
            goto fail;
        }
        if (node_append(copy, child, key,
                        node->key_lines ? node->key_lines[i] : 0) != 0) {
            sx_cfg_free(child);
            free(key);
            goto fail;
        }
    }
    return copy;
fail:
    sx_cfg_free(copy);
    return NULL;
}

sx_config_node *sx_cfg_copy_without(const sx_config_node *node,
                                    const char *const *keys)
{
    if (node == NULL)
        return NULL;
    return copy_node(node, keys);
}
