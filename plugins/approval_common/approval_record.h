/*
 * approval_record.h - the approval record's state machine (sx_approval.h),
 * shared by the approval store plugins (approval_sqlite, approval_postgres).
 *
 * Pure functions on a cJSON record: a store reads the record under its
 * lock or transaction, applies one of these, and writes it back in the same
 * transaction.  All times are the host's (now_ms, Unix milliseconds).
 */
#ifndef SX_APPROVAL_RECORD_H
#define SX_APPROVAL_RECORD_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "sx/sx_types.h"

/* A new pending record (owned by the caller, cJSON_Delete), or NULL with
 * err when request_json is not a JSON object or an argument is bad. */
cJSON *sx_apr_new(const char *execution_id, const char *step_name, const char *request_json,
                  int approvals_required, int64_t now_ms, int64_t expires_at_ms, sx_error *err);

/* The record's status ("pending", ...), or "" when it has none.  Borrowed. */
const char *sx_apr_status(const cJSON *rec);

/* Milliseconds since the epoch of the record's expires_at (kept in
 * "expires_at_ms" beside the RFC 3339 text), or 0. */
int64_t sx_apr_expires_ms(const cJSON *rec);

/* A pending record whose expiry is not after now_ms becomes "expired".
 * Returns 1 when it changed the record, else 0. */
int sx_apr_expire_if_due(cJSON *rec, int64_t now_ms);

/* One decision (see sx_approval_ops.decide).  Returns 0 when the record
 * changed, -1 with err: already_decided, expired, duplicate_approver,
 * invalid_parameter.  An expired record is marked expired even on -1, so
 * store it back either way when sx_apr_expire_if_due() changed it. */
int sx_apr_decide(cJSON *rec, const char *approver, int approve, const char *reason,
                  int64_t now_ms, sx_error *err);

/* approved -> consumed (see sx_approval_ops.consume).  0, or -1 with err
 * already_consumed / not_approved / expired. */
int sx_apr_consume(cJSON *rec, const char *claimer, int64_t now_ms, sx_error *err);

/* consumed by `claimer` -> approved again (see sx_approval_ops.release).
 * 0, or -1 with err not_consumed. */
int sx_apr_release(cJSON *rec, const char *claimer, sx_error *err);

/* One change a store applies to a record inside its transaction. */
typedef enum sx_apr_op { SX_APR_GET, SX_APR_DECIDE, SX_APR_CONSUME, SX_APR_RELEASE } sx_apr_op;
typedef struct sx_apr_change {
    sx_apr_op op;
    const char *who;            /* approver (decide) or claimer (consume, release) */
    int approve;                /* decide */
    const char *reason;         /* decide, may be NULL */
} sx_apr_change;

/* Apply `ch` to `rec` (a due expiry first).  *write_back tells whether the
 * store must write the record back (it changed, or expired); *expired_now
 * whether this call stored the expiry.  Returns 0, or -1 with err (the
 * change was refused; write back anyway when *write_back says so). */
int sx_apr_apply(cJSON *rec, const sx_apr_change *ch, int64_t now_ms, int *write_back,
                 int *expired_now, sx_error *err);

/* The record text a store returns (malloc(3)ed): with "expired_now": true
 * when this call stored the expiry (see sx_approval.h). */
char *sx_apr_result(cJSON *rec, int expired_now);

/* RFC 3339 UTC with milliseconds for ms since the epoch:
 * "2026-12-02T10:04:05.123Z".  buf of at least 32 bytes. */
void sx_apr_time(int64_t ms, char *buf, size_t size);

#endif
