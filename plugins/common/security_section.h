/*
 * security_section.h - the spec's `script_executor.security` section, read
 * by two plugins: script_run (script limits, timeouts) and policy
 * (required_permission, blocked_commands, the same limits).  One table, so
 * both accept exactly the same keys and defaults; each enforces its part.
 *
 * Header-only (static data), included by each plugin's source; not part of
 * the SDK.
 */
#ifndef SX_PLUGINS_SECURITY_SECTION_H
#define SX_PLUGINS_SECURITY_SECTION_H

#include <stddef.h>
#include <stdint.h>

#include "sx/sx_plugin.h"
#include "sx/sx_util.h"

typedef struct sx_security_cfg {
    char *required_permission;
    sx_strlist blocked_commands;
    int64_t max_script_size;
    int64_t max_script_lines;
    int64_t default_timeout_ms;
    int64_t max_timeout_ms;
    int run_as_non_root;
    int64_t run_as_user;
    int64_t fs_group;
    int read_only_root_filesystem;
    int allow_privilege_escalation;
    int drop_all_capabilities;
} sx_security_cfg;

/* The spec's default blocked list, used when the key is absent (an explicit
 * `blocked_commands: []` means none). */
#define SX_SECURITY_DEFAULT_BLOCKED                                                 \
    "[rm, dd, mkfs, fdisk, mkswap, sudo, su, setuid, \"chmod +s\", reboot, shutdown, " \
    "init, systemctl, nmap, masscan, \"kill -9\", \"killall -9\", \"pkill -9\"]"

#define SX_SEC_OPT(type, name, def, field, desc) \
    {type, name, def, 0, offsetof(sx_security_cfg, field), desc}
static const sx_option sx_security_options[] = {
    SX_SEC_OPT(SX_OPT_STRING, "required_permission", "executors.use.script", required_permission,
               "RBAC permission needed to run any step (policy plugin)"),
    SX_SEC_OPT(SX_OPT_STRLIST, "blocked_commands", SX_SECURITY_DEFAULT_BLOCKED, blocked_commands,
               "commands the script validator refuses (policy plugin); merged with a step's "
               "with.blocked_commands"),
    SX_SEC_OPT(SX_OPT_SIZE, "max_script_size", "524288", max_script_size, "largest script, bytes"),
    SX_SEC_OPT(SX_OPT_INT, "max_script_lines", "1000", max_script_lines, "most lines in a script"),
    SX_SEC_OPT(SX_OPT_DURATION, "default_timeout", "5m", default_timeout_ms,
               "timeout when a step sets none"),
    SX_SEC_OPT(SX_OPT_DURATION, "max_timeout", "30m", max_timeout_ms,
               "largest timeout a step may ask for"),
    SX_SEC_OPT(SX_OPT_BOOL, "run_as_non_root", "true", run_as_non_root,
               "pod securityContext (containers)"),
    SX_SEC_OPT(SX_OPT_INT, "run_as_user", "65534", run_as_user, "uid scripts run as"),
    SX_SEC_OPT(SX_OPT_INT, "fs_group", "65534", fs_group, "pod fsGroup (containers)"),
    SX_SEC_OPT(SX_OPT_BOOL, "read_only_root_filesystem", "true", read_only_root_filesystem,
               "containers"),
    SX_SEC_OPT(SX_OPT_BOOL, "allow_privilege_escalation", "false", allow_privilege_escalation,
               "containers"),
    SX_SEC_OPT(SX_OPT_BOOL, "drop_all_capabilities", "true", drop_all_capabilities, "containers"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};
#undef SX_SEC_OPT

/* The checks both plugins make on the parsed section: 0, or -1 with the
 * message in err (code invalid_config). */
static inline int sx_security_cfg_check(const sx_security_cfg *s, sx_error *err)
{
    if (s->max_script_size >= 1 && s->max_script_lines >= 1 && s->default_timeout_ms >= 1 &&
        s->max_timeout_ms >= s->default_timeout_ms)
        return 0;
    return sx_error_set(err, "invalid_config",
                        "security: max_script_size and max_script_lines must be positive and "
                        "default_timeout must be between 1ms and max_timeout");
}

#endif
