/* bus.c - nng PUB event bus (see bus.h). */
#define _POSIX_C_SOURCE 200809L
#include "bus.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdlib.h>
#include <string.h>

#include "subscriptions.h"
#include "sx/sx_util.h"

struct sx_bus {
    nng_socket pub;
    struct sx_subs *subs;
};

int sx_bus_open(struct sx_bus **out, const char *external_url, struct sx_subs *subs,
                sx_error *err)
{
    struct sx_bus *bus = calloc(1, sizeof *bus);
    if (bus == NULL)
        return sx_error_set(err, "out_of_memory", "event bus: out of memory");
    bus->subs = subs;
    int rv = nng_pub0_open(&bus->pub);
    /* Per-subscriber queue: deep enough that a live `sxctl watch` keeps up
     * with bursts of output, bounded so a stalled subscriber costs at most
     * this many messages (output chunks are at most 64 KiB) before it starts
     * missing events. */
    if (rv == 0)
        rv = nng_socket_set_int(bus->pub, NNG_OPT_SENDBUF, 256);
    if (rv == 0)
        rv = nng_listen(bus->pub, SX_BUS_INPROC_URL, NULL, 0);
    if (rv != 0) {
        free(bus);
        return sx_error_set(err, "bus_error", "event bus: %s", nng_strerror(rv));
    }
    if (external_url && *external_url) {
        rv = nng_listen(bus->pub, external_url, NULL, 0);
        if (rv != 0) {
            nng_close(bus->pub);
            free(bus);
            return sx_error_set(err, "invalid_config",
                                "cannot listen for events on %s: %s", external_url,
                                nng_strerror(rv));
        }
    }
    *out = bus;
    return 0;
}

int sx_bus_publish(struct sx_bus *bus, const char *topic, const char *json)
{
    if (bus == NULL)
        return -1;
    sx_subs_publish(bus->subs, topic, json);
    size_t tl = strlen(topic), jl = strlen(json);
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0)
        return -1;
    if (nng_msg_append(msg, topic, tl) != 0 || nng_msg_append(msg, " ", 1) != 0 ||
        nng_msg_append(msg, json, jl) != 0) {
        nng_msg_free(msg);
        return -1;
    }
    /* PUB never blocks: a subscriber whose queue is full misses this one. */
    int rv = nng_sendmsg(bus->pub, msg, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        nng_msg_free(msg);
        return -1;
    }
    return 0;
}

void sx_bus_close(struct sx_bus *bus)
{
    if (bus == NULL)
        return;
    nng_close(bus->pub);
    free(bus);
}
