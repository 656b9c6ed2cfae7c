/*
 * test_host_integration.c - the real script-executor binary, real plugins
 * (script_run, backend_native, backend_fake, audit_file), driven over nng
 * exactly as an orchestrator would.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_harness.h"
#include "sx/sx_plugin.h" /* SX_ABI_MAJOR, SX_ABI_MINOR */

static const char *BASE_CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_message_size: 65536\n"
    "    max_concurrent: 4\n"
    "    shutdown_grace: 5s\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_native, backend_fake, audit_file]\n"
    "  executors:\n"
    "    - name: shell\n"
    "      kind: exec.native\n"
    "      default_work_dir: @DIR@\n"
    "      default_env: {PATH: \"/usr/local/bin:/usr/bin:/bin\", WHO: shell}\n"
    "    - name: other\n"
    "      kind: exec.native\n"
    "      default_work_dir: /tmp\n"
    "      default_env: {PATH: \"/usr/bin:/bin\", WHO: other}\n"
    "    - name: fake\n"
    "      kind: exec.fake\n"
    "      max_output_bytes: 4096\n"
    "  default_executor: shell\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static sx_harness H;

/* BASE_CONFIG with the first `from` replaced by `to` (caller frees). */
static char *base_config_with(const char *from, const char *to)
{
    const char *at = strstr(BASE_CONFIG, from);
    ck_assert_msg(at != NULL, "'%s' is not in BASE_CONFIG", from);
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "%.*s%s%s", (int)(at - BASE_CONFIG), BASE_CONFIG, to,
                              at + strlen(from)), 0);
    return cfg;
}

static void start_base(void) { ck_assert_int_eq(sx_harness_start(&H, BASE_CONFIG), 0); }
/* The host must exit 0 on SIGTERM: under ASan/LSan a leak or UB report
 * makes it exit non-zero, so this is where those become failures. */
static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

/* execute with a `with` object given as JSON text */
static cJSON *run(const char *id, const char *step, const char *with)
{
    char *req;
    if (asprintf(&req,
                 "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"%s\","
                 "\"runbook_id\":\"rb.test\",\"type\":\"script.run\","
                 "\"caller\":{\"user\":\"alice\",\"groups\":[\"sre\"]},\"with\":%s}",
                 id, step, with) < 0)
        return NULL;
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static double num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    ck_assert_msg(cJSON_IsNumber(v), "%s.%s is not a number", a, b ? b : "");
    return v->valuedouble;
}

/* Wait (up to 20 s) until the durable start record of a pair exists: from
 * then on its script runs.  Tests wait on this rather than on a sleep. */
static void wait_started(const char *id, const char *step)
{
    for (int i = 0; i < 800 && sx_harness_audit_count(&H, "exec.started", id, step) == 0; i++)
        usleep(25 * 1000);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", id, step), 1);
}

static void assert_error(cJSON *r, const char *status, const char *code)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want status %s: %s", status, text);
    ck_assert_msg(strcmp(sx_json_str(r, "error.code"), code) == 0, "want code %s: %s", code, text);
    ck_assert_msg(strlen(sx_json_str(r, "error.message")) > 10, "no message: %s", text);
    free(text);
}

/* ---------------------------------------------------------------- runs */

START_TEST(native_echo_succeeds)
{
    cJSON *r = run("run-1", "echo", "{\"inline_script\":\"echo hi; echo err >&2\",\"interpreter\":\"/bin/sh\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(r, "execution_id"), "run-1");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "hi\n");
    ck_assert_str_eq(sx_json_str(r, "output.stderr"), "err\n");
    ck_assert_int_eq((int)num(r, "output", "exit_code"), 0);
    ck_assert_str_eq(sx_json_str(r, "output.executor"), "shell");
    ck_assert_str_eq(sx_json_str(r, "output.backend"), "exec.native");
    ck_assert_str_eq(sx_json_str(r, "output.termination.reason"), "exited");
    /* sha256("echo hi; echo err >&2") */
    ck_assert_str_eq(sx_json_str(r, "output.script_hash"),
                     "sha256:88cad28d70a3f39d501df1deca4668bec6f173c3c1b8b93746ee865b5e894b9d");
    ck_assert(num(r, "output", "duration_seconds") > 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "error"));
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.accepted", "run-1", "echo"), 1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "run-1", "echo"), 1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.finished", "run-1", "echo"), 1);
}
END_TEST

START_TEST(audit_records_content)
{
    cJSON *r = run("run-19", "audited", "{\"inline_script\":\"echo out; exit 4\",\"env\":{\"API_KEY\":\"hunter2\"}}");
    ck_assert_str_eq(sx_json_str(r, "status"), "failed");
    const char *hash = sx_json_str(r, "output.script_hash");
    cJSON *started = sx_harness_audit_record(&H, "exec.started", "run-19", "audited");
    ck_assert_ptr_nonnull(started);
    ck_assert_str_eq(sx_json_str(started, "user"), "alice");
    ck_assert_str_eq(sx_json_str(started, "runbook_id"), "rb.test");
    ck_assert_str_eq(sx_json_str(started, "executor"), "shell");
    ck_assert_str_eq(sx_json_str(started, "script_hash"), hash);
    ck_assert_str_eq(sx_json_str(started, "script"), "echo out; exit 4"); /* log_script_content */
    const cJSON *names = cJSON_GetObjectItem(started, "env_names");
    ck_assert_int_eq(cJSON_GetArraySize(names), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring, "API_KEY");
    cJSON *finished = sx_harness_audit_record(&H, "exec.finished", "run-19", "audited");
    ck_assert_ptr_nonnull(finished);
    ck_assert_str_eq(sx_json_str(finished, "status"), "failed");
    ck_assert_int_eq((int)num(finished, "exit_code", NULL), 4);
    ck_assert_str_eq(sx_json_str(finished, "script_hash"), hash);
    ck_assert_str_eq(sx_json_str(finished, "stdout"), "out\n");  /* log_script_output */
    ck_assert_str_eq(sx_json_str(finished, "error.code"), "script_failed");
    ck_assert_ptr_null(cJSON_GetObjectItem(finished, "script"));
    cJSON_Delete(started);
    cJSON_Delete(finished);
    cJSON_Delete(r);
    /* an environment value never reaches the audit file */
    char *audit = sx_harness_slurp(H.audit_path);
    ck_assert_ptr_null(strstr(audit, "hunter2"));
    free(audit);
}
END_TEST

