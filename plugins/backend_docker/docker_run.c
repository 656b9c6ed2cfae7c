/*
 * docker_run.c - one run on the Docker Engine, in the docker CLI's order
 * (create, attach, start, wait) so that nothing a short-lived container
 * prints is lost:
 *
 *   image present per the pull policy (pull with X-Registry-Auth)
 *   per-execution volumes; create the container; copy the script (and
 *   secret/configmap files) into the volumes through the archive API
 *   attach stdout/stderr and wait for the Engine's answer; attach stdin
 *   the durable exec.started record; start
 *   stream output (demultiplexed) and stats until the attach ends; kill on
 *   timeout or cancel
 *   wait for the exit code, inspect (OOMKilled, start/finish times)
 *   remove the container and its volumes (unless auto_remove is false)
 *
 * Every Engine object carries labels naming this host and executor, so a
 * host that was killed mid-run finds and removes its leftovers on start
 * (sx_dk_sweep_leftovers).
 */
#define _DEFAULT_SOURCE
#include "docker.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "docker_image.h"
#include "docker_stream.h"
#include "docker_tar.h"
#include "sx/sx_util.h"

/* How long the container may take to go away after a kill before the run
 * is reported as lost. */
#define KILL_GRACE_S 15.0
/* The Engine's stats stream samples about once a second: it is opened only
 * for runs that last longer than this, so short runs do not pay for it. */
#define STATS_AFTER_S 0.3
/* Calls after the script ended (wait, inspect, remove). */
#define AFTER_CALL_MS 15000L

typedef struct run_ctx {
    sx_docker_instance *inst;
    const sx_host_api *host;
    const sx_exec_spec *spec;
    sx_exec *exec;
    sx_dk_plan plan;
    char name[128];
    char id[80];
    double setup_deadline;
    sx_dk_abort abort_hook;
    /* attach */
    sx_demux demux;
    int attach_ready;
    long attach_status;
    /* stats */
    char *stats_buf;
    size_t stats_len, stats_cap;
    int64_t cpu_ns;
    int64_t mem_peak;
    int samples;
    char stats_path[200];
    CURL *stats;            /* opened once the run lasts STATS_AFTER_S */
} run_ctx;

static int exec_cancelled_hook(void *arg)
{
    run_ctx *r = arg;
    return r->host->exec_cancelled(r->exec);
}

static long setup_timeout_ms(const run_ctx *r)
{
    double left = r->setup_deadline - sx_now_monotonic();
    long ms = (long)(left * 1000.0);
    return ms < 1000 ? 1000 : ms;
}

static int call(run_ctx *r, const char *method, const char *path, const char *ctype,
                const void *body, size_t len, const char *const *headers, long timeout_ms,
                const char *what, sx_dk_response *resp, sx_error *err)
{
    return sx_dk_call(&r->inst->client, method, path, ctype, body, len, headers, timeout_ms,
                      &r->abort_hook, what, resp, err);
}

/* An Engine answer other than the expected one, as our error. */
static int engine_error(const sx_dk_response *resp, const char *code, const char *what,
                        sx_error *err)
{
    char msg[700];
    sx_dk_message(resp, msg, sizeof msg);
    return sx_error_set(err, code, "cannot %s: the Docker Engine answered %ld: %s", what,
                        resp->status, msg);
}

/* ------------------------------------------------------------------ */
/* Images                                                               */
/* ------------------------------------------------------------------ */

/* Credentials for `registry` from the named secret: a Kubernetes-style
 * .dockerconfigjson key, or username + password keys.  *header is the
 * whole "X-Registry-Auth: ..." line. */
