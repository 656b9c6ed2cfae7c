/* mock_host.c - test stand-in for the host API (see mock_host.h). */
#define _GNU_SOURCE
#include "mock_host.h"

#include "config.h"
#include "sx/sx_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct sx_plugin_ctx {
    const char *name;
};

static struct sx_plugin_ctx mock_ctx = {"mock-plugin"};
static atomic_int log_count;
static atomic_int log_warn_count;

/* ---- host API functions ------------------------------------------ */

static void mock_log(sx_plugin_ctx *ctx, sx_log_level level, const char *fmt,
                     ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&log_count, 1);
    if (level >= SX_LOG_WARN)
        atomic_fetch_add(&log_warn_count, 1);
    fprintf(stderr, "[mock-host %s %s] %s\n",
            (unsigned)level < 4 ? names[level] : "?",
            ctx && ctx->name ? ctx->name : "-", line);
}

static const sx_config_node *mock_config_root; /* script_executor map, or NULL */

void sx_mock_set_config(const sx_config_node *script_executor)
{
    mock_config_root = script_executor;
}

static const sx_config_node *mock_config_section(sx_plugin_ctx *ctx,
                                                 const char *section)
{
    (void)ctx;
    return mock_config_root ? sx_cfg_get(mock_config_root, section) : NULL;
}

static int mock_config_apply(sx_plugin_ctx *ctx, const sx_config_node *node,
                             const sx_option *options, void *dst, sx_error *err)
{
    (void)ctx;
    return sx_cfg_apply(node, options, dst, err);
}

static int mock_publish(sx_plugin_ctx *ctx, const char *topic, const char *json)
{
    (void)ctx;
    (void)topic;
    (void)json;
    return 0;
}

static int mock_record(sx_plugin_ctx *ctx, const char *topic, const char *json,
                       sx_error *err)
{
    (void)ctx;
    (void)topic;
    (void)json;
    (void)err;
    return 0;
}

static int mock_service_find(sx_plugin_ctx *ctx, sx_plugin_kind kind,
                             const char *name, sx_service *out)
{
    (void)ctx;
    (void)kind;
    (void)name;
    (void)out;
    return -1;
}

static void buf_append(sx_mock_buf *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            fprintf(stderr, "mock_host: out of memory\n");
            abort();
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void mock_exec_output(sx_exec *exec, sx_stream stream, const char *data,
                             size_t len)
{
    pthread_mutex_lock(&exec->lock);
    exec->output_calls++;
    sx_mock_buf *b = NULL;
    if (stream == SX_STREAM_STDOUT) {
        b = &exec->out;
        exec->total_out += len;
    } else if (stream == SX_STREAM_STDERR) {
        b = &exec->err;
        exec->total_err += len;
    } else {
        exec->bad_stream_calls++;
    }
    if (b != NULL) {
        size_t keep = len;
        if (exec->keep_max > 0)
            keep = b->len >= exec->keep_max ? 0
                   : (exec->keep_max - b->len < len ? exec->keep_max - b->len : len);
        if (keep > 0)
            buf_append(b, data, keep);
    }
    pthread_mutex_unlock(&exec->lock);
}

static int mock_exec_cancel_fd(sx_exec *exec)
{
    return exec->cancel_fd;
}

static int mock_exec_cancelled(sx_exec *exec)
{
    pthread_mutex_lock(&exec->lock);
    int c = exec->cancelled;
    pthread_mutex_unlock(&exec->lock);
    return c;
}

static int mock_exec_started(sx_exec *exec, const char *extra_json,
                             sx_error *err)
{
    pthread_mutex_lock(&exec->lock);
    exec->started_calls++;
    snprintf(exec->started_extra, sizeof exec->started_extra, "%s",
             extra_json ? extra_json : "");
    int refuse = exec->started_refuse;
    pthread_mutex_unlock(&exec->lock);
    if (refuse)
        return sx_error_set(err, "audit_unavailable",
                            "mock host: exec.started refused");
    return 0;
}

static const sx_host_api mock_api = {
    .struct_size = sizeof(sx_host_api),
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .log = mock_log,
    .config_section = mock_config_section,
    .config_apply = mock_config_apply,
    .config_free = sx_cfg_options_free,
    .config_kind = sx_cfg_kind,
    .config_scalar = sx_cfg_scalar,
    .config_len = sx_cfg_len,
    .config_at = sx_cfg_at,
    .config_key_at = sx_cfg_key_at,
    .config_get = sx_cfg_get,
    .config_line = sx_cfg_line,
    .config_path = sx_cfg_path,
    .publish = mock_publish,
    .record = mock_record,
    .service_find = mock_service_find,
    .exec_output = mock_exec_output,
    .exec_cancel_fd = mock_exec_cancel_fd,
    .exec_cancelled = mock_exec_cancelled,
    .exec_started = mock_exec_started,
};

const sx_host_api *sx_mock_host_api(void)
{
    return &mock_api;
}

sx_plugin_ctx *sx_mock_ctx(void)
{
    return &mock_ctx;
}

/* ---- executions --------------------------------------------------- */

sx_exec *sx_mock_exec_new(void)
{
    sx_exec *e = calloc(1, sizeof *e);
    if (e == NULL)
        abort();
    pthread_mutex_init(&e->lock, NULL);
    e->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->cancel_fd < 0)
        abort();
    buf_append(&e->out, "", 0);
    buf_append(&e->err, "", 0);
    return e;
}

void sx_mock_exec_free(sx_exec *e)
{
    if (e == NULL)
        return;
    close(e->cancel_fd);
    free(e->out.data);
    free(e->err.data);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void sx_mock_exec_cancel(sx_exec *e)
{
    pthread_mutex_lock(&e->lock);
    e->cancelled = 1;
    pthread_mutex_unlock(&e->lock);
    uint64_t one = 1;
    if (write(e->cancel_fd, &one, sizeof one) != (ssize_t)sizeof one)
        perror("mock_host: eventfd write");
}

const char *sx_mock_exec_stdout(sx_exec *e)
{
    return e->out.data;
}

const char *sx_mock_exec_stderr(sx_exec *e)
{
    return e->err.data;
}

int sx_mock_log_count(void)
{
    return atomic_load(&log_count);
}

int sx_mock_log_warn_count(void)
{
    return atomic_load(&log_warn_count);
}
