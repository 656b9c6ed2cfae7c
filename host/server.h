/*
 * server.h - the nng REQ/REP control socket.  A fixed pool of workers, each
 * with its own nng context, receives requests and replies; a long execution
 * holds only its own worker, so other requests keep being served.  A repeat
 * of an execution in flight holds no worker: its context is parked and gets
 * the reply when the run ends (see executions.h).  The pool
 * is max_concurrent + SX_SERVER_SPARE_WORKERS so that control requests
 * (health, status, cancel) always find a free worker while every execution
 * slot is busy.
 */
#ifndef SX_HOST_SERVER_H
#define SX_HOST_SERVER_H

#include "host.h"

#define SX_SERVER_SPARE_WORKERS 16

struct sx_server;
int sx_server_start(sx_host *host, struct sx_server **out, sx_error *err);
/* Let each worker finish the request it holds, join them, then close the
 * socket.  Returns within SX_SERVER_POLL_MS of the last request's reply. */
void sx_server_stop(struct sx_server *server);

#endif
