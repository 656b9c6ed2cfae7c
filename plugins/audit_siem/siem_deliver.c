/* siem_deliver.c - POST spooled records to the SIEM, with backoff (see siem_deliver.h). */
#define _POSIX_C_SOURCE 200809L
#include "siem_deliver.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sx/sx_util.h"

/* A failure is logged when it first happens, then at most this often. */
#define LOG_EVERY_SECONDS 30.0

struct sx_siem_deliverer {
    sx_spool *spool;
    sx_siem_options o;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;         /* stop requested (CLOCK_MONOTONIC) */
    CURL *curl;
    unsigned rng;
    uint64_t failures;           /* consecutive failed attempts */
    double last_log;             /* monotonic seconds of the last failure log */
};

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

/* Abort a transfer in flight when stopping. */
static int abort_on_stop(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    sx_siem_deliverer *d = arg;
    return atomic_load(&d->stop) ? 1 : 0;
}

static int curl_setup(sx_siem_deliverer *d, sx_error *err)
{
    d->curl = curl_easy_init();
    if (d->curl == NULL)
        return sx_error_set(err, "invalid_config", "libcurl could not create a handle");
    CURL *c = d->curl;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(c, CURLOPT_URL, d->o.endpoint);
    rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)d->o.connect_timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->o.request_timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
    if (d->o.ca_file)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, d->o.ca_file);
    if (rc != CURLE_OK)
        return sx_error_set(err, "invalid_config", "libcurl refused the SIEM request options");
    return 0;
}

/* Wipe and free a header list that held the token. */
static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *it = h; it; it = it->next)
        OPENSSL_cleanse(it->data, strlen(it->data));
    curl_slist_free_all(h);
}

/* One POST.  0 on a 2xx answer, else -1 with `why` (no secrets in it). */
static int post_batch(sx_siem_deliverer *d, const char *body, size_t len, const char *token,
                      size_t token_len, char *why, size_t why_size)
{
    size_t hlen = token_len + 32;
    char *auth = malloc(hlen);
    if (auth == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    snprintf(auth, hlen, "Authorization: Bearer %.*s", (int)token_len, token);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue */
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, auth) : NULL;
    OPENSSL_cleanse(auth, hlen);
    free(auth);
    if (h3 == NULL) {
        headers_free(h2 ? h2 : h);
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, h3);
    curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(d->curl);
    long status = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, NULL);
    headers_free(h3);
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, why_size, "the endpoint answered HTTP %ld", status);
        return -1;
    }
    return 0;
}

/* The batch's lines as a JSON array: "[rec,rec,...]". */
static char *batch_body(const sx_spool_batch *b, size_t *len)
{
    char *body = malloc(b->len + 1);
    if (body == NULL)
        return NULL;
    body[0] = '[';
    memcpy(body + 1, b->data, b->len);
    for (size_t i = 1; i <= b->len; i++)
        if (body[i] == '\n')
            body[i] = i == b->len ? ']' : ',';
    *len = b->len + 1;
    return body;
}

static void log_failure(sx_siem_deliverer *d, const char *why)
{
    sx_spool_stats st;
    sx_spool_get_stats(d->spool, &st);
    double now = sx_now_monotonic();
    if (d->failures == 1 || now - d->last_log >= LOG_EVERY_SECONDS) {
        d->o.host->log(d->o.ctx, SX_LOG_WARN,
                       "SIEM delivery to %s failed (%llu attempts in a row): %s; %llu records "
                       "wait in the spool",
                       d->o.endpoint, (unsigned long long)d->failures, why,
                       (unsigned long long)st.pending);
        d->last_log = now;
    }
}

/* Sleep the backoff delay of the current failure count, or until stop. */
static void backoff_wait(sx_siem_deliverer *d)
{
    int64_t delay = d->o.backoff_initial_ms;
    for (uint64_t i = 1; i < d->failures && delay < d->o.backoff_max_ms; i++)
        delay *= 2;
    if (delay > d->o.backoff_max_ms)
        delay = d->o.backoff_max_ms;
    int64_t half = delay / 2;
    delay = half + (half > 0 ? (int64_t)(rand_r(&d->rng) % (unsigned)(half + 1)) : 0);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += delay / 1000;
    dl.tv_nsec += (delay % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    while (!atomic_load(&d->stop))
        if (pthread_cond_timedwait(&d->cond, &d->lock, &dl) != 0)
            break;
    pthread_mutex_unlock(&d->lock);
}

/* Deliver one batch; 1 = delivered, 0 = nothing pending, -1 = failed (why). */
static int deliver_once(sx_siem_deliverer *d, char *why, size_t why_size)
{
    sx_spool_batch b;
    sx_error err = {{0}, {0}};
    if (sx_spool_peek(d->spool, d->o.batch_max_records, d->o.batch_max_bytes, &b, &err) != 0) {
        snprintf(why, why_size, "%s", err.message);
        return -1;
    }
    if (b.count == 0)
        return 0;
    size_t len = 0;
    char *body = batch_body(&b, &len);
    char *token = NULL;
    size_t token_len = 0;
    int rv = -1;
    if (body == NULL)
        snprintf(why, why_size, "out of memory");
    else if (d->o.token(d->o.token_arg, &token, &token_len, &err) != 0)
        snprintf(why, why_size, "cannot read the token: %s", err.message);
    else if (post_batch(d, body, len, token, token_len, why, why_size) == 0)
        rv = sx_spool_ack(d->spool, &b, &err) == 0 ? 1 : -1;
    if (rv < 0 && err.message[0] && why[0] == '\0')
        snprintf(why, why_size, "%s", err.message);
    if (token) {
        OPENSSL_cleanse(token, token_len);
        free(token);
    }
    free(body);
    free(b.data);
    return rv;
}

static void *deliver_main(void *arg)
{
    sx_siem_deliverer *d = arg;
    while (!atomic_load(&d->stop)) {
        char why[SX_ERROR_MESSAGE_MAX + 64] = "";
        int rv = deliver_once(d, why, sizeof why);
        if (rv == 0) {
            sx_spool_wait_pending(d->spool, 1000);
        } else if (rv > 0) {
            if (d->failures > 0)
                d->o.host->log(d->o.ctx, SX_LOG_INFO,
                               "SIEM delivery to %s works again after %llu failed attempts",
                               d->o.endpoint, (unsigned long long)d->failures);
            d->failures = 0;
        } else if (!atomic_load(&d->stop)) {
            d->failures++;
            log_failure(d, why);
            backoff_wait(d);
        }
    }
    return NULL;
}

int sx_siem_deliver_start(sx_spool *spool, const sx_siem_options *o, sx_siem_deliverer **out,
                          sx_error *err)
{
    *out = NULL;
    sx_siem_deliverer *d = calloc(1, sizeof *d);
    if (d == NULL)
        return sx_error_set(err, "invalid_config", "out of memory");
    d->spool = spool;
    d->o = *o;
    d->rng = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)d;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (curl_setup(d, err) != 0) {
        sx_siem_deliver_stop(d);
        return -1;
    }
    if (pthread_create(&d->thread, NULL, deliver_main, d) != 0) {
        sx_siem_deliver_stop(d);
        return sx_error_set(err, "invalid_config", "cannot start the SIEM delivery thread");
    }
    d->started = 1;
    *out = d;
    return 0;
}

void sx_siem_deliver_stop(sx_siem_deliverer *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    atomic_store(&d->stop, 1);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    sx_spool_wake(d->spool);
    if (d->started)
        pthread_join(d->thread, NULL);
    if (d->curl)
        curl_easy_cleanup(d->curl);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
