"""Which rule serves a request: exact model, then model prefix (longest first), then rules
without a model condition, each gated by headers, path, prompt size, tools and images."""

import json

import pytest

from conftest import ALICE_KEY, MARKER, MODEL, backend, hello, new_marker



def chat_body() -> dict:
    return {"model": MODEL, "messages": hello()}


def to(index: int, model: str = MODEL) -> list[dict]:
    return [{"provider": f"backend-{index}", "model": model}]


RULES = [
    {"name": "gold", "matches": [{"model": MODEL, "headers": [{"name": "X-Tier", "value": "gold"}]}], "backends": to(1)},
    {"name": "big", "matches": [{"model": MODEL, "promptTokens": {"min": 500}}], "backends": to(1)},
    {"name": "plain", "matches": [{"model": MODEL}], "backends": to(0)},
    {"name": "tools", "matches": [{"modelPrefix": "gpt-4o", "hasTools": True}], "backends": to(1)},
    {"name": "vision", "matches": [{"modelPrefix": "gpt-4o-", "hasImages": True}], "backends": to(1)},
    {"name": "family", "matches": [{"modelPrefix": "gpt-4o"}], "backends": to(0)},
    {"name": "embeddings", "matches": [{"path": "/v1/embeddings"}], "backends": to(1, "text-embedding-3-small")},
]


@pytest.fixture(scope="module")
def served(module_launcher):
    """Two mocks; AIRoute `chat` holds RULES, `backend-1` serving every special case."""
    basic, special = module_launcher.mock(), module_launcher.mock()
    gateway = module_launcher.gateway(backends=(backend(basic), backend(special)))
    documents = [json.loads(d) for d in gateway.manifest().split("\n---\n")]
    for document in documents:
        if document["kind"] == "AIRoute":
            document["spec"]["rules"] = RULES
    gateway.reload("\n---\n".join(json.dumps(d) for d in documents) + "\n")
    return basic, special, gateway


def served_by(served, path="/v1/chat/completions", headers=None, **body):
    """Sends one request and says which mock got it."""
    basic, special, gateway = served
    marker = new_marker()
    response = gateway.post(path, json=body, headers={MARKER: marker, **(headers or {})})
    assert response.status_code == 200, response.text
    got = [name for name, mock in (("basic", basic), ("special", special)) if mock.requests(marker)]
    assert len(got) == 1, got
    return got[0]


def test_an_exact_model_rule_gated_on_a_header_gives_way_when_the_header_is_absent(served):
    assert served_by(served, **chat_body()) == "basic"
    assert served_by(served, headers={"x-tier": "gold"}, **chat_body()) == "special"
    assert served_by(served, headers={"x-tier": "silver"}, **chat_body()) == "basic"


def test_prompt_size_is_estimated_from_the_messages(served):
    small = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 2500}]}
    assert served_by(served, **small) == "basic"
    assert served_by(served, **big) == "special"


def test_prefix_rules_serve_other_models_of_a_family_and_check_their_conditions(served):
    plain = {"model": "gpt-4o-2024-08-06", "messages": [{"role": "user", "content": "hi"}]}
    tools = {**plain, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}
    image = {**plain, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}
    assert served_by(served, **plain) == "basic"
    assert served_by(served, **tools) == "special"
    assert served_by(served, **image) == "special"
    # The exact rule wins over the prefix rules even when the request has tools.
    assert served_by(served, **{**tools, "model": MODEL}) == "basic"


def test_a_path_rule_catches_what_no_model_rule_claims(served):
    assert served_by(served, "/v1/embeddings", model="any-embedding-model", input="hello") == "special"
    _, _, gateway = served
    response = gateway.post("/v1/chat/completions", json={"model": "claude-3", "messages": []})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_the_models_list_names_only_exact_models(served):
    _, _, gateway = served
    response = gateway.http().get("/v1/models", headers={"Authorization": f"Bearer {ALICE_KEY}"})
    assert [m["id"] for m in response.json()["data"]] == [MODEL]
