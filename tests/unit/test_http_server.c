/*
 * test_http_server.c - the host's HTTP server module (host/http.c) in
 * process, over real loopback connections: routing to handlers with the
 * request's method, decoded path, query, headers and body; JSON errors for
 * 400/404/405/411/413/500; port 0; a slow handler not holding up others;
 * nothing called after stop.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"

/* ---------------------------------------------------------- raw client */

typedef struct reply {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
} reply;

static int port_of(const char *url)
{
    const char *c = strrchr(url, ':');
    return c ? atoi(c + 1) : -1;
}

/* Send `req` as is to 127.0.0.1:port and read the answer until the server
 * closes (requests say "Connection: close").  0, or -1 when no answer. */
static int raw_http(int port, const char *req, size_t req_len, reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t off = 0; off < req_len;) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (cap - n < 2)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[n] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (n == 0 || sep == NULL || sscanf(buf, "HTTP/1.1 %d", &out->status) != 1) {
        free(buf);
        return -1;
    }
    snprintf(out->head, sizeof out->head, "%.*s", (int)(sep - buf), buf);
    out->body_len = n - (size_t)(sep + 4 - buf);
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, sep + 4, out->body_len);
    out->body[out->body_len] = '\0';
    free(buf);
    return 0;
}

static int get(int port, const char *method, const char *target, reply *out)
{
    char req[8192];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     method, target);
    return raw_http(port, req, (size_t)n, out);
}

static const char *error_code(const reply *r)
{
    static char code[64];
    cJSON *j = cJSON_Parse(r->body);
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
    snprintf(code, sizeof code, "%s", cJSON_IsString(c) ? c->valuestring : "(none)");
    cJSON_Delete(j);
    return code;
}

/* ------------------------------------------------------------ handlers */

static atomic_int calls;

/* Echo what the handler saw as JSON. */
static int echo(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    atomic_fetch_add(&calls, 1);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arg", arg);
    cJSON_AddStringToObject(o, "method", req->method);
    cJSON_AddStringToObject(o, "path", req->path);
    cJSON_AddStringToObject(o, "query", req->query);
    char *body = strndup(req->body, req->body_len);
    cJSON_AddStringToObject(o, "body", body);
    free(body);
    cJSON_AddNumberToObject(o, "body_len", (double)req->body_len);
    const char *h = req->header(req, "x-test-header"); /* any case */
    cJSON_AddStringToObject(o, "header", h ? h : "(none)");
    resp->status = 201;
    resp->body = cJSON_PrintUnformatted(o);
    resp->body_len = strlen(resp->body);
    cJSON_Delete(o);
    return 0;
}

static int fails(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req;
    resp->body = strdup("not sent");
    resp->body_len = 8;
    return -1;
}

static int bad_status(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req;
    resp->status = 42;
    return 0;
}

static int plain_text(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; version=0.0.4");
    resp->body = strdup("a 1\n");
    resp->body_len = 4;
    return 0;
}

/* Blocks until released: to show one slow handler holds one worker only. */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cond = PTHREAD_COND_INITIALIZER;
static int slow_inside, slow_release;

static int slow(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req, (void)resp;
    pthread_mutex_lock(&slow_lock);
    slow_inside = 1;
    pthread_cond_broadcast(&slow_cond);
    while (!slow_release)
        pthread_cond_wait(&slow_cond, &slow_lock);
    pthread_mutex_unlock(&slow_lock);
    return 0;
}

/* ------------------------------------------------------------- fixture */

static struct sx_http *H;
static int PORT;

static void add(const char *owner, const char *method, const char *path, const char *listen,
                sx_http_handler fn, void *arg)
{
    sx_error err = {{0}, {0}};
    sx_http_route r = {.struct_size = sizeof r, .method = method, .path = path, .listen = listen,
                       .handler = fn, .arg = arg};
    ck_assert_msg(sx_http_add_route(H, owner, &r, &err) == 0, "%s: %s", path, err.message);
}

static void setup(void)
{
    sx_error err = {{0}, {0}};
    atomic_store(&calls, 0);
    ck_assert_int_eq(sx_http_create(&H, "http://127.0.0.1:0", 64, &err), 0);
    add("host", "GET", "/echo", NULL, echo, "host");
    add("plugin", NULL, "/api/", NULL, echo, "prefix");
    add("plugin", "POST", "/fails", NULL, fails, NULL);
    add("plugin", "GET", "/bad-status", NULL, bad_status, NULL);
    add("plugin", "GET", "/text", NULL, plain_text, NULL);
    add("plugin", "GET", "/slow", NULL, slow, NULL);
    ck_assert_int_eq(sx_http_start(H, &err), 0);
    const char *url = sx_http_bound_url(H, NULL, NULL);
    ck_assert_ptr_nonnull(url);
    PORT = port_of(url);
    ck_assert_int_gt(PORT, 0);
}

