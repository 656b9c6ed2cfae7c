/* test_docker_modules.c - the Docker backend modules: tar, demux, image, auth, store. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include "sx_check_main.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sx/sx_util.h"

#include "docker_image.h"
#include "docker_stream.h"
#include "docker_tar.h"
#include "output_mask.h"
#include "local_store.h"

/* ---------------------------------------------------------------- helpers */

static void make_tmpdir(char *buf, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/sx-docker-test-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(sx_write_all(fd, data, len), 0);
    ck_assert_int_eq(close(fd), 0);
}

/* Read a whole file; NULL when it cannot be opened. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Run a shell command, returning its stdout+stderr (malloc'd) and exit code. */
static char *run_capture(const char *cmd, int *status)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[n] = '\0';
    *status = pclose(p);
    return buf;
}

static void write_archive(const sx_tar *t, const char *path)
{
    write_file(path, t->data, t->len);
}

/* Parse the octal number of a tar header field. */
static unsigned long long octal_field(const char *f, size_t width)
{
    char tmp[32];
    ck_assert_uint_lt(width, sizeof tmp);
    memcpy(tmp, f, width);
    tmp[width] = '\0';
    char *end;
    unsigned long long v = strtoull(tmp, &end, 8);
    ck_assert_msg(end != tmp, "field \"%s\" is not octal", tmp);
    return v;
}

/* A tiny deterministic generator for chunk sizes and payloads. */
static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* -------------------------------------------------------------------- tar */

START_TEST(tar_roundtrip_through_system_tar)
{
    char dir[256], path[1024], cmd[4096];
    make_tmpdir(dir, sizeof dir);

    unsigned char content[1000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (unsigned char)(i * 7 + 3);   /* includes 0x00 and 0xff bytes */
    const char *text = "#!/bin/sh\necho hello\n";

    sx_tar t = {0};
    ck_assert_int_eq(sx_tar_add_dir(&t, "work", 0750, 1234, 5678), 0);
    ck_assert_int_eq(sx_tar_add_dir(&t, "work/sub/", 0700, 0, 0), 0);
    ck_assert_int_eq(sx_tar_add_file(&t, "work/data.bin", content, sizeof content, 0640, 1234,
                                     5678), 0);
    ck_assert_int_eq(sx_tar_add_file(&t, "work/sub/script.sh", text, strlen(text), 0755, 4321,
                                     8765), 0);
    ck_assert_int_eq(sx_tar_add_file(&t, "work/empty", "", 0, 0600, 1, 2), 0);
    ck_assert_int_eq(sx_tar_finish(&t), 0);
    snprintf(path, sizeof path, "%s/a.tar", dir);
    write_archive(&t, path);

    int status;
    snprintf(cmd, sizeof cmd, "tar --numeric-owner -tvf '%s'", path);
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0, "tar -tvf failed: %s", out);
    struct {
        const char *perm, *name;
        unsigned uid, gid;
        unsigned long long size;
    } want[] = {
        {"drwxr-x---", "work/", 1234, 5678, 0},
        {"drwx------", "work/sub/", 0, 0, 0},
        {"-rw-r-----", "work/data.bin", 1234, 5678, sizeof content},
        {"-rwxr-xr-x", "work/sub/script.sh", 4321, 8765, 21},
        {"-rw-------", "work/empty", 1, 2, 0},
    };
    size_t nwant = sizeof want / sizeof want[0];
    size_t line = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(line < nwant, "unexpected line: %s", l);
        char perm[16], name[512];
        unsigned uid, gid;
        unsigned long long size;
        int n = sscanf(l, "%15s %u/%u %llu %*s %*s %511s", perm, &uid, &gid, &size, name);
        ck_assert_msg(n == 5, "cannot parse: %s", l);
        ck_assert_str_eq(perm, want[line].perm);
        ck_assert_uint_eq(uid, want[line].uid);
        ck_assert_uint_eq(gid, want[line].gid);
        ck_assert_uint_eq(size, want[line].size);
        ck_assert_str_eq(name, want[line].name);
        line++;
    }
    ck_assert_uint_eq(line, nwant);
    free(out);

    /* Extract (as root tar keeps the owners; -p keeps the modes). */
    snprintf(cmd, sizeof cmd, "mkdir '%s/x' && tar --numeric-owner -xpf '%s' -C '%s/x'", dir, path,
             dir);
    out = run_capture(cmd, &status);
    ck_assert_msg(status == 0 && out[0] == '\0', "tar -xf failed or warned: %s", out);
    free(out);

    size_t len;
    snprintf(path, sizeof path, "%s/x/work/data.bin", dir);
    char *got = read_file(path, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, sizeof content);
    ck_assert_mem_eq(got, content, sizeof content);
    free(got);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    if (geteuid() == 0) {
        ck_assert_uint_eq(st.st_uid, 1234);
        ck_assert_uint_eq(st.st_gid, 5678);
    }

    snprintf(path, sizeof path, "%s/x/work/sub/script.sh", dir);
    got = read_file(path, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, text);
    free(got);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0755);

    snprintf(path, sizeof path, "%s/x/work/empty", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_size, 0);

    snprintf(path, sizeof path, "%s/x/work", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0750);
    if (geteuid() == 0) {
        ck_assert_uint_eq(st.st_uid, 1234);
        ck_assert_uint_eq(st.st_gid, 5678);
    }

    sx_tar_free(&t);
    ck_assert_ptr_null(t.data);
    ck_assert_uint_eq(t.len, 0);
    remove_tree(dir);
}
END_TEST

START_TEST(tar_header_fields_and_checksum)
{
    sx_tar t = {0};
    const char *body = "0123456789";
    ck_assert_int_eq(sx_tar_add_file(&t, "dir/file.txt", body, 10, 0100644, 1000, 2000), 0);
    ck_assert_uint_eq(t.len, 1024);   /* header + one padded block */
    const unsigned char *h = (const unsigned char *)t.data;

    unsigned long long stored = octal_field(t.data + 148, 8);
    unsigned long long sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    ck_assert_uint_eq(stored, sum);
    ck_assert_uint_ne(sum, 0);

    ck_assert_str_eq(t.data, "dir/file.txt");
    ck_assert_mem_eq(t.data + 257, "ustar\0" "00", 8);
    ck_assert_int_eq(t.data[156], '0');
    ck_assert_uint_eq(octal_field(t.data + 100, 8), 0644);   /* type bits dropped */
    ck_assert_uint_eq(octal_field(t.data + 108, 8), 1000);
    ck_assert_uint_eq(octal_field(t.data + 116, 8), 2000);
    ck_assert_uint_eq(octal_field(t.data + 124, 12), 10);
    ck_assert_uint_gt(octal_field(t.data + 136, 12), 1500000000ull);   /* a real mtime */
    ck_assert_mem_eq(t.data + 512, body, 10);
    for (size_t i = 522; i < 1024; i++)
        ck_assert_int_eq(t.data[i], 0);

    /* A directory: typeflag '5', trailing slash, size 0, no payload. */
    ck_assert_int_eq(sx_tar_add_dir(&t, "dir", 0755, 0, 0), 0);
    ck_assert_uint_eq(t.len, 1536);
    ck_assert_str_eq(t.data + 1024, "dir/");
    ck_assert_int_eq(t.data[1024 + 156], '5');
    ck_assert_uint_eq(octal_field(t.data + 1024 + 124, 12), 0);
    h = (const unsigned char *)t.data + 1024;
    sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    ck_assert_uint_eq(octal_field(t.data + 1024 + 148, 8), sum);
    sx_tar_free(&t);
}
END_TEST

