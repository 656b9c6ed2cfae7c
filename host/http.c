/* http.c - the host's HTTP server on nng (see http.h). */
#define _POSIX_C_SOURCE 200809L
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_routes.h"
#include "log.h"
#include "sx/sx_util.h"

#define SX_HTTP_URL_MAX 300
/* The key owner of server.http's listener (see listen_key). */
#define SX_HTTP_DEFAULT_OWNER "server.http"

struct sx_http;

/* One listening address and its routes.  Routes are fixed once started, so
 * nng's threads read them without a lock. */
typedef struct sx_listener {
    struct sx_http *core;
    char key[SX_HTTP_URL_MAX + 80];     /* listen_key() */
    char listen[SX_HTTP_URL_MAX];       /* canonical configured address */
    char url[SX_HTTP_URL_MAX];          /* bound address, once started */
    int is_default;                     /* server.http */
    sx_route_table routes;
    nng_http_server *srv;               /* held */
    int started;
} sx_listener;

/* A request on its way to a worker. */
typedef struct sx_http_job {
    struct sx_http_job *next;
    struct sx_http *core;               /* one reference */
    const sx_route *route;
    nng_aio *aio;                       /* nng's: finish it exactly once */
    nng_http_req *req;                  /* nng's, valid until aio finishes */
    nng_aio *read_aio;                  /* ours, for the body */
    char method[24];
    char *query;
    char *body;
    size_t body_len;
    char path[SX_HTTP_PATH_MAX + 1];
} sx_http_job;

/*
 * Shared by the host, every nng handler (released by the handler's
 * destructor when nng lets go of it) and every job: freed when the last of
 * them lets go, so nng may still call the handler while the host stops.
 */
struct sx_http {
    atomic_int refs;
    pthread_mutex_t lock;               /* queue, stopping, workers */
    pthread_cond_t wake;
    int64_t max_body;
    char default_listen[SX_HTTP_URL_MAX];   /* "" = no server.http */
    sx_listener **listeners;
    size_t n_listeners;
    sx_http_job *head, *tail;
    size_t queued;
    int started;
    int stopping;
    pthread_t workers[SX_HTTP_WORKERS];
    int n_workers;
};

static void core_free(struct sx_http *h)
{
    for (size_t i = 0; i < h->n_listeners; i++) {
        sx_routes_free(&h->listeners[i]->routes);
        free(h->listeners[i]);
    }
    free(h->listeners);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static void core_hold(struct sx_http *h) { atomic_fetch_add(&h->refs, 1); }

static void core_release(struct sx_http *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1)
        core_free(h);
}

/* nng's destructor of a handler's data: the handler's reference. */
static void handler_data_release(void *arg)
{
    sx_listener *l = arg;
    core_release(l->core);
}

/* ---------------------------------------------------------------- replies */

static const char *status_code_name(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 411: return "length_required";
    case 413: return "payload_too_large";
    case 503: return "unavailable";
    default: return "internal_error";
    }
}

/* Complete nng's aio with a response.  `close` asks nng to close the
 * connection afterwards (a body we did not read must not be taken for the
 * next request).  Takes ownership of nothing. */
static void finish_response(nng_aio *aio, int status, const char *content_type, const void *body,
                            size_t len, const char *allow, int close)
{
    nng_http_res *res;
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    int rv = nng_http_res_set_status(res, (uint16_t)status);
    if (rv == 0)
        rv = nng_http_res_set_header(res, "Content-Type", content_type);
    if (rv == 0 && allow && *allow)
        rv = nng_http_res_set_header(res, "Allow", allow);
    if (rv == 0 && close)
        rv = nng_http_res_set_header(res, "Connection", "close");
    /* copy_data cannot copy nothing (it fails allocating 0 bytes) */
    if (rv == 0)
        rv = len ? nng_http_res_copy_data(res, body, len) : nng_http_res_set_data(res, NULL, 0);
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void finish_error(nng_aio *aio, int status, const char *message, const char *allow,
                         int close)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", status_code_name(status));
    cJSON_AddStringToObject(e, "message", message);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    finish_response(aio, status, "application/json", text, strlen(text), allow, close);
    free(text);
}

/* ------------------------------------------------------------------ jobs */

static void job_free(sx_http_job *job)
{
    if (job->read_aio)
        nng_aio_reap(job->read_aio); /* may be called from its own callback */
    free(job->body);
    free(job->query);
    struct sx_http *core = job->core;
    free(job);
    core_release(core);
}

