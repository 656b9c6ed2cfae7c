/*
 * test_k8s_api.c - the Kubernetes REST client of backend_k8s
 * (plugins/backend_k8s/k8s_api.c, k8s_kubeconfig.c, k8s_watch.c,
 * k8s_logs.c), compiled from the plugin's sources: kubeconfig and
 * in-cluster configuration, requests against a small HTTP server of this
 * test (bearer token, status codes -> error codes, timeouts, abort, request
 * counters), chunked streams, the watch's reconnect and relist after 410,
 * and the exactly-once log resume.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "k8s_api.h"
#include "k8s_logs.h"
#include "k8s_watch.h"
#include "sx/sx_util.h"

/* ---------------------------------------------------------------- files */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sx-k8s-api-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *name, const char *fmt, ...)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *tpath(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* ---------------------------------------------------------------- server */

/* One request as the server saw it. */
typedef struct seen_req {
    char method[16];
    char path[1024];
    char auth[256];
} seen_req;

typedef void (*handler_fn)(int fd, const seen_req *rq, int n);

static struct {
    int lfd;
    int port;
    pthread_t th;
    handler_fn handler;
    pthread_mutex_t lock;
    seen_req reqs[64];
    int n;
    int stop;
} srv;

/* The client may close a stream as soon as it has what it wants (the end
 * of a watch, a deadline): a failed write is not the server's error, and
 * what the client received is what the tests assert on. */
static void send_str(int fd, const char *s)
{
    (void)sx_write_all(fd, s, strlen(s));
}

static void reply(int fd, int status, const char *body)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n", status, strlen(body));
    send_str(fd, head);
    send_str(fd, body);
}

static void chunk(int fd, const char *s)
{
    char head[32];
    snprintf(head, sizeof head, "%zx\r\n", strlen(s));
    send_str(fd, head);
    send_str(fd, s);
    send_str(fd, "\r\n");
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (srv.stop) {
            close(fd);
            return NULL;
        }
        char buf[8192];
        size_t n = 0;
        while (n < sizeof buf - 1) {
            ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        buf[n] = '\0';
        seen_req rq;
        memset(&rq, 0, sizeof rq);
        sscanf(buf, "%15s %1023s", rq.method, rq.path);
        const char *a = strcasestr(buf, "\r\nAuthorization: ");
        if (a) {
            a += 17;
            size_t l = strcspn(a, "\r");
            snprintf(rq.auth, sizeof rq.auth, "%.*s", (int)l, a);
        }
        pthread_mutex_lock(&srv.lock);
        int idx = srv.n;
        if (srv.n < 64)
            srv.reqs[srv.n++] = rq;
        pthread_mutex_unlock(&srv.lock);
        srv.handler(fd, &rq, idx);
        close(fd);
    }
}

static void server_start(handler_fn h)
{
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.lock, NULL);
    srv.handler = h;
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(srv.lfd, 0);
    int one = 1;
    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(srv.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(srv.lfd, 16), 0);
    socklen_t sl = sizeof sa;
    getsockname(srv.lfd, (struct sockaddr *)&sa, &sl);
    srv.port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&srv.th, NULL, serve, NULL), 0);
}

static void server_stop(void)
{
    srv.stop = 1;
    shutdown(srv.lfd, SHUT_RDWR);
    close(srv.lfd);
    pthread_join(srv.th, NULL);
    pthread_mutex_destroy(&srv.lock);
}

static seen_req req_at(int i)
{
    pthread_mutex_lock(&srv.lock);
    seen_req r = srv.reqs[i];
    pthread_mutex_unlock(&srv.lock);
    return r;
}

/* A kubeconfig for the test server with `user` lines for the user. */
static sx_k8s_client *client_for_server(const char *user_yaml, long timeout_ms)
{
    write_file("kc", "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                     "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:%d/\n"
                     "users:\n- name: u\n  user:\n%s\n"
                     "contexts:\n- name: t\n  context: {cluster: c, user: u, namespace: ns1}\n",
               srv.port, user_yaml);
    sx_k8s_conn_cfg cfg = {.kubeconfig = tpath("kc"), .api_timeout_ms = timeout_ms};
    sx_k8s_client *cl = NULL;
    sx_error err;
    ck_assert_msg(sx_k8s_client_new(&cfg, &cl, &err) == 0, "%s", err.message);
    return cl;
}

/* -------------------------------------------------------- configuration */

