/*
 * test_policy_jwt.c - JWT verification of the policy plugin
 * (plugins/policy/jwt.c): HS256, RS256 and ES256 with keys made here, good
 * tokens and every way a token must be refused.  Tokens are minted by
 * tests/support/test_jwt.c, which does not share code with the verifier.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jwt.h"
#include "test_jwt.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
#define SECRET_LEN (sizeof SECRET - 1)
static const int64_t NOW = 1800000000; /* 2027-01-15 */

static EVP_PKEY *rsa, *ec, *ec384, *rsa_small;
static char *rsa_pem, *ec_pem;

static void keys_setup(void)
{
    rsa = sx_test_rsa_key(2048);
    ec = sx_test_ec_key("P-256");
    ec384 = sx_test_ec_key("P-384");
    rsa_small = sx_test_rsa_key(1024);
    ck_assert_ptr_nonnull(rsa);
    ck_assert_ptr_nonnull(ec);
    rsa_pem = sx_test_public_pem(rsa);
    ec_pem = sx_test_public_pem(ec);
}

static void keys_teardown(void)
{
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec384);
    EVP_PKEY_free(rsa_small);
    free(rsa_pem);
    free(ec_pem);
}

static const sx_jwt_rules RULES = {"https://idp.test", "script-executor", 60, 1, 0};

/* claims text with exp/nbf/iat relative to NOW */
static char *claims(const char *sub, long exp_off, const char *extra)
{
    char *s;
    ck_assert_int_ge(asprintf(&s, "{\"sub\":\"%s\",\"iss\":\"https://idp.test\","
                                  "\"aud\":\"script-executor\",\"iat\":%lld,\"exp\":%lld%s%s}",
                              sub, (long long)NOW - 10, (long long)(NOW + exp_off),
                              extra ? "," : "", extra ? extra : ""), 0);
    return s;
}

static sx_jwt_key hs_key(void)
{
    sx_jwt_key k;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_jwt_key_from_secret(&k, SECRET, SECRET_LEN, &err), 0);
    return k;
}

static sx_jwt_key pem_key(sx_jwt_alg alg, const char *pem)
{
    sx_jwt_key k;
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_jwt_key_from_pem(&k, alg, pem, strlen(pem), &err) == 0, "%s", err.message);
    return k;
}

/* verify and return 0/-1; the message in msg_out */
static int verify(const sx_jwt_key *k, const sx_jwt_rules *rules, const char *token, char *msg_out)
{
    cJSON *c = NULL;
    sx_error err = {{0}, {0}};
    int rv = sx_jwt_verify(k, rules, token, NOW, &c, &err);
    if (rv == 0) {
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(cJSON_GetObjectItem(c, "sub")->valuestring, "alice");
        cJSON_Delete(c);
    } else {
        ck_assert_ptr_null(c);
        ck_assert_str_eq(err.code, "unauthenticated");
        /* a refusal never quotes the token, nor its signature */
        if (strlen(token) > 8)
            ck_assert_ptr_null(strstr(err.message, token));
        const char *sig = strrchr(token, '.');
        if (sig && strlen(sig) > 8)
            ck_assert_ptr_null(strstr(err.message, sig + 1));
    }
    if (msg_out)
        snprintf(msg_out, 1024, "%s", err.message);
    return rv;
}

static void expect_refused(const sx_jwt_key *k, const char *token, const char *why)
{
    char msg[1024];
    ck_assert_int_eq(verify(k, &RULES, token, msg), -1);
    ck_assert_msg(strstr(msg, why) != NULL, "want '%s' in: %s", why, msg);
}

#define HS_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

/* ---------------------------------------------------------------- HS256 */

