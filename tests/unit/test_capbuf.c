/* test_capbuf.c - bounded head+tail output capture. */
#include <check.h>
#include "sx_check_main.h"
#include <stdlib.h>
#include <string.h>

#include "capbuf.h"
#include "utf8.h"

START_TEST(small_output_kept_whole)
{
    sx_capbuf b;
    sx_capbuf_init(&b, 100);
    sx_capbuf_append(&b, "hello ", 6);
    sx_capbuf_append(&b, "world", 5);
    size_t len;
    char *s = sx_capbuf_contents(&b, &len);
    ck_assert_str_eq(s, "hello world");
    ck_assert_uint_eq(len, 11);
    ck_assert_uint_eq(sx_capbuf_dropped(&b), 0);
    free(s);
    sx_capbuf_free(&b);
}
END_TEST

START_TEST(empty_capture_is_empty_string)
{
    sx_capbuf b;
    sx_capbuf_init(&b, 100);
    size_t len = 99;
    char *s = sx_capbuf_contents(&b, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    free(s);
    sx_capbuf_free(&b);
}
END_TEST

START_TEST(exactly_cap_is_not_truncated)
{
    sx_capbuf b;
    sx_capbuf_init(&b, 10);
    sx_capbuf_append(&b, "0123456789", 10);
    size_t len;
    char *s = sx_capbuf_contents(&b, &len);
    ck_assert_str_eq(s, "0123456789");
    ck_assert_uint_eq(sx_capbuf_dropped(&b), 0);
    free(s);
    sx_capbuf_free(&b);
}
END_TEST

START_TEST(head_and_tail_kept)
{
    sx_capbuf b;
    sx_capbuf_init(&b, 10);
    /* 26 letters in uneven chunks: keep "abcde" and "vwxyz" */
    const char *abc = "abcdefghijklmnopqrstuvwxyz";
    sx_capbuf_append(&b, abc, 3);
    sx_capbuf_append(&b, abc + 3, 7);
    sx_capbuf_append(&b, abc + 10, 1);
    sx_capbuf_append(&b, abc + 11, 15);
    ck_assert_uint_eq(sx_capbuf_dropped(&b), 16);
    size_t len;
    char *s = sx_capbuf_contents(&b, &len);
    ck_assert_str_eq(s, "abcde\n[... 16 bytes dropped ...]\nvwxyz");
    free(s);
    sx_capbuf_free(&b);
}
END_TEST

START_TEST(memory_stays_bounded)
{
    sx_capbuf b;
    sx_capbuf_init(&b, 4096);
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100000; i++) /* 100 MB through a 4 KiB window */
        sx_capbuf_append(&b, chunk, sizeof chunk);
    sx_capbuf_append(&b, "END", 3);
    ck_assert_uint_eq(b.total, 100000003ULL);
    ck_assert_uint_le(b.head_alloc, 2048);
    ck_assert_uint_eq(b.head_len + b.tail_len, 4096);
    size_t len;
    char *s = sx_capbuf_contents(&b, &len);
    ck_assert_int_eq(memcmp(s + len - 3, "END", 3), 0);
    free(s);
    sx_capbuf_free(&b);
}
END_TEST

START_TEST(utf8_sanitised)
{
    char *s = sx_utf8_sanitize("ok\xff\xc3\xa9\0x", 7);
    ck_assert_str_eq(s, "ok\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBDx");
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("capbuf");
    TCase *tc = tcase_create("capture");
    tcase_add_test(tc, small_output_kept_whole);
    tcase_add_test(tc, empty_capture_is_empty_string);
    tcase_add_test(tc, exactly_cap_is_not_truncated);
    tcase_add_test(tc, head_and_tail_kept);
    tcase_add_test(tc, memory_stays_bounded);
    tcase_add_test(tc, utf8_sanitised);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
