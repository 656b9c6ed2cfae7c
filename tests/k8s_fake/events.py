"""core/v1 Events as the kubelet, scheduler and controllers record them (repeats counted)."""

import threading
import time
import uuid

from resources import BY_KIND, EVENTS
from store import now_rfc3339


class EventRecorder:
    def __init__(self, store, node):
        self.store = store
        self.node = node
        self.lock = threading.Lock()
        self.seen = {}   # (uid, reason, message) -> event name

    def record(self, obj, type_, reason, message, component):
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        key = (md.get("uid"), reason, message)
        now = now_rfc3339()
        with self.lock:
            name = self.seen.get(key)
            if name and self.store.mutate(EVENTS, ns, name, lambda e: e.update(
                    count=e.get("count", 1) + 1, lastTimestamp=now)) is not None:
                return
            res = BY_KIND.get(obj.get("kind"))
            name = "%s.%x" % (md.get("name"), time.time_ns() + len(self.seen))
            ev = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                               "creationTimestamp": now},
                  "involvedObject": {"kind": obj.get("kind"), "namespace": md.get("namespace"),
                                     "name": md.get("name"), "uid": md.get("uid"),
                                     "apiVersion": res.api_version if res else "v1",
                                     "resourceVersion": md.get("resourceVersion")},
                  "reason": reason, "message": message,
                  "source": {"component": component} if component != "kubelet" else
                  {"component": "kubelet", "host": self.node},
                  "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": type_,
                  "eventTime": None, "reportingComponent": component,
                  "reportingInstance": self.node if component == "kubelet" else ""}
            if not md.get("namespace"):
                ev["involvedObject"].pop("namespace")
            try:
                self.store.insert(EVENTS, ev)
                self.seen[key] = name
            except Exception:  # noqa: BLE001 - an event must never break its caller
                pass
