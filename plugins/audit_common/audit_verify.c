/* audit_verify.c - find the first broken link of an audit hash chain (see audit_verify.h). */
#define _GNU_SOURCE
#include "audit_verify.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit_chain.h"

const char *sx_verify_kind_name(sx_verify_kind kind)
{
    switch (kind) {
    case SX_VERIFY_OK: return "ok";
    case SX_VERIFY_EDITED: return "edited";
    case SX_VERIFY_DELETED: return "deleted";
    case SX_VERIFY_INSERTED: return "inserted";
    case SX_VERIFY_REORDERED: return "reordered";
    case SX_VERIFY_TRUNCATED: return "truncated";
    case SX_VERIFY_UNREADABLE: return "unreadable";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Which files                                                          */
/* ------------------------------------------------------------------ */

typedef struct dfile {
    char *name;
    size_t base_len;        /* name without a ".<digits>" rotation suffix */
    int numbered;
    uint64_t number;
} dfile;

static void split_rotation_suffix(dfile *f)
{
    const char *dot = strrchr(f->name, '.');
    f->base_len = strlen(f->name);
    f->numbered = 0;
    if (dot == NULL || dot[1] == '\0' || dot == f->name)
        return;
    uint64_t n = 0;
    for (const char *p = dot + 1; *p; p++) {
        if (*p < '0' || *p > '9' || n > UINT64_MAX / 10 - 1)
            return;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    f->base_len = (size_t)(dot - f->name);
    f->numbered = 1;
    f->number = n;
}

static int same_base(const dfile *a, const dfile *b)
{
    return a->base_len == b->base_len && memcmp(a->name, b->name, a->base_len) == 0;
}

/* Within one base: numbered files by number, then the unnumbered one. */
static int dfile_cmp(const void *pa, const void *pb)
{
    const dfile *a = pa, *b = pb;
    int c = a->base_len == b->base_len ? memcmp(a->name, b->name, a->base_len)
                                       : strcmp(a->name, b->name);
    if (c != 0 || !same_base(a, b))
        return c != 0 ? c : strcmp(a->name, b->name);
    if (a->numbered != b->numbered)
        return a->numbered ? -1 : 1;
    return a->number < b->number ? -1 : a->number > b->number;
}

/* Does the file start like a chained record? */
static int starts_chained(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return n > 8 && memcmp(buf, "{\"seq\":", 7) == 0 && buf[7] >= '1' && buf[7] <= '9';
}

static int push_file(char ***files, size_t *n, size_t *cap, const char *path)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **p = realloc(*files, nc * sizeof *p);
        if (p == NULL)
            return -1;
        *files = p;
        *cap = nc;
    }
    if (((*files)[*n] = strdup(path)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

static int expand_dir(const char *dir, char ***files, size_t *n, size_t *cap, char *msg,
                      size_t msg_size)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(msg, msg_size, "cannot read directory %s: %s", dir, strerror(errno));
        return -1;
    }
    dfile *all = NULL;
    size_t na = 0, ca = 0;
    int rv = 0;
    struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (na == ca) {
            ca = ca ? ca * 2 : 32;
            dfile *p = realloc(all, ca * sizeof *p);
            if (p == NULL) { rv = -1; break; }
            all = p;
        }
        all[na].name = strdup(de->d_name);
        if (all[na].name == NULL) { rv = -1; break; }
        split_rotation_suffix(&all[na]);
        na++;
    }
    closedir(d);
    if (rv != 0)
        snprintf(msg, msg_size, "out of memory");
    qsort(all, na, sizeof *all, dfile_cmp);
    /* the chain: the one base with a file that starts with a chained record */
    ssize_t chain = -1;
    for (size_t i = 0; rv == 0 && i < na; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, all[i].name);
        if (!starts_chained(path))
            continue;
        if (chain >= 0 && !same_base(&all[chain], &all[i])) {
            snprintf(msg, msg_size,
                     "%s holds more than one audit chain (%.*s and %.*s): give the files", dir,
                     (int)all[chain].base_len, all[chain].name, (int)all[i].base_len,
                     all[i].name);
            rv = -1;
        } else if (chain < 0) {
            chain = (ssize_t)i;
        }
    }
    for (size_t i = 0; rv == 0 && chain >= 0 && i < na; i++) {
        if (!same_base(&all[chain], &all[i]))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, all[i].name);
        if (push_file(files, n, cap, path) != 0) {
            snprintf(msg, msg_size, "out of memory");
            rv = -1;
        }
    }
    if (rv == 0 && chain < 0) {
        snprintf(msg, msg_size, "%s holds no audit file (no file starts with a chained record)",
                 dir);
        rv = -1;
    }
    for (size_t i = 0; i < na; i++)
        free(all[i].name);
    free(all);
    return rv;
}

