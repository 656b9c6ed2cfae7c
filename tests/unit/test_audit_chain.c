/*
 * test_audit_chain.c - the audit hash chain (plugins/audit_common) and the
 * audit_file plugin that writes it, driven through dlopen with the mock
 * host: the canonical bytes, verification of intact chains, every kind of
 * tampering found at the right place (edited, deleted, inserted,
 * reordered, truncated), rotation and restarts keeping one chain, a torn
 * last record recovered, damaged and foreign files refused, pruning, the
 * content flags, concurrent writers, and a failing disk.
 */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_chain.h"
#include "audit_verify.h"
#include "config.h"
#include "mock_host.h"
#include "sx/sx_sink.h"
#include "sx_check_main.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#ifndef SX_AUDIT_FILE_SO
#error "SX_AUDIT_FILE_SO must name the plugin to test"
#endif

/* ---- the plugin under test ---------------------------------------- */

typedef struct sink {
    void *dl;
    const sx_plugin_descriptor *desc;
    const sx_sink_ops *ops;
    void *state;
    sx_config_node *root;
} sink;

static char g_dir[PATH_MAX];     /* per-test directory */
static char g_log[PATH_MAX + 16]; /* g_dir/audit.log */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/sx-audit-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_log, sizeof g_log, "%s/audit.log", g_dir);
}

static void teardown(void)
{
    if (g_dir[0])
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_dir[0] = '\0';
#if defined(__SANITIZE_ADDRESS__)
    ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
                  "memory leaked (see the LeakSanitizer report above)");
#endif
}

/* Load the plugin on an `audit:` section (extra keys in `audit_yaml`,
 * indented by 4).  Returns 0 or -1 with err. */
static int sink_open(sink *s, const char *audit_yaml, sx_error *err)
{
    memset(s, 0, sizeof *s);
    char yaml[PATH_MAX + 4096];
    snprintf(yaml, sizeof yaml, "script_executor:\n  audit:\n    log_file: \"%s\"\n%s", g_log,
             audit_yaml ? audit_yaml : "");
    ck_assert_msg(sx_cfg_load_string(yaml, "t.yaml", &s->root, err) == 0, "yaml: %s",
                  err->message);
    sx_mock_set_config(sx_cfg_get(s->root, "script_executor"));
    s->dl = dlopen(SX_AUDIT_FILE_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(s->dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry;
    *(void **)&entry = dlsym(s->dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_ptr_nonnull(entry);
    s->desc = entry();
    ck_assert_str_eq(s->desc->provides, "audit.file");
    s->ops = s->desc->ops;
    int rv = s->desc->init(sx_mock_ctx(), sx_mock_host_api(), &s->state, err);
    if (rv != 0) {
        sx_mock_set_config(NULL);
        sx_cfg_free(s->root);
        dlclose(s->dl);
        memset(s, 0, sizeof *s);
    }
    return rv;
}

static void sink_close(sink *s)
{
    if (s->desc == NULL)
        return;
    s->desc->fini(s->state);
    sx_mock_set_config(NULL);
    sx_cfg_free(s->root);
    dlclose(s->dl);
    memset(s, 0, sizeof *s);
}

static void sink_must_open(sink *s, const char *audit_yaml)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sink_open(s, audit_yaml, &err) == 0, "init: %s", err.message);
}

/* One record like the host's, numbered `i`. */
static void write_rec(sink *s, int i)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"time\":\"2026-12-02T10:00:00Z\",\"topic\":\"exec.finished\","
             "\"event\":\"execution_complete\",\"execution_id\":\"run-%d\",\"step_name\":\"s\","
             "\"exit_code\":0,\"status\":\"succeeded\"}", i);
    sx_error err = {{0}, {0}};
    ck_assert_msg(s->ops->write(s->state, "exec.finished", json, &err) == 0, "write %d: %s", i,
                  err.message);
}

static void write_n(const char *audit_yaml, int from, int n)
{
    sink s;
    sink_must_open(&s, audit_yaml);
    for (int i = from; i < from + n; i++)
        write_rec(&s, i);
    sink_close(&s);
}

/* ---- files as lines ------------------------------------------------ */

typedef struct lines {
    char **v;
    size_t n;
    int last_has_newline;
} lines;

