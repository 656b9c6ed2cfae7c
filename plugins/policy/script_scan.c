/* script_scan.c - find the commands a script runs (see script_scan.h). */
#define _POSIX_C_SOURCE 200809L
#include "script_scan.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

typedef struct {
    sx_scan_result *res;
    int err; /* sticky: out of memory or a limit exceeded */
} state;

static int sb_putn(state *st, sbuf *b, const char *s, size_t n)
{
    if (st->err)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1) {
            if (cap > SX_SCAN_MAX_BYTES) {
                st->err = 1;
                return -1;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            st->err = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int sb_put(state *st, sbuf *b, char c)
{
    return sb_putn(st, b, &c, 1);
}

static int sb_puts(state *st, sbuf *b, const char *s)
{
    return sb_putn(st, b, s, strlen(s));
}

/* a list of words being collected */
typedef struct {
    char **w;
    size_t n, cap;
    size_t line;
} wlist;

static void wl_clear(wlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->w[i]);
    l->n = 0;
}

static void wl_free(wlist *l)
{
    wl_clear(l);
    free(l->w);
    l->w = NULL;
    l->cap = 0;
}

/* takes b's text (b is reset) */
static int wl_add(state *st, wlist *l, sbuf *b)
{
    if (st->err)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **w = realloc(l->w, cap * sizeof *w);
        if (!w) {
            st->err = 1;
            return -1;
        }
        l->w = w;
        l->cap = cap;
    }
    if (!b->p && sb_putn(st, b, "", 0) != 0)
        return -1;
    l->w[l->n++] = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return 0;
}

static const char *base_name(const char *w)
{
    const char *s = strrchr(w, '/');
    return (s && s[1]) ? s + 1 : w;
}

static int is_in(const char *w, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(w, *set) == 0)
            return 1;
    return 0;
}

static int is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_assignment(const char *w)
{
    if (!is_ident_start((unsigned char)w[0]))
        return 0;
    size_t i = 1;
    while (is_ident((unsigned char)w[i]))
        i++;
    if (w[i] == '+' && w[i + 1] == '=')
        return 1;
    return w[i] == '=';
}

/* record words[0..n) (copied) as a command */
static void add_cmd(state *st, char *const *words, size_t n, size_t line, int wrapper)
{
    sx_scan_result *r = st->res;
    if (st->err || n == 0)
        return;
    if (r->ncmds >= SX_SCAN_MAX_COMMANDS) {
        st->err = 1;
        return;
    }
    size_t bytes = sizeof(sx_scan_cmd) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(words[i]) + 1;
    if (bytes > SX_SCAN_MAX_BYTES - r->bytes_) {
        st->err = 1;
        return;
    }
    if (r->ncmds == r->cap_) {
        size_t cap = r->cap_ ? r->cap_ * 2 : 16;
        sx_scan_cmd *c = realloc(r->cmds, cap * sizeof *c);
        if (!c) {
            st->err = 1;
            return;
        }
        r->cmds = c;
        r->cap_ = cap;
    }
    char **w = calloc(n, sizeof *w);
    if (!w) {
        st->err = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        w[i] = strdup(i == 0 ? base_name(words[0]) : words[i]);
        if (!w[i]) {
            for (size_t j = 0; j < i; j++)
                free(w[j]);
            free(w);
            st->err = 1;
            return;
        }
    }
    r->cmds[r->ncmds++] = (sx_scan_cmd){ .words = w, .nwords = n, .line = line,
                                         .wrapper = wrapper };
    r->bytes_ += bytes;
}

static void scan_shell(state *st, const char *s, size_t len, size_t line, int depth);

/* ------------------------------------------------------------------ */
/* a simple command's words: reserved words, assignments, wrappers,   */
/* bash -c, eval, env -S, find -exec                                  */

static const char *const reserved_skip[] = { "!", "{", "}", "if", "then", "else", "elif", "fi",
                                             "do", "done", "while", "until", "esac", NULL };
static const char *const reserved_stop[] = { "for", "select", "case", "function", "in", "[[",
                                             NULL };
static const char *const shells[] = { "bash", "sh", "dash", "zsh", "ksh", "mksh", "ash", NULL };

/* options of the wrapper w that take a separate argument (short: letter
 * list; long: names) */
typedef struct {
    const char *name;
    const char *short_arg;
    const char *const *long_arg;
    int positional; /* words to skip after the options (timeout's duration) */
} wrapper_def;

static const char *const sudo_long[] = { "--user", "--group", "--prompt", "--host",
                                         "--close-from", "--chdir", "--role", "--type",
                                         "--other-user", "--chroot", "--command-timeout",
                                         NULL };
static const char *const env_long[] = { "--unset", "--chdir", "--split-string", NULL };
static const char *const timeout_long[] = { "--signal", "--kill-after", NULL };
static const char *const nice_long[] = { "--adjustment", NULL };
static const char *const xargs_long[] = { "--arg-file", "--delimiter", "--max-args",
                                          "--max-procs", "--max-chars", "--max-lines",
                                          "--process-slot-var", NULL };
static const char *const time_long[] = { "--format", "--output", NULL };
static const char *const none_long[] = { NULL };

static const wrapper_def wrappers[] = {
    { "sudo", "ugChpUrtDRT", sudo_long, 0 },
    { "doas", "uC", none_long, 0 },
    { "env", "uCS", env_long, 0 },
    { "exec", "a", none_long, 0 },
    { "command", "", none_long, 0 },
    { "builtin", "", none_long, 0 },
    { "nohup", "", none_long, 0 },
    { "setsid", "", none_long, 0 },
    { "timeout", "sk", timeout_long, 1 },
    { "nice", "n", nice_long, 0 },
    { "xargs", "adEILnPs", xargs_long, 0 },
    { "time", "fo", time_long, 0 },
};

static const wrapper_def *find_wrapper(const char *name)
{
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
        if (strcmp(wrappers[i].name, name) == 0)
            return &wrappers[i];
    return NULL;
}

