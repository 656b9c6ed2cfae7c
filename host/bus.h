/*
 * bus.h - the event bus: an nng PUB socket listening on an in-process
 * address (inproc://sx-bus, for plugins and tests in the process) and on
 * server.events (for orchestrators and `sxctl watch`).  Messages are
 * "<topic> <json>".  Publishing never blocks: PUB drops messages for a
 * subscriber that falls behind, which is why audit does not ride on it.
 * Plugins that subscribe (bus_subscribe) are fed from sx_bus_publish too,
 * through their own bounded queues (subscriptions.h).
 */
#ifndef SX_HOST_BUS_H
#define SX_HOST_BUS_H

#include "sx/sx_types.h"

#define SX_BUS_INPROC_URL "inproc://sx-bus"

struct sx_bus;
struct sx_subs;
/* external_url may be NULL.  subs (may be NULL, borrowed, must outlive the
 * bus) gets every published event too: plugins' subscriptions
 * (subscriptions.h). */
int sx_bus_open(struct sx_bus **bus, const char *external_url, struct sx_subs *subs,
                sx_error *err);
int sx_bus_publish(struct sx_bus *bus, const char *topic, const char *json);
void sx_bus_close(struct sx_bus *bus);

#endif
