"""Config push: `tollgate controller --files` serves each Gateway's snapshot over mutual TLS to
`tollgate proxy` processes, which apply it, acknowledge it (or say why not) and keep serving
their last good configuration when the controller goes away."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import trustme

from conftest import (ALICE_KEY, GATEWAY, HTTP_TIMEOUT, LOOPBACK, MODEL, Launcher, Metrics, Mock, Process, binary,
                      free_port, hello, mock_reply, render_manifest, wait_for)

# Two proxies serve the same Gateway port, each on its own loopback address.
ADDRESSES = {"proxy-a": "127.0.0.1", "proxy-b": "127.0.0.2"}
PUSH_TIMEOUT_S = 10


class Pki:
    """A CA with the controller's certificate and one client certificate per proxy name, as files."""

    def __init__(self, directory: Path, ca: trustme.CA | None = None):
        self.dir, self.ca = directory, ca or trustme.CA()
        directory.mkdir(exist_ok=True)
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def issue(self, name: str, *identities: str) -> tuple[Path, Path]:
        """A certificate (chain) and key file for `identities` (default: `name`)."""
        certificate = self.ca.issue_cert(*(identities or (name,)))
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert.write_bytes(b"".join(pem.bytes() for pem in certificate.cert_chain_pems))
        certificate.private_key_pem.write_to_path(str(key))
        return cert, key


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=HTTP_TIMEOUT, trust_env=False)


class Controller:
    """A `tollgate controller --files` serving the manifests in `dir`."""

    def __init__(self, launcher: Launcher, directory: Path, pki: Pki):
        self.launcher, self.dir, self.pki = launcher, directory, pki
        self.push_port, self.admin_port = free_port(), free_port()
        self.url = f"https://{LOOPBACK}:{self.push_port}"
        self.admin = f"http://{LOOPBACK}:{self.admin_port}"
        self.proc: Process | None = None

    def start(self) -> Controller:
        cert, key = self.pki.issue("controller", LOOPBACK, "localhost")
        argv = [str(binary("tollgate")), "controller", "--files", str(self.dir),
                "--push-listen", f"{LOOPBACK}:{self.push_port}", "--admin-addr", f"{LOOPBACK}:{self.admin_port}",
                "--tls-cert", str(cert), "--tls-key", str(key), "--client-ca", str(self.pki.ca_file)]
        self.proc = self.launcher.spawn("tollgate-controller", argv)
        self.proc.wait_serving(self.admin + "/readyz")
        return self

    def kill(self) -> None:
        self.proc.stop()

    def write(self, text: str) -> None:
        temporary = self.dir / ".gateway.yaml.tmp"  # not .yaml: tollgate does not read it
        temporary.write_text(text)
        os.replace(temporary, self.dir / "gateway.yaml")

    def status(self) -> dict:
        response = get(self.admin + "/status")
        assert response.status_code == 200, response.text
        return response.json()["gateways"].get(GATEWAY, {})

    def wait_acked(self, version: int, *proxies: str) -> dict:
        """Waits until each proxy acknowledged `version`; returns the Gateway's status."""
        def acked():
            status = self.status()
            found = status.get("proxies", {})
            done = status.get("version") == version and all(
                found.get(p, {}).get("acked_version") == version for p in proxies)
            return done and status
        return wait_for(acked, PUSH_TIMEOUT_S, f"{proxies} to acknowledge version {version}")

    def metrics(self) -> Metrics:
        return Metrics(get(self.admin + "/metrics").text)


class PushProxy:
    """A `tollgate proxy` serving the Gateway on `address`, the listener's port coming from the
    controller's manifest."""

    def __init__(self, launcher: Launcher, name: str, controller: Controller, pki: Pki, address: str,
                 extra: tuple[str, ...] = ()):
        self.name, self.address = name, address
        self.admin = f"http://{LOOPBACK}:{free_port()}"
        cert, key = pki.issue(name)
        argv = [str(binary("tollgate")), "proxy", "--controller", controller.url, "--gateway", GATEWAY,
                "--ca", str(controller.pki.ca_file), "--cert", str(cert), "--key", str(key),
                "--proxy-name", name, "--listen-address", address,
                "--admin-addr", self.admin.removeprefix("http://"), *extra]
        self.proc = launcher.spawn(f"tollgate-proxy-{name}", argv)

    def wait_ready(self) -> PushProxy:
        self.proc.wait_serving(self.admin + "/readyz")
        return self

    def ready(self) -> bool:
        return get(self.admin + "/readyz").status_code == 200

    def metric(self, name: str, **labels: str) -> float:
        return Metrics(get(self.admin + "/metrics").text).value(name, **labels)

    def chat(self, port: int, model: str = MODEL) -> httpx.Response:
        """One chat completion through this proxy's listener on `port`."""
        return httpx.post(f"http://{self.address}:{port}/v1/chat/completions",
                          json={"model": model, "messages": hello()},
                          headers={"Authorization": f"Bearer {ALICE_KEY}"}, timeout=HTTP_TIMEOUT, trust_env=False)

    def assert_serves(self, port: int, model: str = MODEL) -> None:
        response = self.chat(port, model)
        assert response.status_code == 200, f"{self.name} on port {port}: {response.status_code} {response.text}"
        assert response.json()["choices"][0]["message"]["content"] == mock_reply(5)