static int registry_auth(const sx_docker_instance *inst, const char *secret, const char *registry,
                         char **header, sx_error *err)
{
    const sx_local_store *st = &inst->plugin->store;
    char *doc = NULL, *user = NULL, *pass = NULL;
    size_t len = 0, ulen = 0, plen = 0;
    int rc = sx_store_read(st, SX_STORE_SECRET, secret, ".dockerconfigjson", &doc, &len, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        rc = sx_dockerconfig_lookup(doc, len, registry, &user, &pass, err);
        memset(doc, 0, len);
        free(doc);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return sx_error_set(err, "config_error",
                                "image_pull_secret '%s': its .dockerconfigjson has no "
                                "credentials for registry %s", secret, registry);
    } else {
        int ru = sx_store_read(st, SX_STORE_SECRET, secret, "username", &user, &ulen, err);
        if (ru < 0)
            return -1;
        int rp = ru == 0 ? sx_store_read(st, SX_STORE_SECRET, secret, "password", &pass, &plen, err)
                         : 1;
        if (rp < 0) {
            free(user);
            return -1;
        }
        if (ru == 1 || rp == 1) {
            free(user);
            free(pass);
            return sx_error_set(err, "config_error",
                                "image_pull_secret '%s' is not in the local store, or has neither "
                                "a .dockerconfigjson key nor username and password keys", secret);
        }
    }
    char *value = sx_registry_auth_header(user, pass, registry);
    memset(pass, 0, strlen(pass));
    free(user);
    free(pass);
    if (value == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    size_t n = strlen(value) + 20;
    *header = malloc(n);
    if (*header)
        snprintf(*header, n, "X-Registry-Auth: %s", value);
    free(value);
    return *header ? 0 : sx_error_set(err, "out_of_memory", "out of memory");
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* A pull failure as image_not_found or image_pull_failed, from the
 * Engine's words (it reports registry errors as text). */
static int pull_error(const char *image, long status, const char *text, int with_secret,
                      sx_error *err)
{
    int not_found = status == 404 || contains(text, "manifest unknown") ||
                    contains(text, "not found") || contains(text, "does not exist");
    int auth = contains(text, "unauthorized") || contains(text, "authentication required") ||
               contains(text, "no basic auth credentials") || contains(text, "denied");
    if (not_found && !auth)
        return sx_error_set(err, "image_not_found", "image '%s' was not found in its registry: %s",
                            image, text);
    if (not_found && auth && !with_secret)
        return sx_error_set(err, "image_not_found",
                            "image '%s' was not found, or its registry needs credentials (set "
                            "image_pull_secret): %s", image, text);
    return sx_error_set(err, "image_pull_failed", "cannot pull image '%s': %s", image, text);
}

static int pull(run_ctx *r, const sx_image_ref *ref, sx_error *err)
{
    sx_docker_instance *inst = r->inst;
    const sx_dk_plan *plan = &r->plan;
    char from[900], efrom[2700], etag[400], path[3300];
    if (sx_image_ref_from_image(ref, from, sizeof from) != 0 ||
        sx_dk_escape(from, efrom, sizeof efrom) != 0 ||
        sx_dk_escape(ref->digest[0] ? ref->digest : ref->tag, etag, sizeof etag) != 0)
        return sx_error_set(err, "invalid_parameter", "image '%s' is too long", plan->image);
    snprintf(path, sizeof path, "/images/create?fromImage=%s&tag=%s", efrom, etag);
    char *auth = NULL;
    if (plan->pull_secret && registry_auth(inst, plan->pull_secret, ref->registry, &auth, err) != 0)
        return -1;
    const char *headers[] = {auth, NULL};
    sx_dk_response resp;
    int rc = call(r, "POST", path, NULL, NULL, 0, auth ? headers : NULL,
                  (long)inst->cfg.pull_timeout_ms, "pull the image", &resp, err);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    if (rc != 0) {
        if (strcmp(err->code, "docker_unavailable") == 0 && contains(err->message, "Timeout"))
            return sx_error_set(err, "image_pull_failed",
                                "pulling image '%s' took longer than pull_timeout (%llds)",
                                plan->image, (long long)(inst->cfg.pull_timeout_ms / 1000));
        return -1;
    }
    if (resp.status != 200) {
        char msg[700];
        sx_dk_message(&resp, msg, sizeof msg);
        rc = pull_error(plan->image, resp.status, msg, plan->pull_secret != NULL, err);
        sx_dk_response_free(&resp);
        return rc;
    }
    /* 200 is a stream of JSON progress lines; a failure is a line with
     * "error" (the status code was sent before the registry answered). */
    rc = 0;
    for (char *line = resp.body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(e)) {
            rc = pull_error(plan->image, 200, e->valuestring, plan->pull_secret != NULL, err);
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j);
        line = nl ? nl + 1 : NULL;
    }
    sx_dk_response_free(&resp);
    return rc;
}

/* 1 = present, 0 = absent, -1 = error. */
static int image_present(run_ctx *r, sx_error *err)
{
    char path[1100];
    snprintf(path, sizeof path, "/images/%s/json", r->plan.image);
    sx_dk_response resp;
    if (call(r, "GET", path, NULL, NULL, 0, NULL, setup_timeout_ms(r), "inspect the image", &resp,
             err) != 0)
        return -1;
    int rc = resp.status == 200 ? 1 : resp.status == 404 ? 0 : -1;
    if (rc < 0)
        engine_error(&resp, "backend_error", "inspect the image", err);
    sx_dk_response_free(&resp);
    return rc;
}

static int ensure_image(run_ctx *r, sx_error *err)
{
    sx_image_ref ref;
    if (sx_image_ref_parse(r->plan.image, &ref, err) != 0)
        return -1;
    const char *policy = r->plan.pull_policy;
    if (strcmp(policy, "Always") == 0)
        return pull(r, &ref, err);
    int present = image_present(r, err);
    if (present < 0)
        return -1;
    if (present)
        return 0;
    if (strcmp(policy, "Never") == 0)
        return sx_error_set(err, "image_not_found",
                            "image '%s' is not present on the Docker host and image_pull_policy "
                            "is Never", r->plan.image);
    return pull(r, &ref, err);
}

/* ------------------------------------------------------------------ */
/* Container and volumes                                                */
/* ------------------------------------------------------------------ */

static void random_hex(char *out, size_t n_bytes)
{
    unsigned char b[16];
    if (n_bytes > sizeof b)
        n_bytes = sizeof b;
    if (getrandom(b, n_bytes, 0) != (ssize_t)n_bytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < n_bytes; i++)
            b[i] = (unsigned char)(ts.tv_nsec >> (i % 4 * 8)) ^ (unsigned char)(i * 131);
    }
    for (size_t i = 0; i < n_bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* "sx-<executor>-<random>", Engine-safe. */
static void object_name(const sx_docker_instance *inst, char *buf, size_t size)
{
    char exe[40];
    size_t j = 0;
    for (const char *p = inst->name; *p && j < sizeof exe - 1; p++)
        exe[j++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')
                       ? *p : '-';
    exe[j] = '\0';
    char rnd[33];
    random_hex(rnd, 8);
    snprintf(buf, size, "sx-%s-%s", exe, rnd);
}

static cJSON *object_labels(const run_ctx *r)
{
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, SX_DK_LABEL_MANAGED, "true");
    cJSON_AddStringToObject(l, SX_DK_LABEL_HOST, r->inst->cfg.host_id);
    cJSON_AddStringToObject(l, SX_DK_LABEL_EXECUTOR, r->inst->name);
    cJSON_AddStringToObject(l, SX_DK_LABEL_EXECUTION, r->spec->execution_id);
    cJSON_AddStringToObject(l, SX_DK_LABEL_STEP, r->spec->step_name);
    return l;
}

static int create_volumes(run_ctx *r, sx_error *err)
{
    cJSON *hc = cJSON_GetObjectItemCaseSensitive(r->plan.create, "HostConfig");
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    for (size_t i = 0; i < r->plan.n_volumes; i++) {
        sx_dk_volume *v = &r->plan.volumes[i];
        char name[200];
        snprintf(name, sizeof name, "%s-v%zu", r->name, i);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "Name", name);
        cJSON_AddItemToObject(body, "Labels", object_labels(r));
        char *json = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        sx_dk_response resp;
        int rc = json ? call(r, "POST", "/volumes/create", "application/json", json, strlen(json),
                             NULL, setup_timeout_ms(r), "create a volume", &resp, err)
                      : sx_error_set(err, "out_of_memory", "out of memory");
        free(json);
        if (rc != 0)
            return -1;
        if (resp.status != 201 && resp.status != 200) {
            engine_error(&resp, "backend_error", "create a volume", err);
            sx_dk_response_free(&resp);
            return -1;
        }
        sx_dk_response_free(&resp);
        v->name = strdup(name);
        if (v->name == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "Type", "volume");
        cJSON_AddStringToObject(m, "Source", name);
        cJSON_AddStringToObject(m, "Target", v->mount_path);
        cJSON_AddBoolToObject(m, "ReadOnly", 0); /* the archive API writes only to rw mounts */
        cJSON *vo = cJSON_AddObjectToObject(m, "VolumeOptions");
        cJSON_AddBoolToObject(vo, "NoCopy", 1);
        cJSON_AddItemToArray(mounts, m);
    }
    return 0;
}

static int create_container(run_ctx *r, sx_error *err)
{
    char *json = cJSON_PrintUnformatted(r->plan.create);
    if (json == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    char path[200];
    snprintf(path, sizeof path, "/containers/create?name=%s", r->name);
    sx_dk_response resp;
    int rc = call(r, "POST", path, "application/json", json, strlen(json), NULL,
                  setup_timeout_ms(r), "create the container", &resp, err);
    /* the body holds secret env values */
    memset(json, 0, strlen(json));
    free(json);
    if (rc != 0)
        return -1;
    if (resp.status != 201) {
        const char *code = resp.status == 404 ? "image_not_found"
                           : resp.status == 400 ? "invalid_parameter" : "backend_error";
        engine_error(&resp, code, "create the container", err);
        sx_dk_response_free(&resp);
        return -1;
    }
    cJSON *j = cJSON_Parse(resp.body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "Id");
    if (cJSON_IsString(id) && strlen(id->valuestring) < sizeof r->id)
        snprintf(r->id, sizeof r->id, "%s", id->valuestring);
    cJSON_Delete(j);
    sx_dk_response_free(&resp);
    if (r->id[0] == '\0')
        return sx_error_set(err, "backend_error", "the Docker Engine created a container but "
                            "returned no id");
    return 0;
}

/* Directory entries for every parent of `path` not yet in the archive. */
static int tar_parents(sx_tar *t, const char *path, unsigned gid, char seen[][256], size_t *n_seen)
{
    char dir[256];
    for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
        size_t n = (size_t)(s - path);
        if (n >= sizeof dir)
            return -1;
        memcpy(dir, path, n);
        dir[n] = '\0';
        int known = 0;
        for (size_t i = 0; i < *n_seen && !known; i++)
            known = strcmp(seen[i], dir) == 0;
        if (known)
            continue;
        if (*n_seen < 64)
            snprintf(seen[(*n_seen)++], 256, "%s", dir);
        if (sx_tar_add_dir(t, dir, 0755, 0, gid) != 0)
            return -1;
    }
    return 0;
}

static int copy_files(run_ctx *r, sx_error *err)
{
    for (size_t i = 0; i < r->plan.n_volumes; i++) {
        sx_dk_volume *v = &r->plan.volumes[i];
        if (v->n_files == 0)
            continue;
        sx_tar t = {0};
        char seen[64][256];
        size_t n_seen = 0;
        int bad = 0;
        for (size_t j = 0; j < v->n_files && !bad; j++) {
            const sx_dk_file *f = &v->files[j];
            bad = tar_parents(&t, f->path, r->plan.gid, seen, &n_seen) != 0 ||
                  sx_tar_add_file(&t, f->path, f->data, f->len, f->mode, 0, r->plan.gid) != 0;
        }
        if (bad || sx_tar_finish(&t) != 0) {
            sx_tar_free(&t);
            return sx_error_set(err, "invalid_parameter",
                                "cannot pack the files of the %s for the container (a path is "
                                "too long or invalid)", v->what);
        }
        char emount[600], path[800];
        sx_dk_escape(v->mount_path, emount, sizeof emount);
        snprintf(path, sizeof path, "/containers/%s/archive?path=%s", r->id, emount);
        sx_dk_response resp;
        char what[500];
        snprintf(what, sizeof what, "copy the %s into the container", v->what);
        int rc = call(r, "PUT", path, "application/x-tar", t.data, t.len, NULL, setup_timeout_ms(r),
                      what, &resp, err);
        if (t.data)
            memset(t.data, 0, t.len); /* secret files */
        sx_tar_free(&t);
        if (rc != 0)
            return -1;
        if (resp.status != 200) {
            engine_error(&resp, "backend_error", what, err);
            sx_dk_response_free(&resp);
            return -1;
        }
        sx_dk_response_free(&resp);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Streams                                                              */
/* ------------------------------------------------------------------ */

static void emit_output(void *user, int stream, const char *data, size_t len)
{
    run_ctx *r = user;
    r->host->exec_output(r->exec, stream == 2 ? SX_STREAM_STDERR : SX_STREAM_STDOUT, data, len);
}

static size_t attach_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    run_ctx *r = user;
    sx_demux_feed(&r->demux, ptr, size * nmemb);
    return size * nmemb;
}

static size_t attach_header(char *ptr, size_t size, size_t nmemb, void *user)
{
    run_ctx *r = user;
    size_t n = size * nmemb;
    if (n >= 12 && strncmp(ptr, "HTTP/", 5) == 0) {
        const char *sp = memchr(ptr, ' ', n);
        r->attach_status = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if ((n == 2 && ptr[0] == '\r') || (n == 1 && ptr[0] == '\n')) {
        r->attach_ready = 1;
    }
    return n;
}

/* One JSON object per line: keep the CPU total and the memory peak. */
static void stats_line(run_ctx *r, const char *line)
{
    cJSON *j = cJSON_Parse(line);
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "cpu_stats"),
                                         "cpu_usage"), "total_usage");
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(j, "memory_stats");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(mem, "max_usage"); /* cgroup v1 */
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(mem, "usage");
    if (cJSON_IsNumber(cpu) && cpu->valuedouble > 0) {
        r->cpu_ns = (int64_t)cpu->valuedouble;
        r->samples++;
        int64_t m = cJSON_IsNumber(max) ? (int64_t)max->valuedouble
                    : cJSON_IsNumber(use) ? (int64_t)use->valuedouble : 0;
        if (m > r->mem_peak)
            r->mem_peak = m;
    }
    cJSON_Delete(j);
}

