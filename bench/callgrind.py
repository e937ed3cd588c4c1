#!/usr/bin/env python3
"""`make bench-instructions`: the gateway's own cost per request, in CPU instructions.

Wall-clock benchmarks swing with whatever else the machine runs; instruction counts do not. This
starts the release mock provider and Tollgate with `make bench`'s configuration (bench/harness.py:
API-key auth, a team BudgetPolicy with a USD budget and a token-per-minute limit in the memory
store, metrics, the audit log), Tollgate under valgrind's callgrind. After a warm-up it counts
the instructions Tollgate executes (every thread: the request path, the audit writer, hyper's
connection tasks) while serving a fixed number of whole chat completions, then a fixed number of
streamed ones (20 chunks), one at a time on one keep-alive connection, and prints instructions
per request of each kind. Each phase's profile is kept (see --out) for callgrind_annotate:

    callgrind_annotate --inclusive=yes target/callgrind/callgrind.out.whole | head -60

With --syscalls, Tollgate runs natively instead and strace counts the system calls it makes
over the same requests (callgrind counts no kernel work: a write, a wake-up, a clock query that
leaves the vDSO cost time it does not show).

Standard library only; needs valgrind (Debian: apt-get install valgrind), and strace for
--syscalls.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BODY, KEY, MANIFEST, STREAM_BODY, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent


def send(port: int, body: str, count: int) -> None:
    """Sends `count` chat completions with `body` on one keep-alive connection, reading each
    answer whole; fails on any answer but 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    for _ in range(count):
        connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"the gateway answered {response.status}: {answer[:300]!r}")
    connection.close()


def control(pid: int, *args: str) -> None:
    """Tells the callgrind of process `pid` to do something (zero its counters, dump them)."""
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=300)


def total_instructions(profile: Path) -> int:
    """The instructions counted in one callgrind dump."""
    for line in profile.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {profile}")


def self_cost(profile: Path, names_in: tuple[str, ...]) -> int:
    """The instructions counted in functions whose name contains one of `names_in` themselves
    (not in what they call)."""
    names: dict[str, str] = {}
    total, current, in_call = 0, "", False
    for line in profile.read_text().splitlines():
        if line.startswith(("fn=", "cfn=")):
            key, _, text = line.split("=", 1)[1].partition(" ")
            if text:
                names[key] = text
            if line.startswith("fn="):
                current = names.get(key, key)
        elif line.startswith("calls="):
            in_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if in_call:
                in_call = False  # the inclusive cost of a call, counted in the callee
            elif any(name in current for name in names_in):
                fields = line.split()
                total += int(fields[1]) if len(fields) > 1 else 0
    return total