static const char *job_header(const sx_http_request *req, const char *name)
{
    const sx_http_job *job = req->host_private;
    return name ? nng_http_req_get_header(job->req, name) : NULL;
}

/* Call the route's handler and answer (a worker thread). */
static void job_run(sx_http_job *job)
{
    sx_http_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.method = job->method;
    req.path = job->path;
    req.query = job->query ? job->query : "";
    req.body = job->body ? job->body : "";
    req.body_len = job->body_len;
    req.remote_addr = ""; /* nng 1.5's HTTP server does not tell the peer */
    req.header = job_header;
    req.host_private = job;
    sx_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.struct_size = sizeof resp;
    resp.status = 200;
    snprintf(resp.content_type, sizeof resp.content_type, "application/json");
    const sx_route *r = job->route;
    int rv = r->handler(r->arg, &req, &resp);
    if (rv != 0 || resp.status < 100 || resp.status > 599) {
        char msg[200];
        snprintf(msg, sizeof msg, rv != 0 ? "the handler of %s (%s) failed"
                                          : "the handler of %s (%s) gave no valid status",
                 r->path, r->owner);
        if (rv == 0)
            sx_log(SX_LOG_ERROR, "http", "%s: status %d", msg, resp.status);
        free(resp.body);
        finish_error(job->aio, 500, msg, NULL, 0);
        return;
    }
    resp.content_type[sizeof resp.content_type - 1] = '\0';
    finish_response(job->aio, resp.status,
                    resp.content_type[0] ? resp.content_type : "application/json",
                    resp.body, resp.body ? resp.body_len : 0, NULL, 0);
    free(resp.body);
}

/* Hand a job to the workers, or answer 503 when they are stopping or
 * swamped.  Consumes the job. */
static void job_enqueue(sx_http_job *job)
{
    struct sx_http *h = job->core;
    pthread_mutex_lock(&h->lock);
    if (h->stopping || h->queued >= SX_HTTP_QUEUE_MAX) {
        int stopping = h->stopping;
        pthread_mutex_unlock(&h->lock);
        finish_error(job->aio, 503,
                     stopping ? "the script executor is shutting down"
                              : "too many HTTP requests are waiting; retry later",
                     NULL, stopping);
        job_free(job);
        return;
    }
    if (h->tail)
        h->tail->next = job;
    else
        h->head = job;
    h->tail = job;
    h->queued++;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
}

static void *worker_main(void *arg)
{
    struct sx_http *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->head == NULL && !h->stopping)
            pthread_cond_wait(&h->wake, &h->lock);
        sx_http_job *job = h->head;
        if (job == NULL)
            break;
        h->head = job->next;
        if (h->head == NULL)
            h->tail = NULL;
        h->queued--;
        int stopping = h->stopping;
        pthread_mutex_unlock(&h->lock);
        if (stopping)
            finish_error(job->aio, 503, "the script executor is shutting down", NULL, 1);
        else
            job_run(job);
        job_free(job);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void body_done(void *arg)
{
    sx_http_job *job = arg;
    int rv = nng_aio_result(job->read_aio);
    if (rv != 0) {
        /* the client went away or took too long: nng closes the connection */
        nng_aio_finish(job->aio, rv);
        job_free(job);
        return;
    }
    job->body[job->body_len] = '\0';
    job_enqueue(job);
}

/* ------------------------------------------------------- nng's handler */

/* Every request of a listener comes here, on one of nng's threads: match,
 * check the body's size, start reading it, queue.  Nothing slow. */
