/*
 * docker.h - internals shared by the files of the backend_docker plugin.
 *
 *   backend_docker.c   descriptor, options, instances, describe, leftovers
 *   container_plan.c   step + options -> the Engine's create request (pure)
 *   docker_run.c       one run: pull, create, attach, start, wait, remove
 *   docker_image.c     image references, registry credentials
 *   docker_api.c       the REST client (libcurl)
 *   docker_stream.c    stdout/stderr demultiplexing
 *   docker_tar.c       the tar stream for the archive API
 *   local_store.c      secrets and configmaps from local directories
 */
#ifndef SX_DOCKER_H
#define SX_DOCKER_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>

#include "docker_api.h"
#include "local_store.h"
#include "sx/sx_backend.h"

#define SX_DOCKER_KIND "exec.docker"

/* Labels every object the backend creates carries. */
#define SX_DK_LABEL_MANAGED "io.script-executor.managed"
#define SX_DK_LABEL_HOST "io.script-executor.host"
#define SX_DK_LABEL_EXECUTOR "io.script-executor.executor"
#define SX_DK_LABEL_EXECUTION "io.script-executor.execution-id"
#define SX_DK_LABEL_STEP "io.script-executor.step"
#define SX_DK_LABEL_KEEP "io.script-executor.keep"
#define SX_DK_LABEL_PREFIX "io.script-executor."

/* Where the per-execution volume with the script is mounted. */
#define SX_DK_SCRIPT_DIR "/run/script-executor"

/* The plugin's state. */
typedef struct sx_docker_plugin {
    sx_plugin_ctx *ctx;
    const sx_host_api *host;
    sx_local_store store;       /* script_executor.secrets */
    char *store_secrets_dir;    /* option storage for the secrets section */
    char *store_configmaps_dir;
} sx_docker_plugin;

/* Executor options (host->config_apply). */
typedef struct sx_docker_cfg {
    char *image;
    char *host;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    char *default_work_dir;
    sx_strmap default_env;
    sx_strlist command_whitelist;
    char *network_mode;
    sx_strlist volumes;
    char *user;
    int64_t memory_limit;
    int64_t cpu_quota;
    int auto_remove;
    int read_only_rootfs;
    int no_new_privileges;
    sx_strlist cap_drop;
    sx_strlist cap_add;
    int64_t pids_limit;
    sx_strmap tmpfs;
    char *image_pull_policy;
    char *image_pull_secret;
    int64_t pull_timeout_ms;
    int64_t api_timeout_ms;
    char *host_id;
    int init;
} sx_docker_cfg;

/* A finished run's container and volumes, waiting for removal. */
typedef struct sx_dk_garbage {
    struct sx_dk_garbage *next;
    char *container_id;         /* may be NULL */
    char **volumes;
    size_t n_volumes;
} sx_dk_garbage;

/* One executor instance.  Options and client are immutable after
 * instance_create; the leftover sweep and the removal queue are guarded by
 * `lock`. */
typedef struct sx_docker_instance {
    sx_docker_plugin *plugin;
    char *name;
    sx_docker_cfg cfg;
    sx_dk_client client;
    pthread_mutex_t lock;
    int swept;                  /* leftovers removed since start */
    /* Removal happens off the reply path, on the remover thread (the
     * container is dead by then; a host killed before it is done leaves
     * labelled objects that the next start sweeps). */
    pthread_cond_t garbage_cv;
    sx_dk_garbage *garbage_head, *garbage_tail;
    int remover_stop;
    int remover_started;
    pthread_t remover;
} sx_docker_instance;

/* A file placed in a per-execution volume through the archive API. */
typedef struct sx_dk_file {
    char *path;                 /* relative to the volume root */
    char *data;
    size_t len;
    unsigned mode;
} sx_dk_file;

/* A per-execution volume: the script's, or one per secret/configmap mount. */
typedef struct sx_dk_volume {
    char *mount_path;           /* in the container */
    char *what;                 /* "script", "secret tls-certs", ... */
    sx_dk_file *files;
    size_t n_files;
    char *name;                 /* Engine volume name, set by the run */
} sx_dk_volume;

/* Everything a run needs, resolved from the step and the options.  Pure
 * data: building it talks to no daemon (render shows it). */
typedef struct sx_dk_plan {
    char *image;                /* the image to run */
    char *pull_policy;          /* Always | IfNotPresent | Never */
    char *pull_secret;          /* secret name, or NULL */
    cJSON *create;              /* body of POST /containers/create */
    cJSON *create_shown;        /* same, secret env values replaced */
    sx_dk_volume *volumes;
    size_t n_volumes;
    int open_stdin;
    unsigned gid;               /* group the files in volumes belong to */
} sx_dk_plan;

/* Build the plan for a step (container_plan.c).  Returns 0, or -1 with
 * err: "invalid_parameter", "command_not_allowed", "config_error". */
int sx_dk_plan_build(const sx_docker_instance *inst, const sx_exec_spec *spec,
                     sx_dk_plan *plan, sx_error *err);
void sx_dk_plan_free(sx_dk_plan *plan);

/* Run a planned step (docker_run.c); the backend's run(). */
int sx_dk_run(sx_docker_instance *inst, const sx_exec_spec *spec, sx_exec *exec,
              sx_exec_result *result, sx_error *err);

/* Remove containers and volumes of this host and executor left by a host
 * that died mid-run; logs and records each (docker_run.c).  Returns the
 * number removed, or -1 with err when the daemon is unreachable. */
int sx_dk_sweep_leftovers(sx_docker_instance *inst, sx_error *err);

/* Queue a container and its volumes for removal (takes ownership of the
 * garbage).  Start/stop the remover thread; stop drains the queue first. */
void sx_dk_remove_later(sx_docker_instance *inst, sx_dk_garbage *g);
int sx_dk_remover_start(sx_docker_instance *inst);
void sx_dk_remover_stop(sx_docker_instance *inst);

/* Remove a container (with force) and volumes by name; failures are
 * logged, not returned (docker_run.c). */
void sx_dk_remove_objects(sx_docker_instance *inst, const char *container_id, char **volumes,
                          size_t n_volumes);

#endif
