/* approval.c - the approval workflow's execute side (see approval.h). */
#define _POSIX_C_SOURCE 200809L
#include "approval.h"

#include <openssl/evp.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "approval_internal.h"
#include "config.h"
#include "log.h"
#include "records.h"
#include "sx/sx_util.h"

typedef struct approval_cfg {
    int enabled;
    int64_t timeout_ms;
    sx_strlist default_approvers;
    sx_strlist allowed_approver_groups;
    int64_t approvals_required;
    const sx_config_node *storage;     /* the store plugin's */
    const sx_config_node *auto_approve;
} approval_cfg;

#define AOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(approval_cfg, field), desc}
static const sx_option approval_options[] = {
    AOPT(SX_OPT_BOOL, "enabled", "true", enabled,
         "false: steps with approval_required are refused (never run unapproved)"),
    AOPT(SX_OPT_DURATION, "approval_timeout", "24h", timeout_ms, "a pending approval expires after this"),
    AOPT(SX_OPT_STRLIST, "default_approvers", "[sre-leads]", default_approvers,
         "approver groups of steps that name none"),
    AOPT(SX_OPT_STRLIST, "allowed_approver_groups", NULL, allowed_approver_groups,
         "groups a step may name as its approvers (empty: default_approvers only)"),
    AOPT(SX_OPT_INT, "approvals_required", "1", approvals_required,
         "distinct approvers needed (beyond the spec; 1 = the spec's behaviour)"),
    AOPT(SX_OPT_NODE, "storage", NULL, storage, "the approval store's settings (its plugin reads them)"),
    AOPT(SX_OPT_NODE, "auto_approve", NULL, auto_approve, "{enabled, rules: [{user_group, script_pattern}]}"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct auto_cfg {
    int enabled;
    const sx_config_node *rules;
} auto_cfg;

static const sx_option auto_options[] = {
    {SX_OPT_BOOL, "enabled", "false", 0, offsetof(auto_cfg, enabled), "apply the rules"},
    {SX_OPT_NODE, "rules", NULL, 0, offsetof(auto_cfg, rules), "[{user_group, script_pattern}]"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct rule_cfg {
    char *user_group;
    char *script_pattern;
} rule_cfg;

static const sx_option rule_options[] = {
    {SX_OPT_STRING, "user_group", NULL, SX_OPT_REQUIRED, offsetof(rule_cfg, user_group),
     "the requester must be in this group"},
    {SX_OPT_STRING, "script_pattern", NULL, SX_OPT_REQUIRED, offsetof(rule_cfg, script_pattern),
     "POSIX extended regex the WHOLE script text must match"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct auto_rule {
    rule_cfg cfg;
    regex_t re;
    int compiled;
} auto_rule;

struct sx_approvals {
    sx_host *host;
    approval_cfg cfg;
    auto_cfg autocfg;
    auto_rule *rules;
    size_t n_rules;
    struct sx_plugin_ctx *plugin;      /* the store */
    const sx_approval_ops *ops;
    char claimer[160];                 /* "<hostname>/<pid>" */
};

int64_t sx_approval_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const sx_approval_ops *sx_approvals_store(sx_approvals *a, void **state)
{
    *state = a->plugin ? a->plugin->state : NULL;
    return a->ops;
}

sx_host *sx_approvals_host(sx_approvals *a)
{
    return a->host;
}

struct sx_plugin_ctx *sx_approvals_plugin(sx_approvals *a)
{
    return a->plugin;
}

void sx_approvals_close(sx_approvals *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_rules; i++) {
        if (a->rules[i].compiled)
            regfree(&a->rules[i].re);
        sx_cfg_options_free(rule_options, &a->rules[i].cfg);
    }
    free(a->rules);
    sx_cfg_options_free(auto_options, &a->autocfg);
    sx_cfg_options_free(approval_options, &a->cfg);
    free(a);
}

int sx_approvals_open(sx_host *host, sx_approvals **out, sx_error *err)
{
    *out = NULL;
    struct sx_plugin_ctx *store = NULL;
    for (size_t i = 0; i < host->n_plugins; i++) {
        if (host->plugins[i]->desc->kind != SX_KIND_APPROVAL)
            continue;
        if (store)
            return sx_error_set(err, "invalid_config", "two approval stores are loaded (%s and %s): "
                                "load one", store->desc->name, host->plugins[i]->desc->name);
        store = host->plugins[i];
    }
    const sx_config_node *section = sx_cfg_get(host->root, "approval");
    if (store == NULL)
        return 0; /* approval_required steps are refused: approval_unavailable */
    sx_approvals *a = calloc(1, sizeof *a);
    if (a == NULL)
        return sx_error_set(err, "internal_error", "out of memory");
    a->host = host;
    a->plugin = store;
    a->ops = store->desc->ops;
    if (sx_cfg_apply(section, approval_options, &a->cfg, err) != 0)
        goto fail;
    if (!a->cfg.enabled) {
        sx_log_fields(SX_LOG_WARN, "host", NULL, "approval.enabled is false: steps that require "
                      "approval are refused (approval_unavailable), never run unapproved");
        sx_approvals_close(a);
        return 0;
    }
    if (a->cfg.approvals_required < 1 || a->cfg.approvals_required > 16) {
        sx_error_set(err, "invalid_config", "approval.approvals_required must be 1..16");
        goto fail;
    }
    if (a->cfg.timeout_ms <= 0) {
        sx_error_set(err, "invalid_config", "approval.approval_timeout must be positive");
        goto fail;
    }
    if (sx_cfg_apply(a->cfg.auto_approve, auto_options, &a->autocfg, err) != 0)
        goto fail;
    const sx_config_node *rules = a->autocfg.rules;
    if (rules && sx_cfg_kind(rules) != SX_CFG_SEQUENCE) {
        sx_error_set(err, "invalid_config", "%s must be a list of {user_group, script_pattern}",
                     sx_cfg_path(rules));
        goto fail;
    }
    a->n_rules = sx_cfg_len(rules);
    a->rules = calloc(a->n_rules ? a->n_rules : 1, sizeof *a->rules);
    if (a->rules == NULL) {
        sx_error_set(err, "internal_error", "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < a->n_rules; i++) {
        if (sx_cfg_apply(sx_cfg_at(rules, i), rule_options, &a->rules[i].cfg, err) != 0)
            goto fail;
        /* the whole script must match: a search would approve
         * "echo ok; anything else" for the pattern "^echo" */
        size_t plen = strlen(a->rules[i].cfg.script_pattern) + 8;
        char *anchored = malloc(plen);
        if (anchored == NULL) {
            sx_error_set(err, "internal_error", "out of memory");
            goto fail;
        }
        snprintf(anchored, plen, "^(%s)$", a->rules[i].cfg.script_pattern);
        int rc = regcomp(&a->rules[i].re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc != 0) {
            char why[128];
            regerror(rc, &a->rules[i].re, why, sizeof why);
            sx_error_set(err, "invalid_config", "approval.auto_approve.rules[%zu].script_pattern: %s", i, why);
            goto fail;
        }
        a->rules[i].compiled = 1;
    }
    char hostname[128] = "host";
    gethostname(hostname, sizeof hostname - 1);
    snprintf(a->claimer, sizeof a->claimer, "%s/%ld", hostname, (long)getpid());
    sx_log_fields(SX_LOG_INFO, "host", NULL, "approvals: store %s, timeout %llds, %lld approver(s) needed, "
                  "%zu auto-approve rule(s)%s", store->desc->name, (long long)(a->cfg.timeout_ms / 1000),
                  (long long)a->cfg.approvals_required, a->n_rules,
                  a->autocfg.enabled ? "" : " (auto-approve disabled)");
    *out = a;
    return 0;
fail:
    sx_approvals_close(a);
    return -1;
}

/* ---- digest ---------------------------------------------------------- */

/* A copy of v with every object's members sorted by key (recursively). */
static cJSON *canonical(const cJSON *v)
{
    if (cJSON_IsArray(v)) {
        cJSON *out = cJSON_CreateArray();
        for (const cJSON *c = v->child; c; c = c->next) {
            cJSON *item = canonical(c);
            if (item == NULL) {
                cJSON_Delete(out);
                return NULL;
            }
            cJSON_AddItemToArray(out, item);
        }
        return out;
    }
    if (!cJSON_IsObject(v))
        return cJSON_Duplicate(v, 1);
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        n++;
    const cJSON **kids = calloc(n ? n : 1, sizeof *kids);
    size_t i = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        kids[i++] = c;
    for (size_t a = 1; a < n; a++) /* insertion sort: objects are small */
        for (size_t b = a; b > 0 && strcmp(kids[b - 1]->string, kids[b]->string) > 0; b--) {
            const cJSON *t = kids[b];
            kids[b] = kids[b - 1];
            kids[b - 1] = t;
        }
    cJSON *out = cJSON_CreateObject();
    int dup = 0;
    for (i = 0; i < n && !dup; i++) {
        if (i > 0 && strcmp(kids[i - 1]->string, kids[i]->string) == 0)
            dup = 1; /* readers disagree on which one counts: no digest */
        cJSON *c = dup ? NULL : canonical(kids[i]);
        if (c == NULL)
            dup = 1;
        else
            cJSON_AddItemToObject(out, kids[i]->string, c);
    }
    free(kids);
    if (dup) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static void sha256_hex(const char *data, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int sx_approval_digest(const char *type, const char *executor, const char *runbook_id,
                       const char *with_json, char out[72])
{
    cJSON *with = with_json ? cJSON_Parse(with_json) : cJSON_CreateObject();
    if (!cJSON_IsObject(with)) {
        cJSON_Delete(with);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(with, "approval_required");
    cJSON_DeleteItemFromObjectCaseSensitive(with, "approvers");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type ? type : "");
    cJSON_AddStringToObject(o, "executor", executor ? executor : "");
    cJSON_AddStringToObject(o, "runbook_id", runbook_id ? runbook_id : "");
    cJSON_AddItemToObject(o, "with", with);
    cJSON *c = canonical(o);
    char *text = c ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    cJSON_Delete(o);
    if (text == NULL)
        return -1;
    sha256_hex(text, strlen(text), out);
    free(text);
    return 0;
}

/* ---- the request an approver sees ------------------------------------- */

/* Environment variables that make an interpreter load or run other code
 * than the script (BASH_ENV, LD_PRELOAD, PYTHONSTARTUP, RUBYOPT, ...). */
static int changes_what_runs(const char *name)
{
    static const char *const exact[] = {"BASH_ENV", "ENV", "PATH", "IFS", "SHELLOPTS", "BASHOPTS",
                                        "PS4", "PROMPT_COMMAND", "NODE_OPTIONS", "PERL5OPT",
                                        "PERL5LIB", "GCONV_PATH", NULL};
    static const char *const prefix[] = {"LD_", "PYTHON", "RUBY", "GEM_", "BASH_FUNC_", NULL};
    for (const char *const *e = exact; *e; e++)
        if (strcmp(name, *e) == 0)
            return 1;
    for (const char *const *p = prefix; *p; p++)
        if (strncmp(name, *p, strlen(*p)) == 0)
            return 1;
    return 0;
}

/* `with` as shown to approvers: env values replaced by their names (but
 * those that change what runs), stdin by its hash and size. */
static cJSON *with_shown(const char *with_json)
{
    cJSON *with = with_json ? cJSON_Parse(with_json) : NULL;
    if (!cJSON_IsObject(with)) {
        cJSON_Delete(with);
        return cJSON_CreateObject();
    }
    cJSON *env = cJSON_DetachItemFromObjectCaseSensitive(with, "env");
    if (cJSON_IsObject(env)) {
        cJSON *names = cJSON_CreateArray();
        cJSON *loader = cJSON_CreateObject();
        for (const cJSON *e = env->child; e; e = e->next) {
            cJSON_AddItemToArray(names, cJSON_CreateString(e->string));
            if (changes_what_runs(e->string) && cJSON_IsString(e))
                cJSON_AddStringToObject(loader, e->string, e->valuestring);
        }
        cJSON_AddItemToObject(with, "env_names", names);
        /* variables that make the interpreter run other code are shown with
         * their values: an approver must see them */
        if (loader->child)
            cJSON_AddItemToObject(with, "env_that_changes_what_runs", loader);
        else
            cJSON_Delete(loader);
    }
    cJSON_Delete(env);
    cJSON *in = cJSON_DetachItemFromObjectCaseSensitive(with, "stdin");
    if (cJSON_IsString(in)) { /* may hold credentials: its hash and size only */
        char h[72];
        sha256_hex(in->valuestring, strlen(in->valuestring), h);
        cJSON *o = cJSON_AddObjectToObject(with, "stdin");
        cJSON_AddStringToObject(o, "sha256", h);
        cJSON_AddNumberToObject(o, "bytes", (double)strlen(in->valuestring));
    }
    cJSON_Delete(in);
    return with;
}

static int list_has(const sx_strlist *l, const char *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return 1;
    return 0;
}

/* The approver groups: the step's `approvers`, else `with.approvers`, else
 * the config's default_approvers.  A group the step names must be allowed
 * (allowed_approver_groups, or default_approvers when that is empty): the
 * requester does not get to pick their own teammates.  NULL with err
 * (invalid_parameter) when one is not. */
static cJSON *approvers_of(const sx_approvals *a, const sx_approval_step *st, sx_error *err)
{
    cJSON *list = cJSON_CreateArray();
    cJSON *with = NULL;
    const cJSON *src = st->approvers;
    if (src == NULL) { /* inside `with`, as in the spec's example 3 */
        with = st->with_json ? cJSON_Parse(st->with_json) : NULL;
        src = cJSON_GetObjectItemCaseSensitive(with, "approvers");
    }
    const sx_strlist *allowed = a->cfg.allowed_approver_groups.n ? &a->cfg.allowed_approver_groups
                                                                 : &a->cfg.default_approvers;
    const cJSON *g;
    const cJSON *arr = cJSON_IsArray(src) ? src : NULL;
    cJSON_ArrayForEach(g, arr) {
        if (!cJSON_IsString(g))
            continue;
        if (!list_has(allowed, g->valuestring)) {
            sx_error_set(err, "invalid_parameter", "approver group '%.100s' is not allowed "
                         "(approval.allowed_approver_groups, else default_approvers)", g->valuestring);
            cJSON_Delete(list);
            cJSON_Delete(with);
            return NULL;
        }
        cJSON_AddItemToArray(list, cJSON_CreateString(g->valuestring));
    }
    cJSON_Delete(with);
    if (cJSON_GetArraySize(list) == 0)
        for (size_t i = 0; i < a->cfg.default_approvers.n; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(a->cfg.default_approvers.v[i]));
    return list;
}

static cJSON *request_object(const sx_approvals *a, const sx_approval_step *st, const char *digest,
                             sx_error *err)
{
    cJSON *approvers = approvers_of(a, st, err);
    if (approvers == NULL)
        return NULL;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "requester", st->user ? st->user : "");
    cJSON_AddStringToObject(req, "requester_auth", st->auth_method ? st->auth_method : "");
    cJSON *groups = cJSON_AddArrayToObject(req, "requester_groups");
    for (size_t i = 0; i < st->n_groups; i++)
        cJSON_AddItemToArray(groups, cJSON_CreateString(st->groups[i]));
    cJSON_AddItemToObject(req, "approvers", approvers);
    cJSON_AddStringToObject(req, "runbook_id", st->runbook_id ? st->runbook_id : "");
    cJSON_AddStringToObject(req, "type", st->type ? st->type : "");
    cJSON_AddStringToObject(req, "executor", st->executor ? st->executor : "");
    cJSON_AddStringToObject(req, "digest", digest);
    cJSON *with = with_shown(st->with_json);
    const cJSON *script = cJSON_GetObjectItemCaseSensitive(with, "inline_script");
    if (cJSON_IsString(script)) {
        char h[72];
        sha256_hex(script->valuestring, strlen(script->valuestring), h);
        cJSON_AddStringToObject(req, "script_hash", h);
    }
    cJSON_AddItemToObject(req, "with", with);
    return req;
}

/* ---- replies and records --------------------------------------------- */

static char *reply_text(const sx_approval_step *st, const char *status, const cJSON *record,
                        const char *code, const char *fmt, ...) SX_PRINTF(5, 6);
static char *reply_text(const sx_approval_step *st, const char *status, const cJSON *record,
                        const char *code, const char *fmt, ...)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "execution_id", st->execution_id);
    cJSON_AddStringToObject(o, "step_name", st->step_name);
    if (record)
        cJSON_AddItemToObject(o, "approval", sx_approval_summary(record));
    if (code) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

cJSON *sx_approval_summary(const cJSON *record)
{
    cJSON *s = cJSON_CreateObject();
    const cJSON *eid = cJSON_GetObjectItemCaseSensitive(record, "execution_id");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(record, "step_name");
    char id[600];
    snprintf(id, sizeof id, "%s/%s", cJSON_GetStringValue(eid) ? eid->valuestring : "",
             cJSON_GetStringValue(step) ? step->valuestring : "");
    cJSON_AddStringToObject(s, "id", id);
    static const char *const keys[] = {"status", "approvals_required", "approvals", "denied_by", "reason",
                                       "created_at", "expires_at", "decided_at", "consumed_by", NULL};
    for (const char *const *k = keys; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(record, *k);
        if (v && !cJSON_IsNull(v))
            cJSON_AddItemToObject(s, *k, cJSON_Duplicate(v, 1));
    }
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(record, "request");
    const cJSON *appr = cJSON_GetObjectItemCaseSensitive(req, "approvers");
    if (appr)
        cJSON_AddItemToObject(s, "approvers", cJSON_Duplicate(appr, 1));
    const cJSON *requester = cJSON_GetObjectItemCaseSensitive(req, "requester");
    if (cJSON_IsString(requester))
        cJSON_AddStringToObject(s, "requester", requester->valuestring);
    return s;
}

int sx_approval_audit(sx_host *host, const char *topic, const char *event, const cJSON *record,
                      const char *user, sx_error *err)
{
    const char *eid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "execution_id"));
    const char *step = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "step_name"));
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(record, "request");
    const char *rb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "runbook_id"));
    cJSON *rec = sx_record_new_ids(topic, event, eid, step, rb && rb[0] ? rb : NULL, user);
    cJSON_AddItemToObject(rec, "approval", sx_approval_summary(record));
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(req, "digest");
    if (cJSON_IsString(digest))
        cJSON_AddStringToObject(rec, "digest", digest->valuestring);
    return sx_record_commit(host, topic, rec, err);
}

