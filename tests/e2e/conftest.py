"""Shared fixtures and helpers of the end-to-end tests: they drive the real `tollgate` and
`tollgate-mock` binaries (from <repo>/target/debug, or TOLLGATE_BIN_DIR) over loopback sockets
with real clients (the openai SDK, httpx), on manifests rendered into temporary folders. Every
process is killed in teardown; a failing test's report shows the stderr of those still running."""

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
ROUTE_LABELS = {"route": "default/chat", "model": MODEL, "provider": "default/openai"}
MOCK_WORDS = ["Hello", " from", " the", " mock", " provider", ".", " How", " can I help?"]
# What names the fault when rule 0's backend names a missing provider (backend_provider=...).
BAD_BACKEND = ("AIRoute", "default", "chat", "spec.rules[0].backends[0].provider", "BackendNotFound")
# A header the mock journals (it passes through the gateway): it finds one test's requests.
MARKER = "x-e2e-marker"

CHILD_ENV = {**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"}
HTTP_TIMEOUT = httpx.Timeout(10.0)
READY_TIMEOUT_S = 10.0
TEST_TIME_LIMIT_S = 60


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns something truthy, which it returns; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return result


def jsonl_records(path: Path) -> list[dict]:
    """The records of a JSON-lines file another process is appending to: only its complete lines,
    as a reader may catch a write half done (the kernel copies a batch page by page)."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


_HANDED_OUT: set[int] = set()  # ports free_port() returned: the OS may offer one again


def free_port() -> int:
    """A loopback port that was free a moment ago (bound to port 0, then closed), and never
    returned before in this run: two calls in a row could otherwise get the same port (a
    gateway's listener and its admin address, say) since the first is closed at once."""
    while True:
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def binary(name: str) -> Path:
    """The path of a built binary; fails the test with instructions when it is missing."""
    path = Path(os.environ.get("TOLLGATE_BIN_DIR", REPO_ROOT / "target" / "debug")) / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} not found at {path}: build it with `cargo build --workspace --bins` "
                    "or point TOLLGATE_BIN_DIR at the folder holding it", pytrace=False)
    return path


_LIVE: list[Process] = []  # running processes, whose stderr a failing test's report shows
_COUNTER = itertools.count()


class Process:
    """A spawned binary; `popen` is its subprocess.Popen, its stderr goes to `stderr_path`."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name, self.stderr_path = name, log_dir / f"{name}-{next(_COUNTER)}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=err, env=CHILD_ENV)
        _LIVE.append(self)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_serving(self, url: str) -> None:
        """Waits until GET `url` answers 200 (fails at once if the process exits)."""
        def serving() -> bool:
            exited = self.popen.poll()
            assert exited is None, f"{self.name} exited ({exited}):\n{self.stderr()}"
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(url, timeout=HTTP_TIMEOUT, trust_env=False).status_code == 200
            return False

        wait_for(serving, READY_TIMEOUT_S, f"{self.name} to serve {url}")

    def stop(self) -> None:
        """Kills the process if it still runs, and reaps it."""
        self.popen.kill()  # a no-op once it has exited
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        if self in _LIVE:
            _LIVE.remove(self)


def _rule(model: str, backend: dict, name: str | None = None) -> dict:
    return {**({"name": name} if name else {}), "matches": [{"model": model}], "backends": [backend]}


def backend(target: Mock | str, weight: int | None = None, priority: int | None = None) -> dict:
    """One backend of render_manifest(backends=...): a mock, or an endpoint URL (a closed port's,
    say), with an optional weight and priority."""
    spec = {"endpoint": target if isinstance(target, str) else target.url}
    spec.update({"weight": weight} if weight is not None else {})
    spec.update({"priority": priority} if priority is not None else {})
    return spec


def backend_provider_name(index: int) -> str:
    """The ModelProvider of render_manifest's backends[index] (metrics say default/<it>)."""
    return f"backend-{index}"


