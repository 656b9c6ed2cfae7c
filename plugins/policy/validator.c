/* validator.c - the script validator (see validator.h). */
#define _POSIX_C_SOURCE 200809L
#include "validator.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_scan.h"
#include "sx/sx_util.h"

#define SX_FINDING_TEXT_MAX 160

const char *const sx_validator_implicit_builtins[] = {
    ":", "true", "false", "echo", "printf", "test", "[", "[[", "cd", "pwd", "exit", "return",
    "set", "unset", "export", "local", "declare", "typeset", "readonly", "read", "shift",
    "break", "continue", "wait", "getopts", "let", NULL};

static int is_implicit(const char *word)
{
    for (const char *const *b = sx_validator_implicit_builtins; *b; b++)
        if (strcmp(*b, word) == 0)
            return 1;
    return 0;
}

int sx_validator_check_patterns(const sx_strlist *patterns, const char *where, const char *code,
                                sx_error *err)
{
    for (size_t i = 0; i < patterns->n; i++) {
        char why[256];
        if (patterns->v[i][0] == '\0')
            return sx_error_set(err, code, "%s[%zu] is empty", where, i);
        if (sx_cmd_pattern_check(patterns->v[i], why, sizeof why) != 0)
            return sx_error_set(err, code, "%s[%zu] '%s' is not a usable pattern: %s", where, i,
                                patterns->v[i], why);
    }
    return 0;
}

static int scan_lang(const char *interpreter, sx_scan_lang *lang)
{
    const char *base = strrchr(interpreter, '/');
    base = base ? base + 1 : interpreter;
    static const char *const shells[] = {"bash", "sh", "dash", "zsh", "ksh", "mksh", "ash", NULL};
    for (const char *const *s = shells; *s; s++)
        if (strcmp(*s, base) == 0) {
            *lang = SX_SCAN_SH;
            return 0;
        }
    if (strcmp(base, "python3") == 0 || strcmp(base, "python") == 0) {
        *lang = SX_SCAN_PYTHON;
        return 0;
    }
    if (strcmp(base, "ruby") == 0) {
        *lang = SX_SCAN_RUBY;
        return 0;
    }
    return -1;
}

static size_t count_lines(const char *s, size_t len)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            lines++;
    if (len > 0 && s[len - 1] != '\n')
        lines++;
    return lines;
}

/* with.<name>: absent/null (empty list), or an array of strings (borrowed
 * into `out`, whose v array the caller frees). */
static int step_list(const cJSON *with, const char *name, sx_strlist *out, sx_error *err)
{
    memset(out, 0, sizeof *out);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(with, name);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v))
        return sx_error_set(err, "invalid_parameter", "with.%s must be a list of strings", name);
    size_t n = (size_t)cJSON_GetArraySize(v);
    out->v = calloc(n ? n : 1, sizeof(char *));
    if (out->v == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    for (const cJSON *it = v->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return sx_error_set(err, "invalid_parameter", "with.%s must be a list of strings", name);
        out->v[out->n++] = it->valuestring;
    }
    char where[64];
    snprintf(where, sizeof where, "with.%s", name);
    return sx_validator_check_patterns(out, where, "invalid_parameter", err);
}

/* The command's words as one printable line (ASCII, others as '?'). */
static void command_text(const sx_scan_cmd *c, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t w = 0; w < c->nwords && o + 4 < size; w++) {
        if (w)
            buf[o++] = ' ';
        for (const unsigned char *p = (const unsigned char *)c->words[w]; *p && o + 4 < size; p++)
            buf[o++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
    }
    if (o + 4 >= size) {
        memcpy(buf + size - 4, "...", 3);
        o = size - 1;
    }
    buf[o] = '\0';
}

/* A cheap test before sx_cmd_match: can `pattern` match a command whose
 * first word is `word0`?  Only the first word is compared (as sx_cmd_match
 * does: basename, exact or prefix*); regex: and anything unusual says
 * "maybe".  Scripts of 1000 lines have thousands of commands and the list
 * has dozens of patterns: this keeps a check at a few milliseconds. */
static int may_match(const char *pattern, const char *word0)
{
    if (strncmp(pattern, "regex:", 6) == 0 || pattern[0] == ' ' || pattern[0] == '\t' ||
        pattern[0] == '\0')
        return 1;
    size_t len = strcspn(pattern, " \t");
    const char *first = pattern;
    for (const char *p = pattern; p < pattern + len; p++)
        if (*p == '/')
            first = p + 1;
    size_t n = (size_t)(pattern + len - first);
    if (n == 0)
        return 1;
    const char *slash = strrchr(word0, '/'); /* as sx_cmd_match's base_name() */
    if (slash && slash[1])
        word0 = slash + 1;
    if (first[n - 1] == '*')
        return strncmp(word0, first, n - 1) == 0;
    return strlen(word0) == n && strncmp(word0, first, n) == 0;
}

/* First pattern of `list` matching the command (a pattern that fails to
 * evaluate counts as a match: blocking fails closed). */
static const char *first_match(const sx_strlist *list, const sx_scan_cmd *c, int fail_closed)
{
    for (size_t i = 0; i < list->n; i++) {
        if (!may_match(list->v[i], c->words[0]))
            continue;
        int m = 0;
        int rv = sx_cmd_match(list->v[i], (const char *const *)c->words, c->nwords, &m);
        if ((rv == 0 && m) || (rv != 0 && fail_closed))
            return list->v[i];
    }
    return NULL;
}

typedef struct findings {
    cJSON *list;
    size_t blocked, not_allowed;
    char first_blocked[SX_ERROR_MESSAGE_MAX / 2];
    char first_not_allowed[SX_ERROR_MESSAGE_MAX / 2];
} findings;

