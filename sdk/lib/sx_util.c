/* sx_util.c - the SDK helper library (see sx_util.h). */
#define _POSIX_C_SOURCE 200809L
#include "sx/sx_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sx_error_set(sx_error *err, const char *code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int mul_add(int64_t *acc, int64_t value, int64_t unit)
{
    if (value != 0 && unit > INT64_MAX / value)
        return -1;
    if (*acc > INT64_MAX - value * unit)
        return -1;
    *acc += value * unit;
    return 0;
}

int sx_duration_parse(const char *text, int64_t *ms)
{
    if (text == NULL || *text == '\0')
        return -1;
    const char *p = text;
    int64_t total = 0;
    int parts = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0)
            return -1;
        p = end;
        int64_t unit;
        if (*p == '\0') {
            if (parts > 0)
                return -1;      /* "1h30" is ambiguous */
            unit = 1000;        /* bare number = seconds */
        } else if (strncmp(p, "ms", 2) == 0) {
            unit = 1; p += 2;
        } else if (*p == 's') {
            unit = 1000; p++;
        } else if (*p == 'm') {
            unit = 60 * 1000; p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000; p++;
        } else if (*p == 'd') {
            unit = 86400 * 1000; p++;
        } else {
            return -1;
        }
        if (mul_add(&total, v, unit) != 0)
            return -1;
        parts++;
    }
    *ms = total;
    return 0;
}

int sx_size_parse(const char *text, int64_t *bytes)
{
    if (text == NULL || !isdigit((unsigned char)*text))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || v < 0)
        return -1;
    int64_t unit = 1;
    if (*end) {
        int binary = end[1] == 'i';
        int64_t base = binary ? 1024 : 1000;
        switch (toupper((unsigned char)end[0])) {
        case 'K': unit = base; break;
        case 'M': unit = base * base; break;
        case 'G': unit = base * base * base; break;
        case 'T': unit = base * base * base * base; break;
        default: return -1;
        }
        const char *rest = end + 1 + binary;
        if (!binary && (*rest == 'B' || *rest == 'b'))
            rest++;
        if (*rest != '\0')
            return -1;
    }
    int64_t total = 0;
    if (mul_add(&total, v, unit) != 0)
        return -1;
    *bytes = total;
    return 0;
}

const char *sx_strmap_get(const sx_strmap *map, const char *key)
{
    if (map == NULL)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->values[i];
    return NULL;
}

void sx_strlist_clear(sx_strlist *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    list->v = NULL;
    list->n = 0;
}

void sx_strmap_clear(sx_strmap *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->n; i++) {
        free(map->keys[i]);
        free(map->values[i]);
    }
    free(map->keys);
    free(map->values);
    map->keys = map->values = NULL;
    map->n = 0;
}

double sx_now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *sx_status_name(sx_status s)
{
    switch (s) {
    case SX_STATUS_SUCCEEDED: return "succeeded";
    case SX_STATUS_FAILED: return "failed";
    case SX_STATUS_TIMED_OUT: return "timed_out";
    case SX_STATUS_CANCELLED: return "cancelled";
    case SX_STATUS_PENDING_APPROVAL: return "pending_approval";
    case SX_STATUS_DENIED: return "denied";
    case SX_STATUS_EXPIRED: return "expired";
    case SX_STATUS_REJECTED: return "rejected";
    case SX_STATUS_ERROR: return "error";
    }
    return "error";
}

const char *sx_termination_name(sx_termination t)
{
    switch (t) {
    case SX_TERM_NONE: return "none";
    case SX_TERM_EXITED: return "exited";
    case SX_TERM_SIGNALED: return "signaled";
    case SX_TERM_OOM_KILLED: return "oom_killed";
    case SX_TERM_TIMED_OUT: return "timed_out";
    case SX_TERM_CANCELLED: return "cancelled";
    case SX_TERM_LOST: return "lost";
    }
    return "lost";
}

int sx_time_utc(char *buf, size_t size, int digits)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return -1;
    if (digits < 0)
        digits = 0;
    if (digits > 9)
        digits = 9;
    long frac = ts.tv_nsec;
    for (int i = digits; i < 9; i++)
        frac /= 10;
    if (digits > 0)
        snprintf(buf + n, size - n, ".%0*ldZ", digits, frac);
    else
        snprintf(buf + n, size - n, "Z");
    return 0;
}

int sx_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
