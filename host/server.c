/* server.c - nng REQ/REP workers (see server.h). */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dispatch.h"
#include "log.h"
#include "sx/sx_util.h"

/* A worker waits for a request at most this long before it checks whether
 * the server is stopping.  The socket is closed only after every worker has
 * left its loop: closing it under a worker about to send is a crash in nng. */
#define SX_SERVER_POLL_MS 250
#define SX_SERVER_SEND_TIMEOUT_MS 10000

struct sx_server {
    sx_host *host;
    nng_socket rep;
    size_t n_workers;
    pthread_t *threads;
    atomic_int stopping;
    atomic_int parked;          /* parked contexts whose reply is not sent yet */
};

/* A repeat of an execute in flight: its context (which holds the request's
 * route back) waits here, not in a thread, until the run ends. */
typedef struct sx_parked {
    struct sx_server *srv;
    nng_ctx ctx;
    nng_aio *aio;
} sx_parked;

static void parked_sent(void *arg)
{
    sx_parked *pk = arg;
    if (nng_aio_result(pk->aio) != 0) /* peer gone: the reply is dropped */
        nng_msg_free(nng_aio_get_msg(pk->aio));
    nng_ctx_close(pk->ctx);
    nng_aio_reap(pk->aio); /* cannot free an aio from its own callback */
    atomic_fetch_sub(&pk->srv->parked, 1);
    free(pk);
}

/* sx_waiter_fn: the run ended; send its reply on the parked context. */
static void parked_deliver(void *arg, const char *reply)
{
    sx_parked *pk = arg;
    nng_msg *msg = NULL;
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, reply, strlen(reply)) != 0 ||
        nng_aio_alloc(&pk->aio, parked_sent, pk) != 0) {
        if (msg)
            nng_msg_free(msg);
        nng_ctx_close(pk->ctx);
        atomic_fetch_sub(&pk->srv->parked, 1);
        free(pk);
        return;
    }
    nng_aio_set_msg(pk->aio, msg);
    nng_aio_set_timeout(pk->aio, SX_SERVER_SEND_TIMEOUT_MS);
    nng_ctx_send(pk->ctx, pk->aio);
}

/* Where a request came from: the listener, and on ipc:// the peer's uid
 * and pid as the kernel reports them (SO_PEERCRED, through nng's pipe
 * options): not forgeable by the peer. */
static void origin_of(const struct sx_server *srv, nng_msg *msg, sx_origin *o)
{
    o->transport = "nng";
    o->listener = srv->host->settings.listen;
    o->peer_uid = -1;
    o->peer_pid = -1;
    nng_pipe pipe = nng_msg_get_pipe(msg);
    uint64_t v;
    if (nng_pipe_id(pipe) < 0)
        return;
    if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_UID, &v) == 0 && v <= INT64_MAX)
        o->peer_uid = (int64_t)v;
    if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &v) == 0 && v <= INT64_MAX)
        o->peer_pid = (int64_t)v;
}

