/*
 * main.c - the script-executor host: parse the command line, load the
 * config and plugins, serve requests over nng until SIGTERM, then shut down
 * gracefully (finish or cancel in-flight executions, flush sinks, exit 0).
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executions.h"
#include "host.h"
#include "host_events.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "server.h"

#define SX_DEFAULT_CONFIG "/etc/script-executor/config.yaml"
/* After the grace period, how long cancelled runs get to report: longer
 * than a backend's own stop escalation (native: 10 s + 2 s drain). */
#define SX_CANCEL_WAIT_MS 15000

static void usage(FILE *to)
{
    fprintf(to,
            "usage: script-executor [--config PATH] [--plugin-dir DIR] [--check-config]\n"
            "       script-executor --version\n"
            "  --config PATH     YAML config (default: $CONFIG_PATH, else %s)\n"
            "  --plugin-dir DIR  overrides script_executor.plugins.dir\n"
            "  --check-config    parse the config, load plugins, report, exit\n",
            SX_DEFAULT_CONFIG);
}

static void print_report(const sx_host *host)
{
    printf("config ok\nplugins:\n");
    for (size_t i = 0; i < host->n_plugins; i++) {
        const struct sx_plugin_ctx *p = host->plugins[i];
        printf("  %-16s %-8s %-11s provides %-14s ABI %u.%u  %s\n", p->desc->name, p->desc->version,
               sx_plugin_kind_name(p->desc->kind), p->desc->provides, p->desc->abi_major,
               p->desc->abi_minor, p->path);
    }
    printf("executors:\n");
    for (size_t i = 0; i < host->n_executors; i++) {
        const sx_executor *ex = &host->executors[i];
        printf("  %-16s %-16s max_output_bytes %lld%s\n", ex->name, ex->kind,
               (long long)ex->max_output_bytes,
               host->settings.default_executor && strcmp(host->settings.default_executor, ex->name) == 0
                   ? "  (default)" : "");
    }
    printf("listen: %s\nevents: %s\nhttp: %s\n", host->settings.listen,
           host->settings.events ? host->settings.events : "(none)",
           host->settings.http && *host->settings.http ? host->settings.http : "(none)");
    printf("auth: %s\n", sx_auth_mode_name(host->auth_mode));
}

int main(int argc, char **argv)
{
    const char *config = getenv("CONFIG_PATH");
    const char *plugin_dir = NULL;
    int check_only = 0;
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"plugin-dir", required_argument, NULL, 'p'},
        {"check-config", no_argument, NULL, 'k'}, {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:p:kvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'p': plugin_dir = optarg; break;
        case 'k': check_only = 1; break;
        case 'v':
            printf("script-executor %s (plugin ABI %d.%d)\n", SX_HOST_VERSION, SX_ABI_MAJOR, SX_ABI_MINOR);
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (config == NULL || *config == '\0')
        config = SX_DEFAULT_CONFIG;

    /* Signals are taken synchronously by the main thread; every thread
     * created from here on inherits the mask.  Children reset it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sx_host host;
    sx_error err = {{0}, {0}};
    if (sx_host_open(&host, config, plugin_dir, &err) != 0) {
        sx_log_fields(SX_LOG_ERROR, "host", NULL, "%s: %s", err.code, err.message);
        if (check_only)
            fprintf(stdout, "config error (%s): %s\n", err.code, err.message);
        sx_host_close(&host);
        return 2;
    }
    sx_host_report_unused_sections(&host);
    if (check_only) {
        print_report(&host);
        sx_host_close(&host);
        return 0;
    }

    struct sx_server *server = NULL;
    if (sx_host_start_bus(&host, &err) != 0 || sx_http_start(host.http, &err) != 0 ||
        sx_server_start(&host, &server, &err) != 0) {
        sx_log_fields(SX_LOG_ERROR, "host", NULL, "%s: %s", err.code, err.message);
        sx_host_close(&host);
        return 1;
    }
    sx_host_events_start(&host);
    const char *http_url = sx_http_bound_url(host.http, NULL, NULL);
    sx_log(SX_LOG_INFO, "host", "script-executor %s ready: listening on %s, events on %s, HTTP on %s",
           SX_HOST_VERSION, host.settings.listen,
           host.settings.events ? host.settings.events : "(inproc only)",
           http_url ? http_url : "(none)");

    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            sx_log(SX_LOG_INFO, "host", "SIGHUP: no plugin loaded here reloads on it; ignored");
            continue;
        }
        sx_log(SX_LOG_INFO, "host", "%s: shutting down, %zu executions in flight, grace %lldms",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", sx_executions_running(host.executions),
               (long long)host.settings.shutdown_grace_ms);
        break;
    }
    atomic_store(&host.accepting, 0);
    sx_executions_close(host.executions);
    size_t left = sx_executions_wait_idle(host.executions, host.settings.shutdown_grace_ms);
    if (left > 0) {
        sx_log(SX_LOG_WARN, "host", "grace period over: cancelling %zu executions", left);
        sx_executions_cancel_all(host.executions);
        left = sx_executions_wait_idle(host.executions, SX_CANCEL_WAIT_MS);
        if (left > 0) {
            /* A backend is stuck: its worker would never join.  Make what
             * was recorded durable and leave without waiting for it. */
            sx_log(SX_LOG_ERROR, "host", "%zu executions did not stop after cancel; exiting "
                   "without them", left);
            sx_host_flush_sinks(&host);
            return 1;
        }
    }
    sx_server_stop(server);
    sx_host_close(&host);
    sx_log(SX_LOG_INFO, "host", "stopped");
    return 0;
}
