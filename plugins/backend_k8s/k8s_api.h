/*
 * k8s_api.h - a small Kubernetes REST client on libcurl and cJSON.
 *
 * Connection: a kubeconfig file (server, certificate-authority[-data],
 * client-certificate[-data] + client-key[-data], token / tokenFile,
 * insecure-skip-tls-verify, the namespace of the current or a named
 * context; parsed with libyaml in k8s_kubeconfig.c) or the in-cluster
 * configuration (the service account's token, ca.crt and namespace files,
 * KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT).
 *
 * Calls: one request/response (sx_k8s_request), or streams (watch, log
 * follow) driven by a multiplexer that one thread polls together with the
 * execution's cancel fd (sx_k8s_mux).  Every call can be aborted by a hook
 * and is bounded by a deadline.  Each easy handle is made per call, so a
 * client is shared by every thread of an executor instance; the only
 * mutable state (the cached token of a token file, the request counters)
 * is locked or atomic.
 *
 * Errors (sx_error codes): transport failures, timeouts, 429 and 5xx ->
 * "kubernetes_unavailable"; 401 and 403 -> "kubernetes_forbidden" (the
 * message says which: bad credentials or missing permission); other
 * statuses are left to the caller, who knows what a 404 means for its
 * request; sx_k8s_status_error() gives them distinct codes:
 * 404 "kubernetes_not_found", 409 "kubernetes_conflict", 410
 * "kubernetes_gone", 400/422 "kubernetes_invalid", else "backend_error".
 *
 * Secrets: the bearer token and the client key are held in memory only as
 * long as the client lives; they are wiped (overwritten) when freed, never
 * logged, and the Authorization header is wiped after each call.
 */
#ifndef SX_K8S_API_H
#define SX_K8S_API_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "sx/sx_types.h"

/* Where a pod finds its service account (in-cluster configuration). */
#define SX_K8S_SERVICEACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct sx_k8s_client sx_k8s_client;

/* How to reach the API server.  Strings are borrowed for the call of
 * sx_k8s_client_new only. */
typedef struct sx_k8s_conn_cfg {
    const char *kubeconfig;     /* path of a kubeconfig file (when !in_cluster);
                                   NULL: $KUBECONFIG (one file), else
                                   $HOME/.kube/config */
    const char *context;        /* context in it; NULL = current-context */
    int in_cluster;             /* use the pod's service account instead */
    long api_timeout_ms;        /* one non-streaming call; <= 0: 30 s */
    /* in-cluster files (token, ca.crt, namespace); NULL =
     * SX_K8S_SERVICEACCOUNT_DIR.  For tests and unusual mounts. */
    const char *serviceaccount_dir;
} sx_k8s_conn_cfg;

/* Read the configuration and set up a client; talks to no server.
 * Returns 0 and *out (free with sx_k8s_client_free), or -1 with err
 * ("invalid_config": missing/unreadable file, no such context, no server,
 * bad CA data, ...). */
int sx_k8s_client_new(const sx_k8s_conn_cfg *c, sx_k8s_client **out, sx_error *err);
/* Wipes the credentials and frees.  NULL is fine. */
void sx_k8s_client_free(sx_k8s_client *cl);

/* For describe and messages (borrowed, valid while the client lives). */
const char *sx_k8s_client_server(const sx_k8s_client *cl);    /* "https://10.0.0.1:443" */
const char *sx_k8s_client_namespace(const sx_k8s_client *cl); /* may be NULL */
/* "kubeconfig <path> (context <name>)" or "in-cluster (<dir>)". */
const char *sx_k8s_client_source(const sx_k8s_client *cl);
/* How the client authenticates: "token", "token-file", "client-certificate",
 * "none". */
const char *sx_k8s_client_auth(const sx_k8s_client *cl);
long sx_k8s_client_timeout_ms(const sx_k8s_client *cl);

/* ------------------------------------------------------------------ */
/* Verbs and counters                                                   */
/* ------------------------------------------------------------------ */

/* Kubernetes verbs (what RBAC and audit logs call them), plus `log` for
 * GET .../pods/NAME/log.  The HTTP method follows from the verb. */
