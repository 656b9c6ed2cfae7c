/*
 * test_docker_tcp.c - the exec.docker backend over tcp:// and TLS with
 * client certificates, and the Engine's resource usage.
 *
 * The engine under test listens on its unix socket only (as installed by
 * tools/docker-env.sh); socat puts a real TCP listener and a real TLS
 * listener that demands a client certificate (verify=1, our test CA) in front
 * of that socket.  Certificates are made per run with the openssl CLI.  The
 * backend then talks HTTP(S) over TCP to the real engine.
 */
#define _GNU_SOURCE
#include <check.h>
#include "sx_check_main.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host_harness.h"

#define MINIMAL "sx-test/minimal:latest"

static char certs[256];
static int tls_port, tcp_port;
static pid_t tls_proxy = -1, tcp_proxy = -1;
static sx_harness H;

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "test_docker_tcp setup: %s failed\n", what);
        exit(2);
    }
}

/* CA, server (SAN 127.0.0.1) and client certificates in `certs`. */
static void make_certs(void)
{
    snprintf(certs, sizeof certs, "/tmp/sx-tls-XXXXXX");
    must(mkdtemp(certs) != NULL, "mkdtemp");
    char *cmd;
    must(asprintf(&cmd,
                  "set -e; cd '%s'; exec >openssl.log 2>&1\n"
                  "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sx-test-ca "
                  "-keyout ca.key -out ca.pem\n"
                  "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key "
                  "-out server.csr\n"
                  "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext\n"
                  "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                  "-days 2 -extfile san.ext -out server.pem\n"
                  "openssl req -newkey rsa:2048 -nodes -subj /CN=sx-client -keyout client.key "
                  "-out client.csr\n"
                  "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                  "-days 2 -out client.pem\n",
                  certs) >= 0, "asprintf");
    must(system(cmd) == 0, "openssl (see openssl.log in the certs dir)");
    free(cmd);
}

static pid_t start_proxy(const char *listen_spec)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* socat logs each refused handshake: expected, kept out of the test output */
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("socat", "socat", listen_spec, "UNIX-CONNECT:/var/run/docker.sock", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int port_open(int port)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "exec 3<>/dev/tcp/127.0.0.1/%d", port);
    char *full;
    if (asprintf(&full, "bash -c '%s' 2>/dev/null", cmd) < 0)
        return 0;
    int ok = system(full) == 0;
    free(full);
    return ok;
}

static void start_proxies(void)
{
    tls_port = 23000 + (int)(getpid() % 5000);
    tcp_port = tls_port + 1;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s/server.pem,key=%s/server.key,"
             "cafile=%s/ca.pem,verify=1",
             tls_port, certs, certs, certs);
    tls_proxy = start_proxy(spec);
    snprintf(spec, sizeof spec, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", tcp_port);
    tcp_proxy = start_proxy(spec);
    for (int i = 0; i < 100 && !(port_open(tls_port) && port_open(tcp_port)); i++)
        usleep(50 * 1000);
    must(port_open(tls_port) && port_open(tcp_port), "socat listeners");
}

static void stop_proxies(void)
{
    if (tls_proxy > 0)
        kill(tls_proxy, SIGTERM);
    if (tcp_proxy > 0)
        kill(tcp_proxy, SIGTERM);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void start_host(void)
{
    char *cfg;
    ck_assert_int_ge(asprintf(&cfg,
        "script_executor:\n"
        "  server:\n"
        "    listen: \"ipc://@DIR@/ctl.sock\"\n"
        "  plugins:\n"
        "    dir: \"@PLUGINS@\"\n"
        "    load: [script_run, backend_docker, audit_file]\n"
        "  executors:\n"
        "    - name: tls\n"
        "      kind: exec.docker\n"
        "      image: " MINIMAL "\n"
        "      host: tcp://127.0.0.1:%d\n"
        "      tls_ca: %s/ca.pem\n"
        "      tls_cert: %s/client.pem\n"
        "      tls_key: %s/client.key\n"
        "    - name: tls-no-client-cert\n"
        "      kind: exec.docker\n"
        "      image: " MINIMAL "\n"
        "      host: tcp://127.0.0.1:%d\n"
        "      tls_ca: %s/ca.pem\n"
        "      api_timeout: 3s\n"
        "    - name: plain-tcp\n"
        "      kind: exec.docker\n"
        "      image: " MINIMAL "\n"
        "      host: tcp://127.0.0.1:%d\n"
        "  audit:\n"
        "    log_file: \"@DIR@/audit.log\"\n",
        tls_port, certs, certs, certs, tls_port, certs, tcp_port), 0);
    ck_assert_int_eq(sx_harness_start(&H, cfg), 0);
    free(cfg);
}

static void stop_host(void)
{
    int rc = sx_harness_stop(&H);
    ck_assert_msg(rc == -1 || rc == 0, "host exited with status %d", rc);
}

static cJSON *run(const char *id, const char *with)
{
    char *req;
    ck_assert_int_ge(asprintf(&req, "{\"op\":\"execute\",\"execution_id\":\"%s\",\"step_name\":"
                              "\"s\",\"type\":\"script.run\",\"with\":%s}", id, with), 0);
    cJSON *r = sx_harness_call(&H, req);
    free(req);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void expect(cJSON *r, const char *status, const char *code)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_msg(strcmp(sx_json_str(r, "status"), status) == 0, "want %s: %s", status, text);
    if (code)
        ck_assert_msg(strcmp(sx_json_str(r, "error.code"), code) == 0, "want %s: %s", code, text);
    free(text);
}

START_TEST(tls_with_client_certificate_runs_with_stdin)
{
    cJSON *r = run("tcp-tls", "{\"executor\":\"tls\",\"interpreter\":\"/bin/sh\",\"stdin\":"
                   "\"over-tls\\n\",\"inline_script\":\"echo tls-ok; cat; echo err >&2; exit 3\"}");
    expect(r, "failed", "script_failed");
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "tls-ok\nover-tls\n");
    ck_assert_str_eq(sx_json_str(r, "output.stderr"), "err\n");
    cJSON_Delete(r);
    /* describe reaches the engine through TLS */
    cJSON *d = sx_harness_call(&H, "{\"op\":\"describe\"}");
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_msg(strstr(text, "\"version\":\"20.10") != NULL, "%s", text);
    free(text);
    cJSON_Delete(d);
}
END_TEST

