"""BudgetPolicy, reserve-and-settle: every chat request reserves its worst case (input
estimated from the raw `messages` text, output at its cap) on each limit that applies before
it is routed, and is settled to what it used when its response ends. Proven here with the
real binaries: hundreds of concurrent streams never spend past a hard limit yet use most of it,
in one process and across three sharing Redis; a caller hanging up mid-stream pays only for
what it received; refusals, rate limit headers, clamping, soft limits, subjects, alerts,
reloads, and a Redis that goes away and comes back under fail-open and fail-closed policies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import socket
import subprocess
import time
import uuid
from decimal import Decimal
from typing import NamedTuple

import httpx
import pytest

from conftest import (
    ALICE_KEY,
    LOOPBACK,
    MARKER,
    MODEL,
    Gateway,
    Launcher,
    Mock,
    assert_error,
    free_port,
    hello,
    new_marker,
    sse_events,
    wait_for,
)

CHAT = "/v1/chat/completions"
HEADERS = {"Authorization": f"Bearer {ALICE_KEY}", "Content-Type": "application/json"}
# render_manifest's gpt-4o-mini prices ($0.15 and $0.60 per million tokens) in nano-dollars a token.
INPUT_NANO, OUTPUT_NANO = 150, 600
NANOS_PER_USD = 10**9
SHARED_REDIS = f"redis://{LOOPBACK}:6379"

# The storms of the accuracy tests: 300 concurrent streams of STORM_CHUNKS chunks each, asking
# for exactly that many tokens, with a prompt long enough that the estimate is near the truth.
STORM = 300
STORM_CHUNKS = 20
STORM_FITS = 100  # the limit holds about this many worst cases
STORM_PROMPT = [{"role": "user", "content": ("Count what I spend, not what I might. " * 11)[:400]}]


# --- requests and what they cost ---------------------------------------------------------------

def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def chat_body(messages: list[dict] | None = None, **fields) -> bytes:
    """A chat request body, serialized compactly so that the raw `messages` text the gateway
    measures is exactly compact(messages)."""
    return compact({"model": MODEL, "messages": messages or hello(), **fields}).encode()


def input_estimate(messages: list[dict]) -> int:
    """The gateway's estimate of the prompt: a token per four bytes of raw `messages` JSON."""
    return math.ceil(len(compact(messages)) / 4)


# o200k_base counts (gpt-4o-mini's tokenizer) of the prompts whose exact count a test asserts.
O200K_TOKENS = {"Say hello": 2}


def input_tokens(messages: list[dict]) -> int:
    """The gateway's count of a gpt-4o-mini prompt: tiktoken's tokens of each message's content
    and role ("user" is one token), 3 framing tokens a message and 3 priming the reply."""
    return 3 + sum(3 + 1 + O200K_TOKENS[m["content"]] for m in messages)


def mock_prompt_tokens(messages: list[dict]) -> int:
    """What the mock reports as prompt_tokens: a token per four bytes of the messages' text."""
    return max(1, math.ceil(sum(len(m["content"].encode()) for m in messages) / 4))


def nano_usd(prompt_tokens: int, completion_tokens: int) -> int:
    return prompt_tokens * INPUT_NANO + completion_tokens * OUTPUT_NANO


def usd(nanos: int) -> str:
    return format(Decimal(nanos) / NANOS_PER_USD, "f")


def chat(gateway: Gateway, body: bytes | None = None, **headers: str) -> httpx.Response:
    return gateway.post(CHAT, content=body or chat_body(), headers={"Content-Type": "application/json", **headers})


# --- policies ----------------------------------------------------------------------------------

def policy(name: str, *limits: dict, subject: tuple[str, str] | None = None, **spec) -> dict:
    """A BudgetPolicy document; its subject is (kind, name), or Global when not given."""
    kind, subject_name = subject or ("Global", None)
    return {"apiVersion": "tollgate.dev/v1alpha1", "kind": "BudgetPolicy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"subject": {"kind": kind, **({"name": subject_name} if subject_name else {})},
                     "limits": list(limits), **spec}}


def limit(window: str, **amount) -> dict:
    """One limit: limit("Month", usd="1.50"), limit("Minute", tokens=1000), ..."""
    return {"window": window, **amount}


def with_policies(gateway: Gateway, policies: tuple[dict, ...], **overrides) -> str:
    """The gateway's manifest (changed by render_manifest `overrides`) with these policies appended."""
    return gateway.manifest(**overrides) + "".join(f"---\n{json.dumps(p, indent=2)}\n" for p in policies)


