"""REST semantics on top of the store: create / update / patch / delete as the API server does them
(namespaces, generateName, preconditions, graceful pod deletion, finalizers, propagation policies)."""

import copy
import json

from apierrors import ApiError, bad_request, conflict, not_found
from resources import JOBS, NAMESPACES, PODS
from store import now_rfc3339

RETURN_DELETED = ("pods", "namespaces")   # the others answer a Status Success once gone
JOB_DELETE_WARNING = ("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
                      "to remove them or set propagationPolicy=Orphan to suppress this warning")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request("the server rejected our request due to an error in our request: invalid JSON pointer %s"
                          % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 JSON patch."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")

    def parent(parts):
        cur = doc
        for p in parts[:-1]:
            if isinstance(cur, list):
                cur = cur[int(p)]
            else:
                cur = cur[p]
        return cur

    def get(parts):
        cur = doc
        for p in parts:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def add(parts, value):
        par = parent(parts)
        k = parts[-1]
        if isinstance(par, list):
            if k == "-":
                par.append(value)
            else:
                par.insert(int(k), value)
        else:
            par[k] = value

    def remove(parts):
        par = parent(parts)
        k = parts[-1]
        if isinstance(par, list):
            return par.pop(int(k))
        return par.pop(k)

    try:
        for op in ops:
            kind, parts = op.get("op"), _pointer(op.get("path", ""))
            if kind == "add":
                add(parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                remove(parts)
            elif kind == "replace":
                remove(parts)
                add(parts, copy.deepcopy(op.get("value")))
            elif kind == "test":
                if get(parts) != op.get("value"):
                    raise ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                                   "request: testing value %s failed" % op.get("path"))
            elif kind in ("move", "copy"):
                src = _pointer(op.get("from", ""))
                val = remove(src) if kind == "move" else copy.deepcopy(get(src))
                add(parts, val)
            else:
                raise bad_request("Unexpected kind: %s" % kind)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request")
    return doc