static const char CA_PEM[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

START_TEST(kubeconfig_token_ca_namespace)
{
    make_tmpdir();
    /* "LS0t..." = base64 of CA_PEM's first bytes is not needed: any base64 */
    write_file("kc",
               "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
               "clusters:\n"
               "- name: c1\n  cluster:\n    server: https://10.1.2.3:6443/\n"
               "    certificate-authority-data: aGVsbG8=\n"
               "- name: c2\n  cluster:\n    server: https://example:443\n"
               "    certificate-authority: ca.pem\n"
               "users:\n- name: u1\n  user:\n    token: s3cr3t-token\n"
               "- name: u2\n  user:\n    tokenFile: tok\n"
               "contexts:\n- name: a\n  context: {cluster: c1, user: u1, namespace: team-a}\n"
               "- name: b\n  context: {cluster: c2, user: u2}\n");
    write_file("ca.pem", "%s", CA_PEM);
    write_file("tok", "file-token\n");
    sx_k8s_conn c;
    sx_error err;
    ck_assert_msg(sx_k8s_kubeconfig_load(tpath("kc"), "a", &c, &err) == 0, "%s", err.message);
    ck_assert_str_eq(c.server, "https://10.1.2.3:6443");
    ck_assert_str_eq(c.ns, "team-a");
    ck_assert_str_eq(c.token, "s3cr3t-token");
    ck_assert_uint_eq(c.ca_len, 5);
    ck_assert_mem_eq(c.ca_data, "hello", 5);
    ck_assert_ptr_null(c.token_file);
    ck_assert_ptr_nonnull(strstr(c.source, "context a"));
    sx_k8s_conn_clear(&c);
    /* current-context b: relative CA file and token file, no namespace */
    ck_assert_msg(sx_k8s_kubeconfig_load(tpath("kc"), NULL, &c, &err) == 0, "%s", err.message);
    ck_assert_str_eq(c.server, "https://example:443");
    ck_assert_ptr_null(c.ns);
    ck_assert_str_eq(c.ca_data, CA_PEM);
    ck_assert_str_eq(c.token_file, tpath("tok"));
    ck_assert_ptr_null(c.token);
    sx_k8s_conn_clear(&c);
    /* the client: source and auth for describe */
    sx_k8s_conn_cfg cfg = {.kubeconfig = tpath("kc"), .context = "a"};
    sx_k8s_client *cl;
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), 0);
    ck_assert_str_eq(sx_k8s_client_server(cl), "https://10.1.2.3:6443");
    ck_assert_str_eq(sx_k8s_client_namespace(cl), "team-a");
    ck_assert_str_eq(sx_k8s_client_auth(cl), "token");
    ck_assert_int_eq(sx_k8s_client_timeout_ms(cl), 30000);
    sx_k8s_client_free(cl);
    remove_tmpdir();
}
END_TEST

START_TEST(kubeconfig_client_certificate)
{
    make_tmpdir();
    /* Y2VydA== "cert", a2V5 "key" */
    write_file("kc", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                     "users:\n- name: u\n  user:\n    client-certificate-data: Y2VydA==\n"
                     "    client-key-data: a2V5\n"
                     "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
    sx_k8s_conn c;
    sx_error err;
    ck_assert_msg(sx_k8s_kubeconfig_load(tpath("kc"), NULL, &c, &err) == 0, "%s", err.message);
    ck_assert_str_eq(c.cert_data, "cert");
    ck_assert_str_eq(c.key_data, "key");
    ck_assert_uint_eq(c.key_len, 3);
    sx_k8s_conn_clear(&c);
    sx_k8s_conn_cfg cfg = {.kubeconfig = tpath("kc")};
    sx_k8s_client *cl;
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), 0);
    ck_assert_str_eq(sx_k8s_client_auth(cl), "client-certificate");
    sx_k8s_client_free(cl);
    remove_tmpdir();
}
END_TEST

