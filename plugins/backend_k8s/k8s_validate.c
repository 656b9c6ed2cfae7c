/* k8s_validate.c - what the Kubernetes API server accepts (see k8s_validate.h). */
#define _POSIX_C_SOURCE 200809L
#include "k8s_validate.h"

#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int dns_label_n(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

int sx_k8s_dns_label_ok(const char *s)
{
    return s != NULL && dns_label_n(s, strlen(s));
}

int sx_k8s_dns_subdomain_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        /* a subdomain's parts may be longer than 63 (the API checks only
         * the total and the character rule) */
        if (len == 0 || !is_lower_alnum(p[0]) || !is_lower_alnum(p[len - 1]))
            return 0;
        for (size_t i = 0; i < len; i++)
            if (!is_lower_alnum(p[i]) && p[i] != '-')
                return 0;
        if (dot == NULL)
            return 1;
        p = dot + 1;
    }
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63, for n >= 1 */
static int name_part_n(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

int sx_k8s_label_value_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    return n == 0 || name_part_n(s, n);
}

int sx_k8s_qualified_name_ok(const char *s)
{
    if (s == NULL)
        return 0;
    const char *slash = strchr(s, '/');
    if (slash == NULL)
        return name_part_n(s, strlen(s));
    if (strchr(slash + 1, '/') != NULL)
        return 0;
    size_t pn = (size_t)(slash - s);
    char prefix[254];
    if (pn == 0 || pn >= sizeof prefix)
        return 0;
    memcpy(prefix, s, pn);
    prefix[pn] = '\0';
    return sx_k8s_dns_subdomain_ok(prefix) && name_part_n(slash + 1, strlen(slash + 1));
}

int sx_k8s_env_name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
                 c == '_' || (p != s && is_digit(c));
        if (!ok)
            return 0;
    }
    return 1;
}

int sx_k8s_config_key_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return 0;
    return 1;
}

/* Components of `s` separated by '/': none empty, "." or "..". */
static int components_ok(const char *s)
{
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        s += n;
        if (*s == '/') {
            s++;
            if (*s == '\0')
                return 0; /* trailing '/' */
        }
    }
    return 1;
}

static int printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int sx_k8s_rel_path_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && s[0] != '/' && strlen(s) <= 4096 && printable(s) &&
           components_ok(s);
}

int sx_k8s_abs_path_ok(const char *s)
{
    if (s == NULL || s[0] != '/' || strlen(s) > 4096 || !printable(s) || strchr(s, ':'))
        return 0;
    return s[1] == '\0' || components_ok(s + 1);
}

int sx_k8s_path_within(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return 1;
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

const char *sx_k8s_script_key(const char *path, const char **why)
{
    static const char scripts[] = "/scripts";
    *why = NULL;
    if (path == NULL || path[0] == '\0') {
        *why = "is empty";
        return NULL;
    }
    /* ".." anywhere as a component, before any other reading of the path */
    for (const char *c = path; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            *why = "must not contain '..'";
            return NULL;
        }
        c += n;
        if (*c == '/')
            c++;
    }
    const char *key = path;
    if (path[0] == '/') {
        size_t n = sizeof scripts - 1;
        if (strncmp(path, scripts, n) != 0 || path[n] != '/') {
            *why = "is outside /scripts (the scripts ConfigMap's mount)";
            return NULL;
        }
        key = path + n + 1;
    }
    if (strchr(key, '/') != NULL) {
        *why = "names a subdirectory; a ConfigMap's keys have none (use /scripts/<key>)";
        return NULL;
    }
    if (!sx_k8s_config_key_ok(key)) {
        *why = "is not /scripts/<key of the ConfigMap> ([-._a-zA-Z0-9]+)";
        return NULL;
    }
    return key;
}

int sx_k8s_image_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 4096)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int sx_k8s_pull_policy_ok(const char *s)
{
    return s != NULL &&
           (strcmp(s, "Always") == 0 || strcmp(s, "IfNotPresent") == 0 || strcmp(s, "Never") == 0);
}

int sx_k8s_quantity_parse(const char *s, int cpu, int64_t *value)
{
    if (s == NULL || strlen(s) > 60)
        return -1;
    /* the number: digits[.digits*] or .digits (no sign: negative is refused anyway) */
    const char *p = s;
    size_t int_digits = 0, frac_digits = 0;
    while (is_digit(*p)) {
        p++;
        int_digits++;
    }
    if (*p == '.') {
        p++;
        while (is_digit(*p)) {
            p++;
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0)
        return -1;
    const char *suffix = p;
    int exponent = 0;
    int sign = *p != '\0' && (p[1] == '+' || p[1] == '-');
    if ((*p == 'e' || *p == 'E') && (is_digit(p[1]) || (sign && is_digit(p[2])))) {
        p += (p[1] == '+' || p[1] == '-') ? 2 : 1;
        while (is_digit(*p))
            p++;
        exponent = 1;
        if (*p != '\0')
            return -1;
    } else if (*p != '\0') {
        static const char *const suffixes[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u",
                                               "m",  "k",  "M",  "G",  "T",  "P",  "E", NULL};
        int ok = 0;
        for (const char *const *x = suffixes; *x && !ok; x++)
            ok = strcmp(p, *x) == 0;
        if (!ok)
            return -1;
    }
    int64_t v;
    if (cpu) {
        /* millicores: plain, 'm' or an exponent */
        if (!exponent && *suffix != '\0' && strcmp(suffix, "m") != 0)
            return -1;
        if (sx_quantity_cpu_millis(s, &v) != 0)
            return -1;
    } else {
        if (strcmp(suffix, "m") == 0 || strcmp(suffix, "u") == 0 || strcmp(suffix, "n") == 0)
            return -1; /* fractions of a byte */
        if (sx_quantity_bytes(s, &v) != 0)
            return -1;
    }
    *value = v;
    return 0;
}

char *sx_k8s_escape_refs(const char *s)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '$' && (s[i + 1] == '$' || s[i + 1] == '('))
            extra++;
    char *out = malloc(n + extra + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '$' && (s[i + 1] == '$' || s[i + 1] == '('))
            out[o++] = '$';
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}
