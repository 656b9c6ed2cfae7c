"""k8s-fake's command line, start-up (namespaces, TLS, kubeconfig, port file) and shutdown."""

import argparse
import base64
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from admission import Admission
from controllers import ControllerManager
from docker_engine import DockerEngine, EngineError
from events import EventRecorder
from faults import Faults, Stats
from kubelet import Kubelet
from registry import Registry
from resources import NAMESPACES, PRIORITYCLASSES, SERVICEACCOUNTS
from server import FakeHTTPServer
from store import Store


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="k8s-fake", description="A fake Kubernetes API server for tests; pods run "
                                 "as Docker containers. See docs/k8s-fake.md.")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free port)")
    ap.add_argument("--port-file", help="write the port here when ready")
    ap.add_argument("--kubeconfig-out", help="write a kubeconfig for this server here")
    ap.add_argument("--tls-dir", help="serve HTTPS with a CA and certificates kept in this directory")
    ap.add_argument("--client-cert-auth", action="store_true", help="accept client certificates signed by the CA")
    ap.add_argument("--token", help="require this bearer token")
    ap.add_argument("--user", default="k8s-fake-user", help="user name of the token (in 403 messages)")
    ap.add_argument("--forbid", action="append", default=[], metavar="VERB:RESOURCE")
    ap.add_argument("--namespace", action="append", default=[], metavar="NS")
    ap.add_argument("--pod-security", default="restricted", choices=("restricted", "baseline", "privileged"))
    ap.add_argument("--service-account", action="append", default=[], metavar="NS/NAME")
    ap.add_argument("--priority-class", action="append", default=[], metavar="NAME")
    ap.add_argument("--node-name", default="k8s-fake-node")
    ap.add_argument("--node-label", action="append", default=[], metavar="K=V")
    ap.add_argument("--node-taint", action="append", default=[], metavar="K=V:EFFECT")
    ap.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    ap.add_argument("--label-prefix", help="Docker label key on every container (default k8s-fake-<pid>-<rand>)")
    ap.add_argument("--state-log", help="append a JSON line per object change and container action")
    ap.add_argument("--work-dir", help="pod volume directory (default: a temp dir removed at exit)")
    ap.add_argument("--job-backoff", type=float, default=10.0, help="first Job pod re-creation delay, seconds")
    ap.add_argument("--image-pull-backoff", type=float, default=10.0, help="first image pull retry delay, seconds")
    ap.add_argument("--crash-backoff", type=float, default=10.0, help="first container restart delay, seconds")
    ap.add_argument("--sync-period", type=float, default=2.0, help="kubelet retry period for config errors")
    ap.add_argument("--history", type=int, default=1000, help="watch events kept")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--watch-timeout", type=float, default=1800.0)
    ap.add_argument("--field-validation", default="Warn", choices=("Strict", "Warn", "Ignore"),
                    help="default when a request has no fieldValidation parameter (real server: Warn)")
    ap.add_argument("--no-metrics", action="store_true")
    ap.add_argument("--no-log-stream-param", action="store_true")
    ap.add_argument("--pod-network", default="bridge", choices=("bridge", "none"))
    ap.add_argument("--exit-with-parent", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    for v in a.forbid:
        if ":" not in v:
            ap.error("--forbid wants VERB:RESOURCE, got %r" % v)
    a.node_labels = {}
    for v in a.node_label:
        k, sep, val = v.partition("=")
        if not sep:
            ap.error("--node-label wants K=V, got %r" % v)
        a.node_labels[k] = val
    a.node_taints = []
    for v in a.node_taint:
        kv, sep, eff = v.rpartition(":")
        if not sep or eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            ap.error("--node-taint wants K=V:EFFECT, got %r" % v)
        k, _, val = kv.partition("=")
        a.node_taints.append({"key": k, "value": val, "effect": eff})
    for v in a.service_account:
        if "/" not in v:
            ap.error("--service-account wants NS/NAME, got %r" % v)
    if a.client_cert_auth and not a.tls_dir:
        ap.error("--client-cert-auth needs --tls-dir")
    host, sep, port = a.listen.rpartition(":")
    if not sep or not port.isdigit():
        ap.error("--listen wants HOST:PORT, got %r" % a.listen)
    a.host, a.port = host.strip("[]"), int(port)
    a.label_prefix = a.label_prefix or "k8s-fake-%d-%04x" % (os.getpid(), random.getrandbits(16))
    a.metrics = not a.no_metrics
    return a


def _openssl(*args):
    subprocess.run(("openssl",) + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ensure_tls(d, host):
    """CA, server and client certificates in d (created when absent)."""
    os.makedirs(d, exist_ok=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    if not (os.path.exists(p("ca.crt")) and os.path.exists(p("ca.key"))):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3650", "-subj", "/CN=k8s-fake-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sans = ["IP:127.0.0.1", "IP:::1", "DNS:localhost"]
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        if "IP:" + host not in sans and host not in ("0.0.0.0", "::"):
            sans.append("IP:" + host)
    except OSError:
        if host and "DNS:" + host not in sans:
            sans.append("DNS:" + host)
    for name, cn, usage in (("server", "/CN=k8s-fake-apiserver", "serverAuth"),
                            ("client", "/O=system:masters/CN=k8s-fake-client", "clientAuth")):
        if os.path.exists(p(name + ".crt")) and os.path.exists(p(name + ".key")):
            continue
        ext = p(name + ".ext")
        with open(ext, "w") as fh:
            fh.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                     "extendedKeyUsage=%s\n" % usage)
            if name == "server":
                fh.write("subjectAltName=%s\n" % ",".join(sans))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", cn)
        _openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
                 "-CAcreateserial", "-out", p(name + ".crt"), "-days", "3650", "-extfile", ext)
        os.unlink(p(name + ".csr"))
        os.unlink(ext)
        os.chmod(p(name + ".key"), 0o600)


def write_atomic(path, text, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def b64file(path):
    with open(path, "rb") as fh:
        return base64.b64encode(fh.read()).decode()


class App:
    def __init__(self, cfg):
        self.cfg = cfg
        self.stopping = threading.Event()
        self.log_lock = threading.Lock()
        self.own_work_dir = not cfg.work_dir
        cfg.work_dir = cfg.work_dir or tempfile.mkdtemp(prefix="k8s-fake-")
        os.makedirs(cfg.work_dir, exist_ok=True)
        self.store = Store(cfg.history, cfg.state_log)
        self.faults = Faults(cfg.forbid, cfg.no_log_stream_param)
        self.stats = Stats()
        self.admission = Admission(self.store, cfg)
        self.registry = Registry(self.store, self.admission)
        self.events = EventRecorder(self.store, cfg.node_name)
        self.engine = DockerEngine(cfg.docker_host)
        self.kubelet = Kubelet(self.store, self.engine, self.faults, self.events, cfg, self.log)
        self.controllers = ControllerManager(self.store, self.registry, self.events, cfg, self.log)
        self.httpd = None
        self.cleaned = False

    def log(self, msg):
        with self.log_lock:
            sys.stderr.write("k8s-fake: %s\n" % msg)
            sys.stderr.flush()

    def bootstrap(self):
        def ns_obj(name, labels=None):
            return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        extra = []
        for n in self.cfg.namespace:
            if n not in extra:
                extra.append(n)
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] + extra:
            if self.store.exists(NAMESPACES, "", n):
                continue
            labels = {}
            if n in extra and self.cfg.pod_security != "privileged":
                labels = {"pod-security.kubernetes.io/enforce": self.cfg.pod_security,
                          "pod-security.kubernetes.io/enforce-version": "latest"}
            self.registry.create(NAMESPACES, "", ns_obj(n, labels), internal=True)
            self.registry.create(SERVICEACCOUNTS, n, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                      "metadata": {"name": "default"}}, internal=True)
        for sa in self.cfg.service_account:
            ns, name = sa.split("/", 1)
            if not self.store.exists(NAMESPACES, "", ns):
                self.registry.create(NAMESPACES, "", ns_obj(ns), internal=True)
                self.registry.create(SERVICEACCOUNTS, ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": "default"}}, internal=True)
            if not self.store.exists(SERVICEACCOUNTS, ns, name):
                self.registry.create(SERVICEACCOUNTS, ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": name}}, internal=True)
        for name, value in [("system-cluster-critical", 2000000000), ("system-node-critical", 2000001000)] + [
                (n, 1000) for n in self.cfg.priority_class]:
            if not self.store.exists(PRIORITYCLASSES, "", name):
                self.registry.create(PRIORITYCLASSES, "", {
                    "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                    "value": value, "preemptionPolicy": "PreemptLowerPriority"}, internal=True)

    def ssl_context(self):
        if not self.cfg.tls_dir:
            return None
        ensure_tls(self.cfg.tls_dir, self.cfg.host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(self.cfg.tls_dir, "server.crt"), os.path.join(self.cfg.tls_dir, "server.key"))
        if self.cfg.client_cert_auth:
            ctx.load_verify_locations(os.path.join(self.cfg.tls_dir, "ca.crt"))
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def kubeconfig(self, port):
        c = self.cfg
        host = c.host if c.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        hostpart = "[%s]" % host if ":" in host else host
        server = "%s://%s:%d" % ("https" if c.tls_dir else "http", hostpart, port)
        lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: k8s-fake", "  cluster:",
                 "    server: %s" % server]
        if c.tls_dir:
            lines.append("    certificate-authority-data: %s" % b64file(os.path.join(c.tls_dir, "ca.crt")))
        lines += ["users:", "- name: k8s-fake-user", "  user:"]
        if c.token:
            lines.append("    token: %s" % c.token)
        elif c.client_cert_auth:
            lines.append("    client-certificate-data: %s" % b64file(os.path.join(c.tls_dir, "client.crt")))
            lines.append("    client-key-data: %s" % b64file(os.path.join(c.tls_dir, "client.key")))
        else:
            lines[-1] = "  user: {}"
        ns = c.namespace[0] if c.namespace else "default"
        lines += ["contexts:", "- name: k8s-fake", "  context:", "    cluster: k8s-fake", "    user: k8s-fake-user",
                  "    namespace: %s" % ns, "current-context: k8s-fake", "preferences: {}", ""]
        return "\n".join(lines)

    def request_stop(self):
        self.stopping.set()

    def run(self):
        try:
            if not self.engine.ping():
                raise EngineError(0, "no answer to /_ping")
        except EngineError as e:
            self.log("Docker engine %s not usable: %s" % (self.cfg.docker_host, e.message))
            return 2
        self.bootstrap()
        family = socket.AF_INET6 if ":" in self.cfg.host else socket.AF_INET
        try:
            ctx = self.ssl_context()
            self.httpd = FakeHTTPServer((self.cfg.host, self.cfg.port), family, self, ctx)
        except (OSError, subprocess.CalledProcessError, ssl.SSLError) as e:
            self.log("cannot start: %s" % e)
            return 2
        port = self.httpd.server_address[1]
        self.kubelet.start()
        self.controllers.start()
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        if self.cfg.kubeconfig_out:
            write_atomic(self.cfg.kubeconfig_out, self.kubeconfig(port), 0o600)
        if self.cfg.port_file:
            write_atomic(self.cfg.port_file, "%d\n" % port)
        self.log("serving %s://%s:%d (label %s, work dir %s)" % ("https" if self.cfg.tls_dir else "http",
                                                               self.cfg.host, port, self.cfg.label_prefix,
                                                               self.cfg.work_dir))
        parent = os.getppid()
        while not self.stopping.wait(0.5):
            if self.cfg.exit_with_parent and os.getppid() != parent:
                self.log("parent %d exited: shutting down" % parent)
                break
        return 0

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        self.stopping.set()
        self.store.close()
        self.controllers.stop()
        n = self.kubelet.shutdown()
        if self.httpd:
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()
            try:
                self.httpd.socket.close()
            except OSError:
                pass
        if self.own_work_dir:
            shutil.rmtree(self.cfg.work_dir, ignore_errors=True)
        if self.cfg.port_file:
            try:
                os.unlink(self.cfg.port_file)
            except OSError:
                pass
        self.log("stopped; removed %d container(s)" % n)


def main(argv=None):
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    app = App(cfg)

    def on_signal(signum, _frame):
        app.request_stop()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 1
    try:
        rc = app.run()
    finally:
        app.cleanup()
        time.sleep(0)
    return rc
