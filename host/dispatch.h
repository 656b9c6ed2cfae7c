/*
 * dispatch.h - one request in, one reply out (the protocol of
 * docs/protocol.md).  Never fails to produce a reply: malformed input gets a
 * "rejected" reply with a machine-readable error code.
 */
#ifndef SX_HOST_DISPATCH_H
#define SX_HOST_DISPATCH_H

#include <stddef.h>

#include "host.h"

#include "executions.h"
#include "policy.h"

/* `msg` need not be NUL-terminated.  `origin` (borrowed, NULL = unknown)
 * says where it came from, for the policy pipeline (policy.h).  Returns a
 * malloc(3)ed JSON reply, or NULL: when out of memory, or when the request
 * is a repeat of an execute in flight and was parked (*parked = 1): then
 * waiter(waiter_arg, reply) delivers its reply later, once, from another
 * thread. */
char *sx_dispatch(sx_host *host, const char *msg, size_t len, const sx_origin *origin,
                  sx_waiter_fn waiter, void *waiter_arg, int *parked);

#endif
