/* audit_files.c - the audit file on disk: resume, rotated names, pruning (see audit_files.h). */
#define _GNU_SOURCE /* renameat2 */
#include "audit_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sx/sx_util.h"

#define CHUNK 65536
/* A torn tail longer than this is not a cut write: refuse rather than drop it. */
#define TORN_MAX ((uint64_t)64 << 20)

static void split_path(const char *path, char *dir, size_t dsize, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, dsize, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, dsize, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, dsize, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

int sx_afile_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rv = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rv;
}

int sx_afile_rename(const char *from, const char *to)
{
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

void sx_afile_rotated_name(const char *path, uint64_t first_seq, char *out, size_t size)
{
    snprintf(out, size, "%s.%012" PRIu64, path, first_seq);
}

/* The numbers of the rotated files of `path` (malloc(3)ed, ascending). */
static int list_rotated(const char *path, uint64_t **nums, size_t *n)
{
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    size_t blen = strlen(base);
    *nums = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, base, blen) != 0 || name[blen] != '.' || name[blen + 1] == '\0')
            continue;
        uint64_t v = 0;
        const char *p = name + blen + 1;
        for (; *p >= '0' && *p <= '9' && v <= UINT64_MAX / 10 - 1; p++)
            v = v * 10 + (uint64_t)(*p - '0');
        if (*p != '\0' || v == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *q = realloc(*nums, cap * sizeof *q);
            if (q == NULL) {
                closedir(d);
                free(*nums);
                *nums = NULL;
                errno = ENOMEM;
                return -1;
            }
            *nums = q;
        }
        (*nums)[(*n)++] = v;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of files */
        for (size_t j = i; j > 0 && (*nums)[j - 1] > (*nums)[j]; j--) {
            uint64_t t = (*nums)[j];
            (*nums)[j] = (*nums)[j - 1];
            (*nums)[j - 1] = t;
        }
    return 0;
}

uint64_t sx_afile_keeps_from(const char *path, uint64_t current_first, int64_t keep)
{
    if (keep <= 0)
        return 1;
    uint64_t *nums;
    size_t n;
    if (list_rotated(path, &nums, &n) != 0)
        return current_first;
    /* the rotated files after this rotation: the existing ones + current_first */
    size_t total = n + 1;
    uint64_t oldest_kept = current_first;
    if (total > (size_t)keep) {
        size_t drop = total - (size_t)keep; /* the `drop` smallest go */
        oldest_kept = drop < n ? nums[drop] : current_first;
    } else if (n > 0 && nums[0] < current_first) {
        oldest_kept = nums[0];
    }
    free(nums);
    return oldest_kept;
}

int sx_afile_prune(const char *path, int64_t keep)
{
    if (keep <= 0)
        return 0;
    uint64_t *nums;
    size_t n;
    if (list_rotated(path, &nums, &n) != 0)
        return -1;
    int deleted = 0;
    char name[PATH_MAX + 32];
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        sx_afile_rotated_name(path, nums[i], name, sizeof name);
        if (unlink(name) == 0)
            deleted++;
    }
    free(nums);
    if (deleted > 0)
        sx_afile_sync_dir(path);
    return deleted;
}

/* The line that ends at byte end-1 (a newline) of fd: malloc(3)ed, without
 * its newline, *len bytes; NULL on error. */
static char *read_line_before(int fd, uint64_t end, size_t *len)
{
    uint64_t start = end - 1; /* the newline */
    char buf[CHUNK];
    uint64_t pos = start;
    while (pos > 0) {
        uint64_t from = pos > CHUNK ? pos - CHUNK : 0;
        ssize_t got = pread(fd, buf, (size_t)(pos - from), (off_t)from);
        if (got != (ssize_t)(pos - from))
            return NULL;
        char *nl = NULL;
        for (ssize_t i = got; i-- > 0;)
            if (buf[i] == '\n') {
                nl = buf + i;
                break;
            }
        if (nl) {
            pos = from + (uint64_t)(nl - buf) + 1;
            break;
        }
        pos = from;
    }
    size_t n = (size_t)(start - pos);
    char *line = malloc(n + 1);
    if (line == NULL || (n > 0 && pread(fd, line, n, (off_t)pos) != (ssize_t)n)) {
        free(line);
        return NULL;
    }
    line[n] = '\0';
    *len = n;
    return line;
}

/* Where the last complete line of the first `size` bytes of fd ends (just
 * after its newline); 0 when there is none, -1 on a read error. */
