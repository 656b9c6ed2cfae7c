/* prom.c - Prometheus registry and text format (see prom.h). */
#define _POSIX_C_SOURCE 200809L
#include "prom.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sx_prom_series {
    char *labels[SX_PROM_MAX_LABELS];
    double value;                   /* counter, gauge */
    double sum;                     /* histogram */
    unsigned long long count;       /* histogram */
    unsigned long long *per_bucket; /* histogram: observations <= bound i, > bound i-1 */
} sx_prom_series;

struct sx_prom_family {
    sx_prom_registry *reg;
    sx_prom_type type;
    char *name;
    char *help;
    size_t n_labels;
    char *label_names[SX_PROM_MAX_LABELS];
    size_t n_buckets;
    double buckets[SX_PROM_MAX_BUCKETS];
    sx_prom_series *series;
    size_t n_series, cap_series;
};

struct sx_prom_registry {
    pthread_mutex_t lock;
    sx_prom_family **families;
    size_t n_families;
    unsigned long long overflow;
};

sx_prom_registry *sx_prom_registry_new(void)
{
    sx_prom_registry *r = calloc(1, sizeof *r);
    if (r)
        pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void series_free(sx_prom_family *f, sx_prom_series *s)
{
    for (size_t i = 0; i < f->n_labels; i++)
        free(s->labels[i]);
    free(s->per_bucket);
}

static void family_free(sx_prom_family *f)
{
    for (size_t i = 0; i < f->n_series; i++)
        series_free(f, &f->series[i]);
    free(f->series);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void sx_prom_registry_free(sx_prom_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_families; i++)
        family_free(r->families[i]);
    free(r->families);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int valid_name(const char *s)
{
    if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

sx_prom_family *sx_prom_family_add(sx_prom_registry *reg, sx_prom_type type, const char *name,
                                   const char *help, size_t n_labels,
                                   const char *const *label_names, const double *buckets,
                                   size_t n_buckets)
{
    if (reg == NULL || !valid_name(name) || n_labels > SX_PROM_MAX_LABELS ||
        (type == SX_PROM_HISTOGRAM && (n_buckets == 0 || n_buckets > SX_PROM_MAX_BUCKETS)))
        return NULL;
    for (size_t i = 0; i < n_labels; i++)
        if (!valid_name(label_names[i]) || strcmp(label_names[i], "le") == 0)
            return NULL;
    for (size_t i = 1; type == SX_PROM_HISTOGRAM && i < n_buckets; i++)
        if (!(buckets[i] > buckets[i - 1]))
            return NULL;
    sx_prom_family *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->reg = reg;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->n_labels = n_labels;
    int ok = f->name && f->help;
    for (size_t i = 0; i < n_labels; i++)
        ok = ok && (f->label_names[i] = strdup(label_names[i])) != NULL;
    if (type == SX_PROM_HISTOGRAM) {
        f->n_buckets = n_buckets;
        memcpy(f->buckets, buckets, n_buckets * sizeof *buckets);
    }
    pthread_mutex_lock(&reg->lock);
    sx_prom_family **v = ok ? realloc(reg->families, (reg->n_families + 1) * sizeof *v) : NULL;
    if (v) {
        reg->families = v;
        reg->families[reg->n_families++] = f;
    }
    pthread_mutex_unlock(&reg->lock);
    if (v == NULL) {
        family_free(f);
        return NULL;
    }
    return f;
}

void sx_prom_exponential_buckets(double start, double factor, size_t n, double *out)
{
    double v = start;
    for (size_t i = 0; i < n; i++, v *= factor)
        out[i] = v;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && p[0] < 0xc2) || (n == 4 && p[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && p[0] == 0xe0 && p[1] < 0xa0)
        return 0; /* overlong */
    if (n == 3 && p[0] == 0xed && p[1] >= 0xa0)
        return 0; /* surrogate */
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

/* A stored label value: valid UTF-8 ('?' for bad bytes), at most
 * SX_PROM_LABEL_VALUE_MAX bytes, never cut inside a character. */
static char *label_copy(const char *v)
{
    if (v == NULL)
        v = "";
    char *out = malloc(SX_PROM_LABEL_VALUE_MAX + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)v;
    while (*p) {
        size_t n = utf8_seq(p);
        if (o + (n ? n : 1) > SX_PROM_LABEL_VALUE_MAX)
            break;
        if (n == 0) {
            out[o++] = '?';
            p++;
        } else {
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
    return out;
}

/* Compare stored values with given ones (which get the same cleaning on
 * creation; compare the cleaned form so a long value finds its series). */
static int labels_equal(const sx_prom_family *f, const sx_prom_series *s, char *const *clean)
{
    for (size_t i = 0; i < f->n_labels; i++)
        if (strcmp(s->labels[i], clean[i]) != 0)
            return 0;
    return 1;
}

/* The series for label_values, created when absent; NULL when the family
 * is full or out of memory.  Caller holds the registry lock. */
static sx_prom_series *series_get(sx_prom_family *f, const char *const *label_values, int create)
{
    char *clean[SX_PROM_MAX_LABELS] = {0};
    sx_prom_series *found = NULL;
    int ok = 1;
    for (size_t i = 0; i < f->n_labels; i++)
        ok = ok && (clean[i] = label_copy(label_values ? label_values[i] : NULL)) != NULL;
    for (size_t i = 0; ok && i < f->n_series && !found; i++)
        if (labels_equal(f, &f->series[i], clean))
            found = &f->series[i];
    if (found || !ok || !create) {
        for (size_t i = 0; i < f->n_labels; i++)
            free(clean[i]);
        return found;
    }
    if (f->n_series == SX_PROM_MAX_SERIES) {
        f->reg->overflow++;
        for (size_t i = 0; i < f->n_labels; i++)
            free(clean[i]);
        return NULL;
    }
    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? f->cap_series * 2 : 8;
        sx_prom_series *v = realloc(f->series, cap * sizeof *v);
        if (v == NULL) {
            for (size_t i = 0; i < f->n_labels; i++)
                free(clean[i]);
            return NULL;
        }
        f->series = v;
        f->cap_series = cap;
    }
    sx_prom_series *s = &f->series[f->n_series];
    memset(s, 0, sizeof *s);
    if (f->type == SX_PROM_HISTOGRAM) {
        s->per_bucket = calloc(f->n_buckets, sizeof *s->per_bucket);
        if (s->per_bucket == NULL) {
            for (size_t i = 0; i < f->n_labels; i++)
                free(clean[i]);
            return NULL;
        }
    }
    for (size_t i = 0; i < f->n_labels; i++)
        s->labels[i] = clean[i];
    f->n_series++;
    return s;
}

void sx_prom_inc(sx_prom_family *f, const char *const *label_values, double by)
{
    if (f == NULL || f->type == SX_PROM_HISTOGRAM || (f->type == SX_PROM_COUNTER && !(by >= 0)))
        return;
    pthread_mutex_lock(&f->reg->lock);
    sx_prom_series *s = series_get(f, label_values, 1);
    if (s)
        s->value += by;
    pthread_mutex_unlock(&f->reg->lock);
}

void sx_prom_set(sx_prom_family *f, const char *const *label_values, double v)
{
    if (f == NULL || f->type != SX_PROM_GAUGE)
        return;
    pthread_mutex_lock(&f->reg->lock);
    sx_prom_series *s = series_get(f, label_values, 1);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&f->reg->lock);
}

void sx_prom_observe(sx_prom_family *f, const char *const *label_values, double v)
{
    if (f == NULL || f->type != SX_PROM_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->reg->lock);
    sx_prom_series *s = series_get(f, label_values, 1);
    if (s) {
        for (size_t i = 0; i < f->n_buckets; i++) {
            if (v <= f->buckets[i]) {
                s->per_bucket[i]++;
                break;
            }
        }
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&f->reg->lock);
}

void sx_prom_clear(sx_prom_family *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->reg->lock);
    for (size_t i = 0; i < f->n_series; i++)
        series_free(f, &f->series[i]);
    f->n_series = 0;
    pthread_mutex_unlock(&f->reg->lock);
}

double sx_prom_value(sx_prom_family *f, const char *const *label_values)
{
    if (f == NULL)
        return 0;
    pthread_mutex_lock(&f->reg->lock);
    sx_prom_series *s = series_get(f, label_values, 0);
    double v = s == NULL ? 0 : f->type == SX_PROM_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->reg->lock);
    return v;
}

unsigned long long sx_prom_overflow(sx_prom_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    unsigned long long n = reg->overflow;
    pthread_mutex_unlock(&reg->lock);
    return n;
}

/* ------------------------------------------------------------ rendering */

typedef struct sx_buf {
    char *data;
    size_t len, cap;
    int failed;
} sx_buf;

static void buf_add(sx_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(sx_buf *b, const char *s) { buf_add(b, s, strlen(s)); }

int sx_prom_escape_label(const char *value, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = value; *p; p++) {
        const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t n = rep ? 2 : 1;
        if (o + n + 1 > size) {
            if (size)
                out[o] = '\0';
            return -1;
        }
        if (rep)
            memcpy(out + o, rep, 2);
        else
            out[o] = *p;
        o += n;
    }
    if (size)
        out[o] = '\0';
    return 0;
}

void sx_prom_format_value(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(out, size, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, size, "%.17g", v);
}

static void add_help(sx_buf *b, const sx_prom_family *f)
{
    buf_str(b, "# HELP ");
    buf_str(b, f->name);
    buf_str(b, " ");
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            buf_str(b, "\\\\");
        else if (*p == '\n')
            buf_str(b, "\\n");
        else
            buf_add(b, p, 1);
    }
    buf_str(b, "\n# TYPE ");
    buf_str(b, f->name);
    buf_str(b, f->type == SX_PROM_COUNTER ? " counter\n"
               : f->type == SX_PROM_GAUGE ? " gauge\n" : " histogram\n");
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels at all. */
static void add_labels(sx_buf *b, const sx_prom_family *f, const sx_prom_series *s,
                       const char *le)
{
    if (f->n_labels == 0 && le == NULL)
        return;
    buf_str(b, "{");
    char esc[SX_PROM_LABEL_VALUE_MAX * 2 + 1];
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i)
            buf_str(b, ",");
        buf_str(b, f->label_names[i]);
        buf_str(b, "=\"");
        sx_prom_escape_label(s->labels[i], esc, sizeof esc);
        buf_str(b, esc);
        buf_str(b, "\"");
    }
    if (le) {
        if (f->n_labels)
            buf_str(b, ",");
        buf_str(b, "le=\"");
        buf_str(b, le);
        buf_str(b, "\"");
    }
    buf_str(b, "}");
}