static lines read_lines(const char *path)
{
    lines l = {0};
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&buf, &cap, f)) > 0) {
        l.v = realloc(l.v, (l.n + 1) * sizeof *l.v);
        l.last_has_newline = buf[got - 1] == '\n';
        if (l.last_has_newline)
            buf[got - 1] = '\0';
        l.v[l.n++] = strdup(buf);
    }
    free(buf);
    fclose(f);
    return l;
}

static void write_lines(const char *path, const lines *l)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "%s%s", l->v[i], i + 1 < l->n || l->last_has_newline ? "\n" : "");
    fclose(f);
}

static void free_lines(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void remove_line(lines *l, size_t i)
{
    free(l->v[i]);
    memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
    l->n--;
}

static void insert_line(lines *l, size_t i, const char *text)
{
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof *l->v);
    l->v[i] = strdup(text);
    l->n++;
}

/* Verify the given files (NULL-terminated) into *r; returns the verdict. */
static int verify(sx_verify_report *r, ...)
{
    const char *files[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    const char *p;
    while ((p = va_arg(ap, const char *)) != NULL && n < 16)
        files[n++] = p;
    va_end(ap);
    int rv = sx_audit_verify_files(files, n, r);
    if (rv != 0)
        fprintf(stderr, "verify: %s line %" PRIu64 " seq %" PRIu64 ": %s: %s\n", r->file,
                r->line, r->seq, sx_verify_kind_name(r->kind), r->message);
    return rv;
}

static int verify_dir(sx_verify_report *r)
{
    const char *paths[] = {g_dir};
    char **files;
    size_t n;
    char msg[512];
    ck_assert_msg(sx_audit_files_expand(paths, 1, &files, &n, msg, sizeof msg) == 0, "%s", msg);
    int rv = sx_audit_verify_files((const char *const *)files, n, r);
    if (rv != 0)
        fprintf(stderr, "verify dir: %s line %" PRIu64 ": %s: %s\n", r->file, r->line,
                sx_verify_kind_name(r->kind), r->message);
    sx_audit_files_free(files, n);
    return rv;
}

static void assert_broken(const sx_verify_report *r, sx_verify_kind kind, const char *file,
                          uint64_t line, uint64_t seq)
{
    ck_assert_str_eq(sx_verify_kind_name(r->kind), sx_verify_kind_name(kind));
    ck_assert_str_eq(r->file, file);
    ck_assert_uint_eq(r->line, line);
    ck_assert_uint_eq(r->seq, seq);
}

/* Rotated files of g_log: audit.log.<12 digits>. */
static size_t count_rotated(void)
{
    size_t n = 0;
    DIR *d = opendir(g_dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "audit.log.", 10) == 0 && strlen(de->d_name) == 22;
    closedir(d);
    return n;
}

/* ---- the line format ---------------------------------------------- */

START_TEST(canonical_bytes_are_the_line_before_the_hash)
{
    sx_chain_head h;
    sx_chain_head_genesis(&h);
    size_t len;
    char *line = sx_chain_line(&h, "{\"topic\":\"t\",\"n\":1}", &len);
    ck_assert_ptr_nonnull(line);
    ck_assert_uint_eq(len, strlen(line));
    ck_assert_int_eq(line[len - 1], '\n');
    const char *want_prefix =
        "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"topic\":\"t\",\"n\":1";
    ck_assert_int_eq(strncmp(line, want_prefix, strlen(want_prefix)), 0);
    /* the hash is SHA-256 of exactly those bytes, computed independently */
    unsigned char md[32];
    unsigned int mdn = 0;
    EVP_Digest(want_prefix, strlen(want_prefix), md, &mdn, EVP_sha256(), NULL);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char want_suffix[100];
    snprintf(want_suffix, sizeof want_suffix, ",\"hash\":\"%s\"}\n", hex);
    ck_assert_str_eq(line + strlen(want_prefix), want_suffix);
    ck_assert_str_eq(h.hash, hex);
    ck_assert_uint_eq(h.seq, 1);
    /* valid JSON, parses back */
    cJSON *o = cJSON_Parse(line);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq((int)cJSON_GetObjectItem(o, "seq")->valuedouble, 1);
    cJSON_Delete(o);
    sx_chain_entry e;
    ck_assert_int_eq(sx_chain_parse(line, len - 1, &e), 0);
    ck_assert(e.hash_ok);
    ck_assert_uint_eq(e.seq, 1);
    /* the next one links to it */
    char *line2 = sx_chain_line(&h, "{}", &len);
    ck_assert_int_eq(sx_chain_parse(line2, len - 1, &e), 0);
    ck_assert(e.hash_ok);
    ck_assert_uint_eq(e.seq, 2);
    ck_assert_str_eq(e.prev, hex);
    /* one flipped byte breaks it */
    line2[20] ^= 1;
    if (sx_chain_parse(line2, len - 1, &e) == 0)
        ck_assert(!e.hash_ok);
    ck_assert_ptr_null(sx_chain_line(&h, "not an object", &len));
    free(line);
    free(line2);
}
END_TEST

/* ---- verification of what the plugin wrote ------------------------ */

START_TEST(intact_chain_verifies)
{
    write_n(NULL, 1, 20);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 0);
    ck_assert_uint_eq(r.records, 20);
    ck_assert_uint_eq(r.first_seq, 1);
    ck_assert_uint_eq(r.last_seq, 20);
    ck_assert_uint_eq(r.recoveries, 0);
}
END_TEST

