/* http_routes.c - route table and request-target helpers (see http_routes.h). */
#define _POSIX_C_SOURCE 200809L
#include "http_routes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sx/sx_util.h"

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16)
        return 0;
    for (const char *p = m; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            return 0;
    return 1;
}

/* A route path: starts with '/', printable ASCII without spaces, '?',
 * '#' or '%', no "." or ".." segment, no "//". */
static const char *route_path_problem(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || path[0] != '/')
        return "must start with '/'";
    if (n > SX_HTTP_PATH_MAX)
        return "is too long";
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%')
            return "may hold only printable ASCII without spaces, '?', '#' or '%'";
        if (c == '/' && p[1] == '/')
            return "must not contain '//'";
        if (c == '/' && p[1] == '.' && (p[2] == '/' || p[2] == '\0' ||
                                        (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
            return "must not contain '.' or '..' segments";
    }
    return NULL;
}

static int methods_overlap(const char *a, const char *b)
{
    return a == NULL || b == NULL || strcmp(a, b) == 0;
}

int sx_routes_add(sx_route_table *t, const char *owner, const char *method, const char *path,
                  sx_http_handler handler, void *arg, sx_error *err)
{
    if (handler == NULL)
        return sx_error_set(err, "invalid_config", "HTTP route %s: the handler is NULL",
                            path ? path : "(null)");
    if (path == NULL)
        return sx_error_set(err, "invalid_config", "HTTP route: the path is NULL");
    const char *why = route_path_problem(path);
    if (why)
        return sx_error_set(err, "invalid_config", "HTTP route '%s': the path %s", path, why);
    if (method && !valid_method(method))
        return sx_error_set(err, "invalid_config",
                            "HTTP route %s: method '%s' is not an upper-case HTTP method", path,
                            method);
    size_t n = strlen(path);
    int prefix = n > 1 && path[n - 1] == '/';
    for (size_t i = 0; i < t->n; i++) {
        const sx_route *r = &t->v[i];
        if (r->prefix == prefix && strcmp(r->path, path) == 0 && methods_overlap(r->method, method))
            return sx_error_set(err, "invalid_config",
                                "HTTP route %s %s is already served by %s (%s %s)",
                                method ? method : "(any method)", path, r->owner,
                                r->method ? r->method : "(any method)", r->path);
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        sx_route *v = realloc(t->v, cap * sizeof *v);
        if (v == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        t->v = v;
        t->cap = cap;
    }
    sx_route *r = &t->v[t->n];
    memset(r, 0, sizeof *r);
    r->owner = strdup(owner ? owner : "");
    r->method = method ? strdup(method) : NULL;
    r->path = strdup(path);
    r->prefix = prefix;
    r->handler = handler;
    r->arg = arg;
    if (r->owner == NULL || r->path == NULL || (method && r->method == NULL)) {
        free(r->owner);
        free(r->method);
        free(r->path);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    t->n++;
    return 0;
}

/* Does route r's path cover `path`?  Returns the length matched (for
 * longest-prefix), 0 when it does not. */
static size_t path_covers(const sx_route *r, const char *path)
{
    size_t rl = strlen(r->path);
    if (!r->prefix)
        return strcmp(r->path, path) == 0 ? rl : 0;
    if (strncmp(r->path, path, rl) == 0)
        return rl;
    /* "/api/v1/approvals" is served by the prefix "/api/v1/approvals/" */
    if (strncmp(r->path, path, rl - 1) == 0 && path[rl - 1] == '\0')
        return rl;
    return 0;
}

static int method_takes(const sx_route *r, const char *method)
{
    return r->method == NULL || strcmp(r->method, method) == 0;
}

static void allow_add(char *allow, size_t size, const char *m)
{
    if (allow == NULL || size == 0)
        return;
    if (strstr(allow, m) != NULL) /* methods are whole upper-case words */
        return;
    size_t used = strlen(allow);
    snprintf(allow + used, size - used, "%s%s", used ? ", " : "", m);
}

sx_route_result sx_routes_match(const sx_route_table *t, const char *method, const char *path,
                                const sx_route **out, char *allow, size_t allow_size)
{
    *out = NULL;
    if (allow && allow_size)
        allow[0] = '\0';
    /* Two rounds: the exact routes, then the prefixes (longest first).
     * Within the winning path, the method decides. */
    int any_path = 0;
    for (int round = 0; round < 2; round++) {
        size_t best_len = 0;
        for (size_t i = 0; i < t->n; i++) {
            const sx_route *r = &t->v[i];
            if (r->prefix != round)
                continue;
            size_t len = path_covers(r, path);
            if (len > best_len)
                best_len = len;
        }
        if (best_len == 0)
            continue;
        any_path = 1;
        const sx_route *get_route = NULL;
        for (size_t i = 0; i < t->n; i++) {
            const sx_route *r = &t->v[i];
            if (r->prefix != round || path_covers(r, path) != best_len)
                continue;
            if (method_takes(r, method)) {
                *out = r;
                return SX_ROUTE_FOUND;
            }
            if (strcmp(method, "HEAD") == 0 && r->method && strcmp(r->method, "GET") == 0)
                get_route = r;
            allow_add(allow, allow_size, r->method);
            if (strcmp(r->method, "GET") == 0)
                allow_add(allow, allow_size, "HEAD");
        }
        if (get_route) {
            *out = get_route;
            return SX_ROUTE_FOUND;
        }
        /* an exact path with the wrong method does not fall through to a
         * prefix: 405 says what the path takes */
        return SX_ROUTE_BAD_METHOD;
    }
    return any_path ? SX_ROUTE_BAD_METHOD : SX_ROUTE_NOT_FOUND;
}

void sx_routes_free(sx_route_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].owner);
        free(t->v[i].method);
        free(t->v[i].path);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sx_http_split_target(const char *target, char *path, const char **query, const char **why)
{
    *query = "";
    path[0] = '\0';
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *slash = strchr(strstr(target, "://") + 3, '/');
        target = slash ? slash : "/";
    }
    if (target[0] != '/') {
        *why = "the request target must start with '/'";
        return -1;
    }
    size_t o = 0;
    const char *p = target;
    for (; *p && *p != '?' && *p != '#'; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0) {
                *why = "the path has a malformed percent escape";
                return -1;
            }
            c = hi * 16 + lo;
            p += 2;
            if (c == 0) {
                *why = "the path has an escaped NUL (%00)";
                return -1;
            }
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "the path has a control character";
            return -1;
        }
        if (o == SX_HTTP_PATH_MAX) {
            *why = "the path is too long";
            return -1;
        }
        path[o++] = (char)c;
    }
    path[o] = '\0';
    if (*p == '?') {
        *query = p + 1;
        /* a fragment is never sent, but do not hand one on */
    }
    for (const char *s = path; (s = strchr(s, '/')) != NULL; s++) {
        if (s[1] == '.' && (s[2] == '/' || s[2] == '\0' ||
                            (s[2] == '.' && (s[3] == '/' || s[3] == '\0')))) {
            *why = "the path has a '.' or '..' segment";
            return -1;
        }
    }
    return 0;
}

