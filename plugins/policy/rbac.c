/* rbac.c - roles, bindings and decisions (see rbac.h). */
#define _POSIX_C_SOURCE 200809L
#include "rbac.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_util.h"

typedef struct rbac_section {
    const sx_config_node *roles;
    const sx_config_node *bindings;
    sx_strmap executor_permissions;
} rbac_section;

static const sx_option rbac_options[] = {
    {SX_OPT_NODE, "roles", NULL, 0, offsetof(rbac_section, roles),
     "list of {name, permissions, service_accounts}"},
    {SX_OPT_NODE, "bindings", NULL, 0, offsetof(rbac_section, bindings),
     "list of {role, users, groups}"},
    {SX_OPT_STRMAP, "executor_permissions", NULL, 0, offsetof(rbac_section, executor_permissions),
     "executor name or backend kind -> the permission needed to use it"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static const sx_option role_options[] = {
    {SX_OPT_STRING, "name", NULL, SX_OPT_REQUIRED, offsetof(sx_role, name), "role name"},
    {SX_OPT_STRLIST, "permissions", NULL, 0, offsetof(sx_role, permissions),
     "permissions granted (a trailing * matches by prefix)"},
    {SX_OPT_STRLIST, "service_accounts", NULL, 0, offsetof(sx_role, service_accounts),
     "with.service_account values allowed (\"*\" = any)"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static const sx_option binding_options[] = {
    {SX_OPT_STRING, "role", NULL, SX_OPT_REQUIRED, offsetof(sx_binding, role), "role bound"},
    {SX_OPT_STRLIST, "users", NULL, 0, offsetof(sx_binding, users), "users who hold it"},
    {SX_OPT_STRLIST, "groups", NULL, 0, offsetof(sx_binding, groups), "groups whose members hold it"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

static int need_list(const sx_host_api *host, const sx_config_node *n, const char *what,
                     sx_error *err)
{
    if (n == NULL || host->config_kind(n) == SX_CFG_SEQUENCE)
        return 0;
    return sx_error_set(err, "invalid_config", "%s (line %d) must be a list of %s",
                        host->config_path(n), host->config_line(n), what);
}

static const sx_role *find_role(const sx_rbac *rbac, const char *name)
{
    for (size_t i = 0; i < rbac->n_roles; i++)
        if (strcmp(rbac->roles[i].name, name) == 0)
            return &rbac->roles[i];
    return NULL;
}

int sx_rbac_configure(sx_rbac *rbac, const sx_host_api *host, sx_plugin_ctx *ctx,
                      const sx_config_node *section, sx_error *err)
{
    memset(rbac, 0, sizeof *rbac);
    rbac_section s;
    int rv = host->config_apply(ctx, section, rbac_options, &s, err);
    rbac->executor_permissions = s.executor_permissions; /* owned from here on */
    memset(&s.executor_permissions, 0, sizeof s.executor_permissions);
    if (rv != 0 || need_list(host, s.roles, "roles", err) != 0 ||
        need_list(host, s.bindings, "bindings", err) != 0)
        return -1;
    size_t nr = host->config_len(s.roles), nb = host->config_len(s.bindings);
    rbac->roles = calloc(nr ? nr : 1, sizeof *rbac->roles);
    rbac->bindings = calloc(nb ? nb : 1, sizeof *rbac->bindings);
    if (rbac->roles == NULL || rbac->bindings == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (size_t i = 0; i < nr; i++) {
        const sx_config_node *item = host->config_at(s.roles, i);
        sx_role *r = &rbac->roles[rbac->n_roles++];
        if (host->config_apply(ctx, item, role_options, r, err) != 0)
            return -1;
        if (r->name[0] == '\0')
            return sx_error_set(err, "invalid_config", "%s.name (line %d) is empty",
                                host->config_path(item), host->config_line(item));
        for (size_t j = 0; j + 1 < rbac->n_roles; j++)
            if (strcmp(rbac->roles[j].name, r->name) == 0)
                return sx_error_set(err, "invalid_config", "%s (line %d): role '%s' is defined "
                                    "twice", host->config_path(item), host->config_line(item),
                                    r->name);
    }
    for (size_t i = 0; i < nb; i++) {
        const sx_config_node *item = host->config_at(s.bindings, i);
        sx_binding *b = &rbac->bindings[rbac->n_bindings++];
        if (host->config_apply(ctx, item, binding_options, b, err) != 0)
            return -1;
        if (find_role(rbac, b->role) == NULL)
            return sx_error_set(err, "invalid_config", "%s.role (line %d): no role is named '%s'",
                                host->config_path(item), host->config_line(item), b->role);
        if (b->users.n == 0 && b->groups.n == 0)
            return sx_error_set(err, "invalid_config", "%s (line %d): a binding needs users or "
                                "groups", host->config_path(item), host->config_line(item));
    }
    for (size_t i = 0; i < rbac->executor_permissions.n; i++)
        if (rbac->executor_permissions.values[i][0] == '\0')
            return sx_error_set(err, "invalid_config", "rbac.executor_permissions.%s is empty",
                                rbac->executor_permissions.keys[i]);
    if (rbac->n_bindings == 0)
        host->log(ctx, SX_LOG_WARN, "rbac has no bindings: every request will be refused "
                                    "(deny by default)");
    return 0;
}

void sx_rbac_free(sx_rbac *rbac, const sx_host_api *host)
{
    for (size_t i = 0; i < rbac->n_roles; i++)
        host->config_free(role_options, &rbac->roles[i]);
    for (size_t i = 0; i < rbac->n_bindings; i++)
        host->config_free(binding_options, &rbac->bindings[i]);
    free(rbac->roles);
    free(rbac->bindings);
    sx_strmap_clear(&rbac->executor_permissions);
    memset(rbac, 0, sizeof *rbac);
}

int sx_rbac_pattern_covers(const char *pattern, const char *want)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, want, n - 1) == 0;
    return strcmp(pattern, want) == 0;
}

static int list_has(const sx_strlist *l, const char *s)
{
    for (size_t i = 0; s && i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

static int bound(const sx_binding *b, const sx_identity *id)
{
    if (id->user && list_has(&b->users, id->user))
        return 1;
    for (size_t g = 0; g < id->groups.n; g++)
        if (list_has(&b->groups, id->groups.v[g]))
            return 1;
    return 0;
}

/* Call fn for each role bound to id (once per role). */
static int any_role(const sx_rbac *rbac, const sx_identity *id,
                    int (*fn)(const sx_role *r, const char *arg), const char *arg)
{
    for (size_t i = 0; i < rbac->n_roles; i++) {
        const sx_role *r = &rbac->roles[i];
        for (size_t b = 0; b < rbac->n_bindings; b++)
            if (strcmp(rbac->bindings[b].role, r->name) == 0 && bound(&rbac->bindings[b], id)) {
                if (fn(r, arg))
                    return 1;
                break;
            }
    }
    return 0;
}

static int role_grants(const sx_role *r, const char *permission)
{
    for (size_t p = 0; p < r->permissions.n; p++)
        if (sx_rbac_pattern_covers(r->permissions.v[p], permission))
            return 1;
    return 0;
}

static int role_allows_sa(const sx_role *r, const char *sa)
{
    for (size_t p = 0; p < r->service_accounts.n; p++)
        if (sx_rbac_pattern_covers(r->service_accounts.v[p], sa))
            return 1;
    return 0;
}

int sx_rbac_allows(const sx_rbac *rbac, const sx_identity *id, const char *permission)
{
    return any_role(rbac, id, role_grants, permission);
}

/* "alice (groups: sre, dev; roles: operator)" for messages. */
static void who(const sx_rbac *rbac, const sx_identity *id, char *buf, size_t size)
{
    size_t o = 0;
#define PUT(...) do { int n_ = snprintf(buf + o, size - o, __VA_ARGS__); \
                      if (n_ > 0) o += (size_t)n_ < size - o ? (size_t)n_ : size - o - 1; } while (0)
    PUT("%s (groups: ", id->user ? id->user : "an anonymous caller");
    for (size_t g = 0; g < id->groups.n && g < 8; g++)
        PUT("%s%s", g ? ", " : "", id->groups.v[g]);
    if (id->groups.n == 0)
        PUT("none");
    PUT("; roles: ");
    size_t held = 0;
    for (size_t i = 0; i < rbac->n_roles; i++)
        for (size_t b = 0; b < rbac->n_bindings; b++)
            if (strcmp(rbac->bindings[b].role, rbac->roles[i].name) == 0 &&
                bound(&rbac->bindings[b], id)) {
                PUT("%s%s", held++ ? ", " : "", rbac->roles[i].name);
                break;
            }
    if (held == 0)
        PUT("none");
    PUT(")");
#undef PUT
}

int sx_rbac_authorize(const sx_rbac *rbac, const sx_identity *id, const char *required_permission,
                      const char *executor, const char *executor_kind, const char *service_account,
                      sx_error *err)
{
    char whom[512];
    if (required_permission && required_permission[0] &&
        !sx_rbac_allows(rbac, id, required_permission)) {
        who(rbac, id, whom, sizeof whom);
        return sx_error_set(err, "forbidden",
                            "%s lacks permission '%s' (security.required_permission), needed to "
                            "run any step", whom, required_permission);
    }
    const char *keys[2] = {executor, executor_kind};
    for (size_t k = 0; k < 2; k++) {
        const char *perm = keys[k] ? sx_strmap_get(&rbac->executor_permissions, keys[k]) : NULL;
        if (perm && !sx_rbac_allows(rbac, id, perm)) {
            who(rbac, id, whom, sizeof whom);
            return sx_error_set(err, "forbidden",
                                "%s lacks permission '%s', needed to use executor '%s'%s%s%s "
                                "(rbac.executor_permissions.%s)", whom, perm,
                                executor ? executor : "?", executor_kind ? " (" : "",
                                executor_kind ? executor_kind : "", executor_kind ? ")" : "",
                                keys[k]);
        }
    }
    if (service_account && !any_role(rbac, id, role_allows_sa, service_account)) {
        who(rbac, id, whom, sizeof whom);
        return sx_error_set(err, "forbidden",
                            "%s may not use service account '%s': no role held lists it in "
                            "its service_accounts (rbac.roles[].service_accounts)",
                            whom, service_account);
    }
    return 0;
}

static cJSON *strlist_json(const sx_strlist *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
    return a;
}

cJSON *sx_rbac_describe(const sx_rbac *rbac)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *roles = cJSON_AddArrayToObject(o, "roles");
    for (size_t i = 0; i < rbac->n_roles; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", rbac->roles[i].name);
        cJSON_AddItemToObject(r, "permissions", strlist_json(&rbac->roles[i].permissions));
        cJSON_AddItemToObject(r, "service_accounts", strlist_json(&rbac->roles[i].service_accounts));
        cJSON_AddItemToArray(roles, r);
    }
    cJSON *bindings = cJSON_AddArrayToObject(o, "bindings");
    for (size_t i = 0; i < rbac->n_bindings; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "role", rbac->bindings[i].role);
        cJSON_AddItemToObject(b, "users", strlist_json(&rbac->bindings[i].users));
        cJSON_AddItemToObject(b, "groups", strlist_json(&rbac->bindings[i].groups));
        cJSON_AddItemToArray(bindings, b);
    }
    cJSON *ep = cJSON_AddObjectToObject(o, "executor_permissions");
    for (size_t i = 0; i < rbac->executor_permissions.n; i++)
        cJSON_AddStringToObject(ep, rbac->executor_permissions.keys[i],
                                rbac->executor_permissions.values[i]);
    cJSON_AddStringToObject(o, "default", "deny");
    return o;
}