static void add_sample(sx_buf *b, const char *name, const char *suffix, const sx_prom_family *f,
                       const sx_prom_series *s, const char *le, double v)
{
    char num[40];
    buf_str(b, name);
    buf_str(b, suffix);
    add_labels(b, f, s, le);
    sx_prom_format_value(v, num, sizeof num);
    buf_str(b, " ");
    buf_str(b, num);
    buf_str(b, "\n");
}

char *sx_prom_render(sx_prom_registry *reg, size_t *len)
{
    sx_buf b = {0};
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->n_families; i++) {
        const sx_prom_family *f = reg->families[i];
        add_help(&b, f);
        for (size_t j = 0; j < f->n_series; j++) {
            const sx_prom_series *s = &f->series[j];
            if (f->type != SX_PROM_HISTOGRAM) {
                add_sample(&b, f->name, "", f, s, NULL, s->value);
                continue;
            }
            unsigned long long cum = 0;
            char le[40];
            for (size_t k = 0; k < f->n_buckets; k++) {
                cum += s->per_bucket[k];
                sx_prom_format_value(f->buckets[k], le, sizeof le);
                add_sample(&b, f->name, "_bucket", f, s, le, (double)cum);
            }
            add_sample(&b, f->name, "_bucket", f, s, "+Inf", (double)s->count);
            add_sample(&b, f->name, "_sum", f, s, NULL, s->sum);
            add_sample(&b, f->name, "_count", f, s, NULL, (double)s->count);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    if (!b.failed && b.data == NULL)
        buf_add(&b, "", 0); /* an empty registry is an empty text */
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}
