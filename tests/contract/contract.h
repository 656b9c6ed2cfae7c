/*
 * contract.h - the backend contract suite's abstract behaviours and the
 * dialects that turn them into scripts (see docs/contract-suite.md).
 *
 * Every contract case describes what its script must DO as a list of
 * behaviours ("print X to stdout", "exit 42", ...), written once.  A
 * dialect turns that list into a script for the backend under test:
 *
 *   sh    a POSIX /bin/sh script (native, docker, kubernetes, any backend
 *         that runs a real shell); only builtins and sleep/cat/pwd are used
 *   fake  the directive language of plugins/backend_fake
 *
 * A dialect that cannot express a behaviour says so (with the reason), and
 * the case is skipped for that dialect, loudly.
 */
#ifndef SX_CONTRACT_H
#define SX_CONTRACT_H

#include <stddef.h>

typedef enum ct_beh_kind {
    CT_OUT,          /* s: print the line s (and a newline) to stdout */
    CT_ERR,          /* s: print the line s (and a newline) to stderr */
    CT_EXIT,         /* n: end with exit code n */
    CT_ECHO_STDIN,   /* copy stdin to stdout, byte for byte */
    CT_PRINT_ENV,    /* s: print the value of variable s and a newline */
    CT_PRINT_CWD,    /* print the working directory and a newline */
    CT_SLEEP,        /* n: sleep n seconds */
    CT_OUT_BYTES,    /* n: print n bytes 'x' to stdout, no newline */
    CT_DIE_SIGNAL,   /* n: the script kills itself with signal n */
    CT_LEAVE_PROCESS /* s: start background processes that outlive the
                        script, whose command lines contain the marker s */
} ct_beh_kind;

typedef struct ct_beh {
    ct_beh_kind kind;
    const char *s;
    long n;
} ct_beh;

typedef enum ct_dialect { CT_DIALECT_SH, CT_DIALECT_FAKE } ct_dialect;

/* Parse a dialect name ("sh", "fake"); -1 when unknown. */
int ct_dialect_parse(const char *name, ct_dialect *out);
const char *ct_dialect_name(ct_dialect d);

/* Turn behaviours into a script of dialect `d`.  Returns a malloc(3)ed
 * script, or NULL with *why set to a static explanation when the dialect
 * cannot express one of the behaviours. */
char *ct_script(ct_dialect d, const ct_beh *b, size_t n, const char **why);

/* The marker a CT_LEAVE_PROCESS script puts on its leftover processes'
 * command lines for `execution_id` (caller frees): "sx-leftover-<id>". */
char *ct_leftover_marker(const char *execution_id);

#endif
