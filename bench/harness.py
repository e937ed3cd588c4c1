#!/usr/bin/env python3
"""`make bench`: Tollgate against nginx (a bare reverse proxy) and a direct call, in one run.

Starts, on loopback, the release mock provider, nginx (bench/nginx.conf.template) and Tollgate
(API-key auth, a team BudgetPolicy with a USD budget and a token-per-minute limit in the memory
store, metrics, the audit log; see MANIFEST; `--otlp-closed` also points trace export at a
closed port), drives each with oha at fixed rates and at maximum (after --warmup seconds of the same load),
for whole and streamed (20-chunk) chat completions, in --rounds rounds where the three targets take
turns (the table shows medians, so one disturbed round does not flip a ratio), with the CPU time (user and system) each proxy (and the mock,
for direct calls) spends per request, measures time to first byte of streams and
Tollgate's RSS idle and under 1,000 open streams, and the cost of configuration swaps under load
(whole@1000 again while the manifests, with --swap-routes more AIRoutes, are rewritten every
second), prints one table of ratios and writes the raw results to bench/results/. Standard
library only.
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


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """CPU time the processes `pids` have used so far: in their own code (user), and in the
    kernel on their behalf (system: system calls, and on loopback the network stack too)."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / os.sysconf("SC_CLK_TCK"), system / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (nginx's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """The mock, nginx and Tollgate, started in a temporary folder and stopped on exit. Without
    `reference`, nginx is not started (PGO training needs none, and the image build has none)."""

    def __init__(self, workers: int, otlp_closed: bool = False, tollgate: Path = RELEASE / "tollgate",
                 mock: Path = RELEASE / "tollgate-mock", reference: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
        os.chmod(self.dir, 0o777)
        self.procs: list[subprocess.Popen] = []
        self.mock_port, self.nginx_port, self.tollgate_port, self.admin_port = (free_port() for _ in range(4))
        self.start([str(mock), "--listen", f"127.0.0.1:{self.mock_port}", "--chunks", "20"], "mock")
        wait_port(self.mock_port)
        if reference:
            self.start_nginx(workers)
        self.manifests = self.dir / "manifests"
        self.manifests.mkdir()
        self.write_manifest("")
        env = {**os.environ, "RUST_LOG": "warn", "TOLLGATE_WORKER_THREADS": str(workers)}
        # A drain shorter than stop()'s wait: Tollgate must exit by itself (an instrumented
        # build writes its profile only then).
        argv = [str(tollgate), "run", "-f", str(self.manifests), "--admin-addr", f"127.0.0.1:{self.admin_port}",
                "--audit-log", str(self.dir / "audit.jsonl"), "--drain-timeout", "5s"]
        if otlp_closed:
            argv += ["--otlp-endpoint", f"http://127.0.0.1:{free_port()}"]
        self.tollgate = self.start(argv, "tollgate", env)
        wait_port(self.tollgate_port)
        wait_port(self.admin_port)

    def start_nginx(self, workers: int) -> None:
        conf = (ROOT / "bench" / "nginx.conf.template").read_text()
        for name, value in {"WORKERS": workers, "DIR": self.dir, "PORT": self.nginx_port, "UPSTREAM_PORT": self.mock_port}.items():
            conf = conf.replace("${" + name + "}", str(value))
        (self.dir / "nginx.conf").write_text(conf)
        nginx = [shutil.which("nginx") or "/usr/sbin/nginx", "-e", str(self.dir / "error.log"), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]
        if os.geteuid() == 0:  # run it unprivileged
            nginx = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *nginx]
        self.nginx = self.start(nginx, "nginx")
        wait_port(self.nginx_port)

    def start(self, argv: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def write_manifest(self, extra: str) -> None:
        """Replaces the manifest at once (a rename), so a reload never reads half a file."""
        staged = self.dir / "bench.yaml.new"
        staged.write_text(MANIFEST.format(port=self.tollgate_port, upstream=self.mock_port, key=KEY) + extra)
        os.replace(staged, self.manifests / "bench.yaml")

    def reloads(self) -> int:
        """Configuration changes Tollgate has applied, from its metrics."""
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=5) as conn:
            conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            text = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
        return sum(int(float(line.split()[-1])) for line in text.splitlines()
                   if line.startswith("tollgate_config_reloads_total") and 'result="applied"' in line)

    def targets(self) -> dict[str, int]:
        return {"direct": self.mock_port, "nginx": self.nginx_port, "tollgate": self.tollgate_port}

    def processes(self, target: str) -> list[int]:
        """The processes that do `target`'s work (for direct calls, the mock's)."""
        if target == "nginx":
            return [self.nginx.pid, *children(self.nginx.pid)]
        return {"direct": [self.procs[0].pid], "tollgate": [self.tollgate.pid]}[target]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def oha(port: int, body: str, seconds: float, rate: int | None, connections: int,
        path: str = "/v1/chat/completions") -> dict:
    # -w: requests still open at the deadline finish and count, so every error is a real one.
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-w", "-c", str(connections),
            "-m", "POST", "-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json",
            "-d", body, f"http://127.0.0.1:{port}{path}"]
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
        "error_kinds": {**raw.get("errorDistribution", {}), **{status: n for status, n in statuses.items() if status != "200"}},
        "requests": total,
    }


def extra_routes(count: int, generation: int) -> str:
    """`count` AIRoutes more (named after `generation`, so every rewrite is a new snapshot), each
    an alias of the priced model, as a real configuration's are."""
    return "".join(
        f"---\napiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: r{generation}-{i}, namespace: default}}\n"
        f"spec: {{parentRefs: [{{name: bench}}], rules: [{{matches: [{{model: m{i}}}], backends: [{{provider: mock, model: gpt-4o-mini}}]}}]}}\n"
        for i in range(count))


