/*
 * test_abi_layout.c - the public SDK may change only with the ABI version.
 *
 * Recorded here (LP64, x86_64 / aarch64 Linux) for the current ABI, 1.2:
 * the size and every field offset of every public struct, the value of
 * every enum constant and ABI-relevant #define, and the type of every other
 * typedef (function pointer types), of the headers in sdk/include/sx.
 * Each previous minor N has the same record in abi_layout_1_N.c, measured
 * from its frozen headers (tests/fixtures/sdk-1.N, compiled on their own).
 * The test fails when:
 *   - the SDK's version is not the one recorded here (SX_ABI_MAJOR/MINOR);
 *   - a recorded field moved, a struct changed size, a constant changed
 *     value, a function type changed (a change without a version bump: bump
 *     SX_ABI_MINOR when appending, the major for anything else);
 *   - a struct, field, enum constant or typedef in the headers is not
 *     recorded (so a field slipped into padding, which moves nothing, is
 *     caught too) - for the current headers and for each frozen minor's;
 *   - a previous minor has no record, or no frozen headers, or a record
 *     that is not for that minor (1.0 .. current-1, one each);
 *   - a previous minor's layout, measured from its frozen headers, is not a
 *     prefix of the current one: every field at the same offset, every
 *     constant with the same value, every typedef still there, fields added
 *     since only after that minor's end of their struct.
 *
 * When 1.3 comes: copy sdk/include/sx (1.2) to tests/fixtures/sdk-1.2 first
 * (tests/fixtures/sdk-1.1/README.md says how), add abi_layout_1_2.c
 * measuring it the way abi_layout_1_1.c does (move the record below there,
 * numbers unchanged) and list it in previous_minors[], then bump the minor,
 * append the new fields to the record below and set SX_ABI_RECORDED_MINOR.
 */
#define _DEFAULT_SOURCE
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_approval.h"
#include "sx/sx_backend.h"
#include "sx/sx_catalog.h"
#include "sx/sx_policy.h"
#include "sx/sx_sink.h"
#include "sx/sx_step.h"
#include "sx_check_main.h"

#include "abi_layout.h"

#define SX_ABI_RECORDED_MAJOR 1
#define SX_ABI_RECORDED_MINOR 2

/* ABI 1.2: 1.1 plus sx_host_api.caller_authenticate .. bus_subscribe
 * (176 -> 208 bytes), sx_backend_ops.ready (64 -> 72), sx_sink_ops.ready
 * (24 -> 32), and the new structs of sx_plugin.h (HTTP routes,
 * sx_service_ops), sx_policy.h, sx_catalog.h and sx_approval.h. */
