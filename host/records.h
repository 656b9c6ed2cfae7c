/*
 * records.h - audit records: built here, made durable in every event sink,
 * then published on the bus.  A record is a JSON object with "time",
 * "record_id", "topic", "event" (the spec's log event name), the
 * execution's ids and user, plus the fields of the moment (docs/audit.md
 * lists them).  Approval records (issue 6) go through the same path
 * (sx_record_commit, or a plugin's host->record) with the topics
 * approval.requested / approval.granted / approval.denied / approval.expired.
 */
#ifndef SX_HOST_RECORDS_H
#define SX_HOST_RECORDS_H

#include <cjson/cJSON.h>

#include "host.h"

/* Add "record_id" (a random UUID, unless rec has one): every record
 * carries a unique id, so a consumer that may see a record twice (the SIEM:
 * delivery is at-least-once) can deduplicate. */
void sx_record_stamp(cJSON *rec);
/* A new record for `exec` (owned by the caller). */
cJSON *sx_record_new(const sx_exec *exec, const char *topic, const char *event);
/* Same, from loose ids (requests rejected before an execution exists). */
cJSON *sx_record_new_ids(const char *topic, const char *event, const char *execution_id,
                         const char *step_name, const char *runbook_id, const char *user);
/* Write `rec` to every sink (durable) and publish it; consumes rec.
 * 0, or -1 with err->code "audit_unavailable". */
int sx_record_commit(sx_host *host, const char *topic, cJSON *rec, sx_error *err);
/* Write `json` to every sink (durable), without publishing. */
int sx_host_record_sinks(sx_host *host, const char *topic, const char *json, sx_error *err);
/* Copy every member of `from` into `into`, replacing same-named ones.
 * Either may be NULL. */
void sx_json_merge(cJSON *into, const cJSON *from);

#endif
