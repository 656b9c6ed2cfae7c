/*
 * k8s.h - internals shared by the files of the backend_k8s plugin
 * ("exec.kubernetes": each step runs as a batch/v1 Job).
 *
 *   backend_k8s.c      descriptor, options (layered over the config's
 *                      kubernetes/security/image sections), instances,
 *                      describe, render, run -> sx_k8s_run
 *   k8s_options.c      the option tables, the layering, the checks, "weakened"
 *   k8s_job.c          step + options -> the Job and the per-execution Secret
 *                      (pure: talks to no API server, so render shows exactly
 *                      what run creates)
 *   k8s_api.{h,c}      the REST client (libcurl)                  [K8S-RUN]
 *   k8s_kubeconfig.c   kubeconfig / in-cluster configuration      [K8S-RUN]
 *   k8s_run.{h,c}      one execution: create, watch, logs, result [K8S-RUN]
 *   k8s_reconcile.c    Jobs of an earlier life of this host       [K8S-RUN]
 *   k8s_scripts.c      load_script: script_path from the scripts ConfigMap
 *
 * Ownership: the instance owns its options (freed with the option table),
 * its client and its runtime.  A plan owns everything in it; the run fills
 * plan->secret_values and must leave the rest alone except through
 * sx_k8s_plan_set_owner().
 */
#ifndef SX_K8S_H
#define SX_K8S_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "sx/sx_backend.h"

#define SX_K8S_KIND "exec.kubernetes"

/* ------------------------------------------------------------------ */
/* Names, labels and annotations                                         */
/* ------------------------------------------------------------------ */

/* Job names: "script-exec-<execution_id>-<step_name>" as a DNS-1123 label,
 * cut so that "-<8 hex of sha256(execution_id NUL step_name)>" fits in 63
 * characters: unique per (execution_id, step_name) whatever the cut. */
#define SX_K8S_JOB_PREFIX "script-exec-"
#define SX_K8S_NAME_MAX 63

/* The spec's job builder labels (Job: all five; pod template: the first two). */
#define SX_K8S_LABEL_EXECUTOR_KIND "executor"      /* "script" */
#define SX_K8S_LABEL_EXECUTION_ID "execution-id"   /* sanitised label value */
#define SX_K8S_LABEL_RUNBOOK_ID "runbook-id"
#define SX_K8S_LABEL_USER "user"
#define SX_K8S_LABEL_MANAGED_BY "managed-by"       /* "opscontrolroom" */
/* The spec's annotations (Job). */
#define SX_K8S_ANN_SCRIPT_HASH "script-hash"
#define SX_K8S_ANN_EXECUTION_ID "execution-id"     /* exact, unsanitised */
#define SX_K8S_ANN_RUNBOOK_ID "runbook-id"
#define SX_K8S_ANN_USER "user"
#define SX_K8S_ANN_IMAGE "image"
#define SX_K8S_ANN_CREATED_BY "created-by"         /* "script-executor" */
/* with.script_path as given (the text itself runs from the Secret). */
#define SX_K8S_ANN_SCRIPT_PATH "script-executor.io/script-path"
/* This backend's own labels, on the Job, its pod template and the Secret:
 * what reconciliation selects on (sx_k8s_selector). */
#define SX_K8S_LABEL_PREFIX "script-executor.io/"
#define SX_K8S_LABEL_MANAGED "script-executor.io/managed"   /* "true" */
#define SX_K8S_LABEL_HOST "script-executor.io/host"         /* cfg.host_id */
#define SX_K8S_LABEL_EXECUTOR "script-executor.io/executor" /* instance name */
#define SX_K8S_LABEL_STEP "script-executor.io/step"         /* sanitised step name */
/* Exact ids, for reconciliation (labels may be cut or changed). */
#define SX_K8S_ANN_STEP_NAME "script-executor.io/step-name"

/* Inside the pod. */
#define SX_K8S_CONTAINER "script"
#define SX_K8S_RUN_DIR "/run/script-executor"     /* the per-execution Secret */
#define SX_K8S_SCRIPTS_DIR "/scripts"             /* cfg.scripts_configmap */
#define SX_K8S_SECRET_KEY_SCRIPT "script"         /* keys of the per-execution Secret */
#define SX_K8S_SECRET_KEY_STDIN "stdin"
/* A Secret holds at most 1 MiB of data (script + stdin). */
#define SX_K8S_SECRET_MAX (1024 * 1024)

/* How stdout and stderr are read (option log_streams). */
typedef enum sx_k8s_log_mode {
    SX_K8S_LOG_AUTO = 0,        /* separate when the server takes the log `stream`
                                   parameter, else merged (said in describe) */
    SX_K8S_LOG_SEPARATE,        /* always ask for stream=Stdout / stream=Stderr */
    SX_K8S_LOG_MERGED           /* one log, reported as stdout */
} sx_k8s_log_mode;

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

/* Resource quantities as written ("500m", "1Gi"); NULL = not set. */
typedef struct sx_k8s_quantities {
    char *cpu;
    char *memory;
    char *ephemeral_storage;
} sx_k8s_quantities;

