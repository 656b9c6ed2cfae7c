/*
 * group_commit.h - durable appends shared by concurrent writers.
 *
 * Writers append their line to a file under the owner's mutex, take a
 * ticket, then wait here for it to be durable: one of them (the leader)
 * runs fdatasync for every line appended so far, outside the mutex, while
 * the others wait for `durable` to cover their ticket.  Each writer returns
 * only once its own line is on disk; concurrent writers share the cost.
 *
 * A failed fdatasync is sticky: what reached the disk is then unknown, so
 * every later wait fails with the same errno (the owner refuses records).
 *
 * Every function is called with the owner's mutex held.  The file
 * descriptor is read through a pointer at sync time, so the owner may
 * replace the file (rotation) after sx_gcommit_sync_all().
 */
#ifndef SX_GROUP_COMMIT_H
#define SX_GROUP_COMMIT_H

#include <pthread.h>
#include <stdint.h>

typedef struct sx_gcommit {
    pthread_cond_t cond;
    uint64_t appended;      /* lines appended (tickets handed out) */
    uint64_t durable;       /* lines known durable */
    int syncing;            /* a leader is in fdatasync */
    int error;              /* errno of a failed fdatasync; sticky */
} sx_gcommit;

void sx_gcommit_init(sx_gcommit *g);
void sx_gcommit_destroy(sx_gcommit *g);

/* One more line was appended: its ticket. */
uint64_t sx_gcommit_ticket(sx_gcommit *g);

/* Wait until `ticket` is durable on *fd, leading an fdatasync when none is
 * running.  Returns 0, or the errno of the failed sync (sticky). */
int sx_gcommit_wait(sx_gcommit *g, pthread_mutex_t *lock, const int *fd, uint64_t ticket);

/* Make every line appended so far durable now (waits for a running leader
 * first), e.g. before the file is closed or renamed; *fd is read after the
 * wait, as another writer may have replaced the file meanwhile.  Returns 0
 * or errno. */
int sx_gcommit_sync_all(sx_gcommit *g, pthread_mutex_t *lock, const int *fd);

/* Mark the state failed with `err` (an errno) for every later wait. */
void sx_gcommit_fail(sx_gcommit *g, int err);

#endif
