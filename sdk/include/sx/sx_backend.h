/*
 * sx_backend.h - execution backends (SX_KIND_BACKEND).
 *
 * A backend plugin provides a kind of executor ("exec.native",
 * "exec.docker", ...).  The config's `executors:` list creates named
 * instances of it; each instance has its own options.  The host owns the
 * generic executor keys (`name`, `kind`, `max_output_bytes`) and hands the
 * backend the rest of the entry.
 */
#ifndef SX_BACKEND_H
#define SX_BACKEND_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * What to run, already validated by the step type.  Everything is borrowed
 * for the duration of the call.
 */
typedef struct sx_exec_spec {
    uint32_t struct_size;
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;     /* may be NULL */
    const char *user;           /* verified caller, may be NULL */
    const char *interpreter;    /* "/bin/bash", "/bin/sh", "python3", "ruby" */
    const char *script;         /* script text (not NUL-safe: use script_len) */
    size_t script_len;
    const char *script_hash;    /* "sha256:<hex>" */
    const char *const *args;    /* arguments after the script */
    size_t n_args;
    const char *working_dir;    /* NULL = the executor's default */
    const sx_strmap *env;       /* the step's env (merged over default_env) */
    const char *stdin_data;     /* NULL = no stdin */
    size_t stdin_len;
    int64_t timeout_ms;         /* > 0 */
    /* The step's whole `with` object as JSON, for backend-specific
     * parameters listed in supported_params. */
    const char *params_json;
    /* Fields above are valid for ABI minor 0. */
} sx_exec_spec;

/* What came of a run.  The caller zeroes it and sets struct_size. */
typedef struct sx_exec_result {
    uint32_t struct_size;
    sx_termination termination;
    int exit_code;              /* valid when termination == SX_TERM_EXITED */
    int signal;                 /* the signal for SIGNALED/TIMED_OUT/..., else 0 */
    double duration_seconds;    /* start of the script to its end */
    int64_t cpu_millis;         /* user + system CPU time, milliseconds;
                                   -1 = not measured (reported as null) */
    int64_t memory_mb;          /* peak resident memory, MiB; -1 = not measured */
    char job_name[256];         /* backend object names, "" when none */
    char pod_name[256];
    /* Fields above are valid for ABI minor 0. */
} sx_exec_result;

typedef struct sx_backend_ops {
    uint32_t struct_size;

    /* NULL-terminated names of `with` parameters this backend honours
     * beyond the common ones every backend must (inline_script,
     * script_path, interpreter, args, working_dir, timeout, env, stdin,
     * executor).  A step that sets any other parameter is refused with
     * "unsupported_parameter" before the backend is called.  Static. */
    const char *const *supported_params;

    /* Create the named instance from its config entry (a map without the
     * host's generic keys; borrowed).  Use host->config_apply with your option
     * table.  On success set *instance (owned by the plugin until
     * instance_destroy) and return 0; else fill err (code "invalid_config")
     * and return -1.  Main thread. */
    int (*instance_create)(void *plugin_state, const char *name,
                           const sx_config_node *config, void **instance,
                           sx_error *err);
    /* Destroy an instance; no run is in progress.  Main thread. */
    void (*instance_destroy)(void *instance);

    /* The instance's capabilities and effective options as a JSON object
     * (no secret values).  Returns a malloc(3)ed string the caller frees
     * with free(3), or NULL.  Concurrent. */
    char *(*describe)(void *instance);

    /* What run() would do, without doing it, as a JSON object (native: the
     * argv, working directory and environment names).  On success set
     * *json_out (malloc(3)ed, caller frees) and return 0; else fill err and
     * return -1.  Concurrent. */
    int (*render)(void *instance, const sx_exec_spec *spec, char **json_out,
                  sx_error *err);

    /* Run the script to completion; blocks the calling thread.  Concurrent.
     * Must: call host->exec_started() and get 0 before the script starts;
     * send output through host->exec_output(); watch
     * host->exec_cancel_fd(exec) and stop the run (the whole process tree or
     * container) when it fires; enforce spec->timeout_ms.  Returns 0 when
     * the script ran (whatever its termination) with *result filled, or -1
     * with err filled (code "backend_error", "invalid_parameter",
     * "audit_unavailable", ...) when it could not run it. */
    int (*run)(void *instance, const sx_exec_spec *spec, sx_exec *exec,
               sx_exec_result *result, sx_error *err);

    /* Optional (may be NULL): read a pre-registered script for
     * `script_path`.  On success set *text (malloc(3)ed, caller frees) and
     * *len and return 0; else fill err ("invalid_parameter") and return -1.
     * When NULL, script_path is refused as unsupported.  Concurrent. */
    int (*load_script)(void *instance, const char *script_path, char **text,
                       size_t *len, sx_error *err);

    /* Fields above are valid for ABI minor 0. */

    /* Optional (may be NULL = always ready): can the instance run steps
     * now (e.g. the Docker daemon or the Kubernetes API answers)?  Returns
     * 0, or -1 with err saying why.  Must answer within about a second
     * (readiness probes call it).  Concurrent. */
    int (*ready)(void *instance, sx_error *err);

    /* Fields above are valid for ABI minor 2. */
} sx_backend_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_BACKEND_H */
