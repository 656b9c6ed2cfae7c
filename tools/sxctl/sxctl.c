/*
 * sxctl.c - command-line client for script-executor: option parsing, main.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_client.h"
#include "sx_commands.h"

/* Where an option may be used. */
enum {
    SC_GLOBAL = 1 << 0,         /* any command */
    SC_CALLER = 1 << 1,         /* run, render, exec */
    SC_EXEC = 1 << 2,           /* exec */
    SC_ID = 1 << 3,             /* run, render, exec, watch */
    SC_APPROVALS = 1 << 4,      /* approvals */
};

typedef enum opt_id {
    OPT_URL, OPT_EVENTS_URL, OPT_TIMEOUT, OPT_REPLY_TIMEOUT, OPT_JSON,
    OPT_HELP, OPT_USER, OPT_GROUP, OPT_EXECUTION_ID, OPT_STEP_NAME,
    OPT_EXECUTOR, OPT_INTERPRETER, OPT_ENV, OPT_STDIN_FILE,
    OPT_API_URL, OPT_TOKEN, OPT_REASON,
} opt_id;

typedef struct opt_def {
    const char *name;
    opt_id id;
    int takes_value;
    unsigned scope;
} opt_def;

static const opt_def opt_defs[] = {
    {"url", OPT_URL, 1, SC_GLOBAL},
    {"events-url", OPT_EVENTS_URL, 1, SC_GLOBAL},
    {"timeout", OPT_TIMEOUT, 1, SC_GLOBAL},
    {"reply-timeout", OPT_REPLY_TIMEOUT, 1, SC_GLOBAL},
    {"json", OPT_JSON, 0, SC_GLOBAL},
    {"help", OPT_HELP, 0, SC_GLOBAL},
    {"user", OPT_USER, 1, SC_CALLER},
    {"group", OPT_GROUP, 1, SC_CALLER},
    {"execution-id", OPT_EXECUTION_ID, 1, SC_ID},
    {"step-name", OPT_STEP_NAME, 1, SC_EXEC},
    {"executor", OPT_EXECUTOR, 1, SC_EXEC},
    {"interpreter", OPT_INTERPRETER, 1, SC_EXEC},
    {"env", OPT_ENV, 1, SC_EXEC},
    {"stdin-file", OPT_STDIN_FILE, 1, SC_EXEC},
    {"api-url", OPT_API_URL, 1, SC_APPROVALS},
    {"token", OPT_TOKEN, 1, SC_APPROVALS},
    {"reason", OPT_REASON, 1, SC_APPROVALS},
};

typedef struct cmd_def {
    const char *name;
    int (*fn)(const sx_opts *o);
    unsigned scopes;
    size_t min_args;
    size_t max_args;
    const char *args_usage;
} cmd_def;