static const sx_layout layout_current[] = {
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
    SX_LAYOUT_SIZE(sx_http_request, 72),
    SX_LAYOUT_FIELD(sx_http_request, struct_size, 0),
    SX_LAYOUT_FIELD(sx_http_request, method, 8),
    SX_LAYOUT_FIELD(sx_http_request, path, 16),
    SX_LAYOUT_FIELD(sx_http_request, query, 24),
    SX_LAYOUT_FIELD(sx_http_request, body, 32),
    SX_LAYOUT_FIELD(sx_http_request, body_len, 40),
    SX_LAYOUT_FIELD(sx_http_request, remote_addr, 48),
    SX_LAYOUT_FIELD(sx_http_request, header, 56),
    SX_LAYOUT_FIELD(sx_http_request, host_private, 64),
    SX_LAYOUT_SIZE(sx_http_response, 120),
    SX_LAYOUT_FIELD(sx_http_response, struct_size, 0),
    SX_LAYOUT_FIELD(sx_http_response, status, 4),
    SX_LAYOUT_FIELD(sx_http_response, content_type, 8),
    SX_LAYOUT_FIELD(sx_http_response, body, 104),
    SX_LAYOUT_FIELD(sx_http_response, body_len, 112),
    SX_LAYOUT_SIZE(sx_http_route, 48),
    SX_LAYOUT_FIELD(sx_http_route, struct_size, 0),
    SX_LAYOUT_FIELD(sx_http_route, method, 8),
    SX_LAYOUT_FIELD(sx_http_route, path, 16),
    SX_LAYOUT_FIELD(sx_http_route, listen, 24),
    SX_LAYOUT_FIELD(sx_http_route, handler, 32),
    SX_LAYOUT_FIELD(sx_http_route, arg, 40),
    SX_LAYOUT_SIZE(sx_host_api, 208),
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
    SX_LAYOUT_FIELD(sx_host_api, caller_authenticate, 176),
    SX_LAYOUT_FIELD(sx_host_api, exec_check_script, 184),
    SX_LAYOUT_FIELD(sx_host_api, http_route, 192),
    SX_LAYOUT_FIELD(sx_host_api, bus_subscribe, 200),
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
    SX_LAYOUT_SIZE(sx_service_ops, 24),
    SX_LAYOUT_FIELD(sx_service_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_service_ops, describe, 8),
    SX_LAYOUT_FIELD(sx_service_ops, ready, 16),
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
    SX_LAYOUT_SIZE(sx_backend_ops, 72),
    SX_LAYOUT_FIELD(sx_backend_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_backend_ops, supported_params, 8),
    SX_LAYOUT_FIELD(sx_backend_ops, instance_create, 16),
    SX_LAYOUT_FIELD(sx_backend_ops, instance_destroy, 24),
    SX_LAYOUT_FIELD(sx_backend_ops, describe, 32),
    SX_LAYOUT_FIELD(sx_backend_ops, render, 40),
    SX_LAYOUT_FIELD(sx_backend_ops, run, 48),
    SX_LAYOUT_FIELD(sx_backend_ops, load_script, 56),
    SX_LAYOUT_FIELD(sx_backend_ops, ready, 64),
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
    SX_LAYOUT_SIZE(sx_sink_ops, 32),
    SX_LAYOUT_FIELD(sx_sink_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_sink_ops, write, 8),
    SX_LAYOUT_FIELD(sx_sink_ops, flush, 16),
    SX_LAYOUT_FIELD(sx_sink_ops, ready, 24),
    SX_LAYOUT_SIZE(sx_caller, 72),
    SX_LAYOUT_FIELD(sx_caller, struct_size, 0),
    SX_LAYOUT_FIELD(sx_caller, transport, 8),
    SX_LAYOUT_FIELD(sx_caller, listener, 16),
    SX_LAYOUT_FIELD(sx_caller, claimed_user, 24),
    SX_LAYOUT_FIELD(sx_caller, claimed_groups, 32),
    SX_LAYOUT_FIELD(sx_caller, n_claimed_groups, 40),
    SX_LAYOUT_FIELD(sx_caller, token, 48),
    SX_LAYOUT_FIELD(sx_caller, peer_uid, 56),
    SX_LAYOUT_FIELD(sx_caller, peer_pid, 64),
    SX_LAYOUT_SIZE(sx_identity, 64),
    SX_LAYOUT_FIELD(sx_identity, struct_size, 0),
    SX_LAYOUT_FIELD(sx_identity, user, 8),
    SX_LAYOUT_FIELD(sx_identity, groups, 16),
    SX_LAYOUT_FIELD(sx_identity, method, 32),
    SX_LAYOUT_SIZE(sx_policy_request, 80),
    SX_LAYOUT_FIELD(sx_policy_request, struct_size, 0),
    SX_LAYOUT_FIELD(sx_policy_request, identity, 8),
    SX_LAYOUT_FIELD(sx_policy_request, op, 16),
    SX_LAYOUT_FIELD(sx_policy_request, execution_id, 24),
    SX_LAYOUT_FIELD(sx_policy_request, step_name, 32),
    SX_LAYOUT_FIELD(sx_policy_request, runbook_id, 40),
    SX_LAYOUT_FIELD(sx_policy_request, type, 48),
    SX_LAYOUT_FIELD(sx_policy_request, executor, 56),
    SX_LAYOUT_FIELD(sx_policy_request, executor_kind, 64),
    SX_LAYOUT_FIELD(sx_policy_request, with_json, 72),
    SX_LAYOUT_SIZE(sx_script_check, 56),
    SX_LAYOUT_FIELD(sx_script_check, struct_size, 0),
    SX_LAYOUT_FIELD(sx_script_check, identity, 8),
    SX_LAYOUT_FIELD(sx_script_check, executor, 16),
    SX_LAYOUT_FIELD(sx_script_check, interpreter, 24),
    SX_LAYOUT_FIELD(sx_script_check, script, 32),
    SX_LAYOUT_FIELD(sx_script_check, script_len, 40),
    SX_LAYOUT_FIELD(sx_script_check, with_json, 48),
    SX_LAYOUT_SIZE(sx_policy_verdict, 1096),
    SX_LAYOUT_FIELD(sx_policy_verdict, struct_size, 0),
    SX_LAYOUT_FIELD(sx_policy_verdict, error, 4),
    SX_LAYOUT_FIELD(sx_policy_verdict, findings_json, 1080),
    SX_LAYOUT_FIELD(sx_policy_verdict, with_json, 1088),
    SX_LAYOUT_SIZE(sx_policy_ops, 40),
    SX_LAYOUT_FIELD(sx_policy_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_policy_ops, authenticate, 8),
    SX_LAYOUT_FIELD(sx_policy_ops, authorize, 16),
    SX_LAYOUT_FIELD(sx_policy_ops, check_script, 24),
    SX_LAYOUT_FIELD(sx_policy_ops, describe, 32),
    SX_LAYOUT_SIZE(sx_image_request, 64),
    SX_LAYOUT_FIELD(sx_image_request, struct_size, 0),
    SX_LAYOUT_FIELD(sx_image_request, executor, 8),
    SX_LAYOUT_FIELD(sx_image_request, executor_kind, 16),
    SX_LAYOUT_FIELD(sx_image_request, image_ref, 24),
    SX_LAYOUT_FIELD(sx_image_request, image, 32),
    SX_LAYOUT_FIELD(sx_image_request, pull_secret, 40),
    SX_LAYOUT_FIELD(sx_image_request, pull_policy, 48),
    SX_LAYOUT_FIELD(sx_image_request, user, 56),
    SX_LAYOUT_SIZE(sx_image_choice, 48),
    SX_LAYOUT_FIELD(sx_image_choice, struct_size, 0),
    SX_LAYOUT_FIELD(sx_image_choice, image, 8),
    SX_LAYOUT_FIELD(sx_image_choice, pull_secret, 16),
    SX_LAYOUT_FIELD(sx_image_choice, pull_policy, 24),
    SX_LAYOUT_FIELD(sx_image_choice, ref, 32),
    SX_LAYOUT_FIELD(sx_image_choice, rule, 40),
    SX_LAYOUT_SIZE(sx_catalog_ops, 24),
    SX_LAYOUT_FIELD(sx_catalog_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_catalog_ops, resolve, 8),
    SX_LAYOUT_FIELD(sx_catalog_ops, describe, 16),
    SX_LAYOUT_SIZE(sx_approval_ops, 72),
    SX_LAYOUT_FIELD(sx_approval_ops, struct_size, 0),
    SX_LAYOUT_FIELD(sx_approval_ops, create, 8),
    SX_LAYOUT_FIELD(sx_approval_ops, get, 16),
    SX_LAYOUT_FIELD(sx_approval_ops, decide, 24),
    SX_LAYOUT_FIELD(sx_approval_ops, consume, 32),
    SX_LAYOUT_FIELD(sx_approval_ops, list, 40),
    SX_LAYOUT_FIELD(sx_approval_ops, describe, 48),
    SX_LAYOUT_FIELD(sx_approval_ops, ready, 56),
    SX_LAYOUT_FIELD(sx_approval_ops, release, 64),
};

