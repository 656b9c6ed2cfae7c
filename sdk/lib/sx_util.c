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

void sx_identity_clear(sx_identity *id)
{
    if (id == NULL)
        return;
    free(id->user);
    id->user = NULL;
    sx_strlist_clear(&id->groups);
    memset(id->method, 0, sizeof id->method);
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

/* Decimal number with optional fraction and exponent, scaled by `scale`
 * and rounded up (Kubernetes rounds quantities up to the smallest unit). */
static int quantity_scaled(const char *num, size_t num_len, long double scale, int64_t *out)
{
    char buf[64];
    if (num_len == 0 || num_len >= sizeof buf)
        return -1;
    memcpy(buf, num, num_len);
    buf[num_len] = '\0';
    if (!(isdigit((unsigned char)buf[0]) || (buf[0] == '.' && isdigit((unsigned char)buf[1]))))
        return -1;
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    if (errno || *end != '\0' || v < 0)
        return -1;
    long double r = v * scale;
    if (r > 9.2e18L)
        return -1;
    int64_t i = (int64_t)r;
    if ((long double)i < r)
        i++;
    *out = i;
    return 0;
}

int sx_quantity_cpu_millis(const char *text, int64_t *millis)
{
    if (text == NULL)
        return -1;
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == 'm')
        return quantity_scaled(text, n - 1, 1.0L, millis);
    return quantity_scaled(text, n, 1000.0L, millis);
}

int sx_quantity_bytes(const char *text, int64_t *bytes)
{
    if (text == NULL)
        return -1;
    static const struct { const char *suffix; long double scale; } units[] = {
        {"Ki", 1024.0L}, {"Mi", 1048576.0L}, {"Gi", 1073741824.0L},
        {"Ti", 1099511627776.0L}, {"Pi", 1125899906842624.0L},
        {"Ei", 1152921504606846976.0L}, {"k", 1e3L}, {"M", 1e6L}, {"G", 1e9L},
        {"T", 1e12L}, {"P", 1e15L}, {"E", 1e18L}};
    size_t n = strlen(text);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t sl = strlen(units[i].suffix);
        if (n > sl && strcmp(text + n - sl, units[i].suffix) == 0)
            return quantity_scaled(text, n - sl, units[i].scale, bytes);
    }
    /* plain number, possibly with an exponent ("129e6") */
    return quantity_scaled(text, n, 1.0L, bytes);
}

static int ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int sx_whitelist_match(const sx_strlist *list, const char *script, size_t len)
{
    size_t a = 0, b = len;
    while (a < b && ws(script[a]))
        a++;
    while (b > a && ws(script[b - 1]))
        b--;
    for (size_t i = 0; list && i < list->n; i++) {
        const char *e = list->v[i];
        size_t ea = 0, eb = strlen(e);
        while (ea < eb && ws(e[ea]))
            ea++;
        while (eb > ea && ws(e[eb - 1]))
            eb--;
        if (eb - ea == b - a && memcmp(e + ea, script + a, b - a) == 0)
            return 1;
    }
    return 0;
}
