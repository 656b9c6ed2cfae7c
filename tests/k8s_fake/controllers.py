"""The controller-manager part: Job controller (pods, backoffLimit, activeDeadlineSeconds, job-tracking
finalizers), TTL-after-finished, garbage collector (ownerReferences, propagation policies) and the
namespace controller. One thread works a queue of keys plus timers, as the real controllers do."""

import calendar
import copy
import heapq
import threading
import time

from apierrors import ApiError
from resources import ALL, JOBS, NAMESPACES, PODS
from store import now_rfc3339

TRACKING = "batch.kubernetes.io/job-tracking"
FOREGROUND = "foregroundDeletion"
BY_NAME = {r.resource: r for r in ALL}


def controller_ref(obj):
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def cond_true(job, type_):
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def rfc_epoch(s):
    try:
        return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return time.time()


class ControllerManager:
    def __init__(self, store, registry, events, cfg, log):
        self.store = store
        self.registry = registry
        self.events = events
        self.cfg = cfg
        self.log = log
        self.cond = threading.Condition()
        self.queue = []            # ordered unique tasks
        self.queued = set()
        self.timers = []           # heap of (at, seq, task)
        self.seq = 0
        self.counted = set()       # pod uids whose termination the Job status includes
        self.last_failure = {}     # job uid -> (failures seen, time of the last one)
        self.stopping = False
        store.listeners.append(self._on_event)
        registry.orphan_hook = self.orphan_dependents
        self.thread = threading.Thread(target=self._loop, name="controllers", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    # ------------------------------------------------------------ queue
    def add(self, task):
        with self.cond:
            if task not in self.queued:
                self.queued.add(task)
                self.queue.append(task)
                self.cond.notify_all()

    def add_at(self, at, task):
        with self.cond:
            self.seq += 1
            heapq.heappush(self.timers, (at, self.seq, task))
            self.cond.notify_all()

    def _on_event(self, ev):
        md = ev.obj["metadata"]
        ns = md.get("namespace", "")
        if ev.res is JOBS:
            self.add(("job", ns, md["name"]))
        elif ev.res is PODS:
            ref = controller_ref(ev.obj)
            if ref and ref.get("kind") == "Job":
                self.add(("job", ns, ref["name"]))
            elif ev.type != "DELETED" and TRACKING in (md.get("finalizers") or []):
                self.add(("orphan_pod", ns, md["name"]))
        if ev.type == "DELETED":
            self.add(("owner_gone", md["uid"]))
            for ref in md.get("ownerReferences") or []:
                self.add(("foreground", ref.get("uid")))
            if ns:
                self.add(("namespace", ns))
        else:
            if md.get("deletionTimestamp"):
                if FOREGROUND in (md.get("finalizers") or []):
                    self.add(("foreground", md["uid"]))
                if ev.res is NAMESPACES:
                    self.add(("namespace", md["name"]))
            if ev.type == "ADDED" and md.get("ownerReferences"):
                self.add(("dangling", ev.res.resource, ns, md["name"], md["uid"]))

    def _loop(self):
        while True:
            with self.cond:
                while not self.stopping:
                    now = time.time()
                    while self.timers and self.timers[0][0] <= now:
                        _, _, task = heapq.heappop(self.timers)
                        if task not in self.queued:
                            self.queued.add(task)
                            self.queue.append(task)
                    if self.queue:
                        break
                    wait = self.timers[0][0] - now if self.timers else 1.0
                    self.cond.wait(min(max(wait, 0.01), 1.0))
                if self.stopping:
                    return
                task = self.queue.pop(0)
                self.queued.discard(task)
            try:
                getattr(self, "_do_" + task[0])(*task[1:])
            except ApiError as e:
                if e.code != 404:
                    self.log("controller %s: %s" % (task, e.message))
            except Exception as e:  # noqa: BLE001 - a controller bug must not stop the server
                import traceback
                self.log("controller %s: internal error: %r\n%s" % (task, e, traceback.format_exc()))

    # ------------------------------------------------------------ Job controller
    def _remove_finalizer(self, pod):
        md = pod["metadata"]

        def drop(o):
            fins = o["metadata"].get("finalizers") or []
            if TRACKING not in fins:
                return False
            o["metadata"]["finalizers"] = [f for f in fins if f != TRACKING]
            if not o["metadata"]["finalizers"]:
                o["metadata"].pop("finalizers")
        self.store.mutate(PODS, md["namespace"], md["name"], drop, expect_uid=md["uid"])

    def _do_orphan_pod(self, ns, name):
        """A pod with the tracking finalizer and no controlling Job (orphaned): drop the finalizer."""
        p = self.store.get(PODS, ns, name)
        if p is not None and controller_ref(p) is None:
            self._remove_finalizer(p)

    def _delete_pod(self, job, pod):
        try:
            self.registry.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                 propagation="Background", preconditions={"uid": pod["metadata"]["uid"]})
            self.events.record(job, "Normal", "SuccessfulDelete", "Deleted pod: %s" % pod["metadata"]["name"],
                               "job-controller")
        except ApiError:
            pass

    def _do_job(self, ns, name):
        job = self.store.get(JOBS, ns, name)
        pods_all, _ = self.store.list(PODS, ns)
        if job is None or job["metadata"].get("deletionTimestamp"):
            uid = job["metadata"]["uid"] if job else None
            for p in pods_all:
                ref = controller_ref(p)
                if ref and ref.get("kind") == "Job" and ref.get("name") == name and (
                        uid is None or ref.get("uid") == uid or not self._uid_exists(ref.get("uid"))):
                    if uid is not None and ref.get("uid") == uid and p["status"].get("phase") not in (
                            "Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp"):
                        continue
                    self._remove_finalizer(p)
            return
        md, spec = job["metadata"], job["spec"]
        uid = md["uid"]
        pods = [p for p in pods_all if (controller_ref(p) or {}).get("uid") == uid]
        st = copy.deepcopy(job.get("status") or {})
        succeeded, failed = st.get("succeeded", 0), st.get("failed", 0)
        now = time.time()
        new_fail = False
        for p in pods:
            phase = (p.get("status") or {}).get("phase")
            puid = p["metadata"]["uid"]
            if phase in ("Succeeded", "Failed") and puid not in self.counted:
                self.counted.add(puid)
                if phase == "Succeeded":
                    succeeded += 1
                else:
                    failed += 1
                    new_fail = True
            if phase in ("Succeeded", "Failed") and TRACKING in (p["metadata"].get("finalizers") or []):
                self._remove_finalizer(p)
        if new_fail:
            self.last_failure[uid] = now
        active = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")
                       and p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in active if any(c.get("type") == "Ready" and c.get("status") == "True"
                                              for c in p["status"].get("conditions") or []))
        conds = st.get("conditions") or []
        finished = cond_true(job, "Complete") or cond_true(job, "Failed")
        nowstr = now_rfc3339()
        if not finished:
            if spec.get("suspend"):
                for p in active:
                    self._delete_pod(job, p)
                active = []
                if not cond_true(job, "Suspended"):
                    conds = [c for c in conds if c["type"] != "Suspended"] + [
                        {"type": "Suspended", "status": "True", "lastProbeTime": nowstr,
                         "lastTransitionTime": nowstr, "reason": "JobSuspended", "message": "Job suspended"}]
                    self.events.record(job, "Normal", "Suspended", "Job suspended", "job-controller")
            else:
                if cond_true(job, "Suspended"):
                    conds = [dict(c, status="False", reason="JobResumed", message="Job resumed",
                                  lastTransitionTime=nowstr) if c["type"] == "Suspended" else c for c in conds]
                    st.pop("startTime", None)
                if not st.get("startTime"):
                    st["startTime"] = nowstr
                start = rfc_epoch(st["startTime"])
                ads = spec.get("activeDeadlineSeconds")
                failures = failed
                if spec["template"]["spec"].get("restartPolicy") == "OnFailure":
                    failures += sum(cs.get("restartCount", 0) for p in active
                                    for cs in p["status"].get("containerStatuses") or [])
                completions = spec.get("completions")
                fail = None
                if failures > spec.get("backoffLimit", 6):
                    fail = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
                elif ads and now >= start + ads:
                    fail = ("DeadlineExceeded", "Job was active longer than specified deadline")
                if fail:
                    for p in active:
                        self._delete_pod(job, p)
                    terminating += active
                    active = []
                    conds = conds + [{"type": "Failed", "status": "True", "lastProbeTime": nowstr,
                                      "lastTransitionTime": nowstr, "reason": fail[0], "message": fail[1]}]
                    self.events.record(job, "Warning", fail[0], fail[1], "job-controller")
                    finished = True
                elif (completions is not None and succeeded >= completions) or (
                        completions is None and succeeded > 0 and not active):
                    for p in active:
                        self._delete_pod(job, p)
                    active = []
                    conds = conds + [{"type": "Complete", "status": "True", "lastProbeTime": nowstr,
                                      "lastTransitionTime": nowstr}]
                    st["completionTime"] = nowstr
                    self.events.record(job, "Normal", "Completed", "Job completed", "job-controller")
                    finished = True
                else:
                    target = spec.get("parallelism", 1)
                    if completions is not None:
                        target = min(target, completions - succeeded)
                    want = target - len(active)
                    if spec.get("podReplacementPolicy") == "Failed":
                        want -= len(terminating)
                    if want > 0:
                        delay = 0.0
                        if failed > 0:
                            delay = min(self.cfg.job_backoff * (2 ** (failed - 1)), 360)
                        at = self.last_failure.get(uid, 0) + delay
                        if failed > 0 and now < at:
                            self.add_at(at, ("job", ns, name))
                        else:
                            for _ in range(want):
                                p = self._create_pod(job)
                                if p is None:
                                    self.add_at(now + max(self.cfg.job_backoff, 1.0), ("job", ns, name))
                                    break
                                active.append(p)
                    if ads:
                        self.add_at(start + ads, ("job", ns, name))
        st["active"] = len(active)
        st["ready"] = ready
        st["terminating"] = len(terminating)
        st["uncountedTerminatedPods"] = {}
        if succeeded:
            st["succeeded"] = succeeded
        if failed:
            st["failed"] = failed
        if not st["active"]:
            st.pop("active")
        if conds:
            st["conditions"] = conds

        def put(o):
            if o["metadata"]["uid"] != uid:
                return False
            o["status"] = st
        self.store.mutate(JOBS, ns, name, put, expect_uid=uid)
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                fin = st.get("completionTime") or next(
                    (c["lastTransitionTime"] for c in conds if c["type"] == "Failed"), nowstr)
                at = rfc_epoch(fin) + ttl
                if now >= at:
                    try:
                        self.registry.delete(JOBS, ns, name, propagation="Foreground",
                                             preconditions={"uid": uid})
                    except ApiError:
                        pass
                else:
                    self.add_at(at, ("job", ns, name))

    def _create_pod(self, job):
        md, tmpl = job["metadata"], job["spec"]["template"]
        tm = tmpl.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": md["name"] + "-", "namespace": md["namespace"],
                            "labels": dict(tm.get("labels") or {}),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": md["name"],
                                                 "uid": md["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}],
                            "finalizers": [TRACKING]},
               "spec": copy.deepcopy(tmpl.get("spec") or {})}
        if tm.get("annotations"):
            pod["metadata"]["annotations"] = dict(tm["annotations"])
        try:
            p, _ = self.registry.create(PODS, md["namespace"], pod, internal=True)
        except ApiError as e:
            self.events.record(job, "Warning", "FailedCreate", "Error creating: %s" % e.message, "job-controller")
            return None
        self.events.record(job, "Normal", "SuccessfulCreate", "Created pod: %s" % p["metadata"]["name"],
                           "job-controller")
        return p

    # ------------------------------------------------------------ garbage collector
    def _uid_exists(self, uid):
        return bool(self.store.find(lambda r, o: o["metadata"].get("uid") == uid))

    def _dependents(self, uid):
        return self.store.find(lambda r, o: any(ref.get("uid") == uid
                                                for ref in o["metadata"].get("ownerReferences") or []))

    def orphan_dependents(self, res, owner):
        uid = owner["metadata"]["uid"]
        for rname, o in self._dependents(uid):
            md = o["metadata"]

            def drop(x):
                x["metadata"]["ownerReferences"] = [r for r in x["metadata"].get("ownerReferences") or []
                                                    if r.get("uid") != uid]
                if not x["metadata"]["ownerReferences"]:
                    x["metadata"].pop("ownerReferences")
            self.store.mutate(BY_NAME[rname], md.get("namespace"), md["name"], drop, expect_uid=md["uid"])

    def _collect(self, rname, o, gone_uid):
        md = o["metadata"]
        others = [r for r in md.get("ownerReferences") or [] if r.get("uid") != gone_uid]
        if any(self._uid_exists(r.get("uid")) for r in others):
            def drop(x):
                x["metadata"]["ownerReferences"] = [r for r in x["metadata"].get("ownerReferences") or []
                                                    if r.get("uid") != gone_uid]
            self.store.mutate(BY_NAME[rname], md.get("namespace"), md["name"], drop, expect_uid=md["uid"])
            return
        if md.get("deletionTimestamp"):
            return
        try:
            self.registry.delete(BY_NAME[rname], md.get("namespace"), md["name"], propagation="Background",
                                 preconditions={"uid": md["uid"]})
        except ApiError:
            pass

    def _do_owner_gone(self, uid):
        for rname, o in self._dependents(uid):
            self._collect(rname, o, uid)

    def _do_dangling(self, rname, ns, name, uid):
        o = self.store.get(BY_NAME[rname], ns, name)
        if o is None or o["metadata"]["uid"] != uid:
            return
        refs = o["metadata"].get("ownerReferences") or []
        if refs and not any(self._uid_exists(r.get("uid")) for r in refs):
            self._collect(rname, o, refs[0].get("uid"))

    def _do_foreground(self, uid):
        owner = self.store.find(lambda r, o: o["metadata"].get("uid") == uid)
        if not owner:
            return
        rname, o = owner[0]
        md = o["metadata"]
        if not md.get("deletionTimestamp") or FOREGROUND not in (md.get("finalizers") or []):
            return
        deps = self._dependents(uid)
        blocking = False
        for dname, d in deps:
            if not d["metadata"].get("deletionTimestamp"):
                try:
                    self.registry.delete(BY_NAME[dname], d["metadata"].get("namespace"), d["metadata"]["name"],
                                         propagation="Background", preconditions={"uid": d["metadata"]["uid"]})
                except ApiError:
                    pass
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                   for r in d["metadata"].get("ownerReferences") or []):
                if self.store.find(lambda r, x: x["metadata"].get("uid") == d["metadata"]["uid"]):
                    blocking = True
        if not blocking:
            def drop(x):
                x["metadata"]["finalizers"] = [f for f in x["metadata"].get("finalizers") or [] if f != FOREGROUND]
                if not x["metadata"]["finalizers"]:
                    x["metadata"].pop("finalizers")
            self.store.mutate(BY_NAME[rname], md.get("namespace"), md["name"], drop, expect_uid=uid)

    # ------------------------------------------------------------ namespace controller
    def _do_namespace(self, ns):
        nso = self.store.get(NAMESPACES, "", ns)
        if nso is None or not nso["metadata"].get("deletionTimestamp"):
            return
        left = self.store.find(lambda r, o: o["metadata"].get("namespace") == ns)
        for rname, o in left:
            if not o["metadata"].get("deletionTimestamp"):
                try:
                    self.registry.delete(BY_NAME[rname], ns, o["metadata"]["name"], propagation="Background")
                except ApiError:
                    pass
            elif rname == "pods" and TRACKING in (o["metadata"].get("finalizers") or []) and \
                    o["status"].get("phase") in ("Succeeded", "Failed"):
                self._remove_finalizer(o)
        if not left:
            def drop(x):
                x["metadata"]["finalizers"] = [f for f in x["metadata"].get("finalizers") or [] if f != "kubernetes"]
                x.get("spec", {}).pop("finalizers", None)
            self.store.mutate(NAMESPACES, "", ns, drop)
