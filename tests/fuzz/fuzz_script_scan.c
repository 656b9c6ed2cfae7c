/* fuzz_script_scan.c - libFuzzer target for plugins/policy/script_scan.c.
 * Built and run by tools/fuzz-script-scan.sh (clang, -fsanitize=fuzzer,
 * address,undefined).  Scans the input as each language and matches the
 * commands found against a few patterns.  The input's first line is also
 * tried as a pattern (not as a regex: patterns come from the trusted
 * configuration, and glibc's regcomp is not built for hostile expressions). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "script_scan.h"

static const char *const patterns[] = { "rm", "mkfs*", "kill -9", "chmod +s", "rm -rf /",
                                        "git --force", "regex:^(curl|wget) .*\\| *(ba)?sh",
                                        "regex:([" /* invalid: must return -1 */ };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sx_scan_lang langs[] = { SX_SCAN_SH, SX_SCAN_PYTHON, SX_SCAN_RUBY };
    for (size_t l = 0; l < 3; l++) {
        sx_scan_result r;
        int rc = sx_scan((const char *)data, size, langs[l], &r);
        if (rc != 0 && rc != -1)
            __builtin_trap();
        for (size_t i = 0; i < r.ncmds; i++) {
            const sx_scan_cmd *c = &r.cmds[i];
            if (c->nwords == 0 || c->line == 0 || !c->words[0])
                __builtin_trap();
            for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
                int m;
                int mrc = sx_cmd_match(patterns[p], (const char *const *)c->words, c->nwords, &m);
                if (mrc == 0 && m != 0 && m != 1)
                    __builtin_trap();
            }
        }
        sx_scan_result_free(&r);
    }
    /* the input's first line as a pattern, against a fixed command */
    if (size > 0 && size < 256) {
        char pat[256];
        size_t n = 0;
        while (n < size && data[n] != '\n' && data[n] != '\0')
            n++;
        memcpy(pat, data, n);
        pat[n] = '\0';
        const char *words[] = { "rm", "-rf", "/", "--force=yes" };
        int m;
        char err[128];
        if (strncmp(pat, "regex:", 6) == 0)
            return 0;
        int chk = sx_cmd_pattern_check(pat, err, sizeof err);
        int mrc = sx_cmd_match(pat, words, 4, &m);
        if ((chk == 0) != (mrc == 0))
            __builtin_trap();
    }
    return 0;
}
