"""The single node: a scheduler that binds Pods to it and a kubelet that runs each Pod's containers
as Docker containers, reports their status as the real kubelet does, and keeps their logs."""

import base64
import calendar
import copy
import json
import math
import os
import queue
import re
import shutil
import threading
import time

import validate_job as vj
from docker_engine import EngineError, registry_of
from resources import CONFIGMAPS, PODS, SECRETS
from store import now_rfc3339

TERMINAL = ("Succeeded", "Failed")


def docker_time(s):
    """Docker's RFC 3339 nano time -> (seconds-precision RFC 3339 string, float epoch)."""
    if not s or s.startswith("0001-"):
        return None, 0.0
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", s)
    if not m:
        return now_rfc3339(), time.time()
    secs = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    frac = float(m.group(7) or 0)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs)), secs + frac


def expand(s, env):
    """Kubernetes $(VAR) expansion (third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            n = s[i + 1]
            if n == "$":
                out.append("$")
                i += 2
                continue
            if n == "(":
                j = s.find(")", i + 2)
                if j != -1:
                    name = s[i + 2:j]
                    out.append(env[name] if name in env else "$(" + name + ")")
                    i = j + 1
                    continue
            out.append("$" + n)
            i += 2
            continue
        out.append(s[i])
        i += 1
    return "".join(out)


class ConfigError(Exception):
    """CreateContainerConfigError / FailedMount / image trouble, with the kubelet's message."""


class LogBuffer:
    """One container instance's output: entries (timestamp string, epoch, stream, bytes)."""

    def __init__(self):
        self.entries = []
        self.done = False
        self.cond = threading.Condition()

    def add_frame(self, stream, payload):
        sp = payload.find(b" ")
        ts = payload[:sp].decode("ascii", "replace") if sp > 0 else ""
        data = payload[sp + 1:] if sp > 0 else payload
        _, t = docker_time(ts)
        with self.cond:
            self.entries.append((ts, t, stream, data))
            self.cond.notify_all()

    def finish(self):
        with self.cond:
            self.done = True
            self.cond.notify_all()


class CState:
    """One container of a Pod, as the kubelet tracks it."""

    def __init__(self, spec, init=False):
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.cid = None
        self.state = {"waiting": {"reason": "PodInitializing" if not init else "ContainerCreating"}}
        self.last_state = {}
        self.restarts = 0
        self.ready = False
        self.started = False
        self.image_id = ""
        self.logs = []             # LogBuffer per run; [-1] is the current one
        self.exit_code = None

    def status(self):
        st = {"name": self.name, "image": self.spec.get("image"), "imageID": self.image_id,
              "ready": self.ready, "restartCount": self.restarts, "started": self.started,
              "state": copy.deepcopy(self.state), "lastState": copy.deepcopy(self.last_state)}
        if self.cid:
            st["containerID"] = "docker://" + self.cid
        return st


