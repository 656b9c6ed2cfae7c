/* loader.c - dlopen plugins and gate them on the SDK ABI (see loader.h). */
#define _GNU_SOURCE
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sx/sx_approval.h"
#include "sx/sx_backend.h"
#include "sx/sx_catalog.h"
#include "sx/sx_policy.h"
#include "sx/sx_sink.h"
#include "sx/sx_step.h"
#include "sx/sx_util.h"

const char *sx_plugin_kind_name(sx_plugin_kind kind)
{
    switch (kind) {
    case SX_KIND_STEP_TYPE: return "step_type";
    case SX_KIND_BACKEND: return "backend";
    case SX_KIND_EVENT_SINK: return "event_sink";
    case SX_KIND_APPROVAL: return "approval";
    case SX_KIND_IMAGE_CATALOG: return "image_catalog";
    case SX_KIND_POLICY: return "policy";
    case SX_KIND_SERVICE: return "service";
    }
    return "unknown";
}

/* Smallest ops table size a minor-0 plugin of each kind must provide. */
static size_t min_ops_size(sx_plugin_kind kind)
{
    switch (kind) {
    case SX_KIND_STEP_TYPE: return offsetof(sx_step_ops, describe) + sizeof(void *);
    case SX_KIND_BACKEND: return offsetof(sx_backend_ops, load_script) + sizeof(void *);
    case SX_KIND_EVENT_SINK: return offsetof(sx_sink_ops, flush) + sizeof(void *);
    /* since 1.2: every op of a policy is optional; a catalog must resolve */
    case SX_KIND_POLICY: return offsetof(sx_policy_ops, describe) + sizeof(void *);
    case SX_KIND_IMAGE_CATALOG: return offsetof(sx_catalog_ops, describe) + sizeof(void *);
    case SX_KIND_SERVICE: return offsetof(sx_service_ops, ready) + sizeof(void *);
    case SX_KIND_APPROVAL: return offsetof(sx_approval_ops, release) + sizeof(void *);
    default: return 0; /* reserved kinds are refused below */
    }
}

