"""A small Docker Engine API client (API 1.41) over a unix socket or tcp://, standard library only."""

import http.client
import json
import socket
import struct
import urllib.parse

API = "/v1.41"


class EngineError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class DockerEngine:
    def __init__(self, host):
        self.host = host or "unix:///var/run/docker.sock"

    def _conn(self, timeout):
        if self.host.startswith("unix://"):
            return _UnixConnection(self.host[len("unix://"):], timeout)
        u = urllib.parse.urlparse(self.host.replace("tcp://", "http://", 1))
        return http.client.HTTPConnection(u.hostname, u.port or 2375, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120, query=None):
        """-> (status, parsed JSON or bytes). Raises EngineError on a transport problem."""
        url = API + path + ("?" + urllib.parse.urlencode(query) if query else "")
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn = self._conn(timeout)
        try:
            conn.request(method, url, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise EngineError(0, "cannot reach the Docker engine at %s: %s" % (self.host, e))
        finally:
            conn.close()
        ct = resp.getheader("Content-Type", "")
        if "json" in ct and raw:
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                pass
        return resp.status, raw

    def _check(self, status, data, ok=(200, 201, 204, 304)):
        if status not in ok:
            msg = data.get("message") if isinstance(data, dict) else (data.decode("utf-8", "replace")
                                                                     if isinstance(data, bytes) else str(data))
            raise EngineError(status, (msg or "").strip())
        return data

    def ping(self):
        st, data = self.request("GET", "/_ping", timeout=10)
        return st == 200

    def image_inspect(self, image):
        st, data = self.request("GET", "/images/%s/json" % urllib.parse.quote(image, safe="/:@"))
        if st == 404:
            return None
        return self._check(st, data)

    def pull(self, image, auth_b64=None):
        """Pull an image; raises EngineError with the engine's message on failure."""
        ref, tag = split_image(image)
        q = {"fromImage": ref}
        if tag:
            q["tag"] = tag
        hdrs = {"X-Registry-Auth": auth_b64} if auth_b64 else {}
        st, data = self.request("POST", "/images/create", headers=hdrs, query=q, timeout=600)
        self._check(st, data)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else json.dumps(data)
        for line in text.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("error"):
                raise EngineError(500, msg.get("error"))

    def remove_image(self, image):
        st, data = self.request("DELETE", "/images/%s" % urllib.parse.quote(image, safe="/:@"))
        return st in (200, 404)

    def create(self, name, config):
        st, data = self.request("POST", "/containers/create", body=config, query={"name": name})
        return self._check(st, data, ok=(201,))["Id"]

    def start(self, cid):
        st, data = self.request("POST", "/containers/%s/start" % cid)
        self._check(st, data)

    def wait(self, cid):
        st, data = self.request("POST", "/containers/%s/wait" % cid, timeout=None)
        return self._check(st, data).get("StatusCode")

    def inspect(self, cid):
        st, data = self.request("GET", "/containers/%s/json" % cid)
        if st == 404:
            return None
        return self._check(st, data)

    def stop(self, cid, grace):
        st, data = self.request("POST", "/containers/%s/stop" % cid, query={"t": str(int(grace))},
                                timeout=max(30, grace + 30))
        if st not in (204, 304, 404):
            self._check(st, data)

    def kill(self, cid, signal="KILL"):
        st, data = self.request("POST", "/containers/%s/kill" % cid, query={"signal": signal})
        return st == 204

    def remove(self, cid):
        st, data = self.request("DELETE", "/containers/%s" % cid, query={"force": "1", "v": "1"})
        return st in (204, 404)

    def list_by_label(self, label):
        st, data = self.request("GET", "/containers/json",
                                query={"all": "1", "filters": json.dumps({"label": [label]})})
        return [c["Id"] for c in self._check(st, data)]

    def stats(self, cid):
        st, data = self.request("GET", "/containers/%s/stats" % cid, query={"stream": "0"}, timeout=30)
        if st != 200:
            return None
        return data if isinstance(data, dict) else None

    def logs_follow(self, cid, on_frame, follow=True):
        """Follow the container's log from its start until it exits: on_frame(stream, payload)
        per multiplexed frame ('stdout'/'stderr'; payload starts with the RFC 3339 timestamp).
        With follow=False: the log as it is now."""
        conn = self._conn(None)
        try:
            conn.request("GET", API + "/containers/%s/logs?follow=%d&stdout=1&stderr=1&timestamps=1"
                         % (cid, 1 if follow else 0))
            resp = conn.getresponse()
            if resp.status != 200:
                raise EngineError(resp.status, resp.read().decode("utf-8", "replace"))
            while True:
                hdr = _read_exact(resp, 8)
                if not hdr:
                    return
                kind, size = struct.unpack(">BxxxL", hdr)
                payload = _read_exact(resp, size)
                on_frame("stderr" if kind == 2 else "stdout", payload)
        finally:
            conn.close()


def _read_exact(resp, n):
    buf = b""
    while len(buf) < n:
        chunk = resp.read(n - len(buf))
        if not chunk:
            return buf if buf else b""
        buf += chunk
    return buf


def split_image(image):
    """'reg:5000/a/b:tag' -> ('reg:5000/a/b', 'tag'); digests stay in the name."""
    if "@" in image:
        return image, ""
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"


def registry_of(image):
    """The registry host named by an image reference, or '' for Docker Hub / local names."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""
