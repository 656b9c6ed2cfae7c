/*
 * test_subscriptions.c - plugins' bus subscriptions (host/subscriptions.c):
 * prefix filtering, ordered delivery, drop-oldest when a subscriber falls
 * behind (counted), publishers never waiting, stop delivering what is
 * queued.
 */
#include <check.h>
#include "sx_check_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subscriptions.h"

/* What a subscriber received, and a gate that can hold it in its function. */
typedef struct rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *got[20000];
    size_t n;
    int gate_closed;        /* the function waits while this is set */
    int inside;             /* the function is waiting at the gate */
} rec;

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->got[i]);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
}

static void on_event(void *arg, const char *topic, const char *json)
{
    rec *r = arg;
    char *line = malloc(strlen(topic) + strlen(json) + 2);
    sprintf(line, "%s %s", topic, json);
    pthread_mutex_lock(&r->lock);
    r->got[r->n++] = line;
    while (r->gate_closed) {
        r->inside = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_cond_wait(&r->cond, &r->lock);
    }
    r->inside = 0;
    pthread_mutex_unlock(&r->lock);
}

static void wait_inside(rec *r)
{
    pthread_mutex_lock(&r->lock);
    while (!r->inside)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

static void open_gate(rec *r)
{
    pthread_mutex_lock(&r->lock);
    r->gate_closed = 0;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static double described(struct sx_subs *s, size_t i, const char *key)
{
    cJSON *d = sx_subs_describe(s);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(d, (int)i), key);
    double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(d);
    return x;
}

START_TEST(prefix_and_order)
{
    struct sx_subs *s = sx_subs_create(SX_SUBS_QUEUE_EVENTS, SX_SUBS_QUEUE_BYTES);
    rec all, execs;
    rec_init(&all);
    rec_init(&execs);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_subs_add(s, "p1", "", on_event, &all, &err), 0);
    ck_assert_int_eq(sx_subs_add(s, "p2", "exec.", on_event, &execs, &err), 0);
    char json[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(json, sizeof json, "{\"i\":%d}", i);
        sx_subs_publish(s, i % 3 == 0 ? "host.load" : "exec.output", json);
    }
    sx_subs_stop(s); /* delivers everything queued */
    ck_assert_uint_eq(all.n, 1000);
    ck_assert_uint_eq(execs.n, 666);
    for (int i = 0, j = 0; i < 1000; i++) {
        char want[80];
        snprintf(want, sizeof want, "%s {\"i\":%d}", i % 3 == 0 ? "host.load" : "exec.output", i);
        ck_assert_str_eq(all.got[i], want);
        if (i % 3 != 0)
            ck_assert_str_eq(execs.got[j++], want);
    }
    ck_assert_double_eq(described(s, 0, "delivered"), 1000);
    ck_assert_double_eq(described(s, 1, "delivered"), 666);
    ck_assert_double_eq(described(s, 0, "dropped"), 0);
    ck_assert_int_eq(sx_subs_dropped(s), 0);
    /* stopped: publishing is a no-op, subscribing is refused */
    sx_subs_publish(s, "exec.x", "{}");
    ck_assert_uint_eq(all.n, 1000);
    ck_assert_int_eq(sx_subs_add(s, "p3", "", on_event, &all, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    sx_subs_destroy(s);
    rec_free(&all);
    rec_free(&execs);
}
END_TEST

START_TEST(slow_subscriber_loses_the_oldest_and_publishers_never_wait)
{
    struct sx_subs *s = sx_subs_create(4, SX_SUBS_QUEUE_BYTES);
    rec r;
    rec_init(&r);
    r.gate_closed = 1;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_subs_add(s, "slow", "t", on_event, &r, &err), 0);
    sx_subs_publish(s, "t", "{\"i\":0}");
    wait_inside(&r); /* the subscriber holds event 0 in its function */
    char json[64];
    /* 10000 more while it is stuck: were publishing to wait, this would
     * never return */
    for (int i = 1; i <= 10000; i++) {
        snprintf(json, sizeof json, "{\"i\":%d}", i);
        sx_subs_publish(s, "t", json);
    }
    ck_assert_double_eq(described(s, 0, "queued"), 4);
    ck_assert_double_eq(described(s, 0, "dropped"), 10000 - 4);
    ck_assert_int_eq(sx_subs_dropped(s), 10000 - 4);
    open_gate(&r);
    sx_subs_stop(s);
    /* event 0, then the newest 4, in order */
    ck_assert_uint_eq(r.n, 5);
    ck_assert_str_eq(r.got[0], "t {\"i\":0}");
    ck_assert_str_eq(r.got[1], "t {\"i\":9997}");
    ck_assert_str_eq(r.got[4], "t {\"i\":10000}");
    sx_subs_destroy(s);
    rec_free(&r);
}
END_TEST

START_TEST(byte_bound_drops_too)
{
    /* room for two 40-byte events, not three */
    struct sx_subs *s = sx_subs_create(100, 100);
    rec r;
    rec_init(&r);
    r.gate_closed = 1;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_subs_add(s, "b", "", on_event, &r, &err), 0);
    sx_subs_publish(s, "x", "{}");
    wait_inside(&r);
    const char *big = "{\"pad\":\"012345678901234567890123456\"}"; /* 37 + 1 + 2 = 40 bytes */
    for (int i = 0; i < 5; i++)
        sx_subs_publish(s, "x", big);
    /* one event larger than the whole bound is dropped at once */
    char huge[200];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    sx_subs_publish(s, "x", huge);
    ck_assert_double_eq(described(s, 0, "queued"), 2);
    ck_assert_double_eq(described(s, 0, "dropped"), 3 + 1);
    open_gate(&r);
    sx_subs_stop(s);
    ck_assert_uint_eq(r.n, 3);
    sx_subs_destroy(s);
    rec_free(&r);
}
END_TEST

START_TEST(limits_and_bad_arguments)
{
    struct sx_subs *s = sx_subs_create(8, 1024);
    rec r;
    rec_init(&r);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_subs_add(s, "x", "", NULL, &r, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    for (int i = 0; i < SX_SUBS_MAX; i++)
        ck_assert_int_eq(sx_subs_add(s, "x", "never.", on_event, &r, &err), 0);
    ck_assert_int_eq(sx_subs_add(s, "x", "", on_event, &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "64"));
    sx_subs_publish(s, "other", "{}");
    sx_subs_destroy(s); /* stops and joins all 64 threads */
    ck_assert_uint_eq(r.n, 0);
    rec_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("subscriptions");
    TCase *tc = tcase_create("delivery");
    tcase_add_test(tc, prefix_and_order);
    tcase_add_test(tc, slow_subscriber_loses_the_oldest_and_publishers_never_wait);
    tcase_add_test(tc, byte_bound_drops_too);
    tcase_add_test(tc, limits_and_bad_arguments);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
