"""Non-streamed traffic through the openai SDK: chat completions, aliases, embeddings and the
model list, and what the provider receives (its own key, never the caller's)."""

import json

import pytest

from conftest import ALICE_KEY, EMBEDDING_MODEL, MARKER, MODEL, UPSTREAM_KEY, hello, mock_reply, new_marker


@pytest.fixture(scope="module")
def served(module_launcher):
    """One mock and one gateway routing gpt-4o-mini, the alias `fast` and embeddings."""
    mock = module_launcher.mock()
    gateway = module_launcher.gateway(mock, aliases=("fast",), embeddings=True)
    return mock, gateway


def test_chat_completion_returns_content_and_usage(served):
    mock, gateway = served
    marker = new_marker()
    raw = gateway.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=hello(), extra_headers={MARKER: marker}
    )
    assert raw.status_code == 200
    assert raw.headers.get("x-request-id")
    completion = raw.parse()
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == mock_reply(5)
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.completion_tokens == 5
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    (received,) = mock.requests(marker)
    assert received["method"] == "POST"
    assert received["path"] == "/v1/chat/completions"
    assert received["body"]["model"] == MODEL
    assert received["body"]["messages"] == hello()


def test_provider_gets_the_provider_key_never_the_callers(served):
    mock, gateway = served
    marker = new_marker()
    gateway.client().chat.completions.create(model=MODEL, messages=hello(), extra_headers={MARKER: marker})

    (received,) = mock.requests(marker)
    assert received["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    # The SDK asks for compression; usage can only be read from an uncompressed answer.
    assert "accept-encoding" not in received["headers"]
    # Not in a header of any request the mock ever received, nor in a body.
    everything = json.dumps(mock.requests())
    assert ALICE_KEY not in everything


def test_alias_reaches_the_provider_as_its_upstream_model(served):
    mock, gateway = served
    marker = new_marker()
    completion = gateway.client().chat.completions.create(
        model="fast", messages=hello(), extra_headers={MARKER: marker}
    )
    assert completion.choices[0].message.content == mock_reply(5)

    (received,) = mock.requests(marker)
    assert received["body"]["model"] == MODEL
    assert received["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_embeddings(served):
    mock, gateway = served
    marker = new_marker()
    inputs = ["the first text", "the second text"]
    result = gateway.client().embeddings.create(
        model=EMBEDDING_MODEL, input=inputs, extra_headers={MARKER: marker}
    )
    assert [item.index for item in result.data] == [0, 1]
    assert all(len(item.embedding) == 8 for item in result.data)
    assert result.usage.prompt_tokens > 0

    (received,) = mock.requests(marker)
    assert received["path"] == "/v1/embeddings"
    assert received["body"]["model"] == EMBEDDING_MODEL
    assert received["body"]["input"] == inputs
    assert received["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_models_list_is_exactly_the_routed_models(served):
    mock, gateway = served
    marker = new_marker()
    models = gateway.client().models.list(extra_headers={MARKER: marker})
    ids = [model.id for model in models]
    # The mock's own list holds only gpt-4o-mini: the gateway answers from its routes.
    assert sorted(ids) == sorted([MODEL, "fast", EMBEDDING_MODEL])
    assert mock.requests(marker) == []
