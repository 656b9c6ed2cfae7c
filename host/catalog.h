/*
 * catalog.h - the host's side of the image catalog (SX_KIND_IMAGE_CATALOG,
 * sdk/include/sx/sx_catalog.h): before a step reaches its step type, the
 * loaded catalog (at most one) decides which image it runs, and the host
 * rewrites the step's `with` so that backends never see `image_ref`.
 */
#ifndef SX_HOST_CATALOG_H
#define SX_HOST_CATALOG_H

#include "host.h"

/* At start-up, once every plugin is initialised: refuse a second image
 * catalog plugin (err->code "plugin_conflict", naming both).  Returns 0 or
 * -1. */
int sx_host_catalog_check(const sx_host *host, sx_error *err);

/*
 * Resolve and check the step's image when an image catalog plugin is loaded
 * and the executor's backend lists "image" in its supported_params.
 *
 *   executor   the step's with.executor, NULL = the default executor
 *              (borrowed); an unknown executor changes nothing (the step
 *              refuses it as before)
 *   with_json  the step's `with` as a JSON object text, NULL = {} (borrowed)
 *   user       the verified caller, may be NULL (borrowed)
 *
 * The request to the catalog is with.image_ref, with.image,
 * with.image_pull_secret and with.image_pull_policy (a JSON null counts as
 * not set).  When the step names neither image nor image_ref, the
 * executor's own `image`, `image_pull_secret` and `image_pull_policy` keys
 * from its config entry stand for the step's, so the catalog checks the
 * executor's image against its rules and its global defaults do not
 * replace a per-executor image.
 *
 * On success returns 0 and sets *with_out to the rewritten `with`
 * (malloc(3)ed JSON text, the caller frees it with free(3)): image_ref
 * removed; image, image_pull_secret and image_pull_policy set from the
 * catalog's choice where it is non-NULL and the backend lists the key.
 * *with_out is NULL when nothing changes: no catalog is loaded, the
 * executor is unknown, or its backend takes no images (then image_ref
 * stays, and the backend or step refuses it as before).
 *
 * On refusal returns -1 with err: "unknown_image_ref" (the message lists
 * the known refs), "image_not_allowed" (the message names the rule), or
 * "invalid_parameter" (one of those `with` keys is not a string).  The
 * caller replies `rejected` with err.  Thread-safe.
 */
int sx_host_catalog_apply(sx_host *host, const char *executor, const char *with_json,
                          const char *user, char **with_out, sx_error *err);

/* The loaded catalog's describe() (entries, rules, source, last load) as a
 * JSON object text, malloc(3)ed, caller frees; NULL when no catalog is
 * loaded or it describes nothing.  Thread-safe. */
char *sx_host_catalog_describe(sx_host *host);

#endif
