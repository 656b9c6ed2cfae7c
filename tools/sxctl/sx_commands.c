/*
 * sx_commands.c - sxctl's commands (see sx_commands.h and `sxctl --help`).
 */
#define _POSIX_C_SOURCE 200809L

#include "sx_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sx_client.h"
#include "sx_runbook.h"
#include "sx_stream.h"

#define EVENTS_CONNECT_MS 1000
#define ID_MAX 512

/* ---- small JSON helpers ------------------------------------------------- */

static const char *jstr(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static const cJSON *jget(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int is_ok_status(const cJSON *reply)
{
    const char *status = jstr(reply, "status");

    return status != NULL &&
           (strcmp(status, "ok") == 0 || strcmp(status, "succeeded") == 0);
}

/* "code: message" of reply.error, or the status when there is none.  The
 * code is left out when it only repeats the status ("cancelled"), since
 * callers print the status next to it. */
static void error_text(const cJSON *reply, char *buf, size_t len)
{
    const cJSON *error = jget(reply, "error");
    const char *code = jstr(error, "code");
    const char *message = jstr(error, "message");
    const char *status = jstr(reply, "status");

    if (code != NULL && message != NULL && status != NULL && strcmp(code, status) == 0)
        code = NULL;

    if (code != NULL && message != NULL)
        snprintf(buf, len, "%s: %s", code, message);
    else if (code != NULL || message != NULL)
        snprintf(buf, len, "%s", code != NULL ? code : message);
    else
        snprintf(buf, len, "status %s", jstr(reply, "status"));
}

static void print_json(const cJSON *v)
{
    char *text = cJSON_Print(v);

    if (text != NULL) {
        puts(text);
        free(text);
    }
    fflush(stdout);
}

/* ---- human-readable replies (YAML-like) --------------------------------- */

static void print_value(const cJSON *v, int indent);

static int is_scalar(const cJSON *v)
{
    return !cJSON_IsObject(v) && !cJSON_IsArray(v);
}

static void print_scalar(const cJSON *v)
{
    const char *s = cJSON_GetStringValue(v);
    char *text;

    if (s != NULL && *s != '\0' && strpbrk(s, "\n\r\t\"") == NULL &&
        s[0] != ' ' && s[strlen(s) - 1] != ' ') {
        fputs(s, stdout);
        return;
    }
    text = cJSON_PrintUnformatted(v);
    if (text != NULL)
        fputs(text, stdout);
    free(text);
}

static void print_members(const cJSON *obj, int indent, int first_inline)
{
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (!(first_inline && c == obj->child))
            printf("%*s", indent, "");
        printf("%s:", c->string);
        print_value(c, indent);
    }
}

static void print_items(const cJSON *arr, int indent)
{
    for (const cJSON *c = arr->child; c != NULL; c = c->next) {
        printf("%*s-", indent, "");
        if (cJSON_IsObject(c) && c->child != NULL) {
            putchar(' ');
            print_members(c, indent + 2, 1);
        } else {
            print_value(c, indent);
        }
    }
}

static int all_scalars(const cJSON *arr)
{
    for (const cJSON *c = arr->child; c != NULL; c = c->next)
        if (!is_scalar(c))
            return 0;
    return 1;
}

/* The value after "key:" or "-". */
static void print_value(const cJSON *v, int indent)
{
    if (is_scalar(v)) {
        putchar(' ');
        print_scalar(v);
        putchar('\n');
    } else if (v->child == NULL) {
        puts(cJSON_IsObject(v) ? " {}" : " []");
    } else if (cJSON_IsArray(v) && all_scalars(v)) {
        fputs(" [", stdout);
        for (const cJSON *c = v->child; c != NULL; c = c->next) {
            print_scalar(c);
            fputs(c->next ? ", " : "]\n", stdout);
        }
    } else if (cJSON_IsObject(v)) {
        putchar('\n');
        print_members(v, indent + 2, 0);
    } else {
        putchar('\n');
        print_items(v, indent + 2);
    }
}

/* The reply without its "status" (and ids, when asked), as text. */
static void print_human(const cJSON *reply, int drop_ids)
{
    cJSON *copy = cJSON_Duplicate(reply, 1);

    if (copy == NULL)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "status");
    if (drop_ids) {
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "execution_id");
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "step_name");
    }
    if (copy->child == NULL)
        puts(jstr(reply, "status"));
    else
        print_members(copy, 0, 0);
    cJSON_Delete(copy);
    fflush(stdout);
}