static void teardown(void)
{
    sx_http_destroy(H);
    H = NULL;
}

/* -------------------------------------------------------------- tests */

START_TEST(handler_sees_the_request)
{
    const char req[] = "PUT /api/a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "X-Test-Header: hello\r\nContent-Length: 11\r\n\r\nhello\0world";
    reply r;
    ck_assert_int_eq(raw_http(PORT, req, sizeof req - 1, &r), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_ptr_nonnull(strcasestr(r.head, "Content-Type: application/json"));
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "arg")->valuestring, "prefix");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "method")->valuestring, "PUT");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "path")->valuestring, "/api/a b/c");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "query")->valuestring, "x=1&y=%41");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "header")->valuestring, "hello");
    ck_assert_double_eq(cJSON_GetObjectItem(j, "body_len")->valuedouble, 11); /* NUL-safe */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "body")->valuestring, "hello");
    cJSON_Delete(j);
    free(r.body);

    ck_assert_int_eq(get(PORT, "GET", "/text", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strcasestr(r.head, "Content-Type: text/plain; version=0.0.4"));
    ck_assert_str_eq(r.body, "a 1\n");
    free(r.body);
    /* HEAD: the GET route, headers only */
    ck_assert_int_eq(get(PORT, "HEAD", "/echo", &r), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_uint_eq(r.body_len, 0);
    free(r.body);
}
END_TEST

START_TEST(json_errors)
{
    reply r;
    ck_assert_int_eq(get(PORT, "GET", "/nothing", &r), 0);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(error_code(&r), "not_found");
    ck_assert_ptr_nonnull(strcasestr(r.head, "Content-Type: application/json"));
    free(r.body);
    ck_assert_int_eq(get(PORT, "DELETE", "/echo", &r), 0);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(error_code(&r), "method_not_allowed");
    ck_assert_ptr_nonnull(strcasestr(r.head, "Allow: GET, HEAD"));
    free(r.body);
    ck_assert_int_eq(get(PORT, "GET", "/a%zz", &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(error_code(&r), "bad_request");
    free(r.body);
    ck_assert_int_eq(get(PORT, "POST", "/fails", &r), 0);
    ck_assert_int_eq(r.status, 500);
    ck_assert_str_eq(error_code(&r), "internal_error");
    ck_assert_ptr_null(strstr(r.body, "not sent"));
    free(r.body);
    ck_assert_int_eq(get(PORT, "GET", "/bad-status", &r), 0);
    ck_assert_int_eq(r.status, 500);
    free(r.body);
    /* above http_max_body (64 here): 413, the body never read */
    const char big[] = "POST /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Length: 65\r\n\r\n";
    ck_assert_int_eq(raw_http(PORT, big, sizeof big - 1, &r), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(error_code(&r), "payload_too_large");
    free(r.body);
    const char chunked[] = "POST /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    ck_assert_int_eq(raw_http(PORT, chunked, sizeof chunked - 1, &r), 0);
    ck_assert_int_eq(r.status, 411);
    ck_assert_str_eq(error_code(&r), "length_required");
    free(r.body);
    const char badlen[] = "POST /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          "Content-Length: 1x\r\n\r\n";
    ck_assert_int_eq(raw_http(PORT, badlen, sizeof badlen - 1, &r), 0);
    ck_assert_int_eq(r.status, 400);
    free(r.body);
    /* the limit itself is fine */
    char ok[200];
    int n = snprintf(ok, sizeof ok, "POST /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Length: 64\r\n\r\n%064d", 7);
    ck_assert_int_eq(raw_http(PORT, ok, (size_t)n, &r), 0);
    ck_assert_int_eq(r.status, 201);
    free(r.body);
}
END_TEST

static void *slow_client(void *arg)
{
    (void)arg;
    reply *r = malloc(sizeof *r);
    get(PORT, "GET", "/slow", r);
    return r;
}

START_TEST(a_slow_handler_holds_one_worker)
{
    pthread_t t;
    slow_inside = slow_release = 0;
    pthread_create(&t, NULL, slow_client, NULL);
    pthread_mutex_lock(&slow_lock);
    while (!slow_inside)
        pthread_cond_wait(&slow_cond, &slow_lock);
    pthread_mutex_unlock(&slow_lock);
    /* while it is stuck, others are served */
    for (int i = 0; i < 20; i++) {
        reply r;
        ck_assert_int_eq(get(PORT, "GET", "/echo", &r), 0);
        ck_assert_int_eq(r.status, 201);
        free(r.body);
    }
    pthread_mutex_lock(&slow_lock);
    slow_release = 1;
    pthread_cond_broadcast(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    reply *r;
    pthread_join(t, (void **)&r);
    ck_assert_int_eq(r->status, 200);
    free(r->body);
    free(r);
}
END_TEST

START_TEST(nothing_is_called_after_stop)
{
    reply r;
    ck_assert_int_eq(get(PORT, "GET", "/echo", &r), 0);
    free(r.body);
    int before = atomic_load(&calls);
    ck_assert_int_eq(before, 1);
    sx_http_stop(H);
    ck_assert_int_eq(get(PORT, "GET", "/echo", &r), -1); /* nobody listens */
    ck_assert_int_eq(atomic_load(&calls), before);
    sx_http_stop(H); /* idempotent */
}
END_TEST

START_TEST(routes_are_checked_and_fixed_at_start)
{
    sx_error err = {{0}, {0}};
    sx_http_route r = {.struct_size = sizeof r, .method = "GET", .path = "/late", .handler = echo};
    ck_assert_int_eq(sx_http_add_route(H, "late", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "init()"));
    /* describe lists the routes and the bound address */
    cJSON *d = sx_http_describe(H);
    const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "listeners"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(l, "listen")->valuestring, "http://127.0.0.1:0");
    ck_assert_int_eq(port_of(cJSON_GetObjectItem(l, "url")->valuestring), PORT);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(l, "routes")), 6);
    cJSON_Delete(d);
}
END_TEST

START_TEST(disabled_own_ports_and_bind_failures)
{
    sx_error err = {{0}, {0}};
    struct sx_http *h;
    /* no server.http: routes without an address are refused, others work */
    ck_assert_int_eq(sx_http_create(&h, NULL, 1024, &err), 0);
    ck_assert(!sx_http_enabled(h));
    sx_http_route r = {.struct_size = sizeof r, .method = "GET", .path = "/x", .handler = echo,
                       .arg = "a"};
    ck_assert_int_eq(sx_http_add_route(h, "p", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "server.http"));
    r.listen = "http://127.0.0.1:0";
    ck_assert_int_eq(sx_http_add_route(h, "p", &r, &err), 0);
    r.path = "/y";
    ck_assert_int_eq(sx_http_add_route(h, "q", &r, &err), 0); /* port 0: its own port */
    /* a fixed port already taken by the fixture's server */
    char taken[64];
    snprintf(taken, sizeof taken, "http://127.0.0.1:%d", PORT);
    r.listen = taken;
    r.path = "/z";
    ck_assert_int_eq(sx_http_add_route(h, "p", &r, &err), 0);
    ck_assert_int_eq(sx_http_start(h, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, taken));
    const char *p_url = sx_http_bound_url(h, "http://127.0.0.1:0", "p");
    const char *q_url = sx_http_bound_url(h, "http://127.0.0.1:0", "q");
    ck_assert_ptr_nonnull(p_url);
    ck_assert_ptr_nonnull(q_url);
    ck_assert_int_ne(port_of(p_url), port_of(q_url));
    reply rep;
    ck_assert_int_eq(get(port_of(q_url), "GET", "/y", &rep), 0);
    ck_assert_int_eq(rep.status, 201);
    free(rep.body);
    ck_assert_int_eq(get(port_of(q_url), "GET", "/x", &rep), 0); /* p's route, not q's port */
    ck_assert_int_eq(rep.status, 404);
    free(rep.body);
    sx_http_destroy(h);
    /* a bad server.http */
    ck_assert_int_eq(sx_http_create(&h, "0.0.0.0:8080", 1024, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "server.http"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_server");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, handler_sees_the_request);
    tcase_add_test(tc, json_errors);
    tcase_add_test(tc, a_slow_handler_holds_one_worker);
    tcase_add_test(tc, nothing_is_called_after_stop);
    tcase_add_test(tc, routes_are_checked_and_fixed_at_start);
    tcase_add_test(tc, disabled_own_ports_and_bind_failures);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
