/*
 * docker_stream.h - demultiplexer for the Engine's attach/logs stream.
 *
 * Without a TTY the Engine frames stdout and stderr on one connection:
 * an 8-byte header {stream (0 stdin, 1 stdout, 2 stderr), 0, 0, 0,
 * size as big-endian uint32} followed by `size` bytes of payload.  Bytes
 * arrive in arbitrary chunks (a header may be split across reads); the
 * demuxer keeps the partial header and calls `emit` for each piece of
 * payload as soon as it has it (a frame's payload may be emitted in several
 * calls; it is never buffered whole).
 */
#ifndef SX_DOCKER_STREAM_H
#define SX_DOCKER_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* stream: 1 stdout, 2 stderr (frames for stream 0 are treated as stdout,
 * as the Engine does for stdin echo).  data borrowed. */
typedef void (*sx_demux_emit_fn)(void *user, int stream, const char *data, size_t len);

typedef struct sx_demux {
    unsigned char header[8];
    size_t header_len;      /* bytes of the current header received */
    uint32_t remaining;     /* payload bytes of the current frame still due */
    int stream;             /* stream of the current frame */
    int bad;                /* non-zero once a header had an unknown stream
                               id (>2) or non-zero padding: the rest is
                               emitted as stdout, unframed */
    sx_demux_emit_fn emit;
    void *user;
} sx_demux;

void sx_demux_init(sx_demux *d, sx_demux_emit_fn emit, void *user);

/* Feed `len` bytes (any split).  Never fails: on a malformed header it sets
 * d->bad and passes everything from there on through as stdout. */
void sx_demux_feed(sx_demux *d, const char *data, size_t len);

/* Non-zero when the stream ended in the middle of a frame (a header or
 * payload was cut short): the caller reports the output as truncated. */
int sx_demux_incomplete(const sx_demux *d);

#endif