class Deployment:
    """A mock provider, a controller serving the quickstart Gateway on `port`, and its PKI."""

    def __init__(self, launcher: Launcher, tmp: Path, mock: Mock):
        self.launcher, self.mock, self.port = launcher, mock, free_port()
        self.pki = Pki(tmp / "pki")
        manifests = tmp / "manifests"
        manifests.mkdir()
        self.controller = Controller(launcher, manifests, self.pki)
        self.controller.write(self.manifest())

    def manifest(self, **overrides) -> str:
        return render_manifest(**{"port": self.port, "endpoint": self.mock.url, **overrides})

    def proxy(self, name: str, pki: Pki | None = None, extra: tuple[str, ...] = ()) -> PushProxy:
        return PushProxy(self.launcher, name, self.controller, pki or self.pki, ADDRESSES.get(name, LOOPBACK), extra)


@pytest.fixture
def deployment(launcher: Launcher, tmp_path: Path, mock: Mock) -> Deployment:
    return Deployment(launcher, tmp_path, mock)


@pytest.fixture
def running(deployment: Deployment) -> tuple[Deployment, PushProxy, PushProxy]:
    """The controller and proxies a and b, both serving version 1."""
    deployment.controller.start()
    a, b = deployment.proxy("proxy-a"), deployment.proxy("proxy-b")
    a.wait_ready(), b.wait_ready()
    deployment.controller.wait_acked(1, "proxy-a", "proxy-b")
    return deployment, a, b


def test_both_proxies_serve_and_a_change_reaches_both(running):
    deployment, a, b = running
    for proxy in (a, b):
        proxy.assert_serves(deployment.port)
        assert proxy.metric("tollgate_config_push_connected") == 1
        assert proxy.metric("tollgate_config_push_applied_version") == 1

    deployment.controller.write(deployment.manifest(aliases=("fast",)))
    status = deployment.controller.wait_acked(2, "proxy-a", "proxy-b")
    assert all(p["connected"] and p["rejected"] is None for p in status["proxies"].values()), status
    for proxy in (a, b):
        proxy.assert_serves(deployment.port, model="fast")
        assert proxy.metric("tollgate_config_push_snapshots_total", result="applied") == 2
    metrics = deployment.controller.metrics()
    assert metrics.value("tollgate_config_push_published_version", gateway=GATEWAY) == 2
    assert metrics.value("tollgate_config_push_connected_proxies", gateway=GATEWAY) == 2
    assert metrics.value("tollgate_config_push_current_proxies", gateway=GATEWAY) == 2
    assert metrics.value("tollgate_config_push_acks_total", gateway=GATEWAY, result="accepted") == 4

    # SIGTERM: the controller closes the subscriptions, the proxy drains; both exit 0.
    for process in (deployment.controller.proc, a.proc):
        process.popen.send_signal(signal.SIGTERM)
        assert process.popen.wait(timeout=10) == 0, process.stderr()


def test_a_snapshot_one_proxy_cannot_apply_is_rejected_and_the_old_one_kept(running):
    deployment, a, b = running
    new_port = free_port()
    with socket.socket() as held:  # proxy-b's address and the new port: b cannot listen there
        held.bind((ADDRESSES["proxy-b"], new_port))
        held.listen()
        deployment.controller.write(deployment.manifest(port=new_port))

        def rejected():
            status = deployment.controller.status()
            return status["proxies"]["proxy-b"]["rejected"] and status
        status = wait_for(rejected, PUSH_TIMEOUT_S, "proxy-b to reject version 2")
        assert status["version"] == 2
        assert status["proxies"]["proxy-b"]["acked_version"] == 1
        assert status["proxies"]["proxy-b"]["rejected"]["version"] == 2
        assert "cannot listen" in status["proxies"]["proxy-b"]["rejected"]["error"], status
        deployment.controller.wait_acked(2, "proxy-a")

        a.assert_serves(new_port)
        b.assert_serves(deployment.port)  # the last good configuration
        assert b.ready()
        assert b.metric("tollgate_config_push_snapshots_total", result="rejected") == 1
        assert b.metric("tollgate_config_push_applied_version") == 1
        metrics = deployment.controller.metrics()
        assert metrics.value("tollgate_config_push_acks_total", gateway=GATEWAY, result="rejected") == 1
        assert metrics.value("tollgate_config_push_current_proxies", gateway=GATEWAY) == 1


