/*
 * sx_stream.h - what sxctl does while it waits for an execute reply.
 *
 * A background thread prints the step's exec.output events as they come
 * (stdout data to stdout, stderr data to stderr) and, on the first SIGINT or
 * SIGTERM, asks the server to cancel the step (a second one quits at once
 * with status 130).  When the reply is in, sx_stream_finish waits briefly
 * for the rest of the live output, then prints from the reply whatever the
 * live stream did not deliver (all of it when there was no events socket).
 */
#ifndef SX_STREAM_H
#define SX_STREAM_H

#include <signal.h>

#include <cjson/cJSON.h>

#include "sx_client.h"

/* Number of SIGINT/SIGTERM received since sx_stream_install_signals(). */
extern volatile sig_atomic_t sx_stream_interrupts;

/* Install the SIGINT/SIGTERM handler (counts; the second one _exit(130)s). */
void sx_stream_install_signals(void);

typedef struct sx_stream_cfg {
    sx_events *events;          /* NULL: no live output (borrowed) */
    const char *url;            /* control URL, for the cancel request */
    const char *execution_id;
    const char *step_name;
    int print_output;           /* 0: print nothing (--json) */
} sx_stream_cfg;

typedef struct sx_stream sx_stream;

/* Start watching; the cfg strings must outlive the stream.  Returns NULL
 * when the thread cannot be started (the step still runs; only live output
 * and cancel-on-interrupt are lost). */
sx_stream *sx_stream_start(const sx_stream_cfg *cfg);

/* The reply arrived (reply NULL: the call failed).  Waits for the thread,
 * prints what is missing, frees st (NULL is fine).  Returns 1 when a cancel
 * was sent because of an interrupt, else 0. */
int sx_stream_finish(sx_stream *st, const cJSON *reply,
                     const sx_stream_cfg *cfg);

#endif /* SX_STREAM_H */
