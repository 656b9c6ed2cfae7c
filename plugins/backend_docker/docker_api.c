/* docker_api.c - Docker Engine REST client on libcurl (docker_api.h). */
#define _POSIX_C_SOURCE 200809L
#include "docker_api.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"


static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

int sx_dk_client_init(sx_dk_client *c, const char *host, const char *tls_ca,
                      const char *tls_cert, const char *tls_key, long call_timeout_ms,
                      sx_error *err)
{
    memset(c, 0, sizeof *c);
    if (host == NULL || host[0] == '\0')
        host = "unix:///var/run/docker.sock";
    c->connect_timeout_ms = 5000;
    c->call_timeout_ms = call_timeout_ms > 0 ? call_timeout_ms : 30000;
    c->address = strdup(host);
    int tls = (tls_cert && tls_cert[0]) || (tls_ca && tls_ca[0]);
    char url[600];
    if (strncmp(host, "unix://", 7) == 0 || host[0] == '/') {
        const char *path = host[0] == '/' ? host : host + 7;
        if (path[0] != '/')
            return sx_error_set(err, "invalid_config",
                                "host '%s': a unix socket needs an absolute path "
                                "(unix:///var/run/docker.sock)", host);
        if (tls)
            return sx_error_set(err, "invalid_config",
                                "host '%s': TLS options apply to tcp:// hosts only", host);
        c->unix_path = strdup(path);
        snprintf(url, sizeof url, "http://docker/v%s", SX_DOCKER_API_VERSION);
    } else if (strncmp(host, "tcp://", 6) == 0) {
        const char *hp = host + 6;
        if (hp[0] == '\0' || strchr(hp, '/') != NULL || strchr(hp, ':') == NULL ||
            strlen(hp) > 400)
            return sx_error_set(err, "invalid_config",
                                "host '%s': expected tcp://HOST:PORT", host);
        snprintf(url, sizeof url, "%s://%s/v%s", tls ? "https" : "http", hp,
                 SX_DOCKER_API_VERSION);
    } else {
        return sx_error_set(err, "invalid_config",
                            "host '%s': expected unix:///path/to/docker.sock or tcp://HOST:PORT",
                            host);
    }
    if ((tls_cert && tls_cert[0]) != (tls_key && tls_key[0]))
        return sx_error_set(err, "invalid_config",
                            "host '%s': tls_cert and tls_key go together", host);
    c->base_url = strdup(url);
    c->tls_ca = dup_or_null(tls_ca);
    c->tls_cert = dup_or_null(tls_cert);
    c->tls_key = dup_or_null(tls_key);
    if (c->address == NULL || c->base_url == NULL)
        return sx_error_set(err, "invalid_config", "out of memory");
    return 0;
}

void sx_dk_client_free(sx_dk_client *c)
{
    free(c->address);
    free(c->unix_path);
    free(c->base_url);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    memset(c, 0, sizeof *c);
}

const char *sx_dk_address(const sx_dk_client *c)
{
    return c->address ? c->address : "?";
}

CURL *sx_dk_easy(const sx_dk_client *c, const char *method, const char *path)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    size_t n = strlen(c->base_url) + strlen(path) + 1;
    char *url = malloc(n);
    if (url == NULL) {
        curl_easy_cleanup(h);
        return NULL;
    }
    snprintf(url, n, "%s%s", c->base_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url); /* libcurl copies option strings */
    if (c->unix_path)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    if (c->tls_ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->tls_ca);
    if (c->tls_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->tls_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->tls_key);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    return h;
}

int sx_dk_transport_error(const sx_dk_client *c, CURLcode rc, const char *what, sx_error *err)
{
    return sx_error_set(err, "docker_unavailable",
                        "cannot %s: the Docker daemon at %s did not answer (%s)", what,
                        sx_dk_address(c), curl_easy_strerror(rc));
}

typedef struct body_buf {
    char *data;
    size_t len, cap;
    int oom;
} body_buf;

