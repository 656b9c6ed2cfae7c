"""Server-side printing (Accept: application/json;as=Table;g=meta.k8s.io;v=v1), the columns of
kubernetes/pkg/printers/internalversion for the resources k8s-fake serves."""

import calendar
import time


def _epoch(s):
    try:
        return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def human_duration(secs):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(secs)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        return "%dm%ds" % (minutes, s % 60) if s % 60 else "%dm" % minutes
    if minutes < 60 * 3:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        return "%dh%dm" % (hours, minutes % 60) if minutes % 60 else "%dh" % hours
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        return "%dd%dh" % (hours // 24, hours % 24) if hours % 24 else "%dd" % (hours // 24)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        return "%dy%dd" % (hours // 24 // 365, (hours // 24) % 365) if (hours // 24) % 365 else \
            "%dy" % (hours // 24 // 365)
    return "%dy" % (hours // 24 // 365)


def age(ts):
    t = _epoch(ts)
    return "<unknown>" if t is None else human_duration(time.time() - t)


def col(name, type_="string", fmt="", desc="", priority=0):
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


NAME = col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE = col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


def pod_status(p):
    st = p.get("status") or {}
    restarts, last_restart = 0, None
    reason = st.get("reason") or st.get("phase") or ""
    init = False
    ics = st.get("initContainerStatuses") or []
    for i, c in enumerate(ics):
        restarts += c.get("restartCount", 0)
        s = c.get("state") or {}
        t = s.get("terminated")
        if t and t.get("exitCode") == 0:
            continue
        if t:
            reason = "Init:" + (t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal")
                                                    else "ExitCode:%d" % t.get("exitCode", 0)))
        elif s.get("waiting") and s["waiting"].get("reason") and s["waiting"]["reason"] != "PodInitializing":
            reason = "Init:" + s["waiting"]["reason"]
        else:
            reason = "Init:%d/%d" % (i, len(ics))
        init = True
        break
    running = False
    if not init:
        for c in reversed(st.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            s = c.get("state") or {}
            if s.get("waiting", {}).get("reason"):
                reason = s["waiting"]["reason"]
            elif s.get("terminated", {}).get("reason"):
                reason = s["terminated"]["reason"]
            elif s.get("terminated"):
                t = s["terminated"]
                reason = "Signal:%d" % t["signal"] if t.get("signal") else "ExitCode:%d" % t.get("exitCode", 0)
            elif c.get("ready") and s.get("running"):
                running = True
            lt = (c.get("lastState") or {}).get("terminated")
            if lt and lt.get("finishedAt"):
                last_restart = lt["finishedAt"]
        if reason == "Completed" and running:
            reason = "Running"
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    return reason, restarts, last_restart


def pod_row(p):
    st = p.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len((p.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    reason, restarts, last = pod_status(p)
    rs = str(restarts) if not last else "%d (%s ago)" % (restarts, age(last))
    return ["%s" % p["metadata"]["name"], "%d/%d" % (ready, total), reason, rs,
            age(p["metadata"].get("creationTimestamp")), st.get("podIP") or "<none>",
            (p.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>"]


POD_COLS = [NAME, col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
            col("Status", desc="The aggregate status of the containers in this pod."),
            col("Restarts", desc="The number of times the containers in this pod have been restarted and when the "
                "last container in this pod has restarted."), AGE,
            col("IP", desc="IP address allocated to the pod. Routable at least within the cluster.", priority=1),
            col("Node", desc="NodeName is a request to schedule this pod onto a specific node.", priority=1),
            col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts other pods on the "
                "node.", priority=1),
            col("Readiness Gates", desc="If specified, all readiness gates will be evaluated for pod readiness.",
                priority=1)]


def job_status(j):
    st = j.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "FailureTarget", "Suspended"):
            return c["type"]
    if (j.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return "Running"


def job_row(j):
    spec, st = j.get("spec") or {}, j.get("status") or {}
    comp = spec.get("completions")
    completions = "%d/%d" % (st.get("succeeded", 0), comp) if comp is not None else \
        "%d/1 of %d" % (st.get("succeeded", 0), spec.get("parallelism", 1))
    start, end = _epoch(st.get("startTime")), _epoch(st.get("completionTime"))
    dur = "" if start is None else human_duration((end or time.time()) - start)
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
    sel = ",".join("%s=%s" % kv for kv in ((spec.get("selector") or {}).get("matchLabels") or {}).items())
    return [j["metadata"]["name"], job_status(j), completions, dur, age(j["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers),
            sel or "<none>"]


JOB_COLS = [NAME, col("Status", desc="Status of the job."),
            col("Completions", desc="The desired number of successfully finished pods the job should be run with."),
            col("Duration", desc="Time required to complete the job."), AGE,
            col("Containers", desc="Names of each container in the template.", priority=1),
            col("Images", desc="Images referenced by each container in the template.", priority=1),
            col("Selector", desc="A label query over pods that should match the pod count.", priority=1)]

TABLES = {
    "pods": (POD_COLS, pod_row),
    "jobs": (JOB_COLS, job_row),
    "secrets": ([NAME, col("Type"), col("Data", "integer"), AGE],
                lambda o: [o["metadata"]["name"], o.get("type", ""), len(o.get("data") or {}),
                           age(o["metadata"].get("creationTimestamp"))]),
    "configmaps": ([NAME, col("Data", "integer"), AGE],
                   lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                              age(o["metadata"].get("creationTimestamp"))]),
    "namespaces": ([NAME, col("Status"), AGE],
                   lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""),
                              age(o["metadata"].get("creationTimestamp"))]),
    "serviceaccounts": ([NAME, col("Secrets", "integer"), AGE],
                        lambda o: [o["metadata"]["name"], len(o.get("secrets") or []),
                                   age(o["metadata"].get("creationTimestamp"))]),
    "priorityclasses": ([NAME, col("Value", "integer"), col("Global-Default", "boolean"), AGE],
                        lambda o: [o["metadata"]["name"], o.get("value", 0), bool(o.get("globalDefault")),
                                   age(o["metadata"].get("creationTimestamp"))]),
    "events": ([col("Last Seen"), col("Type"), col("Reason"), col("Object"), col("Message")],
               lambda o: [age(o.get("lastTimestamp")), o.get("type", ""), o.get("reason", ""),
                          "%s/%s" % ((o.get("involvedObject") or {}).get("kind", "").lower(),
                                     (o.get("involvedObject") or {}).get("name", "")), o.get("message", "")]),
}


def table(res, items, rv, include="Metadata", cont=None, remaining=None):
    cols, row = TABLES.get(res.resource, ([NAME, col("Created At", "date")],
                                          lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]))
    rows = []
    for o in items:
        r = {"cells": row(o)}
        if include == "Object":
            r["object"] = o
        elif include != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": o["metadata"]}
        rows.append(r)
    md = {"resourceVersion": str(rv)}
    if cont:
        md["continue"] = cont
    if remaining:
        md["remainingItemCount"] = remaining
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": cols, "rows": rows}
