"""The process around the proxy: `tollgate validate`, `tollgate run` refusing bad manifests,
its worker threads, and a graceful shutdown on SIGTERM that lets streams in flight finish."""

import json
import re
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import (
    ALICE_KEY,
    BAD_BACKEND,
    CHILD_ENV,
    LOOPBACK,
    MODEL,
    binary,
    free_port,
    hello,
    mock_reply,
    render_manifest,
    sse_events,
    wait_for,
)

BAD_PROVIDER = re.compile(
    r"^error: AIRoute default/chat: spec\.rules\[0\]\.backends\[0\]\.provider: BackendNotFound: .+", re.M
)
CHAT = "/v1/chat/completions"


def run_tollgate(*args, timeout=20.0):
    """Runs `tollgate ARGS` to completion (`validate`, or a `run` expected to exit)."""
    return subprocess.run([str(binary("tollgate")), *args], capture_output=True, text=True,
                          timeout=timeout, env=CHILD_ENV, stdin=subprocess.DEVNULL)


def connection_refused(port):
    """Whether a new TCP connection to the loopback port is refused."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def manifests(tmp_path, **options):
    """A folder holding one manifest file (nothing is started from it here)."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    text = render_manifest(port=free_port(), endpoint="http://127.0.0.1:9", **options)
    (folder / "gateway.yaml").write_text(text)
    return folder


def test_validate_accepts_good_manifests(tmp_path):
    result = run_tollgate("validate", "-f", str(manifests(tmp_path, aliases=("fast",))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "valid", result.stdout
    assert "error" not in result.stdout


def test_validate_names_the_missing_backend_provider(tmp_path):
    result = run_tollgate("validate", "-f", str(manifests(tmp_path, backend_provider="missing")))
    assert result.returncode != 0
    assert BAD_PROVIDER.search(result.stdout), result.stdout
    assert "valid" not in result.stdout.splitlines()[-1]


def test_run_refuses_invalid_manifests(tmp_path):
    folder = manifests(tmp_path, backend_provider="missing")
    result = run_tollgate("run", "-f", str(folder), "--admin-addr", f"127.0.0.1:{free_port()}", timeout=15)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert any(all(word in line for word in BAD_BACKEND) for line in lines), result.stderr


def test_reload_refuses_manifests_that_run_refuses(mock, gateway):
    """Manifests without a Gateway make `validate` and `run` fail ("nothing to serve"); a
    change to such manifests (say, a file emptied mid-way through an in-place rewrite) must be
    rejected like any invalid change, not applied by closing every listener."""
    gw = gateway(mock)
    version = gw.version()
    empty = "# emptied\n"
    gw.write(empty)
    check = run_tollgate("validate", "-f", str(gw.dir))
    assert check.returncode != 0, check.stdout

    def handled():
        counts = {r: gw.metric("tollgate_config_reloads_total", result=r) for r in ("applied", "rejected")}
        return counts if sum(counts.values()) else None

    counted = wait_for(handled, 5, "the change to be handled")
    assert counted == {"applied": 0, "rejected": 1}, f"{counted}; /config now: {gw.config()}"
    assert gw.version() == version
    response = gw.post(CHAT, json={"model": MODEL, "messages": hello()})
    assert response.status_code == 200


def test_sigterm_finishes_streams_in_flight_then_exits(mock, gateway):
    gw = gateway(mock)
    body = {"model": MODEL, "messages": hello(), "stream": True}
    headers = {"Authorization": f"Bearer {ALICE_KEY}", "x-mock-chunks": "20",
               "x-mock-chunk-interval-ms": "50"}
    with gw.http() as http, http.stream("POST", CHAT, json=body, headers=headers) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(lines)
        assert first.startswith("data: ")
        gw.proc.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_for(lambda: connection_refused(gw.port), 2, "new connections to be refused")
        rest = list(lines)
        finished = time.monotonic()

    events = sse_events([first, *rest])
    assert events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == mock_reply(20)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # The stream really was in flight: about a second of it came after the signal.
    assert finished - signalled >= 0.7

    assert gw.proc.popen.wait(timeout=5) == 0
    stats = mock.stats()
    assert (stats["streams_completed"], stats["streams_aborted"]) == (1, 0)


def test_worker_threads_serve_many_connections_at_once(mock, gateway):
    gw = gateway(mock, args=("--worker-threads", "3"))
    tasks = Path(f"/proc/{gw.proc.popen.pid}/task")
    names = sorted((task / "comm").read_text().strip() for task in tasks.iterdir())
    assert [n for n in names if n.startswith("tg-worker")] == ["tg-worker-0", "tg-worker-1", "tg-worker-2"]

    def ask(n):
        with gw.http() as http:  # a connection of its own, to any of the workers
            return http.post(CHAT, json={"model": MODEL, "messages": hello(f"n{n}")},
                             headers={"Authorization": f"Bearer {ALICE_KEY}"}).status_code

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(ask, range(36))) == [200] * 36
    assert mock.stats()["requests"] == 36
