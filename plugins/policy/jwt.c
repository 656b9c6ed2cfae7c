/* jwt.c - JSON Web Token verification with OpenSSL (see jwt.h). */
#define _POSIX_C_SOURCE 200809L
#include "jwt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sx/sx_util.h"

#define UNAUTH "unauthenticated"

/* ------------------------------------------------------------------ */
/* base64url                                                            */
/* ------------------------------------------------------------------ */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long sx_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    unsigned long acc = 0;
    int bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    /* the unused low bits of the last character must be zero (canonical) */
    if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0)
        return -1;
    return n;
}

size_t sx_base64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned long acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 0x3f];
    out[o] = '\0';
    return o;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

int sx_jwt_alg_parse(const char *name, sx_jwt_alg *alg)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "HS256") == 0)
        *alg = SX_JWT_HS256;
    else if (strcmp(name, "RS256") == 0)
        *alg = SX_JWT_RS256;
    else if (strcmp(name, "ES256") == 0)
        *alg = SX_JWT_ES256;
    else
        return -1;
    return 0;
}

const char *sx_jwt_alg_name(sx_jwt_alg alg)
{
    switch (alg) {
    case SX_JWT_HS256: return "HS256";
    case SX_JWT_RS256: return "RS256";
    case SX_JWT_ES256: return "ES256";
    }
    return "?";
}

void sx_jwt_key_free(sx_jwt_key *key)
{
    if (key == NULL)
        return;
    if (key->secret) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }
    EVP_PKEY_free(key->pkey);
    memset(key, 0, sizeof *key);
}

int sx_jwt_key_from_secret(sx_jwt_key *key, const void *secret, size_t len, sx_error *err)
{
    memset(key, 0, sizeof *key);
    key->alg = SX_JWT_HS256;
    if (len < SX_JWT_MIN_SECRET)
        return sx_error_set(err, "invalid_config",
                            "the HS256 secret is %zu bytes; at least %d are needed (RFC 7518 "
                            "3.2: a key as long as the hash)", len, SX_JWT_MIN_SECRET);
    key->secret = malloc(len);
    if (key->secret == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    memcpy(key->secret, secret, len);
    key->secret_len = len;
    snprintf(key->desc, sizeof key->desc, "HMAC secret (%zu bytes)", len);
    return 0;
}

/* The key type must fit the algorithm: this is what makes algorithm
 * confusion impossible (an RSA key is never used as an HMAC secret). */
static int check_key_type(sx_jwt_key *key, sx_error *err)
{
    if (key->alg == SX_JWT_RS256) {
        if (!EVP_PKEY_is_a(key->pkey, "RSA"))
            return sx_error_set(err, "invalid_config", "RS256 needs an RSA public key, this is %s",
                                EVP_PKEY_get0_type_name(key->pkey));
        int bits = EVP_PKEY_get_bits(key->pkey);
        if (bits < SX_JWT_MIN_RSA_BITS)
            return sx_error_set(err, "invalid_config",
                                "the RSA key has %d bits; at least %d are needed", bits,
                                SX_JWT_MIN_RSA_BITS);
        snprintf(key->desc, sizeof key->desc, "RSA %d-bit public key", bits);
        return 0;
    }
    if (!EVP_PKEY_is_a(key->pkey, "EC"))
        return sx_error_set(err, "invalid_config", "ES256 needs an EC P-256 public key, this is %s",
                            EVP_PKEY_get0_type_name(key->pkey));
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1 ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
        return sx_error_set(err, "invalid_config",
                            "ES256 needs an EC key on the P-256 curve, this one is on '%s'",
                            group[0] ? group : "an unknown curve");
    snprintf(key->desc, sizeof key->desc, "EC P-256 public key");
    return 0;
}

int sx_jwt_key_from_pem(sx_jwt_key *key, sx_jwt_alg alg, const char *pem, size_t len,
                        sx_error *err)
{
    memset(key, 0, sizeof *key);
    key->alg = alg;
    if (alg == SX_JWT_HS256)
        return sx_error_set(err, "invalid_config", "HS256 takes a secret, not a PEM key");
    if (len > (size_t)1 << 20)
        return sx_error_set(err, "invalid_config", "the PEM text is larger than 1 MiB");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    key->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (key->pkey == NULL) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)len);
        X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        if (cert) {
            key->pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (key->pkey == NULL)
        return sx_error_set(err, "invalid_config",
                            "not a PEM public key (BEGIN PUBLIC KEY) or certificate");
    return check_key_type(key, err);
}

