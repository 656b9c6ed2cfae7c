/* identity.c - JWT and peer-uid identities (see identity.h). */
#define _POSIX_C_SOURCE 200809L
#include "identity.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx/sx_util.h"

#define SX_IDENT_MAX_NAME 253
#define SX_IDENT_MAX_GROUPS 64

typedef struct identity_section {
    const sx_config_node *jwt;
    const sx_config_node *peer_uids;
} identity_section;

static const sx_option identity_options[] = {
    {SX_OPT_NODE, "jwt", NULL, 0, offsetof(identity_section, jwt),
     "JWT verification of caller.token (map; absent = tokens are refused)"},
    {SX_OPT_NODE, "peer_uids", NULL, 0, offsetof(identity_section, peer_uids),
     "ipc:// peers: list of {uid, user, groups}"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

#define JWT(type, name, def, flags, field, desc) \
    {type, name, def, flags, offsetof(sx_jwt_cfg, field), desc}
static const sx_option jwt_options[] = {
    JWT(SX_OPT_STRING, "algorithm", NULL, SX_OPT_REQUIRED, algorithm,
        "HS256 | RS256 | ES256: the only algorithm accepted"),
    JWT(SX_OPT_STRING, "secret_file", NULL, 0, secret_file,
        "HS256: file holding the shared secret (>= 32 bytes)"),
    JWT(SX_OPT_STRING, "public_key_file", NULL, 0, public_key_file,
        "RS256/ES256: PEM public key or certificate of the issuer"),
    JWT(SX_OPT_STRING, "issuer", NULL, 0, issuer, "expected iss (unset = not checked: warned)"),
    JWT(SX_OPT_STRING, "audience", NULL, 0, audience,
        "expected aud (unset = not checked: warned; a token minted for another service passes)"),
    JWT(SX_OPT_DURATION, "clock_skew", "60s", 0, clock_skew_ms,
        "tolerance for exp, nbf and iat"),
    JWT(SX_OPT_DURATION, "max_token_lifetime", "0", 0, max_token_lifetime_ms,
        "longest exp - iat accepted (0 = unchecked)"),
    JWT(SX_OPT_BOOL, "require_exp", "true", 0, require_exp, "refuse tokens without exp"),
    JWT(SX_OPT_STRING, "user_claim", "sub", 0, user_claim,
        "claim naming the user (dotted path for nested claims)"),
    JWT(SX_OPT_STRING, "groups_claim", "groups", 0, groups_claim,
        "claim listing the groups (array or string; dotted path)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
#undef JWT

typedef struct peer_entry {
    int64_t uid;
    char *user;
    sx_strlist groups;
} peer_entry;

static const sx_option peer_options[] = {
    {SX_OPT_INT, "uid", NULL, SX_OPT_REQUIRED, offsetof(peer_entry, uid), "Unix uid of the peer"},
    {SX_OPT_STRING, "user", NULL, SX_OPT_REQUIRED, offsetof(peer_entry, user), "user name"},
    {SX_OPT_STRLIST, "groups", NULL, 0, offsetof(peer_entry, groups), "the user's groups"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SX_IDENT_MAX_NAME)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int configure_jwt(sx_ident *id, const sx_host_api *host, sx_plugin_ctx *ctx,
                         const sx_config_node *node, sx_error *err)
{
    if (host->config_apply(ctx, node, jwt_options, &id->jwt, err) != 0)
        return -1;
    const char *where = host->config_path(node);
    int line = host->config_line(node);
    sx_jwt_alg alg;
    if (sx_jwt_alg_parse(id->jwt.algorithm, &alg) != 0)
        return sx_error_set(err, "invalid_config",
                            "%s.algorithm (line %d): '%s' is not HS256, RS256 or ES256 (other "
                            "algorithms, and 'none', are never accepted)",
                            where, line, id->jwt.algorithm);
    const char *file = alg == SX_JWT_HS256 ? id->jwt.secret_file : id->jwt.public_key_file;
    const char *other = alg == SX_JWT_HS256 ? id->jwt.public_key_file : id->jwt.secret_file;
    if (file == NULL || other != NULL)
        return sx_error_set(err, "invalid_config",
                            "%s (line %d): %s needs %s (and not %s)", where, line,
                            id->jwt.algorithm, alg == SX_JWT_HS256 ? "secret_file" : "public_key_file",
                            alg == SX_JWT_HS256 ? "public_key_file" : "secret_file");
    if (id->jwt.clock_skew_ms < 0 || id->jwt.clock_skew_ms > 600000)
        return sx_error_set(err, "invalid_config", "%s.clock_skew (line %d) must be 0..10m", where,
                            line);
    if (id->jwt.max_token_lifetime_ms < 0)
        return sx_error_set(err, "invalid_config", "%s.max_token_lifetime (line %d) must be >= 0",
                            where, line);
    if (id->jwt.user_claim[0] == '\0' || id->jwt.groups_claim[0] == '\0')
        return sx_error_set(err, "invalid_config", "%s (line %d): user_claim and groups_claim "
                            "must not be empty", where, line);
    if (sx_jwt_key_load(&id->key, alg, file, err) != 0)
        return -1;
    struct stat st;
    if (alg == SX_JWT_HS256 && stat(file, &st) == 0 && (st.st_mode & 0077) != 0)
        host->log(ctx, SX_LOG_WARN,
                  "identity.jwt.secret_file %s is readable by group or others (mode %03o): "
                  "anyone who reads it can mint tokens", file, (unsigned)(st.st_mode & 0777));
    id->rules.issuer = id->jwt.issuer;
    id->rules.audience = id->jwt.audience;
    id->rules.clock_skew_s = id->jwt.clock_skew_ms / 1000;
    id->rules.require_exp = id->jwt.require_exp;
    id->rules.max_lifetime_s = id->jwt.max_token_lifetime_ms / 1000;
    if (!id->jwt.require_exp)
        host->log(ctx, SX_LOG_WARN, "identity.jwt.require_exp is false: tokens without an "
                                    "expiry are accepted forever");
    id->jwt_on = 1;
    return 0;
}

static int configure_peers(sx_ident *id, const sx_host_api *host, sx_plugin_ctx *ctx,
                           const sx_config_node *list, sx_error *err)
{
    if (host->config_kind(list) != SX_CFG_SEQUENCE)
        return sx_error_set(err, "invalid_config", "%s (line %d) must be a list of {uid, user, "
                            "groups}", host->config_path(list), host->config_line(list));
    size_t n = host->config_len(list);
    id->peers = calloc(n ? n : 1, sizeof *id->peers);
    if (id->peers == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const sx_config_node *item = host->config_at(list, i);
        peer_entry e;
        if (host->config_apply(ctx, item, peer_options, &e, err) != 0) {
            host->config_free(peer_options, &e);
            return -1;
        }
        sx_peer_user *p = &id->peers[id->n_peers++];
        p->uid = e.uid;
        p->user = e.user;
        p->groups = e.groups;
        const char *where = host->config_path(item);
        int line = host->config_line(item);
        if (e.uid < 0 || e.uid > 0xfffffffeLL)
            return sx_error_set(err, "invalid_config", "%s.uid (line %d) must be a Unix uid",
                                where, line);
        if (!valid_name(e.user))
            return sx_error_set(err, "invalid_config", "%s.user (line %d) must be a printable "
                                "name of 1..%d characters", where, line, SX_IDENT_MAX_NAME);
        for (size_t g = 0; g < e.groups.n; g++)
            if (!valid_name(e.groups.v[g]))
                return sx_error_set(err, "invalid_config", "%s.groups[%zu] (line %d) must be a "
                                    "printable name", where, g, line);
        for (size_t j = 0; j + 1 < id->n_peers; j++)
            if (id->peers[j].uid == e.uid)
                return sx_error_set(err, "invalid_config", "%s (line %d): uid %lld is mapped "
                                    "twice", where, line, (long long)e.uid);
    }
    return 0;
}

int sx_ident_configure(sx_ident *id, const sx_host_api *host, sx_plugin_ctx *ctx,
                       const sx_config_node *section, sx_error *err)
{
    memset(id, 0, sizeof *id);
    identity_section s;
    if (host->config_apply(ctx, section, identity_options, &s, err) != 0)
        return -1;
    if (s.jwt && configure_jwt(id, host, ctx, s.jwt, err) != 0)
        return -1;
    if (s.peer_uids && configure_peers(id, host, ctx, s.peer_uids, err) != 0)
        return -1;
    return 0;
}

void sx_ident_free(sx_ident *id, const sx_host_api *host)
{
    host->config_free(jwt_options, &id->jwt);
    sx_jwt_key_free(&id->key);
    for (size_t i = 0; i < id->n_peers; i++) {
        free(id->peers[i].user);
        sx_strlist_clear(&id->peers[i].groups);
    }
    free(id->peers);
    memset(id, 0, sizeof *id);
}

/* A claim by dotted path ("realm_access.roles"); a key containing a dot
 * is found too when it exists as written. */
static const cJSON *claim_at(const cJSON *claims, const char *path)
{
    const cJSON *direct = cJSON_GetObjectItemCaseSensitive(claims, path);
    if (direct || strchr(path, '.') == NULL)
        return direct;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = claims;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, part) : NULL;
    return cur;
}

static int add_group(sx_identity *out, const char *g, sx_error *err)
{
    if (!valid_name(g))
        return sx_error_set(err, "unauthenticated", "token rejected: a group in its groups "
                            "claim is empty, too long or not printable");
    if (out->groups.n == SX_IDENT_MAX_GROUPS)
        return sx_error_set(err, "unauthenticated", "token rejected: more than %d groups",
                            SX_IDENT_MAX_GROUPS);
    char **v = realloc(out->groups.v, (out->groups.n + 1) * sizeof *v);
    if (v == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    out->groups.v = v;
    if ((v[out->groups.n] = strdup(g)) == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    out->groups.n++;
    return 0;
}

int sx_ident_from_claims(const sx_ident *id, const cJSON *claims, sx_identity *out, sx_error *err)
{
    const cJSON *user = claim_at(claims, id->jwt.user_claim);
    if (!cJSON_IsString(user) || !valid_name(user->valuestring))
        return sx_error_set(err, "unauthenticated",
                            "token rejected: its '%s' claim does not name a user (a printable "
                            "string of 1..%d characters)", id->jwt.user_claim, SX_IDENT_MAX_NAME);
    const cJSON *groups = claim_at(claims, id->jwt.groups_claim);
    if (groups != NULL && !cJSON_IsNull(groups) && !cJSON_IsString(groups) && !cJSON_IsArray(groups))
        return sx_error_set(err, "unauthenticated", "token rejected: its '%s' claim must be a "
                            "string or an array of strings", id->jwt.groups_claim);
    if ((out->user = strdup(user->valuestring)) == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    if (cJSON_IsString(groups) && add_group(out, groups->valuestring, err) != 0)
        return -1;
    for (const cJSON *g = cJSON_IsArray(groups) ? groups->child : NULL; g; g = g->next) {
        if (!cJSON_IsString(g))
            return sx_error_set(err, "unauthenticated", "token rejected: its '%s' claim must "
                                "hold strings only", id->jwt.groups_claim);
        if (add_group(out, g->valuestring, err) != 0)
            return -1;
    }
    snprintf(out->method, sizeof out->method, "jwt");
    return 0;
}

int sx_ident_authenticate(const sx_ident *id, const sx_caller *caller, int64_t now,
                          sx_identity *out, sx_error *err)
{
    if (caller->token != NULL) {
        if (!id->jwt_on)
            return sx_error_set(err, "unauthenticated",
                                "caller.token was given but this policy verifies no tokens "
                                "(identity.jwt is not configured)");
        cJSON *claims = NULL;
        if (sx_jwt_verify(&id->key, &id->rules, caller->token, now, &claims, err) != 0)
            return -1;
        int rv = sx_ident_from_claims(id, claims, out, err);
        cJSON_Delete(claims);
        if (rv != 0) {
            sx_identity_clear(out);
            return -1;
        }
        return 1;
    }
    if (caller->peer_uid < 0)
        return 0;
    for (size_t i = 0; i < id->n_peers; i++) {
        const sx_peer_user *p = &id->peers[i];
        if (p->uid != caller->peer_uid)
            continue;
        if ((out->user = strdup(p->user)) == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        for (size_t g = 0; g < p->groups.n; g++)
            if (add_group(out, p->groups.v[g], err) != 0) {
                sx_identity_clear(out);
                return -1;
            }
        snprintf(out->method, sizeof out->method, "peer_uid");
        return 1;
    }
    return 0;
}

cJSON *sx_ident_describe(const sx_ident *id)
{
    cJSON *o = cJSON_CreateObject();
    if (id->jwt_on) {
        cJSON *j = cJSON_AddObjectToObject(o, "jwt");
        cJSON_AddStringToObject(j, "algorithm", sx_jwt_alg_name(id->key.alg));
        cJSON_AddStringToObject(j, "key_file", id->key.alg == SX_JWT_HS256 ? id->jwt.secret_file
                                                                          : id->jwt.public_key_file);
        cJSON_AddStringToObject(j, "key", id->key.desc);
        if (id->jwt.issuer)
            cJSON_AddStringToObject(j, "issuer", id->jwt.issuer);
        else
            cJSON_AddNullToObject(j, "issuer");
        if (id->jwt.audience)
            cJSON_AddStringToObject(j, "audience", id->jwt.audience);
        else
            cJSON_AddNullToObject(j, "audience");
        cJSON_AddNumberToObject(j, "clock_skew_seconds", (double)id->rules.clock_skew_s);
        cJSON_AddNumberToObject(j, "max_token_lifetime_seconds", (double)id->rules.max_lifetime_s);
        cJSON_AddBoolToObject(j, "require_exp", id->rules.require_exp);
        cJSON_AddStringToObject(j, "user_claim", id->jwt.user_claim);
        cJSON_AddStringToObject(j, "groups_claim", id->jwt.groups_claim);
    } else {
        cJSON_AddNullToObject(o, "jwt");
    }
    cJSON *peers = cJSON_AddArrayToObject(o, "peer_uids");
    for (size_t i = 0; i < id->n_peers; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "uid", (double)id->peers[i].uid);
        cJSON_AddStringToObject(p, "user", id->peers[i].user);
        cJSON *g = cJSON_AddArrayToObject(p, "groups");
        for (size_t k = 0; k < id->peers[i].groups.n; k++)
            cJSON_AddItemToArray(g, cJSON_CreateString(id->peers[i].groups.v[k]));
        cJSON_AddItemToArray(peers, p);
    }
    return o;
}
