/*
 * sx_sink.h - durable event sinks (SX_KIND_EVENT_SINK), e.g. the audit file.
 *
 * Records (accepted, rejected, started, finished...) are written to every
 * loaded sink synchronously: the host does not start a step before its start
 * record is durable in every sink, nor reply before the finish record is.
 * Best-effort observers (live output, metrics) use the nng pub/sub bus
 * instead and never slow an execution down.
 */
#ifndef SX_SINK_H
#define SX_SINK_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sx_sink_ops {
    uint32_t struct_size;
    /* Make one record durable (e.g. write + fsync) before returning 0; on
     * failure fill err and return -1.  topic and json (a JSON object, one
     * line, no trailing newline) are borrowed.  Concurrent: serialise inside
     * the sink if needed. */
    int (*write)(void *state, const char *topic, const char *json,
                 sx_error *err);
    /* Flush anything buffered; called at shutdown.  May be NULL. */
    int (*flush)(void *state);
    /* Fields above are valid for ABI minor 0. */

    /* Optional (may be NULL = always ready): can the sink take records
     * now?  Returns 0, or -1 with err saying why (disk full, spool full).
     * Answers within about a second.  Concurrent. */
    int (*ready)(void *state, sx_error *err);
    /* Fields above are valid for ABI minor 2. */
} sx_sink_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_SINK_H */
