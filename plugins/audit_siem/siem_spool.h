/*
 * siem_spool.h - the bounded on-disk queue of records waiting for the SIEM.
 *
 * A directory of append-only segment files, `<first index, 20 digits>.seg`,
 * one record per line, and a file `ack` holding the index of the first
 * record not yet delivered.  Records get consecutive indexes from 0, kept
 * across restarts.  An append is durable (write + fdatasync, shared by
 * concurrent writers) before sx_spool_append returns; `ack` is replaced
 * atomically (write, fsync, rename, fsync of the directory) after each
 * delivered batch, and segments whose records are all delivered are
 * deleted.
 *
 * At open: an incomplete last line (an append cut by a crash, never
 * acknowledged) is cut off; delivery resumes at `ack`.  Records between
 * the last ack and a crash are delivered again (at-least-once).
 *
 * Bounded: when the segment files would exceed `max_bytes`, an append is
 * refused ("audit_unavailable"): the host then starts no step, which is the
 * safe side.  A partly delivered segment counts whole until all of it is
 * delivered, so up to one segment of the bound may be delivered records.
 *
 * One process at a time: the directory is locked (flock on `lock`).
 * Threading: sx_spool_append is concurrent; peek/ack are for one consumer
 * thread; every function is thread-safe with respect to the others.
 */
#ifndef SX_SIEM_SPOOL_H
#define SX_SIEM_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "sx/sx_types.h"

typedef struct sx_spool sx_spool;

typedef struct sx_spool_limits {
    uint64_t max_bytes;          /* all segment files together */
    uint64_t segment_bytes;      /* a segment is closed once it reaches this */
} sx_spool_limits;

/* Open (creating) the spool in `dir` and recover it.  *out is owned by the
 * caller (sx_spool_close).  0, or -1 with err ("invalid_config"). */
int sx_spool_open(const char *dir, const sx_spool_limits *limits, sx_spool **out, sx_error *err);
void sx_spool_close(sx_spool *s);

/* Append one record (`len` bytes, no newline in it; borrowed); durable when
 * 0 is returned.  -1 with err "audit_unavailable": the spool is full, the
 * record is larger than the spool, or the disk failed (then every later
 * append fails too).  Concurrent. */
int sx_spool_append(sx_spool *s, const char *rec, size_t len, sx_error *err);

/* The oldest undelivered records: at most max_records, and at most
 * max_bytes unless the first record alone is larger.  Records never span
 * two segments in one batch. */
typedef struct sx_spool_batch {
    char *data;                  /* the records, each ending with "\n" (malloc(3)ed) */
    size_t len;
    size_t count;                /* 0 = nothing to deliver */
    uint64_t first_index;
} sx_spool_batch;

/* Fill *b (free b->data with free(3)); count 0 when nothing is pending.
 * 0, or -1 with err when the spool cannot be read. */
int sx_spool_peek(sx_spool *s, size_t max_records, size_t max_bytes, sx_spool_batch *b,
                  sx_error *err);
/* The batch from the last peek was delivered: persist the new ack and
 * delete delivered segments.  0, or -1 with err (then the batch will be
 * delivered again). */
int sx_spool_ack(sx_spool *s, const sx_spool_batch *b, sx_error *err);

/* Wait up to timeout_ms until a record is pending or sx_spool_wake() is
 * called.  Returns 1 when records are pending, else 0. */
int sx_spool_wait_pending(sx_spool *s, int64_t timeout_ms);
/* Wait up to timeout_ms until nothing is pending.  1 when empty, else 0. */
int sx_spool_wait_empty(sx_spool *s, int64_t timeout_ms);
/* Wake every sx_spool_wait_* caller (shutdown). */
void sx_spool_wake(sx_spool *s);

typedef struct sx_spool_stats {
    uint64_t next_index;         /* index the next append gets */
    uint64_t acked;              /* first undelivered index */
    uint64_t pending;            /* next_index - acked */
    uint64_t bytes;              /* size of the segment files */
    uint64_t segments;
    int failed;                  /* an append failed: the spool refuses records */
} sx_spool_stats;

void sx_spool_get_stats(sx_spool *s, sx_spool_stats *st);

/* Can an append of `len` bytes be taken now?  0, or -1 with err saying why
 * (full, failed). */
int sx_spool_ready(sx_spool *s, size_t len, sx_error *err);

#endif
