/*
 * mock_host.h - a test stand-in for the host, for driving plugins (.so)
 * through their real entry point in unit tests.
 *
 * sx_mock_host_api() fills an sx_host_api whose config_* functions are the
 * host's real config module (host/config.c), whose log goes to stderr, and
 * whose exec_* functions work on sx_mock_exec objects the test creates:
 * output is collected into growable buffers, the cancel fd is an eventfd
 * the test can fire, and exec_started can be told to refuse.
 */
#ifndef SX_MOCK_HOST_H
#define SX_MOCK_HOST_H

#include "sx/sx_plugin.h"

#include <pthread.h>
#include <stddef.h>

/* A growable byte buffer, always NUL-terminated after `len` bytes. */
typedef struct sx_mock_buf {
    char *data;
    size_t len;
    size_t cap;
} sx_mock_buf;

/* The host's per-execution handle, as the mock defines it. */
struct sx_exec {
    pthread_mutex_t lock;
    sx_mock_buf out;            /* everything sent to SX_STREAM_STDOUT */
    sx_mock_buf err;            /* everything sent to SX_STREAM_STDERR */
    size_t output_calls;
    size_t total_out;           /* bytes received per stream, kept or not */
    size_t total_err;
    size_t keep_max;            /* keep at most this much per stream; 0 = all */
    int bad_stream_calls;       /* exec_output with an unknown stream */
    int cancel_fd;              /* eventfd: readable once cancelled */
    int cancelled;
    int started_calls;
    int started_refuse;         /* exec_started returns -1 (audit_unavailable) */
    char started_extra[256];    /* last extra_json ("" when NULL) */
};

/* The host API table (static, valid for the whole test). */
const sx_host_api *sx_mock_host_api(void);
/* What config_section() returns sections of: the `script_executor` map of
 * a config the test loaded (borrowed until the next call; NULL = none, the
 * default). */
void sx_mock_set_config(const sx_config_node *script_executor);
/* A plugin context handle to pass to init() (opaque to plugins). */
sx_plugin_ctx *sx_mock_ctx(void);

sx_exec *sx_mock_exec_new(void);
void sx_mock_exec_free(sx_exec *exec);
/* Fire the cancel fd (thread-safe). */
void sx_mock_exec_cancel(sx_exec *exec);
/* What was collected (borrowed, NUL-terminated, never NULL); read it once
 * the run returned, or it may move. */
const char *sx_mock_exec_stdout(sx_exec *exec);
const char *sx_mock_exec_stderr(sx_exec *exec);

/* Counts of log lines at or above SX_LOG_WARN, and all of them. */
int sx_mock_log_count(void);
int sx_mock_log_warn_count(void);

#endif /* SX_MOCK_HOST_H */
