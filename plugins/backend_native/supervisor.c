/*
 * supervisor.c - sx-native-supervisor, the per-run helper of backend_native
 * (protocol in supervisor.h).
 *
 * A small single-threaded program started by the host with posix_spawn for
 * every run.  It owns the script's process tree: it is a child subreaper,
 * so every orphan of the tree (setsid, double forks, daemons) becomes its
 * child, and it kills and reaps all of them before it reports.  If the
 * host dies, PDEATHSIG (SIGTERM) makes it stop the run the same way.
 *
 * Descriptors: see the SX_SUP_FD_* list.  0-2, the script memfd and the
 * error pipe go to the script child and are dropped here after the fork
 * (so that the host sees EOF on stdout/stderr once the tree is gone); the
 * report and control pipes stay; the plan memfd is read and closed first.
 */
#define _GNU_SOURCE
#include "supervisor.h"
#include "sx/sx_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the tree-kill loop waits for a SIGCHLD before looking again. */
#define KILL_POLL_MS 20

/* Exit status when started without the host's descriptors. */
#define EXIT_USAGE 2

/* The decoded plan (pointers into one buffer). */
typedef struct plan {
    sx_sup_plan_header h;
    char *strings;              /* malloc'ed */
    const char *path;
    const char *work_dir;
    char **argv;                /* malloc'ed, NULL-terminated */
    char **envp;                /* malloc'ed, NULL-terminated */
} plan;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EPROTO;      /* shorter than announced */
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The plan                                                             */
/* ------------------------------------------------------------------ */

static void plan_free(plan *p)
{
    free(p->strings);
    free(p->argv);
    free(p->envp);
    memset(p, 0, sizeof *p);
}

/* Read and check the plan from SX_SUP_FD_PLAN.  Returns 0 or an errno
 * (EPROTO: not a plan of this protocol). */
static int plan_read(plan *p)
{
    memset(p, 0, sizeof *p);
    struct stat st;
    if (fstat(SX_SUP_FD_PLAN, &st) != 0)
        return errno;
    sx_sup_plan_header *h = &p->h;
    if ((uint64_t)st.st_size < sizeof *h)
        return EPROTO;
    int e = pread_all(SX_SUP_FD_PLAN, h, sizeof *h, 0);
    if (e != 0)
        return e;
    if (h->magic != SX_SUP_PLAN_MAGIC || h->protocol != SX_SUP_PROTOCOL ||
        h->strings_len != (uint64_t)st.st_size - sizeof *h ||
        h->argc == 0 || h->argc > h->strings_len || h->envc > h->strings_len)
        return EPROTO;

    size_t len = (size_t)h->strings_len;
    p->strings = malloc(len);
    p->argv = calloc((size_t)h->argc + 1, sizeof *p->argv);
    p->envp = calloc((size_t)h->envc + 1, sizeof *p->envp);
    if (p->strings == NULL || p->argv == NULL || p->envp == NULL)
        return ENOMEM;
    if ((e = pread_all(SX_SUP_FD_PLAN, p->strings, len, sizeof *h)) != 0)
        return e;
    if (p->strings[len - 1] != '\0')
        return EPROTO;

    /* path, work_dir, argv..., envp...: exactly that many strings. */
    size_t want = 2 + (size_t)h->argc + (size_t)h->envc, n = 0;
    for (char *s = p->strings; s < p->strings + len; s += strlen(s) + 1, n++) {
        if (n >= want)
            return EPROTO;
        if (n == 0)
            p->path = s;
        else if (n == 1)
            p->work_dir = s;
        else if (n < 2 + h->argc)
            p->argv[n - 2] = s;
        else
            p->envp[n - 2 - h->argc] = s;
    }
    return n == want ? 0 : EPROTO;
}

/* ------------------------------------------------------------------ */
/* The script child                                                     */
/* ------------------------------------------------------------------ */

static _Noreturn void child_fail(int stage, int err)
{
    sx_sup_child_error ce = {stage, err};
    (void)sx_write_all(SX_SUP_FD_ERROR, &ce, sizeof ce);
    _exit(127);
}

static _Noreturn void script_child(const plan *p)
{
    /* Its own session, hence its own process group (killable as one) and no
     * controlling terminal. */
    if (setsid() < 0)
        child_fail(SX_SUP_STAGE_SETUP, errno);

    /* Default dispositions for every signal, and nothing blocked (the
     * supervisor blocks everything).  Raw rt_sigaction: posix_spawn leaves
     * glibc's internal signals (32, 33) SIG_IGN in the supervisor, and
     * glibc's sigaction() refuses to touch them.  An all-zero kernel
     * sigaction is SIG_DFL, no flags, empty mask on every architecture. */
    static const unsigned long dfl[8];
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, sig, dfl, NULL, NSIG / 8);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        child_fail(SX_SUP_STAGE_SETUP, errno);

    if (p->h.switch_creds) {
        if (setgroups(0, NULL) != 0)
            child_fail(SX_SUP_STAGE_CREDS, errno);
        if (p->h.gid >= 0) {
            gid_t g = (gid_t)p->h.gid;
            if (setresgid(g, g, g) != 0)
                child_fail(SX_SUP_STAGE_CREDS, errno);
        }
        if (p->h.uid >= 0) {
            uid_t u = (uid_t)p->h.uid;
            if (setresuid(u, u, u) != 0)
                child_fail(SX_SUP_STAGE_CREDS, errno);
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(SX_SUP_STAGE_CREDS, errno);

    /* After the switch, so that the directory is checked as the user the
     * script runs as. */
    if (chdir(p->work_dir) != 0)
        child_fail(SX_SUP_STAGE_CHDIR, errno);

    execve(p->path, p->argv, p->envp);
    child_fail(SX_SUP_STAGE_EXEC, errno);
}

/* ------------------------------------------------------------------ */
/* Finding and killing descendants                                      */
/* ------------------------------------------------------------------ */

/* SIGKILL every pid listed in /proc/self/task/<tid>/children (we are
 * single-threaded: tid = pid).  Each is our child, alive or a zombie: its
 * pid cannot be reused before we reap it, so this cannot hit a stranger.
 * Returns how many were listed, or -1 when the file is not available. */
static int kill_listed_children(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    int count = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
        count++;
    }
    fclose(f);
    return count;
}

