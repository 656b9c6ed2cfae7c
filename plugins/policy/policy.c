/*
 * policy.c - the "policy.default" policy plugin (SX_KIND_POLICY): caller
 * identity (identity.c: JWT, peer uid), RBAC (rbac.c), limits (step_limits.c)
 * and the script validator (validator.c on script_scan.c).
 *
 * Configuration: script_executor.security (the spec's section, shared with
 * script_run: plugins/common/security_section.h), .identity, .rbac and
 * .limits.  Everything is parsed at init and read-only afterwards, so every
 * op is safe to call concurrently.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/security_section.h"
#include "identity.h"
#include "step_limits.h"
#include "rbac.h"
#include "sx/sx_backend.h"
#include "sx/sx_policy.h"
#include "sx/sx_util.h"
#include "validator.h"

typedef struct sx_policy {
    sx_plugin_ctx *ctx;
    const sx_host_api *host;
    sx_security_cfg sec;
    sx_ident ident;
    sx_rbac rbac;
    sx_limits limits;
    sx_validator_cfg validator;
} sx_policy;

static void policy_fini(void *state)
{
    sx_policy *p = state;
    if (p == NULL)
        return;
    p->host->config_free(sx_security_options, &p->sec);
    sx_ident_free(&p->ident, p->host);
    sx_rbac_free(&p->rbac, p->host);
    free(p);
}

static int policy_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    if (host == NULL || host->abi_major != SX_ABI_MAJOR ||
        !SX_HAS_FIELD(host, sx_host_api, exec_check_script))
        return sx_error_set(err, "invalid_config", "the policy plugin needs host API 1.2 or later");
    sx_policy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    p->ctx = ctx;
    p->host = host;
    int rv = host->config_apply(ctx, host->config_section(ctx, "security"), sx_security_options,
                                &p->sec, err);
    if (rv == 0)
        rv = sx_security_cfg_check(&p->sec, err);
    if (rv == 0)
        rv = sx_validator_check_patterns(&p->sec.blocked_commands, "security.blocked_commands",
                                         "invalid_config", err);
    if (rv == 0)
        rv = sx_ident_configure(&p->ident, host, ctx, host->config_section(ctx, "identity"), err);
    if (rv == 0)
        rv = sx_rbac_configure(&p->rbac, host, ctx, host->config_section(ctx, "rbac"), err);
    if (rv == 0)
        rv = sx_limits_configure(&p->limits, p->sec.max_timeout_ms, host, ctx,
                                 host->config_section(ctx, "limits"), err);
    if (rv != 0) {
        policy_fini(p);
        return -1;
    }
    if (p->sec.required_permission == NULL || p->sec.required_permission[0] == '\0')
        host->log(ctx, SX_LOG_WARN, "security.required_permission is empty: every verified caller "
                  "may run steps on every executor that rbac.executor_permissions does not name");
    if (p->ident.jwt_on && (p->ident.jwt.issuer == NULL || p->ident.jwt.audience == NULL))
        host->log(ctx, SX_LOG_WARN, "identity.jwt: %s not set, so not checked: a token the same "
                  "key signed for another service or issuer is accepted; set both",
                  p->ident.jwt.issuer == NULL && p->ident.jwt.audience == NULL ? "issuer and audience"
                  : p->ident.jwt.issuer == NULL ? "issuer" : "audience");
    p->validator.blocked = &p->sec.blocked_commands;
    p->validator.max_script_size = p->sec.max_script_size;
    p->validator.max_script_lines = p->sec.max_script_lines;
    host->log(ctx, SX_LOG_INFO,
              "policy: jwt %s, %zu peer uid(s) mapped, %zu role(s), %zu binding(s), %zu blocked "
              "command pattern(s), required permission '%s'",
              p->ident.jwt_on ? sx_jwt_alg_name(p->ident.key.alg) : "off", p->ident.n_peers,
              p->rbac.n_roles, p->rbac.n_bindings, p->sec.blocked_commands.n,
              p->sec.required_permission ? p->sec.required_permission : "(none)");
    *state = p;
    return 0;
}

static int policy_authenticate(void *state, const sx_caller *caller, sx_identity *id,
                               sx_error *err)
{
    sx_policy *p = state;
    return sx_ident_authenticate(&p->ident, caller, (int64_t)time(NULL), id, err);
}

/* Does the executor's backend take `resources`? */
static int takes_resources(sx_policy *p, const char *executor)
{
    sx_service svc;
    if (executor == NULL || p->host->service_find(p->ctx, SX_KIND_BACKEND, executor, &svc) != 0)
        return 0;
    const sx_backend_ops *ops = svc.ops;
    for (const char *const *s = ops->supported_params; s && *s; s++)
        if (strcmp(*s, "resources") == 0)
            return 1;
    return 0;
}

