/* host_harness.c - drive the real host binary (see host_harness.h). */
#define _GNU_SOURCE
#include "host_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *substitute(const char *config, const char *dir)
{
    size_t cap = strlen(config) * 2 + 4096;
    char *out = malloc(cap);
    size_t o = 0;
    for (const char *p = config; *p;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "@DIR@", 5) == 0) { rep = dir; skip = 5; }
        else if (strncmp(p, "@PLUGINS@", 9) == 0) { rep = SX_PLUGIN_DIR; skip = 9; }
        else if (strncmp(p, "@FIXTURES@", 10) == 0) { rep = SX_FIXTURE_DIR; skip = 10; }
        if (rep) {
            size_t n = strlen(rep);
            if (o + n + 1 > cap) { cap = (o + n) * 2; out = realloc(out, cap); }
            memcpy(out + o, rep, n);
            o += n;
            p += skip;
        } else {
            if (o + 2 > cap) { cap *= 2; out = realloc(out, cap); }
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static int write_config(const char *dir, const char *config, char *path, size_t size)
{
    snprintf(path, size, "%s/config.yaml", dir);
    char *text = substitute(config, dir);
    FILE *f = fopen(path, "w");
    if (!f) { free(text); return -1; }
    fputs(text, f);
    fclose(f);
    free(text);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int spawn_host(sx_harness *h, int log_mode);

int sx_harness_start(sx_harness *h, const char *config)
{
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/sxit-XXXXXX");
    if (mkdtemp(h->dir) == NULL)
        return -1;
    chmod(h->dir, 01777); /* scripts run as nobody write their marker files here */
    snprintf(h->ctl_url, sizeof h->ctl_url, "ipc://%s/ctl.sock", h->dir);
    snprintf(h->events_url, sizeof h->events_url, "ipc://%s/events.sock", h->dir);
    snprintf(h->audit_path, sizeof h->audit_path, "%s/audit.log", h->dir);
    snprintf(h->log_path, sizeof h->log_path, "%s/host.log", h->dir);
    char path[400];
    if (write_config(h->dir, config, path, sizeof path) != 0)
        return -1;
    return spawn_host(h, O_TRUNC);
}

int sx_harness_restart(sx_harness *h)
{
    if (h->pid > 0)
        return -1;
    return spawn_host(h, O_APPEND);
}

int sx_harness_kill(sx_harness *h)
{
    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGKILL);
    int status = 0;
    waitpid(h->pid, &status, 0);
    h->pid = 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : -1;
}

/* Start the host on h->dir/config.yaml (its log opened with log_mode) and
 * wait until it answers health. */
static int spawn_host(sx_harness *h, int log_mode)
{
    char path[400];
    snprintf(path, sizeof path, "%s/config.yaml", h->dir);
    h->pid = fork();
    if (h->pid == 0) {
        int fd = open(h->log_path, O_WRONLY | O_CREAT | log_mode, 0644);
        dup2(fd, 2);
        execl(SX_HOST_BIN, SX_HOST_BIN, "--config", path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        int status;
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            char *log = sx_harness_slurp(h->log_path);
            fprintf(stderr, "host exited early:\n%s\n", log ? log : "");
            free(log);
            h->pid = 0;
            return -1;
        }
        cJSON *r = sx_harness_call(h, "{\"op\":\"health\"}");
        if (r) {
            cJSON_Delete(r);
            return 0;
        }
        sleep_ms(50);
    }
    return -1;
}

int sx_harness_check_config(const char *config, char *out, size_t out_size)
{
    char dir[] = "/tmp/sxcc-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return -1;
    char path[400];
    write_config(dir, config, path, sizeof path);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --check-config --config %s 2>&1", SX_HOST_BIN, path);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char *sx_harness_call_raw(sx_harness *h, const void *data, size_t len)
{
    nng_socket s;
    if (nng_req0_open(&s) != 0)
        return NULL;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 120000);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (nng_dial(s, h->ctl_url, NULL, 0) != 0) {
        nng_close(s);
        return NULL;
    }
    char *text = NULL;
    if (nng_send(s, (void *)data, len, 0) == 0) {
        char *buf = NULL;
        size_t sz = 0;
        if (nng_recv(s, &buf, &sz, NNG_FLAG_ALLOC) == 0) {
            text = malloc(sz + 1);
            memcpy(text, buf, sz);
            text[sz] = '\0';
            nng_free(buf, sz);
        }
    }
    nng_close(s);
    return text;
}

cJSON *sx_harness_call(sx_harness *h, const char *json)
{
    char *text = sx_harness_call_raw(h, json, strlen(json));
    if (text == NULL)
        return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    return o;
}

int sx_harness_stop(sx_harness *h)
{
    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1200; i++) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            h->pid = 0;
            int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (rc != 0) { /* e.g. a sanitizer report: the log says why */
                char *log = sx_harness_slurp(h->log_path);
                fprintf(stderr, "host exited %d; its log:\n%s\n", rc, log ? log : "(none)");
                free(log);
            }
            return rc;
        }
        sleep_ms(50);
    }
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    h->pid = 0;
    return -1;
}

char *sx_harness_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Call `match` on each audit record matching topic/ids until it returns
 * non-zero; returns the number of matching records visited. */
static int audit_scan(sx_harness *h, const char *topic, const char *id, const char *step,
                      int (*match)(cJSON *rec, void *arg), void *arg)
{
    char *text = sx_harness_slurp(h->audit_path);
    if (text == NULL)
        return 0;
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *rec = cJSON_Parse(line);
        if (rec == NULL)
            continue;
        int stop = 0;
        if ((!topic || strcmp(sx_json_str(rec, "topic"), topic) == 0) &&
            (!id || strcmp(sx_json_str(rec, "execution_id"), id) == 0) &&
            (!step || strcmp(sx_json_str(rec, "step_name"), step) == 0)) {
            count++;
            stop = match ? match(rec, arg) : 0;
        }
        if (!stop)
            cJSON_Delete(rec);
        if (stop)
            break;
    }
    free(text);
    return count;
}

int sx_harness_audit_count(sx_harness *h, const char *topic, const char *id, const char *step)
{
    return audit_scan(h, topic, id, step, NULL, NULL);
}

static int keep_first(cJSON *rec, void *arg)
{
    *(cJSON **)arg = rec;
    return 1;
}

cJSON *sx_harness_audit_record(sx_harness *h, const char *topic, const char *id, const char *step)
{
    cJSON *rec = NULL;
    audit_scan(h, topic, id, step, keep_first, &rec);
    return rec;
}

const char *sx_json_str(const cJSON *obj, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = obj;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, part);
    return cJSON_IsString(cur) ? cur->valuestring : "";
}
