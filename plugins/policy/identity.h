/*
 * identity.h - who is calling (script_executor.identity): a JWT in
 * caller.token (jwt.c), or the peer's Unix uid on an ipc:// listener mapped
 * to a user and groups by the config.
 *
 * Configured once at init, read-only afterwards: every function here is
 * thread-safe on a configured sx_ident.
 */
#ifndef SX_POLICY_IDENTITY_H
#define SX_POLICY_IDENTITY_H

#include <cjson/cJSON.h>

#include "jwt.h"
#include "sx/sx_policy.h"

typedef struct sx_peer_user {
    int64_t uid;
    char *user;
    sx_strlist groups;
} sx_peer_user;

/* identity.jwt, parsed (option table in identity.c). */
typedef struct sx_jwt_cfg {
    char *algorithm;
    char *secret_file;
    char *public_key_file;
    char *issuer;
    char *audience;
    int64_t clock_skew_ms;
    int64_t max_token_lifetime_ms;
    int require_exp;
    char *user_claim;
    char *groups_claim;
} sx_jwt_cfg;

typedef struct sx_ident {
    int jwt_on;                 /* identity.jwt configured */
    sx_jwt_cfg jwt;
    sx_jwt_key key;
    sx_jwt_rules rules;         /* borrows jwt.issuer / jwt.audience */
    sx_peer_user *peers;
    size_t n_peers;
} sx_ident;

/* Parse `section` (script_executor.identity, may be NULL) with the host's
 * option tables, load the JWT key.  Returns 0, or -1 with err
 * (invalid_config, naming the key).  Release with sx_ident_free() (also
 * after failure). */
int sx_ident_configure(sx_ident *id, const sx_host_api *host, sx_plugin_ctx *ctx,
                       const sx_config_node *section, sx_error *err);
void sx_ident_free(sx_ident *id, const sx_host_api *host);

/* The policy op: 1 with *out filled (malloc'ed user/groups, method set)
 * when the caller's token verified or its peer uid is mapped; 0 when there
 * is nothing to verify here (no token, unmapped or unknown uid); -1 with
 * err ("unauthenticated", never quoting the token) when a token is present
 * and wrong, or no JWT is configured to check it.  `now` in seconds. */
int sx_ident_authenticate(const sx_ident *id, const sx_caller *caller, int64_t now,
                          sx_identity *out, sx_error *err);

/* The effective settings as JSON (no secret: the key file's path and the
 * key's description only).  Caller deletes. */
cJSON *sx_ident_describe(const sx_ident *id);

/* Map verified claims to an identity (exposed for the tests): user from
 * the user claim, groups from the groups claim (a dotted path reaches
 * nested objects: "realm_access.roles").  0, or -1 with err. */
int sx_ident_from_claims(const sx_ident *id, const cJSON *claims, sx_identity *out,
                         sx_error *err);

#endif