static int in_group(const sx_approval_step *st, const char *group)
{
    for (size_t i = 0; i < st->n_groups; i++)
        if (strcmp(st->groups[i], group) == 0)
            return 1;
    return 0;
}

/* The auto-approve rule this step matches, or -1. */
static int auto_rule_for(const sx_approvals *a, const sx_approval_step *st)
{
    if (!a->autocfg.enabled || st->user == NULL)
        return -1;
    cJSON *with = st->with_json ? cJSON_Parse(st->with_json) : NULL;
    const char *script = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(with, "inline_script"));
    /* only a plain script: env (BASH_ENV...), args, stdin, volumes, images
     * and the rest change what runs beyond the text the pattern saw */
    static const char *const plain[] = {"inline_script", "interpreter", "timeout", "executor",
                                        "approval_required", "approvers", NULL};
    for (const cJSON *k = with ? with->child : NULL; k && script; k = k->next) {
        int ok = 0;
        for (const char *const *p = plain; *p && !ok; p++)
            ok = strcmp(k->string, *p) == 0;
        if (!ok)
            script = NULL;
    }
    int found = -1;
    for (size_t i = 0; script && found < 0 && i < a->n_rules; i++)
        if (in_group(st, a->rules[i].cfg.user_group) && regexec(&a->rules[i].re, script, 0, NULL, 0) == 0)
            found = (int)i;
    cJSON_Delete(with);
    return found;
}