START_TEST(edited_record_detected)
{
    write_n(NULL, 1, 10);
    lines l = read_lines(g_log);
    char *p = strstr(l.v[4], "\"exit_code\":0");
    ck_assert_ptr_nonnull(p);
    p[12] = '7'; /* line 5 (seq 5): exit code 0 -> 7 */
    write_lines(g_log, &l);
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_EDITED, g_log, 5, 5);
}
END_TEST

START_TEST(edited_and_rehashed_record_detected)
{
    write_n(NULL, 1, 10);
    lines l = read_lines(g_log);
    /* rebuild line 4 with other content but the same seq and prev, rehashed */
    sx_chain_entry e;
    ck_assert_int_eq(sx_chain_parse(l.v[3], strlen(l.v[3]), &e), 0);
    sx_chain_head h = {.seq = e.seq - 1};
    memcpy(h.hash, e.prev, sizeof h.hash);
    size_t len;
    char *forged = sx_chain_line(&h, "{\"topic\":\"exec.finished\",\"exit_code\":0}", &len);
    forged[len - 1] = '\0';
    free(l.v[3]);
    l.v[3] = forged;
    write_lines(g_log, &l);
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    /* its own hash holds: the next record no longer links to it */
    assert_broken(&r, SX_VERIFY_EDITED, g_log, 5, 5);
    ck_assert_ptr_nonnull(strstr(r.message, "re-hashed"));
}
END_TEST

START_TEST(deleted_record_detected)
{
    write_n(NULL, 1, 10);
    lines l = read_lines(g_log);
    remove_line(&l, 5); /* seq 6 */
    write_lines(g_log, &l);
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_DELETED, g_log, 6, 7);
    ck_assert_ptr_nonnull(strstr(r.message, "seq 6..6 are missing"));
}
END_TEST

START_TEST(deleted_first_records_detected)
{
    write_n(NULL, 1, 10);
    lines l = read_lines(g_log);
    remove_line(&l, 0);
    remove_line(&l, 0);
    write_lines(g_log, &l);
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_DELETED, g_log, 1, 3);
}
END_TEST

START_TEST(inserted_records_detected)
{
    write_n(NULL, 1, 10);
    lines orig = read_lines(g_log);
    sx_verify_report r;

    /* a line that is not a record at all, after line 3 */
    lines l = read_lines(g_log);
    insert_line(&l, 3, "{\"topic\":\"exec.finished\",\"execution_id\":\"forged\"}");
    write_lines(g_log, &l);
    free_lines(&l);
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_INSERTED, g_log, 4, 0);

    /* a copy of an earlier record, after line 6 */
    l = read_lines(g_log);
    remove_line(&l, 3);
    insert_line(&l, 6, orig.v[2]);
    write_lines(g_log, &l);
    free_lines(&l);
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_INSERTED, g_log, 7, 3);

    /* a forged record that links to its predecessor and has the next seq */
    l = read_lines(g_log);
    remove_line(&l, 6);
    sx_chain_entry e;
    ck_assert_int_eq(sx_chain_parse(l.v[4], strlen(l.v[4]), &e), 0); /* seq 5 */
    sx_chain_head h = {.seq = e.seq};
    memcpy(h.hash, e.hash, sizeof h.hash);
    size_t len;
    char *forged = sx_chain_line(&h, "{\"topic\":\"exec.finished\",\"execution_id\":\"x\"}", &len);
    forged[len - 1] = '\0';
    insert_line(&l, 5, forged);
    free(forged);
    write_lines(g_log, &l);
    free_lines(&l);
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_INSERTED, g_log, 6, 6);
    free_lines(&orig);
}
END_TEST

