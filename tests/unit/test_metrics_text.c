/*
 * test_metrics_text.c - the metrics plugin's registry and text format
 * (plugins/metrics/prom.c) and its event collector (collector.c), compiled
 * from the plugin's sources: label escaping, cumulative histogram buckets,
 * _sum and _count, value formatting, series limits, and the counts the
 * collector derives from the host's events.
 */
#include <check.h>
#include "sx_check_main.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "prom.h"

static sx_prom_registry *R;

static void setup(void) { R = sx_prom_registry_new(); }
static void teardown(void) { sx_prom_registry_free(R); }

/* Does the rendered text hold this exact line? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define ck_assert_line(text, line) ck_assert_msg(has_line(text, line), "no line '%s' in:\n%s", line, text)

START_TEST(label_values_are_escaped)
{
    char out[64];
    ck_assert_int_eq(sx_prom_escape_label("a\"b\\c\nd", out, sizeof out), 0);
    ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    ck_assert_int_eq(sx_prom_escape_label("\"\"\"\"", out, 5), -1); /* cut, but terminated */
    ck_assert_uint_le(strlen(out), 4);

    static const char *const names[] = {"image"};
    sx_prom_family *f = sx_prom_family_add(R, SX_PROM_COUNTER, "x_total", "help \\ with\nnewline",
                                           1, names, NULL, 0);
    ck_assert_ptr_nonnull(f);
    const char *v[] = {"reg/img:\"1\"\\\n"};
    sx_prom_inc(f, v, 2);
    const char *bad_utf8[] = {"caf\xc3\xa9 \xff\xfe end"};
    sx_prom_inc(f, bad_utf8, 1);
    char *text = sx_prom_render(R, NULL);
    ck_assert_line(text, "# HELP x_total help \\\\ with\\nnewline");
    ck_assert_line(text, "# TYPE x_total counter");
    ck_assert_line(text, "x_total{image=\"reg/img:\\\"1\\\"\\\\\\n\"} 2");
    ck_assert_line(text, "x_total{image=\"caf\xc3\xa9 ?? end\"} 1");
    free(text);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
    double b[4];
    sx_prom_exponential_buckets(1, 2, 4, b); /* 1 2 4 8 */
    ck_assert(b[0] == 1 && b[1] == 2 && b[2] == 4 && b[3] == 8);
    static const char *const names[] = {"interpreter"};
    sx_prom_family *h = sx_prom_family_add(R, SX_PROM_HISTOGRAM, "d_seconds", "d", 1, names, b, 4);
    ck_assert_ptr_nonnull(h);
    const char *l[] = {"sh"};
    double obs[] = {0.5, 1, 1.5, 3, 3.5, 100};
    for (size_t i = 0; i < 6; i++)
        sx_prom_observe(h, l, obs[i]);
    char *text = sx_prom_render(R, NULL);
    ck_assert_line(text, "# TYPE d_seconds histogram");
    ck_assert_line(text, "d_seconds_bucket{interpreter=\"sh\",le=\"1\"} 2"); /* 0.5 and 1 (le) */
    ck_assert_line(text, "d_seconds_bucket{interpreter=\"sh\",le=\"2\"} 3");
    ck_assert_line(text, "d_seconds_bucket{interpreter=\"sh\",le=\"4\"} 5");
    ck_assert_line(text, "d_seconds_bucket{interpreter=\"sh\",le=\"8\"} 5");
    ck_assert_line(text, "d_seconds_bucket{interpreter=\"sh\",le=\"+Inf\"} 6");
    ck_assert_line(text, "d_seconds_sum{interpreter=\"sh\"} 109.5");
    ck_assert_line(text, "d_seconds_count{interpreter=\"sh\"} 6");
    free(text);
    ck_assert_double_eq(sx_prom_value(h, l), 6);
    /* without labels: only le */
    sx_prom_family *u = sx_prom_family_add(R, SX_PROM_HISTOGRAM, "u", "u", 0, NULL, b, 1);
    sx_prom_observe(u, NULL, 0.25);
    text = sx_prom_render(R, NULL);
    ck_assert_line(text, "u_bucket{le=\"1\"} 1");
    ck_assert_line(text, "u_sum 0.25");
    free(text);
}
END_TEST

