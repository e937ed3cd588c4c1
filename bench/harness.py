#!/usr/bin/env python3
"""`make bench`: Tollgate against nginx (a bare reverse proxy) and a direct call, in one run.

Starts, on loopback, the release mock provider, nginx (bench/nginx.conf.template) and Tollgate
(API-key auth, a team BudgetPolicy with a USD budget and a token-per-minute limit in the memory
store, metrics, the audit log; see MANIFEST; `--otlp-closed` also points trace export at a
closed port), drives each with oha at fixed rates and at maximum,
for whole and streamed (20-chunk) chat completions, measures time to first byte of streams and
Tollgate's RSS idle and under 1,000 open streams, prints one table of ratios and writes the raw
results to bench/results/. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
KEY = "tg-bench-key-0001"
BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello to the benchmark"}]})
STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "Say hello"}]})

MANIFEST = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: bench, namespace: default}}
spec:
  gatewayClassName: tollgate
  listeners: [{{name: http, protocol: HTTP, port: {port}}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: upstream, namespace: default}}
stringData: {{apiKey: sk-bench}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {{name: mock, namespace: default}}
spec:
  type: OpenAI
  endpoint: http://127.0.0.1:{upstream}
  auth: {{secretRef: {{name: upstream, key: apiKey}}}}
  models:
    - name: gpt-4o-mini
      pricing: {{inputPerMillionTokens: "0.15", outputPerMillionTokens: "0.60"}}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {{name: chat, namespace: default}}
spec:
  parentRefs: [{{name: bench}}]
  rules:
    - matches: [{{model: gpt-4o-mini}}]
      backends: [{{provider: mock}}]
---
apiVersion: v1
kind: Secret
metadata:
  name: bench-key
  namespace: default
  labels: {{tollgate.dev/api-key: "true", tollgate.dev/team: bench}}
stringData: {{key: {key}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: BudgetPolicy
metadata: {{name: bench-team, namespace: default}}
spec:
  subject: {{kind: Team, name: bench}}
  limits:
    - {{window: Month, usd: "1000000"}}
    - {{window: Minute, tokens: 1000000000}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """The mock, nginx and Tollgate, started in a temporary folder and stopped on exit."""

    def __init__(self, workers: int, otlp_closed: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
        os.chmod(self.dir, 0o777)
        self.procs: list[subprocess.Popen] = []
        self.mock_port, self.nginx_port, self.tollgate_port, self.admin_port = (free_port() for _ in range(4))
        self.start([str(RELEASE / "tollgate-mock"), "--listen", f"127.0.0.1:{self.mock_port}", "--chunks", "20"], "mock")
        wait_port(self.mock_port)
        conf = (ROOT / "bench" / "nginx.conf.template").read_text()
        for name, value in {"WORKERS": workers, "DIR": self.dir, "PORT": self.nginx_port, "UPSTREAM_PORT": self.mock_port}.items():
            conf = conf.replace("${" + name + "}", str(value))
        (self.dir / "nginx.conf").write_text(conf)
        nginx = [shutil.which("nginx") or "/usr/sbin/nginx", "-e", str(self.dir / "error.log"), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]
        if os.geteuid() == 0:  # run it unprivileged
            nginx = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *nginx]
        self.start(nginx, "nginx")
        wait_port(self.nginx_port)
        manifests = self.dir / "manifests"
        manifests.mkdir()
        (manifests / "bench.yaml").write_text(MANIFEST.format(port=self.tollgate_port, upstream=self.mock_port, key=KEY))
        env = {**os.environ, "RUST_LOG": "warn", "TOKIO_WORKER_THREADS": str(workers)}
        argv = [str(RELEASE / "tollgate"), "run", "-f", str(manifests), "--admin-addr", f"127.0.0.1:{self.admin_port}",
                "--audit-log", str(self.dir / "audit.jsonl")]
        if otlp_closed:
            argv += ["--otlp-endpoint", f"http://127.0.0.1:{free_port()}"]
        self.tollgate = self.start(argv, "tollgate", env)
        wait_port(self.tollgate_port)

    def start(self, argv: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def targets(self) -> dict[str, int]:
        return {"direct": self.mock_port, "nginx": self.nginx_port, "tollgate": self.tollgate_port}

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def oha(port: int, body: str, seconds: float, rate: int | None, connections: int) -> dict:
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections),
            "-m", "POST", "-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json",
            "-d", body, f"http://127.0.0.1:{port}/v1/chat/completions"]
    if rate:
        argv[1:1] = ["-q", str(rate)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    raw = json.loads(out)
    pct = raw.get("latencyPercentiles", {})
    summary = raw.get("summary", {})
    statuses = raw.get("statusCodeDistribution", {})
    total = sum(statuses.values()) + sum(raw.get("errorDistribution", {}).values())
    return {
        "rps": summary.get("requestsPerSec"),
        "p50_ms": (pct.get("p50") or 0) * 1000,
        "p99_ms": (pct.get("p99") or 0) * 1000,
        "p999_ms": (pct.get("p99.9") or 0) * 1000,
        "errors": total - statuses.get("200", 0),
        "requests": total,
    }


def first_byte_times(port: int, samples: int) -> list[float]:
    """Time to the first body byte of streamed completions, one at a time, in milliseconds."""
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(STREAM_BODY)}\r\n\r\n{STREAM_BODY}").encode()
    times = []
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(samples):
            started = time.perf_counter()
            conn.sendall(request)
            received = b""
            while b"data: " not in received:
                received += conn.recv(65536)
            times.append((time.perf_counter() - started) * 1000)
            while not received.endswith(b"0\r\n\r\n"):
                received += conn.recv(65536)
    return times


def open_streams(port: int, count: int, hold: float) -> list[socket.socket]:
    """Opens `count` slow streams through `port` and leaves them open."""
    body = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hold"}]})
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
               f"x-mock-chunks: 100\r\nx-mock-chunk-interval-ms: {int(hold * 10)}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        sockets.append(s)
    for s in sockets:
        s.settimeout(10)
        s.recv(1)  # the stream has begun
    return sockets


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10, help="duration of each load step")
    parser.add_argument("--workers", type=int, default=2, help="nginx workers and Tollgate threads")
    parser.add_argument("--connections", type=int, default=64, help="connections for the maximum-rate steps")
    parser.add_argument("--otlp-closed", action="store_true",
                        help="also export traces to a closed port (export must not slow requests)")
    args = parser.parse_args()
    stack = Stack(args.workers, otlp_closed=args.otlp_closed)
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": args.seconds,
                     "workers": args.workers, "otlp_closed": args.otlp_closed, "steps": {}}
    try:
        time.sleep(1)
        results["tollgate_rss_idle_mib"] = rss_mib(stack.tollgate.pid)
        for body_name, body in (("whole", BODY), ("stream", STREAM_BODY)):
            for rate in (1000, 3000, None):
                step = f"{body_name}@{rate or 'max'}"
                results["steps"][step] = {}
                for target, port in stack.targets().items():
                    connections = args.connections if rate is None else 50
                    results["steps"][step][target] = oha(port, body, args.seconds, rate, connections)
                    print(f"{step:14} {target:9} {json.dumps(results['steps'][step][target])}", flush=True)
        results["first_byte_ms"] = {}
        for target, port in stack.targets().items():
            times = first_byte_times(port, 1000)
            results["first_byte_ms"][target] = {"p50": statistics.median(times), "p99": percentile(times, 0.99)}
        streams = open_streams(stack.tollgate_port, 1000, hold=15)
        time.sleep(1)
        results["tollgate_rss_1000_streams_mib"] = rss_mib(stack.tollgate.pid)
        for s in streams:
            s.close()
    finally:
        stack.stop()
    out = ROOT / "bench" / "results" / f"bench-{results['started'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nraw results: {out.relative_to(ROOT)}")
    return 0


def print_table(results: dict) -> None:
    print("\nstep            target    rps      p50 ms  p99 ms  p99.9 ms  errors  added p50 / p99 (ms)")
    for step, targets in results["steps"].items():
        direct = targets["direct"]
        for target, r in targets.items():
            added = "" if target == "direct" else f"{r['p50_ms'] - direct['p50_ms']:.3f} / {r['p99_ms'] - direct['p99_ms']:.3f}"
            print(f"{step:15} {target:9} {r['rps']:8.0f} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r['p999_ms']:9.3f} {r['errors']:7d}  {added}")
        t, n = targets["tollgate"], targets["nginx"]
        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}" if b > 0 else "n/a"
        if step.endswith("@max"):
            print(f"{'':15} tollgate/nginx throughput: {ratio(t['rps'], n['rps'])}")
        else:
            print(f"{'':15} tollgate/nginx added p50: {ratio(t['p50_ms'] - direct['p50_ms'], n['p50_ms'] - direct['p50_ms'])}"
                  f"  added p99: {ratio(t['p99_ms'] - direct['p99_ms'], n['p99_ms'] - direct['p99_ms'])}")
    fb = results["first_byte_ms"]
    for target in ("nginx", "tollgate"):
        print(f"stream first byte {target}: added p99 {fb[target]['p99'] - fb['direct']['p99']:.3f} ms")
    print(f"tollgate RSS: idle {results['tollgate_rss_idle_mib']:.1f} MiB, 1,000 open streams {results['tollgate_rss_1000_streams_mib']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
