/*
 * test_policy.c - the policy pipeline through the real host over nng: the
 * policy plugin (JWT and peer-uid identity, RBAC, limits, the script
 * validator) with script_run, backend_native and audit_file.
 *
 * Tokens are minted here (tests/support/test_jwt.c) with a shared secret
 * written to a private directory; the host verifies them with OpenSSL.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"
#include "test_jwt.h"

static const char SECRET[] = "integration-secret-0123456789-abcdefghijklmnop";
static char KEYS[64];          /* private dir holding the secret */
static sx_harness H;

/* @KEYS@ is the secret's directory; @MODE@ the auth mode line;
 * @PEERS@ the peer_uids entries. */
static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_message_size: 65536\n"
    "    max_concurrent: 4\n"
    "    shutdown_grace: 5s\n"
    "    auth: {@MODE@}\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_native, audit_file, policy]\n"
    "  executors:\n"
    "    - name: shell\n"
    "      kind: exec.native\n"
    "      default_work_dir: @DIR@\n"
    "      default_env: {PATH: \"/usr/local/bin:/usr/bin:/bin\"}\n"
    "    - name: restricted\n"
    "      kind: exec.native\n"
    "      default_work_dir: /tmp\n"
    "      default_env: {PATH: \"/usr/bin:/bin\"}\n"
    "  default_executor: shell\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n"
    "  security:\n"
    "    default_timeout: 1m\n"
    "    max_timeout: 10m\n"
    "  identity:\n"
    "    jwt:\n"
    "      algorithm: HS256\n"
    "      secret_file: \"@KEYS@/jwt.secret\"\n"
    "      issuer: https://idp.test\n"
    "      audience: script-executor\n"
    "    peer_uids:\n"
    "@PEERS@"
    "  rbac:\n"
    "    roles:\n"
    "      - name: runner\n"
    "        permissions: [executors.use.script]\n"
    "      - name: lead\n"
    "        permissions: [\"executors.use.*\"]\n"
    "    bindings:\n"
    "      - role: runner\n"
    "        groups: [sre]\n"
    "      - role: lead\n"
    "        groups: [sre-leads]\n"
    "    executor_permissions:\n"
    "      restricted: executors.use.restricted\n";

/* CONFIG with the placeholders of this file replaced (caller frees). */
static char *config_for(const char *mode, const char *peers)
{
    const char *from[] = {"@KEYS@", "@MODE@", "@PEERS@"};
    const char *to[] = {KEYS, mode, peers};
    char *cur = strdup(CONFIG);
    for (int i = 0; i < 3; i++) {
        char *at;
        while ((at = strstr(cur, from[i])) != NULL) {
            char *next;
            ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)(at - cur), cur, to[i],
                                      at + strlen(from[i])), 0);
            free(cur);
            cur = next;
        }
    }
    return cur;
}

static void start_with(const char *mode, const char *peers)
{
    char *cfg = config_for(mode, peers);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
}

/* Default: tokens or peer uid; only uid 4242 (not ours) is mapped. */
static void start_jwt(void)
{
    start_with("mode: jwt_or_peer_uid", "      - {uid: 4242, user: someone}\n");
}

static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