int sx_audit_files_expand(const char *const *paths, size_t n_paths, char ***files, size_t *n,
                          char *msg, size_t msg_size)
{
    *files = NULL;
    *n = 0;
    size_t cap = 0;
    for (size_t i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            snprintf(msg, msg_size, "cannot read %s: %s", paths[i], strerror(errno));
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            if (expand_dir(paths[i], files, n, &cap, msg, msg_size) != 0)
                goto fail;
        } else if (push_file(files, n, &cap, paths[i]) != 0) {
            snprintf(msg, msg_size, "out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    sx_audit_files_free(*files, *n);
    *files = NULL;
    *n = 0;
    return -1;
}

void sx_audit_files_free(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

/* ------------------------------------------------------------------ */
/* Reading the records                                                  */
/* ------------------------------------------------------------------ */

enum { E_OK, E_MALFORMED, E_INCOMPLETE };

typedef struct vent {
    uint64_t seq;
    uint64_t line;
    uint64_t keeps_from;        /* audit.rotated: "keeps_from_seq" */
    uint64_t bytes;             /* line length */
    uint32_t file;
    uint8_t state;
    uint8_t hash_ok;
    uint8_t rotated;            /* topic audit.rotated */
    uint8_t recovered;          /* topic audit.recovered */
    unsigned char prev[32];
    unsigned char hash[32];
} vent;

typedef struct vctx {
    const char *const *files;
    vent *e;
    size_t n, cap;
    size_t *by_hash;            /* indexes of E_OK entries, sorted by hash */
    size_t n_by_hash;
} vctx;

static void hex_to_bin(const char *hex, unsigned char out[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
}

/* The sink's own records: rotation (with keeps_from_seq) and recovery. */
static void note_sink_record(vent *v, const char *line, size_t len)
{
    if (memmem(line, len, "\"topic\":\"audit.", 15) == NULL)
        return;
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "topic");
    if (cJSON_IsString(t) && strcmp(t->valuestring, "audit.rotated") == 0) {
        v->rotated = 1;
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "keeps_from_seq");
        if (cJSON_IsNumber(k) && k->valuedouble >= 1)
            v->keeps_from = (uint64_t)k->valuedouble;
    } else if (cJSON_IsString(t) && strcmp(t->valuestring, "audit.recovered") == 0) {
        v->recovered = 1;
    }
    cJSON_Delete(o);
}

static int load_file(vctx *v, uint32_t fi, sx_verify_report *r)
{
    FILE *f = fopen(v->files[fi], "r");
    if (f == NULL) {
        r->kind = SX_VERIFY_UNREADABLE;
        snprintf(r->file, sizeof r->file, "%s", v->files[fi]);
        snprintf(r->message, sizeof r->message, "cannot read: %s", strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t got;
    uint64_t line = 0;
    int rv = 0;
    while ((got = getline(&buf, &bcap, f)) > 0) {
        if (v->n == v->cap) {
            size_t nc = v->cap ? v->cap * 2 : 1024;
            vent *p = realloc(v->e, nc * sizeof *p);
            if (p == NULL) { rv = -1; break; }
            v->e = p;
            v->cap = nc;
        }
        vent *e = &v->e[v->n++];
        memset(e, 0, sizeof *e);
        e->file = fi;
        e->line = ++line;
        size_t len = (size_t)got;
        int complete = buf[len - 1] == '\n';
        if (complete)
            len--;
        e->bytes = len;
        sx_chain_entry ce;
        if (!complete) {
            e->state = E_INCOMPLETE;
        } else if (sx_chain_parse(buf, len, &ce) != 0) {
            e->state = E_MALFORMED;
        } else {
            e->state = E_OK;
            e->seq = ce.seq;
            e->hash_ok = (uint8_t)ce.hash_ok;
            hex_to_bin(ce.prev, e->prev);
            hex_to_bin(ce.hash, e->hash);
            if (ce.hash_ok)
                note_sink_record(e, buf, len);
        }
    }
    if (rv == 0 && ferror(f)) {
        rv = -1;
        errno = EIO;
    }
    if (rv != 0) {
        r->kind = SX_VERIFY_UNREADABLE;
        snprintf(r->file, sizeof r->file, "%s", v->files[fi]);
        snprintf(r->message, sizeof r->message, "cannot read: %s", strerror(errno));
    }
    free(buf);
    fclose(f);
    return rv;
}

static int by_hash_cmp(const void *a, const void *b, void *arg)
{
    const vctx *v = arg;
    const vent *x = &v->e[*(const size_t *)a], *y = &v->e[*(const size_t *)b];
    int c = memcmp(x->hash, y->hash, 32);
    return c ? c : (*(const size_t *)a < *(const size_t *)b ? -1 : 1);
}

/* The index of a well-formed record whose hash is `hash`, or -1. */
static ssize_t find_by_hash(const vctx *v, const unsigned char hash[32])
{
    size_t lo = 0, hi = v->n_by_hash;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(v->e[v->by_hash[mid]].hash, hash, 32);
        if (c == 0)
            return (ssize_t)v->by_hash[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Walking the chain                                                    */
/* ------------------------------------------------------------------ */

static int links(const vent *next, const vent *prev)
{
    return next->state == E_OK && prev->state == E_OK && next->hash_ok && prev->hash_ok &&
           memcmp(next->prev, prev->hash, 32) == 0;
}

static int broken(const vctx *v, sx_verify_report *r, sx_verify_kind kind, const vent *at,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int broken(const vctx *v, sx_verify_report *r, sx_verify_kind kind, const vent *at,
                  const char *fmt, ...)
{
    r->kind = kind;
    snprintf(r->file, sizeof r->file, "%s", v->files[at->file]);
    r->line = at->line;
    r->seq = at->state == E_OK ? at->seq : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return 1;
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int walk(const vctx *v, sx_verify_report *r)
{
    static const unsigned char zeros[32];
    uint64_t allowed_start = 1;  /* the oldest seq rotation says is still kept */
    for (size_t i = 0; i < v->n; i++)
        if (v->e[i].rotated && v->e[i].keeps_from > allowed_start)
            allowed_start = v->e[i].keeps_from;
    for (size_t i = 0; i < v->n; i++) {
        const vent *e = &v->e[i];
        const vent *p = i > 0 ? &v->e[i - 1] : NULL;
        const vent *nx = i + 1 < v->n ? &v->e[i + 1] : NULL;
        int skipped = p && nx && links(nx, p); /* the next record links over this line */
        if (e->state == E_INCOMPLETE)
            return broken(v, r, SX_VERIFY_TRUNCATED, e,
                          "the file ends in the middle of a record (%" PRIu64
                          " bytes without a newline): its tail was cut", e->bytes);
        if (e->state == E_MALFORMED)
            return skipped ? broken(v, r, SX_VERIFY_INSERTED, e,
                                    "this line is not a chained record, and the next record "
                                    "links to the one before it: it was inserted")
                           : broken(v, r, SX_VERIFY_EDITED, e,
                                    "this line is not a chained record (%s)",
                                    e->bytes == 0 ? "empty line" : "no seq/prev/hash frame");
        if (!e->hash_ok)
            return skipped ? broken(v, r, SX_VERIFY_INSERTED, e,
                                    "seq %" PRIu64 " does not match its hash and the next record "
                                    "links to the one before it: it was inserted", e->seq)
                           : broken(v, r, SX_VERIFY_EDITED, e,
                                    "seq %" PRIu64 ": the record's content does not match its "
                                    "hash", e->seq);
        if (p == NULL) {
            if (e->seq == 1 && memcmp(e->prev, zeros, 32) != 0)
                return broken(v, r, SX_VERIFY_EDITED, e,
                              "seq 1 must link to the genesis (64 zeros)");
            if (e->seq > allowed_start)
                return broken(v, r, SX_VERIFY_DELETED, e,
                              "the chain starts at seq %" PRIu64 " but records from seq %" PRIu64
                              " on are kept: seq %" PRIu64 "..%" PRIu64
                              " are missing (the oldest file, or the head of the first file; "
                              "give every file of the chain)",
                              e->seq, allowed_start, allowed_start, e->seq - 1);
            continue;
        }
        if (links(e, p)) {
            if (e->seq != p->seq + 1)
                return broken(v, r, SX_VERIFY_EDITED, e,
                              "seq %" PRIu64 " follows seq %" PRIu64 ": renumbered and re-hashed",
                              e->seq, p->seq);
            continue;
        }
        ssize_t j = find_by_hash(v, e->prev);
        if (j > (ssize_t)i) {
            const vent *t = &v->e[j];
            return broken(v, r, SX_VERIFY_REORDERED, e,
                          "seq %" PRIu64 " comes before the record it follows, seq %" PRIu64
                          " (%s line %" PRIu64 "): records were reordered%s",
                          e->seq, t->seq, base(v->files[t->file]), t->line,
                          t->file != e->file ? " (or the files were given out of order)" : "");
        }
        if (skipped)
            return broken(v, r, SX_VERIFY_INSERTED, e,
                          "seq %" PRIu64 " is not part of the chain: the next record links to "
                          "line %" PRIu64 " (seq %" PRIu64 ") before it: it was inserted",
                          e->seq, p->line, p->seq);
        if (j >= 0) {
            const vent *first = &v->e[j + 1];
            return broken(v, r, SX_VERIFY_INSERTED, first,
                          "lines %" PRIu64 "..%" PRIu64 " are not part of the chain: seq %" PRIu64
                          " (%s line %" PRIu64 ") links to seq %" PRIu64 " before them",
                          first->line, p->file == first->file ? p->line : first->line, e->seq,
                          base(v->files[e->file]), e->line, v->e[j].seq);
        }
        if (e->seq > p->seq + 1) {
            if (p->file != e->file && !p->rotated)
                return broken(v, r, SX_VERIFY_TRUNCATED, p,
                              "%s ends at seq %" PRIu64 " without its rotation record and %s "
                              "begins at seq %" PRIu64 ": the tail of %s was cut (seq %" PRIu64
                              "..%" PRIu64 " are missing)",
                              base(v->files[p->file]), p->seq, base(v->files[e->file]), e->seq,
                              base(v->files[p->file]), p->seq + 1, e->seq - 1);
            if (p->file != e->file)
                return broken(v, r, SX_VERIFY_DELETED, e,
                              "seq %" PRIu64 "..%" PRIu64 " are missing between %s and %s: a "
                              "rotated file is missing",
                              p->seq + 1, e->seq - 1, base(v->files[p->file]),
                              base(v->files[e->file]));
            return broken(v, r, SX_VERIFY_DELETED, e,
                          "seq %" PRIu64 "..%" PRIu64 " are missing before this record "
                          "(the previous one is seq %" PRIu64 ", line %" PRIu64 ")",
                          p->seq + 1, e->seq - 1, p->seq, p->line);
        }
        if (e->seq == p->seq + 1)
            return broken(v, r, SX_VERIFY_EDITED, e,
                          "seq %" PRIu64 " does not link to seq %" PRIu64 " (line %" PRIu64
                          "): one of them was edited and re-hashed",
                          e->seq, p->seq, p->line);
        for (size_t k = 0; k < v->n; k++)
            if (k != i && v->e[k].state == E_OK && v->e[k].seq == e->seq)
                return broken(v, r, SX_VERIFY_INSERTED, e,
                              "seq %" PRIu64 " appears twice (also %s line %" PRIu64
                              "): a record was inserted",
                              e->seq, base(v->files[v->e[k].file]), v->e[k].line);
        return broken(v, r, SX_VERIFY_REORDERED, e,
                      "seq %" PRIu64 " comes after seq %" PRIu64 ": records were reordered",
                      e->seq, p->seq);
    }
    return 0;
}

int sx_audit_verify_files(const char *const *files, size_t n, sx_verify_report *r)
{
    memset(r, 0, sizeof *r);
    vctx v = {.files = files};
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = load_file(&v, (uint32_t)i, r);
    if (rv == 0) {
        v.by_hash = malloc((v.n ? v.n : 1) * sizeof *v.by_hash);
        if (v.by_hash == NULL) {
            r->kind = SX_VERIFY_UNREADABLE;
            snprintf(r->message, sizeof r->message, "out of memory");
            rv = -1;
        }
    }
    if (rv == 0) {
        for (size_t i = 0; i < v.n; i++)
            if (v.e[i].state == E_OK && v.e[i].hash_ok)
                v.by_hash[v.n_by_hash++] = i;
        qsort_r(v.by_hash, v.n_by_hash, sizeof *v.by_hash, by_hash_cmp, &v);
        rv = walk(&v, r);
        if (rv == 0) {
            r->kind = SX_VERIFY_OK;
            r->records = v.n;
            if (v.n) {
                r->first_seq = v.e[0].seq;
                r->last_seq = v.e[v.n - 1].seq;
                r->continues = v.e[v.n - 1].rotated;
            }
            for (size_t i = 0; i < v.n; i++)
                r->recoveries += v.e[i].recovered;
        }
    }
    free(v.by_hash);
    free(v.e);
    return rv;
}