START_TEST(tls_without_client_certificate_is_refused)
{
    time_t t0 = time(NULL);
    cJSON *r = run("tcp-nocert", "{\"executor\":\"tls-no-client-cert\",\"inline_script\":\"true\"}");
    expect(r, "error", "docker_unavailable");
    ck_assert_int_le(time(NULL) - t0, 6);
    cJSON_Delete(r);
}
END_TEST

START_TEST(plain_tcp_runs_and_reports_usage)
{
    /* long enough for the stats stream: CPU and memory come from the engine */
    cJSON *r = run("tcp-plain", "{\"executor\":\"plain-tcp\",\"interpreter\":\"/bin/sh\","
                   "\"inline_script\":\"i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; "
                   "x=$(head -c 20000000 /dev/zero | tr '\\\\0' a); sleep 1.5; echo ${#x}\"}");
    expect(r, "succeeded", NULL);
    ck_assert_str_eq(sx_json_str(r, "output.stdout"), "20000000\n");
    const cJSON *ru = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "resource_usage");
    const cJSON *cpu = cJSON_GetObjectItem(ru, "cpu_millis");
    const cJSON *mem = cJSON_GetObjectItem(ru, "memory_mb");
    char *text = cJSON_PrintUnformatted(ru);
    ck_assert_msg(cJSON_IsNumber(cpu) && cpu->valuedouble >= 100, "cpu: %s", text);
    ck_assert_msg(cJSON_IsNumber(mem) && mem->valuedouble >= 20, "memory: %s", text);
    free(text);
    cJSON_Delete(r);
    /* a short run reports null, not a made-up number */
    r = run("tcp-short", "{\"executor\":\"plain-tcp\",\"interpreter\":\"/bin/sh\","
            "\"inline_script\":\"true\"}");
    expect(r, "succeeded", NULL);
    ru = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "output"), "resource_usage");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(ru, "cpu_millis")));
    cJSON_Delete(r);
}
END_TEST

int main(void)
{
    if (system("docker image inspect " MINIMAL " >/dev/null 2>&1") != 0 ||
        system("command -v socat >/dev/null && command -v openssl >/dev/null") != 0) {
        fprintf(stderr, "integration_docker_tcp needs the Docker engine, the sx-test images, "
                        "socat and openssl: run `bash tools/docker-env.sh` first\n");
        return EXIT_FAILURE;
    }
    make_certs();
    start_proxies();
    Suite *s = suite_create("docker_tcp");
    TCase *t = tcase_create("tcp");
    tcase_add_checked_fixture(t, start_host, stop_host);
    tcase_add_test(t, tls_with_client_certificate_runs_with_stdin);
    tcase_add_test(t, tls_without_client_certificate_is_refused);
    tcase_add_test(t, plain_tcp_runs_and_reports_usage);
    tcase_set_timeout(t, 120);
    suite_add_tcase(s, t);
    int rc = sx_check_run(s);
    stop_proxies();
    char *cmd;
    if (asprintf(&cmd, "rm -rf '%s'", certs) >= 0) {
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", certs);
        free(cmd);
    }
    return rc;
}
