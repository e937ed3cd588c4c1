"""The Helm chart on a real cluster: install it, apply the quickstart, send a chat completion
through the proxies with the openai SDK. Runs only when TOLLGATE_E2E_KUBECONFIG names a
kubeconfig (it is skipped otherwise); meant for a throwaway kind cluster:

    docker build -t tollgate:e2e . && docker build --target mock -t tollgate-mock:e2e .
    kind create cluster --name tollgate
    kind load docker-image --name tollgate tollgate:e2e tollgate-mock:e2e
    kubectl apply -f <Gateway API's standard-install.yaml, v1.2 or later>
    kind get kubeconfig --name tollgate > /tmp/kind.kubeconfig
    TOLLGATE_E2E_KUBECONFIG=/tmp/kind.kubeconfig make test-e2e

TOLLGATE_E2E_IMAGE (default tollgate:e2e) and TOLLGATE_E2E_MOCK_IMAGE (default
tollgate-mock:e2e) name the images, which must already be on the nodes (pull policy Never).
TOLLGATE_E2E_NAMESPACE (default tollgate-e2e) is created and deleted by the test. helm and
kubectl come from .tools/bin (`make tools`) or PATH.

The quickstart is applied as written except for its namespace (default -> the test's) and its
provider endpoint (the loopback mock -> the in-cluster mock Service)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import openai
import pytest

from conftest import ALICE_KEY, LOOPBACK, MODEL, REPO_ROOT, free_port, hello, mock_reply, wait_for

KUBECONFIG = os.environ.get("TOLLGATE_E2E_KUBECONFIG")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG,
    reason="TOLLGATE_E2E_KUBECONFIG is not set: the kind test needs a cluster (see this file's docstring)",
)

IMAGE = os.environ.get("TOLLGATE_E2E_IMAGE", "tollgate:e2e")
MOCK_IMAGE = os.environ.get("TOLLGATE_E2E_MOCK_IMAGE", "tollgate-mock:e2e")
NAMESPACE = os.environ.get("TOLLGATE_E2E_NAMESPACE", "tollgate-e2e")
RELEASE = "tollgate-e2e"
GATEWAY = "ai-gateway"  # the quickstart's Gateway
PROXY = f"{GATEWAY}-tollgate"  # the chart names a Gateway's proxies <gateway>-<gatewayClass>
CONTROLLER = f"{RELEASE}-controller"
MOCK_PORT = 9100
ROLLOUT_TIMEOUT_S = 240
COMMAND_TIMEOUT_S = 300


def tool(name: str) -> str:
    """helm or kubectl: from .tools/bin (`make tools`), else from PATH."""
    local = REPO_ROOT / ".tools" / "bin" / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `make tools` or put it on PATH", pytrace=False)
    return found


def run(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a command against the test cluster; fails the test with its output when it fails."""
    env = {**os.environ, "KUBECONFIG": KUBECONFIG}
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                          timeout=COMMAND_TIMEOUT_S)
    if check and done.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return run(tool("kubectl"), "--namespace", NAMESPACE, *args, stdin=stdin, check=check)


def diagnostics() -> str:
    """What the cluster says about the release: pods, events, and the logs of each component."""
    parts = [kubectl("get", "pods,deploy,svc,gateway,airoutes,modelproviders", "-o", "wide", check=False).stdout,
             kubectl("get", "events", "--sort-by=.lastTimestamp", check=False).stdout[-6000:]]
    for component in ("controller", "proxy"):
        logs = kubectl("logs", "-l", f"app.kubernetes.io/component={component}", "--all-containers",
                       "--prefix", "--tail=60", check=False)
        parts.append(f"--- {component} logs\n{logs.stdout}{logs.stderr}")
    return "\n".join(parts)


def wait_cluster(check, what: str, timeout: float = ROLLOUT_TIMEOUT_S):
    """wait_for(check) with the cluster's state in the failure message."""
    try:
        return wait_for(check, timeout, what, interval=2)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnostics()}") from None


def quickstart() -> str:
    """examples/quickstart, moved into the test's namespace and pointed at the in-cluster mock."""
    files = sorted((REPO_ROOT / "examples" / "quickstart").glob("*.yaml"))
    text = "\n---\n".join(path.read_text() for path in files)
    loopback = f"http://127.0.0.1:{MOCK_PORT}"
    assert "namespace: default" in text and loopback in text, "the quickstart changed: update test_kind.py"
    return (text.replace("namespace: default", f"namespace: {NAMESPACE}")
                .replace(loopback, f"http://tollgate-mock.{NAMESPACE}.svc:{MOCK_PORT}"))


def mock_manifests() -> str:
    """The mock provider as a Deployment and a Service (JSON, which kubectl reads as YAML)."""
    labels = {"app.kubernetes.io/name": "tollgate-mock"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tollgate-mock"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": "mock", "image": MOCK_IMAGE, "imagePullPolicy": "Never",
                "args": [f"--listen=0.0.0.0:{MOCK_PORT}"],
                "ports": [{"name": "http", "containerPort": MOCK_PORT}],
                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
            }]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tollgate-mock"},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": MOCK_PORT, "targetPort": "http"}]}}
    return "\n---\n".join(json.dumps(doc) for doc in (deployment, service))


