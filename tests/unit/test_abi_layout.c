/*
 * test_abi_layout.c - the public SDK structs may change only with the ABI
 * version.  Each ABI minor's layout is recorded here (LP64, x86_64 / aarch64
 * Linux).  The test fails when:
 *   - a recorded field moved, or a struct of the current minor changed size
 *     (a layout change without a version bump: bump SX_ABI_MINOR, or the
 *     major if an existing field changed);
 *   - the current SX_ABI_MINOR has no recorded layout (record it: append a
 *     table; fields of older minors must keep their offsets).
 */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sx/sx_backend.h"
#include "sx/sx_sink.h"
#include "sx/sx_step.h"
#include "sx_check_main.h"

typedef struct sx_layout {
    const char *type;
    const char *field;   /* NULL: the struct's size */
    size_t recorded;
    size_t actual;
} sx_layout;

#define SX_LAYOUT_SIZE(t, n) {#t, NULL, n, sizeof(t)}
#define SX_LAYOUT_FIELD(t, f, n) {#t, #f, n, offsetof(t, f)}

/* ABI 1.1 (1.0 was the same without sx_host_api.exec_set_info, size 168). */
static const sx_layout abi_1_1[] = {
    SX_LAYOUT_SIZE(sx_error, 1072),
    SX_LAYOUT_FIELD(sx_error, code, 0),
    SX_LAYOUT_FIELD(sx_error, message, 48),
    SX_LAYOUT_SIZE(sx_strlist, 16),
    SX_LAYOUT_FIELD(sx_strlist, n, 0),
    SX_LAYOUT_FIELD(sx_strlist, v, 8),
    SX_LAYOUT_SIZE(sx_strmap, 24),
    SX_LAYOUT_FIELD(sx_strmap, n, 0),
    SX_LAYOUT_FIELD(sx_strmap, keys, 8),
    SX_LAYOUT_FIELD(sx_strmap, values, 16),
    SX_LAYOUT_SIZE(sx_option, 48),
    SX_LAYOUT_FIELD(sx_option, type, 0),
    SX_LAYOUT_FIELD(sx_option, name, 8),
    SX_LAYOUT_FIELD(sx_option, default_value, 16),
    SX_LAYOUT_FIELD(sx_option, flags, 24),
    SX_LAYOUT_FIELD(sx_option, offset, 32),
    SX_LAYOUT_FIELD(sx_option, description, 40),
    SX_LAYOUT_SIZE(sx_service, 40),
    SX_LAYOUT_FIELD(sx_service, struct_size, 0),
    SX_LAYOUT_FIELD(sx_service, kind, 4),
    SX_LAYOUT_FIELD(sx_service, name, 8),
    SX_LAYOUT_FIELD(sx_service, provides, 16),
    SX_LAYOUT_FIELD(sx_service, ops, 24),
    SX_LAYOUT_FIELD(sx_service, instance, 32),
    SX_LAYOUT_SIZE(sx_host_api, 176),
    SX_LAYOUT_FIELD(sx_host_api, struct_size, 0),
    SX_LAYOUT_FIELD(sx_host_api, abi_major, 4),
    SX_LAYOUT_FIELD(sx_host_api, abi_minor, 8),
    SX_LAYOUT_FIELD(sx_host_api, log, 16),
    SX_LAYOUT_FIELD(sx_host_api, config_section, 24),
    SX_LAYOUT_FIELD(sx_host_api, config_apply, 32),
    SX_LAYOUT_FIELD(sx_host_api, config_free, 40),
    SX_LAYOUT_FIELD(sx_host_api, config_kind, 48),
    SX_LAYOUT_FIELD(sx_host_api, config_scalar, 56),
    SX_LAYOUT_FIELD(sx_host_api, config_len, 64),
    SX_LAYOUT_FIELD(sx_host_api, config_at, 72),
    SX_LAYOUT_FIELD(sx_host_api, config_key_at, 80),
    SX_LAYOUT_FIELD(sx_host_api, config_get, 88),
    SX_LAYOUT_FIELD(sx_host_api, config_line, 96),
    SX_LAYOUT_FIELD(sx_host_api, config_path, 104),
    SX_LAYOUT_FIELD(sx_host_api, publish, 112),
    SX_LAYOUT_FIELD(sx_host_api, record, 120),
    SX_LAYOUT_FIELD(sx_host_api, service_find, 128),
    SX_LAYOUT_FIELD(sx_host_api, exec_output, 136),
    SX_LAYOUT_FIELD(sx_host_api, exec_cancel_fd, 144),
    SX_LAYOUT_FIELD(sx_host_api, exec_cancelled, 152),
    SX_LAYOUT_FIELD(sx_host_api, exec_started, 160),
    SX_LAYOUT_FIELD(sx_host_api, exec_set_info, 168),
    SX_LAYOUT_SIZE(sx_plugin_descriptor, 80),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, abi_major, 0),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, abi_minor, 4),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, struct_size, 8),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, name, 16),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, version, 24),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, description, 32),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, kind, 40),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, provides, 48),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, init, 56),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, fini, 64),
    SX_LAYOUT_FIELD(sx_plugin_descriptor, ops, 72),
    SX_LAYOUT_SIZE(sx_exec_spec, 136),
    SX_LAYOUT_FIELD(sx_exec_spec, struct_size, 0),
    SX_LAYOUT_FIELD(sx_exec_spec, execution_id, 8),
    SX_LAYOUT_FIELD(sx_exec_spec, step_name, 16),
    SX_LAYOUT_FIELD(sx_exec_spec, runbook_id, 24),
    SX_LAYOUT_FIELD(sx_exec_spec, user, 32),
    SX_LAYOUT_FIELD(sx_exec_spec, interpreter, 40),
    SX_LAYOUT_FIELD(sx_exec_spec, script, 48),
    SX_LAYOUT_FIELD(sx_exec_spec, script_len, 56),
    SX_LAYOUT_FIELD(sx_exec_spec, script_hash, 64),
    SX_LAYOUT_FIELD(sx_exec_spec, args, 72),
    SX_LAYOUT_FIELD(sx_exec_spec, n_args, 80),
    SX_LAYOUT_FIELD(sx_exec_spec, working_dir, 88),
    SX_LAYOUT_FIELD(sx_exec_spec, env, 96),
    SX_LAYOUT_FIELD(sx_exec_spec, stdin_data, 104),
    SX_LAYOUT_FIELD(sx_exec_spec, stdin_len, 112),
    SX_LAYOUT_FIELD(sx_exec_spec, timeout_ms, 120),
    SX_LAYOUT_FIELD(sx_exec_spec, params_json, 128),
    SX_LAYOUT_SIZE(sx_exec_result, 552),
    SX_LAYOUT_FIELD(sx_exec_result, struct_size, 0),
    SX_LAYOUT_FIELD(sx_exec_result, termination, 4),
    SX_LAYOUT_FIELD(sx_exec_result, exit_code, 8),
    SX_LAYOUT_FIELD(sx_exec_result, signal, 12),
    SX_LAYOUT_FIELD(sx_exec_result, duration_seconds, 16),
    SX_LAYOUT_FIELD(sx_exec_result, cpu_millis, 24),
    SX_LAYOUT_FIELD(sx_exec_result, memory_mb, 32),
    SX_LAYOUT_FIELD(sx_exec_result, job_name, 40),
    SX_LAYOUT_FIELD(sx_exec_result, pod_name, 296),
    SX_LAYOUT_SIZE(sx_backend_ops, 64),
    SX_LAYOUT_FIELD(sx_backend_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_backend_ops, supported_params, 8),
    SX_LAYOUT_FIELD(sx_backend_ops, instance_create, 16),
    SX_LAYOUT_FIELD(sx_backend_ops, instance_destroy, 24),
    SX_LAYOUT_FIELD(sx_backend_ops, describe, 32),
    SX_LAYOUT_FIELD(sx_backend_ops, render, 40),
    SX_LAYOUT_FIELD(sx_backend_ops, run, 48),
    SX_LAYOUT_FIELD(sx_backend_ops, load_script, 56),
    SX_LAYOUT_SIZE(sx_step_request, 72),
    SX_LAYOUT_FIELD(sx_step_request, struct_size, 0),
    SX_LAYOUT_FIELD(sx_step_request, execution_id, 8),
    SX_LAYOUT_FIELD(sx_step_request, step_name, 16),
    SX_LAYOUT_FIELD(sx_step_request, runbook_id, 24),
    SX_LAYOUT_FIELD(sx_step_request, type, 32),
    SX_LAYOUT_FIELD(sx_step_request, user, 40),
    SX_LAYOUT_FIELD(sx_step_request, groups, 48),
    SX_LAYOUT_FIELD(sx_step_request, n_groups, 56),
    SX_LAYOUT_FIELD(sx_step_request, with_json, 64),
    SX_LAYOUT_SIZE(sx_step_reply, 1088),
    SX_LAYOUT_FIELD(sx_step_reply, struct_size, 0),
    SX_LAYOUT_FIELD(sx_step_reply, status, 4),
    SX_LAYOUT_FIELD(sx_step_reply, output_json, 8),
    SX_LAYOUT_FIELD(sx_step_reply, error, 16),
    SX_LAYOUT_SIZE(sx_step_ops, 32),
    SX_LAYOUT_FIELD(sx_step_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_step_ops, execute, 8),
    SX_LAYOUT_FIELD(sx_step_ops, render, 16),
    SX_LAYOUT_FIELD(sx_step_ops, describe, 24),
    SX_LAYOUT_SIZE(sx_sink_ops, 24),
    SX_LAYOUT_FIELD(sx_sink_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_sink_ops, write, 8),
    SX_LAYOUT_FIELD(sx_sink_ops, flush, 16),
};