/* ---- requests ----------------------------------------------------------- */

static cJSON *caller_json(const sx_opts *o)
{
    cJSON *caller = cJSON_CreateObject();
    cJSON *groups = cJSON_CreateStringArray(o->groups.v, (int)o->groups.n);

    if (caller == NULL || groups == NULL ||
        cJSON_AddStringToObject(caller, "user", o->user) == NULL ||
        !cJSON_AddItemToObject(caller, "groups", groups)) {
        cJSON_Delete(caller);
        cJSON_Delete(groups);
        return NULL;
    }
    return caller;
}

typedef struct step_fields {
    const char *op;
    const char *execution_id;
    const char *step_name;
    const char *runbook_id;
    int approval_required;
    const cJSON *approvers;     /* NULL: [] */
    cJSON *with;                /* taken */
} step_fields;

/* Move *item into obj (consumed even on failure); 0 when it failed. */
static int put(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return 0;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

/* An execute/render request; takes f->with.  NULL when out of memory. */
static cJSON *step_request(const sx_opts *o, step_fields *f)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *with = f->with;
    int ok = req != NULL;

    f->with = NULL;
    ok = ok && cJSON_AddStringToObject(req, "op", f->op);
    ok = ok && cJSON_AddStringToObject(req, "execution_id", f->execution_id);
    ok = ok && cJSON_AddStringToObject(req, "step_name", f->step_name);
    ok = ok && cJSON_AddStringToObject(req, "runbook_id", f->runbook_id);
    ok = ok && cJSON_AddStringToObject(req, "type", "script.run");
    ok = ok && put(req, "caller", caller_json(o));
    ok = ok && cJSON_AddBoolToObject(req, "approval_required",
                                     f->approval_required);
    ok = ok && put(req, "approvers", f->approvers
                                         ? cJSON_Duplicate(f->approvers, 1)
                                         : cJSON_CreateArray());
    if (ok) {
        ok = put(req, "with", with);
        with = NULL;
    }
    cJSON_Delete(with);
    if (!ok) {
        cJSON_Delete(req);
        fputs("sxctl: out of memory\n", stderr);
        return NULL;
    }
    return req;
}

static cJSON *runbook_request(const sx_opts *o, const sx_runbook *rb,
                              size_t i, const char *op, const char *id)
{
    const sx_rb_step *s = &rb->steps[i];
    step_fields f = {
        .op = op, .execution_id = id, .step_name = s->name,
        .runbook_id = rb->id, .approval_required = s->approval_required,
        .approvers = s->approvers,
        .with = s->with ? cJSON_Duplicate(s->with, 1) : cJSON_CreateObject(),
    };

    return step_request(o, &f);
}

static cJSON *simple_request(const char *op, const char *id, const char *step)
{
    cJSON *req = cJSON_CreateObject();

    cJSON_AddStringToObject(req, "op", op);
    if (id != NULL) {
        cJSON_AddStringToObject(req, "execution_id", id);
        cJSON_AddStringToObject(req, "step_name", step);
    }
    return req;
}

static void default_id(const sx_opts *o, const char *prefix, char *buf,
                       size_t len)
{
    if (o->execution_id != NULL)
        snprintf(buf, len, "%s", o->execution_id);
    else
        snprintf(buf, len, "%s-%lld-%ld", prefix, (long long)time(NULL),
                 (long)getpid());
}

/* ---- connections -------------------------------------------------------- */

