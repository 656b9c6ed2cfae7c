/*
 * backend_fake.c - "exec.fake", a test double for the host.  It runs no
 * process: the script is a list of directives, one per line, that script
 * its outcome per request:
 *
 *   out TEXT          write TEXT and a newline to stdout
 *   err TEXT          write TEXT and a newline to stderr
 *   outbytes N        write N bytes ('x') to stdout, in 64 KiB chunks
 *   echo-stdin        copy the step's stdin to stdout
 *   echo-env NAME     write the value of NAME (default_env + step env)
 *   sleep SECONDS     wait (fractions allowed), honouring cancel and timeout
 *   exit N            end with exit code N (default: 0 after the last line)
 *   signal N          end as killed by signal N
 *   oom               end as OOM-killed
 *   lost              end as lost by the backend
 *   fail CODE TEXT    as the first line: refuse to run (run() returns -1)
 *
 * Blank lines and lines starting with '#' are skipped.  Like a real backend
 * it records exec.started before "running" and reports a termination reason.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx/sx_backend.h"
#include "sx/sx_util.h"

typedef struct sx_fake_cfg {
    sx_strmap default_env;
} sx_fake_cfg;

static const sx_option fake_options[] = {
    {SX_OPT_STRMAP, "default_env", NULL, 0, offsetof(sx_fake_cfg, default_env),
     "environment merged under the step's env"},
    {SX_OPT_END, NULL, NULL, 0, 0, NULL}};

typedef struct sx_fake {
    const sx_host_api *host;
    sx_plugin_ctx *ctx;
} sx_fake;

typedef struct sx_fake_instance {
    sx_fake *plugin;
    char *name;
    sx_fake_cfg cfg;
} sx_fake_instance;

static int fake_init(sx_plugin_ctx *ctx, const sx_host_api *host, void **state, sx_error *err)
{
    sx_fake *f = calloc(1, sizeof *f);
    if (f == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    f->host = host;
    f->ctx = ctx;
    *state = f;
    return 0;
}

static void fake_fini(void *state) { free(state); }

static int fake_create(void *state, const char *name, const sx_config_node *config,
                       void **instance, sx_error *err)
{
    sx_fake *f = state;
    sx_fake_instance *in = calloc(1, sizeof *in);
    if (in == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    in->plugin = f;
    in->name = strdup(name);
    if (f->host->config_apply(f->ctx, config, fake_options, &in->cfg, err) != 0) {
        f->host->config_free(fake_options, &in->cfg);
        free(in->name);
        free(in);
        return -1;
    }
    *instance = in;
    return 0;
}

static void fake_destroy(void *instance)
{
    sx_fake_instance *in = instance;
    in->plugin->host->config_free(fake_options, &in->cfg);
    free(in->name);
    free(in);
}

static char *fake_describe(void *instance)
{
    sx_fake_instance *in = instance;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "exec.fake");
    cJSON_AddStringToObject(o, "name", in->name);
    cJSON_AddStringToObject(o, "note", "test double: the script is a list of directives");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int count_lines(const char *s, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n + (len > 0 && s[len - 1] != '\n');
}

static int fake_render(void *instance, const sx_exec_spec *spec, char **json_out, sx_error *err)
{
    (void)instance;
    (void)err;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "exec.fake");
    cJSON_AddNumberToObject(o, "directives", count_lines(spec->script, spec->script_len));
    cJSON_AddNumberToObject(o, "timeout_ms", (double)spec->timeout_ms);
    *json_out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return 0;
}

/* Sleep up to `ms`, waking early on cancel.  Returns 0 slept, 1 cancelled. */
static int wait_ms(const sx_host_api *host, sx_exec *exec, int64_t ms)
{
    struct pollfd pfd = {.fd = host->exec_cancel_fd(exec), .events = POLLIN};
    double end = sx_now_monotonic() + (double)ms / 1000.0;
    for (;;) {
        double left = end - sx_now_monotonic();
        if (left <= 0)
            return 0;
        int rv = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (rv > 0)
            return 1;
    }
}

