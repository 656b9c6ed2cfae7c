/*
 * sx_client.c - nng REQ and SUB clients for script-executor (see sx_client.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "sx_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

/* Pipe bookkeeping for one socket: how many connections are up, and the
 * receive in flight that must be aborted if the connection goes away. */
typedef struct link_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int up;
    int lost;
    nng_aio *inflight;
} link_state;

struct sx_client {
    nng_socket sock;
    nng_aio *aio;
    link_state link;
    char *url;
};

struct sx_events {
    nng_socket sock;
    link_state link;
    nng_duration recv_timeout;
    char *url;
};

static void set_err(sx_cerr *err, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(sx_cerr *err, int rv, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    err->rv = rv;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* ---- connection tracking ------------------------------------------------ */

static void link_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    link_state *l = arg;

    (void)pipe;
    pthread_mutex_lock(&l->mu);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        l->up++;
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        if (l->up > 0)
            l->up--;
        if (l->inflight != NULL) {
            l->lost = 1;
            nng_aio_cancel(l->inflight);
        }
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void link_init(link_state *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
}

static int link_watch(link_state *l, nng_socket sock)
{
    int rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, link_cb, l);

    if (rv == 0)
        rv = nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, link_cb, l);
    return rv;
}

static void link_fini(link_state *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

/* Wait until at least one pipe is up, for at most ms milliseconds. */
static int link_wait_up(link_state *l, int ms)
{
    struct timespec deadline;
    int rv = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (l->up == 0 && rv != ETIMEDOUT)
        rv = pthread_cond_timedwait(&l->cv, &l->mu, &deadline);
    rv = l->up > 0 ? 0 : NNG_ETIMEDOUT;
    pthread_mutex_unlock(&l->mu);
    return rv;
}

static int is_local_url(const char *url)
{
    static const char *const local[] = {"ipc://", "inproc://", "abstract://",
                                        "unix://"};

    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(url, local[i], strlen(local[i])) == 0)
            return 1;
    return 0;
}

static int is_tcp_url(const char *url)
{
    return strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tcp4://", 7) == 0 ||
           strncmp(url, "tcp6://", 7) == 0;
}

/* A bare TCP connect with a deadline, for the real reason ("Connection
 * refused") an SP dial in the background would not report. */
static int probe_tcp(const char *url, int connect_ms)
{
    nng_stream_dialer *d = NULL;
    nng_aio *aio = NULL;
    int rv = nng_stream_dialer_alloc(&d, url);

    if (rv == 0)
        rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv == 0) {
        nng_aio_set_timeout(aio, connect_ms);
        nng_stream_dialer_dial(d, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
        if (rv == 0)
            nng_stream_free(nng_aio_get_output(aio, 0));
    }
    if (aio != NULL)
        nng_aio_free(aio);
    if (d != NULL)
        nng_stream_dialer_free(d);
    return rv;
}

/* Dial url: local transports synchronously (an absent server fails at
 * once); others in the background, given connect_ms to come up. */
static int link_dial(nng_socket sock, link_state *l, const char *url,
                     int connect_ms)
{
    int rv;

    if (is_local_url(url))
        return nng_dial(sock, url, NULL, 0);
    if (is_tcp_url(url) && (rv = probe_tcp(url, connect_ms)) != 0)
        return rv;
    rv = nng_dial(sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv == 0)
        rv = link_wait_up(l, connect_ms);
    return rv;
}

/* ---- REQ client --------------------------------------------------------- */

static int client_setup(sx_client *c, int reply_timeout_ms)
{
    int rv;

    if ((rv = nng_req0_open(&c->sock)) != 0)
        return rv;
    if ((rv = link_watch(&c->link, c->sock)) != 0)
        return rv;
    /* No resend: one request, one reply (the server is idempotent anyway). */
    rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
                           NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO,
                               SX_CONNECT_TIMEOUT_MS);
    if (rv == 0)
        rv = nng_aio_alloc(&c->aio, NULL, NULL);
    if (rv == 0)
        nng_aio_set_timeout(c->aio, reply_timeout_ms < 0
                                        ? NNG_DURATION_INFINITE
                                        : (nng_duration)reply_timeout_ms);
    return rv;
}

