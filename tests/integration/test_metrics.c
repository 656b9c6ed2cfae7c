/*
 * test_metrics.c - observability through the real host: the metrics
 * plugin's /metrics (scraped with libcurl, checked with promtool) counts
 * exactly the executions the test ran; the load gauges follow executions
 * in flight; a loopback Pushgateway receives the same text; /healthz and
 * /readyz, including a Docker executor whose daemon is dead or alive; the
 * spec's structured log events.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"

static sx_harness H;

static const char *CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    events: \"ipc://@DIR@/events.sock\"\n"
    "    max_concurrent: 2\n"
    "    shutdown_grace: 5s\n"
    "    http: \"http://127.0.0.1:0\"\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_native, backend_fake, audit_file, metrics]\n"
    "  executors:\n"
    "    - name: fake\n"
    "      kind: exec.fake\n"
    "    - name: shell\n"
    "      kind: exec.native\n"
    "      default_work_dir: @DIR@\n"
    "  default_executor: fake\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n"
    "  monitoring:\n"
    "    metrics:\n"
    "      port: 0\n"
    "      address: 127.0.0.1\n"
    "      path: /metrics\n"
    "    pushgateway:\n"
    "      enabled: %s\n"
    "      url: \"http://127.0.0.1:%d\"\n"
    "      interval: 200ms\n"
    "      instance: it-host\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------- HTTP */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    char **buf = arg;
    size_t old = *buf ? strlen(*buf) : 0, add = size * n;
    *buf = realloc(*buf, old + add + 1);
    memcpy(*buf + old, p, add);
    (*buf)[old + add] = '\0';
    return add;
}

/* GET (or another method) with libcurl; body (malloc'ed, "" when empty)
 * and status, or NULL when nothing answered. */
static char *http_req(const char *method, const char *url, long *status, char *ctype,
                      size_t ctype_size)
{
    CURL *h = curl_easy_init();
    char *body = NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        if (ctype)
            snprintf(ctype, ctype_size, "%s", ct ? ct : "");
        if (body == NULL)
            body = strdup("");
    } else {
        free(body);
        body = NULL;
    }
    curl_easy_cleanup(h);
    return body;
}

/* The bound URL of the listener serving `path` (from describe). */
static void url_serving(sx_harness *h, const char *path, char *out, size_t size)
{
    cJSON *d = sx_harness_call(h, "{\"op\":\"describe\"}");
    ck_assert_ptr_nonnull(d);
    out[0] = '\0';
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(cJSON_GetObjectItem(d, "http"), "listeners"))
    {
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItem(l, "routes"))
            if (strcmp(sx_json_str(r, "path"), path) == 0)
                snprintf(out, size, "%s%s", sx_json_str(l, "url"), path);
    }
    cJSON_Delete(d);
    ck_assert_msg(out[0] != '\0', "no listener serves %s", path);
}

/* The value of one sample line ("name{labels}") in a scrape; -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Scrape until `series` has `value` (the bus is asynchronous), or fail
 * after 30 s.  Returns the last scrape (caller frees). */
static char *scrape_until(const char *url, const char *series, double value)
{
    double deadline = now() + 30;
    char *text = NULL;
    for (;;) {
        long status;
        free(text);
        text = http_req("GET", url, &status, NULL, 0);
        if (text && status == 200 && sample(text, series) == value)
            return text;
        if (now() > deadline)
            break;
        pause_ms(50);
    }
    ck_abort_msg("%s never became %g; last scrape:\n%s", series, value, text ? text : "(none)");
    return NULL;
}

/* --------------------------------------------------------- executions */

static cJSON *execute(const char *id, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":\"s\","
                                    "\"runbook_id\":\"rb.metrics\",\"type\":\"script.run\","
                                    "\"caller\":{\"user\":\"alice\"},\"with\":%s}", id, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void run_expect(const char *id, const char *with, const char *status)
{
    cJSON *r = execute(id, with);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "%s: %s, expected %s (%s)", id,
                  sx_json_str(r, "status"), status, sx_json_str(r, "error.message"));
    cJSON_Delete(r);
}

typedef struct bg_run {
    pthread_t t;
    char id[64];
    char status[32];
} bg_run;

static void *bg_main(void *arg)
{
    bg_run *b = arg;
    cJSON *r = execute(b->id, "{\"inline_script\":\"sleep 60\",\"executor\":\"fake\"}");
    snprintf(b->status, sizeof b->status, "%s", sx_json_str(r, "status"));
    cJSON_Delete(r);
    return NULL;
}

