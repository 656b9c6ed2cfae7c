/*
 * bus.h - the event bus: an nng PUB socket listening on an in-process
 * address (inproc://sx-bus, for plugins and tests in the process) and on
 * server.events (for orchestrators and `sxctl watch`).  Messages are
 * "<topic> <json>".  Publishing never blocks: PUB drops messages for a
 * subscriber that falls behind, which is why audit does not ride on it.
 */
#ifndef SX_HOST_BUS_H
#define SX_HOST_BUS_H

#include "sx/sx_types.h"

#define SX_BUS_INPROC_URL "inproc://sx-bus"

struct sx_bus;
/* external_url may be NULL. */
int sx_bus_open(struct sx_bus **bus, const char *external_url, sx_error *err);
int sx_bus_publish(struct sx_bus *bus, const char *topic, const char *json);
void sx_bus_close(struct sx_bus *bus);

#endif