static const sx_abi_constant constants_current[] = {
    SX_ABI_CONST(SX_KIND_STEP_TYPE, 1),
    SX_ABI_CONST(SX_KIND_BACKEND, 2),
    SX_ABI_CONST(SX_KIND_EVENT_SINK, 3),
    SX_ABI_CONST(SX_KIND_APPROVAL, 4),
    SX_ABI_CONST(SX_KIND_IMAGE_CATALOG, 5),
    SX_ABI_CONST(SX_KIND_POLICY, 6),
    SX_ABI_CONST(SX_KIND_SERVICE, 7),
    SX_ABI_CONST(SX_OPT_END, 0),
    SX_ABI_CONST(SX_OPT_STRING, 1),
    SX_ABI_CONST(SX_OPT_INT, 2),
    SX_ABI_CONST(SX_OPT_BOOL, 3),
    SX_ABI_CONST(SX_OPT_DURATION, 4),
    SX_ABI_CONST(SX_OPT_SIZE, 5),
    SX_ABI_CONST(SX_OPT_STRLIST, 6),
    SX_ABI_CONST(SX_OPT_STRMAP, 7),
    SX_ABI_CONST(SX_OPT_NODE, 8),
    SX_ABI_CONST(SX_CFG_NONE, 0),
    SX_ABI_CONST(SX_CFG_SCALAR, 1),
    SX_ABI_CONST(SX_CFG_SEQUENCE, 2),
    SX_ABI_CONST(SX_CFG_MAP, 3),
    SX_ABI_CONST(SX_STATUS_SUCCEEDED, 1),
    SX_ABI_CONST(SX_STATUS_FAILED, 2),
    SX_ABI_CONST(SX_STATUS_TIMED_OUT, 3),
    SX_ABI_CONST(SX_STATUS_CANCELLED, 4),
    SX_ABI_CONST(SX_STATUS_PENDING_APPROVAL, 5),
    SX_ABI_CONST(SX_STATUS_DENIED, 6),
    SX_ABI_CONST(SX_STATUS_EXPIRED, 7),
    SX_ABI_CONST(SX_STATUS_REJECTED, 8),
    SX_ABI_CONST(SX_STATUS_ERROR, 9),
    SX_ABI_CONST(SX_TERM_NONE, 0),
    SX_ABI_CONST(SX_TERM_EXITED, 1),
    SX_ABI_CONST(SX_TERM_SIGNALED, 2),
    SX_ABI_CONST(SX_TERM_OOM_KILLED, 3),
    SX_ABI_CONST(SX_TERM_TIMED_OUT, 4),
    SX_ABI_CONST(SX_TERM_CANCELLED, 5),
    SX_ABI_CONST(SX_TERM_LOST, 6),
    SX_ABI_CONST(SX_STREAM_STDOUT, 1),
    SX_ABI_CONST(SX_STREAM_STDERR, 2),
    SX_ABI_CONST(SX_LOG_DEBUG, 0),
    SX_ABI_CONST(SX_LOG_INFO, 1),
    SX_ABI_CONST(SX_LOG_WARN, 2),
    SX_ABI_CONST(SX_LOG_ERROR, 3),
    SX_ABI_CONST(SX_OPT_REQUIRED, 1),
    SX_ABI_CONST(SX_ERROR_CODE_MAX, 48),
    SX_ABI_CONST(SX_ERROR_MESSAGE_MAX, 1024),
};