START_TEST(tar_long_names_use_prefix)
{
    char dir[256], path[1024], cmd[4096];
    make_tmpdir(dir, sizeof dir);
    sx_tar t = {0};
    char expected[160 * 260];
    size_t elen = 0;
    expected[0] = '\0';

    /* 100 bytes: all in the name field, no NUL, no prefix. */
    char name[300];
    memset(name, 'n', 100);
    name[100] = '\0';
    ck_assert_int_eq(sx_tar_add_file(&t, name, "x", 1, 0644, 0, 0), 0);
    ck_assert_mem_eq(t.data, name, 100);
    ck_assert_int_eq(t.data[345], '\0');
    elen += (size_t)snprintf(expected + elen, sizeof expected - elen, "%s\n", name);

    /* 101..255 bytes: "a...a/b...b" split into prefix and name. */
    for (size_t L = 101; L <= 255; L++) {
        size_t b = L - 2 < 100 ? L - 2 : 100;
        size_t a = L - 1 - b;
        memset(name, 'a', a);
        name[a] = '/';
        memset(name + a + 1, 'b', b);
        name[L] = '\0';
        size_t off = t.len;
        ck_assert_msg(sx_tar_add_file(&t, name, "y", 1, 0644, 0, 0) == 0, "length %zu", L);
        const char *h = t.data + off;
        ck_assert_mem_eq(h + 345, name, a);            /* prefix */
        if (a < 155)
            ck_assert_int_eq(h[345 + a], '\0');
        ck_assert_mem_eq(h, name + a + 1, b);          /* name */
        if (b < 100)
            ck_assert_int_eq(h[b], '\0');
        elen += (size_t)snprintf(expected + elen, sizeof expected - elen, "%s\n", name);
    }

    /* A 255-byte directory whose last component is 100 bytes: stored
     * without its trailing '/' rather than refused. */
    memset(name, 'c', 154);
    name[154] = '/';
    memset(name + 155, 'd', 100);
    name[255] = '\0';
    ck_assert_int_eq(sx_tar_add_dir(&t, name, 0755, 0, 0), 0);
    elen += (size_t)snprintf(expected + elen, sizeof expected - elen, "%s\n", name);
    /* ... and a deeper one keeps it, split at an earlier '/'. */
    memset(name, 'e', 60);
    name[60] = '/';
    memset(name + 61, 'f', 60);
    name[121] = '/';
    memset(name + 122, 'g', 90);
    name[212] = '\0';
    ck_assert_int_eq(sx_tar_add_dir(&t, name, 0755, 0, 0), 0);
    elen += (size_t)snprintf(expected + elen, sizeof expected - elen, "%s/\n", name);
    ck_assert_int_eq(sx_tar_finish(&t), 0);

    snprintf(path, sizeof path, "%s/long.tar", dir);
    write_archive(&t, path);
    int status;
    snprintf(cmd, sizeof cmd, "tar -tf '%s'", path);
    char *out = run_capture(cmd, &status);
    ck_assert_msg(status == 0, "tar -tf: %s", out);
    ck_assert_str_eq(out, expected);
    free(out);

    /* Extract: the long directory is a directory. */
    snprintf(cmd, sizeof cmd, "mkdir '%s/x' && tar -xf '%s' -C '%s/x'", dir, path, dir);
    out = run_capture(cmd, &status);
    ck_assert_msg(status == 0 && out[0] == '\0', "tar -xf: %s", out);
    free(out);
    memset(name, 'c', 154);
    name[154] = '/';
    memset(name + 155, 'd', 100);
    name[255] = '\0';
    snprintf(path, sizeof path, "%s/x/%s", dir, name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));

    sx_tar_free(&t);
    remove_tree(dir);
}
END_TEST

START_TEST(tar_refuses_bad_names)
{
    sx_tar t = {0};
    ck_assert_int_eq(sx_tar_add_file(&t, "ok", "1", 1, 0644, 0, 0), 0);
    size_t before = t.len;
    char longname[400];

    const char *bad[] = {"", "/etc/passwd", "/", "..", "../x", "a/../b", "a/..", "a/b/../../..",
                         "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(sx_tar_add_file(&t, bad[i], "z", 1, 0644, 0, 0) == -1, "file \"%s\"",
                      bad[i]);
        if (strcmp(bad[i], "x/") != 0)
            ck_assert_msg(sx_tar_add_dir(&t, bad[i], 0755, 0, 0) == -1, "dir \"%s\"", bad[i]);
    }
    /* 257 bytes: longer than prefix + '/' + name can hold. */
    memset(longname, 'a', 150);
    longname[150] = '/';
    memset(longname + 151, 'b', 106);
    longname[257] = '\0';
    longname[200] = '/';
    ck_assert_int_eq(sx_tar_add_file(&t, longname, "z", 1, 0644, 0, 0), -1);
    ck_assert_int_eq(sx_tar_add_dir(&t, longname, 0755, 0, 0), -1);
    /* A last component over 100 bytes. */
    memset(longname, 'a', 10);
    longname[10] = '/';
    memset(longname + 11, 'b', 101);
    longname[112] = '\0';
    ck_assert_int_eq(sx_tar_add_file(&t, longname, "z", 1, 0644, 0, 0), -1);
    /* One component of 101 bytes: no '/' to split at. */
    memset(longname, 'c', 101);
    longname[101] = '\0';
    ck_assert_int_eq(sx_tar_add_file(&t, longname, "z", 1, 0644, 0, 0), -1);
    /* A prefix over 155 bytes: the only '/' is at 160. */
    memset(longname, 'd', 160);
    longname[160] = '/';
    memset(longname + 161, 'e', 10);
    longname[171] = '\0';
    ck_assert_int_eq(sx_tar_add_file(&t, longname, "z", 1, 0644, 0, 0), -1);
    /* uid over ustar's 7 octal digits. */
    ck_assert_int_eq(sx_tar_add_file(&t, "big-uid", "z", 1, 0644, 010000000, 0), -1);
    ck_assert_uint_eq(t.len, before);   /* refusals leave the archive as it was */

    /* ".." inside a component is fine. */
    ck_assert_int_eq(sx_tar_add_file(&t, "a..b", "z", 1, 0644, 0, 0), 0);
    ck_assert_int_eq(sx_tar_add_file(&t, "..x/y..", "z", 1, 0644, 0, 0), 0);
    ck_assert_uint_eq(t.len, before + 2048);
    sx_tar_free(&t);
}
END_TEST

