/*
 * output_mask.h - hide secret values in a run's output (a static helper
 * shared by the container backends, plugins/common; not part of the SDK).
 *
 * The values of the secrets a step uses (environment variables and files
 * from the secret store, or read from Kubernetes Secrets) are replaced by
 * "********" in stdout and stderr before the host sees them, so a script
 * that prints a secret does not put
 * it in the reply, the live events or the audit trail.  Output is
 * streamed: a value split across two chunks is still found, at the cost of
 * holding back up to (longest value - 1) bytes of each stream until more
 * arrives or the stream ends.  Values shorter than SX_MASK_MIN bytes are
 * not masked (masking "1" would garble every number).
 */
#ifndef SX_OUTPUT_MASK_H
#define SX_OUTPUT_MASK_H

#include <stddef.h>

#include "sx/sx_types.h"

#define SX_MASK_MIN 4
#define SX_MASK_TEXT "********"

/* stream: 1 stdout, 2 stderr.  data borrowed. */
typedef void (*sx_mask_emit_fn)(void *user, int stream, const char *data, size_t len);

typedef struct sx_masker {
    const sx_strlist *secrets;  /* borrowed; values to hide */
    size_t keep;                /* longest value - 1: what may start a match */
    char *pending[3];           /* held-back bytes per stream (index 1, 2) */
    size_t pending_len[3], pending_cap[3];
    sx_mask_emit_fn emit;
    void *user;
} sx_masker;

void sx_mask_init(sx_masker *m, const sx_strlist *secrets, sx_mask_emit_fn emit, void *user);
/* Pass output through; emits what cannot be part of a value any more. */
void sx_mask_feed(sx_masker *m, int stream, const char *data, size_t len);
/* The streams ended: emit what is held back (masked). */
void sx_mask_flush(sx_masker *m);
/* Wipe and free the held-back bytes. */
void sx_mask_free(sx_masker *m);

#endif
