/*
 * sx_policy.h - policy plugins (SX_KIND_POLICY): who is calling, may they
 * run this, is the script acceptable.  Since ABI 1.2.
 *
 * The host runs every request through the loaded policy plugins, in the
 * order of `plugins.load`:
 *
 *   1. authenticate: the first plugin that recognises the caller's
 *      credentials (a token, the peer's Unix uid on an ipc:// listener)
 *      returns the verified identity.  When a policy plugin is loaded and
 *      none verifies the caller, the request is rejected "unauthenticated".
 *      With no policy plugin loaded, the host trusts caller.user/groups as
 *      sent (and refuses caller.token, which nobody could verify).
 *   2. authorize: every plugin sees the verified identity and the step as
 *      the host will run it (type, executor, `with` after the image
 *      catalog); any may refuse it ("forbidden", "image_not_allowed",
 *      "invalid_parameter"...) or rewrite `with` (e.g. apply default
 *      resources).  The host audits refusals.
 *   3. check_script: step types call host->exec_check_script() with the
 *      script text they are about to run (inline, or loaded for
 *      script_path); the host asks every policy plugin.
 *
 * HTTP routes (sx_host_api.http_route) authenticate through the same plugins
 * with host->caller_authenticate().
 */
#ifndef SX_POLICY_H
#define SX_POLICY_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a caller presents.  Everything borrowed for the duration of the
 * call.  `token` is a credential: never log it or copy it beyond the call. */
typedef struct sx_caller {
    uint32_t struct_size;
    const char *transport;      /* "nng" or "http" */
    const char *listener;       /* the listener's URL ("ipc:///run/sx.sock",
                                   "tcp://0.0.0.0:50051", "http://0.0.0.0:8080") */
    const char *claimed_user;   /* caller.user as sent, may be NULL */
    const char *const *claimed_groups; /* caller.groups as sent */
    size_t n_claimed_groups;
    const char *token;          /* caller.token or the HTTP bearer token, may be NULL */
    int64_t peer_uid;           /* the peer's Unix uid (ipc:// only), -1 = unknown */
    int64_t peer_pid;           /* the peer's pid (ipc:// only), -1 = unknown */
    /* Fields above are valid for ABI minor 2. */
} sx_caller;

/* A verified identity.  The host zeroes it and sets struct_size; the plugin
 * that verified it fills user and groups (malloc(3)ed strings in a
 * malloc(3)ed array) and method; the host releases them with
 * sx_identity_clear() (sx_util.h). */
typedef struct sx_identity {
    uint32_t struct_size;
    char *user;                 /* e.g. "alice" */
    sx_strlist groups;          /* e.g. ["sre", "sre-leads"] */
    char method[32];            /* "jwt", "peer_uid", "trusted" */
    /* Fields above are valid for ABI minor 2. */
} sx_identity;

/* The step as the host will run it, for authorize().  Borrowed. */
typedef struct sx_policy_request {
    uint32_t struct_size;
    const sx_identity *identity;    /* verified (or trusted) caller */
    const char *op;                 /* "execute" or "render" */
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;         /* may be NULL */
    const char *type;               /* "script.run" */
    const char *executor;           /* executor instance name ("shell") */
    const char *executor_kind;      /* its backend kind ("exec.native") */
    const char *with_json;          /* the step's `with`, after the image catalog */
    /* Fields above are valid for ABI minor 2. */
} sx_policy_request;

/* A script a step type is about to run, for check_script().  Borrowed. */
typedef struct sx_script_check {
    uint32_t struct_size;
    const sx_identity *identity;
    const char *executor;           /* executor instance name */
    const char *interpreter;        /* "/bin/bash", "python3", ... */
    const char *script;             /* not NUL-safe: use script_len */
    size_t script_len;
    const char *with_json;          /* the step's `with` (allowed_commands,
                                       blocked_commands...) */
    /* Fields above are valid for ABI minor 2. */
} sx_script_check;

/* A policy's answer.  The host zeroes it and sets struct_size. */
typedef struct sx_policy_verdict {
    uint32_t struct_size;
    /* Set when the step is refused: code ("forbidden", "blocked_command",
     * "command_not_allowed", "image_not_allowed", "invalid_parameter", ...)
     * and a message naming the rule. */
    sx_error error;
    /* Optional, malloc(3)ed JSON array, host frees with free(3): every
     * finding (e.g. each blocked command with its rule and line), added to
     * the reply's error as "findings" and to the audit record. */
    char *findings_json;
    /* authorize only, optional, malloc(3)ed JSON object, host frees: a
     * replacement for `with` (e.g. default resources applied).  The next
     * plugin and the step type see it instead. */
    char *with_json;
    /* Fields above are valid for ABI minor 2. */
} sx_policy_verdict;

typedef struct sx_policy_ops {
    uint32_t struct_size;

    /* Verify the caller.  Returns 1 with *id filled when this plugin
     * verified the credentials; 0 when it has nothing to say about them
     * (the host asks the next plugin); -1 with err ("unauthenticated" and a
     * message that says why, never the token) when they are present but
     * wrong (expired, bad signature...): the host stops there.  May be NULL.
     * Concurrent. */
    int (*authenticate)(void *state, const sx_caller *caller, sx_identity *id,
                        sx_error *err);

    /* May this identity run this step?  Returns 0 to allow (optionally with
     * verdict->with_json), -1 to refuse with verdict->error set.  May be
     * NULL.  Concurrent. */
    int (*authorize)(void *state, const sx_policy_request *req,
                     sx_policy_verdict *verdict);

    /* Is this script acceptable?  Returns 0, or -1 with verdict->error
     * (and, ideally, verdict->findings_json listing every finding).  May be
     * NULL.  Concurrent. */
    int (*check_script)(void *state, const sx_script_check *chk,
                        sx_policy_verdict *verdict);

    /* The policy's effective settings as a JSON object for `describe` (no
     * secrets); malloc(3)ed, caller frees.  May be NULL.  Concurrent. */
    char *(*describe)(void *state);

    /* Fields above are valid for ABI minor 2. */
} sx_policy_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_POLICY_H */
