/*
 * http_routes.h - the route table of one HTTP listener, and the request
 * line helpers the server needs (pure functions, no I/O).
 *
 * A route is a method (or any) and a path: exact ("/metrics"), or a prefix
 * ending in '/' ("/api/v1/approvals/") that matches itself, the same path
 * without the final '/', and everything below it.  An exact route wins over
 * a prefix; among prefixes the longest wins.  Two routes conflict when
 * their paths are equal (same kind) and their methods overlap (equal, or
 * either is "any").
 */
#ifndef SX_HOST_HTTP_ROUTES_H
#define SX_HOST_HTTP_ROUTES_H

#include <stddef.h>

#include "sx/sx_plugin.h"

/* Longest path a route or a request may have, bytes. */
#define SX_HTTP_PATH_MAX 2048

typedef struct sx_route {
    char *owner;                /* plugin name, or "host" */
    char *method;               /* NULL = any */
    char *path;
    int prefix;                 /* path ends in '/' and matches below it */
    sx_http_handler handler;
    void *arg;
} sx_route;

typedef struct sx_route_table {
    sx_route *v;
    size_t n, cap;
} sx_route_table;

/* Add a route (strings copied).  Returns 0, or -1 with err
 * ("invalid_config": bad method or path, conflict naming the owner of the
 * route already there; "out_of_memory"). */
int sx_routes_add(sx_route_table *t, const char *owner, const char *method, const char *path,
                  sx_http_handler handler, void *arg, sx_error *err);

typedef enum sx_route_result {
    SX_ROUTE_FOUND = 0,
    SX_ROUTE_NOT_FOUND,         /* no route has this path: 404 */
    SX_ROUTE_BAD_METHOD         /* routes have the path, not the method: 405 */
} sx_route_result;

/* The route for a request (path already decoded).  HEAD matches a GET
 * route when no route takes HEAD itself.  On SX_ROUTE_BAD_METHOD `allow`
 * (may be NULL) receives the methods that would match ("GET, HEAD"). */
sx_route_result sx_routes_match(const sx_route_table *t, const char *method, const char *path,
                                const sx_route **out, char *allow, size_t allow_size);

void sx_routes_free(sx_route_table *t);

/* Split a request target ("/a%20b?x=1", or absolute "http://h/a?x") into
 * the percent-decoded path and the raw query (after '?', "" when none).
 * Returns 0, or -1 with *why set when the target is not acceptable:
 * not starting with '/', a bad or NUL escape, a control character, a "."
 * or ".." segment, or longer than SX_HTTP_PATH_MAX.  path must hold
 * SX_HTTP_PATH_MAX + 1 bytes; *query points into `target`. */
int sx_http_split_target(const char *target, char *path, const char **query, const char **why);

/* Check a listen address "http://HOST:PORT" (port 0 = any free port) and
 * write the canonical "http://HOST:PORT" form into canon.  Returns 0, or
 * -1 with err ("invalid_config"). */
int sx_http_listen_canon(const char *url, char *canon, size_t canon_size, sx_error *err);

#endif