static sx_client *open_client(const sx_opts *o)
{
    sx_client *c;
    sx_cerr err;

    if (sx_client_open(o->url, o->reply_timeout_ms, &c, &err) != 0) {
        fprintf(stderr, "sxctl: %s\n", err.message);
        return NULL;
    }
    return c;
}

/* The events socket for live output; NULL (with a note) when unavailable. */
static sx_events *open_live_events(const sx_opts *o)
{
    sx_events *ev;
    sx_cerr err;

    if (o->json)
        return NULL;
    if (sx_events_open(o->events_url, EVENTS_CONNECT_MS, &ev, &err) != 0) {
        fprintf(stderr, "sxctl: %s; output will be shown when each step "
                        "ends\n", err.message);
        return NULL;
    }
    return ev;
}

/* One request and its reply; prints transport errors. */
static cJSON *call(sx_client *c, const cJSON *req)
{
    cJSON *reply;
    sx_cerr err;

    if (sx_client_call(c, req, &reply, &err) != 0) {
        fprintf(stderr, "sxctl: %s\n", err.message);
        return NULL;
    }
    return reply;
}

/* ---- execute ------------------------------------------------------------ */

typedef struct exec_ctx {
    const sx_opts *o;
    sx_client *client;
    sx_events *events;
    int interrupted;
} exec_ctx;

/* Send an execute request, streaming its output; NULL on transport error. */
static cJSON *execute(exec_ctx *x, const cJSON *req)
{
    sx_stream_cfg cfg = {
        .events = x->events, .url = x->o->url,
        .execution_id = jstr(req, "execution_id"),
        .step_name = jstr(req, "step_name"), .print_output = !x->o->json,
    };
    sx_stream *st = sx_stream_start(&cfg);
    cJSON *reply;
    sx_cerr err;
    int rv = sx_client_call(x->client, req, &reply, &err);

    if (sx_stream_finish(st, rv == 0 ? reply : NULL, &cfg))
        x->interrupted = 1;
    if (rv != 0) {
        fprintf(stderr, "sxctl: %s\n", err.message);
        return NULL;
    }
    return reply;
}

static int is_succeeded(const cJSON *reply)
{
    const char *status = jstr(reply, "status");

    return status != NULL && strcmp(status, "succeeded") == 0;
}

/* The exit code of the script when it ran and failed, else 0. */
static int failed_exit_code(const cJSON *reply)
{
    const cJSON *code = jget(jget(reply, "output"), "exit_code");
    int v;

    if (strcmp(jstr(reply, "status"), "failed") != 0 || !cJSON_IsNumber(code))
        return 0;
    v = (int)code->valuedouble;
    if (v <= 0)
        return 0;
    return (v & 0xff) != 0 ? (v & 0xff) : 1;
}

static int step_exit_status(const exec_ctx *x, const cJSON *reply)
{
    int code;

    if (is_succeeded(reply))
        return SX_EXIT_OK;
    if (x->interrupted)
        return SX_EXIT_INTERRUPTED;
    code = failed_exit_code(reply);
    return code != 0 ? code : SX_EXIT_FAIL;
}

/* "step NAME: failed (exit 3, 0.02s): script_failed: ..." on stderr. */
static void print_summary(const char *step, const cJSON *reply)
{
    const cJSON *out = jget(reply, "output");
    const cJSON *exit_code = jget(out, "exit_code");
    const cJSON *signal = jget(jget(out, "termination"), "signal");
    const cJSON *duration = jget(out, "duration_seconds");
    char error[1200];

    fprintf(stderr, "step %s: %s", step, jstr(reply, "status"));
    if (cJSON_IsNumber(exit_code))
        fprintf(stderr, " (exit %d", (int)exit_code->valuedouble);
    else if (cJSON_IsNumber(signal))
        fprintf(stderr, " (signal %d", (int)signal->valuedouble);
    if (cJSON_IsNumber(exit_code) || cJSON_IsNumber(signal))
        fprintf(stderr, cJSON_IsNumber(duration) ? ", %.2fs)" : ")",
                cJSON_IsNumber(duration) ? duration->valuedouble : 0.0);
    if (!is_succeeded(reply) && jget(reply, "error") != NULL) {
        error_text(reply, error, sizeof(error));
        fprintf(stderr, ": %s", error);
    }
    fputc('\n', stderr);
}

