//! The push protocol over real TLS sockets on 127.0.0.1.

mod support;

use bytes::Bytes;
use std::time::Duration;
use support::*;
use tollgate_push::{ClientLimits, ServerLimits, SnapshotServer};

fn payload(text: &str) -> Bytes {
    Bytes::from(format!("{{\"config\":\"{text}\"}}"))
}

#[tokio::test]
async fn the_first_snapshot_then_each_update_and_acks_land_in_state() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("one")).unwrap();
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut client = Client::start(
        &running.url(),
        ca.client_tls(&ca),
        "proxy-a",
        client_limits(),
    );

    assert_eq!(client.next_applied().await, (1, payload("one")));
    server.publish(GATEWAY, 2, &payload("two")).unwrap();
    assert_eq!(client.next_applied().await, (2, payload("two")));
    wait_state(&server, |s| {
        s[GATEWAY].proxies["proxy-a"].acked_version == Some(2)
    })
    .await;
    client
        .wait_status(|s| s.connected && s.applied_version == Some(2))
        .await;
    let state = server.state();
    assert_eq!(state[GATEWAY].version, Some(2));
    assert!(state[GATEWAY].proxies["proxy-a"].connected);

    client.stop().await;
    wait_state(&server, |s| !s[GATEWAY].proxies["proxy-a"].connected).await;
    running.stop().await;
}

#[tokio::test]
async fn a_rejection_lands_in_state_until_a_newer_version_is_applied() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("good")).unwrap();
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut client = Client::start(
        &running.url(),
        ca.client_tls(&ca),
        "proxy-a",
        client_limits(),
    );
    client.next_applied().await;

    server.publish(GATEWAY, 2, &payload("bad")).unwrap();
    client.next_applied().await;
    wait_state(&server, |s| {
        s[GATEWAY].proxies["proxy-a"].rejected.is_some()
    })
    .await;
    let proxy = server.state()[GATEWAY].proxies["proxy-a"].clone();
    assert_eq!(proxy.acked_version, Some(1));
    let rejection = proxy.rejected.unwrap();
    assert_eq!(
        (rejection.version, rejection.error.as_str()),
        (2, "version 2 is bad")
    );
    assert_eq!(client.status.borrow().applied_version, Some(1));

    server.publish(GATEWAY, 3, &payload("fixed")).unwrap();
    wait_state(&server, |s| {
        s[GATEWAY].proxies["proxy-a"].acked_version == Some(3)
    })
    .await;
    assert_eq!(server.state()[GATEWAY].proxies["proxy-a"].rejected, None);
    running.stop().await;
}

