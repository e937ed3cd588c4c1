"""Every provider behind one API: the official OpenAI SDK against Anthropic-, Gemini- and
Azure-, Bedrock- and Vertex-typed providers, the official Anthropic SDK against an OpenAI-typed one and an Anthropic
one, each whole, streamed and with a tool-call round trip; errors come back in the caller's
dialect, and usage is the same numbers whichever way the request travels."""
from __future__ import annotations

import json
import time
import urllib.parse

import anthropic
import openai
import pytest

from conftest import ALICE_KEY, EMBEDDING_MODEL, MODEL, UPSTREAM_KEY, Gateway, Launcher, Mock

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
QUESTION = "Weather in Paris?"


# The mock's IAM user (crates/tollgate-mock/src/credentials.rs).
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDTOLLGATEMOCK",
                   "AWS_SECRET_ACCESS_KEY": "tollgate-mock-secret-access-key"}
VERTEX_CLAUDE = "claude-sonnet-4-5"


def retyped(gateway: Gateway, provider_type: str, *, secrets: dict[str, dict] | None = None,
            model: str | None = None, keyless: bool = False, **spec) -> str:
    """The gateway's manifest with its ModelProvider `openai` of another type (without its
    key when `keyless`), extra Secrets (name -> stringData), and the route's backend asking
    for `model` when given."""
    documents = [json.loads(text) for text in gateway.manifest().split("\n---\n")]
    for document in documents:
        if document["kind"] == "ModelProvider":
            document["spec"].update(type=provider_type, **spec)
            if keyless:
                del document["spec"]["auth"]
            if model:
                document["spec"]["models"].append({"name": model})
        if document["kind"] == "AIRoute" and model:
            document["spec"]["rules"][0]["backends"][0]["model"] = model
    for name, data in (secrets or {}).items():
        documents.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
                          "stringData": data})
    return "\n---\n".join(json.dumps(d) for d in documents) + "\n"


