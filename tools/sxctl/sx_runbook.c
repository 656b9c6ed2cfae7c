/*
 * sx_runbook.c - YAML runbooks to JSON (see sx_runbook.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "sx_runbook.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_NODES 1000000u

typedef struct anchor {
    char *name;
    cJSON *copy;
} anchor;

/* Loader state for one document. */
typedef struct yl {
    yaml_parser_t parser;
    const char *name;
    char *err;
    size_t errlen;
    size_t nodes;
    anchor *anchors;
    size_t n_anchors;
} yl;

static void fail(yl *y, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(yl *y, const yaml_mark_t *mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (mark != NULL)
        snprintf(y->err, y->errlen, "%s:%zu: %s", y->name, mark->line + 1,
                 msg);
    else
        snprintf(y->err, y->errlen, "%s: %s", y->name, msg);
}

static int next_event(yl *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->parser, ev))
        return 0;
    fail(y, &y->parser.problem_mark, "invalid YAML: %s%s%s",
         y->parser.problem ? y->parser.problem : "parse error",
         y->parser.context ? " " : "",
         y->parser.context ? y->parser.context : "");
    return -1;
}

/* ---- scalars ------------------------------------------------------------ */

static int all_in(const char *s, const char *set)
{
    return *s != '\0' && s[strspn(s, set)] == '\0';
}

/* Integer with an explicit base ("ff" in base 16).  0 on overflow/junk. */
static cJSON *int_in_base(const char *digits, int base, int negative)
{
    unsigned long long v;
    char *end;
    char buf[32];

    errno = 0;
    v = strtoull(digits, &end, base);
    if (errno != 0 || *end != '\0' || *digits == '\0' || *digits == '-' ||
        *digits == '+')
        return NULL;
    snprintf(buf, sizeof(buf), "%s%llu", negative && v != 0 ? "-" : "", v);
    return cJSON_CreateRaw(buf);
}

/* YAML 1.2 core ints plus YAML 1.1 leading-zero octal and 0b binary.
 * Decimal ints are kept digit for digit (no double rounding). */
static cJSON *parse_int(const char *s)
{
    int negative = (*s == '-');
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;

    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X'))
        return all_in(d + 2, "0123456789abcdefABCDEF")
                   ? int_in_base(d + 2, 16, negative) : NULL;
    if (d[0] == '0' && d[1] == 'o')
        return all_in(d + 2, "01234567") ? int_in_base(d + 2, 8, negative)
                                         : NULL;
    if (d[0] == '0' && d[1] == 'b')
        return all_in(d + 2, "01") ? int_in_base(d + 2, 2, negative) : NULL;
    if (d[0] == '0' && d[1] != '\0')
        return all_in(d + 1, "01234567") ? int_in_base(d + 1, 8, negative)
                                         : NULL;
    if (!all_in(d, "0123456789"))
        return NULL;
    if (!negative || strcmp(d, "0") == 0)
        return cJSON_CreateRaw(d);
    return cJSON_CreateRaw(s);
}

/* [-+]? ( .digits | digits [. digits*] ) ([eE] [-+]? digits)?, with a dot
 * or an exponent (so "08" stays a string), finite. */
static cJSON *parse_float(const char *s)
{
    const char *p = (*s == '-' || *s == '+') ? s + 1 : s;
    size_t int_digits = strspn(p, "0123456789");
    size_t frac_digits = 0;
    int dot = 0, exponent = 0;
    double v;

    p += int_digits;
    if (*p == '.') {
        dot = 1;
        frac_digits = strspn(p + 1, "0123456789");
        p += 1 + frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        exponent = 1;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!all_in(p, "0123456789"))
            return NULL;
        p += strlen(p);
    }
    if (*p != '\0' || (!dot && !exponent))
        return NULL;
    v = strtod(s, NULL);
    return isfinite(v) ? cJSON_CreateNumber(v) : NULL;
}

static cJSON *parse_bool(const char *s)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return cJSON_CreateTrue();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return cJSON_CreateFalse();
    return NULL;
}

