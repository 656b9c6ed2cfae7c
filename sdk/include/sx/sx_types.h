/*
 * sx_types.h - value types shared by the host and every plugin.
 *
 * Part of the script-executor plugin SDK (ABI major 1).  Everything here is
 * plain data: no function pointers, no allocation rules beyond what each field
 * comment says.  Structs that may grow start with `struct_size`, which the
 * producer sets to sizeof() as it was compiled; a consumer reads a field only
 * when struct_size covers it (see SX_HAS_FIELD).
 */
#ifndef SX_TYPES_H
#define SX_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when a struct produced by the other side is large enough to hold
 * `field`.  Use it before reading any field added after minor 0. */
#define SX_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Outcome of a step, as sent to the orchestrator in the reply's "status". */
typedef enum sx_status {
    SX_STATUS_SUCCEEDED = 1,        /* ran, exit code 0 */
    SX_STATUS_FAILED,               /* ran, non-zero exit or killed by a signal */
    SX_STATUS_TIMED_OUT,            /* killed at its timeout */
    SX_STATUS_CANCELLED,            /* killed by a cancel request or shutdown */
    SX_STATUS_PENDING_APPROVAL,     /* waiting for approvers */
    SX_STATUS_DENIED,               /* an approver said no */
    SX_STATUS_EXPIRED,              /* approval timed out */
    SX_STATUS_REJECTED,             /* refused before running (parameters, policy) */
    SX_STATUS_ERROR                 /* infrastructure failure */
} sx_status;

/* How a run ended, identical on every backend ("output.termination.reason"). */
typedef enum sx_termination {
    SX_TERM_NONE = 0,               /* did not run */
    SX_TERM_EXITED,                 /* exited by itself; exit_code is valid */
    SX_TERM_SIGNALED,               /* killed by a signal it did not ask for */
    SX_TERM_OOM_KILLED,             /* killed by the memory limit */
    SX_TERM_TIMED_OUT,              /* killed by the backend at the timeout */
    SX_TERM_CANCELLED,              /* killed on request */
    SX_TERM_LOST                    /* the backend lost track of it */
} sx_termination;

/* Output stream of a script. */
typedef enum sx_stream { SX_STREAM_STDOUT = 1, SX_STREAM_STDERR = 2 } sx_stream;

/* Log levels, in increasing severity. */
typedef enum sx_log_level {
    SX_LOG_DEBUG = 0, SX_LOG_INFO, SX_LOG_WARN, SX_LOG_ERROR
} sx_log_level;

/*
 * An error with a stable machine-readable code ("invalid_parameter") and a
 * message a person can act on.  Fixed-size so it crosses the plugin boundary
 * with no allocation: the callee fills the caller's struct.  Use
 * sx_error_set() from the SDK helper library, which truncates safely.
 */
#define SX_ERROR_CODE_MAX 48
#define SX_ERROR_MESSAGE_MAX 1024
typedef struct sx_error {
    char code[SX_ERROR_CODE_MAX];
    char message[SX_ERROR_MESSAGE_MAX];
} sx_error;

/* A list of strings.  Who owns it is said where it is passed. */
typedef struct sx_strlist {
    size_t n;
    char **v;
} sx_strlist;

/* An ordered string-to-string map (keys unique).  Ownership as for sx_strlist. */
typedef struct sx_strmap {
    size_t n;
    char **keys;
    char **values;
} sx_strmap;

#ifdef __cplusplus
}
#endif
#endif /* SX_TYPES_H */
