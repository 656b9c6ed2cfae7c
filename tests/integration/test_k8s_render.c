/*
 * test_k8s_render.c - the Kubernetes backend in the real host, over nng,
 * without a cluster: render (the Job and the Secret exactly as a run would
 * create them, secret values masked), refusals, describe, and config errors
 * at start-up.  The client is configured from a kubeconfig whose server is
 * a closed port: render, describe and the option checks never contact it.
 * The rendered Job is checked with ../shared/k8s/validate-job.  Readiness
 * (/readyz asks the backend's ready op) is checked against the closed port
 * and against the fake API server (tests/k8s_fake), allowed and forbidden.
 */
#define _GNU_SOURCE
#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"
#include "sx_check_main.h"

static sx_harness H;
static char kube_dir[64];
static char kube_path[128];

static const char *KUBECONFIG =
    "apiVersion: v1\n"
    "kind: Config\n"
    "clusters:\n"
    "- name: nowhere\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:9\n"
    "users:\n"
    "- name: u\n"
    "  user:\n"
    "    token: not-a-real-token\n"
    "contexts:\n"
    "- name: ctx\n"
    "  context:\n"
    "    cluster: nowhere\n"
    "    user: u\n"
    "    namespace: from-kubeconfig\n"
    "current-context: ctx\n";

/* @KUBECONFIG@ is replaced by kube_path. */
static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_message_size: 1048576\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_k8s, audit_file]\n"
    "  kubernetes:\n"
    "    service_account: runner-from-section\n"
    "    max_resources:\n"
    "      limits: {cpu: '2', memory: 4Gi}\n"
    "  security:\n"
    "    run_as_user: 1000\n"
    "  executors:\n"
    "    - name: k8s\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: \"@KUBECONFIG@\"\n"
    "      image: harbor.company.internal/sre/base:v1.0.0\n"
    "      host_id: render-test\n"
    "      api_timeout: 2s\n"
    "    - name: k8s-team\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: \"@KUBECONFIG@\"\n"
    "      image: harbor.company.internal/sre/base:v1.0.0\n"
    "      namespace: team-a\n"
    "      run_as_user: 2000\n"
    "      host_id: render-test\n"
    "      api_timeout: 2s\n"
    "    - name: k8s-weak\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: \"@KUBECONFIG@\"\n"
    "      image: busybox:1.36\n"
    "      read_only_root_filesystem: false\n"
    "      host_id: render-test\n"
    "      api_timeout: 2s\n"
    "  default_executor: k8s\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

/* CONFIG with @KUBECONFIG@ filled in and `from` replaced by `to` (caller frees). */
static char *config_with(const char *from, const char *to)
{
    char *base = strdup(CONFIG);
    char *at;
    while ((at = strstr(base, "@KUBECONFIG@")) != NULL) {
        char *next;
        ck_assert_int_ge(asprintf(&next, "%.*s%s%s", (int)(at - base), base, kube_path, at + 12), 0);
        free(base);
        base = next;
    }
    if (from == NULL)
        return base;
    at = strstr(base, from);
    ck_assert_msg(at != NULL, "'%s' is not in CONFIG", from);
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from)), 0);
    free(base);
    return cfg;
}

