/* docker_image.c - image reference parsing and registry credentials (see docker_image.h). */
#define _POSIX_C_SOURCE 200809L
#include "docker_image.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sx/sx_util.h"

#define DEFAULT_REGISTRY "docker.io"
#define NAME_TOTAL_MAX 255   /* the Engine's NameTotalLengthMax */
#define TAG_MAX 128

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*,
 * separator := "." | "_" | "__" | "-"+ */
static int path_component_ok(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return 0;
        if (i == n)
            return 1;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return 0;
        }
    }
}

/* host := domain-component ("." domain-component)* | "[" IPv6 "]",
 * domain-component := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?; then an
 * optional ":" port of digits. */
static int domain_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        i = 1;
        while (i < n && (is_hex_lower(s[i]) || (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' ||
                         s[i] == '.'))
            i++;
        if (i == 1 || i >= n || s[i] != ']')
            return 0;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < n && (is_alnum(s[i]) || s[i] == '-'))
                i++;
            if (i == start || s[start] == '-' || s[i - 1] == '-')
                return 0;
            if (i < n && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i == n)
        return 1;
    if (s[i] != ':')
        return 0;
    i++;
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static int tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > TAG_MAX)
        return 0;
    if (!(is_alnum(s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* digest := "sha256:" 64 lower-case hex digits */
static int digest_ok(const char *s, size_t n)
{
    if (n != 7 + 64 || strncmp(s, "sha256:", 7) != 0)
        return 0;
    for (size_t i = 7; i < n; i++)
        if (!is_hex_lower(s[i]))
            return 0;
    return 1;
}

static int copy_field(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

int sx_image_ref_parse(const char *ref, sx_image_ref *out, sx_error *err)
{
    memset(out, 0, sizeof *out);
    if (!ref || !*ref)
        return sx_error_set(err, "invalid_parameter", "image reference is empty");
    for (const unsigned char *p = (const unsigned char *)ref; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return sx_error_set(err, "invalid_parameter",
                                "image reference contains whitespace or a control character");
    size_t total = strlen(ref);

    /* name [":" tag] ["@" digest] */
    const char *at = strchr(ref, '@');
    size_t name_end = at ? (size_t)(at - ref) : total;
    if (at) {
        size_t dlen = total - name_end - 1;
        if (!digest_ok(at + 1, dlen))
            return sx_error_set(err, "invalid_parameter",
                                "image reference \"%s\": malformed digest (want sha256:<64 "
                                "lower-case hex digits>)", ref);
        copy_field(out->digest, sizeof out->digest, at + 1, dlen);   /* 71 bytes: fits */
    }
    const char *last_slash = NULL;
    for (size_t i = 0; i < name_end; i++)
        if (ref[i] == '/')
            last_slash = ref + i;
    const char *colon = NULL;
    for (const char *p = last_slash ? last_slash + 1 : ref; p < ref + name_end; p++)
        if (*p == ':')
            colon = p;
    if (colon) {
        size_t tlen = (size_t)(ref + name_end - colon - 1);
        if (!tag_ok(colon + 1, tlen))
            return sx_error_set(err, "invalid_parameter",
                                "image reference \"%s\": malformed tag (want "
                                "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", ref);
        if (copy_field(out->tag, sizeof out->tag, colon + 1, tlen) != 0)
            return sx_error_set(err, "invalid_parameter",
                                "image reference \"%s\": tag longer than %zu bytes", ref,
                                sizeof out->tag - 1);
        name_end = (size_t)(colon - ref);
    }
    if (name_end == 0)
        return sx_error_set(err, "invalid_parameter", "image reference \"%s\": empty name", ref);
    if (name_end > NAME_TOTAL_MAX)
        return sx_error_set(err, "invalid_parameter",
                            "image reference \"%.64s...\": name longer than %d bytes", ref,
                            NAME_TOTAL_MAX);

    /* [registry "/"] path: the first component is a registry when it has a
     * '.' or ':' or is "localhost". */
    const char *path = ref;
    size_t plen = name_end;
    const char *slash = memchr(ref, '/', name_end);
    if (slash) {
        size_t dlen = (size_t)(slash - ref);
        if (memchr(ref, '.', dlen) || memchr(ref, ':', dlen) ||
            (dlen == 9 && strncmp(ref, "localhost", 9) == 0)) {
            if (!domain_ok(ref, dlen))
                return sx_error_set(err, "invalid_parameter",
                                    "image reference \"%s\": malformed registry host", ref);
            if (dlen == 15 && strncmp(ref, "index.docker.io", 15) == 0)
                strcpy(out->registry, DEFAULT_REGISTRY);
            else if (copy_field(out->registry, sizeof out->registry, ref, dlen) != 0)
                return sx_error_set(err, "invalid_parameter",
                                    "image reference \"%s\": registry too long", ref);
            path = slash + 1;
            plen = name_end - dlen - 1;
        }
    }
    if (!out->registry[0])
        strcpy(out->registry, DEFAULT_REGISTRY);

    /* path := component ("/" component)* */
    const char *c = path;
    const char *end = path + plen;
    for (;;) {
        const char *s = memchr(c, '/', (size_t)(end - c));
        const char *cend = s ? s : end;
        if (cend == c)
            return sx_error_set(err, "invalid_parameter",
                                "image reference \"%s\": empty path component", ref);
        for (const char *q = c; q < cend; q++)
            if (*q >= 'A' && *q <= 'Z')
                return sx_error_set(err, "invalid_parameter",
                                    "image reference \"%s\": repository must be lower-case",
                                    ref);
        if (!path_component_ok(c, (size_t)(cend - c)))
            return sx_error_set(err, "invalid_parameter",
                                "image reference \"%s\": invalid repository component "
                                "\"%.*s\"", ref, (int)(cend - c), c);
        if (!s)
            break;
        c = s + 1;
    }

    int library = strcmp(out->registry, DEFAULT_REGISTRY) == 0 && !memchr(path, '/', plen);
    int n = snprintf(out->repo, sizeof out->repo, "%s%.*s", library ? "library/" : "",
                     (int)plen, path);
    if (n < 0 || (size_t)n >= sizeof out->repo)
        return sx_error_set(err, "invalid_parameter", "image reference \"%s\": name too long",
                            ref);

    if (!colon && !at)
        strcpy(out->tag, "latest");
    return 0;
}

int sx_image_ref_from_image(const sx_image_ref *r, char *buf, size_t n)
{
    int w;
    if (strcmp(r->registry, DEFAULT_REGISTRY) == 0 || !r->registry[0])
        w = snprintf(buf, n, "%s", r->repo);
    else
        w = snprintf(buf, n, "%s/%s", r->registry, r->repo);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

char *sx_registry_auth_header(const char *username, const char *password,
                              const char *serveraddress)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "username", username ? username : "") ||
        !cJSON_AddStringToObject(o, "password", password ? password : "") ||
        !cJSON_AddStringToObject(o, "serveraddress", serveraddress ? serveraddress : "")) {
        cJSON_Delete(o);
        return NULL;
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);   /* cJSON_Delete does not wipe; the copies are short-lived */
    if (!json)
        return NULL;
    size_t jlen = strlen(json);
    char *out = NULL;
    if (jlen <= INT_MAX / 4 * 3 - 3) {
        out = malloc(4 * ((jlen + 2) / 3) + 1);
        if (out) {
            EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)json, (int)jlen);
            for (char *p = out; *p; p++) {
                if (*p == '+')
                    *p = '-';
                else if (*p == '/')
                    *p = '_';
            }
        }
    }
    OPENSSL_cleanse(json, jlen);
    cJSON_free(json);
    return out;
}

/* Strict standard base64 (RFC 4648 section 4, padded).  Returns a
 * malloc(3)ed NUL-terminated buffer and *n, or NULL when malformed or out
 * of memory (*oom tells which). */
static unsigned char *b64_decode(const char *s, size_t len, size_t *n, int *oom)
{
    *oom = 0;
    if (len == 0 || len % 4 != 0 || len > INT_MAX)
        return NULL;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '=') {
            if (i < len - 2)
                return NULL;
            pad++;
        } else if (pad || !(is_alnum(c) || c == '+' || c == '/')) {
            return NULL;
        }
    }
    unsigned char *out = malloc(len / 4 * 3 + 1);
    if (!out) {
        *oom = 1;
        return NULL;
    }
    int w = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (w < 0 || (size_t)w < pad) {
        free(out);
        return NULL;
    }
    *n = (size_t)w - pad;
    out[*n] = '\0';
    return out;
}

