/*
 * docker_run.c - one run on the Docker Engine, in the docker CLI's order
 * (create, attach, start, wait) so that nothing a short-lived container
 * prints is lost:
 *
 *   the image per the pull policy (docker_pull.c)
 *   per-execution volumes; create the container; copy the script (and
 *   secret/configmap files) into the volumes through the archive API -
 *   or, with script_delivery "bind", write them into host directories
 *   that the container bind-mounts (docker_bind.c)
 *   attach stdout/stderr and wait for the Engine's answer; attach stdin
 *   (docker_stdin.c)
 *   the durable exec.started record; start
 *   stream output (demultiplexed) and stats until the attach ends; kill on
 *   timeout or cancel; if the streams closed early, wait for the exit
 *   wait for the exit code, inspect (OOMKilled, start/finish times)
 *   queue the container and its volumes for removal (docker_remover.c),
 *   remove the bind directories
 */
#define _DEFAULT_SOURCE
#include "docker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "output_mask.h"
#include "docker_stream.h"
#include "docker_tar.h"
#include "sx/sx_util.h"

/* How long the container may take to go away after a kill before the run
 * is reported as lost. */
#define KILL_GRACE_S 15.0
/* The kill call itself. */
#define KILL_CALL_MS 5000L
/* The Engine's stats stream samples about once a second: it is opened only
 * for runs that last longer than this, so short runs do not pay for it. */
#define STATS_AFTER_S 0.3
/* Calls after the script ended (wait, inspect). */
#define AFTER_CALL_MS 15000L

