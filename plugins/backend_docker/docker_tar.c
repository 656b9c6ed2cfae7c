/* docker_tar.c - a minimal in-memory POSIX ustar writer (see docker_tar.h). */
#define _POSIX_C_SOURCE 200809L
#include "docker_tar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAR_BLOCK 512u
#define TAR_NAME_LEN 100u
#define TAR_PREFIX_LEN 155u

/* Field offsets of the ustar header (POSIX.1-2008, pax "ustar Interchange
 * Format"). */
enum {
    OFF_NAME = 0,
    OFF_MODE = 100,
    OFF_UID = 108,
    OFF_GID = 116,
    OFF_SIZE = 124,
    OFF_MTIME = 136,
    OFF_CHKSUM = 148,
    OFF_TYPEFLAG = 156,
    OFF_MAGIC = 257,
    OFF_VERSION = 263,
    OFF_DEVMAJOR = 329,
    OFF_DEVMINOR = 337,
    OFF_PREFIX = 345,
};

/* Make room for `extra` more bytes.  Leaves the archive unchanged on failure. */
static int tar_reserve(sx_tar *t, size_t extra)
{
    if (extra > SIZE_MAX - t->len)
        return -1;
    size_t need = t->len + extra;
    if (need <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 4 * TAR_BLOCK;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(t->data, cap);
    if (!p)
        return -1;
    t->data = p;
    t->cap = cap;
    return 0;
}

/* A path is acceptable when it is not empty, not absolute and has no ".."
 * component. */
static int name_ok(const char *name, size_t len)
{
    if (len == 0 || name[0] == '/')
        return 0;
    const char *p = name;
    const char *end = name + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *cend = slash ? slash : end;
        if (cend - p == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p = slash ? slash + 1 : end;
    }
    return 1;
}

/* Split `path` (length len) into ustar prefix and name.  Returns 0 and the
 * prefix length in *plen (0 = no prefix; the name then is the whole path),
 * or -1 when it does not fit. */
static int split_name(const char *path, size_t len, size_t *plen)
{
    if (len <= TAR_NAME_LEN) {
        *plen = 0;
        return 0;
    }
    /* The prefix ends at a '/' that is not stored; the name part after it
     * must be non-empty and at most 100 bytes, the prefix at most 155.  Take
     * the longest prefix that fits, which leaves the shortest name. */
    size_t i = len - 1 < TAR_PREFIX_LEN ? len - 1 : TAR_PREFIX_LEN;
    for (;; i--) {
        if (path[i] == '/' && i > 0 && len - i - 1 >= 1 && len - i - 1 <= TAR_NAME_LEN) {
            *plen = i;
            return 0;
        }
        if (i == 0 || len - i - 1 > TAR_NAME_LEN)
            return -1;
    }
}

/* Write `value` as zero-padded octal of width-1 digits and a NUL. */
static int put_octal(unsigned char *field, size_t width, unsigned long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), value);
    if (n < 0 || (size_t)n != width - 1)
        return -1;   /* does not fit */
    memcpy(field, tmp, width - 1);
    field[width - 1] = '\0';
    return 0;
}

static int tar_add(sx_tar *t, const char *name, char type, const void *data, size_t len,
                   unsigned mode, unsigned uid, unsigned gid)
{
    if (!t || !name)
        return -1;
    size_t nlen = strlen(name);
    if (!name_ok(name, nlen))
        return -1;
    char path[TAR_PREFIX_LEN + 1 + TAR_NAME_LEN + 2];
    if (nlen >= sizeof path - 1)
        return -1;
    memcpy(path, name, nlen);
    if (type == '5') {
        while (nlen > 1 && path[nlen - 1] == '/' && path[nlen - 2] == '/')
            nlen--;
        if (path[nlen - 1] != '/')
            path[nlen++] = '/';
    } else if (path[nlen - 1] == '/') {
        return -1;   /* a file name cannot end in '/' */
    }
    path[nlen] = '\0';

    size_t plen;
    if (split_name(path, nlen, &plen) != 0) {
        /* The typeflag marks a directory; its trailing '/' is a courtesy
         * that is dropped when only it keeps the name from fitting. */
        if (type != '5' || nlen < 2)
            return -1;
        path[--nlen] = '\0';
        if (split_name(path, nlen, &plen) != 0)
            return -1;
    }

    unsigned char h[TAR_BLOCK];
    memset(h, 0, sizeof h);
    if (plen) {
        memcpy(h + OFF_PREFIX, path, plen);
        memcpy(h + OFF_NAME, path + plen + 1, nlen - plen - 1);
    } else {
        memcpy(h + OFF_NAME, path, nlen);
    }
    time_t now = time(NULL);
    if (put_octal(h + OFF_MODE, 8, mode & 07777u) || put_octal(h + OFF_UID, 8, uid) ||
        put_octal(h + OFF_GID, 8, gid) || put_octal(h + OFF_SIZE, 12, len) ||
        put_octal(h + OFF_MTIME, 12, now > 0 ? (unsigned long long)now : 0) ||
        put_octal(h + OFF_DEVMAJOR, 8, 0) || put_octal(h + OFF_DEVMINOR, 8, 0))
        return -1;   /* uid, gid or size too large for ustar */
    h[OFF_TYPEFLAG] = (unsigned char)type;
    memcpy(h + OFF_MAGIC, "ustar", 6);   /* with its NUL */
    memcpy(h + OFF_VERSION, "00", 2);

    memset(h + OFF_CHKSUM, ' ', 8);
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    char ck[8];
    snprintf(ck, sizeof ck, "%06lo", sum);   /* at most 512*255 < 8^6 */
    memcpy(h + OFF_CHKSUM, ck, 6);
    h[OFF_CHKSUM + 6] = '\0';
    h[OFF_CHKSUM + 7] = ' ';

    size_t padded = len;
    if (len % TAR_BLOCK) {
        if (len > SIZE_MAX - TAR_BLOCK)
            return -1;
        padded = len + (TAR_BLOCK - len % TAR_BLOCK);
    }
    if (padded > SIZE_MAX - TAR_BLOCK || tar_reserve(t, TAR_BLOCK + padded) != 0)
        return -1;
    memcpy(t->data + t->len, h, TAR_BLOCK);
    t->len += TAR_BLOCK;
    if (len)
        memcpy(t->data + t->len, data, len);
    memset(t->data + t->len + len, 0, padded - len);
    t->len += padded;
    return 0;
}

int sx_tar_add_dir(sx_tar *t, const char *name, unsigned mode, unsigned uid, unsigned gid)
{
    return tar_add(t, name, '5', NULL, 0, mode, uid, gid);
}

int sx_tar_add_file(sx_tar *t, const char *name, const void *data, size_t len, unsigned mode,
                    unsigned uid, unsigned gid)
{
    if (len && !data)
        return -1;
    return tar_add(t, name, '0', data, len, mode, uid, gid);
}

int sx_tar_finish(sx_tar *t)
{
    if (!t || tar_reserve(t, 2 * TAR_BLOCK) != 0)
        return -1;
    memset(t->data + t->len, 0, 2 * TAR_BLOCK);
    t->len += 2 * TAR_BLOCK;
    return 0;
}

void sx_tar_free(sx_tar *t)
{
    if (!t)
        return;
    free(t->data);
    t->data = NULL;
    t->len = 0;
    t->cap = 0;
}
