/*
 * audit_siem.c - the "audit.siem" event sink: audit records to a SIEM
 * endpoint over HTTP(S), losing nothing.
 *
 * write() makes the record durable in an on-disk spool (siem_spool.h) and
 * returns: the host's "durable before acknowledged" holds for this sink as
 * for audit_file.  A background thread (siem_deliver.h) POSTs the spooled
 * records in order, in batches, with the bearer token of the configured
 * secret, retrying with exponential backoff while the endpoint fails or
 * stalls.  After a restart, delivery resumes from the spool.
 *
 * When the spool is full (the endpoint has been down long enough), write()
 * refuses records with "audit_unavailable": the host then starts no step
 * and answers audit_unavailable - audit is never silently dropped.
 *
 * Config: script_executor.audit (audit_settings.h: enabled and the content
 * flags, applied as audit_file applies them) and script_executor.audit.siem
 * (the table below); the token from the local secret store of
 * script_executor.secrets (secrets_dir/<name>/<key>, as backend_docker
 * reads secrets) or from a file.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_settings.h"
#include "local_store.h"
#include "siem_deliver.h"
#include "siem_spool.h"
#include "sx/sx_sink.h"
#include "sx/sx_util.h"

#define TOKEN_MAX 8192

typedef struct siem_cfg {
    int enabled;
    char *endpoint;
    const sx_config_node *token_secret;
    char *token_file;
    char *spool_dir;
    int64_t spool_max_bytes;
    int64_t spool_segment_bytes;
    int64_t batch_max_records;
    int64_t batch_max_bytes;
    int64_t connect_timeout_ms;
    int64_t request_timeout_ms;
    int64_t backoff_initial_ms;
    int64_t backoff_max_ms;
    int64_t drain_timeout_ms;
    char *ca_file;
} siem_cfg;

#define SOPT(type, name, def, field, desc) {type, name, def, 0, offsetof(siem_cfg, field), desc}
static const sx_option siem_options[] = {
    SOPT(SX_OPT_BOOL, "enabled", "false", enabled, "deliver audit records to the SIEM"),
    SOPT(SX_OPT_STRING, "endpoint", NULL, endpoint, "http(s) URL records are POSTed to"),
    SOPT(SX_OPT_NODE, "token_secret", NULL, token_secret,
         "{name, key}: the bearer token in the local secret store (secrets.secrets_dir)"),
    SOPT(SX_OPT_STRING, "token_file", NULL, token_file,
         "a file holding the bearer token (instead of token_secret)"),
    SOPT(SX_OPT_STRING, "spool_dir", NULL, spool_dir,
         "where records wait for the endpoint (default: siem-spool beside audit.log_file)"),
    SOPT(SX_OPT_SIZE, "spool_max_bytes", "256Mi", spool_max_bytes,
         "spool bound; when full, records are refused and steps do not start"),
    SOPT(SX_OPT_SIZE, "spool_segment_bytes", "8Mi", spool_segment_bytes,
         "size of one spool segment file"),
    SOPT(SX_OPT_INT, "batch_max_records", "500", batch_max_records, "records per POST"),
    SOPT(SX_OPT_SIZE, "batch_max_bytes", "1Mi", batch_max_bytes, "bytes per POST"),
    SOPT(SX_OPT_DURATION, "connect_timeout", "5s", connect_timeout_ms, "TCP/TLS connect bound"),
    SOPT(SX_OPT_DURATION, "request_timeout", "30s", request_timeout_ms,
         "bound of one POST; a stalled endpoint is retried after it"),
    SOPT(SX_OPT_DURATION, "backoff_initial", "500ms", backoff_initial_ms,
         "first retry delay (doubles per failure)"),
    SOPT(SX_OPT_DURATION, "backoff_max", "1m", backoff_max_ms, "longest retry delay"),
    SOPT(SX_OPT_DURATION, "drain_timeout", "5s", drain_timeout_ms,
         "at shutdown, how long to keep delivering before leaving records spooled"),
    SOPT(SX_OPT_STRING, "ca_file", NULL, ca_file, "CA bundle for https (default: the system's)"),
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct token_ref {
    char *name;
    char *key;
} token_ref;

static const sx_option token_options[] = {
    {SX_OPT_STRING, "name", NULL, SX_OPT_REQUIRED, offsetof(token_ref, name), "secret name"},
    {SX_OPT_STRING, "key", "token", 0, offsetof(token_ref, key), "key in the secret"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct store_cfg {
    char *secrets_dir;
    char *configmaps_dir;
} store_cfg;

/* The same table as backend_docker's: the `secrets` section is shared. */
static const sx_option store_options[] = {
    {SX_OPT_STRING, "secrets_dir", NULL, 0, offsetof(store_cfg, secrets_dir),
     "directory with a directory per secret, a file per key"},
    {SX_OPT_STRING, "configmaps_dir", NULL, 0, offsetof(store_cfg, configmaps_dir),
     "directory with a directory per configmap, a file per key"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_audit_siem {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
    sx_audit_settings audit;
    siem_cfg cfg;
    token_ref tok;
    sx_local_store store;
    int active;                  /* audit.enabled and audit.siem.enabled */
    int curl_ready;
    sx_spool *spool;
    sx_siem_deliverer *deliverer;
} sx_audit_siem;

static void siem_destroy(sx_audit_siem *s)
{
    sx_siem_deliver_stop(s->deliverer);
    sx_spool_close(s->spool);
    sx_store_free(&s->store);
    s->host->config_free(token_options, &s->tok);
    s->host->config_free(siem_options, &s->cfg);
    s->host->config_free(sx_audit_options, &s->audit);
    if (s->curl_ready)
        curl_global_cleanup();
    free(s);
}

/* Trim surrounding whitespace (a file's trailing newline); refuse control
 * characters, which would break (or inject into) the header. */
static int clean_token(char *t, size_t *len, sx_error *err, const char *what)
{
    size_t b = 0, e = *len;
    while (b < e && isspace((unsigned char)t[b]))
        b++;
    while (e > b && isspace((unsigned char)t[e - 1]))
        e--;
    for (size_t i = b; i < e; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            return sx_error_set(err, "invalid_config",
                                "the SIEM token in %s contains control characters", what);
    if (e == b)
        return sx_error_set(err, "invalid_config", "the SIEM token in %s is empty", what);
    memmove(t, t + b, e - b);
    t[e - b] = '\0';
    *len = e - b;
    return 0;
}

static int read_token_file(const char *path, char **token, size_t *len, sx_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sx_error_set(err, "config_error", "cannot read audit.siem.token_file %s: %s",
                            path, strerror(errno));
    char *buf = malloc(TOKEN_MAX + 1);
    ssize_t n = buf ? read(fd, buf, TOKEN_MAX + 1) : -1;
    close(fd);
    if (n < 0 || n > TOKEN_MAX) {
        if (buf) {
            OPENSSL_cleanse(buf, TOKEN_MAX + 1);
            free(buf);
        }
        return sx_error_set(err, "config_error",
                            n < 0 ? "cannot read audit.siem.token_file %s"
                                  : "audit.siem.token_file %s is larger than 8 KiB", path);
    }
    *token = buf;
    *len = (size_t)n;
    return 0;
}

/* sx_siem_token_fn: the token, fresh from its source. */
static int siem_token(void *arg, char **token, size_t *len, sx_error *err)
{
    sx_audit_siem *s = arg;
    char what[600];
    int rv;
    if (s->cfg.token_file) {
        snprintf(what, sizeof what, "file %s", s->cfg.token_file);
        rv = read_token_file(s->cfg.token_file, token, len, err);
    } else {
        snprintf(what, sizeof what, "secret %s key %s", s->tok.name, s->tok.key);
        rv = sx_store_read(&s->store, SX_STORE_SECRET, s->tok.name, s->tok.key, token, len, err);
        if (rv == 1)
            rv = sx_error_set(err, "config_error",
                              "the SIEM token secret %s has no key %s (secrets.secrets_dir)",
                              s->tok.name, s->tok.key);
    }
    if (rv == 0 && clean_token(*token, len, err, what) != 0) {
        OPENSSL_cleanse(*token, *len);
        free(*token);
        *token = NULL;
        rv = -1;
    }
    return rv;
}

/* Default spool: <directory of audit.log_file>/siem-spool. */
static char *default_spool_dir(const char *log_file)
{
    char dir[PATH_MAX];
    const char *slash = log_file ? strrchr(log_file, '/') : NULL;
    if (slash == NULL)
        snprintf(dir, sizeof dir, "siem-spool");
    else
        snprintf(dir, sizeof dir, "%.*s/siem-spool", (int)(slash - log_file), log_file);
    return strdup(dir);
}

static int check_endpoint(sx_audit_siem *s, sx_error *err)
{
    const char *e = s->cfg.endpoint;
    if (e == NULL)
        return sx_error_set(err, "invalid_config",
                            "audit.siem.enabled is true but audit.siem.endpoint is not set");
    int https = strncmp(e, "https://", 8) == 0;
    if (!https && strncmp(e, "http://", 7) != 0)
        return sx_error_set(err, "invalid_config",
                            "audit.siem.endpoint must be an http:// or https:// URL, not '%s'", e);
    const char *host = e + (https ? 8 : 7);
    if (!https && strncmp(host, "127.", 4) != 0 && strncmp(host, "localhost", 9) != 0 &&
        strncmp(host, "[::1]", 5) != 0)
        s->host->log(s->ctx, SX_LOG_WARN,
                     "audit.siem.endpoint %s is plain http: the token and the records cross "
                     "the network in clear text",
                     e);
    return 0;
}

static int check_limits(const siem_cfg *c, sx_error *err)
{
    if (c->batch_max_records < 1 || c->batch_max_bytes < 1024)
        return sx_error_set(err, "invalid_config",
                            "audit.siem.batch_max_records must be at least 1 and "
                            "batch_max_bytes at least 1Ki");
    if (c->spool_segment_bytes < 4096 || c->spool_max_bytes < 2 * c->spool_segment_bytes)
        return sx_error_set(err, "invalid_config",
                            "audit.siem.spool_segment_bytes must be at least 4Ki and "
                            "spool_max_bytes at least twice it");
    if (c->backoff_initial_ms < 1 || c->backoff_max_ms < c->backoff_initial_ms ||
        c->request_timeout_ms < 1 || c->connect_timeout_ms < 1)
        return sx_error_set(err, "invalid_config",
                            "audit.siem timeouts must be positive and backoff_max at least "
                            "backoff_initial");
    return 0;
}

/* The token's source: exactly one of token_secret and token_file. */
static int setup_token(sx_audit_siem *s, sx_error *err)
{
    const sx_host_api *h = s->host;
    if ((s->cfg.token_secret != NULL) == (s->cfg.token_file != NULL))
        return sx_error_set(err, "invalid_config",
                            "audit.siem needs exactly one of token_secret {name, key} and "
                            "token_file");
    if (s->cfg.token_secret) {
        if (h->config_apply(s->ctx, s->cfg.token_secret, token_options, &s->tok, err) != 0)
            return -1;
        store_cfg sc = {0};
        int rv = h->config_apply(s->ctx, h->config_section(s->ctx, "secrets"), store_options, &sc,
                                 err);
        if (rv == 0 && sx_store_init(&s->store, sc.secrets_dir, sc.configmaps_dir) != 0)
            rv = sx_error_set(err, "invalid_config", "out of memory");
        h->config_free(store_options, &sc);
        if (rv != 0)
            return -1;
    }
    /* read it once now: a missing secret is a start-up error, not a silent backlog */
    char *token = NULL;
    size_t len = 0;
    if (siem_token(s, &token, &len, err) != 0) {
        char msg[SX_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        return sx_error_set(err, "invalid_config", "audit.siem: %s", msg);
    }
    OPENSSL_cleanse(token, len);
    free(token);
    return 0;
}

static int siem_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_audit_siem *s = calloc(1, sizeof *s);
    if (s == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    s->host = host;
    s->ctx = ctx;
    if (host->config_apply(ctx, host->config_section(ctx, "audit"), sx_audit_options, &s->audit,
                           err) != 0 ||
        host->config_apply(ctx, s->audit.siem, siem_options, &s->cfg, err) != 0) {
        siem_destroy(s);
        return -1;
    }
    if (!s->audit.enabled || !s->cfg.enabled) {
        host->log(ctx, SX_LOG_WARN, "%s is false: audit_siem delivers nothing",
                  s->audit.enabled ? "audit.siem.enabled" : "audit.enabled");
        *state = s;
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        siem_destroy(s);
        return sx_error_set(err, "invalid_config", "libcurl failed to initialise");
    }
    s->curl_ready = 1;
    if (s->cfg.spool_dir == NULL && (s->cfg.spool_dir = default_spool_dir(s->audit.log_file)) ==
                                        NULL) {
        siem_destroy(s);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    sx_spool_limits lim = {(uint64_t)s->cfg.spool_max_bytes,
                           (uint64_t)s->cfg.spool_segment_bytes};
    if (check_endpoint(s, err) != 0 || check_limits(&s->cfg, err) != 0 ||
        setup_token(s, err) != 0 || sx_spool_open(s->cfg.spool_dir, &lim, &s->spool, err) != 0) {
        siem_destroy(s);
        return -1;
    }
    sx_siem_options o = {
        .endpoint = s->cfg.endpoint,
        .ca_file = s->cfg.ca_file,
        .connect_timeout_ms = s->cfg.connect_timeout_ms,
        .request_timeout_ms = s->cfg.request_timeout_ms,
        .backoff_initial_ms = s->cfg.backoff_initial_ms,
        .backoff_max_ms = s->cfg.backoff_max_ms,
        .batch_max_records = (size_t)s->cfg.batch_max_records,
        .batch_max_bytes = (size_t)s->cfg.batch_max_bytes,
        .token = siem_token,
        .token_arg = s,
        .host = host,
        .ctx = ctx,
    };
    if (sx_siem_deliver_start(s->spool, &o, &s->deliverer, err) != 0) {
        siem_destroy(s);
        return -1;
    }
    sx_spool_stats st;
    sx_spool_get_stats(s->spool, &st);
    host->log(ctx, SX_LOG_INFO, "SIEM delivery to %s; spool %s holds %llu undelivered records",
              s->cfg.endpoint, s->cfg.spool_dir, (unsigned long long)st.pending);
    s->active = 1;
    *state = s;
    return 0;
}

static void siem_fini(void *state) { siem_destroy(state); }

static int siem_write(void *state, const char *topic, const char *json, sx_error *err)
{
    sx_audit_siem *s = state;
    (void)topic;
    if (!s->active)
        return 0;
    char *rec = sx_audit_filter(&s->audit, json, NULL);
    if (rec == NULL)
        return sx_error_set(err, "audit_unavailable", "record is not a JSON object");
    int rv = sx_spool_append(s->spool, rec, strlen(rec), err);
    free(rec);
    return rv;
}

/* At shutdown: keep delivering for drain_timeout; what is left stays spooled. */
static int siem_flush(void *state)
{
    sx_audit_siem *s = state;
    if (!s->active)
        return 0;
    if (sx_spool_wait_empty(s->spool, s->cfg.drain_timeout_ms))
        return 0;
    sx_spool_stats st;
    sx_spool_get_stats(s->spool, &st);
    s->host->log(s->ctx, SX_LOG_WARN,
                 "SIEM endpoint %s did not take every record before shutdown: %llu stay in "
                 "the spool %s and are delivered after the next start",
                 s->cfg.endpoint, (unsigned long long)st.pending, s->cfg.spool_dir);
    return 0;
}

/* Ready while a typical record (4 KiB) still fits the spool. */
static int siem_ready(void *state, sx_error *err)
{
    sx_audit_siem *s = state;
    return s->active ? sx_spool_ready(s->spool, 4096, err) : 0;
}

static const sx_sink_ops siem_ops = {
    .struct_size = sizeof(sx_sink_ops),
    .write = siem_write,
    .flush = siem_flush,
    .ready = siem_ready,
};

static const sx_plugin_descriptor siem_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "audit_siem",
    .version = "0.1.0",
    .description = "audit records to a SIEM endpoint over HTTP(S), spooled on disk",
    .kind = SX_KIND_EVENT_SINK,
    .provides = "audit.siem",
    .init = siem_init,
    .fini = siem_fini,
    .ops = &siem_ops,
};

SX_PLUGIN_DEFINE(siem_descriptor)
