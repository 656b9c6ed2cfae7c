/*
 * test_siem_spool.c - audit_siem's on-disk spool (plugins/audit_siem/
 * siem_spool.c): append, peek and ack in order, batch limits, restarts
 * (acknowledged records stay delivered, unacknowledged ones come again, a
 * torn append is cut), segments rolled and deleted, the bound (refused
 * when full, accepted again after delivery), concurrent appenders, and the
 * directory lock.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "siem_spool.h"
#include "sx_check_main.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

static char g_dir[PATH_MAX];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/sx-spool-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void teardown(void)
{
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
#if defined(__SANITIZE_ADDRESS__)
    ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
                  "memory leaked (see the LeakSanitizer report above)");
#endif
}

static sx_spool *open_spool(uint64_t max, uint64_t seg)
{
    sx_spool_limits lim = {max, seg};
    sx_spool *s = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_spool_open(g_dir, &lim, &s, &err) == 0, "open: %s", err.message);
    return s;
}

static void append(sx_spool *s, const char *rec)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_spool_append(s, rec, strlen(rec), &err) == 0, "append: %s", err.message);
}

static void append_n(sx_spool *s, int from, int n)
{
    char rec[64];
    for (int i = from; i < from + n; i++) {
        snprintf(rec, sizeof rec, "{\"n\":%d}", i);
        append(s, rec);
    }
}

/* Peek a batch and check it holds records n = from..from+count-1. */
static void expect_batch(sx_spool *s, size_t max_records, size_t max_bytes, int from,
                         size_t count, sx_spool_batch *b)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_spool_peek(s, max_records, max_bytes, b, &err) == 0, "peek: %s",
                  err.message);
    ck_assert_uint_eq(b->count, count);
    char want[65536] = "";
    size_t off = 0;
    for (size_t i = 0; i < count; i++)
        off += (size_t)snprintf(want + off, sizeof want - off, "{\"n\":%d}\n", from + (int)i);
    ck_assert_uint_eq(b->len, off);
    ck_assert_int_eq(memcmp(b->data, want, off), 0);
}

static void ack(sx_spool *s, sx_spool_batch *b)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_spool_ack(s, b, &err) == 0, "ack: %s", err.message);
    free(b->data);
}

static size_t count_segments(void)
{
    size_t n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

START_TEST(append_peek_ack_in_order)
{
    sx_spool *s = open_spool(1 << 20, 1 << 16);
    append_n(s, 0, 10);
    sx_spool_batch b;
    expect_batch(s, 4, 65536, 0, 4, &b);
    ck_assert_uint_eq(b.first_index, 0);
    /* peeking again without an ack gives the same batch */
    free(b.data);
    expect_batch(s, 4, 65536, 0, 4, &b);
    ack(s, &b);
    expect_batch(s, 4, 65536, 4, 4, &b);
    ack(s, &b);
    expect_batch(s, 4, 65536, 8, 2, &b);
    ack(s, &b);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_spool_peek(s, 4, 65536, &b, &err), 0);
    ck_assert_uint_eq(b.count, 0);
    sx_spool_stats st;
    sx_spool_get_stats(s, &st);
    ck_assert_uint_eq(st.next_index, 10);
    ck_assert_uint_eq(st.acked, 10);
    ck_assert_uint_eq(st.pending, 0);
    sx_spool_close(s);
}
END_TEST

START_TEST(batch_byte_limit)
{
    sx_spool *s = open_spool(1 << 20, 1 << 16);
    append_n(s, 0, 50); /* {"n":NN}\n = 9 bytes each from 10 on */
    sx_spool_batch b;
    expect_batch(s, 100, 39, 0, 4, &b); /* 8+8+8+8 = 32; a fifth would exceed 39 */
    ack(s, &b);
    /* one record larger than max_bytes still goes, alone */
    char big[3000];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[sizeof big - 2] = '"';
    big[sizeof big - 1] = '\0';
    sx_spool_close(s);
    s = open_spool(1 << 20, 1 << 16);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_spool_peek(s, 100, 1 << 20, &b, &err), 0);
    ck_assert_uint_eq(b.count, 46);
    ack(s, &b);
    append(s, big);
    append_n(s, 100, 1);
    ck_assert_int_eq(sx_spool_peek(s, 100, 1024, &b, &err), 0);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_uint_eq(b.len, strlen(big) + 1);
    ack(s, &b);
    expect_batch(s, 100, 1024, 100, 1, &b);
    ack(s, &b);
    sx_spool_close(s);
}
END_TEST

