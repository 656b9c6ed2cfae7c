/*
 * prom.h - a small Prometheus registry: counters, gauges and histograms
 * with labels, rendered in the text exposition format 0.0.4.
 *
 * A family has a name, a help text, fixed label names and (histograms)
 * fixed bucket bounds; a series is one set of label values.  Series are
 * created on first use, up to SX_PROM_MAX_SERIES per family; later new
 * label sets are not recorded and are counted (sx_prom_overflow).  Label
 * values are stored as given, with invalid UTF-8 replaced and length
 * capped, and escaped when rendered.  All functions are thread-safe (one
 * lock per registry).
 */
#ifndef SX_METRICS_PROM_H
#define SX_METRICS_PROM_H

#include <stddef.h>

#define SX_PROM_MAX_LABELS 4
#define SX_PROM_MAX_BUCKETS 32
#define SX_PROM_MAX_SERIES 2000
#define SX_PROM_LABEL_VALUE_MAX 512

typedef enum sx_prom_type {
    SX_PROM_COUNTER = 1,
    SX_PROM_GAUGE,
    SX_PROM_HISTOGRAM
} sx_prom_type;

typedef struct sx_prom_registry sx_prom_registry;
typedef struct sx_prom_family sx_prom_family;

/* NULL when out of memory.  Free with sx_prom_registry_free. */
sx_prom_registry *sx_prom_registry_new(void);
void sx_prom_registry_free(sx_prom_registry *reg);

/* Register a family (strings are copied).  label_names: n_labels names;
 * buckets: n_buckets increasing upper bounds for a histogram (the +Inf
 * bucket is implicit), ignored otherwise.  Returns the family (owned by
 * the registry) or NULL on bad arguments or out of memory.  Families are
 * rendered in the order they were registered. */
sx_prom_family *sx_prom_family_add(sx_prom_registry *reg, sx_prom_type type, const char *name,
                                   const char *help, size_t n_labels,
                                   const char *const *label_names, const double *buckets,
                                   size_t n_buckets);

/* start, start*factor, ... (n values) into out (the client_golang
 * ExponentialBuckets). */
void sx_prom_exponential_buckets(double start, double factor, size_t n, double *out);

/* label_values: one per label name (NULL counts as ""). */
void sx_prom_inc(sx_prom_family *f, const char *const *label_values, double by); /* counter, gauge */
void sx_prom_set(sx_prom_family *f, const char *const *label_values, double v);  /* gauge */
void sx_prom_observe(sx_prom_family *f, const char *const *label_values, double v); /* histogram */
/* Remove every series of the family (a gauge re-filled from scratch). */
void sx_prom_clear(sx_prom_family *f);

/* The value of a counter/gauge series, or a histogram series' count; 0
 * when the series does not exist (for tests and describe). */
double sx_prom_value(sx_prom_family *f, const char *const *label_values);

/* New label sets refused because a family was full, over all families. */
unsigned long long sx_prom_overflow(sx_prom_registry *reg);

/* The whole registry in the text format; malloc(3)ed, NUL-terminated,
 * *len (may be NULL) set to its length.  NULL when out of memory. */
char *sx_prom_render(sx_prom_registry *reg, size_t *len);

/* Exposed for tests: escape a label value ('\\' -> "\\\\", '"' -> "\\\"",
 * newline -> "\\n") into out (size bytes); returns 0, or -1 if cut. */
int sx_prom_escape_label(const char *value, char *out, size_t size);
/* Exposed for tests: a sample value as the text format writes it
 * ("+Inf", "-Inf", "NaN", shortest round-trip decimal). */
void sx_prom_format_value(double v, char *out, size_t size);

#endif
