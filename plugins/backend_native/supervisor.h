/*
 * supervisor.h - the per-run supervisor process of backend_native.
 *
 * run() forks one supervisor per run from the (multi-threaded) host.  The
 * supervisor makes itself a child subreaper, forks the script (its own
 * session and process group, optionally another uid/gid), waits for it and,
 * when the script ends or the host tells it to stop, kills and reaps every
 * process left in the tree.  Then it reports the exit status and the CPU and
 * memory use of the whole tree to the host over a pipe, and exits.
 *
 * Everything in supervisor.c runs between fork() and exit in a child of a
 * multi-threaded process: it uses async-signal-safe system calls only (no
 * malloc, no stdio, no locks).  All memory it reads (argv, envp, paths) was
 * prepared by the host before forking.
 */
#ifndef SX_NATIVE_SUPERVISOR_H
#define SX_NATIVE_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>

/* The stage at which the script child failed before exec (error pipe). */
enum {
    SX_SUP_STAGE_SETUP = 1,     /* setsid, signals */
    SX_SUP_STAGE_CREDS,         /* setgroups/setresgid/setresuid/no_new_privs */
    SX_SUP_STAGE_CHDIR,         /* chdir(work_dir) */
    SX_SUP_STAGE_EXEC           /* execve(interpreter) */
};

/* Written by the script child on the CLOEXEC error pipe when it cannot
 * exec; nothing is written when exec succeeds (the pipe just closes). */
typedef struct sx_sup_child_error {
    int32_t stage;
    int32_t err;                /* errno */
} sx_sup_child_error;

#define SX_SUP_REPORT_MAGIC 0x53585355u /* "SXSU" */

/* The supervisor's one message to the host (well under PIPE_BUF, so it is
 * written and read whole). */
typedef struct sx_sup_report {
    uint32_t magic;
    int32_t setup_errno;        /* != 0: the supervisor could not set up */
    int32_t fork_errno;         /* != 0: the script could not be forked */
    int32_t have_status;        /* wait_status is valid */
    int32_t wait_status;        /* of the main script process */
    int32_t killed_main;        /* the script was running when told to stop */
    int32_t leftovers;          /* descendants killed after the script ended */
    int32_t pad;
    int64_t start_ns;           /* CLOCK_MONOTONIC: just before the fork */
    int64_t end_ns;             /* when the main script was reaped */
    int64_t utime_us;           /* RUSAGE_CHILDREN: the whole reaped tree */
    int64_t stime_us;
    int64_t maxrss_kb;
} sx_sup_report;

/* What the supervisor needs, prepared by the host before fork().  The fds
 * are the host's (all O_CLOEXEC there); the supervisor moves them to fixed
 * numbers and closes every other descriptor it inherited. */
typedef struct sx_sup_plan {
    int stdin_fd;               /* read end of the stdin pipe, or /dev/null */
    int stdout_fd;              /* write end of the stdout pipe */
    int stderr_fd;              /* write end of the stderr pipe */
    int script_fd;              /* sealed memfd holding the script */
    int error_fd;               /* write end of the exec-failure pipe */
    int report_fd;              /* write end of the report pipe */
    int control_fd;             /* read end of the stop pipe */
    pid_t host_pid;             /* getpid() of the host before forking */
    const char *path;           /* interpreter binary */
    char *const *argv;
    char *const *envp;
    const char *work_dir;
    int switch_creds;           /* change groups/gid/uid in the child */
    int64_t uid;                /* -1 = keep */
    int64_t gid;                /* -1 = keep */
} sx_sup_plan;

/* The fd the script reads itself from ("/proc/self/fd/3"). */
#define SX_SUP_SCRIPT_FD 3
#define SX_SUP_SCRIPT_PATH "/proc/self/fd/3"

/* Body of the supervisor process; never returns (ends with _exit). */
_Noreturn void sx_supervisor_main(const sx_sup_plan *plan);

#endif /* SX_NATIVE_SUPERVISOR_H */