/* Every refusal is invalid_config with a message naming the cause. */
static void expect_refused(const char *text, const char *context, const char *needle)
{
    write_file("bad", "%s", text);
    sx_k8s_conn c;
    sx_error err;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_k8s_kubeconfig_load(tpath("bad"), context, &c, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' not in: %s", needle, err.message);
}

START_TEST(kubeconfig_refusals)
{
    make_tmpdir();
    const char *base = "clusters:\n- name: c\n  cluster: {server: 'https://h:1'}\n"
                       "contexts:\n- name: x\n  context: {cluster: c, user: u}\n";
    char *t;
    expect_refused("", NULL, "not a YAML map");
    expect_refused("a: [1, 2\n", NULL, "YAML error");
    expect_refused(base, NULL, "no current-context");
    expect_refused(base, "nope", "no contexts entry named 'nope'");
    ck_assert_int_ge(asprintf(&t, "%susers:\n- name: u\n  user:\n    exec: {command: aws}\n", base), 0);
    expect_refused(t, "x", "'exec'");
    free(t);
    ck_assert_int_ge(asprintf(&t, "%susers:\n- name: u\n  user:\n    client-key-data: a2V5\n", base), 0);
    expect_refused(t, "x", "both a client certificate and a client key");
    free(t);
    ck_assert_int_ge(asprintf(&t, "%susers:\n- name: u\n  user:\n    token: x\n", base), 0);
    char *u;
    ck_assert_int_ge(asprintf(&u, "%s", t), 0);
    free(t);
    /* a cluster without server */
    expect_refused("current-context: x\nclusters:\n- name: c\n  cluster: {}\n"
                   "contexts:\n- name: x\n  context: {cluster: c}\n", NULL, "has no server");
    expect_refused("current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h',"
                   " certificate-authority-data: '***'}\ncontexts:\n- name: x\n  context: {cluster: c}\n",
                   NULL, "not valid base64");
    expect_refused("current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h',"
                   " certificate-authority: missing.pem}\ncontexts:\n- name: x\n  context: {cluster: c}\n",
                   NULL, "missing.pem");
    free(u);
    sx_k8s_conn c;
    sx_error err;
    ck_assert_int_eq(sx_k8s_kubeconfig_load("/nonexistent/kc", NULL, &c, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_int_eq(sx_k8s_kubeconfig_load("/a:/b", NULL, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "one file only"));
    /* neither kubeconfig nor in_cluster, no KUBECONFIG or HOME */
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    unsetenv("KUBECONFIG");
    unsetenv("HOME");
    sx_k8s_conn_cfg cfg = {0};
    sx_k8s_client *cl = NULL;
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    /* $KUBECONFIG is used when no path is configured */
    write_file("kc2", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:2'}\n"
                      "contexts:\n- name: x\n  context: {cluster: c, namespace: fromenv}\n");
    setenv("KUBECONFIG", tpath("kc2"), 1);
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), 0);
    ck_assert_str_eq(sx_k8s_client_namespace(cl), "fromenv");
    ck_assert_str_eq(sx_k8s_client_auth(cl), "none");
    sx_k8s_client_free(cl);
    unsetenv("KUBECONFIG");
    if (home)
        setenv("HOME", home, 1);
    free(home);
    /* plain http off loopback, and skipping TLS verification, are refused */
    write_file("kc4", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'http://h:2'}\n"
                      "contexts:\n- name: x\n  context: {cluster: c}\n");
    cfg.kubeconfig = tpath("kc4");
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "loopback"));
    write_file("kc5", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:2', "
                      "insecure-skip-tls-verify: true}\ncontexts:\n- name: x\n  context: {cluster: c}\n");
    cfg.kubeconfig = tpath("kc5");
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "insecure-skip-tls-verify"));
    cfg.kubeconfig = NULL;
    /* a server that is not http(s) */
    write_file("kc3", "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'ftp://h'}\n"
                      "contexts:\n- name: x\n  context: {cluster: c}\n");
    cfg.kubeconfig = tpath("kc3");
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "expected https://"));
    remove_tmpdir();
}
END_TEST

