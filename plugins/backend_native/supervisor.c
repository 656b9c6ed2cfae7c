/*
 * supervisor.c - the per-run supervisor process (see supervisor.h).
 *
 * Async-signal-safe code only: this runs in a child forked from a
 * multi-threaded host, where another thread may have held any lock (malloc,
 * stdio, the dynamic loader) at the moment of fork().  So: raw system calls,
 * no allocation, no stdio, no errno-dependent libc helpers beyond the
 * syscall wrappers, and _exit() (never exit(): no atexit handlers, no stdio
 * flush, no sanitizer leak check in a forked copy of the host).
 *
 * File descriptors inside the supervisor:
 *   0 1 2  the script's stdin/stdout/stderr (until the script is forked;
 *          then /dev/null, so that the host sees EOF when the tree is gone)
 *   3      the sealed memfd with the script (closed after the fork)
 *   4      exec-failure pipe, CLOEXEC (closed after the fork)
 *   5      report pipe to the host, CLOEXEC
 *   6      stop pipe from the host, CLOEXEC (a byte or EOF = stop)
 *   7      signalfd for SIGCHLD and SIGTERM
 */
#define _GNU_SOURCE
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    FD_STDIN = 0, FD_STDOUT = 1, FD_STDERR = 2, FD_SCRIPT = 3,
    FD_ERROR = 4, FD_REPORT = 5, FD_CONTROL = 6, FD_FIRST_FREE = 7
};

/* How long the tree-kill loop waits for a SIGCHLD before looking again. */
#define KILL_POLL_MS 20

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Decimal text of a non-negative number into buf (no NUL); returns length. */
static size_t fmt_uint(char *buf, unsigned long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* ------------------------------------------------------------------ */
/* The script child                                                     */
/* ------------------------------------------------------------------ */

static _Noreturn void child_fail(int stage, int err)
{
    sx_sup_child_error ce = {stage, err};
    write_all(FD_ERROR, &ce, sizeof ce);
    _exit(127);
}

static _Noreturn void script_child(const sx_sup_plan *plan)
{
    /* Its own session, hence its own process group (killable as one) and no
     * controlling terminal. */
    if (setsid() < 0)
        child_fail(SX_SUP_STAGE_SETUP, errno);

    /* Default dispositions (the host may ignore SIGPIPE, say; exec keeps
     * SIG_IGN) and nothing blocked (the supervisor blocks everything). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);   /* EINVAL for libc-internal ones */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        child_fail(SX_SUP_STAGE_SETUP, errno);

    /* Raw syscalls: glibc's setuid() family would try to broadcast to the
     * host's other threads, which do not exist in this process. */
    if (plan->switch_creds) {
        if (syscall(SYS_setgroups, 0, NULL) != 0)
            child_fail(SX_SUP_STAGE_CREDS, errno);
        if (plan->gid >= 0 &&
            syscall(SYS_setresgid, (gid_t)plan->gid, (gid_t)plan->gid,
                    (gid_t)plan->gid) != 0)
            child_fail(SX_SUP_STAGE_CREDS, errno);
        if (plan->uid >= 0 &&
            syscall(SYS_setresuid, (uid_t)plan->uid, (uid_t)plan->uid,
                    (uid_t)plan->uid) != 0)
            child_fail(SX_SUP_STAGE_CREDS, errno);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(SX_SUP_STAGE_CREDS, errno);

    /* After the switch, so that the directory is checked as the user the
     * script runs as. */
    if (chdir(plan->work_dir) != 0)
        child_fail(SX_SUP_STAGE_CHDIR, errno);

    execve(plan->path, plan->argv, plan->envp);
    child_fail(SX_SUP_STAGE_EXEC, errno);
}

/* ------------------------------------------------------------------ */
/* Finding and killing descendants                                      */
/* ------------------------------------------------------------------ */

/* SIGKILL every pid listed (space-separated) in /proc/self/task/<tid>/children.
 * Returns how many were listed, or -1 when the file is not available. */
static int kill_listed_children(void)
{
    char path[64] = "/proc/self/task/";
    size_t len = strlen(path);
    len += fmt_uint(path + len, (unsigned long)getpid());
    memcpy(path + len, "/children", sizeof "/children");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    long pid = 0;
    int in_number = 0, count = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                pid = pid * 10 + (buf[i] - '0');
                in_number = 1;
            } else if (in_number) {
                /* Our child (alive or zombie): its pid cannot be reused
                 * before we reap it, so this cannot hit a stranger. */
                if (pid > 0)
                    kill((pid_t)pid, SIGKILL);
                count++;
                pid = 0;
                in_number = 0;
            }
        }
    }
    if (in_number && pid > 0) {
        kill((pid_t)pid, SIGKILL);
        count++;
    }
    close(fd);
    return count;
}

