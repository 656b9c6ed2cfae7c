/*
 * sx_audit_cmd.c - `sxctl audit verify FILE|DIR...`: check the hash chain of
 * audit_file's files offline (plugins/audit_common/audit_verify.h).
 *
 * Exit status: 0 the chain holds; 1 a broken link (printed: file, line,
 * seq, kind, what is wrong); 2 usage; 3 a file cannot be read.
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_verify.h"
#include "sx_commands.h"

#define EXIT_UNREADABLE 3

static void print_json(const sx_verify_report *r, char **files, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", r->kind == SX_VERIFY_OK);
    cJSON_AddStringToObject(o, "kind", sx_verify_kind_name(r->kind));
    cJSON *fl = cJSON_AddArrayToObject(o, "files");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(fl, cJSON_CreateString(files[i]));
    if (r->kind == SX_VERIFY_OK) {
        cJSON_AddNumberToObject(o, "records", (double)r->records);
        cJSON_AddNumberToObject(o, "first_seq", (double)r->first_seq);
        cJSON_AddNumberToObject(o, "last_seq", (double)r->last_seq);
        cJSON_AddNumberToObject(o, "recoveries", (double)r->recoveries);
        cJSON_AddBoolToObject(o, "continues", r->continues);
    } else {
        cJSON_AddStringToObject(o, "file", r->file);
        cJSON_AddNumberToObject(o, "line", (double)r->line);
        cJSON_AddNumberToObject(o, "seq", (double)r->seq);
        cJSON_AddStringToObject(o, "message", r->message);
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
}

static void print_text(const sx_verify_report *r, size_t n)
{
    if (r->kind == SX_VERIFY_OK) {
        printf("OK: %" PRIu64 " records", r->records);
        if (r->records)
            printf(" (seq %" PRIu64 "..%" PRIu64 ")", r->first_seq, r->last_seq);
        printf(" in %zu file%s\n", n, n == 1 ? "" : "s");
        if (r->recoveries)
            printf("note: %" PRIu64 " audit.recovered record%s: an incomplete record cut by a "
                   "crash was removed at start-up\n",
                   r->recoveries, r->recoveries == 1 ? "" : "s");
        if (r->continues)
            printf("note: the last record is a rotation: the chain continues in a newer file "
                   "not given here\n");
        return;
    }
    if (r->kind == SX_VERIFY_UNREADABLE) {
        fprintf(stderr, "sxctl: %s%s%s\n", r->file, r->file[0] ? ": " : "", r->message);
        return;
    }
    printf("BROKEN: %s line %" PRIu64, r->file, r->line);
    if (r->seq)
        printf(" (seq %" PRIu64 ")", r->seq);
    printf(": %s: %s\n", sx_verify_kind_name(r->kind), r->message);
}

int sx_cmd_audit(const sx_opts *o)
{
    if (strcmp(o->args.v[0], "verify") != 0) {
        fprintf(stderr, "sxctl: unknown audit command '%s' (known: verify)\n"
                        "Try 'sxctl --help'.\n", o->args.v[0]);
        return SX_EXIT_USAGE;
    }
    char **files = NULL;
    size_t n = 0;
    char msg[1024];
    if (sx_audit_files_expand(o->args.v + 1, o->args.n - 1, &files, &n, msg, sizeof msg) != 0) {
        fprintf(stderr, "sxctl: %s\n", msg);
        return EXIT_UNREADABLE;
    }
    sx_verify_report *r = malloc(sizeof *r);
    if (r == NULL) {
        sx_audit_files_free(files, n);
        fputs("sxctl: out of memory\n", stderr);
        return SX_EXIT_FAIL;
    }
    int rv = sx_audit_verify_files((const char *const *)files, n, r);
    if (o->json)
        print_json(r, files, n);
    else
        print_text(r, n);
    sx_audit_files_free(files, n);
    free(r);
    return rv == 0 ? SX_EXIT_OK : rv > 0 ? SX_EXIT_FAIL : EXIT_UNREADABLE;
}