static size_t stats_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    run_ctx *r = user;
    size_t n = size * nmemb;
    if (r->stats_len + n + 1 > r->stats_cap) {
        size_t cap = r->stats_cap ? r->stats_cap * 2 : 8192;
        while (cap < r->stats_len + n + 1)
            cap *= 2;
        if (cap > (1u << 20))
            return n; /* a line this long is not stats: drop it */
        char *b = realloc(r->stats_buf, cap);
        if (b == NULL)
            return n;
        r->stats_buf = b;
        r->stats_cap = cap;
    }
    memcpy(r->stats_buf + r->stats_len, ptr, n);
    r->stats_len += n;
    r->stats_buf[r->stats_len] = '\0';
    char *nl;
    while ((nl = memchr(r->stats_buf, '\n', r->stats_len)) != NULL) {
        *nl = '\0';
        stats_line(r, r->stats_buf);
        size_t used = (size_t)(nl - r->stats_buf) + 1;
        memmove(r->stats_buf, nl + 1, r->stats_len - used);
        r->stats_len -= used;
        r->stats_buf[r->stats_len] = '\0';
    }
    return n;
}

/* The stdin attach: a raw upgraded connection (libcurl CONNECT_ONLY), so
 * that stdin is written only after the Engine answered (it drops bytes
 * that arrive with the request) and closed by closing the connection
 * (StdinOnce then closes the container's stdin). */
