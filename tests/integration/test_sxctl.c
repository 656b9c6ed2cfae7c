/*
 * test_sxctl.c - the sxctl client against the real host: runbook files
 * (YAML -> JSON, order, stop at first failure, exit codes, live output),
 * exec, describe/health/status/cancel, a dead server.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_harness.h"
#include "sx_check_main.h"

static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_native, audit_file]\n"
    "  executors:\n"
    "    - name: shell\n"
    "      kind: exec.native\n"
    "      default_work_dir: /tmp\n"
    "      default_env: {PATH: \"/usr/local/bin:/usr/bin:/bin\"}\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static sx_harness H;

static void start(void) { ck_assert_int_eq(sx_harness_start(&H, CONFIG), 0); }
/* -1: a test stopped it already; otherwise it must exit 0 on SIGTERM */
static void stop(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

/* Run sxctl with `args`; returns its exit status, output (stdout then
 * stderr, each captured to a file) in *out (caller frees). */
static int sxctl(const char *args, char **out, char **err)
{
    char cmd[4096], o[400], e[400];
    snprintf(o, sizeof o, "%s/sxctl.out", H.dir);
    snprintf(e, sizeof e, "%s/sxctl.err", H.dir);
    snprintf(cmd, sizeof cmd, "%s --url %s --events-url %s %s >%s 2>%s </dev/null", SX_SXCTL_BIN,
             H.ctl_url, H.events_url, args, o, e);
    int status = system(cmd);
    *out = sx_harness_slurp(o);
    if (err)
        *err = sx_harness_slurp(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", H.dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(run_stops_at_first_failure_with_its_exit_code)
{
    char path[400];
    write_file("rb.yaml",
               "id: ops.test\nname: test\nsteps:\n"
               "  - name: one\n    type: script.run\n    with:\n"
               "      interpreter: /bin/sh\n      inline_script: echo first-$N\n      env: {N: 7}\n"
               "  - name: two\n    type: script.run\n    with:\n"
               "      inline_script: |\n        echo second\n        exit 3\n"
               "  - name: three\n    type: script.run\n    with:\n      inline_script: touch /tmp/sxctl-third\n",
               path, sizeof path);
    unlink("/tmp/sxctl-third");
    char cmd[600], *out, *err;
    snprintf(cmd, sizeof cmd, "--execution-id rb-1 run %s", path);
    int rc = sxctl(cmd, &out, &err);
    ck_assert_int_eq(rc, 3);
    ck_assert_msg(strstr(out, "first-7\n") && strstr(out, "second\n"), "stdout: %s", out);
    ck_assert_msg(strstr(err, "step one: succeeded") && strstr(err, "step two: failed"), "stderr: %s", err);
    ck_assert_int_eq(access("/tmp/sxctl-third", F_OK), -1); /* never ran */
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "rb-1", NULL), 2);
    free(out);
    free(err);
}
END_TEST

START_TEST(yaml_types_reach_the_host)
{
    /* a quoted number stays a string; an unquoted one becomes a JSON number;
     * a typo'd key is refused by the host, naming it */
    char path[400];
    write_file("types.yaml",
               "id: ops.types\nsteps:\n"
               "  - name: t\n    type: script.run\n    with:\n"
               "      inline_script: 'true'\n      timeout: 30\n",
               path, sizeof path);
    char cmd[600], *out, *err;
    snprintf(cmd, sizeof cmd, "run %s", path);
    int rc = sxctl(cmd, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "invalid_parameter") && strstr(err, "timeout"), "stderr: %s", err);
    free(out);
    free(err);
    write_file("typo.yaml",
               "id: ops.typo\nsteps:\n"
               "  - name: t\n    type: script.run\n    with:\n"
               "      inline_scirpt: 'true'\n",
               path, sizeof path);
    snprintf(cmd, sizeof cmd, "run %s", path);
    rc = sxctl(cmd, &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "inline_scirpt"), "stderr: %s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(exec_json_and_exit_code)
{
    char *out, *err;
    int rc = sxctl("exec --interpreter /bin/sh --env A=b -- 'echo $A; exit 5'", &out, &err);
    ck_assert_int_eq(rc, 5);
    ck_assert_str_eq(out, "b\n");
    free(out);
    free(err);
    rc = sxctl("--json exec --execution-id ej --interpreter /bin/sh -- 'echo json'", &out, NULL);
    ck_assert_int_eq(rc, 0);
    cJSON *reply = cJSON_Parse(out);
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(sx_json_str(reply, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(reply, "output.stdout"), "json\n");
    cJSON_Delete(reply);
    free(out);
    rc = sxctl("--json status ej exec", &out, NULL);
    ck_assert_int_eq(rc, 0);
    reply = cJSON_Parse(out);
    ck_assert_str_eq(sx_json_str(reply, "state"), "finished");
    cJSON_Delete(reply);
    free(out);
}
END_TEST

START_TEST(describe_and_health)
{
    char *out, *err;
    ck_assert_int_eq(sxctl("--json describe", &out, &err), 0);
    cJSON *d = cJSON_Parse(out);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "plugins")), 3);
    cJSON_Delete(d);
    free(out);
    free(err);
    ck_assert_int_eq(sxctl("health", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "serving"));
    free(out);
    free(err);
}
END_TEST

START_TEST(dead_server_is_a_clear_error)
{
    ck_assert_int_eq(sx_harness_stop(&H), 0);
    char *out, *err;
    int rc = sxctl("health", &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot reach script-executor"), "stderr: %s", err);
    free(out);
    free(err);
    rc = sxctl("frobnicate", &out, &err);
    ck_assert_int_eq(rc, 2); /* usage */
    free(out);
    free(err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sxctl");
    TCase *tc = tcase_create("client");
    tcase_add_checked_fixture(tc, start, stop);
    tcase_add_test(tc, run_stops_at_first_failure_with_its_exit_code);
    tcase_add_test(tc, yaml_types_reach_the_host);
    tcase_add_test(tc, exec_json_and_exit_code);
    tcase_add_test(tc, describe_and_health);
    tcase_add_test(tc, dead_server_is_a_clear_error);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return sx_check_run(s);
}