static int run_steps(exec_ctx *x, const sx_runbook *rb, const char *id,
                     cJSON *replies)
{
    int status = SX_EXIT_OK;

    for (size_t i = 0; i < rb->n_steps && status == SX_EXIT_OK; i++) {
        cJSON *req = runbook_request(x->o, rb, i, "execute", id);
        cJSON *reply = req ? execute(x, req) : NULL;

        cJSON_Delete(req);
        if (reply == NULL)
            return x->interrupted ? SX_EXIT_INTERRUPTED : SX_EXIT_FAIL;
        if (!x->o->json)
            print_summary(rb->steps[i].name, reply);
        status = step_exit_status(x, reply);
        cJSON_AddItemToArray(replies, reply);
        if (status == SX_EXIT_OK && sx_stream_interrupts > 0)
            status = SX_EXIT_INTERRUPTED;
    }
    return status;
}

int sx_cmd_run(const sx_opts *o)
{
    exec_ctx x = {.o = o};
    char id[ID_MAX], err[1024];
    cJSON *replies;
    sx_runbook rb;
    int status;

    if (sx_runbook_load(o->args.v[0], &rb, err, sizeof(err)) != 0) {
        fprintf(stderr, "sxctl: %s\n", err);
        return SX_EXIT_FAIL;
    }
    default_id(o, rb.id, id, sizeof(id));
    x.client = open_client(o);
    x.events = x.client ? open_live_events(o) : NULL;
    replies = cJSON_CreateArray();
    if (x.client == NULL || replies == NULL) {
        status = SX_EXIT_FAIL;
    } else {
        sx_stream_install_signals();
        status = run_steps(&x, &rb, id, replies);
        if (o->json)
            print_json(replies);
    }
    cJSON_Delete(replies);
    sx_client_close(x.client);
    sx_events_close(x.events);
    sx_runbook_free(&rb);
    return status;
}

/* ---- exec --------------------------------------------------------------- */

static int add_env(cJSON *with, const sx_strv *env)
{
    cJSON *map;

    if (env->n == 0)
        return 0;
    if ((map = cJSON_AddObjectToObject(with, "env")) == NULL)
        return -1;
    for (size_t i = 0; i < env->n; i++) {
        const char *eq = strchr(env->v[i], '=');
        size_t klen = (size_t)(eq - env->v[i]);
        char *key = malloc(klen + 1);

        if (key == NULL)
            return -1;
        memcpy(key, env->v[i], klen);
        key[klen] = '\0';
        cJSON_DeleteItemFromObjectCaseSensitive(map, key);
        cJSON_AddStringToObject(map, key, eq + 1);
        free(key);
    }
    return 0;
}