/* promtool's verdict on a scrape: 0 clean; anything else is a failure,
 * except its naming lint on the spec's own metric name
 * script_executor_memory_usage_mb ("_mb": an abbreviated unit), which the
 * spec prescribes (docs/metrics.md). */
static void promtool_accepts(const char *text)
{
    char path[300], cmd[700];
    snprintf(path, sizeof path, "%s/scrape.txt", H.dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    ck_assert_msg(rc != 127, "promtool is not installed (tools/install-deps.sh: prometheus)");
    if (rc == 0)
        return;
    ck_assert_msg(rc == 3, "promtool failed (%d): %s", rc, out);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        ck_assert_msg(strcmp(line, "script_executor_memory_usage_mb metric names should not "
                                   "contain abbreviated units") == 0,
                      "promtool: %s", line);
}

/* Every histogram's buckets never decrease and end at its _count. */
static void histograms_are_consistent(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    char series[512] = "";
    double last = -1;
    int checked = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *b = strstr(line, "_bucket{");
        if (line[0] == '#' || b == NULL)
            continue;
        char *le = strstr(line, "le=\"");
        double v = strtod(strrchr(line, ' ') + 1, NULL);
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)(le - line), line);
        if (strcmp(key, series) != 0) {
            snprintf(series, sizeof series, "%s", key);
            last = -1;
        }
        ck_assert_msg(v >= last, "bucket decreases: %s", line);
        last = v;
        if (strncmp(le, "le=\"+Inf\"", 9) == 0) {
            /* name_bucket{labels,le="+Inf"} v  ->  name_count{labels} v */
            char count[600];
            const char *labels = b + 8; /* after "_bucket{" */
            int lablen = (int)(le - labels);
            if (lablen > 0 && labels[lablen - 1] == ',')
                lablen--;
            snprintf(count, sizeof count, "%.*s_count%s%.*s%s", (int)(b - line), line,
                     lablen ? "{" : "", lablen, labels, lablen ? "}" : "");
            ck_assert_msg(sample(text, count) == v, "%s is not %g", count, v);
            checked++;
        }
    }
    free(copy);
    ck_assert_int_gt(checked, 0);
}

/* --------------------------------------------------- loopback Pushgateway */

typedef struct push {
    char method[16];
    char path[256];
    char ctype[128];
    char *body;
} push;

typedef struct pushgw {
    int fd, port, stop_pipe[2];
    pthread_t t;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    push got[4096];
    size_t n;
} pushgw;

static pushgw PG;