START_TEST(failure_exit_code_and_error)
{
    cJSON *r = run("run-2", "fail", "{\"inline_script\":\"echo partial; exit 7\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "failed");
    ck_assert_int_eq((int)num(r, "output", "exit_code"), 7);
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "partial\n");
    assert_error(r, "failed", "script_failed");
    cJSON_Delete(r);
}
END_TEST

START_TEST(env_is_clean_and_per_executor)
{
    setenv("SX_HOST_SECRET", "leak", 1); /* the host inherits nothing of ours anyway */
    cJSON *r = run("run-3", "env", "{\"inline_script\":\"echo $WHO/$STEPVAR/${HOME:-nohome}; env | wc -l\","
                   "\"env\":{\"STEPVAR\":\"x\",\"PORT\":5432}}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    const char *out = sx_json_str(r, "output.stdout");
    ck_assert_msg(strncmp(out, "shell/x/nohome\n", 15) == 0, "stdout: %s", out);
    cJSON_Delete(r);
    r = run("run-3", "env-other", "{\"inline_script\":\"echo $WHO; pwd\",\"executor\":\"other\"}");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "other\n/tmp\n");
    cJSON_Delete(r);
}
END_TEST

START_TEST(stdin_args_workdir_python)
{
    cJSON *r = run("run-4", "py", "{\"interpreter\":\"python3\",\"inline_script\":"
                   "\"import sys, os\\nprint(sys.stdin.read().upper(), sys.argv[1:], os.getcwd())\","
                   "\"stdin\":\"abc\",\"args\":[\"--x\",\"y z\"],\"working_dir\":\"/\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "ABC ['--x', 'y z'] /\n");
    cJSON_Delete(r);
}
END_TEST

START_TEST(large_script_runs)
{
    /* ~500 KB in 999 lines: far above one argv string's 128 KiB */
    size_t lines = 999, per = 500;
    char *script = malloc(lines * per + 64);
    size_t o = 0;
    for (size_t i = 0; i < lines - 1; i++) {
        o += (size_t)sprintf(script + o, ": ");
        memset(script + o, 'a', per - 4);
        o += per - 4;
        script[o++] = '\n';
    }
    o += (size_t)sprintf(script + o, "echo last-line-ran");
    cJSON *with = cJSON_CreateObject();
    cJSON_AddStringToObject(with, "inline_script", script);
    cJSON_AddStringToObject(with, "interpreter", "/bin/sh");
    char *w = cJSON_PrintUnformatted(with);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "execute");
    cJSON_AddStringToObject(req, "execution_id", "run-5");
    cJSON_AddStringToObject(req, "step_name", "big");
    cJSON_AddStringToObject(req, "type", "script.run");
    cJSON_AddItemToObject(req, "with", with);
    char *text = cJSON_PrintUnformatted(req);
    ck_assert_uint_gt(strlen(text), 490000);
    /* this config's max_message_size is 64 KiB; a host with the default
     * 10 MiB limit runs it */
    ck_assert_int_eq(sx_harness_stop(&H), 0);
    char *cfg = base_config_with("    max_message_size: 65536\n", "");
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    cJSON *r = sx_harness_call(&H, text);
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "last-line-ran\n");
    cJSON_Delete(r);
    free(cfg);
    free(text);
    cJSON_Delete(req);
    free(w);
    free(script);
}
END_TEST

START_TEST(output_cap_keeps_head_and_tail)
{
    cJSON *r = run("run-6", "cap", "{\"inline_script\":\"outbytes 100000\\nout END\",\"executor\":\"fake\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    const cJSON *out = cJSON_GetObjectItem(r, "output");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(out, "stdout_truncated")));
    ck_assert_int_eq((int)num(r, "output", "stdout_dropped_bytes"), 100004 - 4096);
    const char *s = sx_json_str(r, "output.stdout");
    ck_assert_ptr_nonnull(strstr(s, "bytes dropped"));
    ck_assert_str_eq(s + strlen(s) - 4, "END\n");
    cJSON_Delete(r);
}
END_TEST

START_TEST(timeout_kills_tree)
{
    char with[1024];
    snprintf(with, sizeof with,
             "{\"inline_script\":\"setsid sh -c 'echo $$ > %s/daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &\\n"
             "sleep 300\",\"timeout\":\"1s\"}", H.dir);
    cJSON *r = run("run-7", "slow", with);
    assert_error(r, "timed_out", "timeout");
    ck_assert_str_eq(sx_json_str(r, "output.termination.reason"), "timed_out");
    cJSON_Delete(r);
    char path[400];
    snprintf(path, sizeof path, "%s/daemon.pid", H.dir);
    char *pidtext = sx_harness_slurp(path);
    ck_assert_ptr_nonnull(pidtext);
    pid_t pid = (pid_t)atoi(pidtext);
    free(pidtext);
    ck_assert_int_gt(pid, 1);
    ck_assert_msg(kill(pid, 0) == -1 && errno == ESRCH, "daemon %d survived the timeout", pid);
}
END_TEST

/* --------------------------------------------------------- idempotency */

START_TEST(repeat_returns_recorded_result)
{
    char with[512];
    snprintf(with, sizeof with, "{\"inline_script\":\"echo ran >> %s/count; echo $$\"}", H.dir);
    cJSON *a = run("run-8", "once", with);
    cJSON *b = run("run-8", "once", with);
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    ck_assert_str_eq(ta, tb);
    char path[400];
    snprintf(path, sizeof path, "%s/count", H.dir);
    char *count = sx_harness_slurp(path);
    ck_assert_str_eq(count, "ran\n");
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "run-8", "once"), 1);
    free(count);
    free(ta);
    free(tb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}
