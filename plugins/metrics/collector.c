/* collector.c - bus events to metrics (see collector.h). */
#define _POSIX_C_SOURCE 200809L
#include "collector.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Something remembered from a start until its end: an execution's image,
 * or when an approval was requested. */
typedef struct sx_pending {
    struct sx_pending *prev, *next;
    char *key;                  /* "execution_id\x1fstep_name" */
    char *value;                /* image, may be NULL */
    double since;               /* monotonic seconds */
} sx_pending;

typedef struct sx_pending_list {
    sx_pending *head, *tail;    /* oldest first */
    size_t n;
} sx_pending_list;

struct sx_collector {
    sx_prom_family *executions, *duration, *errors, *cpu, *memory;
    sx_prom_family *approvals, *approval_duration, *pulls, *pull_duration;
    sx_prom_family *in_flight, *queue_depth, *max_concurrent, *busy;
    sx_prom_family *plugin_info, *build_info;
    /* only the subscription thread touches these */
    sx_pending_list execs;
    sx_pending_list approvals_open;
    pthread_mutex_t lock;       /* the counters below (read by describe) */
    unsigned long long handled, ignored;
};

static double now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------ pending lists */

static void pending_unlink(sx_pending_list *l, sx_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    l->n--;
    free(p->key);
    free(p->value);
    free(p);
}

static sx_pending *pending_find(sx_pending_list *l, const char *key)
{
    /* newest first: an end usually follows its start closely */
    for (sx_pending *p = l->tail; p; p = p->prev)
        if (strcmp(p->key, key) == 0)
            return p;
    return NULL;
}

static void pending_put(sx_pending_list *l, const char *key, const char *value)
{
    sx_pending *old = pending_find(l, key);
    if (old)
        pending_unlink(l, old);
    while (l->n >= SX_COLLECTOR_MAX_PENDING && l->head)
        pending_unlink(l, l->head);
    sx_pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return;
    p->key = strdup(key);
    p->value = value ? strdup(value) : NULL;
    p->since = now_monotonic();
    if (p->key == NULL || (value && p->value == NULL)) {
        free(p->key);
        free(p->value);
        free(p);
        return;
    }
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
}

static void pending_clear(sx_pending_list *l)
{
    while (l->head)
        pending_unlink(l, l->head);
}

/* ------------------------------------------------------------ families */