/* Fallback when the children file is missing (kernel without
 * CONFIG_PROC_CHILDREN): scan /proc/<pid>/stat for PPid == us. */
static void kill_children_by_scan(void)
{
    pid_t self = getpid();
    DIR *dir = opendir("/proc");
    if (dir == NULL)
        return;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(d->d_name, &end, 10);
        if (pid <= 0 || *end != '\0')
            continue;
        char path[64], st[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, st, sizeof st - 1);
        close(fd);
        if (r <= 0)
            continue;
        st[r] = '\0';
        /* "pid (comm) S ppid ...": comm may hold anything, so parse from
         * the last ')'. */
        const char *p = strrchr(st, ')');
        long ppid;
        if (p != NULL && sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == self)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(dir);
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
        /* Reap first: usually the script left nothing, and this ends at
         * once without reading /proc. */
        int r = reap(s);
        if (r < 0)
            break;
        if (kill_listed_children() < 0)
            kill_children_by_scan();
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

static int report(sx_sup_report *rep, plan *p)
{
    rep->magic = SX_SUP_REPORT_MAGIC;
    rep->protocol = SX_SUP_PROTOCOL;
    (void)sx_write_all(SX_SUP_FD_REPORT, rep, sizeof *rep);
    plan_free(p);
    return 0;
}

/* Wait for the script to end, or for a stop request (timeout, cancel: the
 * host writes a byte; host gone: EOF or SIGTERM). */
static void wait_script(sup_state *s, int sigfd, int *stop)
{
    struct pollfd pf[2] = {
        {sigfd, POLLIN, 0},
        {SX_SUP_FD_CONTROL, POLLIN, 0},
    };
    while (!s->main_done && !*stop) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            *stop = 1;
            break;
        }
        if (pf[0].revents & POLLIN)
            drain_signalfd(sigfd, stop);
        if (pf[1].revents)
            *stop = 1;
        (void)reap(s);
    }
}

int main(void)
{
    /* Every signal blocked: SIGCHLD and SIGTERM are read from a signalfd,
     * the rest (a terminal's SIGINT to the host's process group, ...) are
     * not ours to act on. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    /* If the host dies (or the thread that started us exits), SIGTERM: we
     * then kill the tree like on a stop request.  The plan's host pid
     * closes the race with the host dying before the prctl. */
    int stop = prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0;

    sx_sup_report rep;
    memset(&rep, 0, sizeof rep);
    plan p;
    int e = plan_read(&p);
    if (e == EBADF) {
        static const char msg[] =
            SX_SUP_EXE_NAME ": internal helper of the backend_native plugin, "
            "started by the host for each run; not meant to be run by hand\n";
        (void)sx_write_all(STDERR_FILENO, msg, sizeof msg - 1);
        plan_free(&p);
        return EXIT_USAGE;
    }
    close(SX_SUP_FD_PLAN);
    /* posix_spawn's dup2 cleared FD_CLOEXEC: the script gets none of these
     * (the error pipe closes on a successful exec). */
    for (int fd = SX_SUP_FD_ERROR; fd <= SX_SUP_FD_CONTROL; fd++)
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 && e == 0)
            e = errno;
    if (e != 0) {
        rep.setup_errno = e;
        return report(&rep, &p);
    }
    if (getppid() != (pid_t)p.h.host_pid)
        stop = 1;

    /* Orphans of the script (setsid, double forks, daemons) are reparented
     * to us instead of init, so we can always find and kill them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        rep.setup_errno = errno;
        return report(&rep, &p);
    }
    sigset_t watch;
    sigemptyset(&watch);
    sigaddset(&watch, SIGCHLD);
    sigaddset(&watch, SIGTERM);
    int sigfd = signalfd(-1, &watch, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) {
        rep.setup_errno = errno;
        return report(&rep, &p);
    }

    sup_state s;
    memset(&s, 0, sizeof s);
    rep.start_ns = now_ns();
    s.child = stop ? -1 : fork();
    if (s.child == 0)
        script_child(&p);
    if (s.child < 0) {
        rep.fork_errno = stop ? ECANCELED : errno;
        return report(&rep, &p);
    }

    /* Drop our copies of the script's stdio, script and error pipe: the
     * host sees EOF once the script's whole tree is gone. */
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = SX_SUP_FD_STDIN; fd <= SX_SUP_FD_STDERR; fd++) {
        if (nul >= 0)
            dup2(nul, fd);
        else
            close(fd);
    }
    if (nul > SX_SUP_FD_STDERR)
        close(nul);
    close(SX_SUP_FD_SCRIPT);
    close(SX_SUP_FD_ERROR);

    wait_script(&s, sigfd, &stop);
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
    close(sigfd);

    rep.have_status = s.main_done;
    rep.wait_status = s.status;
    rep.end_ns = s.main_done ? s.end_ns : now_ns();
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        rep.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
        rep.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
        rep.maxrss_kb = ru.ru_maxrss;
    }
    return report(&rep, &p);
}