static int64_t last_newline_end(int fd, uint64_t size)
{
    char buf[CHUNK];
    uint64_t pos = size;
    while (pos > 0) {
        uint64_t from = pos > CHUNK ? pos - CHUNK : 0;
        ssize_t got = pread(fd, buf, (size_t)(pos - from), (off_t)from);
        if (got != (ssize_t)(pos - from))
            return -1;
        for (ssize_t i = got; i-- > 0;)
            if (buf[i] == '\n')
                return (int64_t)(from + (uint64_t)i + 1);
        pos = from;
        if (size - pos > TORN_MAX)
            return 0; /* nothing like a line end near the end: no record there */
    }
    return 0;
}

/* Does the file hold no hash chain at all (an older format): neither its
 * first line nor its last complete line is a chained record? */
static int is_unchained(int fd, uint64_t size)
{
    char head[16];
    ssize_t got = pread(fd, head, sizeof head, 0);
    if (got >= 8 && memcmp(head, "{\"seq\":", 7) == 0)
        return 0;
    int64_t end = last_newline_end(fd, size);
    if (end <= 0)
        return end == 0;
    size_t len = 0;
    char *line = read_line_before(fd, (uint64_t)end, &len);
    if (line == NULL)
        return 0;
    sx_chain_entry e;
    int chained = sx_chain_parse(line, len, &e) == 0;
    free(line);
    return !chained;
}

/* Rename an unchained file to <path>.unchained-<UTC time>: kept, out of
 * the chain's way. */
static int move_unchained(const char *path, sx_afile_state *st, sx_error *err)
{
    char when[40];
    sx_time_utc(when, sizeof when, 0);
    for (char *p = when; *p; p++)
        if (*p == ':')
            *p = '-';
    snprintf(st->moved_to, sizeof st->moved_to, "%s.unchained-%s", path, when);
    if (sx_afile_rename(path, st->moved_to) != 0 || sx_afile_sync_dir(path) != 0)
        return sx_error_set(err, "invalid_config", "cannot move the unchained %s aside: %s",
                            path, strerror(errno));
    return 0;
}

/* The last record of a file of `size` bytes ending with a newline. */
static int last_record(int fd, uint64_t size, const char *path, sx_chain_head *head,
                       sx_error *err)
{
    size_t len = 0;
    char *line = read_line_before(fd, size, &len);
    if (line == NULL)
        return sx_error_set(err, "invalid_config", "cannot read the end of %s: %s", path,
                            strerror(errno ? errno : EIO));
    sx_chain_entry e;
    int shape = sx_chain_parse(line, len, &e);
    free(line);
    if (shape != 0)
        return sx_error_set(err, "invalid_config",
                            "%s ends with a line that is not a hash-chained record (a file "
                            "written before the chain, or damaged): the chain cannot continue "
                            "from it; check it with `sxctl audit verify` and move it aside",
                            path);
    if (!e.hash_ok)
        return sx_error_set(err, "invalid_config",
                            "the last record of %s (seq %" PRIu64 ") does not match its hash: "
                            "the file was changed; check it with `sxctl audit verify` and move "
                            "it aside to start a new file",
                            path, e.seq);
    head->seq = e.seq;
    memcpy(head->hash, e.hash, sizeof head->hash);
    return 0;
}

/* seq of the first record of fd, or an error when it has no chain prefix. */
static int first_seq_of(int fd, const char *path, uint64_t *seq, sx_error *err)
{
    char buf[32];
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    if (got < 0)
        got = 0;
    buf[got] = '\0';
    uint64_t v = 0;
    const char *p = buf + 7;
    if (got < 9 || memcmp(buf, "{\"seq\":", 7) != 0 || *p < '1' || *p > '9')
        return sx_error_set(err, "invalid_config",
                            "%s does not begin with a hash-chained record although it holds "
                            "some: it was changed; check it with `sxctl audit verify` and move "
                            "it aside to start a new file",
                            path);
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    *seq = v;
    return 0;
}