END_TEST

START_TEST(refusal_is_not_remembered)
{
    cJSON *r = run("run-18", "corrected", "{\"inline_script\":\"echo fixed\",\"timeout\":\"99h\"}");
    assert_error(r, "rejected", "invalid_parameter");
    cJSON_Delete(r);
    r = run("run-18", "corrected", "{\"inline_script\":\"echo fixed\",\"timeout\":\"9s\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "fixed\n");
    cJSON_Delete(r);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.rejected", "run-18", "corrected"), 1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "run-18", "corrected"), 1);
}
END_TEST

struct call_arg { const char *json; char *reply; };
static void *call_thread(void *p)
{
    struct call_arg *a = p;
    a->reply = sx_harness_call_raw(&H, a->json, strlen(a->json));
    return NULL;
}

START_TEST(repeat_in_flight_waits_and_req_resend_is_harmless)
{
    char req[700];
    snprintf(req, sizeof req,
             "{\"op\":\"execute\",\"execution_id\":\"run-9\",\"step_name\":\"s\",\"type\":\"script.run\","
             "\"with\":{\"inline_script\":\"sleep 1; echo ran >> %s/count\"}}", H.dir);
    /* What nng REQ's automatic resend puts on the wire: the same request,
     * with the same request id, again and again.  A raw REQ socket sends
     * exactly that, five times while the step runs.  (A cooked REQ socket
     * with a short resend time would do the same, but libnng 1.5.2 can hang
     * closing one: nanomsg/nng#648.) */
    nng_socket s;
    ck_assert_int_eq(nng_req0_open_raw(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 30000);
    ck_assert_int_eq(nng_dial(s, H.ctl_url, NULL, 0), 0);
    /* and a second client sending the same step at the same time */
    struct call_arg other = {req, NULL};
    pthread_t th;
    const int copies = 5;
    for (int i = 0; i < copies; i++) {
        nng_msg *m;
        ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
        ck_assert_int_eq(nng_msg_header_append_u32(m, 0x80000001u), 0);
        ck_assert_int_eq(nng_msg_append(m, req, strlen(req)), 0);
        ck_assert_int_eq(nng_sendmsg(s, m, 0), 0);
        if (i == 0)
            pthread_create(&th, NULL, call_thread, &other);
        usleep(100 * 1000);
    }
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(other.reply);
    for (int i = 0; i < copies; i++) { /* one identical reply per copy */
        nng_msg *m;
        ck_assert_int_eq(nng_recvmsg(s, &m, 0), 0);
        ck_assert_uint_eq(nng_msg_len(m), strlen(other.reply));
        ck_assert_int_eq(memcmp(nng_msg_body(m), other.reply, nng_msg_len(m)), 0);
        nng_msg_free(m);
    }
    free(other.reply);
    nng_close(s);
    char path[400];
    snprintf(path, sizeof path, "%s/count", H.dir);
    char *count = sx_harness_slurp(path);
    ck_assert_str_eq(count, "ran\n");
    free(count);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "run-9", "s"), 1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.accepted", "run-9", "s"), 1);
}
END_TEST

START_TEST(parked_repeats_hold_no_worker)
{
    /* 17 workers (max_concurrent 1 + 16 spare), 30 repeats of one running
     * step: none of them may hold a worker, or health would starve. */
    char *cfg = base_config_with("max_concurrent: 4", "max_concurrent: 1");
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    static const char *req =
        "{\"op\":\"execute\",\"execution_id\":\"park\",\"step_name\":\"s\",\"type\":\"script.run\","
        "\"with\":{\"executor\":\"fake\",\"inline_script\":\"sleep 2\\nout parked\"}}";
    enum { N = 30 };
    struct call_arg calls[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        calls[i].json = req;
        calls[i].reply = NULL;
        pthread_create(&th[i], NULL, call_thread, &calls[i]);
    }
    wait_started("park", "s");
    usleep(200 * 1000); /* let the repeats arrive and park */
    cJSON *h = sx_harness_call(&H, "{\"op\":\"health\"}");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq((int)num(h, "in_flight", NULL), 1);
    cJSON_Delete(h);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_null(calls[i].reply); /* all still waiting for the run */
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_nonnull(calls[i].reply);
        ck_assert_str_eq(calls[i].reply, calls[0].reply);
    }
    ck_assert_ptr_nonnull(strstr(calls[0].reply, "parked\\n"));
    for (int i = 0; i < N; i++)
        free(calls[i].reply);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "park", "s"), 1);
}
END_TEST

/* ----------------------------------------------------------- bad input */