START_TEST(in_cluster_from_a_directory)
{
    make_tmpdir();
    write_file("token", "sa-token-1\n");
    write_file("ca.crt", "%s", CA_PEM);
    write_file("namespace", "runner-ns\n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    sx_k8s_conn_cfg cfg = {.in_cluster = 1, .serviceaccount_dir = tmpdir, .api_timeout_ms = 1234};
    sx_k8s_client *cl;
    sx_error err;
    ck_assert_msg(sx_k8s_client_new(&cfg, &cl, &err) == 0, "%s", err.message);
    ck_assert_str_eq(sx_k8s_client_server(cl), "https://10.96.0.1:443");
    ck_assert_str_eq(sx_k8s_client_namespace(cl), "runner-ns");
    ck_assert_str_eq(sx_k8s_client_auth(cl), "token-file");
    ck_assert_ptr_nonnull(strstr(sx_k8s_client_source(cl), tmpdir));
    ck_assert_int_eq(sx_k8s_client_timeout_ms(cl), 1234);
    sx_k8s_client_free(cl);
    /* IPv6 service address */
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), 0);
    ck_assert_str_eq(sx_k8s_client_server(cl), "https://[fd00::1]:443");
    sx_k8s_client_free(cl);
    /* no token: refused at start */
    char p[600];
    snprintf(p, sizeof p, "%s/token", tmpdir);
    unlink(p);
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "token"));
    /* not in a pod */
    unsetenv("KUBERNETES_SERVICE_HOST");
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "KUBERNETES_SERVICE_HOST"));
    unsetenv("KUBERNETES_SERVICE_PORT");
    remove_tmpdir();
}
END_TEST

/* ------------------------------------------------------------- requests */

static void status_handler(int fd, const seen_req *rq, int n)
{
    (void)n;
    if (strstr(rq->path, "/ok"))
        reply(fd, 200, "{\"kind\":\"Pod\"}");
    else if (strstr(rq->path, "/created"))
        reply(fd, 201, "{\"metadata\":{\"uid\":\"u1\"}}");
    else if (strstr(rq->path, "/s401"))
        reply(fd, 401, "{\"kind\":\"Status\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}");
    else if (strstr(rq->path, "/s403"))
        reply(fd, 403, "{\"kind\":\"Status\",\"message\":\"jobs.batch is forbidden: User x cannot "
                       "create\",\"reason\":\"Forbidden\",\"code\":403}");
    else if (strstr(rq->path, "/s404"))
        reply(fd, 404, "{\"kind\":\"Status\",\"message\":\"pods \\\"p\\\" not found\",\"reason\":\"NotFound\",\"code\":404}");
    else if (strstr(rq->path, "/s409"))
        reply(fd, 409, "{\"kind\":\"Status\",\"message\":\"exists\",\"reason\":\"AlreadyExists\",\"code\":409}");
    else if (strstr(rq->path, "/s410"))
        reply(fd, 410, "{\"kind\":\"Status\",\"message\":\"too old\",\"reason\":\"Expired\",\"code\":410}");
    else if (strstr(rq->path, "/s422"))
        reply(fd, 422, "{\"kind\":\"Status\",\"message\":\"Job.batch is invalid\",\"reason\":\"Invalid\",\"code\":422}");
    else if (strstr(rq->path, "/s503"))
        reply(fd, 503, "{\"kind\":\"Status\",\"message\":\"unavailable\",\"code\":503}");
    else if (strstr(rq->path, "/hang"))
        usleep(3000 * 1000); /* answer nothing until the client gave up */
    else
        reply(fd, 500, "oops");
}

