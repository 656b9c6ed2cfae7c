/* local_store.c - secrets and configmaps read from a directory per object (see local_store.h). */
#define _POSIX_C_SOURCE 200809L
#include "local_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sx/sx_util.h"

#define STORE_NAME_MAX 253
#define STORE_VALUE_MAX ((size_t)1 << 20)   /* 1 MiB, Kubernetes' limit */

int sx_store_init(sx_local_store *s, const char *secrets_dir, const char *configmaps_dir)
{
    s->secrets_dir = NULL;
    s->configmaps_dir = NULL;
    if (secrets_dir && !(s->secrets_dir = strdup(secrets_dir)))
        return -1;
    if (configmaps_dir && !(s->configmaps_dir = strdup(configmaps_dir))) {
        free(s->secrets_dir);
        s->secrets_dir = NULL;
        return -1;
    }
    return 0;
}

void sx_store_free(sx_local_store *s)
{
    if (!s)
        return;
    free(s->secrets_dir);
    free(s->configmaps_dir);
    s->secrets_dir = NULL;
    s->configmaps_dir = NULL;
}

const char *sx_store_kind_name(sx_store_kind kind)
{
    switch (kind) {
    case SX_STORE_SECRET:
        return "secret";
    case SX_STORE_CONFIGMAP:
        return "configmap";
    }
    return "object";
}

/* [a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most 253 */
static int object_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > STORE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.') || i == 0 || i == len - 1))
            return 0;
    }
    return 1;
}

/* [-._a-zA-Z0-9]+, at most 253, not "." or "..", not starting with ".." */
static int key_ok(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > STORE_NAME_MAX || strcmp(k, ".") == 0 || strncmp(k, "..", 2) == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

/* The kind's directory, after checking kind and name; NULL with err set. */
static const char *object_dir(const sx_local_store *s, sx_store_kind kind, const char *name,
                              sx_error *err)
{
    const char *dir;
    switch (kind) {
    case SX_STORE_SECRET:
        dir = s->secrets_dir;
        break;
    case SX_STORE_CONFIGMAP:
        dir = s->configmaps_dir;
        break;
    default:
        sx_error_set(err, "invalid_parameter", "unknown store kind %d", (int)kind);
        return NULL;
    }
    if (!name || !object_name_ok(name)) {
        sx_error_set(err, "invalid_parameter",
                     "invalid %s name \"%.253s\" (want a DNS subdomain: lower-case letters, "
                     "digits, '-' and '.', at most 253)",
                     sx_store_kind_name(kind), name ? name : "");
        return NULL;
    }
    if (!dir) {
        sx_error_set(err, "config_error", "%s \"%s\" requested but no %s directory is configured",
                     sx_store_kind_name(kind), name,
                     kind == SX_STORE_SECRET ? "secrets" : "configmaps");
        return NULL;
    }
    return dir;
}

/* Open <dir>/<name> as a directory.  Returns the fd, -2 when it does not
 * exist (or is not a directory), or -1 with err set. */
static int open_object(const char *dir, sx_store_kind kind, const char *name, sx_error *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        sx_error_set(err, "config_error", "%s directory %s cannot be opened: %s",
                     sx_store_kind_name(kind), dir, strerror(e));
        return -1;
    }
    int ofd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(dfd);
    if (ofd >= 0)
        return ofd;
    if (e == ENOENT || e == ENOTDIR)
        return -2;
    sx_error_set(err, "config_error", "%s \"%s\" cannot be opened: %s", sx_store_kind_name(kind),
                 name, strerror(e));
    return -1;
}