START_TEST(reordered_records_detected)
{
    write_n(NULL, 1, 10);
    lines orig = read_lines(g_log);
    sx_verify_report r;

    /* two neighbours swapped: seq 5 before seq 4 */
    lines l = read_lines(g_log);
    char *t = l.v[3];
    l.v[3] = l.v[4];
    l.v[4] = t;
    write_lines(g_log, &l);
    free_lines(&l);
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_REORDERED, g_log, 4, 5);

    /* one record moved three places later: seq 1 3 4 5 2 6 ... */
    write_lines(g_log, &orig);
    l = read_lines(g_log);
    t = l.v[1];
    memmove(l.v + 1, l.v + 2, 3 * sizeof *l.v);
    l.v[4] = t;
    write_lines(g_log, &l);
    free_lines(&l);
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_REORDERED, g_log, 2, 3);

    /* the original verifies again */
    write_lines(g_log, &orig);
    ck_assert_int_eq(verify(&r, g_log, NULL), 0);
    free_lines(&orig);
}
END_TEST

START_TEST(truncated_tail_detected)
{
    write_n(NULL, 1, 10);
    struct stat st;
    ck_assert_int_eq(stat(g_log, &st), 0);
    ck_assert_int_eq(truncate(g_log, st.st_size - 30), 0); /* cut inside the last record */
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1);
    assert_broken(&r, SX_VERIFY_TRUNCATED, g_log, 10, 0);
}
END_TEST

/* ---- rotation, restarts, recovery --------------------------------- */

START_TEST(rotation_keeps_one_chain)
{
    write_n("    rotate_size: 4Ki\n    rotate_keep: 0\n", 1, 200);
    size_t rotated = count_rotated();
    ck_assert_uint_ge(rotated, 5);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0);
    /* 200 records and one audit.rotated record per rotated file */
    ck_assert_uint_eq(r.records, 200 + rotated);
    ck_assert_uint_eq(r.first_seq, 1);
    ck_assert_uint_eq(r.last_seq, 200 + rotated);
    /* every rotated file ends with its rotation record, named after its first seq */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s.%012d", g_log, 1);
    lines l = read_lines(path);
    ck_assert_ptr_nonnull(strstr(l.v[l.n - 1], "\"topic\":\"audit.rotated\""));
    free_lines(&l);

    /* cut the tail of the first rotated file: found at its end */
    l = read_lines(path);
    size_t n = l.n;
    remove_line(&l, n - 1);
    remove_line(&l, n - 2);
    write_lines(path, &l);
    free_lines(&l);
    ck_assert_int_eq(verify_dir(&r), 1);
    assert_broken(&r, SX_VERIFY_TRUNCATED, path, n - 2, n - 2);
}
END_TEST

START_TEST(restart_continues_the_chain)
{
    write_n(NULL, 1, 5);
    write_n(NULL, 6, 5);
    write_n("    rotate_size: 2Ki\n", 11, 30); /* rotates, then a restart after a rotation */
    write_n("    rotate_size: 2Ki\n", 41, 5);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0);
    ck_assert_uint_eq(r.first_seq, 1);
    ck_assert_uint_eq(r.records, 45 + count_rotated());
}
END_TEST