static void *pushgw_main(void *arg)
{
    pushgw *g = arg;
    for (;;) {
        struct pollfd p[2] = {{g->fd, POLLIN, 0}, {g->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 || p[1].revents)
            break;
        int c = accept(g->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[1 << 20];
        size_t n = 0;
        char *body = NULL;
        long clen = -1;
        for (;;) {
            ssize_t r = read(c, buf + n, sizeof buf - n - 1);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
            char *sep = strstr(buf, "\r\n\r\n");
            if (sep && clen < 0) {
                char *cl = strcasestr(buf, "Content-Length:");
                clen = cl && cl < sep ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (sep && (long)(n - (size_t)(sep + 4 - buf)) >= clen) {
                body = sep + 4;
                break;
            }
        }
        if (body) {
            push ps = {0};
            sscanf(buf, "%15s %255s", ps.method, ps.path);
            char *ct = strcasestr(buf, "Content-Type:");
            if (ct && ct < body)
                sscanf(ct + 13, " %127[^\r]", ps.ctype);
            ps.body = strndup(body, (size_t)clen);
            pthread_mutex_lock(&g->lock);
            if (g->n < sizeof g->got / sizeof g->got[0])
                g->got[g->n++] = ps;
            else
                free(ps.body);
            pthread_cond_broadcast(&g->cond);
            pthread_mutex_unlock(&g->lock);
        }
        const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ssize_t w = write(c, ok, sizeof ok - 1);
        (void)w;
        close(c);
    }
    return NULL;
}

static void pushgw_start(pushgw *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(g->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(g->fd, (struct sockaddr *)&a, &len);
    g->port = ntohs(a.sin_port);
    listen(g->fd, 16);
    ck_assert_int_eq(pipe(g->stop_pipe), 0);
    pthread_create(&g->t, NULL, pushgw_main, g);
}

static void pushgw_stop(pushgw *g)
{
    ssize_t w = write(g->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(g->t, NULL);
    close(g->fd);
    close(g->stop_pipe[0]);
    close(g->stop_pipe[1]);
    for (size_t i = 0; i < g->n; i++)
        free(g->got[i].body);
}

/* Wait until a push whose body holds `series value` arrived; its index. */
static size_t pushgw_wait_for(pushgw *g, const char *series, double value)
{
    double deadline = now() + 30;
    pthread_mutex_lock(&g->lock);
    size_t seen = 0;
    for (;;) {
        for (; seen < g->n; seen++)
            if (sample(g->got[seen].body, series) == value) {
                pthread_mutex_unlock(&g->lock);
                return seen;
            }
        if (now() > deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    ck_abort_msg("no push with %s %g arrived", series, value);
    return 0;
}

/* ------------------------------------------------------------- fixture */

static void start_with(const char *push_enabled, int push_port)
{
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, CONFIG, push_enabled, push_port), 0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
}

static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

#define SUCCEEDED "{\"inline_script\":\"out hi\",\"executor\":\"fake\"}"
#define FAILED "{\"inline_script\":\"exit 3\",\"executor\":\"fake\"}"
#define TIMED_OUT "{\"inline_script\":\"sleep 30\",\"executor\":\"fake\",\"timeout\":\"2s\"}"
#define REJECTED "{\"inline_script\":\"x\",\"interpreter\":\"perl\",\"executor\":\"fake\"}"
#define NATIVE "{\"inline_script\":\"echo native\",\"executor\":\"shell\"}"

#define EXEC_SERIES(status, interp) \
    "script_executor_executions_total{interpreter=\"" interp "\",status=\"" status "\",image_ref=\"\"}"

START_TEST(metrics_count_what_ran)
{
    start_with("false", 9);
    char url[400];
    url_serving(&H, "/metrics", url, sizeof url);
    /* the plugin list and the load come from the host's own events */
    free(scrape_until(url, "script_executor_executions_in_flight", 0));

    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "ok-%d", i);
        run_expect(id, SUCCEEDED, "succeeded");
    }
    run_expect("native-1", NATIVE, "succeeded");
    run_expect("fail-1", FAILED, "failed");
    run_expect("fail-2", FAILED, "failed");
    run_expect("slow-1", TIMED_OUT, "timed_out");
    run_expect("bad-1", REJECTED, "rejected");
    run_expect("bad-2", REJECTED, "rejected");

    /* two in flight fill max_concurrent: the gauge shows them, a third is
     * refused busy; cancelling ends them */
    bg_run bg[2];
    for (int i = 0; i < 2; i++) {
        snprintf(bg[i].id, sizeof bg[i].id, "long-%d", i);
        pthread_create(&bg[i].t, NULL, bg_main, &bg[i]);
    }
    free(scrape_until(url, "script_executor_executions_in_flight", 2));
    run_expect("third", SUCCEEDED, "error");
    for (int i = 0; i < 2; i++) {
        char req[200];
        snprintf(req, sizeof req, "{\"op\":\"cancel\",\"execution_id\":\"%s\",\"step_name\":\"s\"}",
                 bg[i].id);
        cJSON_Delete(sx_harness_call(&H, req));
        pthread_join(bg[i].t, NULL);
        ck_assert_str_eq(bg[i].status, "cancelled");
    }

    free(scrape_until(url, EXEC_SERIES("cancelled", "/bin/bash"), 2));
    char *text = scrape_until(url, "script_executor_executions_in_flight", 0);
    ck_assert_double_eq(sample(text, EXEC_SERIES("succeeded", "/bin/bash")), 4);
    ck_assert_double_eq(sample(text, EXEC_SERIES("failed", "/bin/bash")), 2);
    ck_assert_double_eq(sample(text, EXEC_SERIES("timed_out", "/bin/bash")), 1);
    ck_assert_double_eq(sample(text, EXEC_SERIES("cancelled", "/bin/bash")), 2);
    ck_assert_double_eq(sample(text, EXEC_SERIES("error", "")), 1); /* busy */
    /* refused before the script ran: no interpreter was bound yet */
    double rejected = sample(text, EXEC_SERIES("rejected", ""));
    if (rejected < 0)
        rejected = sample(text, EXEC_SERIES("rejected", "perl"));
    ck_assert_double_eq(rejected, 2);
    ck_assert_double_eq(sample(text, "script_executor_execution_errors_total{error_type=\"script_failed\","
                                     "interpreter=\"/bin/bash\"}"), 2);
    ck_assert_double_eq(sample(text, "script_executor_execution_errors_total{error_type=\"timeout\","
                                     "interpreter=\"/bin/bash\"}"), 1);
    ck_assert_double_eq(sample(text, "script_executor_execution_errors_total{error_type=\"cancelled\","
                                     "interpreter=\"/bin/bash\"}"), 2);
    ck_assert_double_eq(sample(text, "script_executor_execution_errors_total{error_type=\"busy\","
                                     "interpreter=\"\"}"), 1);
    ck_assert_double_eq(sample(text, "script_executor_busy_rejections_total"), 1);
    /* every execution whose script ran has its duration observed once */
    ck_assert_double_eq(sample(text, "script_executor_execution_duration_seconds_count{"
                                     "interpreter=\"/bin/bash\",image_ref=\"\"}"), 9);
    /* the timed-out one took about 2 s: not in the le="1" bucket ... */
    double le1 = sample(text, "script_executor_execution_duration_seconds_bucket{"
                              "interpreter=\"/bin/bash\",image_ref=\"\",le=\"1\"}");
    ck_assert_double_le(le1, 8);
    /* ... and the native run measured its memory */
    ck_assert_double_ge(sample(text, "script_executor_memory_usage_mb_count{image_ref=\"\"}"), 1);
    ck_assert_double_eq(sample(text, "script_executor_executions_in_flight"), 0);
    ck_assert_double_eq(sample(text, "script_executor_queue_depth"), 0);
    ck_assert_double_eq(sample(text, "script_executor_max_concurrent_executions"), 2);
    static const char *const plugins[] = {"script_run", "backend_native", "backend_fake",
                                          "audit_file", "metrics", NULL};
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    for (const char *const *p = plugins; *p; p++) {
        const cJSON *pj, *found = NULL;
        cJSON_ArrayForEach(pj, cJSON_GetObjectItem(d, "plugins"))
            if (strcmp(sx_json_str(pj, "name"), *p) == 0)
                found = pj;
        ck_assert_ptr_nonnull(found);
        char series[300];
        snprintf(series, sizeof series, "script_executor_plugin_info{name=\"%s\",version=\"%s\","
                 "kind=\"%s\"}", *p, sx_json_str(found, "version"), sx_json_str(found, "kind"));
        ck_assert_msg(sample(text, series) == 1, "no %s", series);
        if (strcmp(*p, "metrics") == 0) { /* a service's own describe */
            ck_assert_str_eq(sx_json_str(found, "details.metrics.path"), "/metrics");
            ck_assert_double_gt(cJSON_GetObjectItem(cJSON_GetObjectItem(found, "details"),
                                                    "events_handled")->valuedouble, 20);
        }
    }
    /* the metrics subscription lost nothing, and describe says so */
    const cJSON *sub = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "subscriptions"), 0);
    ck_assert_str_eq(sx_json_str(sub, "plugin"), "metrics");
    ck_assert_double_eq(cJSON_GetObjectItem(sub, "dropped")->valuedouble, 0);
    ck_assert_double_gt(cJSON_GetObjectItem(sub, "delivered")->valuedouble, 20);
    cJSON_Delete(d);
    /* the counts match the audit trail */
    ck_assert_int_eq(sx_harness_audit_count(&H, "exec.finished", NULL, NULL), 4 + 2 + 1 + 2);
    histograms_are_consistent(text);
    promtool_accepts(text);
    long status;
    char ctype[200];
    char *again = http_req("GET", url, &status, ctype, sizeof ctype);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(ctype, "text/plain; version=0.0.4; charset=utf-8");
    free(again);
    free(text);

    /* the spec's structured log events, with their fields */
    stop_host();
    char *log = sx_harness_slurp(H.log_path);
    int starts = 0, completes = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const char *ev = sx_json_str(j, "event");
        if (strcmp(ev, "execution_start") == 0) {
            starts++;
            ck_assert_str_eq(sx_json_str(j, "user"), "alice");
            ck_assert_str_eq(sx_json_str(j, "runbook_id"), "rb.metrics");
            ck_assert_str_ne(sx_json_str(j, "execution_id"), "");
            ck_assert_str_eq(sx_json_str(j, "level"), "info");
        } else if (strcmp(ev, "execution_complete") == 0) {
            completes++;
            ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "duration_seconds"));
            ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "exit_code"));
            ck_assert_str_ne(sx_json_str(j, "status"), "");
            ck_assert_str_ne(sx_json_str(j, "msg"), ""); /* the line it was before */
            if (strcmp(sx_json_str(j, "execution_id"), "fail-1") == 0)
                ck_assert_double_eq(cJSON_GetObjectItem(j, "exit_code")->valuedouble, 3);
        }
        cJSON_Delete(j);
    }
    free(log);
    ck_assert_int_eq(starts, 9);
    ck_assert_int_eq(completes, 9);
}
END_TEST