START_TEST(requests_statuses_and_counters)
{
    make_tmpdir();
    server_start(status_handler);
    sx_k8s_client *cl = client_for_server("    token: tok-AAA", 800);
    sx_k8s_counts mine = {0};
    sx_k8s_call call = {.counts = &mine};
    sx_k8s_response r;
    sx_error err;
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/api/v1/ok", NULL, NULL, 0, &call, "get",
                                    &r, &err), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"kind\":\"Pod\"}");
    sx_k8s_response_free(&r);
    seen_req q = req_at(0);
    ck_assert_str_eq(q.method, "GET");
    ck_assert_str_eq(q.path, "/api/v1/ok");
    ck_assert_str_eq(q.auth, "Bearer tok-AAA");
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_CREATE, "/x/created", NULL, "{}", 2, &call,
                                    "create", &r, &err), 0);
    ck_assert_int_eq(r.status, 201);
    sx_k8s_response_free(&r);
    ck_assert_str_eq(req_at(1).method, "POST");
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_DELETE, "/x/s404", NULL, NULL, 0, &call, "delete",
                                    &r, &err), 0);
    ck_assert_str_eq(req_at(2).method, "DELETE");
    char msg[200], reason[40];
    sx_k8s_status_message(&r, msg, sizeof msg, reason, sizeof reason);
    ck_assert_str_eq(reason, "NotFound");
    ck_assert_str_eq(msg, "pods \"p\" not found");
    sx_k8s_status_error(cl, &r, "delete the pod", &err);
    ck_assert_str_eq(err.code, "kubernetes_not_found");
    sx_k8s_response_free(&r);
    const char *paths[] = {"/x/s409", "/x/s410", "/x/s422"};
    const char *codes[] = {"kubernetes_conflict", "kubernetes_gone", "kubernetes_invalid"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_PATCH, paths[i], "application/merge-patch+json",
                                        "{}", 2, &call, "x", &r, &err), 0);
        sx_k8s_status_error(cl, &r, "x", &err);
        ck_assert_str_eq(err.code, codes[i]);
        sx_k8s_response_free(&r);
    }
    ck_assert_str_eq(req_at(3).method, "PATCH");
    /* mapped by the client itself: forbidden, unavailable */
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/x/s401", NULL, NULL, 0, &call, "read it",
                                    &r, &err), -1);
    ck_assert_str_eq(err.code, "kubernetes_forbidden");
    ck_assert_ptr_nonnull(strstr(err.message, "refused the credentials"));
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_CREATE, "/x/s403", NULL, NULL, 0, &call,
                                    "create the Job", &r, &err), -1);
    ck_assert_str_eq(err.code, "kubernetes_forbidden");
    ck_assert_ptr_nonnull(strstr(err.message, "jobs.batch is forbidden"));
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_LIST, "/x/s503", NULL, NULL, 0, &call, "list",
                                    &r, &err), -1);
    ck_assert_str_eq(err.code, "kubernetes_unavailable");
    /* a server that accepts and never answers: bounded by the api timeout */
    double t0 = sx_now_monotonic();
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/x/hang", NULL, NULL, 0, &call, "wait",
                                    &r, &err), -1);
    ck_assert_str_eq(err.code, "kubernetes_unavailable");
    ck_assert(sx_now_monotonic() - t0 < 1.4);
    /* counters: per call and per client */
    ck_assert_int_eq(mine.n[SX_K8S_GET], 3);
    ck_assert_int_eq(mine.n[SX_K8S_CREATE], 2);
    ck_assert_int_eq(mine.n[SX_K8S_DELETE], 1);
    ck_assert_int_eq(mine.n[SX_K8S_PATCH], 3);
    ck_assert_int_eq(mine.n[SX_K8S_LIST], 1);
    ck_assert_int_eq(sx_k8s_counts_total(&mine), 10);
    sx_k8s_counts all;
    sx_k8s_client_counts(cl, &all);
    ck_assert_int_eq(sx_k8s_counts_total(&all), 10);
    cJSON *j = sx_k8s_counts_json(&all);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "patch")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "total")->valueint, 10);
    cJSON_Delete(j);
    sx_k8s_client_free(cl);
    server_stop();
    remove_tmpdir();
}
END_TEST

static int abort_after(void *arg)
{
    double *t = arg;
    return sx_now_monotonic() > *t;
}

START_TEST(abort_hook_and_unreachable_server)
{
    make_tmpdir();
    server_start(status_handler);
    sx_k8s_client *cl = client_for_server("    token: x", 5000);
    double until = sx_now_monotonic() + 0.3;
    sx_k8s_call call = {.abort_fn = abort_after, .abort_arg = &until};
    sx_k8s_response r;
    sx_error err;
    double t0 = sx_now_monotonic();
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/x/hang", NULL, NULL, 0, &call, "wait",
                                    &r, &err), -1);
    ck_assert_str_eq(err.code, "cancelled");
    ck_assert(sx_now_monotonic() - t0 < 1.6); /* curl asks the hook about once a second */
    sx_k8s_client_free(cl);
    int port = srv.port;
    server_stop();
    /* nothing listens there any more */
    write_file("kc", "current-context: t\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:%d'}\n"
                     "contexts:\n- name: t\n  context: {cluster: c}\n", port);
    sx_k8s_conn_cfg cfg = {.kubeconfig = tpath("kc"), .api_timeout_ms = 2000};
    ck_assert_int_eq(sx_k8s_client_new(&cfg, &cl, &err), 0);
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/version", NULL, NULL, 0, NULL, "read the version",
                                    &r, &err), -1);
    ck_assert_str_eq(err.code, "kubernetes_unavailable");
    ck_assert_ptr_nonnull(strstr(err.message, "read the version"));
    sx_k8s_client_free(cl);
    remove_tmpdir();
}
END_TEST

