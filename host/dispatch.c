/* dispatch.c - request routing and the execute flow (see dispatch.h). */
#define _POSIX_C_SOURCE 200809L
#include "dispatch.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approval.h"
#include "catalog.h"
#include "exec.h"
#include "executions.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "records.h"
#include "subscriptions.h"
#include "sx/sx_util.h"

#define SX_ID_MAX 253

/* A parsed request's common fields (borrowed from the cJSON tree). */
typedef struct sx_req {
    cJSON *json;
    const char *op;
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;
    const char *type;
    const char *user;
    const char *groups[64];
    size_t n_groups;
    int approval_required;
    const cJSON *with;
    const char *token;          /* caller.token: a credential, never logged */
    sx_policy_ctx *policy;      /* execute/render: what the policy pipeline decided
                                   (verified identity, final `with`); owned */
} sx_req;

static char *print_and_free(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *reply_new(const char *status, const sx_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    if (r && r->execution_id)
        cJSON_AddStringToObject(o, "execution_id", r->execution_id);
    if (r && r->step_name)
        cJSON_AddStringToObject(o, "step_name", r->step_name);
    return o;
}

static void add_error(cJSON *o, const char *code, const char *message)
{
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
}

static char *error_reply(const sx_req *r, sx_status status, const char *code, const char *fmt, ...)
    SX_PRINTF(4, 5);
static char *error_reply(const sx_req *r, sx_status status, const char *code, const char *fmt, ...)
{
    char msg[SX_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = reply_new(sx_status_name(status), r);
    add_error(o, code, msg);
    return print_and_free(o);
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SX_ID_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* Parse the envelope.  Returns NULL on success, else an error reply. */
/* The first object key that appears twice in one object, anywhere in v,
 * or NULL.  cJSON keeps both and lookups find the first, while most other
 * JSON readers keep the last: a request with duplicates could show one
 * value to an approver or an audit reader and run another. */
static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *duplicate_key(const cJSON *v)
{
    if (v == NULL)
        return NULL;
    if (cJSON_IsObject(v)) { /* sort the keys: hostile objects may have 100k members */
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            n++;
        if (n > 1) {
            const char **keys = malloc(n * sizeof *keys);
            if (keys == NULL)
                return "(out of memory)";
            size_t i = 0;
            for (const cJSON *c = v->child; c; c = c->next)
                keys[i++] = c->string ? c->string : "";
            qsort(keys, n, sizeof *keys, cmp_key);
            const char *dup = NULL;
            for (i = 1; i < n && dup == NULL; i++)
                if (strcmp(keys[i - 1], keys[i]) == 0)
                    dup = keys[i];
            free(keys);
            if (dup)
                return dup;
        }
    }
    for (const cJSON *c = v->child; c; c = c->next) {
        const char *inner = duplicate_key(c);
        if (inner)
            return inner;
    }
    return NULL;
}

static char *parse_request(sx_req *r, const char *msg, size_t len)
{
    memset(r, 0, sizeof *r);
    const char *end = NULL; /* per call: cJSON_GetErrorPtr() is process-global */
    r->json = cJSON_ParseWithLengthOpts(msg, len, &end, 0);
    if (r->json == NULL)
        return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                           "request is not valid JSON (error near byte %ld)",
                           end ? (long)(end - msg) : -1L);
    if (!cJSON_IsObject(r->json))
        return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                           "request must be a JSON object");
    const char *dup = duplicate_key(r->json);
    if (dup)
        return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                           "key '%.200s' appears twice in one object: refused, readers disagree "
                           "on which one counts", dup);
    static const char *const known[] = {"op", "execution_id", "step_name", "runbook_id", "type",
                                        "caller", "approval_required", "approvers", "with", NULL};
    for (const cJSON *it = r->json->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, it->string) == 0;
        if (!ok)
            return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                               "unknown field '%s'; known fields: op, execution_id, step_name, "
                               "runbook_id, type, caller, approval_required, approvers, with",
                               it->string);
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(r->json, "op");
    if (!cJSON_IsString(op))
        return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                           "field 'op' is required and must be a string");
    r->op = op->valuestring;
    struct { const char *name; const char **dst; } strs[] = {
        {"execution_id", &r->execution_id}, {"step_name", &r->step_name},
        {"runbook_id", &r->runbook_id}, {"type", &r->type}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, strs[i].name);
        if (v == NULL || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsString(v) || !valid_id(v->valuestring))
            return error_reply(NULL, SX_STATUS_REJECTED, "invalid_request",
                               "field '%s' must be a non-empty string of at most %d printable "
                               "characters", strs[i].name, SX_ID_MAX);
        *strs[i].dst = v->valuestring;
    }
    const cJSON *caller = cJSON_GetObjectItemCaseSensitive(r->json, "caller");
    if (caller && !cJSON_IsNull(caller)) {
        if (!cJSON_IsObject(caller))
            return error_reply(r, SX_STATUS_REJECTED, "invalid_request", "field 'caller' must be an object");
        for (const cJSON *it = caller->child; it; it = it->next) {
            if (strcmp(it->string, "user") == 0) {
                if (!cJSON_IsString(it) || !valid_id(it->valuestring))
                    return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                                       "caller.user must be a non-empty string");
                r->user = it->valuestring;
            } else if (strcmp(it->string, "groups") == 0) {
                if (!cJSON_IsArray(it))
                    return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                                       "caller.groups must be an array of strings");
                for (const cJSON *g = it->child; g; g = g->next) {
                    if (!cJSON_IsString(g) || r->n_groups == 64)
                        return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                                           "caller.groups must be at most 64 strings");
                    r->groups[r->n_groups++] = g->valuestring;
                }
            } else if (strcmp(it->string, "token") == 0) {
                /* verified (or refused) by the policy pipeline, policy.c */
                if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
                    strlen(it->valuestring) > 16384)
                    return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                                       "caller.token must be a non-empty string of at most "
                                       "16384 bytes");
                r->token = it->valuestring;
            } else {
                return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                                   "unknown field 'caller.%s'; known: user, groups, token",
                                   it->string);
            }
        }
    }
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(r->json, "approval_required");
    if (ar && !cJSON_IsBool(ar))
        return error_reply(r, SX_STATUS_REJECTED, "invalid_request", "approval_required must be a boolean");
    r->approval_required = cJSON_IsTrue(ar);
    const cJSON *approvers = cJSON_GetObjectItemCaseSensitive(r->json, "approvers");
    if (approvers) {
        int ok = cJSON_IsArray(approvers);
        for (const cJSON *a = ok ? approvers->child : NULL; a; a = a->next)
            ok = ok && cJSON_IsString(a);
        if (!ok)
            return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                               "approvers must be an array of group names");
    }
    r->with = cJSON_GetObjectItemCaseSensitive(r->json, "with");
    if (r->with && !cJSON_IsObject(r->with))
        return error_reply(r, SX_STATUS_REJECTED, "invalid_request", "field 'with' must be an object");
    if (r->with) {
        const cJSON *war = cJSON_GetObjectItemCaseSensitive(r->with, "approval_required");
        if (war && !cJSON_IsBool(war))
            return error_reply(r, SX_STATUS_REJECTED, "invalid_parameter",
                               "with.approval_required must be a boolean");
        if (cJSON_IsTrue(war))
            r->approval_required = 1;
    }
    return NULL;
}

