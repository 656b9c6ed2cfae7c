/*
 * dispatch.h - one request in, one reply out (the protocol of
 * docs/protocol.md).  Never fails to produce a reply: malformed input gets a
 * "rejected" reply with a machine-readable error code.
 */
#ifndef SX_HOST_DISPATCH_H
#define SX_HOST_DISPATCH_H

#include <stddef.h>

#include "host.h"

/* `msg` need not be NUL-terminated.  Returns a malloc(3)ed JSON reply
 * (NULL only when out of memory). */
char *sx_dispatch(sx_host *host, const char *msg, size_t len);

#endif