static const sx_abi_typedef typedefs_current[] = {
    SX_ABI_TYPEDEF(sx_http_handler,
                   int (*)(void *, const sx_http_request *, sx_http_response *)),
    SX_ABI_TYPEDEF(sx_event_fn, void (*)(void *, const char *, const char *)),
    SX_ABI_TYPEDEF(sx_plugin_entry_fn, const sx_plugin_descriptor *(*)(void)),
};

static const sx_abi_record current = {
    .major = SX_ABI_RECORDED_MAJOR, .minor = SX_ABI_RECORDED_MINOR,
    .layout = layout_current, .layout_n = SX_ABI_COUNT(layout_current),
    .constants = constants_current, .constants_n = SX_ABI_COUNT(constants_current),
    .typedefs = typedefs_current, .typedefs_n = SX_ABI_COUNT(typedefs_current),
};

/* Every previous minor of this major, in order, each measured from its own
 * frozen headers. */
static const sx_abi_record *const previous_minors[] = {&sx_abi_1_0, &sx_abi_1_1};
#define N_PREVIOUS ((int)SX_ABI_COUNT(previous_minors))

/* The record of minor m of this major: a previous one, or the current. */
static const sx_abi_record *record_of(int m)
{
    return m == SX_ABI_RECORDED_MINOR ? &current : m >= 0 && m < N_PREVIOUS ? previous_minors[m] : NULL;
}

static const sx_layout *find_layout(const sx_abi_record *r, const char *type, const char *field)
{
    for (size_t i = 0; i < r->layout_n; i++) {
        const sx_layout *l = &r->layout[i];
        if (strcmp(l->type, type) == 0 &&
            (field == NULL ? l->field == NULL : l->field && strcmp(l->field, field) == 0))
            return l;
    }
    return NULL;
}

static const sx_abi_constant *find_constant(const sx_abi_record *r, const char *name)
{
    for (size_t i = 0; i < r->constants_n; i++)
        if (strcmp(r->constants[i].name, name) == 0)
            return &r->constants[i];
    return NULL;
}

static const sx_abi_typedef *find_typedef(const sx_abi_record *r, const char *name)
{
    for (size_t i = 0; i < r->typedefs_n; i++)
        if (strcmp(r->typedefs[i].name, name) == 0)
            return &r->typedefs[i];
    return NULL;
}

/* Entries of r whose recorded value is not what the compiler measures now;
 * each printed. */