int sx_client_open(const char *url, int reply_timeout_ms, sx_client **out,
                   sx_cerr *err)
{
    sx_client *c = calloc(1, sizeof(*c));
    int rv;

    *out = NULL;
    if (c == NULL || (c->url = dup_str(url)) == NULL) {
        free(c);
        set_err(err, NNG_ENOMEM, "out of memory");
        return -1;
    }
    link_init(&c->link);
    rv = client_setup(c, reply_timeout_ms);
    if (rv == 0)
        rv = link_dial(c->sock, &c->link, url, SX_CONNECT_TIMEOUT_MS);
    if (rv != 0) {
        set_err(err, rv, "cannot reach script-executor at %s: %s", url,
                nng_strerror(rv));
        sx_client_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

const char *sx_client_url(const sx_client *c)
{
    return c->url;
}

static int client_send(sx_client *c, const cJSON *request, sx_cerr *err)
{
    char *text = cJSON_PrintUnformatted(request);
    int rv;

    if (text == NULL) {
        set_err(err, NNG_ENOMEM, "cannot encode the request");
        return -1;
    }
    rv = nng_send(c->sock, text, strlen(text), 0);
    free(text);
    if (rv != 0) {
        set_err(err, rv, "cannot reach script-executor at %s: %s", c->url,
                nng_strerror(rv));
        return -1;
    }
    return 0;
}

/* Wait for the reply on c->aio; aborts when the connection is lost. */
static int client_wait(sx_client *c)
{
    int lost;

    nng_recv_aio(c->sock, c->aio);
    pthread_mutex_lock(&c->link.mu);
    if (c->link.lost)
        nng_aio_cancel(c->aio);
    pthread_mutex_unlock(&c->link.mu);
    nng_aio_wait(c->aio);
    pthread_mutex_lock(&c->link.mu);
    c->link.inflight = NULL;
    lost = c->link.lost;
    pthread_mutex_unlock(&c->link.mu);
    if (lost && nng_aio_result(c->aio) == NNG_ECANCELED)
        return NNG_ECONNSHUT;
    return nng_aio_result(c->aio);
}

static int parse_reply(nng_msg *msg, cJSON **reply, const char *url,
                       sx_cerr *err)
{
    cJSON *json = cJSON_ParseWithLength(nng_msg_body(msg), nng_msg_len(msg));

    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        set_err(err, 0, "invalid reply from script-executor at %s: "
                        "not a JSON object", url);
        return -1;
    }
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "status"))) {
        cJSON_Delete(json);
        set_err(err, 0, "invalid reply from script-executor at %s: "
                        "no \"status\"", url);
        return -1;
    }
    *reply = json;
    return 0;
}

int sx_client_call(sx_client *c, const cJSON *request, cJSON **reply,
                   sx_cerr *err)
{
    nng_msg *msg;
    int rv;

    *reply = NULL;
    pthread_mutex_lock(&c->link.mu);
    c->link.lost = 0;
    c->link.inflight = c->aio;
    pthread_mutex_unlock(&c->link.mu);
    if (client_send(c, request, err) != 0) {
        pthread_mutex_lock(&c->link.mu);
        c->link.inflight = NULL;
        pthread_mutex_unlock(&c->link.mu);
        return -1;
    }
    rv = client_wait(c);
    if (rv == NNG_ECONNSHUT) {
        set_err(err, rv, "lost the connection to script-executor at %s "
                         "while waiting for the reply", c->url);
        return -1;
    }
    if (rv != 0) {
        set_err(err, rv, "no reply from script-executor at %s: %s", c->url,
                nng_strerror(rv));
        return -1;
    }
    msg = nng_aio_get_msg(c->aio);
    rv = parse_reply(msg, reply, c->url, err);
    nng_msg_free(msg);
    return rv;
}