static void keys_setup(void)
{
    snprintf(KEYS, sizeof KEYS, "/tmp/sxkeys-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(KEYS));
    char path[128];
    snprintf(path, sizeof path, "%s/jwt.secret", KEYS);
    ck_assert_int_eq(sx_test_write_file(path, SECRET, sizeof SECRET - 1), 0);
}

static void keys_teardown(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/jwt.secret", KEYS);
    unlink(path);
    rmdir(KEYS);
}

/* A token for `sub` with groups (JSON array text), exp relative to now. */
static char *token(const char *sub, const char *groups, long exp_off)
{
    long long now = (long long)time(NULL);
    char *payload;
    ck_assert_int_ge(asprintf(&payload, "{\"sub\":\"%s\",\"groups\":%s,\"iss\":\"https://idp.test\","
                                        "\"aud\":\"script-executor\",\"iat\":%lld,\"exp\":%lld}",
                              sub, groups, now - 5, now + exp_off), 0);
    char *t = sx_test_jwt("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "HS256", SECRET,
                          sizeof SECRET - 1, NULL);
    free(payload);
    return t;
}

/* op with a caller object (JSON text) and `with` (JSON text). */
static cJSON *call(const char *op, const char *id, const char *caller, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"%s\",\"execution_id\":\"%s\",\"step_name\":\"s\","
                                    "\"runbook_id\":\"rb.policy\",\"type\":\"script.run\","
                                    "\"caller\":%s,\"with\":%s}",
                              op, id, caller, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static char *caller_token(const char *tok)
{
    char *c;
    ck_assert_int_ge(asprintf(&c, "{\"token\":\"%s\"}", tok), 0);
    return c;
}

static void expect(cJSON *r, const char *status, const char *code, const char *in_message)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want %s: %s", status, text);
    if (code)
        ck_assert_msg(strcmp(sx_json_str(r, "error.code"), code) == 0, "want %s: %s", code, text);
    if (in_message)
        ck_assert_msg(strstr(sx_json_str(r, "error.message"), in_message) != NULL,
                      "want '%s' in the message: %s", in_message, text);
    free(text);
}

/* the token (and its signature) appear in neither the audit log nor the
 * host's log */
static void assert_not_logged(const char *tok)
{
    const char *sig = strrchr(tok, '.') + 1;
    const char *files[] = {H.audit_path, H.log_path};
    for (int i = 0; i < 2; i++) {
        char *text = sx_harness_slurp(files[i]);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strstr(text, tok) == NULL, "token in %s", files[i]);
        ck_assert_msg(strstr(text, sig) == NULL, "token signature in %s", files[i]);
        ck_assert_msg(strstr(text, SECRET) == NULL, "secret in %s", files[i]);
        free(text);
    }
}

/* ------------------------------------------------------------ identity */

START_TEST(good_jwt_runs_end_to_end)
{
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    cJSON *r = call("execute", "jwt-1", caller, "{\"inline_script\":\"echo hello\","
                                               "\"interpreter\":\"/bin/sh\"}");
    expect(r, "succeeded", NULL, NULL);
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "hello\n");
    cJSON_Delete(r);
    /* audited as the verified user, with how it was verified */
    cJSON *acc = sx_harness_audit_record(&H, "exec.accepted", "jwt-1", "s");
    ck_assert_ptr_nonnull(acc);
    ck_assert_str_eq(sx_json_str(acc, "user"), "alice");
    ck_assert_str_eq(sx_json_str(acc, "auth_method"), "jwt");
    const cJSON *groups = cJSON_GetObjectItem(acc, "groups");
    ck_assert_int_eq(cJSON_GetArraySize(groups), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(groups, 0)->valuestring, "sre");
    cJSON_Delete(acc);
    cJSON *st = sx_harness_audit_record(&H, "exec.started", "jwt-1", "s");
    ck_assert_str_eq(sx_json_str(st, "user"), "alice");
    cJSON_Delete(st);
    /* caller.user may be sent, if it is the token's */
    char *c2;
    ck_assert_int_ge(asprintf(&c2, "{\"user\":\"alice\",\"groups\":[\"sre\"],\"token\":\"%s\"}",
                              tok), 0);
    r = call("execute", "jwt-2", c2, "{\"inline_script\":\"true\"}");
    expect(r, "succeeded", NULL, NULL);
    cJSON_Delete(r);
    free(c2);
    assert_not_logged(tok);
    free(caller);
    free(tok);
}
END_TEST