int sx_store_read(const sx_local_store *s, sx_store_kind kind, const char *name, const char *key,
                  char **value, size_t *len, sx_error *err)
{
    *value = NULL;
    *len = 0;
    const char *dir = object_dir(s, kind, name, err);
    if (!dir)
        return -1;
    const char *kn = sx_store_kind_name(kind);
    if (!key || !key_ok(key))
        return sx_error_set(err, "invalid_parameter",
                            "invalid key \"%.253s\" for %s \"%s\" (want [-._a-zA-Z0-9]+, at "
                            "most 253, not starting with \"..\")", key ? key : "", kn, name);
    int ofd = open_object(dir, kind, name, err);
    if (ofd == -2)
        return 1;
    if (ofd < 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted as a key must not hang the open. */
    int fd = openat(ofd, key, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int e = errno;
    close(ofd);
    if (fd < 0) {
        if (e == ENOENT || e == ENOTDIR)
            return 1;
        return sx_error_set(err, "config_error", "%s \"%s\" key \"%s\" cannot be read: %s", kn,
                            name, key, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return sx_error_set(err, "config_error", "%s \"%s\" key \"%s\" cannot be read: %s", kn,
                            name, key, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 1;   /* not a key, as sx_store_keys would not list it */
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > STORE_VALUE_MAX) {
        close(fd);
        return sx_error_set(err, "config_error",
                            "%s \"%s\" key \"%s\" is larger than 1 MiB (%lld bytes)", kn, name,
                            key, (long long)st.st_size);
    }
    /* Read up to one byte past the limit, in case the file grew since fstat. */
    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    size_t got = 0;
    for (;;) {
        if (got == cap) {
            if (cap > STORE_VALUE_MAX)
                break;
            size_t ncap = cap * 2 > STORE_VALUE_MAX + 1 ? STORE_VALUE_MAX + 1 : cap * 2;
            char *nb = malloc(ncap + 1);
            if (!nb) {
                OPENSSL_cleanse(buf, got);
                free(buf);
                close(fd);
                return sx_error_set(err, "out_of_memory", "out of memory");
            }
            memcpy(nb, buf, got);
            OPENSSL_cleanse(buf, got);
            free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            OPENSSL_cleanse(buf, got);
            free(buf);
            close(fd);
            return sx_error_set(err, "config_error", "%s \"%s\" key \"%s\" cannot be read: %s",
                                kn, name, key, strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > STORE_VALUE_MAX) {
        OPENSSL_cleanse(buf, got);
        free(buf);
        return sx_error_set(err, "config_error", "%s \"%s\" key \"%s\" is larger than 1 MiB", kn,
                            name, key);
    }
    buf[got] = '\0';
    *value = buf;
    *len = got;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sx_store_keys(const sx_local_store *s, sx_store_kind kind, const char *name,
                  sx_strlist *keys, sx_error *err)
{
    keys->n = 0;
    keys->v = NULL;
    const char *dir = object_dir(s, kind, name, err);
    if (!dir)
        return -1;
    int ofd = open_object(dir, kind, name, err);
    if (ofd == -2)
        return 1;
    if (ofd < 0)
        return -1;
    DIR *d = fdopendir(ofd);
    if (!d) {
        int e = errno;
        close(ofd);
        return sx_error_set(err, "config_error", "%s \"%s\" cannot be listed: %s",
                            sx_store_kind_name(kind), name, strerror(e));
    }
    sx_strlist out = {0, NULL};
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                int e = errno;
                rc = sx_error_set(err, "config_error", "%s \"%s\" cannot be listed: %s",
                                  sx_store_kind_name(kind), name, strerror(e));
            }
            break;
        }
        if (!key_ok(de->d_name))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;   /* broken link, directory, device, ... */
        if (out.n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **nv = realloc(out.v, ncap * sizeof *nv);
            if (!nv) {
                rc = sx_error_set(err, "out_of_memory", "out of memory");
                break;
            }
            out.v = nv;
            cap = ncap;
        }
        if (!(out.v[out.n] = strdup(de->d_name))) {
            rc = sx_error_set(err, "out_of_memory", "out of memory");
            break;
        }
        out.n++;
    }
    closedir(d);
    if (rc != 0) {
        sx_strlist_clear(&out);
        return -1;
    }
    if (out.n > 1)
        qsort(out.v, out.n, sizeof *out.v, cmp_str);
    *keys = out;
    return 0;
}
