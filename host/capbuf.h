/*
 * capbuf.h - bounded capture of a byte stream: keeps the first half and the
 * last half of `cap` bytes and counts what falls in between, so memory stays
 * bounded whatever a script writes.  Not thread-safe (one writer).
 */
#ifndef SX_HOST_CAPBUF_H
#define SX_HOST_CAPBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sx_capbuf {
    size_t cap;          /* total bytes kept at most */
    size_t head_cap;     /* cap / 2 (rounded up) */
    size_t tail_cap;     /* cap - head_cap */
    char *head;          /* first bytes, head_len <= head_cap */
    size_t head_len;
    size_t head_alloc;   /* bytes allocated for head */
    char *tail;          /* ring buffer of the last bytes */
    size_t tail_len;     /* bytes in ring, <= tail_cap */
    size_t tail_pos;     /* next write position in ring */
    uint64_t total;      /* bytes seen */
} sx_capbuf;

/* Returns 0, or -1 when out of memory. */
int sx_capbuf_init(sx_capbuf *b, size_t cap);
void sx_capbuf_free(sx_capbuf *b);
void sx_capbuf_append(sx_capbuf *b, const char *data, size_t len);
/* Bytes seen but not kept. */
uint64_t sx_capbuf_dropped(const sx_capbuf *b);
/* The kept bytes in order: head, then (if anything was dropped) a marker
 * line "\n[... N bytes dropped ...]\n", then tail.  malloc(3)ed, NUL
 * terminated, *len excludes the NUL.  NULL when out of memory. */
char *sx_capbuf_contents(const sx_capbuf *b, size_t *len);

#endif