static void *worker_main(void *arg)
{
    struct sx_server *srv = arg;
    nng_aio *aio;
    nng_ctx ctx;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0)
        return NULL;
    if (nng_ctx_open(&ctx, srv->rep) != 0) {
        nng_aio_free(aio);
        return NULL;
    }
    sx_parked *spare = NULL; /* handed to dispatch in case the request parks */
    while (!atomic_load(&srv->stopping)) {
        nng_aio_set_timeout(aio, SX_SERVER_POLL_MS);
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ECLOSED)
            break;
        if (rv != 0) /* NNG_ETIMEDOUT: look at the stop flag again */
            continue;
        nng_msg *msg = nng_aio_get_msg(aio);
        if (spare == NULL && (spare = calloc(1, sizeof *spare)) == NULL) {
            nng_msg_free(msg);
            continue;
        }
        spare->srv = srv;
        spare->ctx = ctx;
        atomic_fetch_add(&srv->parked, 1); /* counted before anyone can deliver */
        int parked = 0;
        sx_origin origin;
        origin_of(srv, msg, &origin);
        char *reply = sx_dispatch(srv->host, nng_msg_body(msg), nng_msg_len(msg), &origin,
                                  parked_deliver, spare, &parked);
        if (parked) {
            /* the context now belongs to the parked waiter; take a new one */
            nng_msg_free(msg);
            spare = NULL;
            if (nng_ctx_open(&ctx, srv->rep) != 0) {
                sx_log(SX_LOG_ERROR, "server", "cannot open an nng context: worker stops");
                nng_aio_free(aio);
                return NULL;
            }
            continue;
        }
        atomic_fetch_sub(&srv->parked, 1);
        nng_msg_clear(msg);
        const char *text = reply ? reply
                                 : "{\"status\":\"error\",\"error\":{\"code\":\"out_of_memory\","
                                   "\"message\":\"out of memory\"}}";
        if (nng_msg_append(msg, text, strlen(text)) != 0) {
            nng_msg_free(msg);
            free(reply);
            continue;
        }
        free(reply);
        nng_aio_set_msg(aio, msg);
        nng_aio_set_timeout(aio, SX_SERVER_SEND_TIMEOUT_MS);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0) /* peer gone: the reply is dropped */
            nng_msg_free(msg);
    }
    free(spare);
    nng_ctx_close(ctx);
    nng_aio_free(aio);
    return NULL;
}

/* For ipc:// URLs make sure the socket's directory exists (mode 0700 when
 * created: the control socket is not for everyone). */
static void ensure_ipc_dir(const char *url)
{
    if (strncmp(url, "ipc://", 6) != 0)
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", url + 6);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
}

int sx_server_start(sx_host *host, struct sx_server **out, sx_error *err)
{
    struct sx_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    srv->host = host;
    int rv = nng_rep0_open(&srv->rep);
    if (rv != 0) {
        free(srv);
        return sx_error_set(err, "server_error", "cannot open REP socket: %s", nng_strerror(rv));
    }
    /* Requests between max_message_size and twice that get a clear
     * "message_too_large" reply; larger ones are cut off by nng (the
     * connection is closed) so a hostile peer cannot make us buffer them. */
    nng_socket_set_size(srv->rep, NNG_OPT_RECVMAXSZ, (size_t)host->settings.max_message_size * 2);
    ensure_ipc_dir(host->settings.listen);
    /* server.auth.ipc_permissions: who may connect to an ipc:// socket
     * (peer-uid authentication is useless if only we can) */
    nng_listener listener;
    rv = nng_listener_create(&listener, srv->rep, host->settings.listen);
    if (rv == 0 && host->ipc_permissions >= 0)
        rv = nng_listener_set_int(listener, NNG_OPT_IPC_PERMISSIONS, host->ipc_permissions);
    if (rv == 0)
        rv = nng_listener_start(listener, 0);
    if (rv != 0) {
        nng_close(srv->rep);
        free(srv);
        return sx_error_set(err, "invalid_config", "cannot listen on %s: %s",
                            host->settings.listen, nng_strerror(rv));
    }
    srv->n_workers = (size_t)host->settings.max_concurrent + SX_SERVER_SPARE_WORKERS;
    srv->threads = calloc(srv->n_workers, sizeof *srv->threads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    size_t started = 0;
    int perr = srv->threads ? 0 : ENOMEM;
    for (; srv->threads && started < srv->n_workers; started++)
        if ((perr = pthread_create(&srv->threads[started], &attr, worker_main, srv)) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (started < srv->n_workers) {
        srv->n_workers = started;
        sx_server_stop(srv);
        return sx_error_set(err, "server_error", "cannot start worker threads: %s", strerror(perr));
    }
    *out = srv;
    return 0;
}

void sx_server_stop(struct sx_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, 1);
    for (size_t i = 0; i < srv->n_workers; i++)
        pthread_join(srv->threads[i], NULL);
    /* Runs have ended by now, so parked replies are on their way: let them
     * leave (bounded) before the socket goes. */
    for (int i = 0; i < 200 && atomic_load(&srv->parked) > 0; i++) {
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    nng_close(srv->rep);
    free(srv->threads);
    free(srv);
}