START_TEST(tar_archive_ends_with_two_zero_blocks)
{
    sx_tar t = {0};
    ck_assert_int_eq(sx_tar_finish(&t), 0);   /* an empty archive */
    ck_assert_uint_eq(t.len, 1024);
    sx_tar_free(&t);

    size_t sizes[] = {0, 1, 511, 512, 513, 1024, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *buf = malloc(sizes[i] + 1);
        ck_assert_ptr_nonnull(buf);
        memset(buf, 'q', sizes[i]);
        char name[32];
        snprintf(name, sizeof name, "f%zu", i);
        ck_assert_int_eq(sx_tar_add_file(&t, name, buf, sizes[i], 0644, 0, 0), 0);
        ck_assert_uint_eq(t.len % 512, 0);
        free(buf);
    }
    size_t body = t.len;
    /* headers + payloads rounded up to whole blocks */
    ck_assert_uint_eq(body, 7 * 512 + (0 + 512 + 512 + 512 + 1024 + 1024 + 5120));
    ck_assert_int_eq(sx_tar_finish(&t), 0);
    ck_assert_uint_eq(t.len, body + 1024);
    ck_assert_uint_eq(t.len % 512, 0);
    for (size_t i = body; i < t.len; i++)
        ck_assert_int_eq(t.data[i], 0);
    /* The struct may be reused after sx_tar_free. */
    sx_tar_free(&t);
    ck_assert_int_eq(sx_tar_add_dir(&t, "again", 0755, 0, 0), 0);
    ck_assert_uint_eq(t.len, 512);
    sx_tar_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ demux */

typedef struct collect {
    char *out[3];
    size_t len[3];
    size_t cap[3];
    size_t calls;
    size_t max_piece;
    int bad_stream;   /* set when emit saw a stream other than 1 or 2, or len 0 */
} collect;

static void collect_emit(void *user, int stream, const char *data, size_t len)
{
    collect *c = user;
    c->calls++;
    if ((stream != 1 && stream != 2) || len == 0) {
        c->bad_stream = 1;
        return;
    }
    if (len > c->max_piece)
        c->max_piece = len;
    if (c->len[stream] + len > c->cap[stream]) {
        size_t cap = c->cap[stream] ? c->cap[stream] : 256;
        while (cap < c->len[stream] + len)
            cap *= 2;
        c->out[stream] = realloc(c->out[stream], cap);
        ck_assert_ptr_nonnull(c->out[stream]);
        c->cap[stream] = cap;
    }
    memcpy(c->out[stream] + c->len[stream], data, len);
    c->len[stream] += len;
}

static void collect_free(collect *c)
{
    for (int i = 0; i < 3; i++)
        free(c->out[i]);
    memset(c, 0, sizeof *c);
}

/* Append a frame to buf (at *n). */
static void frame(char *buf, size_t *n, int stream, const void *data, uint32_t len)
{
    unsigned char h[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                          (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                          (unsigned char)len};
    memcpy(buf + *n, h, 8);
    *n += 8;
    if (len)
        memcpy(buf + *n, data, len);
    *n += len;
}

/* A stream of mixed frames and what it should demultiplex to. */
typedef struct sample {
    char wire[2048];
    size_t wire_len;
    char out[1024], err[1024];
    size_t out_len, err_len;
} sample;

static void make_sample(sample *s)
{
    memset(s, 0, sizeof *s);
    char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 13);
#define ADD(st, d, l)                                                                          \
    do {                                                                                       \
        frame(s->wire, &s->wire_len, st, d, l);                                                \
        if ((st) == 2) {                                                                       \
            memcpy(s->err + s->err_len, d, l);                                                 \
            s->err_len += l;                                                                   \
        } else {                                                                               \
            memcpy(s->out + s->out_len, d, l);                                                 \
            s->out_len += l;                                                                   \
        }                                                                                      \
    } while (0)
    ADD(1, "hello ", 6);
    ADD(2, "warning: x\n", 11);
    ADD(0, "echoed", 6);   /* stdin echo: stdout */
    ADD(1, "", 0);
    ADD(2, bin, (uint32_t)sizeof bin);
    ADD(2, "", 0);
    ADD(1, "world\n", 6);
    ADD(1, "\0\x01\x02", 3);
#undef ADD
}

static void check_sample(const sample *s, const collect *c)
{
    ck_assert_int_eq(c->bad_stream, 0);
    ck_assert_uint_eq(c->len[1], s->out_len);
    ck_assert_uint_eq(c->len[2], s->err_len);
    ck_assert_mem_eq(c->out[1], s->out, s->out_len);
    ck_assert_mem_eq(c->out[2], s->err, s->err_len);
}

START_TEST(demux_any_split_gives_same_bytes)
{
    sample s;
    make_sample(&s);

    /* whole */
    collect c = {0};
    sx_demux d;
    sx_demux_init(&d, collect_emit, &c);
    sx_demux_feed(&d, s.wire, s.wire_len);
    check_sample(&s, &c);
    ck_assert_int_eq(d.bad, 0);
    ck_assert_int_eq(sx_demux_incomplete(&d), 0);
    collect_free(&c);

    /* one byte at a time */
    sx_demux_init(&d, collect_emit, &c);
    for (size_t i = 0; i < s.wire_len; i++)
        sx_demux_feed(&d, s.wire + i, 1);
    check_sample(&s, &c);
    ck_assert_int_eq(sx_demux_incomplete(&d), 0);
    collect_free(&c);

    /* every two-piece split */
    for (size_t cut = 0; cut <= s.wire_len; cut++) {
        sx_demux_init(&d, collect_emit, &c);
        sx_demux_feed(&d, s.wire, cut);
        sx_demux_feed(&d, s.wire + cut, s.wire_len - cut);
        check_sample(&s, &c);
        ck_assert_int_eq(sx_demux_incomplete(&d), 0);
        collect_free(&c);
    }

    /* random chunk sizes */
    uint32_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        sx_demux_init(&d, collect_emit, &c);
        size_t pos = 0;
        while (pos < s.wire_len) {
            size_t n = lcg(&seed) % 40;   /* zero-length feeds too */
            if (n > s.wire_len - pos)
                n = s.wire_len - pos;
            sx_demux_feed(&d, s.wire + pos, n);
            pos += n;
        }
        check_sample(&s, &c);
        ck_assert_int_eq(sx_demux_incomplete(&d), 0);
        collect_free(&c);
    }
}
END_TEST

START_TEST(demux_zero_length_frames_emit_nothing)
{
    char wire[64];
    size_t n = 0;
    frame(wire, &n, 1, "", 0);
    frame(wire, &n, 2, "", 0);
    frame(wire, &n, 0, "", 0);
    collect c = {0};
    sx_demux d;
    sx_demux_init(&d, collect_emit, &c);
    sx_demux_feed(&d, wire, n);
    ck_assert_uint_eq(c.calls, 0);
    ck_assert_int_eq(sx_demux_incomplete(&d), 0);
    ck_assert_int_eq(d.bad, 0);
    /* and the next frame still parses */
    n = 0;
    frame(wire, &n, 2, "after", 5);
    sx_demux_feed(&d, wire, n);
    ck_assert_uint_eq(c.calls, 1);
    ck_assert_uint_eq(c.len[2], 5);
    ck_assert_mem_eq(c.out[2], "after", 5);
    collect_free(&c);
}
END_TEST

START_TEST(demux_large_frame_is_emitted_incrementally)
{
    const uint32_t size = 1u << 20;
    char *payload = malloc(size);
    ck_assert_ptr_nonnull(payload);
    uint32_t seed = 7;
    for (uint32_t i = 0; i < size; i++)
        payload[i] = (char)lcg(&seed);
    unsigned char h[8] = {2, 0, 0, 0, (unsigned char)(size >> 24), (unsigned char)(size >> 16),
                          (unsigned char)(size >> 8), (unsigned char)size};
    collect c = {0};
    sx_demux d;
    sx_demux_init(&d, collect_emit, &c);
    sx_demux_feed(&d, (const char *)h, 8);
    ck_assert_uint_eq(c.calls, 0);
    ck_assert_int_eq(sx_demux_incomplete(&d), 1);   /* payload due */
    const size_t chunk = 4096;
    for (uint32_t off = 0; off < size; off += chunk) {
        sx_demux_feed(&d, payload + off, chunk);
        /* everything fed so far has been handed on */
        ck_assert_uint_eq(c.len[2], off + chunk);
        ck_assert_int_eq(sx_demux_incomplete(&d), off + chunk < size);
    }
    ck_assert_uint_le(c.max_piece, chunk);
    ck_assert_uint_eq(c.calls, size / chunk);
    ck_assert_uint_eq(c.len[1], 0);
    ck_assert_mem_eq(c.out[2], payload, size);
    /* the frame's end is found exactly: the next header parses */
    char wire[32];
    size_t n = 0;
    frame(wire, &n, 1, "tail", 4);
    sx_demux_feed(&d, wire, n);
    ck_assert_uint_eq(c.len[1], 4);
    ck_assert_int_eq(d.bad, 0);
    collect_free(&c);
    free(payload);
}
END_TEST

