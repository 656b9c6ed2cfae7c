/*
 * sx_client.h - small nng clients for the script-executor sockets, shared by
 * sxctl and sx_bench.
 *
 *   sx_client: a REQ socket on the control URL; one JSON object each way.
 *   sx_events: a SUB socket on the events URL; messages are "<topic> <json>".
 *
 * Local transports (ipc://, inproc://, abstract://) are dialed synchronously,
 * so a dead server is reported at once with nng's reason ("Connection
 * refused"); tcp:// endpoints are first probed with a plain connect bounded
 * by the connect timeout (for the same exact reason), and every non-local
 * transport is then dialed in the background and given the connect timeout
 * (SX_CONNECT_TIMEOUT_MS for the control socket) to come up.
 * Request resend is disabled (the server is idempotent, and a resend would
 * only duplicate work); if the connection drops while a call waits for its
 * reply, the call fails at once instead of waiting out the reply timeout.
 * A handle is used by one thread at a time; different handles are
 * independent.
 */
#ifndef SX_CLIENT_H
#define SX_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define SX_DEFAULT_URL "ipc:///tmp/script-executor/ctl.sock"
#define SX_DEFAULT_EVENTS_URL "ipc:///tmp/script-executor/events.sock"
#define SX_CONNECT_TIMEOUT_MS 5000

/* What went wrong: rv is the nng error (0 when it was not nng's), message
 * is a complete sentence naming the URL. */
typedef struct sx_cerr {
    int rv;
    char message[512];
} sx_cerr;

typedef struct sx_client sx_client;

/* Open a REQ socket dialed to url.  reply_timeout_ms bounds each call
 * (-1 = wait forever).  On failure *out is NULL, err says
 * "cannot reach script-executor at URL: <reason>". */
int sx_client_open(const char *url, int reply_timeout_ms, sx_client **out,
                   sx_cerr *err);

/* Send one JSON object and wait for the reply object.  On success *reply is
 * the parsed reply (caller frees with cJSON_Delete) and 0 is returned; on
 * failure -1 with err filled (timeout, lost connection, invalid reply). */
int sx_client_call(sx_client *c, const cJSON *request, cJSON **reply,
                   sx_cerr *err);

/* The URL the client was opened with. */
const char *sx_client_url(const sx_client *c);

void sx_client_close(sx_client *c);

/* One event.  raw is the whole message, NUL-terminated; topic points into a
 * private copy; json is NULL when the payload is not a JSON object. */
typedef struct sx_event {
    char *raw;
    char *topic;
    cJSON *json;
} sx_event;

typedef struct sx_events sx_events;

/* Subscribe to every topic on url.  On failure *out is NULL and err says
 * "cannot reach script-executor events at URL: <reason>". */
int sx_events_open(const char *url, int connect_timeout_ms, sx_events **out,
                   sx_cerr *err);

/* Wait up to timeout_ms for the next event.  Returns 0 with *ev filled
 * (release with sx_event_clear), 1 on timeout, -1 on error. */
int sx_events_next(sx_events *e, int timeout_ms, sx_event *ev, sx_cerr *err);

void sx_event_clear(sx_event *ev);
void sx_events_close(sx_events *e);

/* Release nng's global resources; call once at exit, after every handle is
 * closed. */
void sx_client_shutdown(void);

#endif /* SX_CLIENT_H */
