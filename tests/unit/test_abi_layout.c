/*
 * test_abi_layout.c - the public SDK may change only with the ABI version.
 *
 * Recorded here (LP64, x86_64 / aarch64 Linux) for the current ABI, 1.1:
 * the size and every field offset of every public struct, and the value of
 * every enum constant and ABI-relevant #define, of the headers in
 * sdk/include/sx.
 * The test fails when:
 *   - the SDK's version is not the one recorded here (SX_ABI_MAJOR/MINOR);
 *   - a recorded field moved, a struct changed size, a constant changed
 *     value (a layout change without a version bump: bump SX_ABI_MINOR when
 *     appending, the major for anything else);
 *   - a struct, field or enum constant in the headers is not recorded (so a
 *     field slipped into padding, which moves nothing, is caught too);
 *   - the previous minor's layout, measured from its frozen headers
 *     (tests/fixtures/sdk-1.0, abi_layout_1_0.c), is not a prefix of the
 *     current one: every 1.0 field at the same offset, every 1.0 constant
 *     with the same value, fields added since 1.0 only after 1.0's end.
 *
 * When 1.2 comes: copy sdk/include/sx (1.1) to tests/fixtures/sdk-1.1 first
 * (its README says how), add abi_layout_1_1.c measuring it the way
 * abi_layout_1_0.c does, then bump the minor, append the new fields to the
 * record below and set SX_ABI_RECORDED_MINOR.
 */
#define _DEFAULT_SOURCE
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_backend.h"
#include "sx/sx_sink.h"
#include "sx/sx_step.h"
#include "sx_check_main.h"

#include "abi_layout.h"

#define SX_ABI_RECORDED_MAJOR 1
#define SX_ABI_RECORDED_MINOR 1

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
#define N_LAYOUT (sizeof abi_1_1 / sizeof abi_1_1[0])

static const sx_abi_constant constants_1_1[] = {
    SX_ABI_CONST(SX_KIND_STEP_TYPE, 1),
    SX_ABI_CONST(SX_KIND_BACKEND, 2),
    SX_ABI_CONST(SX_KIND_EVENT_SINK, 3),
    SX_ABI_CONST(SX_KIND_APPROVAL, 4),
    SX_ABI_CONST(SX_KIND_IMAGE_CATALOG, 5),
    SX_ABI_CONST(SX_KIND_POLICY, 6),
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
#define N_CONSTANTS (sizeof constants_1_1 / sizeof constants_1_1[0])

START_TEST(recorded_version_is_current)
{
    ck_assert_msg(SX_ABI_MAJOR == SX_ABI_RECORDED_MAJOR && SX_ABI_MINOR == SX_ABI_RECORDED_MINOR,
                  "SDK ABI is %d.%d but test_abi_layout.c records %d.%d: record the new "
                  "version's layout (older fields must keep their offsets)",
                  SX_ABI_MAJOR, SX_ABI_MINOR, SX_ABI_RECORDED_MAJOR, SX_ABI_RECORDED_MINOR);
}
END_TEST

static int check_layout(const sx_layout *t, size_t n, const char *what)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const sx_layout *l = &t[i];
        if (l->recorded != l->actual) {
            fprintf(stderr, "%s: %s%s%s: recorded %zu, now %zu\n", what, l->type,
                    l->field ? "." : " size", l->field ? l->field : "", l->recorded, l->actual);
            bad++;
        }
    }
    return bad;
}

START_TEST(layout_matches_record)
{
    int bad = check_layout(abi_1_1, N_LAYOUT, "ABI 1.1");
    ck_assert_msg(bad == 0, "%d public SDK layout entries changed without an ABI version bump",
                  bad);
}
END_TEST

START_TEST(constants_match_record)
{
    int bad = 0;
    for (size_t i = 0; i < N_CONSTANTS; i++) {
        if (constants_1_1[i].recorded != constants_1_1[i].actual) {
            fprintf(stderr, "%s: recorded %lld, now %lld\n", constants_1_1[i].name,
                    constants_1_1[i].recorded, constants_1_1[i].actual);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%d public SDK constants changed value", bad);
}
END_TEST

/* ------------------------------------------------ the headers themselves */

static const sx_layout *find_layout(const sx_layout *t, size_t n, const char *type,
                                    const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].type, type) == 0 &&
            (field == NULL ? t[i].field == NULL : t[i].field && strcmp(t[i].field, field) == 0))
            return &t[i];
    return NULL;
}

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