START_TEST(demux_malformed_header_passes_through)
{
    /* Unframed output (a TTY container): everything is stdout. */
    const char *tty = "hello from a tty\n\x02\0\0\0\0\0\0\x01x";
    size_t tty_len = 26;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        collect c = {0};
        sx_demux d;
        sx_demux_init(&d, collect_emit, &c);
        if (bytewise)
            for (size_t i = 0; i < tty_len; i++)
                sx_demux_feed(&d, tty + i, 1);
        else
            sx_demux_feed(&d, tty, tty_len);
        ck_assert_int_ne(d.bad, 0);
        ck_assert_int_eq(c.bad_stream, 0);
        ck_assert_uint_eq(c.len[1], tty_len);
        ck_assert_mem_eq(c.out[1], tty, tty_len);
        ck_assert_uint_eq(c.len[2], 0);
        ck_assert_int_eq(sx_demux_incomplete(&d), 0);
        collect_free(&c);
    }

    /* A good frame, then a header with stream 3 or non-zero padding: the
     * first frame is demultiplexed, the rest (header included) is stdout. */
    const unsigned char bad_headers[][8] = {
        {3, 0, 0, 0, 0, 0, 0, 2},
        {1, 0, 1, 0, 0, 0, 0, 2},
        {2, 0, 0, 9, 0, 0, 0, 2},
        {0xff, 0, 0, 0, 0, 0, 0, 2},
    };
    for (size_t k = 0; k < sizeof bad_headers / sizeof bad_headers[0]; k++) {
        char wire[64];
        size_t n = 0;
        frame(wire, &n, 2, "err", 3);
        size_t good = n;
        memcpy(wire + n, bad_headers[k], 8);
        n += 8;
        memcpy(wire + n, "zz", 2);
        n += 2;
        frame(wire, &n, 2, "more", 4);   /* not parsed any more */
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            collect c = {0};
            sx_demux d;
            sx_demux_init(&d, collect_emit, &c);
            if (bytewise)
                for (size_t i = 0; i < n; i++)
                    sx_demux_feed(&d, wire + i, 1);
            else
                sx_demux_feed(&d, wire, n);
            ck_assert_int_ne(d.bad, 0);
            ck_assert_uint_eq(c.len[2], 3);
            ck_assert_mem_eq(c.out[2], "err", 3);
            ck_assert_uint_eq(c.len[1], n - good);
            ck_assert_mem_eq(c.out[1], wire + good, n - good);
            collect_free(&c);
        }
    }
}
END_TEST

START_TEST(demux_incomplete_after_cut)
{
    char wire[64];
    size_t n = 0;
    frame(wire, &n, 1, "abcdef", 6);
    collect c = {0};
    sx_demux d;
    for (size_t cut = 0; cut <= n; cut++) {
        sx_demux_init(&d, collect_emit, &c);
        sx_demux_feed(&d, wire, cut);
        ck_assert_msg(sx_demux_incomplete(&d) == (cut != 0 && cut != n), "cut at %zu", cut);
        ck_assert_uint_eq(c.len[1], cut > 8 ? cut - 8 : 0);
        collect_free(&c);
    }
    /* A cut right after a complete zero-length frame is not incomplete. */
    n = 0;
    frame(wire, &n, 2, "", 0);
    sx_demux_init(&d, collect_emit, &c);
    sx_demux_feed(&d, wire, n);
    ck_assert_int_eq(sx_demux_incomplete(&d), 0);
    collect_free(&c);
}
END_TEST

/* ------------------------------------------------------------- image refs */

static void expect_ref(const char *text, const char *registry, const char *repo, const char *tag,
                       const char *digest, const char *from_image)
{
    sx_image_ref r;
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_image_ref_parse(text, &r, &err) == 0, "%s: %s", text, err.message);
    ck_assert_str_eq(r.registry, registry);
    ck_assert_str_eq(r.repo, repo);
    ck_assert_str_eq(r.tag, tag);
    ck_assert_str_eq(r.digest, digest);
    char buf[800];
    ck_assert_int_eq(sx_image_ref_from_image(&r, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, from_image);
}

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(image_refs_parse)
{
    expect_ref("busybox", "docker.io", "library/busybox", "latest", "", "library/busybox");
    expect_ref("python:3.11-slim", "docker.io", "library/python", "3.11-slim", "",
               "library/python");
    expect_ref("127.0.0.1:5000/sx-test/minimal:v2", "127.0.0.1:5000", "sx-test/minimal", "v2", "",
               "127.0.0.1:5000/sx-test/minimal");
    expect_ref("localhost/a/b", "localhost", "a/b", "latest", "", "localhost/a/b");
    expect_ref("localhost:5000/app", "localhost:5000", "app", "latest", "",
               "localhost:5000/app");
    expect_ref("registry.example.com:443/team/app@" DIGEST, "registry.example.com:443",
               "team/app", "", DIGEST, "registry.example.com:443/team/app");
    expect_ref("repo:tag@" DIGEST, "docker.io", "library/repo", "tag", DIGEST, "library/repo");
    expect_ref("team/app", "docker.io", "team/app", "latest", "", "team/app");
    expect_ref("docker.io/team/app:1", "docker.io", "team/app", "1", "", "team/app");
    expect_ref("docker.io/busybox", "docker.io", "library/busybox", "latest", "",
               "library/busybox");
    expect_ref("index.docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", "",
               "library/busybox");
    expect_ref("ghcr.io/org/sub/img:v1.2.3_rc-1", "ghcr.io", "org/sub/img", "v1.2.3_rc-1", "",
               "ghcr.io/org/sub/img");
    expect_ref("a:5000", "docker.io", "library/a", "5000", "", "library/a");
    expect_ref("my_app__x-y--z.w", "docker.io", "library/my_app__x-y--z.w", "latest", "",
               "library/my_app__x-y--z.w");
    expect_ref("[::1]:5000/app", "[::1]:5000", "app", "latest", "", "[::1]:5000/app");
}
END_TEST

static const char *bad_refs[] = {
    "",
    "UPPER/case",
    "Busybox",
    "a//b",
    "a/",
    "/a",
    "a:",
    "a:-bad",
    "a:.bad",
    "a@sha256:short",
    "a@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
    "a@md5:0123456789abcdef0123456789abcdef",
    "a@",
    " a",
    "a b",
    "a\tb",
    "a\n",
    "a\x7f",
    "a__b_",
    "a___b",
    "a.-b",
    "-a",
    "a:b:c",
    "a/b:tag:x",
    ":tag",
    "@" DIGEST,
    "my.registry:/x",
    "my.registry:50a/x",
    "-bad.example.com/x",
    "bad-.example.com/x",
    "bad..example.com/x",
    "r\xc3\xa9g.example/x",
};