START_TEST(restart_after_rotation_with_empty_current_file)
{
    write_n("    rotate_size: 1\n", 1, 3); /* every record rotates: current ends empty */
    struct stat st;
    ck_assert_int_eq(stat(g_log, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_int_eq(unlink(g_log), 0); /* a crash between rename and create */
    write_n(NULL, 4, 2);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0);
    ck_assert_uint_eq(r.records, 3 + 3 + 2);
}
END_TEST

START_TEST(torn_last_record_recovered)
{
    write_n(NULL, 1, 5);
    int fd = open(g_log, O_WRONLY | O_APPEND);
    const char torn[] = "{\"seq\":6,\"prev\":\"abc";
    ck_assert_int_eq(write(fd, torn, sizeof torn - 1), (ssize_t)(sizeof torn - 1));
    close(fd);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 1); /* as it is: cut */
    ck_assert_int_eq(r.kind, SX_VERIFY_TRUNCATED);
    write_n(NULL, 6, 2); /* the restart removes it and says so */
    ck_assert_int_eq(verify(&r, g_log, NULL), 0);
    ck_assert_uint_eq(r.records, 5 + 1 + 2);
    ck_assert_uint_eq(r.recoveries, 1);
    lines l = read_lines(g_log);
    ck_assert_ptr_nonnull(strstr(l.v[5], "\"topic\":\"audit.recovered\""));
    char want[64];
    snprintf(want, sizeof want, "\"torn_bytes\":%zu", sizeof torn - 1);
    ck_assert_ptr_nonnull(strstr(l.v[5], want));
    free_lines(&l);
    ck_assert_int_eq(sx_mock_log_warn_count() > 0, 1);
}
END_TEST

START_TEST(rotation_never_overwrites_a_file)
{
    write_n(NULL, 1, 2);
    /* a file already has the name the current one would rotate to */
    char taken[PATH_MAX + 32];
    snprintf(taken, sizeof taken, "%s.%012d", g_log, 1);
    FILE *f = fopen(taken, "w");
    fputs("precious\n", f);
    fclose(f);
    sink s;
    sink_must_open(&s, "    rotate_size: 1\n");
    write_rec(&s, 3); /* durable; its rotation cannot rename onto the existing name */
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->ready(s.state, &err), -1);
    ck_assert_int_eq(s.ops->write(s.state, "t", "{\"topic\":\"t\"}", &err), -1);
    ck_assert_str_eq(err.code, "audit_unavailable");
    sink_close(&s);
    lines l = read_lines(taken);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0], "precious");
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 0); /* records 1-3 and the rotation record */
    ck_assert_uint_eq(r.records, 4);
}
END_TEST

START_TEST(damaged_last_record_refused)
{
    write_n(NULL, 1, 5);
    lines l = read_lines(g_log);
    char *p = strstr(l.v[4], "run-5");
    p[4] = '9';
    write_lines(g_log, &l);
    free_lines(&l);
    sink s;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sink_open(&s, NULL, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "does not match its hash"));
}
END_TEST

START_TEST(unchained_file_moved_aside)
{
    const char *old = "{\"time\":\"2026-01-01T00:00:00Z\",\"topic\":\"exec.accepted\"}\n";
    FILE *f = fopen(g_log, "w");
    fputs(old, f);
    fclose(f);
    write_n(NULL, 1, 2);
    /* the old file is kept, byte for byte, beside the new chain */
    DIR *d = opendir(g_dir);
    struct dirent *de;
    char moved[PATH_MAX + 300] = "";
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "audit.log.unchained-", 20) == 0)
            snprintf(moved, sizeof moved, "%s/%s", g_dir, de->d_name);
    closedir(d);
    ck_assert_msg(moved[0], "the unchained file was not moved aside");
    char *text = NULL;
    size_t cap = 0;
    f = fopen(moved, "r");
    ck_assert_int_gt(getdelim(&text, &cap, '\0', f), 0);
    fclose(f);
    ck_assert_str_eq(text, old);
    free(text);
    lines l = read_lines(g_log);
    ck_assert_ptr_nonnull(strstr(l.v[0], "\"seq\":1,"));
    ck_assert_ptr_nonnull(strstr(l.v[0], "\"moved_unchained_file\":\"audit.log.unchained-"));
    free_lines(&l);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0); /* the moved file is not part of the chain */
    ck_assert_uint_eq(r.records, 3);
    ck_assert_uint_eq(r.recoveries, 1);
}
END_TEST

START_TEST(chained_file_with_a_foreign_head_refused)
{
    write_n(NULL, 1, 3);
    lines l = read_lines(g_log);
    insert_line(&l, 0, "{\"topic\":\"exec.accepted\"}");
    write_lines(g_log, &l);
    free_lines(&l);
    sink s;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sink_open(&s, NULL, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "does not begin with a hash-chained record"));
}
END_TEST