int sx_http_listen_canon(const char *url, char *canon, size_t canon_size, sx_error *err)
{
    if (url == NULL || url[0] == '\0')
        return sx_error_set(err, "invalid_config", "HTTP listen address is empty");
    if (strncasecmp(url, "https://", 8) == 0)
        return sx_error_set(err, "invalid_config",
                            "HTTP listen address '%s': https is not served by the host; listen on "
                            "http:// behind a TLS-terminating proxy", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return sx_error_set(err, "invalid_config",
                            "HTTP listen address '%s' must look like http://HOST:PORT "
                            "(e.g. http://0.0.0.0:8080)", url);
    const char *h = url + 7;
    const char *host_end;
    const char *colon;
    if (*h == '[') {
        host_end = strchr(h, ']');
        if (host_end == NULL)
            return sx_error_set(err, "invalid_config",
                                "HTTP listen address '%s': unterminated IPv6 address", url);
        host_end++;
        colon = *host_end == ':' ? host_end : NULL;
    } else {
        colon = strchr(h, ':');
        host_end = colon;
    }
    if (colon == NULL || host_end == h)
        return sx_error_set(err, "invalid_config",
                            "HTTP listen address '%s' must name a host and a port "
                            "(http://HOST:PORT; port 0 = any free port)", url);
    for (const char *c = h; c < host_end; c++)
        if (!(isalnum((unsigned char)*c) || strchr(".-_[]:", *c)))
            return sx_error_set(err, "invalid_config",
                                "HTTP listen address '%s': '%.*s' is not a host name or address",
                                url, (int)(host_end - h), h);
    const char *port = colon + 1;
    size_t digits = strspn(port, "0123456789");
    const char *rest = port + digits;
    long pn = digits && digits <= 5 ? strtol(port, NULL, 10) : -1;
    if (pn < 0 || pn > 65535 || !(rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0')))
        return sx_error_set(err, "invalid_config",
                            "HTTP listen address '%s': the port must be 0..65535 and nothing may "
                            "follow it", url);
    if ((size_t)snprintf(canon, canon_size, "http://%.*s:%ld", (int)(host_end - h), h, pn) >=
        canon_size)
        return sx_error_set(err, "invalid_config", "HTTP listen address '%s' is too long", url);
    return 0;
}