typedef enum sx_k8s_verb {
    SX_K8S_GET = 0,
    SX_K8S_LIST,
    SX_K8S_WATCH,
    SX_K8S_CREATE,
    SX_K8S_PATCH,
    SX_K8S_DELETE,
    SX_K8S_LOG,
    SX_K8S_VERB_COUNT
} sx_k8s_verb;

const char *sx_k8s_verb_name(sx_k8s_verb v); /* "get", "list", ... */

/* Requests sent, by verb (a tally the caller owns, e.g. one execution's). */
typedef struct sx_k8s_counts {
    long n[SX_K8S_VERB_COUNT];
} sx_k8s_counts;

long sx_k8s_counts_total(const sx_k8s_counts *c);
/* {"get":1,"list":0,...,"total":7}; caller deletes. */
cJSON *sx_k8s_counts_json(const sx_k8s_counts *c);
/* Everything this client has sent since it was made (atomic snapshot per
 * verb). */
void sx_k8s_client_counts(const sx_k8s_client *cl, sx_k8s_counts *out);

/* ------------------------------------------------------------------ */
/* One request                                                          */
/* ------------------------------------------------------------------ */

/* Per-call options.  All fields may be zero. */
typedef struct sx_k8s_call {
    long timeout_ms;            /* whole call; <= 0: the client's api timeout */
    int (*abort_fn)(void *arg); /* polled while the call waits (at least once
                                   a second); non-zero aborts the call with
                                   code "cancelled" */
    void *abort_arg;
    sx_k8s_counts *counts;      /* also tally the request here (may be NULL) */
} sx_k8s_call;

typedef struct sx_k8s_response {
    long status;                /* HTTP status */
    char *body;                 /* NUL-terminated, malloc(3)ed (may be "") */
    size_t len;
} sx_k8s_response;

/* One request/response.  `path` starts with "/" and is already escaped
 * (sx_k8s_escape); `body` (may be NULL) is sent with `content_type`
 * (NULL = application/json).  Returns 0 with *resp filled (free with
 * sx_k8s_response_free) for every HTTP status a caller can act on, or -1
 * with err: "kubernetes_unavailable" (transport, timeout, 429, 5xx),
 * "kubernetes_forbidden" (401, 403), "cancelled" (abort hook),
 * "out_of_memory".
 * `what` names the operation in messages ("create the Job"). */
int sx_k8s_request(sx_k8s_client *cl, sx_k8s_verb verb, const char *path,
                   const char *content_type, const char *body, size_t body_len,
                   const sx_k8s_call *opt, const char *what, sx_k8s_response *resp,
                   sx_error *err);
/* Overwrites the body (answers may hold Secret data), then frees. */
void sx_k8s_response_free(sx_k8s_response *r);

/* The answer's Status object: its message (else the body, truncated) into
 * buf, and its reason ("AlreadyExists", "Expired", ...) into reason (may be
 * NULL).  Returns buf. */
const char *sx_k8s_status_message(const sx_k8s_response *r, char *buf, size_t size, char *reason,
                                  size_t reason_size);
/* Fill err for an unexpected answer (codes above).  Returns -1. */
int sx_k8s_status_error(const sx_k8s_client *cl, const sx_k8s_response *r, const char *what,
                        sx_error *err);

/* Percent-escape `s` for a path segment or query value into buf.  Returns
 * 0, or -1 when it does not fit. */
