/* test_loader.c - the plugin loader's ABI gate and every way loading fails. */
#include <check.h>
#include "sx_check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

static struct sx_plugin_ctx *load(const char *name, sx_error *err, int *rv)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.so", SX_FIXTURE_DIR, name);
    struct sx_plugin_ctx *p = NULL;
    memset(err, 0, sizeof *err);
    *rv = sx_plugin_open(path, &p, err);
    return p;
}

START_TEST(current_abi_loads)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_current", &err, &rv);
    ck_assert_int_eq(rv, 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->desc->name, "fx_current");
    ck_assert_uint_eq(p->desc->abi_minor, SX_ABI_MINOR);
    sx_plugin_close(p);
}
END_TEST

START_TEST(older_minor_loads)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_older_minor", &err, &rv);
    ck_assert_msg(rv == 0, "older minor refused: %s", err.message);
    ck_assert_uint_eq(p->desc->abi_minor, 0);
    ck_assert_uint_lt(p->desc->abi_minor, SX_ABI_MINOR);
    sx_plugin_close(p);
}
END_TEST

START_TEST(newer_minor_refused)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_newer_minor", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.code, "plugin_abi_mismatch");
    ck_assert_ptr_nonnull(strstr(err.message, "fx_newer_minor.so"));
    ck_assert_ptr_nonnull(strstr(err.message, "ABI 1.2"));
    ck_assert_ptr_nonnull(strstr(err.message, "ABI 1.1"));
    ck_assert_ptr_nonnull(strstr(err.message, "newer"));
}
END_TEST

START_TEST(other_major_refused)
{
    sx_error err;
    int rv;
    struct sx_plugin_ctx *p = load("fx_other_major", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.code, "plugin_abi_mismatch");
    ck_assert_ptr_nonnull(strstr(err.message, "fx_other_major.so"));
    ck_assert_ptr_nonnull(strstr(err.message, "ABI 2.0"));
    ck_assert_ptr_nonnull(strstr(err.message, "major"));
}
END_TEST

START_TEST(missing_file)
{
    sx_error err;
    int rv;
    load("fx_does_not_exist", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_not_found");
    ck_assert_ptr_nonnull(strstr(err.message, "fx_does_not_exist.so"));
}
END_TEST

START_TEST(not_elf)
{
    sx_error err;
    int rv;
    load("fx_not_elf", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_ptr_nonnull(strstr(err.message, "cannot load"));
}
END_TEST

START_TEST(no_entry_symbol)
{
    sx_error err;
    int rv;
    load("fx_no_entry", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_ptr_nonnull(strstr(err.message, "sx_plugin_entry"));
}
END_TEST

START_TEST(null_required_op)
{
    sx_error err;
    int rv;
    load("fx_null_op", &err, &rv);
    ck_assert_int_eq(rv, -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_ptr_nonnull(strstr(err.message, "'write' is NULL"));
}
END_TEST

START_TEST(abi_check_truncated_descriptor)
{
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = 0, .struct_size = 8};
    sx_error err;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "x.so", &err), -1);
    ck_assert_str_eq(err.code, "plugin_invalid");
    ck_assert_int_eq(sx_plugin_abi_check(NULL, "x.so", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "NULL"));
}
END_TEST

START_TEST(abi_check_reserved_kind)
{
    static const uint32_t ops_size = 64;
    sx_plugin_descriptor d = {.abi_major = SX_ABI_MAJOR, .abi_minor = SX_ABI_MINOR,
                              .struct_size = sizeof d, .name = "a", .version = "1",
                              .provides = "p", .kind = SX_KIND_APPROVAL, .ops = &ops_size};
    sx_error err;
    ck_assert_int_eq(sx_plugin_abi_check(&d, "a.so", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "approval"));
}
END_TEST

START_TEST(real_plugins_pass_gate)
{
    const char *names[] = {"script_run", "audit_file", "backend_fake"};
    for (size_t i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.so", SX_PLUGIN_DIR, names[i]);
        struct sx_plugin_ctx *p = NULL;
        sx_error err;
        ck_assert_msg(sx_plugin_open(path, &p, &err) == 0, "%s: %s", path, err.message);
        ck_assert_str_eq(p->desc->name, names[i]);
        sx_plugin_close(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *abi = tcase_create("abi");
    tcase_add_test(abi, current_abi_loads);
    tcase_add_test(abi, older_minor_loads);
    tcase_add_test(abi, newer_minor_refused);
    tcase_add_test(abi, other_major_refused);
    tcase_add_test(abi, abi_check_truncated_descriptor);
    tcase_add_test(abi, abi_check_reserved_kind);
    tcase_add_test(abi, real_plugins_pass_gate);
    suite_add_tcase(s, abi);
    TCase *fail = tcase_create("failures");
    tcase_add_test(fail, missing_file);
    tcase_add_test(fail, not_elf);
    tcase_add_test(fail, no_entry_symbol);
    tcase_add_test(fail, null_required_op);
    suite_add_tcase(s, fail);
    return sx_check_run(s);
}
