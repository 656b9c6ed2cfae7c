/*
 * collector.h - turns bus events into metrics (the spec's "Prometheus
 * Metrics" families, plus load, plugins and approvals pending).  One
 * collector per plugin; sx_collector_event() is called from the plugin's
 * bus subscription thread, in publication order; rendering may run at the
 * same time on an HTTP worker (the registry locks).
 *
 * Events read (docs/metrics.md says which field feeds which metric):
 *   host.started      plugins, version          -> plugin_info, build_info
 *   host.load         in_flight, waiting, max   -> gauges
 *   exec.started      image (remembered per execution until it ends)
 *   exec.finished     status, interpreter, duration_seconds, resource_usage,
 *                     error.code                -> executions, duration,
 *                                                  errors, cpu, memory
 *   exec.rejected     status, interpreter, error.code
 *   request.rejected  op == "execute": status, error.code (busy counted)
 *   image.pull        image, status, duration_seconds
 *   approval.requested / granted / denied / expired   -> approvals
 */
#ifndef SX_METRICS_COLLECTOR_H
#define SX_METRICS_COLLECTOR_H

#include <stddef.h>

#include "prom.h"

/* Executions remembered between exec.started and their end (for the image
 * label), and approvals between requested and decided; the oldest are
 * forgotten beyond this. */
#define SX_COLLECTOR_MAX_PENDING 8192

typedef struct sx_collector sx_collector;

/* A collector registering its families in reg (borrowed; must outlive it).
 * NULL when out of memory. */
sx_collector *sx_collector_new(sx_prom_registry *reg);
void sx_collector_free(sx_collector *c);

/* One bus event (both borrowed).  Unknown topics and malformed events are
 * ignored (counted in sx_collector_ignored). */
void sx_collector_event(sx_collector *c, const char *topic, const char *json);

/* Events handled / ignored so far. */
unsigned long long sx_collector_handled(sx_collector *c);
unsigned long long sx_collector_ignored(sx_collector *c);

#endif