static int add_stdin(cJSON *with, const char *path)
{
    char err[1024];
    size_t len;
    char *data;
    int rv = 0;

    if (path == NULL)
        return 0;
    if ((data = sx_file_read(path, &len, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sxctl: --stdin-file %s\n", err);
        return -1;
    }
    if (strlen(data) != len) {
        fprintf(stderr, "sxctl: --stdin-file %s: NUL bytes cannot be sent\n",
                path);
        rv = -1;
    } else if (cJSON_AddStringToObject(with, "stdin", data) == NULL) {
        rv = -1;
    }
    free(data);
    return rv;
}

/* with: inline_script, args, interpreter, executor, timeout, env, stdin. */
static cJSON *exec_with(const sx_opts *o)
{
    cJSON *with = cJSON_CreateObject();
    int ok = with != NULL;

    ok = ok && cJSON_AddStringToObject(with, "inline_script", o->args.v[0]);
    if (ok && o->args.n > 1)
        ok = cJSON_AddItemToObject(with, "args", cJSON_CreateStringArray(
                                       o->args.v + 1, (int)o->args.n - 1));
    if (ok && o->interpreter != NULL)
        ok = cJSON_AddStringToObject(with, "interpreter", o->interpreter)
             != NULL;
    if (ok && o->executor != NULL)
        ok = cJSON_AddStringToObject(with, "executor", o->executor) != NULL;
    if (ok && o->script_timeout != NULL)
        ok = cJSON_AddStringToObject(with, "timeout", o->script_timeout)
             != NULL;
    ok = ok && add_env(with, &o->env) == 0 &&
         add_stdin(with, o->stdin_file) == 0;
    if (!ok) {
        cJSON_Delete(with);
        return NULL;
    }
    return with;
}

static int exec_result(const exec_ctx *x, const cJSON *reply)
{
    int status = step_exit_status(x, reply);
    char error[1200];

    if (x->o->json)
        print_json(reply);
    else if (status != SX_EXIT_OK && failed_exit_code(reply) == 0) {
        error_text(reply, error, sizeof(error));
        fprintf(stderr, "sxctl: %s: %s\n", jstr(reply, "status"), error);
    }
    return status;
}

int sx_cmd_exec(const sx_opts *o)
{
    exec_ctx x = {.o = o};
    char id[ID_MAX];
    step_fields f = {.op = "execute", .runbook_id = "sxctl.exec",
                     .step_name = o->step_name ? o->step_name : "exec"};
    cJSON *req, *reply = NULL;
    int status = SX_EXIT_FAIL;

    default_id(o, "exec", id, sizeof(id));
    f.execution_id = id;
    if ((f.with = exec_with(o)) == NULL || (req = step_request(o, &f)) == NULL)
        return SX_EXIT_FAIL;
    x.client = open_client(o);
    x.events = x.client ? open_live_events(o) : NULL;
    if (x.client != NULL) {
        sx_stream_install_signals();
        reply = execute(&x, req);
        status = reply ? exec_result(&x, reply)
                       : x.interrupted ? SX_EXIT_INTERRUPTED : SX_EXIT_FAIL;
    }
    cJSON_Delete(reply);
    cJSON_Delete(req);
    sx_client_close(x.client);
    sx_events_close(x.events);
    return status;
}

/* ---- render ------------------------------------------------------------- */

static void print_rendered(const char *step, const cJSON *reply)
{
    char error[1200];
    cJSON *copy;

    if (!is_ok_status(reply)) {
        error_text(reply, error, sizeof(error));
        printf("step %s: %s: %s\n", step, jstr(reply, "status"), error);
        return;
    }
    printf("step %s: %s\n", step, jstr(reply, "status"));
    if ((copy = cJSON_Duplicate(reply, 1)) == NULL)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "status");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "execution_id");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "step_name");
    print_json(cJSON_GetArraySize(copy) == 1 ? copy->child : copy);
    cJSON_Delete(copy);
}

static int render_steps(const sx_opts *o, sx_client *c, const sx_runbook *rb,
                        const char *id, cJSON *replies)
{
    int status = SX_EXIT_OK;

    for (size_t i = 0; i < rb->n_steps; i++) {
        cJSON *req = runbook_request(o, rb, i, "render", id);
        cJSON *reply = req ? call(c, req) : NULL;

        cJSON_Delete(req);
        if (reply == NULL)
            return SX_EXIT_FAIL;
        if (!is_ok_status(reply))
            status = SX_EXIT_FAIL;
        if (!o->json)
            print_rendered(rb->steps[i].name, reply);
        cJSON_AddItemToArray(replies, reply);
    }
    return status;
}