/* Fallback when the children file is missing (kernel without
 * CONFIG_PROC_CHILDREN): scan /proc/<pid>/stat for PPid == us. */
static void kill_children_by_scan(void)
{
    pid_t self = getpid();
    int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct {
                uint64_t d_ino;
                int64_t d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *d = (void *)(buf + off);
            off += d->d_reclen;
            const char *name = d->d_name;
            if (name[0] < '1' || name[0] > '9')
                continue;
            char path[64] = "/proc/";
            size_t len = 6, nl = strlen(name);
            if (nl > 20)
                continue;
            memcpy(path + len, name, nl);
            len += nl;
            memcpy(path + len, "/stat", sizeof "/stat");
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            char st[512];
            ssize_t r = read(fd, st, sizeof st - 1);
            close(fd);
            if (r <= 0)
                continue;
            st[r] = '\0';
            /* "pid (comm) S ppid ...": comm may hold anything, so parse
             * from the last ')'. */
            char *p = NULL;
            for (ssize_t i = r - 1; i >= 0; i--)
                if (st[i] == ')') {
                    p = st + i;
                    break;
                }
            if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
                continue;
            long ppid = 0;
            for (p += 4; *p >= '0' && *p <= '9'; p++)
                ppid = ppid * 10 + (*p - '0');
            if (ppid != self)
                continue;
            long pid = 0;
            for (const char *q = name; *q >= '0' && *q <= '9'; q++)
                pid = pid * 10 + (*q - '0');
            kill((pid_t)pid, SIGKILL);
        }
    }
    close(dir);
}

typedef struct sup_state {
    pid_t child;
    int others;                 /* processes reaped other than the script */
    int main_done;
    int status;
    int64_t end_ns;
} sup_state;

/* Reap whatever has exited.  Returns the number reaped, or -1 when we have
 * no children left at all. */
static int reap(sup_state *s)
{
    int reaped = 0;
    for (;;) {
        int st;
        pid_t r = wait4(-1, &st, WNOHANG | __WALL, NULL);
        if (r > 0) {
            reaped++;
            if (r == s->child && !s->main_done) {
                s->main_done = 1;
                s->status = st;
                s->end_ns = now_ns();
            } else {
                s->others++;
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECHILD)
            return reaped > 0 ? reaped : -1;
        return reaped;
    }
}

static void drain_signalfd(int sigfd, int *stop)
{
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        if (si.ssi_signo == SIGTERM && stop != NULL)
            *stop = 1;
}

/*
 * Kill and reap every process below us.  As a child subreaper we inherit
 * every orphan of the tree (setsid and double forks included), so
 * repeatedly SIGKILLing our children and reaping them empties the tree:
 * when a killed process dies its own children become ours, and the next
 * round gets them.  Ends when wait4() says ECHILD.
 */
static void kill_tree(sup_state *s, int sigfd)
{
    for (;;) {
        if (kill_listed_children() < 0)
            kill_children_by_scan();
        int r = reap(s);
        if (r < 0)
            break;
        if (r == 0) {
            struct pollfd pf = {sigfd, POLLIN, 0};
            (void)poll(&pf, 1, KILL_POLL_MS);
            drain_signalfd(sigfd, NULL);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Supervisor                                                           */
/* ------------------------------------------------------------------ */

static _Noreturn void report_and_exit(sx_sup_report *rep)
{
    rep->magic = SX_SUP_REPORT_MAGIC;
    write_all(FD_REPORT, rep, sizeof *rep);
    _exit(0);
}

/* Move the plan's descriptors to their fixed numbers and close the rest.
 * Returns 0 or an errno. */
static int arrange_fds(const sx_sup_plan *plan)
{
    int src[FD_FIRST_FREE] = {
        plan->stdin_fd, plan->stdout_fd, plan->stderr_fd, plan->script_fd,
        plan->error_fd, plan->report_fd, plan->control_fd
    };
    int tmp[FD_FIRST_FREE];
    /* First out of the way (>= 10, so no source is overwritten below). */
    for (int i = 0; i < FD_FIRST_FREE; i++)
        if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10)) < 0)
            return errno;
    for (int i = 0; i < FD_FIRST_FREE; i++)
        if (dup2(tmp[i], i) < 0)        /* dup2 clears FD_CLOEXEC */
            return errno;
    for (int i = FD_ERROR; i <= FD_CONTROL; i++)
        if (fcntl(i, F_SETFD, FD_CLOEXEC) < 0)
            return errno;
    /* Everything else: the host's descriptors, other runs' pipes. */
    if (syscall(SYS_close_range, FD_FIRST_FREE, ~0U, 0) != 0) {
        int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
            return errno;
        char buf[2048];
        long n;
        while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct {
                    uint64_t d_ino;
                    int64_t d_off;
                    unsigned short d_reclen;
                    unsigned char d_type;
                    char d_name[];
                } *d = (void *)(buf + off);
                off += d->d_reclen;
                long fd = 0;
                const char *q = d->d_name;
                if (*q < '0' || *q > '9')
                    continue;
                for (; *q >= '0' && *q <= '9'; q++)
                    fd = fd * 10 + (*q - '0');
                if (fd >= FD_FIRST_FREE && fd != dir)
                    close((int)fd);
            }
        }
        close(dir);
    }
    return 0;
}

