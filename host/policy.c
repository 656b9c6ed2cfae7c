/* policy.c - the host's policy pipeline (see policy.h). */
#define _POSIX_C_SOURCE 200809L
#include "policy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "sx/sx_util.h"

struct sx_policy_ctx {
    sx_host *host;
    sx_identity identity;
    int64_t peer_uid;           /* the verified peer's uid (method peer_uid), else -1 */
    char *executor;             /* as requested or defaulted; NULL = none */
    char *executor_kind;        /* NULL when the executor is unknown */
    char *with_json;            /* final */
    pthread_mutex_t lock;       /* guards the refusal below */
    char refusal_code[SX_ERROR_CODE_MAX];
    char *refusal_findings;
};

static _Thread_local sx_policy_ctx *render_ctx;

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

static const char *const mode_names[] = {"trusted", "jwt", "peer_uid", "jwt_or_peer_uid"};

const char *sx_auth_mode_name(int mode)
{
    return mode >= 0 && mode < 4 ? mode_names[mode] : "?";
}

typedef struct auth_settings {
    char *mode;
    char *ipc_permissions;
} auth_settings;

static const sx_option auth_options[] = {
    {SX_OPT_STRING, "mode", NULL, 0, offsetof(auth_settings, mode),
     "trusted | jwt | peer_uid | jwt_or_peer_uid (default: trusted without a policy plugin, "
     "else jwt_or_peer_uid on ipc:// and jwt elsewhere)"},
    {SX_OPT_STRING, "ipc_permissions", NULL, 0, offsetof(auth_settings, ipc_permissions),
     "ipc:// only: the socket file's mode, octal (\"0660\"); default: the umask's"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static size_t n_policies(const sx_host *host)
{
    size_t n = 0;
    for (size_t i = 0; i < host->n_plugins; i++)
        if (host->plugins[i]->desc->kind == SX_KIND_POLICY && host->plugins[i]->initialized)
            n++;
    return n;
}

int sx_policy_configure(sx_host *host, sx_error *err)
{
    host->ipc_permissions = -1;
    auth_settings a;
    const sx_config_node *node = host->settings.auth;
    if (sx_cfg_apply(node, auth_options, &a, err) != 0) {
        sx_cfg_options_free(auth_options, &a);
        return -1;
    }
    const char *listen = host->settings.listen ? host->settings.listen : "";
    int ipc = strncmp(listen, "ipc://", 6) == 0;
    size_t policies = n_policies(host);
    int rv = 0;
    int mode = policies == 0 ? SX_AUTH_TRUSTED : ipc ? SX_AUTH_JWT_OR_PEER_UID : SX_AUTH_JWT;
    if (a.mode) {
        mode = -1;
        for (int m = 0; m < 4; m++)
            if (strcmp(a.mode, mode_names[m]) == 0)
                mode = m;
        if (mode < 0)
            rv = sx_error_set(err, "invalid_config", "script_executor.server.auth.mode: '%s' is not "
                              "trusted, jwt, peer_uid or jwt_or_peer_uid", a.mode);
    }
    if (rv == 0 && mode != SX_AUTH_TRUSTED && policies == 0)
        rv = sx_error_set(err, "invalid_config", "script_executor.server.auth.mode %s needs a "
                          "policy plugin to verify callers: add one (e.g. policy) to plugins.load",
                          mode_names[mode]);
    if (rv == 0 && (mode == SX_AUTH_PEER_UID || mode == SX_AUTH_JWT_OR_PEER_UID) && !ipc)
        rv = sx_error_set(err, "invalid_config", "script_executor.server.auth.mode %s needs an "
                          "ipc:// listener (the peer's uid is known only there); %s is not one",
                          mode_names[mode], listen);
    if (rv == 0 && a.ipc_permissions) {
        char *end = NULL;
        long perm = strtol(a.ipc_permissions, &end, 8);
        if (!ipc || end == a.ipc_permissions || *end != '\0' || perm < 0 || perm > 0777)
            rv = sx_error_set(err, "invalid_config", "script_executor.server.auth.ipc_permissions "
                              "'%s' must be an octal file mode such as \"0660\"%s",
                              a.ipc_permissions, ipc ? "" : ", for an ipc:// listener");
        else
            host->ipc_permissions = (int)perm;
    }
    sx_cfg_options_free(auth_options, &a);
    if (rv != 0)
        return -1;
    host->auth_mode = mode;
    if (mode == SX_AUTH_TRUSTED && policies > 0)
        sx_log(SX_LOG_WARN, "policy", "server.auth.mode is trusted: callers on %s are not "
                                      "verified, caller.user and caller.groups are taken as sent",
               listen);
    const sx_config_node *sec = sx_cfg_get(host->root, "security");
    if (policies == 0 && sx_cfg_len(sx_cfg_get(sec, "blocked_commands")) > 0)
        sx_log(SX_LOG_WARN, "policy", "security.blocked_commands is configured but no policy "
                                      "plugin (script validator) is loaded: it is not enforced "
                                      "in this deployment");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Authentication                                                       */
/* ------------------------------------------------------------------ */

static int dup_identity(sx_identity *id, const char *user, const char *const *groups, size_t n,
                        const char *method, sx_error *err)
{
    sx_identity_clear(id);
    if (user && (id->user = strdup(user)) == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (n > 0 && (id->groups.v = calloc(n, sizeof(char *))) == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((id->groups.v[i] = strdup(groups[i])) == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        id->groups.n++;
    }
    snprintf(id->method, sizeof id->method, "%s", method);
    return 0;
}

/* The plugin chain.  0 with *id, or -1 with err. */
static int chain_authenticate(sx_host *host, const sx_caller *caller, sx_identity *id,
                              sx_error *err)
{
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_POLICY || !p->initialized)
            continue;
        const sx_policy_ops *ops = p->desc->ops;
        if (ops->authenticate == NULL)
            continue;
        sx_identity got;
        memset(&got, 0, sizeof got);
        got.struct_size = sizeof got;
        sx_error e = {{0}, {0}};
        int rv = ops->authenticate(p->state, caller, &got, &e);
        if (rv < 0) {
            sx_identity_clear(&got);
            return sx_error_set(err, e.code[0] ? e.code : "unauthenticated", "%s",
                                e.message[0] ? e.message : "the caller's credentials were refused");
        }
        if (rv == 0) {
            sx_identity_clear(&got);
            continue;
        }
        if (got.user == NULL || got.user[0] == '\0') {
            sx_identity_clear(&got);
            return sx_error_set(err, "unauthenticated", "policy plugin %s verified the caller "
                                "but named no user", p->desc->name);
        }
        if (got.method[0] == '\0')
            snprintf(got.method, sizeof got.method, "%s", p->desc->name);
        sx_identity_clear(id);
        id->user = got.user;
        id->groups = got.groups;
        memcpy(id->method, got.method, sizeof id->method);
        return 0;
    }
    if (caller->token)
        return sx_error_set(err, "unauthenticated", "no policy plugin accepted caller.token");
    if (caller->peer_uid >= 0)
        return sx_error_set(err, "unauthenticated", "the peer's uid %lld is not mapped to a user "
                            "(identity.peer_uids) and no caller.token was given",
                            (long long)caller->peer_uid);
    return sx_error_set(err, "unauthenticated", "no credentials: send caller.token (a JWT)");
}

int sx_policy_authenticate(sx_host *host, const sx_caller *caller, sx_identity *id, sx_error *err)
{
    if (n_policies(host) == 0) {
        if (caller->token)
            return sx_error_set(err, "unauthenticated", "a token was given but no policy plugin "
                                "is loaded to verify it");
        return dup_identity(id, caller->claimed_user, caller->claimed_groups,
                            caller->n_claimed_groups, "trusted", err);
    }
    return chain_authenticate(host, caller, id, err);
}

static int has_group(const sx_identity *id, const char *g)
{
    for (size_t i = 0; i < id->groups.n; i++)
        if (strcmp(id->groups.v[i], g) == 0)
            return 1;
    return 0;
}

/* Step 1 for nng requests: the listener's mode decides what is offered. */
static int authenticate_request(sx_host *host, const sx_admission *in, sx_policy_ctx *ctx,
                                sx_error *err)
{
    int mode = host->auth_mode;
    const char *listener = in->origin && in->origin->listener ? in->origin->listener
                                                              : host->settings.listen;
    if (mode == SX_AUTH_TRUSTED) {
        if (in->token)
            return sx_error_set(err, "unsupported_parameter",
                                n_policies(host) == 0
                                    ? "caller.token is given but no policy plugin is loaded to "
                                      "verify it; this deployment trusts caller.user and "
                                      "caller.groups as sent"
                                    : "caller.token is given but this listener trusts callers "
                                      "(server.auth.mode trusted) and verifies no token");
        return dup_identity(&ctx->identity, in->claimed_user, in->claimed_groups,
                            in->n_claimed_groups, "trusted", err);
    }
    if (mode == SX_AUTH_JWT && in->token == NULL)
        return sx_error_set(err, "unauthenticated", "this listener (%s) requires caller.token, "
                            "a JWT", listener);
    if (mode == SX_AUTH_PEER_UID && in->token != NULL)
        return sx_error_set(err, "unauthenticated", "this listener (%s) identifies callers by "
                            "their Unix uid; caller.token is not accepted here", listener);
    sx_caller c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.transport = in->origin && in->origin->transport ? in->origin->transport : "nng";
    c.listener = listener;
    c.claimed_user = in->claimed_user;
    c.claimed_groups = in->claimed_groups;
    c.n_claimed_groups = in->n_claimed_groups;
    c.token = mode == SX_AUTH_PEER_UID ? NULL : in->token;
    c.peer_uid = c.peer_pid = -1;
    if (mode != SX_AUTH_JWT && in->origin) {
        c.peer_uid = in->origin->peer_uid;
        c.peer_pid = in->origin->peer_pid;
    }
    if (chain_authenticate(host, &c, &ctx->identity, err) != 0)
        return -1;
    if (strcmp(ctx->identity.method, "peer_uid") == 0)
        ctx->peer_uid = c.peer_uid;
    /* what the caller claims must be what was verified */
    if (in->claimed_user && strcmp(in->claimed_user, ctx->identity.user) != 0)
        return sx_error_set(err, "unauthenticated", "caller.user '%s' is not the verified user "
                            "'%s' (%s)", in->claimed_user, ctx->identity.user,
                            ctx->identity.method);
    for (size_t i = 0; i < in->n_claimed_groups; i++)
        if (!has_group(&ctx->identity, in->claimed_groups[i]))
            return sx_error_set(err, "unauthenticated", "caller.groups names '%s', which the "
                                "verified identity of '%s' (%s) does not have",
                                in->claimed_groups[i], ctx->identity.user, ctx->identity.method);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Admission                                                            */
/* ------------------------------------------------------------------ */

static sx_policy_ctx *ctx_new(sx_host *host)
{
    sx_policy_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->host = host;
    ctx->identity.struct_size = sizeof ctx->identity;
    ctx->peer_uid = -1;
    pthread_mutex_init(&ctx->lock, NULL);
    return ctx;
}

void sx_policy_ctx_free(sx_policy_ctx *ctx)
{
    if (ctx == NULL)
        return;
    sx_identity_clear(&ctx->identity);
    free(ctx->executor);
    free(ctx->executor_kind);
    free(ctx->with_json);
    free(ctx->refusal_findings);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* Every policy plugin's authorize, `with` replacements chained. */
static int authorize(sx_host *host, const sx_admission *in, sx_policy_ctx *ctx, char **findings,
                     sx_error *err)
{
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_POLICY || !p->initialized)
            continue;
        const sx_policy_ops *ops = p->desc->ops;
        if (ops->authorize == NULL)
            continue;
        sx_policy_request req;
        memset(&req, 0, sizeof req);
        req.struct_size = sizeof req;
        req.identity = &ctx->identity;
        req.op = in->op;
        req.execution_id = in->execution_id;
        req.step_name = in->step_name;
        req.runbook_id = in->runbook_id;
        req.type = in->type;
        req.executor = ctx->executor;
        req.executor_kind = ctx->executor_kind;
        req.with_json = ctx->with_json;
        sx_policy_verdict v;
        memset(&v, 0, sizeof v);
        v.struct_size = sizeof v;
        int rv = ops->authorize(p->state, &req, &v);
        if (rv != 0) {
            free(v.with_json);
            *findings = v.findings_json;
            return sx_error_set(err, v.error.code[0] ? v.error.code : "forbidden", "%s",
                                v.error.message[0] ? v.error.message
                                                   : "refused by the policy (no reason given)");
        }
        free(v.findings_json);
        if (v.with_json) {
            cJSON *check = cJSON_Parse(v.with_json);
            int ok = cJSON_IsObject(check);
            cJSON_Delete(check);
            if (!ok) {
                free(v.with_json);
                return sx_error_set(err, "internal_error", "policy plugin %s replaced `with` by "
                                    "something that is not a JSON object", p->desc->name);
            }
            free(ctx->with_json);
            ctx->with_json = v.with_json;
        }
    }
    return 0;
}

int sx_policy_identify(sx_host *host, const sx_admission *in, sx_policy_ctx **out, sx_error *err)
{
    sx_policy_ctx *ctx = *out = ctx_new(host);
    if (ctx == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    return authenticate_request(host, in, ctx, err);
}

int sx_policy_admit(sx_host *host, const sx_admission *in, sx_policy_ctx **out, char **findings,
                    sx_error *err)
{
    *findings = NULL;
    sx_policy_ctx *ctx = *out = ctx_new(host);
    if (ctx == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (authenticate_request(host, in, ctx, err) != 0)
        return -1;

    /* the executor: with.executor, else the default; an unknown or
     * malformed one is left to the step type to refuse */
    const char *with_json = in->with_json ? in->with_json : "{}";
    cJSON *with = cJSON_Parse(with_json);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(with, "executor");
    const char *name = cJSON_IsString(ex) ? ex->valuestring : NULL;
    int malformed = ex != NULL && !cJSON_IsNull(ex) && !cJSON_IsString(ex);
    sx_executor *executor = malformed ? NULL : sx_host_executor(host, name);
    if (executor) {
        ctx->executor = strdup(executor->name);
        ctx->executor_kind = strdup(executor->kind);
        if (ctx->executor == NULL || ctx->executor_kind == NULL) { /* never skip the checks */
            cJSON_Delete(with);
            return sx_error_set(err, "out_of_memory", "out of memory");
        }
    } else if (name) {
        ctx->executor = strdup(name);
    }
    cJSON_Delete(with);

    char *rewritten = NULL;
    if (sx_host_catalog_apply(host, ctx->executor, with_json, ctx->identity.user, &rewritten,
                              err) != 0)
        return -1;
    ctx->with_json = rewritten ? rewritten : strdup(with_json);
    if (ctx->with_json == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    return authorize(host, in, ctx, findings, err);
}

const sx_identity *sx_policy_identity(const sx_policy_ctx *ctx)
{
    return &ctx->identity;
}

const char *sx_policy_with(const sx_policy_ctx *ctx)
{
    return ctx->with_json ? ctx->with_json : "{}";
}

void sx_policy_audit_fields(const sx_policy_ctx *ctx, cJSON *rec)
{
    if (ctx == NULL || ctx->identity.method[0] == '\0')
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "auth_method");
    cJSON_AddStringToObject(rec, "auth_method", ctx->identity.method);
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "groups");
    cJSON *g = cJSON_AddArrayToObject(rec, "groups");
    for (size_t i = 0; i < ctx->identity.groups.n; i++)
        cJSON_AddItemToArray(g, cJSON_CreateString(ctx->identity.groups.v[i]));
    if (ctx->peer_uid >= 0)
        cJSON_AddNumberToObject(rec, "peer_uid", (double)ctx->peer_uid);
}

const char *sx_policy_findings_for(sx_policy_ctx *ctx, const char *code)
{
    if (ctx == NULL || code == NULL)
        return NULL;
    pthread_mutex_lock(&ctx->lock);
    const char *f = strcmp(ctx->refusal_code, code) == 0 ? ctx->refusal_findings : NULL;
    pthread_mutex_unlock(&ctx->lock);
    return f;
}

/* ------------------------------------------------------------------ */
/* Script checks                                                        */
/* ------------------------------------------------------------------ */

void sx_policy_render_enter(sx_policy_ctx *ctx) { render_ctx = ctx; }

void sx_policy_render_leave(void) { render_ctx = NULL; }

int sx_policy_check_script(sx_host *host, sx_policy_ctx *ctx, const char *interpreter,
                           const char *script, size_t len, char **findings, sx_error *err)
{
    if (findings)
        *findings = NULL;
    if (ctx == NULL)
        ctx = render_ctx;
    if (ctx == NULL) {
        /* an execution the pipeline did not admit: fine only when there is
         * no policy to ask */
        if (host && n_policies(host) == 0)
            return 0;
        return sx_error_set(err, "internal_error", "exec_check_script: this execution did not go "
                            "through the policy pipeline (or no render is in progress): the "
                            "script cannot be checked");
    }
    host = ctx->host;
    if (script == NULL && len > 0)
        return sx_error_set(err, "internal_error", "exec_check_script: no script text");
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_POLICY || !p->initialized)
            continue;
        const sx_policy_ops *ops = p->desc->ops;
        if (ops->check_script == NULL)
            continue;
        sx_script_check chk;
        memset(&chk, 0, sizeof chk);
        chk.struct_size = sizeof chk;
        chk.identity = &ctx->identity;
        chk.executor = ctx->executor;
        chk.interpreter = interpreter;
        chk.script = script ? script : "";
        chk.script_len = len;
        chk.with_json = sx_policy_with(ctx);
        sx_policy_verdict v;
        memset(&v, 0, sizeof v);
        v.struct_size = sizeof v;
        int rv = ops->check_script(p->state, &chk, &v);
        free(v.with_json);
        if (rv == 0) {
            free(v.findings_json);
            continue;
        }
        sx_error_set(err, v.error.code[0] ? v.error.code : "blocked_command", "%s",
                     v.error.message[0] ? v.error.message : "the script was refused by the policy");
        pthread_mutex_lock(&ctx->lock);
        snprintf(ctx->refusal_code, sizeof ctx->refusal_code, "%s", err->code);
        free(ctx->refusal_findings);
        ctx->refusal_findings = v.findings_json ? strdup(v.findings_json) : NULL;
        pthread_mutex_unlock(&ctx->lock);
        if (findings)
            *findings = v.findings_json;
        else
            free(v.findings_json);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* describe                                                             */
/* ------------------------------------------------------------------ */

void sx_policy_describe_into(sx_host *host, cJSON *out)
{
    cJSON *auth = cJSON_AddObjectToObject(out, "auth");
    cJSON_AddStringToObject(auth, "mode", sx_auth_mode_name(host->auth_mode));
    cJSON_AddStringToObject(auth, "listener", host->settings.listen ? host->settings.listen : "");
    if (host->ipc_permissions >= 0) {
        char perm[16];
        snprintf(perm, sizeof perm, "0%03o", (unsigned)host->ipc_permissions);
        cJSON_AddStringToObject(auth, "ipc_permissions", perm);
    }
    cJSON *list = cJSON_AddArrayToObject(out, "policies");
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        if (p->desc->kind != SX_KIND_POLICY || !p->initialized)
            continue;
        const sx_policy_ops *ops = p->desc->ops;
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddStringToObject(pj, "plugin", p->desc->name);
        cJSON_AddStringToObject(pj, "provides", p->desc->provides);
        char *d = ops->describe ? ops->describe(p->state) : NULL;
        cJSON *details = d ? cJSON_Parse(d) : NULL;
        free(d);
        cJSON_AddItemToObject(pj, "details", details ? details : cJSON_CreateNull());
        cJSON_AddItemToArray(list, pj);
    }
}