START_TEST(major_is_1)
{
    ck_assert_int_eq(SX_ABI_MAJOR, 1);
}
END_TEST

START_TEST(current_minor_is_recorded)
{
    ck_assert_msg(SX_ABI_MINOR == 1,
                  "SDK ABI is 1.%d but only 1.1 is recorded in test_abi_layout.c: append the "
                  "new minor's layout (older fields must keep their offsets)", SX_ABI_MINOR);
}
END_TEST

START_TEST(layout_matches_record)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof abi_1_1 / sizeof abi_1_1[0]; i++) {
        const sx_layout *l = &abi_1_1[i];
        if (l->recorded != l->actual) {
            fprintf(stderr, "%s%s%s: recorded %zu, now %zu\n", l->type, l->field ? "." : " size",
                    l->field ? l->field : "", l->recorded, l->actual);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%d public SDK layout entries changed without an ABI version bump",
                  bad);
}
END_TEST

START_TEST(host_api_grew_by_exactly_one_function_in_1_1)
{
    /* what a 1.0 plugin sees of the table is unchanged */
    ck_assert_uint_eq(offsetof(sx_host_api, exec_set_info), 168);
    ck_assert_uint_eq(sizeof(sx_host_api), 176);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi_layout");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, major_is_1);
    tcase_add_test(tc, current_minor_is_recorded);
    tcase_add_test(tc, layout_matches_record);
    tcase_add_test(tc, host_api_grew_by_exactly_one_function_in_1_1);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
