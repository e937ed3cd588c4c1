"""Listeners that share a port: HTTPS listeners for different host names, each served its own
certificate by SNI, and HTTP listeners whose host names decide which routes serve a request."""

import json
import socket
import ssl

import httpx
import pytest
import trustme
from cryptography import x509

from conftest import ALICE_KEY, HTTP_TIMEOUT, LOOPBACK, MODEL, hello, mock_reply

HOST_A, HOST_B = "a.example.test", "b.example.test"


def _documents(manifest: str) -> list[dict]:
    return [json.loads(text) for text in manifest.split("\n---\n")]


def _render(documents: list[dict]) -> str:
    return "\n---\n".join(json.dumps(d, indent=2) for d in documents) + "\n"


def _tls_secret(name: str, certificate: trustme.LeafCert) -> dict:
    chain = "".join(pem.bytes().decode() for pem in certificate.cert_chain_pems)
    key = certificate.private_key_pem.bytes().decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "default"},
            "stringData": {"tls.crt": chain, "tls.key": key}}


def _with_listeners(manifest: str, listeners: list[dict], extra: list[dict] = (),
                    section: str | None = None) -> str:
    """The manifest with the Gateway's listeners replaced, `extra` documents added, and the
    AIRoute attached through listener `section` only when given."""
    documents = _documents(manifest)
    for document in documents:
        if document["kind"] == "Gateway":
            document["spec"]["listeners"] = listeners
        if document["kind"] == "AIRoute" and section:
            document["spec"]["parentRefs"] = [{"name": "ai-gateway", "sectionName": section}]
    return _render([*documents, *extra])


def _https(name: str, port: int, hostname: str | None, secret: str) -> dict:
    listener = {"name": name, "protocol": "HTTPS", "port": port,
                "tls": {"certificateRefs": [{"name": secret}]}}
    return {**listener, **({"hostname": hostname} if hostname else {})}


def _served_names(port: int, server_name: str | None) -> set[str]:
    """The DNS names of the certificate the gateway presents for this SNI (none when None)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName))


@pytest.fixture
def two_https_hosts(mock, gateway, tmp_path):
    """A gateway started with one HTTPS listener for 127.0.0.1, then reloaded to two HTTPS
    listeners on the same port for a.example.test and b.example.test, each with its own
    certificate from one CA; returns the gateway and the CA file."""
    ca = trustme.CA()
    start = ca.issue_cert("127.0.0.1")
    chain = "".join(pem.bytes().decode() for pem in start.cert_chain_pems)
    gw = gateway(mock, tls=(chain, start.private_key_pem.bytes().decode()))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    listeners = [_https("a", gw.port, HOST_A, "a-cert"), _https("b", gw.port, HOST_B, "b-cert")]
    secrets = [_tls_secret("a-cert", ca.issue_cert(HOST_A)), _tls_secret("b-cert", ca.issue_cert(HOST_B))]
    gw.reload(_with_listeners(gw.manifest(), listeners, secrets))
    return gw, ca_file


def test_each_host_gets_its_own_certificate_by_sni(two_https_hosts):
    gw, _ = two_https_hosts
    assert _served_names(gw.port, HOST_A) == {HOST_A}
    assert _served_names(gw.port, HOST_B) == {HOST_B}


def test_a_verifying_client_reaches_both_hosts_on_one_port(two_https_hosts):
    gw, ca_file = two_https_hosts
    verify = ssl.create_default_context(cafile=str(ca_file))
    for host in (HOST_A, HOST_B):
        with httpx.Client(verify=verify, trust_env=False, timeout=HTTP_TIMEOUT) as http:
            response = http.post(f"https://{LOOPBACK}:{gw.port}/v1/chat/completions",
                                 headers={"Host": host, "Authorization": f"Bearer {ALICE_KEY}"},
                                 json={"model": MODEL, "messages": hello()},
                                 extensions={"sni_hostname": host})
        assert response.status_code == 200, f"{host}: {response.text}"
        assert response.json()["choices"][0]["message"]["content"] == mock_reply(5)


def test_an_unknown_server_name_is_refused_without_a_default_listener(two_https_hosts):
    gw, _ = two_https_hosts
    with pytest.raises(ssl.SSLError):
        _served_names(gw.port, "c.example.test")


def test_a_listener_without_hostname_is_the_default_certificate(two_https_hosts, tmp_path):
    gw, _ = two_https_hosts
    ca = trustme.CA()
    listeners = [_https("a", gw.port, HOST_A, "a-cert"), _https("any", gw.port, None, "any-cert")]
    extra = [_tls_secret("a-cert", ca.issue_cert(HOST_A)), _tls_secret("any-cert", ca.issue_cert("any.test"))]
    gw.reload(_with_listeners(gw.manifest(), listeners, extra))
    assert _served_names(gw.port, HOST_A) == {HOST_A}
    assert _served_names(gw.port, "c.example.test") == {"any.test"}


def test_http_listeners_share_a_port_and_routes_follow_their_hostnames(mock, gateway):
    gw = gateway(mock)
    listeners = [{"name": "a", "protocol": "HTTP", "port": gw.port, "hostname": HOST_A},
                 {"name": "b", "protocol": "HTTP", "port": gw.port, "hostname": HOST_B}]
    gw.reload(_with_listeners(gw.manifest(), listeners, section="a"))

    def chat(host: str) -> httpx.Response:
        return gw.post("/v1/chat/completions", headers={"Host": host},
                       json={"model": MODEL, "messages": hello()})

    assert chat(HOST_A).status_code == 200
    assert chat(HOST_B).status_code == 404, "the route attaches through listener a only"


def test_listeners_with_two_protocols_on_one_port_are_refused(mock, gateway):
    gw = gateway(mock)
    listeners = [{"name": "http", "protocol": "HTTP", "port": gw.port},
                 _https("https", gw.port, HOST_A, "a-cert")]
    secret = _tls_secret("a-cert", trustme.CA().issue_cert(HOST_A))
    gw.reload_rejected(_with_listeners(gw.manifest(), listeners, [secret]))
    assert gw.post("/v1/chat/completions", json={"model": MODEL, "messages": hello()}).status_code == 200