START_TEST(bad_inputs_get_clear_errors)
{
    struct { const char *req; const char *status; const char *code; } cases[] = {
        {"{not json", "rejected", "invalid_request"},
        {"[1,2]", "rejected", "invalid_request"},
        {"{\"op\":\"frobnicate\"}", "rejected", "unknown_op"},
        {"{\"op\":\"execute\",\"execution_id\":\"x\",\"step_name\":\"s\",\"type\":\"script.run\",\"bogus\":1}",
         "rejected", "invalid_request"},
        {"{\"op\":\"execute\",\"step_name\":\"s\",\"type\":\"script.run\",\"with\":{}}", "rejected", "invalid_request"},
        {"{\"op\":\"execute\",\"execution_id\":\"x\",\"step_name\":\"s\",\"type\":\"report.render\",\"with\":{}}",
         "rejected", "unknown_step_type"},
        {"{\"op\":\"execute\",\"execution_id\":\"b1\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"colour\":\"red\"}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b2\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"timeout\":5}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b3\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b4\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"script_path\":\"/scripts/x.sh\"}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b5\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"interpreter\":\"perl\"}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b6\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"timeout\":\"45m\"}}", "rejected", "invalid_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b7\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"executor\":\"nope\"}}", "rejected", "executor_not_found"},
        {"{\"op\":\"execute\",\"execution_id\":\"b8\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"inline_script\":\"true\",\"image\":\"x\",\"node_selector\":{\"a\":\"b\"}}}",
         "rejected", "unsupported_parameter"},
        {"{\"op\":\"execute\",\"execution_id\":\"b9\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"approval_required\":true,\"with\":{\"inline_script\":\"touch /tmp/sx-unapproved\"}}",
         "rejected", "approval_unavailable"},
        {"{\"op\":\"execute\",\"execution_id\":\"b10\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"with\":{\"approval_required\":true,\"inline_script\":\"touch /tmp/sx-unapproved\"}}",
         "rejected", "approval_unavailable"},
        {"{\"op\":\"status\",\"execution_id\":\"never\",\"step_name\":\"s\"}", "rejected", "not_found"},
        {"{\"op\":\"execute\",\"execution_id\":\"b11\",\"step_name\":\"s\",\"type\":\"script.run\","
         "\"caller\":{\"user\":\"a\",\"token\":\"eyJ...\"},\"with\":{\"inline_script\":\"true\"}}",
         "rejected", "unsupported_parameter"},
    };
    unlink("/tmp/sx-unapproved");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *r = sx_harness_call(&H, cases[i].req);
        ck_assert_msg(r != NULL, "no reply to %s", cases[i].req);
        assert_error(r, cases[i].status, cases[i].code);
        cJSON_Delete(r);
    }
    ck_assert_int_eq(access("/tmp/sx-unapproved", F_OK), -1);
    /* unsupported_parameter names what was refused */
    cJSON *r = sx_harness_call(&H, cases[13].req);
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "node_selector"));
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "image"));
    cJSON_Delete(r);
    /* oversize message, just above the limit */
    size_t n = 65536 + 100;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    char *reply = sx_harness_call_raw(&H, big, n);
    ck_assert_ptr_nonnull(reply);
    ck_assert_ptr_nonnull(strstr(reply, "message_too_large"));
    free(reply);
    free(big);
    /* the host still serves */
    r = sx_harness_call(&H, "{\"op\":\"health\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    cJSON_Delete(r);
    ck_assert_int_ge(sx_harness_audit_count(&H, "request.rejected", NULL, NULL), 8);
}
END_TEST

/* ------------------------------------------------- concurrency, control */

START_TEST(long_run_does_not_block_others)
{
    struct call_arg slow = {"{\"op\":\"execute\",\"execution_id\":\"run-10\",\"step_name\":\"s\","
                            "\"type\":\"script.run\",\"with\":{\"inline_script\":\"sleep 2; echo done\"}}",
                            NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &slow);
    wait_started("run-10", "s");
    cJSON *st = sx_harness_call(&H, "{\"op\":\"status\",\"execution_id\":\"run-10\",\"step_name\":\"s\"}");
    ck_assert_str_eq(sx_json_str(st, "state"), "running");
    cJSON_Delete(st);
    cJSON *list = sx_harness_call(&H, "{\"op\":\"list\"}");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(list, "executions")), 1);
    cJSON_Delete(list);
    cJSON *quick = run("run-11", "s", "{\"inline_script\":\"echo quick\"}");
    ck_assert_str_eq(sx_json_str(quick, "output.stdout"), "quick\n");
    cJSON_Delete(quick);
    ck_assert_ptr_null(slow.reply); /* the slow one is still running */
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(strstr(slow.reply, "\"succeeded\""));
    free(slow.reply);
    st = sx_harness_call(&H, "{\"op\":\"status\",\"execution_id\":\"run-10\",\"step_name\":\"s\"}");
    ck_assert_str_eq(sx_json_str(st, "state"), "finished");
    ck_assert_str_eq(sx_json_str(st, "result.status"), "succeeded");
    cJSON_Delete(st);
}
END_TEST

START_TEST(busy_above_max_concurrent)
{
    struct call_arg slow[4];
    pthread_t th[4];
    char reqs[4][300];
    for (int i = 0; i < 4; i++) {
        snprintf(reqs[i], sizeof reqs[i],
                 "{\"op\":\"execute\",\"execution_id\":\"busy\",\"step_name\":\"s%d\",\"type\":\"script.run\","
                 "\"with\":{\"executor\":\"fake\",\"inline_script\":\"sleep 3\"}}", i);
        slow[i].json = reqs[i];
        slow[i].reply = NULL;
        pthread_create(&th[i], NULL, call_thread, &slow[i]);
    }
    for (int i = 0; i < 100; i++) { /* until all four are in flight */
        cJSON *h = sx_harness_call(&H, "{\"op\":\"health\"}");
        int n = (int)num(h, "in_flight", NULL);
        cJSON_Delete(h);
        if (n == 4)
            break;
        usleep(50 * 1000);
    }
    cJSON *r = run("busy", "s4", "{\"executor\":\"fake\",\"inline_script\":\"out x\"}");
    assert_error(r, "error", "busy");
    cJSON_Delete(r);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_ptr_nonnull(strstr(slow[i].reply, "succeeded"));
        free(slow[i].reply);
    }
    /* four concurrent runs, each with its records (group-committed) */
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "busy", NULL), 4);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.finished", "busy", NULL), 4);
}
END_TEST