START_TEST(unauthenticated_requests)
{
    unlink("/tmp/sx-policy-unauth");
    const char *with = "{\"inline_script\":\"touch /tmp/sx-policy-unauth\"}";
    /* no token, and our uid is not mapped */
    cJSON *r = call("execute", "un-1", "{\"user\":\"alice\",\"groups\":[\"sre\"]}", with);
    expect(r, "rejected", "unauthenticated", "is not mapped");
    cJSON_Delete(r);
    cJSON *rec = sx_harness_audit_record(&H, "request.rejected", "un-1", "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "error.code"), "unauthenticated");
    ck_assert_str_eq(sx_json_str(rec, "claimed_user"), "alice");
    cJSON_Delete(rec);
    /* expired */
    char *tok = token("alice", "[\"sre\"]", -600);
    char *caller = caller_token(tok);
    r = call("execute", "un-2", caller, with);
    expect(r, "rejected", "unauthenticated", "expired");
    cJSON_Delete(r);
    assert_not_logged(tok);
    free(caller);
    free(tok);
    /* signed with another secret */
    static const char other[] = "not-the-secret-0123456789-abcdefghijklmnopqr";
    char *payload;
    ck_assert_int_ge(asprintf(&payload, "{\"sub\":\"alice\",\"groups\":[\"sre\"],\"iss\":"
                                        "\"https://idp.test\",\"aud\":\"script-executor\","
                                        "\"exp\":%lld}", (long long)time(NULL) + 300), 0);
    tok = sx_test_jwt("{\"alg\":\"HS256\"}", payload, "HS256", other, sizeof other - 1, NULL);
    caller = caller_token(tok);
    r = call("execute", "un-3", caller, with);
    expect(r, "rejected", "unauthenticated", "signature");
    cJSON_Delete(r);
    free(caller);
    free(tok);
    /* alg none */
    tok = sx_test_jwt("{\"alg\":\"none\"}", payload, "none", NULL, 0, NULL);
    caller = caller_token(tok);
    r = call("execute", "un-4", caller, with);
    expect(r, "rejected", "unauthenticated", "'none'");
    cJSON_Delete(r);
    free(caller);
    free(tok);
    free(payload);
    /* a good token for alice, but the request claims to be bob / lead */
    tok = token("alice", "[\"sre\"]", 300);
    char *c;
    ck_assert_int_ge(asprintf(&c, "{\"user\":\"bob\",\"token\":\"%s\"}", tok), 0);
    r = call("execute", "un-5", c, with);
    expect(r, "rejected", "unauthenticated", "caller.user 'bob'");
    cJSON_Delete(r);
    free(c);
    ck_assert_int_ge(asprintf(&c, "{\"groups\":[\"sre-leads\"],\"token\":\"%s\"}", tok), 0);
    r = call("execute", "un-6", c, with);
    expect(r, "rejected", "unauthenticated", "sre-leads");
    cJSON_Delete(r);
    free(c);
    free(tok);
    /* render is authenticated too */
    r = call("render", "un-7", "{}", "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "unauthenticated", NULL);
    cJSON_Delete(r);
    ck_assert_int_eq(access("/tmp/sx-policy-unauth", F_OK), -1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", NULL, NULL), 0);
    ck_assert_int_ge(sx_harness_audit_count(&H, "request.rejected", NULL, NULL), 7);
}
END_TEST

/* ---------------------------------------------------------------- RBAC */

START_TEST(forbidden_is_refused_and_audited)
{
    char *tok = token("mallory", "[\"guests\"]", 300);
    char *caller = caller_token(tok);
    cJSON *r = call("execute", "fb-1", caller, "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "forbidden", "'executors.use.script'");
    cJSON_Delete(r);
    cJSON *rec = sx_harness_audit_record(&H, "request.rejected", "fb-1", "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "user"), "mallory");
    ck_assert_str_eq(sx_json_str(rec, "auth_method"), "jwt");
    ck_assert_str_eq(sx_json_str(rec, "error.code"), "forbidden");
    ck_assert_ptr_nonnull(strstr(sx_json_str(rec, "error.message"), "executors.use.script"));
    cJSON_Delete(rec);
    free(caller);
    free(tok);
    /* alice may run, but not on the restricted executor */
    tok = token("alice", "[\"sre\"]", 300);
    caller = caller_token(tok);
    r = call("execute", "fb-2", caller, "{\"inline_script\":\"true\",\"executor\":\"restricted\"}");
    expect(r, "rejected", "forbidden", "'executors.use.restricted'");
    cJSON_Delete(r);
    free(caller);
    free(tok);
    /* a lead may */
    tok = token("bob", "[\"sre\",\"sre-leads\"]", 300);
    caller = caller_token(tok);
    r = call("execute", "fb-3", caller, "{\"inline_script\":\"echo lead\",\"executor\":\"restricted\"}");
    expect(r, "succeeded", NULL, NULL);
    ck_assert_str_eq(sx_json_str(r, "output.executor"), "restricted");
    cJSON_Delete(r);
    free(caller);
    free(tok);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "fb-1", NULL), 0);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "fb-2", NULL), 0);
}
END_TEST

/* ----------------------------------------------------------- validator */

START_TEST(blocked_commands_list_every_finding)
{
    unlink("/tmp/sx-policy-blocked");
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    cJSON *r = call("execute", "bl-1", caller,
                    "{\"inline_script\":\"touch /tmp/sx-policy-blocked\\necho \\\"rm is text\\\"\\n"
                    "rm -rf /tmp/sx-x\\nls | sudo tee /x\\ny=$(/sbin/reboot)\\n\"}");
    expect(r, "rejected", "blocked_command", "rule 'rm'");
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "error.message"), "line 3"));
    const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "findings");
    ck_assert_int_eq(cJSON_GetArraySize(f), 3);
    const char *rules[] = {"rm", "sudo", "reboot"};
    const int lines[] = {3, 4, 5};
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, i), "rule")->valuestring,
                         rules[i]);
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, i), "line")->valueint, lines[i]);
    }
    /* the hash of what was refused, for the record */
    ck_assert_int_eq(strncmp(sx_json_str(r, "output.script_hash"), "sha256:", 7), 0);
    cJSON_Delete(r);
    /* nothing ran; the refusal is audited with its findings */
    ck_assert_int_eq(access("/tmp/sx-policy-blocked", F_OK), -1);
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.started", "bl-1", "s"), 0);
    cJSON *rec = sx_harness_audit_record(&H, "exec.rejected", "bl-1", "s");
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(sx_json_str(rec, "error.code"), "blocked_command");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "error"),
                                                            "findings")), 3);
    cJSON_Delete(rec);
    /* python: the literal passed to os.system */
    r = call("execute", "bl-2", caller, "{\"interpreter\":\"python3\",\"inline_script\":"
                                        "\"import os\\nos.system('sudo id')\\n\"}");
    expect(r, "rejected", "blocked_command", "rule 'sudo'");
    cJSON_Delete(r);
    /* a refusal is not remembered: the corrected request runs */
    r = call("execute", "bl-1", caller, "{\"inline_script\":\"echo fixed\"}");
    expect(r, "succeeded", NULL, NULL);
    cJSON_Delete(r);
    free(caller);
    free(tok);
}
END_TEST

