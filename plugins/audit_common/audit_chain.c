/* audit_chain.c - building and parsing hash-chained audit lines (see audit_chain.h). */
#define _POSIX_C_SOURCE 200809L
#include "audit_chain.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_KEY ",\"hash\":\""

void sx_chain_head_genesis(sx_chain_head *head)
{
    head->seq = 0;
    memset(head->hash, '0', SX_CHAIN_HEX_LEN);
    head->hash[SX_CHAIN_HEX_LEN] = '\0';
}

void sx_chain_sha256_hex(const void *data, size_t len, char hex[SX_CHAIN_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(md, 0, sizeof md); /* cannot happen with OpenSSL's built-in SHA-256 */
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[SX_CHAIN_HEX_LEN] = '\0';
}

char *sx_chain_line(sx_chain_head *head, const char *body, size_t *len)
{
    size_t blen = strlen(body);
    if (blen < 2 || body[0] != '{' || body[blen - 1] != '}')
        return NULL;
    const char *members = body + 1;
    size_t mlen = blen - 2;
    char prefix[128];
    int plen = snprintf(prefix, sizeof prefix, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\"",
                        head->seq + 1, head->hash);
    size_t canon = (size_t)plen + (mlen ? 1 + mlen : 0);
    size_t total = canon + SX_CHAIN_SUFFIX_LEN + 1;
    char *line = malloc(total + 1);
    if (line == NULL)
        return NULL;
    memcpy(line, prefix, (size_t)plen);
    if (mlen) {
        line[plen] = ',';
        memcpy(line + plen + 1, members, mlen);
    }
    char hash[SX_CHAIN_HEX_LEN + 1];
    sx_chain_sha256_hex(line, canon, hash);
    snprintf(line + canon, total + 1 - canon, HASH_KEY "%s\"}\n", hash);
    head->seq++;
    memcpy(head->hash, hash, sizeof hash);
    *len = total;
    return line;
}

static int is_hex64(const char *s)
{
    for (int i = 0; i < SX_CHAIN_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int sx_chain_parse(const char *line, size_t len, sx_chain_entry *e)
{
    memset(e, 0, sizeof *e);
    static const char seq_key[] = "{\"seq\":";
    static const char prev_key[] = ",\"prev\":\"";
    size_t k = sizeof seq_key - 1;
    if (len < k + SX_CHAIN_SUFFIX_LEN || memcmp(line, seq_key, k) != 0)
        return -1;
    /* seq: 1..UINT64_MAX, decimal, no leading zero */
    size_t p = k;
    if (p >= len || line[p] < '1' || line[p] > '9')
        return -1;
    uint64_t seq = 0;
    while (p < len && line[p] >= '0' && line[p] <= '9') {
        unsigned d = (unsigned)(line[p] - '0');
        if (seq > (UINT64_MAX - d) / 10)
            return -1;
        seq = seq * 10 + d;
        p++;
    }
    size_t pk = sizeof prev_key - 1;
    if (len - p < pk + SX_CHAIN_HEX_LEN + 1 || memcmp(line + p, prev_key, pk) != 0)
        return -1;
    p += pk;
    if (!is_hex64(line + p) || line[p + SX_CHAIN_HEX_LEN] != '"')
        return -1;
    memcpy(e->prev, line + p, SX_CHAIN_HEX_LEN);
    p += SX_CHAIN_HEX_LEN + 1;
    /* the suffix, after the prefix */
    if (len - p < SX_CHAIN_SUFFIX_LEN)
        return -1;
    size_t canon = len - SX_CHAIN_SUFFIX_LEN;
    const char *suffix = line + canon;
    size_t hk = sizeof HASH_KEY - 1;
    if (memcmp(suffix, HASH_KEY, hk) != 0 || !is_hex64(suffix + hk) ||
        memcmp(suffix + hk + SX_CHAIN_HEX_LEN, "\"}", 2) != 0)
        return -1;
    /* between prefix and suffix: nothing, or "," and members */
    if (canon != p && line[p] != ',')
        return -1;
    e->seq = seq;
    memcpy(e->hash, suffix + hk, SX_CHAIN_HEX_LEN);
    char actual[SX_CHAIN_HEX_LEN + 1];
    sx_chain_sha256_hex(line, canon, actual);
    e->hash_ok = memcmp(actual, e->hash, SX_CHAIN_HEX_LEN) == 0;
    return 0;
}