START_TEST(token_file_is_read_again_when_it_changes)
{
    make_tmpdir();
    server_start(status_handler);
    write_file("tok", "first-token\n");
    char user[600];
    snprintf(user, sizeof user, "    tokenFile: %s/tok", tmpdir);
    sx_k8s_client *cl = client_for_server(user, 2000);
    sx_k8s_response r;
    sx_error err;
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/ok", NULL, NULL, 0, NULL, "x", &r, &err), 0);
    sx_k8s_response_free(&r);
    /* the kubelet replaces the file (a new inode) */
    write_file("tok.new", "second-token");
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/tok.new", tmpdir);
    snprintf(b, sizeof b, "%s/tok", tmpdir);
    ck_assert_int_eq(rename(a, b), 0);
    ck_assert_int_eq(sx_k8s_request(cl, SX_K8S_GET, "/ok", NULL, NULL, 0, NULL, "x", &r, &err), 0);
    sx_k8s_response_free(&r);
    ck_assert_str_eq(req_at(0).auth, "Bearer first-token");
    ck_assert_str_eq(req_at(1).auth, "Bearer second-token");
    sx_k8s_client_free(cl);
    server_stop();
    remove_tmpdir();
}
END_TEST

/* --------------------------------------------------------------- streams */

typedef struct lines_seen {
    char text[4096];
    int n;
} lines_seen;

static void on_line(void *user, char *line, size_t len)
{
    lines_seen *s = user;
    ck_assert_uint_eq(strlen(line), len);
    strcat(s->text, line);
    strcat(s->text, "|");
    s->n++;
}

START_TEST(lines_split_across_chunks)
{
    lines_seen s = {{0}, 0};
    sx_k8s_lines l = {.fn = on_line, .user = &s, .max = 16};
    sx_k8s_lines_feed(&l, "ab", 2);
    sx_k8s_lines_feed(&l, "c\nde", 4);
    sx_k8s_lines_feed(&l, "\n\nfff", 5);
    ck_assert_str_eq(s.text, "abc|de|");
    /* a line above max is dropped and counted, the next one is whole */
    sx_k8s_lines_feed(&l, "0123456789abcdefghij\nok\n", 24);
    ck_assert_str_eq(s.text, "abc|de|ok|");
    ck_assert_int_eq(l.dropped, 1);
    sx_k8s_lines_free(&l);
}
END_TEST

/* watch server: 1st watch from rv 10: two events, then the end of the
 * stream; 2nd (from rv 12): ERROR 410; then a list (rv 20, one item); then
 * a watch from 20 with a DELETED; later watches hang briefly. */
static void watch_handler(int fd, const seen_req *rq, int n)
{
    (void)n;
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if (strstr(rq->path, "watch=1") && strstr(rq->path, "resourceVersion=10")) {
        send_str(fd, head);
        chunk(fd, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p1\",\"resourceVersion\":\"11\"}}}\n"
                  "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":");
        chunk(fd, "{\"name\":\"p1\",\"resourceVersion\":\"12\"}}}\n");
        chunk(fd, "");
    } else if (strstr(rq->path, "watch=1") && strstr(rq->path, "resourceVersion=12")) {
        send_str(fd, head);
        chunk(fd, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n");
        chunk(fd, "");
    } else if (!strstr(rq->path, "watch=1")) {
        reply(fd, 200, "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"20\"},"
                       "\"items\":[{\"metadata\":{\"name\":\"p1\",\"resourceVersion\":\"19\"}}]}");
    } else if (strstr(rq->path, "resourceVersion=20")) {
        send_str(fd, head);
        chunk(fd, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"25\"}}}\n");
        chunk(fd, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"p1\",\"resourceVersion\":\"26\"}}}\n");
        chunk(fd, "");
    } else {
        /* an idle watch at the last resourceVersion */
        send_str(fd, head);
        usleep(300 * 1000);
        chunk(fd, "");
    }
}

typedef struct events_seen {
    char text[2048];
} events_seen;

static void on_event(void *user, const char *type, const cJSON *obj)
{
    events_seen *s = user;
    const cJSON *name = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name");
    char buf[128];
    snprintf(buf, sizeof buf, "%s:%s ", type, cJSON_IsString(name) ? name->valuestring : "-");
    strcat(s->text, buf);
}

START_TEST(watch_reconnects_and_relists_after_410)
{
    make_tmpdir();
    server_start(watch_handler);
    sx_k8s_client *cl = client_for_server("    token: w", 2000);
    sx_k8s_mux *m = sx_k8s_mux_new();
    sx_k8s_counts counts = {0};
    events_seen seen = {{0}};
    sx_k8s_watch w = {.cl = cl, .mux = m, .counts = &counts, .path = "/api/v1/namespaces/ns1/pods",
                      .selector = "labelSelector=job-name%3Dj", .what = "pods", .fn = on_event,
                      .user = &seen};
    sx_error err;
    ck_assert_int_eq(sx_k8s_watch_start(&w, "10", NULL, &err), 0);
    double until = sx_now_monotonic() + 5;
    while (strstr(seen.text, "DELETED:p1") == NULL && sx_now_monotonic() < until) {
        sx_k8s_mux_run(m, -1, sx_k8s_watch_wait_ms(&w, 200));
        ck_assert_msg(sx_k8s_watch_pump(&w, NULL, 2000, &err) == 0, "%s", err.message);
    }
    ck_assert_str_eq(seen.text, "ADDED:p1 MODIFIED:p1 SYNC:p1 SYNCED:- DELETED:p1 ");
    ck_assert_str_eq(w.rv, "26");
    ck_assert_int_eq(w.relists, 1);
    ck_assert_int_ge(w.reconnects, 2);
    /* the requests: watch@10, watch@12, list, watch@20 */
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "watch=1"));
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "allowWatchBookmarks=true"));
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "labelSelector=job-name%3Dj"));
    ck_assert_ptr_nonnull(strstr(req_at(1).path, "resourceVersion=12"));
    ck_assert_ptr_null(strstr(req_at(2).path, "watch=1"));
    ck_assert_ptr_nonnull(strstr(req_at(3).path, "resourceVersion=20"));
    ck_assert_int_eq(counts.n[SX_K8S_LIST], 1);
    ck_assert_int_ge(counts.n[SX_K8S_WATCH], 3);
    sx_k8s_watch_stop(&w);
    sx_k8s_mux_free(m);
    sx_k8s_client_free(cl);
    server_stop();
    remove_tmpdir();
}
END_TEST

