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

/* RFC 3339 UTC with milliseconds for ms since the epoch:
 * "2026-12-02T10:04:05.123Z".  buf of at least 32 bytes. */
void sx_apr_time(int64_t ms, char *buf, size_t size);

#endif
