/*
 * rbac.h - roles and bindings (script_executor.rbac): who may run steps, on
 * which executors, under which service accounts.  Deny by default: an
 * identity holds exactly the permissions of the roles bound to its user or
 * to one of its groups.
 *
 * Configured once at init, read-only afterwards (thread-safe).
 */
#ifndef SX_POLICY_RBAC_H
#define SX_POLICY_RBAC_H

#include <cjson/cJSON.h>

#include "sx/sx_policy.h"

typedef struct sx_role {
    char *name;
    sx_strlist permissions;     /* "executors.use.script", "executors.use.*", "*" */
    sx_strlist service_accounts; /* values with.service_account may take ("*" = any) */
} sx_role;

typedef struct sx_binding {
    char *role;
    sx_strlist users;
    sx_strlist groups;
} sx_binding;

typedef struct sx_rbac {
    sx_role *roles;
    size_t n_roles;
    sx_binding *bindings;
    size_t n_bindings;
    sx_strmap executor_permissions; /* executor name or backend kind -> permission */
} sx_rbac;

/* Parse `section` (may be NULL: no roles, every request is refused).
 * Returns 0, or -1 with err (invalid_config).  Release with sx_rbac_free
 * (also after failure). */
int sx_rbac_configure(sx_rbac *rbac, const sx_host_api *host, sx_plugin_ctx *ctx,
                      const sx_config_node *section, sx_error *err);
void sx_rbac_free(sx_rbac *rbac, const sx_host_api *host);

/* Does a granted permission pattern cover `want`?  Exact, or a pattern
 * ending in '*' that matches by prefix ("executors.use.*", "*"). */
int sx_rbac_pattern_covers(const char *pattern, const char *want);

/* 1 when one of the roles bound to `id` grants `permission`, else 0. */
int sx_rbac_allows(const sx_rbac *rbac, const sx_identity *id, const char *permission);

/* The decision for one step: the required permission, the executor's
 * permission (rbac.executor_permissions, by executor name and by backend
 * kind), and with.service_account (NULL = not set).  Returns 0, or -1 with
 * err->code "forbidden" and a message naming the user, the missing
 * permission and the roles held. */
int sx_rbac_authorize(const sx_rbac *rbac, const sx_identity *id,
                      const char *required_permission, const char *executor,
                      const char *executor_kind, const char *service_account, sx_error *err);

cJSON *sx_rbac_describe(const sx_rbac *rbac);

#endif
