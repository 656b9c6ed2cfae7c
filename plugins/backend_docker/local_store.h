/*
 * local_store.h - secrets and configmaps from local directories.
 *
 * Outside Kubernetes, `env_from_secret`, `secret_env_all`,
 * `volumes_from_secret` (and the configmap variants) and
 * `image_pull_secret` read from a directory per secret, a file per key -
 * the layout of a mounted Kubernetes Secret:
 *
 *     <secrets_dir>/<secret_name>/<key>
 *     <configmaps_dir>/<configmap_name>/<key>
 *
 * Names follow Kubernetes' rules: a secret or configmap name is a DNS
 * subdomain ([a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most 253); a key is
 * [-._a-zA-Z0-9]+, at most 253, not "." or "..", not starting with ".."
 * (Kubernetes' own "..data" links are skipped when listing).  Values are at
 * most 1 MiB (Kubernetes' limit).  Values are secret: this module never logs
 * them and error messages name the secret and key only.
 */
#ifndef SX_LOCAL_STORE_H
#define SX_LOCAL_STORE_H

#include <stddef.h>

#include "sx/sx_types.h"

typedef enum sx_store_kind { SX_STORE_SECRET = 1, SX_STORE_CONFIGMAP = 2 } sx_store_kind;

typedef struct sx_local_store {
    char *secrets_dir;      /* owned; NULL = no secrets configured */
    char *configmaps_dir;   /* owned; NULL = no configmaps configured */
} sx_local_store;

/* Copy the two directories (either may be NULL).  Returns 0 or -1 (memory). */
int sx_store_init(sx_local_store *s, const char *secrets_dir, const char *configmaps_dir);
void sx_store_free(sx_local_store *s);

/* Read one key.  On success set *value (malloc(3)ed, NUL-terminated for
 * convenience, *len excludes it) and return 0.  Return 1 when the object
 * or key does not exist (the caller decides about `optional`).  Return -1
 * with err: "invalid_parameter" for a bad name or key, "config_error" when
 * the kind's directory is not configured, the value is over 1 MiB, or it
 * cannot be read (the message names the object and key, never the value). */
int sx_store_read(const sx_local_store *s, sx_store_kind kind, const char *name, const char *key,
                  char **value, size_t *len, sx_error *err);

/* List the keys of an object, sorted, skipping entries that are not valid
 * keys (e.g. "..data") or not regular files (after following symlinks, as a
 * mounted Secret's keys are symlinks).  On success fill *keys (owned by the
 * caller: free with sx_strlist_clear from sx_util.h) and return 0; return 1
 * when the object does not exist; -1 with err as for sx_store_read. */
int sx_store_keys(const sx_local_store *s, sx_store_kind kind, const char *name,
                  sx_strlist *keys, sx_error *err);

/* "secret" or "configmap". */
const char *sx_store_kind_name(sx_store_kind kind);

#endif