static int is_null(const char *s)
{
    return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") ||
           !strcmp(s, "Null") || !strcmp(s, "NULL");
}

cJSON *sx_yaml_plain_scalar(const char *text)
{
    cJSON *v;

    if (is_null(text))
        return cJSON_CreateNull();
    if ((v = parse_bool(text)) != NULL)
        return v;
    if ((v = parse_int(text)) != NULL)
        return v;
    if ((v = parse_float(text)) != NULL)
        return v;
    return cJSON_CreateString(text);
}

/* A scalar with an explicit standard tag; NULL (with y->err) if it does not
 * parse as that type, or if the tag is not one of ours (*known = 0). */
static cJSON *tagged_scalar(yl *y, const yaml_event_t *ev, const char *text,
                            int *known)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    cJSON *v = NULL;

    *known = 1;
    if (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, "!"))
        return cJSON_CreateString(text);
    if (!strcmp(tag, YAML_NULL_TAG))
        v = is_null(text) ? cJSON_CreateNull() : NULL;
    else if (!strcmp(tag, YAML_BOOL_TAG))
        v = parse_bool(text);
    else if (!strcmp(tag, YAML_INT_TAG))
        v = parse_int(text);
    else if (!strcmp(tag, YAML_FLOAT_TAG))
        v = (v = parse_int(text)) != NULL ? v : parse_float(text);
    else
        *known = 0;
    if (*known && v == NULL)
        fail(y, &ev->start_mark, "\"%s\" is not a valid %s", text, tag);
    return v;
}

static cJSON *load_scalar(yl *y, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    int known = 0;
    cJSON *v;

    if (strlen(text) != ev->data.scalar.length) {
        fail(y, &ev->start_mark, "NUL characters are not supported");
        return NULL;
    }
    if (ev->data.scalar.tag != NULL) {
        v = tagged_scalar(y, ev, text, &known);
        if (known)
            return v;
    }
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        v = sx_yaml_plain_scalar(text);
    else
        v = cJSON_CreateString(text);
    if (v == NULL)
        fail(y, &ev->start_mark, "out of memory");
    return v;
}

/* ---- anchors ------------------------------------------------------------ */

static size_t count_nodes(const cJSON *v)
{
    size_t n = 1;

    for (const cJSON *c = v->child; c != NULL; c = c->next)
        n += count_nodes(c);
    return n;
}

static int add_anchor(yl *y, const yaml_char_t *name, const cJSON *node,
                      const yaml_mark_t *mark)
{
    anchor *grown;
    anchor a;

    if (name == NULL)
        return 0;
    a.name = strdup((const char *)name);
    a.copy = cJSON_Duplicate(node, 1);
    grown = realloc(y->anchors, (y->n_anchors + 1) * sizeof(*grown));
    if (a.name == NULL || a.copy == NULL || grown == NULL) {
        free(a.name);
        cJSON_Delete(a.copy);
        if (grown != NULL)
            y->anchors = grown;
        fail(y, mark, "out of memory");
        return -1;
    }
    y->anchors = grown;
    y->anchors[y->n_anchors++] = a;
    return 0;
}

static cJSON *load_alias(yl *y, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;

    for (size_t i = y->n_anchors; i-- > 0;) {
        if (strcmp(y->anchors[i].name, name) != 0)
            continue;
        y->nodes += count_nodes(y->anchors[i].copy);
        if (y->nodes > MAX_NODES) {
            fail(y, &ev->start_mark, "document too large (more than %u "
                                     "nodes after aliases)", MAX_NODES);
            return NULL;
        }
        return cJSON_Duplicate(y->anchors[i].copy, 1);
    }
    fail(y, &ev->start_mark, "unknown alias *%s", name);
    return NULL;
}

static void free_anchors(yl *y)
{
    for (size_t i = 0; i < y->n_anchors; i++) {
        free(y->anchors[i].name);
        cJSON_Delete(y->anchors[i].copy);
    }
    free(y->anchors);
    y->anchors = NULL;
    y->n_anchors = 0;
}

