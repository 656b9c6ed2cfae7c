/*
 * sx_catalog.h - image catalogs (SX_KIND_IMAGE_CATALOG).  Since ABI 1.2.
 *
 * Before a step reaches its step type, the host asks the loaded catalog
 * (at most one) which image the step runs, when its executor's backend takes
 * images (its supported_params list "image"): the catalog resolves
 * `image_ref`, applies its defaults (image, pull secret, pull policy) and
 * checks the result against its approved/blocked rules.  The host then
 * rewrites the step's `with`: `image_ref` removed, `image`,
 * `image_pull_secret` and `image_pull_policy` set from the choice, so
 * backends never see `image_ref`.  Without a catalog, `with` reaches the
 * backend unchanged.
 */
#ifndef SX_CATALOG_H
#define SX_CATALOG_H

#include "sx_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the step asks for; NULL = not set.  Borrowed. */
typedef struct sx_image_request {
    uint32_t struct_size;
    const char *executor;       /* executor instance name ("k8s") */
    const char *executor_kind;  /* "exec.kubernetes" */
    const char *image_ref;      /* with.image_ref */
    const char *image;          /* with.image */
    const char *pull_secret;    /* with.image_pull_secret */
    const char *pull_policy;    /* with.image_pull_policy */
    const char *user;           /* verified caller, may be NULL */
    /* Fields above are valid for ABI minor 2. */
} sx_image_request;

/* The catalog's answer.  The host zeroes it and sets struct_size; the
 * catalog fills the fields with malloc(3)ed strings (NULL = leave the step's
 * value, or the executor's default, as it is); the host frees them with
 * free(3). */
typedef struct sx_image_choice {
    uint32_t struct_size;
    char *image;                /* the image to run */
    char *pull_secret;
    char *pull_policy;          /* Always | IfNotPresent | Never */
    char *ref;                  /* the catalog entry used, or NULL */
    char *rule;                 /* the approved pattern that allowed it, or NULL */
    /* Fields above are valid for ABI minor 2. */
} sx_image_choice;

typedef struct sx_catalog_ops {
    uint32_t struct_size;

    /* Resolve and check the step's image.  Returns 0 with *out filled, or
     * -1 with err: "unknown_image_ref" (the message lists the known refs),
     * "image_not_allowed" (the message names the rule: the blocked pattern
     * that matched, or that no approved pattern did).  Concurrent, also with
     * a reload in progress. */
    int (*resolve)(void *state, const sx_image_request *req,
                   sx_image_choice *out, sx_error *err);

    /* The catalog (entries, rules, source, last load) as a JSON object for
     * `describe`; malloc(3)ed, caller frees.  May be NULL.  Concurrent. */
    char *(*describe)(void *state);

    /* Fields above are valid for ABI minor 2. */
} sx_catalog_ops;

#ifdef __cplusplus
}
#endif
#endif /* SX_CATALOG_H */