def budgeted(launcher: Launcher, mock: Mock, *policies: dict, args: tuple[str, ...] = ()) -> Gateway:
    """A ready gateway of `mock` serving these policies."""
    gateway = launcher.gateway(mock, args=args)
    gateway.reload(with_policies(gateway, policies))
    return gateway


def redis_args(url: str, namespace: str, timeout: str = "250ms") -> tuple[str, ...]:
    return ("--budget-store", url, "--budget-store-namespace", namespace, "--budget-store-timeout", timeout)


# --- what the gateway reports ------------------------------------------------------------------

def limits_of(gateway: Gateway, name: str) -> list[dict]:
    """/budgets' limits of policy default/<name>."""
    response = gateway.admin_get("/budgets")
    assert response.status_code == 200, response.text
    (found,) = [p for p in response.json()["policies"] if p["policy"] == f"default/{name}"]
    return found["limits"]


def used(gateway: Gateway, name: str, index: int = 0) -> Decimal:
    return Decimal(limits_of(gateway, name)[index]["used"])


def await_used(gateway: Gateway, name: str, expected: Decimal | int, index: int = 0, timeout: float = 5) -> None:
    """Waits until /budgets shows `expected` used on a limit (settlement may trail the response)."""
    seen: list[Decimal] = []

    def settled() -> bool:
        seen.append(used(gateway, name, index))
        return seen[-1] == expected

    try:
        wait_for(settled, timeout, f"{name} used == {expected}", interval=0.05)
    except AssertionError:
        raise AssertionError(f"/budgets shows {seen[-1]} used of {name}[{index}], expected {expected}") from None


def outcomes(gateway: Gateway, name: str, outcome: str) -> float:
    return gateway.metric("tollgate_budget_outcomes_total", policy=f"default/{name}", outcome=outcome)


def seconds_of(duration: str) -> float:
    """An OpenAI-style duration (`20ms`, `59.5s`, `1m0s`) in seconds."""
    if duration.endswith("ms"):
        return int(duration[:-2]) / 1000
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s", duration)
    assert match, f"not a duration: {duration!r}"
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


# --- concurrent streams ------------------------------------------------------------------------

class Streamed(NamedTuple):
    """One streamed request as its caller saw it."""
    status: int
    code: str | None  # the error code of a refusal
    retry_after: str | None
    content_events: int
    usage: dict | None  # the last event's usage, when asked for
    done: bool  # `data: [DONE]` arrived


async def _stream(client: httpx.AsyncClient, url: str, body: bytes) -> Streamed:
    async with client.stream("POST", url, content=body, headers=HEADERS) as response:
        if response.status_code != 200:
            error = json.loads(await response.aread())["error"]
            return Streamed(response.status_code, error["code"], response.headers.get("retry-after"), 0, None, False)
        events = sse_events([line async for line in response.aiter_lines()])
    payloads = [json.loads(event) for event in events if event != "[DONE]"]
    content = sum(bool(p["choices"] and p["choices"][0]["delta"].get("content")) for p in payloads)
    usage = next((p["usage"] for p in payloads if p.get("usage")), None)
    return Streamed(200, None, None, content, usage, events[-1:] == ["[DONE]"])


def storm(gateways: list[Gateway], bodies: list[bytes]) -> list[Streamed]:
    """Streams every body at once, request i to gateways[i % len(gateways)], each read whole."""
    async def run() -> list[Streamed]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
            return await asyncio.gather(*(
                _stream(client, gateways[i % len(gateways)].url + CHAT, body) for i, body in enumerate(bodies)
            ))
    return asyncio.run(run())


def storm_bodies() -> list[bytes]:
    """STORM streaming requests for STORM_CHUNKS tokens each; every other one asks for usage."""
    return [chat_body(STORM_PROMPT, stream=True, max_tokens=STORM_CHUNKS,
                      **({"stream_options": {"include_usage": True}} if i % 2 else {}))
            for i in range(STORM)]


def storm_usage(result: Streamed) -> tuple[int, int]:
    """(prompt, completion) tokens of a served storm stream: what it reported, checked against
    what the mock is known to report, or that when the caller did not ask."""
    known = (mock_prompt_tokens(STORM_PROMPT), STORM_CHUNKS)
    if result.usage is not None:
        assert (result.usage["prompt_tokens"], result.usage["completion_tokens"]) == known, result.usage
    return known