/* Read a whole small file (at most `max` bytes) into a malloc'ed buffer. */
static int read_small_file(const char *path, size_t max, char **out, size_t *len, sx_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sx_error_set(err, "invalid_config", "cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return sx_error_set(err, "invalid_config", bad ? "cannot read %s" : "%s is too large",
                            path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int sx_jwt_key_load(sx_jwt_key *key, sx_jwt_alg alg, const char *path, sx_error *err)
{
    memset(key, 0, sizeof *key);
    key->alg = alg;
    char *text = NULL;
    size_t len = 0;
    if (read_small_file(path, alg == SX_JWT_HS256 ? 4096 : (size_t)1 << 20, &text, &len, err) != 0)
        return -1;
    int rv;
    sx_error inner = {{0}, {0}};
    if (alg == SX_JWT_HS256) {
        size_t n = len;
        if (n > 0 && text[n - 1] == '\n')
            n--;
        if (n > 0 && text[n - 1] == '\r')
            n--;
        rv = sx_jwt_key_from_secret(key, text, n, &inner);
    } else {
        rv = sx_jwt_key_from_pem(key, alg, text, len, &inner);
    }
    OPENSSL_cleanse(text, len);
    free(text);
    if (rv != 0)
        return sx_error_set(err, inner.code, "%s: %s", path, inner.message);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Verification                                                         */
/* ------------------------------------------------------------------ */

/* ES256 signatures are R || S (32 bytes each); OpenSSL wants DER. */
static int es256_to_der(const unsigned char *sig, size_t len, unsigned char **der, int *der_len)
{
    if (len != 64)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    *der = NULL;
    *der_len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return *der_len > 0 ? 0 : -1;
}

static int signature_ok(const sx_jwt_key *key, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    if (key->alg == SX_JWT_HS256) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        if (HMAC(EVP_sha256(), key->secret, (int)key->secret_len, (const unsigned char *)input,
                 input_len, mac, &mac_len) == NULL)
            return 0;
        int ok = sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
        OPENSSL_cleanse(mac, sizeof mac);
        return ok;
    }
    unsigned char *der = NULL;
    int der_len = 0;
    const unsigned char *check = sig;
    size_t check_len = sig_len;
    if (key->alg == SX_JWT_ES256) {
        if (es256_to_der(sig, sig_len, &der, &der_len) != 0)
            return 0;
        check = der;
        check_len = (size_t)der_len;
    } else if ((int)sig_len != EVP_PKEY_get_size(key->pkey)) {
        return 0;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL &&
             EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
             EVP_DigestVerify(md, check, check_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

/* A JSON object with no member named twice (two parsers could otherwise
 * read two different tokens from one text). */
static cJSON *parse_object(const unsigned char *text, size_t len)
{
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts((const char *)text, len, &end, 0);
    if (!cJSON_IsObject(o) || end == NULL || (size_t)(end - (const char *)text) != len) {
        cJSON_Delete(o);
        return NULL;
    }
    for (const cJSON *a = o->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0) {
                cJSON_Delete(o);
                return NULL;
            }
    return o;
}

static cJSON *decode_part(const char *part, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL)
        return NULL;
    long n = sx_base64url_decode(part, len, buf);
    cJSON *o = n > 0 ? parse_object(buf, (size_t)n) : NULL;
    free(buf);
    return o;
}

/* A NumericDate claim: absent (0, *present = 0), a finite number within
 * range (0), or anything else (-1). */
static int numeric_date(const cJSON *claims, const char *name, int64_t *value, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > 253402300799.0 /* 9999-12-31 */)
        return -1;
    *value = (int64_t)floor(v->valuedouble);
    return 0;
}

static const char *utc(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%lld", (long long)t);
    return buf;
}

/* A claim's value for a message: printable ASCII, at most 48 characters
 * (then "..."). buf needs at least 52 bytes. */
static const char *shown(const char *s, char *buf, size_t size)
{
    size_t o = 0, i = 0;
    for (; s[i] && i < 48 && o + 4 < size; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i])
        memcpy(buf + o, "...", 3), o += 3;
    buf[o] = '\0';
    return buf;
}

static int audience_ok(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud))
        return 0;
    for (const cJSON *a = aud->child; a; a = a->next)
        if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0)
            return 1;
    return 0;
}