static char *store_error_reply(const sx_approval_step *st, const sx_error *err)
{
    return reply_text(st, "error", NULL, "approval_store_unavailable", "%s", err->message);
}

/* Audit the expiry when this very store call stored it (each once). */
static void note_if_expired_now(sx_approvals *a, const cJSON *record)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(record, "expired_now")))
        sx_approval_note_expired(a, record);
}

/* Parse a store's record text (consumes it); NULL when missing or bad. */
static cJSON *take_record(char *text)
{
    cJSON *r = text ? cJSON_Parse(text) : NULL;
    free(text);
    return r;
}

/* Auto-approve a just-created request by `rule`: the decision is audited
 * (durable) before it is stored, so no approval exists that the audit
 * trail does not show.  Returns the approved record, or NULL with *reply. */
static cJSON *auto_approve(sx_approvals *a, const sx_approval_step *st, int rule, const cJSON *pending,
                           char **reply)
{
    char by[96];
    snprintf(by, sizeof by, "auto-approve:rules[%d]", rule);
    sx_error err = {{0}, {0}};
    if (sx_approval_audit(a->host, "approval.decision", "approval_decision", pending, by, &err) != 0) {
        *reply = reply_text(st, "error", pending, "audit_unavailable", "%s", err.message);
        return NULL;
    }
    void *state = a->plugin->state;
    int64_t now = sx_approval_now_ms();
    char *text = NULL;
    for (int i = 0; i < a->cfg.approvals_required; i++) {
        char who[128];
        snprintf(who, sizeof who, i ? "%s#%d" : "%s", by, i + 1);
        free(text);
        text = NULL;
        if (a->ops->decide(state, st->execution_id, st->step_name, who, 1,
                           a->rules[rule].cfg.user_group, now, &text, &err) != 0) {
            free(text);
            *reply = store_error_reply(st, &err);
            return NULL;
        }
    }
    cJSON *record = take_record(text);
    if (sx_approval_audit(a->host, "approval.granted", "approval_granted", record, by, &err) != 0)
        sx_log(SX_LOG_ERROR, "audit", "auto-approval of %s/%s stored, its outcome not audited: %s",
               st->execution_id, st->step_name, err.message);
    sx_log_event(SX_LOG_INFO, "host", "approval_granted", NULL, "step %s/%s auto-approved by rule %d (group %s)",
                  st->execution_id, st->step_name, rule, a->rules[rule].cfg.user_group);
    return record;
}