START_TEST(image_refs_refused)
{
    const char *text = bad_refs[_i];
    sx_image_ref r;
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_image_ref_parse(text, &r, &err) == -1, "accepted \"%s\"", text);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_msg(err.message[0] != '\0', "no message for \"%s\"", text);
}
END_TEST

START_TEST(image_ref_limits)
{
    sx_image_ref r;
    sx_error err = {{0}, {0}};
    /* The grammar allows 128-character tags but the field holds 127. */
    char text[600];
    memcpy(text, "a:", 2);
    memset(text + 2, 't', 127);
    text[129] = '\0';
    ck_assert_int_eq(sx_image_ref_parse(text, &r, &err), 0);
    ck_assert_uint_eq(strlen(r.tag), 127);
    for (size_t n = 128; n <= 129; n++) {
        memset(text + 2, 't', n);
        text[2 + n] = '\0';
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(sx_image_ref_parse(text, &r, &err), -1);
        ck_assert_str_eq(err.code, "invalid_parameter");
    }
    /* a name over 255 characters */
    memset(text, 'a', 300);
    text[300] = '\0';
    ck_assert_int_eq(sx_image_ref_parse(text, &r, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    /* 255 is fine */
    text[255] = '\0';
    ck_assert_int_eq(sx_image_ref_parse(text, &r, &err), 0);
    /* a buffer too small for fromImage */
    ck_assert_int_eq(sx_image_ref_parse("127.0.0.1:5000/sx-test/minimal", &r, &err), 0);
    char small[30];
    ck_assert_int_eq(sx_image_ref_from_image(&r, small, sizeof small), -1);
    char exact[31];
    ck_assert_int_eq(sx_image_ref_from_image(&r, exact, sizeof exact), 0);
    ck_assert_str_eq(exact, "127.0.0.1:5000/sx-test/minimal");
}
END_TEST

/* ---------------------------------------------------------- registry auth */

/* Decode base64url with padding; returns malloc'd NUL-terminated bytes. */
static char *b64url_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    ck_assert_uint_eq(len % 4, 0);
    char *std = strdup(s);
    ck_assert_ptr_nonnull(std);
    for (char *p = std; *p; p++) {
        ck_assert_msg(*p != '+' && *p != '/', "standard alphabet in base64url: %s", s);
        if (*p == '-')
            *p = '+';
        else if (*p == '_')
            *p = '/';
    }
    unsigned char *out = malloc(len / 4 * 3 + 1);
    ck_assert_ptr_nonnull(out);
    int w = EVP_DecodeBlock(out, (unsigned char *)std, (int)len);
    ck_assert_int_ge(w, 0);
    size_t pad = 0;
    while (len > 0 && pad < 2 && s[len - 1 - pad] == '=')
        pad++;
    *n = (size_t)w - pad;
    out[*n] = '\0';
    free(std);
    return (char *)out;
}

static void check_auth_roundtrip(const char *user, const char *pass, const char *server)
{
    char *h = sx_registry_auth_header(user, pass, server);
    ck_assert_ptr_nonnull(h);
    size_t n;
    char *json = b64url_decode(h, &n);
    ck_assert_uint_eq(strlen(json), n);
    cJSON *o = cJSON_Parse(json);
    ck_assert_msg(o != NULL, "not JSON: %s", json);
    ck_assert_int_eq(cJSON_GetArraySize(o), 3);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "username")), user);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "password")), pass);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "serveraddress")),
                     server);
    cJSON_Delete(o);
    free(json);
    free(h);
}

START_TEST(registry_auth_header_roundtrip)
{
    check_auth_roundtrip("alice", "s3cret", "registry.example.com");
    /* quotes, backslash, '/', non-ASCII (u-umlaut, euro sign, a CJK character) */
    check_auth_roundtrip("bob@example.com",
                         "p\"a\\s:s/w?o~r>d{}\xc3\xbc\xe2\x82\xac \xe5\xaf\x86", "127.0.0.1:5000");
    check_auth_roundtrip("", "", "");
    for (int pad = 0; pad < 3; pad++) {   /* every padding length */
        char pass[8] = "xyz";
        pass[pad] = '\0';
        check_auth_roundtrip("u", pass, "docker.io");
    }

    /* The url alphabet is really used: this input encodes with '+' and '/'
     * in the standard alphabet (checked here), and '-' and '_' in ours. */
    const char *pass = "?>?>?>~~~>?>?>?~~~>>>";
    char *h = sx_registry_auth_header("u", pass, "s");
    ck_assert_ptr_nonnull(h);
    size_t n;
    char *json = b64url_decode(h, &n);
    unsigned char std[512];
    EVP_EncodeBlock(std, (unsigned char *)json, (int)n);
    ck_assert_msg(strpbrk((char *)std, "+/") != NULL, "test input does not exercise + and /");
    ck_assert_ptr_nonnull(strpbrk(h, "-_"));
    ck_assert_uint_eq(strlen(h), strlen((char *)std));
    free(json);
    free(h);

    /* NULL fields are empty strings. */
    h = sx_registry_auth_header(NULL, NULL, NULL);
    ck_assert_ptr_nonnull(h);
    json = b64url_decode(h, &n);
    ck_assert_str_eq(json, "{\"username\":\"\",\"password\":\"\",\"serveraddress\":\"\"}");
    free(json);
    free(h);
}
END_TEST

/* ----------------------------------------------------------- dockerconfig */

static int lookup(const char *doc, const char *registry, char **u, char **p, sx_error *err)
{
    return sx_dockerconfig_lookup(doc, strlen(doc), registry, u, p, err);
}

START_TEST(dockerconfig_username_password)
{
    const char *doc = "{\"auths\":{\"registry.example.com\":{\"username\":\"alice\","
                      "\"password\":\"pa:ss\\\"w\"},\"other.example.com\":{\"username\":\"x\","
                      "\"password\":\"y\"}}}";
    char *u = (char *)"junk", *p = (char *)"junk";
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(lookup(doc, "registry.example.com", &u, &p, &err), 0);
    ck_assert_str_eq(u, "alice");
    ck_assert_str_eq(p, "pa:ss\"w");
    free(u);
    free(p);
    ck_assert_int_eq(lookup(doc, "other.example.com", &u, &p, &err), 0);
    ck_assert_str_eq(u, "x");
    ck_assert_str_eq(p, "y");
    free(u);
    free(p);
}
END_TEST

START_TEST(dockerconfig_auth_field)
{
    /* "auth" is base64("user:pa:ss") - the password keeps its ':' */
    const char *doc = "{\"auths\":{\"registry.example.com\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}";
    char *u = NULL, *p = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(lookup(doc, "registry.example.com", &u, &p, &err), 0);
    ck_assert_str_eq(u, "user");
    ck_assert_str_eq(p, "pa:ss");
    free(u);
    free(p);
    /* "auth" wins over username/password, as in Kubernetes */
    doc = "{\"auths\":{\"r.example\":{\"username\":\"no\",\"password\":\"no\","
          "\"auth\":\"dXNlcjpwYTpzcw==\"}}}";
    ck_assert_int_eq(lookup(doc, "r.example", &u, &p, &err), 0);
    ck_assert_str_eq(u, "user");
    ck_assert_str_eq(p, "pa:ss");
    free(u);
    free(p);
}
END_TEST