static char *need_ids(const sx_req *r)
{
    if (r->execution_id == NULL || r->step_name == NULL)
        return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                           "op '%s' needs 'execution_id' and 'step_name'", r->op);
    return NULL;
}

static char *need_step_type(sx_host *host, const sx_req *r, struct sx_plugin_ctx **out)
{
    if (r->type == NULL)
        return error_reply(r, SX_STATUS_REJECTED, "invalid_request",
                           "op '%s' needs 'type' (e.g. \"script.run\")", r->op);
    *out = sx_host_step_type(host, r->type);
    if (*out == NULL)
        return error_reply(r, SX_STATUS_REJECTED, "unknown_step_type",
                           "no loaded plugin handles step type '%s'", r->type);
    return NULL;
}

static void fill_step_request(const sx_req *r, sx_step_request *sr, char **with_json)
{
    memset(sr, 0, sizeof *sr);
    sr->struct_size = sizeof *sr;
    sr->execution_id = r->execution_id;
    sr->step_name = r->step_name;
    sr->runbook_id = r->runbook_id;
    sr->type = r->type;
    /* the verified identity and the `with` the policy pipeline settled on */
    const sx_identity *id = sx_policy_identity(r->policy);
    sr->user = id->user;
    sr->groups = (const char *const *)id->groups.v;
    sr->n_groups = id->groups.n;
    *with_json = strdup(sx_policy_with(r->policy));
    sr->with_json = *with_json ? *with_json : "{}";
}

/* Add the findings (a JSON array text, may be NULL) to the "error" object
 * of a reply or record. */
