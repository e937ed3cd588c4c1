"""Every provider behind one API: the official OpenAI SDK against Anthropic-, Gemini- and
Azure-typed providers, the official Anthropic SDK against an OpenAI-typed one and an Anthropic
one, each whole, streamed and with a tool-call round trip; errors come back in the caller's
dialect, and usage is the same numbers whichever way the request travels."""
from __future__ import annotations

import json

import anthropic
import openai
import pytest

from conftest import ALICE_KEY, MODEL, UPSTREAM_KEY, Gateway, Launcher, Mock

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
QUESTION = "Weather in Paris?"


def retyped(gateway: Gateway, provider_type: str, **spec) -> str:
    """The gateway's manifest with its ModelProvider `openai` of another type."""
    documents = [json.loads(text) for text in gateway.manifest().split("\n---\n")]
    for document in documents:
        if document["kind"] == "ModelProvider":
            document["spec"].update(type=provider_type, **spec)
    return "\n---\n".join(json.dumps(d) for d in documents) + "\n"


@pytest.fixture(scope="module")
def mock(module_launcher: Launcher) -> Mock:
    return module_launcher.mock()


def served_by(module_launcher: Launcher, mock: Mock, provider_type: str, **spec) -> Gateway:
    gateway = module_launcher.gateway(mock)
    gateway.reload(retyped(gateway, provider_type, **spec))
    return gateway


@pytest.fixture(scope="module")
def gateways(module_launcher: Launcher, mock: Mock) -> dict[str, Gateway]:
    return {
        "OpenAI": module_launcher.gateway(mock),
        "Anthropic": served_by(module_launcher, mock, "Anthropic"),
        "Gemini": served_by(module_launcher, mock, "Gemini"),
        "AzureOpenAI": served_by(module_launcher, mock, "AzureOpenAI", azure={"apiVersion": "2024-10-21"}),
    }


def anthropic_client(gateway: Gateway, key: str = ALICE_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


UPSTREAMS = ["Anthropic", "Gemini", "AzureOpenAI"]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_whole_answer_from_any_provider(gateways: dict[str, Gateway], upstream: str) -> None:
    reference = gateways["OpenAI"].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    answer = gateways[upstream].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert answer.choices[0].message.content == reference.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == \
        (reference.usage.prompt_tokens, reference.usage.completion_tokens)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_stream_from_any_provider(gateways: dict[str, Gateway], upstream: str) -> None:
    chunks = list(gateways[upstream].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reference = gateways["OpenAI"].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert text == reference.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.prompt_tokens == reference.usage.prompt_tokens


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_tool_round_trip_through_any_provider(gateways: dict[str, Gateway], upstream: str) -> None:
    client = gateways[upstream].client()
    messages = [{"role": "user", "content": QUESTION}]
    tools = [{"type": "function", "function": WEATHER_TOOL}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "value"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert "sunny" in second.choices[0].message.content


def test_anthropic_sdk_through_an_openai_provider(gateways: dict[str, Gateway], mock: Mock) -> None:
    client = anthropic_client(gateways["OpenAI"])
    message = client.messages.create(model=MODEL, max_tokens=100,
                                     messages=[{"role": "user", "content": QUESTION}])
    reference = gateways["OpenAI"].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert message.content[0].text == reference.choices[0].message.content
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == \
        (reference.usage.prompt_tokens, reference.usage.completion_tokens)
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": QUESTION}]) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].text == message.content[0].text
    assert streamed.usage.output_tokens == message.usage.output_tokens
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["max_completion_tokens"] == 100


def test_anthropic_sdk_tool_round_trip_through_an_openai_provider(gateways: dict[str, Gateway]) -> None:
    client = anthropic_client(gateways["OpenAI"])
    tools = [{"name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"],
              "input_schema": WEATHER_TOOL["parameters"]}]
    messages = [{"role": "user", "content": QUESTION}]
    first = client.messages.create(model=MODEL, max_tokens=100, tools=tools, messages=messages)
    assert first.stop_reason == "tool_use"
    use = next(block for block in first.content if block.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "value"})
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rainy"}]}]
    with client.messages.stream(model=MODEL, max_tokens=100, tools=tools, messages=messages) as stream:
        second = stream.get_final_message()
    assert "rainy" in second.content[0].text


def test_anthropic_sdk_passes_through_to_anthropic(gateways: dict[str, Gateway], mock: Mock) -> None:
    client = anthropic_client(gateways["Anthropic"])
    message = client.messages.create(model=MODEL, max_tokens=50,
                                     messages=[{"role": "user", "content": QUESTION}],
                                     extra_headers={"anthropic-beta": "test-beta"})
    assert message.content[0].text
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == UPSTREAM_KEY
    assert sent["headers"]["anthropic-beta"] == "test-beta"
    assert "authorization" not in sent["headers"]
    metric = gateways["Anthropic"].metric("tollgate_tokens_total", type="input", route="default/chat", model=MODEL, provider="default/openai")
    assert metric > 0


def test_errors_come_back_in_the_callers_dialect(gateways: dict[str, Gateway]) -> None:
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic_client(gateways["OpenAI"], key="tg-wrong").messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(openai.BadRequestError) as unsupported:
        gateways["Anthropic"].client().chat.completions.create(
            model=MODEL, n=2, messages=[{"role": "user", "content": "hi"}])
    assert unsupported.value.code == "unsupported_parameter"
    assert "`n`" in unsupported.value.message


def test_an_upstream_refusal_is_translated(gateways: dict[str, Gateway]) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateways["Anthropic"].client().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"x-mock-status": "400"})
    assert refused.value.code == "upstream_error"
    assert "status 400" in refused.value.message
