"""Decoding, defaulting, validation and admission of the objects k8s-fake stores.

Jobs and Pods are checked with the official batch/v1 schema and the API-server rules of
validate_job.py (a copy of shared/k8s/validate-job, see SOURCE.md); the Pod Security admission
uses its Pod Security Standards checks. Answers are what a v1.30 API server gives:
  - malformed JSON, wrong JSON types             -> 400 BadRequest ("cannot be handled as a Job")
  - unknown fields                                -> fieldValidation=Strict: 400 BadRequest
                                                     (strict decoding error); Warn (the default):
                                                     dropped with a Warning header; Ignore: dropped
  - missing required fields, rule violations      -> 422 Invalid with details.causes
  - Pod Security (namespace enforce label)        -> Job created with a Warning; its Pods: 403
"""

import base64
import binascii
import copy
import json
import os
import re
import uuid

import jsonschema

import validate_job as vj
from apierrors import ApiError, bad_request, invalid
from resources import CONFIGMAPS, JOBS, NAMESPACES, PODS, PRIORITYCLASSES, SECRETS, SERVICEACCOUNTS
from store import now_rfc3339

HERE = os.path.dirname(os.path.realpath(__file__))
SCHEMA_FILE = os.path.join(HERE, "job-batch-v1.schema.json")
MAX_DATA = 1024 * 1024
GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"   # k8s.io/apimachinery/pkg/util/rand


def random_suffix(n=5):
    return "".join(GEN_CHARS[b % len(GEN_CHARS)] for b in os.urandom(n))


class RawProblems:
    """validate_job's Problems, keeping the path as a list."""

    def __init__(self):
        self.items = []

    def add(self, category, path, message):
        self.items.append((category, list(path), message))


def field_path(path):
    out = ""
    for p in path:
        if isinstance(p, int):
            out += "[%d]" % p
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(p)):
            out += ("." if out else "") + p
        else:
            out += "[%s]" % p
    return out


def value_at(doc, path):
    cur = doc
    for p in path:
        if isinstance(cur, dict) and isinstance(p, str):
            cur = cur.get(p)
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            cur = cur[p]
        else:
            return None
    return cur


def make_cause(doc, path, message):
    low = message.lower()
    if ("is required" in low or "missing required" in low or "must be set" in low
            or "must have at least" in low or "must be non-empty" in low):
        reason, head = "FieldValueRequired", "Required value"
    elif "unsupported" in low or "not allowed; expected one of" in low or "the only supported value" in low:
        reason, head = "FieldValueNotSupported", "Unsupported value: %s" % json.dumps(value_at(doc, path))
    elif "no more than" in low or "more than the" in low:
        reason, head = "FieldValueTooLong", "Too long"
    elif "duplicate" in low or "must be unique" in low:
        reason, head = "FieldValueDuplicate", "Duplicate value: %s" % json.dumps(value_at(doc, path))
    elif "not allowed" in low or "may not" in low or "cannot set" in low or "may only be set" in low:
        reason, head = "FieldValueForbidden", "Forbidden"
    else:
        reason, head = "FieldValueInvalid", "Invalid value: %s" % json.dumps(value_at(doc, path))
    return {"reason": reason, "message": "%s: %s" % (head, message), "field": field_path(path)}


def _delete_path(doc, path):
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)


class _OneError:
    def __init__(self, err):
        self.err = err

    def iter_errors(self, _doc):
        return [self.err]


def _dup_keys(text):
    dups = []

    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                dups.append(k)
            seen[k] = v
        return seen
    try:
        json.loads(text, object_pairs_hook=hook)
    except ValueError:
        pass
    return dups