START_TEST(restart_keeps_acks_and_redelivers_the_rest)
{
    sx_spool *s = open_spool(1 << 20, 1 << 16);
    append_n(s, 0, 10);
    sx_spool_batch b;
    expect_batch(s, 3, 65536, 0, 3, &b);
    ack(s, &b);
    expect_batch(s, 3, 65536, 3, 3, &b); /* peeked, not acknowledged: comes again */
    free(b.data);
    sx_spool_close(s);

    s = open_spool(1 << 20, 1 << 16);
    sx_spool_stats st;
    sx_spool_get_stats(s, &st);
    ck_assert_uint_eq(st.acked, 3);
    ck_assert_uint_eq(st.next_index, 10);
    ck_assert_uint_eq(st.pending, 7);
    append_n(s, 10, 2);
    expect_batch(s, 100, 65536, 3, 9, &b);
    ck_assert_uint_eq(b.first_index, 3);
    ack(s, &b);
    sx_spool_close(s);

    s = open_spool(1 << 20, 1 << 16); /* everything delivered: indexes go on */
    sx_spool_get_stats(s, &st);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.next_index, 12);
    append_n(s, 12, 1);
    expect_batch(s, 100, 65536, 12, 1, &b);
    ck_assert_uint_eq(b.first_index, 12);
    ack(s, &b);
    sx_spool_close(s);
}
END_TEST

START_TEST(torn_append_is_cut_at_open)
{
    sx_spool *s = open_spool(1 << 20, 1 << 16);
    append_n(s, 0, 3);
    sx_spool_close(s);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%020d.seg", g_dir, 0);
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "{\"n\":3,\"par", 11), 11);
    close(fd);
    s = open_spool(1 << 20, 1 << 16);
    sx_spool_stats st;
    sx_spool_get_stats(s, &st);
    ck_assert_uint_eq(st.next_index, 3);
    append_n(s, 3, 1);
    sx_spool_batch b;
    expect_batch(s, 100, 65536, 0, 4, &b);
    ack(s, &b);
    sx_spool_close(s);
}
END_TEST

START_TEST(segments_roll_and_delivered_ones_are_deleted)
{
    sx_spool *s = open_spool(1 << 20, 4096);
    append_n(s, 0, 1000); /* about 10 KB */
    ck_assert_uint_ge(count_segments(), 3);
    sx_spool_batch b;
    int next = 0;
    while (next < 1000) {
        sx_error err = {{0}, {0}};
        ck_assert_int_eq(sx_spool_peek(s, 37, 65536, &b, &err), 0);
        ck_assert_uint_gt(b.count, 0);
        ck_assert_uint_eq(b.first_index, (uint64_t)next);
        free(b.data);
        expect_batch(s, 37, 65536, next, b.count, &b);
        next += (int)b.count;
        ack(s, &b);
    }
    ck_assert_uint_eq(count_segments(), 1); /* only the one being written */
    sx_spool_stats st;
    sx_spool_get_stats(s, &st);
    ck_assert_uint_lt(st.bytes, 4096 + 64);
    sx_spool_close(s);
    /* after a restart the indexes continue past the deleted segments */
    s = open_spool(1 << 20, 4096);
    append_n(s, 1000, 1);
    expect_batch(s, 10, 65536, 1000, 1, &b);
    ck_assert_uint_eq(b.first_index, 1000);
    ack(s, &b);
    sx_spool_close(s);
}
END_TEST