int sx_cmd_render(const sx_opts *o)
{
    char id[ID_MAX], err[1024];
    cJSON *replies = NULL;
    sx_client *c = NULL;
    sx_runbook rb;
    int status = SX_EXIT_FAIL;

    if (sx_runbook_load(o->args.v[0], &rb, err, sizeof(err)) != 0) {
        fprintf(stderr, "sxctl: %s\n", err);
        return SX_EXIT_FAIL;
    }
    default_id(o, rb.id, id, sizeof(id));
    if ((c = open_client(o)) != NULL &&
        (replies = cJSON_CreateArray()) != NULL) {
        status = render_steps(o, c, &rb, id, replies);
        if (o->json)
            print_json(replies);
    }
    cJSON_Delete(replies);
    sx_client_close(c);
    sx_runbook_free(&rb);
    return status;
}

/* ---- describe, health, list, status, cancel ----------------------------- */

static int simple_op(const sx_opts *o, const char *op, const char *id,
                     const char *step)
{
    cJSON *req = simple_request(op, id, step);
    cJSON *reply = NULL;
    sx_client *c = open_client(o);
    char error[1200];
    int status = SX_EXIT_FAIL;

    if (c != NULL && req != NULL && (reply = call(c, req)) != NULL) {
        status = is_ok_status(reply) ? SX_EXIT_OK : SX_EXIT_FAIL;
        if (o->json) {
            print_json(reply);
        } else if (status == SX_EXIT_OK) {
            print_human(reply, id != NULL);
        } else {
            error_text(reply, error, sizeof(error));
            fprintf(stderr, "sxctl: %s: %s\n", op, error);
        }
    }
    cJSON_Delete(reply);
    cJSON_Delete(req);
    sx_client_close(c);
    return status;
}

int sx_cmd_describe(const sx_opts *o)
{
    return simple_op(o, "describe", NULL, NULL);
}

int sx_cmd_health(const sx_opts *o)
{
    return simple_op(o, "health", NULL, NULL);
}

int sx_cmd_list(const sx_opts *o)
{
    return simple_op(o, "list", NULL, NULL);
}

int sx_cmd_status(const sx_opts *o)
{
    return simple_op(o, "status", o->args.v[0], o->args.v[1]);
}

int sx_cmd_cancel(const sx_opts *o)
{
    return simple_op(o, "cancel", o->args.v[0], o->args.v[1]);
}

/* ---- watch -------------------------------------------------------------- */

static int event_wanted(const sx_opts *o, const sx_event *ev)
{
    const char *id = ev->json ? jstr(ev->json, "execution_id") : NULL;

    return o->execution_id == NULL ||
           (id != NULL && strcmp(id, o->execution_id) == 0);
}

static void print_event(const sx_opts *o, const sx_event *ev)
{
    cJSON *line;
    char *text;

    if (!event_wanted(o, ev))
        return;
    if (!o->json) {
        puts(ev->raw);
        fflush(stdout);
        return;
    }
    line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "topic", ev->topic);
    cJSON_AddItemToObject(line, "event", ev->json ? cJSON_Duplicate(
                              ev->json, 1) : cJSON_CreateNull());
    if ((text = cJSON_PrintUnformatted(line)) != NULL)
        puts(text);
    fflush(stdout);
    free(text);
    cJSON_Delete(line);
}

int sx_cmd_watch(const sx_opts *o)
{
    sx_events *ev;
    sx_event e;
    sx_cerr err;
    int rv = 0;

    if (sx_events_open(o->events_url, SX_CONNECT_TIMEOUT_MS, &ev, &err)
        != 0) {
        fprintf(stderr, "sxctl: %s\n", err.message);
        return SX_EXIT_FAIL;
    }
    sx_stream_install_signals();
    while (sx_stream_interrupts == 0 && rv >= 0) {
        rv = sx_events_next(ev, 200, &e, &err);
        if (rv == 0) {
            print_event(o, &e);
            sx_event_clear(&e);
        }
    }
    if (rv < 0)
        fprintf(stderr, "sxctl: %s\n", err.message);
    sx_events_close(ev);
    return rv < 0 ? SX_EXIT_FAIL : SX_EXIT_OK;
}
