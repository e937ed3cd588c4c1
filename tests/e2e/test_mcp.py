"""The MCP gateway: one AIRoute rule serves /mcp as a single virtual MCP server (Streamable HTTP)
in front of two real ones, the reference server-everything (Node, from node_modules, prefix
`everything`) and tests/e2e/mcp_upstream.py (the MCP Python SDK's FastMCP, prefix `local`),
driven with the official MCP Python SDK client: merged and prefixed listings, calls routed to
their owner, tool policy and argument rules, per-identity grants, pagination across upstreams,
progress, sealed sessions any gateway with the same key accepts, and the HTTP and JSON-RPC
errors. test_upstreams_* talk to the upstreams directly: they prove the fixtures."""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
from mcp import types
from mcp.types import InitializeResult, Tool

from conftest import (ALICE_KEY, HTTP_TIMEOUT, LOOPBACK, MODEL, READY_TIMEOUT_S, REPO_ROOT, Gateway, Launcher,
                      Mock, Process, binary, free_port, jsonl_records, wait_for)

EVERYTHING_JS = REPO_ROOT / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
LOCAL_PY = Path(__file__).with_name("mcp_upstream.py")
BOB_KEY = "tg-bob-secret"
SESSION_KEY = "0123456789abcdef0123456789abcdef-test-key"
# server-everything's "print the environment" tool (called printEnv before its 2026 releases).
DENIED = "get-env"
LOCAL_TOOLS = {"local__weather", "local__slow"}
LOCAL_INSTRUCTIONS = "Weather reports for any city."  # mcp_upstream.INSTRUCTIONS
NOT_PERMITTED = -32050
TOOL_CALL_LIMITED = -32053
PARSE_ERROR = -32700
METHOD_NOT_FOUND = -32601
UPSTREAM_ERRORS = "tollgate/upstreamErrors"
ACCEPT = "application/json, text/event-stream"
SDK_TIMEOUT = timedelta(seconds=10)
INITIALIZE = {"protocolVersion": "2025-06-18", "capabilities": {},
              "clientInfo": {"name": "tollgate-e2e-raw", "version": "0"}}


@dataclass
class Upstream:
    """A running MCP server; `url` is its Streamable HTTP endpoint."""
    process: Process
    url: str


def wait_listening(process: Process, url: str) -> None:
    """Waits until `url` answers anything over HTTP (a Streamable HTTP endpoint answers a bare
    GET with 400 or 406, an HTTP+SSE one with its stream), failing at once if the process exits."""
    def answering() -> bool:
        exited = process.popen.poll()
        assert exited is None, f"{process.name} exited ({exited}):\n{process.stderr()}"
        with contextlib.suppress(httpx.TransportError):
            # Streamed, and closed unread: an HTTP+SSE server's GET is an endless event stream.
            with httpx.stream("GET", url, timeout=HTTP_TIMEOUT, trust_env=False) as response:
                return bool(response.status_code)
        return False

    wait_for(answering, READY_TIMEOUT_S, f"{process.name} to serve {url}")


def spawn_everything(launcher: Launcher, port: int | None = None) -> Upstream:
    """Starts server-everything in Streamable HTTP mode on `port` or a free one (it reads PORT
    and serves /mcp); see ready()."""
    node = shutil.which("node")
    if node is None or not EVERYTHING_JS.is_file():
        pytest.fail(f"node or {EVERYTHING_JS} is missing: install Node.js and run `npm ci` "
                    "(or `make venv`) at the repository root", pytrace=False)
    port = port or free_port()
    process = launcher.spawn("server-everything", ["env", f"PORT={port}", node, str(EVERYTHING_JS), "streamableHttp"])
    return Upstream(process, f"http://{LOOPBACK}:{port}/mcp")


def spawn_local(launcher: Launcher, *args: str) -> Upstream:
    """Starts tests/e2e/mcp_upstream.py with this interpreter (the venv's) on a free port, with
    extra arguments (--page-size N, --transport sse); see ready()."""
    port = free_port()
    process = launcher.spawn("mcp-upstream", [sys.executable, str(LOCAL_PY), "--port", str(port), *args])
    path = "/sse" if "sse" in args else "/mcp"
    return Upstream(process, f"http://{LOOPBACK}:{port}{path}")


def ready(*upstreams: Upstream) -> Upstream:
    """Waits until every upstream serves (they start side by side); returns the first."""
    for upstream in upstreams:
        wait_listening(upstream.process, upstream.url)
    return upstreams[0]


def resource(api: str, kind: str, name: str, **fields: Any) -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "default"}, **fields}