/* ---- collections -------------------------------------------------------- */

static cJSON *load_node(yl *y, yaml_event_t *ev, int depth);

static cJSON *load_sequence(yl *y, const yaml_event_t *start, int depth)
{
    cJSON *arr = cJSON_CreateArray();
    yaml_event_t ev;

    while (arr != NULL) {
        if (next_event(y, &ev) != 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        cJSON *item = load_node(y, &ev, depth + 1);
        if (item == NULL)
            break;
        cJSON_AddItemToArray(arr, item);
    }
    if (arr == NULL)
        fail(y, &start->start_mark, "out of memory");
    cJSON_Delete(arr);
    return NULL;
}

/* Read one map key; returns a malloc()ed string or NULL (error set). */
static char *load_key(yl *y, yaml_event_t *ev, const cJSON *map)
{
    char *key = NULL;

    if (ev->type != YAML_SCALAR_EVENT) {
        fail(y, &ev->start_mark, "map keys must be plain strings");
    } else if (strlen((char *)ev->data.scalar.value) !=
               ev->data.scalar.length) {
        fail(y, &ev->start_mark, "NUL characters are not supported");
    } else if (cJSON_GetObjectItemCaseSensitive(
                   map, (char *)ev->data.scalar.value) != NULL) {
        fail(y, &ev->start_mark, "duplicate key \"%s\"",
             (char *)ev->data.scalar.value);
    } else if ((key = strdup((char *)ev->data.scalar.value)) == NULL) {
        fail(y, &ev->start_mark, "out of memory");
    } else if (ev->data.scalar.anchor != NULL) {
        cJSON *copy = cJSON_CreateString(key);
        int rv = copy ? add_anchor(y, ev->data.scalar.anchor, copy,
                                   &ev->start_mark) : -1;
        cJSON_Delete(copy);
        if (rv != 0) {
            free(key);
            key = NULL;
        }
    }
    yaml_event_delete(ev);
    return key;
}

static cJSON *load_mapping(yl *y, const yaml_event_t *start, int depth)
{
    cJSON *map = cJSON_CreateObject();
    yaml_event_t ev;

    while (map != NULL) {
        if (next_event(y, &ev) != 0)
            break;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return map;
        }
        char *key = load_key(y, &ev, map);
        if (key == NULL)
            break;
        cJSON *value = next_event(y, &ev) == 0 ? load_node(y, &ev, depth + 1)
                                               : NULL;
        if (value != NULL)
            cJSON_AddItemToObject(map, key, value);
        free(key);
        if (value == NULL)
            break;
    }
    if (map == NULL)
        fail(y, &start->start_mark, "out of memory");
    cJSON_Delete(map);
    return NULL;
}

/* Build the node that starts with *ev; consumes *ev. */
static cJSON *load_node(yl *y, yaml_event_t *ev, int depth)
{
    const yaml_char_t *anchor_name = NULL;
    cJSON *v = NULL;

    if (depth > MAX_DEPTH) {
        fail(y, &ev->start_mark, "nested more than %d levels", MAX_DEPTH);
    } else if (++y->nodes > MAX_NODES) {
        fail(y, &ev->start_mark, "document too large (more than %u nodes)",
             MAX_NODES);
    } else if (ev->type == YAML_SCALAR_EVENT) {
        anchor_name = ev->data.scalar.anchor;
        v = load_scalar(y, ev);
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor_name = ev->data.sequence_start.anchor;
        v = load_sequence(y, ev, depth);
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor_name = ev->data.mapping_start.anchor;
        v = load_mapping(y, ev, depth);
    } else if (ev->type == YAML_ALIAS_EVENT) {
        v = load_alias(y, ev);
    } else {
        fail(y, &ev->start_mark, "unexpected YAML event %d", (int)ev->type);
    }
    if (v != NULL && add_anchor(y, anchor_name, v, &ev->start_mark) != 0) {
        cJSON_Delete(v);
        v = NULL;
    }
    yaml_event_delete(ev);
    return v;
}