START_TEST(dockerconfig_server_urls_match)
{
    /* base64("hub:hubpass"), base64("loc:locpass") */
    const char *doc = "{\"auths\":{"
                      "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnBhc3M=\"},"
                      "\"http://127.0.0.1:5000\":{\"auth\":\"bG9jOmxvY3Bhc3M=\"},"
                      "\"https://ghcr.io/v2/token\":{\"username\":\"g\",\"password\":\"h\"}}}";
    char *u = NULL, *p = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(lookup(doc, "docker.io", &u, &p, &err), 0);
    ck_assert_str_eq(u, "hub");
    ck_assert_str_eq(p, "hubpass");
    free(u);
    free(p);
    ck_assert_int_eq(lookup(doc, "127.0.0.1:5000", &u, &p, &err), 0);
    ck_assert_str_eq(u, "loc");
    ck_assert_str_eq(p, "locpass");
    free(u);
    free(p);
    ck_assert_int_eq(lookup(doc, "ghcr.io", &u, &p, &err), 0);
    ck_assert_str_eq(u, "g");
    free(u);
    free(p);
    /* the port is part of the registry */
    ck_assert_int_eq(lookup(doc, "127.0.0.1", &u, &p, &err), 1);
    ck_assert_int_eq(lookup(doc, "127.0.0.1:5001", &u, &p, &err), 1);
    ck_assert_int_eq(lookup(doc, "index.docker.io.evil.com", &u, &p, &err), 1);
    ck_assert_ptr_null(u);
    ck_assert_ptr_null(p);

    /* An exact key wins over an URL naming the same host. */
    doc = "{\"auths\":{\"https://r.example/v1/\":{\"username\":\"url\",\"password\":\"1\"},"
          "\"r.example\":{\"username\":\"exact\",\"password\":\"2\"}}}";
    ck_assert_int_eq(lookup(doc, "r.example", &u, &p, &err), 0);
    ck_assert_str_eq(u, "exact");
    ck_assert_str_eq(p, "2");
    free(u);
    free(p);
}
END_TEST

START_TEST(dockerconfig_no_entry)
{
    const char *docs[] = {
        "{\"auths\":{}}",
        "{\"auths\":{\"registry.example.com\":{\"username\":\"a\",\"password\":\"b\"}}}",
    };
    for (size_t i = 0; i < 2; i++) {
        char *u = (char *)"junk", *p = (char *)"junk";
        sx_error err = {{0}, {0}};
        ck_assert_int_eq(lookup(docs[i], "docker.io", &u, &p, &err), 1);
        ck_assert_ptr_null(u);
        ck_assert_ptr_null(p);
        ck_assert_str_eq(err.code, "");
    }
}
END_TEST

START_TEST(dockerconfig_invalid)
{
    const char *docs[] = {
        "{\"auths\":{\"r.example\":",                                   /* truncated */
        "not json",
        "[]",
        "{\"auths\":[]}",
        "{\"other\":{}}",
        "{\"auths\":{\"r.example\":\"x\"}}",
        "{\"auths\":{\"r.example\":{\"auth\":\"!!notbase64!!\"}}}",
        "{\"auths\":{\"r.example\":{\"auth\":\"dXNlcg\"}}}",              /* unpadded */
        "{\"auths\":{\"r.example\":{\"auth\":\"dXNlcg==\"}}}",            /* "user", no ':' */
        "{\"auths\":{\"r.example\":{\"auth\":42}}}",
        "{\"auths\":{\"r.example\":{\"username\":1,\"password\":\"p\"}}}",
        "{\"auths\":{\"r.example\":{\"identitytoken\":\"t\"}}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char *u = (char *)"junk", *p = (char *)"junk";
        sx_error err = {{0}, {0}};
        ck_assert_msg(lookup(docs[i], "r.example", &u, &p, &err) == -1, "accepted %s", docs[i]);
        ck_assert_str_eq(err.code, "config_error");
        ck_assert_ptr_null(u);
        ck_assert_ptr_null(p);
        ck_assert_ptr_null(strstr(err.message, "notbase64"));
    }
    /* len is honoured: garbage past it is not read */
    const char *doc = "{\"auths\":{\"r.example\":{\"username\":\"a\",\"password\":\"b\"}}}GARBAGE";
    char *u, *p;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_dockerconfig_lookup(doc, strlen(doc) - 7, "r.example", &u, &p, &err), 0);
    ck_assert_str_eq(u, "a");
    free(u);
    free(p);
    ck_assert_int_eq(sx_dockerconfig_lookup(doc, strlen(doc), "r.example", &u, &p, &err), -1);
    ck_assert_str_eq(err.code, "config_error");
    /* trailing white space, or a length that counts the final NUL, is fine */
    const char *ws = "{\"auths\":{\"r.example\":{\"username\":\"a\"}}}\n  ";
    ck_assert_int_eq(sx_dockerconfig_lookup(ws, strlen(ws) + 1, "r.example", &u, &p, &err), 0);
    ck_assert_str_eq(u, "a");
    ck_assert_str_eq(p, "");   /* no password: empty */
    free(u);
    free(p);
}
END_TEST

/* ------------------------------------------------------------ local store */

typedef struct store_fixture {
    char root[256];
    char secrets[300];
    char configmaps[300];
} store_fixture;

static void mkdir_p(const char *path)
{
    ck_assert_msg(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

static void make_store(store_fixture *f)
{
    char p[1024];
    make_tmpdir(f->root, sizeof f->root);
    snprintf(f->secrets, sizeof f->secrets, "%s/secrets", f->root);
    snprintf(f->configmaps, sizeof f->configmaps, "%s/configmaps", f->root);
    mkdir_p(f->secrets);
    mkdir_p(f->configmaps);
    snprintf(p, sizeof p, "%s/db", f->secrets);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/db/password", f->secrets);
    write_file(p, "s3cret\n", 7);
    snprintf(p, sizeof p, "%s/db/empty", f->secrets);
    write_file(p, "", 0);
    snprintf(p, sizeof p, "%s/app.conf", f->configmaps);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/app.conf/settings.yaml", f->configmaps);
    write_file(p, "a: 1\n", 5);
}

START_TEST(store_reads_keys)
{
    store_fixture f;
    make_store(&f);
    sx_local_store s;
    ck_assert_int_eq(sx_store_init(&s, f.secrets, f.configmaps), 0);
    char *v = NULL;
    size_t len = 99;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "password", &v, &len, &err), 0);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(v, "s3cret\n");
    free(v);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "empty", &v, &len, &err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(v, "");
    free(v);
    ck_assert_int_eq(
        sx_store_read(&s, SX_STORE_CONFIGMAP, "app.conf", "settings.yaml", &v, &len, &err), 0);
    ck_assert_str_eq(v, "a: 1\n");
    free(v);
    /* kinds are separate directories */
    v = (char *)"junk";
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_CONFIGMAP, "db", "password", &v, &len, &err), 1);
    ck_assert_ptr_null(v);
    /* missing object, missing key */
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "nope", "password", &v, &len, &err), 1);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "nope", &v, &len, &err), 1);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(err.code, "");
    /* a key that is a directory is not a key */
    char p[1024];
    snprintf(p, sizeof p, "%s/db/subdir", f.secrets);
    mkdir_p(p);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "subdir", &v, &len, &err), 1);
    /* nor is a FIFO (and reading one must not hang) */
    snprintf(p, sizeof p, "%s/db/fifo", f.secrets);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "fifo", &v, &len, &err), 1);
    /* an object that is a file is not an object */
    snprintf(p, sizeof p, "%s/flat", f.secrets);
    write_file(p, "x", 1);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "flat", "x", &v, &len, &err), 1);

    ck_assert_str_eq(sx_store_kind_name(SX_STORE_SECRET), "secret");
    ck_assert_str_eq(sx_store_kind_name(SX_STORE_CONFIGMAP), "configmap");
    sx_store_free(&s);
    ck_assert_ptr_null(s.secrets_dir);
    ck_assert_ptr_null(s.configmaps_dir);
    remove_tree(f.root);
}
END_TEST