typedef struct stdin_conn {
    CURL *h;
    curl_socket_t sock;
    const char *data;
    size_t len, sent;
} stdin_conn;

static int wait_sock(curl_socket_t s, short events, int ms)
{
    struct pollfd p = {.fd = s, .events = events};
    return poll(&p, 1, ms);
}

static int stdin_open(run_ctx *r, stdin_conn *c, sx_error *err)
{
    const sx_dk_client *cl = &r->inst->client;
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdin=1", r->id);
    c->h = sx_dk_easy(cl, "POST", path);
    if (c->h == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    curl_easy_setopt(c->h, CURLOPT_CONNECT_ONLY, 1L);
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK)
        return sx_dk_transport_error(cl, rc, "attach the script's stdin", err);
    curl_easy_getinfo(c->h, CURLINFO_ACTIVESOCKET, &c->sock);
    /* "scheme://host/v1.41": the Host header and the path prefix */
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
            if (sx_now_monotonic() > r->setup_deadline)
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
            if (sx_now_monotonic() > r->setup_deadline)
                return sx_error_set(err, "docker_unavailable", "attaching stdin timed out");
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
    c->data = r->spec->stdin_data;
    c->len = r->spec->stdin_len;
    return 0;
}

/* Send what the socket takes now; close once all is sent.  Returns 1 while
 * data is pending. */
static int stdin_pump(stdin_conn *c)
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
    if (c->h) {
        curl_easy_cleanup(c->h);
        c->h = NULL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* After the run                                                        */
/* ------------------------------------------------------------------ */

/* RFC 3339 with nanoseconds -> seconds since the epoch (0 on error). */
static double parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int frac_start = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac_start) != 6)
        return 0;
    if (tm.tm_year < 1971)
        return 0; /* "0001-01-01T00:00:00Z": never started or finished */
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double t = (double)timegm(&tm);
    const char *p = s + frac_start;
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            t += (*p - '0') * scale;
    }
    return t;
}

static void kill_container(run_ctx *r)
{
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/kill?signal=KILL", r->id);
    sx_dk_response resp;
    sx_error e;
    if (sx_dk_call(&r->inst->client, "POST", path, NULL, NULL, 0, NULL, AFTER_CALL_MS, NULL,
                   "kill the container", &resp, &e) == 0)
        sx_dk_response_free(&resp);
}

/* Remove the container (with force) and its volumes; failures are logged
 * (the next start's sweep retries). */
