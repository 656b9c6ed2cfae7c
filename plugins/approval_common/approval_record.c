/* approval_record.c - the approval record's state machine (see approval_record.h). */
#define _POSIX_C_SOURCE 200809L
#include "approval_record.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sx/sx_util.h"

void sx_apr_time(int64_t ms, char *buf, size_t size)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(ms % 1000));
}

static void set_string(cJSON *rec, const char *key, const char *value)
{
    cJSON *v = value ? cJSON_CreateString(value) : cJSON_CreateNull();
    if (cJSON_GetObjectItemCaseSensitive(rec, key))
        cJSON_ReplaceItemInObjectCaseSensitive(rec, key, v);
    else
        cJSON_AddItemToObject(rec, key, v);
}

static void set_time(cJSON *rec, const char *key, int64_t ms)
{
    char t[40];
    sx_apr_time(ms, t, sizeof t);
    set_string(rec, key, t);
}

cJSON *sx_apr_new(const char *execution_id, const char *step_name, const char *request_json,
                  int approvals_required, int64_t now_ms, int64_t expires_at_ms, sx_error *err)
{
    if (execution_id == NULL || execution_id[0] == '\0' || step_name == NULL || step_name[0] == '\0') {
        sx_error_set(err, "invalid_parameter", "an approval needs an execution_id and a step_name");
        return NULL;
    }
    if (approvals_required < 1 || approvals_required > 16) {
        sx_error_set(err, "invalid_parameter", "approvals_required must be 1..16, not %d",
                     approvals_required);
        return NULL;
    }
    if (expires_at_ms <= now_ms) {
        sx_error_set(err, "invalid_parameter", "an approval must expire after it is created");
        return NULL;
    }
    cJSON *request = request_json ? cJSON_Parse(request_json) : NULL;
    if (!cJSON_IsObject(request)) {
        cJSON_Delete(request);
        sx_error_set(err, "invalid_parameter", "the approval request must be a JSON object");
        return NULL;
    }
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "execution_id", execution_id);
    cJSON_AddStringToObject(rec, "step_name", step_name);
    cJSON_AddStringToObject(rec, "status", "pending");
    cJSON_AddItemToObject(rec, "request", request);
    cJSON_AddNumberToObject(rec, "approvals_required", approvals_required);
    cJSON_AddItemToObject(rec, "approvals", cJSON_CreateArray());
    set_string(rec, "denied_by", NULL);
    set_string(rec, "reason", NULL);
    set_string(rec, "decided_at", NULL);
    set_string(rec, "consumed_by", NULL);
    set_string(rec, "consumed_at", NULL);
    set_time(rec, "created_at", now_ms);
    set_time(rec, "expires_at", expires_at_ms);
    cJSON_AddNumberToObject(rec, "expires_at_ms", (double)expires_at_ms);
    return rec;
}

const char *sx_apr_status(const cJSON *rec)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(rec, "status");
    return cJSON_IsString(s) ? s->valuestring : "";
}

int64_t sx_apr_expires_ms(const cJSON *rec)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(rec, "expires_at_ms");
    return cJSON_IsNumber(e) ? (int64_t)e->valuedouble : 0;
}

static void set_status(cJSON *rec, const char *status)
{
    set_string(rec, "status", status);
}

int sx_apr_expire_if_due(cJSON *rec, int64_t now_ms)
{
    if (strcmp(sx_apr_status(rec), "pending") != 0 || sx_apr_expires_ms(rec) > now_ms)
        return 0;
    set_status(rec, "expired");
    set_time(rec, "decided_at", sx_apr_expires_ms(rec));
    return 1;
}

static int count_approvals(const cJSON *rec, const char *approver, int *found)
{
    int n = 0;
    *found = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(rec, "approvals")) {
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(a, "by");
        if (cJSON_IsString(by) && approver && strcmp(by->valuestring, approver) == 0)
            *found = 1;
        n++;
    }
    return n;
}

