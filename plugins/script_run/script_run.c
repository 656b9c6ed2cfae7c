/*
 * script_run.c - the "script.run" step type.
 *
 * Validates the spec's parameters, resolves the executor, loads and limits
 * the script, hashes it (SHA-256), hands it to the executor's backend and
 * turns the backend's result into the step's output.  Backend-specific
 * parameters are passed through as JSON; a parameter the chosen backend
 * does not list in supported_params is refused, never dropped.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/security_section.h"
#include "params.h"
#include "sx/sx_backend.h"
#include "sx/sx_step.h"
#include "sx/sx_util.h"

/* script_executor.security: the spec's section, one table shared with the
 * policy plugin (plugins/common/security_section.h) so both accept the same
 * keys; this plugin enforces the script limits and timeouts, the policy
 * plugin the rest (RBAC permission, blocked commands), the backends the pod
 * security keys. */
typedef struct sx_script_run {
    sx_plugin_ctx *ctx;
    const sx_host_api *host;
    sx_security_cfg sec;
} sx_script_run;

/* Everything a request resolves to before the backend is called. */
typedef struct sx_prepared {
    cJSON *with;
    sx_service backend;
    const char *interpreter;
    char *script;
    size_t script_len;
    char hash[7 + 64 + 1];
    const char *args[256];
    size_t n_args;
    sx_strmap env;             /* borrowed strings from `with` or env_text */
    char **env_text;           /* numbers/bools turned to text */
    const char *working_dir;
    const char *stdin_data;
    int64_t timeout_ms;
    char *params_json;
    sx_exec_spec spec;
    int policy_refused;        /* a policy plugin refused the script: rejected */
} sx_prepared;

static const char *const interpreters[] = {"/bin/bash", "/bin/sh", "python3", "ruby", NULL};

static int sr_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_script_run *sr = calloc(1, sizeof *sr);
    if (sr == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    sr->ctx = ctx;
    sr->host = host;
    if (host->config_apply(ctx, host->config_section(ctx, "security"), sx_security_options,
                           &sr->sec, err) != 0 ||
        sx_security_cfg_check(&sr->sec, err) != 0) {
        host->config_free(sx_security_options, &sr->sec);
        free(sr);
        return -1;
    }
    *state = sr;
    return 0;
}

static void sr_fini(void *state)
{
    sx_script_run *sr = state;
    sr->host->config_free(sx_security_options, &sr->sec);
    free(sr);
}

static void prepared_free(sx_prepared *p)
{
    cJSON_Delete(p->with);
    free(p->script);
    if (p->env_text) {
        for (size_t i = 0; i < p->env.n; i++)
            free(p->env_text[i]);
        free(p->env_text);
    }
    free(p->env.keys);
    free(p->env.values);
    free(p->params_json);
}