def mcp_manifest(gateway: Gateway, everything: Upstream, local: Upstream, local_transport: str | None = None) -> str:
    """The gateway's manifest plus the MCPServers `everything` (server-wide deny of DENIED, bob
    granted only echo, an argument rule on echo) and `local` (over `local_transport` when
    given), the session key, bob's API key and the AIRoute `tools` serving them at /mcp."""
    api = "tollgate.dev/v1alpha1"
    documents = [json.loads(text) for text in gateway.manifest().split("\n---\n")]
    bob = resource("v1", "Secret", "bob-key", stringData={"key": BOB_KEY})
    bob["metadata"]["labels"] = {"tollgate.dev/api-key": "true", "tollgate.dev/team": "research",
                                 "tollgate.dev/user": "bob"}
    documents += [
        resource(api, "MCPServer", "everything", spec={
            "url": everything.url,
            "toolPrefix": "everything",
            "tools": {"allow": ["*"], "deny": [DENIED]},
            "access": [{"users": ["bob"], "allow": ["echo"]}],
            "argumentRules": [{"tool": "echo", "argument": "message", "deny": "rm -rf"}],
        }),
        resource(api, "MCPServer", "local", spec={"url": local.url, "toolPrefix": "local",
                                                  **({"transport": local_transport} if local_transport else {})}),
        resource("v1", "Secret", "mcp-session-key", stringData={"key": SESSION_KEY}),
        bob,
        resource(api, "AIRoute", "tools", spec={
            "parentRefs": [{"name": "ai-gateway"}],
            "rules": [{"name": "mcp", "matches": [{"path": "/mcp"}],
                       "mcp": {"servers": ["everything", "local"],
                               "sessionKeyRef": {"name": "mcp-session-key", "key": "key"}}}],
        }),
    ]
    return "\n---\n".join(json.dumps(document) for document in documents) + "\n"


def mcp_gateway_of(launcher: Launcher, mock: Mock, everything: Upstream, local: Upstream) -> Gateway:
    gateway = launcher.gateway(mock)
    gateway.reload(mcp_manifest(gateway, everything, local))
    return gateway


def endpoint(gateway: Gateway) -> str:
    return gateway.url + "/mcp"


# --- the official SDK client ---------------------------------------------------------------

@contextlib.asynccontextmanager
async def connect(url: str, key: str | None = ALICE_KEY,
                  **callbacks: Any) -> AsyncIterator[tuple[ClientSession, InitializeResult]]:
    """An initialized SDK session with the MCP server at `url` (with `Authorization: Bearer
    key` unless `key` is None; `callbacks` such as sampling_callback go to ClientSession),
    and the initialize result."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(headers=headers, trust_env=False, timeout=HTTP_TIMEOUT) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write, read_timeout_seconds=SDK_TIMEOUT, **callbacks) as session:
                initialized = await session.initialize()
                yield session, initialized


def run(main: Any) -> Any:
    """Runs an async test body to its end."""
    return anyio.run(main)


async def all_tools(session: ClientSession) -> tuple[list[Tool], int]:
    """Every tool, following nextCursor to the end, and how many pages that took."""
    tools, cursor, pages = [], None, 0
    while True:
        page = await session.list_tools(cursor)
        tools += page.tools
        pages += 1
        if not page.nextCursor:
            return tools, pages
        assert pages < 20, "nextCursor never ends"
        cursor = page.nextCursor


def text_of(result: Any) -> str:
    """The text of a tools/call or resources/read result's only text block."""
    blocks = getattr(result, "content", None) or getattr(result, "contents", None)
    texts = [block.text for block in blocks if getattr(block, "text", None) is not None]
    assert len(texts) == 1, result
    return texts[0]


async def refused(call: Any) -> int:
    """The JSON-RPC error code the awaited `call` failed with."""
    with pytest.raises(McpError) as error:
        await call
    return error.value.error.code


# --- raw HTTP, for headers, status codes and sessions across processes ---------------------

def post_mcp(gateway: Gateway, body: dict | bytes, *, key: str | None = ALICE_KEY,
             headers: dict[str, str] | None = None) -> httpx.Response:
    """One POST to the gateway's /mcp with the headers of a Streamable HTTP client."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gateway.post("/mcp", key=key, content=content,
                        headers={"Accept": ACCEPT, "Content-Type": "application/json", **(headers or {})})


def jsonrpc_answer(response: httpx.Response, request_id: Any) -> dict:
    """The JSON-RPC response to `request_id` in a POST's answer, a JSON body or an SSE stream."""
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        messages = [response.json()]
    else:
        assert kind.startswith("text/event-stream"), kind
        messages = []
        for event in response.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
            if data:
                messages.append(json.loads(data))
    answers = [m for m in messages if m.get("id") == request_id and ("result" in m or "error" in m)]
    assert len(answers) == 1, messages
    return answers[0]