/* index of the first word after the wrapper at words[i] and its options */
static size_t skip_wrapper(state *st, const wrapper_def *d, char **words, size_t i, size_t n,
                           size_t line, int depth)
{
    size_t k = i + 1;
    while (k < n) {
        const char *w = words[k];
        if (strcmp(w, "--") == 0) {
            k++;
            break;
        }
        if (w[0] != '-' || w[1] == '\0')
            break;
        if (w[1] == '-') {
            const char *eq = strchr(w, '=');
            size_t nl = eq ? (size_t)(eq - w) : strlen(w);
            int takes = 0;
            for (const char *const *l = d->long_arg; *l; l++)
                if (strlen(*l) == nl && strncmp(*l, w, nl) == 0)
                    takes = 1;
            if (takes && strcmp(d->name, "env") == 0 && strncmp(w, "--split-string", nl) == 0) {
                const char *arg = eq ? eq + 1 : (k + 1 < n ? words[k + 1] : NULL);
                if (arg)
                    scan_shell(st, arg, strlen(arg), line, depth + 1);
            }
            k += (takes && !eq) ? 2 : 1;
            continue;
        }
        /* short cluster: the first letter taking an argument takes the
         * rest of the cluster, or the next word */
        size_t skip = 1;
        for (size_t j = 1; w[j]; j++) {
            if (strchr(d->short_arg, w[j])) {
                const char *arg = w[j + 1] ? w + j + 1 : (k + 1 < n ? words[k + 1] : NULL);
                if (!w[j + 1])
                    skip = 2;
                if (w[j] == 'S' && strcmp(d->name, "env") == 0 && arg)
                    scan_shell(st, arg, strlen(arg), line, depth + 1);
                break;
            }
        }
        k += skip;
    }
    if (k > n)
        k = n; /* an option's argument missing at the end: "sudo -u" */
    for (int p = 0; p < d->positional && k < n; p++)
        k++;
    return k;
}

/* bash -c: the index of the command string, or n */
static size_t shell_c_arg(char **words, size_t i, size_t n)
{
    int has_c = 0;
    size_t k = i + 1;
    for (; k < n; k++) {
        const char *w = words[k];
        if (strcmp(w, "--") == 0 || strcmp(w, "-") == 0) {
            k++;
            break;
        }
        if (w[0] != '-' && w[0] != '+')
            break;
        if (w[1] == '-') {
            if (strcmp(w, "--rcfile") == 0 || strcmp(w, "--init-file") == 0)
                k++;
            continue;
        }
        if (strchr(w + 1, 'c') && w[0] == '-')
            has_c = 1;
        if (strchr(w + 1, 'o') || strchr(w + 1, 'O'))
            k++; /* -o option / +O shopt take an argument */
    }
    return (has_c && k < n) ? k : n;
}

static void scan_words_joined(state *st, char **words, size_t from, size_t n, size_t line,
                              int depth)
{
    sbuf b = { 0 };
    for (size_t k = from; k < n; k++) {
        if (k > from)
            sb_put(st, &b, ' ');
        sb_puts(st, &b, words[k]);
    }
    if (b.p)
        scan_shell(st, b.p, b.len, line, depth + 1);
    free(b.p);
}

/* words of one simple command (also argv lists from python/ruby) */
static void process_words(state *st, char **words, size_t n, size_t line, int depth)
{
    size_t i = 0;
    if (depth > SX_SCAN_MAX_DEPTH) {
        st->err = 1;
        return;
    }
    while (i < n && is_in(words[i], reserved_skip))
        i++;
    if (i < n && is_in(words[i], reserved_stop))
        return;
    for (int layer = 0;; layer++) {
        while (i < n && is_assignment(words[i]))
            i++;
        if (i >= n || st->err)
            return;
        const wrapper_def *d = find_wrapper(base_name(words[i]));
        if (!d)
            break;
        if (layer >= SX_SCAN_MAX_WRAPPERS) {
            st->err = 1;
            return;
        }
        size_t j = skip_wrapper(st, d, words, i, n, line, depth);
        add_cmd(st, words + i, j - i, line, j < n);
        if (j >= n)
            return;
        i = j;
    }
    add_cmd(st, words + i, n - i, line, 0);
    const char *name = base_name(words[i]);
    if (is_in(name, shells)) {
        size_t k = shell_c_arg(words, i, n);
        if (k < n)
            scan_shell(st, words[k], strlen(words[k]), line, depth + 1);
    } else if (strcmp(name, "eval") == 0) {
        scan_words_joined(st, words, i + 1, n, line, depth);
    } else if (strcmp(name, "find") == 0) {
        for (size_t k = i + 1; k < n; k++) {
            if (strcmp(words[k], "-exec") && strcmp(words[k], "-execdir") &&
                strcmp(words[k], "-ok") && strcmp(words[k], "-okdir"))
                continue;
            size_t e = k + 1;
            while (e < n && strcmp(words[e], ";") && strcmp(words[e], "+"))
                e++;
            if (e > k + 1)
                process_words(st, words + k + 1, e - k - 1, line, depth + 1);
            k = e;
        }
    }
}

/* ------------------------------------------------------------------ */
/* shell                                                               */

typedef struct {
    char *delim;
    int strip_tabs;
    int quoted;
} heredoc;

typedef struct {
    state *st;
    const char *s;
    size_t end, pos, line;
    heredoc hd[SX_SCAN_MAX_HEREDOCS];
    size_t nhd;
} src;

static void sh_list(src *c, int depth, int term);
static void sh_dollar(src *c, sbuf *out, int depth, int dq);
static void sh_backtick(src *c, int depth);

static int sh_meta(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '&' ||
           ch == '|' || ch == '(' || ch == ')' || ch == '<' || ch == '>';
}

/* Up to two hex digits at s[*pos] (the \xHH of $'...' and of Python/Ruby
 * strings): the value, or -1 when there is none. */
static int hex_escape(const char *s, size_t *pos, size_t end)
{
    int v = 0, k = 0;
    for (; k < 2 && *pos < end; k++) {
        char h = s[*pos];
        int d = (h >= '0' && h <= '9') ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (d < 0)
            break;
        v = v * 16 + d;
        (*pos)++;
    }
    return k ? v : -1;
}