def swapping(stack: Stack, routes: int, seconds: float, rate: int) -> dict:
    """whole@`rate` through Tollgate while its manifests are rewritten every second."""
    stop = threading.Event()
    written = [0]

    def rewrite() -> None:
        while not stop.wait(1.0):
            written[0] += 1
            stack.write_manifest(extra_routes(routes, written[0]))

    stack.write_manifest(extra_routes(routes, 0))
    time.sleep(2)
    before = stack.reloads()
    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        result = oha(stack.tollgate_port, BODY, seconds, rate, 50)
    finally:
        stop.set()
        writer.join()
    time.sleep(1)
    return {**result, "rewrites": written[0], "swaps": stack.reloads() - before, "routes": routes + 1}


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


def medians(runs: list[dict]) -> dict:
    """One target's rounds of a step as one result: the median of each figure (a round that the
    machine's other work disturbed moves none of them), errors and requests summed, and the
    rounds themselves."""
    merged = {key: statistics.median(run[key] for run in runs)
              for key in ("rps", "p50_ms", "p99_ms", "p999_ms", "cpu_us_per_request", "user_us_per_request",
                          "system_us_per_request")}
    merged["errors"] = sum(run["errors"] for run in runs)
    merged["requests"] = sum(run["requests"] for run in runs)
    merged["error_kinds"] = {}
    for run in runs:
        for kind, count in run["error_kinds"].items():
            merged["error_kinds"][kind] = merged["error_kinds"].get(kind, 0) + count
    merged["rounds"] = runs
    return merged


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10, help="duration of each load step")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured load before each step")
    parser.add_argument("--workers", type=int, default=2, help="nginx workers and Tollgate threads")
    parser.add_argument("--connections", type=int, default=64, help="connections for the maximum-rate steps")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of each step, the targets taking turns; the table shows each figure's median")
    parser.add_argument("--steps", default="whole@1000,whole@3000,whole@max,stream@1000,stream@3000,stream@max",
                        help="load steps to run (a quicker look while profiling; the swap ratio needs whole@1000)")
    parser.add_argument("--swap-routes", type=int, default=1000,
                        help="AIRoutes added to the configuration swapped under load")
    parser.add_argument("--tollgate", type=Path, default=RELEASE / "tollgate",
                        help="the Tollgate binary to measure (make bench passes the image's build, bench/pgo.sh)")
    parser.add_argument("--otlp-closed", action="store_true",
                        help="also export traces to a closed port (export must not slow requests)")
    args = parser.parse_args()
    stack = Stack(args.workers, otlp_closed=args.otlp_closed, tollgate=args.tollgate)
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": args.seconds,
                     "tollgate_binary": os.path.relpath(args.tollgate.resolve(), ROOT),
                     "rounds": args.rounds, "workers": args.workers, "otlp_closed": args.otlp_closed, "steps": {}}
    try:
        time.sleep(1)
        results["tollgate_rss_idle_mib"] = rss_mib(stack.tollgate.pid)
        for body_name, body in (("whole", BODY), ("stream", STREAM_BODY)):
            for rate in (1000, 3000, None):
                step = f"{body_name}@{rate or 'max'}"
                if step not in args.steps.split(","):
                    continue
                rounds: dict[str, list[dict]] = {target: [] for target in stack.targets()}
                for round_ in range(max(args.rounds, 1)):
                    for target, port in stack.targets().items():
                        connections = args.connections if rate is None else 50
                        if args.warmup > 0:
                            oha(port, body, args.warmup, rate, connections)
                        pids = stack.processes(target)
                        before = cpu_seconds(pids)
                        result = oha(port, body, args.seconds, rate, connections)
                        after = cpu_seconds(pids)
                        for key, spent in (("user", after[0] - before[0]), ("system", after[1] - before[1])):
                            result[f"{key}_us_per_request"] = spent / max(result["requests"], 1) * 1e6
                        result["cpu_us_per_request"] = result["user_us_per_request"] + result["system_us_per_request"]
                        rounds[target].append(result)
                        print(f"{step:14} {target:9} round {round_ + 1} {json.dumps(result)}", flush=True)
                results["steps"][step] = {target: medians(runs) for target, runs in rounds.items()}
        # Five thousand samples a round, in rounds with the targets taking turns: the p99 of a
        # thousand is their tenth-slowest, which one hiccup of the machine decides.
        first_bytes: dict[str, list[dict]] = {target: [] for target in stack.targets()}
        for _ in range(max(args.rounds, 1)):
            for target, port in stack.targets().items():
                times = first_byte_times(port, 5100)[100:]  # the first hundred warm up
                first_bytes[target].append({"p50": statistics.median(times), "p99": percentile(times, 0.99)})
        results["first_byte_ms"] = {target: {"p50": statistics.median(r["p50"] for r in runs),
                                             "p99": statistics.median(r["p99"] for r in runs), "rounds": runs}
                                    for target, runs in first_bytes.items()}
        # Before the swap step, which leaves --swap-routes more AIRoutes loaded: the streams are
        # measured on the benchmark's configuration, as the idle figure is.
        streams = open_streams(stack.tollgate_port, 1000, hold=15)
        time.sleep(1)
        results["tollgate_rss_1000_streams_mib"] = rss_mib(stack.tollgate.pid)
        for s in streams:
            s.close()
        results["swap"] = swapping(stack, args.swap_routes, args.seconds, 1000)
        results["swap"]["rss_after_mib"] = rss_mib(stack.tollgate.pid)
        print(f"{'whole@1000+swap':14} tollgate  {json.dumps(results['swap'])}", flush=True)
    finally:
        stack.stop()
    out = ROOT / "bench" / "results" / f"bench-{results['started'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nraw results: {out.relative_to(ROOT)}")
    return 0