class RawSession:
    """An MCP session opened with raw POSTs; its requests may go to any gateway."""

    def __init__(self, gateway: Gateway, key: str = ALICE_KEY):
        self.key, self.ids = key, itertools.count(1)
        response = post_mcp(gateway, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE},
                            key=key)
        answer = jsonrpc_answer(response, 0)
        self.session_id = response.headers.get("mcp-session-id")
        assert self.session_id, f"initialize gave no Mcp-Session-Id: {response.headers}"
        self.protocol_version = answer["result"]["protocolVersion"]
        notified = self.post(gateway, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert notified.status_code == 202, f"{notified.status_code}: {notified.text}"

    def post(self, gateway: Gateway, body: dict | bytes, session_id: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        return post_mcp(gateway, body, key=self.key,
                        headers={"Mcp-Session-Id": session_id or self.session_id,
                                 "MCP-Protocol-Version": self.protocol_version, **(headers or {})})

    def request(self, gateway: Gateway, method: str, params: dict | None = None,
                headers: dict[str, str] | None = None) -> dict:
        """The JSON-RPC response (result or error) to one request."""
        request_id = next(self.ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}
        return jsonrpc_answer(self.post(gateway, body, headers=headers), request_id)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def upstreams(module_launcher: Launcher) -> tuple[Upstream, Upstream]:
    """server-everything and mcp_upstream.py, shared by the module."""
    both = spawn_everything(module_launcher), spawn_local(module_launcher)
    ready(*both)
    return both


@pytest.fixture(scope="module")
def everything(upstreams: tuple[Upstream, Upstream]) -> Upstream:
    return upstreams[0]


@pytest.fixture(scope="module")
def local(upstreams: tuple[Upstream, Upstream]) -> Upstream:
    return upstreams[1]


@pytest.fixture(scope="module")
def mock(module_launcher: Launcher) -> Mock:
    """The chat provider the gateway's manifest needs (no test here talks to it)."""
    return module_launcher.mock()


@pytest.fixture(scope="module")
def mcp_gateway(module_launcher: Launcher, mock: Mock, everything: Upstream, local: Upstream) -> Gateway:
    return mcp_gateway_of(module_launcher, mock, everything, local)


@pytest.fixture(scope="module")
def everything_tools(everything: Upstream) -> set[str]:
    """The tools server-everything lists to an SDK client like ours, asked directly (some it
    registers only once initialized, depending on the client's capabilities)."""
    async def main() -> set[str]:
        async with connect(everything.url, key=None) as (session, _):
            return {tool.name for tool in (await all_tools(session))[0]}

    return run(main)


def visible(everything_tools: set[str]) -> set[str]:
    """What alice sees: everything's tools but DENIED, and local's."""
    return {f"everything__{name}" for name in everything_tools - {DENIED}} | LOCAL_TOOLS


# --- the upstreams alone (no gateway) -------------------------------------------------------

def test_upstreams_answer_the_sdk_directly(everything: Upstream, local: Upstream) -> None:
    async def main() -> None:
        async with connect(everything.url, key=None) as (session, initialized):
            assert initialized.serverInfo.name == "mcp-servers/everything"
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"echo", DENIED, "get-sum", "trigger-long-running-operation"} <= names
            assert text_of(await session.call_tool("echo", {"message": "hi"})) == "Echo: hi"

        async with connect(local.url, key=None) as (session, initialized):
            assert initialized.serverInfo.name == "tollgate-e2e-local"
            assert initialized.instructions == LOCAL_INSTRUCTIONS
            assert {tool.name for tool in (await session.list_tools()).tools} == {"weather", "slow"}
            assert text_of(await session.call_tool("weather", {"city": "Oslo"})) == "Sunny in Oslo"
            assert [str(r.uri) for r in (await session.list_resources()).resources] == ["weather://paris"]
            templates = (await session.list_resource_templates()).resourceTemplates
            assert [t.uriTemplate for t in templates] == ["weather://{city}"]
            assert text_of(await session.read_resource("weather://paris")) == "Paris: sunny, 21 degrees"
            assert text_of(await session.read_resource("weather://oslo")) == "oslo: sunny"
            prompt = await session.get_prompt("forecast", {"city": "Lyon"})
            assert prompt.messages[0].content.text == "Write tomorrow's weather forecast for Lyon."
            progress: list[tuple[float, float | None]] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append((done, total))

            result = await session.call_tool("slow", {"seconds": 0.2}, progress_callback=on_progress)
            assert text_of(result) == "done after 0.2s"
            assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]

    run(main)


def test_upstreams_paged_local_server_pages_its_tools(launcher: Launcher) -> None:
    paged = ready(spawn_local(launcher, "--page-size", "1"))

    async def main() -> None:
        async with connect(paged.url, key=None) as (session, _):
            first = await session.list_tools()
            assert [tool.name for tool in first.tools] == ["weather"] and first.nextCursor
            tools, pages = await all_tools(session)
            assert ([tool.name for tool in tools], pages) == (["weather", "slow"], 2)
            # A call still works (the server's own tool cache sees every tool).
            assert text_of(await session.call_tool("slow", {"seconds": 0})) == "done after 0.0s"

    run(main)


