/*
 * img_name.c - image references and their spellings (see img.h).
 *
 * The grammar is the one of distribution/reference, which the Docker Engine
 * and the kubelet both use:
 *   reference := name [":" tag] ["@" digest]
 *   name      := [host [":" port] "/"] component ("/" component)*
 *   component := [a-z0-9]+ (("." | "_" | "__" | "-"+) [a-z0-9]+)*
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := algorithm ":" hex    (sha256: 64 lower-case hex digits)
 * The first component is a host when it contains '.' or ':' or is
 * "localhost".
 *
 * Patterns are matched against several spellings of one image so that a
 * blocked "docker.io/" + "*" also catches "postgres" and "DOCKER.IO/x", and an
 * approved "hashicorp/terraform:1.7.*" also allows
 * "docker.io/hashicorp/terraform:1.7.0".  A blocklist remains a list of
 * spellings, though: an IP address, a DNS alias or a pull-through proxy of
 * a blocked registry is another name.  The approved list (deny by default)
 * is the control; docs/image-catalog.md says so.
 */
#define _POSIX_C_SOURCE 200809L
#include "img.h"

#include <stdio.h>
#include <string.h>

#include "sx/sx_util.h"

#define DOCKER_HUB "docker.io"

static int lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int alnum(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int component_ok(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && lower_alnum(s[i]))
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

/* host := label ("." label)* | "[" v6 "]", then optional ":" digits */
static int host_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!(alnum(s[i]) || s[i] == ':' || s[i] == '.'))
                return 0;
        if (i == 1 || i == n)
            return 0;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < n && (alnum(s[i]) || s[i] == '-'))
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
    if (s[i] != ':' || i + 1 == n)
        return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !(alnum(s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

/* algorithm ":" hex; sha256 must have 64 lower-case hex digits */
static int digest_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return 0;
    size_t alen = (size_t)(colon - s), hlen = n - alen - 1;
    for (size_t i = 0; i < alen; i++)
        if (!(lower_alnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    if (hlen < 32)
        return 0;
    for (size_t i = 0; i < hlen; i++)
        if (!((colon[1 + i] >= '0' && colon[1 + i] <= '9') ||
              (colon[1 + i] >= 'a' && colon[1 + i] <= 'f')))
            return 0;
    if (alen == 6 && strncmp(s, "sha256", 6) == 0 && hlen != 64)
        return 0;
    return 1;
}

static void add_spelling(sx_img_name *out, const char *s)
{
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->spelling[i], s) == 0)
            return;
    snprintf(out->spelling[out->n++], sizeof out->spelling[0], "%s", s);
}

int sx_img_name_parse(const char *image, sx_img_name *out, sx_error *err)
{
    memset(out, 0, sizeof *out);
    if (image == NULL || image[0] == '\0')
        return sx_error_set(err, "invalid_parameter", "image reference is empty");
    size_t total = strlen(image);
    if (total > SX_IMG_REF_MAX)
        return sx_error_set(err, "invalid_parameter",
                            "image reference '%.64s...' is longer than %d characters", image,
                            SX_IMG_REF_MAX);
    for (size_t i = 0; i < total; i++) {
        unsigned char c = (unsigned char)image[i];
        if (c <= 0x20 || c >= 0x7f)
            return sx_error_set(err, "invalid_parameter",
                                "image reference '%s' contains whitespace, a control or a "
                                "non-ASCII character", image);
    }
    /* name [":" tag] ["@" digest] */
    const char *at = strchr(image, '@');
    size_t name_end = at ? (size_t)(at - image) : total;
    if (at && !digest_ok(at + 1, total - name_end - 1))
        return sx_error_set(err, "invalid_parameter",
                            "image reference '%s': malformed digest (want algorithm:hex, "
                            "sha256 with 64 lower-case hex digits)", image);
    const char *last_slash = NULL;
    for (size_t i = 0; i < name_end; i++)
        if (image[i] == '/')
            last_slash = image + i;
    const char *colon = memchr(last_slash ? last_slash : image, ':',
                               (size_t)(image + name_end - (last_slash ? last_slash : image)));
    size_t suffix_at = name_end;
    if (colon) {
        if (!tag_ok(colon + 1, (size_t)(image + name_end - colon - 1)))
            return sx_error_set(err, "invalid_parameter",
                                "image reference '%s': malformed tag (want "
                                "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", image);
        suffix_at = (size_t)(colon - image);
    }
    if (suffix_at == 0)
        return sx_error_set(err, "invalid_parameter", "image reference '%s': empty name", image);

    /* host */
    const char *path = image;
    size_t plen = suffix_at;
    const char *slash = memchr(image, '/', suffix_at);
    if (slash) {
        size_t hlen = (size_t)(slash - image);
        if (memchr(image, '.', hlen) || memchr(image, ':', hlen) ||
            (hlen == 9 && strncmp(image, "localhost", 9) == 0)) {
            if (!host_ok(image, hlen) || hlen >= sizeof out->registry)
                return sx_error_set(err, "invalid_parameter",
                                    "image reference '%s': malformed registry host", image);
            for (size_t i = 0; i < hlen; i++) {
                char c = image[i];
                out->registry[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            out->registry[hlen] = '\0';
            path = slash + 1;
            plen = suffix_at - hlen - 1;
        }
    }
    if (out->registry[0] == '\0')
        strcpy(out->registry, DOCKER_HUB);
    size_t rlen = strlen(out->registry);
    if (rlen > 4 && strcmp(out->registry + rlen - 4, ":443") == 0)
        out->registry[rlen - 4] = '\0';
    if (strcmp(out->registry, "index.docker.io") == 0 ||
        strcmp(out->registry, "registry-1.docker.io") == 0 ||
        strcmp(out->registry, "registry.hub.docker.com") == 0)
        strcpy(out->registry, DOCKER_HUB);

    /* path */
    for (const char *c = path, *end = path + plen;;) {
        const char *s = memchr(c, '/', (size_t)(end - c));
        const char *cend = s ? s : end;
        if (!component_ok(c, (size_t)(cend - c)))
            return sx_error_set(err, "invalid_parameter",
                                "image reference '%s': invalid repository component '%.*s' "
                                "(lower-case letters, digits and single . _ __ - separators)",
                                image, (int)(cend - c), c);
        if (s == NULL)
            break;
        c = s + 1;
    }

    int hub = strcmp(out->registry, DOCKER_HUB) == 0;
    int one = memchr(path, '/', plen) == NULL;
    const char *suffix = image + suffix_at;   /* ":tag@digest", as written */
    char buf[sizeof out->spelling[0]];
    add_spelling(out, image);
    snprintf(buf, sizeof buf, "%s/%s%.*s%s", out->registry, hub && one ? "library/" : "",
             (int)plen, path, suffix);
    add_spelling(out, buf);
    snprintf(out->canonical, sizeof out->canonical, "%s", buf);
    if (!colon && !at) {
        snprintf(buf, sizeof buf, "%s/%s%.*s:latest", out->registry,
                 hub && one ? "library/" : "", (int)plen, path);
        add_spelling(out, buf);
        snprintf(out->canonical, sizeof out->canonical, "%s", buf);
    }
    if (hub) {
        const char *short_path = path;
        size_t short_len = plen;
        if (plen > 8 && strncmp(path, "library/", 8) == 0 && !memchr(path + 8, '/', plen - 8)) {
            short_path += 8;
            short_len -= 8;
        }
        snprintf(buf, sizeof buf, "%.*s%s", (int)short_len, short_path, suffix);
        add_spelling(out, buf);
    }
    return 0;
}

int sx_img_name_matches(const sx_img_name *name, const char *pattern)
{
    for (size_t i = 0; i < name->n; i++)
        if (sx_img_glob_match(pattern, name->spelling[i]))
            return 1;
    return 0;
}