START_TEST(cancel_kills_run)
{
    struct call_arg slow = {"{\"op\":\"execute\",\"execution_id\":\"run-12\",\"step_name\":\"s\","
                            "\"type\":\"script.run\",\"with\":{\"inline_script\":\"echo started; sleep 60\"}}",
                            NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &slow);
    wait_started("run-12", "s"); /* cancel a script that runs */
    cJSON *c = NULL;
    for (int i = 0; i < 100; i++) {
        c = sx_harness_call(&H, "{\"op\":\"cancel\",\"execution_id\":\"run-12\",\"step_name\":\"s\"}");
        if (strcmp(sx_json_str(c, "status"), "ok") == 0)
            break;
        cJSON_Delete(c);
        c = NULL;
        usleep(50 * 1000);
    }
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(sx_json_str(c, "cancel"), "requested");
    cJSON_Delete(c);
    pthread_join(th, NULL);
    cJSON *r = cJSON_Parse(slow.reply);
    assert_error(r, "cancelled", "cancelled");
    ck_assert_str_eq(sx_json_str(r, "output.termination.reason"), "cancelled");
    cJSON_Delete(r);
    free(slow.reply);
}
END_TEST

START_TEST(render_native_plan)
{
    cJSON *r = sx_harness_call(&H, "{\"op\":\"render\",\"type\":\"script.run\",\"with\":{"
                                   "\"inline_script\":\"echo hi\",\"args\":[\"a\"],\"env\":{\"TOKEN\":\"s3cret\"}}}");
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    ck_assert_str_eq(sx_json_str(r, "render.executor"), "shell");
    const cJSON *argv = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "render"), "plan"), "argv");
    ck_assert(cJSON_IsArray(argv));
    ck_assert_str_eq(cJSON_GetArrayItem(argv, 0)->valuestring, "/bin/bash");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_ptr_nonnull(strstr(text, "TOKEN"));
    ck_assert_ptr_null(strstr(text, "s3cret")); /* names, never values */
    free(text);
    cJSON_Delete(r);
}
END_TEST

START_TEST(describe_lists_loaded_plugins)
{
    cJSON *r = sx_harness_call(&H, "{\"op\":\"describe\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    const cJSON *plugins = cJSON_GetObjectItem(r, "plugins");
    ck_assert_int_eq(cJSON_GetArraySize(plugins), 4);
    const cJSON *execs = cJSON_GetObjectItem(r, "executors");
    ck_assert_int_eq(cJSON_GetArraySize(execs), 3);
    ck_assert_str_eq(sx_json_str(cJSON_GetArrayItem(execs, 2), "kind"), "exec.fake");
    const cJSON *steps = cJSON_GetObjectItem(r, "step_types");
    ck_assert_str_eq(sx_json_str(cJSON_GetArrayItem(steps, 0), "type"), "script.run");
    cJSON_Delete(r);
}
END_TEST

START_TEST(events_stream_output)
{
    nng_socket sub;
    ck_assert_int_eq(nng_sub0_open(&sub), 0);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "exec.", 5);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
    ck_assert_int_eq(nng_dial(sub, H.events_url, NULL, 0), 0);
    /* The subscription reaches the publisher asynchronously: run warm-up
     * steps until one of their events arrives, instead of guessing a delay. */
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 200);
    int warm = 0;
    for (int i = 0; i < 50 && !warm; i++) {
        char step[32];
        snprintf(step, sizeof step, "warm-%d", i);
        cJSON_Delete(run("warmup", step, "{\"executor\":\"fake\",\"inline_script\":\"out warm\"}"));
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(sub, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
            warm = 1;
            nng_free(buf, sz);
        }
    }
    ck_assert(warm);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
    cJSON *r = run("run-13", "ev", "{\"inline_script\":\"echo live-output\",\"env\":{\"TOKEN\":\"hunter2\"}}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    cJSON_Delete(r);
    int saw_output = 0, saw_finished = 0, saw_started = 0;
    for (int i = 0; i < 400 && !saw_finished; i++) { /* skips the warm-up's events */
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(sub, &buf, &sz, NNG_FLAG_ALLOC) != 0)
            break;
        if (sz > 12 && memcmp(buf, "exec.output ", 12) == 0 && memmem(buf, sz, "live-output", 11))
            saw_output = 1;
        if (sz > 14 && memcmp(buf, "exec.finished ", 14) == 0 && memmem(buf, sz, "run-13", 6))
            saw_finished = 1;
        if (sz > 13 && memcmp(buf, "exec.started ", 13) == 0 && memmem(buf, sz, "run-13", 6)) {
            saw_started = 1;
            ck_assert_ptr_nonnull(memmem(buf, sz, "TOKEN", 5));
            ck_assert_ptr_null(memmem(buf, sz, "hunter2", 7)); /* names, never values */
        }
        nng_free(buf, sz);
    }
    nng_close(sub);
    ck_assert(saw_started);
    ck_assert(saw_output);
    ck_assert(saw_finished);
}
END_TEST