# --- through the gateway ---------------------------------------------------------------------

def test_initialize_answers_as_tollgate(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (_, initialized):
            assert initialized.serverInfo.name == "tollgate"
            assert initialized.protocolVersion in SUPPORTED_PROTOCOL_VERSIONS
            capabilities = initialized.capabilities
            assert capabilities.tools and capabilities.resources and capabilities.prompts
            assert LOCAL_INSTRUCTIONS in (initialized.instructions or "")

    run(main)


def test_tools_are_merged_prefixed_and_filtered(mcp_gateway: Gateway, everything_tools: set[str]) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            listed = await session.list_tools()
            names = [tool.name for tool in listed.tools]
            assert len(names) == len(set(names)), names
            assert set(names) == visible(everything_tools)
            assert f"everything__{DENIED}" not in names
            weather = next(tool for tool in listed.tools if tool.name == "local__weather")
            assert weather.description == "The weather in a city"
            assert weather.inputSchema["required"] == ["city"]
            # Denied server-wide: a call is refused, as if it did not exist for this caller.
            assert await refused(session.call_tool(f"everything__{DENIED}", {})) == NOT_PERMITTED

    run(main)


def test_calls_go_to_their_upstream(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            echoed = await session.call_tool("everything__echo", {"message": "hello gateway"})
            assert not echoed.isError and text_of(echoed) == "Echo: hello gateway"
            weather = await session.call_tool("local__weather", {"city": "Oslo"})
            assert not weather.isError and text_of(weather) == "Sunny in Oslo"
            assert weather.structuredContent == {"result": "Sunny in Oslo"}

    run(main)


def test_resources_and_templates_are_prefixed(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            paris = await session.read_resource("local+weather://paris")
            assert [str(c.uri) for c in paris.contents] == ["local+weather://paris"]
            assert text_of(paris) == "Paris: sunny, 21 degrees"
            assert text_of(await session.read_resource("local+weather://oslo")) == "oslo: sunny"
            uris = {str(r.uri) for r in (await session.list_resources()).resources}
            assert {"local+weather://paris", "everything+demo://resource/static/document/features.md"} <= uris
            templates = {t.uriTemplate for t in (await session.list_resource_templates()).resourceTemplates}
            assert {"local+weather://{city}", "everything+demo://resource/dynamic/text/{resourceId}"} <= templates
            # A resource link in a tool's answer is prefixed too, so it can be read back through the gateway.
            linked = await session.call_tool("everything__get-resource-links", {"count": 2})
            links = [block for block in linked.content if block.type == "resource_link"]
            assert len(links) == 2 and all(str(l.uri).startswith("everything+demo://") for l in links), links
            for link in links:
                read = await session.read_resource(link.uri)
                assert [str(c.uri) for c in read.contents] == [str(link.uri)]

    run(main)


def test_prompts_are_prefixed(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            names = {prompt.name for prompt in (await session.list_prompts()).prompts}
            assert {"local__forecast", "everything__simple-prompt"} <= names
            prompt = await session.get_prompt("local__forecast", {"city": "Lyon"})
            assert prompt.messages[0].content.text == "Write tomorrow's weather forecast for Lyon."

    run(main)


def test_argument_rule_refuses_a_call(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            code = await refused(session.call_tool("everything__echo", {"message": "now rm -rf / please"}))
            assert code == NOT_PERMITTED
            assert text_of(await session.call_tool("everything__echo", {"message": "ls -l"})) == "Echo: ls -l"

    run(main)


def test_a_grant_narrows_what_one_user_sees(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway), key=BOB_KEY) as (session, _):
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert names == {"everything__echo"} | LOCAL_TOOLS
            assert text_of(await session.call_tool("everything__echo", {"message": "bob"})) == "Echo: bob"
            assert await refused(session.call_tool("everything__get-sum", {"a": 1, "b": 2})) == NOT_PERMITTED
            assert text_of(await session.call_tool("local__weather", {"city": "Rome"})) == "Sunny in Rome"
        async with connect(endpoint(mcp_gateway)) as (session, _):  # alice: no grant, server-wide rules
            summed = await session.call_tool("everything__get-sum", {"a": 1, "b": 2})
            assert not summed.isError and "3" in text_of(summed)

    run(main)


def test_pagination_follows_the_cursor_across_upstreams(launcher: Launcher, mock: Mock, everything: Upstream,
                                                        everything_tools: set[str]) -> None:
    paged = ready(spawn_local(launcher, "--page-size", "1"))  # local pages its tools one by one
    gateway = mcp_gateway_of(launcher, mock, everything, paged)

    async def main() -> None:
        async with connect(endpoint(gateway)) as (session, _):
            first = await session.list_tools()
            assert first.nextCursor, "local has a second page"
            tools, pages = await all_tools(session)
            names = [tool.name for tool in tools]
            assert pages >= 2
            assert len(names) == len(set(names)), names
            assert set(names) == visible(everything_tools)

    run(main)


def test_progress_notifications_reach_the_client(mcp_gateway: Gateway) -> None:
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            local: list[tuple[float, float | None, str | None]] = []

            async def on_local(done: float, total: float | None, message: str | None) -> None:
                local.append((done, total, message))

            result = await session.call_tool("local__slow", {"seconds": 0.4}, progress_callback=on_local)
            assert text_of(result) == "done after 0.4s"
            assert local == [(step, 4, f"step {step} of 4") for step in (1, 2, 3, 4)]

            everything: list[float] = []

            async def on_everything(done: float, total: float | None, message: str | None) -> None:
                everything.append(done)

            await session.call_tool("everything__trigger-long-running-operation", {"duration": 0.4, "steps": 2},
                                    progress_callback=on_everything)
            assert everything == [1, 2]

    run(main)


def test_progress_is_relayed_as_it_happens(mcp_gateway: Gateway) -> None:
    """Each progress notification reaches the client when the upstream sends it, not with
    the answer: the first one comes long before the call ends."""
    async def main() -> None:
        async with connect(endpoint(mcp_gateway)) as (session, _):
            arrivals: list[float] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                arrivals.append(time.monotonic())

            started = time.monotonic()
            result = await session.call_tool("local__slow", {"seconds": 1.2}, progress_callback=on_progress)
            ended = time.monotonic()
            assert text_of(result) == "done after 1.2s" and len(arrivals) == 4
            assert arrivals[0] - started < 0.8 < ended - started, (arrivals[0] - started, ended - started)

    run(main)


def test_a_server_request_reaches_the_client_while_its_call_waits(mcp_gateway: Gateway) -> None:
    """server-everything asks the client to sample (sampling/createMessage) in the middle of a
    tool call and waits for the answer: the request is relayed as it comes, the client's
    answer goes back to that upstream, and the call completes with it."""
    async def main() -> None:
        async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
            asked = params.messages[0].content.text
            return types.CreateMessageResult(role="assistant", model="client-model",
                                             content=types.TextContent(type="text", text=f"sampled: {asked}"))

        async with connect(endpoint(mcp_gateway), sampling_callback=sample) as (session, _):
            result = await session.call_tool("everything__trigger-sampling-request",
                                              {"prompt": "a haiku", "maxTokens": 20})
            assert "sampled: " in text_of(result) and "a haiku" in text_of(result), text_of(result)

    run(main)


def test_a_session_works_on_another_gateway_with_the_same_key(module_launcher: Launcher, mock: Mock,
                                                              everything: Upstream, local: Upstream,
                                                              mcp_gateway: Gateway) -> None:
    twin = mcp_gateway_of(module_launcher, mock, everything, local)
    session = RawSession(mcp_gateway)
    weather = session.request(twin, "tools/call", {"name": "local__weather", "arguments": {"city": "Paris"}})
    assert weather["result"]["content"][0]["text"] == "Sunny in Paris", weather
    echoed = session.request(twin, "tools/call", {"name": "everything__echo", "arguments": {"message": "twin"}})
    assert echoed["result"]["content"][0]["text"] == "Echo: twin", echoed
    names = {tool["name"] for tool in session.request(twin, "tools/list")["result"]["tools"]}
    assert {"everything__echo"} | LOCAL_TOOLS <= names
    # And back on the first one.
    again = session.request(mcp_gateway, "tools/call", {"name": "local__weather", "arguments": {"city": "Nice"}})
    assert again["result"]["content"][0]["text"] == "Sunny in Nice", again


def test_a_tampered_or_unknown_session_id_is_404(mcp_gateway: Gateway) -> None:
    session = RawSession(mcp_gateway)
    middle = len(session.session_id) // 2
    swapped = "A" if session.session_id[middle] != "A" else "B"
    tampered = session.session_id[:middle] + swapped + session.session_id[middle + 1:]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for bad in (tampered, "not-a-tollgate-session"):
        response = session.post(mcp_gateway, body, session_id=bad)
        assert response.status_code == 404, f"{bad}: {response.status_code}: {response.text}"
    assert "result" in session.request(mcp_gateway, "tools/list"), "the real one still works"


def test_no_api_key_is_401(mcp_gateway: Gateway) -> None:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE}
    for key in (None, "tg-nobody"):
        response = post_mcp(mcp_gateway, body, key=key)
        assert response.status_code == 401, f"{key}: {response.status_code}: {response.text}"


def test_oauth_metadata_says_where_clients_authenticate(mcp_gateway: Gateway) -> None:
    """RFC 9728: the metadata needs no credential, and a 401 of the endpoint points at it."""
    metadata = f"{mcp_gateway.url}/.well-known/oauth-protected-resource/mcp"
    with mcp_gateway.http() as http:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            response = http.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code}: {response.text}"
            document = response.json()
            assert document["resource"] == f"{mcp_gateway.url}/mcp", document
            assert document["bearer_methods_supported"] == ["header"]
            assert isinstance(document["authorization_servers"], list)
        assert http.get("/.well-known/oauth-protected-resource/elsewhere").status_code == 401
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INITIALIZE}
    refused = post_mcp(mcp_gateway, body, key=None)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == f'Bearer resource_metadata="{metadata}"'


def test_malformed_json_is_400_with_a_parse_error(mcp_gateway: Gateway) -> None:
    response = post_mcp(mcp_gateway, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert response.status_code == 400, f"{response.status_code}: {response.text}"
    answer = response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None, answer
    assert answer["error"]["code"] == PARSE_ERROR, answer


def test_an_unknown_method_is_method_not_found(mcp_gateway: Gateway) -> None:
    answer = RawSession(mcp_gateway).request(mcp_gateway, "tollgate/no-such-method", {"x": 1})
    assert answer["error"]["code"] == METHOD_NOT_FOUND, answer


def test_get_needs_a_session(mcp_gateway: Gateway) -> None:
    with mcp_gateway.http() as http:
        response = http.get("/mcp", headers={"Authorization": f"Bearer {ALICE_KEY}", "Accept": "text/event-stream"})
    assert response.status_code == 400, f"{response.status_code}: {response.text}"


def test_the_get_stream_carries_what_upstreams_send_outside_requests(mcp_gateway: Gateway) -> None:
    """GET merges the upstreams' standalone streams: server-everything's simulated logging,
    switched on by a tool call, arrives there, not in the call's answer."""
    session = RawSession(mcp_gateway)
    received: list[dict] = []
    opened = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {ALICE_KEY}", "Accept": "text/event-stream",
                   "Mcp-Session-Id": session.session_id, "MCP-Protocol-Version": session.protocol_version}
        with mcp_gateway.http(timeout=httpx.Timeout(10.0, read=20.0)) as http:
            with http.stream("GET", "/mcp", headers=headers) as response:
                assert response.status_code == 200, response.status_code
                assert response.headers["content-type"].startswith("text/event-stream")
                opened.set()
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        received.append(json.loads(line[5:]))
                    if any(m.get("method") == "notifications/message" for m in received):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10), "the GET stream opened"
    toggled = session.request(mcp_gateway, "tools/call",
                              {"name": "everything__toggle-simulated-logging", "arguments": {}})
    assert "Started simulated" in toggled["result"]["content"][0]["text"], toggled
    listener.join(15)
    logged = [m for m in received if m.get("method") == "notifications/message"]
    assert logged and logged[0]["params"]["level"], received
    session.request(mcp_gateway, "tools/call", {"name": "everything__toggle-simulated-logging", "arguments": {}})