static size_t ident_at(const char *p, char *out, size_t size)
{
    size_t n = 0;
    while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n + 1 < size) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
    return n;
}

/* The name a struct member declaration declares ("int (*run)(...)" -> run,
 * "char code[48]" -> code, "const char *name" -> name). */
static void member_name(char *decl, char *out, size_t size)
{
    char *fp = strstr(decl, "(*");
    if (fp) {
        fp += 2;
        while (isspace((unsigned char)*fp))
            fp++;
        ident_at(fp, out, size);
        return;
    }
    char *br = strchr(decl, '[');
    if (br)
        *br = '\0';
    char *end = decl + strlen(decl);
    while (end > decl && isspace((unsigned char)end[-1]))
        end--;
    char *start = end;
    while (start > decl && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
        start--;
    ident_at(start, out, size);
}

/* Check that every "typedef struct NAME { ... }" of one header, each of its
 * members and every constant of each "typedef enum NAME { ... }" is
 * recorded; count what is not in *bad.  Returns the number of structs and
 * enums seen (structs also in *n_structs). */
static int scan_header(const char *path, int *bad, size_t *n_structs)
{
    char *s = header_text(path);
    int seen = 0;
    for (char *p = s; (p = strstr(p, "typedef")) != NULL;) {
        p += 7;
        while (isspace((unsigned char)*p))
            p++;
        int is_struct = strncmp(p, "struct", 6) == 0 && isspace((unsigned char)p[6]);
        int is_enum = strncmp(p, "enum", 4) == 0 && isspace((unsigned char)p[4]);
        if (!is_struct && !is_enum)
            continue;
        p += is_struct ? 6 : 4;
        while (isspace((unsigned char)*p))
            p++;
        char type[128];
        p += ident_at(p, type, sizeof type);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '{')
            continue; /* opaque handle */
        char *body = ++p;
        int depth = 1;
        while (*p && depth > 0) {
            depth += *p == '{';
            depth -= *p == '}';
            p++;
        }
        ck_assert_msg(depth == 0, "%s: unbalanced braces in %s", path, type);
        p[-1] = '\0';
        seen++;
        if (is_struct) {
            (*n_structs)++;
            if (find_layout(abi_1_1, N_LAYOUT, type, NULL) == NULL) {
                fprintf(stderr, "%s: struct %s: its size is not recorded\n", path, type);
                (*bad)++;
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
                member_name(decl, name, sizeof name);
                if (name[0] == '\0') {
                    fprintf(stderr, "%s: struct %s: cannot parse member '%s'\n", path, type, decl);
                    (*bad)++;
                } else if (find_layout(abi_1_1, N_LAYOUT, type, name) == NULL) {
                    fprintf(stderr, "%s: %s.%s: its offset is not recorded\n", path, type, name);
                    (*bad)++;
                }
                decl = q + 1;
            }
        } else {
            for (char *item = strtok(body, ","); item; item = strtok(NULL, ",")) {
                while (isspace((unsigned char)*item))
                    item++;
                char name[128];
                if (ident_at(item, name, sizeof name) == 0)
                    continue;
                int found = 0;
                for (size_t i = 0; i < N_CONSTANTS && !found; i++)
                    found = strcmp(constants_1_1[i].name, name) == 0;
                if (!found) {
                    fprintf(stderr, "%s: enum %s: %s: its value is not recorded\n", path, type,
                            name);
                    (*bad)++;
                }
            }
        }
        p[-1] = ' ';
    }
    free(s);
    return seen;
}

START_TEST(every_public_struct_field_and_constant_is_recorded)
{
    DIR *d = opendir(SX_SDK_HEADER_DIR);
    ck_assert_msg(d != NULL, "cannot open %s", SX_SDK_HEADER_DIR);
    int bad = 0, headers = 0, seen = 0;
    size_t n_structs = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".h") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", SX_SDK_HEADER_DIR, e->d_name);
        seen += scan_header(path, &bad, &n_structs);
        headers++;
    }
    closedir(d);
    ck_assert_msg(headers >= 6, "only %d headers in %s", headers, SX_SDK_HEADER_DIR);
    ck_assert_msg(bad == 0, "%d public SDK declarations are not recorded in test_abi_layout.c: "
                  "record them (a new field or constant is an ABI change: bump the version)",
                  bad);
    /* every recorded struct was found in the headers (the scan works) */
    size_t recorded_structs = 0;
    for (size_t i = 0; i < N_LAYOUT; i++)
        recorded_structs += abi_1_1[i].field == NULL;
    ck_assert_uint_eq(n_structs, recorded_structs);
    ck_assert_int_gt(seen, (int)n_structs);
}
END_TEST

