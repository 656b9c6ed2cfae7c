"""Fault injection state (POST /_fake/faults) and request statistics (GET /_fake/stats)."""

import fnmatch
import threading

KNOWN = {
    "image_pull_fail": "glob or list of globs",
    "missing_secret": "glob or list of globs",
    "missing_configmap": "glob or list of globs",
    "unschedulable": "boolean",
    "drop_watch_after": "integer >= 0",
    "drop_watch_count": "integer >= 1",
    "expire_rv": "true or integer >= 1",
    "evict_pod": "glob or list of globs",
    "no_log_stream_param": "boolean",
    "forbid": "list of VERB:RESOURCE",
    "fail_requests": "list of {method, path, code, count}",
}


class FaultError(ValueError):
    pass


def _globs(v):
    if v is None or v is False:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise FaultError("expected a glob or a list of globs")


class Faults:
    def __init__(self, forbid=(), no_log_stream_param=False):
        self.lock = threading.Lock()
        self.f = {}
        self.base_forbid = list(forbid)
        self.base_no_stream = no_log_stream_param
        self.listeners = []

    def snapshot(self):
        with self.lock:
            return dict(self.f)

    def update(self, patch):
        if not isinstance(patch, dict):
            raise FaultError("the body must be a JSON object")
        for k, v in patch.items():
            if k not in KNOWN:
                raise FaultError("unknown fault %r; known: %s" % (k, ", ".join(sorted(KNOWN))))
            if v is None:
                continue
            if k in ("image_pull_fail", "missing_secret", "missing_configmap", "evict_pod"):
                _globs(v)
            elif k in ("unschedulable", "no_log_stream_param") and not isinstance(v, bool):
                raise FaultError("%s: expected a boolean" % k)
            elif k in ("drop_watch_after", "drop_watch_count") and (
                    not isinstance(v, int) or isinstance(v, bool) or v < (0 if k == "drop_watch_after" else 1)):
                raise FaultError("%s: expected %s" % (k, KNOWN[k]))
            elif k == "expire_rv" and not (v is True or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)):
                raise FaultError("expire_rv: expected true or an integer >= 1")
            elif k == "forbid" and not (isinstance(v, list) and all(isinstance(x, str) and ":" in x for x in v)):
                raise FaultError("forbid: expected a list of VERB:RESOURCE strings")
            elif k == "fail_requests":
                if not isinstance(v, list) or not all(isinstance(x, dict) and isinstance(x.get("code"), int)
                                                      for x in v):
                    raise FaultError("fail_requests: expected a list of objects with an integer code")
        with self.lock:
            for k, v in patch.items():
                if v is None:
                    self.f.pop(k, None)
                elif k == "expire_rv":
                    self.f[k] = 1 if v is True else v
                elif k == "fail_requests":
                    self.f[k] = [dict(x) for x in v]
                else:
                    self.f[k] = v
        self._notify()

    def clear(self):
        with self.lock:
            self.f = {}
        self._notify()

    def _notify(self):
        for fn in self.listeners:
            fn()

    # ------------------------------------------------------------ queries
    def matches(self, key, name):
        with self.lock:
            globs = _globs(self.f.get(key))
        return any(fnmatch.fnmatchcase(name, g) for g in globs)

    def flag(self, key):
        with self.lock:
            return bool(self.f.get(key))

    def no_log_stream_param(self):
        return self.base_no_stream or self.flag("no_log_stream_param")

    def take_expire_rv(self):
        with self.lock:
            n = self.f.get("expire_rv")
            if not n:
                return False
            if n <= 1:
                self.f.pop("expire_rv")
            else:
                self.f["expire_rv"] = n - 1
            return True

    def take_watch_drop(self):
        """-> number of events after which to cut the new watch, or None."""
        with self.lock:
            after = self.f.get("drop_watch_after")
            if after is None:
                return None
            cnt = self.f.get("drop_watch_count")
            if cnt is not None:
                if cnt <= 1:
                    self.f.pop("drop_watch_count")
                    self.f.pop("drop_watch_after")
                else:
                    self.f["drop_watch_count"] = cnt - 1
            return after

    def forbidden(self, verb, resource):
        with self.lock:
            rules = self.f.get("forbid", self.base_forbid)
        for r in rules:
            v, _, res = r.partition(":")
            if fnmatch.fnmatchcase(verb, v) and fnmatch.fnmatchcase(resource, res):
                return True
        return False

    def take_request_failure(self, method, path):
        """-> HTTP code to fail this request with, or None."""
        with self.lock:
            rules = self.f.get("fail_requests") or []
            for r in rules:
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("path") and not fnmatch.fnmatchcase(path, r["path"]):
                    continue
                if "count" in r:
                    if r["count"] <= 0:
                        continue
                    r["count"] -= 1
                return r["code"]
        return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.total = 0

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.total += 1

    def snapshot(self):
        with self.lock:
            return {"total": self.total, "requests": dict(sorted(self.counts.items()))}

    def reset(self):
        with self.lock:
            self.counts = {}
            self.total = 0