START_TEST(step_allowlist_and_blocklist)
{
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    const char *allow = "\"allowed_commands\":[\"echo\",\"regex:^date( |$)\",\"tr\"]";
    char *with;
    ck_assert_int_ge(asprintf(&with, "{%s,\"inline_script\":\"echo ok\\ndate +%%s | tr -d 0\\n"
                                     "ls /\\nid\\n\"}", allow), 0);
    cJSON *r = call("execute", "al-1", caller, with);
    expect(r, "rejected", "command_not_allowed", "'ls /' at line 3");
    const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "findings");
    ck_assert_int_eq(cJSON_GetArraySize(f), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(f, 1), "command")->valuestring, "id");
    cJSON_Delete(r);
    free(with);
    ck_assert_int_ge(asprintf(&with, "{%s,\"inline_script\":\"echo ok; date +%%Y | tr -d 9\"}",
                              allow), 0);
    r = call("execute", "al-2", caller, with);
    expect(r, "succeeded", NULL, NULL);
    ck_assert_ptr_nonnull(strstr(sx_json_str(r, "output.stdout"), "ok\n"));
    cJSON_Delete(r);
    free(with);
    /* the step's blocked_commands add to the configured ones */
    r = call("execute", "al-3", caller, "{\"blocked_commands\":[\"wget*\"],"
                                        "\"inline_script\":\"wget2 http://example.invalid\"}");
    expect(r, "rejected", "blocked_command", "with.blocked_commands");
    cJSON_Delete(r);
    /* render checks the script the same way */
    r = call("render", "al-4", caller, "{\"inline_script\":\"echo a; rm -f /tmp/x\"}");
    expect(r, "rejected", "blocked_command", "rule 'rm'");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"),
                                                            "findings")), 1);
    cJSON_Delete(r);
    r = call("render", "al-5", caller, "{\"inline_script\":\"echo a\"}");
    expect(r, "ok", NULL, NULL);
    cJSON_Delete(r);
    free(caller);
    free(tok);
}
END_TEST

