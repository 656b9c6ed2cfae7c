/* group_commit.c - shared fdatasync for concurrent appenders (see group_commit.h). */
#define _POSIX_C_SOURCE 200809L
#include "group_commit.h"

#include <errno.h>
#include <unistd.h>

void sx_gcommit_init(sx_gcommit *g)
{
    pthread_cond_init(&g->cond, NULL);
    g->appended = 0;
    g->durable = 0;
    g->syncing = 0;
    g->error = 0;
}

void sx_gcommit_destroy(sx_gcommit *g) { pthread_cond_destroy(&g->cond); }

uint64_t sx_gcommit_ticket(sx_gcommit *g) { return ++g->appended; }

void sx_gcommit_fail(sx_gcommit *g, int err)
{
    if (g->error == 0)
        g->error = err ? err : EIO;
    pthread_cond_broadcast(&g->cond);
}

int sx_gcommit_wait(sx_gcommit *g, pthread_mutex_t *lock, const int *fd, uint64_t ticket)
{
    while (g->error == 0 && g->durable < ticket) {
        if (g->syncing) {
            pthread_cond_wait(&g->cond, lock);
            continue;
        }
        g->syncing = 1;
        uint64_t target = g->appended;
        int f = *fd;
        pthread_mutex_unlock(lock);
        int rv = fdatasync(f);
        int e = errno;
        pthread_mutex_lock(lock);
        g->syncing = 0;
        if (rv != 0)
            sx_gcommit_fail(g, e);
        else if (target > g->durable)
            g->durable = target;
        pthread_cond_broadcast(&g->cond);
    }
    return g->error;
}

int sx_gcommit_sync_all(sx_gcommit *g, pthread_mutex_t *lock, const int *fd)
{
    while (g->syncing)
        pthread_cond_wait(&g->cond, lock);
    if (g->error)
        return g->error;
    if (g->durable < g->appended) {
        if (fdatasync(*fd) != 0) {
            sx_gcommit_fail(g, errno);
            return g->error;
        }
        g->durable = g->appended;
        pthread_cond_broadcast(&g->cond);
    }
    return 0;
}