/* --------------------------------------- the previous minor, from its headers */

START_TEST(previous_minor_headers_are_1_0)
{
    ck_assert_int_eq(sx_abi_1_0_major, SX_ABI_MAJOR);
    ck_assert_int_eq(sx_abi_1_0_minor, SX_ABI_MINOR - 1);
    int bad = check_layout(sx_abi_1_0_layout, sx_abi_1_0_layout_n, "ABI 1.0 headers");
    ck_assert_msg(bad == 0, "the frozen 1.0 headers no longer lay out as recorded (%d entries): "
                  "tests/fixtures/sdk-1.0 must never be edited", bad);
}
END_TEST

START_TEST(previous_minor_is_a_prefix)
{
    int bad = 0;
    for (size_t i = 0; i < sx_abi_1_0_layout_n; i++) {
        const sx_layout *old = &sx_abi_1_0_layout[i];
        const sx_layout *now = find_layout(abi_1_1, N_LAYOUT, old->type, old->field);
        if (now == NULL) {
            fprintf(stderr, "1.0's %s%s%s is gone\n", old->type, old->field ? "." : "",
                    old->field ? old->field : "");
            bad++;
        } else if (old->field && now->actual != old->actual) {
            fprintf(stderr, "%s.%s: offset %zu in 1.0, %zu now\n", old->type, old->field,
                    old->actual, now->actual);
            bad++;
        } else if (old->field == NULL && now->actual < old->actual) {
            fprintf(stderr, "%s: %zu bytes in 1.0, %zu now\n", old->type, old->actual, now->actual);
            bad++;
        }
    }
    /* fields added since 1.0 are appended: after 1.0's end of their struct */
    for (size_t i = 0; i < N_LAYOUT; i++) {
        const sx_layout *now = &abi_1_1[i];
        if (now->field == NULL ||
            find_layout(sx_abi_1_0_layout, sx_abi_1_0_layout_n, now->type, now->field))
            continue;
        const sx_layout *old_size =
            find_layout(sx_abi_1_0_layout, sx_abi_1_0_layout_n, now->type, NULL);
        if (old_size && now->actual < old_size->actual) {
            fprintf(stderr, "%s.%s (new since 1.0) at offset %zu, inside 1.0's %zu bytes\n",
                    now->type, now->field, now->actual, old_size->actual);
            bad++;
        }
    }
    for (size_t i = 0; i < sx_abi_1_0_constants_n; i++) {
        const sx_abi_constant *old = &sx_abi_1_0_constants[i];
        int same = 0, found = 0;
        for (size_t j = 0; j < N_CONSTANTS && !found; j++)
            if (strcmp(constants_1_1[j].name, old->name) == 0) {
                found = 1;
                same = constants_1_1[j].actual == old->actual;
            }
        if (!same) {
            fprintf(stderr, "1.0's %s (%lld) is %s\n", old->name, old->actual,
                    found ? "changed" : "gone");
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%d incompatibilities with the 1.0 headers: a plugin built for 1.0 "
                  "would break", bad);
}
END_TEST

START_TEST(host_api_grew_by_exactly_one_function_in_1_1)
{
    /* what a 1.0 plugin sees of the table is unchanged */
    ck_assert_uint_eq(offsetof(sx_host_api, exec_set_info), 168);
    ck_assert_uint_eq(sizeof(sx_host_api), 176);
    const sx_layout *old = find_layout(sx_abi_1_0_layout, sx_abi_1_0_layout_n, "sx_host_api", NULL);
    ck_assert_ptr_nonnull(old);
    ck_assert_uint_eq(old->actual, offsetof(sx_host_api, exec_set_info));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi_layout");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, recorded_version_is_current);
    tcase_add_test(tc, layout_matches_record);
    tcase_add_test(tc, constants_match_record);
    tcase_add_test(tc, every_public_struct_field_and_constant_is_recorded);
    tcase_add_test(tc, previous_minor_headers_are_1_0);
    tcase_add_test(tc, previous_minor_is_a_prefix);
    tcase_add_test(tc, host_api_grew_by_exactly_one_function_in_1_1);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
