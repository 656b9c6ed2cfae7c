/*
 * jwt.h - verify a JSON Web Token (RFC 7519, JWS compact form of RFC 7515)
 * with OpenSSL, for the policy plugin's identity module.
 *
 * One key, one algorithm, fixed by the configuration: the token's header
 * never chooses either.  So "alg": "none", an HS256 token signed with an
 * RSA public key taken as an HMAC secret (algorithm confusion), or any
 * algorithm other than the configured one are refused before any signature
 * is computed.  Accepted: HS256 (shared secret of at least 32 bytes), RS256
 * (RSA public key of at least 2048 bits), ES256 (EC P-256 public key).
 *
 * Error messages say why a token was refused and never contain the token
 * (nor its signature).  Thread-safe: a loaded key is read-only.
 */
#ifndef SX_POLICY_JWT_H
#define SX_POLICY_JWT_H

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "sx/sx_types.h"

#define SX_JWT_MAX_TOKEN 16384          /* longer tokens are refused unparsed */
#define SX_JWT_MIN_SECRET 32            /* HS256: RFC 7518 3.2, key >= hash size */
#define SX_JWT_MIN_RSA_BITS 2048

typedef enum sx_jwt_alg { SX_JWT_HS256 = 1, SX_JWT_RS256, SX_JWT_ES256 } sx_jwt_alg;

typedef struct sx_jwt_key {
    sx_jwt_alg alg;
    unsigned char *secret;      /* HS256, owned; wiped when freed */
    size_t secret_len;
    EVP_PKEY *pkey;             /* RS256 / ES256, owned */
    char desc[96];              /* "RSA 2048-bit public key" (no secret) */
} sx_jwt_key;

/* What is checked besides the signature.  Borrowed by sx_jwt_verify. */
typedef struct sx_jwt_rules {
    const char *issuer;         /* NULL = not checked; else "iss" must equal it */
    const char *audience;       /* NULL = not checked; else "aud" (string or
                                   array) must contain it */
    int64_t clock_skew_s;       /* tolerance for exp, nbf and iat */
    int require_exp;            /* a token without "exp" is refused */
    int64_t max_lifetime_s;     /* 0 = unchecked; else exp - iat (or exp -
                                   now without iat) must not exceed it */
} sx_jwt_rules;

/* "HS256" -> SX_JWT_HS256 ... ; 0 or -1 for any other name (also "none"). */
int sx_jwt_alg_parse(const char *name, sx_jwt_alg *alg);
const char *sx_jwt_alg_name(sx_jwt_alg alg);

/* Load the key for `alg` from `path`: HS256 reads the secret's bytes (one
 * trailing newline is dropped); RS256/ES256 read a PEM public key
 * ("BEGIN PUBLIC KEY") or a PEM certificate.  The key type must fit the
 * algorithm.  Returns 0, or -1 with err (invalid_config) naming the file
 * and the reason.  *key is zeroed first; release with sx_jwt_key_free()
 * (also after failure). */
int sx_jwt_key_load(sx_jwt_key *key, sx_jwt_alg alg, const char *path, sx_error *err);
/* Same from memory (tests, and keys not kept in files). */
int sx_jwt_key_from_secret(sx_jwt_key *key, const void *secret, size_t len, sx_error *err);
int sx_jwt_key_from_pem(sx_jwt_key *key, sx_jwt_alg alg, const char *pem, size_t len,
                        sx_error *err);
void sx_jwt_key_free(sx_jwt_key *key);

/* Verify `token` (NUL-terminated) at time `now` (seconds since the epoch).
 * Returns 0 and *claims (the payload object; caller frees with
 * cJSON_Delete), or -1 with err->code "unauthenticated" and a message
 * that says what was wrong (malformed, algorithm, signature, expired, not
 * yet valid, issued in the future, lifetime, issuer, audience). */
int sx_jwt_verify(const sx_jwt_key *key, const sx_jwt_rules *rules, const char *token,
                  int64_t now, cJSON **claims, sx_error *err);

/* base64url without padding (RFC 7515 2), strict alphabet.  Decode returns
 * the byte count or -1; `out` needs (len * 3) / 4 + 1 bytes.  Encode writes
 * a NUL-terminated string into out (needs (len * 4 + 2) / 3 + 1 bytes) and
 * returns its length.  Exposed for the tests, which build tokens. */
long sx_base64url_decode(const char *in, size_t len, unsigned char *out);
size_t sx_base64url_encode(const unsigned char *in, size_t len, char *out);

#endif