def chart_values(path: Path) -> Path:
    """Values for the test: the images on the nodes, and the quickstart's own Gateway."""
    repository, _, tag = IMAGE.rpartition(":")
    assert repository and "/" not in tag, f"TOLLGATE_E2E_IMAGE={IMAGE} needs a tag (name:tag)"
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "logFormat": "text",
        "logLevel": "info,tollgate=debug",
        "gateways": [{"name": GATEWAY, "create": False,
                      "listeners": [{"name": "http", "protocol": "HTTP", "port": 8080}]}],
    }
    path.write_text(json.dumps(values))
    return path


def condition(kind: str, name: str, type_: str, conditions_path: str = "{.status.conditions}") -> str:
    """The status ("True", "False", "Unknown") of one condition, or "" when it has none yet."""
    done = kubectl("get", kind, name, "-o", f"jsonpath={conditions_path}", check=False)
    raw = done.stdout.strip()
    if done.returncode != 0 or not raw.startswith("["):
        return ""
    for entry in json.loads(raw):
        if entry.get("type") == type_:
            return entry.get("status", "")
    return ""


@contextlib.contextmanager
def port_forward(service: str, port: int):
    """`kubectl port-forward` to a Service's port; yields the local port."""
    local = free_port()
    env = {**os.environ, "KUBECONFIG": KUBECONFIG}
    process = subprocess.Popen(
        [tool("kubectl"), "--namespace", NAMESPACE, "port-forward", f"svc/{service}",
         f"{local}:{port}", "--address", LOOPBACK],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def listening() -> bool:
        assert process.poll() is None, f"port-forward exited: {process.stderr.read().decode()}"
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, local), timeout=1):
            return True
        return False

    try:
        wait_for(listening, 30, f"port-forward to {service}:{port}", interval=0.2)
        yield local
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The chart installed, the mock and the quickstart applied, everything Ready; removed after."""
    helm = tool("helm")
    crd = run(tool("kubectl"), "get", "crd", "gateways.gateway.networking.k8s.io", check=False)
    if crd.returncode != 0:
        pytest.fail("the Gateway API CRDs are not installed: apply Gateway API's standard-install.yaml",
                    pytrace=False)
    values = chart_values(tmp_path_factory.mktemp("kind") / "values.json")
    run(tool("kubectl"), "create", "namespace", NAMESPACE)
    try:
        # No --wait: only the controller's leader is ever Ready, and the proxies become Ready
        # once the quickstart's Gateway exists.
        run(helm, "install", RELEASE, str(REPO_ROOT / "charts" / "tollgate"), "--namespace", NAMESPACE,
            "--values", str(values))
        crds = [f"crd/{plural}.tollgate.dev" for plural in ("airoutes", "modelproviders")]
        run(tool("kubectl"), "wait", "--for=condition=Established", "--timeout=60s", *crds)
        kubectl("apply", "-f", "-", stdin=mock_manifests())
        kubectl("apply", "-f", "-", stdin=quickstart())

        def leader_ready() -> bool:
            ready = kubectl("get", "deploy", CONTROLLER, "-o", "jsonpath={.status.readyReplicas}").stdout
            return int(ready or 0) >= 1

        wait_cluster(leader_ready, "the controller's leader to be Ready")
        for deployment in ("tollgate-mock", PROXY):
            rollout = kubectl("rollout", "status", f"deploy/{deployment}", f"--timeout={ROLLOUT_TIMEOUT_S}s",
                              check=False)
            assert rollout.returncode == 0, f"{deployment}: {rollout.stderr}\n{diagnostics()}"
        wait_cluster(lambda: condition("gateway", GATEWAY, "Programmed") == "True",
                     "the Gateway to be Programmed")
        yield
    finally:
        run(helm, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", check=False)
        run(tool("kubectl"), "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_gateway_and_route_report_their_state(cluster):
    assert condition("gatewayclass", "tollgate", "Accepted") == "True"
    assert condition("gateway", GATEWAY, "Accepted") == "True"
    addresses = kubectl("get", "gateway", GATEWAY, "-o", "jsonpath={.status.addresses[*].value}").stdout.split()
    cluster_ip = kubectl("get", "svc", PROXY, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert cluster_ip in addresses
    assert condition("airoute", "chat", "Accepted", "{.status.parents[0].conditions}") == "True"
    assert condition("airoute", "chat", "ResolvedRefs", "{.status.parents[0].conditions}") == "True"


def test_chat_completion_through_the_proxy_service(cluster):
    with port_forward(PROXY, 8080) as port:
        client = openai.OpenAI(base_url=f"http://{LOOPBACK}:{port}/v1", api_key=ALICE_KEY, timeout=20.0,
                               max_retries=0)
        completion = client.chat.completions.create(model=MODEL, messages=hello())
        assert completion.choices[0].message.content == mock_reply(5)
        assert completion.usage.completion_tokens == 5

        stream = client.chat.completions.create(model=MODEL, messages=hello(), stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == mock_reply(5)

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://{LOOPBACK}:{port}/v1", api_key="tg-wrong", max_retries=0,
                          timeout=20.0).chat.completions.create(model=MODEL, messages=hello())

