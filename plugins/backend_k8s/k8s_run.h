/*
 * k8s_run.h - executions on Kubernetes: one run (k8s_run.c), what an
 * instance remembers between runs (the runtime), and the reconciliation
 * of Jobs left by an earlier life of this host (k8s_reconcile.c).
 *
 * Ownership: the runtime belongs to its instance (sx_k8s_instance.rt),
 * created in instance_create after the client and freed in
 * instance_destroy, when no run is in progress.  Everything else is
 * borrowed for the duration of a call.
 */
#ifndef SX_K8S_RUN_H
#define SX_K8S_RUN_H

#include <cjson/cJSON.h>

#include "k8s.h"
#include "k8s_api.h"

typedef struct sx_k8s_runtime sx_k8s_runtime;

/* The instance's runtime: caches of what the server supports (the log
 * `stream` parameter, metrics.k8s.io), the reconciliation state.  Tries
 * the reconciliation at once (bounded by min(api_timeout, 5 s)); when the
 * server cannot be reached then, it is done before the first run.  Needs
 * inst->client.  Returns the runtime, or NULL with err (out_of_memory).
 * Main thread. */
sx_k8s_runtime *sx_k8s_runtime_new(sx_k8s_instance *inst, sx_error *err);
/* NULL is fine.  Main thread, no run in progress. */
void sx_k8s_runtime_free(sx_k8s_runtime *rt);

/* What describe shows of the runtime: {"log_streams": "separate" |
 * "merged" | "not yet known (found at the first run)", "resource_usage":
 * "metrics.k8s.io" | "unavailable (null)" | "not yet known",
 * "reconciled": bool, "api_requests": {"get":..,"total":..}} (the
 * client's requests since start).  Caller owns the result.  Concurrent. */
cJSON *sx_k8s_runtime_describe(const sx_k8s_instance *inst);

/* Run one step as a Job (the backend's run()).  Returns 0 with *result
 * filled when the script ran (whatever its termination: exited,
 * signaled, oom_killed, timed_out, cancelled, lost), or -1 with err when it
 * could not: "image_pull_failed", "config_error", "unschedulable",
 * "kubernetes_unavailable", "kubernetes_forbidden", "invalid_parameter"
 * (the server refused the Job), "backend_error", "cancelled" (before the
 * Job was created), "audit_unavailable".  Concurrent. */
int sx_k8s_run(sx_k8s_instance *inst, const sx_exec_spec *spec, sx_exec *exec,
               sx_exec_result *result, sx_error *err);

/* Find this instance's Jobs (by label: host_id + executor) left by an
 * earlier life of the host: finished ones are recorded ("k8s.job_collected":
 * execution, step, job, pod, exit code) and deleted; unfinished ones
 * (orphans: nobody follows them any more) are deleted with background
 * propagation and recorded ("k8s.orphan_deleted"); per-execution Secrets
 * whose Job is gone are deleted.  Runs once per runtime (later calls return
 * at once); call_timeout_ms bounds each API call.  Returns the number of
 * Jobs handled, or -1 with err when the server could not be listed (the
 * next call tries again).  Concurrent (one at a time). */
int sx_k8s_reconcile(sx_k8s_instance *inst, long call_timeout_ms, sx_error *err);

#endif
