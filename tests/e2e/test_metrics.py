"""Metrics scraped from the admin port and read with Prometheus's own text parser
(`prometheus_client.openmetrics.parser`: the admin port serves OpenMetrics text), checked against the traffic sent: request counts, token usage
histograms, time to first token and per output token for streams, spend by team and model."""
from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import MODEL, Launcher, wait_for
from otlp import start_collector

WHOLE, STREAMED = 3, 2


def families(gateway) -> dict:
    text = gateway.admin_get("/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, name: str, **labels: str) -> list:
    return [s for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(family, name: str, **labels: str) -> float:
    return sum(s.value for s in samples(family, name, **labels))


@pytest.fixture
def collector():
    collector, stop = start_collector()
    yield collector
    stop()


def test_metrics_match_the_traffic(launcher: Launcher, collector, tmp_path: Path) -> None:
    mock = launcher.mock("--chunk-interval-ms", "5")
    gateway = launcher.gateway(mock, args=("--audit-log", str(tmp_path / "audit.jsonl"),
                                           "--otlp-endpoint", collector.grpc_url))
    client = gateway.client()
    prompt = completion = 0
    for _ in range(WHOLE):
        usage = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}]).usage
        prompt, completion = prompt + usage.prompt_tokens, completion + usage.completion_tokens
    for _ in range(STREAMED):
        chunks = list(client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True,
            stream_options={"include_usage": True}))
        prompt, completion = prompt + chunks[-1].usage.prompt_tokens, completion + chunks[-1].usage.completion_tokens

    metrics = families(gateway)
    route = {"route": "default/chat", "model": MODEL, "provider": "default/openai"}
    requests = metrics["tollgate_requests"]
    assert value(requests, "tollgate_requests_total", status="200", outcome="ok", **route) == WHOLE + STREAMED

    usage = metrics["gen_ai_client_token_usage"]
    genai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": MODEL}
    assert value(usage, "gen_ai_client_token_usage_count", gen_ai_token_type="input", **genai) == WHOLE + STREAMED
    assert value(usage, "gen_ai_client_token_usage_sum", gen_ai_token_type="input", **genai) == prompt
    assert value(usage, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **genai) == completion
    assert value(metrics["tollgate_tokens"], "tollgate_tokens_total", type="output", **route) == completion

    ttft = metrics["tollgate_time_to_first_token_seconds"]
    assert value(ttft, "tollgate_time_to_first_token_seconds_count", **route) == STREAMED
    assert 0 < value(ttft, "tollgate_time_to_first_token_seconds_sum", **route) < 5
    tpot = metrics["tollgate_time_per_output_token_seconds"]
    assert value(tpot, "tollgate_time_per_output_token_seconds_count", **route) == STREAMED
    # The mock waits 5 ms between chunks.
    assert value(tpot, "tollgate_time_per_output_token_seconds_sum", **route) / STREAMED >= 0.004

    cost = value(metrics["tollgate_cost_usd"], "tollgate_cost_usd_total", team="research", model=MODEL)
    assert cost == pytest.approx((prompt * 0.15 + completion * 0.60) / 1e6, rel=1e-9)

    assert value(metrics["tollgate_audit_records_written"], "tollgate_audit_records_written_total") == \
        WHOLE + STREAMED
    assert value(metrics["tollgate_trace_spans_dropped"], "tollgate_trace_spans_dropped_total") == 0

    # Labels come from configuration, never from the traffic: no request ids, keys or prompts.
    for family in metrics.values():
        for sample in family.samples:
            assert set(sample.labels) <= {
                "route", "model", "provider", "status", "outcome", "type", "rule", "gateway", "result",
                "policy", "threshold", "operation", "team", "le", "gen_ai_operation_name",
                "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"}, sample



def test_budget_gauges_show_what_each_limit_used_and_has_left(launcher: Launcher) -> None:
    from test_budgets import limit, policy, with_policies

    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--budget-gauge-interval", "100ms"))
    team = policy("team-budget", limit("Month", usd="10"), limit("Minute", requests=100), subject=("Team", "research"))
    gateway.reload(with_policies(gateway, (team,)))
    usage = gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}]).usage
    spent = (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1e6

    def gauges():
        metrics = families(gateway)
        if "tollgate_budget_used" not in metrics:
            return None
        used = value(metrics["tollgate_budget_used"], "tollgate_budget_used",
                     policy="default/team-budget", window="month", unit="usd")
        # While the request ran its worst case was reserved; once it ended, what it used.
        return (used, metrics) if used == pytest.approx(spent, rel=1e-6) else None

    used, metrics = wait_for(gauges, 10, "the budget gauges to show the settled spend")
    assert value(metrics["tollgate_budget_remaining"], "tollgate_budget_remaining",
                 policy="default/team-budget", window="month", unit="usd") == pytest.approx(10 - spent, rel=1e-9)
    assert value(metrics["tollgate_budget_used"], "tollgate_budget_used",
                 policy="default/team-budget", window="minute", unit="requests") == 1
    assert value(metrics["tollgate_budget_remaining"], "tollgate_budget_remaining",
                 policy="default/team-budget", window="minute", unit="requests") == 99
