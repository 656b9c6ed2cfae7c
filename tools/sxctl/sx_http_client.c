/* sx_http_client.c - one HTTP request with nng's HTTP client (see sx_http_client.h). */
#define _POSIX_C_SOURCE 200809L
#include "sx_http_client.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sx_http_call(const char *method, const char *url, const char *bearer, const char *json_body,
                 int timeout_ms, char **out)
{
    *out = NULL;
    nng_url *u = NULL;
    nng_http_client *cl = NULL;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    nng_aio *aio = NULL;
    nng_http_conn *conn = NULL;
    int status = 0, rv;
    char errbuf[2600];
    if ((rv = nng_url_parse(&u, url)) != 0 || (rv = nng_http_client_alloc(&cl, u)) != 0 ||
        (rv = nng_http_req_alloc(&req, u)) != 0 || (rv = nng_http_res_alloc(&res)) != 0 ||
        (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        snprintf(errbuf, sizeof errbuf, "%s: %s", url, nng_strerror(rv));
        goto done;
    }
    nng_http_req_set_method(req, method);
    if (bearer && bearer[0]) {
        size_t n = strlen(bearer) + 8;
        char *h = malloc(n);
        if (h == NULL) {
            snprintf(errbuf, sizeof errbuf, "out of memory");
            goto done;
        }
        snprintf(h, n, "Bearer %s", bearer);
        nng_http_req_add_header(req, "Authorization", h);
        memset(h, 0, n); /* a credential */
        free(h);
    }
    if (json_body) {
        nng_http_req_add_header(req, "Content-Type", "application/json");
        nng_http_req_copy_data(req, json_body, strlen(json_body));
    }
    /* connect, then transact on the connection and close it ourselves:
     * nng 1.5's nng_http_client_transact() may still touch the connection
     * on its own thread after the aio completed (a use-after-free panic
     * when the client is freed right away). */
    nng_aio_set_timeout(aio, timeout_ms);
    nng_http_client_connect(cl, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        snprintf(errbuf, sizeof errbuf, "%s: %s", url, nng_strerror(rv));
        goto done;
    }
    conn = nng_aio_get_output(aio, 0);
    nng_aio_set_timeout(aio, timeout_ms);
    nng_http_conn_transact(conn, req, res, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        snprintf(errbuf, sizeof errbuf, "%s: %s", url, nng_strerror(rv));
        goto done;
    }
    status = nng_http_res_get_status(res);
    void *data;
    size_t len;
    nng_http_res_get_data(res, &data, &len);
    *out = malloc(len + 1);
    if (*out == NULL) {
        status = 0;
        snprintf(errbuf, sizeof errbuf, "out of memory");
        goto done;
    }
    memcpy(*out, data, len);
    (*out)[len] = '\0';
done:
    if (status == 0)
        *out = strdup(errbuf);
    if (conn)
        nng_http_conn_close(conn);
    nng_aio_free(aio);
    if (res)
        nng_http_res_free(res);
    if (req)
        nng_http_req_free(req);
    if (cl)
        nng_http_client_free(cl);
    if (u)
        nng_url_free(u);
    return status;
}
