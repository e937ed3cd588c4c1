"""An OTLP receiver for the tests, built from OpenTelemetry's own protobuf types and gRPC
services (the `opentelemetry-proto` package): it takes trace and log exports over gRPC and
over HTTP/protobuf (POST /v1/traces, /v1/logs) and keeps every span and log record."""
from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from conftest import LOOPBACK, free_port, wait_for


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict
    status_code: int  # 0 unset, 1 ok, 2 error
    service: str
    transport: str


@dataclass
class LogRecord:
    event_name: str
    body: str
    attributes: dict
    service: str
    transport: str


@dataclass
class Collector:
    grpc_port: int
    http_port: int
    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def grpc_url(self) -> str:
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def keep(self, request: trace_service_pb2.ExportTraceServiceRequest, transport: str) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(Span(
                        name=span.name, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(), kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status_code=span.status.code, service=resource.get("service.name", ""),
                        transport=transport))
        with self.lock:
            self.spans.extend(received)

    def keep_logs(self, request: logs_service_pb2.ExportLogsServiceRequest, transport: str) -> None:
        received = []
        for resource_logs in request.resource_logs:
            resource = {a.key: _value(a.value) for a in resource_logs.resource.attributes}
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    received.append(LogRecord(
                        event_name=record.event_name, body=_value(record.body),
                        attributes={a.key: _value(a.value) for a in record.attributes},
                        service=resource.get("service.name", ""), transport=transport))
        with self.lock:
            self.logs.extend(received)

    def wait_for_logs(self, count: int, timeout: float = 10) -> list[LogRecord]:
        def ready():
            with self.lock:
                return list(self.logs) if len(self.logs) >= count else None
        return wait_for(ready, timeout, f"{count} log records", interval=0.1)

    def wait_for_spans(self, predicate, what: str, timeout: float = 10) -> list[Span]:
        """Waits until the spans received satisfy `predicate` (given the list); returns them."""
        def ready():
            with self.lock:
                spans = list(self.spans)
            return spans if predicate(spans) else None
        return wait_for(ready, timeout, what, interval=0.1)


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def start_collector() -> tuple[Collector, callable]:
    """A running receiver, and a function that stops it."""
    collector = Collector(grpc_port=free_port(), http_port=free_port())

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            collector.keep(request, "grpc")
            return trace_service_pb2.ExportTraceServiceResponse()

    class LogsService(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            collector.keep_logs(request, "grpc")
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsService(), server)
    server.add_insecure_port(f"{LOOPBACK}:{collector.grpc_port}")
    server.start()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            kinds = {"/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, collector.keep,
                                    trace_service_pb2.ExportTraceServiceResponse),
                     "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, collector.keep_logs,
                                  logs_service_pb2.ExportLogsServiceResponse)}
            if self.path not in kinds or self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            request_type, keep, response_type = kinds[self.path]
            request = request_type()
            request.ParseFromString(body)
            keep(request, "http")
            answer = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer((LOOPBACK, collector.http_port), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    def stop():
        server.stop(grace=None)
        http.shutdown()

    return collector, stop