/* First request: audit it (durable), store it, maybe auto-approve it.
 * Returns the record (pending, approved, or whatever another replica
 * stored first), or NULL with *reply. */
static cJSON *request_approval(sx_approvals *a, const sx_approval_step *st, const char *digest,
                               char **reply)
{
    sx_error err = {{0}, {0}};
    cJSON *req = request_object(a, st, digest, &err);
    if (req == NULL) {
        *reply = reply_text(st, "rejected", NULL, err.code, "%s", err.message);
        return NULL;
    }
    char *req_text = cJSON_PrintUnformatted(req);
    /* the audit record first: no stored approval without its request in the trail */
    cJSON *shown = cJSON_CreateObject();
    cJSON_AddStringToObject(shown, "execution_id", st->execution_id);
    cJSON_AddStringToObject(shown, "step_name", st->step_name);
    cJSON_AddStringToObject(shown, "status", "pending");
    cJSON_AddItemToObject(shown, "request", req);
    int audited = sx_approval_audit(a->host, "approval.requested", "approval_requested", shown, st->user, &err);
    cJSON_Delete(shown);
    if (audited != 0) {
        free(req_text);
        *reply = reply_text(st, "error", NULL, "audit_unavailable", "%s", err.message);
        return NULL;
    }
    int64_t now = sx_approval_now_ms();
    char *text = NULL;
    int rc = a->ops->create(a->plugin->state, st->execution_id, st->step_name, req_text,
                            (int)a->cfg.approvals_required, now, now + a->cfg.timeout_ms, &text, &err);
    free(req_text);
    if (rc < 0) {
        *reply = store_error_reply(st, &err);
        return NULL;
    }
    cJSON *record = take_record(text);
    if (record == NULL) {
        *reply = reply_text(st, "error", NULL, "approval_store_unavailable", "the store returned no record");
        return NULL;
    }
    if (rc == 1) /* another replica was first: judge what it stored */
        return record;
    sx_log_event(SX_LOG_INFO, "host", "approval_requested", NULL, "step %s/%s waits for approval",
                  st->execution_id, st->step_name);
    int rule = auto_rule_for(a, st);
    if (rule < 0)
        return record;
    cJSON *approved = auto_approve(a, st, rule, record, reply);
    cJSON_Delete(record);
    return approved;
}

