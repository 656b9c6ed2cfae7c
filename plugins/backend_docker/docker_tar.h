/*
 * docker_tar.h - a minimal in-memory POSIX ustar writer.
 *
 * The Docker Engine's archive API (PUT /containers/{id}/archive) takes a tar
 * stream; the Docker backend uses it to place the script and secret/configmap
 * files into a per-execution volume without touching argv or the host's
 * filesystem.  Only what that needs: regular files and directories with
 * explicit mode, uid and gid, names up to 255 bytes (ustar prefix + name).
 */
#ifndef SX_DOCKER_TAR_H
#define SX_DOCKER_TAR_H

#include <stddef.h>
#include <stdint.h>

typedef struct sx_tar {
    char *data;     /* the archive so far; owned, free with sx_tar_free */
    size_t len;
    size_t cap;
} sx_tar;

/* Append a directory entry ("dir" or "dir/sub"; a trailing '/' is added).
 * Returns 0, or -1 when the name is empty, absolute, contains a ".."
 * component, is too long for ustar, or memory runs out. */
int sx_tar_add_dir(sx_tar *t, const char *name, unsigned mode, unsigned uid, unsigned gid);

/* Append a regular file with `len` bytes of `data` (any bytes).  Same name
 * rules and return value as sx_tar_add_dir. */
int sx_tar_add_file(sx_tar *t, const char *name, const void *data, size_t len, unsigned mode,
                    unsigned uid, unsigned gid);

/* Append the two zero blocks that end an archive.  Returns 0 or -1 (memory). */
int sx_tar_finish(sx_tar *t);

/* Release the buffer; the struct may be reused after. */
void sx_tar_free(sx_tar *t);

#endif
