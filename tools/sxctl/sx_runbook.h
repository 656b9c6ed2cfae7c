/*
 * sx_runbook.h - runbook files for sxctl: YAML (libyaml) to JSON (cJSON).
 *
 * A runbook is a YAML map:
 *
 *   id: ops.check               (string, required)
 *   name: Check things          (string, optional)
 *   description: ...            (ignored, like any other top-level key)
 *   steps:                      (non-empty list, required)
 *     - name: check-status      (string, required, unique)
 *       type: script.run        (required, must be script.run)
 *       approval_required: true (optional bool, default false)
 *       approvers: [bob]        (optional list of strings)
 *       description: ...        (optional, ignored)
 *       with: {...}             (optional map, sent as the step's "with")
 *
 * Any other step key is refused, so a typo cannot silently drop a setting.
 *
 * Scalars become JSON strings, except plain (unquoted) scalars that look
 * like null (~, null, empty), a boolean (true/false), an integer (decimal;
 * 0x hex; 0o or YAML 1.1 leading-zero octal, so `mode: 0600` is 384; 0b
 * binary) or a finite float; explicit tags (!!str, !!int, !!float, !!bool,
 * !!null) are honoured.  Anchors and aliases work (an alias is a copy);
 * merge keys (<<) are not special.  One document per file.
 */
#ifndef SX_RUNBOOK_H
#define SX_RUNBOOK_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* One step, borrowed from the runbook's document. */
typedef struct sx_rb_step {
    const char *name;
    int approval_required;
    const cJSON *approvers;     /* array of strings, or NULL */
    const cJSON *with;          /* object, or NULL for {} */
} sx_rb_step;

typedef struct sx_runbook {
    cJSON *doc;                 /* the whole file as JSON */
    const char *id;
    const char *name;           /* may be NULL */
    size_t n_steps;
    sx_rb_step *steps;
} sx_runbook;

/* Load and check a runbook file.  On failure returns -1 with a message
 * naming the file (and line, for YAML errors) in err. */
int sx_runbook_load(const char *path, sx_runbook *rb, char *err, size_t errlen);
void sx_runbook_free(sx_runbook *rb);

/* Parse a YAML document (the first and only one) into JSON.  name is used
 * in error messages.  Returns NULL with err filled on failure. */
cJSON *sx_yaml_to_json(const char *text, size_t len, const char *name,
                       char *err, size_t errlen);

/* Read a whole file ("-" = standard input), at most SX_FILE_MAX bytes, NUL
 * terminated (the length excludes the NUL).  NULL with err on failure. */
#define SX_FILE_MAX (64u * 1024u * 1024u)
char *sx_file_read(const char *path, size_t *len, char *err, size_t errlen);

/* The JSON value of a plain YAML scalar (see above); never NULL unless out
 * of memory. */
cJSON *sx_yaml_plain_scalar(const char *text);

#endif /* SX_RUNBOOK_H */