class Registry:
    def __init__(self, store, admission, gc_hooks=None):
        self.store = store
        self.admission = admission
        self.orphan_hook = None     # set by the garbage collector: fn(res, owner_obj)

    # ------------------------------------------------------------ create
    def check_namespace(self, res, ns):
        if not res.namespaced:
            return
        nso = self.store.get(NAMESPACES, "", ns)
        if nso is None:
            raise not_found(NAMESPACES, ns)
        if nso["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", "%s \"\" is forbidden: unable to create new content in namespace %s "
                           "because it is being terminated" % (res.resource, ns),
                           {"kind": res.resource},)

    def create(self, res, ns, obj, dry_run=False, internal=False, field_validation="Warn"):
        """-> (stored object, warnings)."""
        self.check_namespace(res, ns)
        warnings = self.admission.admit_create(res, ns, obj, field_validation, internal=internal)
        if res is PODS and internal:
            self.admission.admit_pod_policies(obj, ns)
        self.admission.finish_create(res, obj)
        if dry_run:
            obj["metadata"].pop("resourceVersion", None)
            return obj, warnings
        return self.store.insert(res, obj), warnings

    # ------------------------------------------------------------ update / patch
    def update(self, res, ns, name, new, dry_run=False, field_validation="Warn"):
        old = self.store.require(res, ns, name)
        if old["metadata"].get("deletionTimestamp") is None and new.get("metadata", {}).get("deletionTimestamp"):
            new["metadata"].pop("deletionTimestamp")
        want_rv = new.get("metadata", {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        new.setdefault("metadata", {})
        warnings = self.admission.admit_update(res, ns, old, new, field_validation)
        if dry_run:
            return new, warnings
        base_rv = old["metadata"]["resourceVersion"]

        def apply(cur):
            if cur["metadata"]["resourceVersion"] != base_rv and want_rv:
                raise conflict(res, name)
            cur.clear()
            cur.update(copy.deepcopy(new))
        out = self.store.mutate(res, ns, name, apply)
        if out is None:
            raise not_found(res, name)
        return out, warnings

    def patch(self, res, ns, name, body, content_type, dry_run=False, field_validation="Warn"):
        for _ in range(5):
            old = self.store.require(res, ns, name)
            try:
                p = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise bad_request("error decoding patch: %s" % e)
            ct = (content_type or "").split(";")[0].strip()
            if ct == "application/json-patch+json":
                new = json_patch(old, p)
            elif ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(p, dict):
                    raise bad_request("error decoding patch: the patch must be a JSON object")
                new = merge_patch(old, p)
            elif ct == "application/apply-patch+yaml":
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "server-side apply is not implemented by k8s-fake")
            else:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/apply-patch+yaml")
            if not (isinstance(p, dict) and (p.get("metadata") or {}).get("resourceVersion")):
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            try:
                return self.update(res, ns, name, new, dry_run, field_validation)
            except ApiError as e:
                if e.reason == "Conflict" and not (isinstance(p, dict) and
                                                   (p.get("metadata") or {}).get("resourceVersion")):
                    continue   # someone else changed it meanwhile: re-apply the patch
                raise
        raise conflict(res, name)

    # ------------------------------------------------------------ delete
    def delete(self, res, ns, name, propagation=None, grace=None, preconditions=None, dry_run=False,
               orphan_dependents=None):
        """-> (answer object, http code, warnings)."""
        cur = self.store.require(res, ns, name)
        md = cur["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != md.get("uid"):
            raise conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                           % (pre["uid"], md.get("uid")))
        if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
            raise conflict(res, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion "
                           "in object meta: %s" % (pre["resourceVersion"], md.get("resourceVersion")))
        warnings = []
        if propagation is None:
            if orphan_dependents is True:
                propagation = "Orphan"
            elif orphan_dependents is False:
                propagation = "Background"
            elif res is JOBS:
                propagation = "Orphan"
                warnings.append(JOB_DELETE_WARNING)
            else:
                propagation = "Background"
        if propagation not in ("Orphan", "Background", "Foreground"):
            raise ApiError(422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                           'value: "%s": supported values: "Foreground", "Background", "Orphan", "nil"' % propagation)
        if dry_run:
            return cur, 200, warnings
        if res is PODS:
            g = grace if grace is not None else (cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if g is None or g < 0:
                g = 0
            phase = (cur.get("status") or {}).get("phase")
            if not (cur.get("spec") or {}).get("nodeName") or phase in ("Succeeded", "Failed"):
                g = 0
        else:
            g = 0
        if propagation == "Orphan" and self.orphan_hook and res is not NAMESPACES:
            self.orphan_hook(res, cur)
        uid = md["uid"]

        def mark(o):
            m = o["metadata"]
            if res is NAMESPACES:
                o.setdefault("status", {})["phase"] = "Terminating"
                if not m.get("deletionTimestamp"):
                    m["deletionTimestamp"] = now_rfc3339()
                m.setdefault("finalizers", [])
                if "kubernetes" not in m["finalizers"]:
                    m["finalizers"].append("kubernetes")
                return
            if propagation == "Foreground":
                fins = m.setdefault("finalizers", [])
                if "foregroundDeletion" not in fins:
                    fins.append("foregroundDeletion")
            if not m.get("deletionTimestamp"):
                m["deletionTimestamp"] = now_rfc3339()
                m["deletionGracePeriodSeconds"] = g
            elif m.get("deletionGracePeriodSeconds") is None or g < m["deletionGracePeriodSeconds"]:
                m["deletionGracePeriodSeconds"] = g
            if res is not PODS and not m.get("finalizers"):
                m["deletionGracePeriodSeconds"] = 0
        out = self.store.mutate(res, ns, name, mark, expect_uid=uid)
        if out is None:
            raise not_found(res, name)
        still = self.store.get(res, ns, name)
        gone = still is None or still["metadata"]["uid"] != uid
        if gone and res.resource not in RETURN_DELETED:
            det = {"name": name, "kind": res.resource, "uid": uid}
            if res.group:
                det["group"] = res.group
            return ({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": det}, 200, warnings)
        return (out if gone else still), 200, warnings