def dumped(out: Path, pid: int, before: set[Path]) -> Path:
    """The dump file callgrind wrote for `pid` since `before` was listed (it writes it a little
    after callgrind_control returns)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(out.glob(f"callgrind.out.{pid}.*")) - before
        for path in new:
            if re.search(r"^totals:|^summary:", path.read_text(), re.M):
                return path
        time.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


def syscall_counts(summary: Path) -> dict[str, int]:
    """Calls per system call name, from the summary `strace -c` writes."""
    counts = {}
    for line in summary.read_text().splitlines():
        fields = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(fields) >= 5 and fields[3].isdigit() and not fields[-1].startswith("total"):
            counts[fields[-1]] = int(fields[3])
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bins = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    parser.add_argument("--bin-dir", type=Path, default=default_bins, help="where the release tollgate and tollgate-mock are")
    parser.add_argument("--whole", type=int, default=2000, help="whole chat completions to count")
    parser.add_argument("--stream", type=int, default=500, help="streamed chat completions (20 chunks) to count")
    parser.add_argument("--warmup", type=int, default=100, help="requests of each kind before counting")
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "callgrind", help="where the profiles go")
    parser.add_argument("--label", default="", help="a note stored with the results (what changed)")
    parser.add_argument("--syscalls", action="store_true", help="count system calls with strace instead")
    args = parser.parse_args()
    if args.syscalls and not shutil.which("strace"):
        print("strace not found (Debian: apt-get install strace)", file=sys.stderr)
        return 2
    if not args.syscalls and not shutil.which("valgrind"):
        print("valgrind not found (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="tollgate-callgrind-"))
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("callgrind.out.*"):
        old.unlink()
    mock_port, port, admin_port = free_port(), free_port(), free_port()
    manifests = work / "manifests"
    manifests.mkdir()
    (manifests / "bench.yaml").write_text(MANIFEST.format(port=port, upstream=mock_port, key=KEY))
    procs: list[subprocess.Popen] = []
    try:
        mock = subprocess.Popen([str(args.bin_dir / "tollgate-mock"), "--listen", f"127.0.0.1:{mock_port}", "--chunks", "20"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(mock)
        wait_port(mock_port)
        env = {**os.environ, "RUST_LOG": "warn", "TOLLGATE_WORKER_THREADS": "2"}
        under = [] if args.syscalls else ["valgrind", "--tool=callgrind", f"--callgrind-out-file={args.out}/callgrind.out.%p"]
        gateway = subprocess.Popen(
            [*under, str(args.bin_dir / "tollgate"), "run", "-f", str(manifests),
             "--admin-addr", f"127.0.0.1:{admin_port}", "--audit-log", str(work / "audit.jsonl")],
            stdout=open(work / "tollgate.log", "wb"), stderr=subprocess.STDOUT, env=env)
        procs.append(gateway)
        wait_port(port, timeout=300)
        send(port, BODY, args.warmup)
        send(port, STREAM_BODY, args.warmup)
        results = {"label": args.label, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if args.syscalls:
            for phase, body, count in (("whole", BODY, args.whole), ("stream", STREAM_BODY, args.stream)):
                summary = work / f"strace.{phase}"
                tracer = subprocess.Popen(["strace", "-f", "-c", "-o", str(summary), "-p", str(gateway.pid)],
                                          stderr=subprocess.DEVNULL)
                time.sleep(1)  # attached to every thread
                send(port, body, count)
                time.sleep(0.5)
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=60)
                counts = syscall_counts(summary)
                results[phase] = {"requests": count, "syscalls": counts}
                per_request = ", ".join(f"{name} {calls / count:.2f}" for name, calls in
                                        sorted(counts.items(), key=lambda item: -item[1]))
                print(f"{phase:6}: {sum(counts.values()) / count:.2f} system calls per request ({per_request})", flush=True)
            (args.out / "syscalls.json").write_text(json.dumps(results, indent=2))
            return 0
        control(gateway.pid, "--zero")
        for phase, body, count in (("whole", BODY, args.whole), ("stream", STREAM_BODY, args.stream)):
            before = set(args.out.glob(f"callgrind.out.{gateway.pid}.*"))
            send(port, body, count)
            time.sleep(0.5)  # the audit writer's last batch
            control(gateway.pid, "--dump=" + phase)  # dumping also zeroes the counters
            profile = dumped(args.out, gateway.pid, before)
            profile = profile.rename(args.out / f"callgrind.out.{phase}")
            instructions = total_instructions(profile)
            # Valgrind hides the CPU's SHA extensions, so SHA-256 (the audit chain, API key
            # digests) runs its portable code here, many times dearer than on such a CPU (with
            # fat LTO the portable code is inlined into the function that picks it).
            sha256 = self_cost(profile, ("sha2::sha256::soft::compress", "sha2::sha256::compress256"))
            results[phase] = {"requests": count, "instructions": instructions, "per_request": round(instructions / count),
                              "sha256_soft_per_request": round(sha256 / count)}
            print(f"{phase:6}: {count} requests, {instructions:,} instructions, {instructions // count:,} per request"
                  f" ({sha256 // count:,} of them in portable SHA-256)", flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        for leftover in args.out.glob("callgrind.out.[0-9]*"):
            leftover.unlink()  # the start-up and shutdown profile
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
