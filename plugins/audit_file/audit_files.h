/*
 * audit_files.h - the audit_file sink's files on disk: opening the current
 * file and finding where the hash chain continues (after a restart, a
 * crash, a rotation), naming and pruning rotated files.
 *
 * Layout: the current file is `log_file`; a rotated file is
 * `log_file.<seq of its first record>` (zero-padded to 12 digits), so names
 * sort in chain order and say where each file begins.
 */
#ifndef SX_AUDIT_FILES_H
#define SX_AUDIT_FILES_H

#include <stdint.h>
#include <sys/types.h>

#include "audit_chain.h"
#include "sx/sx_types.h"

typedef struct sx_afile_state {
    int fd;                      /* the current file, O_APPEND */
    int regular;                 /* a regular file (else: no resume, no rotation) */
    sx_chain_head head;          /* the chain's last record */
    uint64_t first_seq;          /* seq of the current file's first record; 0 = empty */
    uint64_t size;               /* the current file's size */
    uint64_t torn_bytes;         /* an incomplete last line dropped at open (0 = none) */
    char torn_sha256[SX_CHAIN_HEX_LEN + 1]; /* its SHA-256, for the audit.recovered record */
    char moved_to[4096];         /* an unchained file moved aside at open ("" = none) */
} sx_afile_state;

/* Open (creating it and its directories) the current file at `path` and
 * find the chain's head: the last record of the current file, else of the
 * newest rotated file, else the genesis.  An incomplete last line (a write
 * cut by a crash: never acknowledged, since every acknowledged record ends
 * with a newline and was fdatasync'ed) is cut off and described in
 * st->torn_*.  A file with no chain at all (an older format: neither its
 * first nor its last line is a chained record) is renamed to
 * `path.unchained-<UTC time>` (st->moved_to) and a new file begins.
 * Refuses (-1, err "invalid_config") a chained file whose last record does
 * not verify, or that does not begin with a chained record: the chain
 * cannot honestly continue from it.  st->fd is owned by the caller. */
int sx_afile_open(const char *path, sx_afile_state *st, sx_error *err);

/* `path`.<first_seq, 12 digits> into out. */
void sx_afile_rotated_name(const char *path, uint64_t first_seq, char *out, size_t size);

/* The first seq of the oldest file that stays once a rotation of the
 * current file (first record `current_first`) is done and at most `keep`
 * rotated files remain (keep 0 = all: returns 1). */
uint64_t sx_afile_keeps_from(const char *path, uint64_t current_first, int64_t keep);

/* Delete the oldest rotated files of `path` beyond `keep` (0 = none).
 * Returns the number deleted, -1 on a directory error (errno). */
int sx_afile_prune(const char *path, int64_t keep);

/* rename(2) that never replaces an existing file (EEXIST): an audit file
 * is never overwritten by another.  0 or -1 with errno. */
int sx_afile_rename(const char *from, const char *to);

/* fsync(2) the directory holding `path`: makes a create or rename durable. */
int sx_afile_sync_dir(const char *path);

#endif