static void add_findings(cJSON *o, const char *findings)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    cJSON *f = findings ? cJSON_Parse(findings) : NULL;
    if (cJSON_IsObject(e) && cJSON_IsArray(f))
        cJSON_AddItemToObject(e, "findings", f);
    else
        cJSON_Delete(f);
}

/* Steps 1-2 of the policy pipeline for execute and render (policy.h):
 * authenticate, image catalog, authorize.  Sets r->policy; returns NULL,
 * or the `rejected` reply (with the findings, if any). */
static char *admit(sx_host *host, sx_req *r, const sx_origin *origin)
{
    char *with_json = r->with ? cJSON_PrintUnformatted(r->with) : NULL;
    sx_admission in = {
        .op = r->op, .execution_id = r->execution_id, .step_name = r->step_name,
        .runbook_id = r->runbook_id, .type = r->type, .claimed_user = r->user,
        .claimed_groups = r->groups, .n_claimed_groups = r->n_groups, .token = r->token,
        .origin = origin, .with_json = with_json};
    char *findings = NULL;
    sx_error err = {{0}, {0}};
    int rv = sx_policy_admit(host, &in, &r->policy, &findings, &err);
    free(with_json);
    if (rv == 0 && r->policy != NULL)
        return NULL;
    cJSON *o = reply_new(sx_status_name(SX_STATUS_REJECTED), r);
    add_error(o, err.code[0] ? err.code : "out_of_memory", err.message);
    add_findings(o, findings);
    free(findings);
    return print_and_free(o);
}

/* Step 1 of the policy pipeline alone, for ops that run no step.  Sets
 * r->policy; returns NULL, or the `rejected` reply. */
static char *identify(sx_host *host, sx_req *r, const sx_origin *origin)
{
    sx_admission in = {
        .op = r->op, .execution_id = r->execution_id, .step_name = r->step_name,
        .runbook_id = r->runbook_id, .type = r->type, .claimed_user = r->user,
        .claimed_groups = r->groups, .n_claimed_groups = r->n_groups, .token = r->token,
        .origin = origin, .with_json = NULL};
    sx_error err = {{0}, {0}};
    if (sx_policy_identify(host, &in, &r->policy, &err) == 0 && r->policy != NULL)
        return NULL;
    cJSON *o = reply_new(sx_status_name(SX_STATUS_REJECTED), r);
    add_error(o, err.code[0] ? err.code : "out_of_memory", err.message);
    return print_and_free(o);
}

/* Copy the reply's output fields the audit trail keeps into `rec`. */
static void finished_fields(cJSON *rec, const cJSON *output)
{
    static const char *const keep[] = {"exit_code", "duration_seconds", "script_hash",
                                       "resource_usage", "termination", "executor", "backend",
                                       "job_name", "pod_name", "stdout", "stderr",
                                       "stdout_truncated", "stderr_truncated", NULL};
    for (const char *const *k = keep; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(output, *k);
        if (v == NULL)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(rec, *k);
        cJSON_AddItemToObject(rec, *k, cJSON_Duplicate(v, 1));
    }
}

/* The spec's execution_complete log fields (execution_id, duration_seconds,
 * exit_code, status) from the reply about to be sent, and the error code. */
static char *finish_log_fields(const sx_req *r, const cJSON *reply)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "execution_id", r->execution_id);
    cJSON_AddStringToObject(f, "step_name", r->step_name);
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(reply, "output");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(output, "duration_seconds");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(output, "exit_code");
    cJSON_AddItemToObject(f, "duration_seconds",
                          cJSON_IsNumber(d) ? cJSON_CreateNumber(d->valuedouble) : cJSON_CreateNull());
    cJSON_AddItemToObject(f, "exit_code",
                          cJSON_IsNumber(x) ? cJSON_CreateNumber(x->valuedouble) : cJSON_CreateNull());
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(reply, "status");
    cJSON_AddStringToObject(f, "status", cJSON_IsString(st) ? st->valuestring : "");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(reply, "error"), "code");
    if (cJSON_IsString(code))
        cJSON_AddStringToObject(f, "error_code", code->valuestring);
    char *text = cJSON_PrintUnformatted(f);
    cJSON_Delete(f);
    return text;
}

/* Audit a request refused before it became an execution ("every request is
 * audited"), then hand back the reply.  An audit failure here can only be
 * logged: nothing ran. */
