"""An HTTPS listener, with a certificate from a Kubernetes TLS Secret, serving the openai SDK."""

import ssl

import httpx
import openai
import pytest
import trustme

from conftest import MODEL, hello, mock_reply


@pytest.fixture
def tls_gateway(mock, gateway, tmp_path):
    """A gateway whose only listener is HTTPS, with a certificate for 127.0.0.1 and localhost
    from a fresh CA; returns the gateway, the CA file and the private key PEM."""
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    chain = "".join(pem.bytes().decode() for pem in certificate.cert_chain_pems)
    key = certificate.private_key_pem.bytes().decode()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return gateway(mock, tls=(chain, key)), ca_file, key


def test_chat_over_https(tls_gateway):
    gw, ca_file, _ = tls_gateway
    assert gw.base_url.startswith("https://")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file)), trust_env=False) as http:
        completion = gw.client(http_client=http).chat.completions.create(model=MODEL, messages=hello())
    assert completion.choices[0].message.content == mock_reply(5)
    assert completion.usage.completion_tokens == 5


def test_https_is_refused_without_trusting_the_ca(tls_gateway):
    gw, _, _ = tls_gateway
    with httpx.Client(trust_env=False) as http:  # the system's roots only
        with pytest.raises(openai.APIConnectionError):
            gw.client(http_client=http).chat.completions.create(model=MODEL, messages=hello())


def test_config_does_not_show_the_private_key(tls_gateway):
    gw, _, key = tls_gateway
    body = gw.admin_get("/config").text
    key_material = key.splitlines()[1]  # the first line of base64 inside the PEM
    assert key_material not in body
    assert "PRIVATE KEY" not in body
