/*
 * native_run.c - run(): one script, start to end, on the calling thread.
 *
 *   host thread (this file)                sx-native-supervisor
 *   -----------------------                (supervisor.c)
 *   prepare argv/envp, pipes               --------------------
 *   exec_started() == 0 ?
 *   posix_spawn (spawn.c): script and ---> read the plan, subreaper,
 *     plan memfds, fds 0-7                 fork the script child
 *   poll(): stdout, stderr -> exec_output   wait for the script / a stop
 *           stdin <- stdin_data             kill + reap the whole tree
 *           cancel fd, timeout -> stop ---> (stop pipe)
 *           report <--------------------- exit status + rusage
 *   drain output to EOF, waitpid(supervisor), fill the result
 *
 * Memory stays bounded whatever the script writes: output goes through one
 * fixed buffer straight to host->exec_output (the host caps it).
 */
#define _GNU_SOURCE
#include "native.h"
#include "supervisor.h"

#include "sx/sx_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK (64 * 1024)
/* After a stop request, how long the supervisor gets to report before it
 * is killed itself. */
#define STOP_GRACE_MS 10000
/* After the report, how long we wait for EOF on stdout/stderr (a process
 * outside the tree could have been handed the pipe over a socket). */
#define DRAIN_GRACE_MS 2000

enum { REASON_NONE = 0, REASON_TIMEOUT, REASON_CANCEL };

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* All the descriptors of one run.  -1 = closed. */
typedef struct run_fds {
    int in_r, in_w;             /* in_w = -1 when stdin is /dev/null */
    int out_r, out_w;
    int err_r, err_w;
    int cerr_r, cerr_w;         /* exec-failure pipe */
    int rep_r, rep_w;           /* supervisor report */
    int ctl_r, ctl_w;           /* stop requests */
} run_fds;

