/*
 * img_store.c - the current catalog, replaced whole on reload (see img.h).
 *
 * RCU in miniature: a catalog is immutable, the store points at the
 * current one and holds one reference to it; a resolve takes a reference
 * under a mutex held only for the pointer read and the increment, works on
 * its catalog without any lock, and drops the reference; a reload builds
 * the new catalog outside the lock and swaps the pointer.  The last holder
 * of an old catalog frees it.  Requests in flight therefore never wait for
 * a reload to parse a file, and never see a half-built catalog.
 */
#include "img.h"

#include <pthread.h>
#include <stdlib.h>

struct sx_img_store {
    pthread_mutex_t lock;       /* guards `current` (the pointer only) */
    sx_img_catalog *current;    /* may be NULL: the catalog is off */
};

static void take(sx_img_catalog *cat)
{
    if (cat)
        atomic_fetch_add_explicit(&cat->refs, 1, memory_order_relaxed);
}

static void drop(sx_img_catalog *cat)
{
    /* acq_rel: every reader's use happens before the free */
    if (cat && atomic_fetch_sub_explicit(&cat->refs, 1, memory_order_acq_rel) == 1)
        sx_img_catalog_free(cat);
}

sx_img_store *sx_img_store_new(sx_img_catalog *initial)
{
    sx_img_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sx_img_catalog_free(initial);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (initial) {
        atomic_store(&initial->refs, 0);
        if (initial->generation == 0)
            initial->generation = 1;
        take(initial);
    }
    s->current = initial;
    return s;
}

void sx_img_store_free(sx_img_store *s)
{
    if (s == NULL)
        return;
    drop(s->current);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const sx_img_catalog *sx_img_store_acquire(sx_img_store *s)
{
    pthread_mutex_lock(&s->lock);
    sx_img_catalog *cat = s->current;
    take(cat);
    pthread_mutex_unlock(&s->lock);
    return cat;
}

void sx_img_store_release(sx_img_store *s, const sx_img_catalog *cat)
{
    (void)s;
    /* the reference made it ours to drop: const only for the readers */
    drop((sx_img_catalog *)cat);
}

void sx_img_store_swap(sx_img_store *s, sx_img_catalog *next)
{
    if (next)
        atomic_store(&next->refs, 0);
    take(next);
    pthread_mutex_lock(&s->lock);
    sx_img_catalog *old = s->current;
    if (next)
        next->generation = (old ? old->generation : 0) + 1;
    s->current = next;
    pthread_mutex_unlock(&s->lock);
    drop(old);
}
