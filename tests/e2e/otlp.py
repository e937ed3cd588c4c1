"""The OTLP receiver of the tests: `tollgate-otlp-receiver`, built from the `opentelemetry-proto`
crate's collector services (gRPC `TraceService` and `LogsService`, and their messages over
HTTP/protobuf at POST /v1/traces and /v1/logs). It keeps every span and log record; this module
reads them back over its `GET /spans` and `GET /logs`."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

import httpx

from conftest import LOOPBACK, binary, free_port, wait_for


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int  # 2 server, 3 client
    attributes: dict  # values as JSON: str, int, float, bool, list
    status_code: int  # 0 unset, 1 ok, 2 error
    service: str
    transport: str  # "grpc" or "http"


@dataclass
class LogRecord:
    event_name: str
    body: object
    attributes: dict
    service: str
    transport: str


@dataclass
class Collector:
    grpc_port: int
    http_port: int

    @property
    def grpc_url(self) -> str:
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def _read(self, what: str) -> list[dict]:
        response = httpx.get(f"{self.http_url}/{what}", timeout=5, trust_env=False)
        response.raise_for_status()
        return response.json()

    def spans(self) -> list[Span]:
        """Every span received so far, oldest first."""
        return [Span(**span) for span in self._read("spans")]

    def logs(self) -> list[LogRecord]:
        """Every log record received so far, oldest first."""
        return [LogRecord(**record) for record in self._read("logs")]

    def wait_for_logs(self, count: int, timeout: float = 10) -> list[LogRecord]:
        def ready():
            logs = self.logs()
            return logs if len(logs) >= count else None
        return wait_for(ready, timeout, f"{count} log records", interval=0.1)

    def wait_for_spans(self, predicate, what: str, timeout: float = 10) -> list[Span]:
        """Waits until the spans received satisfy `predicate` (given the list); returns them."""
        def ready():
            spans = self.spans()
            return spans if predicate(spans) else None
        return wait_for(ready, timeout, what, interval=0.1)


def start_collector() -> tuple[Collector, callable]:
    """A running receiver, and a function that stops it."""
    collector = Collector(grpc_port=free_port(), http_port=free_port())
    receiver = subprocess.Popen(
        [str(binary("tollgate-otlp-receiver")), "--grpc", f"{LOOPBACK}:{collector.grpc_port}",
         "--http", f"{LOOPBACK}:{collector.http_port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def serving():
        if receiver.poll() is not None:
            raise AssertionError(f"tollgate-otlp-receiver exited with {receiver.returncode}")
        try:
            return collector._read("spans") == []
        except httpx.TransportError:
            return None
    wait_for(serving, 10, "the OTLP receiver", interval=0.05)

    def stop():
        receiver.kill()
        receiver.wait(timeout=10)

    return collector, stop