START_TEST(store_refuses_invalid_names)
{
    store_fixture f;
    make_store(&f);
    /* a file that an escaping name would reach */
    char p[1024];
    snprintf(p, sizeof p, "%s/x", f.root);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/x/password", f.root);
    write_file(p, "outside", 7);

    sx_local_store s;
    ck_assert_int_eq(sx_store_init(&s, f.secrets, f.configmaps), 0);
    const char *bad_names[] = {"../x", "A_B", "a/b", "..data", "", ".", "..", "-a", "a-", ".a",
                               "a.", "a_b", "Db", "a b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char *v = (char *)"junk";
        size_t len;
        sx_error err = {{0}, {0}};
        ck_assert_msg(sx_store_read(&s, SX_STORE_SECRET, bad_names[i], "password", &v, &len,
                                    &err) == -1, "name \"%s\"", bad_names[i]);
        ck_assert_str_eq(err.code, "invalid_parameter");
        ck_assert_ptr_null(v);
        sx_strlist keys = {1, NULL};
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(sx_store_keys(&s, SX_STORE_CONFIGMAP, bad_names[i], &keys, &err), -1);
        ck_assert_str_eq(err.code, "invalid_parameter");
        ck_assert_uint_eq(keys.n, 0);
    }
    char n254[260];
    memset(n254, 'a', 254);
    n254[254] = '\0';
    char *v;
    size_t len;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, n254, "k", &v, &len, &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    n254[253] = '\0';   /* 253 is allowed (and absent) */
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, n254, "k", &v, &len, &err), 1);

    const char *bad_keys[] = {"..data", "../password", "a/b", ".", "..", "", "..x", "a b", "k$"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        memset(&err, 0, sizeof err);
        ck_assert_msg(sx_store_read(&s, SX_STORE_SECRET, "db", bad_keys[i], &v, &len, &err) == -1,
                      "key \"%s\"", bad_keys[i]);
        ck_assert_str_eq(err.code, "invalid_parameter");
    }
    /* valid odd names: dots, dashes, upper-case keys */
    snprintf(p, sizeof p, "%s/a.b-c", f.secrets);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/a.b-c/.Hidden_Key-1", f.secrets);
    write_file(p, "ok", 2);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "a.b-c", ".Hidden_Key-1", &v, &len, &err),
                     0);
    ck_assert_str_eq(v, "ok");
    free(v);
    sx_store_free(&s);
    remove_tree(f.root);
}
END_TEST

START_TEST(store_lists_kubernetes_layout)
{
    store_fixture f;
    make_store(&f);
    char p[1024], t[1024];
    /* <secrets>/k8s/..2026_01_02_03_04_05.123456789/{username,password,tls.crt}
     * <secrets>/k8s/..data -> ..2026_...; keys -> ..data/<key> */
    const char *ts = "..2026_01_02_03_04_05.123456789";
    snprintf(p, sizeof p, "%s/k8s", f.secrets);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/k8s/%s", f.secrets, ts);
    mkdir_p(p);
    const char *names[] = {"username", "password", "tls.crt"};
    const char *values[] = {"admin", "hunter2", "-----BEGIN-----"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/k8s/%s/%s", f.secrets, ts, names[i]);
        write_file(p, values[i], strlen(values[i]));
        snprintf(p, sizeof p, "%s/k8s/%s", f.secrets, names[i]);
        snprintf(t, sizeof t, "..data/%s", names[i]);
        ck_assert_int_eq(symlink(t, p), 0);
    }
    snprintf(p, sizeof p, "%s/k8s/..data", f.secrets);
    ck_assert_int_eq(symlink(ts, p), 0);
    /* noise: a directory, a dangling link, a link to a directory */
    snprintf(p, sizeof p, "%s/k8s/subdir", f.secrets);
    mkdir_p(p);
    snprintf(p, sizeof p, "%s/k8s/dangling", f.secrets);
    ck_assert_int_eq(symlink("..data/missing", p), 0);
    snprintf(p, sizeof p, "%s/k8s/dirlink", f.secrets);
    ck_assert_int_eq(symlink("subdir", p), 0);
    /* a plain regular file too */
    snprintf(p, sizeof p, "%s/k8s/Zeta", f.secrets);
    write_file(p, "z", 1);

    sx_local_store s;
    ck_assert_int_eq(sx_store_init(&s, f.secrets, NULL), 0);
    sx_strlist keys = {0, NULL};
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "k8s", &keys, &err), 0);
    const char *want[] = {"Zeta", "password", "tls.crt", "username"};   /* strcmp order */
    ck_assert_uint_eq(keys.n, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(keys.v[i], want[i]);
    sx_strlist_clear(&keys);

    /* values read through the symlinks */
    char *v;
    size_t len;
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "k8s", "password", &v, &len, &err), 0);
    ck_assert_str_eq(v, "hunter2");
    free(v);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "k8s", "dangling", &v, &len, &err), 1);

    /* the plain layout, a missing object, an empty object */
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "db", &keys, &err), 0);
    ck_assert_uint_eq(keys.n, 2);
    ck_assert_str_eq(keys.v[0], "empty");
    ck_assert_str_eq(keys.v[1], "password");
    sx_strlist_clear(&keys);
    keys.n = 7;
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "missing", &keys, &err), 1);
    ck_assert_uint_eq(keys.n, 0);
    snprintf(p, sizeof p, "%s/empty-one", f.secrets);
    mkdir_p(p);
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "empty-one", &keys, &err), 0);
    ck_assert_uint_eq(keys.n, 0);
    sx_strlist_clear(&keys);
    ck_assert_str_eq(err.code, "");

    /* many keys come back sorted */
    snprintf(p, sizeof p, "%s/many", f.secrets);
    mkdir_p(p);
    uint32_t seed = 99;
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof p, "%s/many/k%08u", f.secrets, (unsigned)lcg(&seed));
        write_file(p, "v", 1);
    }
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "many", &keys, &err), 0);
    ck_assert_uint_eq(keys.n, 50);
    for (size_t i = 1; i < keys.n; i++)
        ck_assert_int_lt(strcmp(keys.v[i - 1], keys.v[i]), 0);
    sx_strlist_clear(&keys);

    sx_store_free(&s);
    remove_tree(f.root);
}
END_TEST

START_TEST(store_value_limit)
{
    store_fixture f;
    make_store(&f);
    const size_t mib = 1u << 20;
    char *big = malloc(mib + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'v', mib + 1);
    memcpy(big, "TOPSECRET-VALUE", 15);
    char p[1024];
    snprintf(p, sizeof p, "%s/db/exact", f.secrets);
    write_file(p, big, mib);
    snprintf(p, sizeof p, "%s/db/over", f.secrets);
    write_file(p, big, mib + 1);

    sx_local_store s;
    ck_assert_int_eq(sx_store_init(&s, f.secrets, NULL), 0);
    char *v = NULL;
    size_t len = 0;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "exact", &v, &len, &err), 0);
    ck_assert_uint_eq(len, mib);
    ck_assert_mem_eq(v, big, mib);
    ck_assert_int_eq(v[mib], '\0');
    free(v);
    v = (char *)"junk";
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "over", &v, &len, &err), -1);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(err.code, "config_error");
    ck_assert_ptr_nonnull(strstr(err.message, "db"));
    ck_assert_ptr_nonnull(strstr(err.message, "over"));
    ck_assert_ptr_null(strstr(err.message, "TOPSECRET"));
    ck_assert_ptr_null(strstr(err.message, "vvvv"));
    free(big);
    sx_store_free(&s);
    remove_tree(f.root);
}
END_TEST

