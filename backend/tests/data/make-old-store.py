#!/usr/bin/env python3
"""Writes a small, populated store with an `epicenter` binary of an earlier schema
version, for the migration test (backend/tests/migration.rs).

    python3 backend/tests/data/make-old-store.py EPICENTER_BIN OUT.redb

It runs the binary as a user would: `token create`, `user create`, then `serve` on a
loopback port, and through the HTTP API ingests six hours of call statistics from two
sources, site activity and two config changes, signs in, makes three marks (a known
anomaly, an incident, a new trend) and closes one, and waits for the detection loop to
store its analyses. The data ends at the latest complete bucket; the test finds the times
from the store. The server is stopped with SIGTERM before the file is copied.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

END = int(time.time()) // 300 * 300 - 300  # the data ends at a recent bucket
TICKS = 72  # six hours of five-minute buckets
PASSWORD = "old-store-password"


def run(binary, *args, stdin=None):
    out = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, check=True)
    return out.stdout


def request(base, method, path, body=None, headers=None, media="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else body.encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", media)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.headers, res.read().decode()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read().decode()}") from e


def main():
    binary, out = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp()
    data = os.path.join(work, "data")
    token_a = run(binary, "token", "create", "--name", "collector-a", "--scope", "ingest",
                  "--data-dir", data).strip().split()[-1]
    token_b = run(binary, "token", "create", "--name", "collector-b", "--scope", "ingest",
                  "--data-dir", data).strip().split()[-1]
    run(binary, "user", "create", "--name", "carol", "--display-name", "Carol Old", "--scope", "read",
        "--scope", "write", "--password-stdin", "--data-dir", data, stdin=PASSWORD + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, EPICENTER__DETECTION__BACKFILL_HOURS="12",
               EPICENTER__RETENTION__SERVER_PAIRS_HOURS="10000")
    server = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                               "--static-dir", work], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                request(base, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        start = END - TICKS * 300
        lines_a, lines_b, activity = [], [], []
        for i in range(TICKS):
            ts = start + i * 300
            slow = 40.0 if i >= TICKS - 6 else 0.0  # the last half hour: db slower
            for web in ("web-1", "web-2"):
                lines_a.append({"ts": ts, "src": web, "dst": "db-1", "method": "get",
                                "requests": 1000 + i, "errors": i % 3,
                                "latency_ms_sum": (1000 + i) * (12.0 + slow)})
            lines_b.append({"ts": ts, "src": "api-1", "dst": "web-1", "requests": 500,
                            "errors": 0, "latency_ms_sum": 500 * (30.0 + slow)})
            activity.append({"ts": ts, "value": 1000.0 + i})
        nd = lambda rows: "\n".join(json.dumps(r) for r in rows)
        request(base, "POST", "/api/v1/ingest/calls", nd(lines_a),
                {"Authorization": f"Bearer {token_a}"}, "application/x-ndjson")
        request(base, "POST", "/api/v1/ingest/calls", nd(lines_b),
                {"Authorization": f"Bearer {token_b}"}, "application/x-ndjson")
        request(base, "POST", "/api/v1/ingest/activity", nd(activity),
                {"Authorization": f"Bearer {token_a}"}, "application/x-ndjson")
        changes = [{"id": "CHG-7", "ts": END - 40 * 60, "author": "dana", "clusters": ["db-1"],
                    "description": "smaller <connection> pool", "link": "https://example.invalid/CHG-7"},
                   {"id": 8, "ts": END - 5 * 3600, "author": "erik", "clusters": ["web-1"],
                    "description": "new feature flag"}]
        request(base, "POST", "/api/v1/changes", json.dumps(changes),
                {"Authorization": f"Bearer {token_a}"})
        _, headers, body = request(base, "POST", "/api/v1/session",
                                   json.dumps({"name": "carol", "password": PASSWORD}))
        cookie = headers["Set-Cookie"].split(";")[0]
        csrf = json.loads(body)["csrf_token"]
        auth = {"Cookie": cookie, "X-CSRF-Token": csrf}
        # Wait for the loop to analyse the last tick.
        last = END - 300
        for _ in range(600):
            try:
                request(base, "GET", f"/api/v1/snapshots/{last}")
                break
            except SystemExit:
                time.sleep(0.5)
        marks = [
            {"kind": "known_anomaly", "tick": END - 3600, "edge": {"src": "web-1", "dst": "db-1"},
             "description": "nightly <backup> & compaction", "until": END + 3600},
            {"kind": "incident", "tick": last, "graph": True, "description": "db slow for everyone"},
            {"kind": "new_trend", "tick": last, "edge": {"src": "api-1", "dst": "web-1"},
             "description": "more traffic since the launch", "from": END - 1800},
        ]
        for m in marks:
            request(base, "POST", "/api/v1/marks", json.dumps(m), auth)
        request(base, "PATCH", "/api/v1/marks/1",
                json.dumps({"version": 1, "close": True, "description": "backup done"}), auth)
        # Let the re-analyses the marks started finish.
        time.sleep(5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    shutil.copyfile(os.path.join(data, "epicenter.redb"), out)
    print(json.dumps({"end": END, "token_a": token_a, "token_b": token_b, "password": PASSWORD}))


if __name__ == "__main__":
    main()
