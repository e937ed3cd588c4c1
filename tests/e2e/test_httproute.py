"""Gateway API HTTPRoutes with `tollgate run`: a route to a ModelProvider gets AI handling (the
openai SDK through it), a route to an MCPServer serves an MCP endpoint (the MCP SDK client
through it), a route to a Service (ExternalName 127.0.0.1, the backend a tiny echo server in
this process) is proxied as plain HTTP, authenticated like everything else. Host names and path
precedence pick the rule; the AI endpoints stay with the AI rules; a backend in another
namespace needs a ReferenceGrant, and without one the change is refused."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import (ALICE_KEY, LOOPBACK, MODEL, Gateway, Launcher, Mock, assert_error, binary, free_port,
                      hello, new_marker, MARKER)
from test_mcp import connect, ready, run, spawn_local, text_of

SESSION_KEY = "0123456789abcdef0123456789abcdef-http"
ROUTES_FILE = "routes.yaml"


class Echo:
    """An HTTP server on loopback that answers every request with what it received, as JSON
    (`server`, `method`, `path`, `query`, `headers` with lower-case names, `body`), after
    `delay_s`."""

    def __init__(self, name: str, delay_s: float = 0.0):
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path, _, query = self.path.partition("?")
                time.sleep(echo.delay_s)
                answer = json.dumps({
                    "server": echo.name, "method": self.command, "path": path, "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                }).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

            def log_message(self, *args: Any) -> None:
                pass

        self.name, self.delay_s = name, delay_s
        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[Callable[..., Echo]]:
    """A factory of echo servers, all closed after the test."""
    servers: list[Echo] = []

    def start(name: str, delay_s: float = 0.0) -> Echo:
        servers.append(Echo(name, delay_s))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def resource(api: str, kind: str, name: str, namespace: str = "default", **fields: Any) -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace}, **fields}


def service(name: str, namespace: str = "default") -> dict:
    """A Service reached at 127.0.0.1 (the port comes from the backendRef)."""
    return resource("v1", "Service", name, namespace, spec={"type": "ExternalName", "externalName": LOOPBACK})


def http_route(name: str, rules: list[dict], namespace: str = "default", **spec: Any) -> dict:
    """An HTTPRoute attached to ai-gateway (in default)."""
    parent = {"name": "ai-gateway", **({"namespace": "default"} if namespace != "default" else {})}
    return resource("gateway.networking.k8s.io/v1", "HTTPRoute", name, namespace,
                    spec={"parentRefs": [parent], "rules": rules, **spec})


def to(target: Echo | int, name: str = "web", **extra: Any) -> dict:
    """A backendRef to the Service `name` at the echo server's port (or a bare port)."""
    port = target if isinstance(target, int) else target.port
    return {"name": name, "port": port, **extra}


def prefix(path: str) -> dict:
    return {"path": {"type": "PathPrefix", "value": path}}


def exact(path: str) -> dict:
    return {"path": {"type": "Exact", "value": path}}


def grant(namespace: str, group: str, kind: str) -> dict:
    return resource("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "from-default", namespace, spec={
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "default"}],
        "to": [{"group": group, "kind": kind}],
    })


def yaml_of(documents: list[dict]) -> str:
    return "\n---\n".join(json.dumps(d) for d in documents) + "\n"


def with_routes(gateway: Gateway, documents: list[dict]) -> None:
    """Serves `documents` beside the gateway's manifest, from their own file."""
    gateway.reload(yaml_of(documents), filename=ROUTES_FILE)


def get(gateway: Gateway, path: str, *, host: str | None = None, key: str | None = ALICE_KEY,
        method: str = "GET", **options: Any):
    headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **({"Host": host} if host else {}),
               **options.pop("headers", {})}
    with gateway.http() as http:
        return http.request(method, path, headers=headers, **options)


def echoed(response) -> dict:
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    return response.json()


