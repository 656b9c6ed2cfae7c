#!/usr/bin/env python3
"""Self-test of k8s-fake (ctest k8s_fake_selftest): the double's own behaviour against its contract
(docs/k8s-fake.md). Needs Docker with the sx-test images (tools/docker-env.sh).

Every wait is a watch on the API (or a blocking read) with a deadline, never a fixed sleep."""

import http.client
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
FAKE = os.path.join(HERE, "k8s-fake")
NS = "sx-selftest"
TOKEN = "selftest-token-%08x" % random.getrandbits(32)
RUN_ID = "%d-%04x" % (os.getpid(), random.getrandbits(16))
IMAGE = "sx-test/minimal:latest"

SEC = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
POD_SEC = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}}


def job(name, script, backoff=0, extra_spec=None, extra_pod=None, extra_container=None, image=IMAGE):
    c = {"name": "script", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["/bin/sh", "-c", script],
         "securityContext": SEC}
    c.update(extra_container or {})
    pod = {"restartPolicy": "Never", "securityContext": POD_SEC, "terminationGracePeriodSeconds": 1,
           "containers": [c]}
    pod.update(extra_pod or {})
    spec = {"backoffLimit": backoff, "template": {"spec": pod}}
    spec.update(extra_spec or {})
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {"selftest": RUN_ID}},
            "spec": spec}


