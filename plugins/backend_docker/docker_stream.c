/* docker_stream.c - demultiplexer for the Engine's framed attach/logs stream. */
#define _POSIX_C_SOURCE 200809L
#include "docker_stream.h"

#include <string.h>

void sx_demux_init(sx_demux *d, sx_demux_emit_fn emit, void *user)
{
    memset(d, 0, sizeof *d);
    d->emit = emit;
    d->user = user;
}

static void demux_emit(sx_demux *d, int stream, const char *data, size_t len)
{
    if (len && d->emit)
        d->emit(d->user, stream, data, len);
}

/* The byte at position `pos` of a header is acceptable: stream 0..2, then
 * three zero bytes, then any size. */
static int header_byte_ok(size_t pos, unsigned char c)
{
    if (pos == 0)
        return c <= 2;
    if (pos < 4)
        return c == 0;
    return 1;
}

void sx_demux_feed(sx_demux *d, const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        if (d->bad) {
            demux_emit(d, 1, data + i, len - i);
            return;
        }
        if (d->remaining) {
            size_t n = len - i;
            if (n > d->remaining)
                n = d->remaining;
            demux_emit(d, d->stream, data + i, n);
            d->remaining -= (uint32_t)n;
            i += n;
            continue;
        }
        /* Collecting a header; each byte is checked as it arrives, so that
         * unframed output (e.g. from a TTY container) is passed on at once
         * instead of sitting in a partial header. */
        unsigned char c = p[i];
        if (!header_byte_ok(d->header_len, c)) {
            d->bad = 1;
            demux_emit(d, 1, (const char *)d->header, d->header_len);
            d->header_len = 0;
            continue;   /* this byte and the rest go out as stdout */
        }
        d->header[d->header_len++] = c;
        i++;
        if (d->header_len == sizeof d->header) {
            d->stream = d->header[0] == 2 ? 2 : 1;   /* 0 (stdin echo) as stdout */
            d->remaining = (uint32_t)d->header[4] << 24 | (uint32_t)d->header[5] << 16 |
                           (uint32_t)d->header[6] << 8 | (uint32_t)d->header[7];
            d->header_len = 0;
        }
    }
}

int sx_demux_incomplete(const sx_demux *d)
{
    if (d->bad)
        return 0;
    return d->header_len != 0 || d->remaining != 0;
}
