/*
 * health.h - the HTTP probes on server.http:
 *
 *   GET /healthz  200 {"status":"ok"} while the process serves HTTP at all
 *                 (liveness: nothing else is asked).
 *   GET /readyz   200 {"status":"ready", "checks":[...]} when the host
 *                 accepts work and every backend instance, event sink,
 *                 service and approval store whose plugin has a `ready` op
 *                 says 0; else 503 {"status":"not_ready", "reasons":[...],
 *                 "checks":[...]} naming each plugin (and instance) that is
 *                 not, with its error code and message.
 *
 * `ready` ops are read through sx_plugin_ready_op() (plugin_ready.h): a
 * plugin built before ABI 1.2, or one that leaves the op NULL, counts as
 * ready.  They are called one after the other, each expected to answer
 * within about a second.
 */
#ifndef SX_HOST_HEALTH_H
#define SX_HOST_HEALTH_H

#include <cjson/cJSON.h>

#include "host.h"

/* Register /healthz and /readyz on server.http (a no-op returning 0 when
 * server.http is off).  Returns 0 or -1 with err. */
int sx_health_add_routes(sx_host *host, sx_error *err);

/* Ask every ready op.  Returns 1 when ready, 0 when not; *report (caller
 * owns) is the /readyz body. */
int sx_host_readiness(sx_host *host, cJSON **report);

#endif
