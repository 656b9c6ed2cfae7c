/*
 * test_http_routes.c - the HTTP route table and request-target helpers
 * (host/http_routes.c): conflicts, matching, 404/405, HEAD, prefixes,
 * percent-decoding, listen addresses.
 */
#include <check.h>
#include "sx_check_main.h"
#include <string.h>

#include "http_routes.h"

static int handler_a(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req, (void)resp;
    return 0;
}

static int handler_b(void *arg, const sx_http_request *req, sx_http_response *resp)
{
    (void)arg, (void)req, (void)resp;
    return 0;
}

static sx_route_table T;

static void setup(void) { memset(&T, 0, sizeof T); }
static void teardown(void) { sx_routes_free(&T); }

static void add_ok(const char *owner, const char *method, const char *path, sx_http_handler h)
{
    sx_error err = {{0}, {0}};
    ck_assert_msg(sx_routes_add(&T, owner, method, path, h, NULL, &err) == 0, "%s %s: %s",
                  method ? method : "*", path, err.message);
}

START_TEST(conflicts_are_refused_with_the_owner)
{
    add_ok("metrics", "GET", "/metrics", handler_a);
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_routes_add(&T, "other", "GET", "/metrics", handler_b, NULL, &err), -1);
    ck_assert_str_eq(err.code, "invalid_config");
    ck_assert_ptr_nonnull(strstr(err.message, "metrics"));
    /* "any method" overlaps every method */
    ck_assert_int_eq(sx_routes_add(&T, "other", NULL, "/metrics", handler_b, NULL, &err), -1);
    /* another method on the same path is fine, and so is a prefix of it */
    add_ok("other", "POST", "/metrics", handler_b);
    add_ok("other", "GET", "/metrics/", handler_b);
    ck_assert_uint_eq(T.n, 3);
}
END_TEST

START_TEST(bad_paths_and_methods_are_refused)
{
    static const char *const paths[] = {"", "metrics", "/a b", "/a?b", "/a#b", "/a%20", "//x",
                                        "/a/../b", "/./a", "/a/.", "/a/..", NULL};
    sx_error err = {{0}, {0}};
    for (const char *const *p = paths; *p; p++) {
        ck_assert_msg(sx_routes_add(&T, "x", "GET", *p, handler_a, NULL, &err) == -1,
                      "path '%s' was accepted", *p);
        ck_assert_str_eq(err.code, "invalid_config");
    }
    ck_assert_int_eq(sx_routes_add(&T, "x", "get", "/ok", handler_a, NULL, &err), -1);
    ck_assert_int_eq(sx_routes_add(&T, "x", "G E T", "/ok", handler_a, NULL, &err), -1);
    ck_assert_int_eq(sx_routes_add(&T, "x", "GET", NULL, handler_a, NULL, &err), -1);
    ck_assert_int_eq(sx_routes_add(&T, "x", "GET", "/ok", NULL, NULL, &err), -1);
    ck_assert_uint_eq(T.n, 0);
}
END_TEST

START_TEST(match_exact_prefix_and_methods)
{
    add_ok("host", "GET", "/healthz", handler_a);
    add_ok("approvals", NULL, "/api/v1/approvals/", handler_b);
    add_ok("deep", "POST", "/api/v1/approvals/special/", handler_a);
    const sx_route *r = NULL;
    char allow[64];
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/healthz", &r, allow, sizeof allow), SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "host");
    /* HEAD is served by a GET route */
    ck_assert_int_eq(sx_routes_match(&T, "HEAD", "/healthz", &r, allow, sizeof allow), SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "host");
    /* the path exists, the method does not: 405 with Allow */
    ck_assert_int_eq(sx_routes_match(&T, "POST", "/healthz", &r, allow, sizeof allow),
                     SX_ROUTE_BAD_METHOD);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(allow, "GET, HEAD");
    /* exact paths do not match below themselves */
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/healthz/x", &r, allow, sizeof allow),
                     SX_ROUTE_NOT_FOUND);
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/nothing", &r, NULL, 0), SX_ROUTE_NOT_FOUND);
    /* a prefix takes itself, itself without the '/', and everything below */
    ck_assert_int_eq(sx_routes_match(&T, "DELETE", "/api/v1/approvals/a/b", &r, NULL, 0),
                     SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "approvals");
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/api/v1/approvals", &r, NULL, 0), SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "approvals");
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/api/v1/approvalsX", &r, NULL, 0),
                     SX_ROUTE_NOT_FOUND);
    /* the longest prefix wins, and its method decides */
    ck_assert_int_eq(sx_routes_match(&T, "POST", "/api/v1/approvals/special/x", &r, NULL, 0),
                     SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "deep");
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/api/v1/approvals/special/x", &r, allow,
                                     sizeof allow), SX_ROUTE_BAD_METHOD);
    ck_assert_str_eq(allow, "POST");
}
END_TEST

