/*
 * approval_http.c - the approval API (the spec's "Approval API"), served on
 * the host's HTTP server under /api/v1/approvals/:
 *
 *   GET  /api/v1/approvals/pending                    those the caller may decide
 *   GET  /api/v1/approvals/{execution_id}/{step_name} the full request
 *   POST /api/v1/approvals/{execution_id}/{step_name}/approve
 *   POST /api/v1/approvals/{execution_id}/{step_name}/deny   {"reason": "..."}
 *
 * Callers authenticate with "Authorization: Bearer <JWT>", verified by the
 * policy plugins exactly as nng callers are (host->caller_authenticate).
 * 401 unauthenticated, 403 not an approver / own request, 404 unknown,
 * 409 already decided or expired, 400 bad body; JSON error bodies
 * {"error": {"code", "message"}}.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "approval_internal.h"
#include "log.h"
#include "sx/sx_policy.h"
#include "sx/sx_util.h"

#define PREFIX "/api/v1/approvals/"

static void respond_json(sx_http_response *resp, int status, cJSON *body)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = cJSON_PrintUnformatted(body);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    cJSON_Delete(body);
}

static int respond_error(sx_http_response *resp, int status, const char *code, const char *fmt, ...)
    SX_PRINTF(4, 5);
static int respond_error(sx_http_response *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    respond_json(resp, status, o);
    return 0;
}

/* Verify the bearer token.  0 with *id filled, or -1 after responding 401. */
static int authenticate(sx_approvals *a, const sx_http_request *req, sx_identity *id,
                        sx_http_response *resp)
{
    const char *auth = req->header ? req->header(req, "Authorization") : NULL;
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0') {
        respond_error(resp, 401, "unauthenticated", "send 'Authorization: Bearer <token>'");
        return -1;
    }
    sx_host *host = sx_approvals_host(a);
    sx_caller caller = {.struct_size = sizeof caller, .transport = "http", .listener = "http",
                        .token = auth + 7, .peer_uid = -1, .peer_pid = -1};
    memset(id, 0, sizeof *id);
    id->struct_size = sizeof *id;
    sx_error err = {{0}, {0}};
    if (host->api.caller_authenticate(sx_approvals_plugin(a), &caller, id, &err) != 0 || id->user == NULL) {
        sx_identity_clear(id);
        respond_error(resp, 401, "unauthenticated", "%s", err.message[0] ? err.message : "not verified");
        return -1;
    }
    return 0;
}

static int has_group(const sx_identity *id, const char *group)
{
    for (size_t i = 0; i < id->groups.n; i++)
        if (strcmp(id->groups.v[i], group) == 0)
            return 1;
    return 0;
}

/* May `id` decide this record?  NULL when yes, else why not. */
static const char *why_not_approver(const cJSON *record, const sx_identity *id)
{
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(record, "request");
    const char *requester = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "requester"));
    if (requester && strcmp(requester, id->user) == 0)
        return "own_request";
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(req, "approvers"))
        if (cJSON_IsString(g) && has_group(id, g->valuestring))
            return NULL;
    return "not_approver";
}

static int list_pending(sx_approvals *a, const sx_identity *id, sx_http_response *resp)
{
    void *state;
    const sx_approval_ops *ops = sx_approvals_store(a, &state);
    char *text = NULL;
    sx_error err = {{0}, {0}};
    if (ops->list(state, "pending", 0, sx_approval_now_ms(), &text, &err) != 0)
        return respond_error(resp, 503, "approval_store_unavailable", "%s", err.message);
    cJSON *all = cJSON_Parse(text);
    free(text);
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "approvals");
    const cJSON *rec;
    cJSON_ArrayForEach(rec, all) {
        if (why_not_approver(rec, id) != NULL)
            continue;
        cJSON *s = sx_approval_summary(rec);
        cJSON_AddItemToObject(s, "request", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rec, "request"), 1));
        cJSON_AddItemToArray(list, s);
    }
    cJSON_Delete(all);
    respond_json(resp, 200, out);
    return 0;
}

static int show(sx_approvals *a, const sx_identity *id, const char *eid, const char *step,
                sx_http_response *resp)
{
    void *state;
    const sx_approval_ops *ops = sx_approvals_store(a, &state);
    char *text = NULL;
    sx_error err = {{0}, {0}};
    if (ops->get(state, eid, step, sx_approval_now_ms(), &text, &err) != 0) {
        if (strcmp(err.code, "not_found") == 0)
            return respond_error(resp, 404, "not_found", "no approval for execution %s step %s", eid, step);
        return respond_error(resp, 503, "approval_store_unavailable", "%s", err.message);
    }
    cJSON *rec = cJSON_Parse(text);
    free(text);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "expired_now")))
        sx_approval_note_expired(a, rec);
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "expired_now");
    const char *why = why_not_approver(rec, id);
    if (why && strcmp(why, "not_approver") == 0) {
        cJSON_Delete(rec);
        return respond_error(resp, 403, "forbidden", "%s is neither the requester nor in an approver group",
                             id->user);
    }
    respond_json(resp, 200, rec);
    return 0;
}

