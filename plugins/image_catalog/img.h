/*
 * img.h - internals shared by the files of the image_catalog plugin
 * ("image.catalog", SX_KIND_IMAGE_CATALOG; docs/image-catalog.md).
 *
 *   image_catalog.c  descriptor, the `image:` config section, init/fini,
 *                    the resolve and describe ops, reload on file change
 *   img_glob.c       the glob matcher of approved_images / blocked_images
 *   img_name.c       image references: syntax and the spellings a pattern
 *                    is matched against
 *   img_rules.c      defaults, approved/blocked checks, resolution of a
 *                    request into a choice (pure: no I/O, no locks)
 *   img_catalog.c    the catalog file (the spec's catalog.yaml) parsed into
 *                    an immutable sx_img_catalog
 *   img_store.c      the current catalog, swapped whole on reload while
 *                    resolves in flight keep the one they started with
 *   img_watch.c      a thread that notices the file changing (inotify on
 *                    its directory, plus a stat() poll)
 *
 * Everything here is thread-safe where it says "concurrent"; the rest is
 * called from init/fini (main thread) or the watch thread.
 */
#ifndef SX_IMG_H
#define SX_IMG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sx/sx_catalog.h"

/* ------------------------------------------------------------ img_glob.c */

/* Whether `text` matches `pattern`: `*` matches any run of characters,
 * including none and including '/'; `?` matches one character; `\x`
 * matches x literally; everything else matches itself (case-sensitive).
 * Returns 1 or 0.  Time O(len(pattern) * len(text)); no recursion.
 * Concurrent. */
int sx_img_glob_match(const char *pattern, const char *text);

/* Refuse patterns that can never match an image reference: empty,
 * whitespace or control characters, a trailing lone '\', upper case before
 * the first '/' (registry hosts are compared in lower case).  Returns 0, or
 * -1 with err ("invalid_config") saying why; `where` names the pattern in
 * the message ("image.approved_images[2]"). */
int sx_img_glob_check(const char *pattern, const char *where, sx_error *err);

/* ------------------------------------------------------------ img_name.c */

#define SX_IMG_REF_MAX 512      /* longest image reference accepted */
#define SX_IMG_SPELLINGS 4

/* The spellings of one image reference that patterns are matched against
 * (duplicates removed):
 *   [0] as written                      "postgres:16-alpine"
 *   [1] fully qualified                 "docker.io/library/postgres:16-alpine"
 *   [2] fully qualified with ":latest"  (only when neither tag nor digest)
 *   [3] short, Docker Hub's familiar    "postgres:16-alpine"
 * Fully qualified: the registry host in lower case, Docker Hub's aliases
 * (index.docker.io, registry-1.docker.io, registry.hub.docker.com) folded
 * into docker.io, a ":443" port dropped, "library/" added to one-component
 * Docker Hub names. */
typedef struct sx_img_name {
    char registry[256];         /* "docker.io", "harbor.company.internal" */
    char canonical[SX_IMG_REF_MAX + 64];  /* fully qualified, ":latest" added
                                             without tag and digest: equal for
                                             two spellings of one image */
    char spelling[SX_IMG_SPELLINGS][SX_IMG_REF_MAX + 64];
    size_t n;
} sx_img_name;

/* Parse `image` ([host[:port]/]path[:tag][@algo:hex]; the first component
 * is a host when it has a '.' or ':' or is "localhost").  Returns 0, or -1
 * with err ("invalid_parameter") naming the problem.  Concurrent. */
int sx_img_name_parse(const char *image, sx_img_name *out, sx_error *err);

/* Whether `pattern` matches any spelling of `name`. */
int sx_img_name_matches(const sx_img_name *name, const char *pattern);

/* ----------------------------------------------------------- img_catalog.c */

/* One catalog entry, as in the spec's catalog.yaml.  Strings malloc(3)ed;
 * NULL when absent. */
typedef struct sx_img_entry {
    char *name;                 /* the image_ref ("terraform") */
    char *image;                /* required */
    char *pull_secret;
    char *pull_policy;          /* Always | IfNotPresent | Never, or NULL */
    char *description;
    sx_strlist tools;
    char *approved_by;
    char *approved_at;
    int line;                   /* where the entry starts in the file */
} sx_img_entry;

/* What stat(2) says about a file (through symlinks): a catalog is reloaded
 * when this differs from the one it was loaded from. */
typedef struct sx_img_sig {
    int exists;
    uint64_t dev, ino;
    int64_t size;
    int64_t mtime_ns, ctime_ns;
} sx_img_sig;

/* stat(path) into *sig (exists = 0 when it cannot be stat()ed). */
void sx_img_sig_read(const char *path, sx_img_sig *sig);
int sx_img_sig_equal(const sx_img_sig *a, const sx_img_sig *b);

/* A loaded catalog.  Immutable once sx_img_catalog_load returned it: any
 * number of threads may read it while they hold a reference from the
 * store. */
typedef struct sx_img_catalog {
    sx_img_entry *entries;      /* in file order */
    size_t n;
    char *source;               /* the file it came from */
    char loaded_at[40];         /* UTC, ISO 8601 */
    uint64_t generation;        /* 1 for the first load, +1 per reload */
    int64_t bytes;              /* size of the file read */
    sx_img_sig sig;             /* the file as stat()ed before reading it */
    atomic_long refs;           /* img_store.c's business */
} sx_img_catalog;

