"""Shared fixtures and helpers for Tollgate's end-to-end tests.

The tests drive the real `tollgate` and `tollgate-mock` binaries over loopback sockets with
real clients (the official `openai` SDK and `httpx`). Manifests are rendered from the
quickstart's shape into a temporary folder, with the Gateway's listener port and the
provider's endpoint templated in.

Binaries come from `<repo>/target/debug` unless `TOLLGATE_BIN_DIR` says otherwise. Every
process started here is killed in teardown, and the stderr of every process still running
when a test fails is attached to that test's report.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx
import openai
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
# Loopback traffic must never go through a proxy a CI machine may have configured.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), LOOPBACK, "localhost"]))

ALICE_KEY = "tg-alice-secret"
UPSTREAM_KEY = "sk-upstream-test"
MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
GATEWAY = "default/ai-gateway"
# The mock's non-streamed reply is its first N words; N is 5 unless told otherwise.
MOCK_WORDS = ["Hello", " from", " the", " mock", " provider", ".", " How", " can I help?"]
# A request header the mock journals (it passes through the gateway): finds a test's requests.
MARKER = "x-e2e-marker"

HTTP_TIMEOUT = httpx.Timeout(10.0)
READY_TIMEOUT_S = 10.0
TEST_TIME_LIMIT_S = 60


# --- binaries and processes ----------------------------------------------------------------


def binary(name: str) -> Path:
    """The path of a Tollgate binary; fails the test clearly when it is not built."""
    directory = Path(os.environ.get("TOLLGATE_BIN_DIR", REPO_ROOT / "target" / "debug"))
    path = directory / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} not found at {path}: build it with `cargo build --workspace --bins` "
            "or point TOLLGATE_BIN_DIR at the folder holding it",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A loopback port that was free a moment ago (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_tollgate(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Runs `tollgate ARGS` to completion (for `validate`, or a `run` expected to exit)."""
    return subprocess.run(
        [str(binary("tollgate")), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(),
        stdin=subprocess.DEVNULL,
    )


def _child_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"}


# Processes alive right now; their stderr goes into the report of a failing test.
_LIVE: list["Process"] = []
_COUNTER = itertools.count()


class Process:
    """A spawned binary whose stdout and stderr go to files under `log_dir`."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name = name
        stem = f"{name}-{next(_COUNTER)}"
        self.stdout_path = log_dir / f"{stem}.stdout"
        self.stderr_path = log_dir / f"{stem}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_child_env()
            )
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """Kills the process (if it still runs) and reaps it."""
        if self.alive():
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        if self in _LIVE:
            _LIVE.remove(self)


# --- manifests -------------------------------------------------------------------------------

# The quickstart's shape; values that vary are written as JSON, which YAML reads as flow style.
_MANIFEST = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: ai-gateway, namespace: default}}
spec:
  gatewayClassName: tollgate
  listeners: {listeners}
---
apiVersion: v1
kind: Secret
metadata: {{name: openai-credentials, namespace: default}}
stringData: {{apiKey: {upstream_key}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {{name: openai, namespace: default}}
spec: {provider}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {{name: chat, namespace: default}}
spec:
  parentRefs: [{{name: ai-gateway}}]
  rules: {rules}
---
apiVersion: v1
kind: Secret
metadata:
  name: alice-key
  namespace: default
  labels: {{tollgate.dev/api-key: "true", tollgate.dev/team: research, tollgate.dev/user: alice}}
stringData: {{key: {alice_key}}}
"""

_TLS_SECRET = """\
---
apiVersion: v1
kind: Secret
metadata: {{name: gw-cert, namespace: default}}
type: kubernetes.io/tls
stringData: {{"tls.crt": {cert}, "tls.key": {key}}}
"""


def render_manifest(
    *,
    port: int,
    endpoint: str,
    aliases: tuple[str, ...] = (),
    embeddings: bool = False,
    output_price: str = "0.60",
    timeouts: dict[str, str] | None = None,
    backend_provider: str = "openai",
    tls: tuple[str, str] | None = None,
) -> str:
    """The base manifest: one Gateway listening on `port`, provider `openai` at `endpoint`,
    AIRoute `chat` serving gpt-4o-mini (its first rule's backend names `backend_provider`),
    plus a rule per alias (served by gpt-4o-mini), an optional embeddings rule, an optional
    HTTPS listener with `tls` = (certificate chain PEM, key PEM), and API key tg-alice-secret."""
    models = [{"name": MODEL, "pricing": {"inputPerMillionTokens": "0.15", "outputPerMillionTokens": output_price}}]
    rules = [{"matches": [{"model": MODEL}], "backends": [{"provider": backend_provider, "model": MODEL}]}]
    rules += [
        {"name": f"alias-{alias}", "matches": [{"model": alias}], "backends": [{"provider": "openai", "model": MODEL}]}
        for alias in aliases
    ]
    if embeddings:
        models.append({"name": EMBEDDING_MODEL, "pricing": {"inputPerMillionTokens": "0.02", "outputPerMillionTokens": "0"}})
        rules.append({"name": "embeddings", "matches": [{"model": EMBEDDING_MODEL}], "backends": [{"provider": "openai"}]})
    provider: dict[str, Any] = {
        "type": "OpenAI",
        "endpoint": endpoint,
        "auth": {"secretRef": {"name": "openai-credentials", "key": "apiKey"}},
        "models": models,
    }
    if timeouts:
        provider["timeouts"] = timeouts
    if tls:
        listener = {"name": "https", "protocol": "HTTPS", "port": port, "tls": {"certificateRefs": [{"name": "gw-cert"}]}}
    else:
        listener = {"name": "http", "protocol": "HTTP", "port": port}
    text = _MANIFEST.format(
        listeners=json.dumps([listener]),
        provider=json.dumps(provider),
        rules=json.dumps(rules),
        upstream_key=UPSTREAM_KEY,
        alice_key=ALICE_KEY,
    )
    if tls:
        text += _TLS_SECRET.format(cert=json.dumps(tls[0]), key=json.dumps(tls[1]))
    return text


# --- metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Prometheus text, parsed strictly: a line that is not a comment or a sample fails."""

    def __init__(self, text: str):
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = _SAMPLE.match(line)
            assert match, f"unparseable metrics line: {line!r}"
            name, labels_text, value = match.groups()
            pairs = _LABEL.findall(labels_text or "")
            rebuilt = ",".join(f'{k}="{v}"' for k, v in pairs)
            assert rebuilt == (labels_text or ""), f"unparseable labels in: {line!r}"
            self.samples.append((name, dict(pairs), float(value)))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            value
            for sample, sample_labels, value in self.samples
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
        )


