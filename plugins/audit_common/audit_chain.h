/*
 * audit_chain.h - the SHA-256 hash chain of the audit file (docs/audit.md,
 * "The hash chain").
 *
 * Each line of the file is one JSON object:
 *
 *     {"seq":N,"prev":"<64 hex>",<the record's members>,"hash":"<64 hex>"}\n
 *
 *   seq   1, 2, 3, ... with no gap, across rotated files and host restarts;
 *   prev  the "hash" of the record with seq N-1 (64 "0" for seq 1);
 *   hash  SHA-256, lowercase hex, of the line's CANONICAL BYTES: every byte
 *         of the line before the final `,"hash":"` - that is, from the
 *         opening `{` up to and including the last byte of the last member
 *         before "hash".  The line ends with `,"hash":"<64 hex>"}` and "\n".
 *
 * So editing any byte of a record breaks its own hash; deleting, inserting
 * or moving a record breaks the next record's "prev" (and "seq"); cutting
 * the file leaves an incomplete line or a gap to the next file.  Hashing the
 * bytes as written needs no JSON canonicalisation: a verifier re-hashes what
 * it reads.
 */
#ifndef SX_AUDIT_CHAIN_H
#define SX_AUDIT_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define SX_CHAIN_HEX_LEN 64
/* `,"hash":"` + 64 hex + `"}` */
#define SX_CHAIN_SUFFIX_LEN 75

/* The end of a chain: the last record's seq and hash; seq 0 with 64 "0"
 * is the empty chain (the next record is seq 1). */
typedef struct sx_chain_head {
    uint64_t seq;
    char hash[SX_CHAIN_HEX_LEN + 1];
} sx_chain_head;

/* The empty chain. */
void sx_chain_head_genesis(sx_chain_head *head);

/* SHA-256 of data as 64 lowercase hex digits and a NUL. */
void sx_chain_sha256_hex(const void *data, size_t len, char hex[SX_CHAIN_HEX_LEN + 1]);

/* The line of the record that follows `head`: body is a JSON object text
 * ("{...}", borrowed) whose members become the record's members after seq
 * and prev; it must not contain "seq", "prev" or "hash" itself.  Returns
 * the line with its newline (malloc(3)ed, *len bytes, NUL after them) and
 * advances *head to it; NULL when body is not "{...}" or memory ran out
 * (head unchanged). */
char *sx_chain_line(sx_chain_head *head, const char *body, size_t *len);

/* One line as read back (without its newline). */
typedef struct sx_chain_entry {
    uint64_t seq;
    char prev[SX_CHAIN_HEX_LEN + 1];
    char hash[SX_CHAIN_HEX_LEN + 1];  /* as written in the line */
    int hash_ok;                      /* the canonical bytes hash to `hash` */
} sx_chain_entry;

/* Parse a line of `len` bytes (no newline).  Returns 0 when it has the
 * chain's shape (prefix {"seq":N,"prev":"..."} and the hash suffix), with
 * e->hash_ok telling whether its content matches its hash; -1 when it is
 * not a chained record at all.  The JSON in between is not parsed here. */
int sx_chain_parse(const char *line, size_t len, sx_chain_entry *e);

#endif