def assert_served_whole(served: list[Streamed]) -> None:
    broken = [r for r in served if not r.done or r.content_events != STORM_CHUNKS]
    assert not broken, f"{len(broken)} streams were cut short, e.g. {broken[:3]}"


def assert_refused_only_as(results: list[Streamed], code: str) -> list[Streamed]:
    refused = [r for r in results if r.status != 200]
    wrong = [r for r in refused if (r.status, r.code) != (429, code)]
    assert not wrong, f"{len(wrong)} refused otherwise than 429 {code}, e.g. {wrong[:3]}"
    assert refused, "the limit refused nothing: the storm did not reach it"
    return refused


@pytest.fixture
def shared_namespace():
    """A fresh key namespace in the shared Redis; its keys are deleted afterwards (never FLUSH)."""
    namespace = f"e2e-{uuid.uuid4().hex}:"
    yield namespace
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        keys = subprocess.run(["redis-cli", "-p", "6379", "--scan", "--pattern", f"tollgate:budget:{namespace}*"],
                              capture_output=True, text=True, timeout=5).stdout.split()
        if keys:
            subprocess.run(["redis-cli", "-p", "6379", "DEL", *keys], capture_output=True, timeout=5)


def storm_mock(launcher: Launcher) -> Mock:
    mock = launcher.mock()
    mock.behave(chunks=STORM_CHUNKS, chunk_interval_ms=10)
    return mock


# --- accuracy under concurrency ----------------------------------------------------------------

def assert_usd_budget_held(gateways: list[Gateway]) -> None:
    """A hard USD budget with room for STORM_FITS worst cases, stormed over `gateways`."""
    worst = nano_usd(input_estimate(STORM_PROMPT), STORM_CHUNKS)
    budget = STORM_FITS * worst
    results = storm(gateways, storm_bodies())

    served = [r for r in results if r.status == 200]
    refused = assert_refused_only_as(results, "budget_exceeded")
    assert_served_whole(served)
    spent = sum(nano_usd(*storm_usage(r)) for r in served)
    assert spent <= budget, f"{len(served)} requests spent {spent} nano-USD of a {budget} budget"
    assert spent >= 0.9 * budget, f"{len(served)} requests spent only {spent} nano-USD of a {budget} budget"
    for gateway in gateways:
        await_used(gateway, "storm", Decimal(spent) / NANOS_PER_USD)
        (month,) = limits_of(gateway, "storm")
        assert Decimal(month["used"]) <= Decimal(month["limit"]) == Decimal(budget) / NANOS_PER_USD, month
    assert sum(outcomes(g, "storm", "refused") for g in gateways) == len(refused)


def usd_storm_policy() -> dict:
    worst = nano_usd(input_estimate(STORM_PROMPT), STORM_CHUNKS)
    return policy("storm", limit("Month", usd=usd(STORM_FITS * worst)))


def test_concurrent_streams_never_overspend_a_usd_budget(launcher):
    """300 concurrent streams over one process: what the served ones really cost stays within
    the hard budget and uses at least 90% of it; the rest got 429 budget_exceeded."""
    mock = storm_mock(launcher)
    gateway = budgeted(launcher, mock, usd_storm_policy())
    assert_usd_budget_held([gateway])


def test_three_processes_sharing_redis_never_overspend_a_usd_budget(launcher, shared_namespace):
    """The same storm spread over three processes counting in one Redis: one budget, held."""
    mock = storm_mock(launcher)
    args = redis_args(SHARED_REDIS, shared_namespace, timeout="2s")
    gateways = [budgeted(launcher, mock, usd_storm_policy(), args=args) for _ in range(3)]
    assert_usd_budget_held(gateways)


def test_three_processes_sharing_redis_hold_a_tokens_per_minute_limit(launcher, shared_namespace):
    """A tokens-per-minute limit across three Redis-backed processes: the tokens served stay
    within it and fill at least 90% of it; refusals are 429 rate_limit_exceeded with retry-after."""
    tokens = STORM_FITS * (input_estimate(STORM_PROMPT) + STORM_CHUNKS)
    mock = storm_mock(launcher)
    args = redis_args(SHARED_REDIS, shared_namespace, timeout="2s")
    gateways = [budgeted(launcher, mock, policy("storm", limit("Minute", tokens=tokens)), args=args)
                for _ in range(3)]
    results = storm(gateways, storm_bodies())

    served = [r for r in results if r.status == 200]
    refused = assert_refused_only_as(results, "rate_limit_exceeded")
    assert_served_whole(served)
    assert all(r.retry_after and 1 <= int(r.retry_after) <= 60 for r in refused), {r.retry_after for r in refused}
    spent = sum(sum(storm_usage(r)) for r in served)
    assert 0.9 * tokens <= spent <= tokens, f"{len(served)} requests used {spent} tokens of a {tokens} limit"
    for gateway in gateways:
        await_used(gateway, "storm", spent)


