/*
 * siem_deliver.h - the background thread that POSTs spooled records to the
 * SIEM endpoint, in order, in batches, retrying with exponential backoff.
 *
 * Each batch is one POST of a JSON array of records
 * (Content-Type: application/json, Authorization: Bearer <token>).  A 2xx
 * answer acknowledges the whole batch (sx_spool_ack); anything else - a
 * transport error, a timeout, any other status - leaves it in the spool and
 * it is sent again after a delay: backoff_initial, doubled per failure up
 * to backoff_max, with jitter (a random half of the delay).  Delivery is
 * at-least-once: a batch the SIEM stored but did not answer is sent again;
 * every record carries a unique "record_id" to deduplicate on.
 *
 * The token is read before every request (so a rotated secret is picked up)
 * and wiped after it; it never reaches a log.
 */
#ifndef SX_SIEM_DELIVER_H
#define SX_SIEM_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "siem_spool.h"
#include "sx/sx_plugin.h"

/* Read the bearer token: *token malloc(3)ed (the caller wipes and frees
 * it), *len bytes.  0, or -1 with err (never quoting the value). */
typedef int (*sx_siem_token_fn)(void *arg, char **token, size_t *len, sx_error *err);

typedef struct sx_siem_options {
    const char *endpoint;        /* http:// or https:// URL (borrowed for the deliverer's life) */
    const char *ca_file;         /* NULL = the system's CA store */
    int64_t connect_timeout_ms;
    int64_t request_timeout_ms;  /* the whole request; a stalled endpoint times out */
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    size_t batch_max_records;
    size_t batch_max_bytes;
    sx_siem_token_fn token;
    void *token_arg;
    const sx_host_api *host;     /* for logging */
    sx_plugin_ctx *ctx;
} sx_siem_options;

typedef struct sx_siem_deliverer sx_siem_deliverer;

/* Start delivering from `spool` (borrowed; outlives the deliverer).
 * *out owned by the caller (sx_siem_deliver_stop).  0, or -1 with err. */
int sx_siem_deliver_start(sx_spool *spool, const sx_siem_options *o, sx_siem_deliverer **out,
                          sx_error *err);

/* Stop: a request in flight is aborted (its batch stays spooled); the
 * thread is joined and everything freed.  d may be NULL. */
void sx_siem_deliver_stop(sx_siem_deliverer *d);

#endif
