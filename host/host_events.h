/*
 * host_events.h - what the host publishes on the bus about itself:
 *
 *   host.started  once, when it serves: {"version", "abi", "plugins":
 *                 [{"name","version","kind","provides","abi"}], "executors":
 *                 [{"name","kind","plugin"}], "max_concurrent", "http"}
 *   host.load     on every change of the load: {"in_flight", "waiting",
 *                 "max_concurrent"} (waiting: repeats of a run in flight,
 *                 parked until it ends; the host queues nothing else, more
 *                 than max_concurrent executions are refused with "busy")
 *
 * Observers such as the metrics plugin take the plugin list and the load
 * from these instead of asking the host.
 */
#ifndef SX_HOST_HOST_EVENTS_H
#define SX_HOST_HOST_EVENTS_H

#include "host.h"

/* Publish host.started and start reporting host.load (from the executions
 * table's observer).  Call once the bus and HTTP are up. */
void sx_host_events_start(sx_host *host);
/* Stop reporting host.load (before the bus closes).  Idempotent. */
void sx_host_events_stop(sx_host *host);

#endif