int sx_approval_gate(sx_approvals *a, const sx_approval_step *st, cJSON **approval, char **reply)
{
    *approval = NULL;
    *reply = NULL;
    void *state = a->plugin->state;
    char *text = NULL;
    sx_error err = {{0}, {0}};
    cJSON *record = NULL;
    if (a->ops->get(state, st->execution_id, st->step_name, sx_approval_now_ms(), &text, &err) == 0) {
        record = take_record(text);
        if (record == NULL) {
            *reply = reply_text(st, "error", NULL, "approval_store_unavailable", "the store returned no record");
            return 1;
        }
        note_if_expired_now(a, record);
    } else if (strcmp(err.code, "not_found") != 0) {
        *reply = store_error_reply(st, &err);
        return 1;
    } else if (!st->required) {
        return 0; /* no approval asked for, none on record */
    }
    /* who and what may take part at all */
    if (st->auth_method == NULL || strcmp(st->auth_method, "trusted") == 0 || st->user == NULL) {
        *reply = reply_text(st, "rejected", NULL, "approval_unavailable",
                            "approvals need a verified caller (a policy plugin and server.auth.mode other "
                            "than trusted): four-eyes cannot rest on a claimed name");
        cJSON_Delete(record);
        return 1;
    }
    if (strchr(st->execution_id, '/') || strchr(st->step_name, '/')) {
        *reply = reply_text(st, "rejected", NULL, "invalid_request",
                            "execution_id and step_name of a step that needs approval cannot contain '/' "
                            "(the approval API addresses it as /api/v1/approvals/{execution_id}/{step_name})");
        cJSON_Delete(record);
        return 1;
    }
    char digest[72];
    if (sx_approval_digest(st->type, st->executor, st->runbook_id, st->with_json, digest) != 0) {
        *reply = reply_text(st, "rejected", NULL, "invalid_request",
                            "the step's `with` is not an object, or repeats a key");
        cJSON_Delete(record);
        return 1;
    }
    if (record == NULL && (record = request_approval(a, st, digest, reply)) == NULL)
        return 1;

    const char *status = sx_approval_status(record);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(record, "request");
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "digest"));
    const char *requester = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "requester"));
    const char *why = NULL;
    if (requester == NULL || strcmp(requester, st->user) != 0)
        why = "requester";
    else if (want == NULL || strcmp(want, digest) != 0)
        why = "digest";
    if (why) {
        /* another step, or another caller, than the one approved: never run */
        cJSON *rec = sx_record_new_ids("approval.mismatch", "approval_mismatch", st->execution_id,
                                       st->step_name, st->runbook_id, st->user);
        cJSON_AddStringToObject(rec, "approved_digest", want ? want : "");
        cJSON_AddStringToObject(rec, "digest", digest);
        cJSON_AddStringToObject(rec, "requester", requester ? requester : "");
        sx_error aerr = {{0}, {0}};
        if (sx_record_commit(a->host, "approval.mismatch", rec, &aerr) != 0)
            sx_log(SX_LOG_ERROR, "audit", "could not audit an approval mismatch: %s", aerr.message);
        if (strcmp(why, "requester") == 0)
            *reply = reply_text(st, "rejected", record, "approval_mismatch",
                                "the approval was requested by %s, not by %s: it will not run for "
                                "another caller", requester ? requester : "?", st->user);
        else
            *reply = reply_text(st, "rejected", record, "approval_mismatch",
                                "the step differs from the one %s (%s, this one %s): it will not run; "
                                "request a new approval with a new execution_id",
                                strcmp(status, "pending") == 0 ? "awaiting approval" : "approved",
                                want ? want : "?", digest);
    } else if (strcmp(status, "pending") == 0) {
        *reply = reply_text(st, "pending_approval", record, NULL, NULL);
    } else if (strcmp(status, "denied") == 0) {
        const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "reason"));
        const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "denied_by"));
        *reply = reply_text(st, "denied", record, "denied", "denied by %s: %s", by ? by : "?",
                            reason && reason[0] ? reason : "no reason given");
    } else if (strcmp(status, "expired") == 0) {
        *reply = reply_text(st, "expired", record, "expired", "no decision before %s",
                            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "expires_at")));
    } else if (strcmp(status, "approved") == 0 || strcmp(status, "consumed") == 0) {
        /* consumed: the execution table has this host's reply of that run
         * (a repeat); otherwise consume() says already_executed */
        *approval = record;
        return 0;
    } else {
        *reply = reply_text(st, "error", record, "approval_store_unavailable", "unknown approval status '%s'",
                            status);
    }
    cJSON_Delete(record);
    return 1;
}