/* after the opening ", up to and past the closing " */
static void sh_dquote(src *c, sbuf *out, int depth)
{
    while (c->pos < c->end && !c->st->err) {
        char ch = c->s[c->pos];
        if (ch == '"') {
            c->pos++;
            return;
        }
        if (ch == '\\' && c->pos + 1 < c->end) {
            char nx = c->s[c->pos + 1];
            if (nx == '\n') {
                c->line++;
            } else if (nx == '$' || nx == '`' || nx == '"' || nx == '\\') {
                sb_put(c->st, out, nx);
            } else {
                sb_put(c->st, out, ch);
                sb_put(c->st, out, nx);
            }
            c->pos += 2;
        } else if (ch == '$') {
            sh_dollar(c, out, depth, 1);
        } else if (ch == '`') {
            c->pos++;
            sh_backtick(c, depth);
            sb_puts(c->st, out, "$(...)");
        } else {
            if (ch == '\n')
                c->line++;
            sb_put(c->st, out, ch);
            c->pos++;
        }
    }
}

static void sh_ansi_c(src *c, sbuf *out)
{
    while (c->pos < c->end && !c->st->err) {
        char ch = c->s[c->pos++];
        if (ch == '\'')
            return;
        if (ch == '\n')
            c->line++;
        if (ch != '\\' || c->pos >= c->end) {
            sb_put(c->st, out, ch);
            continue;
        }
        char e = c->s[c->pos++];
        int v = -1;
        switch (e) {
        case 'a': v = 7; break;
        case 'b': v = 8; break;
        case 'e': case 'E': v = 27; break;
        case 'f': v = 12; break;
        case 'n': v = 10; break;
        case 'r': v = 13; break;
        case 't': v = 9; break;
        case 'v': v = 11; break;
        case '\\': case '\'': case '"': case '?': v = (unsigned char)e; break;
        case 'x':
            v = hex_escape(c->s, &c->pos, c->end);
            break;
        default:
            if (e >= '0' && e <= '7') {
                v = e - '0';
                for (int k = 0; k < 2 && c->pos < c->end && c->s[c->pos] >= '0' &&
                                c->s[c->pos] <= '7'; k++)
                    v = v * 8 + (c->s[c->pos++] - '0');
                v &= 0xff;
            }
        }
        if (v >= 0) {
            sb_put(c->st, out, (char)v);
        } else {
            sb_put(c->st, out, '\\');
            sb_put(c->st, out, e);
        }
    }
}

/* at '$' */
static void sh_dollar(src *c, sbuf *out, int depth, int dq)
{
    const char *s = c->s;
    size_t p = c->pos + 1;
    if (p < c->end && s[p] == '(' && p + 1 < c->end && s[p + 1] == '(') {
        /* $(( arithmetic )): substitutions inside still run */
        c->pos = p + 2;
        int pd = 0;
        sbuf junk = { 0 };
        while (c->pos < c->end && !c->st->err) {
            char ch = s[c->pos];
            if (ch == '(') {
                pd++;
            } else if (ch == ')') {
                if (pd == 0) {
                    c->pos++;
                    if (c->pos < c->end && s[c->pos] == ')')
                        c->pos++;
                    break;
                }
                pd--;
            } else if (ch == '$') {
                sh_dollar(c, &junk, depth, 1);
                continue;
            } else if (ch == '`') {
                c->pos++;
                sh_backtick(c, depth);
                continue;
            } else if (ch == '\n') {
                c->line++;
            }
            c->pos++;
        }
        free(junk.p);
        sb_puts(c->st, out, "$((...))");
    } else if (p < c->end && s[p] == '(') {
        c->pos = p + 1;
        sh_list(c, depth + 1, ')');
        sb_puts(c->st, out, "$(...)");
    } else if (p < c->end && s[p] == '{') {
        c->pos = p + 1;
        int bd = 0;
        sbuf junk = { 0 };
        while (c->pos < c->end && !c->st->err) {
            char ch = s[c->pos];
            if (ch == '}') {
                c->pos++;
                if (bd-- == 0)
                    break;
            } else if (ch == '{') {
                bd++;
                c->pos++;
            } else if (ch == '\\') {
                c->pos += 2;
            } else if (ch == '"') {
                c->pos++;
                sh_dquote(c, &junk, depth);
            } else if (ch == '\'' && !dq) {
                c->pos++;
                while (c->pos < c->end && s[c->pos] != '\'')
                    c->line += s[c->pos++] == '\n';
                c->pos++;
            } else if (ch == '$') {
                sh_dollar(c, &junk, depth, dq);
            } else if (ch == '`') {
                c->pos++;
                sh_backtick(c, depth);
            } else {
                c->line += ch == '\n';
                c->pos++;
            }
        }
        if (c->pos > c->end)
            c->pos = c->end;
        free(junk.p);
        sb_puts(c->st, out, "${...}");
    } else if (!dq && p < c->end && s[p] == '\'') {
        c->pos = p + 1;
        sh_ansi_c(c, out);
    } else if (!dq && p < c->end && s[p] == '"') {
        c->pos = p + 1;
        sh_dquote(c, out, depth);
    } else {
        sb_put(c->st, out, '$');
        c->pos = p;
    }
}

/* after the opening backtick: the body (with \` \$ \\ unescaped) is a script */
static void sh_backtick(src *c, int depth)
{
    size_t i = c->pos, start = c->pos, line = c->line;
    while (i < c->end && c->s[i] != '`')
        i += (c->s[i] == '\\') ? 2 : 1;
    if (i > c->end)
        i = c->end;
    sbuf body = { 0 };
    for (size_t j = start; j < i && !c->st->err; j++) {
        if (c->s[j] == '\n')
            c->line++;
        if (c->s[j] == '\\' && j + 1 < i && strchr("$`\\", c->s[j + 1]))
            j++;
        sb_put(c->st, &body, c->s[j]);
    }
    c->pos = i < c->end ? i + 1 : c->end;
    if (body.p && !c->st->err)
        scan_shell(c->st, body.p, body.len, line, depth + 1);
    free(body.p);
}

