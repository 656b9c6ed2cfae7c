/*
 * validator.h - the script validator: size and line limits, blocked
 * commands (security.blocked_commands merged with the step's
 * with.blocked_commands) and the step's with.allowed_commands allowlist,
 * judged on every command the scanner (script_scan.h) finds.
 *
 * Defence in depth, not the boundary: see docs/policy.md for what a filter
 * on a Turing-complete script cannot see.  Thread-safe (no state).
 */
#ifndef SX_POLICY_VALIDATOR_H
#define SX_POLICY_VALIDATOR_H

#include <stddef.h>
#include <stdint.h>

#include "sx/sx_policy.h"

#define SX_VALIDATOR_MAX_FINDINGS 200   /* listed in the reply; all are counted */

typedef struct sx_validator_cfg {
    const sx_strlist *blocked;  /* security.blocked_commands, borrowed */
    int64_t max_script_size;
    int64_t max_script_lines;
} sx_validator_cfg;

/* Check a list of patterns (at config load, or a step's lists).  `where`
 * names the list in the message.  0, or -1 with err (code `code`). */
int sx_validator_check_patterns(const sx_strlist *patterns, const char *where, const char *code,
                                sx_error *err);

/* Judge chk->script.  Returns 0, or -1 with verdict->error set
 * (script_too_large, script_too_complex, invalid_parameter,
 * blocked_command, command_not_allowed) and, for the last two,
 * verdict->findings_json: a malloc'ed JSON array of every finding
 * {command, rule, source, line, code} (at most SX_VALIDATOR_MAX_FINDINGS;
 * the message gives the full count). */
int sx_validate_script(const sx_validator_cfg *cfg, const sx_script_check *chk,
                       sx_policy_verdict *verdict);

/* Commands an allowlist lets through without listing them: shell builtins
 * that run nothing else (echo, printf, test, [, cd, exit, set, export...).
 * NULL-terminated, static. */
extern const char *const sx_validator_implicit_builtins[];

#endif