# --- settling --------------------------------------------------------------------------------

def test_a_caller_hanging_up_mid_stream_pays_only_for_what_it_received(launcher, mock):
    """A slow stream reserved for 4096 output tokens whose caller leaves after three content
    events is settled at the input estimate plus about those events, and the room it held is
    free for the next request at once."""
    mock.behave(chunks=50, chunk_interval_ms=100)
    estimate, worst = input_tokens(hello()), input_tokens(hello()) + 4096
    gateway = budgeted(launcher, mock, policy("tokens", limit("Month", tokens=5000)))

    with gateway.http() as http, http.stream("POST", CHAT, content=chat_body(stream=True), headers=HEADERS) as response:
        assert response.status_code == 200
        lines, received = response.iter_lines(), 0  # the iterator is kept: closing it hangs up
        while received < 3:
            line = next(lines)
            received += line.startswith("data:") and '"content"' in line
        # While it streams, its worst case is held, and a second one does not fit beside it.
        assert used(gateway, "tokens") == worst
        assert_error(chat(gateway), 429, "budget_exceeded")

    wait_for(lambda: used(gateway, "tokens") < worst, 5, "the abandoned stream to be settled")
    spent = used(gateway, "tokens")
    assert estimate + 3 <= spent <= estimate + 6, f"settled at {spent} tokens, estimate {estimate}"
    wait_for(lambda: mock.stats()["streams_aborted"] == 1, 3, "the mock to see the gateway hang up")
    # The released room takes a request whose worst case (another 4106) fits only without the first's.
    response = chat(gateway)
    assert response.status_code == 200, response.text
    await_used(gateway, "tokens", spent + mock_prompt_tokens(hello()) + 50)


# --- refusals, headers, clamping ---------------------------------------------------------------

