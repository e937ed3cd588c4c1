"""The mock's default misbehaviour (POST /_mock/behaviour, --status, --delay-ms), driven directly,
not through a gateway: failover tests rely on a mock doing exactly what it was told, for every
request, until it is told to recover."""

import json
import math
import time

import httpx
import pytest

from conftest import MODEL, hello, mock_reply, sse_events

CHAT = "/v1/chat/completions"


def client(mock, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=mock.url, trust_env=False, timeout=timeout)


def chat(http: httpx.Client, stream: bool = False, headers: dict | None = None) -> httpx.Response:
    return http.post(CHAT, json={"model": MODEL, "messages": hello(), "stream": stream}, headers=headers)


def read_stream(http: httpx.Client) -> tuple[list[str], Exception | None]:
    """Streams a chat; returns its SSE lines and the error that ended the body, if any."""
    lines = []
    with http.stream("POST", CHAT, json={"model": MODEL, "messages": hello(), "stream": True}) as response:
        assert response.status_code == 200
        try:
            for line in response.iter_lines():
                lines.append(line)
        except httpx.TransportError as error:
            return lines, error
    return lines, None


def assert_mock_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == str(status) and error["type"] == "mock_error", error


def test_status_fails_every_model_request_until_reset(mock):
    assert mock.behaviour() == {}
    assert mock.behave(status=429, retry_after_s=7) == {"status": 429, "retry_after_s": 7}
    assert mock.behaviour() == {"status": 429, "retry_after_s": 7}
    with client(mock) as http:
        for stream in (False, True):
            response = chat(http, stream=stream)
            assert_mock_error(response, 429)
            assert response.headers["retry-after"] == "7"
        assert_mock_error(http.get("/v1/models"), 429)
        assert mock.behave(status=503, retry_after_s=7) == {"status": 503, "retry_after_s": 7}
        response = chat(http)
        assert_mock_error(response, 503)
        assert "retry-after" not in response.headers, "retry-after goes with 429 only"
        assert mock.reset() == {}
        assert chat(http).json()["choices"][0]["message"]["content"] == mock_reply(5)
    stats = mock.stats()
    assert stats["chat_requests"] == 4, "failed requests count, GET /v1/models does not"
    assert stats["requests"] == 5


def test_empty_behaviour_is_normal(mock):
    mock.behave(status=500, delay_ms=50)
    assert mock.behave() == {}
    assert mock.behaviour() == {}
    with client(mock) as http:
        assert chat(http).status_code == 200


def test_delay_before_headers_and_hang(mock):
    mock.behave(delay_ms=300)
    with client(mock) as http:
        started = time.monotonic()
        assert chat(http).status_code == 200
        assert 0.3 <= time.monotonic() - started < 1.0
    mock.behave(delay_ms=600_000)  # a hang before the first byte
    with client(mock, timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
        chat(http)
    assert mock.stats()["chat_requests"] == 2, "a request it hangs on is counted when it arrives"
    mock.reset()
    with client(mock) as http:
        started = time.monotonic()
        assert chat(http).status_code == 200
        assert time.monotonic() - started < 0.2


def test_first_chunk_delay_sends_headers_then_hangs(mock):
    mock.behave(first_chunk_delay_ms=500)
    with client(mock) as http:
        started = time.monotonic()
        with http.stream("POST", CHAT, json={"model": MODEL, "messages": hello(), "stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            assert time.monotonic() - started < 0.3, "headers come at once"
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            assert time.monotonic() - started >= 0.5, "the first event waits"
            rest = [first, *lines]
        events = sse_events(rest)
        assert events[-1] == "[DONE]"
        assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]) == mock_reply(5)
        # The whole answer is not delayed.
        started = time.monotonic()
        assert chat(http).status_code == 200
        assert time.monotonic() - started < 0.3


def test_reset_after_chunks_breaks_the_stream(mock):
    mock.behave(reset_after_chunks=2)
    with client(mock) as http:
        lines, error = read_stream(http)
    assert isinstance(error, httpx.RemoteProtocolError), f"a broken body, not a clean end: {error!r}"
    events = sse_events(lines)
    assert len(events) == 2 and "[DONE]" not in events, events
    assert [json.loads(e)["choices"][0]["delta"]["content"] for e in events] == ["Hello", " from"]
    # More than it has: every event, [DONE] included, then still no clean end.
    mock.behave(reset_after_chunks=100)
    with client(mock) as http:
        lines, error = read_stream(http)
        assert isinstance(error, httpx.RemoteProtocolError), repr(error)
        assert sse_events(lines)[-1] == "[DONE]"
        mock.reset()
        lines, error = read_stream(http)
        assert error is None and sse_events(lines)[-1] == "[DONE]"
    stats = mock.stats()
    assert (stats["streams_reset"], stats["streams_completed"], stats["streams_started"]) == (2, 1, 3)


def test_chunks_and_interval_defaults(mock):
    mock.behave(chunks=3, chunk_interval_ms=100)
    with client(mock) as http:
        assert chat(http).json()["choices"][0]["message"]["content"] == mock_reply(3)
        started = time.monotonic()
        lines, error = read_stream(http)
        assert error is None
        # 3 content events, the finish event and [DONE]: four pauses.
        assert len(sse_events(lines)) == 5
        assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize(("fields", "status", "failures"), [
    ({"fail_ratio": 0.3}, 500, 30),
    ({"fail_ratio": 0.25, "status": 503}, 503, 25),
    ({"fail_ratio": 0.29}, 500, 29),
    ({"fail_ratio": 0.0, "status": 503}, 503, 0),
    ({"fail_ratio": 1.0}, 500, 100),
])
def test_fail_ratio_fails_exactly_that_share(mock, fields, status, failures):
    ratio = fields["fail_ratio"]
    with client(mock) as http:
        chat(http)  # requests before the defaults are set do not count
        mock.behave(**fields)
        statuses = [chat(http).status_code for _ in range(100)]
    failed = [n for n, code in enumerate(statuses, 1) if code != 200]
    expected = [n for n in range(1, 101) if math.floor(n * ratio + 1e-9) != math.floor((n - 1) * ratio + 1e-9)]
    assert failed == expected and len(failed) == failures
    assert {statuses[n - 1] for n in failed} <= {status}
    assert mock.stats()["chat_requests"] == 101


def test_headers_win_over_defaults(mock):
    mock.behave(status=503, delay_ms=5_000)
    with client(mock) as http:
        started = time.monotonic()
        response = chat(http, headers={"x-mock-status": "429", "x-mock-retry-after-s": "1", "x-mock-delay-ms": "0"})
        assert_mock_error(response, 429)
        assert response.headers["retry-after"] == "1"
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("body", [{"status": 700}, {"fail_ratio": 1.5}, {"delay": 5}, {"delay_ms": -1}, [1]])
def test_bad_behaviour_is_refused(mock, body):
    mock.behave(status=502)
    response = httpx.post(mock.url + "/_mock/behaviour", json=body, trust_env=False)
    assert_mock_error(response, 400)
    assert mock.behaviour() == {"status": 502}, "a refused change changes nothing"


def test_flags_start_misbehaving_and_reset_recovers(launcher):
    mock = launcher.mock("--status", "502", "--delay-ms", "200")
    assert mock.behaviour() == {"status": 502, "delay_ms": 200}
    with client(mock) as http:
        started = time.monotonic()
        assert_mock_error(chat(http), 502)
        assert time.monotonic() - started >= 0.2
        mock.reset()
        assert chat(http).status_code == 200
    assert mock.stats()["chat_requests"] == 2