/* -------------------------------------------------------------- limits */

START_TEST(limits_for_every_backend)
{
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    cJSON *r = call("execute", "lim-1", caller, "{\"inline_script\":\"true\",\"timeout\":\"11m\"}");
    expect(r, "rejected", "invalid_parameter", "security.max_timeout (10m)");
    cJSON_Delete(r);
    /* caps hold before the backend is asked (native takes no resources) */
    r = call("execute", "lim-2", caller, "{\"inline_script\":\"true\",\"backoff_limit\":4}");
    expect(r, "rejected", "invalid_parameter", "limits.max_backoff_limit");
    cJSON_Delete(r);
    r = call("execute", "lim-3", caller,
             "{\"inline_script\":\"true\",\"resources\":{\"limits\":{\"memory\":\"64Gi\"}}}");
    expect(r, "rejected", "invalid_parameter", "exceeds the cap of 8Gi");
    cJSON_Delete(r);
    r = call("execute", "lim-4", caller,
             "{\"inline_script\":\"true\",\"ttl_seconds_after_finished\":999999}");
    expect(r, "rejected", "invalid_parameter", "ttl_seconds_after_finished");
    cJSON_Delete(r);
    /* within the caps, on a backend without `resources`: no default is
     * added (the step runs, nothing unsupported was injected) */
    r = call("execute", "lim-5", caller, "{\"inline_script\":\"echo in-limits\",\"timeout\":\"10m\"}");
    expect(r, "succeeded", NULL, NULL);
    cJSON_Delete(r);
    ck_assert_int_ge(sx_harness_audit_count(&H, "request.rejected", NULL, NULL), 4);
    free(caller);
    free(tok);
}
END_TEST

START_TEST(max_message_size_enforced)
{
    size_t n = 65536 + 512;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    char *reply = sx_harness_call_raw(&H, big, n);
    ck_assert_ptr_nonnull(reply);
    ck_assert_ptr_nonnull(strstr(reply, "message_too_large"));
    free(reply);
    free(big);
    /* refused before authentication: no credentials were needed to be
     * told, and the host still serves */
    cJSON *r = sx_harness_call(&H, "{\"op\":\"health\"}");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(sx_json_str(r, "status"), "ok");
    cJSON_Delete(r);
    ck_assert_int_ge(sx_harness_audit_count(&H, "request.rejected", NULL, NULL), 1);
}
END_TEST

START_TEST(describe_shows_policy_without_secrets)
{
    /* describe, status, cancel and list name their caller too */
    const char *anon[] = {"{\"op\":\"describe\"}", "{\"op\":\"list\"}",
                          "{\"op\":\"cancel\",\"execution_id\":\"x\",\"step_name\":\"s\"}",
                          "{\"op\":\"status\",\"execution_id\":\"x\",\"step_name\":\"s\"}"};
    for (size_t i = 0; i < sizeof anon / sizeof anon[0]; i++) {
        cJSON *a = sx_harness_call(&H, anon[i]);
        ck_assert_ptr_nonnull(a);
        ck_assert_msg(strcmp(sx_json_str(a, "error.code"), "unauthenticated") == 0, "%s", anon[i]);
        cJSON_Delete(a);
    }
    char *tok = token("alice", "[\"sre\"]", 300), *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"describe\",\"caller\":{\"token\":\"%s\"}}", tok), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    free(tok);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(sx_json_str(r, "auth.mode"), "jwt_or_peer_uid");
    const cJSON *pol = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "policies"), 0);
    ck_assert_ptr_nonnull(pol);
    ck_assert_str_eq(sx_json_str(pol, "plugin"), "policy");
    ck_assert_str_eq(sx_json_str(pol, "details.identity.jwt.algorithm"), "HS256");
    ck_assert_str_eq(sx_json_str(pol, "details.required_permission"), "executors.use.script");
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_ptr_null(strstr(text, SECRET));
    ck_assert_ptr_nonnull(strstr(text, "executor_permissions"));
    free(text);
    cJSON_Delete(r);
}
END_TEST

/* -------------------------------------------------------------- peer uid */