START_TEST(health_probes_and_http_errors)
{
    start_with("false", 9);
    char url[400];
    url_serving(&H, "/healthz", url, sizeof url);
    long status;
    char *b = http_req("GET", url, &status, NULL, 0);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(b, "{\"status\":\"ok\"}");
    free(b);
    url_serving(&H, "/readyz", url, sizeof url);
    b = http_req("GET", url, &status, NULL, 0);
    ck_assert_int_eq(status, 200);
    cJSON *j = cJSON_Parse(b);
    ck_assert_str_eq(sx_json_str(j, "status"), "ready");
    /* audit_file has a ready op; its check is listed */
    ck_assert_str_eq(sx_json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "checks"), 0), "plugin"),
                     "audit_file");
    cJSON_Delete(j);
    free(b);
    /* JSON errors on the host's address; the metrics are not served there */
    char other[500];
    snprintf(other, sizeof other, "%.*s/metrics", (int)(strrchr(url, '/') - url), url);
    b = http_req("GET", other, &status, NULL, 0);
    ck_assert_int_eq(status, 404);
    j = cJSON_Parse(b);
    ck_assert_str_eq(sx_json_str(j, "error.code"), "not_found");
    cJSON_Delete(j);
    free(b);
    b = http_req("POST", url, &status, NULL, 0);
    ck_assert_int_eq(status, 405);
    j = cJSON_Parse(b);
    ck_assert_str_eq(sx_json_str(j, "error.code"), "method_not_allowed");
    cJSON_Delete(j);
    free(b);
    /* health over nng reports the subscriptions' losses */
    j = sx_harness_call(&H, "{\"op\":\"health\"}");
    ck_assert_double_eq(cJSON_GetObjectItem(j, "bus_events_dropped")->valuedouble, 0);
    cJSON_Delete(j);
    stop_host();
}
END_TEST