sx_collector *sx_collector_new(sx_prom_registry *reg)
{
    sx_collector *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    double b_duration[12], b_cpu[12], b_mem[12], b_approval[12], b_pull[10];
    /* prometheus.ExponentialBuckets as the spec writes them */
    sx_prom_exponential_buckets(1, 2, 12, b_duration);
    sx_prom_exponential_buckets(10, 2, 12, b_cpu);
    sx_prom_exponential_buckets(16, 2, 12, b_mem);
    sx_prom_exponential_buckets(60, 2, 12, b_approval);
    sx_prom_exponential_buckets(1, 2, 10, b_pull);
    static const char *const l_exec[] = {"interpreter", "status", "image_ref"};
    static const char *const l_dur[] = {"interpreter", "image_ref"};
    static const char *const l_err[] = {"error_type", "interpreter"};
    static const char *const l_image_ref[] = {"image_ref"};
    static const char *const l_status[] = {"status"};
    static const char *const l_pull[] = {"image", "status"};
    static const char *const l_image[] = {"image"};
    static const char *const l_plugin[] = {"name", "version", "kind"};
    static const char *const l_build[] = {"version", "abi"};
    c->executions = sx_prom_family_add(reg, SX_PROM_COUNTER, "script_executor_executions_total",
                                       "Total number of script executions", 3, l_exec, NULL, 0);
    c->duration = sx_prom_family_add(reg, SX_PROM_HISTOGRAM,
                                     "script_executor_execution_duration_seconds",
                                     "Script execution duration", 2, l_dur, b_duration, 12);
    c->errors = sx_prom_family_add(reg, SX_PROM_COUNTER, "script_executor_execution_errors_total",
                                   "Total script execution errors", 2, l_err, NULL, 0);
    c->cpu = sx_prom_family_add(reg, SX_PROM_HISTOGRAM, "script_executor_cpu_usage_millis",
                                "CPU usage in millicores", 1, l_image_ref, b_cpu, 12);
    c->memory = sx_prom_family_add(reg, SX_PROM_HISTOGRAM, "script_executor_memory_usage_mb",
                                   "Memory usage in MB", 1, l_image_ref, b_mem, 12);
    c->approvals = sx_prom_family_add(reg, SX_PROM_COUNTER, "script_executor_approvals_total",
                                      "Total approval requests", 1, l_status, NULL, 0);
    c->approval_duration = sx_prom_family_add(reg, SX_PROM_HISTOGRAM,
                                              "script_executor_approval_duration_seconds",
                                              "Time to approval", 0, NULL, b_approval, 12);
    c->pulls = sx_prom_family_add(reg, SX_PROM_COUNTER, "script_executor_image_pulls_total",
                                  "Total image pulls", 2, l_pull, NULL, 0);
    c->pull_duration = sx_prom_family_add(reg, SX_PROM_HISTOGRAM,
                                          "script_executor_image_pull_duration_seconds",
                                          "Image pull duration", 1, l_image, b_pull, 10);
    c->in_flight = sx_prom_family_add(reg, SX_PROM_GAUGE, "script_executor_executions_in_flight",
                                      "Executions running now", 0, NULL, NULL, 0);
    c->queue_depth = sx_prom_family_add(
        reg, SX_PROM_GAUGE, "script_executor_queue_depth",
        "Requests waiting: repeats of an execution in flight, parked until it ends (the host "
        "queues nothing else; over max_concurrent it answers busy)", 0, NULL, NULL, 0);
    c->max_concurrent = sx_prom_family_add(reg, SX_PROM_GAUGE,
                                           "script_executor_max_concurrent_executions",
                                           "Executions that may run at once (server.max_concurrent)",
                                           0, NULL, NULL, 0);
    c->busy = sx_prom_family_add(reg, SX_PROM_COUNTER, "script_executor_busy_rejections_total",
                                 "Execute requests refused because max_concurrent executions "
                                 "were in flight", 0, NULL, NULL, 0);
    c->plugin_info = sx_prom_family_add(reg, SX_PROM_GAUGE, "script_executor_plugin_info",
                                        "Loaded plugins (value 1)", 3, l_plugin, NULL, 0);
    c->build_info = sx_prom_family_add(reg, SX_PROM_GAUGE, "script_executor_build_info",
                                       "The host's version and plugin ABI (value 1)", 2, l_build,
                                       NULL, 0);
    if (!c->executions || !c->duration || !c->errors || !c->cpu || !c->memory || !c->approvals ||
        !c->approval_duration || !c->pulls || !c->pull_duration || !c->in_flight ||
        !c->queue_depth || !c->max_concurrent || !c->busy || !c->plugin_info || !c->build_info) {
        sx_collector_free(c);
        return NULL;
    }
    /* unlabelled families have their one series from the start */
    sx_prom_set(c->in_flight, NULL, 0);
    sx_prom_set(c->queue_depth, NULL, 0);
    sx_prom_inc(c->busy, NULL, 0);
    return c;
}

