/*
 * docker.h - internals shared by the files of the backend_docker plugin.
 *
 *   backend_docker.c   descriptor, options, instances, describe, render
 *   container_plan.c   step + options -> the Engine's create request (pure)
 *   docker_run.c       one run: volumes, create, copy, attach, start, stream, wait
 *   docker_bind.c      script delivery "bind": the files in a host directory
 *   docker_pull.c      the image per pull policy, registry credentials
 *   docker_stdin.c     the script's stdin (a second, upgraded attach)
 *   docker_remover.c   removal queue and leftover sweep
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
#include <time.h>

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

/* How long the readiness probe (GET /_ping) may take, ms. */
#define SX_DK_READY_TIMEOUT_MS 1000

/* Where the per-execution volume with the script is mounted. */
#define SX_DK_SCRIPT_DIR "/run/script-executor"

/* How the script and secret/configmap files reach the container. */
typedef enum sx_dk_delivery {
    SX_DK_DELIVER_ARCHIVE = 0,  /* a volume per mount, filled with PUT .../archive */
    SX_DK_DELIVER_BIND,         /* a host directory per mount, bind-mounted read-only */
} sx_dk_delivery;

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
    char *script_delivery;      /* "archive" | "bind" */
    char *bind_dir;
    sx_dk_delivery delivery;    /* script_delivery, parsed */
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
    pthread_mutex_t lock;       /* the removal queue */
    pthread_mutex_t sweep_lock; /* one leftover sweep at a time */
    int swept;                  /* leftovers removed since start (atomic reads) */
    /* Removal happens off the reply path, on the remover thread (the
     * container is dead by then; a host killed before it is done leaves
     * labelled objects that the next start sweeps). */
    pthread_cond_t garbage_cv;
    sx_dk_garbage *garbage_head, *garbage_tail;
    int remover_stop;
    int remover_started;
    pthread_t remover;
    /* bind delivery: directories in bind_dir changed after this (the
     * instance's start, coarse real time like file timestamps) belong to
     * runs in progress and are never swept */
    struct timespec bind_epoch;
} sx_docker_instance;

/* A file placed in a per-execution volume (archive API or bind directory). */
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
    sx_strlist secrets;         /* secret values the script gets, for
                                   masking its output; wiped on free */
    unsigned uid, gid;          /* the container user, when numeric */
    int uid_known, gid_known;
} sx_dk_plan;

/* Build the plan for a step (container_plan.c).  Returns 0, or -1 with
 * err: "invalid_parameter", "command_not_allowed", "config_error". */
int sx_dk_plan_build(const sx_docker_instance *inst, const sx_exec_spec *spec,
                     sx_dk_plan *plan, sx_error *err);
void sx_dk_plan_free(sx_dk_plan *plan);

/* Run a step (docker_run.c); the backend's run(). */
int sx_dk_run(sx_docker_instance *inst, const sx_exec_spec *spec, sx_exec *exec,
              sx_exec_result *result, sx_error *err);

/* The image present per `policy` (docker_pull.c).  hook bounds the calls
 * (cancel, answer deadline); timeout_ms bounds the inspect.  Returns 0, or
 * -1 with err: image_not_found, image_pull_failed, docker_unavailable,
 * config_error (pull secret), cancelled. */
int sx_dk_ensure_image(sx_docker_instance *inst, const char *image, const char *policy,
                       const char *pull_secret, const sx_dk_abort *hook, long timeout_ms,
                       sx_error *err);

/* The script's stdin connection (docker_stdin.c). */
typedef struct sx_dk_stdin {
    CURL *h;                    /* NULL once closed */
    curl_socket_t sock;
    const char *data;           /* borrowed from the exec spec */
    size_t len, sent;
} sx_dk_stdin;

/* Attach to the created container's stdin and wait for the Engine's answer
 * (until `deadline`, sx_now_monotonic() seconds).  0, or -1 with err. */
int sx_dk_stdin_open(const sx_dk_client *cl, const char *container_id, const char *data,
                     size_t len, double deadline, sx_dk_stdin *c, sx_error *err);
/* Write what the socket takes now; closes the connection once everything
 * is written (or the container went away).  Returns 1 while data is
 * pending (poll c->sock for POLLOUT), 0 when done. */
int sx_dk_stdin_pump(sx_dk_stdin *c);
void sx_dk_stdin_close(sx_dk_stdin *c);

/* The labels every object of a run carries (docker_remover.c). */
cJSON *sx_dk_labels(const sx_docker_instance *inst, const char *execution_id, const char *step);

/* Remove objects of this host and executor left by a host that died
 * mid-run; logs and records each (docker_remover.c).  Returns the number
 * removed, or -1 with err when the daemon cannot be listed. */
int sx_dk_sweep_leftovers(sx_docker_instance *inst, long timeout_ms, const sx_dk_abort *hook,
                          sx_error *err);

/* Queue a container and volumes for the remover thread (copies the
 * names).  Start/stop the thread; stop finishes the queue within a bounded
 * time, leaving the rest to the next start's sweep. */
void sx_dk_remove_later(sx_docker_instance *inst, const char *container_id, char *const *volumes,
                        size_t n_volumes);
int sx_dk_remover_start(sx_docker_instance *inst);
void sx_dk_remover_stop(sx_docker_instance *inst);

/* "sx-<executor>-": the start of every container, volume and bind
 * directory name of an instance (docker_remover.c). */
void sx_dk_name_prefix(const sx_docker_instance *inst, char *buf, size_t size);

/* Bind delivery (docker_bind.c).  Create bind_dir (0711) if missing and
 * check it; 0, or -1 with err (invalid_config). */
int sx_dk_bind_dir_init(sx_docker_instance *inst, sx_error *err);
/* Write each planned volume's files into <bind_dir>/<name>/v<i>/ and add
 * a read-only bind mount per volume to `mounts`.  *made is set once
 * <bind_dir>/<name> was created by this call (remove it then, even on
 * failure).  0, or -1 with err. */
int sx_dk_bind_write(const sx_docker_instance *inst, const sx_dk_plan *plan, const char *name,
                     cJSON *mounts, int *made, sx_error *err);
/* Remove <bind_dir>/<name>: overwrite each file with zeros, unlink, rmdir.
 * Never follows a symlink.  0, or -1 when something was left. */
int sx_dk_bind_remove(const sx_docker_instance *inst, const char *name);
/* The mode a planned file gets in a bind directory: as planned when the
 * host runs as root and the group is known (owner root, that group), else
 * made world-readable (the files stay ours). */
unsigned sx_dk_bind_file_mode(const sx_dk_plan *plan, unsigned mode);
/* Names of directories <bind_dir>/sx-<executor>-<16 hex> changed before
 * the instance started (candidates for the leftover sweep). */
int sx_dk_bind_stale(const sx_docker_instance *inst, sx_strlist *names);

/* A string list as a JSON array (container_plan.c). */
cJSON *sx_dk_strlist_json(const sx_strlist *l);

#endif