def render_manifest(*, port: int, endpoint: str, aliases: tuple[str, ...] = (), embeddings: bool = False,
                    output_price: str = "0.60", timeouts: dict[str, str] | None = None,
                    backend_provider: str = "openai", tls: tuple[str, str] | None = None,
                    backends: tuple[dict, ...] = (), rule: dict | None = None) -> str:
    """The quickstart's manifest (as JSON documents, which YAML reads): Gateway `ai-gateway`
    listening on `port` (HTTPS when `tls` = (chain PEM, key PEM)), ModelProvider `openai` at
    `endpoint` with optional `timeouts`, AIRoute `chat` whose first rule serves gpt-4o-mini from
    `backend_provider`, a rule per alias (served by gpt-4o-mini), an optional embeddings rule,
    and the API key tg-alice-secret. With `backends` (see backend()), the first rule serves
    gpt-4o-mini from those instead, each its own ModelProvider `backend-<i>` (like `openai` but
    at its own endpoint); `rule` adds fields to the first rule (loadBalancer, retry, timeouts,
    outlierDetection)."""
    def resource(api: str, kind: str, name: str, **fields: Any) -> dict:
        return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "default"}, **fields}

    def pricing(inputs: str, outputs: str) -> dict:
        return {"inputPerMillionTokens": inputs, "outputPerMillionTokens": outputs}

    models = [{"name": MODEL, "pricing": pricing("0.15", output_price)}]
    rules = [_rule(MODEL, {"provider": backend_provider, "model": MODEL})]
    if backends:
        rules[0]["backends"] = [{"provider": backend_provider_name(i), "model": MODEL,
                                 **{k: v for k, v in b.items() if k != "endpoint"}}
                                for i, b in enumerate(backends)]
    rules[0].update(rule or {})
    rules += [_rule(alias, {"provider": "openai", "model": MODEL}, f"alias-{alias}") for alias in aliases]
    if embeddings:
        models.append({"name": EMBEDDING_MODEL, "pricing": pricing("0.02", "0")})
        rules.append(_rule(EMBEDDING_MODEL, {"provider": "openai"}, "embeddings"))
    auth = {"secretRef": {"name": "openai-credentials", "key": "apiKey"}}
    provider = {"type": "OpenAI", "endpoint": endpoint, "auth": auth, "models": models}
    provider.update({"timeouts": timeouts} if timeouts else {})
    listener = {"name": "http", "protocol": "HTTP", "port": port}
    if tls:
        listener = {"name": "https", "protocol": "HTTPS", "port": port,
                    "tls": {"certificateRefs": [{"name": "gw-cert"}]}}
    gateway_api, tollgate_api = "gateway.networking.k8s.io/v1", "tollgate.dev/v1alpha1"
    alice = resource("v1", "Secret", "alice-key", stringData={"key": ALICE_KEY})
    alice["metadata"]["labels"] = {"tollgate.dev/api-key": "true", "tollgate.dev/team": "research",
                                   "tollgate.dev/user": "alice"}
    documents = [
        resource(gateway_api, "Gateway", "ai-gateway",
                 spec={"gatewayClassName": "tollgate", "listeners": [listener]}),
        resource("v1", "Secret", "openai-credentials", stringData={"apiKey": UPSTREAM_KEY}),
        resource(tollgate_api, "ModelProvider", "openai", spec=provider),
        resource(tollgate_api, "AIRoute", "chat",
                 spec={"parentRefs": [{"name": "ai-gateway"}], "rules": rules}),
        alice,
    ]
    for i, spec in enumerate(backends):
        documents.append(resource(tollgate_api, "ModelProvider", backend_provider_name(i),
                                  spec={**provider, "endpoint": spec["endpoint"]}))
    if tls:
        documents.append(resource("v1", "Secret", "gw-cert", type="kubernetes.io/tls",
                                  stringData={"tls.crt": tls[0], "tls.key": tls[1]}))
    return "\n---\n".join(json.dumps(document, indent=2) for document in documents) + "\n"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Prometheus text, parsed strictly: any line that is not a comment or a sample fails."""

    def __init__(self, text: str):
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = _SAMPLE.match(line)
            assert match, f"unparseable metrics line: {line!r}"
            name, labels, value = match.groups()
            pairs = _LABEL.findall(labels or "")
            assert ",".join(f'{k}="{v}"' for k, v in pairs) == (labels or ""), f"bad labels: {line!r}"
            self.samples.append((name, dict(pairs), float(value)))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(value for sample, found, value in self.samples
                   if sample == name and all(found.get(k) == v for k, v in labels.items()))


class Mock:
    """A running tollgate-mock."""

    def __init__(self, process: Process, port: int):
        self.process, self.port, self.url = process, port, f"http://{LOOPBACK}:{port}"

    def _get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=HTTP_TIMEOUT, trust_env=False)
        response.raise_for_status()
        return response.json()

    def requests(self, marker: str | None = None) -> list[dict]:
        """The requests it received, oldest first; only those carrying `marker` if given."""
        received = self._get("/_mock/requests")
        return [r for r in received if marker is None or r["headers"].get(MARKER) == marker]

    def stats(self) -> dict[str, int]:
        """Its counters: requests (model requests), chat_requests (POST /v1/chat/completions,
        failed ones included), streams_started, streams_completed, streams_aborted (the client
        left), streams_reset (told to reset them)."""
        return self._get("/_mock/stats")

    def _post(self, path: str, body: dict | None = None) -> Any:
        response = httpx.post(self.url + path, json=body, timeout=HTTP_TIMEOUT, trust_env=False)
        assert response.status_code == 200, f"{path}: {response.status_code}: {response.text}"
        return response.json()

    def behave(self, **fields: Any) -> dict:
        """Replaces its default behaviour for all later model requests with these
        /_mock/behaviour fields (status, retry_after_s, delay_ms, first_chunk_delay_ms,
        reset_after_chunks, chunk_interval_ms, chunks, fail_ratio); behave() is normal.
        Returns the defaults now in force."""
        return self._post("/_mock/behaviour", fields)

    def reset(self) -> dict:
        """Normal behaviour again (also undoes --status and --delay-ms); keeps journal and stats."""
        return self._post("/_mock/behaviour/reset")

    def behaviour(self) -> dict:
        """Its current default behaviour ({} when normal)."""
        return self._get("/_mock/behaviour")


class Gateway:
    """A running `tollgate run` serving the manifests in `dir`; `admin` is its admin URL."""

    def __init__(self, directory: Path, endpoint: str, options: dict):
        self.dir, self.endpoint, self.options = directory, endpoint, options
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"{'https' if options.get('tls') else 'http'}://{LOOPBACK}:{self.port}"
        self.base_url = self.url + "/v1"
        self.admin = f"http://{LOOPBACK}:{self.admin_port}"
        self.proc: Process | None = None

    def manifest(self, **overrides: Any) -> str:
        """The manifest it started with, changed by render_manifest `overrides`."""
        return render_manifest(port=self.port, endpoint=self.endpoint, **{**self.options, **overrides})

    def write(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> None:
        """Writes a manifest file atomically (a temporary file renamed over it) or in place."""
        path = self.dir / filename
        if atomic:
            temporary = self.dir / f".{filename}.tmp"  # not .yaml: tollgate does not read it
            temporary.write_text(text)
            os.replace(temporary, path)
        else:
            path.write_text(text)  # truncates and rewrites the same file

    def reload(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> int:
        """Writes a valid change, waits until a newer config version is in use and returns it."""
        before = self.version()
        self.write(text, filename, atomic)
        return wait_for(lambda: (v := self.version()) > before and v, 10, f"config version > {before}")

    def reload_rejected(self, text: str, filename: str = "gateway.yaml", atomic: bool = True) -> None:
        """Writes an invalid change and waits until the gateway has counted it rejected."""
        before = self.metric("tollgate_config_reloads_total", result="rejected")
        self.write(text, filename, atomic)
        wait_for(lambda: self.metric("tollgate_config_reloads_total", result="rejected") > before, 10,
                 "a rejected reload")

    def admin_get(self, path: str) -> httpx.Response:
        return httpx.get(self.admin + path, timeout=HTTP_TIMEOUT, trust_env=False)

    def metrics(self) -> Metrics:
        response = self.admin_get("/metrics")
        assert response.status_code == 200, response.text
        return Metrics(response.text)

    def metric(self, name: str, **labels: str) -> float:
        """The current value of a metric (summed over the samples with these labels)."""
        return self.metrics().value(name, **labels)

    def config(self) -> dict:
        response = self.admin_get("/config")
        assert response.status_code == 200, response.text
        return response.json()

    def version(self) -> int:
        (entry,) = [g for g in self.config()["gateways"] if g["gateway"] == GATEWAY]
        return entry["version"]

    def client(self, api_key: str = ALICE_KEY, **options: Any) -> openai.OpenAI:
        """An openai SDK client of this gateway; it never retries."""
        options = {"timeout": 10.0, **options}
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **options)

    def http(self, **options: Any) -> httpx.Client:
        """A raw HTTP client of this gateway."""
        return httpx.Client(base_url=self.url, trust_env=False, **{"timeout": HTTP_TIMEOUT, **options})

    def post(self, path: str, *, key: str | None = ALICE_KEY, headers: dict | None = None,
             **options: Any) -> httpx.Response:
        """One raw POST, with `Authorization: Bearer <key>` unless `key` is None."""
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
        with self.http() as http:
            return http.post(path, headers=headers, **options)


class Launcher:
    """Starts mocks and gateways for a test or a module; kills them all when its block exits."""

    def __init__(self, tmp: Path):
        self.tmp, self.processes = tmp, []

    def spawn(self, name: str, argv: list[str]) -> Process:
        self.processes.append(Process(name, argv, self.tmp))
        return self.processes[-1]

    def mock(self, *args: str) -> Mock:
        port = free_port()
        argv = [str(binary("tollgate-mock")), "--listen", f"{LOOPBACK}:{port}", *args]
        mock = Mock(self.spawn("tollgate-mock", argv), port)
        mock.process.wait_serving(mock.url + "/_mock/stats")
        return mock

    def gateway(self, mock: Mock | None = None, *, endpoint: str | None = None, args: tuple[str, ...] = (),
                **options: Any) -> Gateway:
        """Serves render_manifest(**options) from a new folder, the provider being `mock`
        (or `endpoint`, or else the first of `backends`), with extra `tollgate run` args;
        returns it once /readyz says 200."""
        directory = self.tmp / f"gateway-{next(_COUNTER)}"
        directory.mkdir()
        endpoint = endpoint or (mock.url if mock else options["backends"][0]["endpoint"])
        gateway = Gateway(directory, endpoint, options)
        gateway.write(gateway.manifest())
        argv = [str(binary("tollgate")), "run", "-f", str(directory), "--listen-address", LOOPBACK,
                "--admin-addr", f"{LOOPBACK}:{gateway.admin_port}", *args]
        gateway.proc = self.spawn("tollgate", argv)
        gateway.proc.wait_serving(gateway.admin + "/readyz")
        return gateway

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def launcher(tmp_path: Path):
    """Starts processes for one test."""
    with Launcher(tmp_path) as launcher:
        yield launcher


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory):
    """Starts processes shared by the tests of a module (who must not depend on mock stats)."""
    with Launcher(tmp_path_factory.mktemp("module")) as launcher:
        yield launcher


@pytest.fixture
def mock(launcher: Launcher) -> Mock:
    """A mock provider of one test: its journal and stats hold only that test's requests."""
    return launcher.mock()