typedef struct sx_k8s_resources {
    sx_k8s_quantities requests;
    sx_k8s_quantities limits;
} sx_k8s_resources;

/* Executor options: built-in default < script_executor.kubernetes /
 * .security / .image < the executor's entry (k8s_options.c).  Immutable
 * after instance_create. */
typedef struct sx_k8s_cfg {
    /* connection (k8s_api.h: sx_k8s_conn_cfg) */
    char *kubeconfig;           /* NULL: $KUBECONFIG, else ~/.kube/config */
    char *context;              /* NULL: the kubeconfig's current-context */
    int in_cluster;             /* service account token + CA + KUBERNETES_SERVICE_* */
    char *in_cluster_dir;       /* NULL: /var/run/secrets/kubernetes.io/serviceaccount */
    int64_t api_timeout_ms;     /* longest API call (not watches or log streams) */
    /* where and as whom */
    char *namespace_;           /* NULL: the client's namespace, else "default";
                                   resolved into sx_k8s_instance.namespace_ */
    char *service_account;      /* "script-executor-runner" */
    sx_strlist allowed_service_accounts; /* non-empty: with.service_account must be one */
    /* image */
    char *image;                /* default image (required here or in image.default_image) */
    char *image_pull_policy;    /* "IfNotPresent" */
    char *image_pull_secret;    /* NULL = none */
    /* job_defaults */
    int64_t ttl_seconds_after_finished; /* 300 */
    int64_t backoff_limit;      /* 0, at most 3 */
    int64_t active_deadline_seconds;    /* 1800: the largest timeout a step may have */
    /* resources (quantities checked at instance_create) */
    sx_k8s_resources default_resources;
    sx_k8s_resources max_resources;     /* limits (and requests) above are refused */
    /* pod security */
    int64_t run_as_user;        /* 65534; -1 = the image's user (weakened) */
    int64_t run_as_group;       /* 65534; -1 = the image's group */
    int64_t fs_group;           /* 65534; -1 = none */
    int run_as_non_root;        /* true */
    int read_only_root_filesystem;  /* true */
    int allow_privilege_escalation; /* false */
    int drop_all_capabilities;  /* true */
    char *seccomp_profile;      /* RuntimeDefault | Unconfined | localhost/<profile> */
    /* script environment */
    char *default_work_dir;     /* "/workspace": the workspace emptyDir's mount */
    sx_strmap default_env;
    sx_strlist command_whitelist;
    char *scripts_configmap;    /* ConfigMap mounted at /scripts for script_path; NULL = refused */
    char *tmp_size_limit;       /* "100Mi": the /tmp emptyDir */
    /* execution (K8S-RUN) */
    int64_t unschedulable_grace_ms; /* "30s": Unschedulable this long -> code unschedulable */
    char *host_id;              /* label value; default the hostname (the pod name in-cluster) */
    char *log_streams;          /* "auto" | "separate" | "merged" */
    sx_k8s_log_mode log_mode;   /* log_streams, parsed */
    /* borrowed during instance_create only (nested maps of the entry) */
    const sx_config_node *job_defaults_node_;
    const sx_config_node *default_resources_node_;
    const sx_config_node *max_resources_node_;
} sx_k8s_cfg;

/* The plugin's state. */
typedef struct sx_k8s_plugin {
    sx_plugin_ctx *ctx;
    const sx_host_api *host;
} sx_k8s_plugin;

struct sx_k8s_client;   /* k8s_api.h  */
struct sx_k8s_runtime;  /* k8s_run.h  */

/* One executor instance. */
typedef struct sx_k8s_instance {
    sx_k8s_plugin *plugin;
    char *name;                 /* a valid label value (checked) */
    sx_k8s_cfg cfg;
    char *namespace_;           /* resolved namespace of every object */
    /* created in instance_create with sx_k8s_client_new(), freed with
     * sx_k8s_client_free() (k8s_api.h) */
    struct sx_k8s_client *client;
    /* created with sx_k8s_runtime_new(inst, err), freed with
     * sx_k8s_runtime_free(rt) in instance_destroy (k8s_run.h) */
    struct sx_k8s_runtime *rt;
} sx_k8s_instance;

/* ------------------------------------------------------------------ */
/* The plan: the objects one execution creates                           */
/* ------------------------------------------------------------------ */

/* A Secret the step reads (env_from_secret, secret_env_all,
 * volumes_from_secret), for the run to fetch its values and mask them in
 * the output.  key NULL = every key. */
typedef struct sx_k8s_secret_ref {
    char *name;
    char *key;
    int optional;
} sx_k8s_secret_ref;

