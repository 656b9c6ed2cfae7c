/*
 * loader.h - loading plugin shared objects and checking their ABI.
 *
 * Every way loading can fail has its own message naming the file: missing
 * file, not a shared object, no entry symbol, NULL descriptor, other ABI
 * major, newer ABI minor, truncated descriptor, unknown kind, missing ops.
 */
#ifndef SX_HOST_LOADER_H
#define SX_HOST_LOADER_H

#include "sx/sx_plugin.h"

struct sx_host;

/* A loaded plugin; also the sx_plugin_ctx handed to it. */
struct sx_plugin_ctx {
    struct sx_host *host;
    char *path;                        /* owned */
    void *dl;                          /* dlopen handle */
    const sx_plugin_descriptor *desc;  /* borrowed from the plugin */
    void *state;                       /* plugin's, from init() */
    int initialized;
};

/* Check a descriptor against this host's ABI.  `path` is for messages.
 * Returns 0, or -1 with err->code "plugin_abi_mismatch" or
 * "plugin_invalid". */
int sx_plugin_abi_check(const sx_plugin_descriptor *desc, const char *path,
                        sx_error *err);

/* dlopen `path`, find the entry symbol, check the ABI.  Does not call
 * init().  On success *out is owned by the caller (sx_plugin_close). */
int sx_plugin_open(const char *path, struct sx_plugin_ctx **out, sx_error *err);
/* fini() if initialised, dlclose, free. */
void sx_plugin_close(struct sx_plugin_ctx *plugin);

/* "step_type", "backend", "event_sink", ... ; "unknown" otherwise. */
const char *sx_plugin_kind_name(sx_plugin_kind kind);

#endif
