/*
 * subscriptions.h - plugins' subscriptions to the event bus
 * (sx_host_api.bus_subscribe).
 *
 * Every subscription has a topic prefix, a bounded FIFO and a thread of its
 * own.  sx_subs_publish(), which the bus calls for every event it
 * publishes, copies the event into the FIFO of each subscription whose
 * prefix matches and returns: it never waits for a subscriber.  When a FIFO
 * is full (max_events events or max_bytes bytes) its OLDEST events are
 * dropped and counted, so a subscriber that falls behind loses history, not
 * the present.  The thread hands the events to the plugin's function one at
 * a time, in the order they were published.
 *
 * Lifecycle: subscriptions are added from plugins' init() (main thread),
 * before anything is published.  sx_subs_stop() delivers what is still
 * queued, joins every thread and ignores later publishes; it runs before
 * any plugin's fini(), so a plugin's function is never called after fini()
 * began.
 */
#ifndef SX_HOST_SUBSCRIPTIONS_H
#define SX_HOST_SUBSCRIPTIONS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "sx/sx_plugin.h"

/* Host defaults: per subscription, at most this many events or bytes wait. */
#define SX_SUBS_QUEUE_EVENTS 4096
#define SX_SUBS_QUEUE_BYTES (16u * 1024u * 1024u)
/* Subscriptions per host (all plugins together). */
#define SX_SUBS_MAX 64

struct sx_subs;

/* A set of subscriptions whose FIFOs hold at most max_events events and
 * max_bytes bytes (topic + JSON) each.  NULL when out of memory.  Owned by
 * the caller: sx_subs_destroy(). */
struct sx_subs *sx_subs_create(size_t max_events, size_t max_bytes);

/* Subscribe `fn(arg, topic, json)` to every event whose topic starts with
 * `prefix` ("" = all).  `owner` names the subscriber in describe (copied);
 * prefix is copied; arg stays the caller's.  Starts the subscription's
 * thread.  Returns 0, or -1 with err ("invalid_config": too many
 * subscriptions or already stopped; "out_of_memory"). */
int sx_subs_add(struct sx_subs *subs, const char *owner, const char *prefix, sx_event_fn fn,
                void *arg, sx_error *err);

/* Queue the event (both borrowed, copied) for every matching subscription.
 * Thread-safe, never blocks on a subscriber.  A no-op once stopped. */
void sx_subs_publish(struct sx_subs *subs, const char *topic, const char *json);

/* Deliver the events still queued, then join every thread.  Idempotent.
 * Must not be called from a subscription's own function. */
void sx_subs_stop(struct sx_subs *subs);

/* [{"plugin","prefix","delivered","dropped","queued"}] for describe and
 * health (caller owns it). */
cJSON *sx_subs_describe(struct sx_subs *subs);

/* Total events dropped over all subscriptions. */
unsigned long long sx_subs_dropped(struct sx_subs *subs);

/* Stop (if not yet) and free.  NULL is a no-op. */
void sx_subs_destroy(struct sx_subs *subs);

#endif
