/* plugin_ready.c - a plugin's optional ready op (see plugin_ready.h). */
#include "plugin_ready.h"

#include <stddef.h>

#include "sx/sx_approval.h"
#include "sx/sx_backend.h"
#include "sx/sx_sink.h"

sx_plugin_ready_fn sx_plugin_ready_op(const sx_plugin_descriptor *desc)
{
    if (desc == NULL || desc->ops == NULL)
        return NULL;
    switch (desc->kind) {
    case SX_KIND_BACKEND: {
        const sx_backend_ops *o = desc->ops;
        return SX_HAS_FIELD(o, sx_backend_ops, ready) ? o->ready : NULL;
    }
    case SX_KIND_EVENT_SINK: {
        const sx_sink_ops *o = desc->ops;
        return SX_HAS_FIELD(o, sx_sink_ops, ready) ? o->ready : NULL;
    }
    /* since 1.2 with ready from the start (the loader requires the table to
     * cover it), checked all the same */
    case SX_KIND_SERVICE: {
        const sx_service_ops *o = desc->ops;
        return SX_HAS_FIELD(o, sx_service_ops, ready) ? o->ready : NULL;
    }
    case SX_KIND_APPROVAL: {
        const sx_approval_ops *o = desc->ops;
        return SX_HAS_FIELD(o, sx_approval_ops, ready) ? o->ready : NULL;
    }
    case SX_KIND_STEP_TYPE:
    case SX_KIND_IMAGE_CATALOG:
    case SX_KIND_POLICY:
        return NULL;
    }
    return NULL;
}