START_TEST(rotate_keep_prunes_and_chain_still_verifies)
{
    write_n("    rotate_size: 2Ki\n    rotate_keep: 2\n", 1, 100);
    ck_assert_uint_eq(count_rotated(), 2);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0);
    ck_assert_uint_gt(r.first_seq, 1); /* the oldest were pruned, as the config says */
    /* but deleting the oldest remaining file is found */
    const char *paths[] = {g_dir};
    char **files;
    size_t n;
    char msg[256];
    ck_assert_int_eq(sx_audit_files_expand(paths, 1, &files, &n, msg, sizeof msg), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(unlink(files[0]), 0);
    sx_audit_files_free(files, n);
    ck_assert_int_eq(verify_dir(&r), 1);
    ck_assert_int_eq(r.kind, SX_VERIFY_DELETED);
}
END_TEST

START_TEST(directory_expansion_picks_the_chain_in_order)
{
    write_n("    rotate_size: 2Ki\n", 1, 40);
    char other[PATH_MAX + 16];
    snprintf(other, sizeof other, "%s/host.log", g_dir);
    FILE *f = fopen(other, "w");
    fputs("{\"level\":\"info\"}\n", f);
    fclose(f);
    const char *paths[] = {g_dir};
    char **files;
    size_t n;
    char msg[256];
    ck_assert_int_eq(sx_audit_files_expand(paths, 1, &files, &n, msg, sizeof msg), 0);
    ck_assert_uint_eq(n, count_rotated() + 1);
    ck_assert_str_eq(files[n - 1], g_log); /* the current file last */
    for (size_t i = 0; i + 2 < n; i++) /* rotated ones: .000000000001 < .0000000000NN */
        ck_assert_int_lt(strcmp(files[i], files[i + 1]), 0);
    sx_audit_files_free(files, n);
    /* files given out of order: reported */
    char first[PATH_MAX + 32];
    snprintf(first, sizeof first, "%s.%012d", g_log, 1);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, first, NULL), 1);
    ck_assert(r.kind == SX_VERIFY_REORDERED || r.kind == SX_VERIFY_DELETED);
}
END_TEST

/* ---- content flags ------------------------------------------------ */

static cJSON *last_record(void)
{
    lines l = read_lines(g_log);
    cJSON *o = cJSON_Parse(l.v[l.n - 1]);
    free_lines(&l);
    ck_assert_ptr_nonnull(o);
    return o;
}

static const char *flag_record =
    "{\"topic\":\"exec.started\",\"script\":\"echo hi\",\"stdout\":\"out\",\"stderr\":\"err\","
    "\"env\":{\"API_KEY\":\"hunter2\",\"REGION\":\"eu\"},\"seq\":99,\"hash\":\"x\"}";

START_TEST(content_flags_default)
{
    sink s;
    sink_must_open(&s, NULL);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->write(s.state, "exec.started", flag_record, &err), 0);
    sink_close(&s);
    cJSON *o = last_record();
    ck_assert_str_eq(cJSON_GetObjectItem(o, "script")->valuestring, "echo hi");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "stdout")->valuestring, "out");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "env"));
    cJSON *names = cJSON_GetObjectItem(o, "env_names");
    ck_assert_int_eq(cJSON_GetArraySize(names), 2);
    ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring, "API_KEY");
    ck_assert_int_eq((int)cJSON_GetObjectItem(o, "seq")->valuedouble, 1); /* the chain's, not 99 */
    cJSON_Delete(o);
    char *text = NULL;
    FILE *f = fopen(g_log, "r");
    size_t cap = 0;
    ck_assert_int_gt(getdelim(&text, &cap, '\0', f), 0);
    fclose(f);
    ck_assert_ptr_null(strstr(text, "hunter2")); /* env values: names only by default */
    free(text);
}
END_TEST

START_TEST(content_flags_off_and_environment_on)
{
    sink s;
    sink_must_open(&s, "    log_script_content: false\n    log_script_output: false\n"
                       "    log_environment: true\n");
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->write(s.state, "exec.started", flag_record, &err), 0);
    sink_close(&s);
    cJSON *o = last_record();
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "script"));
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "stdout"));
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "stderr"));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "env"), "REGION")->valuestring,
                     "eu");
    cJSON_Delete(o);
    sx_verify_report r;
    ck_assert_int_eq(verify(&r, g_log, NULL), 0);
}
END_TEST