class PodWorker:
    def __init__(self, kubelet, pod):
        self.k = kubelet
        md = pod["metadata"]
        self.ns, self.name, self.uid = md["namespace"], md["name"], md["uid"]
        self.pod = pod
        self.spec = pod["spec"]
        self.stop = threading.Event()
        self.stop_reason = None
        self.stop_grace = 0
        self.lock = threading.RLock()
        self.init_cs = [CState(c, True) for c in self.spec.get("initContainers") or []]
        self.cs = [CState(c) for c in self.spec.get("containers") or []]
        if not self.init_cs:
            for c in self.cs:
                c.state = {"waiting": {"reason": "ContainerCreating"}}
        self.phase = "Pending"
        self.reason = None
        self.message = None
        self.start_time = now_rfc3339()
        self.start_epoch = time.time()
        self.conditions = {}
        self.pod_ip = None
        self.dir = os.path.join(kubelet.work_dir, "pods", self.uid)
        self.volumes = {}          # name -> host dir
        self.thread = threading.Thread(target=self.run, name="pod-%s" % self.name, daemon=True)
        self.finished = threading.Event()
        self.eviction_checked = False

    # ------------------------------------------------------------ status
    def _cond(self, type_, status, reason=None, message=None):
        old = self.conditions.get(type_)
        if old and old["status"] == status and old.get("reason") == reason:
            return
        c = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        self.conditions[type_] = c

    def publish(self):
        with self.lock:
            all_cs = self.init_cs + self.cs
            init_done = all("terminated" in c.state and c.state["terminated"].get("exitCode") == 0
                            for c in self.init_cs)
            self._cond("Initialized", "True" if init_done else "False",
                       None if init_done else "ContainersNotInitialized",
                       None if init_done else "containers with incomplete status: [%s]" % " ".join(
                           c.name for c in self.init_cs if "terminated" not in c.state))
            ready = bool(self.cs) and all(c.ready for c in self.cs) and self.phase == "Running"
            if ready:
                self._cond("ContainersReady", "True")
                self._cond("Ready", "True")
            else:
                notready = [c.name for c in self.cs if not c.ready]
                why = "PodCompleted" if self.phase in TERMINAL else "ContainersNotReady"
                msg = None if why == "PodCompleted" else "containers with unready status: [%s]" % " ".join(notready)
                self._cond("ContainersReady", "False", why, msg)
                self._cond("Ready", "False", why, msg)
            order = ["DisruptionTarget", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                     "PodScheduled"]
            status = {"phase": self.phase,
                      "conditions": [self.conditions[t] for t in order if t in self.conditions],
                      "hostIP": self.k.host_ip, "hostIPs": [{"ip": self.k.host_ip}],
                      "startTime": self.start_time,
                      "containerStatuses": [c.status() for c in self.cs],
                      "qosClass": self.pod.get("status", {}).get("qosClass", "BestEffort")}
            if self.init_cs:
                status["initContainerStatuses"] = [c.status() for c in self.init_cs]
            if self.pod_ip:
                status["podIP"] = self.pod_ip
                status["podIPs"] = [{"ip": self.pod_ip}]
            if self.reason:
                status["reason"] = self.reason
            if self.message:
                status["message"] = self.message
            del all_cs

        def apply(o):
            keep = [c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"]
            st = copy.deepcopy(status)
            if keep:
                st["conditions"] = [c for c in st["conditions"] if c["type"] != "PodScheduled"] + keep
            o["status"] = st
        self.k.store.mutate(PODS, self.ns, self.name, apply, expect_uid=self.uid)

    def event(self, type_, reason, message):
        self.k.events.record(self.pod, type_, reason, message, "kubelet")

    # ------------------------------------------------------------ control
    def request_stop(self, reason, grace):
        with self.lock:
            if self.stop.is_set():
                if grace < self.stop_grace:
                    self.stop_grace = grace
                    self._kill_all(grace)
                return
            self.stop_reason = reason
            self.stop_grace = grace
            self.stop.set()
            if reason == "evict":
                self.reason = "Evicted"
                self.message = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
                                "(k8s-fake evict_pod fault)")
                self._cond("DisruptionTarget", "True", "TerminationByKubelet", self.message)
            elif reason == "deadline":
                self.reason = "DeadlineExceeded"
                self.message = "Pod was active on the node longer than the specified deadline"
            self._kill_all(grace)
        self.k.wake()

    def _kill_all(self, grace):
        running = [c for c in self.init_cs + self.cs if c.cid and "running" in c.state]
        if not running:
            return
        if self.stop_reason == "delete":
            for c in running:
                self.event("Normal", "Killing", "Stopping container %s" % c.name)

        def stopper(cid):
            try:
                if grace <= 0:
                    self.k.engine.kill(cid)
                else:
                    self.k.engine.stop(cid, grace)
            except EngineError:
                pass
        for c in running:
            threading.Thread(target=stopper, args=(c.cid,), daemon=True).start()

    def wait_or_stop(self, seconds):
        """Sleep up to seconds, waking early on stop or on a config change; True when stopping."""
        self.k.wait_change(seconds, self.stop)
        return self.stop.is_set()

    # ------------------------------------------------------------ the pod's life
    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - report, never kill the server
            self.k.log("pod %s/%s: internal error: %r" % (self.ns, self.name, e))
            with self.lock:
                self.phase = "Failed"
                self.reason = "InternalError"
                self.message = "k8s-fake kubelet error: %s" % e
            self.publish()
        finally:
            self.finished.set()
            self.k.worker_done(self)

    def _run(self):
        self._cond("PodScheduled", "True")
        self._cond("PodReadyToStartContainers", "False")
        self.publish()
        ads = self.spec.get("activeDeadlineSeconds")
        if isinstance(ads, int) and ads > 0:
            threading.Thread(target=self._deadline_watch, args=(self.start_epoch + ads,), daemon=True).start()
        # volumes (FailedMount until they can be set up)
        while not self.stop.is_set():
            try:
                self.setup_volumes()
                break
            except ConfigError as e:
                self.event("Warning", "FailedMount", str(e))
                if self.wait_or_stop(self.k.sync_period):
                    break
        if not self.stop.is_set():
            self._cond("PodReadyToStartContainers", "True")
            self.publish()
        policy = self.spec.get("restartPolicy", "Always")
        for c in self.init_cs:
            if self.stop.is_set():
                break
            while not self.stop.is_set():
                code = self.run_container(c)
                if code == 0 or code is None:
                    break
                if policy == "Never":
                    break
                if self.crash_backoff(c):
                    break
            if c.exit_code != 0:
                break
        init_ok = all(c.exit_code == 0 for c in self.init_cs)
        if init_ok and not self.stop.is_set():
            threads = [threading.Thread(target=self.container_loop, args=(c, policy), daemon=True)
                       for c in self.cs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.finish(init_ok)

    def _deadline_watch(self, at):
        while not self.finished.is_set():
            left = at - time.time()
            if left <= 0:
                if not self.stop.is_set():
                    self.event("Normal", "DeadlineExceeded", "Pod was active on the node longer than the "
                               "specified deadline")
                    self.request_stop("deadline", 0)
                return
            self.finished.wait(min(left, 1.0))

    def container_loop(self, c, policy):
        while not self.stop.is_set():
            code = self.run_container(c)
            if code is None or self.stop.is_set():
                return
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            if self.crash_backoff(c):
                return

    def crash_backoff(self, c):
        delay = min(self.k.crash_backoff * (2 ** max(0, c.restarts - 1)), 300)
        with self.lock:
            c.last_state = {"terminated": c.state.get("terminated", {})}
            c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": "back-off %ds restarting failed container=%s pod=%s_%s(%s)"
                                              % (delay, c.name, self.name, self.ns, self.uid)}}
            c.restarts += 1
            c.ready = False
            c.started = False
            if self.phase != "Running":
                self.phase = "Running" if any("running" in x.state for x in self.cs) else self.phase
        self.event("Warning", "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)"
                   % (c.name, self.name, self.ns, self.uid))
        self.publish()
        end = time.time() + delay
        while time.time() < end:
            if self.wait_or_stop(end - time.time()):
                return True
        return False

    def set_waiting(self, c, reason, message=None):
        with self.lock:
            w = {"reason": reason}
            if message:
                w["message"] = message
            if c.state.get("waiting") == w:
                return False
            c.state = {"waiting": w}
        self.publish()
        return True

    def run_container(self, c):
        """Create, start and wait for one run of container c. -> exit code, or None when stopped first."""
        # image
        backoff = self.k.image_pull_backoff
        while not self.stop.is_set():
            try:
                self.ensure_image(c)
                break
            except ConfigError as e:
                never = str(e).startswith("Container image")
                if never:
                    self.set_waiting(c, "ErrImageNeverPull", str(e))
                    self.event("Warning", "ErrImageNeverPull", str(e))
                    if self.wait_or_stop(self.k.sync_period):
                        return None
                    continue
                self.set_waiting(c, "ErrImagePull", str(e))
                self.event("Warning", "Failed", "Failed to pull image \"%s\": %s" % (c.spec["image"], e))
                self.event("Warning", "Failed", "Error: ErrImagePull")
                if self.wait_or_stop(min(backoff, 300) / 2.0):
                    return None
                msg = "Back-off pulling image \"%s\"" % c.spec["image"]
                self.set_waiting(c, "ImagePullBackOff", msg)
                self.event("Normal", "BackOff", msg)
                self.event("Warning", "Failed", "Error: ImagePullBackOff")
                if self.wait_or_stop(min(backoff, 300) / 2.0):
                    return None
                backoff = min(backoff * 2, 300)
        # config: env, user
        while not self.stop.is_set():
            try:
                config = self.container_config(c)
                break
            except ConfigError as e:
                if self.set_waiting(c, "CreateContainerConfigError", str(e)):
                    self.event("Warning", "Failed", "Error: %s" % e)
                if self.wait_or_stop(self.k.sync_period):
                    return None
        if self.stop.is_set():
            return None
        name = self.k.container_name(self, c)
        try:
            self.k.engine.remove(name)
            cid = self.k.engine.create(name, config)
        except EngineError as e:
            self.set_waiting(c, "CreateContainerError", e.message)
            self.event("Warning", "Failed", "Error: %s" % e.message)
            self.wait_or_stop(self.k.sync_period)
            return None if self.stop.is_set() else self.run_container(c)
        self.k.track_container(cid, self, c)
        buf = LogBuffer()
        with self.lock:
            c.cid = cid
            c.logs.append(buf)
        self.event("Normal", "Created", "Created container %s" % c.name)
        if self.stop.is_set():
            buf.finish()
            return None
        try:
            self.k.engine.start(cid)
        except EngineError as e:
            buf.finish()
            now = now_rfc3339()
            with self.lock:
                c.exit_code = 128
                c.state = {"terminated": {"exitCode": 128, "reason": "StartError", "message": e.message,
                                          "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now,
                                          "containerID": "docker://" + cid}}
            self.event("Warning", "Failed", "Error: %s" % e.message)
            self.publish()
            return 128
        log_thread = threading.Thread(target=self._follow_logs, args=(cid, buf), daemon=True)
        log_thread.start()
        info = self.k.engine.inspect(cid) or {}
        started, _ = docker_time((info.get("State") or {}).get("StartedAt"))
        with self.lock:
            ip = ((info.get("NetworkSettings") or {}).get("IPAddress")) or None
            if ip and not self.pod_ip:
                self.pod_ip = ip
            c.state = {"running": {"startedAt": started or now_rfc3339()}}
            c.started = True
            c.ready = not c.init
            if not c.init:
                self.phase = "Running"
        self.event("Normal", "Started", "Started container %s" % c.name)
        self.publish()
        self.k.check_evict(self)
        if self.stop.is_set():
            self._kill_all(self.stop_grace)
        try:
            code = self.k.engine.wait(cid)
        except EngineError:
            code = None
        info = self.k.engine.inspect(cid) or {}
        st = info.get("State") or {}
        if code is None:
            code = st.get("ExitCode", 137)
        log_thread.join(30)
        self._complete_log(cid, buf)
        buf.finish()
        started, _ = docker_time(st.get("StartedAt"))
        finished, _ = docker_time(st.get("FinishedAt"))
        if st.get("OOMKilled"):
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        with self.lock:
            c.exit_code = code
            c.ready = False
            c.started = False
            c.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started or now_rfc3339(),
                                      "finishedAt": finished or now_rfc3339(), "containerID": "docker://" + cid}}
        self.k.store.log_line({"t": time.time(), "container": "exited", "pod": "%s/%s" % (self.ns, self.name),
                               "name": c.name, "exitCode": code, "reason": reason})
        return code

    def _complete_log(self, cid, buf):
        """The follow stream can end before the engine wrote a last partial line (a docker race):
        read the whole log once more and add what the stream missed (it is a prefix of it)."""
        frames = []
        try:
            self.k.engine.logs_follow(cid, lambda s, p: frames.append((s, p)), follow=False)
        except (EngineError, OSError):
            return
        with buf.cond:
            have = len(buf.entries)
        for s, p in frames[have:]:
            buf.add_frame(s, p)

    def _follow_logs(self, cid, buf):
        try:
            self.k.engine.logs_follow(cid, buf.add_frame)
        except (EngineError, OSError) as e:
            self.k.log("log stream of %s ended: %s" % (cid[:12], e))

    def finish(self, init_ok):
        """The pod's final status."""
        with self.lock:
            for c in self.init_cs + self.cs:
                if "terminated" not in c.state:
                    c.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                              "message": "The container could not be located when the pod "
                                                         "was terminated",
                                              "startedAt": None, "finishedAt": None}}
                    c.exit_code = 137 if c.exit_code is None else c.exit_code
                    c.ready = False
                    c.started = False
            ok = init_ok and all(c.exit_code == 0 for c in self.cs)
            if self.stop_reason in ("evict", "deadline"):
                self.phase = "Failed"
            elif self.stop_reason == "delete":
                self.phase = "Succeeded" if ok else "Failed"
            else:
                self.phase = "Succeeded" if ok else "Failed"
        self.publish()
        self.k.store.log_line({"t": time.time(), "pod": "%s/%s" % (self.ns, self.name), "phase": self.phase,
                               "stop": self.stop_reason})

    # ------------------------------------------------------------ volumes
    def setup_volumes(self):
        os.makedirs(self.dir, exist_ok=True)
        fs_group = (self.spec.get("securityContext") or {}).get("fsGroup")
        for v in self.spec.get("volumes") or []:
            name = v["name"]
            path = os.path.join(self.dir, "volumes", name)
            if "emptyDir" in v:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                if fs_group is not None:
                    os.chown(path, 0, fs_group)
                    os.chmod(path, 0o2777)
            elif "secret" in v or "configMap" in v:
                src = v.get("secret") or v.get("configMap")
                is_secret = "secret" in v
                ref = src.get("secretName") if is_secret else src.get("name")
                data = self.k.lookup_data(SECRETS if is_secret else CONFIGMAPS, self.ns, ref)
                if data is None and not src.get("optional"):
                    raise ConfigError('MountVolume.SetUp failed for volume "%s" : %s "%s" not found'
                                      % (name, "secret" if is_secret else "configmap", ref))
                self.write_files(path, data or {}, src.get("items"), src.get("defaultMode", 420), fs_group,
                                 name, is_secret, src.get("optional"))
            elif "projected" in v:
                pmode = v["projected"].get("defaultMode", 420)
                shutil.rmtree(path, ignore_errors=True)
                for s in v["projected"].get("sources") or []:
                    src = s.get("secret") or s.get("configMap")
                    if src is None:
                        raise ConfigError('MountVolume.SetUp failed for volume "%s" : projected source %s is not '
                                          'supported by k8s-fake' % (name, ",".join(s)))
                    is_secret = "secret" in s
                    data = self.k.lookup_data(SECRETS if is_secret else CONFIGMAPS, self.ns, src.get("name"))
                    if data is None and not src.get("optional"):
                        raise ConfigError('MountVolume.SetUp failed for volume "%s" : %s "%s" not found'
                                          % (name, "secret" if is_secret else "configmap", src.get("name")))
                    self.write_files(path, data or {}, src.get("items"), pmode, fs_group, name, is_secret,
                                     src.get("optional"), clean=False)
                os.makedirs(path, exist_ok=True)
            elif "hostPath" in v:
                path = v["hostPath"].get("path")
            else:
                raise ConfigError('MountVolume.SetUp failed for volume "%s" : volume type %s is not supported by '
                                  'k8s-fake' % (name, ",".join(k for k in v if k != "name")))
            self.volumes[name] = path

    def write_files(self, path, data, items, default_mode, fs_group, vol, is_secret, optional, clean=True):
        if clean:
            shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        entries = []
        if items:
            for it in items:
                if it["key"] not in data:
                    if optional:
                        continue
                    raise ConfigError('MountVolume.SetUp failed for volume "%s" : configmap references '
                                      'non-existent config key: %s' % (vol, it["key"]) if not is_secret else
                                      'MountVolume.SetUp failed for volume "%s" : references non-existent secret '
                                      'key: %s' % (vol, it["key"]))
                entries.append((it["path"], data[it["key"]], it.get("mode", default_mode)))
        else:
            entries = [(k, v, default_mode) for k, v in data.items()]
        for rel, content, mode in entries:
            fp = os.path.join(path, rel)
            os.makedirs(os.path.dirname(fp), exist_ok=True)
            with open(fp, "wb") as fh:
                fh.write(content)
            if fs_group is not None:
                os.chown(fp, 0, fs_group)
                mode |= 0o440
            os.chmod(fp, mode & 0o7777)

    # ------------------------------------------------------------ images
    def ensure_image(self, c):
        image = c.spec["image"]
        policy = c.spec.get("imagePullPolicy", "IfNotPresent")
        if self.k.faults.matches("image_pull_fail", image):
            self.event("Normal", "Pulling", 'Pulling image "%s"' % image)
            raise ConfigError('rpc error: code = NotFound desc = failed to pull and unpack image "%s": failed to '
                              'resolve reference "%s": not found (k8s-fake image_pull_fail fault)' % (image, image))
        info = self.k.engine.image_inspect(image)
        need_pull = info is None or (policy == "Always" and registry_of(image))
        if policy == "Never" and info is None:
            raise ConfigError('Container image "%s" is not present with pull policy of Never' % image)
        if not need_pull:
            c.image_id = "docker-pullable://" + ((info.get("RepoDigests") or [None])[0] or info.get("Id", ""))
            self.event("Normal", "Pulled", 'Container image "%s" already present on machine' % image)
            return
        self.event("Normal", "Pulling", 'Pulling image "%s"' % image)
        t0 = time.time()
        try:
            self.k.engine.pull(image, self.k.pull_auth(self, image))
        except EngineError as e:
            raise ConfigError("rpc error: code = Unknown desc = Error response from daemon: %s" % e.message)
        if info is None:
            self.k.pulled_images.add(image)
        info = self.k.engine.image_inspect(image) or {}
        c.image_id = "docker-pullable://" + ((info.get("RepoDigests") or [None])[0] or info.get("Id", ""))
        self.event("Normal", "Pulled", 'Successfully pulled image "%s" in %.3fs' % (image, time.time() - t0))

    # ------------------------------------------------------------ container config
    def build_env(self, c):
        env = {}
        order = []

        def put(k, v):
            if k not in env:
                order.append(k)
            env[k] = v
        for ef in c.spec.get("envFrom") or []:
            is_secret = "secretRef" in ef
            ref = ef.get("secretRef") or ef.get("configMapRef") or {}
            data = self.k.lookup_data(SECRETS if is_secret else CONFIGMAPS, self.ns, ref.get("name"))
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError('%s "%s" not found' % ("secret" if is_secret else "configmap", ref.get("name")))
            bad = []
            for k in sorted(data):
                key = (ef.get("prefix") or "") + k
                if not vj.ENV_VAR_NAME.match(key):
                    bad.append(key)
                    continue
                put(key, data[k].decode("utf-8", "replace"))
            if bad:
                self.event("Warning", "InvalidEnvironmentVariableNames",
                           "Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid "
                           "environment variable names." % (", ".join(bad), "secret" if is_secret else "configMap",
                                                            self.ns, ref.get("name")))
        for e in c.spec.get("env") or []:
            name = e["name"]
            vf = e.get("valueFrom")
            if not vf:
                put(name, expand(e.get("value") or "", env))
                continue
            for kind, res in (("secretKeyRef", SECRETS), ("configMapKeyRef", CONFIGMAPS)):
                ref = vf.get(kind)
                if ref is None:
                    continue
                data = self.k.lookup_data(res, self.ns, ref.get("name"))
                what = "Secret" if res is SECRETS else "ConfigMap"
                if data is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError('%s "%s" not found' % (what.lower(), ref.get("name")))
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    raise ConfigError("couldn't find key %s in %s %s/%s" % (ref.get("key"), what, self.ns,
                                                                          ref.get("name")))
                put(name, data[ref["key"]].decode("utf-8", "replace"))
                break
            else:
                fr = vf.get("fieldRef")
                if fr:
                    put(name, self.field_ref(fr.get("fieldPath", "")))
                rfr = vf.get("resourceFieldRef")
                if rfr:
                    put(name, self.resource_ref(c, rfr))
        return env, order

    def field_ref(self, fp):
        md = self.pod["metadata"]
        simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
                  "metadata.uid": md.get("uid"), "spec.nodeName": self.k.node,
                  "spec.serviceAccountName": self.spec.get("serviceAccountName"),
                  "status.hostIP": self.k.host_ip, "status.hostIPs": self.k.host_ip,
                  "status.podIP": self.pod_ip or "", "status.podIPs": self.pod_ip or ""}
        if fp in simple:
            return simple[fp] or ""
        m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", fp)
        if m:
            return (md.get(m.group(1)) or {}).get(m.group(2), "")
        return ""

    def resource_ref(self, c, rfr):
        cname = rfr.get("containerName") or c.name
        spec = next((x.spec for x in self.cs + self.init_cs if x.name == cname), c.spec)
        res = rfr.get("resource", "")
        section, _, rname = res.partition(".")
        q = ((spec.get("resources") or {}).get(section) or {}).get(rname)
        if q is None:   # unset limits default to the node's allocatable
            q = {"cpu": "2", "memory": "24Gi", "ephemeral-storage": "100Gi"}.get(rname, "0")
        val = vj.parse_quantity(q) or 0
        div = vj.parse_quantity(rfr.get("divisor") or "1") or 1
        return str(int(math.ceil(val / div)))

    def container_config(self, c):
        spec = c.spec
        env, order = self.build_env(c)
        psc = self.spec.get("securityContext") or {}
        csc = spec.get("securityContext") or {}

        def eff(k):
            return csc.get(k) if csc.get(k) is not None else psc.get(k)
        uid, gid = eff("runAsUser"), eff("runAsGroup")
        info = self.k.engine.image_inspect(spec["image"]) or {}
        if eff("runAsNonRoot"):
            if uid == 0:
                raise ConfigError('container\'s runAsUser breaks non-root policy (pod: "%s_%s(%s)", container: %s)'
                                  % (self.name, self.ns, self.uid, c.name))
            if uid is None:
                iu = ((info.get("Config") or {}).get("User") or "").split(":")[0]
                if iu in ("", "0", "root"):
                    raise ConfigError('container has runAsNonRoot and image will run as root (pod: "%s_%s(%s)", '
                                      'container: %s)' % (self.name, self.ns, self.uid, c.name))
                if not iu.isdigit():
                    raise ConfigError("container has runAsNonRoot and image has non-numeric user (%s), cannot "
                                      "verify user is non-root (pod: \"%s_%s(%s)\", container: %s)"
                                      % (iu, self.name, self.ns, self.uid, c.name))
        user = ""
        if uid is not None:
            user = str(uid) + (":%d" % gid if gid is not None else "")
        elif gid is not None:
            iu = ((info.get("Config") or {}).get("User") or "0").split(":")[0] or "0"
            user = "%s:%d" % (iu, gid)
        groups = [str(g) for g in psc.get("supplementalGroups") or []]
        if psc.get("fsGroup") is not None:
            groups.append(str(psc["fsGroup"]))
        cmd = [expand(x, env) for x in spec["command"]] if spec.get("command") else None
        args = [expand(x, env) for x in spec["args"]] if spec.get("args") is not None else None
        binds, tmpfs = [], {}
        for vm in spec.get("volumeMounts") or []:
            host = self.volumes.get(vm["name"])
            if host is None:
                continue
            vol = next((v for v in self.spec.get("volumes") or [] if v["name"] == vm["name"]), {})
            ro = vm.get("readOnly") or "secret" in vol or "configMap" in vol or "projected" in vol
            if vm.get("subPath"):
                host = os.path.join(host, vm["subPath"])
                if "emptyDir" in vol:
                    os.makedirs(host, exist_ok=True)
            binds.append("%s:%s%s" % (host, vm["mountPath"], ":ro" if ro else ""))
        hc = {"Binds": binds, "NetworkMode": self.k.pod_network,
              "ReadonlyRootfs": bool(csc.get("readOnlyRootFilesystem")),
              "CapDrop": list((csc.get("capabilities") or {}).get("drop") or []) or None,
              "CapAdd": list((csc.get("capabilities") or {}).get("add") or []) or None,
              "SecurityOpt": [], "Privileged": bool(csc.get("privileged")),
              "GroupAdd": groups or None, "LogConfig": {"Type": "json-file", "Config": {}},
              "Tmpfs": tmpfs or None}
        if self.spec.get("shareProcessNamespace"):
            # One PID namespace for the pod, whose PID 1 is the pause
            # container: the container's process is not PID 1 (it dies of
            # signals it has no handler for, e.g. `kill -9 $$`).  Docker's
            # init (tini) as PID 1 gives the process that same position.
            hc["Init"] = True
        if csc.get("allowPrivilegeEscalation") is False:
            hc["SecurityOpt"].append("no-new-privileges")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined":
            hc["SecurityOpt"].append("seccomp=unconfined")
        lim = (spec.get("resources") or {}).get("limits") or {}
        if lim.get("memory") is not None:
            mem = int(vj.parse_quantity(lim["memory"]) or 0)
            if mem > 0:
                hc["Memory"] = max(mem, 6 * 1024 * 1024)
                hc["MemorySwap"] = hc["Memory"]
        if lim.get("cpu") is not None:
            cpu = vj.parse_quantity(lim["cpu"]) or 0
            if cpu > 0:
                hc["NanoCpus"] = max(int(cpu * 1000000000), 10000000)
        labels = {self.k.label_prefix: "1", self.k.label_prefix + ".pod": "%s/%s" % (self.ns, self.name),
                  self.k.label_prefix + ".container": c.name}
        cfg = {"Image": spec["image"], "Hostname": self.name[:63], "Env": ["%s=%s" % (k, env[k]) for k in order],
               "Labels": labels, "WorkingDir": spec.get("workingDir") or "", "User": user,
               "Tty": bool(spec.get("tty")), "OpenStdin": bool(spec.get("stdin")),
               "StdinOnce": bool(spec.get("stdinOnce")), "AttachStdin": False, "HostConfig": hc}
        if cmd is not None:
            cfg["Entrypoint"] = cmd
            cfg["Cmd"] = args if args is not None else []
        elif args is not None:
            cfg["Cmd"] = args
        return cfg