/* Cut an incomplete last line off the current file. */
static int drop_torn_tail(int fd, const char *path, sx_afile_state *st, sx_error *err)
{
    uint64_t end = st->size;
    int64_t nl = last_newline_end(fd, end);
    if (nl < 0)
        return sx_error_set(err, "invalid_config", "cannot read %s: %s", path,
                            strerror(errno ? errno : EIO));
    uint64_t pos = (uint64_t)nl;
    if (end - pos > TORN_MAX)
        return sx_error_set(err, "invalid_config",
                            "%s ends with more than %" PRIu64 " bytes without a newline: "
                            "not a cut write; check it with `sxctl audit verify`",
                            path, TORN_MAX);
    uint64_t torn = end - pos;
    char *frag = malloc(torn ? torn : 1);
    if (frag == NULL || pread(fd, frag, torn, (off_t)pos) != (ssize_t)torn) {
        free(frag);
        return sx_error_set(err, "invalid_config", "cannot read the end of %s", path);
    }
    sx_chain_sha256_hex(frag, torn, st->torn_sha256);
    free(frag);
    if (ftruncate(fd, (off_t)pos) != 0 || fsync(fd) != 0)
        return sx_error_set(err, "invalid_config", "cannot cut the incomplete record off %s: %s",
                            path, strerror(errno));
    st->torn_bytes = torn;
    st->size = pos;
    return 0;
}

/* The head from the newest rotated file, or the genesis. */
static int head_from_rotated(const char *path, sx_chain_head *head, sx_error *err)
{
    sx_chain_head_genesis(head);
    uint64_t *nums;
    size_t n;
    if (list_rotated(path, &nums, &n) != 0)
        return errno == ENOENT ? 0
                               : sx_error_set(err, "invalid_config",
                                              "cannot list the directory of %s: %s", path,
                                              strerror(errno));
    if (n == 0) {
        free(nums);
        return 0;
    }
    char name[PATH_MAX + 32];
    sx_afile_rotated_name(path, nums[n - 1], name, sizeof name);
    free(nums);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return sx_error_set(err, "invalid_config", "cannot read %s: %s", name, strerror(e));
    }
    char last = 0;
    int rv = 0;
    if (st.st_size == 0 || pread(fd, &last, 1, st.st_size - 1) != 1 || last != '\n')
        rv = sx_error_set(err, "invalid_config",
                          "rotated file %s is empty or ends in the middle of a record: check "
                          "it with `sxctl audit verify`",
                          name);
    else
        rv = last_record(fd, (uint64_t)st.st_size, name, head, err);
    close(fd);
    return rv;
}

static void make_parent_dirs(const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", file);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0750);
        *p = '/';
    }
}

static int open_current(const char *path, sx_afile_state *st, int may_move, sx_error *err);

int sx_afile_open(const char *path, sx_afile_state *st, sx_error *err)
{
    memset(st, 0, sizeof *st);
    st->fd = -1;
    sx_chain_head_genesis(&st->head);
    make_parent_dirs(path);
    return open_current(path, st, 1, err);
}

static int open_current(const char *path, sx_afile_state *st, int may_move, sx_error *err)
{
    int created = 1;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (fd < 0 && (errno == EACCES || errno == EPERM)) /* e.g. a device we may only write */
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return sx_error_set(err, "invalid_config", "cannot open audit.log_file %s: %s", path,
                            strerror(errno));
    st->fd = fd;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        st->fd = -1;
        return sx_error_set(err, "invalid_config", "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode))
        /* a device or pipe: the chain starts afresh, nothing rotates; one
         * that cannot be fdatasync()ed (a pipe, tty, /dev/stdout) fails
         * every record, so no step runs (fails closed; docs/audit.md) */
        return 0;
    st->regular = 1;
    if (created && sx_afile_sync_dir(path) != 0) {
        close(fd);
        st->fd = -1;
        return sx_error_set(err, "invalid_config", "cannot sync the directory of %s: %s", path,
                            strerror(errno));
    }
    st->size = (uint64_t)sb.st_size;
    if (may_move && st->size > 0 && is_unchained(fd, st->size)) {
        close(fd);
        st->fd = -1;
        if (move_unchained(path, st, err) != 0)
            return -1;
        return open_current(path, st, 0, err);
    }
    int rv = 0;
    char last = '\n';
    if (st->size > 0 && pread(fd, &last, 1, (off_t)st->size - 1) != 1)
        rv = sx_error_set(err, "invalid_config", "cannot read %s: %s", path, strerror(errno));
    if (rv == 0 && last != '\n')
        rv = drop_torn_tail(fd, path, st, err);
    if (rv == 0 && st->size > 0) {
        rv = first_seq_of(fd, path, &st->first_seq, err);
        if (rv == 0)
            rv = last_record(fd, st->size, path, &st->head, err);
    } else if (rv == 0) {
        rv = head_from_rotated(path, &st->head, err);
    }
    if (rv != 0) {
        close(fd);
        st->fd = -1;
    }
    return rv;
}
