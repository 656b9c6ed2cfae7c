/*
 * docker_pull.c - make the step's image present per its pull policy:
 * inspect, pull with the registry credentials of a pull secret
 * (X-Registry-Auth), and turn the Engine's answers into image_not_found /
 * image_pull_failed / docker_unavailable.
 *
 * The Engine (20.10, API 1.41) reports registry failures before it streams:
 * 404 "manifest ... not found" for a missing repository or tag, 500 with the
 * registry's words for bad or missing credentials ("unauthorized",
 * "no basic auth credentials") and unreachable registries.  A failure after
 * streaming began arrives as a {"error": ...} line in a 200 answer.
 */
#define _POSIX_C_SOURCE 200809L
#include "docker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_image.h"
#include "sx/sx_util.h"

/* Credentials for `registry` from the named secret: a Kubernetes-style
 * .dockerconfigjson key, or username + password keys.  *header is the
 * whole "X-Registry-Auth: ..." line; free it with sx_dk_wipe_free. */
static int registry_auth(const sx_docker_instance *inst, const char *secret, const char *registry,
                         char **header, sx_error *err)
{
    const sx_local_store *st = &inst->plugin->store;
    char *doc = NULL, *user = NULL, *pass = NULL;
    size_t len = 0, ulen = 0, plen = 0;
    int rc = sx_store_read(st, SX_STORE_SECRET, secret, ".dockerconfigjson", &doc, &len, err);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        rc = sx_dockerconfig_lookup(doc, len, registry, &user, &pass, err);
        memset(doc, 0, len);
        free(doc);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return sx_error_set(err, "config_error",
                                "image_pull_secret '%s': its .dockerconfigjson has no "
                                "credentials for registry %s", secret, registry);
    } else {
        int ru = sx_store_read(st, SX_STORE_SECRET, secret, "username", &user, &ulen, err);
        if (ru < 0)
            return -1;
        int rp = ru == 0 ? sx_store_read(st, SX_STORE_SECRET, secret, "password", &pass, &plen, err)
                         : 1;
        if (rp < 0) {
            sx_dk_wipe_free(user);
            return -1;
        }
        if (ru == 1 || rp == 1) {
            sx_dk_wipe_free(user);
            sx_dk_wipe_free(pass);
            return sx_error_set(err, "config_error",
                                "image_pull_secret '%s' is not in the local store, or has neither "
                                "a .dockerconfigjson key nor username and password keys", secret);
        }
    }
    char *value = sx_registry_auth_header(user, pass, registry);
    sx_dk_wipe_free(user);
    sx_dk_wipe_free(pass);
    if (value == NULL)
        return sx_error_set(err, "out_of_memory", "out of memory");
    size_t n = strlen(value) + 20;
    *header = malloc(n);
    if (*header)
        snprintf(*header, n, "X-Registry-Auth: %s", value);
    sx_dk_wipe_free(value); /* base64 of the password: as secret as the password */
    return *header ? 0 : sx_error_set(err, "out_of_memory", "out of memory");
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* A pull failure as image_not_found or image_pull_failed. */
static int pull_error(const char *image, long status, const char *text, int with_secret,
                      sx_error *err)
{
    int not_found = status == 404 || contains(text, "manifest unknown") ||
                    contains(text, "not found") || contains(text, "does not exist");
    int auth = contains(text, "unauthorized") || contains(text, "authentication required") ||
               contains(text, "no basic auth credentials") || contains(text, "denied");
    if (not_found && !auth)
        return sx_error_set(err, "image_not_found", "image '%s' was not found in its registry: %s",
                            image, text);
    if (not_found && auth && !with_secret)
        return sx_error_set(err, "image_not_found",
                            "image '%s' was not found, or its registry needs credentials (set "
                            "image_pull_secret): %s", image, text);
    return sx_error_set(err, "image_pull_failed", "cannot pull image '%s': %s", image, text);
}