/* Parse catalog YAML text (`name` for messages).  Accepts the catalog map
 * itself (a ConfigMap's catalog.yaml, as mounted in a Pod) or a whole
 * ConfigMap manifest (apiVersion, kind: ConfigMap, data.catalog.yaml).
 * Refuses with err ("invalid_config", naming file, entry, key and line):
 * malformed YAML, an empty document, duplicate refs (YAML duplicate keys),
 * anchors/aliases, a ref that is not [A-Za-z0-9._-]{1,128}, an entry that
 * is not a map, unknown entry fields (listing the known ones), a missing
 * or malformed image, a pull_policy other than the three.  On success
 * *out is owned by the caller (sx_img_catalog_free). */
int sx_img_catalog_parse(const char *yaml, const char *name, sx_img_catalog **out,
                         sx_error *err);
/* Read `path` and parse it (as above); refuses files over 4 MiB.  The
 * file's signature is taken before it is read, so a change during the read
 * shows as a difference on the next check. */
int sx_img_catalog_load(const char *path, sx_img_catalog **out, sx_error *err);
void sx_img_catalog_free(sx_img_catalog *cat);
/* The entry named `ref`, or NULL.  Concurrent. */
const sx_img_entry *sx_img_catalog_find(const sx_img_catalog *cat, const char *ref);

/* ------------------------------------------------------------- img_rules.c */

/* The rules of the `image:` config section.  Immutable after init. */
typedef struct sx_img_rules {
    char *default_image;        /* NULL = none: the backend's own default */
    char *default_pull_secret;
    char *default_pull_policy;
    sx_strlist approved;        /* empty = any image not blocked */
    sx_strlist blocked;
} sx_img_rules;

/* Check the rules themselves: every pattern (sx_img_glob_check), the
 * default pull policy, and that the default image is a valid reference the
 * rules allow.  0, or -1 with err ("invalid_config"). */
int sx_img_rules_validate(const sx_img_rules *rules, sx_error *err);

/* May `image` run?  Blocked wins: a blocked pattern that matches refuses
 * it; else, when approved is not empty, one approved pattern must match.
 * Returns 0 with *rule the approved pattern that matched (borrowed from
 * rules; NULL when approved is empty), or -1 with err: "image_not_allowed"
 * naming the rule, or "invalid_parameter" for a malformed reference.
 * Concurrent. */
int sx_img_rules_check(const sx_img_rules *rules, const char *image, const char **rule,
                       sx_error *err);

/* Resolve a request (sx_catalog.h) into a choice:
 *   image: the catalog entry of image_ref; else the request's image; else
 *          default_image; else NULL (the backend's own default, unchecked)
 *   pull secret / policy: the request's; else the entry's (for image_ref,
 *          or an explicit image equal to an entry's image); else the
 *          defaults; else NULL
 * then the image is checked (sx_img_rules_check).  `cat` NULL means the
 * catalog is off (image.catalog.enabled: false): image_ref is then
 * refused.  On success fills out (malloc(3)ed strings, the caller frees)
 * and returns 0; else -1 with err: "unknown_image_ref" (listing the known
 * refs), "image_not_allowed", "invalid_parameter" (image and image_ref
 * both given, a malformed image, a bad pull policy).  Concurrent. */
int sx_img_resolve(const sx_img_rules *rules, const sx_img_catalog *cat,
                   const sx_image_request *req, sx_image_choice *out, sx_error *err);

/* -------------------------------------------------------------- img_store.c */

typedef struct sx_img_store sx_img_store;

/* A store holding `initial` (ownership passes to the store; may be NULL
 * for "catalog off").  NULL when out of memory (initial is then freed). */
sx_img_store *sx_img_store_new(sx_img_catalog *initial);
/* Free the store and its current catalog.  No reference may be held. */
void sx_img_store_free(sx_img_store *store);
/* A reference to the current catalog (may be NULL), valid until released,
 * whatever reloads happen meanwhile.  Concurrent; never blocks on a
 * reload in progress (only on the pointer swap itself). */
const sx_img_catalog *sx_img_store_acquire(sx_img_store *store);
void sx_img_store_release(sx_img_store *store, const sx_img_catalog *cat);
/* Make `next` current (ownership passes to the store; its generation is
 * set to the previous one + 1).  The previous catalog is freed once its
 * last reference is released.  Concurrent. */
void sx_img_store_swap(sx_img_store *store, sx_img_catalog *next);

/* -------------------------------------------------------------- img_watch.c */

typedef struct sx_img_watch sx_img_watch;
/* Called on the watch thread after changes in the file's directory have
 * settled, and every interval: "look whether the file changed" (compare
 * its sx_img_sig with the loaded one). */
typedef void (*sx_img_watch_fn)(void *arg);

/* Watch `path`: inotify on its directory (which also sees Kubernetes'
 * ConfigMap volume updates, an atomic swap of the "..data" symlink), and
 * a stat() every `interval_ms` in case inotify misses something (NFS,
 * overlay quirks, a replaced directory).  Events are debounced by
 * `settle_ms`.  Returns 0 with *out, or -1 with err.  fn is never called
 * after sx_img_watch_stop returned. */
int sx_img_watch_start(const char *path, int64_t interval_ms, int64_t settle_ms,
                       sx_img_watch_fn fn, void *arg, sx_img_watch **out, sx_error *err);
/* "inotify+poll" or "poll" (when inotify could not be set up). */
const char *sx_img_watch_mode(const sx_img_watch *w);
/* Stop the thread and free w (NULL-safe). */
void sx_img_watch_stop(sx_img_watch *w);

#endif /* SX_IMG_H */
