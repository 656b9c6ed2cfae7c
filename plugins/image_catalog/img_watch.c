/*
 * img_watch.c - notice the catalog file changing (see img.h).
 *
 * The host takes SIGHUP itself (host/main.c waits for it with sigwait()
 * and does not forward it to plugins), so the plugin cannot reload on the
 * signal; it watches the file instead, which also covers what SIGHUP is
 * usually for.  inotify watches the file's directory, not the file: editors
 * replace files by rename, and Kubernetes updates a ConfigMap volume by
 * swapping the "..data" symlink in that directory, neither of which an
 * inotify watch on the old file would report.  A stat() every interval is
 * the safety net.  The callback decides whether anything really changed.
 */
#define _GNU_SOURCE
#include "img.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "sx/sx_util.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
                    IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)

struct sx_img_watch {
    char dir[PATH_MAX];
    int64_t interval_ms;        /* 0 = no periodic check */
    int64_t settle_ms;
    sx_img_watch_fn fn;
    void *arg;
    int ino_fd;                 /* -1 when inotify is unavailable */
    int wd;                     /* -1 when the directory is not watched */
    int stop_pipe[2];
    pthread_t thread;
};

static void add_dir_watch(sx_img_watch *w)
{
    if (w->ino_fd >= 0 && w->wd < 0)
        w->wd = inotify_add_watch(w->ino_fd, w->dir, WATCH_MASK);
}

/* Read every pending event; note when the directory watch went away. */
static void drain_events(sx_img_watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->ino_fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_IGNORED)
                w->wd = -1;
            p += sizeof *ev + ev->len;
        }
    }
}

static void *watch_main(void *arg)
{
    sx_img_watch *w = arg;
    double pending_since = -1;  /* first unsettled event, monotonic seconds */
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->stop_pipe[0], .events = POLLIN},
                                {.fd = w->ino_fd, .events = POLLIN}};
        int timeout = pending_since >= 0 ? (int)w->settle_ms
                    : w->interval_ms > 0 ? (int)w->interval_ms : -1;
        int n = poll(fds, w->ino_fd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            break;
        if (n > 0 && (fds[1].revents & POLLIN)) {
            drain_events(w);
            if (pending_since < 0)
                pending_since = sx_now_monotonic();
            /* settle, but never postpone a check past one interval */
            double limit = (w->interval_ms > 0 ? (double)w->interval_ms : 1000.0) / 1000.0;
            if (sx_now_monotonic() - pending_since < limit)
                continue;
        }
        if (n < 0)
            continue;
        pending_since = -1;
        add_dir_watch(w);           /* the directory may have come back */
        w->fn(w->arg);
    }
    return NULL;
}

int sx_img_watch_start(const char *path, int64_t interval_ms, int64_t settle_ms,
                       sx_img_watch_fn fn, void *arg, sx_img_watch **out, sx_error *err)
{
    *out = NULL;
    if (interval_ms < 0 || interval_ms > INT_MAX || settle_ms < 0 || settle_ms > INT_MAX)
        return sx_error_set(err, "invalid_config", "watch intervals out of range");
    sx_img_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    snprintf(w->dir, sizeof w->dir, "%s", path);
    char *slash = strrchr(w->dir, '/');
    if (slash == NULL)
        snprintf(w->dir, sizeof w->dir, ".");
    else if (slash == w->dir)
        w->dir[1] = '\0';
    else
        *slash = '\0';
    w->interval_ms = interval_ms;
    w->settle_ms = settle_ms;
    w->fn = fn;
    w->arg = arg;
    w->wd = -1;
    if (pipe2(w->stop_pipe, O_CLOEXEC) != 0) {
        free(w);
        return sx_error_set(err, "internal_error", "pipe: %s", strerror(errno));
    }
    w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    add_dir_watch(w);
    if (w->ino_fd >= 0 && w->wd < 0 && interval_ms == 0) {
        sx_error_set(err, "invalid_config",
                     "cannot watch directory %s (%s) and reload_interval is 0: the catalog would "
                     "never reload", w->dir, strerror(errno));
        goto fail;
    }
    if (w->ino_fd < 0 && interval_ms == 0) {
        sx_error_set(err, "invalid_config",
                     "inotify is unavailable (%s) and reload_interval is 0: the catalog would "
                     "never reload", strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        sx_error_set(err, "internal_error", "cannot start the catalog watch thread: %s",
                     strerror(rc));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->ino_fd >= 0)
        close(w->ino_fd);
    close(w->stop_pipe[0]);
    close(w->stop_pipe[1]);
    free(w);
    return -1;
}

const char *sx_img_watch_mode(const sx_img_watch *w)
{
    if (w == NULL)
        return "off";
    if (w->ino_fd < 0)
        return "poll";
    return w->interval_ms > 0 ? "inotify+poll" : "inotify";
}

void sx_img_watch_stop(sx_img_watch *w)
{
    if (w == NULL)
        return;
    char c = 'x';
    ssize_t n;
    do
        n = write(w->stop_pipe[1], &c, 1);
    while (n < 0 && errno == EINTR);
    pthread_join(w->thread, NULL);
    if (w->ino_fd >= 0)
        close(w->ino_fd);
    close(w->stop_pipe[0]);
    close(w->stop_pipe[1]);
    free(w);
}