void sx_collector_free(sx_collector *c)
{
    if (c == NULL)
        return;
    pending_clear(&c->execs);
    pending_clear(&c->approvals_open);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ------------------------------------------------------------- helpers */

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *str_or_empty(const cJSON *o, const char *key)
{
    const char *s = str_at(o, key);
    return s ? s : "";
}

static int num_at(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

static void exec_key(const cJSON *ev, char *key, size_t size)
{
    snprintf(key, size, "%s\x1f%s", str_or_empty(ev, "execution_id"),
             str_or_empty(ev, "step_name"));
}

/* days since 1970-01-01 of a proleptic Gregorian date */
static long days_from_civil(long y, long m, long d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "2026-12-02T09:33:09.679Z" (UTC) to seconds since the epoch; 0 = ok. */
static int parse_utc(const char *s, double *out)
{
    int y, mo, d, h, mi;
    double sec;
    char z = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf%c", &y, &mo, &d, &h, &mi, &sec, &z) != 7 ||
        z != 'Z')
        return -1;
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
    return 0;
}

/* ------------------------------------------------------------- events */

static void on_host_started(sx_collector *c, const cJSON *ev)
{
    sx_prom_clear(c->plugin_info);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(ev, "plugins"))
    {
        const char *l[] = {str_or_empty(p, "name"), str_or_empty(p, "version"),
                           str_or_empty(p, "kind")};
        sx_prom_set(c->plugin_info, l, 1);
    }
    sx_prom_clear(c->build_info);
    const char *b[] = {str_or_empty(ev, "version"), str_or_empty(ev, "abi")};
    sx_prom_set(c->build_info, b, 1);
    double max;
    if (num_at(ev, "max_concurrent", &max))
        sx_prom_set(c->max_concurrent, NULL, max);
}

static void on_host_load(sx_collector *c, const cJSON *ev)
{
    double v;
    if (num_at(ev, "in_flight", &v))
        sx_prom_set(c->in_flight, NULL, v);
    if (num_at(ev, "waiting", &v))
        sx_prom_set(c->queue_depth, NULL, v);
    if (num_at(ev, "max_concurrent", &v))
        sx_prom_set(c->max_concurrent, NULL, v);
}

/* executions_total and, for anything but success, execution_errors_total. */
static void count_execution(sx_collector *c, const cJSON *ev, const char *interpreter,
                            const char *image)
{
    const char *status = str_at(ev, "status");
    if (status == NULL)
        status = "unknown";
    const char *le[] = {interpreter, status, image};
    sx_prom_inc(c->executions, le, 1);
    if (strcmp(status, "succeeded") != 0) {
        const char *code = str_at(cJSON_GetObjectItemCaseSensitive(ev, "error"), "code");
        const char *lr[] = {code ? code : status, interpreter};
        sx_prom_inc(c->errors, lr, 1);
    }
}

static void on_exec_end(sx_collector *c, const cJSON *ev, int finished)
{
    char key[600];
    exec_key(ev, key, sizeof key);
    sx_pending *p = pending_find(&c->execs, key);
    const char *image = str_at(ev, "image");
    char *image_copy = NULL;
    if (image == NULL && p && p->value)
        image = image_copy = strdup(p->value);
    if (image == NULL)
        image = "";
    if (p)
        pending_unlink(&c->execs, p);
    const char *interpreter = str_or_empty(ev, "interpreter");
    count_execution(c, ev, interpreter, image);
    if (finished) {
        double d;
        const char *ld[] = {interpreter, image};
        if (num_at(ev, "duration_seconds", &d) && d >= 0) {
            sx_prom_observe(c->duration, ld, d);
            const cJSON *ru = cJSON_GetObjectItemCaseSensitive(ev, "resource_usage");
            double cpu_ms, mem;
            const char *li[] = {image};
            /* average millicores over the run: CPU time / wall time */
            if (num_at(ru, "cpu_millis", &cpu_ms) && cpu_ms >= 0 && d > 0)
                sx_prom_observe(c->cpu, li, cpu_ms / d);
            if (num_at(ru, "memory_mb", &mem) && mem >= 0)
                sx_prom_observe(c->memory, li, mem);
        }
    }
    free(image_copy);
}

static void on_request_rejected(sx_collector *c, const cJSON *ev)
{
    const char *op = str_at(ev, "op");
    if (op == NULL || strcmp(op, "execute") != 0)
        return; /* not an execution: render, garbage, ... */
    const char *code = str_at(cJSON_GetObjectItemCaseSensitive(ev, "error"), "code");
    if (code && strcmp(code, "busy") == 0)
        sx_prom_inc(c->busy, NULL, 1);
    count_execution(c, ev, "", "");
}

static void on_image_pull(sx_collector *c, const cJSON *ev)
{
    const char *image = str_or_empty(ev, "image");
    const char *l[] = {image, str_at(ev, "status") ? str_at(ev, "status") : "unknown"};
    sx_prom_inc(c->pulls, l, 1);
    double d;
    const char *li[] = {image};
    if (num_at(ev, "duration_seconds", &d) && d >= 0)
        sx_prom_observe(c->pull_duration, li, d);
}

static void on_approval(sx_collector *c, const char *what, const cJSON *ev)
{
    char key[600];
    exec_key(ev, key, sizeof key);
    const char *status = strcmp(what, "requested") == 0 ? "pending"
                         : strcmp(what, "granted") == 0 ? "approved"
                         : strcmp(what, "denied") == 0  ? "denied"
                         : strcmp(what, "expired") == 0 ? "expired" : NULL;
    if (status == NULL)
        return; /* e.g. approved_partly: not a decision yet */
    const char *l[] = {status};
    sx_prom_inc(c->approvals, l, 1);
    if (strcmp(status, "pending") == 0) {
        pending_put(&c->approvals_open, key, NULL);
        return;
    }
    sx_pending *p = pending_find(&c->approvals_open, key);
    if (strcmp(status, "approved") == 0) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev, "approval");
        double created, decided, waited = -1;
        if (parse_utc(str_at(a, "created_at"), &created) == 0 &&
            parse_utc(str_at(a, "decided_at"), &decided) == 0 && decided >= created)
            waited = decided - created;
        else if (p)
            waited = now_monotonic() - p->since;
        if (waited >= 0)
            sx_prom_observe(c->approval_duration, NULL, waited);
    }
    if (p)
        pending_unlink(&c->approvals_open, p);
}