class Kubelet:
    def __init__(self, store, engine, faults, events, cfg, log):
        self.store = store
        self.engine = engine
        self.faults = faults
        self.events = events
        self.cfg = cfg
        self.log = log
        self.node = cfg.node_name
        self.host_ip = "127.0.0.1"
        self.node_labels = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                            "kubernetes.io/hostname": self.node, "beta.kubernetes.io/os": "linux",
                            "beta.kubernetes.io/arch": "amd64"}
        self.node_labels.update(cfg.node_labels)
        self.taints = cfg.node_taints
        self.label_prefix = cfg.label_prefix
        self.work_dir = cfg.work_dir
        self.pod_network = cfg.pod_network
        self.sync_period = cfg.sync_period
        self.image_pull_backoff = cfg.image_pull_backoff
        self.crash_backoff = cfg.crash_backoff
        self.workers = {}          # uid -> PodWorker
        self.done_workers = {}     # uid -> PodWorker (finished, logs kept until the pod is removed)
        self.containers = {}       # cid -> (worker, cstate)
        self.pulled_images = set()
        self.lock = threading.RLock()
        self.change = threading.Condition()
        self.change_seq = 0
        self.q = queue.Queue()
        self.pending = {}          # uid -> (ns, name) unscheduled pods
        self.stopping = False
        store.listeners.append(self._on_event)
        faults.listeners.append(self._on_faults)
        self.thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)

    def start(self):
        self.thread.start()

    # ------------------------------------------------------------ notifications
    def _on_event(self, ev):
        if ev.res is PODS:
            self.q.put(("pod", ev.type, ev.obj))
        elif ev.res in (SECRETS, CONFIGMAPS):
            self.wake()

    def _on_faults(self):
        self.q.put(("faults", None, None))
        self.wake()

    def wake(self):
        with self.change:
            self.change_seq += 1
            self.change.notify_all()

    def wait_change(self, seconds, stop_event):
        end = time.time() + max(0.0, seconds)
        with self.change:
            seq = self.change_seq
            while self.change_seq == seq and not stop_event.is_set() and not self.stopping:
                left = end - time.time()
                if left <= 0:
                    return
                self.change.wait(min(left, 0.5))

    def _loop(self):
        while not self.stopping:
            try:
                kind, type_, obj = self.q.get(timeout=1)
            except queue.Empty:
                continue
            try:
                if kind == "pod":
                    self._pod_event(type_, obj)
                elif kind == "faults":
                    for uid, (ns, name) in list(self.pending.items()):
                        p = self.store.get(PODS, ns, name)
                        if p and p["metadata"]["uid"] == uid:
                            self.schedule(p)
                    with self.lock:
                        ws = list(self.workers.values())
                    for w in ws:
                        self.check_evict(w)
            except Exception as e:  # noqa: BLE001
                self.log("kubelet: internal error: %r" % e)

    def _pod_event(self, type_, pod):
        md = pod["metadata"]
        uid = md["uid"]
        if type_ == "DELETED":
            self.pending.pop(uid, None)
            with self.lock:
                w = self.workers.get(uid) or self.done_workers.get(uid)
            if w:
                w.request_stop("gone", 0)
                threading.Thread(target=self._cleanup_after, args=(w,), daemon=True).start()
            return
        with self.lock:
            w = self.workers.get(uid)
        if md.get("deletionTimestamp"):
            self.pending.pop(uid, None)
            grace = md.get("deletionGracePeriodSeconds") or 0
            if w:
                w.request_stop("delete", grace)
            else:
                self.release(pod)
            return
        if not pod["spec"].get("nodeName"):
            self.schedule(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        with self.lock:
            if w is None and uid not in self.done_workers and phase not in TERMINAL:
                w = PodWorker(self, pod)
                self.workers[uid] = w
                w.thread.start()

    def release(self, pod):
        """The kubelet's final delete (grace 0): the API server removes the pod once finalizers allow."""
        md = pod["metadata"]

        def zero(o):
            if o["metadata"].get("deletionTimestamp"):
                o["metadata"]["deletionGracePeriodSeconds"] = 0
        self.store.mutate(PODS, md["namespace"], md["name"], zero, expect_uid=md["uid"])

    def worker_done(self, w):
        with self.lock:
            self.workers.pop(w.uid, None)
            self.done_workers[w.uid] = w
        if w.stop_reason == "delete":
            self.release(w.pod)
        elif w.stop_reason == "gone":
            pass

    def _cleanup_after(self, w):
        w.finished.wait(120)
        with self.lock:
            self.done_workers.pop(w.uid, None)
            ids = [cid for cid, (wk, _) in self.containers.items() if wk is w]
            for cid in ids:
                self.containers.pop(cid, None)
        for cid in ids:
            try:
                self.engine.remove(cid)
            except EngineError:
                pass
        shutil.rmtree(w.dir, ignore_errors=True)

    # ------------------------------------------------------------ scheduling
    def schedule(self, pod):
        md = pod["metadata"]
        uid = md["uid"]
        why = self.unschedulable_reason(pod)
        if why:
            self.pending[uid] = (md["namespace"], md["name"])
            msg = "0/1 nodes are available: %s. preemption: 0/1 nodes are available: 1 Preemption is not helpful " \
                  "for scheduling." % why

            def mark(o):
                conds = [c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
                conds.append({"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                              "lastTransitionTime": now_rfc3339(), "reason": "Unschedulable", "message": msg})
                o.setdefault("status", {})["conditions"] = conds
            old = next((c for c in (pod.get("status") or {}).get("conditions") or []
                        if c.get("type") == "PodScheduled"), None)
            if not old or old.get("message") != msg:
                self.store.mutate(PODS, md["namespace"], md["name"], mark, expect_uid=uid)
                self.events.record(pod, "Warning", "FailedScheduling", msg, "default-scheduler")
            return
        self.pending.pop(uid, None)

        def bind(o):
            o["spec"]["nodeName"] = self.node
            conds = [c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            o.setdefault("status", {})["conditions"] = conds
        if self.store.mutate(PODS, md["namespace"], md["name"], bind, expect_uid=uid):
            self.events.record(pod, "Normal", "Scheduled", "Successfully assigned %s/%s to %s"
                               % (md["namespace"], md["name"], self.node), "default-scheduler")

    def unschedulable_reason(self, pod):
        if self.faults.flag("unschedulable"):
            return "1 node(s) were unschedulable"
        spec = pod["spec"]
        for k, v in (spec.get("nodeSelector") or {}).items():
            if self.node_labels.get(k) != v:
                return "1 node(s) didn't match Pod's node affinity/selector"
        req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
               .get("requiredDuringSchedulingIgnoredDuringExecution"))
        if req and not any(self._term_matches(t) for t in req.get("nodeSelectorTerms") or []):
            return "1 node(s) didn't match Pod's node affinity/selector"
        for t in self.taints:
            if t["effect"] in ("NoSchedule", "NoExecute") and not any(
                    self._tolerates(tol, t) for tol in spec.get("tolerations") or []):
                return "1 node(s) had untolerated taint {%s: %s}" % (t["key"], t.get("value", ""))
        return None

    def _term_matches(self, term):
        for e in term.get("matchExpressions") or []:
            v = self.node_labels.get(e.get("key"))
            op, vals = e.get("operator"), e.get("values") or []
            if op == "In" and v not in vals:
                return False
            if op == "NotIn" and v in vals:
                return False
            if op == "Exists" and v is None:
                return False
            if op == "DoesNotExist" and v is not None:
                return False
            if op in ("Gt", "Lt"):
                try:
                    a, b = int(v), int(vals[0])
                except (TypeError, ValueError, IndexError):
                    return False
                if (op == "Gt" and not a > b) or (op == "Lt" and not a < b):
                    return False
        for e in term.get("matchFields") or []:
            if e.get("key") == "metadata.name":
                ok = self.node in (e.get("values") or [])
                if (e.get("operator") == "In") != ok:
                    return False
        return True

    @staticmethod
    def _tolerates(tol, taint):
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            return False
        if tol.get("operator") == "Exists":
            return not tol.get("key") or tol["key"] == taint["key"]
        return tol.get("key") == taint["key"] and (tol.get("value") or "") == (taint.get("value") or "")

    # ------------------------------------------------------------ helpers for workers
    def lookup_data(self, res, ns, name):
        """Secret/ConfigMap data as {key: bytes}, or None when absent (or hidden by a fault)."""
        if not name:
            return None
        fault = "missing_secret" if res is SECRETS else "missing_configmap"
        if self.faults.matches(fault, name):
            return None
        o = self.store.get(res, ns, name)
        if o is None:
            return None
        out = {}
        if res is SECRETS:
            for k, v in (o.get("data") or {}).items():
                out[k] = base64.b64decode(v)
        else:
            for k, v in (o.get("data") or {}).items():
                out[k] = v.encode()
            for k, v in (o.get("binaryData") or {}).items():
                out[k] = base64.b64decode(v)
        return out

    def pull_auth(self, w, image):
        reg = registry_of(image) or "https://index.docker.io/v1/"
        for ref in w.spec.get("imagePullSecrets") or []:
            name = ref.get("name")
            data = self.lookup_data(SECRETS, w.ns, name)
            if data is None:
                w.event("Warning", "FailedToRetrieveImagePullSecret",
                        'Unable to retrieve some image pull secrets (%s); attempting to pull the image may not '
                        'succeed.' % name)
                continue
            raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
            if raw is None:
                continue
            try:
                cfg = json.loads(raw)
            except ValueError:
                continue
            auths = cfg.get("auths", cfg) if isinstance(cfg, dict) else {}
            for server, a in auths.items():
                host = re.sub(r"^https?://", "", server).split("/")[0]
                if host != reg and server != reg:
                    continue
                user, pw = a.get("username"), a.get("password")
                if a.get("auth") and not user:
                    try:
                        user, _, pw = base64.b64decode(a["auth"]).decode().partition(":")
                    except (ValueError, UnicodeDecodeError):
                        continue
                blob = json.dumps({"username": user, "password": pw, "serveraddress": host}).encode()
                return base64.urlsafe_b64encode(blob).decode()
        return None

    def container_name(self, w, c):
        raw = "%s-%s-%s-%s-%d" % (self.label_prefix, w.ns, w.name, c.name, c.restarts)
        return re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)[:200]

    def track_container(self, cid, w, c):
        with self.lock:
            self.containers[cid] = (w, c)
        self.store.log_line({"t": time.time(), "container": "created", "id": cid[:12],
                             "pod": "%s/%s" % (w.ns, w.name), "name": c.name})

    def check_evict(self, w):
        if w.stop.is_set() or w.phase != "Running":
            return
        if self.faults.matches("evict_pod", w.name):
            w.event("Warning", "Evicted", "The node was low on resource: memory. (k8s-fake evict_pod fault)")
            w.request_stop("evict", 0)

    def find_worker(self, uid):
        with self.lock:
            return self.workers.get(uid) or self.done_workers.get(uid)

    def container_list(self):
        with self.lock:
            out = []
            for cid, (w, c) in self.containers.items():
                out.append({"id": cid, "name": self.container_name(w, c), "namespace": w.ns, "pod": w.name,
                            "container": c.name, "state": list(c.state.keys())[0] if c.cid == cid else "exited"})
            return out

    def pod_metrics(self, pod):
        w = self.find_worker(pod["metadata"]["uid"])
        if not w:
            return None
        out = []
        for c in w.cs:
            if not (c.cid and "running" in c.state):
                continue
            st = self.engine.stats(c.cid)
            if not st:
                continue
            cpu = st.get("cpu_stats") or {}
            pre = st.get("precpu_stats") or {}
            d_cpu = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
                "total_usage", 0)
            d_sys = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
            ncpu = cpu.get("online_cpus") or 1
            nano = int(d_cpu / d_sys * ncpu * 1e9) if d_sys > 0 and d_cpu > 0 else 0
            mem = st.get("memory_stats") or {}
            usage = mem.get("usage", 0) - ((mem.get("stats") or {}).get("inactive_file", 0))
            out.append({"name": c.name, "usage": {"cpu": "%dn" % nano, "memory": "%dKi" % max(0, usage // 1024)}})
        return out if out else None

    def shutdown(self):
        self.stopping = True
        self.wake()
        with self.lock:
            ws = list(self.workers.values())
        for w in ws:
            w.request_stop("gone", 0)
        ids = set(self.containers)
        try:
            ids |= set(self.engine.list_by_label(self.label_prefix))
        except EngineError:
            pass
        for cid in ids:
            try:
                self.engine.remove(cid)
            except EngineError:
                pass
        for img in list(self.pulled_images):
            try:
                self.engine.remove_image(img)
            except EngineError:
                pass
        return len(ids)