#[tokio::test]
async fn clients_without_a_certificate_of_the_ca_are_refused() {
    let (ca, stranger) = (Ca::new(), Ca::new());
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("secret")).unwrap();
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut foreign = Client::start(
        &running.url(),
        stranger.client_tls(&ca),
        "foreign",
        client_limits(),
    );
    let mut anonymous = Client::start(
        &running.url(),
        anonymous_tls(&ca),
        "anonymous",
        client_limits(),
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(foreign.applied.try_recv().is_err());
    assert!(anonymous.applied.try_recv().is_err());
    assert!(!foreign.status.borrow().connected && !anonymous.status.borrow().connected);
    assert!(server.state()[GATEWAY].proxies.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn two_clients_receive_the_same_version() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut a = Client::start(&running.url(), ca.client_tls(&ca), "a", client_limits());
    let mut b = Client::start(&running.url(), ca.client_tls(&ca), "b", client_limits());
    wait_state(&server, |s| {
        s.get(GATEWAY).is_some_and(|g| g.proxies.len() == 2)
    })
    .await;

    server.publish(GATEWAY, 7, &payload("seven")).unwrap();
    assert_eq!(a.next_applied().await, (7, payload("seven")));
    assert_eq!(b.next_applied().await, (7, payload("seven")));
    wait_state(&server, |s| {
        s[GATEWAY]
            .proxies
            .values()
            .all(|p| p.acked_version == Some(7))
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_slow_client_gets_only_the_latest() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    let big = |version: u64| {
        Bytes::from(format!(
            "{{\"v\":{version},\"pad\":\"{}\"}}",
            "x".repeat(256 * 1024)
        ))
    };
    server.publish(GATEWAY, 1, &big(1)).unwrap();
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let (release, gate) = tokio::sync::oneshot::channel();
    let mut client = Client::start_gated(
        &running.url(),
        ca.client_tls(&ca),
        "slow",
        client_limits(),
        Some(gate),
    );
    wait_state(&server, |s| s[GATEWAY].proxies.contains_key("slow")).await;

    for version in 2..=60 {
        server.publish(GATEWAY, version, &big(version)).unwrap();
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.send(()).unwrap();
    let mut seen = Vec::new();
    loop {
        let (version, _) = client.next_applied().await;
        seen.push(version);
        if version == 60 {
            break;
        }
    }
    assert!(
        seen.len() < 30,
        "a slow client was sent every version: {seen:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_client_keeps_its_snapshot_and_reconnects_to_a_restarted_server() {
    let ca = Ca::new();
    let server_tls = ca.server_tls();
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("one")).unwrap();
    let running = Running::start(&server, server_tls.clone(), 0).await;
    let port = running.address.port();
    let mut client = Client::start(
        &running.url(),
        ca.client_tls(&ca),
        "proxy-a",
        client_limits(),
    );
    client.next_applied().await;

    running.stop().await;
    drop(server);
    client.wait_status(|s| !s.connected).await;
    assert_eq!(client.status.borrow().applied_version, Some(1));

    // A new server (a restarted controller) with the same snapshot: acknowledged, not
    // applied again; then a newer one is applied.
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("one")).unwrap();
    let running = Running::start(&server, server_tls, port).await;
    wait_state(&server, |s| {
        s[GATEWAY]
            .proxies
            .get("proxy-a")
            .is_some_and(|p| p.acked_version == Some(1))
    })
    .await;
    assert!(
        client.applied.try_recv().is_err(),
        "the same snapshot was applied twice"
    );
    server.publish(GATEWAY, 2, &payload("two")).unwrap();
    assert_eq!(client.next_applied().await, (2, payload("two")));
    running.stop().await;
}

/// Waits until the server holds `expected` as proxy-a's report.
async fn wait_report(server: &SnapshotServer, expected: &'static [u8]) {
    let mut changes = server.changes();
    let wait = async {
        while !server
            .reports()
            .iter()
            .any(|r| r.proxy == "proxy-a" && r.gateway == GATEWAY && r.report == expected)
        {
            changes.changed().await.unwrap();
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the report arrives");
}

#[tokio::test]
async fn the_latest_report_reaches_the_server_and_again_after_a_reconnect() {
    let ca = Ca::new();
    let server_tls = ca.server_tls();
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("one")).unwrap();
    let running = Running::start(&server, server_tls.clone(), 0).await;
    let port = running.address.port();
    let mut client = Client::start(
        &running.url(),
        ca.client_tls(&ca),
        "proxy-a",
        client_limits(),
    );
    client.next_applied().await;
    client.reporter.send(Bytes::from_static(br#"{"spent":1}"#));
    client.reporter.send(Bytes::from_static(br#"{"spent":2}"#));
    wait_report(&server, br#"{"spent":2}"#).await;
    let reports = server.reports();
    assert_eq!(reports.len(), 1, "one report per proxy: {reports:?}");
    assert!(reports[0].connected);
    assert!(
        server.state()[GATEWAY].proxies["proxy-a"]
            .reported_at
            .is_some()
    );

    // A restarted controller knows nothing: the proxy sends its latest report again.
    running.stop().await;
    drop(server);
    client.wait_status(|s| !s.connected).await;
    let server = SnapshotServer::new(server_limits());
    server.publish(GATEWAY, 1, &payload("one")).unwrap();
    let running = Running::start(&server, server_tls, port).await;
    wait_report(&server, br#"{"spent":2}"#).await;
    client.reporter.send(Bytes::from_static(br#"{"spent":3}"#));
    wait_report(&server, br#"{"spent":3}"#).await;
    running.stop().await;
}

#[tokio::test]
async fn unknown_gateways_wait_removed_ones_are_announced_and_silence_is_pinged() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut raw = Raw::connect(running.address, ca.client_tls(&ca)).await;
    let response = raw
        .request("GET", "/v1/gateways/default/gw/snapshots", Some("raw"), "")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let (mut body, mut buffer) = (response.into_body(), Vec::new());
    assert_eq!(
        read_line(&mut body, &mut buffer).await,
        r#"{"type":"ping"}"#
    );

    server
        .publish(GATEWAY, 4, &Bytes::from_static(b"{\"a\": 1}"))
        .unwrap();
    assert_eq!(
        read_line(&mut body, &mut buffer).await,
        r#"{"type":"snapshot","version":4,"payload":{"a": 1}}"#
    );
    server.remove(GATEWAY);
    assert_eq!(
        read_line(&mut body, &mut buffer).await,
        r#"{"type":"removed"}"#
    );
    assert_eq!(
        read_line(&mut body, &mut buffer).await,
        r#"{"type":"ping"}"#
    );
    running.stop().await;
}

#[tokio::test]
async fn pings_keep_an_idle_client_connected() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut client = Client::start(&running.url(), ca.client_tls(&ca), "idle", client_limits());
    client.wait_status(|s| s.connected).await;
    client.status.mark_unchanged();
    // Three idle timeouts without a snapshot: only pings keep the stream open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !client.status.has_changed().unwrap(),
        "the client reconnected"
    );

    // Without pings (the server's interval longer than the client's patience) it gives up.
    let quiet = SnapshotServer::new(ServerLimits {
        ping_interval: Duration::from_secs(60),
        ..server_limits()
    });
    let quiet_running = Running::start(&quiet, ca.server_tls(), 0).await;
    let mut impatient = Client::start(
        &quiet_running.url(),
        ca.client_tls(&ca),
        "impatient",
        client_limits(),
    );
    impatient.wait_status(|s| s.connected).await;
    impatient.wait_status(|s| !s.connected).await;
    running.stop().await;
    quiet_running.stop().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused() {
    let ca = Ca::new();
    let server = SnapshotServer::new(server_limits());
    server
        .publish(GATEWAY, 1, &payload(&"x".repeat(4096)))
        .unwrap();
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let limits = ClientLimits {
        max_message_bytes: 1024,
        ..client_limits()
    };
    let mut client = Client::start(&running.url(), ca.client_tls(&ca), "small", limits);
    wait_state(&server, |s| s[GATEWAY].proxies.contains_key("small")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(client.applied.try_recv().is_err());
    assert_eq!(server.state()[GATEWAY].proxies["small"].acked_version, None);
    running.stop().await;
}

#[tokio::test]
async fn bad_requests_and_too_many_subscribers_are_refused() {
    let ca = Ca::new();
    let server = SnapshotServer::new(ServerLimits {
        max_subscribers: 1,
        max_error_chars: 10,
        ..server_limits()
    });
    let running = Running::start(&server, ca.server_tls(), 0).await;
    let mut raw = Raw::connect(running.address, ca.client_tls(&ca)).await;
    let path = "/v1/gateways/default/gw/snapshots";
    assert_eq!(raw.request("GET", path, None, "").await.status(), 400);
    let first = raw.request("GET", path, Some("one"), "").await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        raw.request("GET", path, Some("two"), "").await.status(),
        503
    );
    assert_eq!(
        raw.request("GET", "/v1/other", None, "").await.status(),
        404
    );
    assert_eq!(raw.request("POST", path, None, "").await.status(), 405);

    let acks = "/v1/gateways/default/gw/acks";
    assert_eq!(raw.request("POST", acks, None, "{").await.status(), 400);
    let huge = vec![b' '; 65 * 1024];
    assert_eq!(raw.request("POST", acks, None, huge).await.status(), 413);
    let nack = r#"{"proxy":"one","version":3,"accepted":false,"error":"a long explanation"}"#;
    assert_eq!(raw.request("POST", acks, None, nack).await.status(), 204);
    let rejected = server.state()[GATEWAY].proxies["one"]
        .rejected
        .clone()
        .unwrap();
    assert_eq!(
        (rejected.version, rejected.error.as_str()),
        (3, "a long exp")
    );

    assert!(
        server
            .publish(GATEWAY, 1, &Bytes::from_static(b"{not json"))
            .is_err()
    );
    assert!(server.publish("no-namespace", 1, &payload("x")).is_err());
    drop(first);
    running.stop().await;
}