START_TEST(pushgateway_gets_the_same_text)
{
    pushgw_start(&PG);
    start_with("true", PG.port);
    run_expect("push-1", SUCCEEDED, "succeeded");
    size_t i = pushgw_wait_for(&PG, EXEC_SERIES("succeeded", "/bin/bash"), 1);
    pthread_mutex_lock(&PG.lock);
    push p = PG.got[i];
    ck_assert_str_eq(p.method, "PUT");
    ck_assert_str_eq(p.path, "/metrics/job/script-executor/instance/it-host");
    ck_assert_str_eq(p.ctype, "text/plain; version=0.0.4");
    ck_assert_ptr_nonnull(strstr(p.body, "# TYPE script_executor_execution_duration_seconds histogram"));
    pthread_mutex_unlock(&PG.lock);
    /* describe shows the pushes */
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    const cJSON *pj, *push_state = NULL;
    cJSON_ArrayForEach(pj, cJSON_GetObjectItem(d, "plugins"))
        if (strcmp(sx_json_str(pj, "name"), "metrics") == 0)
            push_state = cJSON_GetObjectItem(cJSON_GetObjectItem(pj, "details"), "pushgateway");
    ck_assert_ptr_nonnull(push_state);
    ck_assert_double_ge(cJSON_GetObjectItem(push_state, "pushes")->valuedouble, 1);
    ck_assert_double_eq(cJSON_GetObjectItem(push_state, "failures")->valuedouble, 0);
    cJSON_Delete(d);
    /* the last push, at shutdown, carries the final counts */
    run_expect("push-2", FAILED, "failed");
    stop_host();
    pthread_mutex_lock(&PG.lock);
    push last = PG.got[PG.n - 1];
    ck_assert_double_eq(sample(last.body, EXEC_SERIES("failed", "/bin/bash")), 1);
    ck_assert_double_eq(sample(last.body, EXEC_SERIES("succeeded", "/bin/bash")), 1);
    pthread_mutex_unlock(&PG.lock);
    pushgw_stop(&PG);
}
END_TEST

