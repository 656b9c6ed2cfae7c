/*
 * sx_util.h - small helpers plugins may link (static library sx_sdk_util).
 * Pure functions of their arguments; thread-safe; no hidden allocation
 * unless said.
 */
#ifndef SX_UTIL_H
#define SX_UTIL_H

#include <stdarg.h>
#include "sx_types.h"
#include "sx_plugin.h"
#include "sx_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fill err with code and a printf-style message (truncated to fit).
 * err may be NULL.  Always returns -1, so `return sx_error_set(...)` works. */
int sx_error_set(sx_error *err, const char *code, const char *fmt, ...)
    SX_PRINTF(3, 4);

/* Parse a duration: "250ms", "30s", "5m", "1h", "1h30m", "1d" or a plain
 * number of seconds.  Returns 0 and *ms, or -1 on bad syntax/overflow. */
int sx_duration_parse(const char *text, int64_t *ms);

/* Parse a size: plain bytes, or with K/M/G/T (powers of 1000, "KB" too) or
 * Ki/Mi/Gi/Ti (powers of 1024).  Returns 0 and *bytes, or -1. */
int sx_size_parse(const char *text, int64_t *bytes);

/* Kubernetes resource quantities, as in a Pod's resources:
 *   CPU:    "2", "0.5", "250m"             -> millicores (rounded up)
 *   memory: "128974848", "129e6", "129M", "123Mi", "1.5Gi", "64k"
 *           (k M G T P E powers of 1000, Ki Mi Gi Ti Pi Ei of 1024)
 *                                          -> bytes (rounded up)
 * Returns 0, or -1 on bad syntax, a negative value or overflow. */
int sx_quantity_cpu_millis(const char *text, int64_t *millis);
int sx_quantity_bytes(const char *text, int64_t *bytes);

/* The command whitelist of the spec's executors: whether the script,
 * trimmed of surrounding whitespace, equals one entry (also trimmed).
 * An empty list allows nothing; callers apply it only when non-empty. */
int sx_whitelist_match(const sx_strlist *list, const char *script, size_t len);

/* Lookup in a map; NULL when absent.  Borrowed result. */
const char *sx_strmap_get(const sx_strmap *map, const char *key);

/* Free the contents of a list/map whose strings and arrays were
 * malloc(3)ed, and zero it. */
void sx_strlist_clear(sx_strlist *list);
void sx_strmap_clear(sx_strmap *map);

/* Free an identity's user and groups (malloc(3)ed, see sx_policy.h) and
 * zero them; struct_size is kept.  id may be NULL. */
void sx_identity_clear(sx_identity *id);

/* Stable names: "succeeded", "failed", ... and "exited", "signaled", ...
 * (the protocol's status and termination.reason).  Static strings. */
const char *sx_status_name(sx_status status);
const char *sx_termination_name(sx_termination termination);

/* The current UTC time as ISO 8601 with `digits` fractional digits (0-9):
 * "2026-11-24T11:38:34.566Z".  Returns 0, or -1 if buf is too small (40
 * bytes always suffice). */
int sx_time_utc(char *buf, size_t size, int digits);

/* write(2) all `len` bytes, retrying on EINTR and short writes.
 * Returns 0, or -1 with errno set (EIO for a zero-byte write).
 * Async-signal-safe. */
int sx_write_all(int fd, const void *buf, size_t len);

/* Monotonic clock in seconds. */
double sx_now_monotonic(void);

#ifdef __cplusplus
}
#endif
#endif /* SX_UTIL_H */
