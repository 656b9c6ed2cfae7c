"""The object store: every object, one resourceVersion counter, the event history watches read.

One lock guards everything; every change bumps the global resourceVersion (as etcd's revision
does) and appends an event that watches and the controllers read.
"""

import copy
import json
import threading
import time

from apierrors import already_exists, expired, not_found


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Event:
    __slots__ = ("rv", "type", "res", "obj", "old")

    def __init__(self, rv, type_, res, obj, old):
        self.rv = rv
        self.type = type_
        self.res = res
        self.obj = obj      # the object after the change (for DELETED: the last state, with the new rv)
        self.old = old      # the object before (None for ADDED)


class Store:
    def __init__(self, history=1000, state_log=None):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 100
        self.objs = {}
        self.log = []
        self.log_base = 0          # global index of log[0]
        self.oldest_rv = self.rv   # watch from rv >= oldest_rv is possible
        self.history = max(10, history)
        self.listeners = []
        self.state_log = state_log
        self.closed = False

    # ------------------------------------------------------------ reading
    def get(self, res, ns, name):
        with self.lock:
            o = self.objs.get((res.resource, ns or "", name))
            return copy.deepcopy(o) if o is not None else None

    def exists(self, res, ns, name):
        with self.lock:
            return (res.resource, ns or "", name) in self.objs

    def list(self, res, ns=None, pred=None):
        """-> (copies sorted by namespace/name, current resourceVersion)."""
        with self.lock:
            out = []
            for (r, n, _), o in sorted(self.objs.items()):
                if r != res.resource or (ns and n != ns):
                    continue
                if pred and not pred(o):
                    continue
                out.append(copy.deepcopy(o))
            return out, self.rv

    def find(self, pred):
        """All objects (any resource) for which pred(res_name, obj) is true, as (res_name, copy)."""
        with self.lock:
            return [(k[0], copy.deepcopy(o)) for k, o in self.objs.items() if pred(k[0], o)]

    # ------------------------------------------------------------ writing
    def _bump(self):
        self.rv += 1
        return self.rv

    def _emit(self, type_, res, obj, old):
        ev = Event(self.rv, type_, res, copy.deepcopy(obj), old)
        self.log.append(ev)
        if len(self.log) > self.history:
            drop = len(self.log) - self.history
            self.oldest_rv = self.log[drop - 1].rv
            del self.log[:drop]
            self.log_base += drop
        for fn in self.listeners:
            fn(ev)
        if self.state_log:
            st = obj.get("status") or {}
            line = {"t": time.time(), "rv": self.rv, "type": type_, "kind": res.kind,
                    "namespace": obj["metadata"].get("namespace"), "name": obj["metadata"].get("name")}
            if isinstance(st, dict):
                if st.get("phase"):
                    line["phase"] = st["phase"]
                if res.kind == "Job":
                    line["status"] = {k: st.get(k) for k in ("active", "succeeded", "failed") if k in st}
                    line["conditions"] = [c.get("type") for c in st.get("conditions") or []]
            self.log_line(line)
        self.cond.notify_all()

    def log_line(self, d):
        if self.state_log:
            try:
                with open(self.state_log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(d, sort_keys=True) + "\n")
            except OSError:
                pass

    def insert(self, res, obj):
        """Store a new object (metadata complete but resourceVersion). -> copy."""
        md = obj["metadata"]
        key = (res.resource, md.get("namespace", "") or "", md["name"])
        with self.lock:
            if key in self.objs:
                raise already_exists(res, md["name"])
            md["resourceVersion"] = str(self._bump())
            self.objs[key] = copy.deepcopy(obj)
            self._emit("ADDED", res, obj, None)
            return copy.deepcopy(obj)

    def mutate(self, res, ns, name, fn, expect_uid=None):
        """Apply fn(obj) to a copy of the object; fn returns False to abort. Stores and emits
        MODIFIED when something changed (or DELETED when the change completes a pending deletion).
        -> the new object (a copy), or None when absent/aborted."""
        key = (res.resource, ns or "", name)
        with self.lock:
            cur = self.objs.get(key)
            if cur is None or (expect_uid and cur["metadata"].get("uid") != expect_uid):
                return None
            new = copy.deepcopy(cur)
            if fn(new) is False:
                return None
            if new == cur:
                return copy.deepcopy(cur)
            md = new["metadata"]
            if md.get("deletionTimestamp") and not md.get("finalizers") and (
                    res.resource != "pods" or not md.get("deletionGracePeriodSeconds")):
                return self._remove(res, key, new)
            md["resourceVersion"] = str(self._bump())
            self.objs[key] = new
            self._emit("MODIFIED", res, new, cur)
            return copy.deepcopy(new)

    def remove(self, res, ns, name, expect_uid=None):
        """Remove the object now. -> its last state, or None when absent."""
        key = (res.resource, ns or "", name)
        with self.lock:
            cur = self.objs.get(key)
            if cur is None or (expect_uid and cur["metadata"].get("uid") != expect_uid):
                return None
            return self._remove(res, key, copy.deepcopy(cur))

    def _remove(self, res, key, last):
        old = self.objs.pop(key)
        last["metadata"]["resourceVersion"] = str(self._bump())
        self._emit("DELETED", res, last, old)
        return copy.deepcopy(last)

    def require(self, res, ns, name):
        o = self.get(res, ns, name)
        if o is None:
            raise not_found(res, name)
        return o

    # ------------------------------------------------------------ watching
    def watch_start(self, rv_str):
        """Position in the event log for a watch from resourceVersion rv_str ('' / '0' handled by the
        caller). Raises 410 Expired when the history no longer reaches back to it."""
        with self.lock:
            try:
                rv = int(rv_str)
            except ValueError:
                from apierrors import bad_request
                raise bad_request('invalid resource version "%s"' % rv_str)
            if rv < self.oldest_rv:
                raise expired("too old resource version: %d (%d)" % (rv, self.oldest_rv + 1))
            # first event with rv > requested
            idx = self.log_base + len(self.log)
            for i, ev in enumerate(self.log):
                if ev.rv > rv:
                    idx = self.log_base + i
                    break
            return idx

    def position_now(self):
        with self.lock:
            return self.log_base + len(self.log), self.rv

    def events_since(self, idx, deadline):
        """Wait until events after global index idx exist or deadline (time.monotonic) passes.
        -> (events, new idx); raises 410 Expired when idx fell out of the history."""
        with self.lock:
            while True:
                if idx < self.log_base:
                    raise expired("too old resource version: the watch fell behind the event history")
                n = self.log_base + len(self.log)
                if idx < n or self.closed:
                    evs = self.log[idx - self.log_base:]
                    return list(evs), n
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], idx
                self.cond.wait(min(left, 1.0))

    def close(self):
        with self.lock:
            self.closed = True
            self.cond.notify_all()