typedef struct run_ctx {
    sx_docker_instance *inst;
    const sx_host_api *host;
    const sx_exec_spec *spec;
    sx_exec *exec;
    sx_dk_plan plan;
    char name[128];
    char id[80];
    int bind_made;              /* <bind_dir>/<name> exists, made by this run */
    double setup_deadline;      /* Engine calls before the start */
    double deadline;            /* the script's timeout, from its start */
    sx_dk_abort abort_hook;     /* cancel */
    /* attach: demultiplex, then mask secret values, then the host */
    sx_demux demux;
    sx_masker masker;
    int attach_ready;
    long attach_status;
    /* stats */
    char *stats_buf;
    size_t stats_len, stats_cap;
    int64_t cpu_ns;
    int64_t mem_peak;
    int samples;
    char stats_path[200];
    CURL *stats;                /* opened once the run lasts STATS_AFTER_S */
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
                const void *body, size_t len, long timeout_ms, const char *what,
                sx_dk_response *resp, sx_error *err)
{
    return sx_dk_call(&r->inst->client, method, path, ctype, body, len, NULL, timeout_ms,
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
    char prefix[64];
    sx_dk_name_prefix(inst, prefix, sizeof prefix);
    char rnd[33];
    random_hex(rnd, 8);
    snprintf(buf, size, "%s%s", prefix, rnd);
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
        cJSON_AddItemToObject(body, "Labels", sx_dk_labels(r->inst, r->spec->execution_id, r->spec->step_name));
        char *json = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        sx_dk_response resp;
        int rc = json ? call(r, "POST", "/volumes/create", "application/json", json, strlen(json),
                             setup_timeout_ms(r), "create a volume", &resp, err)
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

/* script_delivery "bind": the files in host directories, bind-mounted */
static int bind_files(run_ctx *r, sx_error *err)
{
    cJSON *hc = cJSON_GetObjectItemCaseSensitive(r->plan.create, "HostConfig");
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    return sx_dk_bind_write(r->inst, &r->plan, r->name, mounts, &r->bind_made, err);
}

static int create_container(run_ctx *r, sx_error *err)
{
    /* the body holds secret env values: one buffer, wiped after */
    char *json = sx_dk_json_print_wiped(r->plan.create);
    if (json == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    char path[200];
    snprintf(path, sizeof path, "/containers/create?name=%s", r->name);
    sx_dk_response resp;
    int rc = call(r, "POST", path, "application/json", json, strlen(json), setup_timeout_ms(r),
                  "create the container", &resp, err);
    sx_dk_wipe_free(json);
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

static size_t tar_size(const sx_dk_volume *v)
{
    size_t n = 1024 + 512; /* end blocks, slack */
    for (size_t j = 0; j < v->n_files; j++) {
        size_t depth = 1;
        for (const char *p = v->files[j].path; *p; p++)
            depth += *p == '/';
        n += 512 * (depth + 1) + (v->files[j].len + 511) / 512 * 512;
    }
    return n;
}

static int copy_files(run_ctx *r, sx_error *err)
{
    for (size_t i = 0; i < r->plan.n_volumes; i++) {
        sx_dk_volume *v = &r->plan.volumes[i];
        if (v->n_files == 0)
            continue;
        /* sized up front: growing it would leave copies of secret files in
         * freed memory */
        sx_tar t = {0};
        t.cap = tar_size(v);
        t.data = malloc(t.cap);
        if (t.data == NULL)
            return sx_error_set(err, "out_of_memory", "out of memory");
        char seen[64][256];
        size_t n_seen = 0;
        int bad = 0;
        for (size_t j = 0; j < v->n_files && !bad; j++) {
            const sx_dk_file *f = &v->files[j];
            bad = tar_parents(&t, f->path, r->plan.gid, seen, &n_seen) != 0 ||
                  sx_tar_add_file(&t, f->path, f->data, f->len, f->mode, 0, r->plan.gid) != 0;
        }
        if (bad || sx_tar_finish(&t) != 0) {
            memset(t.data, 0, t.cap);
            sx_tar_free(&t);
            return sx_error_set(err, "invalid_parameter",
                                "cannot pack the files of the %s for the container (a path is "
                                "too long or invalid)", v->what);
        }
        char emount[700], path[900];
        if (sx_dk_escape(v->mount_path, emount, sizeof emount) != 0) {
            memset(t.data, 0, t.cap);
            sx_tar_free(&t);
            return sx_error_set(err, "invalid_parameter", "mount path of the %s is too long",
                                v->what);
        }
        snprintf(path, sizeof path, "/containers/%s/archive?path=%s", r->id, emount);
        sx_dk_response resp;
        char what[500];
        snprintf(what, sizeof what, "copy the %s into the container", v->what);
        int rc = call(r, "PUT", path, "application/x-tar", t.data, t.len, setup_timeout_ms(r),
                      what, &resp, err);
        memset(t.data, 0, t.cap);
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

static void demuxed(void *user, int stream, const char *data, size_t len)
{
    run_ctx *r = user;
    sx_mask_feed(&r->masker, stream, data, len);
}

static size_t attach_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    run_ctx *r = user;
    /* an error answer's body is the Engine's message, not the script's */
    if (r->attach_status == 200 || r->attach_status == 101)
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
    if (sx_dk_call(&r->inst->client, "POST", path, NULL, NULL, 0, NULL, KILL_CALL_MS, NULL,
                   "kill the container", &resp, &e) == 0)
        sx_dk_response_free(&resp);
}

static void cleanup(run_ctx *r)
{
    if (!r->inst->cfg.auto_remove && r->id[0])
        return; /* kept for inspection, with its volumes or bind directories */
    if (r->bind_made && sx_dk_bind_remove(r->inst, r->name) != 0)
        r->host->log(r->inst->plugin->ctx, SX_LOG_WARN,
                     "executor %s: %s/%s not fully removed (the next start's sweep retries)",
                     r->inst->name, r->inst->cfg.bind_dir, r->name);
    char *vols[64];
    size_t n = 0;
    for (size_t i = 0; i < r->plan.n_volumes && n < 64; i++)
        if (r->plan.volumes[i].name)
            vols[n++] = r->plan.volumes[i].name;
    if (r->id[0] || n > 0)
        sx_dk_remove_later(r->inst, r->id, vols, n);
}

/* Wait for the container to stop.  The streams can close before the
 * process ends (a script that closes stdout and stderr), so this waits up
 * to the script's deadline, killing on timeout or cancel.  Returns the
 * termination we forced (NONE when it ended by itself) or LOST. */
static sx_termination wait_exit(run_ctx *r, sx_termination forced, sx_error *err)
{
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/wait?condition=not-running", r->id);
    for (int round = 0; round < 3; round++) {
        long ms = AFTER_CALL_MS;
        const sx_dk_abort *hook = NULL;
        if (forced == SX_TERM_NONE) {
            ms = (long)((r->deadline - sx_now_monotonic()) * 1000.0) + 500;
            if (ms < 500)
                ms = 500;
            hook = &r->abort_hook;
        }
        sx_dk_response resp;
        sx_error e;
        if (sx_dk_call(&r->inst->client, "POST", path, NULL, NULL, 0, NULL, ms, hook,
                       "wait for the container", &resp, &e) == 0) {
            sx_dk_response_free(&resp);
            return forced;
        }
        if (forced != SX_TERM_NONE) {
            sx_error_set(err, e.code, "%s", e.message);
            return SX_TERM_LOST;
        }
        if (strcmp(e.code, "cancelled") == 0)
            forced = SX_TERM_CANCELLED;
        else if (sx_now_monotonic() >= r->deadline)
            forced = SX_TERM_TIMED_OUT;
        else {
            sx_error_set(err, e.code, "%s", e.message);
            return SX_TERM_LOST;
        }
        kill_container(r);
    }
    return SX_TERM_LOST;
}

/* Exit state of the stopped container. */
static int collect_exit(run_ctx *r, sx_exec_result *res, sx_error *err)
{
    char path[200];
    sx_dk_response resp;
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
    int rc = 0;
    if (!cJSON_IsNumber(code) || cJSON_IsTrue(running)) {
        rc = sx_error_set(err, "backend_error",
                          "the Docker Engine reports no exit state for container %.12s", r->id);
        goto out;
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
out:
    sx_dk_json_wipe_delete(j); /* Config.Env holds secret values */
    return rc;
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
        rc = sx_error_set(err, "backend_error", "cannot start the container (image '%s'): %s",
                          r->plan.image, msg);
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
 * Returns the termination forced by us (NONE when the streams ended by
 * themselves), or SX_TERM_LOST when the container did not go away. */
static sx_termination stream_until_exit(run_ctx *r, CURLM *m, CURL *attach, sx_dk_stdin *in,
                                        CURLcode *attach_rc)
{
    int cancel_fd = r->host->exec_cancel_fd(r->exec);
    double t_start = sx_now_monotonic();
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
        int pending = sx_dk_stdin_pump(in);
        double now = sx_now_monotonic();
        if (r->stats == NULL && now - t_start >= STATS_AFTER_S && forced == SX_TERM_NONE) {
            r->stats = stream_handle(r, "GET", r->stats_path, stats_body, NULL);
            if (r->stats)
                curl_multi_add_handle(m, r->stats);
        }
        if (forced == SX_TERM_NONE && (r->host->exec_cancelled(r->exec) || now >= r->deadline)) {
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
        double until = forced == SX_TERM_NONE ? r->deadline : kill_deadline;
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

/* Attach stdout/stderr and wait until the Engine answered: from then on it
 * keeps everything the container writes for this connection. */
static int attach_output(run_ctx *r, CURLM *m, CURL *attach, sx_error *err)
{
    curl_easy_setopt(attach, CURLOPT_HEADERFUNCTION, attach_header);
    curl_easy_setopt(attach, CURLOPT_HEADERDATA, r);
    curl_multi_add_handle(m, attach);
    while (!r->attach_ready) {
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
                return sx_dk_transport_error(&r->inst->client, msg->data.result,
                                             "attach to the container", err);
        if (r->attach_ready)
            break;
        if (!running)
            return sx_error_set(err, "backend_error",
                                "the Docker Engine refused to attach (HTTP %ld)", r->attach_status);
        if (r->host->exec_cancelled(r->exec))
            return sx_error_set(err, "cancelled", "cancelled before the container started");
        if (sx_now_monotonic() > r->setup_deadline)
            return sx_error_set(err, "docker_unavailable",
                                "the Docker daemon at %s did not answer the attach in time",
                                sx_dk_address(&r->inst->client));
        /* curl may not watch the new connection yet: short waits */
        curl_multi_poll(m, NULL, 0, 5, NULL);
    }
    if (r->attach_status != 200 && r->attach_status != 101)
        return sx_error_set(err, "backend_error", "the Docker Engine refused to attach (HTTP %ld)",
                            r->attach_status);
    return 0;
}

/* Sweep leftovers before the first run when the start-up sweep could not
 * (daemon down then).  One thread sweeps; the others do not wait for it. */
static int sweep_if_needed(run_ctx *r, sx_error *err)
{
    sx_docker_instance *inst = r->inst;
    if (__atomic_load_n(&inst->swept, __ATOMIC_ACQUIRE) || pthread_mutex_trylock(&inst->sweep_lock))
        return 0;
    int rc = 0;
    if (!inst->swept) {
        sx_error se;
        if (sx_dk_sweep_leftovers(inst, setup_timeout_ms(r), &r->abort_hook, &se) < 0)
            rc = sx_error_set(err, se.code, "%s", se.message);
    }
    pthread_mutex_unlock(&inst->sweep_lock);
    return rc;
}

static void fill_usage(const run_ctx *r, sx_exec_result *res)
{
    if (r->samples > 0) {
        res->cpu_millis = r->cpu_ns / 1000000;
        res->memory_mb = (r->mem_peak + (1 << 20) - 1) >> 20;
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
    /* Engine calls before the start: api_timeout, bounded by the step's */
    double budget = (double)(inst->cfg.api_timeout_ms < spec->timeout_ms ? inst->cfg.api_timeout_ms
                                                                          : spec->timeout_ms) /
                    1000.0;
    r.setup_deadline = sx_now_monotonic() + budget;
    if (sweep_if_needed(&r, err) != 0)
        return -1;
    if (sx_dk_plan_build(inst, spec, &r.plan, err) != 0)
        return -1;

    int rc = -1;
    CURLM *m = NULL;
    CURL *attach = NULL;
    struct curl_slist *hl = NULL;
    sx_dk_stdin in = {0};
    double t_phase[6];
    t_phase[0] = sx_now_monotonic();
    /* a pull has its own budget (pull_timeout); the daemon must still
     * answer within the setup budget */
    sx_dk_abort pull_hook = r.abort_hook;
    pull_hook.answer_deadline = sx_now_monotonic() + budget;
    if (sx_dk_ensure_image(inst, r.plan.image, r.plan.pull_policy, r.plan.pull_secret, &pull_hook,
                           setup_timeout_ms(&r), err) != 0)
        goto out;
    r.setup_deadline = sx_now_monotonic() + budget;
    t_phase[1] = sx_now_monotonic();
    object_name(inst, r.name, sizeof r.name);
    int bind = inst->cfg.delivery == SX_DK_DELIVER_BIND;
    if ((bind ? bind_files(&r, err) : create_volumes(&r, err)) != 0 ||
        create_container(&r, err) != 0)
        goto out;
    t_phase[2] = sx_now_monotonic();
    if (!bind && copy_files(&r, err) != 0)
        goto out;
    t_phase[3] = sx_now_monotonic();

    sx_mask_init(&r.masker, &r.plan.secrets, emit_output, &r);
    sx_demux_init(&r.demux, demuxed, &r);
    hl = curl_slist_append(NULL, "Expect:");
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdout=1&stderr=1", r.id);
    attach = stream_handle(&r, "POST", path, attach_body, hl);
    m = curl_multi_init();
    if (attach == NULL || m == NULL) {
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    if (attach_output(&r, m, attach, err) != 0)
        goto out;
    if (r.plan.open_stdin &&
        sx_dk_stdin_open(&inst->client, r.id, spec->stdin_data, spec->stdin_len,
                         r.setup_deadline > sx_now_monotonic() + 1 ? r.setup_deadline
                                                                   : sx_now_monotonic() + 1,
                         &in, err) != 0)
        goto out;
    t_phase[4] = sx_now_monotonic();

    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "image", r.plan.image);
    cJSON_AddStringToObject(extra, "container_id", r.id);
    cJSON_AddStringToObject(extra, "container_name", r.name);
    char *extra_json = cJSON_PrintUnformatted(extra);
    cJSON_Delete(extra);
    int started = extra_json ? h->exec_started(exec, extra_json, err)
                             : sx_error_set(err, "out_of_memory", "out of memory");
    free(extra_json);
    if (started != 0)
        goto out;
    t_phase[5] = sx_now_monotonic();
    if (start_container(&r, err) != 0)
        goto out;
    double t_start = sx_now_monotonic();
    r.deadline = t_start + (double)spec->timeout_ms / 1000.0;
    snprintf(r.stats_path, sizeof r.stats_path, "/containers/%s/stats?stream=1", r.id);

    CURLcode attach_rc = CURLE_OK;
    sx_termination forced = stream_until_exit(&r, m, attach, &in, &attach_rc);
    double t_end = sx_now_monotonic();
    sx_mask_flush(&r.masker);
    h->log(inst->plugin->ctx, SX_LOG_DEBUG,
           "executor %s: %s image %.1fms create %.1fms copy %.1fms attach %.1fms record %.1fms "
           "start %.1fms run %.1fms", inst->name, r.name, (t_phase[1] - t_phase[0]) * 1e3,
           (t_phase[2] - t_phase[1]) * 1e3, (t_phase[3] - t_phase[2]) * 1e3,
           (t_phase[4] - t_phase[3]) * 1e3, (t_phase[5] - t_phase[4]) * 1e3,
           (t_start - t_phase[5]) * 1e3, (t_end - t_start) * 1e3);
    sx_dk_stdin_close(&in);
    if (forced == SX_TERM_NONE && attach_rc != CURLE_OK) {
        /* the daemon went away mid-run: the state is unknown */
        sx_dk_transport_error(&inst->client, attach_rc, "follow the container's output", err);
        goto out;
    }
    if (forced != SX_TERM_LOST)
        forced = wait_exit(&r, forced, err);
    if (forced == SX_TERM_LOST) {
        res->termination = SX_TERM_LOST;
        res->duration_seconds = sx_now_monotonic() - t_start;
        fill_usage(&r, res);
        rc = 0;
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
    fill_usage(&r, res);
    if (sx_demux_incomplete(&r.demux))
        h->log(inst->plugin->ctx, SX_LOG_WARN,
               "executor %s: the container's output ended inside a frame", inst->name);
    snprintf(res->job_name, sizeof res->job_name, "%s", r.name);
    rc = 0;
out:
    sx_dk_stdin_close(&in);
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
    sx_mask_free(&r.masker);
    free(r.stats_buf);
    if (r.id[0] && rc != 0)
        kill_container(&r);
    cleanup(&r);
    sx_dk_plan_free(&r.plan);
    return rc;
}