static size_t collect(char *ptr, size_t size, size_t nmemb, void *user)
{
    body_buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->oom = 1;
            return 0;
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
    const sx_dk_abort *hook;
    int no_answer;
} progress_state;

static int progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)ut; (void)un;
    progress_state *p = user;
    if (p->hook->fn && p->hook->fn(p->hook->arg))
        return 1;
    if (p->hook->answer_deadline > 0 && dn == 0 && sx_now_monotonic() > p->hook->answer_deadline) {
        p->no_answer = 1;
        return 1;
    }
    return 0;
}

static void wipe_headers(struct curl_slist *hl)
{
    for (struct curl_slist *h = hl; h; h = h->next)
        if (h->data)
            memset(h->data, 0, strlen(h->data));
}

int sx_dk_call(const sx_dk_client *c, const char *method, const char *path,
               const char *content_type, const void *body, size_t body_len,
               const char *const *headers, long timeout_ms, const sx_dk_abort *abort_hook,
               const char *what, sx_dk_response *resp, sx_error *err)
{
    memset(resp, 0, sizeof *resp);
    CURL *h = sx_dk_easy(c, method, path);
    if (h == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    struct curl_slist *hl = NULL;
    char ct[160];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    }
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    for (const char *const *hd = headers; hd && *hd; hd++)
        hl = curl_slist_append(hl, *hd);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    body_buf b = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : c->call_timeout_ms);
    progress_state ps = {abort_hook, 0};
    if (abort_hook && (abort_hook->fn || abort_hook->answer_deadline > 0)) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ps);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(h);
    int rv = 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK && ps.no_answer) {
        rv = sx_error_set(err, "docker_unavailable",
                          "cannot %s: the Docker daemon at %s accepted the request but did not "
                          "answer in time", what, sx_dk_address(c));
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        rv = sx_error_set(err, "cancelled", "cancelled while waiting to %s", what);
    } else if (b.oom) {
        rv = sx_error_set(err, "out_of_memory", "out of memory reading the answer to '%s'", what);
    } else if (rc != CURLE_OK) {
        rv = sx_dk_transport_error(c, rc, what, err);
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->body = b.data ? b.data : strdup("");
        resp->len = b.len;
        b.data = NULL;
        if (resp->body == NULL)
            rv = sx_error_set(err, "out_of_memory", "out of memory");
    }
    if (b.data)
        memset(b.data, 0, b.len);
    free(b.data);
    wipe_headers(hl); /* X-Registry-Auth */
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rv;
}

void sx_dk_response_free(sx_dk_response *r)
{
    if (r->body)
        memset(r->body, 0, r->len);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void wipe_tree(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring)
            memset(j->valuestring, 0, strlen(j->valuestring));
        if (j->string)
            memset(j->string, 0, strlen(j->string));
        wipe_tree(j->child);
    }
}

void sx_dk_json_wipe_delete(cJSON *j)
{
    if (j == NULL)
        return;
    wipe_tree(j->child);
    if (j->valuestring)
        memset(j->valuestring, 0, strlen(j->valuestring));
    cJSON_Delete(j);
}

char *sx_dk_json_print_wiped(const cJSON *j)
{
    for (int size = 64 * 1024; size <= (1 << 28); size *= 4) {
        char *buf = malloc((size_t)size);
        if (buf == NULL)
            return NULL;
        if (cJSON_PrintPreallocated((cJSON *)j, buf, size, 0))
            return buf;
        memset(buf, 0, (size_t)size);
        free(buf);
    }
    return NULL;
}

void sx_dk_wipe_free(char *s)
{
    if (s)
        memset(s, 0, strlen(s));
    free(s);
}

const char *sx_dk_message(const sx_dk_response *r, char *buf, size_t size)
{
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(m))
        snprintf(buf, size, "%s", m->valuestring);
    else
        snprintf(buf, size, "HTTP %ld: %.300s", r->status, r->body ? r->body : "");
    cJSON_Delete(j);
    /* one line: the Engine's messages sometimes end with a newline */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return buf;
}

int sx_dk_escape(const char *s, char *buf, size_t size)
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
