/*
 * params.h - the script.run parameter table (the spec's "Step Type
 * Specification") and the checks every request's `with` goes through.
 */
#ifndef SX_SCRIPT_RUN_PARAMS_H
#define SX_SCRIPT_RUN_PARAMS_H

#include <cjson/cJSON.h>

#include "sx/sx_types.h"

typedef enum sx_param_type {
    SX_P_STRING = 1, SX_P_STRLIST, SX_P_STRMAP, SX_P_MAP, SX_P_OBJLIST, SX_P_OBJECT,
    SX_P_INT, SX_P_BOOL
} sx_param_type;

typedef struct sx_param {
    const char *name;
    sx_param_type type;
    int common;                 /* every backend must honour it */
    const char *default_text;   /* for describe */
    const char *description;
} sx_param;

extern const sx_param sx_script_run_params[];

/* The entry for `name`, or NULL. */
const sx_param *sx_param_find(const char *name);
/* Check the type of every member of `with` and refuse unknown names.
 * Returns 0, or -1 with err (invalid_parameter). */
int sx_params_check(const cJSON *with, sx_error *err);
/* Describe the table as JSON (malloc'ed). */
char *sx_params_describe(void);

#endif