static int fake_run(void *instance, const sx_exec_spec *spec, sx_exec *exec,
                    sx_exec_result *result, sx_error *err)
{
    sx_fake_instance *in = instance;
    const sx_host_api *host = in->plugin->host;
    char *script = malloc(spec->script_len + 1);
    if (script == NULL)
        return sx_error_set(err, "backend_error", "out of memory");
    memcpy(script, spec->script, spec->script_len);
    script[spec->script_len] = '\0';

    const char *first = script + strspn(script, " \t\n");
    if (strncmp(first, "fail ", 5) == 0) {
        char code[SX_ERROR_CODE_MAX] = "backend_error";
        const char *rest = first + 5;
        size_t cl = strcspn(rest, " \n");
        if (cl > 0 && cl < sizeof code) {
            memcpy(code, rest, cl);
            code[cl] = '\0';
        }
        rest += cl + (rest[cl] == ' ');
        int ml = (int)strcspn(rest, "\n");
        sx_error_set(err, code, "%.*s", ml, rest);
        free(script);
        return -1;
    }
    if (host->exec_started(exec, "{\"fake\":true}", err) != 0) {
        free(script);
        return -1;
    }
    double t0 = sx_now_monotonic();
    double deadline = t0 + (double)spec->timeout_ms / 1000.0;
    result->termination = SX_TERM_EXITED;
    result->exit_code = 0;
    result->cpu_millis = -1; /* a test double measures nothing: null, not 0 */
    result->memory_mb = -1;
    char *save = NULL;
    for (char *line = strtok_r(script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#')
            continue;
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = '\0';
        else
            arg = line + strlen(line);
        if (strcmp(line, "out") == 0 || strcmp(line, "err") == 0) {
            sx_stream s = line[0] == 'o' ? SX_STREAM_STDOUT : SX_STREAM_STDERR;
            host->exec_output(exec, s, arg, strlen(arg));
            host->exec_output(exec, s, "\n", 1);
        } else if (strcmp(line, "outbytes") == 0) {
            long long n = atoll(arg);
            static char chunk[65536];
            memset(chunk, 'x', sizeof chunk);
            while (n > 0) {
                size_t k = n > (long long)sizeof chunk ? sizeof chunk : (size_t)n;
                host->exec_output(exec, SX_STREAM_STDOUT, chunk, k);
                n -= (long long)k;
            }
        } else if (strcmp(line, "echo-stdin") == 0) {
            if (spec->stdin_data)
                host->exec_output(exec, SX_STREAM_STDOUT, spec->stdin_data, spec->stdin_len);
        } else if (strcmp(line, "echo-env") == 0) {
            const char *v = sx_strmap_get(spec->env, arg);
            if (v == NULL)
                v = sx_strmap_get(&in->cfg.default_env, arg);
            if (v)
                host->exec_output(exec, SX_STREAM_STDOUT, v, strlen(v));
            host->exec_output(exec, SX_STREAM_STDOUT, "\n", 1);
        } else if (strcmp(line, "sleep") == 0) {
            double secs = atof(arg);
            double until = sx_now_monotonic() + secs;
            double stop = until < deadline ? until : deadline;
            int64_t ms = (int64_t)((stop - sx_now_monotonic()) * 1000.0);
            if (wait_ms(host, exec, ms > 0 ? ms : 0)) {
                result->termination = SX_TERM_CANCELLED;
                result->signal = 9;
                break;
            }
            if (until > deadline) {
                result->termination = SX_TERM_TIMED_OUT;
                result->signal = 9;
                break;
            }
        } else if (strcmp(line, "exit") == 0) {
            result->exit_code = atoi(arg);
            break;
        } else if (strcmp(line, "signal") == 0) {
            result->termination = SX_TERM_SIGNALED;
            result->signal = atoi(arg);
            break;
        } else if (strcmp(line, "oom") == 0) {
            result->termination = SX_TERM_OOM_KILLED;
            result->signal = 9;
            break;
        } else if (strcmp(line, "lost") == 0) {
            result->termination = SX_TERM_LOST;
            break;
        } else {
            /* started already: report as a failed run, not a refusal */
            host->exec_output(exec, SX_STREAM_STDERR, "fake: unknown directive: ", 25);
            host->exec_output(exec, SX_STREAM_STDERR, line, strlen(line));
            host->exec_output(exec, SX_STREAM_STDERR, "\n", 1);
            result->exit_code = 127;
            break;
        }
    }
    result->duration_seconds = sx_now_monotonic() - t0;
    free(script);
    return 0;
}

static const char *const fake_params[] = {"labels", "annotations", NULL};

static const sx_backend_ops fake_ops = {
    .struct_size = sizeof(sx_backend_ops),
    .supported_params = fake_params,
    .instance_create = fake_create,
    .instance_destroy = fake_destroy,
    .describe = fake_describe,
    .render = fake_render,
    .run = fake_run,
    .load_script = NULL,
};

static const sx_plugin_descriptor fake_descriptor = {
    .abi_major = SX_ABI_MAJOR,
    .abi_minor = SX_ABI_MINOR,
    .struct_size = sizeof(sx_plugin_descriptor),
    .name = "backend_fake",
    .version = "0.1.0",
    .description = "test double: outcome scripted per request",
    .kind = SX_KIND_BACKEND,
    .provides = "exec.fake",
    .init = fake_init,
    .fini = fake_fini,
    .ops = &fake_ops,
};

SX_PLUGIN_DEFINE(fake_descriptor)