static int check_record(const sx_abi_record *r)
{
    int bad = 0;
    for (size_t i = 0; i < r->layout_n; i++) {
        const sx_layout *l = &r->layout[i];
        if (l->recorded != l->actual) {
            fprintf(stderr, "ABI %d.%d: %s%s%s: recorded %zu, now %zu\n", r->major, r->minor,
                    l->type, l->field ? "." : " size", l->field ? l->field : "", l->recorded,
                    l->actual);
            bad++;
        }
    }
    for (size_t i = 0; i < r->constants_n; i++) {
        const sx_abi_constant *c = &r->constants[i];
        if (c->recorded != c->actual) {
            fprintf(stderr, "ABI %d.%d: %s: recorded %lld, now %lld\n", r->major, r->minor,
                    c->name, c->recorded, c->actual);
            bad++;
        }
    }
    for (size_t i = 0; i < r->typedefs_n; i++) {
        if (!r->typedefs[i].same_type) {
            fprintf(stderr, "ABI %d.%d: typedef %s: not the recorded function type\n", r->major,
                    r->minor, r->typedefs[i].name);
            bad++;
        }
    }
    return bad;
}

START_TEST(recorded_version_is_current)
{
    ck_assert_msg(SX_ABI_MAJOR == SX_ABI_RECORDED_MAJOR && SX_ABI_MINOR == SX_ABI_RECORDED_MINOR,
                  "SDK ABI is %d.%d but test_abi_layout.c records %d.%d: record the new "
                  "version's layout (older fields must keep their offsets)",
                  SX_ABI_MAJOR, SX_ABI_MINOR, SX_ABI_RECORDED_MAJOR, SX_ABI_RECORDED_MINOR);
}
END_TEST

START_TEST(current_matches_record)
{
    int bad = check_record(&current);
    ck_assert_msg(bad == 0, "%d public SDK layout entries, constants or function types changed "
                  "without an ABI version bump", bad);
}
END_TEST

/* ------------------------------------------------ the headers themselves */

/* The header's text with comments and preprocessor lines blanked out. */
static char *header_text(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)size + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (char *p = s; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            ck_assert_msg(e != NULL, "%s: unterminated comment", path);
            memset(p, ' ', (size_t)(e + 2 - p));
            p = e + 2;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                *p++ = ' ';
        } else if (*p == '#' && (p == s || p[-1] == '\n')) {
            char prev = 0; /* a directive ends at a newline not escaped by '\\' */
            while (*p && !(*p == '\n' && prev != '\\')) {
                prev = *p;
                *p++ = ' ';
            }
        } else {
            p++;
        }
    }
    return s;
}

static int is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static size_t ident_at(const char *p, char *out, size_t size)
{
    size_t n = 0;
    while (is_ident_char(p[n]) && n + 1 < size) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
    return n;
}

