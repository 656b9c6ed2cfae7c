/* test_jwt.c - mint tokens and keys for tests (see test_jwt.h). */
#define _POSIX_C_SOURCE 200809L
#include "test_jwt.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

EVP_PKEY *sx_test_rsa_key(int bits)
{
    return EVP_RSA_gen((unsigned)bits);
}

EVP_PKEY *sx_test_ec_key(const char *curve)
{
    return EVP_EC_gen(curve);
}

static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    return out;
}

char *sx_test_public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char *s = bio_text(bio);
    BIO_free(bio);
    return s;
}

char *sx_test_cert_pem(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sx-test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char *s = bio_text(bio);
    BIO_free(bio);
    X509_free(x);
    return s;
}

char *sx_test_b64url(const void *data, size_t len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = malloc(len * 4 / 3 + 4);
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static unsigned char *sign_digest(EVP_PKEY *key, const char *input, size_t *len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = 0;
    unsigned char *sig = NULL;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, NULL, &n, (const unsigned char *)input, strlen(input)) == 1) {
        sig = malloc(n);
        if (EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)) != 1) {
            free(sig);
            sig = NULL;
        }
    }
    EVP_MD_CTX_free(md);
    *len = n;
    return sig;
}

/* DER ECDSA signature -> R || S, 32 bytes each. */
static unsigned char *der_to_raw(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    unsigned char *raw = calloc(1, 64);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
}

char *sx_test_jwt(const char *header_json, const char *payload_json, const char *alg,
                  const void *secret, size_t secret_len, EVP_PKEY *key)
{
    char *h = sx_test_b64url(header_json, strlen(header_json));
    char *p = sx_test_b64url(payload_json, strlen(payload_json));
    size_t in_len = strlen(h) + strlen(p) + 2;
    char *input = malloc(in_len);
    strcpy(input, h);
    strcat(input, ".");
    strcat(input, p);
    free(h);
    free(p);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (strcmp(alg, "HS256") == 0) {
        sig = malloc(EVP_MAX_MD_SIZE);
        unsigned int n = 0;
        HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input),
             sig, &n);
        sig_len = n;
    } else if (strcmp(alg, "RS256") == 0) {
        sig = sign_digest(key, input, &sig_len);
    } else if (strcmp(alg, "ES256") == 0) {
        size_t der_len = 0;
        unsigned char *der = sign_digest(key, input, &der_len);
        sig = der_to_raw(der, der_len);
        sig_len = 64;
        free(der);
    } else if (strcmp(alg, "bad") == 0) {
        sig_len = key ? (size_t)EVP_PKEY_get_size(key) : 32;
        sig = malloc(sig_len);
        memset(sig, 0x5a, sig_len);
    }
    char *s = sig ? sx_test_b64url(sig, sig_len) : strdup("");
    free(sig);
    char *token = malloc(strlen(input) + strlen(s) + 2);
    strcpy(token, input);
    strcat(token, ".");
    strcat(token, s);
    free(input);
    free(s);
    return token;
}

int sx_test_write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}
