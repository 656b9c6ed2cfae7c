/*
 * k8s_validate.h - what the Kubernetes API server accepts, as pure checks
 * (the rules of k8s.io/apimachinery/pkg/util/validation and the API's
 * validation of Pods and Jobs), and the escaping of $(VAR) references.
 * All functions are pure and thread-safe; strings are borrowed.
 */
#ifndef SX_K8S_VALIDATE_H
#define SX_K8S_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 (namespaces,
 * container and volume names). */
int sx_k8s_dns_label_ok(const char *s);
/* DNS-1123 subdomain: labels joined by '.', at most 253 (names of Secrets,
 * ConfigMaps, service accounts, priority classes). */
int sx_k8s_dns_subdomain_ok(const char *s);
/* Label value: "" or at most 63 of [A-Za-z0-9._-], alphanumeric at both ends. */
int sx_k8s_label_value_ok(const char *s);
/* Qualified name (label and annotation keys): [prefix/]name, prefix a DNS
 * subdomain, name 1..63 of [A-Za-z0-9._-] alphanumeric at both ends. */
int sx_k8s_qualified_name_ok(const char *s);
/* Environment variable name (and envFrom prefix): [-._a-zA-Z][-._a-zA-Z0-9]*. */
int sx_k8s_env_name_ok(const char *s);
/* Key of a Secret or ConfigMap: 1..253 of [-._a-zA-Z0-9], not "." or "..". */
int sx_k8s_config_key_ok(const char *s);
/* Relative path without ".." components or empty components (item paths,
 * subPath), at most 4096 bytes. */
int sx_k8s_rel_path_ok(const char *s);
/* Absolute path without "..", "." or empty components (trailing '/' not
 * allowed, "/" is), at most 4096 bytes, no ':' (mountPath). */
int sx_k8s_abs_path_ok(const char *s);
/* Whether absolute path `p` equals `dir` or lies below it. */
int sx_k8s_path_within(const char *p, const char *dir);
/* The ConfigMap key a `with.script_path` names: "/scripts/<key>" or a bare
 * "<key>" (relative to /scripts).  Returns a pointer into `path` (borrowed),
 * or NULL with *why (static text) saying what is wrong: empty, a ".."
 * component, absolute outside /scripts, a subdirectory (ConfigMap keys have
 * none), or not a key ([-._a-zA-Z0-9]+). */
const char *sx_k8s_script_key(const char *path, const char **why);
/* An image reference the API accepts: non-empty, no whitespace or control
 * characters, at most 4096 bytes. */
int sx_k8s_image_ok(const char *s);
int sx_k8s_pull_policy_ok(const char *s);

/* A resource quantity in Kubernetes syntax (digits with an optional
 * fraction, then one of Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent
 * e<N>), as CPU millicores (cpu != 0: plain, 'm' or an exponent) or bytes
 * (whole-byte suffixes only).  Returns 0 and *value (rounded up), or -1. */
int sx_k8s_quantity_parse(const char *s, int cpu, int64_t *value);

/* Kubernetes expands $(VAR) in command, args and env values, and turns $$
 * into $.  This doubles every '$' that would be read that way ('$' before
 * '$' or '('), so that the container sees `s` unchanged.  malloc(3)ed,
 * NULL when out of memory. */
char *sx_k8s_escape_refs(const char *s);

#endif
