/* approval_internal.h - what approval.c shares with approval_http.c. */
#ifndef SX_HOST_APPROVAL_INTERNAL_H
#define SX_HOST_APPROVAL_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "approval.h"

/* Milliseconds since the epoch (the clock every approval decision uses). */
int64_t sx_approval_now_ms(void);
/* The store's ops and *state. */
const sx_approval_ops *sx_approvals_store(sx_approvals *a, void **state);
sx_host *sx_approvals_host(sx_approvals *a);
struct sx_plugin_ctx *sx_approvals_plugin(sx_approvals *a);
/* A record's status ("" when none). */
const char *sx_approval_status(const cJSON *record);
/* What replies show of a record (new object, caller owns). */
cJSON *sx_approval_summary(const cJSON *record);
/* Durable audit record `topic` about an approval.  0 or -1 with err. */
int sx_approval_audit(sx_host *host, const char *topic, const char *event, const cJSON *record,
                      const char *user, sx_error *err);
/* Audit that an approval expired (best effort, logged on failure). */
void sx_approval_note_expired(sx_approvals *a, const cJSON *record);

#endif
