/*
 * http.h - the host's HTTP server (nng's HTTP server underneath).
 *
 * Listeners: server.http (when set) and every other address a route names;
 * routes naming the same address share a listener, except with port 0
 * (any free port), where server.http and each plugin get their own.
 * Each listener has its own route table (http_routes.h); one nng handler per
 * listener takes every request, matches it, reads the body (up to
 * server.http_max_body, else 413) and queues it for a small pool of worker
 * threads that call the route's handler and complete nng's aio with the
 * response.  A slow handler (a readiness probe asking the Docker daemon)
 * therefore holds a worker, never one of nng's own threads.  Errors are JSON:
 * {"error":{"code":"not_found","message":...}} with 400, 404, 405, 411, 413,
 * 500 and 503.
 *
 * Lifecycle (all on the main thread): sx_http_create() before plugins are
 * initialised; routes from the host and from plugins' init(); sx_http_start()
 * binds every listener (port 0 = any free port; the bound URL is logged and
 * shown by describe); sx_http_stop() before any plugin's fini(): no handler
 * runs once it has returned; sx_http_destroy() at the end.
 */
#ifndef SX_HOST_HTTP_H
#define SX_HOST_HTTP_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "sx/sx_plugin.h"

/* Worker threads calling route handlers, and requests that may wait for
 * one (more get 503). */
#define SX_HTTP_WORKERS 4
#define SX_HTTP_QUEUE_MAX 256
/* A client has this long to send the body it announced. */
#define SX_HTTP_BODY_TIMEOUT_MS 10000

struct sx_http;

/* server_url: server.http; NULL or "" = no default listener (routes that
 * name no address are then refused).  max_body: largest request body, bytes.
 * Returns 0 with *out (caller owns: sx_http_destroy), or -1 with err
 * ("invalid_config": bad address; "out_of_memory"). */
int sx_http_create(struct sx_http **out, const char *server_url, int64_t max_body,
                   sx_error *err);

/* Is there a default listener (server.http)? */
int sx_http_enabled(const struct sx_http *http);

/* Add a route for `owner` (a plugin's name, or "host"); route is copied
 * (route->arg stays the owner's).  Before sx_http_start() only.  Returns 0,
 * or -1 with err ("invalid_config": bad address, path or method, the path
 * taken, no server.http for a route without an address, already started). */
int sx_http_add_route(struct sx_http *http, const char *owner, const sx_http_route *route,
                      sx_error *err);

/* Bind and start every listener; logs "http_listening" with the bound URL
 * of each.  Returns 0, or -1 with err ("invalid_config": cannot listen). */
int sx_http_start(struct sx_http *http, sx_error *err);

/* The bound URL ("http://127.0.0.1:41234") of the listener configured as
 * `listen` (NULL = server.http) for routes of `owner` (only port 0 makes
 * the owner matter: each owner gets its own free port), or NULL when
 * unknown or not started.  Borrowed until sx_http_destroy(). */
const char *sx_http_bound_url(struct sx_http *http, const char *listen, const char *owner);

/* Stop accepting, answer what is queued with 503, join the workers.  No
 * route handler is called after it returns.  Idempotent. */
void sx_http_stop(struct sx_http *http);

/* {"max_body_bytes", "listeners":[{"listen","url","routes":[{"method",
 * "path","plugin"}]}]} (caller owns it). */
cJSON *sx_http_describe(struct sx_http *http);

/* Stop (if not yet) and release.  nng may still hold the listeners' state
 * for a moment; it is freed when nng lets go of it.  NULL is a no-op. */
void sx_http_destroy(struct sx_http *http);

#endif