static const cmd_def cmd_defs[] = {
    {"run", sx_cmd_run, SC_CALLER | SC_ID, 1, 1, "FILE.yaml"},
    {"render", sx_cmd_render, SC_CALLER | SC_ID, 1, 1, "FILE.yaml"},
    {"exec", sx_cmd_exec, SC_CALLER | SC_ID | SC_EXEC, 1, SIZE_MAX,
     "[--] SCRIPT [ARG...]"},
    {"describe", sx_cmd_describe, 0, 0, 0, ""},
    {"health", sx_cmd_health, 0, 0, 0, ""},
    {"list", sx_cmd_list, 0, 0, 0, ""},
    {"status", sx_cmd_status, 0, 2, 2, "EXECUTION_ID STEP"},
    {"cancel", sx_cmd_cancel, 0, 2, 2, "EXECUTION_ID STEP"},
    {"watch", sx_cmd_watch, SC_ID, 0, 0, ""},
    {"approvals", sx_cmd_approvals, SC_APPROVALS, 1, 3,
     "list | show|approve|deny EXECUTION_ID STEP"},
    {"audit", sx_cmd_audit, 0, 2, SIZE_MAX, "verify FILE|DIR..."},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *f)
{
    fputs(
"Usage: sxctl [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  run FILE.yaml           run a runbook's steps in order, streaming output;\n"
"                          stops at the first step that does not succeed\n"
"  render FILE.yaml        show what each step of a runbook would run\n"
"  exec [OPTIONS] [--] SCRIPT [ARG...]\n"
"                          run one inline script (ARGs become its arguments)\n"
"  describe                show the server's step types and executors\n"
"  health                  check the server\n"
"  list                    list the executions in flight\n"
"  status EXECUTION_ID STEP    show one step\n"
"  cancel EXECUTION_ID STEP    cancel a running or pending step\n"
"  watch                   print events as \"topic json\" lines until "
"interrupted\n"
"  approvals list          pending approvals you may decide (HTTP API)\n"
"  approvals show|approve|deny EXECUTION_ID STEP\n"
"                          one approval: its request, or your decision\n"
"  audit verify FILE|DIR...\n"
"                          check the hash chain of audit files (in chain\n"
"                          order, or a directory); no server needed\n"
"\n"
"Options for every command:\n"
"  --url URL               control socket (default: $SX_URL, else\n"
"                          " SX_DEFAULT_URL ")\n"
"  --events-url URL        events socket (default: $SX_EVENTS_URL, else\n"
"                          " SX_DEFAULT_EVENTS_URL ")\n"
"  --timeout SECONDS       how long to wait for each reply (default 3600);\n"
"                          after `exec` it is the script's timeout instead\n"
"  --reply-timeout SECONDS the reply timeout, anywhere\n"
"  --json                  print the replies as JSON (run, render: an array;\n"
"                          watch: one {\"topic\",\"event\"} object a line)\n"
"  -h, --help              show this help\n"
"\n"
"run, render, exec:\n"
"  --user NAME             caller (default: $USER, else sxctl)\n"
"  --group NAME            caller group (repeatable)\n"
"  --execution-id ID       default: <runbook id>-<unix time>-<pid>\n"
"                          (exec: exec-<unix time>-<pid>)\n"
"exec:\n"
"  --step-name NAME        default: exec\n"
"  --executor NAME         executor instance (default: the server's)\n"
"  --interpreter PATH      e.g. /bin/sh (default: the server's)\n"
"  --timeout T             the script's timeout (with.timeout), e.g. 30s\n"
"  --env K=V               environment variable (repeatable)\n"
"  --stdin-file FILE       the script's standard input (\"-\": sxctl's)\n"
"watch:\n"
"  --execution-id ID       only the events of this execution\n"
"approvals:\n"
"  --api-url URL           the HTTP API (default: $SX_API_URL, else\n"
"                          http://127.0.0.1:8080)\n"
"  --token JWT             bearer token (default: $SX_TOKEN)\n"
"  --reason TEXT           with approve or deny\n"
"\n"
"Exit status: 0 success; run and exec: the exit code of the script that\n"
"failed, or 1 when a step did not succeed for another reason; 1 for server\n"
"and connection errors; 2 for usage errors; run and exec: 130 when\n"
"interrupted (the first interrupt cancels the running step, a second one\n"
"quits at once); watch ends with 0 when interrupted; audit verify: 1 when\n"
"the chain is broken, 3 when a file cannot be read.\n",
        f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("sxctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'sxctl --help'.\n", stderr);
    return SX_EXIT_USAGE;
}

static const opt_def *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < COUNT(opt_defs); i++)
        if (strlen(opt_defs[i].name) == len &&
            strncmp(opt_defs[i].name, name, len) == 0)
            return &opt_defs[i];
    return NULL;
}

static const cmd_def *find_cmd(const char *name)
{
    for (size_t i = 0; i < COUNT(cmd_defs); i++)
        if (strcmp(cmd_defs[i].name, name) == 0)
            return &cmd_defs[i];
    return NULL;
}