START_TEST(watch_gives_up_when_the_server_stays_away)
{
    make_tmpdir();
    server_start(watch_handler);
    sx_k8s_client *cl = client_for_server("    token: w", 500);
    server_stop(); /* refused from now on */
    sx_k8s_mux *m = sx_k8s_mux_new();
    events_seen seen = {{0}};
    sx_k8s_watch w = {.cl = cl, .mux = m, .path = "/api/v1/namespaces/ns1/pods", .what = "pods",
                      .fn = on_event, .user = &seen};
    sx_error err;
    ck_assert_int_eq(sx_k8s_watch_start(&w, "10", NULL, &err), 0); /* the stream opens lazily */
    double t0 = sx_now_monotonic();
    int rc = 0;
    while (rc == 0 && sx_now_monotonic() - t0 < 10) {
        sx_k8s_mux_run(m, -1, sx_k8s_watch_wait_ms(&w, 200));
        rc = sx_k8s_watch_pump(&w, NULL, 1000, &err);
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err.code, "kubernetes_unavailable");
    double took = sx_now_monotonic() - t0;
    ck_assert_msg(took >= 0.9 && took < 4, "gave up after %.2f s", took);
    sx_k8s_watch_stop(&w);
    sx_k8s_mux_free(m);
    sx_k8s_client_free(cl);
    remove_tmpdir();
}
END_TEST

/* log server: the 1st follow sends "hello " and drops the connection; the
 * 2nd sends the whole log "hello world\n" and ends; a request with
 * stream=... gets 422 (the parameter refused). */
static void log_handler(int fd, const seen_req *rq, int n)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if (strstr(rq->path, "stream=")) {
        reply(fd, 422, "{\"kind\":\"Status\",\"message\":\"PodLogOptions \\\"p\\\" is invalid: "
                       "stream: Forbidden: may not be specified\",\"code\":422}");
    } else if (n == 0) {
        send_str(fd, head);
        chunk(fd, "hello ");
        /* no final chunk: a broken transfer */
    } else {
        send_str(fd, head);
        chunk(fd, "hello ");
        chunk(fd, "world\n");
        chunk(fd, "");
    }
}

typedef struct out_seen {
    char text[256];
    int stream;
} out_seen;

static void on_out(void *user, int stream, const char *data, size_t len)
{
    out_seen *o = user;
    strncat(o->text, data, len);
    o->stream = stream;
}

