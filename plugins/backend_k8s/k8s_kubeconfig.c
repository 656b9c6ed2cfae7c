/*
 * k8s_kubeconfig.c - read a kubeconfig file (libyaml) into the client's
 * connection settings (k8s_api.h, sx_k8s_kubeconfig_load).
 *
 * Supported, as kubectl reads them: current-context or a named context;
 * its cluster's server, certificate-authority (a file, relative to the
 * kubeconfig's directory) or certificate-authority-data (base64),
 * insecure-skip-tls-verify; its user's token, tokenFile,
 * client-certificate[-data] and client-key[-data]; the context's
 * namespace.  Refused with a clear message: exec and auth-provider
 * plugins, username/password, several files in one path.
 *
 * Secrets (token, client key) are copied once into the connection; the
 * file text, the YAML document's scalars and libyaml's input buffers are
 * overwritten before they are freed.
 */
#define _POSIX_C_SOURCE 200809L
#include "k8s_api.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sx/sx_util.h"

#define KUBECONFIG_MAX (4u << 20)

typedef struct kc {
    yaml_document_t doc;
    const char *path;
    char dir[4096];             /* the file's directory, for relative paths */
} kc;

static yaml_node_t *node(kc *k, int index)
{
    return index ? yaml_document_get_node(&k->doc, index) : NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The value under `key` in a mapping, or NULL. */
static yaml_node_t *get(kc *k, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *kname = scalar(node(k, p->key));
        if (kname && strcmp(kname, key) == 0)
            return node(k, p->value);
    }
    return NULL;
}

static const char *get_str(kc *k, yaml_node_t *map, const char *key)
{
    return scalar(get(k, map, key));
}

/* The entry of list `section` (clusters, users, contexts) whose name is
 * `name`: its inner map (`inner`: cluster, user, context). */
static yaml_node_t *named(kc *k, const char *section, const char *inner, const char *name,
                          sx_error *err)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    yaml_node_t *list = get(k, root, section);
    if (list && list->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *i = list->data.sequence.items.start;
             i < list->data.sequence.items.top; i++) {
            yaml_node_t *e = node(k, *i);
            const char *n = get_str(k, e, "name");
            if (n && strcmp(n, name) == 0) {
                yaml_node_t *in = get(k, e, inner);
                if (in && in->type == YAML_MAPPING_NODE)
                    return in;
                sx_error_set(err, "invalid_config", "kubeconfig %s: %s '%s' has no %s map",
                             k->path, section, name, inner);
                return NULL;
            }
        }
    }
    sx_error_set(err, "invalid_config", "kubeconfig %s: no %s entry named '%s'", k->path, section,
                 name);
    return NULL;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

char *sx_k8s_b64decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *out = malloc(n / 4 * 3 + 4);
    if (out == NULL)
        return NULL;
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '=' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            continue;
        int v = b64val(*p);
        if (v < 0) {
            sx_k8s_wipe_free(out, n / 4 * 3 + 4);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* `key`-data (base64) or `key` (a file, relative to the kubeconfig's
 * directory) of map m into *data and *len.  0 when set or absent, -1 on error. */
static int data_or_file(kc *k, yaml_node_t *m, const char *key, const char *what, char **data,
                        size_t *len, sx_error *err)
{
    char dkey[80];
    snprintf(dkey, sizeof dkey, "%s-data", key);
    const char *d = get_str(k, m, dkey);
    const char *f = get_str(k, m, key);
    if (d && d[0]) {
        *data = sx_k8s_b64decode(d, len);
        if (*data == NULL)
            return sx_error_set(err, "invalid_config", "kubeconfig %s: %s is not valid base64",
                                k->path, dkey);
        return 0;
    }
    if (f && f[0]) {
        char path[8300];
        if (f[0] == '/')
            snprintf(path, sizeof path, "%s", f);
        else
            snprintf(path, sizeof path, "%s/%s", k->dir, f);
        sx_error e;
        *data = sx_k8s_read_file(path, KUBECONFIG_MAX, len, &e);
        if (*data == NULL)
            return sx_error_set(err, "invalid_config", "kubeconfig %s: the %s: %s", k->path, what,
                                e.message);
    }
    return 0;
}

static int is_true(const char *s)
{
    return s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0);
}