START_TEST(hs256_good)
{
    sx_jwt_key k = hs_key();
    char *c = claims("alice", 300, "\"groups\":[\"sre\"]");
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    /* no typ is fine too */
    free(t);
    t = sx_test_jwt("{\"alg\":\"HS256\"}", c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(hs256_expired_and_skew)
{
    sx_jwt_key k = hs_key();
    char *c = claims("alice", -120, NULL);
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "expired");
    free(t);
    free(c);
    /* 30 s past exp is within the 60 s skew */
    c = claims("alice", -30, NULL);
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    sx_jwt_rules strict = RULES;
    strict.clock_skew_s = 0;
    char msg[1024];
    ck_assert_int_eq(verify(&k, &strict, t, msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "expired"));
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(hs256_not_yet_valid_and_future_iat)
{
    sx_jwt_key k = hs_key();
    char extra[64];
    snprintf(extra, sizeof extra, "\"nbf\":%lld", (long long)NOW + 600);
    char *c = claims("alice", 3600, extra);
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "not valid before");
    free(t);
    free(c);
    char *f;
    ck_assert_int_ge(asprintf(&f, "{\"sub\":\"alice\",\"iss\":\"https://idp.test\",\"aud\":"
                                  "\"script-executor\",\"iat\":%lld,\"exp\":%lld}",
                              (long long)NOW + 900, (long long)NOW + 3600), 0);
    t = sx_test_jwt(HS_HEADER, f, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "issued in the future");
    free(t);
    free(f);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(hs256_wrong_signature)
{
    sx_jwt_key k = hs_key();
    char *c = claims("alice", 300, NULL);
    static const char other[] = "another-secret-of-more-than-thirty-two-bytes";
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", other, sizeof other - 1, NULL);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    /* a payload changed after signing */
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    char *evil = claims("root", 300, NULL);
    char *evil_b64 = sx_test_b64url(evil, strlen(evil));
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    char *forged;
    ck_assert_int_ge(asprintf(&forged, "%.*s.%s%s", (int)(dot1 - t), t, evil_b64, dot2), 0);
    expect_refused(&k, forged, "signature does not verify");
    /* junk of the right length */
    char *junk = sx_test_jwt(HS_HEADER, c, "bad", NULL, 0, NULL);
    expect_refused(&k, junk, "signature does not verify");
    free(junk);
    free(forged);
    free(evil_b64);
    free(evil);
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(alg_none_refused)
{
    sx_jwt_key k = hs_key();
    char *c = claims("alice", 300, NULL);
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                             "{\"alg\":\"NONE\"}", "{\"typ\":\"JWT\"}", "{\"alg\":\"\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *t = sx_test_jwt(headers[i], c, "none", NULL, 0, NULL);
        char msg[1024];
        ck_assert_int_eq(verify(&k, &RULES, t, msg), -1);
        /* with an empty signature: still refused for the algorithm */
        ck_assert_msg(strstr(msg, "algorithm") || strstr(msg, "alg"), "%s", msg);
        free(t);
        /* and with a valid-looking HMAC appended: the header decides nothing */
        t = sx_test_jwt(headers[i], c, "HS256", SECRET, SECRET_LEN, NULL);
        ck_assert_int_eq(verify(&k, &RULES, t, NULL), -1);
        free(t);
    }
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(wrong_alg_refused)
{
    /* an RS256 key configured: HS256 and ES256 tokens are refused */
    sx_jwt_key k = pem_key(SX_JWT_RS256, rsa_pem);
    char *c = claims("alice", 300, NULL);
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "accepts only RS256");
    free(t);
    t = sx_test_jwt(ES_HEADER, c, "ES256", NULL, 0, ec);
    expect_refused(&k, t, "accepts only RS256");
    free(t);
    t = sx_test_jwt("{\"alg\":\"RS512\"}", c, "RS256", NULL, 0, rsa);
    expect_refused(&k, t, "accepts only RS256");
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(alg_confusion_refused)
{
    /* The classic attack: the RSA public key (public knowledge) used as an
     * HMAC secret, header alg HS256, sent to a service that expects RS256. */
    sx_jwt_key k = pem_key(SX_JWT_RS256, rsa_pem);
    char *c = claims("alice", 300, NULL);
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", rsa_pem, strlen(rsa_pem), NULL);
    expect_refused(&k, t, "accepts only RS256");
    free(t);
    /* the same token with the header claiming RS256 fails the signature */
    t = sx_test_jwt(RS_HEADER, c, "HS256", rsa_pem, strlen(rsa_pem), NULL);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    free(c);
    sx_jwt_key_free(&k);
    /* and a PEM key can never be loaded as an HS256 secret via from_pem */
    sx_jwt_key bad;
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_jwt_key_from_pem(&bad, SX_JWT_HS256, rsa_pem, strlen(rsa_pem), &err), -1);
    sx_jwt_key_free(&bad);
}
END_TEST

START_TEST(issuer_and_audience)
{
    sx_jwt_key k = hs_key();
    char *t;
    char *c = strdup("{\"sub\":\"alice\",\"iss\":\"https://evil.test\",\"aud\":\"script-executor\","
                     "\"exp\":1800000300}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "issuer");
    free(t);
    free(c);
    c = strdup("{\"sub\":\"alice\",\"aud\":\"script-executor\",\"exp\":1800000300}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "no issuer");
    free(t);
    free(c);
    c = strdup("{\"sub\":\"alice\",\"iss\":\"https://idp.test\",\"aud\":\"grafana\","
               "\"exp\":1800000300}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "audience");
    free(t);
    free(c);
    /* aud as an array containing ours is accepted */
    c = strdup("{\"sub\":\"alice\",\"iss\":\"https://idp.test\",\"aud\":[\"grafana\","
               "\"script-executor\"],\"exp\":1800000300}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    free(t);
    free(c);
    /* unchecked when not configured */
    sx_jwt_rules open_rules = {NULL, NULL, 60, 1, 0};
    c = strdup("{\"sub\":\"alice\",\"exp\":1800000300}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &open_rules, t, NULL), 0);
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(exp_required_and_lifetime)
{
    sx_jwt_key k = hs_key();
    char *c = strdup("{\"sub\":\"alice\",\"iss\":\"https://idp.test\",\"aud\":\"script-executor\"}");
    char *t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "no expiry");
    sx_jwt_rules lax = RULES;
    lax.require_exp = 0;
    ck_assert_int_eq(verify(&k, &lax, t, NULL), 0);
    free(t);
    free(c);
    /* a 10-day token against a 1-day maximum */
    c = claims("alice", 10 * 86400, NULL);
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    sx_jwt_rules capped = RULES;
    capped.max_lifetime_s = 86400;
    char msg[1024];
    ck_assert_int_eq(verify(&k, &capped, t, msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "lifetime"));
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    free(t);
    free(c);
    /* non-numeric dates */
    c = strdup("{\"sub\":\"alice\",\"iss\":\"https://idp.test\",\"aud\":\"script-executor\","
               "\"exp\":\"tomorrow\"}");
    t = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    expect_refused(&k, t, "NumericDate");
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(malformed_tokens)
{
    sx_jwt_key k = hs_key();
    char *c = claims("alice", 300, NULL);
    char *good = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "...", "eyJ.eyJ.", "!!!.???.###",
                         "e30.e30.e30" /* {} . {} */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(verify(&k, &RULES, bad[i], NULL), -1);
    /* padding and standard base64 characters are not base64url */
    char *padded;
    ck_assert_int_ge(asprintf(&padded, "%s==", good), 0);
    ck_assert_int_eq(verify(&k, &RULES, padded, NULL), -1);
    free(padded);
    char *plus = strdup(good);
    plus[3] = '+';
    ck_assert_int_eq(verify(&k, &RULES, plus, NULL), -1);
    free(plus);
    /* a header that is not an object, duplicate keys, crit, odd typ */
    const char *headers[] = {"[\"HS256\"]", "{\"alg\":\"HS256\",\"alg\":\"none\"}",
                             "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                             "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", "{\"alg\":\"HS256\"} x",
                             "{\"alg\":HS256}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *t = sx_test_jwt(headers[i], c, "HS256", SECRET, SECRET_LEN, NULL);
        ck_assert_msg(verify(&k, &RULES, t, NULL) == -1, "header %s accepted", headers[i]);
        free(t);
    }
    /* a payload with a duplicate claim, or not an object */
    const char *payloads[] = {"{\"sub\":\"alice\",\"sub\":\"root\",\"exp\":1800000300}", "[]",
                              "\"alice\"", "{\"sub\":\"alice\""};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *t = sx_test_jwt(HS_HEADER, payloads[i], "HS256", SECRET, SECRET_LEN, NULL);
        ck_assert_msg(verify(&k, &RULES, t, NULL) == -1, "payload %s accepted", payloads[i]);
        free(t);
    }
    /* too long */
    char *huge = malloc(SX_JWT_MAX_TOKEN + 10);
    memset(huge, 'a', SX_JWT_MAX_TOKEN + 9);
    huge[SX_JWT_MAX_TOKEN + 9] = '\0';
    huge[10] = '.';
    huge[20] = '.';
    expect_refused(&k, huge, "longer than");
    free(huge);
    free(good);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

/* ------------------------------------------------------- RS256, ES256 */

START_TEST(rs256_good_and_bad)
{
    sx_jwt_key k = pem_key(SX_JWT_RS256, rsa_pem);
    ck_assert_ptr_nonnull(strstr(k.desc, "2048"));
    char *c = claims("alice", 300, NULL);
    char *t = sx_test_jwt(RS_HEADER, c, "RS256", NULL, 0, rsa);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    free(t);
    EVP_PKEY *other = sx_test_rsa_key(2048);
    t = sx_test_jwt(RS_HEADER, c, "RS256", NULL, 0, other);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    t = sx_test_jwt(RS_HEADER, c, "bad", NULL, 0, rsa);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    EVP_PKEY_free(other);
    char *exp = claims("alice", -3600, NULL);
    t = sx_test_jwt(RS_HEADER, exp, "RS256", NULL, 0, rsa);
    expect_refused(&k, t, "expired");
    free(t);
    free(exp);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(es256_good_and_bad)
{
    sx_jwt_key k = pem_key(SX_JWT_ES256, ec_pem);
    char *c = claims("alice", 300, NULL);
    char *t = sx_test_jwt(ES_HEADER, c, "ES256", NULL, 0, ec);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    /* flip a bit of the signature */
    char *sig = strrchr(t, '.') + 5;
    *sig = *sig == 'A' ? 'B' : 'A';
    expect_refused(&k, t, "signature does not verify");
    free(t);
    /* a DER signature (what OpenSSL makes) is not the JWS form */
    EVP_PKEY *other = sx_test_ec_key("P-256");
    t = sx_test_jwt(ES_HEADER, c, "ES256", NULL, 0, other);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    EVP_PKEY_free(other);
    t = sx_test_jwt(ES_HEADER, c, "bad", NULL, 0, ec);
    expect_refused(&k, t, "signature does not verify");
    free(t);
    free(c);
    sx_jwt_key_free(&k);
}
END_TEST

START_TEST(key_loading)
{
    sx_jwt_key k;
    sx_error err = {{0}, {0}};
    /* key types must fit the algorithm */
    ck_assert_int_eq(sx_jwt_key_from_pem(&k, SX_JWT_RS256, ec_pem, strlen(ec_pem), &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "RSA"));
    sx_jwt_key_free(&k);
    ck_assert_int_eq(sx_jwt_key_from_pem(&k, SX_JWT_ES256, rsa_pem, strlen(rsa_pem), &err), -1);
    sx_jwt_key_free(&k);
    char *p384 = sx_test_public_pem(ec384);
    ck_assert_int_eq(sx_jwt_key_from_pem(&k, SX_JWT_ES256, p384, strlen(p384), &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "P-256"));
    sx_jwt_key_free(&k);
    free(p384);
    char *small = sx_test_public_pem(rsa_small);
    ck_assert_int_eq(sx_jwt_key_from_pem(&k, SX_JWT_RS256, small, strlen(small), &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "1024"));
    sx_jwt_key_free(&k);
    free(small);
    ck_assert_int_eq(sx_jwt_key_from_pem(&k, SX_JWT_RS256, "not pem", 7, &err), -1);
    sx_jwt_key_free(&k);
    ck_assert_int_eq(sx_jwt_key_from_secret(&k, "short", 5, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "32"));
    sx_jwt_key_free(&k);
    /* a certificate works as well as a bare public key */
    char *cert = sx_test_cert_pem(rsa);
    k = pem_key(SX_JWT_RS256, cert);
    char *c = claims("alice", 300, NULL);
    char *t = sx_test_jwt(RS_HEADER, c, "RS256", NULL, 0, rsa);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    sx_jwt_key_free(&k);
    free(cert);
    /* from files: the secret's trailing newline is dropped */
    char dir[] = "/tmp/sxjwt-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/secret", dir);
    char text[128];
    snprintf(text, sizeof text, "%s\n", SECRET);
    ck_assert_int_eq(sx_test_write_file(path, text, strlen(text)), 0);
    ck_assert_int_eq(sx_jwt_key_load(&k, SX_JWT_HS256, path, &err), 0);
    char *h = sx_test_jwt(HS_HEADER, c, "HS256", SECRET, SECRET_LEN, NULL);
    ck_assert_int_eq(verify(&k, &RULES, h, NULL), 0);
    free(h);
    sx_jwt_key_free(&k);
    unlink(path);
    snprintf(path, sizeof path, "%s/key.pem", dir);
    ck_assert_int_eq(sx_test_write_file(path, rsa_pem, strlen(rsa_pem)), 0);
    ck_assert_int_eq(sx_jwt_key_load(&k, SX_JWT_RS256, path, &err), 0);
    ck_assert_int_eq(verify(&k, &RULES, t, NULL), 0);
    sx_jwt_key_free(&k);
    unlink(path);
    ck_assert_int_eq(sx_jwt_key_load(&k, SX_JWT_RS256, path, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, path));
    sx_jwt_key_free(&k);
    rmdir(dir);
    free(t);
    free(c);
}
END_TEST

START_TEST(base64url_round_trip)
{
    unsigned char in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= 64; n++) {
        char enc[128];
        size_t elen = sx_base64url_encode(in, n, enc);
        char *ref = sx_test_b64url(in, n);
        ck_assert_str_eq(enc, ref);
        free(ref);
        ck_assert_int_eq(sx_base64url_decode(enc, elen, out), (long)n);
        ck_assert_int_eq(memcmp(in, out, n), 0);
    }
    ck_assert_int_eq(sx_base64url_decode("A", 1, out), -1);
    ck_assert_int_eq(sx_base64url_decode("AB", 2, out), -1);  /* non-canonical bits */
    ck_assert_int_eq(sx_base64url_decode("AA", 2, out), 1);
    ck_assert_int_eq(sx_base64url_decode("A+", 2, out), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("policy_jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, hs256_good);
    tcase_add_test(tc, hs256_expired_and_skew);
    tcase_add_test(tc, hs256_not_yet_valid_and_future_iat);
    tcase_add_test(tc, hs256_wrong_signature);
    tcase_add_test(tc, alg_none_refused);
    tcase_add_test(tc, wrong_alg_refused);
    tcase_add_test(tc, alg_confusion_refused);
    tcase_add_test(tc, issuer_and_audience);
    tcase_add_test(tc, exp_required_and_lifetime);
    tcase_add_test(tc, malformed_tokens);
    tcase_add_test(tc, rs256_good_and_bad);
    tcase_add_test(tc, es256_good_and_bad);
    tcase_add_test(tc, key_loading);
    tcase_add_test(tc, base64url_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sx_check_run(suite());
}
