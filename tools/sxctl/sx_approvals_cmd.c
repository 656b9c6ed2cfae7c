/*
 * sx_approvals_cmd.c - `sxctl approvals list|show|approve|deny`: the
 * approval API (docs/approval.md) over HTTP, with nng's HTTP client (so
 * sxctl needs no other HTTP library).
 *
 *   sxctl approvals list                         pending approvals you may decide
 *   sxctl approvals show EXECUTION_ID STEP       the full request
 *   sxctl approvals approve EXECUTION_ID STEP
 *   sxctl approvals deny EXECUTION_ID STEP [--reason TEXT]
 *
 * --api-url (default $SX_API_URL, else http://127.0.0.1:8080) and --token
 * (default $SX_TOKEN; a bearer JWT).
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sx_commands.h"
#include "sx_http_client.h"

#define SX_DEFAULT_API_URL "http://127.0.0.1:8080"

/* Percent-encode one path segment. */
static void encode_segment(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* One HTTP transaction against the API base URL. */
static int transact(const sx_opts *o, const char *method, const char *path, const char *body_text,
                    char **body)
{
    const char *base = o->api_url ? o->api_url : getenv("SX_API_URL");
    if (base == NULL || base[0] == '\0')
        base = SX_DEFAULT_API_URL;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    const char *token = o->token ? o->token : getenv("SX_TOKEN");
    return sx_http_call(method, url, token, body_text,
                        o->reply_timeout_ms > 0 ? o->reply_timeout_ms : 30000, body);
}

static void print_summary(const cJSON *a)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "id"));
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "status"));
    const char *who = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "requester"));
    const char *exp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "expires_at"));
    printf("%-40s %-9s requested by %-12s expires %s\n", id ? id : "?", st ? st : "?", who ? who : "?",
           exp ? exp : "?");
}

int sx_cmd_approvals(const sx_opts *o)
{
    const char *sub = o->args.v[0];
    int is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    int is_approve = strcmp(sub, "approve") == 0, is_deny = strcmp(sub, "deny") == 0;
    if (!is_list && !is_show && !is_approve && !is_deny) {
        fprintf(stderr, "sxctl: approvals: unknown subcommand '%s' (list, show, approve, deny)\n", sub);
        return SX_EXIT_USAGE;
    }
    if ((is_list && o->args.n != 1) || (!is_list && o->args.n != 3)) {
        fprintf(stderr, "sxctl: usage: sxctl approvals list | show|approve|deny EXECUTION_ID STEP\n");
        return SX_EXIT_USAGE;
    }
    if (o->reason && !is_deny && !is_approve) {
        fprintf(stderr, "sxctl: --reason goes with approve or deny\n");
        return SX_EXIT_USAGE;
    }
    char path[1200] = "/api/v1/approvals/pending";
    if (!is_list) {
        char eid[512], step[512];
        encode_segment(o->args.v[1], eid, sizeof eid);
        encode_segment(o->args.v[2], step, sizeof step);
        snprintf(path, sizeof path, "/api/v1/approvals/%s/%s%s", eid, step,
                 is_approve ? "/approve" : is_deny ? "/deny" : "");
    }
    char *body_text = NULL;
    if (o->reason) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "reason", o->reason);
        body_text = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    }
    char *body = NULL;
    int status = transact(o, is_list || is_show ? "GET" : "POST", path, body_text, &body);
    free(body_text);
    if (status == 0) {
        fprintf(stderr, "sxctl: %s\n", body ? body : "HTTP request failed");
        free(body);
        return SX_EXIT_FAIL;
    }
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    int rc = status / 100 == 2 ? SX_EXIT_OK : SX_EXIT_FAIL;
    if (o->json || j == NULL) {
        printf("%s\n", body ? body : "");
    } else if (rc != SX_EXIT_OK) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
        fprintf(stderr, "sxctl: HTTP %d %s: %s\n", status, code ? code : "error", msg ? msg : body);
    } else if (is_list) {
        const cJSON *a;
        int n = 0;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "approvals")) {
            print_summary(a);
            n++;
        }
        if (n == 0)
            printf("no pending approvals you may decide\n");
    } else if (is_show) {
        char *pretty = cJSON_Print(j);
        printf("%s\n", pretty);
        free(pretty);
    } else {
        print_summary(cJSON_GetObjectItemCaseSensitive(j, "approval"));
    }
    cJSON_Delete(j);
    free(body);
    /* nng 1.5 may still be reaping the closed HTTP connection on its own
     * threads; exiting under it can crash (a destroyed mutex).  Wait for
     * nng to finish: sxctl uses no other nng object in this command. */
    nng_fini();
    return rc;
}