/* one word; returns 1 when a word was read (possibly empty: '') */
static int sh_word(src *c, sbuf *out, int depth, int *quoted)
{
    int any = 0;
    *quoted = 0;
    while (c->pos < c->end && !c->st->err) {
        char ch = c->s[c->pos];
        if (sh_meta(ch))
            break;
        any = 1;
        if (ch == '\\') {
            if (c->pos + 1 < c->end && c->s[c->pos + 1] == '\n') {
                c->line++;
            } else if (c->pos + 1 < c->end) {
                sb_put(c->st, out, c->s[c->pos + 1]);
                *quoted = 1;
            }
            c->pos += 2;
        } else if (ch == '\'') {
            *quoted = 1;
            c->pos++;
            size_t b = c->pos;
            while (c->pos < c->end && c->s[c->pos] != '\'')
                c->line += c->s[c->pos++] == '\n';
            sb_putn(c->st, out, c->s + b, c->pos - b);
            if (c->pos < c->end)
                c->pos++;
        } else if (ch == '"') {
            *quoted = 1;
            c->pos++;
            sh_dquote(c, out, depth);
        } else if (ch == '$') {
            if (c->pos + 1 < c->end && (c->s[c->pos + 1] == '\'' || c->s[c->pos + 1] == '"'))
                *quoted = 1;
            sh_dollar(c, out, depth, 0);
        } else if (ch == '`') {
            c->pos++;
            sh_backtick(c, depth);
            sb_puts(c->st, out, "$(...)");
        } else {
            sb_put(c->st, out, ch);
            c->pos++;
        }
    }
    if (c->pos > c->end)
        c->pos = c->end;
    if (any && !out->p)
        sb_putn(c->st, out, "", 0);
    return any;
}

/* at the start of the line after the one that had <<: skip the bodies */
static void sh_heredoc_bodies(src *c, int depth)
{
    for (size_t h = 0; h < c->nhd && !c->st->err; h++) {
        heredoc *d = &c->hd[h];
        size_t dl = strlen(d->delim);
        size_t body = c->pos, body_line = c->line, body_end = c->end;
        while (c->pos < c->end) {
            size_t ls = c->pos, le = ls;
            while (le < c->end && c->s[le] != '\n')
                le++;
            size_t t = ls;
            if (d->strip_tabs)
                while (t < le && c->s[t] == '\t')
                    t++;
            c->pos = le < c->end ? le + 1 : c->end;
            c->line++;
            if (le - t == dl && memcmp(c->s + t, d->delim, dl) == 0) {
                body_end = ls;
                break;
            }
        }
        if (!d->quoted && body_end > body) {
            /* the shell expands $( ) and ` ` in an unquoted heredoc */
            src sub = { .st = c->st, .s = c->s, .end = body_end, .pos = body, .line = body_line };
            sbuf junk = { 0 };
            while (sub.pos < sub.end && !c->st->err) {
                char ch = sub.s[sub.pos];
                if (ch == '\\') {
                    sub.pos += 2;
                } else if (ch == '$') {
                    sh_dollar(&sub, &junk, depth, 1);
                } else if (ch == '`') {
                    sub.pos++;
                    sh_backtick(&sub, depth);
                } else {
                    sub.line += ch == '\n';
                    sub.pos++;
                }
            }
            free(junk.p);
            for (size_t k = 0; k < sub.nhd; k++)
                free(sub.hd[k].delim);
        }
    }
    for (size_t h = 0; h < c->nhd; h++)
        free(c->hd[h].delim);
    c->nhd = 0;
}

static void sh_finish(src *c, wlist *cmd, int depth)
{
    if (cmd->n)
        process_words(c->st, cmd->w, cmd->n, cmd->line, depth);
    wl_clear(cmd);
}

/* a list of commands, up to term (')') or the end */
static void sh_list(src *c, int depth, int term)
{
    wlist cmd = { 0 };
    sbuf w = { 0 };
    if (depth > SX_SCAN_MAX_DEPTH) {
        c->st->err = 1;
        return;
    }
    const char *s = c->s;
    while (c->pos < c->end && !c->st->err) {
        char ch = s[c->pos];
        char nx = c->pos + 1 < c->end ? s[c->pos + 1] : '\0';
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            c->pos++;
        } else if (ch == '\\' && nx == '\n') {
            c->pos += 2;
            c->line++;
        } else if (ch == '#') {
            while (c->pos < c->end && s[c->pos] != '\n')
                c->pos++;
        } else if (ch == '\n') {
            sh_finish(c, &cmd, depth);
            c->pos++;
            c->line++;
            if (c->nhd)
                sh_heredoc_bodies(c, depth);
        } else if (ch == '&' && nx == '>') {
            c->pos++; /* &> &>>: a redirection, handled at '>' */
        } else if (ch == ';' || ch == '&' || ch == '|') {
            sh_finish(c, &cmd, depth);
            c->pos++;
            if (nx == ch || (ch == '|' && nx == '&') || (ch == ';' && nx == '&'))
                c->pos++;
        } else if (ch == '(') {
            if (cmd.n) {
                size_t p = c->pos + 1;
                while (p < c->end && (s[p] == ' ' || s[p] == '\t'))
                    p++;
                if (p < c->end && s[p] == ')') {
                    /* name() { ...; }: a function definition, not a command */
                    wl_clear(&cmd);
                    c->pos = p + 1;
                    continue;
                }
            }
            sh_finish(c, &cmd, depth);
            c->pos++;
            sh_list(c, depth + 1, ')');
        } else if (ch == ')') {
            sh_finish(c, &cmd, depth);
            c->pos++;
            if (term == ')')
                break;
        } else if (ch == '<' || ch == '>') {
            if (nx == '(') { /* process substitution */
                c->pos += 2;
                sh_list(c, depth + 1, ')');
                continue;
            }
            int heredoc_op = 0, strip = 0;
            c->pos++;
            if (ch == '<' && nx == '<') {
                c->pos++;
                if (c->pos < c->end && s[c->pos] == '<') {
                    c->pos++; /* <<< here-string: a word */
                } else {
                    heredoc_op = 1;
                    if (c->pos < c->end && s[c->pos] == '-') {
                        strip = 1;
                        c->pos++;
                    }
                }
            } else if (c->pos < c->end && (s[c->pos] == '>' || s[c->pos] == '|' ||
                                           s[c->pos] == '&' || s[c->pos] == '<')) {
                c->pos++;
            }
            while (c->pos < c->end && (s[c->pos] == ' ' || s[c->pos] == '\t'))
                c->pos++;
            int quoted;
            if (sh_word(c, &w, depth, &quoted) && heredoc_op) {
                if (c->nhd >= SX_SCAN_MAX_HEREDOCS) {
                    c->st->err = 1;
                    break;
                }
                c->hd[c->nhd++] = (heredoc){ .delim = w.p, .strip_tabs = strip,
                                             .quoted = quoted };
                w.p = NULL;
                w.len = w.cap = 0;
            }
            free(w.p);
            w = (sbuf){ 0 };
        } else {
            if (ch >= '0' && ch <= '9') { /* 2>file: an fd number */
                size_t p = c->pos;
                while (p < c->end && s[p] >= '0' && s[p] <= '9')
                    p++;
                if (p < c->end && (s[p] == '<' || s[p] == '>')) {
                    c->pos = p;
                    continue;
                }
            }
            int quoted;
            size_t line = c->line;
            if (sh_word(c, &w, depth, &quoted)) {
                if (cmd.n == 0)
                    cmd.line = line;
                wl_add(c->st, &cmd, &w);
            } else {
                c->pos++; /* cannot happen: a word has at least one char */
            }
        }
    }
    if (!c->st->err)
        sh_finish(c, &cmd, depth);
    wl_free(&cmd);
    free(w.p);
}

