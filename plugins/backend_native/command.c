/*
 * command.c - what a native run executes: the command whitelist, the
 * interpreter, the clean environment, argv and the working directory.
 * Shared by render() and run(), so that render shows exactly what run does.
 */
#define _GNU_SOURCE
#include "native.h"
#include "supervisor.h"

#include "sx/sx_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

/* Find `name` on `path_var` (absolute entries only).  Returns a malloc'ed
 * path or NULL. */
static char *path_lookup(const char *name, const char *path_var)
{
    if (path_var == NULL)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = path_var;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        if (dlen > 0 && p[0] == '/') {
            char *cand = malloc(dlen + 1 + nlen + 1);
            if (cand == NULL)
                return NULL;
            memcpy(cand, p, dlen);
            cand[dlen] = '/';
            memcpy(cand + dlen + 1, name, nlen + 1);
            if (executable_file(cand))
                return cand;
            free(cand);
        }
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    return NULL;
}

/* The merged environment (default_env, then the step's env over it) as
 * parallel arrays of borrowed pointers, in first-seen order. */
typedef struct env_view {
    size_t n;
    const char **names;
    const char **values;
} env_view;

static int env_set(env_view *env, const char *name, const char *value)
{
    for (size_t i = 0; i < env->n; i++)
        if (strcmp(env->names[i], name) == 0) {
            env->values[i] = value;
            return 0;
        }
    env->names[env->n] = name;
    env->values[env->n] = value;
    env->n++;
    return 0;
}

static int valid_env_name(const char *name)
{
    return name != NULL && name[0] != '\0' && strchr(name, '=') == NULL;
}

static char *str_join3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

static int oom(sx_error *err)
{
    return sx_error_set(err, "backend_error", "exec.native: out of memory");
}

int sx_native_cmd_prepare(const sx_native_instance *inst,
                          const sx_exec_spec *spec, sx_native_cmd *cmd,
                          sx_error *err)
{
    memset(cmd, 0, sizeof *cmd);
    const char *script = spec->script ? spec->script : "";
    size_t script_len = spec->script ? spec->script_len : 0;

    if (inst->cfg.command_whitelist.n > 0 &&
        !sx_whitelist_match(&inst->cfg.command_whitelist, script, script_len))
        return sx_error_set(err, "command_not_allowed",
                            "executor '%s' (exec.native) only runs the %zu "
                            "commands of its command_whitelist, and this "
                            "script is not one of them",
                            inst->name, inst->cfg.command_whitelist.n);

    /* The environment: only default_env and the step's env, nothing of the
     * host's own environ. */
    const sx_strmap *denv = &inst->cfg.default_env;
    const sx_strmap *senv = spec->env;
    size_t max = denv->n + (senv ? senv->n : 0);
    env_view env = {0, calloc(max + 1, sizeof(char *)),
                    calloc(max + 1, sizeof(char *))};
    if (env.names == NULL || env.values == NULL) {
        free(env.names);
        free(env.values);
        return oom(err);
    }
    int rc = -1;
    for (size_t i = 0; i < denv->n; i++)
        env_set(&env, denv->keys[i], denv->values[i]);
    for (size_t i = 0; senv && i < senv->n; i++) {
        if (!valid_env_name(senv->keys[i])) {
            sx_error_set(err, "invalid_parameter",
                         "env: '%s' is not a valid environment variable name",
                         senv->keys[i] ? senv->keys[i] : "(null)");
            goto out;
        }
        env_set(&env, senv->keys[i], senv->values[i] ? senv->values[i] : "");
    }

    /* The interpreter. */
    const char *interp = spec->interpreter;
    if (interp == NULL) {
        sx_error_set(err, "invalid_parameter",
                     "executor '%s' (exec.native): no interpreter given",
                     inst->name);
        goto out;
    }
    if (strcmp(interp, "/bin/bash") == 0 || strcmp(interp, "/bin/sh") == 0) {
        cmd->path = strdup(interp);
    } else if (strcmp(interp, "python3") == 0 || strcmp(interp, "ruby") == 0) {
        const char *path_var = NULL;
        for (size_t i = 0; i < env.n; i++)
            if (strcmp(env.names[i], "PATH") == 0)
                path_var = env.values[i];
        cmd->path = path_lookup(interp, path_var);
        if (cmd->path == NULL)
            cmd->path = str_join3("/usr/bin/", interp, "");
    } else {
        sx_error_set(err, "invalid_parameter",
                     "executor '%s' (exec.native): unsupported interpreter "
                     "'%s' (supported: /bin/bash, /bin/sh, python3, ruby)",
                     inst->name, interp);
        goto out;
    }
    if (cmd->path == NULL) {
        oom(err);
        goto out;
    }
    if (!executable_file(cmd->path)) {
        sx_error_set(err, "backend_error",
                     "executor '%s' (exec.native): interpreter '%s' is not "
                     "installed on this host (%s is missing or not "
                     "executable%s)",
                     inst->name, interp, cmd->path,
                     interp[0] == '/' ? "" : "; it was looked up on the "
                     "step's PATH, then in /usr/bin");
        goto out;
    }

    /* argv: the interpreter reads the script from the sealed memfd at fd 3;
     * the script text never goes through argv (128 KiB per string). */
    cmd->argc = 2 + spec->n_args;
    cmd->argv = calloc(cmd->argc + 1, sizeof(char *));
    if (cmd->argv == NULL) {
        oom(err);
        goto out;
    }
    cmd->argv[0] = strdup(cmd->path);
    cmd->argv[1] = strdup(SX_SUP_SCRIPT_PATH);
    if (cmd->argv[0] == NULL || cmd->argv[1] == NULL) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < spec->n_args; i++) {
        cmd->argv[2 + i] = strdup(spec->args[i] ? spec->args[i] : "");
        if (cmd->argv[2 + i] == NULL) {
            oom(err);
            goto out;
        }
    }

    cmd->envc = env.n;
    cmd->envp = calloc(env.n + 1, sizeof(char *));
    if (cmd->envp == NULL) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < env.n; i++)
        if ((cmd->envp[i] = str_join3(env.names[i], "=", env.values[i])) == NULL) {
            oom(err);
            goto out;
        }

    /* Working directory: the step's (relative = under default_work_dir),
     * else the executor's default. */
    const char *wd = spec->working_dir;
    if (wd == NULL || wd[0] == '\0')
        cmd->work_dir = strdup(inst->cfg.default_work_dir);
    else if (wd[0] == '/')
        cmd->work_dir = strdup(wd);
    else
        cmd->work_dir = str_join3(inst->cfg.default_work_dir, "/", wd);
    if (cmd->work_dir == NULL) {
        oom(err);
        goto out;
    }
    rc = 0;
out:
    free(env.names);
    free(env.values);
    if (rc != 0)
        sx_native_cmd_free(cmd);
    return rc;
}

static void free_vec(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void sx_native_cmd_free(sx_native_cmd *cmd)
{
    if (cmd == NULL)
        return;
    free(cmd->path);
    free_vec(cmd->argv, cmd->argc);
    free_vec(cmd->envp, cmd->envc);
    free(cmd->work_dir);
    memset(cmd, 0, sizeof *cmd);
}