void sx_dk_remove_objects(sx_docker_instance *inst, const char *container_id, char **volumes,
                          size_t n_volumes)
{
    const sx_host_api *h = inst->plugin->host;
    char path[300];
    sx_dk_response resp;
    sx_error e;
    if (container_id && container_id[0]) {
        snprintf(path, sizeof path, "/containers/%s?force=1&v=1", container_id);
        if (sx_dk_call(&inst->client, "DELETE", path, NULL, NULL, 0, NULL, AFTER_CALL_MS, NULL,
                       "remove the container", &resp, &e) != 0)
            h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: container %.12s not removed: %s",
                   inst->name, container_id, e.message);
        else {
            if (resp.status != 204 && resp.status != 404)
                h->log(inst->plugin->ctx, SX_LOG_WARN,
                       "executor %s: container %.12s not removed: HTTP %ld", inst->name,
                       container_id, resp.status);
            sx_dk_response_free(&resp);
        }
    }
    for (size_t i = 0; i < n_volumes; i++) {
        if (volumes[i] == NULL)
            continue;
        snprintf(path, sizeof path, "/volumes/%s", volumes[i]);
        if (sx_dk_call(&inst->client, "DELETE", path, NULL, NULL, 0, NULL, AFTER_CALL_MS, NULL,
                       "remove a volume", &resp, &e) != 0) {
            h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: volume %s not removed: %s",
                   inst->name, volumes[i], e.message);
            continue;
        }
        if (resp.status != 204 && resp.status != 404)
            h->log(inst->plugin->ctx, SX_LOG_WARN, "executor %s: volume %s not removed: HTTP %ld",
                   inst->name, volumes[i], resp.status);
        sx_dk_response_free(&resp);
    }
}

static void garbage_free(sx_dk_garbage *g)
{
    for (size_t i = 0; i < g->n_volumes; i++)
        free(g->volumes[i]);
    free(g->volumes);
    free(g->container_id);
    free(g);
}

static void *remover_main(void *arg)
{
    sx_docker_instance *inst = arg;
    pthread_mutex_lock(&inst->lock);
    for (;;) {
        while (inst->garbage_head == NULL && !inst->remover_stop)
            pthread_cond_wait(&inst->garbage_cv, &inst->lock);
        sx_dk_garbage *g = inst->garbage_head;
        if (g == NULL)
            break; /* stopping, queue drained */
        inst->garbage_head = g->next;
        if (inst->garbage_head == NULL)
            inst->garbage_tail = NULL;
        pthread_mutex_unlock(&inst->lock);
        sx_dk_remove_objects(inst, g->container_id, g->volumes, g->n_volumes);
        garbage_free(g);
        pthread_mutex_lock(&inst->lock);
    }
    pthread_mutex_unlock(&inst->lock);
    return NULL;
}

int sx_dk_remover_start(sx_docker_instance *inst)
{
    pthread_cond_init(&inst->garbage_cv, NULL);
    if (pthread_create(&inst->remover, NULL, remover_main, inst) != 0)
        return -1;
    inst->remover_started = 1;
    return 0;
}

void sx_dk_remover_stop(sx_docker_instance *inst)
{
    if (!inst->remover_started)
        return;
    pthread_mutex_lock(&inst->lock);
    inst->remover_stop = 1;
    pthread_cond_signal(&inst->garbage_cv);
    pthread_mutex_unlock(&inst->lock);
    pthread_join(inst->remover, NULL);
    pthread_cond_destroy(&inst->garbage_cv);
    inst->remover_started = 0;
}

void sx_dk_remove_later(sx_docker_instance *inst, sx_dk_garbage *g)
{
    pthread_mutex_lock(&inst->lock);
    g->next = NULL;
    if (inst->garbage_tail)
        inst->garbage_tail->next = g;
    else
        inst->garbage_head = g;
    inst->garbage_tail = g;
    pthread_cond_signal(&inst->garbage_cv);
    pthread_mutex_unlock(&inst->lock);
}

static void cleanup(run_ctx *r)
{
    if (!r->inst->cfg.auto_remove && r->id[0])
        return; /* kept for inspection, with its volumes (in use by it) */
    sx_dk_garbage *g = calloc(1, sizeof *g);
    if (g == NULL)
        return; /* the next start's sweep removes them */
    g->container_id = r->id[0] ? strdup(r->id) : NULL;
    g->volumes = calloc(r->plan.n_volumes + 1, sizeof(char *));
    for (size_t i = 0; g->volumes && i < r->plan.n_volumes; i++)
        if (r->plan.volumes[i].name)
            g->volumes[g->n_volumes++] = strdup(r->plan.volumes[i].name);
    sx_dk_remove_later(r->inst, g);
}