static int check_claims(const sx_jwt_rules *rules, const cJSON *claims, int64_t now,
                        sx_error *err)
{
    int64_t exp = 0, nbf = 0, iat = 0, skew = rules->clock_skew_s;
    int has_exp, has_nbf, has_iat;
    char when[40], buf[80];
    if (numeric_date(claims, "exp", &exp, &has_exp) != 0 ||
        numeric_date(claims, "nbf", &nbf, &has_nbf) != 0 ||
        numeric_date(claims, "iat", &iat, &has_iat) != 0)
        return sx_error_set(err, UNAUTH, "token rejected: exp, nbf and iat must be NumericDates "
                                         "(seconds since the epoch)");
    if (!has_exp && rules->require_exp)
        return sx_error_set(err, UNAUTH, "token rejected: it has no expiry (exp), which is required");
    if (has_exp && now >= exp + skew)
        return sx_error_set(err, UNAUTH, "token expired at %s (%llds ago)", utc(exp, when, sizeof when),
                            (long long)(now - exp));
    if (has_nbf && now + skew < nbf)
        return sx_error_set(err, UNAUTH, "token not valid before %s (%llds from now)",
                            utc(nbf, when, sizeof when), (long long)(nbf - now));
    if (has_iat && iat > now + skew)
        return sx_error_set(err, UNAUTH, "token issued in the future (iat %s, %llds from now)",
                            utc(iat, when, sizeof when), (long long)(iat - now));
    if (rules->max_lifetime_s > 0 && has_exp) {
        int64_t from = has_iat ? iat : now;
        if (exp - from > rules->max_lifetime_s)
            return sx_error_set(err, UNAUTH,
                                "token lifetime %llds exceeds the accepted maximum of %llds",
                                (long long)(exp - from), (long long)rules->max_lifetime_s);
    }
    if (rules->issuer) {
        const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
        if (!cJSON_IsString(iss))
            return sx_error_set(err, UNAUTH, "token rejected: no issuer (iss); expected '%s'",
                                rules->issuer);
        if (strcmp(iss->valuestring, rules->issuer) != 0)
            return sx_error_set(err, UNAUTH, "token issuer '%s' is not the expected '%s'",
                                shown(iss->valuestring, buf, sizeof buf), rules->issuer);
    }
    if (rules->audience &&
        !audience_ok(cJSON_GetObjectItemCaseSensitive(claims, "aud"), rules->audience))
        return sx_error_set(err, UNAUTH, "token audience (aud) does not include '%s'",
                            rules->audience);
    return 0;
}

int sx_jwt_verify(const sx_jwt_key *key, const sx_jwt_rules *rules, const char *token,
                  int64_t now, cJSON **claims, sx_error *err)
{
    *claims = NULL;
    if (token == NULL || token[0] == '\0')
        return sx_error_set(err, UNAUTH, "empty token");
    size_t len = strnlen(token, SX_JWT_MAX_TOKEN + 1);
    if (len > SX_JWT_MAX_TOKEN)
        return sx_error_set(err, UNAUTH, "token longer than %d bytes", SX_JWT_MAX_TOKEN);
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
        return sx_error_set(err, UNAUTH,
                            "malformed token: a JWT is three base64url parts separated by dots "
                            "(JWS compact form; JWE is not accepted)");

    cJSON *header = decode_part(token, (size_t)(dot1 - token));
    if (header == NULL)
        return sx_error_set(err, UNAUTH, "malformed token: the header is not base64url JSON");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    const char *want = sx_jwt_alg_name(key->alg);
    char buf[80];
    int rv = 0;
    if (!cJSON_IsString(alg))
        rv = sx_error_set(err, UNAUTH, "malformed token: the header has no algorithm (alg)");
    else if (strcmp(alg->valuestring, want) != 0)
        rv = sx_error_set(err, UNAUTH, "token algorithm '%s' is not accepted: this service "
                                       "accepts only %s%s",
                          shown(alg->valuestring, buf, sizeof buf), want,
                          strcasecmp(alg->valuestring, "none") == 0 ? " (unsigned tokens are "
                                                                      "never accepted)" : "");
    else if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL)
        rv = sx_error_set(err, UNAUTH, "token header has critical extensions (crit), which are "
                                       "not supported");
    else if (typ != NULL && (!cJSON_IsString(typ) || (strcasecmp(typ->valuestring, "JWT") != 0 &&
                                                     strcasecmp(typ->valuestring, "at+jwt") != 0)))
        rv = sx_error_set(err, UNAUTH, "token type (typ) must be JWT");
    cJSON_Delete(header);
    if (rv != 0)
        return -1;

    size_t sig_b64 = len - (size_t)(dot2 + 1 - token);
    unsigned char *sig = malloc(sig_b64 * 3 / 4 + 1);
    if (sig == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    long sig_len = sx_base64url_decode(dot2 + 1, sig_b64, sig);
    int good = sig_len > 0 && signature_ok(key, token, (size_t)(dot2 - token), sig, (size_t)sig_len);
    free(sig);
    if (sig_len <= 0)
        return sx_error_set(err, UNAUTH, "malformed token: the signature is missing or not base64url");
    if (!good)
        return sx_error_set(err, UNAUTH, "token signature does not verify with the configured %s "
                                         "key", want);

    cJSON *payload = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (payload == NULL)
        return sx_error_set(err, UNAUTH, "malformed token: the payload is not a base64url JSON object");
    if (check_claims(rules, payload, now, err) != 0) {
        cJSON_Delete(payload);
        return -1;
    }
    *claims = payload;
    return 0;
}
