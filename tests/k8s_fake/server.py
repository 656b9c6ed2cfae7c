"""The HTTP side: routing, authentication/authorization, the REST verbs, watch and log streams,
discovery, metrics.k8s.io, and the /_fake/ control API."""

import base64
import json
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import discovery
import tables
from kubelet import docker_time
from apierrors import (ApiError, bad_request, forbidden, generic, method_not_allowed, page_not_found,
                       unauthorized)
from faults import FaultError
from resources import PODS, lookup
from k8s_selectors import match_fields, match_labels, parse_field_selector, parse_label_selector

PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
TRUE = ("true", "1", "True")


class Route:
    def __init__(self, kind, verb, template, res=None, ns="", name="", sub="", extra=None):
        self.kind = kind          # 'resource', 'discovery', 'metrics', 'public', 'openapi'
        self.verb = verb
        self.template = template
        self.res = res
        self.ns = ns
        self.name = name
        self.sub = sub
        self.extra = extra


class _Abort(Exception):
    """Cut the connection (lost watch fault)."""


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, family, app, ssl_ctx):
        self.address_family = family
        self.app = app
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        if self.ssl_ctx is not None:
            try:
                request.settimeout(30)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        try:
            Handler(request, client_address, self)
        finally:
            if self.ssl_ctx is not None:
                try:
                    request.close()
                except OSError:
                    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-fake"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.app.cfg.verbose:
            self.server.app.log("%s %s" % (self.address_string(), fmt % args))

    # ------------------------------------------------------------ plumbing
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def send_json(self, code, obj, headers=None, warnings=()):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for w in warnings:
            self.send_header("Warning", '299 - %s' % json.dumps(w))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_text(self, code, text, ctype="text/plain; charset=utf-8"):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, e):
        if getattr(e, "plain", False):
            self.send_text(404, "404 page not found\n")
            return
        self.send_json(e.code, e.status(), headers=e.headers)

    def start_chunked(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------ dispatch
    def dispatch(self, method):
        app = self.server.app
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        try:
            body = self.read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        if path.startswith("/_fake/") or path == "/_fake":
            return self.control(method, path, body)
        try:
            try:
                route = self.route(method, path, q)
            except ApiError as e:
                app.stats.count("%s %s" % ({"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                                            "DELETE": "delete"}.get(method, method), "(unknown path)"))
                raise e
            app.stats.count("%s %s" % (route.verb, route.template))
            user = self.authenticate(path)
            self.authorize(route, user, path)
            code = app.faults.take_request_failure(method, path)
            if code:
                raise generic(code)
            getattr(self, "h_" + route.kind)(route, q, body)
        except ApiError as e:
            self.send_error_status(e)
        except _Abort:
            self.abort_connection()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - an internal error is a 500 Status, never a hang
            import traceback
            app.log("internal error on %s %s: %r\n%s" % (method, self.path, e, traceback.format_exc()))
            try:
                self.send_json(500, ApiError(500, "InternalError", "Internal error occurred: %s" % e).status())
            except OSError:
                self.close_connection = True

    def route(self, method, path, q):
        verb_of = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        if method not in verb_of:
            raise method_not_allowed()
        if path in PUBLIC_PATHS or path.startswith("/healthz/") or path.startswith("/readyz/") \
                or path.startswith("/livez/"):
            return Route("public", "get", path)
        if path in ("/api", "/api/"):
            return Route("discovery", "get", "/api", extra=("api",))
        if path in ("/apis", "/apis/"):
            return Route("discovery", "get", "/apis", extra=("apis",))
        if path.startswith("/openapi/"):
            return Route("openapi", "get", "/openapi/v3" if path.startswith("/openapi/v3") else path,
                         extra=(path,))
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            raise page_not_found()
        if parts[0] == "api":
            if len(parts) < 2:
                raise page_not_found()
            group, version, rest = "", parts[1], parts[2:]
            prefix = "/api/" + version
        else:
            if len(parts) == 2:
                return Route("discovery", "get", "/apis/{group}", extra=("group", parts[1]))
            if len(parts) < 3:
                raise page_not_found()
            group, version, rest = parts[1], parts[2], parts[3:]
            prefix = "/apis/%s/%s" % (group, version)
        if not rest:
            return Route("discovery", "get", prefix, extra=("resources", group, version))
        if group == discovery.METRICS_GROUP:
            if not self.server.app.cfg.metrics:
                raise page_not_found()
            return self.route_metrics(method, rest, prefix)
        ns, name, sub = "", "", ""
        if rest[0] == "namespaces" and len(rest) >= 3 and lookup(group, version, rest[2]) is not None \
                and lookup(group, version, rest[2]).namespaced:
            ns, resname = rest[1], rest[2]
            name = rest[3] if len(rest) > 3 else ""
            sub = "/".join(rest[4:])
            tmpl = prefix + "/namespaces/{namespace}/" + resname
        else:
            resname = rest[0]
            name = rest[1] if len(rest) > 1 else ""
            sub = "/".join(rest[2:])
            tmpl = prefix + "/" + resname
        res = lookup(group, version, resname)
        if res is None or (name == "" and sub):
            raise page_not_found()
        if name:
            tmpl += "/{name}"
        if sub:
            if (res.resource, sub) not in (("pods", "log"), ("pods", "status"), ("jobs", "status"),
                                           ("namespaces", "status")):
                raise page_not_found()
            tmpl += "/" + sub
        if res.namespaced and not ns and name:
            raise page_not_found()
        if name:
            verb = verb_of[method]
            if method == "POST":
                raise method_not_allowed()
        else:
            verb = {"GET": "watch" if q.get("watch") in TRUE else "list", "POST": "create",
                    "DELETE": "deletecollection"}.get(method)
            if verb is None:
                raise method_not_allowed()
            if not res.namespaced and ns:
                raise page_not_found()
        if sub and method != "GET":
            raise method_not_allowed()
        return Route("resource", verb, tmpl, res, ns, name, sub)

    def route_metrics(self, method, rest, prefix):
        if method != "GET":
            raise method_not_allowed()
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            name = rest[3] if len(rest) > 3 else ""
            tmpl = prefix + "/namespaces/{namespace}/pods" + ("/{name}" if name else "")
            return Route("metrics", "get" if name else "list", tmpl, ns=rest[1], name=name)
        if rest[0] == "pods":
            return Route("metrics", "list", prefix + "/pods")
        raise page_not_found()

    # ------------------------------------------------------------ authn / authz
    def authenticate(self, path):
        cfg = self.server.app.cfg
        if not cfg.token and not cfg.client_cert_auth:
            return cfg.user
        auth = self.headers.get("Authorization")
        if auth:
            if auth.startswith("Bearer ") and cfg.token and auth[7:].strip() == cfg.token:
                return cfg.user
            raise unauthorized()
        if cfg.client_cert_auth and isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            return v
        return "system:anonymous"

    def authorize(self, route, user, path):
        app = self.server.app
        if user == "system:anonymous" and (app.cfg.token or app.cfg.client_cert_auth) and route.kind != "public":
            if route.kind == "resource":
                raise forbidden(route.res, route.name, user, route.verb, route.ns, route.sub)
            raise ApiError(403, "Forbidden", 'forbidden: User "system:anonymous" cannot get path "%s"' % path, {})
        if route.kind == "resource":
            rname = route.res.resource + ("/" + route.sub if route.sub else "")
            if app.faults.forbidden(route.verb, rname):
                raise forbidden(route.res, route.name, user, route.verb, route.ns, route.sub)

    # ------------------------------------------------------------ simple endpoints
    def h_public(self, route, q, body):
        if route.template == "/version":
            self.send_json(200, discovery.VERSION)
        else:
            self.send_text(200, "ok")

    def h_discovery(self, route, q, body):
        app = self.server.app
        what = route.extra
        if what[0] == "api":
            host = self.headers.get("Host") or "127.0.0.1"
            self.send_json(200, discovery.api_versions(host))
        elif what[0] == "apis":
            self.send_json(200, discovery.api_group_list(app.cfg.metrics))
        elif what[0] == "group":
            g = discovery.api_group(what[1], app.cfg.metrics)
            if g is None:
                raise page_not_found()
            self.send_json(200, g)
        else:
            rl = discovery.resource_list(what[1], what[2], app.cfg.metrics)
            if rl is None:
                raise page_not_found()
            self.send_json(200, rl)

    def h_openapi(self, route, q, body):
        path = route.extra[0]
        if path.rstrip("/") == "/openapi/v2":
            # An empty OpenAPI v2 document (a valid, empty gnostic protobuf message when protobuf is
            # asked for): older kubectl's client-side validation finds no schema and skips, as the
            # documented minimum. Newer kubectl uses /openapi/v3 below.
            accept = self.headers.get("Accept") or ""
            if "protobuf" in accept:
                self.send_response(200)
                self.send_header("Content-Type", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.send_json(200, {"swagger": "2.0", "info": {"title": "Kubernetes",
                                                                   "version": discovery.VERSION["gitVersion"]},
                                        "paths": {}, "definitions": {}})
        if path.rstrip("/") == "/openapi/v3":
            return self.send_json(200, discovery.openapi_v3_index())
        if path.startswith("/openapi/v3/"):
            doc = discovery.openapi_v3_doc(path[len("/openapi/v3/"):])
            if doc is not None:
                return self.send_json(200, doc)
        raise page_not_found()

    def h_metrics(self, route, q, body):
        app = self.server.app
        pods = []
        if route.name:
            p = app.store.get(PODS, route.ns, route.name)
            if p is None:
                raise ApiError(404, "NotFound", 'podmetrics.metrics.k8s.io "%s/%s" not found' % (route.ns, route.name),
                               {"name": route.name, "group": "metrics.k8s.io", "kind": "pods"})
            pods = [p]
        else:
            pods, _ = app.store.list(PODS, route.ns or None)
        out = []
        for p in pods:
            usage = app.kubelet.pod_metrics(p)
            if usage is None:
                continue
            md = p["metadata"]
            out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": md["name"], "namespace": md["namespace"],
                                     "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "labels": md.get("labels", {})},
                        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "window": "1s",
                        "containers": usage})
        if route.name:
            if not out:
                raise ApiError(404, "NotFound", 'podmetrics.metrics.k8s.io "%s/%s" not found'
                               % (route.ns, route.name), {"name": route.name, "group": "metrics.k8s.io",
                                                          "kind": "pods"})
            return self.send_json(200, out[0])
        for o in out:
            o.pop("kind")
            o.pop("apiVersion")
        self.send_json(200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                             "items": out})

    # ------------------------------------------------------------ resources
    def field_validation(self, q):
        fv = q.get("fieldValidation") or self.server.app.cfg.field_validation
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request("fieldValidation parameter unsupported: %s" % fv)
        return fv

    def dry_run(self, q):
        dr = q.get("dryRun")
        if dr and dr != "All":
            raise bad_request('dryRun: Unsupported value: "%s": supported values: "All"' % dr)
        return dr == "All"

    def h_resource(self, route, q, body):
        getattr(self, "r_" + route.verb)(route, q, body)

    def r_get(self, route, q, body):
        app = self.server.app
        if route.sub == "log":
            return self.serve_log(route, q)
        obj = app.store.require(route.res, route.ns, route.name)
        self.send_json(200, self.present(route, obj))

    def present(self, route, obj):
        accept = self.headers.get("Accept") or ""
        if "as=Table" in accept:
            return tables.table(route.res, [obj], obj["metadata"]["resourceVersion"],
                                q_include(self.path))
        if "as=PartialObjectMetadata" in accept:
            return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        return obj

    def selectors(self, route, q):
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = parse_field_selector(q.get("fieldSelector"), route.res)
        return lambda o: match_labels(lsel, o["metadata"].get("labels")) and match_fields(fsel, o)

    def r_list(self, route, q, body):
        app = self.server.app
        pred = self.selectors(route, q)
        rv, match = q.get("resourceVersion"), q.get("resourceVersionMatch")
        if match and match not in ("Exact", "NotOlderThan"):
            raise bad_request('resourceVersionMatch: Unsupported value: "%s"' % match)
        if match and not rv:
            raise ApiError(422, "Invalid", "resourceVersionMatch is forbidden unless resourceVersion is provided")
        if rv and rv != "0" and match == "Exact":
            try:
                want = int(rv)
            except ValueError:
                raise bad_request('invalid resource version "%s"' % rv)
            if want < app.store.oldest_rv or app.faults.take_expire_rv():
                raise ApiError(410, "Expired", "too old resource version: %s (%d)" % (rv, app.store.oldest_rv + 1))
        items, cur = app.store.list(route.res, route.ns or None, pred)
        start = 0
        cont = q.get("continue")
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont.encode() + b"==="))
                after, trv = tok["start"], int(tok["rv"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version "
                                  "meta.k8s.io/v1)")
            if trv < app.store.oldest_rv:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                               "list result. You can start a new list without the continue parameter, or use the "
                               "continue token in this response to retrieve the remainder of the results. "
                               "Continuing with the provided token results in an inconsistent list - objects that "
                               "were created, modified, or deleted between the time the first chunk was returned "
                               "and now may show up in the list.")
            keys = ["%s/%s" % (o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]
            start = next((i for i, k in enumerate(keys) if k > after), len(items))
            cur = trv
        items = items[start:]
        next_tok, remaining = None, None
        limit = q.get("limit")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise bad_request("limit: invalid value %s" % limit)
            if 0 < n < len(items):
                last = items[n - 1]["metadata"]
                next_tok = base64.urlsafe_b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": cur, "start": "%s/%s" % (last.get("namespace", ""),
                                                                          last["name"])}).encode()).decode().rstrip("=")
                remaining = len(items) - n
                items = items[:n]
        accept = self.headers.get("Accept") or ""
        if "as=Table" in accept:
            return self.send_json(200, tables.table(route.res, items, cur, q.get("includeObject", "Metadata"),
                                                    next_tok, remaining))
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        md = {"resourceVersion": str(cur)}
        if next_tok:
            md["continue"] = next_tok
            md["remainingItemCount"] = remaining
        if "as=PartialObjectMetadataList" in accept:
            return self.send_json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                        "metadata": md, "items": [{"metadata": o["metadata"]} for o in items]})
        self.send_json(200, {"kind": route.res.list_kind, "apiVersion": route.res.api_version, "metadata": md,
                             "items": items})

    def r_create(self, route, q, body):
        app = self.server.app
        fv = self.field_validation(q)
        obj, warnings = app.admission.decode(route.res, body, fv)
        out, w2 = app.registry.create(route.res, route.ns, obj, dry_run=self.dry_run(q), field_validation=fv)
        self.send_json(201, out, warnings=warnings + w2)

    def r_update(self, route, q, body):
        app = self.server.app
        fv = self.field_validation(q)
        obj, warnings = app.admission.decode(route.res, body, fv)
        out, w2 = app.registry.update(route.res, route.ns, route.name, obj, self.dry_run(q), fv)
        self.send_json(200, out, warnings=warnings + w2)

    def r_patch(self, route, q, body):
        app = self.server.app
        fv = self.field_validation(q)
        out, w = app.registry.patch(route.res, route.ns, route.name, body, self.headers.get("Content-Type"),
                                    self.dry_run(q), fv)
        self.send_json(200, out, warnings=w)

    def delete_options(self, q, body):
        opts = {}
        if body:
            try:
                opts = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise bad_request("DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions: %s" % e)
            if not isinstance(opts, dict):
                raise bad_request("DeleteOptions in version \"v1\" cannot be handled as a DeleteOptions")
        prop = q.get("propagationPolicy") or opts.get("propagationPolicy")
        grace = q.get("gracePeriodSeconds", opts.get("gracePeriodSeconds"))
        if grace is not None:
            try:
                grace = int(grace)
            except (TypeError, ValueError):
                raise bad_request("gracePeriodSeconds: invalid value %r" % grace)
        orphan = q.get("orphanDependents", opts.get("orphanDependents"))
        if isinstance(orphan, str):
            orphan = orphan in TRUE
        dry = q.get("dryRun") == "All" or "All" in (opts.get("dryRun") or [])
        return prop, grace, opts.get("preconditions"), dry, orphan

    def r_delete(self, route, q, body):
        app = self.server.app
        prop, grace, pre, dry, orphan = self.delete_options(q, body)
        out, code, warnings = app.registry.delete(route.res, route.ns, route.name, prop, grace, pre, dry, orphan)
        self.send_json(code, out, warnings=warnings)

    def r_deletecollection(self, route, q, body):
        app = self.server.app
        prop, grace, pre, dry, orphan = self.delete_options(q, body)
        items, cur = app.store.list(route.res, route.ns or None, self.selectors(route, q))
        warnings = []
        for o in items:
            try:
                _, _, w = app.registry.delete(route.res, o["metadata"].get("namespace"), o["metadata"]["name"],
                                              prop, grace, None, dry, orphan)
                warnings = w
            except ApiError as e:
                if e.code != 404:
                    raise
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        self.send_json(200, {"kind": route.res.list_kind, "apiVersion": route.res.api_version,
                             "metadata": {"resourceVersion": str(app.store.rv)}, "items": items},
                       warnings=warnings)

    # ------------------------------------------------------------ watch
    def r_watch(self, route, q, body):
        app = self.server.app
        res = route.res
        pred = self.selectors(route, q)
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else app.cfg.watch_timeout
        except ValueError:
            raise bad_request("timeoutSeconds: invalid value %s" % q.get("timeoutSeconds"))
        bookmarks = q.get("allowWatchBookmarks") in TRUE
        rv = q.get("resourceVersion", "")
        initial_flag = q.get("sendInitialEvents")
        if initial_flag in TRUE and q.get("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                           "resourceVersionMatch to NotOlderThan")
        send_initial = initial_flag in TRUE or (initial_flag is None and rv in ("", "0"))
        deadline = time.monotonic() + max(0.0, timeout)
        drop_after = app.faults.take_watch_drop()
        expired_err = None
        initial = []
        with app.store.lock:
            if rv not in ("", "0") and not send_initial:
                if app.faults.take_expire_rv():
                    expired_err = ApiError(410, "Expired", "too old resource version: %s (%d)" % (rv, app.store.rv))
                else:
                    try:
                        idx = app.store.watch_start(rv)
                    except ApiError as e:
                        if e.code != 410:
                            raise
                        expired_err = e
            if expired_err is None and (rv in ("", "0") or send_initial):
                idx, _ = app.store.position_now()
                initial, cur_rv = app.store.list(res, route.ns or None, pred)
        self.start_chunked("application/json")
        sent = [0]

        def emit(type_, obj):
            self.chunk((json.dumps({"type": type_, "object": obj}) + "\n").encode())
            sent[0] += 1
            if drop_after is not None and sent[0] >= drop_after:
                raise _Abort()
        if drop_after == 0:
            raise _Abort()
        if expired_err is not None:
            emit("ERROR", expired_err.status())
            self.end_chunked()
            return
        kind, av = res.kind, res.api_version
        for o in initial:
            emit("ADDED", o)
        if initial_flag in TRUE and bookmarks:
            emit("BOOKMARK", {"kind": kind, "apiVersion": av, "metadata": {
                "resourceVersion": str(cur_rv), "annotations": {"k8s.io/initial-events-end": "true"}}})
        next_bm = time.monotonic() + app.cfg.bookmark_interval
        last_rv = None
        while not app.stopping.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            wait_until = min(deadline, next_bm) if bookmarks else deadline
            try:
                evs, idx = app.store.events_since(idx, wait_until)
            except ApiError as e:
                emit("ERROR", e.status())
                break
            for ev in evs:
                last_rv = ev.rv
                if ev.res is not res:
                    continue
                md = ev.obj["metadata"]
                if route.ns and md.get("namespace") != route.ns:
                    continue
                new_ok = pred(ev.obj)
                old_ok = ev.old is not None and pred(ev.old)
                if ev.type == "ADDED":
                    t = "ADDED" if new_ok else None
                elif ev.type == "DELETED":
                    t = "DELETED" if (new_ok or old_ok) else None
                else:
                    t = ("MODIFIED" if old_ok else "ADDED") if new_ok else ("DELETED" if old_ok else None)
                if t:
                    emit(t, ev.obj)
            if bookmarks and time.monotonic() >= next_bm:
                with app.store.lock:
                    bm_rv = app.store.rv if idx >= app.store.log_base + len(app.store.log) else last_rv
                if bm_rv:
                    emit("BOOKMARK", {"kind": kind, "apiVersion": av, "metadata": {"resourceVersion": str(bm_rv)}})
                next_bm = time.monotonic() + app.cfg.bookmark_interval
        self.end_chunked()

    # ------------------------------------------------------------ logs
    def serve_log(self, route, q):
        app = self.server.app
        pod = app.store.require(PODS, route.ns, route.name)
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init_names = [c["name"] for c in spec.get("initContainers") or []]
        cname = q.get("container")
        if not cname:
            if len(names) == 1 and not init_names:
                cname = names[0]
            else:
                msg = "a container name must be specified for pod %s, choose one of: [%s]" % (route.name,
                                                                                             " ".join(names))
                if init_names:
                    msg += " or one of the init containers: [%s]" % " ".join(init_names)
                raise bad_request(msg)
        if cname not in names + init_names:
            raise bad_request("container %s is not valid for pod %s" % (cname, route.name))
        stream = q.get("stream")
        if app.faults.no_log_stream_param():
            stream = None
        elif stream is not None:
            if stream not in ("All", "Stdout", "Stderr"):
                raise ApiError(422, "Invalid", 'PodLogOptions "%s" is invalid: stream: Unsupported value: "%s": '
                               'supported values: "All", "Stderr", "Stdout"' % (route.name, stream))
            if stream != "All" and q.get("tailLines"):
                raise ApiError(422, "Invalid", 'PodLogOptions "%s" is invalid: tailLines: Forbidden: tailLines is '
                               'not supported when specifying a stream other than All' % route.name)
        want = {"Stdout": ("stdout",), "Stderr": ("stderr",)}.get(stream, ("stdout", "stderr"))
        follow = q.get("follow") in TRUE
        stamps = q.get("timestamps") in TRUE
        previous = q.get("previous") in TRUE
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
            since = time.time() - int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        except ValueError:
            raise bad_request("invalid log options")
        if q.get("sinceTime"):
            _, since = docker_time(q["sinceTime"])
        if not spec.get("nodeName"):
            self.start_chunked("text/plain")
            self.end_chunked()
            return
        w = app.kubelet.find_worker(pod["metadata"]["uid"])
        c = None
        if w:
            c = next((x for x in w.cs + w.init_cs if x.name == cname), None)
        if previous:
            if c is None or len(c.logs) < 2:
                raise bad_request('previous terminated container "%s" in pod "%s" not found' % (cname, route.name))
            buf = c.logs[-2]
        else:
            if c is None or not c.logs:
                st = next((s for s in (pod.get("status") or {}).get("containerStatuses", []) +
                           (pod.get("status") or {}).get("initContainerStatuses", []) if s.get("name") == cname), {})
                reason = ((st.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
                reason = {"ErrImagePull": "trying and failing to pull image",
                          "ImagePullBackOff": "image can't be pulled"}.get(reason, reason)
                if (st.get("state") or {}).get("terminated"):
                    self.start_chunked("text/plain")
                    self.end_chunked()
                    return
                raise bad_request('container "%s" in pod "%s" is waiting to start: %s' % (cname, route.name, reason))
            buf = c.logs[-1]
        self.start_chunked("text/plain")
        pos = 0
        with buf.cond:
            if tail is not None:
                idxs = [i for i, e in enumerate(buf.entries) if e[2] in want and (since is None or e[1] >= since)]
                pos = idxs[-tail] if 0 < tail <= len(idxs) else (len(buf.entries) if tail == 0 else 0)
        written = 0
        while True:
            with buf.cond:
                while pos >= len(buf.entries) and not buf.done and follow and not app.stopping.is_set():
                    buf.cond.wait(0.5)
                    if w is not None and w.finished.is_set() and w.stop_reason == "gone":
                        break
                batch = buf.entries[pos:]
                pos = len(buf.entries)
                done = buf.done or not follow or app.stopping.is_set() or (
                    w is not None and w.finished.is_set() and w.stop_reason == "gone")
            out = []
            for ts, t, s, data in batch:
                if s not in want or (since is not None and t < since):
                    continue
                out.append((ts.encode() + b" " if stamps else b"") + data)
            data = b"".join(out)
            if limit is not None and written + len(data) > limit:
                data = data[:limit - written]
            if data:
                self.chunk(data)
                written += len(data)
            if done or (limit is not None and written >= limit):
                break
        self.end_chunked()

    # ------------------------------------------------------------ control API
    def control(self, method, path, body):
        app = self.server.app
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError) as e:
            return self.send_json(400, {"error": "invalid JSON: %s" % e})
        if path == "/_fake/stats":
            if method == "GET":
                return self.send_json(200, app.stats.snapshot())
            if method == "DELETE":
                app.stats.reset()
                return self.send_json(200, app.stats.snapshot())
        elif path == "/_fake/faults":
            try:
                if method == "POST":
                    app.faults.update(data)
                elif method == "DELETE":
                    app.faults.clear()
                elif method != "GET":
                    return self.send_json(405, {"error": "method not allowed"})
            except FaultError as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, app.faults.snapshot())
        elif path == "/_fake/containers" and method == "GET":
            return self.send_json(200, app.kubelet.container_list())
        elif path == "/_fake/shutdown" and method == "POST":
            self.send_json(200, {"shutdown": True})
            threading.Thread(target=app.request_stop, daemon=True).start()
            return
        self.send_json(404, {"error": "unknown control endpoint %s %s" % (method, path)})


def q_include(path):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return (q.get("includeObject") or ["Metadata"])[-1]