def test_hard_limits_refuse_with_retry_after_and_report_rate_limit_headers(launcher, mock):
    """2 requests and 1000 tokens a minute: a request whose max_tokens alone exceeds the token
    limit is refused without retry-after (it can never fit); successes carry x-ratelimit-*
    headers for both limits; the third request is refused with a retry-after under a minute."""
    gateway = budgeted(launcher, mock, policy("rate", limit("Minute", requests=2), limit("Minute", tokens=1000)))
    estimate = input_tokens(hello())

    never = chat(gateway, chat_body(max_tokens=2000))
    error = assert_error(never, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert "retry-after" not in never.headers, dict(never.headers)

    first = chat(gateway, chat_body(max_tokens=100))
    assert first.status_code == 200, first.text
    headers = first.headers
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == ("2", "1")
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert headers["x-ratelimit-remaining-tokens"] == str(1000 - estimate - 100)
    for unit in ("requests", "tokens"):
        assert 0 < seconds_of(headers[f"x-ratelimit-reset-{unit}"]) <= 60, dict(headers)

    second = chat(gateway, chat_body(max_tokens=100))
    assert second.status_code == 200, second.text
    assert second.headers["x-ratelimit-remaining-requests"] == "0"

    third = chat(gateway, chat_body(max_tokens=100))
    error = assert_error(third, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error" and "default/rate" in error["message"], error
    assert 1 <= int(third.headers["retry-after"]) <= 60, dict(third.headers)
    assert outcomes(gateway, "rate", "refused") == 2
    assert mock.stats()["chat_requests"] == 2


def test_a_clamping_policy_lowers_max_tokens_to_what_fits(launcher, mock):
    """With 300 tokens left and clamp on, max_tokens 1000 reaches the provider lowered to the
    room left after the prompt, and a request without max_tokens gets the room as its cap."""
    gateway = budgeted(launcher, mock, policy("clamp", limit("Month", tokens=300), clamp=True))
    estimate, marker = input_tokens(hello()), new_marker()

    response = chat(gateway, chat_body(max_tokens=1000), **{MARKER: marker})
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-remaining-tokens"] == "0"
    (received,) = mock.requests(marker)
    assert received["body"]["max_tokens"] == 300 - estimate
    assert outcomes(gateway, "clamp", "clamped") == 1

    spent = mock_prompt_tokens(hello()) + 5  # the mock's default answer is 5 chunks
    await_used(gateway, "clamp", spent)
    marker = new_marker()
    response = chat(gateway, **{MARKER: marker})
    assert response.status_code == 200, response.text
    (received,) = mock.requests(marker)
    assert received["body"]["max_completion_tokens"] == 300 - spent - estimate
    assert "max_tokens" not in received["body"]
    assert outcomes(gateway, "clamp", "clamped") == 2


def test_a_policy_caps_output_of_requests_that_set_none(launcher, mock):
    """A request without max_tokens under a policy is sent to an OpenAI provider with
    max_completion_tokens set to the policy's defaultMaxOutputTokens, which is what it reserved;
    one that sets max_tokens is sent as it was."""
    gateway = budgeted(launcher, mock, policy("capped", limit("Month", tokens=10_000), defaultMaxOutputTokens=64))
    marker = new_marker()

    response = chat(gateway, **{MARKER: marker})
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-remaining-tokens"] == str(10_000 - input_tokens(hello()) - 64)
    response = chat(gateway, chat_body(max_tokens=10), **{MARKER: marker})
    assert response.status_code == 200, response.text

    uncapped, capped = mock.requests(marker)
    assert uncapped["body"]["max_completion_tokens"] == 64 and "max_tokens" not in uncapped["body"]
    assert capped["body"]["max_tokens"] == 10 and "max_completion_tokens" not in capped["body"]
    assert outcomes(gateway, "capped", "clamped") == 0


def test_a_soft_limit_lets_requests_past_and_counts_them(launcher, mock):
    """Past a soft limit of 2 requests, requests are still served, and each one over it is
    counted as over_limit; /budgets shows the overspend."""
    gateway = budgeted(launcher, mock, policy("soft", limit("Month", requests=2), enforcement="Soft"))
    for _ in range(5):
        response = chat(gateway)
        assert response.status_code == 200, response.text

    assert outcomes(gateway, "soft", "over_limit") == 3
    assert outcomes(gateway, "soft", "refused") == 0
    (month,) = limits_of(gateway, "soft")
    assert (month["used"], month["remaining"]) == ("5", "0"), month
    assert mock.stats()["chat_requests"] == 5


def test_policies_apply_to_their_subjects_only(launcher, mock):
    """alice's key is on team research, user alice: a policy for another team or user never
    counts her requests, while those for her key, user, team, route and everyone do, and her
    key's limit refuses her third request."""
    plenty = limit("Month", requests=100)
    gateway = budgeted(
        launcher, mock,
        policy("other-team", limit("Month", requests=1), subject=("Team", "marketing")),
        policy("other-user", limit("Month", requests=1), subject=("User", "bob")),
        policy("alice-key", limit("Month", requests=2), subject=("Key", "alice-key")),
        policy("alice", plenty, subject=("User", "alice")),
        policy("research", plenty, subject=("Team", "research")),
        policy("chat-route", plenty, subject=("Route", "chat")),
        policy("everyone", plenty),
    )
    for _ in range(2):
        response = chat(gateway)
        assert response.status_code == 200, response.text
    error = assert_error(chat(gateway), 429, "budget_exceeded")
    assert "default/alice-key" in error["message"], error

    for name in ("other-team", "other-user"):
        await_used(gateway, name, 0)
    for name in ("alice-key", "alice", "research", "chat-route", "everyone"):
        await_used(gateway, name, 2)  # the refused request counted nowhere
    assert mock.stats()["chat_requests"] == 2


def test_alert_thresholds_fire_once_per_window(launcher, mock):
    """Thresholds 50, 80, 100 and 150% of a soft 4-request limit each fire once when reached,
    however many requests follow."""
    gateway = budgeted(launcher, mock, policy("alerts", limit("Month", requests=4), enforcement="Soft",
                                              alertThresholds=[50, 80, 100, 150]))

    def alerts() -> dict[int, float]:
        metrics = gateway.metrics()
        return {t: metrics.value("tollgate_budget_alerts_total", policy="default/alerts", threshold=str(t))
                for t in (50, 80, 100, 150)}

    for _ in range(2):
        assert chat(gateway).status_code == 200
    assert alerts() == {50: 1, 80: 0, 100: 0, 150: 0}
    for _ in range(14):
        assert chat(gateway).status_code == 200
    assert alerts() == {50: 1, 80: 1, 100: 1, 150: 1}


def test_spend_survives_a_reload(launcher, mock):
    """A reload that changes something else (a new alias) keeps what was spent, and requests
    through the new alias count on the same budget."""
    budget = policy("kept", limit("Month", usd="1.00"), limit("Day", tokens=100_000))
    gateway = budgeted(launcher, mock, budget)
    for _ in range(3):
        assert chat(gateway).status_code == 200
    per_request = mock_prompt_tokens(hello()) + 5
    await_used(gateway, "kept", 3 * per_request, index=1)
    spent_usd = used(gateway, "kept")
    assert spent_usd == Decimal(3 * nano_usd(mock_prompt_tokens(hello()), 5)) / NANOS_PER_USD

    gateway.reload(with_policies(gateway, (budget,), aliases=("budget-alias",)))
    assert used(gateway, "kept") == spent_usd
    assert used(gateway, "kept", index=1) == 3 * per_request

    body = compact({"model": "budget-alias", "messages": hello()}).encode()
    assert chat(gateway, body).status_code == 200
    await_used(gateway, "kept", 4 * per_request, index=1)


# --- the store going away ----------------------------------------------------------------------

class PrivateRedis:
    """A redis-server of one test, on its own port, that the test may kill and restart."""

    def __init__(self, launcher: Launcher):
        self.launcher, self.port = launcher, free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}"
        self.process = None

    def start(self) -> None:
        argv = ["/usr/bin/redis-server", "--port", str(self.port), "--bind", LOOPBACK,
                "--save", "", "--appendonly", "no"]
        self.process = self.launcher.spawn("redis-server", argv)
        wait_for(self._pong, 10, f"redis-server on port {self.port}")

    def _pong(self) -> bool:
        assert self.process.popen.poll() is None, f"redis-server exited:\n{self.process.stderr()}"
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
        return False

    def kill(self) -> None:
        self.process.stop()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_an_unreachable_store_fails_open_or_closed_as_each_policy_says(launcher, mock):
    """Both gateways count in a private Redis. Once it is killed, the fail-open one serves
    requests uncounted (unmetered) and the fail-closed one refuses them with 503
    budget_store_unavailable, both quickly; once it is back on the same port, both count again."""
    redis = PrivateRedis(launcher)
    redis.start()
    args = redis_args(redis.url, f"e2e-{uuid.uuid4().hex}:", timeout="250ms")
    open_gw = budgeted(launcher, mock, policy("open", limit("Month", requests=1000), failureMode="Open"), args=args)
    closed_gw = budgeted(launcher, mock, policy("closed", limit("Month", requests=1000), failureMode="Closed"),
                         args=args)
    for gateway, name in ((open_gw, "open"), (closed_gw, "closed")):
        assert chat(gateway).status_code == 200
        await_used(gateway, name, 1)

    redis.kill()
    for _ in range(3):
        response, took = timed(lambda: chat(open_gw))
        assert response.status_code == 200, response.text
        assert took < 2, f"a fail-open request took {took:.2f}s with the store down"
        response, took = timed(lambda: chat(closed_gw))
        assert_error(response, 503, "budget_store_unavailable")
        assert response.headers["retry-after"] == "1"
        assert took < 2, f"a fail-closed request took {took:.2f}s with the store down"
    assert outcomes(open_gw, "open", "unmetered") == 3
    assert outcomes(closed_gw, "closed", "unmetered") == 0
    for gateway in (open_gw, closed_gw):
        assert gateway.metric("tollgate_budget_store_errors_total", operation="reserve") >= 3

    redis.start()  # empty: it kept nothing

    def counted_again(gateway: Gateway, name: str) -> bool:
        unmetered = outcomes(gateway, name, "unmetered")
        return chat(gateway).status_code == 200 and outcomes(gateway, name, "unmetered") == unmetered

    for gateway, name in ((open_gw, "open"), (closed_gw, "closed")):
        wait_for(lambda: counted_again(gateway, name), 15, f"{name} to count again", interval=0.2)
        unmetered = outcomes(gateway, name, "unmetered")
        for _ in range(3):
            assert chat(gateway).status_code == 200
        # The new Redis holds the requests since it came back (settled in the background).
        wait_for(lambda: used(gateway, name) >= 4, 5, f"{name} to show what it counted again")
        assert outcomes(gateway, name, "unmetered") == unmetered