START_TEST(values_and_gauges)
{
    char out[40];
    sx_prom_format_value(1.0 / 0.0, out, sizeof out);
    ck_assert_str_eq(out, "+Inf");
    sx_prom_format_value(-1.0 / 0.0, out, sizeof out);
    ck_assert_str_eq(out, "-Inf");
    sx_prom_format_value(NAN, out, sizeof out);
    ck_assert_str_eq(out, "NaN");
    sx_prom_format_value(3, out, sizeof out);
    ck_assert_str_eq(out, "3");
    sx_prom_format_value(0.1, out, sizeof out);
    ck_assert_str_eq(out, "0.1");
    sx_prom_format_value(1.0 / 3.0, out, sizeof out);
    ck_assert(strtod(out, NULL) == 1.0 / 3.0); /* round-trips */
    sx_prom_format_value(2048, out, sizeof out);
    ck_assert_str_eq(out, "2048");

    sx_prom_family *g = sx_prom_family_add(R, SX_PROM_GAUGE, "g", "g", 0, NULL, NULL, 0);
    sx_prom_set(g, NULL, 5);
    sx_prom_inc(g, NULL, -2);
    ck_assert_double_eq(sx_prom_value(g, NULL), 3);
    sx_prom_family *c = sx_prom_family_add(R, SX_PROM_COUNTER, "c_total", "c", 0, NULL, NULL, 0);
    sx_prom_inc(c, NULL, 1);
    sx_prom_inc(c, NULL, -5); /* counters never go down */
    ck_assert_double_eq(sx_prom_value(c, NULL), 1);
    char *text = sx_prom_render(R, NULL);
    ck_assert_line(text, "g 3");
    ck_assert_line(text, "c_total 1");
    free(text);
    /* bad families are refused */
    static const char *const le[] = {"le"};
    ck_assert_ptr_null(sx_prom_family_add(R, SX_PROM_COUNTER, "bad name", "", 0, NULL, NULL, 0));
    ck_assert_ptr_null(sx_prom_family_add(R, SX_PROM_HISTOGRAM, "h", "", 1, le, (double[]){1}, 1));
    ck_assert_ptr_null(sx_prom_family_add(R, SX_PROM_HISTOGRAM, "h", "", 0, NULL,
                                          (double[]){2, 1}, 2));
}
END_TEST

START_TEST(series_are_limited)
{
    static const char *const names[] = {"k"};
    sx_prom_family *f = sx_prom_family_add(R, SX_PROM_COUNTER, "many_total", "m", 1, names, NULL, 0);
    char v[32];
    for (int i = 0; i < SX_PROM_MAX_SERIES + 10; i++) {
        snprintf(v, sizeof v, "v%d", i);
        const char *l[] = {v};
        sx_prom_inc(f, l, 1);
    }
    ck_assert_uint_eq(sx_prom_overflow(R), 10);
    const char *first[] = {"v0"};
    sx_prom_inc(f, first, 1); /* an existing series still counts */
    ck_assert_double_eq(sx_prom_value(f, first), 2);
    /* long values are capped, and still find their series */
    char longv[2000];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    sx_prom_family *g = sx_prom_family_add(R, SX_PROM_COUNTER, "long_total", "l", 1, names, NULL, 0);
    const char *ll[] = {longv};
    sx_prom_inc(g, ll, 1);
    sx_prom_inc(g, ll, 1);
    ck_assert_double_eq(sx_prom_value(g, ll), 2);
}
END_TEST

/* ----------------------------------------------------------- collector */

static sx_collector *C;

static void csetup(void)
{
    R = sx_prom_registry_new();
    C = sx_collector_new(R);
    ck_assert_ptr_nonnull(C);
}

static void cteardown(void)
{
    sx_collector_free(C);
    sx_prom_registry_free(R);
}