class Admission:
    def __init__(self, store, cfg):
        self.store = store
        self.cfg = cfg
        with open(SCHEMA_FILE, encoding="utf-8") as fh:
            schema = json.load(fh)
        self.job_validator = jsonschema.Draft7Validator(schema, format_checker=vj.make_format_checker())
        tmpl = schema["properties"]["spec"]["properties"]["template"]
        self.template_validator = jsonschema.Draft7Validator(tmpl, format_checker=vj.make_format_checker())

    # ------------------------------------------------------------ decoding
    def decode(self, res, raw, field_validation):
        """Request body -> object; -> (obj, warnings). 400 for JSON/type errors."""
        if not raw:
            raise bad_request("the body of the request was in an unknown format - accepted media types "
                              "include: application/json, application/yaml")
        try:
            text = raw.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError) as e:
            raise bad_request("%s in version \"%s\" cannot be handled as a %s: %s"
                              % (res.kind, res.version, res.kind, e))
        if not isinstance(obj, dict):
            raise bad_request("%s in version \"%s\" cannot be handled as a %s: json: cannot unmarshal %s into "
                              "Go value of type struct" % (res.kind, res.version, res.kind, type(obj).__name__))
        warnings = []
        dups = _dup_keys(text)
        if dups:
            msgs = ['json: duplicate field "%s"' % d for d in dups]
            if field_validation == "Strict":
                raise bad_request('%s in version "%s" cannot be handled as a %s: strict decoding error: %s'
                                  % (res.kind, res.version, res.kind, ", ".join(msgs)))
            if field_validation != "Ignore":
                warnings += msgs
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if (av and av != res.api_version) or (kind and kind != res.kind):
            raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                              % (av, res.api_version) if av != res.api_version else
                              "%s in version \"%s\" cannot be handled as a %s: no kind \"%s\" is registered"
                              % (res.kind, res.version, res.kind, kind))
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("%s in version \"%s\" cannot be handled as a %s: json: cannot unmarshal into Go "
                              "struct field %s.metadata of type v1.ObjectMeta" % (res.kind, res.version,
                                                                                  res.kind, res.kind))
        obj.setdefault("metadata", {})
        return obj, warnings

    def check_fields(self, res, obj, field_validation):
        """Schema check for Jobs and Pods; a top-level field list for the others.
        -> (warnings, causes). Drops unknown fields unless Strict (400)."""
        unknown, decode_err, causes = [], [], []
        if res is JOBS:
            errs = list(self.job_validator.iter_errors(obj))
            doc, prefix = obj, []
        elif res is PODS:
            doc = {"metadata": obj.get("metadata"), "spec": obj.get("spec")}
            if doc["spec"] is None:
                doc.pop("spec")
            errs = list(self.template_validator.iter_errors(doc))
            for k in obj:
                if k not in ("apiVersion", "kind", "metadata", "spec", "status"):
                    unknown.append([k])
            prefix = []
        else:
            allowed = {"Secret": ("data", "stringData", "type", "immutable"),
                       "ConfigMap": ("data", "binaryData", "immutable"),
                       "Namespace": ("spec", "status"),
                       "ServiceAccount": ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
                       "PriorityClass": ("value", "globalDefault", "description", "preemptionPolicy"),
                       "Event": ("involvedObject", "reason", "message", "source", "firstTimestamp",
                                 "lastTimestamp", "count", "type", "eventTime", "series", "action", "related",
                                 "reportingComponent", "reportingInstance")}.get(res.kind, ())
            errs = []
            for k in obj:
                if k not in ("apiVersion", "kind", "metadata") + allowed:
                    unknown.append([k])
            meta_errs = list(self.template_validator.iter_errors({"metadata": obj.get("metadata")}))
            errs = meta_errs
            doc, prefix = obj, []
        for err in errs:
            path = prefix + list(err.absolute_path)
            if err.validator == "additionalProperties":
                props = (err.schema or {}).get("properties", {})
                for k in err.instance if isinstance(err.instance, dict) else []:
                    if k not in props:
                        unknown.append(path + [k])
                continue
            P = RawProblems()
            vj.check_schema(P, _OneError(err), doc)
            for cat, p, msg in P.items:
                p = prefix + p
                if err.validator in ("type", "oneOf", "format"):
                    decode_err.append((p, msg))
                else:
                    causes.append(make_cause(obj, p, msg))
        warnings = []
        if decode_err:
            p, msg = decode_err[0]
            raise bad_request('%s in version "%s" cannot be handled as a %s: json: cannot unmarshal into Go '
                              'struct field %s.%s: %s' % (res.kind, res.version, res.kind, res.kind,
                                                          field_path(p), msg))
        if unknown:
            names = ['unknown field "%s"' % field_path(p) for p in unknown]
            if field_validation == "Strict":
                raise bad_request('%s in version "%s" cannot be handled as a %s: strict decoding error: %s'
                                  % (res.kind, res.version, res.kind, ", ".join(names)))
            for p in sorted(unknown, key=len, reverse=True):
                _delete_path(obj, p)
            if field_validation != "Ignore":
                warnings += names
        return warnings, causes

    # ------------------------------------------------------------ metadata
    def meta_causes(self, res, obj, create=True):
        P = RawProblems()
        md = obj.get("metadata") or {}
        name, gen = md.get("name"), md.get("generateName")
        if create and not name and not gen:
            P.add("api", ["metadata", "name"], "name or generateName is required")
        check = vj.label_msg if res in (NAMESPACES,) else vj.subdomain_msg
        if name:
            m = check(name, "name")
            if m:
                P.add("api", ["metadata", "name"], m)
            if res is JOBS and len(name) > 63:
                P.add("api", ["metadata", "name"], "must be no more than 63 characters")
        elif gen:
            m = check(gen.rstrip("-") or "x", "generateName")
            if m and not re.match(r"^[a-z0-9]([-a-z0-9.]*)?$", gen):
                P.add("api", ["metadata", "generateName"], m)
        vj.check_labels(P, md.get("labels"), ["metadata", "labels"])
        vj.check_annotations(P, md.get("annotations"), ["metadata", "annotations"])
        ctl = 0
        for i, ref in enumerate(md.get("ownerReferences") or []):
            for f in ("apiVersion", "kind", "name", "uid"):
                if not (ref or {}).get(f):
                    P.add("api", ["metadata", "ownerReferences", i, f], "%s must not be empty" % f)
            if (ref or {}).get("controller"):
                ctl += 1
        if ctl > 1:
            P.add("api", ["metadata", "ownerReferences"], "Only one reference can have Controller set to true")
        return [make_cause(obj, p, m) for _, p, m in P.items]

    # ------------------------------------------------------------ per kind
    def admit_create(self, res, ns, obj, field_validation="Warn", internal=False):
        """Default, validate and admit a new object in place. -> warnings; raises ApiError."""
        warnings = []
        if not internal:
            w, causes = self.check_fields(res, obj, field_validation)
            warnings += w
        else:
            causes = []
        md = obj["metadata"]
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        causes += self.meta_causes(res, obj)
        name = md.get("name") or md.get("generateName") or ""
        kind_causes, kind_warn = getattr(self, "_admit_" + res.kind.lower(), lambda *a: ([], []))(obj, ns, True)
        causes += kind_causes
        warnings += kind_warn
        seen, uniq = set(), []
        for c in causes:
            if (c["field"], c["message"]) not in seen:
                seen.add((c["field"], c["message"]))
                uniq.append(c)
        causes = uniq
        if causes:
            raise invalid(res, name, causes)
        return warnings

    def finish_create(self, res, obj):
        """System fields for a new object (after admission)."""
        md = obj["metadata"]
        if not md.get("name"):
            md["name"] = md["generateName"][:58] + random_suffix()
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "managedFields", "selfLink"):
            md.pop(k, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        if res in (JOBS, PODS):
            md["generation"] = 1
        getattr(self, "_finish_" + res.kind.lower(), lambda o: None)(obj)

    # Jobs ------------------------------------------------------------------
    def _admit_job(self, obj, ns, create):
        P = RawProblems()
        vj.check_job_api(P, obj)
        causes = [make_cause(obj, p, m) for _, p, m in P.items if p[:2] != ["metadata", "name"]
                  and p[:1] not in (["apiVersion"], ["kind"])]
        warnings = self.pss_warnings(ns, obj, "Job")
        if not causes:
            self.default_pod_spec(obj["spec"]["template"].setdefault("spec", {}))
        return causes, warnings

    def _finish_job(self, obj):
        md, spec = obj["metadata"], obj.setdefault("spec", {})
        uid, name = md["uid"], md["name"]
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
        tm = spec["template"].setdefault("metadata", {})
        tl = tm.setdefault("labels", {})
        if not spec.get("manualSelector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            tl.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                       "controller-uid": uid, "job-name": name})
        if not md.get("labels"):
            md["labels"] = dict(tl)
        tm.pop("creationTimestamp", None)
        tm["creationTimestamp"] = None
        obj["status"] = {}

    # Pods ------------------------------------------------------------------
    def default_pod_spec(self, ps):
        ps.setdefault("restartPolicy", "Always")
        ps.setdefault("terminationGracePeriodSeconds", 30)
        ps.setdefault("dnsPolicy", "ClusterFirst")
        ps.setdefault("securityContext", {})
        ps.setdefault("schedulerName", "default-scheduler")
        ps.setdefault("enableServiceLinks", True)
        if ps.get("serviceAccount") and not ps.get("serviceAccountName"):
            ps["serviceAccountName"] = ps["serviceAccount"]
        for kind in ("initContainers", "containers"):
            for c in ps.get(kind) or []:
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                c.setdefault("resources", {})
                if not c.get("imagePullPolicy"):
                    c["imagePullPolicy"] = "Always" if image_tag(c.get("image", "")) in ("", "latest") \
                        and "@" not in c.get("image", "") else "IfNotPresent"
                for e in c.get("env") or []:
                    fr = (e.get("valueFrom") or {}).get("fieldRef")
                    if isinstance(fr, dict):
                        fr.setdefault("apiVersion", "v1")
        for v in ps.get("volumes") or []:
            for src in ("secret", "configMap"):
                if isinstance(v.get(src), dict):
                    v[src].setdefault("defaultMode", 420)

    def _admit_pod(self, obj, ns, create):
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [make_cause(obj, ["spec", "containers"], "at least one container is required")], []
        P = RawProblems()
        vj.check_pod_spec_api(P, spec, ["spec"])
        rp = spec.get("restartPolicy")
        if rp is not None and rp not in ("Always", "OnFailure", "Never"):
            P.add("api", ["spec", "restartPolicy"], "unsupported value %s (Always, OnFailure, Never)" % json.dumps(rp))
        causes = [make_cause(obj, p, m) for _, p, m in P.items]
        if causes:
            return causes, []
        self.default_pod_spec(spec)
        self.admit_pod_policies(obj, ns)
        return [], []

    def admit_pod_policies(self, pod, ns):
        """The admission plugins a Pod passes: ServiceAccount, Priority, PodSecurity. 403 when refused."""
        spec = pod["spec"]
        name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
        sa = spec.get("serviceAccountName") or "default"
        if not self.store.exists(SERVICEACCOUNTS, ns, sa):
            raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: error looking up service account %s/%s: '
                           'serviceaccount "%s" not found' % (name, ns, sa, sa),
                           {"name": name, "kind": "pods"})
        spec["serviceAccountName"] = sa
        spec.setdefault("serviceAccount", sa)
        pc = spec.get("priorityClassName")
        if pc:
            cls = self.store.get(PRIORITYCLASSES, "", pc)
            if cls is None:
                raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: no PriorityClass with name %s was found'
                               % (name, pc), {"name": name, "kind": "pods"})
            spec["priority"] = cls.get("value", 0)
        else:
            spec.setdefault("priority", 0)
        level = self.pss_level(ns, "enforce")
        if level:
            msgs = self.pss_messages(pod, level)
            if msgs:
                raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: violates PodSecurity "%s:latest": %s'
                               % (name, level, "; ".join(msgs)), {"name": name, "kind": "pods"})

    def _finish_pod(self, obj):
        spec = obj["spec"]
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    def pss_level(self, ns, mode):
        nso = self.store.get(NAMESPACES, "", ns)
        lv = ((nso or {}).get("metadata", {}).get("labels") or {}).get("pod-security.kubernetes.io/" + mode)
        return lv if lv in ("baseline", "restricted") else None

    def pss_messages(self, obj, level, kind="Pod"):
        wrap = obj if kind == "Job" else {"spec": {"template": {"metadata": obj.get("metadata", {}),
                                                                "spec": obj.get("spec", {})}}}
        P = RawProblems()
        vj.check_pss(P, wrap, level)
        out = []
        for _, p, m in P.items:
            where = field_path(p[3:] if kind != "Job" else p)
            out.append("%s (%s)" % (m, where))
        return out

    def pss_warnings(self, ns, obj, kind):
        out = []
        for mode in ("enforce", "warn"):
            level = self.pss_level(ns, mode)
            if level:
                msgs = self.pss_messages(obj, level, kind)
                if msgs:
                    out.append('would violate PodSecurity "%s:latest": %s' % (level, "; ".join(msgs)))
                break
        return out

    # Secrets / ConfigMaps --------------------------------------------------
    def _admit_secret(self, obj, ns, create):
        causes = []
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: json: cannot unmarshal "
                              "into Go struct field Secret.data of type map[string][]uint8")
        for k, v in list(data.items()):
            if not isinstance(v, str):
                raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: json: cannot "
                                  "unmarshal %s into Go struct field Secret.data of type []uint8" % type(v).__name__)
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data "
                                  "at input byte 0")
        sd = obj.pop("stringData", None) or {}
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data
        obj.setdefault("type", "Opaque")
        total = 0
        for k, v in data.items():
            if not k or len(k) > 253 or not vj.CONFIG_MAP_KEY.match(k):
                causes.append({"reason": "FieldValueInvalid", "field": "data[%s]" % k,
                               "message": "Invalid value: %s: a valid config key must consist of alphanumeric "
                                          "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                          "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                                          % json.dumps(k)})
            total += len(base64.b64decode(v))
        if total > MAX_DATA:
            causes.append({"reason": "FieldValueTooLong", "field": "data",
                           "message": "Too long: must have at most %d bytes" % MAX_DATA})
        t = obj["type"]
        if t == "kubernetes.io/dockerconfigjson":
            if ".dockerconfigjson" not in data:
                causes.append({"reason": "FieldValueRequired", "field": "data[.dockerconfigjson]",
                               "message": "Required value"})
            else:
                try:
                    json.loads(base64.b64decode(data[".dockerconfigjson"]))
                except ValueError as e:
                    causes.append({"reason": "FieldValueInvalid", "field": "data[.dockerconfigjson]",
                                   "message": "Invalid value: \"<secret contents redacted>\": %s" % e})
        if not obj.get("data"):
            obj.pop("data")
        return causes, []

    def _admit_configmap(self, obj, ns, create):
        causes, total = [], 0
        for sect in ("data", "binaryData"):
            d = obj.get(sect) or {}
            if not isinstance(d, dict):
                raise bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot "
                                  "unmarshal into Go struct field ConfigMap.%s" % sect)
            for k, v in d.items():
                if not isinstance(v, str):
                    raise bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot "
                                      "unmarshal %s into Go struct field ConfigMap.%s of type string"
                                      % (type(v).__name__, sect))
                if not k or len(k) > 253 or not vj.CONFIG_MAP_KEY.match(k):
                    causes.append({"reason": "FieldValueInvalid", "field": "%s[%s]" % (sect, k),
                                   "message": "Invalid value: %s: a valid config key must consist of alphanumeric "
                                              "characters, '-', '_' or '.'" % json.dumps(k)})
                if sect == "binaryData":
                    try:
                        total += len(base64.b64decode(v, validate=True))
                    except (binascii.Error, ValueError):
                        raise bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: illegal "
                                          "base64 data at input byte 0")
                    if k in (obj.get("data") or {}):
                        causes.append({"reason": "FieldValueInvalid", "field": "binaryData[%s]" % k,
                                       "message": "Invalid value: %s: duplicate of key present in data"
                                                  % json.dumps(k)})
                else:
                    total += len(k) + len(v.encode())
        if total > MAX_DATA:
            causes.append({"reason": "FieldValueTooLong", "field": "",
                           "message": "Too long: must have at most %d bytes" % MAX_DATA})
        return causes, []

    def _admit_namespace(self, obj, ns, create):
        return [], []

    def _finish_namespace(self, obj):
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}

    def _admit_priorityclass(self, obj, ns, create):
        if not isinstance(obj.get("value"), int):
            return [{"reason": "FieldValueRequired", "field": "value", "message": "Required value"}], []
        return [], []

    def _admit_event(self, obj, ns, create):
        return [], []

    # ------------------------------------------------------------ updates
    def admit_update(self, res, ns, old, new, field_validation="Warn"):
        warnings, causes = self.check_fields(res, new, field_validation)
        md, omd = new["metadata"], old["metadata"]
        if md.get("name") != omd["name"]:
            raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                              % (md.get("name"), omd["name"]))
        if res.namespaced and md.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        causes += self.meta_causes(res, new, create=False)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        if res in (JOBS, PODS, NAMESPACES):
            new["status"] = copy.deepcopy(old.get("status", {}))
        if res is JOBS:
            spec, ospec = new.get("spec") or {}, old.get("spec") or {}
            for f in ("selector", "template", "completions", "completionMode", "podFailurePolicy",
                      "manualSelector", "backoffLimitPerIndex", "maxFailedIndexes", "podReplacementPolicy"):
                if f in ospec and spec.get(f) != ospec.get(f):
                    causes.append({"reason": "FieldValueInvalid", "field": "spec." + f,
                                   "message": "Invalid value: %s: field is immutable" % json.dumps(spec.get(f))})
            if spec != ospec:
                md["generation"] = omd.get("generation", 1) + 1
        elif res is PODS:
            spec, ospec = copy.deepcopy(new.get("spec") or {}), copy.deepcopy(old.get("spec") or {})
            for s in (spec, ospec):
                s.pop("activeDeadlineSeconds", None)
                for c in s.get("containers") or []:
                    c.pop("image", None)
                s.pop("tolerations", None)
            if spec != ospec:
                causes.append({"reason": "FieldValueForbidden", "field": "spec",
                               "message": "Forbidden: pod updates may not change fields other than "
                                          "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                          "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                                          "existing tolerations),`spec.terminationGracePeriodSeconds` "
                                          "(allow it to be set to 1 if it was previously negative)"})
        elif res in (SECRETS, CONFIGMAPS):
            if old.get("immutable"):
                for f in ("data", "binaryData", "immutable", "type"):
                    if new.get(f) != old.get(f) and not (f == "data" and res is SECRETS and new.get("stringData")):
                        causes.append({"reason": "FieldValueForbidden", "field": f,
                                       "message": "Forbidden: field is immutable when `immutable` is set"})
            kc, _ = getattr(self, "_admit_" + res.kind.lower())(new, ns, False)
            causes += kc
            if res is SECRETS and new.get("type") != old.get("type"):
                causes.append({"reason": "FieldValueInvalid", "field": "type",
                               "message": "Invalid value: %s: field is immutable" % json.dumps(new.get("type"))})
        if causes:
            raise invalid(res, omd["name"], causes)
        return warnings


def image_tag(image):
    ref = image.split("@")[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def qos_class(spec):
    any_set, guaranteed = False, True
    for c in spec.get("containers") or []:
        r = (c.get("resources") or {})
        rq, lm = r.get("requests") or {}, r.get("limits") or {}
        if rq or lm:
            any_set = True
        for res in ("cpu", "memory"):
            if res not in lm:
                guaranteed = False
            elif res in rq and vj.parse_quantity(rq[res]) != vj.parse_quantity(lm[res]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
