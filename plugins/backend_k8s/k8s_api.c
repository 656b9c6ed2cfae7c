/* k8s_api.c - the Kubernetes REST client (k8s_api.h). */
#define _GNU_SOURCE /* memmem */
#include "k8s_api.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx/sx_util.h"

/* How long connecting may take, at most (each call's own timeout may be
 * shorter). */
#define CONNECT_TIMEOUT_MS 10000L
/* Error answers of streams are kept up to this size (a Status object). */
#define ERROR_BODY_MAX 65536
/* Files we read (kubeconfig, token, CA bundle). */
#define FILE_MAX (4u << 20)

struct sx_k8s_client {
    sx_k8s_conn conn;
    long timeout_ms;
    char auth[24];
    /* a token file is read again when it changes (the kubelet rotates
     * projected service account tokens) */
    pthread_mutex_t token_lock;
    char *file_token;
    size_t file_token_len;
    struct timespec token_mtime;
    ino_t token_ino;
    /* TLS sessions and DNS shared by the client's handles */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    long counts[SX_K8S_VERB_COUNT]; /* atomic */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

void sx_k8s_wipe_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    if (len == 0)
        len = strlen(s);
    /* volatile: the store must not be optimised away before free */
    volatile char *p = s;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    free(s);
}

char *sx_k8s_read_file(const char *path, size_t max, size_t *len, sx_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sx_error_set(err, "invalid_config", "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        close(fd);
        sx_error_set(err, "invalid_config", "%s is not a regular file of at most %zu bytes", path,
                     max);
        return NULL;
    }
    /* sized once: a realloc would leave a copy of a secret in freed memory */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        sx_error_set(err, "out_of_memory", "out of memory reading %s", path);
        return NULL;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            sx_k8s_wipe_free(buf, cap);
            sx_error_set(err, "invalid_config", "cannot read %s: %s", path, strerror(e));
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break; /* the file grew since fstat: take what fits */
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

void sx_k8s_conn_clear(sx_k8s_conn *c)
{
    free(c->server);
    free(c->ns);
    free(c->ca_data);
    free(c->cert_data);
    sx_k8s_wipe_free(c->key_data, c->key_len);
    sx_k8s_wipe_free(c->token, 0);
    free(c->token_file);
    free(c->source);
    memset(c, 0, sizeof *c);
}

/* Trim trailing whitespace (token files end with a newline). */
static size_t trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

int sx_k8s_in_cluster_load(const char *dir, sx_k8s_conn *c, sx_error *err)
{
    memset(c, 0, sizeof *c);
    if (dir == NULL || dir[0] == '\0')
        dir = SX_K8S_SERVICEACCOUNT_DIR;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
        return sx_error_set(err, "invalid_config",
                            "in_cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are "
                            "not set (not running in a pod?)");
    if (strlen(host) > 253 || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
        strpbrk(host, "/@?# ") != NULL)
        return sx_error_set(err, "invalid_config",
                            "in_cluster: KUBERNETES_SERVICE_HOST/PORT are not a host and port");
    char buf[300];
    /* an IPv6 address goes in brackets */
    snprintf(buf, sizeof buf, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    char path[4200];
    c->server = strdup(buf);
    snprintf(path, sizeof path, "%s/token", dir);
    c->token_file = strdup(path);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    c->ca_data = sx_k8s_read_file(path, FILE_MAX, &c->ca_len, err);
    if (c->ca_data == NULL) {
        sx_k8s_conn_clear(c);
        return -1;
    }
    /* the token must be readable now: refuse a broken mount at start */
    size_t tlen = 0;
    snprintf(path, sizeof path, "%s/token", dir);
    char *tok = sx_k8s_read_file(path, 65536, &tlen, err);
    if (tok == NULL) {
        sx_k8s_conn_clear(c);
        return -1;
    }
    sx_k8s_wipe_free(tok, tlen);
    snprintf(path, sizeof path, "%s/namespace", dir);
    size_t nlen = 0;
    sx_error ignored;
    char *ns = sx_k8s_read_file(path, 1024, &nlen, &ignored);
    if (ns) {
        ns[trim_len(ns, nlen)] = '\0';
        if (ns[0])
            c->ns = strdup(ns);
        free(ns);
    }
    snprintf(buf, sizeof buf, "in-cluster (%.250s)", dir);
    c->source = strdup(buf);
    if (c->server == NULL || c->token_file == NULL || c->source == NULL) {
        sx_k8s_conn_clear(c);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Client                                                               */
/* ------------------------------------------------------------------ */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    (void)h;
    (void)access;
    sx_k8s_client *cl = user;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&cl->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
    (void)h;
    sx_k8s_client *cl = user;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&cl->share_locks[data]);
}

int sx_k8s_client_new(const sx_k8s_conn_cfg *cfg, sx_k8s_client **out, sx_error *err)
{
    *out = NULL;
    sx_k8s_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    int rc;
    if (cfg->in_cluster)
        rc = sx_k8s_in_cluster_load(cfg->serviceaccount_dir, &cl->conn, err);
    else if (cfg->kubeconfig && cfg->kubeconfig[0])
        rc = sx_k8s_kubeconfig_load(cfg->kubeconfig, cfg->context, &cl->conn, err);
    else if (getenv("KUBECONFIG") && getenv("KUBECONFIG")[0])
        rc = sx_k8s_kubeconfig_load(getenv("KUBECONFIG"), cfg->context, &cl->conn, err);
    else if (getenv("HOME") && getenv("HOME")[0]) {
        char path[4200];
        snprintf(path, sizeof path, "%s/.kube/config", getenv("HOME"));
        rc = sx_k8s_kubeconfig_load(path, cfg->context, &cl->conn, err);
    } else
        rc = sx_error_set(err, "invalid_config",
                          "no connection to Kubernetes configured: set kubeconfig (a file) or "
                          "in_cluster: true");
    if (rc != 0) {
        free(cl);
        return -1;
    }
    /* plain http sends the token in clear: loopback only (a local proxy,
     * the test double); skipping TLS verification is refused outright */
    const char *srv = cl->conn.server;
    int loopback_http = strncmp(srv, "http://127.", 11) == 0 || strncmp(srv, "http://localhost:", 17) == 0 ||
                        strcmp(srv, "http://localhost") == 0 || strncmp(srv, "http://[::1]", 12) == 0;
    const char *why = NULL;
    if (strncmp(srv, "https://", 8) != 0 && !loopback_http)
        why = strncmp(srv, "http://", 7) == 0
                  ? "plain http:// is accepted for loopback addresses only (credentials would travel "
                    "in clear); use https://"
                  : "expected https://HOST[:PORT]";
    else if (cl->conn.insecure)
        why = "insecure-skip-tls-verify is refused: give the cluster's CA (certificate-authority"
              "[-data]) so the API server is verified";
    if (why) {
        sx_error_set(err, "invalid_config", "server '%.200s' (%s): %s", srv, cl->conn.source, why);
        sx_k8s_conn_clear(&cl->conn);
        free(cl);
        return -1;
    }
    cl->timeout_ms = cfg->api_timeout_ms > 0 ? cfg->api_timeout_ms : 30000;
    snprintf(cl->auth, sizeof cl->auth, "%s",
             cl->conn.token ? "token"
             : cl->conn.token_file ? "token-file"
             : cl->conn.cert_data ? "client-certificate" : "none");
    pthread_mutex_init(&cl->token_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&cl->share_locks[i], NULL);
    cl->share = curl_share_init();
    if (cl->share) {
        curl_share_setopt(cl->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(cl->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(cl->share, CURLSHOPT_USERDATA, cl);
        curl_share_setopt(cl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(cl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    *out = cl;
    return 0;
}

void sx_k8s_client_free(sx_k8s_client *cl)
{
    if (cl == NULL)
        return;
    if (cl->share)
        curl_share_cleanup(cl->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&cl->share_locks[i]);
    pthread_mutex_destroy(&cl->token_lock);
    sx_k8s_wipe_free(cl->file_token, cl->file_token_len);
    sx_k8s_conn_clear(&cl->conn);
    free(cl);
}

const char *sx_k8s_client_server(const sx_k8s_client *cl) { return cl->conn.server; }
const char *sx_k8s_client_namespace(const sx_k8s_client *cl) { return cl->conn.ns; }
const char *sx_k8s_client_source(const sx_k8s_client *cl) { return cl->conn.source; }
const char *sx_k8s_client_auth(const sx_k8s_client *cl) { return cl->auth; }
long sx_k8s_client_timeout_ms(const sx_k8s_client *cl) { return cl->timeout_ms; }

/* ------------------------------------------------------------------ */
/* Verbs and counters                                                   */
/* ------------------------------------------------------------------ */

static const char *const verb_names[SX_K8S_VERB_COUNT] = {"get", "list", "watch", "create",
                                                          "patch", "delete", "log"};
static const char *const verb_methods[SX_K8S_VERB_COUNT] = {"GET", "GET", "GET", "POST",
                                                            "PATCH", "DELETE", "GET"};

const char *sx_k8s_verb_name(sx_k8s_verb v)
{
    return (int)v >= 0 && v < SX_K8S_VERB_COUNT ? verb_names[v] : "?";
}

long sx_k8s_counts_total(const sx_k8s_counts *c)
{
    long t = 0;
    for (int i = 0; i < SX_K8S_VERB_COUNT; i++)
        t += c->n[i];
    return t;
}

cJSON *sx_k8s_counts_json(const sx_k8s_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < SX_K8S_VERB_COUNT; i++)
        cJSON_AddNumberToObject(o, verb_names[i], (double)c->n[i]);
    cJSON_AddNumberToObject(o, "total", (double)sx_k8s_counts_total(c));
    return o;
}

void sx_k8s_client_counts(const sx_k8s_client *cl, sx_k8s_counts *out)
{
    for (int i = 0; i < SX_K8S_VERB_COUNT; i++)
        out->n[i] = __atomic_load_n(&cl->counts[i], __ATOMIC_RELAXED);
}

static void count(sx_k8s_client *cl, sx_k8s_verb verb, sx_k8s_counts *also)
{
    __atomic_add_fetch(&cl->counts[verb], 1, __ATOMIC_RELAXED);
    if (also)
        also->n[verb]++;
}

/* ------------------------------------------------------------------ */
/* Handles                                                              */
/* ------------------------------------------------------------------ */

/* "Authorization: Bearer <token>" appended to *hl, or nothing when the
 * client has no token.  The header's text is wiped by wipe_headers. */
static int add_auth(sx_k8s_client *cl, struct curl_slist **hl, sx_error *err)
{
    static const char prefix[] = "Authorization: Bearer ";
    const char *tok = cl->conn.token;
    size_t tlen = tok ? strlen(tok) : 0;
    char *line = NULL;
    size_t cap = 0;
    if (cl->conn.token_file) {
        pthread_mutex_lock(&cl->token_lock);
        struct stat st;
        int have_st = stat(cl->conn.token_file, &st) == 0;
        if (!have_st)
            memset(&st, 0, sizeof st);
        int changed = !have_st || cl->file_token == NULL || st.st_ino != cl->token_ino ||
                      st.st_mtim.tv_sec != cl->token_mtime.tv_sec ||
                      st.st_mtim.tv_nsec != cl->token_mtime.tv_nsec;
        if (changed) {
            size_t n = 0;
            sx_error re;
            char *t = sx_k8s_read_file(cl->conn.token_file, 65536, &n, &re);
            if (t == NULL && cl->file_token == NULL) {
                pthread_mutex_unlock(&cl->token_lock);
                return sx_error_set(err, "kubernetes_forbidden", "no token: %s", re.message);
            }
            if (t) { /* else keep the last good token */
                sx_k8s_wipe_free(cl->file_token, cl->file_token_len);
                t[trim_len(t, n)] = '\0';
                cl->file_token = t;
                cl->file_token_len = n;
                cl->token_ino = st.st_ino;
                cl->token_mtime = st.st_mtim;
            }
        }
        tlen = strlen(cl->file_token);
        cap = sizeof prefix + tlen;
        line = malloc(cap);
        if (line)
            snprintf(line, cap, "%s%s", prefix, cl->file_token);
        pthread_mutex_unlock(&cl->token_lock);
    } else if (tok) {
        cap = sizeof prefix + tlen;
        line = malloc(cap);
        if (line)
            snprintf(line, cap, "%s%s", prefix, tok);
    } else {
        return 0;
    }
    if (line == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    struct curl_slist *n = curl_slist_append(*hl, line); /* copies */
    sx_k8s_wipe_free(line, cap);
    if (n == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    *hl = n;
    return 0;
}

static void wipe_headers(struct curl_slist *hl)
{
    for (struct curl_slist *h = hl; h; h = h->next)
        if (h->data) {
            volatile char *p = h->data;
            for (size_t i = 0; p[i]; i++)
                p[i] = 0;
        }
}

/* A handle for `method` on server+path with TLS, timeouts and headers
 * (the list is returned in *hl_out; the caller wipes and frees it after
 * the transfer). */
static CURL *make_handle(sx_k8s_client *cl, sx_k8s_verb verb, const char *path,
                         const char *content_type, struct curl_slist **hl_out, sx_error *err)
{
    *hl_out = NULL;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    size_t n = strlen(cl->conn.server) + strlen(path) + 1;
    char *url = malloc(n);
    if (url == NULL) {
        curl_easy_cleanup(h);
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    snprintf(url, n, "%s%s", cl->conn.server, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb_methods[verb]);
    long connect_ms = cl->timeout_ms < CONNECT_TIMEOUT_MS ? cl->timeout_ms : CONNECT_TIMEOUT_MS;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    if (cl->share)
        curl_easy_setopt(h, CURLOPT_SHARE, cl->share);
    if (cl->conn.ca_data) {
        struct curl_blob b = {cl->conn.ca_data, cl->conn.ca_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    }
    if (cl->conn.cert_data && cl->conn.key_data) {
        struct curl_blob c = {cl->conn.cert_data, cl->conn.cert_len, CURL_BLOB_NOCOPY};
        struct curl_blob k = {cl->conn.key_data, cl->conn.key_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &c);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &k);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (cl->conn.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, verb == SX_K8S_LOG ? "Accept: */*" : "Accept: application/json");
    if (content_type) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        struct curl_slist *t = curl_slist_append(hl, ct);
        hl = t ? t : hl;
    }
    struct curl_slist *t = curl_slist_append(hl, "Expect:");
    hl = t ? t : hl;
    t = curl_slist_append(hl, "User-Agent: script-executor/backend_k8s");
    hl = t ? t : hl;
    if (add_auth(cl, &hl, err) != 0) {
        curl_slist_free_all(hl);
        curl_easy_cleanup(h);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    *hl_out = hl;
    return h;
}

static int transport_error(const sx_k8s_client *cl, CURLcode rc, const char *what, sx_error *err)
{
    return sx_error_set(err, "kubernetes_unavailable",
                        "cannot %s: the Kubernetes API server at %s did not answer (%s)", what,
                        cl->conn.server, curl_easy_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* One request                                                          */
/* ------------------------------------------------------------------ */

typedef struct body_buf {
    char *data;
    size_t len, cap;
    int oom;
} body_buf;

/* Grow without realloc(3): answers may hold Secret data, and a realloc
 * would leave a copy in freed memory. */
static size_t collect(char *ptr, size_t size, size_t nmemb, void *user)
{
    body_buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = malloc(cap);
        if (d == NULL) {
            b->oom = 1;
            return 0;
        }
        if (b->data) {
            memcpy(d, b->data, b->len);
            memset(b->data, 0, b->cap);
            free(b->data);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

typedef struct progress_state {
    const sx_k8s_call *opt;
} progress_state;

static int progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    progress_state *p = user;
    return p->opt->abort_fn(p->opt->abort_arg) ? 1 : 0;
}

int sx_k8s_request(sx_k8s_client *cl, sx_k8s_verb verb, const char *path,
                   const char *content_type, const char *body, size_t body_len,
                   const sx_k8s_call *opt, const char *what, sx_k8s_response *resp,
                   sx_error *err)
{
    memset(resp, 0, sizeof *resp);
    static const sx_k8s_call none;
    if (opt == NULL)
        opt = &none;
    struct curl_slist *hl = NULL;
    CURL *h = make_handle(cl, verb, path,
                          body ? (content_type ? content_type : "application/json") : NULL, &hl,
                          err);
    if (h == NULL)
        return -1;
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (verb == SX_K8S_CREATE || verb == SX_K8S_PATCH) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    body_buf b = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    long timeout = opt->timeout_ms > 0 ? opt->timeout_ms : cl->timeout_ms;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    if (timeout < CONNECT_TIMEOUT_MS)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    progress_state ps = {opt};
    if (opt->abort_fn) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ps);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    count(cl, verb, opt->counts);
    CURLcode rc = curl_easy_perform(h);
    int rv = 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        rv = sx_error_set(err, "cancelled", "cancelled while waiting to %s", what);
    } else if (b.oom) {
        rv = sx_error_set(err, "out_of_memory", "out of memory reading the answer to '%s'", what);
    } else if (rc != CURLE_OK) {
        rv = transport_error(cl, rc, what, err);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->body = b.data ? b.data : strdup("");
        resp->len = b.len;
        b.data = NULL;
        if (resp->body == NULL)
            rv = sx_error_set(err, "out_of_memory", "out of memory");
        else if (resp->status == 401 || resp->status == 403 || resp->status == 429 ||
                 resp->status >= 500) {
            /* nothing a caller can do differently: map here */
            rv = sx_k8s_status_error(cl, resp, what, err);
            sx_k8s_response_free(resp);
        }
    }
    if (b.data) {
        memset(b.data, 0, b.cap);
        free(b.data);
    }
    curl_easy_cleanup(h);
    wipe_headers(hl);
    curl_slist_free_all(hl);
    return rv;
}

void sx_k8s_response_free(sx_k8s_response *r)
{
    if (r->body)
        memset(r->body, 0, r->len);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static const char *status_message_of(const char *body, long status, char *buf, size_t size,
                                     char *reason, size_t reason_size)
{
    cJSON *j = body && body[0] == '{' ? cJSON_Parse(body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reason");
    if (cJSON_IsString(m) && m->valuestring[0])
        snprintf(buf, size, "%s", m->valuestring);
    else
        snprintf(buf, size, "HTTP %ld: %.300s", status, body ? body : "");
    if (reason && reason_size)
        snprintf(reason, reason_size, "%s", cJSON_IsString(r) ? r->valuestring : "");
    cJSON_Delete(j);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return buf;
}

const char *sx_k8s_status_message(const sx_k8s_response *r, char *buf, size_t size, char *reason,
                                  size_t reason_size)
{
    return status_message_of(r->body, r->status, buf, size, reason, reason_size);
}

static int status_error_of(const sx_k8s_client *cl, long status, const char *body,
                           const char *what, sx_error *err)
{
    char msg[600];
    status_message_of(body, status, msg, sizeof msg, NULL, 0);
    const char *server = cl->conn.server;
    if (status == 401)
        return sx_error_set(err, "kubernetes_forbidden",
                            "cannot %s: the Kubernetes API server at %s refused the credentials "
                            "(401 Unauthorized: %s)", what, server, msg);
    if (status == 403)
        return sx_error_set(err, "kubernetes_forbidden",
                            "cannot %s: forbidden by the Kubernetes API server at %s (403: %s)",
                            what, server, msg);
    if (status == 429 || status >= 500)
        return sx_error_set(err, "kubernetes_unavailable",
                            "cannot %s: the Kubernetes API server at %s answered %ld: %s", what,
                            server, status, msg);
    const char *code = status == 404 ? "kubernetes_not_found"
                       : status == 409 ? "kubernetes_conflict"
                       : status == 410 ? "kubernetes_gone"
                       : status == 400 || status == 422 ? "kubernetes_invalid" : "backend_error";
    return sx_error_set(err, code, "cannot %s: the Kubernetes API server answered %ld: %s", what,
                        status, msg);
}

int sx_k8s_status_error(const sx_k8s_client *cl, const sx_k8s_response *r, const char *what,
                        sx_error *err)
{
    return status_error_of(cl, r->status, r->body, what, err);
}

int sx_k8s_escape(const char *s, char *buf, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (o + (plain ? 1 : 3) >= size)
            return -1;
        if (plain) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    if (o >= size)
        return -1;
    buf[o] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Streams                                                              */
/* ------------------------------------------------------------------ */

struct sx_k8s_stream {
    sx_k8s_mux *mux;
    sx_k8s_stream *next;
    sx_k8s_client *cl;
    CURL *h;
    struct curl_slist *hl;
    sx_k8s_data_fn fn;
    void *user;
    long status;
    int done;
    CURLcode rc;
    body_buf errbody;           /* the answer's body when not 2xx */
};

struct sx_k8s_mux {
    CURLM *multi;
    sx_k8s_stream *streams;
};

sx_k8s_mux *sx_k8s_mux_new(void)
{
    sx_k8s_mux *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void sx_k8s_mux_free(sx_k8s_mux *m)
{
    if (m == NULL)
        return;
    while (m->streams)
        sx_k8s_stream_close(m->streams);
    curl_multi_cleanup(m->multi);
    free(m);
}

static size_t stream_header(char *ptr, size_t size, size_t nmemb, void *user)
{
    sx_k8s_stream *s = user;
    size_t n = size * nmemb;
    if (n >= 12 && strncmp(ptr, "HTTP/", 5) == 0) {
        const char *sp = memchr(ptr, ' ', n);
        s->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    }
    return n;
}

static size_t stream_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    sx_k8s_stream *s = user;
    size_t n = size * nmemb;
    if (s->status >= 200 && s->status < 300) {
        s->fn(s->user, ptr, n);
    } else if (s->errbody.len + n <= ERROR_BODY_MAX) {
        collect(ptr, 1, n, &s->errbody);
    }
    return n;
}

sx_k8s_stream *sx_k8s_stream_open(sx_k8s_mux *m, sx_k8s_client *cl, sx_k8s_verb verb,
                                  const char *path, sx_k8s_data_fn fn, void *user,
                                  sx_k8s_counts *counts, sx_error *err)
{
    sx_k8s_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    s->h = make_handle(cl, verb, path, NULL, &s->hl, err);
    if (s->h == NULL) {
        free(s);
        return NULL;
    }
    s->mux = m;
    s->cl = cl;
    s->fn = fn;
    s->user = user;
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, stream_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    if (curl_multi_add_handle(m->multi, s->h) != CURLM_OK) {
        curl_easy_cleanup(s->h);
        wipe_headers(s->hl);
        curl_slist_free_all(s->hl);
        free(s);
        sx_error_set(err, "out_of_memory", "cannot add a stream");
        return NULL;
    }
    count(cl, verb, counts);
    s->next = m->streams;
    m->streams = s;
    return s;
}

void sx_k8s_stream_close(sx_k8s_stream *s)
{
    if (s == NULL)
        return;
    sx_k8s_mux *m = s->mux;
    for (sx_k8s_stream **pp = &m->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    curl_multi_remove_handle(m->multi, s->h);
    curl_easy_cleanup(s->h);
    wipe_headers(s->hl);
    curl_slist_free_all(s->hl);
    if (s->errbody.data) {
        memset(s->errbody.data, 0, s->errbody.cap);
        free(s->errbody.data);
    }
    free(s);
}

static void collect_done(sx_k8s_mux *m)
{
    CURLMsg *msg;
    int q;
    while ((msg = curl_multi_info_read(m->multi, &q)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        sx_k8s_stream *s = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        if (s) {
            s->done = 1;
            s->rc = msg->data.result;
            if (s->status == 0)
                curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
        }
    }
}

int sx_k8s_mux_run(sx_k8s_mux *m, int extra_fd, long timeout_ms)
{
    int running = 0;
    curl_multi_perform(m->multi, &running);
    collect_done(m);
    struct curl_waitfd w = {.fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (timeout_ms > 60000)
        timeout_ms = 60000;
    curl_multi_poll(m->multi, extra_fd >= 0 ? &w : NULL, extra_fd >= 0 ? 1 : 0, (int)timeout_ms,
                    NULL);
    curl_multi_perform(m->multi, &running);
    collect_done(m);
    if (extra_fd >= 0) {
        /* revents is filled by curl_multi_poll; check again without waiting */
        struct pollfd p = {.fd = extra_fd, .events = POLLIN};
        return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) ? 1 : 0;
    }
    return 0;
}

long sx_k8s_stream_status(const sx_k8s_stream *s) { return s->status; }
int sx_k8s_stream_done(const sx_k8s_stream *s) { return s->done; }

int sx_k8s_stream_result(const sx_k8s_stream *s, const char *what, sx_error *err)
{
    if (s->status >= 300 || (s->done && s->rc == CURLE_OK && s->status < 200))
        return status_error_of(s->cl, s->status, s->errbody.data ? s->errbody.data : "", what, err);
    if (s->done && s->rc != CURLE_OK)
        return transport_error(s->cl, s->rc, what, err);
    return 0;
}

const char *sx_k8s_stream_error_body(const sx_k8s_stream *s)
{
    return s->errbody.data ? s->errbody.data : "";
}

/* ------------------------------------------------------------------ */
/* Lines                                                                */
/* ------------------------------------------------------------------ */

void sx_k8s_lines_feed(sx_k8s_lines *l, const char *data, size_t len)
{
    size_t max = l->max ? l->max : (16u << 20);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (l->len != (size_t)-1) {
            if (l->len + take + 1 > max) {
                l->len = (size_t)-1; /* too long: drop until the newline */
                l->dropped++;
            } else {
                if (l->len + take + 1 > l->cap) {
                    size_t cap = l->cap ? l->cap : 4096;
                    while (cap < l->len + take + 1)
                        cap *= 2;
                    char *b = realloc(l->buf, cap);
                    if (b == NULL) {
                        l->len = (size_t)-1;
                        l->dropped++;
                        goto skip;
                    }
                    l->buf = b;
                    l->cap = cap;
                }
                memcpy(l->buf + l->len, data, take);
                l->len += take;
            }
        }
    skip:
        if (nl == NULL)
            return;
        if (l->len != (size_t)-1 && l->len > 0) {
            l->buf[l->len] = '\0';
            l->fn(l->user, l->buf, l->len);
        }
        l->len = 0;
        data = nl + 1;
        len -= take + 1;
    }
}

void sx_k8s_lines_reset(sx_k8s_lines *l)
{
    l->len = 0;
}

void sx_k8s_lines_free(sx_k8s_lines *l)
{
    free(l->buf);
    l->buf = NULL;
    l->len = l->cap = 0;
}
