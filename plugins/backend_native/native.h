/*
 * native.h - internals shared by the files of the backend_native plugin.
 */
#ifndef SX_NATIVE_H
#define SX_NATIVE_H

#include "sx/sx_backend.h"

#include <stdint.h>
#include <sys/types.h>

/* The plugin's state: what init() was given. */
typedef struct sx_native_plugin {
    sx_plugin_ctx *ctx;
    const sx_host_api *host;
    char *default_supervisor;   /* next to this .so; NULL if not found */
} sx_native_plugin;

/* The executor options (filled by host->config_apply). */
typedef struct sx_native_cfg {
    char *default_work_dir;
    sx_strmap default_env;
    sx_strlist command_whitelist;
    int64_t run_as_user;        /* -1 = do not switch */
    int64_t run_as_group;       /* -1 = do not switch */
    char *scripts_dir;          /* NULL = load_script unsupported */
    char *supervisor_path;      /* NULL = the helper next to the .so */
} sx_native_cfg;

/* One executor instance.  Immutable after instance_create, so run(),
 * render() and describe() may use it from many threads at once. */
typedef struct sx_native_instance {
    const sx_native_plugin *plugin;
    char *name;
    sx_native_cfg cfg;
    char *scripts_dir_real;     /* realpath of cfg.scripts_dir, or NULL */
    char *supervisor;           /* the helper this instance starts */
    int switch_creds;           /* host is root and a uid/gid is set */
} sx_native_instance;

/* What one run executes (malloc'ed). */
typedef struct sx_native_cmd {
    char *path;                 /* resolved interpreter binary */
    char **argv;                /* NULL-terminated */
    size_t argc;
    char **envp;                /* "NAME=value", NULL-terminated */
    size_t envc;
    char *work_dir;
} sx_native_cmd;

/* Check the whitelist, resolve the interpreter, merge the environment and
 * build argv.  Returns 0, or -1 with err ("command_not_allowed",
 * "invalid_parameter", "backend_error"). */
int sx_native_cmd_prepare(const sx_native_instance *inst,
                          const sx_exec_spec *spec, sx_native_cmd *cmd,
                          sx_error *err);
void sx_native_cmd_free(sx_native_cmd *cmd);

/* The helper next to backend_native.so (malloc'ed), or NULL (spawn.c). */
char *sx_native_supervisor_default_path(void);

/* Whether path is a regular, executable file.  Returns 0, or -1 and *why
 * (static text). */
int sx_native_supervisor_check(const char *path, const char **why);

/* The host's ends that become the helper's stdin/stdout/stderr,
 * SX_SUP_FD_ERROR, SX_SUP_FD_REPORT and SX_SUP_FD_CONTROL. */
typedef struct sx_native_sup_fds {
    int in, out, err;
    int child_error, report, control;
} sx_native_sup_fds;

/* Start inst->supervisor for one run: the script and the plan go into
 * memfds, fds to their fixed numbers.  Returns 0 and *pid, or -1 with err
 * ("backend_error"); the caller's fds are left open either way. */
int sx_native_spawn_supervisor(const sx_native_instance *inst,
                               const sx_exec_spec *spec,
                               const sx_native_cmd *cmd,
                               const sx_native_sup_fds *fds, pid_t *pid,
                               sx_error *err);

/* run() of the ops table (native_run.c). */
int sx_native_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                  sx_exec_result *result, sx_error *err);

#endif /* SX_NATIVE_H */
