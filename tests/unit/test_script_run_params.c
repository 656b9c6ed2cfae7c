/* test_script_run_params.c - the script.run parameter table and type checks. */
#include <check.h>
#include "sx_check_main.h"
#include <stdlib.h>
#include <string.h>

#include "params.h"

static int check_json(const char *json, sx_error *err)
{
    cJSON *with = cJSON_Parse(json);
    ck_assert_ptr_nonnull(with);
    memset(err, 0, sizeof *err);
    int rv = sx_params_check(with, err);
    cJSON_Delete(with);
    return rv;
}

START_TEST(spec_parameters_all_known)
{
    /* every parameter of the spec's script.run, plus executor */
    const char *names[] = {"inline_script", "script_path", "image", "image_ref", "image_pull_policy",
                           "image_pull_secret", "interpreter", "args", "working_dir", "timeout", "env",
                           "env_from_secret", "env_from_configmap", "secret_env_all",
                           "configmap_env_all", "volumes_from_secret", "volumes_from_configmap",
                           "node_selector", "tolerations", "affinity", "priority_class_name",
                           "resources", "approval_required", "approvers", "allowed_commands",
                           "blocked_commands", "service_account", "ttl_seconds_after_finished",
                           "backoff_limit", "stdin", "labels", "annotations", "executor"};
    size_t n = sizeof names / sizeof names[0];
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(sx_param_find(names[i]) != NULL, "%s missing", names[i]);
    size_t count = 0;
    for (const sx_param *p = sx_script_run_params; p->name; p++)
        count++;
    ck_assert_uint_eq(count, n);
}
END_TEST

START_TEST(valid_with_passes)
{
    sx_error err;
    ck_assert_int_eq(check_json("{\"inline_script\":\"echo\",\"args\":[\"a\"],\"env\":{\"A\":\"1\",\"B\":2,"
                                "\"C\":true},\"timeout\":\"5m\",\"backoff_limit\":1,"
                                "\"tolerations\":[{\"key\":\"k\"}],\"affinity\":{},\"approval_required\":false}",
                                &err), 0);
}
END_TEST

START_TEST(unknown_parameter_named)
{
    sx_error err;
    ck_assert_int_eq(check_json("{\"inline_script\":\"x\",\"inline_scirpt\":\"y\"}", &err), -1);
    ck_assert_str_eq(err.code, "invalid_parameter");
    ck_assert_ptr_nonnull(strstr(err.message, "inline_scirpt"));
}
END_TEST

START_TEST(wrong_types_refused)
{
    const char *bad[] = {
        "{\"inline_script\":5}", "{\"args\":\"--x\"}", "{\"args\":[1]}", "{\"env\":[\"A=1\"]}",
        "{\"env\":{\"A\":{\"x\":1}}}", "{\"backoff_limit\":1.5}", "{\"backoff_limit\":\"1\"}",
        "{\"tolerations\":{\"key\":\"k\"}}", "{\"tolerations\":[\"k\"]}", "{\"approval_required\":\"yes\"}",
        "{\"affinity\":[]}", "{\"timeout\":30}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sx_error err;
        ck_assert_msg(check_json(bad[i], &err) == -1, "accepted %s", bad[i]);
        ck_assert_str_eq(err.code, "invalid_parameter");
        ck_assert_ptr_nonnull(strstr(err.message, "must be"));
    }
}
END_TEST

START_TEST(null_counts_as_absent)
{
    sx_error err;
    ck_assert_int_eq(check_json("{\"inline_script\":\"x\",\"image\":null}", &err), 0);
}
END_TEST

START_TEST(describe_lists_every_parameter)
{
    char *json = sx_params_describe();
    cJSON *arr = cJSON_Parse(json);
    size_t count = 0;
    for (const sx_param *p = sx_script_run_params; p->name; p++)
        count++;
    ck_assert_int_eq(cJSON_GetArraySize(arr), (int)count);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "name")->valuestring, "inline_script");
    cJSON_Delete(arr);
    free(json);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("script_run_params");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, spec_parameters_all_known);
    tcase_add_test(tc, valid_with_passes);
    tcase_add_test(tc, unknown_parameter_named);
    tcase_add_test(tc, wrong_types_refused);
    tcase_add_test(tc, null_counts_as_absent);
    tcase_add_test(tc, describe_lists_every_parameter);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
