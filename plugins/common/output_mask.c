/* output_mask.c - hide secret values in a run's output (output_mask.h). */
#define _GNU_SOURCE /* memmem */
#include "output_mask.h"

#include <stdlib.h>
#include <string.h>

void sx_mask_init(sx_masker *m, const sx_strlist *secrets, sx_mask_emit_fn emit, void *user)
{
    memset(m, 0, sizeof *m);
    m->secrets = secrets;
    m->emit = emit;
    m->user = user;
    for (size_t i = 0; secrets && i < secrets->n; i++) {
        size_t n = strlen(secrets->v[i]);
        if (n >= SX_MASK_MIN && n - 1 > m->keep)
            m->keep = n - 1;
    }
}

/* Earliest occurrence of any value in [p, p+len): its offset and length. */
static int first_match(const sx_masker *m, const char *p, size_t len, size_t *at, size_t *mlen)
{
    int found = 0;
    for (size_t i = 0; m->secrets && i < m->secrets->n; i++) {
        const char *v = m->secrets->v[i];
        size_t n = strlen(v);
        if (n < SX_MASK_MIN || n > len)
            continue;
        const char *hit = memmem(p, len, v, n);
        if (hit == NULL)
            continue;
        size_t off = (size_t)(hit - p);
        /* earliest wins; at the same place the longer value */
        if (!found || off < *at || (off == *at && n > *mlen)) {
            *at = off;
            *mlen = n;
            found = 1;
        }
    }
    return found;
}

/* Emit pending[s] up to `upto` bytes with values replaced, drop them. */
static void drain(sx_masker *m, int s, int final)
{
    char *p = m->pending[s];
    size_t len = m->pending_len[s], done = 0;
    for (;;) {
        size_t at = 0, mlen = 0;
        if (!first_match(m, p + done, len - done, &at, &mlen))
            break;
        if (at > 0)
            m->emit(m->user, s, p + done, at);
        m->emit(m->user, s, SX_MASK_TEXT, sizeof SX_MASK_TEXT - 1);
        done += at + mlen;
    }
    /* what is left has no whole value; its last `keep` bytes may begin one */
    size_t rest = len - done;
    size_t out = final ? rest : rest > m->keep ? rest - m->keep : 0;
    if (out > 0)
        m->emit(m->user, s, p + done, out);
    done += out;
    memset(p, 0, done); /* it may have held a value */
    memmove(p, p + done, len - done);
    m->pending_len[s] = len - done;
}

void sx_mask_feed(sx_masker *m, int stream, const char *data, size_t len)
{
    int s = stream == 2 ? 2 : 1;
    if (len == 0)
        return;
    if (m->keep == 0) { /* nothing to hide */
        m->emit(m->user, s, data, len);
        return;
    }
    size_t need = m->pending_len[s] + len;
    if (need > m->pending_cap[s]) {
        size_t cap = m->pending_cap[s] ? m->pending_cap[s] : 4096;
        while (cap < need)
            cap *= 2;
        char *p = malloc(cap); /* not realloc: no stale copy of a value */
        if (p == NULL) {
            /* cannot hold back: what is held goes out masked, this chunk is
             * withheld rather than risk a value */
            static const char note[] = "\n[output withheld: out of memory while masking]\n";
            drain(m, s, 1);
            m->emit(m->user, s, note, sizeof note - 1);
            return;
        }
        if (m->pending[s]) {
            memcpy(p, m->pending[s], m->pending_len[s]);
            memset(m->pending[s], 0, m->pending_cap[s]);
            free(m->pending[s]);
        }
        m->pending[s] = p;
        m->pending_cap[s] = cap;
    }
    memcpy(m->pending[s] + m->pending_len[s], data, len);
    m->pending_len[s] += len;
    drain(m, s, 0);
}

void sx_mask_flush(sx_masker *m)
{
    for (int s = 1; s <= 2; s++)
        if (m->pending_len[s] > 0)
            drain(m, s, 1);
}

void sx_mask_free(sx_masker *m)
{
    for (int s = 1; s <= 2; s++) {
        if (m->pending[s])
            memset(m->pending[s], 0, m->pending_cap[s]);
        free(m->pending[s]);
        m->pending[s] = NULL;
    }
}