def test_proxies_keep_serving_without_the_controller_and_reconnect(running):
    deployment, a, b = running
    deployment.controller.kill()
    for proxy in (a, b):
        wait_for(lambda: proxy.metric("tollgate_config_push_connected") == 0, PUSH_TIMEOUT_S,
                 f"{proxy.name} to notice the controller is gone")
        assert proxy.ready()
        proxy.assert_serves(deployment.port)

    deployment.controller.start()
    deployment.controller.wait_acked(1, "proxy-a", "proxy-b")
    deployment.controller.write(deployment.manifest(aliases=("after-restart",)))
    deployment.controller.wait_acked(2, "proxy-a", "proxy-b")
    for proxy in (a, b):
        proxy.assert_serves(deployment.port, model="after-restart")


def test_a_proxy_waits_for_the_controller_and_a_foreign_certificate_gets_nothing(deployment, tmp_path):
    early = deployment.proxy("proxy-a")
    wait_for(lambda: "config push: not connected" in early.proc.stderr(), PUSH_TIMEOUT_S,
             "the proxy to try the controller")
    assert not early.ready()  # no configuration yet

    deployment.controller.start()
    early.wait_ready()
    foreign = deployment.proxy("proxy-foreign", pki=Pki(tmp_path / "foreign"))
    wait_for(lambda: foreign.proc.stderr().count("config push: not connected") >= 2, PUSH_TIMEOUT_S,
             "the foreign proxy to be refused twice")
    assert not foreign.ready()
    assert foreign.metric("tollgate_config_push_applied_version") == 0
    assert "proxy-foreign" not in deployment.controller.status()["proxies"]
    assert "handshake" in deployment.controller.proc.stderr()


def test_without_files_or_a_cluster_the_controller_says_what_it_needs(tmp_path: Path) -> None:
    """No --files means the Kubernetes API server; with none reachable, a clear error, at once."""
    pki = Pki(tmp_path / "pki")
    cert, key = pki.issue("controller", LOOPBACK)
    environment = {key_: value for key_, value in os.environ.items()
                   if key_ not in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
    environment["KUBECONFIG"] = str(tmp_path / "no-such-kubeconfig")
    finished = subprocess.run(
        [str(binary("tollgate")), "controller", "--tls-cert", str(cert), "--tls-key", str(key),
         "--client-ca", str(pki.ca_file), "--push-listen", f"{LOOPBACK}:{free_port()}",
         "--admin-addr", f"{LOOPBACK}:{free_port()}"],
        env=environment, capture_output=True, text=True, timeout=30)
    assert finished.returncode != 0
    assert "Kubernetes API server" in finished.stderr and "--files" in finished.stderr, finished.stderr


def test_budget_use_the_proxies_report_reaches_the_controller(deployment):
    """Each proxy reports its budget counts; the controller keeps the highest per limit (its
    /status here; BudgetPolicy.status in a cluster)."""
    policy = {"apiVersion": "tollgate.dev/v1alpha1", "kind": "BudgetPolicy",
              "metadata": {"name": "research", "namespace": "default"},
              "spec": {"subject": {"kind": "Team", "name": "research"},
                       "limits": [{"window": "Day", "requests": 1000}]}}
    deployment.controller.write(deployment.manifest() + "---\n" + json.dumps(policy) + "\n")
    deployment.controller.start()
    fast = ("--budget-gauge-interval", "200ms")
    a = deployment.proxy("proxy-a", extra=fast).wait_ready()
    b = deployment.proxy("proxy-b", extra=fast).wait_ready()
    deployment.controller.wait_acked(1, "proxy-a", "proxy-b")
    for _ in range(3):
        a.assert_serves(deployment.port)
    b.assert_serves(deployment.port)

    def reported():
        usage = get(deployment.controller.admin + "/status").json()["budgets"].get("default/research")
        return usage if usage and usage[0]["used"] == "3" else None

    (usage,) = wait_for(reported, PUSH_TIMEOUT_S, "the proxies' budget reports")
    assert (usage["window"], usage["unit"], usage["limit"], usage["remaining"]) == ("day", "requests", "1000", "997")
    assert usage["resetsAt"] and usage["reportedAt"]
