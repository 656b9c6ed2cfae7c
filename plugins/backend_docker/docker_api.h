/*
 * docker_api.h - a small Docker Engine REST client on libcurl.
 *
 * Speaks one pinned API version (SX_DOCKER_API_VERSION) to a daemon on a
 * unix socket or over tcp:// (optionally TLS with client certificates).
 * Each call uses its own curl easy handle, so a client is shared by every
 * thread of an executor instance without locking.  Transport failures
 * (socket missing, connection refused, timeout) are reported with the code
 * "docker_unavailable"; HTTP errors are left to the caller, who knows what
 * a 404 means for its request.
 */
#ifndef SX_DOCKER_API_H
#define SX_DOCKER_API_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stddef.h>

#include "sx/sx_types.h"

/* The Engine API version the backend speaks: Docker 20.10 and later. */
#define SX_DOCKER_API_VERSION "1.41"

typedef struct sx_dk_client {
    char *address;          /* as configured, for messages */
    char *unix_path;        /* socket path, or NULL for tcp */
    char *base_url;         /* "http://docker/v1.41" or "https://h:p/v1.41" */
    char *tls_ca;           /* PEM files for https, NULL = system defaults */
    char *tls_cert;
    char *tls_key;
    long connect_timeout_ms;
    long call_timeout_ms;   /* default limit of one non-streaming call */
} sx_dk_client;

/* Set up a client for `host`: "unix:///path", "/path" (a socket), or
 * "tcp://host:port" (https when tls_cert or tls_ca is given).  The
 * strings are copied.  Returns 0, or -1 with err ("invalid_config"). */
int sx_dk_client_init(sx_dk_client *c, const char *host, const char *tls_ca,
                      const char *tls_cert, const char *tls_key, long call_timeout_ms,
                      sx_error *err);
void sx_dk_client_free(sx_dk_client *c);

/* Abort hook: `fn` is called about every 100 ms during a call; non-zero
 * aborts it (the call then fails with code "cancelled").  When
 * `answer_deadline` (sx_now_monotonic() seconds, 0 = none) passes before
 * the first byte of the answer's body arrived, the call fails with
 * "docker_unavailable": a daemon that accepts and never answers is caught
 * even by calls whose overall timeout is long (pulls). */
typedef struct sx_dk_abort {
    int (*fn)(void *arg);       /* may be NULL */
    void *arg;
    double answer_deadline;
} sx_dk_abort;

typedef struct sx_dk_response {
    long status;            /* HTTP status */
    char *body;             /* NUL-terminated, malloc(3)ed (may be "") */
    size_t len;
} sx_dk_response;

/* One request/response.  `path` is below the version prefix and already
 * URL-escaped ("/containers/create?name=x").  body may be NULL.
 * `headers` is a NULL-terminated list of "Name: value" (may be NULL).
 * timeout_ms <= 0 uses the client's call_timeout_ms.  Returns 0 with *resp
 * filled (any HTTP status; free with sx_dk_response_free), or -1 with err:
 * "docker_unavailable" (transport), "cancelled" (abort hook), or
 * "out_of_memory".  `what` names the operation in messages ("create the
 * container"). */
int sx_dk_call(const sx_dk_client *c, const char *method, const char *path,
               const char *content_type, const void *body, size_t body_len,
               const char *const *headers, long timeout_ms, const sx_dk_abort *abort_hook,
               const char *what, sx_dk_response *resp, sx_error *err);
/* Frees the body after overwriting it (answers may carry a container's
 * environment, which holds secret values). */
void sx_dk_response_free(sx_dk_response *r);

/* cJSON_Delete after overwriting every string of the tree (for trees that
 * hold secret values). */
void sx_dk_json_wipe_delete(cJSON *j);

/* Print `j` unformatted into one buffer that is never reallocated (so no
 * stale copy of a secret value is left in freed memory); free it with
 * sx_dk_wipe_free.  NULL on out of memory. */
char *sx_dk_json_print_wiped(const cJSON *j);
void sx_dk_wipe_free(char *s);

/* The Engine's error text: the "message" field of a JSON error body, else
 * the body itself (truncated), into buf.  Returns buf. */
const char *sx_dk_message(const sx_dk_response *r, char *buf, size_t size);

/* A curl easy handle set up for `method` on `path` (connection, TLS,
 * connect timeout), for streaming requests the caller drives itself (with
 * a multi handle).  No overall timeout is set.  NULL on out of memory. */
CURL *sx_dk_easy(const sx_dk_client *c, const char *method, const char *path);

/* Map a curl failure on a call to our error ("docker_unavailable" with
 * the daemon address and curl's reason).  Returns -1. */
int sx_dk_transport_error(const sx_dk_client *c, CURLcode rc, const char *what, sx_error *err);

/* Percent-escape `s` for a URL query or path segment into buf.  Returns 0,
 * or -1 when it does not fit. */
int sx_dk_escape(const char *s, char *buf, size_t size);

/* The daemon address for messages ("unix:///var/run/docker.sock"). */
const char *sx_dk_address(const sx_dk_client *c);

#endif
