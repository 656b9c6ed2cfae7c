/* push.c - Pushgateway pushes over libcurl (see push.h). */
#define _POSIX_C_SOURCE 200809L
#include "push.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sx/sx_util.h"

struct sx_pusher {
    char *url;                  /* the full target */
    char *shown_url;            /* cfg->url, for describe and logs */
    int64_t interval_ms;
    int64_t timeout_ms;
    sx_prom_registry *reg;
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    pthread_t thread;
    pthread_mutex_t lock;       /* everything below */
    pthread_cond_t wake;
    int stop;
    unsigned long long pushes, failures;
    int failing;                /* the last push failed (log once per run) */
    char last_error[256];
};

static int escape_segment(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (o + (plain ? 1 : 3) + 1 > size)
            return -1;
        if (plain)
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
    }
    out[o] = '\0';
    return 0;
}

int sx_push_target(const sx_push_cfg *cfg, char *out, size_t size)
{
    char job[300], inst[300];
    if (escape_segment(cfg->job, job, sizeof job) != 0 ||
        escape_segment(cfg->instance, inst, sizeof inst) != 0)
        return -1;
    size_t n = strlen(cfg->url);
    while (n > 0 && cfg->url[n - 1] == '/')
        n--;
    int w = snprintf(out, size, "%.*s/metrics/job/%s/instance/%s", (int)n, cfg->url, job, inst);
    return w < 0 || (size_t)w >= size ? -1 : 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr, (void)arg;
    return size * nmemb;
}

typedef struct sx_upload {
    const char *data;
    size_t len, off;
} sx_upload;

static size_t upload_read(char *buf, size_t size, size_t nitems, void *arg)
{
    sx_upload *u = arg;
    size_t n = size * nitems;
    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

/* One PUT of the current metrics.  0, or -1 with why. */
static int push_once(sx_pusher *p, char *why, size_t why_size)
{
    size_t len = 0;
    char *text = sx_prom_render(p->reg, &len);
    if (text == NULL) {
        snprintf(why, why_size, "out of memory rendering the metrics");
        return -1;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        free(text);
        snprintf(why, why_size, "cannot create a curl handle");
        return -1;
    }
    sx_upload up = {text, len, 0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/plain; version=0.0.4");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, p->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(text);
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, why_size, "the Pushgateway answered HTTP %ld", status);
        return -1;
    }
    return 0;
}

static void push_and_note(sx_pusher *p)
{
    char why[256] = "";
    int rv = push_once(p, why, sizeof why);
    pthread_mutex_lock(&p->lock);
    int was_failing = p->failing;
    if (rv == 0) {
        p->pushes++;
        p->failing = 0;
    } else {
        p->failures++;
        p->failing = 1;
        snprintf(p->last_error, sizeof p->last_error, "%s", why);
    }
    pthread_mutex_unlock(&p->lock);
    if (rv != 0 && !was_failing)
        p->host->log(p->ctx, SX_LOG_WARN, "push to the Pushgateway %s failed: %s (retrying every "
                     "%lldms; logged again once it works)", p->shown_url, why,
                     (long long)p->interval_ms);
    else if (rv == 0 && was_failing)
        p->host->log(p->ctx, SX_LOG_INFO, "push to the Pushgateway %s works again", p->shown_url);
}

static void *push_main(void *arg)
{
    sx_pusher *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(p->interval_ms / 1000);
        until.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
        int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        push_and_note(p); /* the last one at stop carries the final counts */
        pthread_mutex_lock(&p->lock);
        if (stop)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pusher_free(sx_pusher *p)
{
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->url);
    free(p->shown_url);
    free(p);
}

int sx_pusher_start(const sx_push_cfg *cfg, sx_prom_registry *reg, const sx_host_api *host,
                    sx_plugin_ctx *ctx, sx_pusher **out, sx_error *err)
{
    *out = NULL;
    if (cfg->url == NULL ||
        (strncasecmp(cfg->url, "http://", 7) != 0 && strncasecmp(cfg->url, "https://", 8) != 0))
        return sx_error_set(err, "invalid_config",
                            "monitoring.pushgateway.url '%s' must be an http:// or https:// URL",
                            cfg->url ? cfg->url : "");
    if (cfg->interval_ms < 100)
        return sx_error_set(err, "invalid_config",
                            "monitoring.pushgateway.interval must be at least 100ms");
    if (cfg->job == NULL || cfg->job[0] == '\0' || cfg->instance == NULL)
        return sx_error_set(err, "invalid_config",
                            "monitoring.pushgateway.job must not be empty");
    char target[2048];
    if (sx_push_target(cfg, target, sizeof target) != 0)
        return sx_error_set(err, "invalid_config", "monitoring.pushgateway: the URL is too long");
    sx_pusher *p = calloc(1, sizeof *p);
    if (p == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    p->url = strdup(target);
    p->shown_url = strdup(cfg->url);
    p->interval_ms = cfg->interval_ms;
    p->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
    p->reg = reg;
    p->host = host;
    p->ctx = ctx;
    if (p->url == NULL || p->shown_url == NULL) {
        pusher_free(p);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    if (pthread_create(&p->thread, NULL, push_main, p) != 0) {
        pusher_free(p);
        return sx_error_set(err, "out_of_memory", "cannot start the push thread");
    }
    *out = p;
    return 0;
}

void sx_pusher_stop(sx_pusher *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pusher_free(p);
}

cJSON *sx_pusher_describe(sx_pusher *p)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&p->lock);
    cJSON_AddStringToObject(o, "url", p->shown_url);
    cJSON_AddStringToObject(o, "target", p->url);
    cJSON_AddNumberToObject(o, "interval_seconds", (double)p->interval_ms / 1000.0);
    cJSON_AddNumberToObject(o, "pushes", (double)p->pushes);
    cJSON_AddNumberToObject(o, "failures", (double)p->failures);
    if (p->last_error[0])
        cJSON_AddStringToObject(o, "last_error", p->last_error);
    pthread_mutex_unlock(&p->lock);
    return o;
}
