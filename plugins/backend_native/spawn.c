/*
 * spawn.c - starting sx-native-supervisor: where the helper is, the plan
 * it reads, and posix_spawn.
 *
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK) + execve) copies nothing
 * of the host's memory, however many threads and stacks the host has, and
 * runs no code of ours between clone and exec.  The helper starts with an
 * empty signal mask, default dispositions for every signal (the host blocks
 * SIGTERM/SIGINT/SIGHUP and ignores SIGPIPE) and exactly the descriptors
 * 0..SX_SUP_NFDS-1 (posix_spawn_file_actions: dup2 to fixed numbers, then
 * closefrom, which is close_range in the child).
 */
#define _GNU_SOURCE
#include "native.h"
#include "supervisor.h"

#include "sx/sx_util.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Where the helper is                                                  */
/* ------------------------------------------------------------------ */

char *sx_native_supervisor_default_path(void)
{
    /* The file this function was loaded from: backend_native.so. */
    Dl_info info;
    if (dladdr((void *)sx_native_supervisor_default_path, &info) == 0 ||
        info.dli_fname == NULL || info.dli_fname[0] == '\0')
        return NULL;
    char *copy = strdup(info.dli_fname);
    if (copy == NULL)
        return NULL;
    const char *dir = dirname(copy);
    char *real = realpath(dir, NULL);   /* absolute, whatever the cwd */
    const char *base = real ? real : dir;
    size_t len = strlen(base) + 1 + sizeof SX_SUP_EXE_NAME;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s", base, SX_SUP_EXE_NAME);
    free(real);
    free(copy);
    return path;
}