START_TEST(stalled_subscriber_never_stalls_execution)
{
    /* A subscriber that connects and never reads.  The run pushes ~50 MB of
     * output events at it; PUB drops what the subscriber cannot take, and
     * the run completes with its output intact in the reply. */
    nng_socket sub;
    ck_assert_int_eq(nng_sub0_open(&sub), 0);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_int(sub, NNG_OPT_RECVBUF, 1);
    ck_assert_int_eq(nng_dial(sub, H.events_url, NULL, 0), 0);
    usleep(200 * 1000);
    cJSON *r = run("run-17", "flood", "{\"executor\":\"fake\",\"inline_script\":\"outbytes 50000000\\nout END\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_int_eq((int)num(r, "output", "stdout_dropped_bytes"), 50000004 - 4096);
    const char *s = sx_json_str(r, "output.stdout");
    ck_assert_str_eq(s + strlen(s) - 4, "END\n");
    cJSON_Delete(r);
    /* and the host still answers */
    r = sx_harness_call(&H, "{\"op\":\"health\"}");
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    cJSON_Delete(r);
    nng_close(sub);
}
END_TEST

/* ---------------------------------------------------------- lifecycle */

START_TEST(sigterm_finishes_in_flight)
{
    cJSON *done = run("run-20", "before", "{\"inline_script\":\"echo before\"}");
    char *done_text = cJSON_PrintUnformatted(done);
    struct call_arg slow = {"{\"op\":\"execute\",\"execution_id\":\"run-14\",\"step_name\":\"s\","
                            "\"type\":\"script.run\",\"with\":{\"inline_script\":\"sleep 1; echo finished\"}}",
                            NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &slow);
    wait_started("run-14", "s");
    kill(H.pid, SIGTERM);
    usleep(100 * 1000);
    /* during the grace period: a repeat of a finished pair still gets its
     * recorded reply (not "shutting_down", which would invite a rerun
     * elsewhere); a new pair is refused */
    cJSON *again = run("run-20", "before", "{\"inline_script\":\"echo before\"}");
    char *again_text = cJSON_PrintUnformatted(again);
    ck_assert_str_eq(again_text, done_text);
    free(again_text);
    free(done_text);
    cJSON_Delete(again);
    cJSON_Delete(done);
    cJSON *fresh = run("run-20", "new", "{\"inline_script\":\"echo new\"}");
    assert_error(fresh, "error", "shutting_down");
    cJSON_Delete(fresh);
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(slow.reply);
    cJSON *r = cJSON_Parse(slow.reply);
    ck_assert_str_eq(sx_json_str(r, "status"), "succeeded");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "finished\n");
    cJSON_Delete(r);
    free(slow.reply);
    ck_assert_int_eq(sx_harness_stop(&H), 0);
}
END_TEST

START_TEST(sigterm_cancels_after_grace)
{
    char *cfg = base_config_with("shutdown_grace: 5s", "shutdown_grace: 1s");
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    char req[600];
    snprintf(req, sizeof req,
             "{\"op\":\"execute\",\"execution_id\":\"run-15\",\"step_name\":\"s\",\"type\":\"script.run\","
             "\"with\":{\"inline_script\":\"echo $$ > %s/pid; sleep 120\"}}", H.dir);
    struct call_arg slow = {req, NULL};
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &slow);
    wait_started("run-15", "s");
    kill(H.pid, SIGTERM);
    pthread_join(th, NULL);
    cJSON *r = cJSON_Parse(slow.reply);
    ck_assert_ptr_nonnull(r);
    assert_error(r, "cancelled", "cancelled");
    cJSON_Delete(r);
    free(slow.reply);
    ck_assert_int_eq(sx_harness_stop(&H), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/pid", H.dir);
    char *pid = sx_harness_slurp(path);
    ck_assert_ptr_nonnull(pid);
    ck_assert(kill((pid_t)atoi(pid), 0) == -1 && errno == ESRCH);
    free(pid);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.finished", "run-15", "s"), 1);
}
END_TEST

START_TEST(audit_failure_blocks_execution)
{
    char *cfg = base_config_with("\"@DIR@/audit.log\"", "\"/dev/full\"");
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    unlink("/tmp/sx-audit-blocked");
    cJSON *r = run("run-16", "s", "{\"inline_script\":\"touch /tmp/sx-audit-blocked\"}");
    assert_error(r, "error", "audit_unavailable");
    cJSON_Delete(r);
    ck_assert_int_eq(access("/tmp/sx-audit-blocked", F_OK), -1);
}
END_TEST

/* ------------------------------------------------------------- config */

START_TEST(config_errors_name_key_and_line)
{
    char out[8192];
    char *cfg = base_config_with("max_concurrent: 4", "max_concurent: 4");
    int rc = sx_harness_check_config(cfg, out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "max_concurent") && strstr(out, "line 6"), "%s", out);
    free(cfg);

    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@PLUGINS@\"\n"
                                 "    load: [script_run]\n  server:\n    max_concurrent: lots\n",
                                 out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "max_concurrent") && strstr(out, "line 6"), "%s", out);

    rc = sx_harness_check_config("script_executor:\n  server: {}\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "plugins"), "%s", out);

    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@PLUGINS@\"\n"
                                 "    load: [script_run, backend_native]\n"
                                 "  executors:\n    - name: a\n      kind: exec.native\n"
                                 "      default_work_dri: /tmp\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "default_work_dri") && strstr(out, "line 8"), "%s", out);

    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@PLUGINS@\"\n"
                                 "    load: [script_run]\n"
                                 "  executors:\n    - name: a\n      kind: exec.docker\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "exec.docker") && strstr(out, "line 6"), "%s", out);

    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@PLUGINS@\"\n"
                                 "    load: [script_run]\n  server:\n    idempotency_retention: 0\n",
                                 out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "idempotency_retention"), "%s", out);

    rc = sx_harness_check_config(BASE_CONFIG, out, sizeof out);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "backend_native"));
}
END_TEST

