/*
 * sx_http_client.h - one HTTP request with nng's HTTP client (sxctl's
 * approvals command, and the tests that drive the host's HTTP API).
 */
#ifndef SX_HTTP_CLIENT_H
#define SX_HTTP_CLIENT_H

/* `method` `url` with an optional bearer token and JSON body (NULL =
 * none).  Returns the HTTP status and sets *out to the response body
 * (malloc'ed, NUL-terminated); on a transport failure returns 0 and *out is
 * the error text (malloc'ed). */
int sx_http_call(const char *method, const char *url, const char *bearer, const char *json_body,
                 int timeout_ms, char **out);

#endif