def test_an_upstream_down_leaves_the_others_listed(launcher: Launcher, mock: Mock, everything: Upstream,
                                                   everything_tools: set[str]) -> None:
    doomed = ready(spawn_local(launcher))
    gateway = mcp_gateway_of(launcher, mock, everything, doomed)
    expected = {f"everything__{name}" for name in everything_tools - {DENIED}}

    async def main() -> None:
        async with connect(endpoint(gateway)) as (session, _):
            assert {tool.name for tool in (await session.list_tools()).tools} == expected | LOCAL_TOOLS
            doomed.process.stop()
            listed = await session.list_tools()
            assert {tool.name for tool in listed.tools} == expected
            failures = (listed.meta or {}).get(UPSTREAM_ERRORS)
            assert [failure["server"] for failure in failures or []] == ["local"], listed.meta
            echoed = await session.call_tool("everything__echo", {"message": "still here"})
            assert text_of(echoed) == "Echo: still here"
        # A session opened while it is down has the others, and says which one is missing.
        async with connect(endpoint(gateway)) as (session, initialized):
            assert [f["server"] for f in (initialized.meta or {}).get(UPSTREAM_ERRORS, [])] == ["local"]
            assert {tool.name for tool in (await session.list_tools()).tools} == expected

    run(main)


def test_an_upstream_that_lost_the_session_is_initialized_again(launcher: Launcher, mock: Mock,
                                                                local: Upstream) -> None:
    """server-everything restarted on its port holds none of its sessions: the next call is
    still answered (the gateway initializes it again and resends), for the SDK client, which
    keeps its session id, and for a raw client, which gets a refreshed one."""
    port = free_port()
    first = ready(spawn_everything(launcher, port))
    gateway = mcp_gateway_of(launcher, mock, first, local)

    async def main() -> None:
        async with connect(endpoint(gateway)) as (session, _):
            assert text_of(await session.call_tool("everything__echo", {"message": "before"})) == "Echo: before"
            first.process.stop()
            ready(spawn_everything(launcher, port))
            assert text_of(await session.call_tool("everything__echo", {"message": "after"})) == "Echo: after"
            assert "everything__echo" in {tool.name for tool in (await session.list_tools()).tools}

    run(main)

    raw = RawSession(gateway)
    launcher.processes[-1].stop()
    ready(spawn_everything(launcher, port))
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "everything__echo", "arguments": {"message": "renewed"}}}
    response = raw.post(gateway, body)
    assert jsonrpc_answer(response, 1)["result"]["content"][0]["text"] == "Echo: renewed"
    renewed = response.headers.get("mcp-session-id")
    assert renewed and renewed != raw.session_id, "the refreshed session id carries the new upstream session"
    raw.session_id = renewed
    again = raw.request(gateway, "tools/call", {"name": "everything__echo", "arguments": {"message": "again"}})
    assert again["result"]["content"][0]["text"] == "Echo: again"