START_TEST(abi_gate_through_host)
{
    char out[8192];
    int rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                     "    load: [fx_newer_minor]\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    char newer[16], current[16];
    snprintf(newer, sizeof newer, "%d.%d", SX_ABI_MAJOR, SX_ABI_MINOR + 1);
    snprintf(current, sizeof current, "%d.%d", SX_ABI_MAJOR, SX_ABI_MINOR);
    ck_assert_msg(strstr(out, "fx_newer_minor.so") && strstr(out, newer) && strstr(out, current),
                  "%s", out);
    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                 "    load: [fx_other_major]\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "fx_other_major.so") && strstr(out, "2.0") && strstr(out, "major"), "%s", out);
    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                 "    load: [fx_older_minor]\n", out, sizeof out);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "ABI 1.0"));
    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                 "    load: [fx_init_fails]\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "config error (fixture_init_failed): plugin fx_init_fails failed to "
                              "initialise: fixture refuses to start: missing licence key"),
                  "%s", out);
    /* two files whose descriptors claim the same name: both named */
    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                 "    load: [fx_current, fx_claims_current]\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    char want[2048];
    snprintf(want, sizeof want,
             "config error (plugin_conflict): plugins %s/fx_current.so and "
             "%s/fx_claims_current.so both claim the name 'fx_current'",
             SX_FIXTURE_DIR, SX_FIXTURE_DIR);
    ck_assert_msg(strstr(out, want), "want '%s' in: %s", want, out);
    /* built from each previous minor's frozen SDK headers */
    for (int minor = 0; minor < SX_ABI_MINOR; minor++) {
        char *cfg, name[32], kind[32], abi[16];
        snprintf(name, sizeof name, "fx_sdk%d%d_backend", SX_ABI_MAJOR, minor);
        snprintf(kind, sizeof kind, "exec.sdk%d%d", SX_ABI_MAJOR, minor);
        snprintf(abi, sizeof abi, "ABI %d.%d", SX_ABI_MAJOR, minor);
        ck_assert_int_ge(asprintf(&cfg,
                                  "script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                  "    load: [%s]\n"
                                  "  executors:\n    - name: old\n      kind: %s\n",
                                  name, kind),
                         0);
        rc = sx_harness_check_config(cfg, out, sizeof out);
        free(cfg);
        ck_assert_msg(rc == 0, "%s", out);
        ck_assert_msg(strstr(out, name) && strstr(out, kind) && strstr(out, abi), "%s", out);
    }
    /* a kind added in 1.2, declared by a plugin built for 1.1 */
    rc = sx_harness_check_config("script_executor:\n  plugins:\n    dir: \"@FIXTURES@\"\n"
                                 "    load: [fx_policy_1_1]\n", out, sizeof out);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "fx_policy_1_1.so (fx_policy_1_1): kind 6 (policy) exists since SDK "
                              "ABI 1.2, but the plugin was built for ABI 1.1"), "%s", out);
}
END_TEST

/* A backend built from a previous minor's frozen SDK headers
 * (tests/fixtures/sdk-1.N; fixture fx_sdk1N_backend) behind script_run, in
 * the real host: loaded, initialised, configured, described and run over
 * nng, with its durable start record.  Loop test: _i is the minor. */
static char old_sdk_dir[64];
static char old_sdk_fixture[32];

static void old_sdk_link(const char *from_dir, const char *name)
{
    char target[1024], link_path[256];
    snprintf(target, sizeof target, "%s/%s.so", from_dir, name);
    snprintf(link_path, sizeof link_path, "%s/%s.so", old_sdk_dir, name);
    ck_assert_msg(symlink(target, link_path) == 0, "symlink %s: %s", link_path, strerror(errno));
}

static void old_sdk_cleanup(void)
{
    stop_host();
    const char *names[] = {"script_run", "audit_file", old_sdk_fixture};
    for (size_t i = 0; i < 3 && old_sdk_dir[0]; i++) {
        char link_path[256];
        snprintf(link_path, sizeof link_path, "%s/%s.so", old_sdk_dir, names[i]);
        unlink(link_path);
    }
    if (old_sdk_dir[0])
        rmdir(old_sdk_dir);
    old_sdk_dir[0] = '\0';
}

