/*
 * sx_step.h - step types (SX_KIND_STEP_TYPE), e.g. "script.run".
 *
 * The host receives requests over nng, checks what is common to every step
 * (ids, idempotency, concurrency, approval, audit of accepted/rejected/
 * finished) and hands the step to the plugin whose `provides` equals the
 * request's "type".
 */
#ifndef SX_STEP_H
#define SX_STEP_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One step request.  Everything borrowed for the duration of the call. */
typedef struct sx_step_request {
    uint32_t struct_size;
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;     /* may be NULL */
    const char *type;           /* "script.run" */
    const char *user;           /* caller.user, may be NULL */
    const char *const *groups;  /* caller.groups */
    size_t n_groups;
    const char *with_json;      /* the step's `with` object as JSON ("{}" if absent) */
    /* Fields above are valid for ABI minor 0. */
} sx_step_request;

/* The step's answer.  The host zeroes it and sets struct_size. */
typedef struct sx_step_reply {
    uint32_t struct_size;
    sx_status status;
    /* JSON object: the reply's "output" for execute, the rendered plan for
     * render.  malloc(3)ed by the plugin; the host frees it with free(3).
     * NULL when there is none.  For execute the host adds stdout, stderr and
     * their truncation fields, which it collected through exec_output. */
    char *output_json;
    sx_error error;             /* set for every status but succeeded; for
                                   failed e.g. "script_failed" (the host uses
                                   that when a plugin leaves it empty) */
    /* Fields above are valid for ABI minor 0. */
} sx_step_reply;

typedef struct sx_step_ops {
    uint32_t struct_size;
    /* Validate and run the step.  exec is the host's handle for this
     * execution (pass it to the backend).  Always fills reply; returns 0.
     * Concurrent. */
    int (*execute)(void *state, const sx_step_request *req, sx_exec *exec,
                   sx_step_reply *reply);
    /* Validate and return what would run, without running it (status
     * succeeded and output_json, or rejected with error).  Concurrent. */
    int (*render)(void *state, const sx_step_request *req, sx_step_reply *reply);
    /* The parameter schema as a JSON object; malloc(3)ed, caller frees. */
    char *(*describe)(void *state);
    /* Fields above are valid for ABI minor 0. */
} sx_step_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_STEP_H */