void sx_client_close(sx_client *c)
{
    if (c == NULL)
        return;
    if (nng_socket_id(c->sock) > 0)
        nng_close(c->sock);
    if (c->aio != NULL)
        nng_aio_free(c->aio);
    link_fini(&c->link);
    free(c->url);
    free(c);
}

/* ---- SUB client --------------------------------------------------------- */

static int events_setup(sx_events *e)
{
    int rv;

    if ((rv = nng_sub0_open(&e->sock)) != 0)
        return rv;
    if ((rv = link_watch(&e->link, e->sock)) != 0)
        return rv;
    rv = nng_socket_set(e->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    /* Keep what arrived first when the queue fills: live output must not
     * lose its beginning. */
    if (rv == 0)
        rv = nng_socket_set_bool(e->sock, NNG_OPT_SUB_PREFNEW, false);
    if (rv == 0)
        rv = nng_socket_set_int(e->sock, NNG_OPT_RECVBUF, 4096);
    return rv;
}

int sx_events_open(const char *url, int connect_timeout_ms, sx_events **out,
                   sx_cerr *err)
{
    sx_events *e = calloc(1, sizeof(*e));
    int rv;

    *out = NULL;
    if (e == NULL || (e->url = dup_str(url)) == NULL) {
        free(e);
        set_err(err, NNG_ENOMEM, "out of memory");
        return -1;
    }
    link_init(&e->link);
    e->recv_timeout = NNG_DURATION_DEFAULT;
    rv = events_setup(e);
    if (rv == 0)
        rv = link_dial(e->sock, &e->link, url, connect_timeout_ms);
    if (rv != 0) {
        set_err(err, rv, "cannot reach script-executor events at %s: %s",
                url, nng_strerror(rv));
        sx_events_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

static int event_fill(nng_msg *msg, sx_event *ev)
{
    size_t len = nng_msg_len(msg);
    char *space;

    ev->raw = malloc(len + 1);
    ev->topic = malloc(len + 1);
    if (ev->raw == NULL || ev->topic == NULL) {
        sx_event_clear(ev);
        return -1;
    }
    memcpy(ev->raw, nng_msg_body(msg), len);
    ev->raw[len] = '\0';
    memcpy(ev->topic, ev->raw, len + 1);
    space = strchr(ev->topic, ' ');
    if (space != NULL) {
        *space = '\0';
        ev->json = cJSON_Parse(space + 1);
        if (!cJSON_IsObject(ev->json)) {
            cJSON_Delete(ev->json);
            ev->json = NULL;
        }
    }
    return 0;
}

int sx_events_next(sx_events *e, int timeout_ms, sx_event *ev, sx_cerr *err)
{
    nng_msg *msg;
    int rv;

    memset(ev, 0, sizeof(*ev));
    if (e->recv_timeout != (nng_duration)timeout_ms) {
        nng_socket_set_ms(e->sock, NNG_OPT_RECVTIMEO, timeout_ms);
        e->recv_timeout = timeout_ms;
    }
    rv = nng_recvmsg(e->sock, &msg, 0);
    if (rv == NNG_ETIMEDOUT)
        return 1;
    if (rv != 0) {
        set_err(err, rv, "cannot receive events from %s: %s", e->url,
                nng_strerror(rv));
        return -1;
    }
    rv = event_fill(msg, ev);
    nng_msg_free(msg);
    if (rv != 0)
        set_err(err, NNG_ENOMEM, "out of memory");
    return rv;
}

void sx_event_clear(sx_event *ev)
{
    free(ev->raw);
    free(ev->topic);
    cJSON_Delete(ev->json);
    memset(ev, 0, sizeof(*ev));
}

void sx_events_close(sx_events *e)
{
    if (e == NULL)
        return;
    if (nng_socket_id(e->sock) > 0)
        nng_close(e->sock);
    link_fini(&e->link);
    free(e->url);
    free(e);
}

void sx_client_shutdown(void)
{
    nng_fini();
}