def test_an_upstream_on_the_older_http_sse_transport(launcher: Launcher, mock: Mock, everything: Upstream) -> None:
    """The Python server speaking only HTTP+SSE (GET /sse, POST /messages/) behind the gateway,
    with the SDK's Streamable HTTP client in front: listed, called with progress, read, and
    a session that moves to another gateway process still reaches it."""
    legacy = ready(spawn_local(launcher, "--transport", "sse"))
    gateway = launcher.gateway(mock)
    gateway.reload(mcp_manifest(gateway, everything, legacy, local_transport="SSE"))

    async def main() -> None:
        async with connect(endpoint(gateway)) as (session, initialized):
            assert not (initialized.meta or {}).get(UPSTREAM_ERRORS), initialized.meta
            assert LOCAL_TOOLS <= {tool.name for tool in (await session.list_tools()).tools}
            weather = await session.call_tool("local__weather", {"city": "Lima"})
            assert text_of(weather) == "Sunny in Lima"
            steps: list[float] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                steps.append(done)

            slow = await session.call_tool("local__slow", {"seconds": 0.2}, progress_callback=on_progress)
            assert text_of(slow) == "done after 0.2s" and steps == [1, 2, 3, 4]
            assert text_of(await session.call_tool("everything__echo", {"message": "both"})) == "Echo: both"

    run(main)
    twin = launcher.gateway(mock)
    twin.reload(mcp_manifest(twin, everything, legacy, local_transport="SSE"))
    moved = RawSession(gateway).request(twin, "tools/call", {"name": "local__weather", "arguments": {"city": "Rome"}})
    assert moved["result"]["content"][0]["text"] == "Sunny in Rome", moved