START_TEST(store_not_configured)
{
    store_fixture f;
    make_store(&f);
    sx_local_store s;
    ck_assert_int_eq(sx_store_init(&s, NULL, f.configmaps), 0);
    char *v = (char *)"junk";
    size_t len;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "password", &v, &len, &err), -1);
    ck_assert_str_eq(err.code, "config_error");
    ck_assert_ptr_nonnull(strstr(err.message, "db"));
    ck_assert_ptr_null(v);
    sx_strlist keys = {0, NULL};
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_SECRET, "db", &keys, &err), -1);
    ck_assert_str_eq(err.code, "config_error");
    /* the other kind still works */
    ck_assert_int_eq(sx_store_keys(&s, SX_STORE_CONFIGMAP, "app.conf", &keys, &err), 0);
    ck_assert_uint_eq(keys.n, 1);
    sx_strlist_clear(&keys);
    sx_store_free(&s);

    ck_assert_int_eq(sx_store_init(&s, f.secrets, NULL), 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_CONFIGMAP, "app.conf", "settings.yaml", &v, &len,
                                   &err), -1);
    ck_assert_str_eq(err.code, "config_error");
    sx_store_free(&s);

    /* a configured directory that does not exist is a configuration error */
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/nowhere", f.root);
    ck_assert_int_eq(sx_store_init(&s, missing, NULL), 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_store_read(&s, SX_STORE_SECRET, "db", "password", &v, &len, &err), -1);
    ck_assert_str_eq(err.code, "config_error");
    sx_store_free(&s);
    remove_tree(f.root);
}
END_TEST

/* ------------------------------------------------------------------ suite */

/* ---------------------------------------------------------------- mask */

typedef struct mask_out {
    char buf[2][4096];
    size_t len[2];
    int calls;
} mask_out;

static void mask_collect(void *user, int stream, const char *data, size_t len)
{
    mask_out *o = user;
    int s = stream == 2 ? 1 : 0;
    ck_assert_uint_lt(o->len[s] + len, sizeof o->buf[s]);
    memcpy(o->buf[s] + o->len[s], data, len);
    o->len[s] += len;
    o->buf[s][o->len[s]] = '\0';
    o->calls++;
}

static char *mask_values[] = {"pa55-W0rd-zz9", "tok-aaa-771", "abc"};
static const sx_strlist mask_list = {3, mask_values};

/* The value split at every position of the text still comes out masked. */
START_TEST(mask_hides_values_across_chunks)
{
    const char *text = "db=pa55-W0rd-zz9 and tok-aaa-771, not abc; pa55-W0rd-zz9!\n";
    const char *want = "db=******** and ********, not abc; ********!\n";
    size_t n = strlen(text);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            mask_out o;
            memset(&o, 0, sizeof o);
            sx_masker m;
            sx_mask_init(&m, &mask_list, mask_collect, &o);
            sx_mask_feed(&m, 1, text, a);
            sx_mask_feed(&m, 1, text + a, b - a);
            sx_mask_feed(&m, 1, text + b, n - b);
            sx_mask_flush(&m);
            sx_mask_free(&m);
            ck_assert_msg(strcmp(o.buf[0], want) == 0, "split %zu/%zu: %s", a, b, o.buf[0]);
        }
    }
}
END_TEST

START_TEST(mask_keeps_streams_apart_and_holds_back_little)
{
    mask_out o;
    memset(&o, 0, sizeof o);
    sx_masker m;
    sx_mask_init(&m, &mask_list, mask_collect, &o);
    sx_mask_feed(&m, 2, "err: tok-aaa-", 13);
    sx_mask_feed(&m, 1, "plain output that is long enough\n", 33);
    /* stdout holds back at most the longest value minus one byte */
    ck_assert_uint_ge(o.len[0], 33 - (strlen("pa55-W0rd-zz9") - 1));
    sx_mask_feed(&m, 2, "771\n", 4);
    sx_mask_flush(&m);
    sx_mask_free(&m);
    ck_assert_str_eq(o.buf[0], "plain output that is long enough\n");
    ck_assert_str_eq(o.buf[1], "err: ********\n");
}
END_TEST

START_TEST(mask_without_values_passes_through)
{
    mask_out o;
    memset(&o, 0, sizeof o);
    sx_masker m;
    sx_mask_init(&m, NULL, mask_collect, &o);
    sx_mask_feed(&m, 1, "abc", 3);
    ck_assert_int_eq(o.calls, 1); /* at once, nothing held back */
    sx_mask_flush(&m);
    sx_mask_free(&m);
    ck_assert_str_eq(o.buf[0], "abc");
}
END_TEST

static Suite *docker_modules_suite(void)
{
    Suite *s = suite_create("docker_modules");

    TCase *tar = tcase_create("tar");
    tcase_set_timeout(tar, 60);
    tcase_add_test(tar, tar_roundtrip_through_system_tar);
    tcase_add_test(tar, tar_header_fields_and_checksum);
    tcase_add_test(tar, tar_long_names_use_prefix);
    tcase_add_test(tar, tar_refuses_bad_names);
    tcase_add_test(tar, tar_archive_ends_with_two_zero_blocks);
    suite_add_tcase(s, tar);

    TCase *demux = tcase_create("demux");
    tcase_set_timeout(demux, 60);
    tcase_add_test(demux, demux_any_split_gives_same_bytes);
    tcase_add_test(demux, demux_zero_length_frames_emit_nothing);
    tcase_add_test(demux, demux_large_frame_is_emitted_incrementally);
    tcase_add_test(demux, demux_malformed_header_passes_through);
    tcase_add_test(demux, demux_incomplete_after_cut);
    suite_add_tcase(s, demux);

    TCase *image = tcase_create("image");
    tcase_add_test(image, image_refs_parse);
    tcase_add_loop_test(image, image_refs_refused, 0, (int)(sizeof bad_refs / sizeof bad_refs[0]));
    tcase_add_test(image, image_ref_limits);
    tcase_add_test(image, registry_auth_header_roundtrip);
    tcase_add_test(image, dockerconfig_username_password);
    tcase_add_test(image, dockerconfig_auth_field);
    tcase_add_test(image, dockerconfig_server_urls_match);
    tcase_add_test(image, dockerconfig_no_entry);
    tcase_add_test(image, dockerconfig_invalid);
    suite_add_tcase(s, image);

    TCase *store = tcase_create("local_store");
    tcase_set_timeout(store, 60);
    tcase_add_test(store, store_reads_keys);
    tcase_add_test(store, store_refuses_invalid_names);
    tcase_add_test(store, store_lists_kubernetes_layout);
    tcase_add_test(store, store_value_limit);
    tcase_add_test(store, store_not_configured);
    suite_add_tcase(s, store);

    TCase *mask = tcase_create("mask");
    tcase_add_test(mask, mask_hides_values_across_chunks);
    tcase_add_test(mask, mask_keeps_streams_apart_and_holds_back_little);
    tcase_add_test(mask, mask_without_values_passes_through);
    suite_add_tcase(s, mask);
    return s;
}

int main(void)
{
    return sx_check_run(docker_modules_suite());
}