static void scan_shell(state *st, const char *s, size_t len, size_t line, int depth)
{
    if (depth > SX_SCAN_MAX_DEPTH) {
        st->err = 1;
        return;
    }
    src c = { .st = st, .s = s, .end = len, .pos = 0, .line = line };
    sh_list(&c, depth, 0);
    for (size_t h = 0; h < c.nhd; h++)
        free(c.hd[h].delim);
}

/* ------------------------------------------------------------------ */
/* python and ruby: literals given to process-spawning calls          */

typedef struct {
    state *st;
    const char *s;
    size_t end, pos, line;
    int ruby;
    int depth;
} lsrc;

static void skip_ws(lsrc *c, int newlines)
{
    while (c->pos < c->end) {
        char ch = c->s[c->pos];
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            c->pos++;
        } else if (ch == '\\' && c->pos + 1 < c->end && c->s[c->pos + 1] == '\n') {
            c->pos += 2;
            c->line++;
        } else if (newlines && ch == '\n') {
            c->pos++;
            c->line++;
        } else if (newlines && ch == '#' && !(c->ruby && c->pos + 1 < c->end &&
                                              c->s[c->pos + 1] == '{')) {
            while (c->pos < c->end && c->s[c->pos] != '\n')
                c->pos++;
        } else {
            break;
        }
    }
}

static char closing_of(char open)
{
    switch (open) {
    case '(': return ')';
    case '[': return ']';
    case '{': return '}';
    case '<': return '>';
    default: return open;
    }
}

/* a backslash escape of a python str / ruby "" string, at the char after \ */
static void esc(lsrc *c, sbuf *out)
{
    char e = c->s[c->pos++];
    switch (e) {
    case 'n': sb_put(c->st, out, '\n'); break;
    case 't': sb_put(c->st, out, '\t'); break;
    case '\n': c->line++; break;
    case '\\': case '\'': case '"': case '`': sb_put(c->st, out, e); break;
    case 'x': {
        int v = hex_escape(c->s, &c->pos, c->end);
        if (v >= 0)
            sb_put(c->st, out, (char)v);
        else
            sb_puts(c->st, out, "\\x");
        break;
    }
    default:
        if (e >= '0' && e <= '7') {
            int v = e - '0';
            for (int k = 0; k < 2 && c->pos < c->end && c->s[c->pos] >= '0' &&
                            c->s[c->pos] <= '7'; k++)
                v = v * 8 + (c->s[c->pos++] - '0');
            sb_put(c->st, out, (char)(v & 0xff));
        } else {
            sb_put(c->st, out, '\\');
            sb_put(c->st, out, e);
        }
    }
}

/* a ruby #{...} inside an interpolating literal: kept as written */
static void rb_interp(lsrc *c, sbuf *out)
{
    int bd = 0;
    while (c->pos < c->end && !c->st->err) {
        char ch = c->s[c->pos++];
        sb_put(c->st, out, ch);
        c->line += ch == '\n';
        if (ch == '{')
            bd++;
        else if (ch == '}' && --bd == 0)
            return;
    }
}

/* a string literal at pos (python: prefixes and triple quotes; ruby: ' " `
 * and %q %Q %x %w %( ); returns 0 when there is none.  *kind: 'x' for a
 * ruby command literal (` or %x), 'w' for %w words, else 's'. */
static int lit_string(lsrc *c, sbuf *out, char *kind)
{
    const char *s = c->s;
    size_t p = c->pos;
    int raw = 0, triple = 0;
    char open, close;
    *kind = 's';
    if (!c->ruby) {
        size_t q = p;
        while (q < c->end && q - p < 2 && s[q] && strchr("rRbBuUfF", s[q]))
            q++;
        if (q >= c->end || (s[q] != '\'' && s[q] != '"'))
            return 0;
        for (size_t k = p; k < q; k++)
            raw |= s[k] == 'r' || s[k] == 'R';
        open = close = s[q];
        p = q + 1;
        if (p + 1 < c->end && s[p] == open && s[p + 1] == open) {
            triple = 1;
            p += 2;
        }
    } else if (s[p] == '\'' || s[p] == '"' || s[p] == '`') {
        open = close = s[p];
        raw = open == '\'';
        *kind = open == '`' ? 'x' : 's';
        p++;
    } else if (s[p] == '%' && p + 1 < c->end) {
        char t = s[p + 1];
        size_t d = p + 1;
        if (strchr("qQwWiIxrs", t) && t) {
            d = p + 2;
            *kind = t == 'x' ? 'x' : (t == 'w' || t == 'W') ? 'w' : 's';
            raw = t == 'q' || t == 'w';
        }
        if (d >= c->end || !strchr("([{<|!/^", s[d]) || !s[d])
            return 0;
        open = s[d];
        close = closing_of(open);
        p = d + 1;
    } else {
        return 0;
    }
    c->pos = p;
    int nest = 0;
    while (c->pos < c->end && !c->st->err) {
        char ch = s[c->pos];
        if (triple) {
            if (ch == close && c->pos + 2 < c->end && s[c->pos + 1] == close &&
                s[c->pos + 2] == close) {
                c->pos += 3;
                return 1;
            }
        } else if (ch == close && nest == 0) {
            c->pos++;
            return 1;
        } else if (ch == close) {
            nest--;
        } else if (ch == open && open != close) {
            nest++;
        }
        if (ch == '\n' && !c->ruby && !triple)
            return 1; /* unterminated python string: stop at the line's end */
        c->pos++;
        if (ch == '\\' && c->pos < c->end) {
            if (raw) {
                char e = s[c->pos];
                if (e == close || e == '\\') {
                    if (c->ruby)
                        sb_put(c->st, out, e);
                    else {
                        sb_put(c->st, out, '\\');
                        sb_put(c->st, out, e);
                    }
                    c->pos++;
                } else {
                    sb_put(c->st, out, '\\');
                }
            } else {
                esc(c, out);
            }
            continue;
        }
        if (c->ruby && ch == '#' && !raw && c->pos < c->end && s[c->pos] == '{') {
            sb_put(c->st, out, '#');
            rb_interp(c, out);
            continue;
        }
        c->line += ch == '\n';
        sb_put(c->st, out, ch);
    }
    return 1;
}

