"""Traces: a streamed chat completion that fails over, exported over OTLP (gRPC and
HTTP/protobuf) to a receiver built from OpenTelemetry's own collector services; the span tree,
the GenAI attributes, and the trace context the caller sent and the upstream received."""
from __future__ import annotations

import signal

import pytest

from conftest import MODEL, Launcher, free_port, wait_for
from otlp import Collector, start_collector

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture
def collector():
    collector, stop = start_collector()
    yield collector
    stop()


def test_a_streamed_chat_with_a_failover_is_one_trace(launcher: Launcher, collector: Collector) -> None:
    failing, healthy = launcher.mock("--status", "503"), launcher.mock()
    gateway = launcher.gateway(
        backends=({"endpoint": failing.url, "priority": 0}, {"endpoint": healthy.url, "priority": 1}),
        args=("--otlp-endpoint", collector.grpc_url))
    stream = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True, max_tokens=50,
        stream_options={"include_usage": True},
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens > 0

    spans = collector.wait_for_spans(lambda s: any(x.kind == SERVER for x in s), "the request span")
    (request,) = [s for s in spans if s.kind == SERVER]
    assert request.trace_id == CALLER_TRACE and request.parent_span_id == CALLER_SPAN
    assert request.name == f"chat {MODEL}"
    assert request.service == "tollgate" and request.transport == "grpc"
    attributes = request.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.usage.input_tokens"] == chunks[-1].usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert attributes["http.response.status_code"] == 200
    assert attributes["tollgate.route"] == "default/chat"
    assert attributes["tollgate.provider"] == "default/backend-1"
    assert attributes["tollgate.attempts"] == 2
    assert (attributes["tollgate.team"], attributes["tollgate.user"]) == ("research", "alice")
    assert attributes["tollgate.key_id"] == "default/alice-key"
    assert attributes["tollgate.cost_usd"] > 0
    assert attributes["tollgate.time_to_first_byte_ms"] > 0
    assert "error.type" not in attributes and request.status_code != 2
    assert "gen_ai.input.messages" not in attributes, "content only when asked for"

    attempts = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.attributes["tollgate.attempt"])
    assert [a.parent_span_id for a in attempts] == [request.span_id] * 2
    assert all(a.trace_id == CALLER_TRACE for a in attempts)
    first, second = attempts
    assert first.attributes["tollgate.provider"] == "default/backend-0"
    assert first.attributes["error.type"] == "server_error" and first.status_code == 2
    assert second.attributes["tollgate.provider"] == "default/backend-1"
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["gen_ai.provider.name"] == "openai"

    # Each upstream saw the trace continued from its own attempt's span.
    assert failing.requests()[-1]["headers"]["traceparent"] == f"00-{CALLER_TRACE}-{first.span_id}-01"
    assert healthy.requests()[-1]["headers"]["traceparent"] == f"00-{CALLER_TRACE}-{second.span_id}-01"
    assert gateway.metric("tollgate_trace_spans_exported_total") >= 3
    assert gateway.metric("tollgate_trace_spans_dropped_total") == 0


def test_traces_go_over_http_protobuf_and_refusals_are_errors(launcher: Launcher, collector: Collector) -> None:
    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--otlp-endpoint", collector.http_url,
                                           "--otlp-protocol", "http/protobuf"))
    response = gateway.post("/v1/chat/completions", key="tg-nobody",
                            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401
    spans = collector.wait_for_spans(lambda s: len(s) >= 1, "the refused request's span")
    (span,) = spans
    assert span.transport == "http" and span.kind == SERVER
    assert span.attributes["error.type"] == "invalid_api_key" and span.status_code == 2
    assert span.attributes["http.response.status_code"] == 401
    assert span.trace_id != CALLER_TRACE  # a new trace: the caller sent none


def test_an_unreachable_collector_never_holds_up_requests_or_shutdown(launcher: Launcher) -> None:
    closed = free_port()  # nothing listens here
    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--otlp-endpoint", f"http://127.0.0.1:{closed}"))
    client = gateway.client(timeout=5.0)
    for _ in range(30):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    wait_for(lambda: gateway.metric("tollgate_trace_export_failures_total") >= 1, 20, "a failed export")
    assert gateway.metric("tollgate_trace_spans_exported_total") == 0
    assert gateway.metric("tollgate_requests_total", outcome="ok") == 30
    gateway.proc.popen.send_signal(signal.SIGTERM)
    assert gateway.proc.popen.wait(timeout=15) == 0, "shutdown waits at most 5 s for the export"


def test_content_goes_into_spans_only_when_asked_and_redacted(launcher: Launcher, collector: Collector) -> None:
    gateway = launcher.gateway(launcher.mock(), args=(
        "--otlp-endpoint", collector.grpc_url, "--trace-content", "--audit-redact", r"secret-\w+"))
    answer = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello to secret-bob"}])
    spans = collector.wait_for_spans(lambda s: any(x.kind == SERVER for x in s), "the request span")
    (request,) = [s for s in spans if s.kind == SERVER]
    sent = request.attributes["gen_ai.input.messages"]
    assert "Say hello to [REDACTED]" in sent and "secret-bob" not in sent
    assert answer.choices[0].message.content in request.attributes["gen_ai.output.messages"]