static void http_request_cb(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *handler = nng_aio_get_input(aio, 1);
    nng_http_conn *conn = nng_aio_get_input(aio, 2);
    sx_listener *l = nng_http_handler_get_data(handler);
    struct sx_http *h = l->core;

    const char *cl_text = nng_http_req_get_header(req, "Content-Length");
    const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
    int has_body = (cl_text && strcmp(cl_text, "0") != 0) || te != NULL;

    pthread_mutex_lock(&h->lock);
    int stopping = h->stopping;
    pthread_mutex_unlock(&h->lock);
    if (stopping) {
        finish_error(aio, 503, "the script executor is shutting down", NULL, 1);
        return;
    }
    sx_http_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    core_hold(h);
    job->core = h;
    job->aio = aio;
    job->req = req;
    snprintf(job->method, sizeof job->method, "%s", nng_http_req_get_method(req));

    const char *query = "", *why = NULL;
    if (sx_http_split_target(nng_http_req_get_uri(req), job->path, &query, &why) != 0) {
        finish_error(aio, 400, why, NULL, has_body);
        job_free(job);
        return;
    }
    char allow[128];
    switch (sx_routes_match(&l->routes, job->method, job->path, &job->route, allow, sizeof allow)) {
    case SX_ROUTE_FOUND:
        break;
    case SX_ROUTE_BAD_METHOD: {
        char msg[SX_HTTP_PATH_MAX + 200];
        snprintf(msg, sizeof msg, "%s is not served for %s (allowed: %s)", job->method, job->path,
                 allow);
        finish_error(aio, 405, msg, allow, has_body);
        job_free(job);
        return;
    }
    case SX_ROUTE_NOT_FOUND: {
        char msg[SX_HTTP_PATH_MAX + 100];
        snprintf(msg, sizeof msg, "nothing is served at %s on this address", job->path);
        finish_error(aio, 404, msg, NULL, has_body);
        job_free(job);
        return;
    }
    }
    job->query = strdup(query);
    if (job->query == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        job_free(job);
        return;
    }
    if (te != NULL && strcasecmp(te, "identity") != 0) {
        finish_error(aio, 411, "request bodies must be sent with a Content-Length (chunked "
                     "transfer encoding is not accepted)", NULL, 1);
        job_free(job);
        return;
    }
    unsigned long long cl = 0;
    if (cl_text) {
        char *end = NULL;
        errno = 0;
        cl = strtoull(cl_text, &end, 10);
        if (errno != 0 || end == cl_text || *end != '\0' || cl_text[0] == '-') {
            finish_error(aio, 400, "Content-Length is not a number", NULL, 1);
            job_free(job);
            return;
        }
    }
    if (cl > (unsigned long long)h->max_body) {
        char msg[200];
        snprintf(msg, sizeof msg, "the body is %llu bytes, more than the %lld this server takes "
                 "(server.http_max_body)", cl, (long long)h->max_body);
        finish_error(aio, 413, msg, NULL, 1);
        job_free(job);
        return;
    }
    if (cl == 0) {
        job_enqueue(job);
        return;
    }
    job->body_len = (size_t)cl;
    job->body = malloc((size_t)cl + 1);
    if (job->body == NULL || nng_aio_alloc(&job->read_aio, body_done, job) != 0) {
        finish_error(aio, 500, "out of memory reading the request body", NULL, 1);
        job_free(job);
        return;
    }
    nng_iov iov = {.iov_buf = job->body, .iov_len = (size_t)cl};
    nng_aio_set_iov(job->read_aio, 1, &iov);
    nng_aio_set_timeout(job->read_aio, SX_HTTP_BODY_TIMEOUT_MS);
    nng_http_conn_read_all(conn, job->read_aio);
}

/* ---------------------------------------------------------- listeners */

/* Routes naming the same address share its listener.  Port 0 ("any free
 * port") is the exception: server.http and each plugin get a port of their
 * own, as they would with distinct fixed ports. */
static void listen_key(const char *canon, const char *owner, char *key, size_t size)
{
    size_t n = strlen(canon);
    if (n >= 2 && strcmp(canon + n - 2, ":0") == 0)
        snprintf(key, size, "%s#%s", canon, owner ? owner : "");
    else
        snprintf(key, size, "%s", canon);
}

static sx_listener *find_listener(struct sx_http *h, const char *key)
{
    for (size_t i = 0; i < h->n_listeners; i++)
        if (strcmp(h->listeners[i]->key, key) == 0)
            return h->listeners[i];
    return NULL;
}

/* The listener for canonical address `canon` as `owner` uses it, created
 * (and its nng server held, its handler added) on first use. */