def test_a_service_route_is_proxied_as_plain_http_and_authenticated(launcher: Launcher, mock: Mock, echo):
    gateway = launcher.gateway(mock)
    web = echo("web")
    with_routes(gateway, [service("web"), http_route("site", [{
        "matches": [prefix("/app")],
        "backendRefs": [to(web)],
        "filters": [
            {"type": "RequestHeaderModifier",
             "requestHeaderModifier": {"set": [{"name": "X-Env", "value": "prod"}], "remove": ["X-Debug"]}},
            {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}},
        ],
    }])])

    response = get(gateway, "/app/items?id=7&tag=a%20b", method="POST", content=b"hello there",
                   headers={"X-Custom": "1", "X-Debug": "on", "Connection": "keep-alive, x-hop", "X-Hop": "1"})
    seen = echoed(response)
    assert (seen["server"], seen["method"], seen["path"], seen["query"], seen["body"]) == \
        ("web", "POST", "/items", "id=7&tag=a%20b", "hello there")
    headers = seen["headers"]
    assert headers["x-env"] == "prod" and headers["x-custom"] == "1"
    for dropped in ("authorization", "x-debug", "x-hop"):
        assert dropped not in headers, f"{dropped} reached the backend"
    assert headers["host"] == f"{LOOPBACK}:{gateway.port}", "the Host is forwarded unchanged"
    assert response.headers.get("x-request-id"), "every response carries x-request-id"

    assert_error(get(gateway, "/app/items", key=None), 401, "missing_api_key")
    assert_error(get(gateway, "/elsewhere"), 404, "unknown_endpoint")
    assert gateway.metric("tollgate_requests_total", route="default/site", provider="default/web",
                          status="200") == 1


def test_host_names_then_paths_pick_the_rule(launcher: Launcher, mock: Mock, echo):
    gateway = launcher.gateway(mock)
    a, b = echo("a"), echo("b")
    with_routes(gateway, [
        service("web"),
        http_route("exact-host", [{"backendRefs": [to(a)]}], hostnames=["a.example.com"]),
        http_route("wildcard-host", [{"backendRefs": [to(b)]}], hostnames=["*.example.com"]),
        http_route("paths", [
            {"matches": [prefix("/docs")], "backendRefs": [to(a)]},
            {"matches": [exact("/docs/special")], "backendRefs": [to(b)]},
            {"matches": [{**prefix("/docs"), "headers": [{"name": "x-canary", "value": "1"}]}],
             "backendRefs": [to(b)]},
        ]),
    ])

    def server(path: str, host: str, **options: Any) -> str:
        return echoed(get(gateway, path, host=host, **options))["server"]

    assert server("/anything", "A.Example.com:8443") == "a", "the exact name wins, case and port aside"
    assert server("/docs/special", "a.example.com") == "a", "the host name counts before the path"
    assert server("/anything", "c.example.com") == "b"
    assert server("/docs/special", "other.test") == "b", "an exact path beats a prefix"
    assert server("/docs/page", "other.test") == "a"
    assert server("/docs/page", "other.test", headers={"x-canary": "1"}) == "b", "more headers rank higher"
    assert_error(get(gateway, "/nothing", host="other.test"), 404, "unknown_endpoint")


def test_ai_endpoints_stay_with_ai_rules_and_a_route_to_a_provider_gets_ai_handling(
        launcher: Launcher, mock: Mock, echo):
    gateway = launcher.gateway(mock)
    web = echo("web")
    tollgate = "tollgate.dev"
    with_routes(gateway, [
        service("web"),
        http_route("catch-all", [{"backendRefs": [to(web)]}]),
        http_route("models", [{
            "matches": [exact("/v1/chat/completions")],
            "backendRefs": [{"group": tollgate, "kind": "ModelProvider", "name": "openai"}],
        }]),
    ])
    client = gateway.client()
    marker = new_marker()
    answer = client.chat.completions.create(model=MODEL, messages=hello(), extra_headers={MARKER: marker})
    assert answer.choices[0].message.content, "the AIRoute serves its model"
    other = client.chat.completions.create(model="any-other-model", messages=hello())
    assert other.choices[0].message.content, "the HTTPRoute's model rule serves every other model"
    assert mock.requests(marker), "the AI request reached the provider, not the Service"
    assert gateway.metric("tollgate_requests_total", route="default/models", provider="default/openai") == 1
    assert echoed(get(gateway, "/some/page"))["server"] == "web", "other paths go to the Service"