static char *skip_space(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* The name a declaration declares ("int (*run)(...)" -> run,
 * "char code[48]" -> code, "const char *name" -> name). */
static void declared_name(char *decl, char *out, size_t size)
{
    char *fp = strstr(decl, "(*");
    if (fp) {
        ident_at(skip_space(fp + 2), out, size);
        return;
    }
    char *br = strchr(decl, '[');
    if (br)
        *br = '\0';
    char *end = decl + strlen(decl);
    while (end > decl && isspace((unsigned char)end[-1]))
        end--;
    char *start = end;
    while (start > decl && is_ident_char(start[-1]))
        start--;
    ident_at(start, out, size);
}

/* What one scan found and how much of it r lacks. */
typedef struct scan_count {
    int bad;            /* declarations not recorded (each printed) */
    size_t structs;     /* struct definitions seen */
    size_t enums;
    size_t typedefs;    /* typedefs other than of a struct or an enum */
} scan_count;

/* Each member of the struct `type` whose body (braces excluded) is `body`
 * is recorded in r. */
static void scan_struct(const char *path, const sx_abi_record *r, const char *type, char *body,
                        scan_count *n)
{
    n->structs++;
    if (find_layout(r, type, NULL) == NULL) {
        fprintf(stderr, "%s: struct %s: its size is not recorded\n", path, type);
        n->bad++;
    }
    int paren = 0;
    char *decl = body;
    for (char *q = body; *q; q++) {
        paren += *q == '(';
        paren -= *q == ')';
        if (*q != ';' || paren != 0)
            continue;
        *q = '\0';
        char name[128];
        declared_name(decl, name, sizeof name);
        if (name[0] == '\0') {
            fprintf(stderr, "%s: struct %s: cannot parse member '%s'\n", path, type, decl);
            n->bad++;
        } else if (find_layout(r, type, name) == NULL) {
            fprintf(stderr, "%s: %s.%s: its offset is not recorded\n", path, type, name);
            n->bad++;
        }
        decl = q + 1;
    }
}

/* Each constant of the enum `type` whose body is `body` is recorded in r. */
static void scan_enum(const char *path, const sx_abi_record *r, const char *type, char *body,
                      scan_count *n)
{
    n->enums++;
    for (char *item = strtok(body, ","); item; item = strtok(NULL, ",")) {
        char name[128];
        if (ident_at(skip_space(item), name, sizeof name) == 0)
            continue;
        if (find_constant(r, name) == NULL) {
            fprintf(stderr, "%s: enum %s: %s: its value is not recorded\n", path, type, name);
            n->bad++;
        }
    }
}

/* Check that every struct and enum one header defines ("struct NAME {",
 * "typedef struct NAME {", "typedef struct { ... } NAME", the same for
 * enums), each of its members and constants, and every other typedef
 * (function pointer types; "typedef struct NAME NAME" declares no layout)
 * is recorded in r.  Unions are refused: none is public, record one by
 * hand first. */
static void scan_header(const char *path, const sx_abi_record *r, scan_count *n)
{
    char *s = header_text(path);
    for (char *p = s; *p;) {
        if (!is_ident_char(*p) || (p > s && is_ident_char(p[-1])) ||
            isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        char word[128];
        char *after = p + ident_at(p, word, sizeof word);
        int is_struct = strcmp(word, "struct") == 0, is_enum = strcmp(word, "enum") == 0;
        if (strcmp(word, "typedef") == 0) {
            char *q = skip_space(after), next[16];
            ident_at(q, next, sizeof next);
            if (strcmp(next, "struct") == 0 || strcmp(next, "enum") == 0 ||
                strcmp(next, "union") == 0) {
                p = q; /* the definition, or a forward declaration */
                continue;
            }
            char *end = strchr(q, ';');
            ck_assert_msg(end != NULL, "%s: typedef without ';'", path);
            *end = '\0';
            char name[128];
            declared_name(q, name, sizeof name);
            n->typedefs++;
            if (find_typedef(r, name) == NULL) {
                fprintf(stderr, "%s: typedef %s: its type is not recorded\n", path, name);
                n->bad++;
            }
            p = end + 1;
            continue;
        }
        if (!is_struct && !is_enum && strcmp(word, "union") != 0) {
            p = after;
            continue;
        }
        char tag[128], *q = skip_space(after);
        q = skip_space(q + ident_at(q, tag, sizeof tag));
        if (*q != '{') {
            p = q; /* a use, or an opaque handle */
            continue;
        }
        char *body = q + 1, *close = body;
        for (int depth = 1; *close && (depth += (*close == '{') - (*close == '}')) > 0;)
            close++;
        ck_assert_msg(*close == '}', "%s: unbalanced braces after %s %s", path, word, tag);
        if (tag[0] == '\0') /* typedef struct { ... } NAME; */
            ident_at(skip_space(close + 1), tag, sizeof tag);
        *close = '\0';
        if (tag[0] == '\0') {
            fprintf(stderr, "%s: an unnamed %s: cannot record it\n", path, word);
            n->bad++;
        } else if (is_struct) {
            scan_struct(path, r, tag, body, n);
        } else if (is_enum) {
            scan_enum(path, r, tag, body, n);
        } else {
            fprintf(stderr, "%s: union %s: unions are not recorded by this test\n", path, tag);
            n->bad++;
        }
        p = close + 1;
    }
    free(s);
}

/* Scan every header of dir against r; fails the test on anything not
 * recorded, or on a record of a struct or typedef the headers do not have
 * (the scan works, the record is not stale). */
static void assert_headers_recorded(const char *dir, const sx_abi_record *r)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    scan_count n = {0};
    int headers = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".h") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        scan_header(path, r, &n);
        headers++;
    }
    closedir(d);
    ck_assert_msg(headers >= 6, "only %d headers in %s", headers, dir);
    ck_assert_msg(n.bad == 0, "%d public SDK declarations of %s are not recorded for ABI %d.%d: "
                  "record them (a new field or constant is an ABI change: bump the version)",
                  n.bad, dir, r->major, r->minor);
    size_t recorded_structs = 0;
    for (size_t i = 0; i < r->layout_n; i++)
        recorded_structs += r->layout[i].field == NULL;
    ck_assert_msg(n.structs == recorded_structs, "%s defines %zu structs, ABI %d.%d records %zu",
                  dir, n.structs, r->major, r->minor, recorded_structs);
    ck_assert_msg(n.typedefs == r->typedefs_n, "%s has %zu function typedefs, ABI %d.%d records %zu",
                  dir, n.typedefs, r->major, r->minor, r->typedefs_n);
    ck_assert_uint_ge(n.enums, 6); /* kinds, options, config, status, termination, ... */
}