def test_a_budget_policy_limits_calls_of_its_tools(launcher: Launcher, mock: Mock, everything: Upstream,
                                                    local: Upstream) -> None:
    """A BudgetPolicy with `tools` counts calls of those tools, one request each: the third
    call of local__weather in a minute is refused with -32053; other tools and model
    requests are not counted."""
    gateway = launcher.gateway(mock)
    policy = resource("tollgate.dev/v1alpha1", "BudgetPolicy", "weather-calls", spec={
        "subject": {"kind": "Team", "name": "research"}, "tools": ["local__weather"],
        "limits": [{"window": "Minute", "requests": 2}]})
    gateway.reload(mcp_manifest(gateway, everything, local) + "---\n" + json.dumps(policy) + "\n")
    session = RawSession(gateway)
    weather = {"name": "local__weather", "arguments": {"city": "Oslo"}}
    for _ in range(2):
        assert "result" in session.request(gateway, "tools/call", weather)
    limited = session.request(gateway, "tools/call", weather)
    assert limited["error"]["code"] == TOOL_CALL_LIMITED, limited
    assert "local__weather" in limited["error"]["message"], limited
    assert 0 < limited["error"]["data"]["retryAfterSeconds"] <= 60, limited
    assert "result" in session.request(gateway, "tools/call", {"name": "local__slow", "arguments": {"seconds": 0}})
    assert gateway.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert gateway.metric("tollgate_mcp_tool_calls_total", server="local", tool="", outcome="limited") == 1


