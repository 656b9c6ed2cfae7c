/*
 * approval.h - the approval workflow (script_executor.approval): a step
 * with approval_required does not run until approvers said yes, through the
 * loaded approval store (sx_approval.h) and the HTTP API
 * (approval_http.c).  See docs/approval.md.
 *
 * The execute flow calls, in order:
 *   sx_approval_gate()     before the execution is created: replies
 *                          pending_approval / denied / expired / rejected
 *                          (approval_mismatch), or lets an approved step on;
 *   sx_approval_consume()  once the execution is new on this host: claims
 *                          the approval exactly once across replicas;
 *   sx_approval_output()   adds approved_by / approved_at to its output.
 */
#ifndef SX_HOST_APPROVAL_H
#define SX_HOST_APPROVAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "host.h"
#include "sx/sx_approval.h"

typedef struct sx_approvals sx_approvals;

/* What the gate needs of a step.  Borrowed. */
typedef struct sx_approval_step {
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;         /* may be NULL */
    const char *type;
    const char *executor;           /* instance name the step runs on */
    const char *with_json;          /* the final `with` (after catalog and policy) */
    const char *user;               /* verified caller (requester) */
    const char *const *groups;
    size_t n_groups;
    const char *auth_method;        /* how user was verified ("jwt", "peer_uid", "trusted") */
    const cJSON *approvers;         /* the request's `approvers` (array) or NULL */
    int required;                   /* approval_required was set; when 0 the gate only
                                       holds the step to an existing approval record */
} sx_approval_step;

/* Read script_executor.approval and find the store plugin.  *out is NULL
 * when no store is loaded (steps needing approval are then refused).
 * 0, or -1 with err (invalid_config). */
int sx_approvals_open(sx_host *host, sx_approvals **out, sx_error *err);
void sx_approvals_close(sx_approvals *a);

/* Phase 1.  With st->required == 0 and no record for the step: 0 and
 * *approval NULL (nothing to hold it to).  Returns 0 when the step may go on (approved or already
 * consumed, digest matching; *approval set to the record, owned by the
 * caller: a consumed one finds its earlier reply in the execution table,
 * or is refused by sx_approval_consume); else 1 with *reply a complete
 * reply (malloc(3)ed JSON text; the decision already audited). */
int sx_approval_gate(sx_approvals *a, const sx_approval_step *st, cJSON **approval, char **reply);

/* Phase 2: claim the approved step for this run.  0, or 1 with *reply
 * (already_executed / approval_store_unavailable). */
int sx_approval_consume(sx_approvals *a, const sx_approval_step *st, char **reply);

/* The claimed step did not start after all (refused before its script
 * ran): give the claim back so a corrected resend can run.  Logged on
 * failure. */
void sx_approval_release(sx_approvals *a, const sx_approval_step *st);

/* Add approved_by, approved_at and approvals of `approval` to `output`. */
void sx_approval_output(const cJSON *approval, cJSON *output);

/* The digest binding an approval to what runs: "sha256:<hex>" of the
 * canonical JSON (object keys sorted) of {type, executor, runbook_id, with
 * without approval_required and approvers}.  out >= 72 bytes.  0 or -1. */
int sx_approval_digest(const char *type, const char *executor, const char *runbook_id,
                       const char *with_json, char out[72]);

/* The HTTP API under /api/v1/approvals/ (approval_http.c); arg is the
 * sx_approvals. */
int sx_approval_http(void *arg, const sx_http_request *req, sx_http_response *resp);

/* describe: settings and store (malloc'ed JSON object, or NULL). */
cJSON *sx_approvals_describe(sx_approvals *a);

#endif