START_TEST(collector_counts_executions)
{
    sx_collector_event(C, "host.started",
                       "{\"version\":\"0.1.0\",\"abi\":\"1.2\",\"max_concurrent\":8,\"plugins\":["
                       "{\"name\":\"script_run\",\"version\":\"0.1.0\",\"kind\":\"step_type\"},"
                       "{\"name\":\"metrics\",\"version\":\"0.1.0\",\"kind\":\"service\"}]}");
    sx_collector_event(C, "host.load", "{\"in_flight\":2,\"waiting\":1,\"max_concurrent\":8}");
    /* a Docker run: the image comes from its start record */
    sx_collector_event(C, "exec.accepted", "{\"execution_id\":\"e1\",\"step_name\":\"s\"}");
    sx_collector_event(C, "exec.started", "{\"execution_id\":\"e1\",\"step_name\":\"s\","
                                          "\"image\":\"reg/img:1\",\"interpreter\":\"python3\"}");
    sx_collector_event(C, "exec.output", "{\"data\":\"not even parsed\"");
    sx_collector_event(C, "exec.finished",
                       "{\"execution_id\":\"e1\",\"step_name\":\"s\",\"status\":\"succeeded\","
                       "\"interpreter\":\"python3\",\"duration_seconds\":3,"
                       "\"resource_usage\":{\"cpu_millis\":1500,\"memory_mb\":20}}");
    /* a failure on the native backend: no image, unmeasured CPU */
    sx_collector_event(C, "exec.finished",
                       "{\"execution_id\":\"e2\",\"step_name\":\"s\",\"status\":\"failed\","
                       "\"interpreter\":\"/bin/sh\",\"duration_seconds\":0.5,"
                       "\"resource_usage\":{\"cpu_millis\":null,\"memory_mb\":3},"
                       "\"error\":{\"code\":\"script_failed\",\"message\":\"x\"}}");
    sx_collector_event(C, "exec.rejected",
                       "{\"execution_id\":\"e3\",\"step_name\":\"s\",\"status\":\"rejected\","
                       "\"error\":{\"code\":\"invalid_parameter\",\"message\":\"x\"}}");
    sx_collector_event(C, "request.rejected",
                       "{\"op\":\"execute\",\"status\":\"error\",\"error\":{\"code\":\"busy\"}}");
    sx_collector_event(C, "request.rejected",
                       "{\"op\":\"render\",\"status\":\"rejected\",\"error\":{\"code\":\"x\"}}");
    sx_collector_event(C, "image.pull", "{\"image\":\"reg/img:1\",\"status\":\"success\","
                                        "\"duration_seconds\":2.5}");
    sx_collector_event(C, "approval.requested", "{\"execution_id\":\"e4\",\"step_name\":\"s\"}");
    sx_collector_event(C, "approval.approved_partly", "{\"execution_id\":\"e4\",\"step_name\":\"s\"}");
    sx_collector_event(C, "approval.granted",
                       "{\"execution_id\":\"e4\",\"step_name\":\"s\",\"approval\":{"
                       "\"created_at\":\"2026-12-01T23:59:00.000Z\","
                       "\"decided_at\":\"2026-12-02T00:01:30.500Z\"}}");
    sx_collector_event(C, "approval.denied", "{\"execution_id\":\"e5\",\"step_name\":\"s\"}");
    sx_collector_event(C, "not.json", "{");

    char *text = sx_prom_render(R, NULL);
    ck_assert_line(text, "script_executor_executions_total{interpreter=\"python3\",status=\"succeeded\","
                         "image_ref=\"reg/img:1\"} 1");
    ck_assert_line(text, "script_executor_executions_total{interpreter=\"/bin/sh\",status=\"failed\","
                         "image_ref=\"\"} 1");
    ck_assert_line(text, "script_executor_executions_total{interpreter=\"\",status=\"rejected\","
                         "image_ref=\"\"} 1");
    ck_assert_line(text, "script_executor_executions_total{interpreter=\"\",status=\"error\","
                         "image_ref=\"\"} 1");
    ck_assert_line(text, "script_executor_execution_errors_total{error_type=\"script_failed\","
                         "interpreter=\"/bin/sh\"} 1");
    ck_assert_line(text, "script_executor_execution_errors_total{error_type=\"invalid_parameter\","
                         "interpreter=\"\"} 1");
    ck_assert_line(text, "script_executor_execution_errors_total{error_type=\"busy\","
                         "interpreter=\"\"} 1");
    ck_assert_line(text, "script_executor_busy_rejections_total 1");
    /* the spec's buckets: 1 2 4 ... 2048 */
    ck_assert_line(text, "script_executor_execution_duration_seconds_bucket{interpreter=\"python3\","
                         "image_ref=\"reg/img:1\",le=\"2\"} 0");
    ck_assert_line(text, "script_executor_execution_duration_seconds_bucket{interpreter=\"python3\","
                         "image_ref=\"reg/img:1\",le=\"4\"} 1");
    ck_assert_line(text, "script_executor_execution_duration_seconds_bucket{interpreter=\"python3\","
                         "image_ref=\"reg/img:1\",le=\"2048\"} 1");
    ck_assert_line(text, "script_executor_execution_duration_seconds_bucket{interpreter=\"/bin/sh\","
                         "image_ref=\"\",le=\"1\"} 1");
    /* 1500 ms CPU over 3 s = 500 millicores; 10 20 ... 20480 */
    ck_assert_line(text, "script_executor_cpu_usage_millis_bucket{image_ref=\"reg/img:1\",le=\"320\"} 0");
    ck_assert_line(text, "script_executor_cpu_usage_millis_bucket{image_ref=\"reg/img:1\",le=\"640\"} 1");
    ck_assert_line(text, "script_executor_cpu_usage_millis_sum{image_ref=\"reg/img:1\"} 500");
    ck_assert_line(text, "script_executor_cpu_usage_millis_bucket{image_ref=\"reg/img:1\",le=\"20480\"} 1");
    ck_assert_msg(strstr(text, "script_executor_cpu_usage_millis_count{image_ref=\"\"}") == NULL,
                  "an unmeasured CPU time was observed");
    /* 16 32 ... 32768 */
    ck_assert_line(text, "script_executor_memory_usage_mb_bucket{image_ref=\"\",le=\"16\"} 1");
    ck_assert_line(text, "script_executor_memory_usage_mb_bucket{image_ref=\"reg/img:1\",le=\"16\"} 0");
    ck_assert_line(text, "script_executor_memory_usage_mb_bucket{image_ref=\"reg/img:1\",le=\"32768\"} 1");
    ck_assert_line(text, "script_executor_image_pulls_total{image=\"reg/img:1\",status=\"success\"} 1");
    ck_assert_line(text, "script_executor_image_pull_duration_seconds_bucket{image=\"reg/img:1\",le=\"4\"} 1");
    ck_assert_line(text, "script_executor_image_pull_duration_seconds_bucket{image=\"reg/img:1\",le=\"512\"} 1");
    ck_assert_line(text, "script_executor_approvals_total{status=\"pending\"} 1");
    ck_assert_line(text, "script_executor_approvals_total{status=\"approved\"} 1");
    ck_assert_line(text, "script_executor_approvals_total{status=\"denied\"} 1");
    /* 150.5 s from request to decision, across midnight; 60 120 240 ... */
    ck_assert_line(text, "script_executor_approval_duration_seconds_bucket{le=\"120\"} 0");
    ck_assert_line(text, "script_executor_approval_duration_seconds_bucket{le=\"240\"} 1");
    ck_assert_line(text, "script_executor_approval_duration_seconds_sum 150.5");
    ck_assert_line(text, "script_executor_executions_in_flight 2");
    ck_assert_line(text, "script_executor_queue_depth 1");
    ck_assert_line(text, "script_executor_max_concurrent_executions 8");
    ck_assert_line(text, "script_executor_plugin_info{name=\"metrics\",version=\"0.1.0\",kind=\"service\"} 1");
    ck_assert_line(text, "script_executor_build_info{version=\"0.1.0\",abi=\"1.2\"} 1");
    free(text);
    ck_assert_int_eq(sx_collector_ignored(C), 2); /* exec.accepted and not.json */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics_text");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, label_values_are_escaped);
    tcase_add_test(tc, histogram_buckets_are_cumulative);
    tcase_add_test(tc, values_and_gauges);
    tcase_add_test(tc, series_are_limited);
    suite_add_tcase(s, tc);
    TCase *cc = tcase_create("collector");
    tcase_add_checked_fixture(cc, csetup, cteardown);
    tcase_add_test(cc, collector_counts_executions);
    suite_add_tcase(s, cc);
    return sx_check_run(s);
}