static int policy_authorize(void *state, const sx_policy_request *req, sx_policy_verdict *v)
{
    sx_policy *p = state;
    cJSON *with = cJSON_Parse(req->with_json ? req->with_json : "{}");
    if (!cJSON_IsObject(with)) {
        cJSON_Delete(with);
        return sx_error_set(&v->error, "invalid_parameter", "'with' is not a JSON object");
    }
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(with, "service_account");
    if (sa && !cJSON_IsNull(sa) && !cJSON_IsString(sa)) {
        cJSON_Delete(with);
        return sx_error_set(&v->error, "invalid_parameter", "with.service_account must be a string");
    }
    int changed = 0;
    int rv = sx_rbac_authorize(&p->rbac, req->identity, p->sec.required_permission, req->executor,
                               req->executor_kind, cJSON_IsString(sa) ? sa->valuestring : NULL,
                               &v->error);
    if (rv == 0)
        rv = sx_limits_apply(&p->limits, with, takes_resources(p, req->executor), &changed,
                             &v->error);
    if (rv == 0 && changed && (v->with_json = cJSON_PrintUnformatted(with)) == NULL)
        rv = sx_error_set(&v->error, "out_of_memory", "out of memory");
    if (rv != 0 && strcmp(v->error.code, "forbidden") == 0)
        p->host->log(p->ctx, SX_LOG_INFO, "refused %s/%s: %s",
                     req->execution_id ? req->execution_id : "-",
                     req->step_name ? req->step_name : "-", v->error.message);
    cJSON_Delete(with);
    return rv;
}

static int policy_check_script(void *state, const sx_script_check *chk, sx_policy_verdict *v)
{
    sx_policy *p = state;
    return sx_validate_script(&p->validator, chk, v);
}

static cJSON *strlist_json(const sx_strlist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
    return a;
}

static char *policy_describe(void *state)
{
    sx_policy *p = state;
    cJSON *o = cJSON_CreateObject();
    if (p->sec.required_permission)
        cJSON_AddStringToObject(o, "required_permission", p->sec.required_permission);
    else
        cJSON_AddNullToObject(o, "required_permission");
    cJSON_AddItemToObject(o, "identity", sx_ident_describe(&p->ident));
    cJSON_AddItemToObject(o, "rbac", sx_rbac_describe(&p->rbac));
    cJSON *val = cJSON_AddObjectToObject(o, "validator");
    cJSON_AddItemToObject(val, "blocked_commands", strlist_json(&p->sec.blocked_commands));
    cJSON_AddNumberToObject(val, "max_script_size", (double)p->sec.max_script_size);
    cJSON_AddNumberToObject(val, "max_script_lines", (double)p->sec.max_script_lines);
    cJSON *imp = cJSON_AddArrayToObject(val, "allowlist_implicit_builtins");
    for (const char *const *b = sx_validator_implicit_builtins; *b; b++)
        cJSON_AddItemToArray(imp, cJSON_CreateString(*b));
    cJSON_AddItemToObject(o, "limits", sx_limits_describe(&p->limits));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const sx_policy_ops policy_ops = {
    .struct_size = sizeof(sx_policy_ops),
    .authenticate = policy_authenticate,
    .authorize = policy_authorize,
    .check_script = policy_check_script,
    .describe = policy_describe,
};

static const sx_plugin_descriptor policy_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "policy",
    .version = "0.1.0",
    .description = "caller identity (JWT, peer uid), RBAC, limits and the script validator",
    .kind = SX_KIND_POLICY,
    .provides = "policy.default",
    .init = policy_init,
    .fini = policy_fini,
    .ops = &policy_ops,
};

SX_PLUGIN_DEFINE(policy_descriptor)
