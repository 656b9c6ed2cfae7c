/* script_scan.h - find the commands a script runs (shell, python3, ruby).
 *
 * Prepared for the policy plugin's script validator (issue 5); see
 * docs/script-scan.md for what is found and, as important, what is not.  A
 * filter on a Turing-complete script is defence in depth: the sandbox of the
 * backend is the boundary.
 *
 * No global mutable state: every function is thread-safe.  Any input (NUL
 * bytes, unterminated quotes, deep nesting) is scanned in bounded time and
 * memory without crashing.
 */
#ifndef SX_SCRIPT_SCAN_H
#define SX_SCRIPT_SCAN_H

#include <stddef.h>

typedef enum {
    SX_SCAN_SH,     /* /bin/bash and /bin/sh */
    SX_SCAN_PYTHON, /* python3 */
    SX_SCAN_RUBY,   /* ruby */
} sx_scan_lang;

/* Limits: beyond any of them sx_scan() returns -1 and THE CALLER MUST REFUSE
 * THE SCRIPT (a script built to exceed them is built to hide something). */
#define SX_SCAN_MAX_COMMANDS 100000u        /* commands recorded */
#define SX_SCAN_MAX_DEPTH 64                /* nesting of ( ) $( ) ` ` bash -c ... */
#define SX_SCAN_MAX_BYTES (64u * 1024 * 1024) /* memory held by the result */
#define SX_SCAN_MAX_WRAPPERS 16             /* sudo env nohup ... in one command */
#define SX_SCAN_MAX_HEREDOCS 16             /* heredocs pending on one line */

typedef struct {
    char **words;  /* nwords NUL-terminated words, quotes removed; words[0] is
                    * a basename (/bin/rm -> rm).  A command or arithmetic
                    * substitution inside a word stands as "$(...)" or
                    * "$((...))", a ${...} expansion as "${...}"; $NAME is kept
                    * as written. */
    size_t nwords; /* >= 1 */
    size_t line;   /* 1-based line of the script where the command starts */
    int wrapper;   /* 1: a wrapper (sudo, env, nohup, timeout, ...) with only
                    * its own options; the command it runs is recorded too, as
                    * the next entry */
} sx_scan_cmd;

typedef struct {
    sx_scan_cmd *cmds; /* in the order they were found */
    size_t ncmds;
    size_t cap_;   /* internal */
    size_t bytes_; /* internal: memory accounted against SX_SCAN_MAX_BYTES */
} sx_scan_result;

/* Scan len bytes of script as lang and fill *out (always initialised, also
 * on failure; free it with sx_scan_result_free()).  Returns 0, or -1 when
 * out of memory or a limit above is exceeded: then the script must be
 * refused.
 *
 * Shell: commands after | || && ; & and newlines, inside ( ) { } $( ) ` `
 * <( ) >( ) (recursively), behind the wrappers sudo, doas, env, exec,
 * command, builtin, nohup, setsid, timeout, nice, xargs and time, the
 * strings of bash/sh -c, env -S and eval, find -exec.  Leading VAR=value
 * words, reserved words (if, then, do, !, {, } ...), redirections,
 * comments and heredoc bodies are skipped (command substitutions in an
 * unquoted heredoc are scanned: the shell runs them).
 *
 * Python and Ruby: the string LITERALS passed to process-spawning calls are
 * scanned as shell command lines, list literals of strings as argv words.
 * A call whose argument is not a literal (a variable, an expression) is not
 * resolvable: nothing is recorded for it. */
int sx_scan(const char *script, size_t len, sx_scan_lang lang, sx_scan_result *out);
void sx_scan_result_free(sx_scan_result *res);

/* Does the command words[0..n) match pattern?  *matched is set to 1 or 0.
 *   "rm"          exact: the first word is rm (a pattern's first word is
 *                 reduced to its basename too: "/bin/rm" is "rm")
 *   "mkfs*"       prefix: the first word starts with mkfs
 *   "regex:RE"    POSIX extended RE, searched in the words joined with
 *                 single spaces (anchor it with ^ $ as needed)
 *   "kill -9", "chmod +s", "rm -rf /"
 *                 multi-word: the first word as above; then each pattern
 *                 word starting with '-' must be an option of the command,
 *                 anywhere among its arguments (a short cluster "-rf" is
 *                 there when each letter is in some short option cluster of
 *                 the command: -rf, -fr, -r -f all match; "--long" matches
 *                 "--long" and "--long=..."); the other pattern words must
 *                 be arguments of the command, in that order (not
 *                 necessarily adjacent).  This is a "contains" rule, made
 *                 for blocking; an allowlist that must be exact should use
 *                 regex:.
 * Returns 0, or -1 for an invalid pattern (a regex that does not compile;
 * sx_cmd_pattern_check() says why). */
int sx_cmd_match(const char *pattern, const char *const *words, size_t n, int *matched);

/* Validate a pattern (for configuration loading): 0 when usable, else -1
 * with a message in err (errlen bytes, may be 0). */
int sx_cmd_pattern_check(const char *pattern, char *err, size_t errlen);

#endif