static const char *str_param(const cJSON *with, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(with, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void sha256_hex(const char *data, size_t len, char out[7 + 64 + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static size_t count_lines(const char *s, size_t len)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            lines++;
    if (len > 0 && s[len - 1] != '\n')
        lines++;
    return lines;
}

/* Parameters the policy plugin enforces, whatever the backend (refused
 * in prepare() when no policy plugin is loaded). */
static int is_policy_param(const char *name)
{
    return strcmp(name, "allowed_commands") == 0 || strcmp(name, "blocked_commands") == 0;
}

/* Backend-specific parameters set in `with` that the backend does not
 * honour.  Returns -1 with err naming all of them. */
static int check_supported(const cJSON *with, const sx_service *backend, sx_error *err)
{
    const sx_backend_ops *ops = backend->ops;
    char names[768] = "";
    size_t n = 0;
    for (const cJSON *it = with->child; it; it = it->next) {
        const sx_param *p = sx_param_find(it->string);
        if (p == NULL || p->common || cJSON_IsNull(it) || is_policy_param(it->string))
            continue;
        int ok = 0;
        for (const char *const *s = ops->supported_params; s && *s && !ok; s++)
            ok = strcmp(*s, it->string) == 0;
        if (ok)
            continue;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", n ? ", " : "", it->string);
        n++;
    }
    if (n == 0)
        return 0;
    return sx_error_set(err, "unsupported_parameter",
                        "executor '%s' (%s) cannot honour %s: %s; use an executor whose backend "
                        "supports %s", backend->name, backend->provides,
                        n == 1 ? "this parameter" : "these parameters", names,
                        n == 1 ? "it" : "them");
}

static int parse_env(sx_prepared *p, sx_error *err)
{
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(p->with, "env");
    size_t n = cJSON_IsObject(env) ? (size_t)cJSON_GetArraySize(env) : 0;
    if (n == 0)
        return 0;
    p->env.keys = calloc(n, sizeof(char *));
    p->env.values = calloc(n, sizeof(char *));
    p->env_text = calloc(n, sizeof(char *));
    if (!p->env.keys || !p->env.values || !p->env_text)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (const cJSON *it = env->child; it; it = it->next) {
        const char *k = it->string;
        if (k[0] == '\0' || strchr(k, '=') != NULL)
            return sx_error_set(err, "invalid_parameter",
                                "with.env: '%s' is not a valid environment variable name", k);
        const char *v;
        if (cJSON_IsString(it)) {
            v = it->valuestring;
        } else {
            char buf[64];
            if (cJSON_IsBool(it))
                snprintf(buf, sizeof buf, "%s", cJSON_IsTrue(it) ? "true" : "false");
            else if (it->valuedouble == (double)(long long)it->valuedouble)
                snprintf(buf, sizeof buf, "%lld", (long long)it->valuedouble);
            else
                snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            p->env_text[p->env.n] = strdup(buf);
            v = p->env_text[p->env.n];
        }
        p->env.keys[p->env.n] = (char *)k;
        p->env.values[p->env.n] = (char *)v;
        p->env.n++;
    }
    return 0;
}

/* Is a policy plugin (script validator) loaded?  Asked per request: the
 * policy plugin may initialise after this one. */
static int policy_loaded(sx_script_run *sr)
{
    sx_service svc;
    return sr->host->service_find(sr->ctx, SX_KIND_POLICY, NULL, &svc) == 0;
}

/* Validate `with` and resolve everything, up to the policy's verdict on the
 * script (exec NULL for render: the host knows the render in progress).
 * Returns 0, or -1 with err. */
static int prepare(sx_script_run *sr, const sx_step_request *req, sx_exec *exec, sx_prepared *p,
                   sx_error *err)
{
    memset(p, 0, sizeof *p);
    p->with = cJSON_Parse(req->with_json ? req->with_json : "{}");
    if (!cJSON_IsObject(p->with))
        return sx_error_set(err, "invalid_parameter", "'with' must be a JSON object");
    if (sx_params_check(p->with, err) != 0)
        return -1;

    const char *inline_script = str_param(p->with, "inline_script");
    const char *script_path = str_param(p->with, "script_path");
    if ((inline_script != NULL) == (script_path != NULL))
        return sx_error_set(err, "invalid_parameter",
                            "exactly one of with.inline_script and with.script_path is required");

    p->interpreter = str_param(p->with, "interpreter");
    if (p->interpreter == NULL)
        p->interpreter = "/bin/bash";
    int known = 0;
    for (const char *const *i = interpreters; *i && !known; i++)
        known = strcmp(*i, p->interpreter) == 0;
    if (!known)
        return sx_error_set(err, "invalid_parameter",
                            "with.interpreter '%s' is not supported; use /bin/bash, /bin/sh, "
                            "python3 or ruby", p->interpreter);

    p->timeout_ms = sr->sec.default_timeout_ms;
    const char *timeout = str_param(p->with, "timeout");
    if (timeout && (sx_duration_parse(timeout, &p->timeout_ms) != 0 || p->timeout_ms <= 0))
        return sx_error_set(err, "invalid_parameter",
                            "with.timeout '%s' is not a duration (e.g. \"30s\", \"10m\", \"1h\")",
                            timeout);
    if (p->timeout_ms > sr->sec.max_timeout_ms)
        return sx_error_set(err, "invalid_parameter",
                            "with.timeout '%s' exceeds security.max_timeout (%llds)", timeout,
                            (long long)(sr->sec.max_timeout_ms / 1000));

    const cJSON *bl = cJSON_GetObjectItemCaseSensitive(p->with, "backoff_limit");
    if (cJSON_IsNumber(bl) && (bl->valuedouble < 0 || bl->valuedouble > 3))
        return sx_error_set(err, "invalid_parameter", "with.backoff_limit must be 0..3");
    const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(p->with, "ttl_seconds_after_finished");
    if (cJSON_IsNumber(ttl) && ttl->valuedouble < 0)
        return sx_error_set(err, "invalid_parameter", "with.ttl_seconds_after_finished must be >= 0");
    const char *policy = str_param(p->with, "image_pull_policy");
    if (policy && strcmp(policy, "Always") && strcmp(policy, "IfNotPresent") && strcmp(policy, "Never"))
        return sx_error_set(err, "invalid_parameter",
                            "with.image_pull_policy '%s' must be Always, IfNotPresent or Never", policy);

    const char *executor = str_param(p->with, "executor");
    if (sr->host->service_find(sr->ctx, SX_KIND_BACKEND, executor, &p->backend) != 0)
        return sx_error_set(err, "executor_not_found",
                            executor ? "no executor named '%s' is configured (see `sxctl describe`)"
                                     : "%sno executor given and no default_executor configured",
                            executor ? executor : "");
    /* Policy parameters need the policy plugin; refusing beats ignoring. */
    const char *policy_params[] = {"allowed_commands", "blocked_commands"};
    for (size_t i = 0; i < 2 && !policy_loaded(sr); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->with, policy_params[i]);
        if (v && !cJSON_IsNull(v))
            return sx_error_set(err, "unsupported_parameter",
                                "with.%s needs the script validator (policy plugin), which is not "
                                "loaded in this deployment", policy_params[i]);
    }
    if (check_supported(p->with, &p->backend, err) != 0)
        return -1;

    const sx_backend_ops *ops = p->backend.ops;
    if (inline_script) {
        p->script_len = strlen(inline_script);
        p->script = malloc(p->script_len + 1);
        if (p->script == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        memcpy(p->script, inline_script, p->script_len + 1);
    } else {
        if (ops->load_script == NULL)
            return sx_error_set(err, "unsupported_parameter",
                                "executor '%s' (%s) cannot run with.script_path",
                                p->backend.name, p->backend.provides);
        if (ops->load_script(p->backend.instance, script_path, &p->script, &p->script_len, err) != 0)
            return -1;
    }
    if ((int64_t)p->script_len > sr->sec.max_script_size)
        return sx_error_set(err, "script_too_large",
                            "script is %zu bytes, above security.max_script_size (%lld bytes)",
                            p->script_len, (long long)sr->sec.max_script_size);
    size_t lines = count_lines(p->script, p->script_len);
    if ((int64_t)lines > sr->sec.max_script_lines)
        return sx_error_set(err, "script_too_large",
                            "script has %zu lines, above security.max_script_lines (%lld)", lines,
                            (long long)sr->sec.max_script_lines);
    sha256_hex(p->script, p->script_len, p->hash);
    /* the policy plugins' verdict on the text that will run (blocked
     * commands, allowlist); the host adds the findings to the reply */
    if (sr->host->exec_check_script(exec, p->interpreter, p->script, p->script_len, NULL, err) != 0) {
        p->policy_refused = 1;
        return -1;
    }

    const cJSON *args = cJSON_GetObjectItemCaseSensitive(p->with, "args");
    for (const cJSON *a = cJSON_IsArray(args) ? args->child : NULL; a; a = a->next) {
        if (p->n_args == sizeof p->args / sizeof p->args[0])
            return sx_error_set(err, "invalid_parameter", "with.args: at most 256 arguments");
        p->args[p->n_args++] = a->valuestring;
    }
    if (parse_env(p, err) != 0)
        return -1;
    p->working_dir = str_param(p->with, "working_dir");
    p->stdin_data = str_param(p->with, "stdin");
    p->params_json = cJSON_PrintUnformatted(p->with);

    sx_exec_spec *s = &p->spec;
    s->struct_size = sizeof *s;
    s->execution_id = req->execution_id;
    s->step_name = req->step_name;
    s->runbook_id = req->runbook_id;
    s->user = req->user;
    s->interpreter = p->interpreter;
    s->script = p->script;
    s->script_len = p->script_len;
    s->script_hash = p->hash;
    s->args = p->args;
    s->n_args = p->n_args;
    s->working_dir = p->working_dir;
    s->env = &p->env;
    s->stdin_data = p->stdin_data;
    s->stdin_len = p->stdin_data ? strlen(p->stdin_data) : 0;
    s->timeout_ms = p->timeout_ms;
    s->params_json = p->params_json;
    return 0;
}

/* Codes that mean "the request was wrong" rather than "we failed". */
static sx_status status_for_error(const char *code)
{
    static const char *const rejected[] = {"invalid_parameter", "unsupported_parameter",
                                           "executor_not_found", "script_too_large",
                                           "command_not_allowed", "invalid_request", NULL};
    for (const char *const *c = rejected; *c; c++)
        if (strcmp(*c, code) == 0)
            return SX_STATUS_REJECTED;
    if (strcmp(code, "cancelled") == 0)
        return SX_STATUS_CANCELLED;
    return SX_STATUS_ERROR;
}

/* Map the backend's result onto the step status (and error, if any). */
static sx_status status_for_result(const sx_exec_result *r, const sx_prepared *p, sx_error *err)
{
    switch (r->termination) {
    case SX_TERM_EXITED:
        if (r->exit_code == 0)
            return SX_STATUS_SUCCEEDED;
        sx_error_set(err, "script_failed", "the script exited with code %d", r->exit_code);
        return SX_STATUS_FAILED;
    case SX_TERM_SIGNALED:
        sx_error_set(err, "killed_by_signal", "the script was killed by signal %d", r->signal);
        return SX_STATUS_FAILED;
    case SX_TERM_OOM_KILLED:
        sx_error_set(err, "oom_killed", "the script was killed for exceeding its memory limit");
        return SX_STATUS_FAILED;
    case SX_TERM_TIMED_OUT:
        sx_error_set(err, "timeout", "the script ran longer than its timeout (%lldms) and was killed",
                     (long long)p->timeout_ms);
        return SX_STATUS_TIMED_OUT;
    case SX_TERM_CANCELLED:
        sx_error_set(err, "cancelled", "the execution was cancelled and the script was killed");
        return SX_STATUS_CANCELLED;
    case SX_TERM_LOST:
    case SX_TERM_NONE:
        break;
    }
    sx_error_set(err, "execution_lost", "the backend lost track of the script");
    return SX_STATUS_ERROR;
}

static char *output_json(const sx_prepared *p, const sx_exec_result *r)
{
    cJSON *o = cJSON_CreateObject();
    if (r->termination == SX_TERM_EXITED)
        cJSON_AddNumberToObject(o, "exit_code", r->exit_code);
    else
        cJSON_AddNullToObject(o, "exit_code");
    cJSON_AddNumberToObject(o, "duration_seconds", r->duration_seconds);
    cJSON_AddStringToObject(o, "script_hash", p->hash);
    cJSON_AddNullToObject(o, "approved_by");
    cJSON_AddNullToObject(o, "approved_at");
    cJSON *ru = cJSON_AddObjectToObject(o, "resource_usage");
    /* negative = the backend could not measure it */
    if (r->cpu_millis >= 0)
        cJSON_AddNumberToObject(ru, "cpu_millis", (double)r->cpu_millis);
    else
        cJSON_AddNullToObject(ru, "cpu_millis");
    if (r->memory_mb >= 0)
        cJSON_AddNumberToObject(ru, "memory_mb", (double)r->memory_mb);
    else
        cJSON_AddNullToObject(ru, "memory_mb");
    if (r->job_name[0])
        cJSON_AddStringToObject(o, "job_name", r->job_name);
    else
        cJSON_AddNullToObject(o, "job_name");
    if (r->pod_name[0])
        cJSON_AddStringToObject(o, "pod_name", r->pod_name);
    else
        cJSON_AddNullToObject(o, "pod_name");
    cJSON_AddStringToObject(o, "executor", p->backend.name);
    cJSON_AddStringToObject(o, "backend", p->backend.provides);
    cJSON *t = cJSON_AddObjectToObject(o, "termination");
    cJSON_AddStringToObject(t, "reason", sx_termination_name(r->termination));
    if (r->signal)
        cJSON_AddNumberToObject(t, "signal", r->signal);
    else
        cJSON_AddNullToObject(t, "signal");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void set_info(sx_script_run *sr, sx_exec *exec, const sx_prepared *p)
{
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "executor", p->backend.name);
    cJSON_AddStringToObject(info, "backend", p->backend.provides);
    cJSON_AddStringToObject(info, "interpreter", p->interpreter);
    cJSON_AddStringToObject(info, "script_hash", p->hash);
    cJSON_AddNumberToObject(info, "script_bytes", (double)p->script_len);
    cJSON_AddNumberToObject(info, "timeout_seconds", (double)p->timeout_ms / 1000.0);
    /* The audit sink keeps the text only with audit.log_script_content, and
     * env values only with audit.log_environment. */
    cJSON *script = cJSON_CreateStringReference(p->script);
    if (memchr(p->script, '\0', p->script_len) == NULL)
        cJSON_AddItemToObject(info, "script", script);
    else
        cJSON_Delete(script);
    cJSON *env = cJSON_AddObjectToObject(info, "env");
    for (size_t i = 0; i < p->env.n; i++)
        cJSON_AddStringToObject(env, p->env.keys[i], p->env.values[i]);
    char *json = cJSON_PrintUnformatted(info);
    cJSON_Delete(info);
    if (json)
        sr->host->exec_set_info(exec, json);
    free(json);
}

static int sr_execute(void *state, const sx_step_request *req, sx_exec *exec, sx_step_reply *reply)
{
    sx_script_run *sr = state;
    sx_prepared p;
    if (prepare(sr, req, exec, &p, &reply->error) != 0) {
        reply->status = p.policy_refused ? SX_STATUS_REJECTED : status_for_error(reply->error.code);
        if (p.hash[0]) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "script_hash", p.hash);
            reply->output_json = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
        }
        prepared_free(&p);
        return 0;
    }
    set_info(sr, exec, &p);
    const sx_backend_ops *ops = p.backend.ops;
    sx_exec_result result;
    memset(&result, 0, sizeof result);
    result.struct_size = sizeof result;
    double t0 = sx_now_monotonic();
    if (ops->run(p.backend.instance, &p.spec, exec, &result, &reply->error) != 0) {
        if (reply->error.code[0] == '\0')
            sx_error_set(&reply->error, "backend_error", "executor '%s' failed without a reason",
                         p.backend.name);
        reply->status = status_for_error(reply->error.code);
        prepared_free(&p);
        return 0;
    }
    if (result.duration_seconds <= 0)
        result.duration_seconds = sx_now_monotonic() - t0;
    reply->status = status_for_result(&result, &p, &reply->error);
    reply->output_json = output_json(&p, &result);
    prepared_free(&p);
    return 0;
}

static int sr_render(void *state, const sx_step_request *req, sx_step_reply *reply)
{
    sx_script_run *sr = state;
    sx_prepared p;
    if (prepare(sr, req, NULL, &p, &reply->error) != 0) {
        reply->status = p.policy_refused ? SX_STATUS_REJECTED : status_for_error(reply->error.code);
        prepared_free(&p);
        return 0;
    }
    const sx_backend_ops *ops = p.backend.ops;
    char *plan = NULL;
    if (ops->render(p.backend.instance, &p.spec, &plan, &reply->error) != 0) {
        reply->status = status_for_error(reply->error.code[0] ? reply->error.code : "backend_error");
        prepared_free(&p);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "executor", p.backend.name);
    cJSON_AddStringToObject(o, "backend", p.backend.provides);
    cJSON_AddStringToObject(o, "interpreter", p.interpreter);
    cJSON_AddStringToObject(o, "script_hash", p.hash);
    cJSON_AddNumberToObject(o, "timeout_seconds", (double)p.timeout_ms / 1000.0);
    cJSON *pj = plan ? cJSON_Parse(plan) : NULL;
    cJSON_AddItemToObject(o, "plan", pj ? pj : cJSON_CreateNull());
    free(plan);
    reply->output_json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    reply->status = SX_STATUS_SUCCEEDED;
    prepared_free(&p);
    return 0;
}

static char *sr_describe(void *state)
{
    (void)state;
    return sx_params_describe();
}

static const sx_step_ops sr_ops = {
    .struct_size = sizeof(sx_step_ops),
    .execute = sr_execute,
    .render = sr_render,
    .describe = sr_describe,
};

static const sx_plugin_descriptor sr_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "script_run",
    .version = "0.1.0",
    .description = "script.run: run a shell, Python or Ruby script on a named executor",
    .kind = SX_KIND_STEP_TYPE,
    .provides = "script.run",
    .init = sr_init,
    .fini = sr_fini,
    .ops = &sr_ops,
};

SX_PLUGIN_DEFINE(sr_descriptor)