START_TEST(exact_wins_over_prefix)
{
    add_ok("prefix", "GET", "/a/", handler_a);
    add_ok("exact", "GET", "/a/b", handler_b);
    const sx_route *r = NULL;
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/a/b", &r, NULL, 0), SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "exact");
    ck_assert_int_eq(sx_routes_match(&T, "GET", "/a/c", &r, NULL, 0), SX_ROUTE_FOUND);
    ck_assert_str_eq(r->owner, "prefix");
}
END_TEST

START_TEST(split_target_decodes_and_refuses)
{
    char path[SX_HTTP_PATH_MAX + 1];
    const char *query, *why = NULL;
    ck_assert_int_eq(sx_http_split_target("/a%20b/c%2Fd?x=1&y=%20", path, &query, &why), 0);
    ck_assert_str_eq(path, "/a b/c/d");
    ck_assert_str_eq(query, "x=1&y=%20"); /* the query stays raw */
    ck_assert_int_eq(sx_http_split_target("/metrics", path, &query, &why), 0);
    ck_assert_str_eq(path, "/metrics");
    ck_assert_str_eq(query, "");
    ck_assert_int_eq(sx_http_split_target("http://host:9/x/y?q", path, &query, &why), 0);
    ck_assert_str_eq(path, "/x/y");
    ck_assert_str_eq(query, "q");
    static const char *const bad[] = {"x", "/a%", "/a%2", "/a%zz", "/a%00b", "/a%0a", "/a/../b",
                                      "/a/%2e%2e/b", "/.", NULL};
    for (const char *const *b = bad; *b; b++) {
        why = NULL;
        ck_assert_msg(sx_http_split_target(*b, path, &query, &why) == -1, "'%s' accepted", *b);
        ck_assert_ptr_nonnull(why);
    }
    char long_target[SX_HTTP_PATH_MAX + 10];
    memset(long_target, 'a', sizeof long_target - 1);
    long_target[0] = '/';
    long_target[sizeof long_target - 1] = '\0';
    ck_assert_int_eq(sx_http_split_target(long_target, path, &query, &why), -1);
}
END_TEST

START_TEST(listen_addresses)
{
    char canon[300];
    sx_error err = {{0}, {0}};
    ck_assert_int_eq(sx_http_listen_canon("http://0.0.0.0:8080", canon, sizeof canon, &err), 0);
    ck_assert_str_eq(canon, "http://0.0.0.0:8080");
    ck_assert_int_eq(sx_http_listen_canon("HTTP://127.0.0.1:0/", canon, sizeof canon, &err), 0);
    ck_assert_str_eq(canon, "http://127.0.0.1:0");
    ck_assert_int_eq(sx_http_listen_canon("http://[::1]:9090", canon, sizeof canon, &err), 0);
    ck_assert_str_eq(canon, "http://[::1]:9090");
    static const char *const bad[] = {"", "0.0.0.0:8080", "tcp://0.0.0.0:8080", "http://0.0.0.0",
                                      "http://:80", "http://h:65536", "http://h:80/x",
                                      "http://h:-1", "http://h:8x", "http://a b:80",
                                      "https://h:443", NULL};
    for (const char *const *b = bad; *b; b++) {
        ck_assert_msg(sx_http_listen_canon(*b, canon, sizeof canon, &err) == -1, "'%s' accepted",
                      *b);
        ck_assert_str_eq(err.code, "invalid_config");
    }
    sx_http_listen_canon("https://h:443", canon, sizeof canon, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "TLS"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_routes");
    TCase *tc = tcase_create("routes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, conflicts_are_refused_with_the_owner);
    tcase_add_test(tc, bad_paths_and_methods_are_refused);
    tcase_add_test(tc, match_exact_prefix_and_methods);
    tcase_add_test(tc, exact_wins_over_prefix);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("targets");
    tcase_add_test(tt, split_target_decodes_and_refuses);
    tcase_add_test(tt, listen_addresses);
    suite_add_tcase(s, tt);
    return sx_check_run(s);
}
