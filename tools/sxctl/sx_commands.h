/*
 * sx_commands.h - sxctl's parsed command line and its commands.
 */
#ifndef SX_COMMANDS_H
#define SX_COMMANDS_H

#include <stddef.h>

/* Exit statuses. */
#define SX_EXIT_OK 0
#define SX_EXIT_FAIL 1
#define SX_EXIT_USAGE 2
#define SX_EXIT_INTERRUPTED 130

typedef struct sx_strv {
    size_t n;
    const char **v;             /* borrowed from argv */
} sx_strv;

typedef struct sx_opts {
    const char *url;
    const char *events_url;
    int reply_timeout_ms;
    int json;
    /* caller and ids (run, render, exec; watch filters on execution_id) */
    const char *user;
    sx_strv groups;
    const char *execution_id;
    /* exec */
    const char *step_name;
    const char *executor;
    const char *interpreter;
    const char *script_timeout;
    const char *stdin_file;
    sx_strv env;
    /* approvals (HTTP API) */
    const char *api_url;
    const char *token;
    const char *reason;
    /* positional arguments after the command name */
    sx_strv args;
} sx_opts;

/* Each returns the process exit status. */
int sx_cmd_run(const sx_opts *o);
int sx_cmd_render(const sx_opts *o);
int sx_cmd_exec(const sx_opts *o);
int sx_cmd_describe(const sx_opts *o);
int sx_cmd_health(const sx_opts *o);
int sx_cmd_list(const sx_opts *o);
int sx_cmd_status(const sx_opts *o);
int sx_cmd_cancel(const sx_opts *o);
int sx_cmd_watch(const sx_opts *o);
int sx_cmd_approvals(const sx_opts *o);
int sx_cmd_audit(const sx_opts *o);           /* sx_audit_cmd.c */

#endif /* SX_COMMANDS_H */
