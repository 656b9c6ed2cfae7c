/* siem_spool.c - bounded on-disk queue of records for the SIEM (see siem_spool.h). */
#define _GNU_SOURCE
#include "siem_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "group_commit.h"
#include "sx/sx_util.h"

#define SEG_SUFFIX ".seg"
#define CHUNK 65536

typedef struct seg {
    uint64_t first;              /* index of its first record */
    uint64_t size;               /* bytes */
} seg;

struct sx_spool {
    char *dir;
    sx_spool_limits lim;
    int lock_fd;
    pthread_mutex_t lock;
    pthread_cond_t changed;      /* appended, acked or woken */
    sx_gcommit gc;
    /* segments, oldest first; the last one is being written */
    seg *segs;
    size_t n_segs, cap_segs;
    uint64_t bytes;              /* sum of segs[].size */
    int wfd;                     /* the last segment, O_APPEND */
    uint64_t next_index;         /* what the next append gets */
    uint64_t base_index;         /* next_index when opened: index of gc ticket 1 is base_index */
    uint64_t acked;
    int woken;
    /* the reader (one consumer) */
    size_t rd_seg;               /* position of the record `acked` ... */
    uint64_t rd_off;             /* ... in segs[rd_seg] at this offset */
    uint64_t rd_index;           /* the index at (rd_seg, rd_off); != acked = unknown */
    int rd_fd;                   /* open on segs[rd_seg] */
    uint64_t rd_fd_first;        /* which segment rd_fd is */
    /* the last peek's end, for ack */
    size_t pk_seg;
    uint64_t pk_off;
    uint64_t pk_end;             /* index after the peeked batch */
};

static void seg_path(const sx_spool *s, uint64_t first, char *out, size_t size)
{
    snprintf(out, size, "%s/%020" PRIu64 SEG_SUFFIX, s->dir, first);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rv = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rv;
}

