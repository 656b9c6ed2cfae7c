/*
 * host_harness.h - start the real script-executor binary on a generated
 * config in a private temp dir, talk to it over nng, stop it.
 */
#ifndef SX_TEST_HOST_HARNESS_H
#define SX_TEST_HOST_HARNESS_H

#include <cjson/cJSON.h>
#include <sys/types.h>

typedef struct sx_harness {
    char dir[256];         /* private temp dir: config, sockets, audit log */
    char ctl_url[300];
    char events_url[300];
    char audit_path[300];
    char log_path[300];
    pid_t pid;
} sx_harness;

/* `config` may use @DIR@ (the temp dir) and @PLUGINS@ (the plugin dir);
 * `listen`/`events`/audit log_file should be under @DIR@.  Returns 0 once
 * the host answers health, -1 (host log on stderr) otherwise. */
int sx_harness_start(sx_harness *h, const char *config);
/* Start the host again in the same dir on the same config (after stop or
 * kill), appending to its log; 0 once it answers health, else -1. */
int sx_harness_restart(sx_harness *h);
/* SIGKILL the host and reap it (a crash, for durability tests); 0 when it
 * died of that signal. */
int sx_harness_kill(sx_harness *h);
/* Write the config and run `script-executor --check-config`; returns its
 * exit status and fills `out` (stdout + stderr, truncated). */
int sx_harness_check_config(const char *config, char *out, size_t out_size);
/* One request/reply on a fresh REQ socket; NULL on transport failure. */
cJSON *sx_harness_call(sx_harness *h, const char *json);
/* Same, raw bytes in, raw text out (malloc'ed) or NULL. */
char *sx_harness_call_raw(sx_harness *h, const void *data, size_t len);
/* SIGTERM and wait (up to 60 s); returns the exit status or -1.  A
 * non-zero exit status prints the host's log on stderr. */
int sx_harness_stop(sx_harness *h);
/* Count audit records whose topic and execution_id/step_name match
 * (NULL = any). */
int sx_harness_audit_count(sx_harness *h, const char *topic, const char *execution_id,
                           const char *step_name);
/* The first audit record matching topic and ids (caller frees), or NULL. */
cJSON *sx_harness_audit_record(sx_harness *h, const char *topic, const char *execution_id,
                               const char *step_name);
/* The whole file at `path` (malloc'ed, NUL-terminated) or NULL. */
char *sx_harness_slurp(const char *path);
/* Convenience: string member of a reply ("" when absent). */
const char *sx_json_str(const cJSON *obj, const char *path);

#endif
