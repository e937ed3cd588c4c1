"""JWT bearer tokens from a `JWTProvider`: accepted next to API keys when signed by the
issuer's published keys, refused with a precise 401 otherwise, and rotated keys picked up."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import LOOPBACK, MODEL, Gateway, assert_error, hello, wait_for

ISSUER = "https://sso.example.test"
AUDIENCE = "tollgate"


class Issuer:
    """An identity provider: RSA keys by kid, and a JWKS endpoint on loopback that counts its
    fetches and publishes the kids in `published`."""

    def __init__(self):
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}
        self.published = ["k1"]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                issuer.fetches += 1
                body = json.dumps({"keys": [issuer.jwk(kid) for kid in issuer.published]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwk(self, kid: str) -> dict:
        key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**key, "kid": kid, "alg": "RS256", "use": "sig"}

    def token(self, kid: str = "k1", **claims) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-123", "email": "dana@example.test",
                   "groups": ["research", "staff"], "iat": now, "exp": now + 300, **claims}
        return jwt.encode(payload, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer():
    issuer = Issuer()
    yield issuer
    issuer.server.shutdown()


def provider(issuer: Issuer) -> dict:
    return {"apiVersion": "tollgate.dev/v1alpha1", "kind": "JWTProvider",
            "metadata": {"name": "sso", "namespace": "default"},
            "spec": {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"uri": issuer.url},
                     "claims": {"user": "email", "team": "groups"}}}


def chat(gw: Gateway, token: str):
    return gw.post("/v1/chat/completions", key=token, json={"model": MODEL, "messages": hello()})


def test_tokens_of_a_trusted_issuer_are_accepted_and_bad_ones_refused(mock, gateway, issuer):
    gw = gateway(mock)
    gw.reload(gw.manifest() + "---\n" + json.dumps(provider(issuer)) + "\n")
    assert chat(gw, issuer.token()).status_code == 200
    assert chat(gw, "tg-alice-secret").status_code == 200, "API keys still work"
    assert_error(chat(gw, issuer.token(exp=int(time.time()) - 120)), 401, "token_expired")
    assert_error(chat(gw, issuer.token(aud="someone-else")), 401, "invalid_token_audience")
    assert_error(chat(gw, issuer.token(iss="https://evil.example.test")), 401, "unknown_token_issuer")
    header, payload, signature = issuer.token().split(".")
    forged = jwt.utils.base64url_encode(json.dumps(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "exp": int(time.time()) + 300}).encode()).decode()
    error = assert_error(chat(gw, f"{header}.{forged}.{signature}"), 401, "invalid_token_signature")
    assert forged not in error["message"]
    assert issuer.fetches == 1, "the key set is cached"
    # The identity's user and team come from the mapped claims.
    gw.proc.stop()
    assert "jwt:default/sso:u-123" in gw.proc.stderr()


def test_a_rotated_key_is_picked_up_by_refetching_the_key_set(mock, gateway, issuer):
    gw = gateway(mock)
    gw.reload(gw.manifest() + "---\n" + json.dumps(provider(issuer)) + "\n")
    assert chat(gw, issuer.token("k1")).status_code == 200
    issuer.published = ["k2"]  # the provider rotates its signing key
    # Key sets are fetched at most every 10 s, so a flood of unknown kids cannot hammer the
    # provider: right after the first fetch, the new kid is not known yet...
    for _ in range(5):
        assert_error(chat(gw, issuer.token("k2")), 401, "unknown_token_key")
    assert issuer.fetches == 1
    # ...and once that interval has passed, an unknown kid fetches the rotated set once.
    wait_for(lambda: chat(gw, issuer.token("k2")).status_code == 200, 15, "the rotated key", interval=0.5)
    assert issuer.fetches == 2
    assert_error(chat(gw, issuer.token("k1")), 401, "unknown_token_key")
