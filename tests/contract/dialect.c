/* dialect.c - abstract contract behaviours -> scripts (see contract.h). */
#define _GNU_SOURCE
#include "contract.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "contract: out of memory\n");
        abort();
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            fprintf(stderr, "contract: out of memory\n");
            abort();
        }
    }
    memcpy(b->p + b->len, s, (size_t)n + 1);
    b->len += (size_t)n;
    free(s);
}

/* 'text' with every ' written as '\'' */
static void put_sh_quoted(buf *b, const char *text)
{
    put(b, "'");
    for (const char *c = text; *c; c++) {
        if (*c == '\'')
            put(b, "'\\''");
        else
            put(b, "%c", *c);
    }
    put(b, "'");
}

static int valid_var_name(const char *s)
{
    if (s == NULL || !(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return 0;
    for (; *s; s++)
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

int ct_dialect_parse(const char *name, ct_dialect *out)
{
    if (name && strcmp(name, "sh") == 0)
        *out = CT_DIALECT_SH;
    else if (name && strcmp(name, "fake") == 0)
        *out = CT_DIALECT_FAKE;
    else
        return -1;
    return 0;
}

const char *ct_dialect_name(ct_dialect d) { return d == CT_DIALECT_SH ? "sh" : "fake"; }

char *ct_leftover_marker(const char *execution_id)
{
    char *m = NULL;
    if (asprintf(&m, "sx-leftover-%s", execution_id) < 0)
        return NULL;
    return m;
}

/* POSIX sh: printf and kill are builtins; cat, pwd, sleep exist in any
 * image with a shell (busybox included). */
static int sh_one(buf *b, const ct_beh *x, const char **why)
{
    switch (x->kind) {
    case CT_OUT:
    case CT_ERR:
        put(b, "printf '%%s\\n' ");
        put_sh_quoted(b, x->s);
        put(b, x->kind == CT_ERR ? " >&2\n" : "\n");
        return 0;
    case CT_EXIT:
        put(b, "exit %ld\n", x->n);
        return 0;
    case CT_ECHO_STDIN:
        put(b, "cat\n");
        return 0;
    case CT_PRINT_ENV:
        if (!valid_var_name(x->s)) {
            *why = "not a variable name";
            return -1;
        }
        put(b, "printf '%%s\\n' \"${%s-}\"\n", x->s);
        return 0;
    case CT_PRINT_CWD:
        put(b, "pwd\n");
        return 0;
    case CT_SLEEP:
        put(b, "sleep %ld\n", x->n);
        return 0;
    case CT_OUT_BYTES: {
        /* builtins only: 1000-byte printfs in a loop, then the rest */
        char k[1001];
        memset(k, 'x', 1000);
        k[1000] = '\0';
        long q = x->n / 1000, r = x->n % 1000;
        put(b, "i=0; while [ $i -lt %ld ]; do printf '%%s' '%s'; i=$((i+1)); done\n", q, k);
        if (r > 0)
            put(b, "printf '%%s' '%.*s'\n", (int)r, k);
        return 0;
    }
    case CT_DIE_SIGNAL:
        put(b, "kill -%ld $$\nsleep 30\n", x->n);
        return 0;
    case CT_LEAVE_PROCESS:
        /* a plain background child holding stdout/stderr open, and one
         * detached through a subshell (re-parented when the subshell
         * exits); both loop forever, their command lines carry the marker */
        put(b, "sh -c 'while :; do sleep 1; done' ");
        put_sh_quoted(b, x->s);
        put(b, " &\n( sh -c 'while :; do sleep 1; done' ");
        put_sh_quoted(b, x->s);
        put(b, " </dev/null >/dev/null 2>&1 & )\n");
        return 0;
    }
    *why = "unknown behaviour";
    return -1;
}

/* backend_fake's directives (see plugins/backend_fake/backend_fake.c). */
static int fake_one(buf *b, const ct_beh *x, const char **why)
{
    switch (x->kind) {
    case CT_OUT:
    case CT_ERR:
        if (strchr(x->s, '\n')) {
            *why = "a fake directive's text is one line";
            return -1;
        }
        put(b, "%s %s\n", x->kind == CT_ERR ? "err" : "out", x->s);
        return 0;
    case CT_EXIT:
        put(b, "exit %ld\n", x->n);
        return 0;
    case CT_ECHO_STDIN:
        put(b, "echo-stdin\n");
        return 0;
    case CT_PRINT_ENV:
        put(b, "echo-env %s\n", x->s);
        return 0;
    case CT_PRINT_CWD:
        *why = "the fake runs no process: it has no working directory to print";
        return -1;
    case CT_SLEEP:
        put(b, "sleep %ld\n", x->n);
        return 0;
    case CT_OUT_BYTES:
        put(b, "outbytes %ld\n", x->n);
        return 0;
    case CT_DIE_SIGNAL:
        put(b, "signal %ld\n", x->n);
        return 0;
    case CT_LEAVE_PROCESS:
        *why = "the fake runs no process: it cannot leave one behind";
        return -1;
    }
    *why = "unknown behaviour";
    return -1;
}

char *ct_script(ct_dialect d, const ct_beh *b, size_t n, const char **why)
{
    buf out = {0};
    put(&out, "%s", d == CT_DIALECT_SH ? "" : "# contract case (fake dialect)\n");
    for (size_t i = 0; i < n; i++) {
        int rc = d == CT_DIALECT_SH ? sh_one(&out, &b[i], why) : fake_one(&out, &b[i], why);
        if (rc != 0) {
            free(out.p);
            return NULL;
        }
    }
    return out.p;
}