START_TEST(every_public_declaration_is_recorded)
{
    assert_headers_recorded(SX_SDK_HEADER_DIR, &current);
}
END_TEST

/* ------------------------------- the previous minors, from their headers */

START_TEST(every_previous_minor_is_recorded)
{
    ck_assert_msg(N_PREVIOUS == SX_ABI_MINOR,
                  "ABI %d.%d has %d previous minors, previous_minors[] lists %d", SX_ABI_MAJOR,
                  SX_ABI_MINOR, SX_ABI_MINOR, N_PREVIOUS);
    for (int i = 0; i < N_PREVIOUS; i++) {
        ck_assert_int_eq(previous_minors[i]->major, SX_ABI_MAJOR);
        ck_assert_msg(previous_minors[i]->minor == i,
                      "previous_minors[%d] was compiled against the %d.%d headers", i,
                      previous_minors[i]->major, previous_minors[i]->minor);
    }
    /* and exactly those minors have frozen headers */
    DIR *d = opendir(SX_SDK_FIXTURES_DIR);
    ck_assert_msg(d != NULL, "cannot open %s", SX_SDK_FIXTURES_DIR);
    int dirs = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int major, minor, end = 0;
        if (sscanf(e->d_name, "sdk-%d.%d%n", &major, &minor, &end) != 2 || e->d_name[end])
            continue;
        ck_assert_msg(major == SX_ABI_MAJOR && minor >= 0 && minor < N_PREVIOUS,
                      "%s/%s is not a previous minor of %d.%d that has a record (abi_layout_%d_%d.c)",
                      SX_SDK_FIXTURES_DIR, e->d_name, SX_ABI_MAJOR, SX_ABI_MINOR, major, minor);
        dirs++;
    }
    closedir(d);
    ck_assert_int_eq(dirs, N_PREVIOUS);
}
END_TEST

/* Loop tests below: _i is the previous minor. */

START_TEST(previous_minor_lays_out_as_recorded)
{
    const sx_abi_record *old = previous_minors[_i];
    int bad = check_record(old);
    ck_assert_msg(bad == 0, "the frozen %d.%d headers no longer lay out as recorded (%d entries): "
                  "tests/fixtures/sdk-%d.%d must never be edited", old->major, old->minor, bad,
                  old->major, old->minor);
}
END_TEST

START_TEST(previous_minor_headers_are_recorded)
{
    const sx_abi_record *old = previous_minors[_i];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sdk-%d.%d/include/sx", SX_SDK_FIXTURES_DIR, old->major,
             old->minor);
    assert_headers_recorded(dir, old);
}
END_TEST