int sx_approval_consume(sx_approvals *a, const sx_approval_step *st, char **reply)
{
    *reply = NULL;
    char *text = NULL;
    sx_error err = {{0}, {0}};
    if (a->ops->consume(a->plugin->state, st->execution_id, st->step_name, a->claimer,
                        sx_approval_now_ms(), &text, &err) == 0) {
        free(text);
        return 0;
    }
    cJSON *record = take_record(text);
    note_if_expired_now(a, record);
    if (strcmp(err.code, "already_consumed") == 0)
        *reply = reply_text(st, "error", record, "already_executed", "%s", err.message);
    else if (strcmp(err.code, "not_approved") == 0 || strcmp(err.code, "expired") == 0)
        *reply = reply_text(st, "error", record, err.code, "%s", err.message);
    else
        *reply = store_error_reply(st, &err);
    cJSON_Delete(record);
    return 1;
}

void sx_approval_release(sx_approvals *a, const sx_approval_step *st)
{
    char *text = NULL;
    sx_error err = {{0}, {0}};
    if (a->ops->release(a->plugin->state, st->execution_id, st->step_name, a->claimer,
                        sx_approval_now_ms(), &text, &err) != 0)
        sx_log(SX_LOG_ERROR, "host", "approval of %s/%s not given back after a refused run: %s",
               st->execution_id, st->step_name, err.message);
    free(text);
}