START_TEST(dead_pushgateway_holds_nothing_up)
{
    /* a port nobody listens on (bound and closed again) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    start_with("true", ntohs(a.sin_port));
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "dead-push-%d", i);
        run_expect(id, SUCCEEDED, "succeeded");
    }
    char url[400];
    url_serving(&H, "/metrics", url, sizeof url);
    free(scrape_until(url, EXEC_SERIES("succeeded", "/bin/bash"), 5));
    stop_host();
    char *log = sx_harness_slurp(H.log_path);
    /* said once, not at every 200 ms tick */
    const char *said = strstr(log, "push to the Pushgateway");
    ck_assert_ptr_nonnull(said);
    ck_assert_ptr_null(strstr(said + 1, "push to the Pushgateway"));
    free(log);
}
END_TEST

/* ------------------------------------------------------ Docker readiness */

static const char *DOCKER_CONFIG =
    "script_executor:\n"
    "  server:\n"
    "    listen: \"ipc://@DIR@/ctl.sock\"\n"
    "    http: \"http://127.0.0.1:0\"\n"
    "  plugins:\n"
    "    dir: \"@PLUGINS@\"\n"
    "    load: [script_run, backend_docker, audit_file]\n"
    "  executors:\n"
    "    - name: dk-ready-%d\n"
    "      kind: exec.docker\n"
    "      image: sx-test/minimal:latest\n"
    "      host: \"%s\"\n"
    "      host_id: sx-it-metrics-%d\n"
    "  audit:\n"
    "    log_file: \"@DIR@/audit.log\"\n";

static cJSON *readyz_with_docker_at(const char *docker_host, long *status)
{
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg, DOCKER_CONFIG, (int)getpid(), docker_host, (int)getpid()), 0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
    char url[400];
    url_serving(&H, "/readyz", url, sizeof url);
    double t0 = now();
    char *b = http_req("GET", url, status, NULL, 0);
    ck_assert_double_lt(now() - t0, 5); /* a dead daemon is found out quickly */
    cJSON *j = cJSON_Parse(b);
    free(b);
    stop_host();
    return j;
}

START_TEST(readyz_follows_the_docker_daemon)
{
    long status;
    char name[64];
    snprintf(name, sizeof name, "dk-ready-%d", (int)getpid());
    cJSON *j = readyz_with_docker_at("unix:///nonexistent/sx-dead-docker.sock", &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(sx_json_str(j, "status"), "not_ready");
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "reasons"), 0);
    ck_assert_str_eq(sx_json_str(r, "plugin"), "backend_docker");
    ck_assert_str_eq(sx_json_str(r, "instance"), name);
    ck_assert_str_eq(sx_json_str(r, "code"), "docker_unavailable");
    cJSON_Delete(j);

    j = readyz_with_docker_at("unix:///var/run/docker.sock", &status);
    ck_assert_msg(status == 200, "readyz with a live daemon: %ld", status);
    ck_assert_str_eq(sx_json_str(j, "status"), "ready");
    const cJSON *c;
    int docker_checked = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "checks"))
        docker_checked |= strcmp(sx_json_str(c, "instance"), name) == 0 &&
                          cJSON_IsTrue(cJSON_GetObjectItem(c, "ready"));
    ck_assert(docker_checked);
    cJSON_Delete(j);
}
END_TEST

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, metrics_count_what_ran);
    tcase_add_test(tc, health_probes_and_http_errors);
    tcase_add_test(tc, pushgateway_gets_the_same_text);
    tcase_add_test(tc, dead_pushgateway_holds_nothing_up);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    /* needs the Docker engine (tools/docker-env.sh); SX_TEST_NO_DOCKER=1
     * leaves it out where there is none */
    if (!(argc > 1 && strcmp(argv[1], "--no-docker") == 0) && getenv("SX_TEST_NO_DOCKER") == NULL) {
        TCase *dk = tcase_create("docker_readiness");
        tcase_add_test(dk, readyz_follows_the_docker_daemon);
        tcase_set_timeout(dk, 120);
        suite_add_tcase(s, dk);
    }
    int rc = sx_check_run(s);
    curl_global_cleanup();
    return rc;
}