START_TEST(previous_minor_is_a_prefix)
{
    const sx_abi_record *old = previous_minors[_i];
    int bad = 0;
    for (size_t i = 0; i < old->layout_n; i++) {
        const sx_layout *was = &old->layout[i];
        const sx_layout *now = find_layout(&current, was->type, was->field);
        if (now == NULL) {
            fprintf(stderr, "%d.%d's %s%s%s is gone\n", old->major, old->minor, was->type,
                    was->field ? "." : "", was->field ? was->field : "");
            bad++;
        } else if (was->field && now->actual != was->actual) {
            fprintf(stderr, "%s.%s: offset %zu in %d.%d, %zu now\n", was->type, was->field,
                    was->actual, old->major, old->minor, now->actual);
            bad++;
        } else if (was->field == NULL && now->actual < was->actual) {
            fprintf(stderr, "%s: %zu bytes in %d.%d, %zu now\n", was->type, was->actual,
                    old->major, old->minor, now->actual);
            bad++;
        }
    }
    /* fields added since are appended: after the old end of their struct */
    for (size_t i = 0; i < current.layout_n; i++) {
        const sx_layout *now = &current.layout[i];
        if (now->field == NULL || find_layout(old, now->type, now->field))
            continue;
        const sx_layout *old_size = find_layout(old, now->type, NULL);
        if (old_size && now->actual < old_size->actual) {
            fprintf(stderr, "%s.%s (new since %d.%d) at offset %zu, inside %d.%d's %zu bytes\n",
                    now->type, now->field, old->major, old->minor, now->actual, old->major,
                    old->minor, old_size->actual);
            bad++;
        }
    }
    for (size_t i = 0; i < old->constants_n; i++) {
        const sx_abi_constant *was = &old->constants[i];
        const sx_abi_constant *now = find_constant(&current, was->name);
        if (now == NULL || now->actual != was->actual) {
            fprintf(stderr, "%d.%d's %s (%lld) is %s\n", old->major, old->minor, was->name,
                    was->actual, now ? "changed" : "gone");
            bad++;
        }
    }
    for (size_t i = 0; i < old->typedefs_n; i++) {
        if (find_typedef(&current, old->typedefs[i].name) == NULL) {
            fprintf(stderr, "%d.%d's typedef %s is gone\n", old->major, old->minor,
                    old->typedefs[i].name);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%d incompatibilities with the %d.%d headers: a plugin built for "
                  "%d.%d would break", bad, old->major, old->minor, old->major, old->minor);
}
END_TEST

/* What each minor appended to an existing struct, as sx_plugin.h's History
 * says: the struct's first new field sits exactly where the previous
 * minor's struct ended.  Every other struct of the previous minor kept its
 * size. */
static const struct {
    int minor;
    const char *type, *first_new_field;
} growth[] = {
    {1, "sx_host_api", "exec_set_info"},
    {2, "sx_host_api", "caller_authenticate"},
    {2, "sx_backend_ops", "ready"},
    {2, "sx_sink_ops", "ready"},
};

START_TEST(each_minor_grew_as_its_history_says)
{
    for (int m = 1; m <= SX_ABI_RECORDED_MINOR; m++) {
        const sx_abi_record *was = record_of(m - 1), *now = record_of(m);
        ck_assert_msg(was != NULL && now != NULL, "no record of 1.%d (previous_minors[])",
                      was ? m : m - 1);
        for (size_t i = 0; i < was->layout_n; i++) {
            const sx_layout *old_size = &was->layout[i];
            if (old_size->field)
                continue;
            const sx_layout *new_size = find_layout(now, old_size->type, NULL);
            ck_assert_ptr_nonnull(new_size);
            const char *first = NULL;
            for (size_t g = 0; g < SX_ABI_COUNT(growth); g++)
                if (growth[g].minor == m && strcmp(growth[g].type, old_size->type) == 0)
                    first = growth[g].first_new_field;
            if (first == NULL) {
                ck_assert_msg(new_size->recorded == old_size->recorded,
                              "%s: %zu bytes in 1.%d, %zu in 1.%d, but growth[] says it did not "
                              "grow", old_size->type, old_size->recorded, m - 1,
                              new_size->recorded, m);
                continue;
            }
            const sx_layout *f = find_layout(now, old_size->type, first);
            ck_assert_msg(f != NULL, "1.%d has no %s.%s", m, old_size->type, first);
            ck_assert_msg(f->recorded == old_size->recorded,
                          "%s.%s (new in 1.%d) at %zu, but 1.%d's %s ends at %zu", old_size->type,
                          first, m, f->recorded, m - 1, old_size->type, old_size->recorded);
            ck_assert_msg(find_layout(was, old_size->type, first) == NULL,
                          "%s.%s is already in 1.%d", old_size->type, first, m - 1);
        }
    }
    /* spelled out for the current minor: what a 1.1 plugin sees is unchanged */
    ck_assert_uint_eq(offsetof(sx_host_api, caller_authenticate), 176);
    ck_assert_uint_eq(sizeof(sx_host_api), 208);
    ck_assert_uint_eq(offsetof(sx_backend_ops, ready), 64);
    ck_assert_uint_eq(offsetof(sx_sink_ops, ready), 24);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi_layout");
    TCase *tc = tcase_create("current");
    tcase_add_test(tc, recorded_version_is_current);
    tcase_add_test(tc, current_matches_record);
    tcase_add_test(tc, every_public_declaration_is_recorded);
    tcase_add_test(tc, each_minor_grew_as_its_history_says);
    suite_add_tcase(s, tc);
    TCase *prev = tcase_create("previous_minors");
    tcase_add_test(prev, every_previous_minor_is_recorded);
    tcase_add_loop_test(prev, previous_minor_lays_out_as_recorded, 0, N_PREVIOUS);
    tcase_add_loop_test(prev, previous_minor_headers_are_recorded, 0, N_PREVIOUS);
    tcase_add_loop_test(prev, previous_minor_is_a_prefix, 0, N_PREVIOUS);
    suite_add_tcase(s, prev);
    return sx_check_run(s);
}