static char *audit_refusal(sx_host *host, const sx_req *r, char *reply)
{
    cJSON *parsed = reply ? cJSON_Parse(reply) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(parsed, "error");
    /* once the policy pipeline ran, only a verified user is "user" */
    const sx_identity *id = r && r->policy ? sx_policy_identity(r->policy) : NULL;
    const char *user = id ? (id->method[0] ? id->user : NULL) : r ? r->user : NULL;
    cJSON *rec = sx_record_new_ids("request.rejected", "request_rejected", r ? r->execution_id : NULL,
                                   r ? r->step_name : NULL, r ? r->runbook_id : NULL, user);
    if (r && r->op)
        cJSON_AddStringToObject(rec, "op", r->op);
    if (r && r->user && (user == NULL || strcmp(user, r->user) != 0))
        cJSON_AddStringToObject(rec, "claimed_user", r->user);
    if (r)
        sx_policy_audit_fields(r->policy, rec);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(parsed, "status");
    if (cJSON_IsString(st))
        cJSON_AddStringToObject(rec, "status", st->valuestring);
    if (e)
        cJSON_AddItemToObject(rec, "error", cJSON_Duplicate(e, 1));
    cJSON_Delete(parsed);
    sx_error err = {{0}, {0}};
    if (sx_record_commit(host, "request.rejected", rec, &err) != 0)
        sx_log(SX_LOG_ERROR, "audit", "could not audit a refused request: %s", err.message);
    return reply;
}

/* The execute flow once admitted (and, when the step requires approval,
 * approved: `approval` is the approved record and `ast` the step as the
 * approval workflow sees it; both NULL otherwise). */
