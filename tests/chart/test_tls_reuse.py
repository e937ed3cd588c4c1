"""The chart's push-channel certificates across upgrades: Helm's `lookup` finds the Secrets of
the previous release, and the chart keeps the CA always and each certificate while it still
fits (same CA, same DNS names). `helm template` never looks anything up, so this runs
`helm install --dry-run=server` against a small fake API server on loopback that answers
discovery and serves the Secrets a test puts in it.

Run by `make test-chart` (helm from .tools/bin, `make tools`)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
RELEASE, NAMESPACE = "tollgate", "tollgate-system"
SECRETS = ("tollgate-ca", "tollgate-controller-tls", "tollgate-proxy-tls")
# The kinds the chart renders with `gateways: []` and no GatewayClass: (group, plural, kind, namespaced).
KINDS = [("", "secrets", "Secret", True), ("", "services", "Service", True),
         ("", "serviceaccounts", "ServiceAccount", True), ("apps", "deployments", "Deployment", True),
         ("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False),
         ("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False),
         ("rbac.authorization.k8s.io", "roles", "Role", True),
         ("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", True),
         ("policy", "poddisruptionbudgets", "PodDisruptionBudget", True)]
NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}


class FakeApiServer:
    """Discovery for KINDS, GET of the Secrets in `secrets`, empty lists; 404 for the rest."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0].strip("/").split("/")
                self.answer(*fake.answer(path))

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: list[str]) -> tuple[int, dict]:
        groups = sorted({group for group, *_ in KINDS if group})
        if path == ["version"]:
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
        if path == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == ["apis"]:
            versions = {group: {"groupVersion": f"{group}/v1", "version": "v1"} for group in groups}
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": group, "versions": [version], "preferredVersion": version}
                for group, version in versions.items()]}
        if path == ["api", "v1"] or (len(path) == 3 and path[0] == "apis" and path[2] == "v1"):
            group = "" if path[0] == "api" else path[1]
            return 200, {"kind": "APIResourceList", "groupVersion": f"{group}/v1".lstrip("/"), "resources": [
                {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                 "verbs": ["get", "list"]} for g, plural, kind, namespaced in KINDS if g == group]}
        if path[-2:-1] == ["secrets"] and path[-1] in self.secrets:
            return 200, self.secrets[path[-1]]
        if path[-1:] in (["secrets"], ["services"]):
            return 200, {"kind": "List", "apiVersion": "v1", "items": []}
        return 404, NOT_FOUND

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(tmp_path):
    if not HELM.is_file():
        pytest.fail("helm not found in .tools/bin: run `make tools`", pytrace=False)
    server = FakeApiServer()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
        "users": [{"name": "fake", "user": {"token": "fake"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))
    server.kubeconfig = kubeconfig
    yield server
    server.close()


def install(api: FakeApiServer, *values: str) -> dict[str, dict[str, str]]:
    """`helm install --dry-run=server`: the rendered Secrets' data by name."""
    done = subprocess.run(
        [str(HELM), "install", RELEASE, str(REPO_ROOT / "charts" / "tollgate"), "--namespace", NAMESPACE,
         "--dry-run=server", "--disable-openapi-validation", "--skip-crds", "--output", "json",
         "--set", "gateways=null", "--set", "gatewayClass.create=false", *values],
        capture_output=True, text=True, timeout=60,
        env={"KUBECONFIG": str(api.kubeconfig), "HOME": str(api.kubeconfig.parent)})
    assert done.returncode == 0, done.stderr
    secrets = {}
    for document in json.loads(done.stdout)["manifest"].split("\n---\n"):
        if re.search(r"^kind: Secret$", document, re.M):
            name = re.search(r"^  name: (\S+)$", document, re.M).group(1)
            secrets[name] = dict(re.findall(r"^  (tls\.crt|tls\.key|ca\.crt): (\S+)$", document, re.M))
            names = re.search(r'^    tollgate\.dev/dns-names: "(.*)"$', document, re.M)
            secrets[name]["dns-names"] = names.group(1) if names else None
    assert sorted(secrets) == sorted(SECRETS)
    return secrets


def store(api: FakeApiServer, secrets: dict[str, dict[str, str]]) -> None:
    """Puts Secrets into the fake cluster as a previous install of the release left them."""
    for name, data in secrets.items():
        annotations = {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE}
        if data.get("dns-names") is not None:
            annotations["tollgate.dev/dns-names"] = data["dns-names"]
        api.secrets[name] = {
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": NAMESPACE, "annotations": annotations,
                         "labels": {"app.kubernetes.io/managed-by": "Helm"}},
            "data": {key: value for key, value in data.items() if key != "dns-names"},
        }


def verified(secrets: dict[str, dict[str, str]]) -> None:
    """Both certificates were signed by the CA they carry, which is the CA Secret's."""
    ca = x509.load_pem_x509_certificate(base64.b64decode(secrets["tollgate-ca"]["tls.crt"]))
    for name in SECRETS[1:]:
        assert secrets[name]["ca.crt"] == secrets["tollgate-ca"]["tls.crt"]
        x509.load_pem_x509_certificate(base64.b64decode(secrets[name]["tls.crt"])).verify_directly_issued_by(ca)


def test_a_first_install_makes_a_ca_and_certificates_it_signed(api):
    verified(install(api))


def test_an_upgrade_keeps_everything(api):
    first = install(api)
    store(api, first)
    assert install(api) == first


def test_a_missing_certificate_is_made_again_with_the_same_ca(api):
    first = install(api)
    store(api, {name: data for name, data in first.items() if name != "tollgate-proxy-tls"})
    second = install(api)
    assert second["tollgate-ca"] == first["tollgate-ca"]
    assert second["tollgate-controller-tls"] == first["tollgate-controller-tls"]
    assert second["tollgate-proxy-tls"]["tls.crt"] != first["tollgate-proxy-tls"]["tls.crt"]
    verified(second)


def test_new_dns_names_make_a_new_server_certificate(api):
    first = install(api)
    store(api, first)
    second = install(api, "--set", "clusterDomain=example.internal")
    assert second["tollgate-ca"] == first["tollgate-ca"]
    assert second["tollgate-proxy-tls"] == first["tollgate-proxy-tls"]
    assert second["tollgate-controller-tls"]["tls.crt"] != first["tollgate-controller-tls"]["tls.crt"]
    assert "example.internal" in second["tollgate-controller-tls"]["dns-names"]
    verified(second)