static void setup(void)
{
    snprintf(kube_dir, sizeof kube_dir, "/tmp/sx-k8s-render-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(kube_dir));
    snprintf(kube_path, sizeof kube_path, "%s/kubeconfig", kube_dir);
    FILE *f = fopen(kube_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(KUBECONFIG, f);
    fclose(f);
    char *cfg = config_with(NULL, NULL);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
}

static void teardown(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
    unlink(kube_path);
    rmdir(kube_dir);
}

static const cJSON *jp(const cJSON *root, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = root;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
        char *br = strchr(tok, '[');
        if (br)
            *br = '\0';
        if (tok[0])
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        while (br && cur) {
            cur = cJSON_GetArrayItem(cur, atoi(br + 1));
            br = strchr(br + 1, '[');
        }
    }
    return cur;
}

static const char *js(const cJSON *root, const char *path)
{
    const cJSON *v = jp(root, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static cJSON *render(const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"render\",\"type\":\"script.run\",\"execution_id\":"
                                    "\"run-7\",\"step_name\":\"render-step\",\"with\":%s}", with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* validate-job on one Job; returns its exit status and output (malloc'ed). */
static int validate(const cJSON *job, char **out)
{
    char path[200];
    snprintf(path, sizeof path, "%s/job.json", kube_dir);
    char *text = cJSON_Print(job);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    ck_assert_msg(access(SX_VALIDATE_JOB, R_OK) == 0, "the Job validator is missing: %s",
                  SX_VALIDATE_JOB);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "python3 %s %s 2>&1", SX_VALIDATE_JOB, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *buf = calloc(1, 65536);
    size_t len = fread(buf, 1, 65535, p);
    buf[len] = '\0';
    int st = pclose(p);
    unlink(path);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(render_job_and_secret)
{
    cJSON *r = render(
        "{\"executor\":\"k8s\",\"inline_script\":\"echo SCRIPT-MARKER\",\"stdin\":\"STDIN-MARKER\","
        "\"args\":[\"--dry-run\"],\"env\":{\"TOKEN\":\"LITERAL-MARKER\"},"
        "\"env_from_secret\":{\"DB_PASSWORD\":{\"secret_name\":\"postgres-credentials\",\"key\":\"password\"}},"
        "\"node_selector\":{\"workload-type\":\"batch\"},"
        "\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"batch-jobs\",\"effect\":\"NoSchedule\"}],"
        "\"affinity\":{\"node_affinity\":{\"required\":{\"match_expressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\"]}]}}},"
        "\"resources\":{\"limits\":{\"cpu\":\"1\"}},\"labels\":{\"team\":\"sre\"},\"timeout\":\"2m\"}");
    ck_assert_msg(strcmp(js(r, "status"), "ok") == 0, "%s: %s", js(r, "error.code"),
                  js(r, "error.message"));
    ck_assert_str_eq(js(r, "render.executor"), "k8s");
    ck_assert_str_eq(js(r, "render.backend"), "exec.kubernetes");
    const cJSON *plan = jp(r, "render.plan");
    const cJSON *job = jp(plan, "job");
    ck_assert_str_eq(js(plan, "server"), "https://127.0.0.1:9");
    /* the namespace from the kubeconfig, the service account from the
     * kubernetes section, the uid from the security section */
    ck_assert_str_eq(js(plan, "namespace"), "from-kubeconfig");
    ck_assert_str_eq(js(job, "metadata.namespace"), "from-kubeconfig");
    ck_assert_str_eq(js(job, "spec.template.spec.serviceAccountName"), "runner-from-section");
    ck_assert_int_eq((int)jp(job, "spec.template.spec.securityContext.runAsUser")->valuedouble, 1000);
    ck_assert_int_eq((int)jp(job, "spec.activeDeadlineSeconds")->valuedouble, 121); /* + 1 s */
    ck_assert_str_eq(js(job, "metadata.name"), js(plan, "job_name"));
    ck_assert_msg(strncmp(js(job, "metadata.name"), "script-exec-run-7-render-step-", 30) == 0, "%s",
                  js(job, "metadata.name"));
    const cJSON *labels = jp(job, "metadata.labels");
    ck_assert_str_eq(cJSON_GetObjectItem(labels, "script-executor.io/host")->valuestring, "render-test");
    ck_assert_str_eq(cJSON_GetObjectItem(labels, "script-executor.io/executor")->valuestring, "k8s");
    ck_assert_str_eq(cJSON_GetObjectItem(labels, "execution-id")->valuestring, "run-7");
    ck_assert_str_eq(cJSON_GetObjectItem(labels, "team")->valuestring, "sre");
    const cJSON *c = jp(job, "spec.template.spec.containers[0]");
    ck_assert_str_eq(js(c, "command[0]"), "/bin/sh");
    ck_assert_str_eq(js(c, "args[0]"), "--dry-run");
    ck_assert_str_eq(js(c, "resources.limits.cpu"), "1");
    ck_assert_str_eq(js(c, "env[0].name"), "TOKEN");
    ck_assert_str_eq(js(c, "env[0].value"), "********");
    ck_assert_str_eq(js(c, "env[1].valueFrom.secretKeyRef.name"), "postgres-credentials");
    ck_assert_str_eq(js(job, "spec.template.spec.nodeSelector.workload-type"), "batch");
    ck_assert_str_eq(js(job, "spec.template.spec.tolerations[0].value"), "batch-jobs");
    /* the Secret as it would be created, values masked */
    const cJSON *sec = jp(plan, "secret");
    ck_assert_str_eq(js(sec, "kind"), "Secret");
    ck_assert_str_eq(js(sec, "metadata.name"), js(job, "metadata.name"));
    ck_assert_str_eq(js(sec, "metadata.ownerReferences[0].kind"), "Job");
    ck_assert_str_eq(js(sec, "data.script"), "********");
    ck_assert_str_eq(js(sec, "data.stdin"), "********");
    ck_assert_str_eq(js(plan, "secrets_read[0].name"), "postgres-credentials");
    /* no script, stdin or literal value anywhere in the reply */
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_ptr_null(strstr(text, "SCRIPT-MARKER"));
    ck_assert_ptr_null(strstr(text, "STDIN-MARKER"));
    ck_assert_ptr_null(strstr(text, "LITERAL-MARKER"));
    ck_assert_ptr_null(strstr(text, "ZWNobyBTQ1JJUFQtTUFSS0VS")); /* base64 of the script */
    free(text);
    /* the rendered Job is a Job the API server and PSS restricted accept */
    char *out;
    int st = validate(job, &out);
    ck_assert_msg(st == 0 && strstr(out, "ok: ") != NULL, "validate-job (%d):\n%s", st, out);
    free(out);
    cJSON_Delete(r);

    /* another executor: its own namespace and uid */
    r = render("{\"executor\":\"k8s-team\",\"inline_script\":\"true\"}");
    ck_assert_str_eq(js(r, "status"), "ok");
    ck_assert_str_eq(js(r, "render.plan.job.metadata.namespace"), "team-a");
    ck_assert_int_eq((int)jp(r, "render.plan.job.spec.template.spec.securityContext.runAsUser")->valuedouble,
                     2000);
    ck_assert_str_eq(js(r, "render.plan.job.spec.template.spec.serviceAccountName"), "runner-from-section");
    cJSON_Delete(r);
}
END_TEST

START_TEST(render_refusals)
{
    static const char *const cases[][3] = {
        {"{\"inline_script\":\"true\",\"image_ref\":\"terraform\"}", "unsupported_parameter",
         "image_ref needs the image catalog plugin"},
        {"{\"inline_script\":\"true\",\"tolerations\":[{\"key\":\"a\",\"operator\":\"Equals\"}]}",
         "invalid_parameter", "with.tolerations[0].operator"},
        {"{\"inline_script\":\"true\",\"resources\":{\"limits\":{\"cpu\":\"4\"}}}", "invalid_parameter",
         "max_resources.limits.cpu (2)"},
        {"{\"inline_script\":\"true\",\"labels\":{\"execution-id\":\"x\"}}", "invalid_parameter",
         "set by the executor"},
        {"{\"inline_script\":\"true\",\"volumes_from_secret\":[{\"secret_name\":\"a\",\"mount_path\":\"/tmp\"}]}",
         "invalid_parameter", "clashes"},
        {"{\"inline_script\":\"true\",\"backoff_limit\":4}", "invalid_parameter", "backoff_limit"},
        {"{\"script_path\":\"/scripts/x.sh\"}", "unsupported_parameter", "script_path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *r = render(cases[i][0]);
        ck_assert_msg(strcmp(js(r, "status"), "rejected") == 0, "case %zu: status %s", i,
                      js(r, "status"));
        ck_assert_msg(strcmp(js(r, "error.code"), cases[i][1]) == 0, "case %zu: %s: %s", i,
                      js(r, "error.code"), js(r, "error.message"));
        ck_assert_msg(strstr(js(r, "error.message"), cases[i][2]) != NULL, "case %zu: %s", i,
                      js(r, "error.message"));
        cJSON_Delete(r);
    }
}
END_TEST

static const cJSON *executor(const cJSON *describe, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(describe, "executors"))
        if (strcmp(js(e, "name"), name) == 0)
            return e;
    return NULL;
}

START_TEST(describe_executors)
{
    cJSON *r = sx_harness_call(&H, "{\"op\":\"describe\"}");
    ck_assert_str_eq(js(r, "status"), "ok");
    const cJSON *k = executor(r, "k8s");
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(js(k, "kind"), "exec.kubernetes");
    ck_assert_str_eq(js(k, "details.kind"), "exec.kubernetes");
    ck_assert_str_eq(js(k, "details.namespace"), "from-kubeconfig");
    ck_assert_str_eq(js(k, "details.api.server"), "https://127.0.0.1:9");
    ck_assert_str_eq(js(k, "details.options.service_account"), "runner-from-section");
    ck_assert_str_eq(js(k, "details.options.max_resources.limits.cpu"), "2");
    ck_assert_str_eq(js(k, "details.options.default_resources.limits.memory"), "256Mi");
    ck_assert_int_eq(cJSON_GetArraySize(jp(k, "details.weakened")), 0);
    char *text = cJSON_PrintUnformatted(k);
    ck_assert_ptr_nonnull(strstr(text, "\"node_selector\""));
    ck_assert_ptr_nonnull(strstr(text, "image catalog"));
    ck_assert_ptr_null(strstr(text, "not-a-real-token")); /* credentials never shown */
    free(text);
    const cJSON *w = executor(r, "k8s-weak");
    ck_assert_int_eq(cJSON_GetArraySize(jp(w, "details.weakened")), 1);
    ck_assert_ptr_nonnull(strstr(js(w, "details.weakened[0]"), "read_only_root_filesystem"));
    cJSON_Delete(r);
    /* the weakening is logged at start-up */
    char *log = sx_harness_slurp(H.log_path);
    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "read_only_root_filesystem: false"));
    free(log);
}
END_TEST

START_TEST(config_errors)
{
    /* kube_dir exists (setup ran) */
    static const char *const cases[][3] = {
        {"      host_id: render-test\n      api_timeout: 2s\n    - name: k8s-team",
         "      host_id: render-test\n      api_timeout: 2s\n      job_defaults: {backoff_limit: 7}\n"
         "    - name: k8s-team", "job_defaults.backoff_limit"},
        {"    service_account: runner-from-section\n",
         "    service_account: runner-from-section\n    servce_account: typo\n",
         "unknown key 'servce_account' in script_executor.kubernetes"},
        {"    run_as_user: 1000\n", "    run_as_user: root\n", "script_executor.security.run_as_user"},
        {"      image: busybox:1.36\n", "      image: busybox:1.36\n      tolerations: []\n",
         "unknown key 'tolerations'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *cfg = config_with(cases[i][0], cases[i][1]);
        char out[8192];
        int rc = sx_harness_check_config(cfg, out, sizeof out);
        free(cfg);
        ck_assert_msg(rc == 2, "case %zu: exit %d:\n%s", i, rc, out);
        ck_assert_msg(strstr(out, cases[i][2]) != NULL, "case %zu:\n%s", i, out);
        ck_assert_msg(strstr(out, "line ") != NULL || strstr(out, "executor '") != NULL,
                      "case %zu: no place:\n%s", i, out);
    }
    /* a missing kubeconfig is a config error, not a crash */
    char *cfg = config_with(kube_path, "/nonexistent/kubeconfig");
    char out[8192];
    int rc = sx_harness_check_config(cfg, out, sizeof out);
    free(cfg);
    ck_assert_msg(rc == 2 && strstr(out, "/nonexistent/kubeconfig") != NULL, "exit %d:\n%s", rc, out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Readiness: /readyz asks each executor's ready op                      */
/* ------------------------------------------------------------------ */

static const char *READY_CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    http: \"http://127.0.0.1:0\"\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_k8s, audit_file]\n"
    "  executors:\n"
    "    - name: k8s-ready\n"
    "      kind: exec.kubernetes\n"
    "      kubeconfig: \"%s\"\n"
    "      image: busybox:1.36\n"
    "      host_id: render-test-ready\n"
    "      api_timeout: 2s\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t collect(char *data, size_t size, size_t n, void *user)
{
    char **buf = user;
    size_t old = *buf ? strlen(*buf) : 0;
    char *b = realloc(*buf, old + size * n + 1);
    memcpy(b + old, data, size * n);
    b[old + size * n] = '\0';
    *buf = b;
    return size * n;
}

/* GET /readyz of the running host: its JSON, and the HTTP status. */
static cJSON *readyz(long *status)
{
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    ck_assert_ptr_nonnull(d);
    char url[400] = "";
    const cJSON *l, *r;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(cJSON_GetObjectItem(d, "http"), "listeners"))
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(l, "routes"))
            if (strcmp(js(r, "path"), "/readyz") == 0)
                snprintf(url, sizeof url, "%s/readyz", js(l, "url"));
    cJSON_Delete(d);
    ck_assert_msg(url[0] != '\0', "no listener serves /readyz");
    CURL *c = curl_easy_init();
    char *body = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    cJSON *j = cJSON_Parse(body ? body : "");
    free(body);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* Start the host with READY_CONFIG on `kubeconfig`, GET /readyz, stop. */
static cJSON *readyz_for(const char *kubeconfig, long *status, double *seconds)
{
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, READY_CONFIG, kubeconfig), 0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    double t0 = now_s();
    cJSON *j = readyz(status);
    *seconds = now_s() - t0;
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
    return j;
}

static const cJSON *reason_of(const cJSON *readyz_json, const char *instance)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(readyz_json, "reasons"))
        if (strcmp(js(r, "instance"), instance) == 0)
            return r;
    return NULL;
}

/* The fake API server (tests/k8s_fake/k8s-fake) with `extra` arguments;
 * its kubeconfig is written to kube_out.  Waits for its port file (it is
 * written once the server listens), at most 30 s. */
static pid_t start_fake(const char *extra, const char *kube_out)
{
    char port_file[200];
    snprintf(port_file, sizeof port_file, "%s/fake.port", kube_dir);
    unlink(port_file);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[16] = {"python3", SX_K8S_FAKE, "--listen", "127.0.0.1:0",
                                "--port-file", port_file, "--kubeconfig-out", kube_out,
                                "--exit-with-parent"};
        int n = 9;
        if (extra) {
            argv[n++] = "--forbid";
            argv[n++] = extra;
        }
        argv[n] = NULL;
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    double deadline = now_s() + 30;
    struct stat st;
    while (stat(port_file, &st) != 0 || st.st_size == 0) {
        int wst;
        ck_assert_msg(waitpid(pid, &wst, WNOHANG) == 0, "the fake API server exited");
        ck_assert_msg(now_s() < deadline, "the fake API server did not start in 30 s");
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return pid;
}

static void stop_fake(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
}

START_TEST(readyz_asks_the_api_server)
{
    long status;
    double secs;
    /* nothing listens: not ready, kubernetes_unavailable, found out quickly */
    cJSON *j = readyz_for(kube_path, &status, &secs);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(js(j, "status"), "not_ready");
    const cJSON *r = reason_of(j, "k8s-ready");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(js(r, "plugin"), "backend_k8s");
    ck_assert_str_eq(js(r, "code"), "kubernetes_unavailable");
    ck_assert_msg(secs < 5, "readyz took %.1f s", secs);
    cJSON_Delete(j);

    /* the fake API server: ready */
    char fake_kube[200];
    snprintf(fake_kube, sizeof fake_kube, "%s/fake-kubeconfig", kube_dir);
    pid_t fake = start_fake(NULL, fake_kube);
    j = readyz_for(fake_kube, &status, &secs);
    stop_fake(fake);
    ck_assert_msg(status == 200, "readyz against the fake: %ld: %s", status, js(j, "status"));
    ck_assert_str_eq(js(j, "status"), "ready");
    cJSON_Delete(j);

    /* RBAC without `list jobs`: not ready, kubernetes_forbidden */
    fake = start_fake("list:jobs", fake_kube);
    j = readyz_for(fake_kube, &status, &secs);
    stop_fake(fake);
    unlink(fake_kube);
    ck_assert_int_eq(status, 503);
    r = reason_of(j, "k8s-ready");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(js(r, "code"), "kubernetes_forbidden");
    cJSON_Delete(j);
}
END_TEST

static void ready_setup(void)
{
    snprintf(kube_dir, sizeof kube_dir, "/tmp/sx-k8s-render-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(kube_dir));
    snprintf(kube_path, sizeof kube_path, "%s/kubeconfig", kube_dir);
    FILE *f = fopen(kube_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(KUBECONFIG, f);
    fclose(f);
}

static void ready_teardown(void)
{
    char p[200];
    snprintf(p, sizeof p, "%s/fake.port", kube_dir);
    unlink(p);
    unlink(kube_path);
    rmdir(kube_dir);
}

static Suite *suite(void)
{
    Suite *s = suite_create("k8s_render");
    TCase *t = tcase_create("host");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, render_job_and_secret);
    tcase_add_test(t, render_refusals);
    tcase_add_test(t, describe_executors);
    tcase_add_test(t, config_errors);
    suite_add_tcase(s, t);
    TCase *r = tcase_create("ready");
    tcase_set_timeout(r, 180);
    tcase_add_checked_fixture(r, ready_setup, ready_teardown);
    tcase_add_test(r, readyz_asks_the_api_server);
    suite_add_tcase(s, r);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = sx_check_run(suite());
    curl_global_cleanup();
    return rc;
}