static char *execute_admitted(sx_host *host, const sx_req *r, struct sx_plugin_ctx *step,
                              sx_waiter_fn waiter, void *waiter_arg, int *parked,
                              const sx_approval_step *ast, const cJSON *approval)
{

    sx_error err = {{0}, {0}};
    sx_exec *exec;
    if (sx_exec_create(host, r->execution_id, r->step_name, r->runbook_id,
                       sx_policy_identity(r->policy)->user, &exec, &err) != 0)
        return audit_refusal(host, r, error_reply(r, SX_STATUS_ERROR, err.code, "%s", err.message));
    exec->policy = r->policy; /* borrowed: the request outlives the exec */
    char *stored = NULL;
    switch (sx_executions_begin(host->executions, r->execution_id, r->step_name, exec, &stored,
                                waiter, waiter_arg)) {
    case SX_BEGIN_DONE:
        sx_exec_destroy(exec);
        return stored;
    case SX_BEGIN_PARKED:
        sx_exec_destroy(exec);
        *parked = 1;
        return NULL;
    case SX_BEGIN_BUSY:
        sx_exec_destroy(exec);
        return audit_refusal(host, r, error_reply(r, SX_STATUS_ERROR, "busy",
                           "%lld executions are already in flight (server.max_concurrent); retry later",
                           (long long)host->settings.max_concurrent));
    case SX_BEGIN_CLOSED:
        sx_exec_destroy(exec);
        return audit_refusal(host, r, error_reply(r, SX_STATUS_ERROR, "shutting_down",
                           "the script executor is shutting down; retry on another instance"));
    case SX_BEGIN_NEW:
        break;
    }
    /* an approved step: claim the approval (exactly once, across replicas) */
    char *claim_refusal = NULL;
    if (approval && sx_approval_consume(host->approvals, ast, &claim_refusal) != 0) {
        sx_executions_abandon(host->executions, r->execution_id, r->step_name,
                              claim_refusal ? claim_refusal : "{\"status\":\"error\"}");
        sx_exec_destroy(exec);
        return claim_refusal;
    }

    /* accepted: durable before anything else happens */
    cJSON *rec = sx_record_new(exec, "exec.accepted", "execution_accepted");
    cJSON_AddStringToObject(rec, "type", r->type);
    sx_policy_audit_fields(r->policy, rec); /* auth_method, verified groups */
    if (sx_record_commit(host, "exec.accepted", rec, &err) != 0) {
        char *refusal = error_reply(r, SX_STATUS_ERROR, "audit_unavailable", "%s", err.message);
        if (approval)
            sx_approval_release(host->approvals, ast); /* it did not run */
        sx_executions_abandon(host->executions, r->execution_id, r->step_name,
                              refusal ? refusal : "{\"status\":\"error\"}");
        sx_exec_destroy(exec);
        return refusal;
    }

    sx_step_request sr;
    char *with_json;
    fill_step_request(r, &sr, &with_json);
    sx_step_reply reply = {.struct_size = sizeof reply};
    const sx_step_ops *ops = step->desc->ops;
    ops->execute(step->state, &sr, exec, &reply);
    free(with_json);
    if (reply.status == 0) {
        reply.status = SX_STATUS_ERROR;
        sx_error_set(&reply.error, "internal_error", "step plugin %s returned no status",
                     step->desc->name);
    }

    cJSON *out = reply_new(sx_status_name(reply.status), r);
    cJSON *output = reply.output_json ? cJSON_Parse(reply.output_json) : NULL;
    free(reply.output_json);
    int ran = atomic_load(&exec->started);
    if (ran) {
        if (!cJSON_IsObject(output)) {
            cJSON_Delete(output);
            output = cJSON_CreateObject();
        }
        sx_exec_add_output(exec, output);
        sx_approval_output(approval, output); /* approved_by, approved_at */
    }
    /* every non-success carries an error */
    int has_error = reply.status != SX_STATUS_SUCCEEDED;
    if (has_error && reply.error.code[0] == '\0') {
        if (reply.status == SX_STATUS_FAILED)
            sx_error_set(&reply.error, "script_failed", "the script failed");
        else
            sx_error_set(&reply.error, "internal_error", "step ended with status %s and no error",
                         sx_status_name(reply.status));
    }

    /* finished / rejected: durable before the reply leaves */
    const char *topic = ran ? "exec.finished" : "exec.rejected";
    rec = sx_record_new(exec, topic, ran ? "execution_complete" : "execution_rejected");
    cJSON_AddStringToObject(rec, "status", sx_status_name(reply.status));
    cJSON *info = sx_exec_info_copy(exec);
    /* the script text and env are in the start record already */
    cJSON_DeleteItemFromObjectCaseSensitive(info, "script");
    cJSON_DeleteItemFromObjectCaseSensitive(info, "env");
    sx_json_merge(rec, info);
    cJSON_Delete(info);
    if (output)
        finished_fields(rec, output);
    /* the script check's findings, when it is what refused the step */
    const char *findings = has_error ? sx_policy_findings_for(r->policy, reply.error.code) : NULL;
    if (has_error) {
        cJSON *e = cJSON_AddObjectToObject(rec, "error");
        cJSON_AddStringToObject(e, "code", reply.error.code);
        cJSON_AddStringToObject(e, "message", reply.error.message);
        add_findings(rec, findings);
    }
    sx_error rerr = {{0}, {0}};
    if (sx_record_commit(host, topic, rec, &rerr) != 0) {
        cJSON_ReplaceItemInObjectCaseSensitive(out, "status", cJSON_CreateString("error"));
        has_error = 1;
        reply.error = rerr;
    }
    if (output)
        cJSON_AddItemToObject(out, "output", output);
    if (has_error) {
        add_error(out, reply.error.code, reply.error.message);
        add_findings(out, findings);
    }
    char *log_fields = finish_log_fields(r, out);
    char *text = print_and_free(out);
    int show_code = has_error && strcmp(reply.error.code, sx_status_name(reply.status)) != 0;
    sx_log_event(SX_LOG_INFO, "host", ran ? "execution_complete" : "execution_rejected", log_fields,
                 "step %s/%s finished: %s%s%s", r->execution_id, r->step_name,
                 sx_status_name(reply.status), show_code ? " " : "",
                 show_code ? reply.error.code : "");
    free(log_fields);
    /* A pair whose script started is remembered so it never runs twice, and
     * so is a cancelled one (a cancel must not be undone by a resend).  A
     * refusal is not, so a corrected request can run: that includes a
     * backend saying "rejected" after exec_started (e.g. the work dir could
     * not be entered: the script never ran). */
    int remember = (ran && reply.status != SX_STATUS_REJECTED) ||
                   reply.status == SX_STATUS_CANCELLED;
    if (remember) {
        sx_executions_finish(host->executions, r->execution_id, r->step_name,
                             text ? text : "{\"status\":\"error\"}");
    } else {
        /* refused before the script started: the approval is not used up */
        if (approval)
            sx_approval_release(host->approvals, ast);
        sx_executions_abandon(host->executions, r->execution_id, r->step_name,
                              text ? text : "{\"status\":\"error\"}");
    }
    sx_exec_destroy(exec);
    return text;
}