def test_every_tool_call_is_audited_traced_and_counted(launcher: Launcher, mock: Mock, everything: Upstream,
                                                       local: Upstream, tmp_path) -> None:
    from otlp import start_collector

    collector, stop = start_collector()
    try:
        log = tmp_path / "audit.jsonl"
        gateway = launcher.gateway(mock, args=("--audit-log", str(log), "--otlp-endpoint", collector.grpc_url))
        gateway.reload(mcp_manifest(gateway, everything, local))
        session = RawSession(gateway)
        weather = session.request(gateway, "tools/call", {"name": "local__weather", "arguments": {"city": "Oslo"}})
        assert weather["result"]["content"][0]["text"] == "Sunny in Oslo"
        refused = session.request(gateway, "tools/call",
                                  {"name": "everything__echo", "arguments": {"message": "now rm -rf /srv/data"}})
        assert refused["error"]["code"] == NOT_PERMITTED

        def tool_calls():
            calls = [record for record in jsonl_records(log) if record.get("event") == "tool_call"]
            return calls if len(calls) == 2 else None

        ok, denied = wait_for(tool_calls, 10, "two tool call records")
        assert (ok["server"], ok["tool"], ok["outcome"]) == ("local", "local__weather", "ok")
        assert ok["key_id"] == "default/alice-key" and ok["user"] == "alice" and ok["team"] == "research"
        assert ok["arguments_sha256"] == hashlib.sha256(json.dumps({"city": "Oslo"}, separators=(",", ":")).encode()).hexdigest()
        assert "Oslo" not in json.dumps(ok), "arguments are digested, never written"
        assert ok["latency_ms"] > 0 and ok["route"] == "default/tools"
        assert (denied["server"], denied["outcome"]) == ("everything", "refused")
        assert "/srv/data" not in json.dumps(denied), "the arguments never reach the record"
        checked = subprocess.run([str(binary("tollgate")), "audit", "verify", str(log)], capture_output=True, text=True,
                                 timeout=30)
        assert checked.returncode == 0, checked.stdout

        assert gateway.metric("tollgate_mcp_tool_calls_total", server="local", tool="local__weather", outcome="ok") == 1
        assert gateway.metric("tollgate_mcp_tool_calls_total", server="everything", tool="", outcome="refused") == 1

        spans = collector.wait_for_spans(lambda s: sum(x.name.startswith("execute_tool") for x in s) == 2,
                                         "two tool spans")
        (weather_span,) = [s for s in spans if s.name == "execute_tool local__weather"]
        assert weather_span.attributes["gen_ai.tool.name"] == "local__weather"
        assert weather_span.attributes["gen_ai.operation.name"] == "execute_tool"
        assert weather_span.attributes["tollgate.mcp.server"] == "local"
        (denied_span,) = [s for s in spans if s.name == "execute_tool everything__echo"]
        assert denied_span.attributes["error.type"] == "refused"
        requests = [s for s in spans if s.kind == 2 and s.trace_id == weather_span.trace_id]
        assert requests and weather_span.parent_span_id == requests[0].span_id
    finally:
        stop()


def test_an_agent_turn_is_one_trace_failover_and_tool_call_included(launcher: Launcher, everything: Upstream,
                                                                     local: Upstream) -> None:
    """An agent's turn (a streamed chat whose first provider fails, then the tool call the model
    asked for) sent with one traceparent: every span lands in the caller's trace, the attempts
    under the chat's span and the tool call under the MCP request's span."""
    from otlp import start_collector

    caller_trace, caller_span = "5cf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7"
    traceparent = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    collector, stop = start_collector()
    try:
        failing, healthy = launcher.mock("--status", "503"), launcher.mock()
        gateway = launcher.gateway(
            backends=({"endpoint": failing.url, "priority": 0}, {"endpoint": healthy.url, "priority": 1}),
            args=("--otlp-endpoint", collector.grpc_url))
        gateway.reload(mcp_manifest(gateway, everything, local))
        stream = gateway.client().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Weather in Oslo?"}], stream=True,
            tools=[{"type": "function", "function": {"name": "local__weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            extra_headers=traceparent)
        calls = [call for chunk in stream for choice in chunk.choices for call in (choice.delta.tool_calls or [])]
        assert calls and calls[0].function.name == "local__weather"
        session = RawSession(gateway)
        weather = session.request(gateway, "tools/call", {"name": "local__weather", "arguments": {"city": "Oslo"}},
                                  headers=traceparent)
        assert weather["result"]["content"][0]["text"] == "Sunny in Oslo"

        spans = [s for s in collector.wait_for_spans(
            lambda received: sum(s.trace_id == caller_trace for s in received) >= 5, "the turn's five spans", 15)
            if s.trace_id == caller_trace]
        servers = {s.name: s for s in spans if s.kind == 2}
        chat = servers[f"chat {MODEL}"]
        assert chat.parent_span_id == caller_span
        attempts = sorted((s for s in spans if s.kind == 3 and s.parent_span_id == chat.span_id),
                          key=lambda s: s.attributes["tollgate.attempt"])
        assert [a.status_code == 2 for a in attempts] == [True, False], "the failed attempt, then the served one"
        assert attempts[0].attributes["error.type"] == "server_error"
        (tool,) = [s for s in spans if s.name == "execute_tool local__weather"]
        mcp_request = next(s for s in servers.values() if s.span_id == tool.parent_span_id)
        assert mcp_request.parent_span_id == caller_span
        assert tool.attributes["gen_ai.tool.name"] == "local__weather"
        assert tool.attributes["tollgate.mcp.server"] == "local" and tool.status_code != 2
    finally:
        stop()