/* a literal string, maybe several adjacent ones (python "a" "b") */
static int lit_concat(lsrc *c, sbuf *out, char *kind, int nl)
{
    if (!lit_string(c, out, kind))
        return 0;
    if (!c->ruby) {
        for (;;) {
            size_t save = c->pos, line = c->line;
            skip_ws(c, nl);
            char k2;
            if (c->pos >= c->end || !lit_string(c, out, &k2)) {
                c->pos = save;
                c->line = line;
                break;
            }
        }
    }
    if (!out->p)
        sb_putn(c->st, out, "", 0);
    return 1;
}

static void split_words(state *st, const char *s, wlist *l)
{
    sbuf b = { 0 };
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n')
            sb_put(st, &b, *s++);
        wl_add(st, l, &b);
    }
    free(b.p);
}

/* [ "a", "b", ... ] at pos (after skip_ws); literal elements up to the
 * first that is not one */
static int lit_list(lsrc *c, wlist *l)
{
    char open = c->s[c->pos];
    if (open != '[' && open != '(')
        return 0;
    c->pos++;
    sbuf b = { 0 };
    for (;;) {
        skip_ws(c, 1);
        char kind;
        if (c->pos >= c->end || !lit_concat(c, &b, &kind, 1))
            break;
        if (kind == 'w')
            split_words(c->st, b.p, l);
        else
            wl_add(c->st, l, &b);
        free(b.p);
        b = (sbuf){ 0 };
        skip_ws(c, 1);
        if (c->pos >= c->end || c->s[c->pos] != ',')
            break;
        c->pos++;
    }
    free(b.p);
    return 1;
}

/* the arguments of a spawning call, at pos (after the name) */
static void spawn_args(lsrc *c, int list_only)
{
    size_t line;
    int paren = 0;
    skip_ws(c, 0);
    if (c->pos < c->end && c->s[c->pos] == '(') {
        paren = 1;
        c->pos++;
    } else if (!c->ruby) {
        return;
    }
    skip_ws(c, paren);
    if (c->ruby && c->pos < c->end && c->s[c->pos] == '{') {
        /* an env hash: skip it (balanced braces) */
        int bd = 0;
        while (c->pos < c->end) {
            char ch = c->s[c->pos++];
            c->line += ch == '\n';
            if (ch == '{')
                bd++;
            else if (ch == '}' && --bd == 0)
                break;
        }
        skip_ws(c, paren);
        if (c->pos < c->end && c->s[c->pos] == ',')
            c->pos++;
        skip_ws(c, 1);
    }
    if (c->ruby && c->pos < c->end && c->s[c->pos] == '*')
        c->pos++; /* *%w[...] */
    wlist l = { 0 };
    sbuf b = { 0 };
    char kind;
    line = c->line;
    if (c->pos >= c->end) {
        /* nothing */
    } else if (c->s[c->pos] == '[' || (!c->ruby && c->s[c->pos] == '(')) {
        lit_list(c, &l);
        if (l.n)
            process_words(c->st, l.w, l.n, line, c->depth + 1);
    } else if (!list_only && lit_concat(c, &b, &kind, paren)) {
        if (kind == 'w') {
            split_words(c->st, b.p, &l);
            if (l.n)
                process_words(c->st, l.w, l.n, line, c->depth + 1);
        } else if (c->ruby) {
            /* system("rm", "-rf", "/") is argv; one string is a shell line */
            wl_add(c->st, &l, &b);
            for (;;) {
                skip_ws(c, paren);
                if (c->pos >= c->end || c->s[c->pos] != ',')
                    break;
                c->pos++;
                skip_ws(c, 1);
                if (c->pos >= c->end || !lit_concat(c, &b, &kind, paren))
                    break;
                wl_add(c->st, &l, &b);
            }
            if (l.n == 1)
                scan_shell(c->st, l.w[0], strlen(l.w[0]), line, c->depth + 1);
            else
                process_words(c->st, l.w, l.n, line, c->depth + 1);
        } else {
            scan_shell(c->st, b.p, b.len, line, c->depth + 1);
        }
    }
    wl_free(&l);
    free(b.p);
}

static const char *const py_os[] = { "system", "popen", NULL };
static const char *const py_sp[] = { "run", "call", "check_call", "check_output", "Popen",
                                     "getoutput", "getstatusoutput", NULL };
static const char *const py_bare[] = { "system", "popen", "Popen", "check_call",
                                       "check_output", "getoutput", "getstatusoutput", NULL };
static const char *const py_bare_list[] = { "run", "call", NULL };
static const char *const rb_kernel[] = { "system", "exec", "spawn", NULL };
static const char *const rb_open3[] = { "popen3", "popen2", "popen2e", "capture2",
                                        "capture2e", "capture3", "pipeline", "pipeline_r",
                                        "pipeline_w", "pipeline_rw", "pipeline_start", NULL };