static int parse_seconds(const char *text, int *ms)
{
    char *end;
    double s = strtod(text, &end);

    if (end == text || *end != '\0' || !isfinite(s) || s <= 0)
        return -1;
    *ms = s * 1000.0 >= (double)INT32_MAX ? INT32_MAX : (int)(s * 1000.0);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

/* Parser state. */
typedef struct parse_state {
    sx_opts *o;
    const cmd_def *cmd;
    unsigned long used;         /* bit i: opt_defs[i] was given */
    int help;
} parse_state;

static int set_value(parse_state *ps, const opt_def *d, const char *v)
{
    sx_opts *o = ps->o;

    if (d->takes_value && *v == '\0')
        return usage_error("option --%s needs a non-empty value", d->name);
    switch (d->id) {
    case OPT_URL: o->url = v; break;
    case OPT_EVENTS_URL: o->events_url = v; break;
    case OPT_TIMEOUT:
        if (ps->cmd != NULL && strcmp(ps->cmd->name, "exec") == 0) {
            o->script_timeout = v;
            break;
        }
        /* fall through */
    case OPT_REPLY_TIMEOUT:
        if (parse_seconds(v, &o->reply_timeout_ms) != 0)
            return usage_error("invalid timeout '%s' (positive seconds)", v);
        break;
    case OPT_USER: o->user = v; break;
    case OPT_GROUP: o->groups.v[o->groups.n++] = v; break;
    case OPT_EXECUTION_ID: o->execution_id = v; break;
    case OPT_STEP_NAME: o->step_name = v; break;
    case OPT_EXECUTOR: o->executor = v; break;
    case OPT_INTERPRETER: o->interpreter = v; break;
    case OPT_ENV:
        if (strchr(v, '=') == NULL || v[0] == '=')
            return usage_error("invalid --env '%s' (want KEY=VALUE)", v);
        o->env.v[o->env.n++] = v;
        break;
    case OPT_STDIN_FILE: o->stdin_file = v; break;
    case OPT_API_URL: o->api_url = v; break;
    case OPT_TOKEN: o->token = v; break;
    case OPT_REASON: o->reason = v; break;
    case OPT_JSON: o->json = 1; break;
    case OPT_HELP: ps->help = 1; break;
    }
    return 0;
}

/* One option at argv[*i]; may consume the next argument. */
static int parse_option(parse_state *ps, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char *name = arg + 2, *eq, *value = NULL;
    const opt_def *d;

    if (strcmp(arg, "-h") == 0)
        name = "help";
    else if (strncmp(arg, "--", 2) != 0)
        return usage_error("unknown option '%s'", arg);
    eq = strchr(name, '=');
    d = find_opt(name, eq ? (size_t)(eq - name) : strlen(name));
    if (d == NULL)
        return usage_error("unknown option '%s'", arg);
    if (d->takes_value) {
        if (eq != NULL)
            value = eq + 1;
        else if (*i + 1 < argc)
            value = argv[++*i];
        else
            return usage_error("option %s needs a value", arg);
    } else if (eq != NULL) {
        return usage_error("option --%s takes no value", d->name);
    }
    ps->used |= 1UL << (d - opt_defs);
    return set_value(ps, d, value ? value : "");
}

static int parse_word(parse_state *ps, const char *word)
{
    if (ps->cmd == NULL) {
        ps->cmd = find_cmd(word);
        if (ps->cmd == NULL)
            return usage_error("unknown command '%s'", word);
        return 0;
    }
    ps->o->args.v[ps->o->args.n++] = word;
    return 0;
}

static int check_command(const parse_state *ps)
{
    const cmd_def *c = ps->cmd;

    for (size_t i = 0; i < COUNT(opt_defs); i++) {
        if ((ps->used & (1UL << i)) == 0 ||
            (opt_defs[i].scope & (SC_GLOBAL | c->scopes)) != 0)
            continue;
        fprintf(stderr, "sxctl: option --%s does not apply to '%s'\n",
                opt_defs[i].name, c->name);
        fputs("Try 'sxctl --help'.\n", stderr);
        return SX_EXIT_USAGE;
    }
    if (ps->o->args.n < c->min_args || ps->o->args.n > c->max_args) {
        fprintf(stderr, "sxctl: usage: sxctl %s %s\n", c->name,
                c->args_usage);
        fputs("Try 'sxctl --help'.\n", stderr);
        return SX_EXIT_USAGE;
    }
    return 0;
}

static void set_defaults(sx_opts *o)
{
    const char *env;

    o->url = (env = getenv("SX_URL")) && *env ? env : SX_DEFAULT_URL;
    o->events_url = (env = getenv("SX_EVENTS_URL")) && *env
                        ? env : SX_DEFAULT_EVENTS_URL;
    o->reply_timeout_ms = 3600 * 1000;
    o->user = (env = getenv("USER")) && *env ? env : "sxctl";
}

/* Returns -1 to go on with ps->cmd, else the exit status. */
static int parse_args(parse_state *ps, int argc, char **argv)
{
    int dashdash = 0, rv = 0;

    for (int i = 1; i < argc && rv == 0; i++) {
        const char *a = argv[i];

        if (!dashdash && strcmp(a, "--") == 0)
            dashdash = 1;
        else if (!dashdash && a[0] == '-' && a[1] != '\0')
            rv = parse_option(ps, argc, argv, &i);
        else
            rv = parse_word(ps, a);
    }
    if (rv != 0)
        return rv;
    if (ps->help) {
        usage(stdout);
        return SX_EXIT_OK;
    }
    if (ps->cmd == NULL)
        return usage_error("no command given%s", "");
    rv = check_command(ps);
    return rv != 0 ? rv : -1;
}

static int alloc_vectors(sx_opts *o, int argc)
{
    size_t n = (size_t)argc;

    o->groups.v = calloc(n, sizeof(char *));
    o->env.v = calloc(n, sizeof(char *));
    o->args.v = calloc(n, sizeof(char *));
    return o->groups.v && o->env.v && o->args.v ? 0 : -1;
}

static void free_vectors(sx_opts *o)
{
    free(o->groups.v);
    free(o->env.v);
    free(o->args.v);
}

int main(int argc, char **argv)
{
    sx_opts o;
    parse_state ps;
    int rv;

    memset(&o, 0, sizeof(o));
    memset(&ps, 0, sizeof(ps));
    ps.o = &o;
    set_defaults(&o);
    if (alloc_vectors(&o, argc) != 0) {
        fputs("sxctl: out of memory\n", stderr);
        free_vectors(&o);
        return SX_EXIT_FAIL;
    }
    rv = parse_args(&ps, argc, argv);
    if (rv < 0) {
        rv = ps.cmd->fn(&o);
        sx_client_shutdown();
    }
    free_vectors(&o);
    return rv;
}