/* Exit state after the attach ended. */
static int collect_exit(run_ctx *r, sx_exec_result *res, sx_error *err)
{
    char path[200];
    sx_dk_response resp;
    snprintf(path, sizeof path, "/containers/%s/wait?condition=not-running", r->id);
    if (sx_dk_call(&r->inst->client, "POST", path, NULL, NULL, 0, NULL, AFTER_CALL_MS, NULL,
                   "wait for the container", &resp, err) != 0)
        return -1;
    sx_dk_response_free(&resp);
    snprintf(path, sizeof path, "/containers/%s/json", r->id);
    if (sx_dk_call(&r->inst->client, "GET", path, NULL, NULL, 0, NULL, AFTER_CALL_MS, NULL,
                   "inspect the container", &resp, err) != 0)
        return -1;
    if (resp.status != 200) {
        engine_error(&resp, "backend_error", "inspect the container", err);
        sx_dk_response_free(&resp);
        return -1;
    }
    cJSON *j = cJSON_Parse(resp.body);
    sx_dk_response_free(&resp);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "State");
    const cJSON *running = cJSON_GetObjectItemCaseSensitive(st, "Running");
    const cJSON *oom = cJSON_GetObjectItemCaseSensitive(st, "OOMKilled");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(st, "ExitCode");
    const cJSON *started = cJSON_GetObjectItemCaseSensitive(st, "StartedAt");
    const cJSON *finished = cJSON_GetObjectItemCaseSensitive(st, "FinishedAt");
    if (!cJSON_IsNumber(code) || cJSON_IsTrue(running)) {
        cJSON_Delete(j);
        return sx_error_set(err, "backend_error",
                            "the Docker Engine reports no exit state for container %.12s", r->id);
    }
    int exit_code = (int)code->valuedouble;
    double t0 = parse_time(cJSON_IsString(started) ? started->valuestring : NULL);
    double t1 = parse_time(cJSON_IsString(finished) ? finished->valuestring : NULL);
    if (t0 > 0 && t1 >= t0)
        res->duration_seconds = t1 - t0;
    if (cJSON_IsTrue(oom)) {
        res->termination = SX_TERM_OOM_KILLED;
        res->signal = 9;
    } else if (exit_code > 128 && exit_code < 128 + 65) {
        /* the Engine reports a death by signal N as 128+N */
        res->termination = SX_TERM_SIGNALED;
        res->signal = exit_code - 128;
    } else {
        res->termination = SX_TERM_EXITED;
        res->exit_code = exit_code;
    }
    cJSON_Delete(j);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The run                                                              */
/* ------------------------------------------------------------------ */

static int start_container(run_ctx *r, sx_error *err)
{
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/start", r->id);
    sx_dk_response resp;
    /* not abortable: a cancel from here on is handled by killing the
     * container, so that the reply says how the script ended */
    if (sx_dk_call(&r->inst->client, "POST", path, NULL, NULL, 0, NULL, setup_timeout_ms(r), NULL,
                   "start the container", &resp, err) != 0)
        return -1;
    int rc = 0;
    if (resp.status != 204 && resp.status != 304) {
        char msg[700];
        sx_dk_message(&resp, msg, sizeof msg);
        rc = sx_error_set(err, resp.status == 400 ? "invalid_parameter" : "backend_error",
                          "cannot start the container (image '%s'): %s", r->plan.image, msg);
    }
    sx_dk_response_free(&resp);
    return rc;
}

static CURL *stream_handle(run_ctx *r, const char *method, const char *path,
                           curl_write_callback body, struct curl_slist *hl)
{
    CURL *h = sx_dk_easy(&r->inst->client, method, path);
    if (h == NULL)
        return NULL;
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    return h;
}

/* Drive the multi handle until the attach ends; kill on timeout/cancel.
 * Returns the termination forced by us (NONE when the script ended by
 * itself), or SX_TERM_LOST when the container did not go away. */
