/* test_executions.c - idempotency, concurrency bound and waiting repeats. */
#define _DEFAULT_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "executions.h"

/* sx_exec needs only its cancel fd here; make a minimal one. */
static sx_exec *fake_exec(void)
{
    sx_exec *e = NULL;
    sx_error err;
    ck_assert_int_eq(sx_exec_create(NULL, "id", "step", NULL, NULL, &e, &err), 0);
    return e;
}

START_TEST(same_pair_never_runs_twice)
{
    struct sx_executions *t = sx_executions_create(4, 100);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    ck_assert_int_eq(sx_executions_begin(t, "run-1", "a", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    sx_executions_finish(t, "run-1", "a", "{\"status\":\"succeeded\"}");
    ck_assert_int_eq(sx_executions_begin(t, "run-1", "a", e, &reply, NULL, NULL), SX_BEGIN_DONE);
    ck_assert_str_eq(reply, "{\"status\":\"succeeded\"}");
    free(reply);
    /* another step of the same execution is a different pair */
    ck_assert_int_eq(sx_executions_begin(t, "run-1", "b", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    sx_executions_abandon(t, "run-1", "b", "{}");
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

START_TEST(busy_above_max_concurrent)
{
    struct sx_executions *t = sx_executions_create(2, 100);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    ck_assert_int_eq(sx_executions_begin(t, "r", "1", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    ck_assert_int_eq(sx_executions_begin(t, "r", "2", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    ck_assert_int_eq(sx_executions_begin(t, "r", "3", e, &reply, NULL, NULL), SX_BEGIN_BUSY);
    ck_assert_uint_eq(sx_executions_running(t), 2);
    sx_executions_finish(t, "r", "1", "{}");
    ck_assert_int_eq(sx_executions_begin(t, "r", "3", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    sx_executions_finish(t, "r", "2", "{}");
    sx_executions_finish(t, "r", "3", "{}");
    sx_executions_close(t);
    ck_assert_int_eq(sx_executions_begin(t, "r", "4", e, &reply, NULL, NULL), SX_BEGIN_CLOSED);
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

struct waiter { struct sx_executions *t; sx_exec *e; int result; char *reply; };

static void *repeat_thread(void *arg)
{
    struct waiter *w = arg;
    w->result = sx_executions_begin(w->t, "r", "s", w->e, &w->reply, NULL, NULL);
    return NULL;
}

START_TEST(repeat_waits_for_run_in_flight)
{
    struct sx_executions *t = sx_executions_create(4, 100);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    ck_assert_int_eq(sx_executions_begin(t, "r", "s", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    struct waiter w = {t, e, 0, NULL};
    pthread_t th;
    pthread_create(&th, NULL, repeat_thread, &w);
    usleep(100 * 1000);
    ck_assert_int_eq(w.result, 0); /* still waiting */
    sx_executions_finish(t, "r", "s", "{\"n\":1}");
    pthread_join(th, NULL);
    ck_assert_int_eq(w.result, SX_BEGIN_DONE);
    ck_assert_str_eq(w.reply, "{\"n\":1}");
    free(w.reply);
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

struct delivery { int calls; char reply[64]; };
static void collect(void *arg, const char *reply)
{
    struct delivery *d = arg;
    d->calls++;
    snprintf(d->reply, sizeof d->reply, "%s", reply);
}

START_TEST(parked_repeats_get_the_reply_once)
{
    struct sx_executions *t = sx_executions_create(4, 100);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    struct delivery d[3] = {{0, ""}, {0, ""}, {0, ""}};
    ck_assert_int_eq(sx_executions_begin(t, "r", "s", e, &reply, collect, &d[0]), SX_BEGIN_NEW);
    ck_assert_int_eq(sx_executions_begin(t, "r", "s", e, &reply, collect, &d[1]), SX_BEGIN_PARKED);
    ck_assert_int_eq(sx_executions_begin(t, "r", "s", e, &reply, collect, &d[2]), SX_BEGIN_PARKED);
    ck_assert_int_eq(d[1].calls, 0); /* nothing before the run ends */
    sx_executions_finish(t, "r", "s", "{\"n\":2}");
    ck_assert_int_eq(d[0].calls, 0); /* the owner gets no callback */
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(d[i].calls, 1);
        ck_assert_str_eq(d[i].reply, "{\"n\":2}");
    }
    /* an abandoned run hands its refusal to those parked on it */
    struct delivery a = {0, ""};
    ck_assert_int_eq(sx_executions_begin(t, "r", "x", e, &reply, collect, &a), SX_BEGIN_NEW);
    ck_assert_int_eq(sx_executions_begin(t, "r", "x", e, &reply, collect, &a), SX_BEGIN_PARKED);
    sx_executions_abandon(t, "r", "x", "{\"refused\":1}");
    ck_assert_int_eq(a.calls, 1);
    ck_assert_str_eq(a.reply, "{\"refused\":1}");
    ck_assert_ptr_null(sx_executions_status(t, "r", "x")); /* forgotten */
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

START_TEST(retention_forgets_oldest)
{
    struct sx_executions *t = sx_executions_create(4, 2);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    const char *steps[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sx_executions_begin(t, "r", steps[i], e, &reply, NULL, NULL), SX_BEGIN_NEW);
        sx_executions_finish(t, "r", steps[i], "{}");
    }
    cJSON *st = sx_executions_status(t, "r", "a");
    ck_assert_ptr_null(st);
    st = sx_executions_status(t, "r", "c");
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(cJSON_GetObjectItem(st, "state")->valuestring, "finished");
    cJSON_Delete(st);
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

START_TEST(cancel_marks_running_exec)
{
    struct sx_executions *t = sx_executions_create(4, 10);
    sx_exec *e = fake_exec();
    char *reply = NULL;
    ck_assert_int_eq(sx_executions_cancel(t, "r", "s"), -1);
    ck_assert_int_eq(sx_executions_begin(t, "r", "s", e, &reply, NULL, NULL), SX_BEGIN_NEW);
    ck_assert_int_eq(sx_exec_cancelled_cb(e), 0);
    ck_assert_int_eq(sx_executions_cancel(t, "r", "s"), 0);
    ck_assert_int_eq(sx_exec_cancelled_cb(e), 1);
    uint64_t v = 0;
    ck_assert_int_eq(read(sx_exec_cancel_fd_cb(e), &v, sizeof v), (ssize_t)sizeof v);
    sx_executions_finish(t, "r", "s", "{}");
    ck_assert_int_eq(sx_executions_cancel(t, "r", "s"), 1);
    sx_exec_destroy(e);
    sx_executions_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("executions");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, same_pair_never_runs_twice);
    tcase_add_test(tc, busy_above_max_concurrent);
    tcase_add_test(tc, repeat_waits_for_run_in_flight);
    tcase_add_test(tc, parked_repeats_get_the_reply_once);
    tcase_add_test(tc, retention_forgets_oldest);
    tcase_add_test(tc, cancel_marks_running_exec);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