_Noreturn void sx_supervisor_main(const sx_sup_plan *plan)
{
    sx_sup_report rep;
    memset(&rep, 0, sizeof rep);

    /* Every signal blocked: SIGCHLD and SIGTERM are read from a signalfd,
     * the rest (a terminal's SIGINT to the host's process group, ...) must
     * not run the host's handlers in this copy of the host. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    /* If the host dies (or the thread that forked us exits), SIGTERM: we
     * then kill the tree like on a stop request.  Checked against a race
     * with the host dying before the prctl. */
    int stop = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 ||
        getppid() != plan->host_pid)
        stop = 1;

    int e = arrange_fds(plan);
    if (e != 0) {
        /* The report pipe may not be at FD_REPORT yet: use the original. */
        rep.magic = SX_SUP_REPORT_MAGIC;
        rep.setup_errno = e;
        write_all(plan->report_fd, &rep, sizeof rep);
        _exit(0);
    }

    /* Orphans of the script (setsid, double forks, daemons) are reparented
     * to us instead of init, so we can always find and kill them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        rep.setup_errno = errno;
        report_and_exit(&rep);
    }

    sigset_t watch;
    sigemptyset(&watch);
    sigaddset(&watch, SIGCHLD);
    sigaddset(&watch, SIGTERM);
    int sigfd = signalfd(-1, &watch, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) {
        rep.setup_errno = errno;
        report_and_exit(&rep);
    }

    sup_state s;
    memset(&s, 0, sizeof s);
    rep.start_ns = now_ns();
    /* _Fork: a fork without atfork handlers, async-signal-safe. */
    s.child = stop ? -1 : _Fork();
    if (s.child == 0)
        script_child(plan);
    if (s.child < 0) {
        rep.fork_errno = stop ? ECANCELED : errno;
        report_and_exit(&rep);
    }

    /* Drop our copies of the script's stdio, script and error pipe: the
     * host sees EOF once the script's whole tree is gone. */
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = FD_STDIN; fd <= FD_STDERR; fd++) {
        if (nul >= 0)
            dup2(nul, fd);
        else
            close(fd);
    }
    if (nul > FD_STDERR)
        close(nul);
    close(FD_SCRIPT);
    close(FD_ERROR);

    /* Wait for the script to end, or for a stop request (timeout, cancel:
     * the host writes a byte; host gone: EOF or SIGTERM). */
    struct pollfd pf[2] = {
        {sigfd, POLLIN, 0},
        {FD_CONTROL, POLLIN, 0},
    };
    while (!s.main_done && !stop) {
        int r = poll(pf, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            stop = 1;
            break;
        }
        if (pf[0].revents & POLLIN)
            drain_signalfd(sigfd, &stop);
        if (pf[1].revents)
            stop = 1;
        (void)reap(&s);
    }

    if (!s.main_done) {
        rep.killed_main = 1;
        /* The main pid is not reaped yet, so its process group id is still
         * pinned to it: kill the group first, then the tree. */
        kill(-s.child, SIGKILL);
        kill(s.child, SIGKILL);
    }
    /* Also when the script exited by itself: like a pod, a run leaves
     * nothing behind.  Background jobs, daemons, anything the script
     * started dies with it. */
    int before = s.others;
    kill_tree(&s, sigfd);
    rep.leftovers = s.others - before;

    rep.have_status = s.main_done;
    rep.wait_status = s.status;
    rep.end_ns = s.main_done ? s.end_ns : now_ns();
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        rep.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
        rep.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
        rep.maxrss_kb = ru.ru_maxrss;
    }
    report_and_exit(&rep);
}
