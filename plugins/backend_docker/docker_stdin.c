/*
 * docker_stdin.c - the script's stdin: a second attach connection, upgraded
 * by hand over libcurl's CONNECT_ONLY, because the Engine drops bytes that
 * arrive together with the attach request.  The data is written once the
 * Engine answered; closing the connection closes the container's stdin
 * (the container is created with StdinOnce).
 */
#define _POSIX_C_SOURCE 200809L
#include "docker.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "sx/sx_util.h"

static void wait_sock(curl_socket_t s, short events, int ms)
{
    struct pollfd p = {.fd = s, .events = events};
    poll(&p, 1, ms);
}

int sx_dk_stdin_open(const sx_dk_client *cl, const char *container_id, const char *data,
                     size_t len, double deadline, sx_dk_stdin *c, sx_error *err)
{
    memset(c, 0, sizeof *c);
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdin=1", container_id);
    c->h = sx_dk_easy(cl, "POST", path);
    if (c->h == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    curl_easy_setopt(c->h, CURLOPT_CONNECT_ONLY, 1L);
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK)
        return sx_dk_transport_error(cl, rc, "attach the script's stdin", err);
    curl_easy_getinfo(c->h, CURLINFO_ACTIVESOCKET, &c->sock);
    /* base_url is "scheme://host/v1.41": the Host header and the path prefix */
    const char *hs = strstr(cl->base_url, "://") + 3;
    const char *slash = strchr(hs, '/');
    char req[800];
    int n = snprintf(req, sizeof req,
                     "POST %s%s HTTP/1.1\r\nHost: %.*s\r\nConnection: Upgrade\r\n"
                     "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n",
                     slash, path, (int)(slash - hs), hs);
    size_t off = 0;
    while (off < (size_t)n) {
        size_t w = 0;
        rc = curl_easy_send(c->h, req + off, (size_t)n - off, &w);
        if (rc == CURLE_AGAIN) {
            if (sx_now_monotonic() > deadline)
                return sx_error_set(err, "docker_unavailable", "attaching stdin timed out");
            wait_sock(c->sock, POLLOUT, 100);
            continue;
        }
        if (rc != CURLE_OK)
            return sx_dk_transport_error(cl, rc, "attach the script's stdin", err);
        off += w;
    }
    char resp[1024];
    size_t got = 0;
    while (got < sizeof resp - 1) {
        size_t rd = 0;
        rc = curl_easy_recv(c->h, resp + got, 1, &rd); /* byte-wise: stop at the blank line */
        if (rc == CURLE_AGAIN) {
            if (sx_now_monotonic() > deadline)
                return sx_error_set(err, "docker_unavailable",
                                    "the Docker daemon at %s did not answer the stdin attach in "
                                    "time", sx_dk_address(cl));
            wait_sock(c->sock, POLLIN, 100);
            continue;
        }
        if (rc != CURLE_OK || rd == 0)
            return sx_error_set(err, "docker_unavailable",
                                "the Docker daemon closed the stdin attach connection");
        got += rd;
        resp[got] = '\0';
        if (got >= 4 && strcmp(resp + got - 4, "\r\n\r\n") == 0)
            break;
    }
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0 && strncmp(resp, "HTTP/1.1 200", 12) != 0) {
        char *eol = strchr(resp, '\r');
        if (eol)
            *eol = '\0';
        return sx_error_set(err, "backend_error", "cannot attach stdin: the Docker Engine "
                            "answered '%.200s'", resp);
    }
    c->data = data;
    c->len = len;
    return 0;
}

int sx_dk_stdin_pump(sx_dk_stdin *c)
{
    while (c->h && c->sent < c->len) {
        size_t w = 0;
        CURLcode rc = curl_easy_send(c->h, c->data + c->sent, c->len - c->sent, &w);
        if (rc == CURLE_AGAIN)
            return 1;
        if (rc != CURLE_OK)
            break; /* the container is gone or closed stdin: nothing to deliver to */
        c->sent += w;
    }
    sx_dk_stdin_close(c);
    return 0;
}

void sx_dk_stdin_close(sx_dk_stdin *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    c->h = NULL;
}