static int fill(kc *k, const char *context, sx_k8s_conn *c, sx_error *err)
{
    yaml_node_t *root = yaml_document_get_root_node(&k->doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        return sx_error_set(err, "invalid_config", "kubeconfig %s: not a YAML map", k->path);
    const char *ctx_name = context && context[0] ? context : get_str(k, root, "current-context");
    if (ctx_name == NULL || ctx_name[0] == '\0')
        return sx_error_set(err, "invalid_config",
                            "kubeconfig %s: no current-context, and no context configured",
                            k->path);
    yaml_node_t *ctx = named(k, "contexts", "context", ctx_name, err);
    if (ctx == NULL)
        return -1;
    const char *cluster_name = get_str(k, ctx, "cluster");
    const char *user_name = get_str(k, ctx, "user");
    if (cluster_name == NULL)
        return sx_error_set(err, "invalid_config", "kubeconfig %s: context '%s' names no cluster",
                            k->path, ctx_name);
    yaml_node_t *cluster = named(k, "clusters", "cluster", cluster_name, err);
    if (cluster == NULL)
        return -1;
    const char *server = get_str(k, cluster, "server");
    if (server == NULL || server[0] == '\0')
        return sx_error_set(err, "invalid_config", "kubeconfig %s: cluster '%s' has no server",
                            k->path, cluster_name);
    size_t sl = strlen(server);
    while (sl > 0 && server[sl - 1] == '/')
        sl--;
    c->server = strndup(server, sl);
    const char *ns = get_str(k, ctx, "namespace");
    if (ns && ns[0])
        c->ns = strdup(ns);
    c->insecure = is_true(get_str(k, cluster, "insecure-skip-tls-verify"));
    if (data_or_file(k, cluster, "certificate-authority", "certificate authority", &c->ca_data,
                     &c->ca_len, err) != 0)
        return -1;
    if (user_name && user_name[0]) {
        yaml_node_t *user = named(k, "users", "user", user_name, err);
        if (user == NULL)
            return -1;
        static const char *const unsupported[] = {"exec", "auth-provider", "username", "password",
                                                  NULL};
        for (const char *const *u = unsupported; *u; u++)
            if (get(k, user, *u))
                return sx_error_set(err, "invalid_config",
                                    "kubeconfig %s: user '%s' uses '%s', which this client does "
                                    "not support (use a token, tokenFile or a client "
                                    "certificate)", k->path, user_name, *u);
        const char *tok = get_str(k, user, "token");
        const char *tok_file = get_str(k, user, "tokenFile");
        if (tok && tok[0]) {
            c->token = strdup(tok);
        } else if (tok_file && tok_file[0]) {
            char path[8300];
            if (tok_file[0] == '/')
                snprintf(path, sizeof path, "%s", tok_file);
            else
                snprintf(path, sizeof path, "%s/%s", k->dir, tok_file);
            c->token_file = strdup(path);
            size_t n = 0;
            sx_error e;
            char *t = sx_k8s_read_file(path, 65536, &n, &e);
            if (t == NULL)
                return sx_error_set(err, "invalid_config", "kubeconfig %s: tokenFile: %s", k->path,
                                    e.message);
            sx_k8s_wipe_free(t, n);
        }
        if (data_or_file(k, user, "client-certificate", "client certificate", &c->cert_data,
                         &c->cert_len, err) != 0 ||
            data_or_file(k, user, "client-key", "client key", &c->key_data, &c->key_len, err) != 0)
            return -1;
        if ((c->cert_data == NULL) != (c->key_data == NULL))
            return sx_error_set(err, "invalid_config",
                                "kubeconfig %s: user '%s' needs both a client certificate and a "
                                "client key", k->path, user_name);
    }
    char src[600];
    snprintf(src, sizeof src, "kubeconfig %.300s (context %.200s)", k->path, ctx_name);
    c->source = strdup(src);
    if (c->server == NULL || c->source == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    return 0;
}

/* Overwrite every scalar of the document (tokens, key data). */
static void wipe_document(yaml_document_t *doc)
{
    for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
            memset(n->data.scalar.value, 0, n->data.scalar.length);
}

static void wipe_parser(yaml_parser_t *p)
{
    if (p->buffer.start && p->buffer.end > p->buffer.start)
        memset(p->buffer.start, 0, (size_t)(p->buffer.end - p->buffer.start));
    if (p->raw_buffer.start && p->raw_buffer.end > p->raw_buffer.start)
        memset(p->raw_buffer.start, 0, (size_t)(p->raw_buffer.end - p->raw_buffer.start));
}

int sx_k8s_kubeconfig_load(const char *path, const char *context, sx_k8s_conn *c, sx_error *err)
{
    memset(c, 0, sizeof *c);
    if (strchr(path, ':'))
        return sx_error_set(err, "invalid_config",
                            "kubeconfig '%s': one file only (merging a KUBECONFIG list is not "
                            "supported)", path);
    size_t len = 0;
    char *text = sx_k8s_read_file(path, KUBECONFIG_MAX, &len, err);
    if (text == NULL)
        return -1;
    kc k;
    memset(&k, 0, sizeof k);
    k.path = path;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(k.dir, sizeof k.dir, "%s", dirname(tmp));
    yaml_parser_t parser;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        sx_k8s_wipe_free(text, len);
        return sx_error_set(err, "out_of_memory", "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &k.doc)) {
        sx_error_set(err, "invalid_config", "kubeconfig %s: YAML error at line %zu: %s", path,
                     parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
        wipe_parser(&parser);
        yaml_parser_delete(&parser);
        sx_k8s_wipe_free(text, len);
        return -1;
    }
    rc = fill(&k, context, c, err);
    wipe_document(&k.doc);
    yaml_document_delete(&k.doc);
    wipe_parser(&parser);
    yaml_parser_delete(&parser);
    sx_k8s_wipe_free(text, len);
    if (rc != 0)
        sx_k8s_conn_clear(c);
    return rc;
}
