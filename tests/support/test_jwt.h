/*
 * test_jwt.h - mint JSON Web Tokens and keys for tests, with OpenSSL,
 * independently of the policy plugin's verifier (plugins/policy/jwt.c).
 */
#ifndef SX_TEST_JWT_H
#define SX_TEST_JWT_H

#include <openssl/evp.h>
#include <stddef.h>

/* Fresh keys (caller frees with EVP_PKEY_free). */
EVP_PKEY *sx_test_rsa_key(int bits);
EVP_PKEY *sx_test_ec_key(const char *curve); /* "P-256", "P-384" */

/* The public half as PEM ("BEGIN PUBLIC KEY"), malloc'ed. */
char *sx_test_public_pem(EVP_PKEY *key);
/* A self-signed certificate for the key, as PEM, malloc'ed. */
char *sx_test_cert_pem(EVP_PKEY *key);

/* header.payload.signature, malloc'ed.  header_json and payload_json are
 * used as written (so tests can send anything).  alg says how to sign:
 * "HS256" with secret/secret_len, "RS256" or "ES256" with key, "none" (an
 * empty signature), "bad" (a signature of the right length made of junk). */
char *sx_test_jwt(const char *header_json, const char *payload_json, const char *alg,
                  const void *secret, size_t secret_len, EVP_PKEY *key);

/* base64url of bytes, malloc'ed. */
char *sx_test_b64url(const void *data, size_t len);

/* Write text to path (mode 0600); 0 or -1. */
int sx_test_write_file(const char *path, const char *text, size_t len);

#endif