static void fds_close_all(run_fds *f)
{
    int *all[] = {&f->in_r, &f->in_w, &f->out_r, &f->out_w,
                  &f->err_r, &f->err_w, &f->cerr_r, &f->cerr_w, &f->rep_r,
                  &f->rep_w, &f->ctl_r, &f->ctl_w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        close_fd(all[i]);
}

static int make_pipe(int *r, int *w, sx_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return sx_error_set(err, "backend_error", "pipe: %s", strerror(errno));
    *r = p[0];
    *w = p[1];
    return 0;
}

static int fds_open(run_fds *f, const sx_exec_spec *spec, sx_error *err)
{
    if (spec->stdin_data != NULL) {
        if (make_pipe(&f->in_r, &f->in_w, err) != 0)
            return -1;
    } else if ((f->in_r = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        return sx_error_set(err, "backend_error", "/dev/null: %s",
                            strerror(errno));
    }
    if (make_pipe(&f->out_r, &f->out_w, err) != 0 ||
        make_pipe(&f->err_r, &f->err_w, err) != 0 ||
        make_pipe(&f->cerr_r, &f->cerr_w, err) != 0 ||
        make_pipe(&f->rep_r, &f->rep_w, err) != 0 ||
        make_pipe(&f->ctl_r, &f->ctl_w, err) != 0)
        return -1;
    int ours[] = {f->in_w, f->out_r, f->err_r, f->cerr_r, f->rep_r, f->ctl_w};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (ours[i] >= 0 && set_nonblock(ours[i]) != 0)
            return sx_error_set(err, "backend_error", "fcntl: %s",
                                strerror(errno));
    return 0;
}

/* What the I/O loop learned. */
typedef struct run_io {
    int reason;                 /* REASON_* of our stop request */
    int got_report;
    int bad_report;             /* a whole report, but not ours */
    sx_sup_report report;
    size_t report_len;
    int got_child_error;
    sx_sup_child_error child_error;
    size_t child_error_len;
    int got_epipe;
    int supervisor_killed;      /* it did not report in time */
    int poll_errno;             /* poll() failed: the run was stopped */
    int output_abandoned;       /* stdout/stderr did not reach EOF in time */
} run_io;

static void request_stop(run_fds *f, run_io *io, int reason, int64_t *stop_at)
{
    if (io->reason != REASON_NONE)
        return;
    io->reason = reason;
    *stop_at = mono_ms();
    if (f->ctl_w >= 0) {
        ssize_t n;
        do
            n = write(f->ctl_w, "x", 1);
        while (n < 0 && errno == EINTR);
        /* Closing is a stop request too (EOF), and covers a full pipe. */
        close_fd(&f->ctl_w);
    }
}

/* Read a fixed-size message from a non-blocking pipe.  Returns 1 on
 * progress, 0 on EOF, -1 when nothing was there. */
static int read_msg(int fd, void *msg, size_t size, size_t *have)
{
    for (;;) {
        ssize_t n = read(fd, (char *)msg + *have, size - *have);
        if (n > 0) {
            *have += (size_t)n;
            if (*have == size)
                return 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return 0;
        return *have > 0 ? 1 : -1;
    }
}

/* Forward what is readable on an output pipe.  Returns 0 at EOF/error
 * (caller closes), 1 otherwise. */
static int pump_output(const sx_host_api *h, sx_exec *exec, int fd,
                       sx_stream stream, char *buf)
{
    /* Bounded per wake-up so that one chatty stream cannot starve the
     * other one, stdin or the timeout. */
    for (int round = 0; round < 16; round++) {
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n > 0) {
            h->exec_output(exec, stream, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        return 0;
    }
    return 1;
}

static void io_loop(const sx_native_instance *inst, const sx_exec_spec *spec,
                    sx_exec *exec, run_fds *f, pid_t sup, char *buf, run_io *io)
{
    const sx_host_api *h = inst->plugin->host;
    int cancel_fd = h->exec_cancel_fd ? h->exec_cancel_fd(exec) : -1;
    int64_t start = mono_ms();
    int64_t deadline = spec->timeout_ms > 0 && spec->timeout_ms < INT64_MAX - start
                           ? start + spec->timeout_ms
                           : -1;
    int64_t stop_at = 0, report_at = 0;
    const char *in_data = spec->stdin_data;
    size_t in_left = spec->stdin_data ? spec->stdin_len : 0;
    if (f->in_w >= 0 && in_left == 0)
        close_fd(&f->in_w);

    if (h->exec_cancelled && h->exec_cancelled(exec))
        request_stop(f, io, REASON_CANCEL, &stop_at);

    while (f->out_r >= 0 || f->err_r >= 0 || f->rep_r >= 0 || f->cerr_r >= 0) {
        struct pollfd pf[6];
        int idx_out = -1, idx_err = -1, idx_rep = -1, idx_cerr = -1,
            idx_in = -1, idx_cancel = -1;
        nfds_t n = 0;
#define ADD(desc, ev, idx)                                                   \
    do {                                                                     \
        if ((desc) >= 0) {                                                   \
            pf[n].fd = (desc);                                               \
            pf[n].events = (ev);                                             \
            pf[n].revents = 0;                                               \
            idx = (int)n++;                                                  \
        }                                                                    \
    } while (0)
        ADD(f->out_r, POLLIN, idx_out);
        ADD(f->err_r, POLLIN, idx_err);
        ADD(f->rep_r, POLLIN, idx_rep);
        ADD(f->cerr_r, POLLIN, idx_cerr);
        ADD(f->in_w, POLLOUT, idx_in);
        if (io->reason == REASON_NONE)
            ADD(cancel_fd, POLLIN, idx_cancel);
#undef ADD

        /* The next deadline: the timeout; after a stop, the supervisor's
         * grace; after the report, the output drain's grace. */
        int64_t now = mono_ms(), until = -1;
        if (io->reason == REASON_NONE && deadline >= 0)
            until = deadline;
        if (io->reason != REASON_NONE && !io->got_report &&
            !io->supervisor_killed)
            until = stop_at + STOP_GRACE_MS;
        if (io->got_report || io->supervisor_killed) {
            int64_t d = (report_at ? report_at : now) + DRAIN_GRACE_MS;
            until = until < 0 || d < until ? d : until;
        }
        int timeout = -1;
        if (until >= 0)
            timeout = until <= now ? 0 : (int)(until - now > 60000 ? 60000
                                                                   : until - now);

        int r = poll(pf, n, timeout);
        if (r < 0 && errno != EINTR) {
            /* Not expected (valid fds; ENOMEM at worst).  Stop the tree so
             * that waiting for the supervisor stays bounded. */
            io->poll_errno = errno;
            close_fd(&f->ctl_w);
            break;
        }
        now = mono_ms();

        if (idx_out >= 0 && pf[idx_out].revents &&
            !pump_output(h, exec, f->out_r, SX_STREAM_STDOUT, buf))
            close_fd(&f->out_r);
        if (idx_err >= 0 && pf[idx_err].revents &&
            !pump_output(h, exec, f->err_r, SX_STREAM_STDERR, buf))
            close_fd(&f->err_r);
        if (idx_cerr >= 0 && pf[idx_cerr].revents) {
            int m = read_msg(f->cerr_r, &io->child_error,
                             sizeof io->child_error, &io->child_error_len);
            if (m == 1 && io->child_error_len == sizeof io->child_error)
                io->got_child_error = 1;
            if (m == 0 || io->got_child_error)
                close_fd(&f->cerr_r);
        }
        if (idx_rep >= 0 && pf[idx_rep].revents) {
            int m = read_msg(f->rep_r, &io->report, sizeof io->report,
                             &io->report_len);
            if (m == 1 && io->report_len == sizeof io->report) {
                if (io->report.magic == SX_SUP_REPORT_MAGIC &&
                    io->report.protocol == SX_SUP_PROTOCOL) {
                    io->got_report = 1;
                    report_at = now;
                } else {
                    io->bad_report = 1;
                }
            }
            if (m == 0 || io->report_len == sizeof io->report) {
                close_fd(&f->rep_r);
                if (!io->got_report && report_at == 0)
                    report_at = now;    /* supervisor died: drain and go */
            }
        }
        if (idx_in >= 0 && f->in_w >= 0 && pf[idx_in].revents) {
            if (pf[idx_in].revents & (POLLERR | POLLHUP)) {
                close_fd(&f->in_w);     /* the script closed its stdin */
            } else {
                size_t chunk = in_left > IO_CHUNK ? IO_CHUNK : in_left;
                ssize_t w = write(f->in_w, in_data, chunk);
                if (w > 0) {
                    in_data += w;
                    in_left -= (size_t)w;
                    if (in_left == 0)
                        close_fd(&f->in_w);     /* EOF for the script */
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    if (errno == EPIPE)
                        io->got_epipe = 1;
                    close_fd(&f->in_w);
                }
            }
        }
        /* The tree is gone: nobody will read the rest of stdin. */
        if ((io->got_report || f->rep_r < 0) && f->in_w >= 0)
            close_fd(&f->in_w);

        if (idx_cancel >= 0 && pf[idx_cancel].revents)
            request_stop(f, io, REASON_CANCEL, &stop_at);
        if (io->reason == REASON_NONE && deadline >= 0 && now >= deadline &&
            f->rep_r >= 0)
            request_stop(f, io, REASON_TIMEOUT, &stop_at);

        if (io->reason != REASON_NONE && !io->got_report &&
            !io->supervisor_killed && f->rep_r >= 0 &&
            now >= stop_at + STOP_GRACE_MS) {
            /* Last resort: the supervisor is stuck (say, a process in
             * uninterruptible sleep).  Kill it; the rest of the tree then
             * belongs to the next subreaper up. */
            kill(sup, SIGKILL);
            io->supervisor_killed = 1;
            report_at = now;
            close_fd(&f->rep_r);
        }
        if ((io->got_report || report_at != 0) &&
            now >= report_at + DRAIN_GRACE_MS &&
            (f->out_r >= 0 || f->err_r >= 0)) {
            io->output_abandoned = 1;
            close_fd(&f->out_r);
            close_fd(&f->err_r);
            close_fd(&f->cerr_r);
        }
    }
}

static int map_child_error(const sx_native_instance *inst,
                           const sx_native_cmd *cmd,
                           const sx_sup_child_error *ce, sx_error *err)
{
    const char *why = strerror(ce->err);
    switch (ce->stage) {
    case SX_SUP_STAGE_CHDIR:
        return sx_error_set(err, "invalid_parameter",
                            "working directory '%s' is not usable by uid %lld: "
                            "%s; the script did not run",
                            cmd->work_dir,
                            (long long)(inst->switch_creds &&
                                                inst->cfg.run_as_user >= 0
                                            ? inst->cfg.run_as_user
                                            : (long long)geteuid()),
                            why);
    case SX_SUP_STAGE_EXEC:
        return sx_error_set(err, "backend_error",
                            "executor '%s': cannot execute interpreter %s: %s",
                            inst->name, cmd->path, why);
    case SX_SUP_STAGE_CREDS:
        return sx_error_set(err, "backend_error",
                            "executor '%s': cannot switch to uid %lld gid %lld: "
                            "%s",
                            inst->name, (long long)inst->cfg.run_as_user,
                            (long long)inst->cfg.run_as_group, why);
    default:
        return sx_error_set(err, "backend_error",
                            "executor '%s': cannot set up the script process: %s",
                            inst->name, why);
    }
}

int sx_native_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                  sx_exec_result *result, sx_error *err)
{
    const sx_native_instance *inst = instance;
    const sx_host_api *h = inst->plugin->host;

    if (spec == NULL || !SX_HAS_FIELD(spec, sx_exec_spec, timeout_ms))
        return sx_error_set(err, "backend_error",
                            "exec.native: exec spec too old or missing");
    if (result == NULL || !SX_HAS_FIELD(result, sx_exec_result, memory_mb))
        return sx_error_set(err, "backend_error",
                            "exec.native: exec result too old or missing");

    sx_native_cmd cmd;
    if (sx_native_cmd_prepare(inst, spec, &cmd, err) != 0)
        return -1;

    /* Refuse an unusable directory before anything is recorded; the child
     * checks again (as the script's user) and reports through the error
     * pipe. */
    struct stat st;
    int st_rc = stat(cmd.work_dir, &st);
    if (st_rc != 0 || !S_ISDIR(st.st_mode)) {
        sx_error_set(err, "invalid_parameter",
                     "working directory '%s': %s; the script did not run",
                     cmd.work_dir,
                     st_rc != 0 ? strerror(errno) : "not a directory");
        sx_native_cmd_free(&cmd);
        return -1;
    }

    char *buf = malloc(IO_CHUNK);
    run_fds f;
    memset(&f, -1, sizeof f);
    if (buf == NULL) {
        sx_error_set(err, "backend_error", "exec.native: out of memory");
        sx_native_cmd_free(&cmd);
        return -1;
    }
    if (fds_open(&f, spec, err) != 0) {
        fds_close_all(&f);
        free(buf);
        sx_native_cmd_free(&cmd);
        return -1;
    }

    /* The durable "exec.started" record comes before the script starts. */
    sx_error started_err;
    memset(&started_err, 0, sizeof started_err);
    if (h->exec_started(exec, NULL, &started_err) != 0) {
        if (started_err.code[0] == '\0')
            sx_error_set(&started_err, "audit_unavailable",
                         "exec.started could not be recorded");
        if (err != NULL)
            *err = started_err;
        fds_close_all(&f);
        free(buf);
        sx_native_cmd_free(&cmd);
        return -1;
    }

    /* A script that closes its stdin must not kill the host with SIGPIPE:
     * block it on this thread for the run, and swallow one we caused. */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigpending(&pending);
    int pipe_was_pending = sigismember(&pending, SIGPIPE);

    const sx_native_sup_fds sup_fds = {
        .in = f.in_r, .out = f.out_w, .err = f.err_w,
        .child_error = f.cerr_w, .report = f.rep_w, .control = f.ctl_r,
    };
    pid_t sup = -1;
    int rc = sx_native_spawn_supervisor(inst, spec, &cmd, &sup_fds, &sup, err);

    /* The child's ends live in the supervisor now. */
    close_fd(&f.in_r);
    close_fd(&f.out_w);
    close_fd(&f.err_w);
    close_fd(&f.cerr_w);
    close_fd(&f.rep_w);
    close_fd(&f.ctl_r);

    run_io io;
    memset(&io, 0, sizeof io);
    int sup_status = 0;
    if (rc == 0) {
        io_loop(inst, spec, exec, &f, sup, buf, &io);
        while (waitpid(sup, &sup_status, 0) < 0 && errno == EINTR)
            ;
    }
    fds_close_all(&f);

    if (io.got_epipe && !pipe_was_pending) {
        struct timespec zero = {0, 0};
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            (void)sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    if (rc != 0)
        goto out;
    rc = -1;
    if (!io.supervisor_killed &&
        !(WIFEXITED(sup_status) && WEXITSTATUS(sup_status) == 0))
        h->log(inst->plugin->ctx, SX_LOG_WARN,
               "execution %s: the supervisor %s %s %d",
               spec->execution_id ? spec->execution_id : "?", inst->supervisor,
               WIFEXITED(sup_status) ? "exited with status"
                                     : "was killed by signal",
               WIFEXITED(sup_status) ? WEXITSTATUS(sup_status)
                                     : WTERMSIG(sup_status));
    if (io.poll_errno != 0) {
        sx_error_set(err, "backend_error",
                     "executor '%s': poll: %s; the run was stopped",
                     inst->name, strerror(io.poll_errno));
        goto out;
    }
    if (io.got_child_error) {
        map_child_error(inst, &cmd, &io.child_error, err);
        goto out;
    }
    if (!io.got_report) {
        sx_error_set(err, "backend_error",
                     "executor '%s': the run's supervisor %s %s; descendants "
                     "may be left",
                     inst->name, inst->supervisor,
                     io.bad_report ? "sent a report of another protocol "
                                     "version (not from this build?)"
                     : io.supervisor_killed ? "did not stop in time and was "
                                              "killed"
                                            : "died without reporting");
        goto out;
    }
    const sx_sup_report *rep = &io.report;
    if (rep->setup_errno != 0 || rep->fork_errno != 0) {
        sx_error_set(err, "backend_error",
                     "executor '%s': the supervisor %s could not %s: %s",
                     inst->name, inst->supervisor,
                     rep->setup_errno ? "set up" : "fork the script",
                     strerror(rep->setup_errno ? rep->setup_errno
                                               : rep->fork_errno));
        goto out;
    }

    if (rep->killed_main && io.reason != REASON_NONE) {
        result->termination = io.reason == REASON_TIMEOUT ? SX_TERM_TIMED_OUT
                                                          : SX_TERM_CANCELLED;
        result->signal = SIGKILL;
        result->exit_code = 0;
    } else if (rep->have_status && WIFEXITED(rep->wait_status)) {
        result->termination = SX_TERM_EXITED;
        result->exit_code = WEXITSTATUS(rep->wait_status);
        result->signal = 0;
    } else if (rep->have_status && WIFSIGNALED(rep->wait_status)) {
        result->termination = SX_TERM_SIGNALED;
        result->signal = WTERMSIG(rep->wait_status);
    } else {
        result->termination = SX_TERM_LOST;
    }
    result->duration_seconds =
        rep->end_ns > rep->start_ns ? (double)(rep->end_ns - rep->start_ns) / 1e9
                                    : 0.0;
    result->cpu_millis = (rep->utime_us + rep->stime_us) / 1000;
    result->memory_mb = (rep->maxrss_kb + 1023) / 1024;
    if (SX_HAS_FIELD(result, sx_exec_result, pod_name)) {
        result->job_name[0] = '\0';
        result->pod_name[0] = '\0';
    }
    if (rep->leftovers > 0 && !rep->killed_main)
        h->log(inst->plugin->ctx, SX_LOG_INFO,
               "execution %s: killed %d process(es) left running after the "
               "script ended",
               spec->execution_id ? spec->execution_id : "?", rep->leftovers);
    if (io.output_abandoned)
        h->log(inst->plugin->ctx, SX_LOG_WARN,
               "execution %s: output pipes still open after the process tree "
               "ended; output may be incomplete",
               spec->execution_id ? spec->execution_id : "?");
    rc = 0;
out:
    free(buf);
    sx_native_cmd_free(&cmd);
    return rc;
}
