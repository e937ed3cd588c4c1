"""Hot reload under load: manifests change (atomically and in place, validly and not) while
20 clients keep sending streamed and whole chat requests; not one request may fail."""

import itertools
import threading
import time

import openai
import pytest

from conftest import BAD_BACKEND, MARKER, MODEL, hello, mock_reply, new_marker

CLIENTS = 20
LOAD_SECONDS = 4.0


class Load:
    """CLIENTS threads sending chat requests (alternately streamed) until stopped."""

    def __init__(self, gateway, models):
        self.gateway = gateway
        self.models = models
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.succeeded = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, exc_type, *_):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        if exc_type is None:
            assert not any(t.is_alive() for t in self.threads), "a client thread is stuck"

    def client(self, index):
        with self.gateway.client() as client:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                self.attempt(client, index + n)

    def attempt(self, client, n):
        model = self.models[n % len(self.models)]
        streaming = (n // len(self.models)) % 2 == 0  # every model both streamed and not
        try:
            self.request(client, model, streaming)
            with self.lock:
                self.succeeded += 1
        except Exception as error:  # every failure is reported, none is fatal here
            with self.lock:
                self.failures.append(f"{model} stream={streaming}: {error!r}")

    @staticmethod
    def request(client, model, streaming):
        completions = client.chat.completions
        if not streaming:
            completion = completions.create(model=model, messages=hello())
            text, finish = completion.choices[0].message.content, completion.choices[0].finish_reason
            expected = mock_reply(5)
        else:
            # 4 chunks 20 ms apart: streams stay open across configuration swaps.
            headers = {"x-mock-chunks": "4", "x-mock-chunk-interval-ms": "20"}
            stream = completions.create(model=model, messages=hello(), stream=True, extra_headers=headers)
            with stream:
                chunks = list(stream)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            finish = chunks[-1].choices[0].finish_reason
            expected = mock_reply(4)
        if (text, finish) != (expected, "stop"):
            raise AssertionError(f"unexpected answer {text!r}, finish_reason {finish!r}")


def assert_serves(mock, gateway, model):
    marker = new_marker()
    completions = gateway.client().chat.completions
    completion = completions.create(model=model, messages=hello(), extra_headers={MARKER: marker})
    assert completion.choices[0].message.content == mock_reply(5)
    (received,) = mock.requests(marker)
    assert received["body"]["model"] == MODEL


def gpt_price(config):
    (entry,) = config["gateways"]
    (provider,) = entry["config"]["providers"]
    return provider["models"][MODEL]


def test_reloads_under_load_drop_no_request(mock, gateway):
    gw = gateway(mock, aliases=("fast",))
    v0 = gw.version()
    price_before = gpt_price(gw.config())
    assert price_before["outputPerMillion"] == "0.60"
    started = time.monotonic()

    with Load(gw, [MODEL, "fast"]) as load:
        time.sleep(0.3)

        # 1. Atomic write: a new alias appears.
        assert gw.reload(gw.manifest(aliases=("fast", "turbo"))) == v0 + 1
        assert_serves(mock, gw, "turbo")

        # 2. In-place rewrite: a price changes.
        assert gw.reload(gw.manifest(aliases=("fast", "turbo"), output_price="0.90"), atomic=False) == v0 + 2
        assert gpt_price(gw.config()) == {**price_before, "outputPerMillion": "0.90"}

        # 3. Atomic write of an invalid change: rejected, the last good config keeps serving.
        good_config = gw.config()["gateways"]
        gw.reload_rejected(
            gw.manifest(aliases=("fast", "turbo"), output_price="0.90", backend_provider="missing")
        )
        assert gw.config()["gateways"] == good_config
        assert gw.version() == v0 + 2
        assert_serves(mock, gw, "turbo")
        assert_serves(mock, gw, MODEL)
        log = gw.proc.stderr()
        assert any(all(word in line for word in BAD_BACKEND) for line in log.splitlines()), log[-3000:]

        # 4. A valid change again: the alias goes away.
        assert gw.reload(gw.manifest(aliases=("fast",), output_price="0.90")) == v0 + 3
        with pytest.raises(openai.NotFoundError) as raised:
            gw.client().chat.completions.create(model="turbo", messages=hello())
        assert raised.value.code == "model_not_found"

        time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))

    assert load.failures == [], f"{len(load.failures)} failed, e.g. {load.failures[:5]}"
    assert load.succeeded >= 50, f"only {load.succeeded} requests in {LOAD_SECONDS}s"
    assert gw.version() == v0 + 3
    metrics = gw.metrics()
    assert metrics.value("tollgate_config_version", gateway="default/ai-gateway") == v0 + 3
    assert metrics.value("tollgate_config_reloads_total", result="applied") >= 3
    assert metrics.value("tollgate_config_reloads_total", result="rejected") >= 1
    print(f"{load.succeeded} requests succeeded during reloads")