static int mkdirs(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0750);
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int push_seg(sx_spool *s, uint64_t first, uint64_t size)
{
    if (s->n_segs == s->cap_segs) {
        size_t nc = s->cap_segs ? s->cap_segs * 2 : 16;
        seg *p = realloc(s->segs, nc * sizeof *p);
        if (p == NULL)
            return -1;
        s->segs = p;
        s->cap_segs = nc;
    }
    s->segs[s->n_segs].first = first;
    s->segs[s->n_segs].size = size;
    s->n_segs++;
    s->bytes += size;
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Every "<20 digits>.seg" of the directory. */
static int list_segments(sx_spool *s, sx_error *err)
{
    DIR *d = opendir(s->dir);
    if (d == NULL)
        return sx_error_set(err, "invalid_config", "cannot read the SIEM spool %s: %s", s->dir,
                            strerror(errno));
    struct dirent *de;
    int rv = 0;
    while (rv == 0 && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (len != 20 + strlen(SEG_SUFFIX) || strcmp(n + 20, SEG_SUFFIX) != 0)
            continue;
        uint64_t first = 0;
        int ok = 1;
        for (int i = 0; i < 20 && ok; i++) {
            ok = n[i] >= '0' && n[i] <= '9' && first <= (UINT64_MAX - 9) / 10;
            first = first * 10 + (uint64_t)(n[i] - '0');
        }
        if (!ok)
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", s->dir, n);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (push_seg(s, first, (uint64_t)st.st_size) != 0)
            rv = sx_error_set(err, "invalid_config", "out of memory");
    }
    closedir(d);
    if (s->n_segs > 1)
        qsort(s->segs, s->n_segs, sizeof *s->segs, seg_cmp);
    return rv;
}

/* Count the complete lines of the last segment; cut an incomplete one. */
static int recover_last(sx_spool *s, uint64_t *lines, sx_error *err)
{
    seg *g = &s->segs[s->n_segs - 1];
    char path[PATH_MAX];
    seg_path(s, g->first, path, sizeof path);
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return sx_error_set(err, "invalid_config", "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(CHUNK);
    uint64_t off = 0, last_nl_end = 0, n = 0;
    ssize_t got = 0;
    while (buf && (got = pread(fd, buf, CHUNK, (off_t)off)) > 0) {
        for (ssize_t i = 0; i < got; i++)
            if (buf[i] == '\n') {
                n++;
                last_nl_end = off + (uint64_t)i + 1;
            }
        off += (uint64_t)got;
    }
    free(buf);
    if (buf == NULL || got < 0) {
        close(fd);
        return sx_error_set(err, "invalid_config", "cannot read %s", path);
    }
    if (last_nl_end != off) { /* a torn append: never acknowledged */
        if (ftruncate(fd, (off_t)last_nl_end) != 0 || fsync(fd) != 0) {
            int e = errno;
            close(fd);
            return sx_error_set(err, "invalid_config", "cannot repair %s: %s", path,
                                strerror(e));
        }
        s->bytes -= off - last_nl_end;
        g->size = last_nl_end;
    }
    s->wfd = fd;
    *lines = n;
    return 0;
}

static int read_ack(sx_spool *s, uint64_t *acked, int *found)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ack", s->dir);
    *found = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    unsigned long long v;
    if (fscanf(f, "%llu", &v) == 1) {
        *acked = v;
        *found = 1;
    }
    fclose(f);
    return 0;
}

static int write_ack(sx_spool *s, uint64_t acked)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/ack", s->dir);
    snprintf(tmp, sizeof tmp, "%s/ack.tmp", s->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", acked);
    int rv = sx_write_all(fd, text, (size_t)n);
    if (rv == 0)
        rv = fsync(fd);
    int e = errno;
    close(fd);
    if (rv == 0)
        rv = rename(tmp, path);
    if (rv == 0)
        rv = sync_dir(s->dir);
    else
        errno = e;
    return rv;
}

/* A new, empty last segment starting at next_index; lock held. */
static int open_new_segment(sx_spool *s)
{
    char path[PATH_MAX];
    seg_path(s, s->next_index, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (sync_dir(s->dir) != 0 || push_seg(s, s->next_index, 0) != 0) {
        int e = errno ? errno : ENOMEM;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = fd;
    return 0;
}

/* Delete the segments all of whose records are delivered; lock held. */
static void drop_delivered(sx_spool *s)
{
    size_t drop = 0;
    while (drop + 1 < s->n_segs && s->segs[drop + 1].first <= s->acked)
        drop++;
    if (drop == 0)
        return;
    char path[PATH_MAX];
    for (size_t i = 0; i < drop; i++) {
        seg_path(s, s->segs[i].first, path, sizeof path);
        unlink(path);
        s->bytes -= s->segs[i].size;
        if (s->rd_fd >= 0 && s->rd_fd_first == s->segs[i].first) {
            close(s->rd_fd);
            s->rd_fd = -1;
        }
    }
    memmove(s->segs, s->segs + drop, (s->n_segs - drop) * sizeof *s->segs);
    s->n_segs -= drop;
    if (s->rd_seg >= drop) {
        s->rd_seg -= drop;
    } else { /* the reader stood at the end of a deleted segment: find it again */
        s->rd_seg = 0;
        s->rd_index = UINT64_MAX;
    }
    s->pk_seg = s->pk_seg >= drop ? s->pk_seg - drop : 0;
    sync_dir(s->dir); /* not needed for safety: a segment that comes back is dropped again */
}

int sx_spool_open(const char *dir, const sx_spool_limits *limits, sx_spool **out, sx_error *err)
{
    *out = NULL;
    if (limits->segment_bytes == 0 || limits->max_bytes < 2 * limits->segment_bytes)
        return sx_error_set(err, "invalid_config",
                            "the SIEM spool must hold at least two segments (spool_max_bytes >= "
                            "2 x spool_segment_bytes)");
    sx_spool *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        return sx_error_set(err, "invalid_config", "out of memory");
    }
    s->lim = *limits;
    s->lock_fd = s->wfd = s->rd_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->changed, &ca);
    pthread_condattr_destroy(&ca);
    sx_gcommit_init(&s->gc);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/lock", dir);
    if (mkdirs(dir) != 0 ||
        (s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        sx_error_set(err, "invalid_config", "cannot create the SIEM spool %s: %s", dir,
                     strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        sx_error_set(err, "invalid_config",
                     "the SIEM spool %s is in use by another process (%s)", dir,
                     strerror(errno));
        goto fail;
    }
    if (list_segments(s, err) != 0)
        goto fail;
    uint64_t acked = 0;
    int have_ack = 0;
    if (read_ack(s, &acked, &have_ack) != 0) {
        sx_error_set(err, "invalid_config", "cannot read %s/ack: %s", dir, strerror(errno));
        goto fail;
    }
    if (s->n_segs > 0) {
        uint64_t lines = 0;
        if (recover_last(s, &lines, err) != 0)
            goto fail;
        s->next_index = s->segs[s->n_segs - 1].first + lines;
        if (!have_ack || acked < s->segs[0].first)
            acked = s->segs[0].first; /* what came before was delivered and deleted */
    } else {
        s->next_index = have_ack ? acked : 0;
        if (open_new_segment(s) != 0) {
            sx_error_set(err, "invalid_config", "cannot create a segment in %s: %s", dir,
                         strerror(errno));
            goto fail;
        }
    }
    if (acked > s->next_index)
        acked = s->next_index;
    s->acked = acked;
    s->base_index = s->next_index;
    s->rd_index = UINT64_MAX; /* position unknown: found on the first peek */
    drop_delivered(s);
    *out = s;
    return 0;
fail:
    sx_spool_close(s);
    return -1;
}

void sx_spool_close(sx_spool *s)
{
    if (s == NULL)
        return;
    if (s->wfd >= 0) {
        fdatasync(s->wfd);
        close(s->wfd);
    }
    if (s->rd_fd >= 0)
        close(s->rd_fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    sx_gcommit_destroy(&s->gc);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    free(s->segs);
    free(s->dir);
    free(s);
}

/* Would `len` more bytes fit?  Lock held. */
static int check_room(const sx_spool *s, size_t len, sx_error *err)
{
    if (s->gc.error)
        return sx_error_set(err, "audit_unavailable",
                            "the SIEM spool %s failed (%s): no records are accepted until a "
                            "restart", s->dir, strerror(s->gc.error));
    if ((uint64_t)len + 1 > s->lim.max_bytes - s->lim.segment_bytes)
        return sx_error_set(err, "audit_unavailable",
                            "a record of %zu bytes is larger than the SIEM spool can hold", len);
    if (s->bytes + len + 1 > s->lim.max_bytes)
        return sx_error_set(err, "audit_unavailable",
                            "the SIEM spool %s is full: %" PRIu64 " records (%" PRIu64
                            " bytes) wait for the SIEM endpoint (audit.siem.spool_max_bytes %"
                            PRIu64 ")",
                            s->dir, s->next_index - s->acked, s->bytes, s->lim.max_bytes);
    return 0;
}

int sx_spool_append(sx_spool *s, const char *rec, size_t len, sx_error *err)
{
    if (memchr(rec, '\n', len) != NULL)
        return sx_error_set(err, "audit_unavailable", "a spooled record must be one line");
    char *line = malloc(len + 1);
    if (line == NULL)
        return sx_error_set(err, "audit_unavailable", "out of memory");
    memcpy(line, rec, len);
    line[len] = '\n';
    pthread_mutex_lock(&s->lock);
    int rv = check_room(s, len, err);
    while (rv == 0 && s->segs[s->n_segs - 1].size >= s->lim.segment_bytes) {
        /* close the full segment (durable), start the next one */
        uint64_t full = s->segs[s->n_segs - 1].first;
        int e = sx_gcommit_sync_all(&s->gc, &s->lock, &s->wfd);
        if (e == 0 && s->segs[s->n_segs - 1].first != full)
            continue; /* another writer rolled it while we waited */
        if (e == 0 && open_new_segment(s) != 0)
            sx_gcommit_fail(&s->gc, e = errno ? errno : EIO);
        if (e)
            rv = sx_error_set(err, "audit_unavailable", "cannot start a new SIEM spool segment "
                              "in %s: %s", s->dir, strerror(e));
    }
    if (rv == 0)
        rv = check_room(s, len, err); /* others may have appended while we waited */
    seg *last = &s->segs[s->n_segs - 1];
    if (rv == 0 && sx_write_all(s->wfd, line, len + 1) != 0) {
        sx_gcommit_fail(&s->gc, errno);
        rv = sx_error_set(err, "audit_unavailable", "cannot write the SIEM spool %s: %s",
                          s->dir, strerror(s->gc.error));
    }
    if (rv == 0) {
        last->size += len + 1;
        s->bytes += len + 1;
        s->next_index++;
        uint64_t ticket = sx_gcommit_ticket(&s->gc);
        int e = sx_gcommit_wait(&s->gc, &s->lock, &s->wfd, ticket);
        if (e)
            rv = sx_error_set(err, "audit_unavailable", "cannot write the SIEM spool %s: %s",
                              s->dir, strerror(e));
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    free(line);
    return rv;
}

/* Records with an index below this are durable and may be delivered. */
static uint64_t durable_end(const sx_spool *s) { return s->base_index + s->gc.durable; }

/* Open rd_fd on segs[i]; lock held. */
static int reader_open(sx_spool *s, size_t i)
{
    if (s->rd_fd >= 0 && s->rd_fd_first == s->segs[i].first)
        return 0;
    if (s->rd_fd >= 0)
        close(s->rd_fd);
    char path[PATH_MAX];
    seg_path(s, s->segs[i].first, path, sizeof path);
    s->rd_fd = open(path, O_RDONLY | O_CLOEXEC);
    s->rd_fd_first = s->segs[i].first;
    return s->rd_fd >= 0 ? 0 : -1;
}

/* Position the reader on record `acked` by counting lines; lock held. */
static int reader_seek(sx_spool *s)
{
    size_t i = s->n_segs - 1;
    while (i > 0 && s->segs[i].first > s->acked)
        i--;
    if (reader_open(s, i) != 0)
        return -1;
    uint64_t skip = s->acked - s->segs[i].first, off = 0;
    char *buf = malloc(CHUNK);
    if (buf == NULL)
        return -1;
    while (skip > 0) {
        ssize_t got = pread(s->rd_fd, buf, CHUNK, (off_t)off);
        if (got <= 0)
            break;
        ssize_t k = 0;
        for (; k < got && skip > 0; k++)
            if (buf[k] == '\n')
                skip--;
        off += (uint64_t)k;
    }
    free(buf);
    if (skip > 0) {
        errno = EIO; /* the segment is shorter than the ack says */
        return -1;
    }
    s->rd_seg = i;
    s->rd_off = off;
    s->rd_index = s->acked;
    return 0;
}

int sx_spool_peek(sx_spool *s, size_t max_records, size_t max_bytes, sx_spool_batch *b,
                  sx_error *err)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_lock(&s->lock);
    uint64_t end = durable_end(s);
    if (s->acked >= end || max_records == 0) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    if (s->rd_index != s->acked && reader_seek(s) != 0) {
        int e = errno;
        pthread_mutex_unlock(&s->lock);
        return sx_error_set(err, "siem_spool", "cannot find record %" PRIu64 " in %s: %s",
                            s->acked, s->dir, strerror(e));
    }
    /* past the end of a closed segment: the next one */
    while (s->rd_seg + 1 < s->n_segs && s->rd_off >= s->segs[s->rd_seg].size) {
        s->rd_seg++;
        s->rd_off = 0;
    }
    if (reader_open(s, s->rd_seg) != 0) {
        int e = errno;
        pthread_mutex_unlock(&s->lock);
        return sx_error_set(err, "siem_spool", "cannot open a segment of %s: %s", s->dir,
                            strerror(e));
    }
    int fd = s->rd_fd;
    uint64_t off = s->rd_off, idx = s->rd_index;
    uint64_t seg_end_index = s->rd_seg + 1 < s->n_segs ? s->segs[s->rd_seg + 1].first : end;
    if (seg_end_index > end)
        seg_end_index = end;
    size_t seg_i = s->rd_seg;
    pthread_mutex_unlock(&s->lock);

    /* Read outside the lock: only appends happen meanwhile, past what we read. */
    uint64_t want = seg_end_index - idx;
    if (want > max_records)
        want = max_records;
    size_t cap = max_bytes + CHUNK, len = 0, scanned = 0, count = 0;
    char *buf = malloc(cap);
    int rv = buf ? 0 : -1;
    while (rv == 0 && count < want) {
        if (scanned == len) { /* need more bytes */
            if (len == cap) {
                if (count > 0)
                    break; /* the next record does not fit this batch */
                char *p = realloc(buf, cap * 2); /* one record larger than max_bytes */
                if (p == NULL) {
                    rv = -1;
                    break;
                }
                buf = p;
                cap *= 2;
            }
            ssize_t got = pread(fd, buf + len, cap - len, (off_t)(off + len));
            if (got < 0)
                rv = -1;
            if (got <= 0)
                break;
            len += (size_t)got;
            continue;
        }
        if (buf[scanned++] != '\n')
            continue;
        if (count > 0 && scanned > max_bytes)
            break;
        count++;
        b->len = scanned;
    }
    if (rv != 0 || count == 0) {
        free(buf);
        return sx_error_set(err, "siem_spool", rv != 0 ? "cannot read the SIEM spool %s"
                                                       : "the SIEM spool %s is shorter than "
                                                         "its index", s->dir);
    }
    b->data = buf;
    b->count = count;
    b->first_index = idx;
    pthread_mutex_lock(&s->lock);
    s->pk_seg = seg_i;
    s->pk_off = off + b->len;
    s->pk_end = idx + count;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int sx_spool_ack(sx_spool *s, const sx_spool_batch *b, sx_error *err)
{
    pthread_mutex_lock(&s->lock);
    if (b->count == 0 || b->first_index != s->acked || s->pk_end != b->first_index + b->count) {
        pthread_mutex_unlock(&s->lock);
        return sx_error_set(err, "siem_spool", "acknowledged batch is not the peeked one");
    }
    uint64_t next = b->first_index + b->count;
    pthread_mutex_unlock(&s->lock);
    /* the ack file is only touched here, by the one consumer */
    if (write_ack(s, next) != 0)
        return sx_error_set(err, "siem_spool", "cannot write %s/ack: %s", s->dir,
                            strerror(errno));
    pthread_mutex_lock(&s->lock);
    s->acked = next;
    s->rd_seg = s->pk_seg;
    s->rd_off = s->pk_off;
    s->rd_index = next;
    drop_delivered(s);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int sx_spool_wait_pending(sx_spool *s, int64_t timeout_ms)
{
    struct timespec dl;
    deadline_after(&dl, timeout_ms);
    pthread_mutex_lock(&s->lock);
    while (!s->woken && s->acked >= durable_end(s))
        if (pthread_cond_timedwait(&s->changed, &s->lock, &dl) != 0)
            break;
    int pending = s->acked < durable_end(s);
    pthread_mutex_unlock(&s->lock);
    return pending;
}

int sx_spool_wait_empty(sx_spool *s, int64_t timeout_ms)
{
    struct timespec dl;
    deadline_after(&dl, timeout_ms);
    pthread_mutex_lock(&s->lock);
    while (!s->woken && s->acked < s->next_index)
        if (pthread_cond_timedwait(&s->changed, &s->lock, &dl) != 0)
            break;
    int empty = s->acked >= s->next_index;
    pthread_mutex_unlock(&s->lock);
    return empty;
}

void sx_spool_wake(sx_spool *s)
{
    pthread_mutex_lock(&s->lock);
    s->woken = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

void sx_spool_get_stats(sx_spool *s, sx_spool_stats *st)
{
    pthread_mutex_lock(&s->lock);
    st->next_index = s->next_index;
    st->acked = s->acked;
    st->pending = s->next_index - s->acked;
    st->bytes = s->bytes;
    st->segments = s->n_segs;
    st->failed = s->gc.error != 0;
    pthread_mutex_unlock(&s->lock);
}

int sx_spool_ready(sx_spool *s, size_t len, sx_error *err)
{
    pthread_mutex_lock(&s->lock);
    int rv = check_room(s, len, err);
    pthread_mutex_unlock(&s->lock);
    return rv;
}