/* a dotted name at pos: decide whether it is a spawning call */
static void lang_name(lsrc *c)
{
    char prev[32] = "", last[32] = "";
    int parts = 0;
    for (;;) {
        size_t b = c->pos;
        while (c->pos < c->end && is_ident((unsigned char)c->s[c->pos]))
            c->pos++;
        size_t n = c->pos - b;
        memcpy(prev, last, sizeof prev);
        if (n >= sizeof last)
            n = sizeof last - 1;
        memcpy(last, c->s + b, n);
        last[n] = '\0';
        parts++;
        size_t p = c->pos;
        if (p < c->end && c->s[p] == '.')
            p++;
        else if (c->ruby && p + 1 < c->end && c->s[p] == ':' && c->s[p + 1] == ':')
            p += 2;
        else
            break;
        if (p >= c->end || !is_ident_start((unsigned char)c->s[p]))
            break;
        c->pos = p;
    }
    if (c->ruby) {
        if (c->pos < c->end && (c->s[c->pos] == '?' || c->s[c->pos] == '!' ||
                                c->s[c->pos] == '='))
            return; /* system? / exec! / exec= are other methods */
        if ((parts == 1 || strcmp(prev, "Kernel") == 0 || strcmp(prev, "Process") == 0) &&
            is_in(last, rb_kernel))
            spawn_args(c, 0);
        else if ((strcmp(prev, "IO") == 0 && strcmp(last, "popen") == 0) ||
                 (strcmp(prev, "Open3") == 0 && is_in(last, rb_open3)))
            spawn_args(c, 0);
        return;
    }
    if ((strcmp(prev, "os") == 0 && is_in(last, py_os)) ||
        (strcmp(prev, "subprocess") == 0 && is_in(last, py_sp)) ||
        (parts == 1 && is_in(last, py_bare)))
        spawn_args(c, 0);
    else if (parts == 1 && is_in(last, py_bare_list))
        spawn_args(c, 1);
}

/* ruby heredocs: <<~ID <<-ID <<ID <<'ID' <<"ID"; the body follows the line */
typedef struct {
    char id[64];
    int indent;
} rb_heredoc;

static void scan_lang(state *st, const char *s, size_t len, int ruby)
{
    lsrc c = { .st = st, .s = s, .end = len, .pos = 0, .line = 1, .ruby = ruby, .depth = 0 };
    rb_heredoc hd[SX_SCAN_MAX_HEREDOCS];
    size_t nhd = 0;
    char prev_sig = '\n'; /* last significant char, for ruby's / */
    sbuf junk = { 0 };
    while (c.pos < c.end && !st->err) {
        char ch = s[c.pos];
        char kind;
        if (ch == '\n') {
            c.pos++;
            c.line++;
            prev_sig = '\n';
            for (size_t h = 0; h < nhd; h++) {
                size_t dl = strlen(hd[h].id);
                while (c.pos < c.end) {
                    size_t ls = c.pos, le = ls;
                    while (le < c.end && s[le] != '\n')
                        le++;
                    if (hd[h].indent)
                        while (ls < le && (s[ls] == ' ' || s[ls] == '\t'))
                            ls++;
                    c.pos = le < c.end ? le + 1 : c.end;
                    c.line++;
                    if (le - ls == dl && memcmp(s + ls, hd[h].id, dl) == 0)
                        break;
                }
            }
            nhd = 0;
            continue;
        }
        if (ruby && (c.pos == 0 || s[c.pos - 1] == '\n') && c.pos + 6 <= c.end &&
            memcmp(s + c.pos, "=begin", 6) == 0) {
            /* a block comment, to the line starting with =end */
            while (c.pos < c.end) {
                if (c.pos > 0 && s[c.pos - 1] == '\n' && c.pos + 4 <= c.end &&
                    memcmp(s + c.pos, "=end", 4) == 0)
                    break;
                c.line += s[c.pos++] == '\n';
            }
            while (c.pos < c.end && s[c.pos] != '\n')
                c.pos++;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            c.pos++;
            continue;
        }
        if (ch == '#') {
            while (c.pos < c.end && s[c.pos] != '\n')
                c.pos++;
            continue;
        }
        if (ruby && ch == '<' && c.pos + 2 < c.end && s[c.pos + 1] == '<' &&
            (s[c.pos + 2] == '~' || s[c.pos + 2] == '-' || s[c.pos + 2] == '\'' ||
             s[c.pos + 2] == '"' || (s[c.pos + 2] >= 'A' && s[c.pos + 2] <= 'Z'))) {
            size_t p = c.pos + 2;
            int indent = 0;
            if (s[p] == '~' || s[p] == '-') {
                indent = 1;
                p++;
            }
            char q = (p < c.end && (s[p] == '\'' || s[p] == '"')) ? s[p] : 0;
            if (q)
                p++;
            size_t b = p;
            while (p < c.end && is_ident((unsigned char)s[p]))
                p++;
            if (p > b && p - b < sizeof hd[0].id && (!q || (p < c.end && s[p] == q))) {
                if (nhd >= SX_SCAN_MAX_HEREDOCS) {
                    st->err = 1;
                    break;
                }
                memcpy(hd[nhd].id, s + b, p - b);
                hd[nhd].id[p - b] = '\0';
                hd[nhd].indent = indent;
                nhd++;
                c.pos = q ? p + 1 : p;
                prev_sig = 'a';
                continue;
            }
        }
        if (ruby && ch == '/' && strchr("(,=~!|&{[;\n", prev_sig)) {
            /* a regex literal (kept to its line) */
            c.pos++;
            while (c.pos < c.end && s[c.pos] != '/' && s[c.pos] != '\n')
                c.pos += (s[c.pos] == '\\') ? 2 : 1;
            if (c.pos < c.end && s[c.pos] == '/')
                c.pos++;
            if (c.pos > c.end)
                c.pos = c.end;
            prev_sig = 'a';
            continue;
        }
        if (ruby && ch == '%' && strchr("(,=~!|&{[;\n", prev_sig) == NULL &&
            !(c.pos + 1 < c.end && strchr("qQwWiIxrs", s[c.pos + 1]) && s[c.pos + 1] &&
              c.pos + 2 < c.end && strchr("([{<|!/^", s[c.pos + 2]) && s[c.pos + 2])) {
            c.pos++; /* a modulo */
            prev_sig = '%';
            continue;
        }
        if ((!ruby && is_ident_start((unsigned char)ch) && c.pos + 1 < c.end &&
             strchr("rRbBuUfF", ch) && (s[c.pos + 1] == '\'' || s[c.pos + 1] == '"' ||
                                        (c.pos + 2 < c.end && strchr("rRbBuUfF", s[c.pos + 1]) &&
                                         (s[c.pos + 2] == '\'' || s[c.pos + 2] == '"')))) ||
            ch == '\'' || ch == '"' || (ruby && (ch == '`' || ch == '%'))) {
            size_t line = c.line;
            if (lit_string(&c, &junk, &kind)) {
                if (kind == 'x' && junk.p)
                    scan_shell(st, junk.p, junk.len, line, 1);
                free(junk.p);
                junk = (sbuf){ 0 };
                prev_sig = 'a';
                continue;
            }
            free(junk.p);
            junk = (sbuf){ 0 };
        }
        if (is_ident_start((unsigned char)ch)) {
            if (c.pos > 0 && (s[c.pos - 1] == '.' || s[c.pos - 1] == '$' || s[c.pos - 1] == '@' ||
                              s[c.pos - 1] == ':')) {
                /* a method of something else (x.system), $var, @var, :sym */
                while (c.pos < c.end && is_ident((unsigned char)s[c.pos]))
                    c.pos++;
            } else {
                lang_name(&c);
            }
            prev_sig = 'a';
            continue;
        }
        prev_sig = ch;
        c.pos++;
    }
    free(junk.p);
}