int sx_k8s_escape(const char *s, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Streams: watch and log follow                                        */
/* ------------------------------------------------------------------ */

/* The streams of one execution, driven by the thread that runs it. */
typedef struct sx_k8s_mux sx_k8s_mux;
typedef struct sx_k8s_stream sx_k8s_stream;

/* Body bytes of a 2xx answer, as they arrive.  data borrowed. */
typedef void (*sx_k8s_data_fn)(void *user, const char *data, size_t len);

sx_k8s_mux *sx_k8s_mux_new(void); /* NULL on out of memory */
/* Closes every stream still open, then frees.  NULL is fine. */
void sx_k8s_mux_free(sx_k8s_mux *m);

/* Start a streaming GET (verb SX_K8S_WATCH or SX_K8S_LOG) on `path`.  No
 * overall timeout: the stream lasts until the server ends it or the caller
 * closes it; connecting is bounded by the client's api timeout, and dead
 * peers are found by TCP keepalive.  Returns the stream (owned by the mux
 * until sx_k8s_stream_close) or NULL with err. */
sx_k8s_stream *sx_k8s_stream_open(sx_k8s_mux *m, sx_k8s_client *cl, sx_k8s_verb verb,
                                  const char *path, sx_k8s_data_fn fn, void *user,
                                  sx_k8s_counts *counts, sx_error *err);
/* Stop and free a stream.  NULL is fine. */
void sx_k8s_stream_close(sx_k8s_stream *s);

/* Run the transfers: wait up to timeout_ms for network activity, or for
 * `extra_fd` (>= 0, e.g. the cancel fd) to become readable, and deliver
 * what arrived.  Returns 1 when extra_fd is readable, else 0. */
int sx_k8s_mux_run(sx_k8s_mux *m, int extra_fd, long timeout_ms);

/* The HTTP status once the answer's headers arrived, else 0. */
long sx_k8s_stream_status(const sx_k8s_stream *s);
/* Non-zero once the stream ended (by the server, an error or a failed
 * connect). */
int sx_k8s_stream_done(const sx_k8s_stream *s);
/* Once done: 0 when the answer was read to its end with a 2xx status;
 * else -1 with err (transport: "kubernetes_unavailable"; an HTTP error:
 * as sx_k8s_status_error, with the server's Status message). */
int sx_k8s_stream_result(const sx_k8s_stream *s, const char *what, sx_error *err);
/* The error answer's body (non-2xx only; "" otherwise).  Borrowed. */
const char *sx_k8s_stream_error_body(const sx_k8s_stream *s);

/* Lines of a chunked stream (watch events are one JSON object a line):
 * feed bytes, get whole lines (without the newline, NUL-terminated) in fn.
 * A line longer than `max` (0 = 16 MiB) is dropped and counted. */
typedef struct sx_k8s_lines {
    char *buf;
    size_t len, cap, max;
    long dropped;
    void (*fn)(void *user, char *line, size_t len);
    void *user;
} sx_k8s_lines;
void sx_k8s_lines_feed(sx_k8s_lines *l, const char *data, size_t len);
void sx_k8s_lines_reset(sx_k8s_lines *l); /* forget a partial line */
void sx_k8s_lines_free(sx_k8s_lines *l);

/* ------------------------------------------------------------------ */
/* Internal to the client (k8s_api.c and k8s_kubeconfig.c)              */
/* ------------------------------------------------------------------ */

/* What a kubeconfig or the in-cluster files say. */
typedef struct sx_k8s_conn {
    char *server;               /* "https://host:port", no trailing slash */
    char *ns;                   /* namespace, may be NULL */
    char *ca_data;              /* PEM, may be NULL (system CAs) */
    size_t ca_len;
    char *cert_data;            /* client certificate PEM, may be NULL */
    size_t cert_len;
    char *key_data;             /* client key PEM (secret), may be NULL */
    size_t key_len;
    char *token;                /* bearer token (secret), may be NULL */
    char *token_file;           /* re-read when it changes, may be NULL */
    int insecure;               /* insecure-skip-tls-verify */
    char *source;               /* for describe */
} sx_k8s_conn;

/* Fill conn from a kubeconfig file (k8s_kubeconfig.c).  0, or -1 with err
 * ("invalid_config"). */
int sx_k8s_kubeconfig_load(const char *path, const char *context, sx_k8s_conn *conn,
                           sx_error *err);
/* Fill conn from the in-cluster files and environment.  0 or -1. */
int sx_k8s_in_cluster_load(const char *dir, sx_k8s_conn *conn, sx_error *err);
/* Wipe the secrets and free everything. */
void sx_k8s_conn_clear(sx_k8s_conn *conn);
/* Read a whole (small) file; *len set; NULL with err on failure.  The
 * buffer is NUL-terminated; the caller wipes it if it is secret. */
char *sx_k8s_read_file(const char *path, size_t max, size_t *len, sx_error *err);
/* Decode base64 (standard or URL alphabet; whitespace ignored, padding
 * optional).  Returns a malloc(3)ed NUL-terminated buffer and *len, or NULL
 * on bad input or out of memory.  The caller wipes it if it is secret. */
char *sx_k8s_b64decode(const char *s, size_t *len);
/* Overwrite and free a secret string.  NULL is fine. */
void sx_k8s_wipe_free(char *s, size_t len);

#endif
