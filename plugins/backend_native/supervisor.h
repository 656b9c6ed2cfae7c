/*
 * supervisor.h - the protocol between backend_native (the plugin, in the
 * host) and sx-native-supervisor (a small helper executable, one process
 * per run).
 *
 * run() starts the helper with posix_spawn (spawn.c): no copy of the host's
 * memory, empty signal mask, default dispositions, nothing open but the
 * descriptors below.  The helper (supervisor.c) reads the run's plan, makes
 * itself a child subreaper, forks the script (its own session, optionally
 * another uid/gid), waits for it and, when the script ends or the host
 * tells it to stop, kills and reaps every process left in the tree.  Then
 * it reports the exit status and the CPU and memory use of the whole tree
 * over a pipe, and exits.
 *
 * Both sides are built from this header in the same tree; the plan and the
 * report carry SX_SUP_PROTOCOL so that a helper from another build is
 * refused instead of misread.
 */
#ifndef SX_NATIVE_SUPERVISOR_H
#define SX_NATIVE_SUPERVISOR_H

#include <stdint.h>

/* File name of the helper, next to backend_native.so. */
#define SX_SUP_EXE_NAME "sx-native-supervisor"

/* Bumped whenever the plan, the report or the descriptors change. */
#define SX_SUP_PROTOCOL 1

/* The helper's descriptors, set up by posix_spawn; nothing else is open. */
enum {
    SX_SUP_FD_STDIN = 0,        /* the script's stdin (pipe or /dev/null) */
    SX_SUP_FD_STDOUT = 1,       /* the script's stdout pipe */
    SX_SUP_FD_STDERR = 2,       /* the script's stderr pipe */
    SX_SUP_FD_SCRIPT = 3,       /* sealed memfd holding the script */
    SX_SUP_FD_ERROR = 4,        /* exec-failure pipe (sx_sup_child_error) */
    SX_SUP_FD_REPORT = 5,       /* report pipe (sx_sup_report) */
    SX_SUP_FD_CONTROL = 6,      /* stop pipe: a byte or EOF = stop */
    SX_SUP_FD_PLAN = 7,         /* memfd holding the plan, read at start */
    SX_SUP_NFDS = 8
};

/* The fd the script reads itself from. */
#define SX_SUP_SCRIPT_PATH "/proc/self/fd/3"

#define SX_SUP_PLAN_MAGIC 0x53585050u   /* "SXPP" */

/*
 * The plan: this header, then `strings_len` bytes of NUL-terminated
 * strings, in order: the interpreter's path, the working directory,
 * argv[0..argc), envp[0..envc).  Written to a memfd by the host (no size
 * limit, never blocks, not visible in the helper's command line).
 */
typedef struct sx_sup_plan_header {
    uint32_t magic;             /* SX_SUP_PLAN_MAGIC */
    uint32_t protocol;          /* SX_SUP_PROTOCOL */
    int32_t host_pid;           /* the parent to watch (PDEATHSIG race) */
    int32_t switch_creds;       /* change groups/gid/uid in the script */
    int64_t uid;                /* -1 = keep */
    int64_t gid;                /* -1 = keep */
    uint32_t argc;
    uint32_t envc;
    uint64_t strings_len;
} sx_sup_plan_header;

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

/* The helper's one message to the host (well under PIPE_BUF, so it is
 * written and read whole). */
typedef struct sx_sup_report {
    uint32_t magic;             /* SX_SUP_REPORT_MAGIC */
    uint32_t protocol;          /* SX_SUP_PROTOCOL */
    int32_t setup_errno;        /* != 0: the helper could not set up */
    int32_t fork_errno;         /* != 0: the script could not be forked */
    int32_t have_status;        /* wait_status is valid */
    int32_t wait_status;        /* of the main script process */
    int32_t killed_main;        /* the script was running when told to stop */
    int32_t leftovers;          /* descendants killed after the script ended */
    int64_t start_ns;           /* CLOCK_MONOTONIC: just before the fork */
    int64_t end_ns;             /* when the main script was reaped */
    int64_t utime_us;           /* RUSAGE_CHILDREN: the whole reaped tree */
    int64_t stime_us;
    int64_t maxrss_kb;
} sx_sup_report;

#endif /* SX_NATIVE_SUPERVISOR_H */
