/*
 * policy.h - the host's policy pipeline (sdk/include/sx/sx_policy.h).
 *
 * For every execute and render the host
 *   1. authenticates the caller as the listener's auth mode says
 *      (server.auth.mode: trusted | jwt | peer_uid | jwt_or_peer_uid) through
 *      the loaded policy plugins, in plugins.load order (the first that
 *      verifies wins, a -1 stops);
 *   2. resolves the executor, lets the image catalog rewrite `with`
 *      (catalog.h), then asks every policy plugin to authorize the step
 *      (each may refuse, or replace `with` for the next one);
 *   3. keeps what it decided (identity, executor, final `with`) in an
 *      sx_policy_ctx, which the step's exec_check_script() calls use.
 * With no policy plugin loaded, callers are trusted as sent (mode trusted)
 * and caller.token is refused: nothing could verify it.
 */
#ifndef SX_HOST_POLICY_H
#define SX_HOST_POLICY_H

#include <cjson/cJSON.h>

#include "host.h"
#include "sx/sx_policy.h"

typedef enum sx_auth_mode {
    SX_AUTH_TRUSTED = 0,        /* caller.user/groups as sent */
    SX_AUTH_JWT,                /* caller.token, verified */
    SX_AUTH_PEER_UID,           /* the ipc:// peer's uid, mapped */
    SX_AUTH_JWT_OR_PEER_UID     /* a token when given, else the peer uid */
} sx_auth_mode;

/* Where a request came from (filled by the server; borrowed). */
typedef struct sx_origin {
    const char *transport;      /* "nng" */
    const char *listener;       /* the listener's URL */
    int64_t peer_uid;           /* -1 = unknown (not ipc://) */
    int64_t peer_pid;           /* -1 = unknown */
} sx_origin;

/* A request as the pipeline sees it (all borrowed). */
typedef struct sx_admission {
    const char *op;             /* "execute" | "render" */
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;
    const char *type;
    const char *claimed_user;
    const char *const *claimed_groups;
    size_t n_claimed_groups;
    const char *token;          /* caller.token; never logged */
    const sx_origin *origin;    /* NULL = unknown */
    const char *with_json;      /* the step's `with` as sent, NULL = {} */
} sx_admission;

typedef struct sx_policy_ctx sx_policy_ctx;

/* At start-up, after plugins and executors: parse server.auth (borrowed
 * node in host->settings.auth), choose the default mode, refuse modes that
 * cannot work (peer_uid on a non-ipc listener, a verifying mode with no
 * policy plugin).  0 or -1 with err (invalid_config). */
int sx_policy_configure(sx_host *host, sx_error *err);

/* "trusted", "jwt", "peer_uid", "jwt_or_peer_uid". */
const char *sx_auth_mode_name(int mode);

/* Run steps 1 and 2 above.  *out is always set (NULL only when out of
 * memory) and owned by the caller (sx_policy_ctx_free), also on refusal,
 * so the refusal can be audited with what is known.  Returns 0, or -1
 * with err (unauthenticated, unsupported_parameter, forbidden,
 * image_not_allowed, unknown_image_ref, invalid_parameter, ...; the reply
 * is `rejected`) and *findings (malloc'ed JSON array, or NULL; caller
 * frees). */
int sx_policy_admit(sx_host *host, const sx_admission *in, sx_policy_ctx **out, char **findings,
                    sx_error *err);
void sx_policy_ctx_free(sx_policy_ctx *ctx);

/* Step 1 alone (authenticate), for the ops that run no step: status,
 * cancel, list, describe.  *out as for sx_policy_admit.  0, or -1 with err
 * (unauthenticated, unsupported_parameter). */
int sx_policy_identify(sx_host *host, const sx_admission *in, sx_policy_ctx **out, sx_error *err);

/* The verified (or trusted) identity; user may be NULL.  Borrowed. */
const sx_identity *sx_policy_identity(const sx_policy_ctx *ctx);
/* The final `with` ("{}" at least).  Borrowed. */
const char *sx_policy_with(const sx_policy_ctx *ctx);
/* Add auth_method, groups (verified) and peer_uid to an audit record. */
void sx_policy_audit_fields(const sx_policy_ctx *ctx, cJSON *rec);
/* The findings (JSON array text) of the script check that refused with
 * `code` in this request, or NULL.  Borrowed until the ctx is freed. */
const char *sx_policy_findings_for(sx_policy_ctx *ctx, const char *code);

/* Host API caller_authenticate: the plugin chain alone (for HTTP routes).
 * With no policy plugin: the claimed identity, method "trusted", and a
 * token is refused.  0 with *id filled, or -1 with err. */
int sx_policy_authenticate(sx_host *host, const sx_caller *caller, sx_identity *id,
                           sx_error *err);

/* Host API exec_check_script: every policy plugin's check_script on this
 * request's identity, executor and final `with` (with no policy plugin:
 * 0).  ctx NULL = the render in progress on this thread (see
 * sx_policy_render_enter); with neither, 0 when `host` (may be NULL) has no
 * policy plugin, else -1 (internal_error).  0, or -1 with err and
 * *findings (malloc'ed or NULL; the refusal's findings are also kept in
 * ctx for the reply, sx_policy_findings_for). */
int sx_policy_check_script(sx_host *host, sx_policy_ctx *ctx, const char *interpreter,
                           const char *script, size_t len, char **findings, sx_error *err);

/* A step type's render() gets no sx_exec: while it runs, exec_check_script
 * (exec = NULL) uses the render's ctx, known to the calling thread. */
void sx_policy_render_enter(sx_policy_ctx *ctx);
void sx_policy_render_leave(void);

/* Add "auth" (mode, listener) and "policies" (each policy plugin's
 * describe) to a describe reply. */
void sx_policy_describe_into(sx_host *host, cJSON *out);

#endif