static sx_termination stream_until_exit(run_ctx *r, CURLM *m, CURL *attach, stdin_conn *in,
                                        CURLcode *attach_rc)
{
    int cancel_fd = r->host->exec_cancel_fd(r->exec);
    double t_start = sx_now_monotonic();
    double deadline = t_start + (double)r->spec->timeout_ms / 1000.0;
    double kill_deadline = 0;
    sx_termination forced = SX_TERM_NONE;
    for (;;) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q, done = 0;
        while ((msg = curl_multi_info_read(m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == attach) {
                done = 1;
                *attach_rc = msg->data.result;
            }
        if (done)
            return forced;
        int pending = stdin_pump(in);
        double now = sx_now_monotonic();
        if (r->stats == NULL && now - t_start >= STATS_AFTER_S && forced == SX_TERM_NONE) {
            r->stats = stream_handle(r, "GET", r->stats_path, stats_body, NULL);
            if (r->stats)
                curl_multi_add_handle(m, r->stats);
        }
        if (forced == SX_TERM_NONE && (r->host->exec_cancelled(r->exec) || now >= deadline)) {
            forced = r->host->exec_cancelled(r->exec) ? SX_TERM_CANCELLED : SX_TERM_TIMED_OUT;
            kill_container(r);
            kill_deadline = sx_now_monotonic() + KILL_GRACE_S;
        }
        if (forced != SX_TERM_NONE && now > kill_deadline) {
            *attach_rc = CURLE_OPERATION_TIMEDOUT;
            return SX_TERM_LOST;
        }
        struct curl_waitfd extra[2];
        unsigned n = 0;
        if (forced == SX_TERM_NONE)
            extra[n++] = (struct curl_waitfd){.fd = cancel_fd, .events = CURL_WAIT_POLLIN};
        if (pending)
            extra[n++] = (struct curl_waitfd){.fd = in->sock, .events = CURL_WAIT_POLLOUT};
        double until = forced == SX_TERM_NONE ? deadline : kill_deadline;
        long ms = (long)((until - now) * 1000.0) + 1;
        if (ms > 1000)
            ms = 1000;
        if (r->stats == NULL && ms > 100)
            ms = 100;
        if (ms < 1)
            ms = 1;
        curl_multi_poll(m, extra, n, (int)ms, NULL);
    }
}

int sx_dk_run(sx_docker_instance *inst, const sx_exec_spec *spec, sx_exec *exec,
              sx_exec_result *res, sx_error *err)
{
    const sx_host_api *h = inst->plugin->host;
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.inst = inst;
    r.host = h;
    r.spec = spec;
    r.exec = exec;
    r.abort_hook.fn = exec_cancelled_hook;
    r.abort_hook.arg = &r;
    res->cpu_millis = -1;
    res->memory_mb = -1;
    double setup = (double)(inst->cfg.api_timeout_ms < spec->timeout_ms ? inst->cfg.api_timeout_ms
                                                                         : spec->timeout_ms);
    r.setup_deadline = sx_now_monotonic() + setup / 1000.0;

    pthread_mutex_lock(&inst->lock);
    if (!inst->swept) {
        sx_error se;
        if (sx_dk_sweep_leftovers(inst, &se) < 0) {
            pthread_mutex_unlock(&inst->lock);
            sx_error_set(err, se.code, "%s", se.message);
            return -1;
        }
    }
    pthread_mutex_unlock(&inst->lock);

    if (sx_dk_plan_build(inst, spec, &r.plan, err) != 0)
        return -1;
    int rc = -1;
    CURLM *m = NULL;
    CURL *attach = NULL;
    struct curl_slist *hl = NULL;
    stdin_conn in = {0};
    double t_phase[8];
    t_phase[0] = sx_now_monotonic();
    if (ensure_image(&r, err) != 0)
        goto out;
    t_phase[1] = sx_now_monotonic();
    object_name(inst, r.name, sizeof r.name);
    if (create_volumes(&r, err) != 0)
        goto out;
    t_phase[2] = sx_now_monotonic();
    if (create_container(&r, err) != 0)
        goto out;
    t_phase[3] = sx_now_monotonic();
    if (copy_files(&r, err) != 0)
        goto out;
    t_phase[4] = sx_now_monotonic();

    /* attach before start, and wait for the Engine's answer: from then on
     * it buffers everything the container prints */
    sx_demux_init(&r.demux, emit_output, &r);
    hl = curl_slist_append(NULL, "Expect:");
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdout=1&stderr=1", r.id);
    attach = stream_handle(&r, "POST", path, attach_body, hl);
    m = curl_multi_init();
    if (attach == NULL || m == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    curl_easy_setopt(attach, CURLOPT_HEADERFUNCTION, attach_header);
    curl_easy_setopt(attach, CURLOPT_HEADERDATA, &r);
    curl_multi_add_handle(m, attach);
    while (!r.attach_ready) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) {
                sx_dk_transport_error(&inst->client, msg->data.result, "attach to the container",
                                      err);
                goto out;
            }
        if (!running && !r.attach_ready) {
            sx_error_set(err, "backend_error", "the Docker Engine refused to attach (HTTP %ld)",
                         r.attach_status);
            goto out;
        }
        if (h->exec_cancelled(exec)) {
            sx_error_set(err, "cancelled", "cancelled before the container started");
            goto out;
        }
        if (sx_now_monotonic() > r.setup_deadline) {
            sx_error_set(err, "docker_unavailable",
                         "the Docker daemon at %s did not answer the attach in time",
                         sx_dk_address(&inst->client));
            goto out;
        }
        curl_multi_poll(m, NULL, 0, 5, NULL);
    }
    if (r.attach_status != 200 && r.attach_status != 101) {
        sx_error_set(err, "backend_error", "the Docker Engine refused to attach (HTTP %ld)",
                     r.attach_status);
        goto out;
    }
    if (r.plan.open_stdin && stdin_open(&r, &in, err) != 0)
        goto out;

    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "image", r.plan.image);
    cJSON_AddStringToObject(extra, "container_id", r.id);
    cJSON_AddStringToObject(extra, "container_name", r.name);
    char *extra_json = cJSON_PrintUnformatted(extra);
    cJSON_Delete(extra);
    int started = h->exec_started(exec, extra_json, err);
    free(extra_json);
    if (started != 0)
        goto out;
    t_phase[5] = sx_now_monotonic();
    if (start_container(&r, err) != 0)
        goto out;
    double t_start = sx_now_monotonic();

    snprintf(r.stats_path, sizeof r.stats_path, "/containers/%s/stats?stream=1", r.id);
    CURLcode attach_rc = CURLE_OK;
    sx_termination forced = stream_until_exit(&r, m, attach, &in, &attach_rc);
    double t_end = sx_now_monotonic();
    h->log(inst->plugin->ctx, SX_LOG_DEBUG,
           "executor %s: %s image %.1fms volumes %.1fms create %.1fms copy %.1fms attach %.1fms "
           "start %.1fms run %.1fms", inst->name, r.name, (t_phase[1] - t_phase[0]) * 1e3,
           (t_phase[2] - t_phase[1]) * 1e3, (t_phase[3] - t_phase[2]) * 1e3,
           (t_phase[4] - t_phase[3]) * 1e3, (t_phase[5] - t_phase[4]) * 1e3,
           (t_start - t_phase[5]) * 1e3, (t_end - t_start) * 1e3);
    if (in.h) {
        curl_easy_cleanup(in.h);
        in.h = NULL;
    }
    if (forced == SX_TERM_LOST) {
        res->termination = SX_TERM_LOST;
        res->duration_seconds = t_end - t_start;
        rc = 0;
        goto out;
    }
    if (attach_rc != CURLE_OK && forced == SX_TERM_NONE) {
        /* the daemon went away mid-run: the state is unknown */
        sx_dk_transport_error(&inst->client, attach_rc, "follow the container's output", err);
        goto out;
    }
    if (collect_exit(&r, res, err) != 0)
        goto out;
    if (res->duration_seconds <= 0)
        res->duration_seconds = t_end - t_start;
    if (forced != SX_TERM_NONE) {
        res->termination = forced;
        res->signal = 9;
        res->exit_code = 0;
    }
    if (r.samples > 0) {
        res->cpu_millis = r.cpu_ns / 1000000;
        res->memory_mb = (r.mem_peak + (1 << 20) - 1) >> 20;
    }
    if (sx_demux_incomplete(&r.demux))
        h->log(inst->plugin->ctx, SX_LOG_WARN,
               "executor %s: the container's output ended inside a frame", inst->name);
    snprintf(res->job_name, sizeof res->job_name, "%s", r.name);
    rc = 0;