void sx_collector_event(sx_collector *c, const char *topic, const char *json)
{
    if (strcmp(topic, "exec.output") == 0)
        return; /* the hot path of the bus; nothing to count */
    cJSON *ev = cJSON_Parse(json);
    int handled = 1;
    if (!cJSON_IsObject(ev))
        handled = 0;
    else if (strcmp(topic, "host.started") == 0)
        on_host_started(c, ev);
    else if (strcmp(topic, "host.load") == 0)
        on_host_load(c, ev);
    else if (strcmp(topic, "exec.started") == 0) {
        char key[600];
        exec_key(ev, key, sizeof key);
        pending_put(&c->execs, key, str_at(ev, "image"));
    } else if (strcmp(topic, "exec.finished") == 0)
        on_exec_end(c, ev, 1);
    else if (strcmp(topic, "exec.rejected") == 0)
        on_exec_end(c, ev, 0);
    else if (strcmp(topic, "request.rejected") == 0)
        on_request_rejected(c, ev);
    else if (strcmp(topic, "image.pull") == 0)
        on_image_pull(c, ev);
    else if (strncmp(topic, "approval.", 9) == 0)
        on_approval(c, topic + 9, ev);
    else
        handled = 0;
    cJSON_Delete(ev);
    pthread_mutex_lock(&c->lock);
    if (handled)
        c->handled++;
    else
        c->ignored++;
    pthread_mutex_unlock(&c->lock);
}

unsigned long long sx_collector_handled(sx_collector *c)
{
    pthread_mutex_lock(&c->lock);
    unsigned long long n = c->handled;
    pthread_mutex_unlock(&c->lock);
    return n;
}

unsigned long long sx_collector_ignored(sx_collector *c)
{
    pthread_mutex_lock(&c->lock);
    unsigned long long n = c->ignored;
    pthread_mutex_unlock(&c->lock);
    return n;
}