START_TEST(old_sdk_backend_runs_through_host)
{
    char sdk[16], kind[32], want[128];
    snprintf(sdk, sizeof sdk, "%d.%d", SX_ABI_MAJOR, _i);
    snprintf(kind, sizeof kind, "exec.sdk%d%d", SX_ABI_MAJOR, _i);
    snprintf(old_sdk_fixture, sizeof old_sdk_fixture, "fx_sdk%d%d_backend", SX_ABI_MAJOR, _i);
    /* one plugin directory holding the real plugins and the fixture */
    snprintf(old_sdk_dir, sizeof old_sdk_dir, "/tmp/sxit-sdk%d%d-XXXXXX", SX_ABI_MAJOR, _i);
    ck_assert_ptr_nonnull(mkdtemp(old_sdk_dir));
    old_sdk_link(SX_PLUGIN_DIR, "script_run");
    old_sdk_link(SX_PLUGIN_DIR, "audit_file");
    old_sdk_link(SX_FIXTURE_DIR, old_sdk_fixture);
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg,
                              "script_executor:\n"
                              "  server:\n"
                              "    listen: \"ipc://@DIR@/ctl.sock\"\n"
                              "    events: \"ipc://@DIR@/events.sock\"\n"
                              "  plugins:\n"
                              "    dir: \"%s\"\n"
                              "    load: [script_run, %s, audit_file]\n"
                              "  executors:\n"
                              "    - name: old\n"
                              "      kind: %s\n"
                              "      greeting: \"hello through the host\"\n"
                              "  audit:\n"
                              "    log_file: \"@DIR@/audit.log\"\n",
                              old_sdk_dir, old_sdk_fixture, kind),
                     0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);

    cJSON *r = run("run-old-sdk", "old",
                   "{\"inline_script\":\"echo hi\",\"interpreter\":\"/bin/sh\",\"stdin\":\"abc\\n\"}");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), "succeeded") == 0, "%s", text);
    free(text);
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "hello through the host\nabc\n");
    snprintf(want, sizeof want, "sdk%d%d: script of 7 bytes\n", SX_ABI_MAJOR, _i);
    ck_assert_str_eq(sx_json_str(r, "output.stderr"), want);
    ck_assert_int_eq((int)num(r, "output", "exit_code"), 0);
    ck_assert_str_eq(sx_json_str(r, "output.executor"), "old");
    ck_assert_str_eq(sx_json_str(r, "output.backend"), kind);
    ck_assert_str_eq(sx_json_str(r, "output.termination.reason"), "exited");
    cJSON_Delete(r);
    cJSON *started = sx_harness_audit_record(&H, "exec.started", "run-old-sdk", "old");
    ck_assert_ptr_nonnull(started);
    ck_assert_str_eq(sx_json_str(started, "sdk"), sdk); /* the plugin's extra_json */
    /* from 1.1 on, what it attached with exec_set_info (new in 1.1) */
    if (_i >= 1)
        ck_assert_str_eq(sx_json_str(started, "fixture_sdk"), sdk);
    else
        ck_assert_ptr_null(cJSON_GetObjectItem(started, "fixture_sdk"));
    cJSON_Delete(started);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.finished", "run-old-sdk", "old"), 1);

    r = sx_harness_call(&H, "{\"op\":\"describe\"}");
    ck_assert_ptr_nonnull(r);
    const cJSON *plugins = cJSON_GetObjectItem(r, "plugins");
    ck_assert_str_eq(sx_json_str(cJSON_GetArrayItem(plugins, 1), "name"), old_sdk_fixture);
    ck_assert_str_eq(sx_json_str(cJSON_GetArrayItem(plugins, 1), "abi"), sdk);
    const cJSON *ex = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "executors"), 0);
    ck_assert_str_eq(sx_json_str(ex, "details.sdk"), sdk);
    snprintf(want, sizeof want, "%d.%d", SX_ABI_MAJOR, SX_ABI_MINOR);
    ck_assert_str_eq(sx_json_str(ex, "details.host_abi"), want);
    cJSON_Delete(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host_integration");
    TCase *runs = tcase_create("runs");
    tcase_add_checked_fixture(runs, start_base, stop_host);
    tcase_add_test(runs, native_echo_succeeds);
    tcase_add_test(runs, failure_exit_code_and_error);
    tcase_add_test(runs, audit_records_content);
    tcase_add_test(runs, env_is_clean_and_per_executor);
    tcase_add_test(runs, stdin_args_workdir_python);
    tcase_add_test(runs, large_script_runs);
    tcase_add_test(runs, output_cap_keeps_head_and_tail);
    tcase_add_test(runs, timeout_kills_tree);
    tcase_set_timeout(runs, 60);
    suite_add_tcase(s, runs);

    TCase *idem = tcase_create("idempotency");
    tcase_add_checked_fixture(idem, start_base, stop_host);
    tcase_add_test(idem, repeat_returns_recorded_result);
    tcase_add_test(idem, refusal_is_not_remembered);
    tcase_add_test(idem, repeat_in_flight_waits_and_req_resend_is_harmless);
    tcase_set_timeout(idem, 60);
    suite_add_tcase(s, idem);

    TCase *bad = tcase_create("bad_input");
    tcase_add_checked_fixture(bad, start_base, stop_host);
    tcase_add_test(bad, bad_inputs_get_clear_errors);
    tcase_set_timeout(bad, 60);
    suite_add_tcase(s, bad);

    TCase *ctl = tcase_create("control");
    tcase_add_checked_fixture(ctl, start_base, stop_host);
    tcase_add_test(ctl, long_run_does_not_block_others);
    tcase_add_test(ctl, busy_above_max_concurrent);
    tcase_add_test(ctl, cancel_kills_run);
    tcase_add_test(ctl, render_native_plan);
    tcase_add_test(ctl, describe_lists_loaded_plugins);
    tcase_add_test(ctl, events_stream_output);
    tcase_add_test(ctl, stalled_subscriber_never_stalls_execution);
    tcase_set_timeout(ctl, 60);
    suite_add_tcase(s, ctl);

    TCase *life = tcase_create("lifecycle");
    tcase_add_test(life, sigterm_finishes_in_flight);
    tcase_add_checked_fixture(life, start_base, stop_host);
    suite_add_tcase(s, life);
    TCase *life2 = tcase_create("lifecycle_custom");
    tcase_add_test(life2, sigterm_cancels_after_grace);
    tcase_add_test(life2, audit_failure_blocks_execution);
    tcase_add_test(life2, parked_repeats_hold_no_worker);
    tcase_add_checked_fixture(life2, NULL, stop_host);
    tcase_set_timeout(life2, 60);
    suite_add_tcase(s, life2);

    TCase *cfg = tcase_create("config");
    tcase_add_test(cfg, config_errors_name_key_and_line);
    tcase_add_test(cfg, abi_gate_through_host);
    tcase_set_timeout(cfg, 60);
    suite_add_tcase(s, cfg);

    /* every previous minor, 1.0 .. current-1 */
    TCase *old_sdk = tcase_create("old_sdk");
    tcase_add_checked_fixture(old_sdk, NULL, old_sdk_cleanup);
    tcase_add_loop_test(old_sdk, old_sdk_backend_runs_through_host, 0, SX_ABI_MINOR);
    tcase_set_timeout(old_sdk, 60);
    suite_add_tcase(s, old_sdk);

    return sx_check_run(s);
}