/* ---- concurrency and failures ------------------------------------- */

typedef struct writer_arg {
    sink *s;
    int base;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    for (int i = 0; i < 150; i++)
        write_rec(w->s, w->base + i);
    return NULL;
}

START_TEST(concurrent_writers_one_chain)
{
    sink s;
    sink_must_open(&s, "    rotate_size: 16Ki\n    rotate_keep: 0\n");
    pthread_t t[6];
    writer_arg w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (writer_arg){&s, i * 1000};
        pthread_create(&t[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->ready(s.state, &err), 0);
    sink_close(&s);
    sx_verify_report r;
    ck_assert_int_eq(verify_dir(&r), 0);
    ck_assert_uint_ge(count_rotated(), 2);
    ck_assert_uint_eq(r.records, 900 + count_rotated());
}
END_TEST

START_TEST(failed_disk_refuses_every_later_record)
{
    snprintf(g_log, sizeof g_log, "/dev/full");
    sink s;
    sink_must_open(&s, NULL);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(s.ops->write(s.state, "exec.accepted", "{\"topic\":\"exec.accepted\"}", &err),
                     -1);
    ck_assert_str_eq(err.code, "audit_unavailable");
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(s.ops->ready(s.state, &err), -1);
    ck_assert_str_eq(err.code, "audit_unavailable");
    ck_assert_int_eq(s.ops->write(s.state, "exec.accepted", "{}", &err), -1);
    ck_assert_int_eq(s.ops->write(s.state, "exec.accepted", "[1]", &err), -1);
    sink_close(&s);
}
END_TEST

START_TEST(siem_enabled_without_the_siem_plugin_refused)
{
    sink s;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sink_open(&s, "    siem:\n      enabled: true\n      endpoint: http://x\n",
                               &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "audit_siem"));
    ck_assert_int_eq(sink_open(&s, "    rotate_keep: -1\n", &err), -1);
    ck_assert_int_eq(sink_open(&s, "    no_such_key: 1\n", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "no_such_key"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("audit_chain");
    TCase *fmt = tcase_create("format");
    tcase_add_test(fmt, canonical_bytes_are_the_line_before_the_hash);
    suite_add_tcase(s, fmt);

    TCase *tamper = tcase_create("tampering");
    tcase_add_checked_fixture(tamper, setup, teardown);
    tcase_add_test(tamper, intact_chain_verifies);
    tcase_add_test(tamper, edited_record_detected);
    tcase_add_test(tamper, edited_and_rehashed_record_detected);
    tcase_add_test(tamper, deleted_record_detected);
    tcase_add_test(tamper, deleted_first_records_detected);
    tcase_add_test(tamper, inserted_records_detected);
    tcase_add_test(tamper, reordered_records_detected);
    tcase_add_test(tamper, truncated_tail_detected);
    suite_add_tcase(s, tamper);

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_set_timeout(files, 60);
    tcase_add_test(files, rotation_keeps_one_chain);
    tcase_add_test(files, restart_continues_the_chain);
    tcase_add_test(files, restart_after_rotation_with_empty_current_file);
    tcase_add_test(files, torn_last_record_recovered);
    tcase_add_test(files, rotation_never_overwrites_a_file);
    tcase_add_test(files, damaged_last_record_refused);
    tcase_add_test(files, unchained_file_moved_aside);
    tcase_add_test(files, chained_file_with_a_foreign_head_refused);
    tcase_add_test(files, rotate_keep_prunes_and_chain_still_verifies);
    tcase_add_test(files, directory_expansion_picks_the_chain_in_order);
    suite_add_tcase(s, files);

    TCase *content = tcase_create("content");
    tcase_add_checked_fixture(content, setup, teardown);
    tcase_add_test(content, content_flags_default);
    tcase_add_test(content, content_flags_off_and_environment_on);
    suite_add_tcase(s, content);

    TCase *conc = tcase_create("concurrency");
    tcase_add_checked_fixture(conc, setup, teardown);
    tcase_set_timeout(conc, 120);
    tcase_add_test(conc, concurrent_writers_one_chain);
    tcase_add_test(conc, failed_disk_refuses_every_later_record);
    tcase_add_test(conc, siem_enabled_without_the_siem_plugin_refused);
    suite_add_tcase(s, conc);
    return s;
}

int main(void) { return sx_check_run(suite()); }