static sx_listener *get_listener(struct sx_http *h, const char *canon, const char *owner,
                                 sx_error *err)
{
    char key[sizeof h->listeners[0]->key];
    listen_key(canon, owner, key, sizeof key);
    sx_listener *l = find_listener(h, key);
    if (l)
        return l;
    sx_listener **v = realloc(h->listeners, (h->n_listeners + 1) * sizeof *v);
    if (v == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    h->listeners = v;
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    l->core = h;
    snprintf(l->key, sizeof l->key, "%s", key);
    snprintf(l->listen, sizeof l->listen, "%s", canon);
    l->is_default = strcmp(owner, SX_HTTP_DEFAULT_OWNER) == 0 ||
                    strcmp(key, h->default_listen) == 0;
    h->listeners[h->n_listeners++] = l;
    return l;
}

int sx_http_create(struct sx_http **out, const char *server_url, int64_t max_body, sx_error *err)
{
    *out = NULL;
    struct sx_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    atomic_init(&h->refs, 1);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    h->max_body = max_body;
    if (server_url && *server_url &&
        sx_http_listen_canon(server_url, h->default_listen, sizeof h->default_listen, err) != 0) {
        char msg[SX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        sx_error_set(err, "invalid_config", "script_executor.server.http: %s", msg);
        core_release(h);
        return -1;
    }
    *out = h;
    return 0;
}

int sx_http_enabled(const struct sx_http *h) { return h && h->default_listen[0] != '\0'; }

int sx_http_add_route(struct sx_http *h, const char *owner, const sx_http_route *route,
                      sx_error *err)
{
    if (route == NULL || !SX_HAS_FIELD(route, sx_http_route, arg))
        return sx_error_set(err, "invalid_config", "http_route: the route is NULL or too small");
    if (h->started)
        return sx_error_set(err, "invalid_config",
                            "http_route %s: routes are added from init() only (the server is "
                            "already running)", route->path ? route->path : "(null)");
    char canon[SX_HTTP_URL_MAX];
    const char *key_owner = owner;
    if (route->listen == NULL) {
        key_owner = SX_HTTP_DEFAULT_OWNER;
        if (!sx_http_enabled(h))
            return sx_error_set(err, "invalid_config",
                                "http_route %s: HTTP is disabled (set script_executor.server.http, "
                                "e.g. \"http://0.0.0.0:8080\")", route->path ? route->path : "");
        snprintf(canon, sizeof canon, "%s", h->default_listen);
    } else if (sx_http_listen_canon(route->listen, canon, sizeof canon, err) != 0) {
        return -1;
    }
    sx_route_table probe = {0};
    /* validate the path and method before creating a listener for them */
    if (sx_routes_add(&probe, owner, route->method, route->path, route->handler, route->arg,
                      err) != 0)
        return -1;
    sx_routes_free(&probe);
    sx_listener *l = get_listener(h, canon, key_owner, err);
    if (l == NULL)
        return -1;
    return sx_routes_add(&l->routes, owner, route->method, route->path, route->handler,
                         route->arg, err);
}

static void format_bound(const sx_listener *l, char *out, size_t size)
{
    nng_sockaddr sa;
    char ip[INET6_ADDRSTRLEN] = "";
    if (nng_http_server_get_addr(l->srv, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET) {
            struct in_addr a = {.s_addr = sa.s_in.sa_addr};
            inet_ntop(AF_INET, &a, ip, sizeof ip);
            snprintf(out, size, "http://%s:%u", ip, (unsigned)ntohs(sa.s_in.sa_port));
            return;
        }
        if (sa.s_family == NNG_AF_INET6) {
            inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof ip);
            snprintf(out, size, "http://[%s]:%u", ip, (unsigned)ntohs(sa.s_in6.sa_port));
            return;
        }
    }
    snprintf(out, size, "%s", l->listen);
}

/* Hold nng's server for the listener, add the one handler, bind.  nng
 * shares a server among holders of one host:port until it is started (then
 * a port-0 server is known by its bound port), so listeners are opened one
 * after the other, each started before the next is held. */
static int listener_open(sx_listener *l, sx_error *err)
{
    struct sx_http *h = l->core;
    nng_url *url = NULL;
    int rv = nng_url_parse(&url, l->listen);
    if (rv == 0) {
        rv = nng_http_server_hold(&l->srv, url);
        nng_url_free(url);
    }
    if (rv != 0) {
        l->srv = NULL;
        return sx_error_set(err, "invalid_config", "HTTP listen address %s: %s", l->listen,
                            nng_strerror(rv));
    }
    nng_http_handler *hd = NULL;
    rv = nng_http_handler_alloc(&hd, "/", http_request_cb);
    if (rv == 0)
        rv = nng_http_handler_set_method(hd, NULL);
    if (rv == 0)
        rv = nng_http_handler_set_tree(hd);
    if (rv == 0)
        rv = nng_http_handler_collect_body(hd, false, 0);
    if (rv == 0) {
        rv = nng_http_handler_set_data(hd, l, handler_data_release);
        if (rv == 0)
            core_hold(h); /* released by the handler's destructor */
    }
    if (rv == 0)
        rv = nng_http_server_add_handler(l->srv, hd);
    if (rv != 0) {
        if (hd)
            nng_http_handler_free(hd); /* runs the destructor if it was set */
        return sx_error_set(err, "invalid_config", "cannot serve HTTP on %s%s: %s", l->listen,
                            l->is_default ? " (script_executor.server.http)" : "",
                            rv == NNG_EADDRINUSE ? "another listener of this process has the "
                                                   "address" : nng_strerror(rv));
    }
    rv = nng_http_server_start(l->srv);
    if (rv != 0)
        return sx_error_set(err, "invalid_config", "cannot serve HTTP on %s%s: %s", l->listen,
                            l->is_default ? " (script_executor.server.http)" : "",
                            nng_strerror(rv));
    l->started = 1;
    format_bound(l, l->url, sizeof l->url);
    return 0;
}

static cJSON *routes_json(const sx_listener *l)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < l->routes.n; i++) {
        const sx_route *r = &l->routes.v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", r->method ? r->method : "*");
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "plugin", r->owner);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

