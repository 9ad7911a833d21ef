#!/usr/bin/env python3
"""Serves a built bench-wasm dist directory on a free 127.0.0.1 port, opens its
index.html in headless Chromium through chromedriver (WebDriver), waits until the page
has written its results into <pre id="results">, and prints them (JSON) on stdout.

    run.py DIST [QUERY]       e.g. run.py target/wasm-bench-dist 'sizes=300x2500x5x30'

The server sends the cross-origin isolation headers, so performance.now() has
Chromium's fine resolution (5 us) instead of the coarse default (100 us).
Environment: CHROMIUM, CHROMEDRIVER (defaults /usr/bin/chromium, /usr/bin/chromedriver),
WASM_BENCH_TIMEOUT_S (default 1200).
"""

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webdriver(base, method, path, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"WebDriver {method} {path}: {e.read().decode(errors='replace')}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    dist = os.path.abspath(sys.argv[1])
    query = sys.argv[2] if len(sys.argv) > 2 else ""
    limit = float(os.environ.get("WASM_BENCH_TIMEOUT_S", "1200"))

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=dist))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{server.server_address[1]}/index.html" + (f"?{query}" if query else "")

    port = free_port()
    driver = subprocess.Popen(
        [os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    session = None
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("chromedriver did not start listening")
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as profile:
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "timeouts": {"script": int(limit * 1000), "pageLoad": int(limit * 1000)},
                "goog:chromeOptions": {
                    "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage", f"--user-data-dir={profile}"],
                }}}}
            session = webdriver(base, "POST", "/session", caps)["sessionId"]
            s = f"/session/{session}"
            version = webdriver(base, "POST", s + "/execute/sync", {
                "script": "return navigator.userAgent", "args": []})
            print(f"browser: {version}", file=sys.stderr)
            webdriver(base, "POST", s + "/url", {"url": page}, timeout=limit)
            probe = {"script": """
                const r = document.getElementById('results');
                return r && (r.dataset.done || r.dataset.error) ? r.textContent : null;""",
                     "args": []}
            deadline = time.monotonic() + limit
            while True:
                text = webdriver(base, "POST", s + "/execute/sync", probe, timeout=limit)
                if text is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no results after {limit:.0f} s")
                time.sleep(0.5)
            webdriver(base, "DELETE", s)
            session = None
    finally:
        if session is not None:
            try:
                webdriver(base, "DELETE", f"/session/{session}")
            except Exception:
                pass
        driver.terminate()
        driver.wait()
        server.shutdown()
    report = json.loads(text)
    print(json.dumps(report, indent=1))
    for r in report.get("runs", []):
        o = r["outcome"]
        print(f"\n{r['nodes']} nodes / {r['edges']} edges ({r['iterations']} iterations after "
              f"{r['warmup']} warm-ups; pruned to {o['pruned_nodes']} nodes / {o['pruned_edges']} "
              f"edges; generation {r['generate_ms']:.0f} ms)", file=sys.stderr)
        print("| step | median ms | p90 ms | min ms |", file=sys.stderr)
        for step in r["steps"]:
            m = r["summary"][step]
            print(f"| {step} | {m['median']:.3f} | {m['p90']:.3f} | {m['min']:.3f} |",
                  file=sys.stderr)
    if "error" in report:
        sys.exit(1)


if __name__ == "__main__":
    main()