int sx_native_supervisor_check(const char *path, const char **why)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        *why = strerror(errno);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return -1;
    }
    if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) != 0) {
        *why = "not executable";
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The helper's memfds: the script and the plan                         */
/* ------------------------------------------------------------------ */

/* A memfd holding len bytes of data, positioned at 0, with `seals` added.
 * Returns the fd, or -1 with errno set. */
static int memfd_with(const char *name, const void *data, size_t len,
                      unsigned seals)
{
    int fd = memfd_create(name, MFD_CLOEXEC | (seals ? MFD_ALLOW_SEALING : 0));
    if (fd < 0)
        return -1;
    if (sx_write_all(fd, data, len) != 0)
        goto fail;
    if ((seals && fcntl(fd, F_ADD_SEALS, seals) != 0) ||
        lseek(fd, 0, SEEK_SET) != 0)
        goto fail;
    return fd;
fail:;
    int e = errno ? errno : EIO;
    close(fd);
    errno = e;
    return -1;
}

/* The script, sealed: the interpreter opens it as /proc/self/fd/3, the
 * script itself cannot change it. */
static int make_script_fd(const sx_native_instance *inst,
                          const sx_exec_spec *spec, sx_error *err)
{
    int fd = memfd_with("sx-script", spec->script ? spec->script : "",
                        spec->script ? spec->script_len : 0,
                        F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    if (fd < 0)
        sx_error_set(err, "backend_error",
                     "executor '%s': the script's memfd: %s", inst->name,
                     strerror(errno));
    return fd;
}

static char *put_str(char *w, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(w, s, n);
    return w + n;
}

/* The plan (see sx_sup_plan_header). */
static int make_plan_fd(const sx_native_instance *inst,
                        const sx_native_cmd *cmd, sx_error *err)
{
    sx_sup_plan_header h;
    memset(&h, 0, sizeof h);
    h.magic = SX_SUP_PLAN_MAGIC;
    h.protocol = SX_SUP_PROTOCOL;
    h.host_pid = (int32_t)getpid();
    h.switch_creds = inst->switch_creds;
    h.uid = inst->cfg.run_as_user;
    h.gid = inst->cfg.run_as_group;
    h.argc = (uint32_t)cmd->argc;
    h.envc = (uint32_t)cmd->envc;
    h.strings_len = strlen(cmd->path) + 1 + strlen(cmd->work_dir) + 1;
    for (size_t i = 0; i < cmd->argc; i++)
        h.strings_len += strlen(cmd->argv[i]) + 1;
    for (size_t i = 0; i < cmd->envc; i++)
        h.strings_len += strlen(cmd->envp[i]) + 1;

    size_t total = sizeof h + (size_t)h.strings_len;
    char *buf = malloc(total);
    if (buf == NULL)
        return sx_error_set(err, "backend_error", "exec.native: out of memory");
    memcpy(buf, &h, sizeof h);
    char *w = put_str(buf + sizeof h, cmd->path);
    w = put_str(w, cmd->work_dir);
    for (size_t i = 0; i < cmd->argc; i++)
        w = put_str(w, cmd->argv[i]);
    for (size_t i = 0; i < cmd->envc; i++)
        w = put_str(w, cmd->envp[i]);

    int fd = memfd_with("sx-plan", buf, total, 0);
    if (fd < 0)
        sx_error_set(err, "backend_error",
                     "executor '%s': the run plan's memfd: %s", inst->name,
                     strerror(errno));
    free(buf);
    return fd;
}

/* ------------------------------------------------------------------ */
/* posix_spawn                                                          */
/* ------------------------------------------------------------------ */

int sx_native_spawn_supervisor(const sx_native_instance *inst,
                               const sx_exec_spec *spec,
                               const sx_native_cmd *cmd,
                               const sx_native_sup_fds *fds, pid_t *pid,
                               sx_error *err)
{
    int src[SX_SUP_NFDS], temp[SX_SUP_NFDS];
    for (int i = 0; i < SX_SUP_NFDS; i++)
        src[i] = temp[i] = -1;
    src[SX_SUP_FD_STDIN] = fds->in;
    src[SX_SUP_FD_STDOUT] = fds->out;
    src[SX_SUP_FD_STDERR] = fds->err;
    src[SX_SUP_FD_ERROR] = fds->child_error;
    src[SX_SUP_FD_REPORT] = fds->report;
    src[SX_SUP_FD_CONTROL] = fds->control;
    int script_fd = make_script_fd(inst, spec, err);
    int plan_fd = script_fd < 0 ? -1 : make_plan_fd(inst, cmd, err);
    if (plan_fd < 0) {
        if (script_fd >= 0)
            close(script_fd);
        return -1;
    }
    src[SX_SUP_FD_SCRIPT] = script_fd;
    src[SX_SUP_FD_PLAN] = plan_fd;

    /* The dup2s run in order: a source below SX_SUP_NFDS could be
     * overwritten by an earlier one, so move those out of the way first
     * (a host's descriptors are far higher; a test's may not be). */
    int e = 0;
    for (int i = 0; i < SX_SUP_NFDS && e == 0; i++)
        if (src[i] < SX_SUP_NFDS) {
            if ((temp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, SX_SUP_NFDS)) < 0)
                e = errno;
            else
                src[i] = temp[i];
        }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int have_fa = 0, have_attr = 0;
    if (e == 0 && (e = posix_spawn_file_actions_init(&fa)) == 0)
        have_fa = 1;
    if (e == 0 && (e = posix_spawnattr_init(&attr)) == 0)
        have_attr = 1;
    for (int i = 0; i < SX_SUP_NFDS && e == 0; i++)
        e = posix_spawn_file_actions_adddup2(&fa, src[i], i);
    if (e == 0)
        e = posix_spawn_file_actions_addclosefrom_np(&fa, SX_SUP_NFDS);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (e == 0)
        e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
    if (e == 0)
        e = posix_spawnattr_setsigmask(&attr, &none);
    if (e == 0)
        e = posix_spawnattr_setsigdefault(&attr, &all);
    /* The helper runs in the host's environment (it is part of the host);
     * the script gets only the plan's. */
    char *argv[] = {(char *)inst->supervisor, NULL};
    if (e == 0)
        e = posix_spawn(pid, inst->supervisor, &fa, &attr, argv, environ);
    if (have_attr)
        posix_spawnattr_destroy(&attr);
    if (have_fa)
        posix_spawn_file_actions_destroy(&fa);

    for (int i = 0; i < SX_SUP_NFDS; i++)
        if (temp[i] >= 0)
            close(temp[i]);
    close(script_fd);
    close(plan_fd);
    if (e != 0)
        return sx_error_set(err, "backend_error",
                            "executor '%s': cannot start the supervisor %s: %s",
                            inst->name, inst->supervisor, strerror(e));
    return 0;
}