static sx_k8s_log_state drive_log(sx_k8s_mux *m, sx_k8s_log *l)
{
    double until = sx_now_monotonic() + 5;
    sx_k8s_log_state st = l->state;
    while (sx_now_monotonic() < until) {
        sx_k8s_mux_run(m, -1, 100);
        st = sx_k8s_log_poll(l);
        if (st != SX_K8S_LOG_STREAMING)
            break;
    }
    return st;
}

START_TEST(log_resumes_exactly_once)
{
    make_tmpdir();
    server_start(log_handler);
    sx_k8s_client *cl = client_for_server("    token: l", 2000);
    sx_k8s_mux *m = sx_k8s_mux_new();
    out_seen o = {{0}, 0};
    sx_k8s_log l = {.cl = cl, .mux = m, .ns = "ns1", .container = "script",
                    .which = SX_K8S_LOG_BOTH, .emit = on_out, .user = &o};
    sx_error err;
    ck_assert_int_eq(sx_k8s_log_open(&l, "pod-a", &err), 0);
    ck_assert_int_eq(drive_log(m, &l), SX_K8S_LOG_RETRY);
    ck_assert_str_eq(o.text, "hello ");
    ck_assert_int_eq(sx_k8s_log_open(&l, "pod-a", &err), 0);
    ck_assert_int_eq(drive_log(m, &l), SX_K8S_LOG_EOF);
    ck_assert_str_eq(o.text, "hello world\n"); /* "hello " not twice */
    ck_assert_int_eq(o.stream, 1);
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "/api/v1/namespaces/ns1/pods/pod-a/log?"));
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "container=script"));
    ck_assert_ptr_nonnull(strstr(req_at(0).path, "follow=true"));
    /* a split request the server refuses */
    sx_k8s_log e = {.cl = cl, .mux = m, .ns = "ns1", .container = "script",
                    .which = SX_K8S_LOG_STDERR, .emit = on_out, .user = &o};
    ck_assert_int_eq(sx_k8s_log_open(&e, "pod-a", &err), 0);
    ck_assert_int_eq(drive_log(m, &e), SX_K8S_LOG_NO_STREAM_PARAM);
    ck_assert_ptr_nonnull(strstr(req_at(2).path, "stream=Stderr"));
    sx_k8s_log_close(&l);
    sx_k8s_log_close(&e);
    sx_k8s_mux_free(m);
    sx_k8s_client_free(cl);
    server_stop();
    remove_tmpdir();
}
END_TEST

START_TEST(base64_and_escape)
{
    size_t n;
    char *d = sx_k8s_b64decode("aGVs\nbG8gd29y bGQ=", &n);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(n, 11);
    ck_assert_str_eq(d, "hello world");
    free(d);
    d = sx_k8s_b64decode("_-8", &n); /* URL alphabet */
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(n, 2);
    free(d);
    ck_assert_ptr_null(sx_k8s_b64decode("a$b", &n));
    char buf[64];
    ck_assert_int_eq(sx_k8s_escape("job-name=a b/c", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "job-name%3Da%20b%2Fc");
    ck_assert_int_eq(sx_k8s_escape("abcdef", buf, 4), -1);
    ck_assert_str_eq(sx_k8s_verb_name(SX_K8S_WATCH), "watch");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("k8s_api");
    TCase *c = tcase_create("config");
    tcase_add_test(c, kubeconfig_token_ca_namespace);
    tcase_add_test(c, kubeconfig_client_certificate);
    tcase_add_test(c, kubeconfig_refusals);
    tcase_add_test(c, in_cluster_from_a_directory);
    tcase_add_test(c, base64_and_escape);
    suite_add_tcase(s, c);
    TCase *r = tcase_create("requests");
    tcase_add_test(r, requests_statuses_and_counters);
    tcase_add_test(r, abort_hook_and_unreachable_server);
    tcase_add_test(r, token_file_is_read_again_when_it_changes);
    tcase_set_timeout(r, 30);
    suite_add_tcase(s, r);
    TCase *st = tcase_create("streams");
    tcase_add_test(st, lines_split_across_chunks);
    tcase_add_test(st, watch_reconnects_and_relists_after_410);
    tcase_add_test(st, watch_gives_up_when_the_server_stays_away);
    tcase_add_test(st, log_resumes_exactly_once);
    tcase_set_timeout(st, 30);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the test server writes to clients that may have left */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = sx_check_run(suite());
    curl_global_cleanup();
    return rc;
}