static int pull(sx_docker_instance *inst, const char *image, const sx_image_ref *ref,
                const char *pull_secret, const sx_dk_abort *hook, sx_error *err)
{
    char from[900], efrom[2700], etag[400], path[3300];
    if (sx_image_ref_from_image(ref, from, sizeof from) != 0 ||
        sx_dk_escape(from, efrom, sizeof efrom) != 0 ||
        sx_dk_escape(ref->digest[0] ? ref->digest : ref->tag, etag, sizeof etag) != 0)
        return sx_error_set(err, "invalid_parameter", "image '%s' is too long", image);
    snprintf(path, sizeof path, "/images/create?fromImage=%s&tag=%s", efrom, etag);
    char *auth = NULL;
    if (pull_secret && registry_auth(inst, pull_secret, ref->registry, &auth, err) != 0)
        return -1;
    const char *headers[] = {auth, NULL};
    sx_dk_response resp;
    int rc = sx_dk_call(&inst->client, "POST", path, NULL, NULL, 0, auth ? headers : NULL,
                        (long)inst->cfg.pull_timeout_ms, hook, "pull the image", &resp, err);
    sx_dk_wipe_free(auth);
    if (rc != 0) {
        if (strcmp(err->code, "docker_unavailable") == 0 && contains(err->message, "Timeout"))
            return sx_error_set(err, "image_pull_failed",
                                "pulling image '%s' took longer than pull_timeout (%llds)", image,
                                (long long)(inst->cfg.pull_timeout_ms / 1000));
        return -1;
    }
    if (resp.status != 200) {
        char msg[700];
        sx_dk_message(&resp, msg, sizeof msg);
        rc = pull_error(image, resp.status, msg, pull_secret != NULL, err);
        sx_dk_response_free(&resp);
        return rc;
    }
    rc = 0;
    for (char *line = resp.body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(e)) {
            rc = pull_error(image, 200, e->valuestring, pull_secret != NULL, err);
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j);
        line = nl ? nl + 1 : NULL;
    }
    sx_dk_response_free(&resp);
    return rc;
}

/* Pull, and tell observers (the metrics plugin) on the bus: "image.pull"
 * {"image","executor","status":"success"|"failure","duration_seconds",
 * "error_code"}.  Best effort, never fails the pull. */
static int pull_observed(sx_docker_instance *inst, const char *image, const sx_image_ref *ref,
                         const char *pull_secret, const sx_dk_abort *hook, sx_error *err)
{
    double t0 = sx_now_monotonic();
    int rc = pull(inst, image, ref, pull_secret, hook, err);
    const sx_host_api *h = inst->plugin->host;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "image", image);
    cJSON_AddStringToObject(ev, "executor", inst->name);
    cJSON_AddStringToObject(ev, "status", rc == 0 ? "success" : "failure");
    cJSON_AddNumberToObject(ev, "duration_seconds", sx_now_monotonic() - t0);
    if (rc != 0)
        cJSON_AddStringToObject(ev, "error_code", err->code);
    char *json = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (json)
        h->publish(inst->plugin->ctx, "image.pull", json);
    free(json);
    return rc;
}

/* 1 = present, 0 = absent, -1 = error. */
static int image_present(sx_docker_instance *inst, const char *image, const sx_dk_abort *hook,
                         long timeout_ms, sx_error *err)
{
    char path[1100];
    if (snprintf(path, sizeof path, "/images/%s/json", image) >= (int)sizeof path)
        return sx_error_set(err, "invalid_parameter", "image '%.100s...' is too long", image);
    sx_dk_response resp;
    if (sx_dk_call(&inst->client, "GET", path, NULL, NULL, 0, NULL, timeout_ms, hook,
                   "inspect the image", &resp, err) != 0)
        return -1;
    int rc = resp.status == 200 ? 1 : resp.status == 404 ? 0 : -1;
    if (rc < 0) {
        char msg[700];
        sx_error_set(err, "backend_error", "cannot inspect image '%s': the Docker Engine answered "
                     "%ld: %s", image, resp.status, sx_dk_message(&resp, msg, sizeof msg));
    }
    sx_dk_response_free(&resp);
    return rc;
}

int sx_dk_ensure_image(sx_docker_instance *inst, const char *image, const char *policy,
                       const char *pull_secret, const sx_dk_abort *hook, long timeout_ms,
                       sx_error *err)
{
    sx_image_ref ref;
    if (sx_image_ref_parse(image, &ref, err) != 0)
        return -1;
    if (strcmp(policy, "Always") == 0)
        return pull_observed(inst, image, &ref, pull_secret, hook, err);
    int present = image_present(inst, image, hook, timeout_ms, err);
    if (present < 0)
        return -1;
    if (present)
        return 0;
    if (strcmp(policy, "Never") == 0)
        return sx_error_set(err, "image_not_found",
                            "image '%s' is not present on the Docker host and image_pull_policy "
                            "is Never", image);
    return pull_observed(inst, image, &ref, pull_secret, hook, err);
}