int sx_apr_decide(cJSON *rec, const char *approver, int approve, const char *reason,
                  int64_t now_ms, sx_error *err)
{
    if (approver == NULL || approver[0] == '\0')
        return sx_error_set(err, "invalid_parameter", "a decision needs the approver's name");
    sx_apr_expire_if_due(rec, now_ms);
    const char *st = sx_apr_status(rec);
    if (strcmp(st, "expired") == 0)
        return sx_error_set(err, "expired", "the approval expired at %s",
                            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "expires_at")));
    if (strcmp(st, "pending") != 0)
        return sx_error_set(err, "already_decided", "the approval is already %s", st);
    int found;
    int n = count_approvals(rec, approver, &found);
    if (!approve) {
        set_status(rec, "denied");
        set_string(rec, "denied_by", approver);
        set_string(rec, "reason", reason ? reason : "");
        set_time(rec, "decided_at", now_ms);
        return 0;
    }
    if (found)
        return sx_error_set(err, "duplicate_approver", "%s has already approved it; %d distinct "
                            "approvers are required", approver,
                            (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "approvals_required")));
    char at[40];
    sx_apr_time(now_ms, at, sizeof at);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "by", approver);
    cJSON_AddStringToObject(a, "at", at);
    if (reason && reason[0])
        cJSON_AddStringToObject(a, "reason", reason);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(rec, "approvals"), a);
    int need = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec, "approvals_required"));
    if (n + 1 >= need) {
        set_status(rec, "approved");
        set_time(rec, "decided_at", now_ms);
    }
    return 0;
}

int sx_apr_consume(cJSON *rec, const char *claimer, int64_t now_ms, sx_error *err)
{
    sx_apr_expire_if_due(rec, now_ms);
    const char *st = sx_apr_status(rec);
    if (strcmp(st, "consumed") == 0)
        return sx_error_set(err, "already_consumed", "the approved step already ran (%s)",
                            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "consumed_by")));
    if (strcmp(st, "approved") != 0)
        return sx_error_set(err, "not_approved", "the approval is %s, not approved", st);
    set_status(rec, "consumed");
    set_string(rec, "consumed_by", claimer ? claimer : "");
    set_time(rec, "consumed_at", now_ms);
    return 0;
}

int sx_apr_release(cJSON *rec, const char *claimer, sx_error *err)
{
    const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "consumed_by"));
    if (strcmp(sx_apr_status(rec), "consumed") != 0 || by == NULL || claimer == NULL ||
        strcmp(by, claimer) != 0)
        return sx_error_set(err, "not_consumed", "the approval is not consumed by %s",
                            claimer ? claimer : "?");
    set_status(rec, "approved");
    set_string(rec, "consumed_by", NULL);
    set_string(rec, "consumed_at", NULL);
    return 0;
}

int sx_apr_apply(cJSON *rec, const sx_apr_change *ch, int64_t now_ms, int *write_back,
                 int *expired_now, sx_error *err)
{
    *expired_now = sx_apr_expire_if_due(rec, now_ms);
    int rc = 0;
    switch (ch->op) {
    case SX_APR_GET: break;
    case SX_APR_DECIDE: rc = sx_apr_decide(rec, ch->who, ch->approve, ch->reason, now_ms, err); break;
    case SX_APR_CONSUME: rc = sx_apr_consume(rec, ch->who, now_ms, err); break;
    case SX_APR_RELEASE: rc = sx_apr_release(rec, ch->who, err); break;
    }
    *write_back = (rc == 0 && ch->op != SX_APR_GET) || *expired_now;
    return rc;
}

char *sx_apr_result(cJSON *rec, int expired_now)
{
    if (expired_now) /* reported once: by the call that stored the expiry */
        cJSON_AddTrueToObject(rec, "expired_now");
    char *text = cJSON_PrintUnformatted(rec);
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "expired_now");
    return text;
}