static int decide(sx_approvals *a, const sx_identity *id, const char *eid, const char *step, int approve,
                  const sx_http_request *req, sx_http_response *resp)
{
    const char *reason = NULL;
    cJSON *body = NULL;
    if (req->body_len > 0) {
        body = cJSON_ParseWithLength(req->body, req->body_len);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(body, "reason");
        if (!cJSON_IsObject(body) || (r && !cJSON_IsString(r))) {
            cJSON_Delete(body);
            return respond_error(resp, 400, "invalid_request", "the body must be {\"reason\": \"...\"}");
        }
        for (const cJSON *it = body->child; it; it = it->next)
            if (strcmp(it->string, "reason") != 0) {
                char field[128];
                snprintf(field, sizeof field, "%s", it->string);
                cJSON_Delete(body);
                return respond_error(resp, 400, "invalid_request", "unknown field '%s'; known: reason", field);
            }
        reason = r ? r->valuestring : NULL;
    }
    void *state;
    const sx_approval_ops *ops = sx_approvals_store(a, &state);
    char *text = NULL;
    sx_error err = {{0}, {0}};
    int64_t now = sx_approval_now_ms();
    if (ops->get(state, eid, step, now, &text, &err) != 0) {
        cJSON_Delete(body);
        if (strcmp(err.code, "not_found") == 0)
            return respond_error(resp, 404, "not_found", "no approval for execution %s step %s", eid, step);
        return respond_error(resp, 503, "approval_store_unavailable", "%s", err.message);
    }
    cJSON *rec = cJSON_Parse(text);
    free(text);
    text = NULL;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "expired_now")))
        sx_approval_note_expired(a, rec);
    const char *why = why_not_approver(rec, id);
    if (why) {
        cJSON_Delete(rec);
        cJSON_Delete(body);
        if (strcmp(why, "own_request") == 0)
            return respond_error(resp, 403, "own_request", "%s requested this step and cannot %s it "
                                 "(four-eyes)", id->user, approve ? "approve" : "deny");
        return respond_error(resp, 403, "not_approver", "%s is in none of the approver groups", id->user);
    }
    /* the decision is audited (durable) before it is stored: no stored
     * decision the audit trail does not show */
    sx_host *host = sx_approvals_host(a);
    cJSON *intent = cJSON_Duplicate(rec, 1);
    cJSON_AddStringToObject(intent, "decision", approve ? "approve" : "deny");
    if (reason)
        cJSON_AddStringToObject(intent, "decision_reason", reason);
    sx_error ierr = {{0}, {0}};
    int audited = sx_approval_audit(host, "approval.decision", "approval_decision", intent, id->user, &ierr);
    cJSON_Delete(intent);
    cJSON_Delete(rec);
    if (audited != 0) {
        cJSON_Delete(body);
        return respond_error(resp, 503, "audit_unavailable", "the decision was not stored: %s", ierr.message);
    }
    int rc = ops->decide(state, eid, step, id->user, approve, reason, now, &text, &err);
    cJSON_Delete(body);
    rec = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (rc != 0) {
        int status = strcmp(err.code, "not_found") == 0 ? 404
                   : strcmp(err.code, "approval_store_unavailable") == 0 ? 503 : 409;
        if (rec && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "expired_now")))
            sx_approval_note_expired(a, rec);
        cJSON_Delete(rec);
        return respond_error(resp, status, err.code, "%s", err.message);
    }
    const char *st = sx_approval_status(rec);
    const char *topic = strcmp(st, "approved") == 0 ? "approval.granted"
                      : strcmp(st, "denied") == 0 ? "approval.denied" : "approval.approved_partly";
    const char *event = strcmp(st, "approved") == 0 ? "approval_granted"
                      : strcmp(st, "denied") == 0 ? "approval_denied" : "approval_approved_partly";
    sx_error aerr = {{0}, {0}};
    if (sx_approval_audit(host, topic, event, rec, id->user, &aerr) != 0)
        /* the decision stands and its approval.decision record is durable;
         * only this outcome record is missing */
        sx_log(SX_LOG_ERROR, "audit", "approval decision by %s on %s/%s stored, its outcome not audited: %s",
               id->user, eid, step, aerr.message);
    sx_log_event(SX_LOG_INFO, "host", event, NULL, "%s/%s %s by %s", eid, step, st, id->user);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", st);
    cJSON_AddItemToObject(out, "approval", sx_approval_summary(rec));
    cJSON_Delete(rec);
    respond_json(resp, 200, out);
    return 0;
}

int sx_approval_http(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    sx_approvals *a = arg;
    const char *path = req->path;
    if (strncmp(path, PREFIX, strlen(PREFIX)) != 0)
        return respond_error(resp, 404, "not_found", "no such route");
    const char *rest = path + strlen(PREFIX);
    int is_get = strcmp(req->method, "GET") == 0, is_post = strcmp(req->method, "POST") == 0;
    /* split: {execution_id}/{step_name}[/approve|/deny], parsed from the end */
    char buf[1024];
    if (strlen(rest) >= sizeof buf)
        return respond_error(resp, 404, "not_found", "no such route");
    snprintf(buf, sizeof buf, "%s", rest);
    char *action = NULL, *step = NULL, *eid = NULL;
    if (strcmp(buf, "pending") != 0) {
        char *last = strrchr(buf, '/');
        if (last && (strcmp(last + 1, "approve") == 0 || strcmp(last + 1, "deny") == 0)) {
            action = last + 1;
            *last = '\0';
        }
        last = strrchr(buf, '/');
        if (last == NULL || last == buf || last[1] == '\0')
            return respond_error(resp, 404, "not_found", "routes: GET pending, GET {execution_id}/{step_name}, "
                                 "POST {execution_id}/{step_name}/approve|deny");
        step = last + 1;
        *last = '\0';
        eid = buf;
    }
    if (eid == NULL ? !is_get : action ? !is_post : !is_get)
        return respond_error(resp, 405, "method_not_allowed", "%s is not allowed on %s", req->method, path);
    sx_identity id;
    if (authenticate(a, req, &id, resp) != 0)
        return 0;
    int rc;
    if (eid == NULL)
        rc = list_pending(a, &id, resp);
    else if (action == NULL)
        rc = show(a, &id, eid, step, resp);
    else
        rc = decide(a, &id, eid, step, strcmp(action, "approve") == 0, req, resp);
    sx_identity_clear(&id);
    return rc;
}