/* The executor a step runs on: with.executor, else the default. */
static const char *step_executor(sx_host *host, const char *with_json)
{
    cJSON *w = with_json ? cJSON_Parse(with_json) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(w, "executor");
    const char *name = host->settings.default_executor;
    if (cJSON_IsString(e)) {
        sx_executor *ex = sx_host_executor(host, e->valuestring);
        if (ex)
            name = ex->name; /* host-owned: outlives the request */
    }
    cJSON_Delete(w);
    return name;
}

static char *op_execute(sx_host *host, const sx_req *r, sx_waiter_fn waiter, void *waiter_arg,
                        int *parked)
{
    char *bad = need_ids(r);
    struct sx_plugin_ctx *step = NULL;
    if (bad == NULL)
        bad = need_step_type(host, r, &step);
    if (bad)
        return audit_refusal(host, r, bad);
    if (!r->approval_required && host->approvals == NULL)
        return execute_admitted(host, r, step, waiter, waiter_arg, parked, NULL, NULL);
    if (host->approvals == NULL)
        return audit_refusal(host, r, error_reply(r, SX_STATUS_REJECTED, "approval_unavailable",
                           "step '%s' requires approval but no approval store is loaded (or "
                           "approval.enabled is false): it will not run unapproved", r->step_name));
    const sx_identity *id = sx_policy_identity(r->policy);
    const char *with_json = sx_policy_with(r->policy);
    sx_approval_step ast = {
        .execution_id = r->execution_id, .step_name = r->step_name, .runbook_id = r->runbook_id,
        .type = r->type, .executor = step_executor(host, with_json), .with_json = with_json,
        .user = id->user, .groups = (const char *const *)id->groups.v, .n_groups = id->groups.n,
        .auth_method = id->method,
        .approvers = cJSON_GetObjectItemCaseSensitive(r->json, "approvers"),
        .required = r->approval_required};
    cJSON *approval = NULL;
    char *reply = NULL;
    /* also without approval_required: a step that has an approval record
     * (pending, denied...) is held to it, so dropping the flag on a resend
     * cannot get around a deny */
    if (sx_approval_gate(host->approvals, &ast, &approval, &reply) != 0)
        return reply; /* pending / denied / expired / mismatch: audited by the workflow */
    if (approval == NULL) /* not required and never requested */
        return execute_admitted(host, r, step, waiter, waiter_arg, parked, NULL, NULL);
    char *text = execute_admitted(host, r, step, waiter, waiter_arg, parked, &ast, approval);
    cJSON_Delete(approval);
    return text;
}

static char *op_render(sx_host *host, const sx_req *r)
{
    struct sx_plugin_ctx *step = NULL;
    char *bad = need_step_type(host, r, &step);
    if (bad)
        return bad;
    sx_step_request sr;
    char *with_json;
    fill_step_request(r, &sr, &with_json);
    if (sr.execution_id == NULL)
        sr.execution_id = "render";
    if (sr.step_name == NULL)
        sr.step_name = "render";
    sx_step_reply reply = {.struct_size = sizeof reply};
    const sx_step_ops *ops = step->desc->ops;
    sx_policy_render_enter(r->policy); /* exec_check_script(NULL, ...) finds it */
    ops->render(step->state, &sr, &reply);
    sx_policy_render_leave();
    free(with_json);
    cJSON *out;
    if (reply.status == SX_STATUS_SUCCEEDED) {
        out = reply_new("ok", r);
        cJSON *plan = reply.output_json ? cJSON_Parse(reply.output_json) : NULL;
        cJSON_AddItemToObject(out, "render", plan ? plan : cJSON_CreateNull());
    } else {
        out = reply_new(sx_status_name(reply.status ? reply.status : SX_STATUS_ERROR), r);
        add_error(out, reply.error.code[0] ? reply.error.code : "internal_error", reply.error.message);
        add_findings(out, sx_policy_findings_for(r->policy, reply.error.code));
    }
    free(reply.output_json);
    int refused = reply.status != SX_STATUS_SUCCEEDED;
    char *text = print_and_free(out);
    /* a refused render is audited like a refused execute: dry runs must not
     * be a quiet way to probe the validator */
    return refused ? audit_refusal(host, r, text) : text;
}

static cJSON *parse_or_null(char *json)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    free(json);
    return o ? o : cJSON_CreateNull();
}

