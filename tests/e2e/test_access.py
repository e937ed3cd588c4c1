"""Identity and access: keys stored as digests, expiring keys, and AIRoute `access` lists that
refuse with 403 and trim `GET /v1/models` to what the caller may use."""

from __future__ import annotations

import hashlib
import json

from conftest import ALICE_KEY, MODEL, Gateway, assert_error, hello

BOB_KEY = "tg-bob-secret-1"
OLD_KEY = "tg-old-secret-1"


def key_secret(name: str, team: str, user: str, *, data: dict, annotations: dict | None = None) -> dict:
    """An API key Secret in `default`, labelled with its team and user."""
    metadata = {"name": name, "namespace": "default",
                "labels": {"tollgate.dev/api-key": "true", "tollgate.dev/team": team, "tollgate.dev/user": user},
                "annotations": annotations or {}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": data}


def with_access(gw: Gateway, *extra: dict, route_access: dict | None = None,
                rule_access: dict | None = None) -> str:
    """The gateway's manifest with access lists on AIRoute `chat` (and its first rule), plus
    `extra` documents."""
    documents = [json.loads(text) for text in gw.manifest().split("\n---\n")]
    for document in documents:
        if document["kind"] == "AIRoute":
            if route_access:
                document["spec"]["access"] = route_access
            if rule_access:
                document["spec"]["rules"][0]["access"] = rule_access
    return "\n---\n".join(json.dumps(d) for d in [*documents, *extra]) + "\n"


def models(gw: Gateway, key: str) -> list[str]:
    with gw.http() as http:
        response = http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return [model["id"] for model in response.json()["data"]]


def chat(gw: Gateway, key: str):
    return gw.post("/v1/chat/completions", key=key, json={"model": MODEL, "messages": hello()})


def test_keys_stored_as_digests_authenticate_and_expired_keys_are_refused(mock, gateway):
    """A Secret may hold only the key's SHA-256 (the plaintext never in the cluster); a key
    past its `tollgate.dev/expires-at` gets 401 `expired_api_key`."""
    gw = gateway(mock)
    bob = key_secret("bob-key", "finance", "bob", data={"sha256": hashlib.sha256(BOB_KEY.encode()).hexdigest()})
    old = key_secret("old-key", "finance", "old", data={"key": OLD_KEY},
                     annotations={"tollgate.dev/expires-at": "2020-01-01T00:00:00Z"})
    gw.reload(with_access(gw, bob, old))
    assert chat(gw, BOB_KEY).status_code == 200
    error = assert_error(chat(gw, OLD_KEY), 401, "expired_api_key")
    assert OLD_KEY not in error["message"]
    # The key id, never the key, is what the access log names.
    gw.proc.stop()
    assert "default/bob-key" in gw.proc.stderr()
    assert BOB_KEY not in gw.proc.stderr()


def test_access_lists_refuse_others_with_403_and_hide_their_models(mock, gateway):
    """Route `chat` allows team research; its gpt-4o-mini rule further allows only user alice
    or the key ops-key. Bob (team finance) is refused with a message naming the model and
    the route, and does not see the model in /v1/models."""
    gw = gateway(mock, aliases=("fast",))
    bob = key_secret("bob-key", "finance", "bob", data={"key": BOB_KEY})
    carol = key_secret("carol-key", "research", "carol", data={"key": "tg-carol-secret"})
    gw.reload(with_access(gw, bob, carol, route_access={"teams": ["research"]},
                          rule_access={"users": ["alice"], "keys": ["ops-key"]}))
    assert chat(gw, ALICE_KEY).status_code == 200
    error = assert_error(chat(gw, BOB_KEY), 403, "model_access_denied")
    assert MODEL in error["message"] and "default/chat" in error["message"], error
    assert error["type"] == "permission_error"
    # Carol is in the team, so she may use the alias rule, but not the rule that names alice.
    assert_error(chat(gw, "tg-carol-secret"), 403, "model_access_denied")
    assert models(gw, ALICE_KEY) == ["fast", MODEL]
    assert models(gw, "tg-carol-secret") == ["fast"]
    assert models(gw, BOB_KEY) == []
    assert mock.stats()["chat_requests"] == 1, "refused requests never reach the provider"
