"""The admin server: health, readiness, the configuration in use (secrets redacted) and
Prometheus metrics."""

from conftest import ALICE_KEY, GATEWAY, MODEL, ROUTE_LABELS, UPSTREAM_KEY, Metrics, hello, wait_for


def test_health_and_readiness(mock, gateway):
    gw = gateway(mock)
    for path, body in [("/healthz", "ok"), ("/readyz", "ready")]:
        response = gw.admin_get(path)
        assert response.status_code == 200, path
        assert response.text.strip() == body
    assert gw.admin_get("/nothing-here").status_code == 404


def test_config_shows_the_version_and_no_secret(mock, gateway):
    gw = gateway(mock, aliases=("fast",))
    response = gw.admin_get("/config")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    (entry,) = response.json()["gateways"]
    assert entry["gateway"] == GATEWAY
    assert entry["version"] >= 1
    assert [listener["port"] for listener in entry["config"]["listeners"]] == [gw.port]
    assert "<redacted>" in response.text
    for secret in (UPSTREAM_KEY, ALICE_KEY):
        assert secret not in response.text


def test_metrics_parse_and_count_requests(mock, gateway):
    gw = gateway(mock)
    gw.client().chat.completions.create(model=MODEL, messages=hello())
    # A request is recorded when its response has ended, which can be just after the client saw it.
    wait_for(lambda: gw.metric("tollgate_requests_total", **ROUTE_LABELS) >= 1, 3, "the request recorded")
    response = gw.admin_get("/metrics")
    assert response.status_code == 200
    assert response.text.rstrip().splitlines()[-1] == "# EOF"
    metrics = Metrics(response.text)  # fails on any line that is not a comment or a sample
    assert {name for name, _, _ in metrics.samples} >= {
        "tollgate_requests_total",
        "tollgate_tokens_total",
        "tollgate_config_version",
        "tollgate_request_duration_seconds_count",
    }
    assert metrics.value("tollgate_requests_total", status="200", outcome="ok", **ROUTE_LABELS) == 1
    assert metrics.value("tollgate_tokens_total", type="output", **ROUTE_LABELS) == 5
    assert metrics.value("tollgate_config_version", gateway=GATEWAY) == gw.version()