static char *op_describe(sx_host *host)
{
    cJSON *out = reply_new("ok", NULL);
    cJSON_AddStringToObject(out, "version", SX_HOST_VERSION);
    cJSON *abi = cJSON_AddObjectToObject(out, "abi");
    cJSON_AddNumberToObject(abi, "major", SX_ABI_MAJOR);
    cJSON_AddNumberToObject(abi, "minor", SX_ABI_MINOR);
    cJSON *steps = cJSON_AddArrayToObject(out, "step_types");
    cJSON *plugins = cJSON_AddArrayToObject(out, "plugins");
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddStringToObject(pj, "name", p->desc->name);
        cJSON_AddStringToObject(pj, "version", p->desc->version);
        cJSON_AddStringToObject(pj, "kind", sx_plugin_kind_name(p->desc->kind));
        cJSON_AddStringToObject(pj, "provides", p->desc->provides);
        if (p->desc->description)
            cJSON_AddStringToObject(pj, "description", p->desc->description);
        char abistr[32];
        snprintf(abistr, sizeof abistr, "%u.%u", p->desc->abi_major, p->desc->abi_minor);
        cJSON_AddStringToObject(pj, "abi", abistr);
        cJSON_AddStringToObject(pj, "path", p->path);
        if (p->desc->kind == SX_KIND_SERVICE && p->initialized) { /* e.g. the metrics plugin */
            const sx_service_ops *sops = p->desc->ops;
            if (sops->describe)
                cJSON_AddItemToObject(pj, "details", parse_or_null(sops->describe(p->state)));
        }
        cJSON_AddItemToArray(plugins, pj);
        if (p->desc->kind == SX_KIND_STEP_TYPE) {
            const sx_step_ops *ops = p->desc->ops;
            cJSON *sj = cJSON_CreateObject();
            cJSON_AddStringToObject(sj, "type", p->desc->provides);
            cJSON_AddStringToObject(sj, "plugin", p->desc->name);
            cJSON_AddItemToObject(sj, "parameters", parse_or_null(ops->describe(p->state)));
            cJSON_AddItemToArray(steps, sj);
        }
    }
    cJSON *execs = cJSON_AddArrayToObject(out, "executors");
    for (size_t i = 0; i < host->n_executors; i++) {
        sx_executor *ex = &host->executors[i];
        cJSON *ej = cJSON_CreateObject();
        cJSON_AddStringToObject(ej, "name", ex->name);
        cJSON_AddStringToObject(ej, "kind", ex->kind);
        cJSON_AddStringToObject(ej, "plugin", ex->plugin->desc->name);
        cJSON_AddBoolToObject(ej, "default", host->settings.default_executor &&
                                                 strcmp(host->settings.default_executor, ex->name) == 0);
        cJSON_AddNumberToObject(ej, "max_output_bytes", (double)ex->max_output_bytes);
        cJSON *params = cJSON_AddArrayToObject(ej, "supported_params");
        for (const char *const *sp = ex->ops->supported_params; sp && *sp; sp++)
            cJSON_AddItemToArray(params, cJSON_CreateString(*sp));
        cJSON_AddItemToObject(ej, "details", parse_or_null(ex->ops->describe(ex->instance)));
        cJSON_AddItemToArray(execs, ej);
    }
    cJSON_AddItemToObject(out, "http", sx_http_describe(host->http));
    cJSON_AddItemToObject(out, "subscriptions", sx_subs_describe(host->subs));
    sx_policy_describe_into(host, out); /* auth mode, policy plugins */
    cJSON_AddItemToObject(out, "image_catalog", parse_or_null(sx_host_catalog_describe(host)));
    cJSON *approval = sx_approvals_describe(host->approvals);
    cJSON_AddItemToObject(out, "approval", approval ? approval : cJSON_CreateNull());
    return print_and_free(out);
}