int sx_plugin_abi_check(const sx_plugin_descriptor *d, const char *path, sx_error *err)
{
    if (d == NULL)
        return sx_error_set(err, "plugin_invalid", "plugin %s: %s() returned NULL",
                            path, SX_PLUGIN_ENTRY_NAME);
    /* Major first: a different major may have a different layout, so read
     * nothing else before checking it (the first three fields never move). */
    if (d->abi_major != SX_ABI_MAJOR)
        return sx_error_set(err, "plugin_abi_mismatch",
                            "plugin %s was built for SDK ABI %u.%u, this host speaks ABI %d.%d: "
                            "major versions differ; rebuild the plugin against this SDK",
                            path, d->abi_major, d->abi_minor, SX_ABI_MAJOR, SX_ABI_MINOR);
    if (d->abi_minor > SX_ABI_MINOR)
        return sx_error_set(err, "plugin_abi_mismatch",
                            "plugin %s was built for SDK ABI %u.%u, newer than this host's ABI %d.%d: "
                            "upgrade the host or build the plugin against SDK %d.%d",
                            path, d->abi_major, d->abi_minor, SX_ABI_MAJOR, SX_ABI_MINOR,
                            SX_ABI_MAJOR, SX_ABI_MINOR);
    size_t min_size = offsetof(sx_plugin_descriptor, ops) + sizeof(void *);
    if (d->struct_size < min_size)
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s: descriptor is %u bytes, ABI %u.%u needs at least %zu",
                            path, d->struct_size, d->abi_major, d->abi_minor, min_size);
    if (d->name == NULL || d->name[0] == '\0' || d->version == NULL || d->provides == NULL)
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s: descriptor lacks name, version or provides", path);
    size_t need = min_ops_size(d->kind);
    if ((d->kind == SX_KIND_POLICY || d->kind == SX_KIND_IMAGE_CATALOG ||
         d->kind == SX_KIND_SERVICE || d->kind == SX_KIND_APPROVAL) && d->abi_minor < 2)
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s (%s): kind %d (%s) exists since SDK ABI 1.2, but the plugin "
                            "was built for ABI %u.%u: rebuild it against SDK %d.%d",
                            path, d->name, (int)d->kind, sx_plugin_kind_name(d->kind),
                            d->abi_major, d->abi_minor, SX_ABI_MAJOR, SX_ABI_MINOR);
    if (need == 0)
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s (%s): kind %d (%s) is not supported by this host",
                            path, d->name, (int)d->kind, sx_plugin_kind_name(d->kind));
    const uint32_t *ops_size = d->ops;
    if (ops_size == NULL || *ops_size < need)
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s (%s): %s ops table missing or too small (%u bytes, need %zu)",
                            path, d->name, sx_plugin_kind_name(d->kind),
                            ops_size ? *ops_size : 0u, need);
    const char *missing = NULL;
    if (d->kind == SX_KIND_STEP_TYPE) {
        const sx_step_ops *o = d->ops;
        missing = !o->execute ? "execute" : !o->render ? "render" : !o->describe ? "describe" : NULL;
    } else if (d->kind == SX_KIND_BACKEND) {
        const sx_backend_ops *o = d->ops;
        missing = !o->instance_create ? "instance_create" : !o->instance_destroy ? "instance_destroy"
                : !o->describe ? "describe" : !o->render ? "render" : !o->run ? "run" : NULL;
    } else if (d->kind == SX_KIND_EVENT_SINK) {
        const sx_sink_ops *o = d->ops;
        missing = !o->write ? "write" : NULL;
    } else if (d->kind == SX_KIND_IMAGE_CATALOG) {
        const sx_catalog_ops *o = d->ops;
        missing = !o->resolve ? "resolve" : NULL;
    } else if (d->kind == SX_KIND_APPROVAL) {
        const sx_approval_ops *o = d->ops;
        missing = !o->create ? "create" : !o->get ? "get" : !o->decide ? "decide"
                : !o->consume ? "consume" : !o->list ? "list" : !o->release ? "release" : NULL;
    }
    if (missing)
        return sx_error_set(err, "plugin_invalid", "plugin %s (%s): required %s op '%s' is NULL",
                            path, d->name, sx_plugin_kind_name(d->kind), missing);
    return 0;
}

int sx_plugin_open(const char *path, struct sx_plugin_ctx **out, sx_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return sx_error_set(err, "plugin_not_found", "plugin %s: %s", path, strerror(errno));
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        return sx_error_set(err, "plugin_invalid", "plugin %s: cannot load: %s", path, dlerror());
    dlerror();
    sx_plugin_entry_fn entry;
    /* POSIX-sanctioned way to convert the object pointer from dlsym. */
    *(void **)(&entry) = dlsym(dl, SX_PLUGIN_ENTRY_NAME);
    if (entry == NULL) {
        dlclose(dl);
        return sx_error_set(err, "plugin_invalid",
                            "plugin %s: no entry symbol %s(): not a script-executor plugin",
                            path, SX_PLUGIN_ENTRY_NAME);
    }
    const sx_plugin_descriptor *desc = entry();
    if (sx_plugin_abi_check(desc, path, err) != 0) {
        dlclose(dl);
        return -1;
    }
    struct sx_plugin_ctx *p = calloc(1, sizeof *p);
    if (p == NULL || (p->path = strdup(path)) == NULL) {
        free(p);
        dlclose(dl);
        return sx_error_set(err, "out_of_memory", "plugin %s: out of memory", path);
    }
    p->dl = dl;
    p->desc = desc;
    *out = p;
    return 0;
}

void sx_plugin_close(struct sx_plugin_ctx *p)
{
    if (p == NULL)
        return;
    if (p->initialized && p->desc->fini)
        p->desc->fini(p->state);
    /* Under sanitizers keep the code mapped so leak reports can symbolise. */
    if (getenv("SX_NO_DLCLOSE") == NULL)
        dlclose(p->dl);
    free(p->path);
    free(p);
}
