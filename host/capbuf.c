/* capbuf.c - bounded head+tail capture (see capbuf.h). */
#define _POSIX_C_SOURCE 200809L
#include "capbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sx_capbuf_init(sx_capbuf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->head_cap = cap - cap / 2;
    b->tail_cap = cap / 2;
    /* Buffers grow on demand up to their caps: most scripts print little. */
    return 0;
}

void sx_capbuf_free(sx_capbuf *b)
{
    free(b->head);
    free(b->tail);
    memset(b, 0, sizeof *b);
}

static int grow(char **buf, size_t *alloc_cap, size_t need, size_t limit)
{
    if (need <= *alloc_cap)
        return 0;
    size_t n = *alloc_cap ? *alloc_cap : 4096;
    while (n < need)
        n *= 2;
    if (n > limit)
        n = limit;
    char *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *alloc_cap = n;
    return 0;
}

void sx_capbuf_append(sx_capbuf *b, const char *data, size_t len)
{
    b->total += len;
    /* 1. fill the head (grown geometrically up to head_cap) */
    if (b->head_len < b->head_cap) {
        size_t take = b->head_cap - b->head_len;
        if (take > len)
            take = len;
        if (grow(&b->head, &b->head_alloc, b->head_len + take, b->head_cap) != 0)
            return;
        memcpy(b->head + b->head_len, data, take);
        b->head_len += take;
        data += take;
        len -= take;
    }
    if (len == 0 || b->tail_cap == 0)
        return;
    /* 2. the rest goes to the tail ring; only the last tail_cap bytes matter */
    if (len > b->tail_cap) {
        data += len - b->tail_cap;
        len = b->tail_cap;
    }
    if (b->tail == NULL) {
        b->tail = malloc(b->tail_cap);
        if (b->tail == NULL)
            return;
    }
    size_t first = b->tail_cap - b->tail_pos;
    if (first > len)
        first = len;
    memcpy(b->tail + b->tail_pos, data, first);
    memcpy(b->tail, data + first, len - first);
    b->tail_pos = (b->tail_pos + len) % b->tail_cap;
    b->tail_len = b->tail_len + len > b->tail_cap ? b->tail_cap : b->tail_len + len;
}

uint64_t sx_capbuf_dropped(const sx_capbuf *b)
{
    return b->total - b->head_len - b->tail_len;
}

char *sx_capbuf_contents(const sx_capbuf *b, size_t *len)
{
    uint64_t dropped = sx_capbuf_dropped(b);
    char marker[80] = "";
    if (dropped > 0)
        snprintf(marker, sizeof marker, "\n[... %" PRIu64 " bytes dropped ...]\n", dropped);
    size_t mlen = strlen(marker);
    size_t n = b->head_len + mlen + b->tail_len;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    if (b->head_len > 0)
        memcpy(out, b->head, b->head_len);
    memcpy(out + b->head_len, marker, mlen);
    /* ring: oldest byte is at tail_pos when full, else at 0 */
    size_t start = b->tail_len == b->tail_cap ? b->tail_pos : 0;
    size_t first = b->tail_len < b->tail_cap - start ? b->tail_len : b->tail_cap - start;
    char *dst = out + b->head_len + mlen;
    if (b->tail_len > 0) {
        memcpy(dst, b->tail + start, first);
        memcpy(dst + first, b->tail, b->tail_len - first);
    }
    out[n] = '\0';
    *len = n;
    return out;
}