/* ---- documents ---------------------------------------------------------- */

/* Skip events until one of type `want`; error on anything else. */
static int expect_event(yl *y, yaml_event_type_t want, const char *what)
{
    yaml_event_t ev;
    int ok;

    if (next_event(y, &ev) != 0)
        return -1;
    ok = (ev.type == want);
    if (!ok)
        fail(y, &ev.start_mark, "%s", what);
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

static cJSON *load_document(yl *y)
{
    yaml_event_t ev;
    cJSON *root;

    if (expect_event(y, YAML_STREAM_START_EVENT, "not a YAML stream") != 0)
        return NULL;
    if (next_event(y, &ev) != 0)
        return NULL;
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        fail(y, NULL, "the file is empty");
        yaml_event_delete(&ev);
        return NULL;
    }
    yaml_event_delete(&ev);
    if (next_event(y, &ev) != 0)
        return NULL;
    root = load_node(y, &ev, 0);
    if (root != NULL &&
        (expect_event(y, YAML_DOCUMENT_END_EVENT, "expected end of document")
             != 0 ||
         expect_event(y, YAML_STREAM_END_EVENT,
                      "only one YAML document per file is supported") != 0)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

cJSON *sx_yaml_to_json(const char *text, size_t len, const char *name,
                       char *err, size_t errlen)
{
    yl y;
    cJSON *root;

    memset(&y, 0, sizeof(y));
    y.name = name;
    y.err = err;
    y.errlen = errlen;
    if (!yaml_parser_initialize(&y.parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    root = load_document(&y);
    yaml_parser_delete(&y.parser);
    free_anchors(&y);
    return root;
}

/* ---- runbooks ----------------------------------------------------------- */

static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;

    for (;;) {
        if (n == cap) {
            char *grown;

            cap = cap ? cap * 2 : 65536;
            if (cap > SX_FILE_MAX + 1 ||
                (grown = realloc(buf, cap + 1)) == NULL) {
                free(buf);
                errno = cap > SX_FILE_MAX + 1 ? EFBIG : ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
    }
    if (ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

char *sx_file_read(const char *path, size_t *len, char *err, size_t errlen)
{
    int use_stdin = strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    char *buf;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = read_stream(f, len);
    if (buf == NULL)
        snprintf(err, errlen, "%s: %s", use_stdin ? "standard input" : path,
                 strerror(errno));
    if (!use_stdin)
        fclose(f);
    return buf;
}

static const char *const step_keys[] = {
    "name", "type", "approval_required", "approvers", "with", "description",
};

static int check_step_keys(const cJSON *step, size_t i, const char *path,
                           char *err, size_t errlen)
{
    for (const cJSON *c = step->child; c != NULL; c = c->next) {
        size_t k = 0;

        while (k < sizeof(step_keys) / sizeof(step_keys[0]) &&
               strcmp(step_keys[k], c->string) != 0)
            k++;
        if (k == sizeof(step_keys) / sizeof(step_keys[0])) {
            snprintf(err, errlen, "%s: steps[%zu]: unknown key \"%s\" "
                     "(known: name, type, approval_required, approvers, "
                     "with, description)", path, i, c->string);
            return -1;
        }
    }
    return 0;
}

static int check_approvers(const cJSON *a)
{
    const cJSON *c;

    if (a == NULL)
        return 0;
    if (!cJSON_IsArray(a))
        return -1;
    cJSON_ArrayForEach(c, a)
        if (!cJSON_IsString(c))
            return -1;
    return 0;
}

static const char *step_problem(const cJSON *step, sx_rb_step *out)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(step, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(step, "type");
    const cJSON *appr = cJSON_GetObjectItemCaseSensitive(step,
                                                         "approval_required");
    const cJSON *with = cJSON_GetObjectItemCaseSensitive(step, "with");

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return "\"name\" must be a non-empty string";
    out->name = name->valuestring;
    if (!cJSON_IsString(type))
        return "\"type\" is required (script.run)";
    if (strcmp(type->valuestring, "script.run") != 0)
        return "\"type\" must be script.run";
    if (appr != NULL && !cJSON_IsBool(appr))
        return "\"approval_required\" must be true or false";
    out->approval_required = cJSON_IsTrue(appr);
    out->approvers = cJSON_GetObjectItemCaseSensitive(step, "approvers");
    if (check_approvers(out->approvers) != 0)
        return "\"approvers\" must be a list of strings";
    if (with != NULL && !cJSON_IsObject(with) && !cJSON_IsNull(with))
        return "\"with\" must be a map";
    out->with = cJSON_IsObject(with) ? with : NULL;
    return NULL;
}

static int load_step(sx_runbook *rb, const cJSON *step, size_t i,
                     const char *path, char *err, size_t errlen)
{
    sx_rb_step *out = &rb->steps[i];
    const char *problem;

    if (!cJSON_IsObject(step)) {
        snprintf(err, errlen, "%s: steps[%zu]: must be a map", path, i);
        return -1;
    }
    if (check_step_keys(step, i, path, err, errlen) != 0)
        return -1;
    if ((problem = step_problem(step, out)) != NULL) {
        snprintf(err, errlen, "%s: steps[%zu]%s%s%s: %s", path, i,
                 out->name ? " (" : "", out->name ? out->name : "",
                 out->name ? ")" : "", problem);
        return -1;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(rb->steps[j].name, out->name) == 0) {
            snprintf(err, errlen, "%s: steps[%zu]: duplicate step name "
                     "\"%s\"", path, i, out->name);
            return -1;
        }
    }
    return 0;
}

static int load_header(sx_runbook *rb, const cJSON **steps, const char *path,
                       char *err, size_t errlen)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rb->doc, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(rb->doc, "name");

    *steps = cJSON_GetObjectItemCaseSensitive(rb->doc, "steps");
    if (!cJSON_IsObject(rb->doc))
        snprintf(err, errlen, "%s: the top level must be a map", path);
    else if (!cJSON_IsString(id) || id->valuestring[0] == '\0')
        snprintf(err, errlen, "%s: \"id\" must be a non-empty string", path);
    else if (name != NULL && !cJSON_IsString(name))
        snprintf(err, errlen, "%s: \"name\" must be a string", path);
    else if (!cJSON_IsArray(*steps) || cJSON_GetArraySize(*steps) == 0)
        snprintf(err, errlen, "%s: \"steps\" must be a non-empty list", path);
    else {
        rb->id = id->valuestring;
        rb->name = name ? name->valuestring : NULL;
        return 0;
    }
    return -1;
}

static int load_runbook(sx_runbook *rb, const char *path, char *err,
                        size_t errlen)
{
    const cJSON *steps;
    size_t i = 0;

    if (load_header(rb, &steps, path, err, errlen) != 0)
        return -1;
    rb->n_steps = (size_t)cJSON_GetArraySize(steps);
    rb->steps = calloc(rb->n_steps, sizeof(*rb->steps));
    if (rb->steps == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (const cJSON *s = steps->child; s != NULL; s = s->next, i++)
        if (load_step(rb, s, i, path, err, errlen) != 0)
            return -1;
    return 0;
}

int sx_runbook_load(const char *path, sx_runbook *rb, char *err, size_t errlen)
{
    size_t len;
    char *text;

    memset(rb, 0, sizeof(*rb));
    if ((text = sx_file_read(path, &len, err, errlen)) == NULL)
        return -1;
    rb->doc = sx_yaml_to_json(text, len, path, err, errlen);
    free(text);
    if (rb->doc == NULL || load_runbook(rb, path, err, errlen) != 0) {
        sx_runbook_free(rb);
        return -1;
    }
    return 0;
}

void sx_runbook_free(sx_runbook *rb)
{
    cJSON_Delete(rb->doc);
    free(rb->steps);
    memset(rb, 0, sizeof(*rb));
}
