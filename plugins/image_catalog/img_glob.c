/*
 * img_glob.c - the glob patterns of approved_images / blocked_images (see
 * img.h).
 *
 * `*` crosses '/': the spec's blocked pattern "docker.io/" + "*" means all
 * of Docker Hub (docker.io/library/postgres has two components after the
 * host), and "harbor.company.internal/sre/" + "*" covers
 * harbor.company.internal/sre/base:v1 as well as nested repositories such
 * as .../sre/team/tool:v2.  (Patterns are written split in this comment
 * only because C comments cannot contain a slash-star.)  This is
 * fnmatch(3) without FNM_PATHNAME, minus bracket expressions (image
 * references never contain '[').
 *
 * Matching is the classic two-pointer walk that remembers the last `*` and
 * retries from one character further on a mismatch: no recursion, at most
 * len(pattern) * len(text) steps, so a hostile pattern cannot blow up.
 */
#include "img.h"

#include <string.h>

#include "sx/sx_util.h"

int sx_img_glob_match(const char *pattern, const char *text)
{
    const char *p = pattern, *t = text;
    const char *star_p = NULL, *star_t = NULL;
    while (*t) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (*p == '\0')
                return 1;
            star_p = p;
            star_t = t;
            continue;
        }
        int any = *p == '?';
        int escaped = *p == '\\' && p[1] != '\0';
        char want = escaped ? p[1] : *p;
        if (*p != '\0' && (any || want == *t)) {
            p += escaped ? 2 : 1;
            t++;
            continue;
        }
        if (star_p == NULL)
            return 0;
        p = star_p;
        t = ++star_t;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int sx_img_glob_check(const char *pattern, const char *where, sx_error *err)
{
    if (pattern == NULL || pattern[0] == '\0')
        return sx_error_set(err, "invalid_config", "%s: empty pattern", where);
    size_t n = strlen(pattern);
    if (n > SX_IMG_REF_MAX)
        return sx_error_set(err, "invalid_config", "%s: pattern longer than %d characters",
                            where, SX_IMG_REF_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= 0x20 || c >= 0x7f)
            return sx_error_set(err, "invalid_config",
                                "%s: pattern '%s' contains whitespace, a control or a non-ASCII "
                                "character, which no image reference has", where, pattern);
        if (c == '\\') {
            if (i + 1 == n)
                return sx_error_set(err, "invalid_config",
                                    "%s: pattern '%s' ends in a lone '\\'", where, pattern);
            i++;
        }
    }
    const char *slash = strchr(pattern, '/');
    size_t host_len = slash ? (size_t)(slash - pattern) : 0;
    for (size_t i = 0; i < host_len; i++)
        if (pattern[i] >= 'A' && pattern[i] <= 'Z')
            return sx_error_set(err, "invalid_config",
                                "%s: pattern '%s' has upper case in its registry host; hosts are "
                                "compared in lower case, so write it in lower case", where,
                                pattern);
    return 0;
}
