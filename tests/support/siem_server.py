#!/usr/bin/env python3
"""siem_server.py - a SIEM endpoint for tests/integration/test_audit.c.

    siem_server.py DIR TOKEN

Listens on 127.0.0.1 on a free port and writes it to DIR/port.  Every
request reads DIR/mode (default "ok"; the test replaces the file to switch):

  ok                 store the records, answer 200
  fail               answer 500, store nothing
  stall              read the request, store nothing, never answer (hold the
                     connection until the mode changes): the client times out
  stall_after_store  store the records, then never answer: the client times
                     out and sends the batch again (at-least-once duplicates)

A request without "Authorization: Bearer TOKEN" gets 401.  The body must be
a JSON array of objects (else 400).  Stored records are appended to
DIR/received.jsonl, one line each, {"mode": ..., "record": {...}}, flushed
and fsynced before the answer.  DIR/stats.json counts requests per outcome
(ok, fail, stall, stall_after_store, unauthorized, bad), replaced atomically
after each request.  The server exits when its parent process does.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
TOKEN = sys.argv[2]
LOCK = threading.Lock()
STATS = {k: 0 for k in ("ok", "fail", "stall", "stall_after_store", "unauthorized", "bad")}
STALL_LIMIT_SECONDS = 120


def mode():
    try:
        with open(os.path.join(DIR, "mode")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


def count(outcome):
    with LOCK:
        STATS[outcome] += 1
        tmp = os.path.join(DIR, "stats.json.tmp")
        with open(tmp, "w") as f:
            json.dump(STATS, f)
        os.replace(tmp, os.path.join(DIR, "stats.json"))


def store(records, how):
    with LOCK:
        with open(os.path.join(DIR, "received.jsonl"), "a") as f:
            for r in records:
                f.write(json.dumps({"mode": how, "record": r}) + "\n")
            f.flush()
            os.fsync(f.fileno())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status):
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hold(self, held_mode):
        deadline = time.monotonic() + STALL_LIMIT_SECONDS
        while mode() == held_mode and time.monotonic() < deadline:
            time.sleep(0.05)
        self.close_connection = True  # never answered

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            count("unauthorized")
            return self.answer(401)
        try:
            records = json.loads(body)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError("not an array of objects")
        except ValueError:
            count("bad")
            return self.answer(400)
        m = mode()
        if m == "fail":
            count("fail")
            return self.answer(500)
        if m == "stall":
            count("stall")
            return self.hold(m)
        store(records, m)
        count("stall_after_store" if m == "stall_after_store" else "ok")
        if m == "stall_after_store":
            return self.hold(m)
        return self.answer(200)


def exit_with_parent():
    """A test that fails does not stop us: leave when it is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = os.path.join(DIR, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, os.path.join(DIR, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
