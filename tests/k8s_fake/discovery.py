"""Discovery documents (legacy /api, /apis), /version and a minimal OpenAPI v3 (enough for kubectl's
server-side field validation check, which looks for the fieldValidation query parameter)."""

import hashlib
import json

from resources import GROUPS, SUBRESOURCES

VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-k8s-fake", "gitCommit": "k8s-fake",
           "gitTreeState": "clean", "buildDate": "2024-04-17T17:27:00Z", "goVersion": "go1.22.2",
           "compiler": "gc", "platform": "linux/amd64"}

METRICS_GROUP = "metrics.k8s.io"


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name, versions):
    vs = [{"groupVersion": "%s/%s" % (name, v), "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(metrics):
    groups = [_group(g, sorted(v)) for g, v in sorted(GROUPS.items()) if g]
    if metrics:
        groups.append(_group(METRICS_GROUP, ["v1beta1"]))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name, metrics):
    if name == METRICS_GROUP and metrics:
        return dict(_group(name, ["v1beta1"]), kind="APIGroup", apiVersion="v1")
    if name in GROUPS and name:
        return dict(_group(name, sorted(GROUPS[name])), kind="APIGroup", apiVersion="v1")
    return None


def resource_list(group, version, metrics):
    gv = "%s/%s" % (group, version) if group else version
    if group == METRICS_GROUP:
        if not metrics or version != "v1beta1":
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}]}
    rs = GROUPS.get(group, {}).get(version)
    if rs is None:
        return None
    out = []
    for name, r in sorted(rs.items()):
        d = {"name": name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
             "verbs": r.verbs, "storageVersionHash": hashlib.sha256(name.encode()).hexdigest()[:11]}
        if r.short_names:
            d["shortNames"] = r.short_names
        if r.categories:
            d["categories"] = r.categories
        out.append(d)
        for (res, sub), verbs in sorted(SUBRESOURCES.items()):
            if res == name:
                out.append({"name": "%s/%s" % (name, sub), "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind if sub == "status" else ("Pod" if sub == "log" else r.kind),
                            "verbs": verbs})
    return {"kind": "APIResourceList", "groupVersion": gv, "resources": out}


def _gv_paths():
    out = {}
    for g, versions in GROUPS.items():
        for v in versions:
            out["api/%s" % v if not g else "apis/%s/%s" % (g, v)] = (g, v)
    return out


def _gv_doc(group, version):
    paths = {}
    for name, r in sorted(GROUPS[group][version].items()):
        gvk = {"group": group, "version": version, "kind": r.kind}
        base = r.base_path + ("/namespaces/{namespace}" if r.namespaced else "")
        params = [{"name": "fieldValidation", "in": "query", "description": "fieldValidation instructs the server "
                   "on how to handle objects in the request containing unknown or duplicate fields.",
                   "schema": {"type": "string", "uniqueItems": True}},
                  {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
        op = {"tags": [group or "core"], "operationId": "op" + r.kind, "parameters": params,
              "responses": {"200": {"description": "OK"}},
              "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk}
        post = dict(op, **{"x-kubernetes-action": "post", "operationId": "create" + r.kind})
        put = dict(op, **{"x-kubernetes-action": "put", "operationId": "replace" + r.kind})
        paths["/%s/%s" % (base.lstrip("/"), name)] = {"post": post}
        paths["/%s/%s/{name}" % (base.lstrip("/"), name)] = {"patch": dict(op, operationId="patch" + r.kind),
                                                              "put": put}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def openapi_v3_index():
    out = {}
    for p, (g, v) in sorted(_gv_paths().items()):
        h = hashlib.sha512(json.dumps(_gv_doc(g, v), sort_keys=True).encode()).hexdigest()[:64].upper()
        out[p] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (p, h)}
    return {"paths": out}


def openapi_v3_doc(path):
    gv = _gv_paths().get(path.strip("/"))
    return _gv_doc(*gv) if gv else None