# --- the mock provider and the gateway -------------------------------------------------------


def new_marker() -> str:
    return uuid.uuid4().hex


class Mock:
    """A running tollgate-mock."""

    def __init__(self, process: Process, port: int):
        self.process = process
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"

    def _get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=HTTP_TIMEOUT, trust_env=False)
        response.raise_for_status()
        return response.json()

    def requests(self, marker: str | None = None) -> list[dict]:
        """Requests the mock received (oldest first), only those carrying `marker` if given."""
        received = self._get("/_mock/requests")
        if marker is None:
            return received
        return [r for r in received if r["headers"].get(MARKER) == marker]

    def stats(self) -> dict[str, int]:
        return self._get("/_mock/stats")


class Gateway:
    """A running `tollgate run` serving the manifests in `dir`."""

    def __init__(self, directory: Path, port: int, admin_port: int, endpoint: str, options: dict, scheme: str):
        self.dir = directory
        self.port = port
        self.admin_port = admin_port
        self.endpoint = endpoint
        self.options = options
        self.url = f"{scheme}://{LOOPBACK}:{port}"
        self.base_url = self.url + "/v1"
        self.admin = f"http://{LOOPBACK}:{admin_port}"
        self.proc: Process | None = None

    # manifests

    def manifest(self, **overrides: Any) -> str:
        """The manifest this gateway started with, with `overrides` to render_manifest."""
        return render_manifest(port=self.port, endpoint=self.endpoint, **{**self.options, **overrides})

    def write(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> Path:
        """Writes a manifest file: atomically (temporary file, then rename) or in place."""
        path = self.dir / filename
        if atomic:
            temporary = self.dir / f".{filename}.tmp"
            temporary.write_text(text)
            os.replace(temporary, path)
        else:
            path.write_text(text)  # truncates and rewrites the same inode
        return path

    def reload(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> int:
        """Writes a valid change and waits until a new config version is in use; returns it."""
        before = self.version()
        self.write(text, filename, atomic)
        return wait_for(lambda: (v := self.version()) > before and v, 10, f"config version > {before}")

    def reload_rejected(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> None:
        """Writes an invalid change and waits until the gateway has counted it rejected."""
        before = self.reloads("rejected")
        self.write(text, filename, atomic)
        wait_for(lambda: self.reloads("rejected") > before, 10, "a rejected reload")

    # admin

    def admin_get(self, path: str) -> httpx.Response:
        return httpx.get(self.admin + path, timeout=HTTP_TIMEOUT, trust_env=False)

    def metrics(self) -> Metrics:
        response = self.admin_get("/metrics")
        assert response.status_code == 200, response.text
        return Metrics(response.text)

    def reloads(self, result: str) -> float:
        return self.metrics().value("tollgate_config_reloads_total", result=result)

    def config(self) -> dict:
        response = self.admin_get("/config")
        assert response.status_code == 200, response.text
        return response.json()

    def version(self) -> int:
        (entry,) = [g for g in self.config()["gateways"] if g["gateway"] == GATEWAY]
        return entry["version"]

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.proc.alive():
                raise AssertionError(f"tollgate exited with {self.proc.popen.returncode}:\n{self.proc.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                return self.admin_get("/readyz").status_code == 200
            return False

        wait_for(ready, READY_TIMEOUT_S, "tollgate /readyz")

    # clients

    def client(self, api_key: str = ALICE_KEY, **options: Any) -> openai.OpenAI:
        """An openai SDK client for this gateway; it never retries."""
        options.setdefault("timeout", 10.0)
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)

    def http(self, **options: Any) -> httpx.Client:
        """A raw HTTP client for this gateway."""
        options.setdefault("timeout", HTTP_TIMEOUT)
        return httpx.Client(base_url=self.url, trust_env=False, **options)

    def post(self, path: str, *, key: str | None = ALICE_KEY, **options: Any) -> httpx.Response:
        """One raw POST, with `Authorization: Bearer key` unless `key` is None."""
        headers = dict(options.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        with self.http() as http:
            return http.post(path, headers=headers, **options)


class Launcher:
    """Starts mocks and gateways for a test or a module, and kills them all at the end."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.processes: list[Process] = []

    def spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.tmp)
        self.processes.append(process)
        return process

    def mock(self, *args: str) -> Mock:
        port = free_port()
        process = self.spawn("tollgate-mock", [str(binary("tollgate-mock")), "--listen", f"{LOOPBACK}:{port}", *args])
        mock = Mock(process, port)

        def up() -> bool:
            assert process.alive(), f"tollgate-mock exited:\n{process.stderr()}"
            with contextlib.suppress(httpx.TransportError):
                return bool(mock.stats() is not None)
            return False

        wait_for(up, READY_TIMEOUT_S, "tollgate-mock to listen")
        return mock

    def gateway(self, mock: Mock | None = None, *, endpoint: str | None = None, args: tuple[str, ...] = (), **options: Any) -> Gateway:
        """Renders a manifest (see render_manifest) into a new folder and serves it."""
        assert mock or endpoint, "a gateway needs a mock or an endpoint"
        directory = self.tmp / f"gateway-{next(_COUNTER)}"
        directory.mkdir()
        scheme = "https" if options.get("tls") else "http"
        gateway = Gateway(directory, free_port(), free_port(), endpoint or mock.url, options, scheme)
        gateway.write(gateway.manifest(), atomic=False)
        gateway.proc = self.spawn(
            "tollgate",
            [
                str(binary("tollgate")), "run", "-f", str(directory),
                "--admin-addr", f"{LOOPBACK}:{gateway.admin_port}",
                "--listen-address", LOOPBACK,
                *args,
            ],
        )
        gateway.wait_ready()
        return gateway

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def launcher(tmp_path: Path):
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory):
    launcher = Launcher(tmp_path_factory.mktemp("module"))
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def mock(launcher: Launcher) -> Mock:
    """A fresh mock provider for one test (its journal and stats hold only that test's)."""
    return launcher.mock()


@pytest.fixture
def gateway(launcher: Launcher) -> Callable[..., Gateway]:
    """A factory: gateway(mock, args=(...), **render_manifest options) -> a ready Gateway."""
    return launcher.gateway


@pytest.fixture(autouse=True)
def _time_limit():
    """No test runs longer than TEST_TIME_LIMIT_S, whatever it waits on."""

    def expire(signum, frame):
        raise TimeoutError(f"the test ran longer than {TEST_TIME_LIMIT_S}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the stderr of every running process to the report of a failing test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for process in list(_LIVE):
            lines = process.stderr().splitlines()[-80:]
            report.sections.append((f"{process.name} (pid {process.pid}) stderr, last lines", "\n".join(lines)))


# --- small shared helpers for tests ---------------------------------------------------------


def hello(content: str = "Say hello") -> list[dict]:
    return [{"role": "user", "content": content}]


def sse_events(lines: list[str]) -> list[str]:
    """The `data:` payloads of SSE lines, in order."""
    return [line[len("data:"):].strip() for line in lines if line.startswith("data:")]


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """Asserts an OpenAI-style error response with this status and code; returns `error`."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers.get("x-request-id"), "every response carries x-request-id"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert set(error) >= {"message", "type", "param", "code"}, error
    return error
