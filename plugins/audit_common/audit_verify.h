/*
 * audit_verify.h - check the hash chain of audit files (audit_chain.h) and
 * name the first broken link: `sxctl audit verify`.
 *
 * The files are checked as one chain, in the order given.  What is found:
 *   edited     a record's bytes do not match its own hash, a line is not a
 *              chained record, or a record was re-hashed after an edit (the
 *              next record no longer links to it);
 *   deleted    records are missing: a gap in seq that nothing explains;
 *   inserted   a record that the following one skips (it links to the
 *              record before), or a seq that appears twice;
 *   reordered  a record that links to one found later in the files;
 *   truncated  a file ends in the middle of a record, or a rotated file's
 *              last records are missing before the next file begins.
 * Limits (docs/audit.md): removing whole records from the END of the
 * newest file, or rewriting every record from some point on, leaves a
 * consistent chain; the SIEM copy is the defence there.
 */
#ifndef SX_AUDIT_VERIFY_H
#define SX_AUDIT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

typedef enum sx_verify_kind {
    SX_VERIFY_OK = 0,
    SX_VERIFY_EDITED,
    SX_VERIFY_DELETED,
    SX_VERIFY_INSERTED,
    SX_VERIFY_REORDERED,
    SX_VERIFY_TRUNCATED,
    SX_VERIFY_UNREADABLE     /* a file could not be read: not a verdict */
} sx_verify_kind;

typedef struct sx_verify_report {
    sx_verify_kind kind;
    /* the first broken link (kind != OK) */
    char file[4096];
    uint64_t line;             /* 1-based line in `file` */
    uint64_t seq;              /* that line's seq; 0 when it has none */
    char message[1024];        /* what is wrong, for a person */
    /* what was checked */
    uint64_t records;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t recoveries;       /* audit.recovered records: torn writes dropped at start-up */
    int continues;             /* the last record is an audit.rotated: a newer file exists */
} sx_verify_report;

/* "ok", "edited", "deleted", "inserted", "reordered", "truncated", "unreadable". */
const char *sx_verify_kind_name(sx_verify_kind kind);

/* Expand the command line's paths into the files to check, in chain order:
 * a file stays where it is; a directory contributes its regular files whose
 * first line is a chained record (other files are skipped), ordered by
 * their first seq; empty files are skipped.  *files (malloc(3)ed strings in
 * a malloc(3)ed array, free with sx_audit_files_free) and *n.  Returns 0,
 * or -1 with a message in msg (a path that cannot be read). */
int sx_audit_files_expand(const char *const *paths, size_t n_paths, char ***files, size_t *n,
                          char *msg, size_t msg_size);
void sx_audit_files_free(char **files, size_t n);

/* Check `files` (borrowed) as one chain.  Returns 0 when it holds (report
 * filled with the counts), 1 at the first broken link (report says where
 * and what), -1 when a file cannot be read (kind UNREADABLE). */
int sx_audit_verify_files(const char *const *files, size_t n, sx_verify_report *report);

#endif