@pytest.fixture
def gateway(launcher: Launcher) -> Callable[..., Gateway]:
    """A factory: gateway(mock, args=(...), **render_manifest options) -> a ready Gateway."""
    return launcher.gateway


def _expire(signum, frame):
    raise TimeoutError(f"the test ran longer than {TEST_TIME_LIMIT_S}s")


@pytest.fixture(autouse=True)
def _time_limit():
    """No test runs longer than TEST_TIME_LIMIT_S, whatever it waits on."""
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.alarm(TEST_TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report shows the last lines of every running process's stderr."""
    report = (yield).get_result()
    if report.failed:
        for process in list(_LIVE):
            tail = "\n".join(process.stderr().splitlines()[-80:])
            report.sections.append((f"{process.name} (pid {process.popen.pid}) stderr, last lines", tail))


def new_marker() -> str:
    return uuid.uuid4().hex


def hello(content: str = "Say hello") -> list[dict]:
    return [{"role": "user", "content": content}]


def mock_reply(chunks: int = 5) -> str:
    """What the mock answers with `chunks` chunks: its reply words, cycling."""
    return "".join(MOCK_WORDS[i % len(MOCK_WORDS)] for i in range(chunks))


def sse_events(lines: list[str]) -> list[str]:
    """The `data:` payloads of SSE lines, in order."""
    return [line[len("data:"):].strip() for line in lines if line.startswith("data:")]


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """Asserts an OpenAI-style error with this status and code (and an x-request-id)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers.get("x-request-id"), "every response carries x-request-id"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert set(error) >= {"message", "type", "param", "code"}, error
    return error