out:
    if (in.h)
        curl_easy_cleanup(in.h);
    if (m) {
        if (attach)
            curl_multi_remove_handle(m, attach);
        if (r.stats)
            curl_multi_remove_handle(m, r.stats);
        curl_multi_cleanup(m);
    }
    if (attach)
        curl_easy_cleanup(attach);
    if (r.stats)
        curl_easy_cleanup(r.stats);
    curl_slist_free_all(hl);
    free(r.stats_buf);
    if (r.id[0] && rc != 0)
        kill_container(&r);
    cleanup(&r);
    sx_dk_plan_free(&r.plan);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Leftovers                                                            */
/* ------------------------------------------------------------------ */

static char *label_filter(const sx_docker_instance *inst)
{
    cJSON *f = cJSON_CreateObject();
    cJSON *l = cJSON_AddArrayToObject(f, "label");
    char buf[600];
    cJSON_AddItemToArray(l, cJSON_CreateString(SX_DK_LABEL_MANAGED "=true"));
    snprintf(buf, sizeof buf, SX_DK_LABEL_HOST "=%s", inst->cfg.host_id);
    cJSON_AddItemToArray(l, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, SX_DK_LABEL_EXECUTOR "=%s", inst->name);
    cJSON_AddItemToArray(l, cJSON_CreateString(buf));
    char *json = cJSON_PrintUnformatted(f);
    cJSON_Delete(f);
    if (json == NULL)
        return NULL;
    char *esc = malloc(strlen(json) * 3 + 1);
    if (esc)
        sx_dk_escape(json, esc, strlen(json) * 3 + 1);
    free(json);
    return esc;
}

static void record_leftover(sx_docker_instance *inst, const char *what, const char *id,
                            const cJSON *labels, const char *state)
{
    const sx_host_api *h = inst->plugin->host;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_EXECUTION);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_STEP);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", "docker_leftover_removed");
    cJSON_AddStringToObject(o, "executor", inst->name);
    cJSON_AddStringToObject(o, "object", what);
    cJSON_AddStringToObject(o, "id", id);
    if (cJSON_IsString(ex))
        cJSON_AddStringToObject(o, "execution_id", ex->valuestring);
    if (cJSON_IsString(st))
        cJSON_AddStringToObject(o, "step_name", st->valuestring);
    if (state)
        cJSON_AddStringToObject(o, "state", state);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    h->log(inst->plugin->ctx, SX_LOG_WARN,
           "executor %s: removed leftover %s %.12s of execution %s step %s (state %s), left by "
           "a host that stopped mid-run", inst->name, what, id,
           cJSON_IsString(ex) ? ex->valuestring : "?", cJSON_IsString(st) ? st->valuestring : "?",
           state ? state : "-");
    sx_error e;
    if (json && h->record(inst->plugin->ctx, "docker.leftover_removed", json, &e) != 0)
        h->log(inst->plugin->ctx, SX_LOG_ERROR, "executor %s: could not audit a leftover removal: %s",
               inst->name, e.message);
    free(json);
}

int sx_dk_sweep_leftovers(sx_docker_instance *inst, sx_error *err)
{
    char *filter = label_filter(inst);
    if (filter == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    size_t n = strlen(filter) + 64;
    char *path = malloc(n);
    if (path == NULL) {
        free(filter);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    int removed = 0;
    sx_dk_response resp;
    snprintf(path, n, "/containers/json?all=1&filters=%s", filter);
    if (sx_dk_call(&inst->client, "GET", path, NULL, NULL, 0, NULL, 0, NULL,
                   "list leftover containers", &resp, err) != 0) {
        free(path);
        free(filter);
        return -1;
    }
    cJSON *list = cJSON_Parse(resp.body);
    sx_dk_response_free(&resp);
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "Id");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(c, "Labels");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(c, "State");
        const cJSON *keep = cJSON_GetObjectItemCaseSensitive(labels, SX_DK_LABEL_KEEP);
        if (!cJSON_IsString(id))
            continue;
        /* kept on purpose (auto_remove: false) and finished: not a leftover */
        if (cJSON_IsString(keep) && cJSON_IsString(state) &&
            (strcmp(state->valuestring, "exited") == 0 || strcmp(state->valuestring, "dead") == 0))
            continue;
        sx_dk_remove_objects(inst, id->valuestring, NULL, 0);
        record_leftover(inst, "container", id->valuestring, labels,
                        cJSON_IsString(state) ? state->valuestring : NULL);
        removed++;
    }
    cJSON_Delete(list);
    snprintf(path, n, "/volumes?filters=%s", filter);
    if (sx_dk_call(&inst->client, "GET", path, NULL, NULL, 0, NULL, 0, NULL,
                   "list leftover volumes", &resp, err) == 0) {
        cJSON *vl = cJSON_Parse(resp.body);
        sx_dk_response_free(&resp);
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(vl, "Volumes")) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "Name");
            if (!cJSON_IsString(name))
                continue;
            char vpath[300];
            snprintf(vpath, sizeof vpath, "/volumes/%s", name->valuestring);
            sx_error e;
            if (sx_dk_call(&inst->client, "DELETE", vpath, NULL, NULL, 0, NULL, 0, NULL,
                           "remove a leftover volume", &resp, &e) != 0)
                continue;
            /* 409: in use by a kept container */
            if (resp.status == 204) {
                record_leftover(inst, "volume", name->valuestring,
                                cJSON_GetObjectItemCaseSensitive(v, "Labels"), NULL);
                removed++;
            }
            sx_dk_response_free(&resp);
        }
        cJSON_Delete(vl);
    }
    free(path);
    free(filter);
    inst->swept = 1;
    return removed;
}
