/*
 * sx_stream.c - live step output and cancel-on-interrupt (see sx_stream.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "sx_stream.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100
#define GRACE_MS 1500
#define CANCEL_TIMEOUT_MS 10000

volatile sig_atomic_t sx_stream_interrupts;

struct sx_stream {
    sx_stream_cfg cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* set by the main thread under mu */
    int reply_in;
    int64_t deadline_ms;
    long expect[2];             /* bytes of stdout/stderr in the reply, -1 */
    /* owned by the thread until it is joined */
    long got[2];
    int finished;
    int cancel_sent;
};

static void on_signal(int sig)
{
    (void)sig;
    if (sx_stream_interrupts >= 1)
        _exit(130);
    sx_stream_interrupts = sx_stream_interrupts + 1;
}

void sx_stream_install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* ---- the thread --------------------------------------------------------- */

static int is_ours(const sx_stream *st, const cJSON *ev)
{
    const char *id = json_str(ev, "execution_id");
    const char *step = json_str(ev, "step_name");

    return id != NULL && step != NULL &&
           strcmp(id, st->cfg.execution_id) == 0 &&
           strcmp(step, st->cfg.step_name) == 0;
}

static void on_output(sx_stream *st, const cJSON *ev)
{
    const char *stream = json_str(ev, "stream");
    const char *data = json_str(ev, "data");
    int is_err = stream != NULL && strcmp(stream, "stderr") == 0;
    FILE *f = is_err ? stderr : stdout;
    size_t len;

    if (data == NULL)
        return;
    len = strlen(data);
    if (st->cfg.print_output) {
        fwrite(data, 1, len, f);
        fflush(f);
    }
    st->got[is_err] += (long)len;
}

static void on_event(sx_stream *st, const sx_event *ev)
{
    if (ev->json == NULL || !is_ours(st, ev->json))
        return;
    if (strcmp(ev->topic, "exec.output") == 0)
        on_output(st, ev->json);
    else if (strcmp(ev->topic, "exec.finished") == 0 ||
             strcmp(ev->topic, "exec.rejected") == 0)
        st->finished = 1;
}

static void wait_a_little(sx_stream *st)
{
    sx_cerr err;
    sx_event ev;
    struct timespec ts;

    if (st->cfg.events != NULL) {
        int rv = sx_events_next(st->cfg.events, POLL_MS, &ev, &err);

        if (rv == 0) {
            on_event(st, &ev);
            sx_event_clear(&ev);
        } else if (rv < 0) {
            pthread_mutex_lock(&st->mu);
            st->cfg.events = NULL;  /* broken: the reply's copy will do */
            pthread_mutex_unlock(&st->mu);
        }
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += POLL_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&st->mu);
    if (!st->reply_in)
        pthread_cond_timedwait(&st->cv, &st->mu, &ts);
    pthread_mutex_unlock(&st->mu);
}

static const char *error_text(const cJSON *reply)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const char *message = json_str(error, "message");

    return message != NULL ? message : json_str(reply, "status");
}

static void send_cancel(sx_stream *st)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *reply = NULL;
    sx_client *c = NULL;
    sx_cerr err;

    fprintf(stderr, "sxctl: interrupted: cancelling step %s of %s "
                    "(interrupt again to quit at once)\n",
            st->cfg.step_name, st->cfg.execution_id);
    cJSON_AddStringToObject(req, "op", "cancel");
    cJSON_AddStringToObject(req, "execution_id", st->cfg.execution_id);
    cJSON_AddStringToObject(req, "step_name", st->cfg.step_name);
    if (sx_client_open(st->cfg.url, CANCEL_TIMEOUT_MS, &c, &err) != 0 ||
        sx_client_call(c, req, &reply, &err) != 0)
        fprintf(stderr, "sxctl: cancel failed: %s\n", err.message);
    else if (strcmp(json_str(reply, "status"), "ok") != 0)
        fprintf(stderr, "sxctl: cancel refused: %s\n", error_text(reply));
    cJSON_Delete(reply);
    cJSON_Delete(req);
    sx_client_close(c);
    st->cancel_sent = 1;
}

static int all_output_seen(const sx_stream *st)
{
    return st->expect[0] >= 0 && st->expect[1] >= 0 &&
           st->got[0] >= st->expect[0] && st->got[1] >= st->expect[1];
}

static int should_stop(sx_stream *st)
{
    int stop;

    pthread_mutex_lock(&st->mu);
    stop = st->reply_in &&
           (st->cfg.events == NULL || st->finished || all_output_seen(st) ||
            now_ms() >= st->deadline_ms);
    pthread_mutex_unlock(&st->mu);
    return stop;
}

static void *stream_main(void *arg)
{
    sx_stream *st = arg;

    while (!should_stop(st)) {
        wait_a_little(st);
        if (sx_stream_interrupts > 0 && !st->cancel_sent)
            send_cancel(st);
    }
    return NULL;
}

/* ---- the main thread ---------------------------------------------------- */

sx_stream *sx_stream_start(const sx_stream_cfg *cfg)
{
    sx_stream *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->cfg = *cfg;
    st->expect[0] = st->expect[1] = -1;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->thread, NULL, stream_main, st) != 0) {
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        free(st);
        return NULL;
    }
    return st;
}

/* Length of output.<name> when the reply has it complete, else -1. */
static long expected_len(const cJSON *output, const char *name,
                         const char *truncated)
{
    const char *s = json_str(output, name);

    if (s == NULL ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(output, truncated)))
        return -1;
    return (long)strlen(s);
}

/* Print from the reply what the live stream missed. */
static void print_missing(const cJSON *output, const char *name,
                          const char *truncated, long got, FILE *f)
{
    const char *s = json_str(output, name);
    int cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(output,
                                                            truncated));

    if (s == NULL || *s == '\0')
        return;
    if (got == 0) {
        fputs(s, f);
        fflush(f);
        if (cut)
            fprintf(stderr, "sxctl: (%s was truncated by the server)\n",
                    name);
    } else if (!cut && got < (long)strlen(s)) {
        fprintf(stderr, "sxctl: the live output missed %ld of %zu bytes of "
                "%s; use --json for the reply's copy\n",
                (long)strlen(s) - got, strlen(s), name);
    }
}

int sx_stream_finish(sx_stream *st, const cJSON *reply,
                     const sx_stream_cfg *cfg)
{
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(reply, "output");
    long got[2] = {0, 0};
    int cancelled = 0;

    if (st != NULL) {
        pthread_mutex_lock(&st->mu);
        st->reply_in = 1;
        st->deadline_ms = now_ms() + (output != NULL ? GRACE_MS : 0);
        st->expect[0] = expected_len(output, "stdout", "stdout_truncated");
        st->expect[1] = expected_len(output, "stderr", "stderr_truncated");
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
        got[0] = st->got[0];
        got[1] = st->got[1];
        cancelled = st->cancel_sent;
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        free(st);
    }
    if (cfg->print_output && output != NULL) {
        print_missing(output, "stdout", "stdout_truncated", got[0], stdout);
        print_missing(output, "stderr", "stderr_truncated", got[1], stderr);
    }
    return cancelled;
}