int sx_http_start(struct sx_http *h, sx_error *err)
{
    if (h->started)
        return 0;
    h->started = 1; /* routes are fixed from here on */
    if (h->n_listeners == 0)
        return 0;
    for (int i = 0; i < SX_HTTP_WORKERS; i++) {
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            return sx_error_set(err, "out_of_memory", "HTTP: cannot start a worker thread");
        h->n_workers++;
    }
    for (size_t i = 0; i < h->n_listeners; i++) {
        sx_listener *l = h->listeners[i];
        if (listener_open(l, err) != 0)
            return -1;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "event", "http_listening");
        cJSON_AddStringToObject(f, "listen", l->listen);
        cJSON_AddStringToObject(f, "url", l->url);
        cJSON_AddItemToObject(f, "routes", routes_json(l));
        char *fields = cJSON_PrintUnformatted(f);
        cJSON_Delete(f);
        sx_log_fields(SX_LOG_INFO, "http", fields, "serving HTTP on %s (%zu route%s)", l->url,
                      l->routes.n, l->routes.n == 1 ? "" : "s");
        free(fields);
    }
    return 0;
}

const char *sx_http_bound_url(struct sx_http *h, const char *listen, const char *owner)
{
    if (h == NULL)
        return NULL;
    char canon[SX_HTTP_URL_MAX], key[SX_HTTP_URL_MAX + 80];
    sx_error err;
    if (listen == NULL)
        snprintf(canon, sizeof canon, "%s", h->default_listen);
    else if (sx_http_listen_canon(listen, canon, sizeof canon, &err) != 0)
        return NULL;
    listen_key(canon, listen == NULL ? SX_HTTP_DEFAULT_OWNER : owner, key, sizeof key);
    sx_listener *l = find_listener(h, key);
    return l && l->started ? l->url : NULL;
}

void sx_http_stop(struct sx_http *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    h->stopping = 1;
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < h->n_listeners; i++)
        if (h->listeners[i]->started)
            nng_http_server_stop(h->listeners[i]->srv);
    for (int i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    h->n_workers = 0;
}

cJSON *sx_http_describe(struct sx_http *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "server_http", h && h->default_listen[0] ? h->default_listen : "");
    cJSON_AddNumberToObject(o, "max_body_bytes", h ? (double)h->max_body : 0);
    cJSON *arr = cJSON_AddArrayToObject(o, "listeners");
    for (size_t i = 0; h && i < h->n_listeners; i++) {
        const sx_listener *l = h->listeners[i];
        cJSON *lj = cJSON_CreateObject();
        cJSON_AddStringToObject(lj, "listen", l->listen);
        if (l->started)
            cJSON_AddStringToObject(lj, "url", l->url);
        else
            cJSON_AddNullToObject(lj, "url");
        cJSON_AddItemToObject(lj, "routes", routes_json(l));
        cJSON_AddItemToArray(arr, lj);
    }
    return o;
}

void sx_http_destroy(struct sx_http *h)
{
    if (h == NULL)
        return;
    sx_http_stop(h);
    /* Release the servers: nng stops them, finalises their handlers (whose
     * destructors drop their references) and frees them, perhaps a moment
     * later on its own thread. */
    for (size_t i = 0; i < h->n_listeners; i++)
        if (h->listeners[i]->srv)
            nng_http_server_release(h->listeners[i]->srv);
    core_release(h);
}
