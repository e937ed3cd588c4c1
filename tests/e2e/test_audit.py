"""The audit log: a record for every request whatever its outcome, in a hash-chained file
that `tollgate audit verify` checks — and that it fails, at the right line, after an edit,
a deletion or a reordering; rotation keeps one chain; shutdown writes every record."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import openai
import pytest

from conftest import ALICE_KEY, MODEL, Launcher, binary, jsonl_records, wait_for
from otlp import start_collector


def verify(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary("tollgate")), "audit", "verify", *map(str, files)],
                          capture_output=True, text=True, timeout=30)


def test_every_request_is_recorded_and_the_chain_verifies(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--audit-log", str(log)))
    answer = gateway.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], max_tokens=20)
    request_id = answer.headers["x-request-id"]
    list(gateway.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True))
    assert gateway.post("/v1/chat/completions", key="tg-nobody",
                        json={"model": MODEL, "messages": []}).status_code == 401
    with pytest.raises(openai.NotFoundError):
        gateway.client().chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])

    written = wait_for(lambda: len(r := jsonl_records(log)) == 4 and r, 10, "four audit records")
    ok, streamed, unauthenticated, unrouted = written
    assert ok["request_id"] == request_id and ok["event"] == "request"
    assert (ok["status"], ok["outcome"], ok["method"], ok["path"]) == (200, "ok", "POST", "/v1/chat/completions")
    assert (ok["key_id"], ok["user"], ok["team"]) == ("default/alice-key", "alice", "research")
    assert (ok["route"], ok["requested_model"], ok["served_model"], ok["provider"]) == \
        ("default/chat", MODEL, MODEL, "default/openai")
    assert ok["policies"] == {"authorization": "allowed", "guardrails": "none", "budget": "none"}
    usage = answer.parse().usage
    assert (ok["input_tokens"], ok["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert float(ok["cost_usd"]) > 0 and ok["latency_ms"] > 0 and ok["time_to_first_byte_ms"] > 0
    assert ok["attempts"] == 1 and ok["time"].endswith("Z") and ok["finish_reason"] == "stop"
    assert streamed["output_tokens"] > 0 and streamed["status"] == 200 and streamed["finish_reason"] == "stop"
    assert (unauthenticated["status"], unauthenticated["outcome"]) == (401, "invalid_api_key")
    assert unauthenticated["key_id"] is None
    assert unauthenticated["policies"]["authorization"] == "not_reached"
    assert (unrouted["status"], unrouted["policies"]["authorization"]) == (404, "no_route")
    assert [r["seq"] for r in written] == [0, 1, 2, 3] and written[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(written, written[1:]))
    assert gateway.metric("tollgate_audit_records_written_total") == 4
    assert gateway.metric("tollgate_audit_records_dropped_total") == 0

    checked = verify(log)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("ok: 4 records")

    lines = log.read_text().splitlines(keepends=True)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(lines[:2] + [lines[2].replace('"status":401', '"status":200')] + lines[3:]))
    broken = verify(edited)
    assert broken.returncode == 1 and f"{edited}:3:" in broken.stdout, broken.stdout

    deleted = tmp_path / "deleted.jsonl"
    deleted.write_text("".join(lines[:1] + lines[2:]))
    broken = verify(deleted)
    assert broken.returncode == 1 and f"{deleted}:2:" in broken.stdout, broken.stdout

    reordered = tmp_path / "reordered.jsonl"
    reordered.write_text("".join([lines[0], lines[2], lines[1], lines[3]]))
    broken = verify(reordered)
    assert broken.returncode == 1 and f"{reordered}:2:" in broken.stdout, broken.stdout


def test_rotation_keeps_one_chain_and_shutdown_writes_every_record(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--audit-log", str(log), "--audit-max-bytes", "2000",
                                           "--audit-max-files", "50"))
    client = gateway.client()
    for _ in range(20):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello"}])
    gateway.proc.popen.send_signal(signal.SIGTERM)
    assert gateway.proc.popen.wait(timeout=30) == 0
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert len(files) > 2, files
    checked = verify(log)  # the live file brings its rotated ones, oldest first
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("ok: 20 records"), checked.stdout


def test_a_captured_request_replays_against_the_mock(launcher: Launcher, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    mock = launcher.mock()
    gateway = launcher.gateway(mock, args=("--audit-log", str(log), "--audit-capture-bodies",
                                           "--audit-redact", r"card-\d{4}"))
    client = gateway.client()
    answer = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], max_tokens=30)
    request_id = answer.headers["x-request-id"]
    stream = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True)
    stream_id = stream.headers["x-request-id"]
    list(stream.parse())
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "my card-1234"}])

    written = wait_for(lambda: len(r := jsonl_records(log)) == 3 and r, 10, "three audit records")
    whole, streamed, secret = written
    capture = whole["capture"]
    assert "authorization" not in capture["request_headers"]
    assert capture["request_headers"]["content-type"] == "application/json"
    assert json.loads(capture["request_body"]["text"])["max_tokens"] == 30
    assert json.loads(capture["response_body"]["text"]) == json.loads(answer.text)
    assert not capture["request_body"]["truncated"] and not capture["response_body"]["truncated"]
    assert streamed["capture"]["response_body"]["text"].rstrip().endswith("data: [DONE]")
    assert "card-1234" not in json.dumps(secret) and "[REDACTED]" in secret["capture"]["request_body"]["text"]

    upstream_before = mock.requests()[0]["body"]
    env = {**os.environ, "TOLLGATE_API_KEY": ALICE_KEY}
    replay = subprocess.run([str(binary("tollgate")), "replay", request_id, "--audit-log", str(log),
                             "--url", gateway.url], capture_output=True, text=True, timeout=30, env=env)
    assert replay.returncode == 0, replay.stderr
    assert "POST /v1/chat/completions -> 200" in replay.stderr
    assert json.loads(replay.stdout)["choices"][0]["message"]["content"] == \
        answer.parse().choices[0].message.content
    assert mock.requests()[-1]["body"] == upstream_before, "the provider saw the same request again"

    replay = subprocess.run([str(binary("tollgate")), "replay", stream_id, "--audit-log", str(log),
                             "--url", gateway.url], capture_output=True, text=True, timeout=30, env=env)
    assert replay.returncode == 0 and replay.stdout.rstrip().endswith("data: [DONE]"), replay.stderr

    missing = subprocess.run([str(binary("tollgate")), "replay", "no-such-id", "--audit-log", str(log),
                              "--url", gateway.url], capture_output=True, text=True, timeout=30, env=env)
    assert missing.returncode == 1 and "no request no-such-id in the audit log" in missing.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_audit_records_also_go_out_as_otlp_logs(launcher: Launcher, tmp_path: Path, protocol: str) -> None:
    collector, stop = start_collector()
    try:
        log = tmp_path / "audit.jsonl"
        url = collector.grpc_url if protocol == "grpc" else collector.http_url
        gateway = launcher.gateway(launcher.mock(), args=(
            "--audit-log", str(log), "--audit-otlp", "--otlp-endpoint", url, "--otlp-protocol", protocol))
        answer = gateway.client().chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}])
        (record,) = collector.wait_for_logs(1)
        assert record.event_name == "tollgate.request" and record.service == "tollgate"
        assert record.attributes["tollgate.request_id"] == answer.headers["x-request-id"]
        body = json.loads(record.body)
        (written,) = wait_for(lambda: jsonl_records(log), 10, "the file record")
        assert body == {k: v for k, v in written.items() if k not in ("seq", "prev", "hash")}
    finally:
        stop()
