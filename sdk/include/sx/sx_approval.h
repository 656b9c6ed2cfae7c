/*
 * sx_approval.h - approval stores (SX_KIND_APPROVAL).  Since ABI 1.2.
 *
 * The host runs the approval workflow (pending replies, digests, four-eyes,
 * the HTTP API); a store plugin keeps approvals durably and makes every
 * state change atomic, so that two approvers deciding at once yield one
 * decision and an approved step runs once, also across host replicas
 * sharing the store.  At most one store is loaded.
 *
 * An approval is keyed by (execution_id, step_name) and exchanged as a JSON
 * object, the "record":
 *   {"execution_id", "step_name", "status": "pending" | "approved" |
 *    "denied" | "expired" | "consumed",
 *    "request": {...},            the host's, stored verbatim (what the
 *                                 approver must see, the digest, requester)
 *    "approvals_required": N,
 *    "approvals": [{"by": "bob", "at": "<RFC 3339>"}, ...],
 *    "denied_by", "reason", "decided_at", "consumed_by", "consumed_at",
 *    "created_at", "expires_at", "expires_at_ms"}  (times RFC 3339 UTC;
 *                                 expires_at_ms: milliseconds since the epoch)
 * Stores add no other fields, except in what a call returns:
 * "expired_now": true when that very call turned the approval from pending
 * into expired (so the host reports each expiry once; it is not stored).  Every record a function returns through
 * record_json is malloc(3)ed; the caller frees it with free(3).
 *
 * Times are given by the host (now_ms, expires_at_ms: milliseconds since
 * the Unix epoch) so every replica and every test decides on the same
 * clock.  A pending approval whose expires_at is not after now_ms counts
 * as expired in every operation (and is stored so).
 */
#ifndef SX_APPROVAL_H
#define SX_APPROVAL_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sx_approval_ops {
    uint32_t struct_size;

    /* Create a pending approval unless one exists for the key.  Returns 0
     * when created, 1 when one existed (whatever its status), with
     * *record_json the stored record either way; -1 with err
     * ("approval_store_unavailable", ...).  request_json borrowed. */
    int (*create)(void *state, const char *execution_id, const char *step_name,
                  const char *request_json, int approvals_required,
                  int64_t now_ms, int64_t expires_at_ms, char **record_json,
                  sx_error *err);

    /* The record for the key.  0, or -1 with err "not_found" or
     * "approval_store_unavailable". */
    int (*get)(void *state, const char *execution_id, const char *step_name,
               int64_t now_ms, char **record_json, sx_error *err);

    /* Atomically add one decision by `approver` to a pending approval:
     * approve adds to "approvals" and makes it "approved" once
     * approvals_required distinct approvers have approved; deny makes it
     * "denied" with reason.  Returns 0 with *record_json after the change;
     * -1 with err "not_found", "already_decided" (not pending),
     * "expired", "duplicate_approver" (this approver already approved), or
     * "approval_store_unavailable".  Who may decide is the host's check. */
    int (*decide)(void *state, const char *execution_id, const char *step_name,
                  const char *approver, int approve, const char *reason,
                  int64_t now_ms, char **record_json, sx_error *err);

    /* Atomically turn an "approved" approval into "consumed" by `claimer`
     * (e.g. "host-a/req-17"): exactly one caller ever gets 0.  Returns 0
     * with *record_json; -1 with err "already_consumed", "not_approved"
     * (pending, denied or expired: *record_json is still set when
     * record_json is non-NULL), "not_found", "approval_store_unavailable". */
    int (*consume)(void *state, const char *execution_id, const char *step_name,
                   const char *claimer, int64_t now_ms, char **record_json,
                   sx_error *err);

    /* Records with the given status ("pending", ... ; NULL = all), oldest
     * first, at most `limit` (0 = no limit), as a malloc(3)ed JSON array in
     * *records_json.  A pending record due at now_ms is not listed as
     * pending (nor changed: expiry is stored by get/decide/consume, which
     * report it).  0, or -1 with err. */
    int (*list)(void *state, const char *status, size_t limit, int64_t now_ms,
                char **records_json, sx_error *err);

    /* The store's settings and health as a JSON object (no credentials);
     * malloc(3)ed, caller frees.  May be NULL.  Concurrent. */
    char *(*describe)(void *state);

    /* Optional: can the store take requests now?  0, or -1 with err. */
    int (*ready)(void *state, sx_error *err);

    /* Give back a claim that did not run: a "consumed" approval whose
     * consumed_by is `claimer` becomes "approved" again (the step was
     * refused before it started, e.g. its work dir was missing), so a
     * corrected resend can run.  0, or -1 with err "not_consumed" (not
     * consumed, or by another claimer), "not_found",
     * "approval_store_unavailable". */
    int (*release)(void *state, const char *execution_id, const char *step_name,
                   const char *claimer, int64_t now_ms, char **record_json,
                   sx_error *err);

    /* Fields above are valid for ABI minor 2.  All functions but describe
     * and ready are required; all are concurrent. */
} sx_approval_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_APPROVAL_H */