START_TEST(full_spool_refuses_then_accepts_after_delivery)
{
    sx_spool *s = open_spool(8192, 4096);
    char rec[100];
    memset(rec, 'a', sizeof rec - 1);
    rec[sizeof rec - 1] = '\0';
    sx_error err = {{0}, {0}};
    int taken = 0;
    while (sx_spool_append(s, rec, strlen(rec), &err) == 0)
        taken++;
    ck_assert_int_ge(taken, 60);
    ck_assert_int_le(taken, 82);
    ck_assert_str_eq(err.code, "audit_unavailable");
    ck_assert_ptr_nonnull(strstr(err.message, "full"));
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(sx_spool_ready(s, 100, &err), -1);
    /* the delivered segment is deleted: room again */
    sx_spool_batch b;
    ck_assert_int_eq(sx_spool_peek(s, 1000, 1 << 20, &b, &err), 0);
    ck_assert_uint_gt(b.count, 0);
    ack(s, &b);
    ck_assert_int_eq(sx_spool_ready(s, 100, &err), 0);
    ck_assert_int_eq(sx_spool_append(s, rec, strlen(rec), &err), 0);
    /* a record that can never fit */
    char *huge = malloc(8192);
    memset(huge, 'h', 8191);
    huge[8191] = '\0';
    ck_assert_int_eq(sx_spool_append(s, huge, strlen(huge), &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "larger than"));
    free(huge);
    ck_assert_int_eq(sx_spool_append(s, "a\nb", 3, &err), -1);
    sx_spool_close(s);
}
END_TEST

typedef struct app_arg {
    sx_spool *s;
    int base;
} app_arg;

static void *appender(void *p)
{
    app_arg *a = p;
    for (int i = 0; i < 400; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "{\"n\":%d}", a->base + i);
        sx_error err = {{0}, {0}};
        if (sx_spool_append(a->s, rec, strlen(rec), &err) != 0) {
            fprintf(stderr, "append: %s\n", err.message);
            return (void *)1;
        }
    }
    return NULL;
}

START_TEST(concurrent_appends_all_delivered_once)
{
    sx_spool *s = open_spool(1 << 22, 4096);
    pthread_t t[4];
    app_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (app_arg){s, i * 10000};
        pthread_create(&t[i], NULL, appender, &a[i]);
    }
    /* deliver while they append */
    static unsigned char seen[4][400];
    memset(seen, 0, sizeof seen);
    int got = 0, last_per_thread[4] = {-1, -1, -1, -1};
    while (got < 1600) {
        if (sx_spool_wait_pending(s, 10000) != 1) {
            sx_spool_stats st;
            sx_spool_get_stats(s, &st);
            ck_abort_msg("nothing pending after %d records: next %" PRIu64 " acked %" PRIu64
                         " failed %d", got, st.next_index, st.acked, st.failed);
        }
        sx_spool_batch b;
        sx_error err = {{0}, {0}};
        ck_assert_int_eq(sx_spool_peek(s, 50, 65536, &b, &err), 0);
        for (char *p = b.data; p < b.data + b.len; p = strchr(p, '\n') + 1) {
            int n = atoi(p + 5);
            int th = n / 10000, i = n % 10000;
            ck_assert_int_lt(th, 4);
            ck_assert_int_eq(seen[th][i], 0);
            ck_assert_int_gt(i, last_per_thread[th]); /* each appender's order kept */
            last_per_thread[th] = i;
            seen[th][i] = 1;
            got++;
        }
        ack(s, &b);
    }
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_ptr_null(rv);
    }
    ck_assert_int_eq(sx_spool_wait_empty(s, 1000), 1);
    sx_spool_close(s);
}
END_TEST

START_TEST(one_process_per_spool)
{
    sx_spool *s = open_spool(1 << 20, 4096);
    sx_spool_limits lim = {1 << 20, 4096};
    sx_spool *t = NULL;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_spool_open(g_dir, &lim, &t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "in use"));
    sx_spool_close(s);
    lim.max_bytes = 4096; /* less than two segments */
    ck_assert_int_eq(sx_spool_open(g_dir, &lim, &t, &err), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("siem_spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, append_peek_ack_in_order);
    tcase_add_test(tc, batch_byte_limit);
    tcase_add_test(tc, restart_keeps_acks_and_redelivers_the_rest);
    tcase_add_test(tc, torn_append_is_cut_at_open);
    tcase_add_test(tc, segments_roll_and_delivered_ones_are_deleted);
    tcase_add_test(tc, full_spool_refuses_then_accepts_after_delivery);
    tcase_add_test(tc, concurrent_appends_all_delivered_once);
    tcase_add_test(tc, one_process_per_spool);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sx_check_run(suite()); }