def print_table(results: dict) -> None:
    print("\nstep            target    rps      p50 ms  p99 ms  p99.9 ms  errors  cpu us/req (user+sys)  added p50 / p99 (ms)")
    for step, targets in results["steps"].items():
        direct = targets["direct"]
        for target, r in targets.items():
            added = "" if target == "direct" else f"{r['p50_ms'] - direct['p50_ms']:.3f} / {r['p99_ms'] - direct['p99_ms']:.3f}"
            print(f"{step:15} {target:9} {r['rps']:8.0f} {r['p50_ms']:7.3f} {r['p99_ms']:7.3f} {r['p999_ms']:9.3f} {r['errors']:7d}"
                  f"  {r['cpu_us_per_request']:6.1f} ({r['user_us_per_request']:5.1f}+{r['system_us_per_request']:5.1f})  {added}")
        t, n = targets["tollgate"], targets["nginx"]
        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}" if b > 0 else "n/a"
        cpu = f"  cpu per request: {ratio(t['cpu_us_per_request'], n['cpu_us_per_request'])}"
        if step.endswith("@max"):
            print(f"{'':15} tollgate/nginx throughput: {ratio(t['rps'], n['rps'])}{cpu}")
        else:
            print(f"{'':15} tollgate/nginx added p50: {ratio(t['p50_ms'] - direct['p50_ms'], n['p50_ms'] - direct['p50_ms'])}"
                  f"  added p99: {ratio(t['p99_ms'] - direct['p99_ms'], n['p99_ms'] - direct['p99_ms'])}{cpu}")
    swap, steady = results["swap"], results["steps"].get("whole@1000", {}).get("tollgate")
    versus = f" = {swap['p99_ms'] / steady['p99_ms']:.2f}x steady p99" if steady else " (no whole@1000 step to compare)"
    print(f"swap under load: {swap['swaps']} swaps of {swap['routes']} AIRoutes in {results['seconds']:.0f} s, "
          f"{swap['errors']} errors, p99 {swap['p99_ms']:.3f} ms{versus}, "
          f"RSS after {swap['rss_after_mib']:.1f} MiB")
    fb = results["first_byte_ms"]
    for target in ("nginx", "tollgate"):
        print(f"stream first byte {target}: added p99 {fb[target]['p99'] - fb['direct']['p99']:.3f} ms")
    print(f"tollgate RSS: idle {results['tollgate_rss_idle_mib']:.1f} MiB, 1,000 open streams {results['tollgate_rss_1000_streams_mib']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