/* Run `json` as another uid: this test binary re-executed with --send
 * after setuid (see main).  Returns the reply text (malloc'ed) or NULL. */
static char *send_as(uid_t uid, const char *json)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (setgid(uid) != 0 || setuid(uid) != 0)
            _exit(3);
        execl("/proc/self/exe", "test_policy", "--send", H.ctl_url, json, (char *)NULL);
        _exit(4);
    }
    close(fds[1]);
    char buf[8192];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(fds[0]);
    buf[n] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sender exited %d", status);
    return strdup(buf);
}

static void start_peer(void)
{
    char peers[128];
    snprintf(peers, sizeof peers, "      - {uid: %u, user: operator, groups: [sre]}\n",
             (unsigned)getuid());
    start_with("mode: peer_uid, ipc_permissions: \"0666\"", peers);
}

START_TEST(peer_uid_identifies_the_caller)
{
    cJSON *r = call("execute", "peer-1", "{}", "{\"inline_script\":\"echo as-operator\"}");
    expect(r, "succeeded", NULL, NULL);
    cJSON_Delete(r);
    cJSON *acc = sx_harness_audit_record(&H, "exec.accepted", "peer-1", "s");
    ck_assert_str_eq(sx_json_str(acc, "user"), "operator");
    ck_assert_str_eq(sx_json_str(acc, "auth_method"), "peer_uid");
    ck_assert_int_eq(cJSON_GetObjectItem(acc, "peer_uid")->valueint, (int)getuid());
    cJSON_Delete(acc);
    /* claiming to be someone else, or bringing a token: refused */
    r = call("execute", "peer-2", "{\"user\":\"root\"}", "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "unauthenticated", "caller.user 'root'");
    cJSON_Delete(r);
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    r = call("execute", "peer-3", caller, "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "unauthenticated", "Unix uid");
    cJSON_Delete(r);
    free(caller);
    free(tok);
    /* the socket file has the configured mode */
    struct stat st;
    char path[300];
    snprintf(path, sizeof path, "%s/ctl.sock", H.dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0666);
    /* another uid (needs root to become it): not mapped, refused */
    if (getuid() == 0) {
        char *reply = send_as(65534, "{\"op\":\"execute\",\"execution_id\":\"peer-4\","
                                     "\"step_name\":\"s\",\"type\":\"script.run\","
                                     "\"with\":{\"inline_script\":\"true\"}}");
        ck_assert_msg(strstr(reply, "\"unauthenticated\"") != NULL, "%s", reply);
        ck_assert_msg(strstr(reply, "65534") != NULL, "%s", reply);
        free(reply);
    }
}
END_TEST

/* ----------------------------------------------------- trusted, config */

START_TEST(trusted_mode_with_policy)
{
    start_with("mode: trusted", "      - {uid: 4242, user: someone}\n");
    cJSON *r = call("execute", "tr-1", "{\"user\":\"alice\",\"groups\":[\"sre\"]}",
                    "{\"inline_script\":\"true\"}");
    expect(r, "succeeded", NULL, NULL);
    cJSON_Delete(r);
    cJSON *acc = sx_harness_audit_record(&H, "exec.accepted", "tr-1", "s");
    ck_assert_str_eq(sx_json_str(acc, "auth_method"), "trusted");
    cJSON_Delete(acc);
    /* RBAC still applies to the claimed groups; the validator too */
    r = call("execute", "tr-2", "{\"user\":\"eve\",\"groups\":[\"guests\"]}",
             "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "forbidden", NULL);
    cJSON_Delete(r);
    r = call("execute", "tr-3", "{\"user\":\"alice\",\"groups\":[\"sre\"]}",
             "{\"inline_script\":\"shutdown -h now\"}");
    expect(r, "rejected", "blocked_command", NULL);
    cJSON_Delete(r);
    /* no token is verified on a trusted listener: refused, not ignored */
    char *tok = token("alice", "[\"sre\"]", 300);
    char *caller = caller_token(tok);
    r = call("execute", "tr-4", caller, "{\"inline_script\":\"true\"}");
    expect(r, "rejected", "unsupported_parameter", "trusts callers");
    cJSON_Delete(r);
    free(caller);
    free(tok);
}
END_TEST

START_TEST(auth_config_errors)
{
    char out[4096];
    /* a verifying mode needs a policy plugin */
    const char *no_policy =
        "script_executor:\n"
        "  server: {listen: \"ipc://@DIR@/c.sock\", auth: {mode: jwt}}\n"
        "  plugins: {dir: \"@PLUGINS@\", load: [script_run, backend_native]}\n"
        "  executors: [{name: shell, kind: exec.native}]\n";
    ck_assert_int_ne(sx_harness_check_config(no_policy, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "needs a policy plugin") != NULL, "%s", out);
    /* peer uid needs ipc:// */
    char *cfg = config_for("mode: peer_uid", "      - {uid: 1, user: x}\n");
    char *tcp = strstr(cfg, "ipc://@DIR@/ctl.sock");
    ck_assert_ptr_nonnull(tcp);
    char *bad;
    ck_assert_int_ge(asprintf(&bad, "%.*stcp://127.0.0.1:0%s", (int)(tcp - cfg), cfg,
                              tcp + strlen("ipc://@DIR@/ctl.sock")), 0);
    ck_assert_int_ne(sx_harness_check_config(bad, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "needs an ipc:// listener") != NULL, "%s", out);
    free(bad);
    free(cfg);
    cfg = config_for("mode: kerberos", "      - {uid: 1, user: x}\n");
    ck_assert_int_ne(sx_harness_check_config(cfg, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "kerberos") != NULL, "%s", out);
    free(cfg);
    cfg = config_for("mode: jwt, ipc_perms: \"0600\"", "      - {uid: 1, user: x}\n");
    ck_assert_int_ne(sx_harness_check_config(cfg, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "ipc_perms") != NULL, "%s", out);
    free(cfg);
    /* a good one reports its mode */
    cfg = config_for("mode: jwt", "      - {uid: 1, user: x}\n");
    ck_assert_int_eq(sx_harness_check_config(cfg, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "auth: jwt") != NULL, "%s", out);
    free(cfg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("policy_integration");
    TCase *jwt = tcase_create("jwt");
    tcase_add_unchecked_fixture(jwt, keys_setup, keys_teardown);
    tcase_add_checked_fixture(jwt, start_jwt, stop_host);
    tcase_set_timeout(jwt, 120);
    tcase_add_test(jwt, good_jwt_runs_end_to_end);
    tcase_add_test(jwt, unauthenticated_requests);
    tcase_add_test(jwt, forbidden_is_refused_and_audited);
    tcase_add_test(jwt, blocked_commands_list_every_finding);
    tcase_add_test(jwt, step_allowlist_and_blocklist);
    tcase_add_test(jwt, limits_for_every_backend);
    tcase_add_test(jwt, max_message_size_enforced);
    tcase_add_test(jwt, describe_shows_policy_without_secrets);
    suite_add_tcase(s, jwt);

    TCase *peer = tcase_create("peer_uid");
    tcase_add_unchecked_fixture(peer, keys_setup, keys_teardown);
    tcase_add_checked_fixture(peer, start_peer, stop_host);
    tcase_set_timeout(peer, 120);
    tcase_add_test(peer, peer_uid_identifies_the_caller);
    suite_add_tcase(s, peer);

    TCase *other = tcase_create("modes");
    tcase_add_unchecked_fixture(other, keys_setup, keys_teardown);
    tcase_add_checked_fixture(other, NULL, stop_host);
    tcase_set_timeout(other, 120);
    tcase_add_test(other, trusted_mode_with_policy);
    tcase_add_test(other, auth_config_errors);
    suite_add_tcase(s, other);
    return s;
}

int main(int argc, char **argv)
{
    /* --send URL JSON: one request, the reply on stdout (used by send_as,
     * after it changed uid) */
    if (argc == 4 && strcmp(argv[1], "--send") == 0) {
        sx_harness h;
        memset(&h, 0, sizeof h);
        snprintf(h.ctl_url, sizeof h.ctl_url, "%s", argv[2]);
        char *reply = sx_harness_call_raw(&h, argv[3], strlen(argv[3]));
        if (reply == NULL)
            return 1;
        fputs(reply, stdout);
        free(reply);
        return 0;
    }
    return sx_check_run(suite());
}
