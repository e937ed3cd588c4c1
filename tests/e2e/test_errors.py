"""Every way a request fails, as the caller sees it: status and OpenAI-style error code."""

import time

import openai
import pytest

from conftest import MARKER, MODEL, assert_error, free_port, hello, new_marker

CHAT = "/v1/chat/completions"
MAX_REQUEST_BYTES = 2048


@pytest.fixture(scope="module")
def strict(module_launcher):
    """A gateway with a small body limit and a 500 ms wait for the provider's headers."""
    mock = module_launcher.mock()
    gateway = module_launcher.gateway(
        mock,
        args=("--max-request-bytes", str(MAX_REQUEST_BYTES)),
        timeouts={"connect": "2s", "responseHeaders": "500ms"},
    )
    return mock, gateway


def chat_body(**extra):
    return {"model": MODEL, "messages": hello(), **extra}


def test_missing_key_is_401(strict):
    mock, gateway = strict
    marker = new_marker()
    response = gateway.post(CHAT, key=None, json=chat_body(), headers={MARKER: marker})
    assert_error(response, 401, "missing_api_key")
    assert mock.requests(marker) == []


def test_unknown_key_is_401(strict):
    mock, gateway = strict
    marker = new_marker()
    with pytest.raises(openai.AuthenticationError) as raised:
        gateway.client(api_key="tg-mallory").chat.completions.create(
            model=MODEL, messages=hello(), extra_headers={MARKER: marker}
        )
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert mock.requests(marker) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"model": "gpt-4o-mini", "messages": [', id="malformed-json"),
        pytest.param(b'{"messages": [{"role": "user", "content": "hi"}]}', id="missing-model"),
    ],
)
def test_invalid_body_is_400(strict, body):
    mock, gateway = strict
    marker = new_marker()
    response = gateway.post(CHAT, content=body, headers={"content-type": "application/json", MARKER: marker})
    assert_error(response, 400, "invalid_request")
    assert mock.requests(marker) == []


def test_unknown_model_is_404(strict):
    _, gateway = strict
    with pytest.raises(openai.NotFoundError) as raised:
        gateway.client().chat.completions.create(model="gpt-nonexistent", messages=hello())
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"


def test_unknown_endpoint_is_404(strict):
    _, gateway = strict
    assert_error(gateway.post("/v1/nothing-here", json=chat_body()), 404, "unknown_endpoint")


def test_body_over_the_limit_is_413(strict):
    mock, gateway = strict
    marker = new_marker()
    with pytest.raises(openai.APIStatusError) as raised:
        gateway.client().chat.completions.create(
            model=MODEL, messages=hello("x" * (2 * MAX_REQUEST_BYTES)), extra_headers={MARKER: marker}
        )
    assert raised.value.status_code == 413
    assert raised.value.code == "request_too_large"
    assert mock.requests(marker) == []


def test_chunked_body_over_the_limit_is_413(strict):
    """Without a Content-Length the limit is enforced while the body is read."""
    mock, gateway = strict
    marker = new_marker()
    head = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
    pieces = [head] + [b"x" * 1024] * 4 + [b'"}]}']
    response = gateway.post(
        CHAT, content=iter(pieces), headers={"content-type": "application/json", MARKER: marker}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "request_too_large")
    assert mock.requests(marker) == []


def test_slow_provider_is_504_within_the_timeout(strict):
    _, gateway = strict
    started = time.monotonic()
    response = gateway.post(CHAT, json=chat_body(), headers={"x-mock-delay-ms": "3000"})
    elapsed = time.monotonic() - started
    assert_error(response, 504, "upstream_timeout")
    assert 0.45 <= elapsed < 2.5, elapsed


def test_provider_error_status_passes_through(strict):
    mock, gateway = strict
    marker = new_marker()
    response = gateway.post(CHAT, json=chat_body(), headers={"x-mock-status": "503", MARKER: marker})
    error = assert_error(response, 503, "503")
    # The provider's own body, untouched, after the default policy's one retry.
    assert error == {"message": "the mock was told to fail", "type": "mock_error", "param": None,
                     "code": "503"}
    assert len(mock.requests(marker)) == 2


@pytest.mark.parametrize("status", ["401", "403"])
def test_provider_refusing_the_gateway_key_is_502(strict, status):
    _, gateway = strict
    response = gateway.post(CHAT, json=chat_body(), headers={"x-mock-status": status})
    error = assert_error(response, 502, "upstream_auth_failed")
    assert "mock" not in error["message"], "the provider's error body must not leak through"


def test_unreachable_provider_is_502(gateway):
    closed = free_port()  # nothing listens there
    unreachable = gateway(endpoint=f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    response = unreachable.post(CHAT, json=chat_body())
    assert_error(response, 502, "upstream_unreachable")
    assert time.monotonic() - started < 5
