"""Load balancing among healthy backends, with the real binaries over loopback: weights split
traffic as configured, and the latency-aware balancer sends most requests to the faster
provider and follows it when the providers' speeds swap."""

from __future__ import annotations

import time

from conftest import backend
from traffic import Traffic


def chat_requests(mock) -> int:
    return mock.stats()["chat_requests"]


def test_weights_split_traffic(launcher):
    heavy, light = launcher.mock(), launcher.mock()
    gateway = launcher.gateway(backends=(backend(heavy, weight=80), backend(light, weight=20)))
    with Traffic(gateway, 16) as traffic:
        results = traffic.run(5_000)

    assert {r.status for r in results} == {200}
    counts = chat_requests(heavy), chat_requests(light)
    assert sum(counts) == 5_000, counts
    share = 100 * counts[0] / 5_000
    assert 77 <= share <= 83, f"80/20 configured, {share:.1f}/{100 - share:.1f} served {counts}"


FAST_MS, SLOW_MS = 20, 100


def test_latency_aware_prefers_the_faster_provider_and_follows_a_swap(launcher):
    first, second = launcher.mock(), launcher.mock()
    first.behave(delay_ms=FAST_MS)
    second.behave(delay_ms=SLOW_MS)
    gateway = launcher.gateway(backends=(backend(first), backend(second)), rule={"loadBalancer": "LatencyAware"})

    def counts() -> tuple[int, int]:
        return chat_requests(first), chat_requests(second)

    with Traffic(gateway, 8) as traffic, traffic.flowing() as results:
        time.sleep(3.0)
        before_swap = counts()
        share = before_swap[0] / sum(before_swap)
        assert share >= 0.80, f"the fast one got {share:.0%} of {sum(before_swap)} requests {before_swap}"

        first.behave(delay_ms=SLOW_MS)
        second.behave(delay_ms=FAST_MS)
        swapped = time.monotonic()
        # 1 s windows of new requests, until two in a row mostly went to the newly fast one.
        windows, mark = [], before_swap
        while time.monotonic() < swapped + 6.0:
            time.sleep(max(0.0, swapped + len(windows) + 1 - time.monotonic()))
            now = counts()
            windows.append((now[0] - mark[0], now[1] - mark[1]))
            mark = now
            if len(windows) >= 2 and all(w[1] > w[0] for w in windows[-2:]):
                break
        assert len(windows) >= 2 and all(w[1] > w[0] for w in windows[-2:]), (
            f"(old fast, new fast) requests per second after the swap: {windows}")
    assert {r.status for r in results} == {200}