def service_account_key(mock: Mock) -> str:
    """A Google service account key file, with a fresh RSA key, whose token endpoint is the mock's."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "tollgate-test", "private_key_id": "k1",
                       "private_key": pem, "client_email": "gateway@tollgate-test.iam.gserviceaccount.com",
                       "token_uri": f"{mock.url}/oauth2/token"})


def bedrock_spec(mock: Mock, secret: dict[str, str] = AWS_CREDENTIALS) -> dict:
    return {"keyless": True, "endpoint": mock.url, "secrets": {"aws-credentials": secret},
            "bedrock": {"region": "us-east-1", "credentialsSecretRef": {"name": "aws-credentials"}}}


def vertex_spec(mock: Mock, model: str | None = None) -> dict:
    return {"keyless": True, "endpoint": mock.url, "model": model,
            "secrets": {"gcp-service-account": {"key.json": service_account_key(mock)}},
            "vertex": {"project": "tollgate-test", "location": "us-central1",
                       "serviceAccountSecretRef": {"name": "gcp-service-account", "key": "key.json"}}}


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
        "Bedrock": served_by(module_launcher, mock, "Bedrock", **bedrock_spec(mock)),
        "VertexGemini": served_by(module_launcher, mock, "VertexAI", **vertex_spec(mock)),
        "VertexClaude": served_by(module_launcher, mock, "VertexAI", **vertex_spec(mock, VERTEX_CLAUDE)),
    }


def anthropic_client(gateway: Gateway, key: str = ALICE_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


UPSTREAMS = ["Anthropic", "Gemini", "AzureOpenAI", "Bedrock", "VertexGemini", "VertexClaude"]


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


def test_bedrock_requests_are_signed_with_sigv4(gateways: dict[str, Gateway], mock: Mock) -> None:
    gateways["Bedrock"].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True).close()
    sent = mock.requests()[-1]
    assert sent["path"] == f"/model/{MODEL}/converse-stream"
    assert sent["headers"]["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDTOLLGATEMOCK/")
    assert "/us-east-1/bedrock/aws4_request" in sent["headers"]["authorization"]
    assert ALICE_KEY not in json.dumps(sent)


def test_a_bedrock_signature_with_the_wrong_secret_is_refused(module_launcher: Launcher, mock: Mock) -> None:
    wrong = {**AWS_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    gateway = served_by(module_launcher, mock, "Bedrock", **bedrock_spec(mock, wrong))
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert refused.value.status_code == 502
    assert refused.value.body["code"] == "upstream_auth_failed"


def test_bedrock_api_keys_are_bearer_tokens(module_launcher: Launcher, mock: Mock) -> None:
    gateway = served_by(module_launcher, mock, "Bedrock", endpoint=mock.url, bedrock={"region": "us-west-2"})
    answer = gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert answer.choices[0].message.content
    assert mock.requests()[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_vertex_calls_share_one_minted_token(module_launcher: Launcher) -> None:
    mock = module_launcher.mock()
    gateway = served_by(module_launcher, mock, "VertexAI", **vertex_spec(mock, VERTEX_CLAUDE))
    for _ in range(3):
        gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    received = mock.requests()
    minted = [r for r in received if r["path"] == "/oauth2/token"]
    calls = [r for r in received if r["path"].endswith(":rawPredict")]
    assert len(minted) == 1 and len(calls) == 3
    assert calls[0]["path"] == \
        f"/v1/projects/tollgate-test/locations/us-central1/publishers/anthropic/models/{VERTEX_CLAUDE}:rawPredict"
    assert {c["headers"]["authorization"] for c in calls} == {"Bearer ya29.mock-1"}
    assert calls[0]["body"]["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in calls[0]["body"]


def test_vertex_tokens_are_replaced_before_they_expire(module_launcher: Launcher) -> None:
    mock = module_launcher.mock("--token-lifetime-s", "4")
    gateway = served_by(module_launcher, mock, "VertexAI", **vertex_spec(mock))
    client = gateway.client()
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    time.sleep(3.2)  # past three quarters of the token's life, before its end
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    calls = [r for r in mock.requests() if r["path"].endswith(":generateContent")]
    assert [c["headers"]["authorization"] for c in calls] == ["Bearer ya29.mock-1", "Bearer ya29.mock-2"]


def test_anthropic_sdk_counts_tokens_upstream_or_in_the_gateway(gateways: dict[str, Gateway], mock: Mock) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    upstream = anthropic_client(gateways["Anthropic"]).messages.count_tokens(model=MODEL, messages=messages)
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/messages/count_tokens"
    assert upstream.input_tokens == 5  # the mock's count: ceil(17 bytes / 4)
    # An OpenAI model's prompt is counted by the gateway with its tokenizer (o200k for gpt-4o-mini).
    local = anthropic_client(gateways["OpenAI"]).messages.count_tokens(model=MODEL, messages=messages)
    assert local.input_tokens == 3 + 3 + 1 + 4  # priming, framing, "user", "Weather in Paris?"
    assert mock.requests()[-1] == sent, "nothing went upstream"
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client(gateways["OpenAI"]).messages.count_tokens(model="no-such-model", messages=messages)


def test_anthropic_sdk_lists_models_in_its_format(gateways: dict[str, Gateway]) -> None:
    models = anthropic_client(gateways["Anthropic"]).models.list()
    assert [m.id for m in models.data] == [m.id for m in gateways["Anthropic"].client().models.list().data]
    assert all(m.type == "model" for m in models.data)


@pytest.mark.parametrize("upstream", ["OpenAI", "Anthropic", "Gemini", "Bedrock"])
def test_openai_responses_api_through_any_provider(gateways: dict[str, Gateway], upstream: str) -> None:
    client = gateways[upstream].client()
    reference = gateways["OpenAI"].client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    expected = reference.choices[0].message.content
    response = client.responses.create(model=MODEL, instructions="Be brief.", input=QUESTION)
    assert response.status == "completed"
    assert response.output_text == expected
    assert response.usage.output_tokens == reference.usage.completion_tokens
    with client.responses.stream(model=MODEL, input=QUESTION) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1 and "".join(deltas) == final.output_text == expected
    assert final.usage.input_tokens == reference.usage.prompt_tokens

    tools = [{"type": "function", **WEATHER_TOOL}]
    first = client.responses.create(model=MODEL, input=QUESTION, tools=tools)
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "value"})
    second = client.responses.create(model=MODEL, tools=tools, input=[
        {"role": "user", "content": QUESTION}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert "sunny" in second.output_text


def test_responses_api_fields_that_need_server_state_are_refused(gateways: dict[str, Gateway]) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateways["Anthropic"].client().responses.create(
            model=MODEL, input=QUESTION, previous_response_id="resp_123")
    assert refused.value.body["code"] == "unsupported_parameter"
    assert "previous_response_id" in refused.value.body["message"]


def test_a_request_one_provider_cannot_express_goes_to_one_that_can(module_launcher: Launcher, mock: Mock) -> None:
    gateway = module_launcher.gateway(backends=({"endpoint": mock.url, "priority": 0},
                                                {"endpoint": mock.url, "priority": 1}))
    documents = [json.loads(text) for text in gateway.manifest().split("\n---\n")]
    for document in documents:
        if document["kind"] == "ModelProvider" and document["metadata"]["name"] == "backend-0":
            document["spec"]["type"] = "Anthropic"
    gateway.reload("\n---\n".join(json.dumps(d) for d in documents) + "\n")
    # Anthropic has no logprobs: the preferred backend cannot take the request, the next one can.
    answer = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], logprobs=True)
    assert answer.choices[0].message.content
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["logprobs"] is True
    # Without logprobs, the preferred (Anthropic) backend serves.
    gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert mock.requests()[-1]["path"] == "/v1/messages"


@pytest.mark.parametrize("upstream", ["Gemini", "VertexAI"])
def test_openai_sdk_embeddings_from_google(module_launcher: Launcher, mock: Mock, upstream: str) -> None:
    gateway = module_launcher.gateway(mock, embeddings=True)
    spec = vertex_spec(mock) if upstream == "VertexAI" else {}
    gateway.reload(retyped(gateway, upstream, **spec))
    client = gateway.client()
    # The SDK asks for base64 unless told otherwise, and decodes it.
    default = client.embeddings.create(model=EMBEDDING_MODEL, input=["hello world", "bye"])
    assert [round(x, 6) for x in default.data[1].embedding] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    floats = client.embeddings.create(model=EMBEDDING_MODEL, input="hello world", encoding_format="float",
                                      dimensions=8)
    assert len(floats.data) == 1 and floats.data[0].embedding[0] == pytest.approx(0.1)
    # Vertex counts (the mock: ceil(11 bytes / 4)); Gemini does not, so the gateway estimates
    # (ceil(13 bytes of the JSON string, quotes included, / 4)).
    assert floats.usage.prompt_tokens == (3 if upstream == "VertexAI" else 4)
    sent = mock.requests()[-1]
    if upstream == "VertexAI":
        assert sent["path"].endswith(f"/publishers/google/models/{EMBEDDING_MODEL}:predict")
        assert sent["body"] == {"instances": [{"content": "hello world"}], "parameters": {"outputDimensionality": 8}}
    else:
        assert sent["path"] == f"/v1beta/models/{EMBEDDING_MODEL}:batchEmbedContents"
        assert sent["body"]["requests"][0]["outputDimensionality"] == 8


def entra_spec(mock: Mock, secret: str = "tollgate-mock-client-secret") -> dict:
    return {"keyless": True, "secrets": {"entra-app": {"clientSecret": secret}},
            "azure": {"apiVersion": "2024-10-21", "entra": {
                "tenantId": "tollgate-test", "clientId": "gateway-app", "authorityHost": mock.url,
                "clientSecretRef": {"name": "entra-app", "key": "clientSecret"}}}}


def test_azure_with_entra_id_tokens_instead_of_an_api_key(module_launcher: Launcher) -> None:
    mock = module_launcher.mock()
    gateway = served_by(module_launcher, mock, "AzureOpenAI", **entra_spec(mock))
    for _ in range(2):
        gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    received = mock.requests()
    minted = [r for r in received if r["path"] == "/tollgate-test/oauth2/v2.0/token"]
    calls = [r for r in received if r["path"].startswith("/openai/deployments/")]
    assert len(minted) == 1 and len(calls) == 2
    form = urllib.parse.parse_qs(minted[0]["body"])
    assert form["scope"] == ["https://cognitiveservices.azure.com/.default"]
    assert (form["grant_type"], form["client_id"]) == (["client_credentials"], ["gateway-app"])
    assert {c["headers"]["authorization"] for c in calls} == {"Bearer ya29.mock-1"}
    assert not any("api-key" in c["headers"] for c in calls)


def test_a_token_that_cannot_be_minted_is_a_502_naming_the_cause(module_launcher: Launcher) -> None:
    mock = module_launcher.mock()
    gateway = served_by(module_launcher, mock, "AzureOpenAI", **entra_spec(mock, secret="wrong"))
    with pytest.raises(openai.APIStatusError) as refused:
        gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert refused.value.status_code == 502
    assert refused.value.body["code"] == "upstream_credential_unavailable"
    assert "invalid_client" in refused.value.body["message"]
    assert not [r for r in mock.requests() if r["path"].startswith("/openai/")]