/* ------------------------------------------------------------------ */

int sx_scan(const char *script, size_t len, sx_scan_lang lang, sx_scan_result *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!script)
        return len ? -1 : 0;
    state st = { .res = out, .err = 0 };
    switch (lang) {
    case SX_SCAN_SH:
        if (memchr(script, '\0', len)) {
            /* bash drops NUL bytes from a script: so do we */
            char *copy = malloc(len);
            if (!copy)
                return -1;
            size_t n = 0;
            for (size_t i = 0; i < len; i++)
                if (script[i])
                    copy[n++] = script[i];
            scan_shell(&st, copy, n, 1, 0);
            free(copy);
        } else {
            scan_shell(&st, script, len, 1, 0);
        }
        break;
    case SX_SCAN_PYTHON:
        scan_lang(&st, script, len, 0);
        break;
    case SX_SCAN_RUBY:
        scan_lang(&st, script, len, 1);
        break;
    default:
        return -1;
    }
    return st.err ? -1 : 0;
}

void sx_scan_result_free(sx_scan_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->ncmds; i++) {
        for (size_t j = 0; j < res->cmds[i].nwords; j++)
            free(res->cmds[i].words[j]);
        free(res->cmds[i].words);
    }
    free(res->cmds);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------------ */
/* matching                                                            */

static int word_match(const char *pat, const char *w)
{
    size_t pl = strlen(pat);
    if (pl && pat[pl - 1] == '*')
        return strncmp(pat, w, pl - 1) == 0;
    return strcmp(pat, w) == 0;
}

/* does the command have the option pat (starting with '-')? */
static int has_option(const char *pat, const char *const *words, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp(words[i], "--") == 0)
            break;
        if (strcmp(words[i], pat) == 0)
            return 1;
        if (pat[1] == '-') {
            size_t pl = strlen(pat);
            if (strncmp(words[i], pat, pl) == 0 && words[i][pl] == '=')
                return 1;
        }
    }
    if (pat[1] == '-' || pat[1] == '\0')
        return 0;
    /* a short cluster: every letter somewhere in a short option cluster */
    for (const char *l = pat + 1; *l; l++) {
        int found = 0;
        for (size_t i = 1; i < n && !found; i++) {
            const char *w = words[i];
            if (strcmp(w, "--") == 0)
                break;
            if (w[0] == '-' && w[1] != '-' && w[1] && strchr(w + 1, *l))
                found = 1;
        }
        if (!found)
            return 0;
    }
    return 1;
}

static int regex_compile(regex_t *re, const char *pattern, char *err, size_t errlen)
{
    int rc = regcomp(re, pattern + 6, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        if (err && errlen) {
            char msg[128];
            regerror(rc, re, msg, sizeof msg);
            snprintf(err, errlen, "invalid regex in pattern \"%s\": %s", pattern, msg);
        }
        return -1;
    }
    return 0;
}

int sx_cmd_pattern_check(const char *pattern, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!pattern || !*pattern) {
        if (err && errlen)
            snprintf(err, errlen, "empty command pattern");
        return -1;
    }
    if (strncmp(pattern, "regex:", 6) == 0) {
        regex_t re;
        if (regex_compile(&re, pattern, err, errlen) != 0)
            return -1;
        regfree(&re);
    }
    return 0;
}

int sx_cmd_match(const char *pattern, const char *const *words, size_t n, int *matched)
{
    if (!matched)
        return -1;
    *matched = 0;
    if (!pattern || !*pattern)
        return -1;
    if (strncmp(pattern, "regex:", 6) == 0) {
        regex_t re;
        if (regex_compile(&re, pattern, NULL, 0) != 0)
            return -1;
        size_t total = 1;
        for (size_t i = 0; i < n; i++)
            total += strlen(words[i]) + 1;
        char *line = malloc(total);
        if (!line) {
            regfree(&re);
            return -1;
        }
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (i)
                line[o++] = ' ';
            size_t l = strlen(words[i]);
            memcpy(line + o, words[i], l);
            o += l;
        }
        line[o] = '\0';
        *matched = regexec(&re, line, 0, NULL, 0) == 0;
        free(line);
        regfree(&re);
        return 0;
    }
    if (n == 0)
        return 0;
    /* split the pattern into words */
    char *copy = strdup(pattern);
    if (!copy)
        return -1;
    char *save = NULL;
    char *pw = strtok_r(copy, " \t", &save);
    if (!pw || !word_match(base_name(pw), base_name(words[0]))) {
        free(copy);
        return 0;
    }
    size_t next = 1; /* where the next non-option pattern word is looked for */
    int ok = 1;
    while (ok && (pw = strtok_r(NULL, " \t", &save)) != NULL) {
        if (pw[0] == '-' && pw[1]) {
            ok = has_option(pw, words, n);
        } else {
            while (next < n && strcmp(words[next], pw) != 0)
                next++;
            if (next >= n)
                ok = 0;
            else
                next++;
        }
    }
    free(copy);
    *matched = ok;
    return 0;
}
