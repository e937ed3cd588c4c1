"""Streamed chat completions: chunks pass through as they come, usage the caller did not ask
for stays hidden, usage they asked for arrives, tokens are counted, and a caller hanging up
mid-stream makes the gateway hang up on the provider."""

import json
import socket
import struct
import time

import pytest

from conftest import (
    ALICE_KEY,
    LOOPBACK,
    MARKER,
    MODEL,
    ROUTE_LABELS,
    hello,
    mock_reply,
    new_marker,
    sse_events,
    wait_for,
)

SLOW_STREAM = {"x-mock-chunks": "8", "x-mock-chunk-interval-ms": "50"}


@pytest.fixture
def served(mock, gateway):
    return mock, gateway(mock)


def stream_chat(gateway, headers, **options):
    """Streams a chat through the SDK; returns (chunks, monotonic arrival time of each)."""
    chunks, arrivals = [], []
    stream = gateway.client().chat.completions.create(
        model=MODEL, messages=hello(), stream=True, extra_headers=headers, **options
    )
    with stream:
        for chunk in stream:
            arrivals.append(time.monotonic())
            chunks.append(chunk)
    return chunks, arrivals


def test_stream_is_not_buffered_and_hides_usage(served):
    mock, gateway = served
    # A first stream warms both ends up: the SDK builds its chunk parser on first use and the
    # gateway loads its tokenizer on its first count, either of which can hold up a chunk.
    stream_chat(gateway, {})
    marker = new_marker()
    chunks, arrivals = stream_chat(gateway, {**SLOW_STREAM, MARKER: marker})

    # Eight content chunks and the finishing one, and nothing else: no usage-only chunk.
    assert len(chunks) == 9, chunks
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == mock_reply(8)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices for c in chunks), "a chunk with empty choices reached the caller"
    assert all(c.usage is None for c in chunks)

    # The mock waits 50 ms between chunks; a buffering gateway would deliver them in a burst.
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert sum(gap >= 0.030 for gap in gaps) >= len(gaps) - 1, gaps
    assert arrivals[-1] - arrivals[0] >= 0.250, gaps

    # The gateway asked the provider for usage on the caller's behalf.
    (received,) = mock.requests(marker)
    assert received["body"]["stream"] is True
    assert received["body"]["stream_options"]["include_usage"] is True


def test_stream_bytes_carry_no_trace_of_hidden_usage(served):
    _, gateway = served
    completions = gateway.client().chat.completions
    with completions.with_streaming_response.create(
        model=MODEL, messages=hello(), stream=True, extra_headers={"x-mock-chunks": "3"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers.get("x-request-id")
        lines = list(response.iter_lines())

    events = sse_events(lines)
    assert events[-1] == "[DONE]"
    payloads = [json.loads(event) for event in events[:-1]]
    assert len(payloads) == 4, events
    assert all(payload["choices"] for payload in payloads)
    assert not any("usage" in payload for payload in payloads), events


def test_stream_with_include_usage_ends_with_usage_chunk(served):
    mock, gateway = served
    marker = new_marker()
    chunks, _ = stream_chat(gateway, {**SLOW_STREAM, MARKER: marker}, stream_options={"include_usage": True})

    *content, last = chunks
    assert len(content) == 9
    assert all(c.choices and c.usage is None for c in content)
    assert "".join(c.choices[0].delta.content or "" for c in content) == mock_reply(8)
    assert last.choices == []
    assert last.usage.completion_tokens == 8
    assert last.usage.prompt_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + 8
    (received,) = mock.requests(marker)
    assert received["body"]["stream_options"] == {"include_usage": True}


def test_streamed_tokens_are_counted_in_metrics(served):
    _, gateway = served
    # One stream with hidden usage, one with visible usage: both are counted.
    stream_chat(gateway, {"x-mock-chunks": "8"})
    chunks, _ = stream_chat(gateway, {"x-mock-chunks": "3"}, stream_options={"include_usage": True})
    prompt_tokens = chunks[-1].usage.prompt_tokens  # the same messages both times

    wait_for(lambda: gateway.metric("tollgate_tokens_total", type="output") >= 11, 3, "11 output tokens")
    metrics = gateway.metrics()
    assert metrics.value("tollgate_tokens_total", type="output", **ROUTE_LABELS) == 11
    assert metrics.value("tollgate_tokens_total", type="input", **ROUTE_LABELS) == 2 * prompt_tokens
    assert metrics.value("tollgate_requests_total", status="200", outcome="ok", **ROUTE_LABELS) == 2


def test_a_caller_hanging_up_right_after_done_got_the_whole_answer(served):
    _, gateway = served
    before = gateway.metrics().value("tollgate_tokens_total", type="output", **ROUTE_LABELS) or 0
    # SDKs stop reading at `data: [DONE]` and hang up, often before the body's last empty
    # chunk. Here the upstream ends its body 1 s after [DONE], and the caller resets the
    # connection (as a process that exits does) as soon as [DONE] arrives.
    body = json.dumps({"model": MODEL, "messages": hello(), "stream": True}).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {LOOPBACK}\r\nAuthorization: Bearer {ALICE_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "x-mock-chunks: 4\r\nx-mock-end-delay-ms: 1000\r\n\r\n"
    ).encode() + body
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as conn:
        conn.sendall(request)
        received = b""
        while b"data: [DONE]" not in received:
            data = conn.recv(65536)
            assert data, f"connection closed before [DONE]: {received!r}"
            received += data
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    labels = {**ROUTE_LABELS, "status": "200", "outcome": "ok"}
    wait_for(lambda: gateway.metric("tollgate_requests_total", **labels) >= 1, 3, f"a request with {labels}")
    assert gateway.metrics().value("tollgate_requests_total", outcome="client_disconnect") == 0
    assert gateway.metric("tollgate_tokens_total", type="output") == before + 4


def test_client_disconnect_mid_stream_closes_the_upstream_stream(served):
    mock, gateway = served
    body = {"model": MODEL, "messages": hello(), "stream": True}
    headers = {
        "Authorization": f"Bearer {ALICE_KEY}",
        "x-mock-chunks": "100",
        "x-mock-chunk-interval-ms": "50",
    }
    with gateway.http() as http:
        with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            first = next(response.iter_raw())
            assert first.startswith(b"data: "), first
    # Both the response and its connection are closed now, 95 chunks (~5 s) before the end.
    hung_up = time.monotonic()

    wait_for(lambda: mock.stats()["streams_aborted"] >= 1, 3, "the mock to see its stream aborted")
    assert time.monotonic() - hung_up < 3
    assert mock.stats()["streams_completed"] == 0

    labels = {**ROUTE_LABELS, "status": "200", "outcome": "client_disconnect"}
    wait_for(lambda: gateway.metric("tollgate_requests_total", **labels) == 1, 3, f"a request with {labels}")
    assert gateway.metrics().value("tollgate_requests_total", outcome="ok") == 0
