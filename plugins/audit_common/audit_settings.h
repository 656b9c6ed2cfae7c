/*
 * audit_settings.h - the `script_executor.audit` section, shared by the
 * audit sinks (audit_file, audit_siem), and the content flags every sink
 * applies to a record before it keeps it.
 *
 * Both sinks parse the whole section with the same option table, so an
 * unknown key is refused whichever of them is loaded; `audit.siem` is a
 * node here and audit_siem parses it with its own table (siem_config.h).
 */
#ifndef SX_AUDIT_SETTINGS_H
#define SX_AUDIT_SETTINGS_H

#include <stdint.h>

#include "sx/sx_plugin.h"

typedef struct sx_audit_settings {
    int enabled;                   /* write audit records at all */
    char *log_file;                /* audit_file: the current JSON lines file */
    int64_t rotate_size;           /* audit_file: rotate once the file reaches it; 0 = never */
    int64_t rotate_keep;           /* audit_file: rotated files kept; 0 = all */
    const sx_config_node *siem;    /* audit_siem's sub-section (borrowed) */
    int log_script_content;        /* keep "script" (the text) */
    int log_script_output;         /* keep "stdout" / "stderr" */
    int log_environment;           /* keep "env" values; else only "env_names" */
} sx_audit_settings;

/* The option table of the section (values into sx_audit_settings);
 * release with the host's config_free(sx_audit_options, &settings). */
extern const sx_option sx_audit_options[];

/* Apply the content flags to one record and return the record to keep, as
 * one line of JSON without a newline (malloc(3)ed, the caller frees it), or
 * NULL when `json` is not a JSON object (or memory ran out).  json is
 * borrowed.
 *   log_script_content false: "script" is dropped (script_hash stays);
 *   log_script_output false:  "stdout" and "stderr" are dropped;
 *   log_environment false:    "env" {NAME: value} becomes "env_names" [NAME].
 * Members named in `drop` (a NULL-terminated list, may be NULL) are dropped
 * too: names a sink reserves for itself. */
char *sx_audit_filter(const sx_audit_settings *s, const char *json, const char *const *drop);

#endif