def test_an_http_route_to_an_mcp_server_serves_an_mcp_endpoint(launcher: Launcher, mock: Mock):
    local = ready(spawn_local(launcher))
    gateway = launcher.gateway(mock)
    with_routes(gateway, [
        resource("tollgate.dev/v1alpha1", "MCPServer", "local", spec={"url": local.url, "toolPrefix": "local"}),
        resource("v1", "Secret", "session-key", stringData={"key": SESSION_KEY}),
        {**http_route("tools", [{
            "matches": [prefix("/tools/mcp")],
            "backendRefs": [{"group": "tollgate.dev", "kind": "MCPServer", "name": "local"}],
        }]), "metadata": {"name": "tools", "namespace": "default",
                          "annotations": {"tollgate.dev/mcp-session-key": "session-key/key"}}},
    ])

    async def main() -> None:
        async with connect(gateway.url + "/tools/mcp") as (session, _):
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "local__weather" in names, names
            result = await session.call_tool("local__weather", {"city": "Oslo"})
            assert text_of(result) == "Sunny in Oslo"

    run(main)
    assert get(gateway, "/tools/mcp", key=None, method="POST", json={}).status_code == 401


def test_service_failures_answer_502_and_504(launcher: Launcher, mock: Mock, echo):
    gateway = launcher.gateway(mock)
    slow = echo("slow", delay_s=2.0)
    with_routes(gateway, [service("web"), http_route("site", [
        {"matches": [prefix("/closed")], "backendRefs": [to(free_port())]},
        {"matches": [prefix("/slow")], "backendRefs": [to(slow)], "timeouts": {"request": "500ms"}},
    ])])
    assert_error(get(gateway, "/closed"), 502, "backend_unreachable")
    started = time.monotonic()
    assert_error(get(gateway, "/slow"), 504, "backend_timeout")
    assert time.monotonic() - started < 1.5, "the route's timeout, not the backend's pace"


def validate(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary("tollgate")), "validate", "-f", str(directory)],
                          capture_output=True, text=True, timeout=30)


def test_a_backend_in_another_namespace_needs_a_reference_grant(launcher: Launcher, mock: Mock, echo,
                                                               tmp_path: Path):
    gateway = launcher.gateway(mock)
    api = echo("api")
    routes = [service("api", namespace="backends"),
              http_route("site", [{"backendRefs": [to(api, name="api", namespace="backends")]}])]

    checked = tmp_path / "checked"
    checked.mkdir()
    (checked / "gateway.yaml").write_text(gateway.manifest())
    (checked / ROUTES_FILE).write_text(yaml_of(routes))
    refused = validate(checked)
    assert refused.returncode == 1, refused.stdout
    assert "HTTPRoute default/site: spec.rules[0].backendRefs[0].namespace: RefNotPermitted" in refused.stdout, \
        refused.stdout

    gateway.reload_rejected(yaml_of(routes), filename=ROUTES_FILE)
    assert_error(get(gateway, "/page"), 404, "unknown_endpoint")

    granted = routes + [grant("backends", "", "Service")]
    (checked / ROUTES_FILE).write_text(yaml_of(granted))
    assert validate(checked).returncode == 0
    gateway.reload(yaml_of(granted), filename=ROUTES_FILE)
    assert echoed(get(gateway, "/page"))["server"] == "api"