static void add_finding(findings *f, const sx_scan_cmd *c, const char *rule, const char *source,
                        const char *code)
{
    char text[SX_FINDING_TEXT_MAX];
    command_text(c, text, sizeof text);
    int blocked = strcmp(code, "blocked_command") == 0;
    size_t *count = blocked ? &f->blocked : &f->not_allowed;
    if (*count == 0) {
        char *first = blocked ? f->first_blocked : f->first_not_allowed;
        size_t size = blocked ? sizeof f->first_blocked : sizeof f->first_not_allowed;
        if (blocked)
            snprintf(first, size, "blocked command '%s' (rule '%s' from %s) at line %zu", text,
                     rule, source, c->line);
        else
            snprintf(first, size, "command '%s' at line %zu is not in with.allowed_commands", text,
                     c->line);
    }
    (*count)++;
    if ((size_t)cJSON_GetArraySize(f->list) >= SX_VALIDATOR_MAX_FINDINGS)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "command", text);
    cJSON_AddStringToObject(o, "rule", rule);
    cJSON_AddStringToObject(o, "source", source);
    cJSON_AddNumberToObject(o, "line", (double)c->line);
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddItemToArray(f->list, o);
}

static int judge(const sx_validator_cfg *cfg, const sx_scan_result *r, const sx_strlist *blocked,
                 const sx_strlist *allowed, sx_policy_verdict *v)
{
    findings f;
    memset(&f, 0, sizeof f);
    f.list = cJSON_CreateArray();
    if (f.list == NULL)
        return sx_error_set(&v->error, "out_of_memory", "out of memory");
    for (size_t i = 0; i < r->ncmds; i++) {
        const sx_scan_cmd *c = &r->cmds[i];
        const char *rule = first_match(cfg->blocked, c, 1);
        const char *source = "security.blocked_commands";
        if (rule == NULL) {
            rule = first_match(blocked, c, 1);
            source = "with.blocked_commands";
        }
        if (rule) {
            add_finding(&f, c, rule, source, "blocked_command");
            continue;
        }
        if (allowed->n == 0 || is_implicit(c->words[0]) || first_match(allowed, c, 0))
            continue;
        add_finding(&f, c, "allowed_commands", "with.allowed_commands", "command_not_allowed");
    }
    size_t total = f.blocked + f.not_allowed;
    if (total == 0) {
        cJSON_Delete(f.list);
        return 0;
    }
    v->findings_json = cJSON_PrintUnformatted(f.list);
    cJSON_Delete(f.list);
    const char *listed = total > SX_VALIDATOR_MAX_FINDINGS ? " (the first 200 are listed)" : "";
    if (f.blocked)
        return sx_error_set(&v->error, "blocked_command",
                            "%s; %zu finding%s in all (%zu blocked, %zu not allowed), listed in "
                            "error.findings%s", f.first_blocked, total, total == 1 ? "" : "s",
                            f.blocked, f.not_allowed, listed);
    return sx_error_set(&v->error, "command_not_allowed",
                        "%s; %zu finding%s in all, listed in error.findings%s",
                        f.first_not_allowed, total, total == 1 ? "" : "s", listed);
}

int sx_validate_script(const sx_validator_cfg *cfg, const sx_script_check *chk,
                       sx_policy_verdict *v)
{
    if ((int64_t)chk->script_len > cfg->max_script_size)
        return sx_error_set(&v->error, "script_too_large",
                            "script is %zu bytes, above security.max_script_size (%lld bytes)",
                            chk->script_len, (long long)cfg->max_script_size);
    size_t lines = count_lines(chk->script, chk->script_len);
    if ((int64_t)lines > cfg->max_script_lines)
        return sx_error_set(&v->error, "script_too_large",
                            "script has %zu lines, above security.max_script_lines (%lld)", lines,
                            (long long)cfg->max_script_lines);
    sx_scan_lang lang;
    if (chk->interpreter == NULL || scan_lang(chk->interpreter, &lang) != 0)
        return sx_error_set(&v->error, "invalid_parameter",
                            "the script validator cannot read scripts for interpreter '%s' "
                            "(it reads sh/bash, python3 and ruby)",
                            chk->interpreter ? chk->interpreter : "(none)");
    cJSON *with = cJSON_Parse(chk->with_json ? chk->with_json : "{}");
    sx_strlist blocked, allowed;
    memset(&blocked, 0, sizeof blocked);
    memset(&allowed, 0, sizeof allowed);
    int rv = -1;
    if (!cJSON_IsObject(with))
        sx_error_set(&v->error, "invalid_parameter", "'with' is not a JSON object");
    else if (step_list(with, "blocked_commands", &blocked, &v->error) == 0 &&
             step_list(with, "allowed_commands", &allowed, &v->error) == 0)
        rv = 0;
    if (rv == 0) {
        sx_scan_result r;
        if (sx_scan(chk->script, chk->script_len, lang, &r) != 0)
            rv = sx_error_set(&v->error, "script_too_complex",
                              "the script exceeds the scanner's limits (nesting deeper than %d, "
                              "more than %u commands, or more than %u wrappers in one command): "
                              "it is refused rather than half-checked",
                              SX_SCAN_MAX_DEPTH, SX_SCAN_MAX_COMMANDS, SX_SCAN_MAX_WRAPPERS);
        else
            rv = judge(cfg, &r, &blocked, &allowed, v);
        sx_scan_result_free(&r);
    }
    free(blocked.v);
    free(allowed.v);
    cJSON_Delete(with);
    return rv;
}