static char *op_health(sx_host *host)
{
    int accepting = atomic_load(&host->accepting);
    cJSON *out = reply_new("ok", NULL);
    cJSON_AddStringToObject(out, "health", accepting ? "serving" : "shutting_down");
    cJSON_AddBoolToObject(out, "accepting", accepting);
    cJSON_AddNumberToObject(out, "in_flight", (double)sx_executions_running(host->executions));
    cJSON_AddNumberToObject(out, "max_concurrent", (double)host->settings.max_concurrent);
    cJSON *plugins = cJSON_AddArrayToObject(out, "plugins");
    for (size_t i = 0; i < host->n_plugins; i++) {
        struct sx_plugin_ctx *p = host->plugins[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddStringToObject(pj, "name", p->desc->name);
        cJSON_AddStringToObject(pj, "version", p->desc->version);
        cJSON_AddStringToObject(pj, "state", p->initialized ? "ok" : "not_initialized");
        cJSON_AddItemToArray(plugins, pj);
    }
    /* events plugins' bus subscriptions lost because they fell behind */
    cJSON_AddNumberToObject(out, "bus_events_dropped", (double)sx_subs_dropped(host->subs));
    return print_and_free(out);
}

static char *not_found_reply(const sx_req *r)
{
    return error_reply(r, SX_STATUS_REJECTED, "not_found",
                       "no execution %s/%s is running or remembered", r->execution_id,
                       r->step_name);
}

static char *op_status(sx_host *host, const sx_req *r)
{
    char *bad = need_ids(r);
    if (bad)
        return bad;
    cJSON *st = sx_executions_status(host->executions, r->execution_id, r->step_name);
    if (st == NULL)
        return not_found_reply(r);
    cJSON *out = reply_new("ok", r);
    sx_json_merge(out, st);
    cJSON_Delete(st);
    return print_and_free(out);
}

static char *op_cancel(sx_host *host, const sx_req *r)
{
    char *bad = need_ids(r);
    if (bad)
        return bad;
    int rv = sx_executions_cancel(host->executions, r->execution_id, r->step_name);
    if (rv < 0)
        return not_found_reply(r);
    /* who cancelled what, durable (the run's own records follow) */
    const sx_identity *id = sx_policy_identity(r->policy);
    cJSON *rec = sx_record_new_ids("exec.cancel_requested", "cancel_requested", r->execution_id,
                                   r->step_name, r->runbook_id, id ? id->user : NULL);
    sx_policy_audit_fields(r->policy, rec);
    cJSON_AddStringToObject(rec, "outcome", rv == 0 ? "requested" : "already_finished");
    sx_error err = {{0}, {0}};
    if (sx_record_commit(host, "exec.cancel_requested", rec, &err) != 0)
        sx_log(SX_LOG_ERROR, "audit", "could not audit a cancel request: %s", err.message);
    cJSON *out = reply_new("ok", r);
    cJSON_AddStringToObject(out, "cancel", rv == 0 ? "requested" : "already_finished");
    return print_and_free(out);
}

static char *op_list(sx_host *host)
{
    cJSON *out = reply_new("ok", NULL);
    cJSON_AddItemToObject(out, "executions", sx_executions_list(host->executions));
    return print_and_free(out);
}

char *sx_dispatch(sx_host *host, const char *msg, size_t len, const sx_origin *origin,
                  sx_waiter_fn waiter, void *waiter_arg, int *parked)
{
    *parked = 0;
    if (len > (size_t)host->settings.max_message_size)
        return audit_refusal(host, NULL, error_reply(NULL, SX_STATUS_REJECTED, "message_too_large",
                           "request is %zu bytes, above server.max_message_size (%lld bytes)", len,
                           (long long)host->settings.max_message_size));
    sx_req r;
    char *reply = parse_request(&r, msg, len);
    if (reply != NULL) {
        reply = audit_refusal(host, &r, reply);
    } else {
        int step_op = strcmp(r.op, "execute") == 0 || strcmp(r.op, "render") == 0;
        /* every op but health names who asks: cancel, status, list and
         * describe (which shows the policy's setup) too */
        int other_op = !step_op && strcmp(r.op, "health") != 0;
        if (step_op && (reply = admit(host, &r, origin)) != NULL)
            reply = audit_refusal(host, &r, reply);
        else if (other_op && (reply = identify(host, &r, origin)) != NULL)
            reply = audit_refusal(host, &r, reply);
        else if (strcmp(r.op, "execute") == 0)
            reply = op_execute(host, &r, waiter, waiter_arg, parked);
        else if (strcmp(r.op, "render") == 0)
            reply = op_render(host, &r);
        else if (strcmp(r.op, "describe") == 0)
            reply = op_describe(host);
        else if (strcmp(r.op, "health") == 0)
            reply = op_health(host);
        else if (strcmp(r.op, "status") == 0)
            reply = op_status(host, &r);
        else if (strcmp(r.op, "cancel") == 0)
            reply = op_cancel(host, &r);
        else if (strcmp(r.op, "list") == 0)
            reply = op_list(host);
        else
            reply = audit_refusal(host, &r, error_reply(&r, SX_STATUS_REJECTED, "unknown_op",
                                "unknown op '%s'; known: execute, render, describe, health, "
                                "status, cancel, list", r.op));
    }
    sx_policy_ctx_free(r.policy);
    cJSON_Delete(r.json);
    return reply;
}