/* The registry host a .dockerconfigjson server key names: drop an
 * "http://" or "https://" scheme and anything from the first '/'; the Docker
 * Hub aliases become "docker.io".  Writes into buf; returns its length, or 0
 * when it does not fit. */
static size_t server_host(const char *key, char *buf, size_t size)
{
    if (strncasecmp(key, "https://", 8) == 0)
        key += 8;
    else if (strncasecmp(key, "http://", 7) == 0)
        key += 7;
    size_t n = strcspn(key, "/");
    if (n == 0 || n >= size)
        return 0;
    memcpy(buf, key, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "index.docker.io") == 0 || strcasecmp(buf, "registry-1.docker.io") == 0 ||
        strcasecmp(buf, "registry.hub.docker.com") == 0) {
        strcpy(buf, DEFAULT_REGISTRY);
        n = strlen(DEFAULT_REGISTRY);
    }
    return n;
}

int sx_dockerconfig_lookup(const char *json, size_t len, const char *registry, char **username,
                           char **password, sx_error *err)
{
    *username = NULL;
    *password = NULL;
    if (!json || !registry)
        return sx_error_set(err, "config_error", "no .dockerconfigjson document");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root && end) {   /* only white space (or a final NUL) may follow */
        for (; end < json + len; end++) {
            if (!(*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' ||
                  (*end == '\0' && end + 1 == json + len))) {
                cJSON_Delete(root);
                root = NULL;
                break;
            }
        }
    }
    if (!root)
        return sx_error_set(err, "config_error", ".dockerconfigjson is not valid JSON");
    int rc = -1;
    const cJSON *auths = cJSON_GetObjectItemCaseSensitive(root, "auths");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(auths)) {
        sx_error_set(err, "config_error", ".dockerconfigjson has no \"auths\" object");
        goto out;
    }

    char want[256];
    if (!server_host(registry, want, sizeof want)) {
        rc = 1;
        goto out;
    }
    /* An exact key wins; else the first key naming the same host. */
    const cJSON *entry = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, auths) {
        if (it->string && strcmp(it->string, registry) == 0) {
            entry = it;
            break;
        }
    }
    if (!entry) {
        cJSON_ArrayForEach(it, auths) {
            char host[256];
            if (it->string && server_host(it->string, host, sizeof host) &&
                strcasecmp(host, want) == 0) {
                entry = it;
                break;
            }
        }
    }
    if (!entry) {
        rc = 1;
        goto out;
    }
    const char *server = entry->string;
    if (!cJSON_IsObject(entry)) {
        sx_error_set(err, "config_error", ".dockerconfigjson entry \"%s\" is not an object",
                     server);
        goto out;
    }

    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(entry, "auth");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(entry, "username");
    const cJSON *pass = cJSON_GetObjectItemCaseSensitive(entry, "password");
    if ((auth && !cJSON_IsString(auth)) || (user && !cJSON_IsString(user)) ||
        (pass && !cJSON_IsString(pass))) {
        sx_error_set(err, "config_error",
                     ".dockerconfigjson entry \"%s\": auth, username and password must be "
                     "strings", server);
        goto out;
    }
    if (auth && auth->valuestring[0]) {
        /* As Kubernetes does, "auth" (base64 of "user:password") wins. */
        size_t n = 0;
        int oom;
        const char *a = auth->valuestring;
        unsigned char *dec = b64_decode(a, strlen(a), &n, &oom);
        if (!dec) {
            if (oom)
                sx_error_set(err, "out_of_memory", "out of memory");
            else
                sx_error_set(err, "config_error",
                             ".dockerconfigjson entry \"%s\": \"auth\" is not valid base64",
                             server);
            goto out;
        }
        char *sep = memchr(dec, ':', n);
        if (!sep || memchr(dec, '\0', n)) {
            sx_error_set(err, "config_error",
                         ".dockerconfigjson entry \"%s\": \"auth\" is not base64 of "
                         "\"username:password\"", server);
            OPENSSL_cleanse(dec, n);
            free(dec);
            goto out;
        }
        *sep = '\0';
        *username = strdup((char *)dec);
        *password = strdup(sep + 1);
        OPENSSL_cleanse(dec, n);
        free(dec);
    } else if (user) {
        *username = strdup(user->valuestring);
        *password = strdup(pass ? pass->valuestring : "");
    } else {
        sx_error_set(err, "config_error",
                     ".dockerconfigjson entry \"%s\" has neither \"auth\" nor \"username\"",
                     server);
        goto out;
    }
    if (!*username || !*password) {
        free(*username);
        free(*password);
        *username = NULL;
        *password = NULL;
        sx_error_set(err, "out_of_memory", "out of memory");
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
