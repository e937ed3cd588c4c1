"""The image's profile-guided build trains on bench/train.py's mix (bench/pgo.sh), which fails
the image build when any of its requests fails: each kind of request in that mix is sent once
here, through the benchmark's own configuration and stack (without nginx), so a change that
breaks the training breaks this test first."""

from __future__ import annotations

import http.client
import sys

import pytest

from conftest import REPO_ROOT, binary

sys.path.insert(0, str(REPO_ROOT / "bench"))
import harness  # noqa: E402
import train  # noqa: E402


@pytest.fixture(scope="module")
def stack():
    stack = harness.Stack(2, tollgate=binary("tollgate"), mock=binary("tollgate-mock"), reference=False)
    try:
        train.add_providers(stack)
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize("what, body, path", [(what, body, path) for what, body, path, _ in train.MIX],
                         ids=[f"{what} {'max' if rate is None else rate}" for what, _, _, rate in train.MIX])
def test_every_training_request_is_served(stack, what, body, path):
    conn = http.client.HTTPConnection("127.0.0.1", stack.tollgate_port, timeout=10)
    try:
        conn.request("POST", path, body, {"Authorization": f"Bearer {harness.KEY}",
                                           "Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    assert response.status == 200, f"{what}: {text}"
    if "stream" in what:
        assert response.getheader("content-type", "").startswith("text/event-stream"), what
        assert text.count("data:") > 1, text
    else:
        assert text.startswith("{"), text
