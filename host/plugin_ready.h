/*
 * plugin_ready.h - a plugin's optional "ready" op, read only where the
 * plugin's ops table has it.
 *
 * ABI 1.2 appended `ready` to sx_backend_ops and sx_sink_ops.  A plugin
 * built for 1.0 or 1.1 has a shorter table: reading `ready` from it reads
 * past the struct the plugin gave us (whatever follows it in its data, or
 * an unmapped page: tests/fixtures/plugins/sdk10_backend.c places its table
 * right before one).  Everything in the host that asks a plugin whether it
 * is ready (readiness probes, describe) gets the op from here, never from
 * the table directly.
 */
#ifndef SX_HOST_PLUGIN_READY_H
#define SX_HOST_PLUGIN_READY_H

#include "sx/sx_plugin.h"

/* The ready op's type, the same for every kind that has one: backend
 * (called with an instance), event sink, service and approval store (called
 * with the plugin's state).  Returns 0, or -1 with err saying why. */
typedef int (*sx_plugin_ready_fn)(void *instance_or_state, sx_error *err);

/* The ready op of the plugin `desc` describes, or NULL when it has none: its
 * kind has no ready op (step types, policies, catalogs), its ops table's
 * struct_size does not cover the field (built before 1.2), or the plugin
 * left it NULL.  NULL means "always ready".  desc is borrowed and must have
 * passed sx_plugin_abi_check() (it and its ops table are not re-validated);
 * the returned function is the plugin's, valid while it stays loaded. */
sx_plugin_ready_fn sx_plugin_ready_op(const sx_plugin_descriptor *desc);

#endif
