"""Volume for the failover and balancing tests: chat requests sent from a pool of threads, each
thread with its own keep-alive httpx client of the gateway, in batches (run), paced over a
time (run(over_s=...)), or continuously until stopped (flowing)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, NamedTuple

import httpx

from conftest import ALICE_KEY, MODEL, Gateway, hello

CHAT = "/v1/chat/completions"
CHAT_BODY = json.dumps({"model": MODEL, "messages": hello()}).encode()
HEADERS = {"Authorization": f"Bearer {ALICE_KEY}", "Content-Type": "application/json"}


class Result(NamedTuple):
    status: int
    seconds: float
    body: str


class Traffic:
    """`threads` threads sending chat requests to `gateway`; use it as a context manager."""

    def __init__(self, gateway: Gateway, threads: int = 16):
        self.gateway, self.threads = gateway, threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="traffic")
        self.local = threading.local()
        self.clients: list[httpx.Client] = []
        self.lock = threading.Lock()

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *exc_info) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for client in self.clients:
            client.close()

    def send(self) -> Result:
        """One chat request on the calling thread's client."""
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.gateway.http(headers=HEADERS)
            with self.lock:
                self.clients.append(client)
        started = time.monotonic()
        response = client.post(CHAT, content=CHAT_BODY)
        return Result(response.status_code, time.monotonic() - started, response.text)

    def run(self, n: int, over_s: float | None = None) -> list[Result]:
        """Sends `n` requests, as fast as the threads go or, with `over_s`, request i no
        earlier than i * over_s / n seconds after the start; returns their results in order."""
        start = time.monotonic()

        def one(i: int) -> Result:
            if over_s is not None:
                time.sleep(max(0.0, start + i * over_s / n - time.monotonic()))
            return self.send()

        return list(self.pool.map(one, range(n)))

    @contextlib.contextmanager
    def flowing(self) -> Iterator[list[Result]]:
        """Every thread sends requests back to back while the block runs; yields the list
        their results are appended to (complete once the block has exited)."""
        results: list[Result] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                results.append(self.send())

        loops = [self.pool.submit(loop) for _ in range(self.threads)]
        try:
            yield results
        finally:
            stop.set()
            for future in loops:
                future.result(timeout=15)