void sx_approval_output(const cJSON *approval, cJSON *output)
{
    if (approval == NULL || output == NULL)
        return;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(approval, "approvals");
    char by[1024] = "";
    size_t len = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *who = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "by"));
        if (who)
            len += (size_t)snprintf(by + len, len < sizeof by ? sizeof by - len : 0, "%s%s", len ? "," : "",
                                    who);
        if (len >= sizeof by)
            break;
    }
    /* the step type reports them as null: replace, never duplicate */
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(approval, "decided_at"));
    cJSON_DeleteItemFromObjectCaseSensitive(output, "approved_by");
    cJSON_DeleteItemFromObjectCaseSensitive(output, "approved_at");
    cJSON_DeleteItemFromObjectCaseSensitive(output, "approvals");
    cJSON_AddStringToObject(output, "approved_by", by);
    cJSON_AddStringToObject(output, "approved_at", at ? at : "");
    cJSON_AddItemToObject(output, "approvals", cJSON_Duplicate(list, 1));
}

const char *sx_approval_status(const cJSON *record)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "status"));
    return s ? s : "";
}

void sx_approval_note_expired(sx_approvals *a, const cJSON *record)
{
    /* audited once per host and approval: the store keeps the state, the
     * record of the moment someone noticed is best effort beyond that */
    sx_error err = {{0}, {0}};
    if (sx_approval_audit(a->host, "approval.expired", "approval_expired", record, NULL, &err) != 0)
        sx_log(SX_LOG_ERROR, "audit", "could not audit an expired approval: %s", err.message);
}

cJSON *sx_approvals_describe(sx_approvals *a)
{
    if (a == NULL)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "store", a->plugin->desc->name);
    cJSON_AddNumberToObject(o, "approval_timeout_s", (double)(a->cfg.timeout_ms / 1000));
    cJSON_AddNumberToObject(o, "approvals_required", (double)a->cfg.approvals_required);
    cJSON *d = cJSON_AddArrayToObject(o, "default_approvers");
    for (size_t i = 0; i < a->cfg.default_approvers.n; i++)
        cJSON_AddItemToArray(d, cJSON_CreateString(a->cfg.default_approvers.v[i]));
    cJSON_AddBoolToObject(o, "auto_approve", a->autocfg.enabled);
    cJSON_AddNumberToObject(o, "auto_approve_rules", (double)a->n_rules);
    const sx_approval_ops *ops = a->ops;
    char *sd = ops->describe ? ops->describe(a->plugin->state) : NULL;
    cJSON *sj = sd ? cJSON_Parse(sd) : NULL;
    free(sd);
    if (sj)
        cJSON_AddItemToObject(o, "store_settings", sj);
    return o;
}
