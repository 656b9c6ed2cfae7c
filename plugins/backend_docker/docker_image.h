/*
 * docker_image.h - image references and registry credentials.
 *
 * Parses "[registry[:port]/]repo/path[:tag][@sha256:digest]" the way the
 * Engine does (the first component is a registry when it contains '.' or
 * ':' or is "localhost"), so the backend can pull with an explicit tag (an
 * empty tag makes the Engine pull every tag) and pick the credential for
 * the right registry.
 */
#ifndef SX_DOCKER_IMAGE_H
#define SX_DOCKER_IMAGE_H

#include <stddef.h>

#include "sx/sx_types.h"

typedef struct sx_image_ref {
    char registry[256];  /* "docker.io" when the reference names none */
    char repo[512];      /* "library/python" for "python"; "team/app" */
    char tag[128];       /* "latest" when neither tag nor digest is given;
                            "" when only a digest is given */
    char digest[128];    /* "sha256:<64 hex>" or "" */
} sx_image_ref;

/* Parse `ref`.  Returns 0, or -1 with err ("invalid_parameter") naming the
 * problem: empty, whitespace or control characters, upper-case repository,
 * empty components, a malformed tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) or
 * digest, or a field that does not fit. */
int sx_image_ref_parse(const char *ref, sx_image_ref *out, sx_error *err);

/* The name the Engine pulls as fromImage: "registry/repo" for registries
 * other than docker.io, else "repo" (e.g. "library/python" -> "python" is
 * NOT done: the Engine accepts "library/python"; keep repo as parsed but
 * drop the "docker.io/" prefix).  Writes into buf (size n); returns 0 or -1
 * when it does not fit. */
int sx_image_ref_from_image(const sx_image_ref *r, char *buf, size_t n);

/* The value of the X-Registry-Auth header for the Engine: base64url (RFC
 * 4648 section 5, with padding as the Engine's decoder accepts it) of the
 * JSON {"username":..,"password":..,"serveraddress":..}.  Returns a
 * malloc(3)ed string, or NULL on out of memory. */
char *sx_registry_auth_header(const char *username, const char *password,
                              const char *serveraddress);

/* Pick the credentials for `registry` out of a Kubernetes-style
 * .dockerconfigjson document ({"auths": {"<server>": {"username":..,
 * "password":..} or {"auth": base64("user:pass")}}}).  Server keys match
 * when equal to the registry, or to it with an "http://" / "https://"
 * prefix and any path ("https://index.docker.io/v1/" matches docker.io).
 * On success set *username and *password (malloc(3)ed, caller frees) and
 * return 0; return 1 when the document has no entry for the registry; -1
 * with err ("config_error") when the document is not valid. */
int sx_dockerconfig_lookup(const char *json, size_t len, const char *registry, char **username,
                           char **password, sx_error *err);

#endif