typedef struct sx_k8s_plan {
    char *namespace_;
    char *job_name;
    /* The per-execution Secret (the script, inline or read from the
     * scripts ConfigMap by load_script, and stdin).  Its name is job_name. */
    char *secret_name;
    cJSON *job;                 /* body of POST /apis/batch/v1/namespaces/{ns}/jobs */
    /* Body of POST /api/v1/namespaces/{ns}/secrets.  It carries
     * metadata.ownerReferences[0] = {apiVersion batch/v1, kind Job, name
     * job_name, uid "", controller true}: the run creates the Job first,
     * then calls sx_k8s_plan_set_owner() with the created Job's uid and
     * creates the Secret, so that deleting the Job deletes the Secret.  The
     * pod mounts the Secret (not optional): kubelet retries the mount until
     * it exists. */
    cJSON *secret;
    char *image;
    char *image_pull_policy;
    char *image_pull_secret;    /* NULL = none */
    char *service_account;
    int64_t active_deadline_seconds;    /* the timeout rounded up, + 1 s */
    int64_t backoff_limit;
    int64_t ttl_seconds_after_finished;
    /* Secrets the step reads; the run fetches them to fill secret_values. */
    sx_k8s_secret_ref *secret_refs;
    size_t n_secret_refs;
    /* The step's secret values for masking (filled by the run, never by the
     * builder; the builder leaves it empty).  Wiped on free. */
    sx_strlist secret_values;
    /* Things the builder wants said (render shows them). */
    cJSON *notes;               /* array of strings */
} sx_k8s_plan;

/* Build the plan for a step (k8s_job.c).  Pure.  Returns 0, or -1 with
 * err: "invalid_parameter" (naming the parameter), "unsupported_parameter",
 * "command_not_allowed", "out_of_memory".  On failure *plan is empty. */
int sx_k8s_plan_build(const sx_k8s_instance *inst, const sx_exec_spec *spec, sx_k8s_plan *plan,
                      sx_error *err);
/* Free everything in the plan (wiping secret_values and the Secret's data)
 * and zero it.  Safe on a zeroed plan. */
void sx_k8s_plan_free(sx_k8s_plan *plan);
/* Set the Secret's ownerReferences[0].uid to the created Job's uid (copied).
 * No-op without a Secret.  Returns 0, or -1 with err (out_of_memory). */
int sx_k8s_plan_set_owner(sx_k8s_plan *plan, const char *job_uid, sx_error *err);
/* The plan as render shows it: {"namespace", "job", "secret" (data values
 * replaced by "********") or null, "image", ..., "notes"}.  Literal env
 * values are shown as "********" too (they may hold tokens).  Caller owns
 * the result (cJSON_Delete). */
cJSON *sx_k8s_plan_shown(const sx_k8s_plan *plan);

/* "script-executor.io/managed=true,script-executor.io/host=<host_id>,
 * script-executor.io/executor=<name>": the label selector of every object
 * of this instance (for reconciliation).  Returns 0, or -1 if buf is too
 * small. */
int sx_k8s_selector(const sx_k8s_instance *inst, char *buf, size_t size);

/* A string as a Kubernetes label value: characters outside [A-Za-z0-9._-]
 * become '_', at most 63, alphanumeric at both ends ("" when nothing is
 * left).  out must hold 64 bytes. */
void sx_k8s_label_value(const char *in, char out[64]);
/* The Job name for (execution_id, step_name), see SX_K8S_JOB_PREFIX.  out
 * must hold 64 bytes. */
void sx_k8s_job_name(const char *execution_id, const char *step_name, char out[64]);

/* ------------------------------------------------------------------ */
/* Pre-registered scripts (k8s_scripts.c)                                */
/* ------------------------------------------------------------------ */

/* The backend's load_script: the text of `script_path` ("/scripts/<key>"
 * or "<key>", sx_k8s_script_key) from key <key> of cfg.scripts_configmap,
 * read with GET configmaps/{name} in inst->namespace_.  On success *text
 * (malloc(3)ed, the caller frees) and *len, 0.  Else -1 with err:
 * "unsupported_parameter" (no scripts_configmap), "invalid_parameter" (a
 * path outside /scripts or with "..", no such key: naming the script and
 * the ConfigMap), "config_error" (no such ConfigMap), "kubernetes_unavailable"
 * / "kubernetes_forbidden" (the API), "backend_error".  Concurrent. */
int sx_k8s_load_script(sx_k8s_instance *inst, const char *script_path, char **text, size_t *len,
                       sx_error *err);

/* ------------------------------------------------------------------ */
/* Options (k8s_options.c)                                              */
/* ------------------------------------------------------------------ */

/* Apply the executor entry over the config sections into inst->cfg and
 * check everything.  Returns 0, or -1 with err (invalid_config, naming the
 * key).  inst->cfg must be released with sx_k8s_options_free() (also after
 * a failure). */
int sx_k8s_options_apply(sx_k8s_instance *inst, const sx_config_node *entry, sx_error *err);
void sx_k8s_options_free(sx_k8s_instance *inst);
/* Options that loosen the strict defaults: a JSON array of strings (what,
 * and why it matters).  Caller owns it. */
cJSON *sx_k8s_weakened(const sx_k8s_cfg *c);
/* The effective options as JSON for describe (no secret values). */
cJSON *sx_k8s_options_json(const sx_k8s_cfg *c);

/* The `with` parameters this backend honours beyond the common ones
 * (NULL-terminated, static). */
extern const char *const sx_k8s_supported_params[];

#endif