class Fake:
    """One k8s-fake process."""

    def __init__(self, *args, tls=False):
        self.dir = tempfile.mkdtemp(prefix="k8s-fake-selftest-")
        self.label = "sxk8s-selftest-%s-%04x" % (RUN_ID, random.getrandbits(16))
        cmd = [FAKE, "--listen", "127.0.0.1:0", "--port-file", os.path.join(self.dir, "port"),
               "--kubeconfig-out", os.path.join(self.dir, "kubeconfig"), "--namespace", NS,
               "--label-prefix", self.label, "--state-log", os.path.join(self.dir, "state.jsonl"),
               "--exit-with-parent"] + list(args)
        if tls:
            cmd += ["--tls-dir", os.path.join(self.dir, "tls")]
        self.log = open(os.path.join(self.dir, "fake.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        pf = os.path.join(self.dir, "port")
        while not os.path.exists(pf):
            if self.proc.poll() is not None or time.time() > deadline:
                with open(os.path.join(self.dir, "fake.log")) as fh:
                    raise RuntimeError("k8s-fake did not start: %s" % fh.read())
            time.sleep(0.05)   # start-up only: the port file is the readiness signal
        with open(pf) as fh:
            self.port = int(fh.read())
        self.tls = tls

    def conn(self, timeout=60):
        if self.tls:
            ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.crt"))
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        if not os.environ.get("K8S_FAKE_KEEP"):   # K8S_FAKE_KEEP=1 keeps fake.log and state.jsonl
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class Api:
    def __init__(self, fake, token=TOKEN):
        self.fake = fake
        self.token = token

    def req(self, method, path, body=None, query=None, ctype="application/json", headers=None, raw=False,
            timeout=60):
        c = self.fake.conn(timeout)
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = ctype
        c.request(method, url, body=data, headers=h)
        r = c.getresponse()
        if raw:
            return r, c
        payload = r.read()
        c.close()
        try:
            obj = json.loads(payload) if payload else None
        except ValueError:
            obj = payload
        return r.status, obj, r

    def ok(self, method, path, body=None, query=None, want=(200, 201)):
        st, obj, _ = self.req(method, path, body, query)
        if st not in want:
            raise AssertionError("%s %s -> %d %s" % (method, path, st, obj))
        return obj

    def wait(self, path, pred, timeout=60, query=None):
        """Watch path (a collection) until pred(object) is true; -> that object."""
        q = dict(query or {})
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            lst = self.ok("GET", path, query={k: v for k, v in q.items()})
            for o in lst["items"]:
                if pred(o):
                    return o
                last = o
            q2 = dict(q, watch="1", resourceVersion=lst["metadata"]["resourceVersion"],
                      timeoutSeconds=str(max(1, int(deadline - time.time()))))
            r, c = self.req("GET", path, query=q2, raw=True, timeout=timeout + 10)
            try:
                while True:
                    line = r.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev["type"] in ("ADDED", "MODIFIED") and pred(ev["object"]):
                        return ev["object"]
                    last = ev["object"]
            finally:
                c.close()
        raise AssertionError("condition not reached on %s within %ss; last: %s" % (path, timeout,
                                                                                   json.dumps(last)[:1500]))

    def wait_gone(self, path, name, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, obj, _ = self.req("GET", "%s/%s" % (path, name))
            if st == 404:
                return
            q = {"watch": "1", "fieldSelector": "metadata.name=" + name,
                 "resourceVersion": obj["metadata"]["resourceVersion"],
                 "timeoutSeconds": str(max(1, int(deadline - time.time())))}
            r, c = self.req("GET", path, query=q, raw=True, timeout=timeout + 10)
            try:
                while True:
                    line = r.readline()
                    if not line:
                        break
                    if json.loads(line)["type"] == "DELETED":
                        return
            finally:
                c.close()
        raise AssertionError("%s/%s still there after %ss" % (path, name, timeout))


JOBS = "/apis/batch/v1/namespaces/%s/jobs" % NS
PODS = "/api/v1/namespaces/%s/pods" % NS
SECRETS = "/api/v1/namespaces/%s/secrets" % NS
CMS = "/api/v1/namespaces/%s/configmaps" % NS
EVENTS = "/api/v1/namespaces/%s/events" % NS


def warning(r):
    """The text of a response's Warning header (299 - "quoted text")."""
    h = r.getheader("Warning") or ""
    return json.loads(h[len("299 - "):]) if h.startswith("299 - ") else h


def cond(o, type_):
    return next((c for c in (o.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def finished(o):
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
               for c in (o.get("status") or {}).get("conditions") or [])


def terminated(p):
    cs = (p.get("status") or {}).get("containerStatuses") or []
    return bool(cs) and "terminated" in cs[0]["state"]


def waiting_reason(p):
    cs = (p.get("status") or {}).get("containerStatuses") or []
    return ((cs[0]["state"].get("waiting") or {}).get("reason")) if cs else None


class T(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = Fake("--token", TOKEN, "--forbid", "delete:configmaps", "--job-backoff", "0.2",
                        "--image-pull-backoff", "0.6", "--sync-period", "0.3", "--history", "60",
                        "--bookmark-interval", "0.5", "--priority-class", "selftest-low",
                        "--node-label", "sx-selftest/role=scripts")
        cls.api = Api(cls.fake)

    @classmethod
    def tearDownClass(cls):
        rc = cls.fake.stop()
        left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=" + cls.fake.label],
                              capture_output=True, text=True).stdout.split()
        assert rc == 0, "k8s-fake exited %d" % rc
        assert not left, "containers left behind: %s" % left

    def setUp(self):
        self.api.req("DELETE", "/_fake/faults")

    def job_pod(self, name, pred=lambda p: True, timeout=60):
        return self.api.wait(PODS, pred, timeout, query={"labelSelector": "job-name=" + name})

    def logs(self, pod, **q):
        st, body, _ = self.api.req("GET", "%s/%s/log" % (PODS, pod), query=q or None)
        self.assertEqual(st, 200, body)
        return body.decode() if isinstance(body, bytes) else json.dumps(body)

    # ---------------------------------------------------------- Status objects
    def test_invalid_job_is_422_with_causes(self):
        j = job("bad-job", "true")
        j["spec"]["template"]["spec"]["containers"][0]["name"] = "Bad_Name"
        del j["spec"]["template"]["spec"]["restartPolicy"]
        st, obj, _ = self.api.req("POST", JOBS, j)
        self.assertEqual(st, 422)
        self.assertEqual((obj["kind"], obj["apiVersion"], obj["status"], obj["reason"], obj["code"]),
                         ("Status", "v1", "Failure", "Invalid", 422))
        self.assertTrue(obj["message"].startswith('Job.batch "bad-job" is invalid: '), obj["message"])
        fields = {c["field"] for c in obj["details"]["causes"]}
        self.assertIn("spec.template.spec.containers[0].name", fields)
        self.assertIn("spec.template.spec.restartPolicy", fields)
        self.assertEqual(obj["details"]["group"], "batch")
        self.assertEqual(obj["details"]["kind"], "Job")

    def test_wrong_type_is_400_and_unknown_field_strict_or_warn(self):
        j = job("typed-job", "true")
        j["spec"]["backoffLimit"] = "three"
        st, obj, _ = self.api.req("POST", JOBS, j)
        self.assertEqual((st, obj["reason"]), (400, "BadRequest"))
        j = job("unknown-field-job", "true")
        j["spec"]["template"]["spec"]["containers"][0]["timeoutSeconds"] = 5
        st, obj, _ = self.api.req("POST", JOBS, j, query={"fieldValidation": "Strict"})
        self.assertEqual((st, obj["reason"]), (400, "BadRequest"))
        self.assertIn('strict decoding error: unknown field "spec.template.spec.containers[0].timeoutSeconds"',
                      obj["message"])
        st, obj, r = self.api.req("POST", JOBS, j, query={"dryRun": "All"})
        self.assertEqual(st, 201, obj)
        self.assertEqual(warning(r), 'unknown field "spec.template.spec.containers[0].timeoutSeconds"')
        self.assertNotIn("timeoutSeconds", obj["spec"]["template"]["spec"]["containers"][0])

    def test_duplicate_is_409_and_missing_is_404(self):
        s = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dup-secret"}, "stringData": {"a": "b"}}
        self.api.ok("POST", SECRETS, s)
        st, obj, _ = self.api.req("POST", SECRETS, s)
        self.assertEqual((st, obj["reason"], obj["code"]), (409, "AlreadyExists", 409))
        self.assertEqual(obj["message"], 'secrets "dup-secret" already exists')
        self.assertEqual(obj["details"], {"name": "dup-secret", "kind": "secrets"})
        st, obj, _ = self.api.req("GET", JOBS + "/no-such-job")
        self.assertEqual((st, obj["reason"], obj["message"]), (404, "NotFound", 'jobs.batch "no-such-job" not found'))
        self.assertEqual(obj["details"], {"name": "no-such-job", "group": "batch", "kind": "jobs"})
        st, obj, _ = self.api.req("POST", "/api/v1/namespaces/no-such-ns/secrets", s)
        self.assertEqual((st, obj["message"]), (404, 'namespaces "no-such-ns" not found'))

    def test_auth_401_and_403(self):
        st, obj, _ = Api(self.fake, token="wrong").req("GET", JOBS)
        self.assertEqual((st, obj["kind"], obj["reason"]), (401, "Status", "Unauthorized"))
        st, obj, _ = Api(self.fake, token=None).req("GET", JOBS)
        self.assertEqual((st, obj["reason"]), (403, "Forbidden"))
        self.assertIn('User "system:anonymous" cannot list resource "jobs" in API group "batch"', obj["message"])
        st, _, _ = Api(self.fake, token=None).req("GET", "/version")
        self.assertEqual(st, 200)
        self.api.ok("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep-me"}})
        st, obj, _ = self.api.req("DELETE", CMS + "/keep-me")
        self.assertEqual((st, obj["reason"]), (403, "Forbidden"))
        self.assertEqual(obj["message"], 'configmaps "keep-me" is forbidden: User "k8s-fake-user" cannot delete '
                         'resource "configmaps" in API group "" in the namespace "%s"' % NS)
        self.api.ok("POST", "/_fake/faults", {"forbid": ["create:jobs"]})
        st, obj, _ = self.api.req("POST", JOBS, job("forbidden-job", "true"))
        self.assertEqual((st, obj["reason"]), (403, "Forbidden"))
        st, _, _ = self.api.req("DELETE", CMS + "/keep-me")
        self.assertEqual(st, 200)

    def test_generate_name_and_resource_versions(self):
        a = self.api.ok("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"generateName": "gen-"}, "data": {"k": "dg=="}})
        self.assertRegex(a["metadata"]["name"], r"^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$")
        self.assertEqual(a["type"], "Opaque")
        b = self.api.ok("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"generateName": "gen-"}, "data": {"k": "dg=="}})
        self.assertNotEqual(a["metadata"]["name"], b["metadata"]["name"])
        self.assertGreater(int(b["metadata"]["resourceVersion"]), int(a["metadata"]["resourceVersion"]))
        p = self.api.req("PATCH", SECRETS + "/" + a["metadata"]["name"], {"metadata": {"labels": {"x": "y"}}},
                         ctype="application/merge-patch+json")
        self.assertEqual(p[0], 200)
        self.assertGreater(int(p[1]["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"]))
        stale = dict(a, metadata=dict(a["metadata"]))
        st, obj, _ = self.api.req("PUT", SECRETS + "/" + a["metadata"]["name"], stale)
        self.assertEqual((st, obj["reason"]), (409, "Conflict"))
        st, obj, _ = self.api.req("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                                    "metadata": {"name": "bad-b64"}, "data": {"k": "!!"}})
        self.assertEqual((st, obj["reason"]), (400, "BadRequest"))

    # ---------------------------------------------------------- watches
    def test_watch_events_bookmark_timeout_and_410(self):
        lst = self.api.ok("GET", CMS)
        rv0 = lst["metadata"]["resourceVersion"]
        self.api.ok("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1",
                                                                                          "labels": {"w": "1"}}})
        self.api.req("PATCH", CMS + "/w1", {"data": {"a": "b"}}, ctype="application/merge-patch+json")
        self.api.ok("POST", "/_fake/faults", {"forbid": []})
        self.api.ok("DELETE", CMS + "/w1")
        t0 = time.time()
        r, c = self.api.req("GET", CMS, query={"watch": "1", "resourceVersion": rv0, "labelSelector": "w=1",
                                               "timeoutSeconds": "2", "allowWatchBookmarks": "true"}, raw=True)
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        evs = [json.loads(line) for line in r.read().splitlines()]
        c.close()
        self.assertGreaterEqual(time.time() - t0, 1.5)
        types = [e["type"] for e in evs if e["type"] != "BOOKMARK"]
        self.assertEqual(types, ["ADDED", "MODIFIED", "DELETED"])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs if e["type"] != "BOOKMARK"]
        self.assertEqual(rvs, sorted(rvs))
        self.assertIn("BOOKMARK", [e["type"] for e in evs])
        # the fault: the next watch with a resourceVersion gets 410 Expired as an ERROR event
        self.api.ok("POST", "/_fake/faults", {"expire_rv": True})
        r, c = self.api.req("GET", CMS, query={"watch": "1", "resourceVersion": rv0, "timeoutSeconds": "5"}, raw=True)
        evs = [json.loads(line) for line in r.read().splitlines()]
        c.close()
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["type"], "ERROR")
        self.assertEqual((evs[0]["object"]["code"], evs[0]["object"]["reason"]), (410, "Expired"))
        # a resourceVersion older than the history (60 events) is too old by itself
        for i in range(70):
            self.api.ok("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fill-%d" % i}})
        r, c = self.api.req("GET", CMS, query={"watch": "1", "resourceVersion": rv0, "timeoutSeconds": "5"}, raw=True)
        evs = [json.loads(line) for line in r.read().splitlines()]
        c.close()
        self.assertEqual([(e["type"], e["object"]["code"]) for e in evs], [("ERROR", 410)])
        st, obj, _ = self.api.req("GET", CMS, query={"resourceVersion": rv0, "resourceVersionMatch": "Exact"})
        self.assertEqual((st, obj["reason"]), (410, "Expired"))

    def test_fault_drop_watch(self):
        for n in ("drop-1", "drop-2"):
            self.api.ok("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}})
        self.api.ok("POST", "/_fake/faults", {"drop_watch_after": 1, "drop_watch_count": 1})
        r, c = self.api.req("GET", CMS, query={"watch": "1", "timeoutSeconds": "10"}, raw=True)
        first = r.readline()
        self.assertEqual(json.loads(first)["type"], "ADDED")
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ValueError, OSError)):
            rest = r.read()
            if not rest:
                raise http.client.IncompleteRead(b"")
        c.close()
        r, c = self.api.req("GET", CMS, query={"watch": "1", "timeoutSeconds": "1"}, raw=True)
        self.assertGreater(len(r.read().splitlines()), 1)   # the next watch is whole again
        c.close()

    # ---------------------------------------------------------- jobs and pods
    def test_job_success_logs_separated(self):
        self.api.ok("POST", JOBS, job("ok-job", "echo out1; echo err1 >&2; echo out2; exit 0"))
        j = self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "ok-job" and finished(o))
        self.assertEqual(cond(j, "Complete")["status"], "True")
        self.assertEqual(j["status"]["succeeded"], 1)
        p = self.job_pod("ok-job", terminated)
        t = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((t["exitCode"], t["reason"], p["status"]["phase"]), (0, "Completed", "Succeeded"))
        self.assertTrue(t["containerID"].startswith("docker://"))
        name = p["metadata"]["name"]
        self.assertTrue(name.startswith("ok-job-"))
        self.assertEqual(self.logs(name, stream="Stdout"), "out1\nout2\n")
        self.assertEqual(self.logs(name, stream="Stderr"), "err1\n")
        self.assertEqual(sorted(self.logs(name).splitlines()), ["err1", "out1", "out2"])
        self.assertRegex(self.logs(name, timestamps="true", stream="Stderr"), r"^\d{4}-\d\d-\d\dT[0-9:.]+Z err1\n$")
        self.api.ok("POST", "/_fake/faults", {"no_log_stream_param": True})
        self.assertEqual(sorted(self.logs(name, stream="Stderr").splitlines()), ["err1", "out1", "out2"])

    def test_job_failure_exit_code(self):
        self.api.ok("POST", JOBS, job("exit7-job", "echo bye; exit 7"))
        j = self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "exit7-job" and finished(o))
        self.assertEqual(cond(j, "Failed")["reason"], "BackoffLimitExceeded")
        p = self.job_pod("exit7-job", terminated)
        t = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((t["exitCode"], t["reason"], p["status"]["phase"]), (7, "Error", "Failed"))

    def test_share_process_namespace_pid1(self):
        # without it the script is PID 1 and survives `kill -9 $$`, as in a
        # real container; with it (pause is PID 1) the signal kills it: 137
        script = "echo pid=$$$$; kill -9 $$$$; echo survived; exit 4"   # $$ -> $ ($(VAR) rules)
        self.api.ok("POST", JOBS, job("pid1-job", script))
        self.api.ok("POST", JOBS, job("shared-pid-job", script, extra_pod={"shareProcessNamespace": True}))
        codes = {}
        for name in ("pid1-job", "shared-pid-job"):
            p = self.job_pod(name, terminated)
            codes[name] = p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
            log = self.logs(p["metadata"]["name"])
            self.assertEqual(log.startswith("pid=1\n"), name == "pid1-job", log)
        self.assertEqual(codes, {"pid1-job": 4, "shared-pid-job": 137})

    def test_backoff_limit_retries(self):
        self.api.ok("POST", JOBS, job("retry-job", "exit 1", backoff=2))
        j = self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "retry-job" and finished(o), timeout=90)
        self.assertEqual((j["status"]["failed"], cond(j, "Failed")["reason"]), (3, "BackoffLimitExceeded"))
        pods = self.api.ok("GET", PODS, query={"labelSelector": "job-name=retry-job"})["items"]
        self.assertEqual(len(pods), 3)

    def test_active_deadline(self):
        t0 = time.time()
        self.api.ok("POST", JOBS, job("deadline-job", "sleep 60", extra_spec={"activeDeadlineSeconds": 2}))
        j = self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "deadline-job" and finished(o), timeout=40)
        self.assertEqual(cond(j, "Failed")["reason"], "DeadlineExceeded")
        self.assertLess(time.time() - t0, 30)
        pods = self.api.ok("GET", PODS, query={"labelSelector": "job-name=deadline-job"})["items"]
        for p in pods:   # deleted by the controller: gone or terminating, container stopped
            self.api.wait_gone(PODS, p["metadata"]["name"], 30)
        # pod-level deadline: reason DeadlineExceeded on the pod
        self.api.ok("POST", JOBS, job("pod-deadline-job", "sleep 60",
                                      extra_pod={"activeDeadlineSeconds": 1}))
        p = self.job_pod("pod-deadline-job", lambda p: p["status"].get("phase") == "Failed", 40)
        self.assertEqual(p["status"]["reason"], "DeadlineExceeded")

    def test_secret_env_and_volume_reach_container(self):
        self.api.ok("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sv-secret"},
                                      "stringData": {"token": "s3cr3t", "other": "x", "1bad": "skipped"}})
        self.api.ok("POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sv-cm"},
                                  "data": {"LEVEL": "debug"}})
        script = ('echo "env=$API_TOKEN $CFG_LEVEL $GREETING $other"; cat /etc/sec/tok; echo; stat -c "%a %u %g" '
                  '/etc/sec/tok; ls /etc/sec; id -u; touch /workspace/w && echo ws-ok; touch /rootfs 2>/dev/null '
                  '|| echo ro-ok; pwd')
        j = job("sv-job", script,
                extra_pod={"securityContext": dict(POD_SEC, fsGroup=2000),
                           "volumes": [{"name": "sec", "secret": {"secretName": "sv-secret", "defaultMode": 0o400,
                                                                  "items": [{"key": "token", "path": "tok"}]}},
                                       {"name": "ws", "emptyDir": {}}]},
                extra_container={"env": [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "sv-secret",
                                                                                               "key": "token"}}},
                                         {"name": "GREETING", "value": "hi-$(API_TOKEN)"}],
                                 "envFrom": [{"configMapRef": {"name": "sv-cm"}, "prefix": "CFG_"},
                                             {"secretRef": {"name": "sv-secret"}}],
                                 "workingDir": "/workspace",
                                 "volumeMounts": [{"name": "sec", "mountPath": "/etc/sec"},
                                                  {"name": "ws", "mountPath": "/workspace"}]})
        self.api.ok("POST", JOBS, j)
        p = self.job_pod("sv-job", terminated)
        out = self.logs(p["metadata"]["name"])
        self.assertEqual(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0, out)
        self.assertEqual(out.splitlines(), ["env=s3cr3t debug hi-s3cr3t x", "s3cr3t", "440 0 2000", "tok", "65534",
                                            "ws-ok", "ro-ok", "/workspace"])
        evs = self.api.ok("GET", EVENTS, query={"fieldSelector": "involvedObject.name=" + p["metadata"]["name"]})
        self.assertIn("InvalidEnvironmentVariableNames", [e["reason"] for e in evs["items"]])

    def test_fault_missing_secret_env_and_volume(self):
        self.api.ok("POST", JOBS, job("ms-env-job", "echo $X", extra_container={
            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "ms-later", "key": "x"}}}]}))
        p = self.job_pod("ms-env-job", lambda p: waiting_reason(p) == "CreateContainerConfigError")
        self.assertEqual(p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
                         'secret "ms-later" not found')
        self.assertEqual(p["status"]["phase"], "Pending")
        st, obj, _ = self.api.req("GET", "%s/%s/log" % (PODS, p["metadata"]["name"]))
        self.assertEqual((st, obj["message"]), (400, 'container "script" in pod "%s" is waiting to start: '
                                                     'CreateContainerConfigError' % p["metadata"]["name"]))
        self.api.ok("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ms-later"},
                                      "stringData": {"x": "late"}})
        p = self.job_pod("ms-env-job", terminated)
        self.assertEqual(self.logs(p["metadata"]["name"]), "late\n")
        # the fault hides an existing secret from the kubelet; as a volume: FailedMount, ContainerCreating
        self.api.ok("POST", "/_fake/faults", {"missing_secret": "ms-later"})
        self.api.ok("POST", JOBS, job("ms-vol-job", "cat /s/x", extra_pod={
            "volumes": [{"name": "s", "secret": {"secretName": "ms-later"}}]},
            extra_container={"volumeMounts": [{"name": "s", "mountPath": "/s"}]}))
        p = self.job_pod("ms-vol-job", lambda p: p["spec"].get("nodeName"))
        ev = self.api.wait(EVENTS, lambda e: e["reason"] == "FailedMount",
                           query={"fieldSelector": "involvedObject.name=" + p["metadata"]["name"]})
        self.assertEqual(ev["message"], 'MountVolume.SetUp failed for volume "s" : secret "ms-later" not found')
        self.assertEqual(waiting_reason(self.api.ok("GET", PODS + "/" + p["metadata"]["name"])), "ContainerCreating")
        self.api.ok("DELETE", "/_fake/faults")
        p = self.job_pod("ms-vol-job", terminated)
        self.assertEqual(self.logs(p["metadata"]["name"]), "late")

    def test_fault_image_pull(self):
        self.api.ok("POST", "/_fake/faults", {"image_pull_fail": "sx-test/minimal*"})
        self.api.ok("POST", JOBS, job("pull-job", "echo pulled"))
        p = self.job_pod("pull-job", lambda p: waiting_reason(p) == "ErrImagePull")
        self.assertIn("image_pull_fail", p["status"]["containerStatuses"][0]["state"]["waiting"]["message"])
        self.job_pod("pull-job", lambda p: waiting_reason(p) == "ImagePullBackOff")
        self.assertNotIn("conditions", self.api.ok("GET", JOBS + "/pull-job")["status"])
        self.api.ok("DELETE", "/_fake/faults")
        p = self.job_pod("pull-job", terminated)
        self.assertEqual(self.logs(p["metadata"]["name"]), "pulled\n")

    def test_fault_unschedulable_and_node_selector(self):
        self.api.ok("POST", "/_fake/faults", {"unschedulable": True})
        self.api.ok("POST", JOBS, job("unsched-job", "true"))
        p = self.job_pod("unsched-job", lambda p: (cond(p, "PodScheduled") or {}).get("reason") == "Unschedulable")
        self.assertEqual(p["status"]["phase"], "Pending")
        self.assertNotIn("nodeName", p["spec"])
        self.api.ok("DELETE", "/_fake/faults")
        self.job_pod("unsched-job", terminated)
        self.api.ok("POST", JOBS, job("selector-job", "true", extra_pod={"nodeSelector": {"disk": "ssd"}}))
        p = self.job_pod("selector-job", lambda p: (cond(p, "PodScheduled") or {}).get("reason") == "Unschedulable")
        self.assertIn("didn't match Pod's node affinity/selector", cond(p, "PodScheduled")["message"])
        self.api.ok("POST", JOBS, job("selector2-job", "true", extra_pod={
            "nodeSelector": {"sx-selftest/role": "scripts"}, "priorityClassName": "selftest-low"}))
        self.job_pod("selector2-job", terminated)

    def test_fault_evict(self):
        self.api.ok("POST", "/_fake/faults", {"evict_pod": "evict-job-*"})
        self.api.ok("POST", JOBS, job("evict-job", "sleep 60"))
        p = self.job_pod("evict-job", lambda p: p["status"].get("phase") == "Failed", 40)
        self.assertEqual(p["status"]["reason"], "Evicted")
        self.assertEqual(cond(p, "DisruptionTarget")["reason"], "TerminationByKubelet")
        j = self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "evict-job" and finished(o))
        self.assertEqual(cond(j, "Failed")["reason"], "BackoffLimitExceeded")

    def test_fail_requests_fault(self):
        self.api.ok("POST", "/_fake/faults", {"fail_requests": [{"method": "GET", "path": "*/secrets",
                                                                 "code": 503, "count": 1}]})
        st, obj, r = self.api.req("GET", SECRETS)
        self.assertEqual((st, obj["reason"], r.getheader("Retry-After")), (503, "ServiceUnavailable", "1"))
        st, _, _ = self.api.req("GET", SECRETS)
        self.assertEqual(st, 200)

    def test_log_follow_streams_until_exit(self):
        self.api.ok("POST", JOBS, job("follow-job", "echo first; sleep 2; echo second"))
        p = self.job_pod("follow-job", lambda p: "running" in ((p["status"].get("containerStatuses") or [{}])[0]
                                                               .get("state") or {}) or terminated(p))
        t0 = time.time()
        r, c = self.api.req("GET", "%s/%s/log" % (PODS, p["metadata"]["name"]), query={"follow": "true"}, raw=True)
        first = r.readline()
        body = first + r.read()
        c.close()
        self.assertEqual(body, b"first\nsecond\n")
        self.assertGreater(time.time() - t0, 0.5)
        # the log ends when the container exits; the kubelet reports the
        # terminated state a moment later (as a real one does)
        name = p["metadata"]["name"]
        deadline = time.time() + 10
        p = self.api.ok("GET", PODS + "/" + name)
        while not terminated(p) and time.time() < deadline:
            time.sleep(0.05)
            p = self.api.ok("GET", PODS + "/" + name)
        self.assertTrue(terminated(p))

    def test_delete_background_gc_and_orphan(self):
        j = self.api.ok("POST", JOBS, job("gc-job", "sleep 60"))
        self.api.ok("POST", SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "gc-job-stdin", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "gc-job",
                                                         "uid": j["metadata"]["uid"]}]}, "stringData": {"a": "b"}})
        p = self.job_pod("gc-job", lambda p: p["status"].get("phase") == "Running")
        cid = p["status"]["containerStatuses"][0]["containerID"][len("docker://"):]
        st, obj, _ = self.api.req("DELETE", JOBS + "/gc-job", query={"propagationPolicy": "Background"})
        self.assertEqual((st, obj["kind"], obj["status"]), (200, "Status", "Success"))
        self.api.wait_gone(SECRETS, "gc-job-stdin", 30)
        self.api.wait_gone(PODS, p["metadata"]["name"], 30)
        running = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", "id=" + cid],
                                 capture_output=True, text=True).stdout.split()
        self.assertEqual(running, [])
        # default for batch/v1 Jobs: orphan the pods, with a warning
        self.api.ok("POST", JOBS, job("orphan-job", "sleep 60"))
        p = self.job_pod("orphan-job", lambda p: p["status"].get("phase") == "Running")
        st, obj, r = self.api.req("DELETE", JOBS + "/orphan-job")
        self.assertEqual(st, 200)
        self.assertIn("child pods are preserved by default", warning(r))
        p = self.api.wait(PODS, lambda o: o["metadata"]["name"] == p["metadata"]["name"] and
                          not o["metadata"].get("ownerReferences") and not o["metadata"].get("finalizers"))
        self.assertEqual(p["status"]["phase"], "Running")
        self.api.ok("DELETE", PODS + "/" + p["metadata"]["name"], query={"gracePeriodSeconds": "0"})
        self.api.wait_gone(PODS, p["metadata"]["name"], 30)

    def test_ttl_after_finished(self):
        self.api.ok("POST", JOBS, job("ttl-job", "true", extra_spec={"ttlSecondsAfterFinished": 1}))
        self.api.wait(JOBS, lambda o: o["metadata"]["name"] == "ttl-job" and finished(o))
        self.api.wait_gone(JOBS, "ttl-job", 30)
        self.assertEqual(self.api.ok("GET", PODS, query={"labelSelector": "job-name=ttl-job"})["items"], [])

    def test_pod_security_enforced_on_pods(self):
        j = job("pss-job", "true")
        del j["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        st, obj, r = self.api.req("POST", JOBS, j)
        self.assertEqual(st, 201)
        self.assertIn('would violate PodSecurity "restricted:latest"', warning(r))
        ev = self.api.wait(EVENTS, lambda e: e["reason"] == "FailedCreate",
                           query={"fieldSelector": "involvedObject.name=pss-job"})
        self.assertIn('violates PodSecurity "restricted:latest"', ev["message"])
        self.assertEqual(self.api.ok("GET", PODS, query={"labelSelector": "job-name=pss-job"})["items"], [])

    def test_metrics_and_stats(self):
        self.api.ok("DELETE", "/_fake/stats")
        self.api.ok("GET", JOBS)
        self.api.ok("GET", JOBS)
        st = self.api.ok("GET", "/_fake/stats")
        self.assertEqual(st["requests"], {"list /apis/batch/v1/namespaces/{namespace}/jobs": 2})
        self.assertEqual(st["total"], 2)
        self.api.ok("POST", JOBS, job("metrics-job", "sleep 30"))
        p = self.job_pod("metrics-job", lambda p: p["status"].get("phase") == "Running")
        m = self.api.ok("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods/%s" % (NS, p["metadata"]["name"]))
        self.assertEqual(m["kind"], "PodMetrics")
        self.assertRegex(m["containers"][0]["usage"]["memory"], r"^\d+Ki$")
        self.api.ok("DELETE", JOBS + "/metrics-job", query={"propagationPolicy": "Background"})


class TlsAndKubeconfig(unittest.TestCase):
    def test_tls_token_kubeconfig(self):
        fake = Fake("--token", TOKEN, tls=True)
        try:
            with open(os.path.join(fake.dir, "kubeconfig")) as fh:
                kc = fh.read()
            self.assertIn("server: https://127.0.0.1:%d" % fake.port, kc)
            self.assertIn("certificate-authority-data: ", kc)
            self.assertIn("token: " + TOKEN, kc)
            self.assertIn("namespace: " + NS, kc)
            st, obj, _ = Api(fake).req("GET", "/api/v1/namespaces/" + NS)
            self.assertEqual((st, obj["status"]["phase"]), (200, "Active"))
            with self.assertRaises(ssl.SSLError):
                http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=10,
                                            context=ssl.create_default_context()).request("GET", "/version")
        finally:
            self.assertEqual(fake.stop(), 0)

    def test_client_certificate_auth(self):
        fake = Fake("--client-cert-auth", tls=True)
        try:
            tls = os.path.join(fake.dir, "tls")
            with open(os.path.join(fake.dir, "kubeconfig")) as fh:
                kc = fh.read()
            self.assertIn("client-certificate-data: ", kc)
            self.assertNotIn("token:", kc)
            ctx = ssl.create_default_context(cafile=os.path.join(tls, "ca.crt"))
            ctx.load_cert_chain(os.path.join(tls, "client.crt"), os.path.join(tls, "client.key"))
            c = http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=30, context=ctx)
            c.request("GET", "/apis/batch/v1/namespaces/%s/jobs" % NS)
            r = c.getresponse()
            self.assertEqual((r.status, json.loads(r.read())["kind"]), (200, "JobList"))
            c.close()
            st, obj, _ = Api(fake, token=None).req("GET", "/apis/batch/v1/namespaces/%s/jobs" % NS)
            self.assertEqual((st, obj["reason"]), (403, "Forbidden"))
        finally:
            self.assertEqual(fake.stop(), 0)


if __name__ == "__main__":
    out = unittest.main(exit=False, verbosity=2).result
    n, bad = out.testsRun, len(out.failures) + len(out.errors)
    print("%d passed, %d failed" % (n - bad, bad))
    sys.exit(1 if bad or n == 0 else 0)
