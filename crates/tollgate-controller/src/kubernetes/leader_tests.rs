//! The decision table, and the election against a scripted API server.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::kubernetes::mock::{self, ApiServer};
use crate::status::tests::now;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/tollgate/leases/tollgate-controller";
const NOW: &str = "2023-11-14T22:13:20.000000Z";

#[test]
fn decision_table() {
    let lease = |holder: Option<&'static str>, unchanged_for: u64| {
        Some(Observed {
            holder,
            duration: Duration::from_secs(15),
            unchanged_for: Duration::from_secs(unchanged_for),
        })
    };
    let cases = [
        (None, Action::Create),
        (lease(Some("me"), 0), Action::Renew),
        (lease(Some("me"), 60), Action::Renew),
        (lease(None, 0), Action::TakeOver),
        (lease(Some(""), 0), Action::TakeOver),
        (lease(Some("other"), 0), Action::Follow),
        (lease(Some("other"), 14), Action::Follow),
        (lease(Some("other"), 15), Action::TakeOver),
        (lease(Some("other"), 60), Action::TakeOver),
    ];
    for (observed, expected) in cases {
        assert_eq!(decide(observed, "me"), expected, "{observed:?}");
    }
}

/// An elector for replica `me`, running until the returned token is cancelled.
fn start() -> (
    ApiServer,
    watch::Receiver<bool>,
    CancellationToken,
    JoinHandle<()>,
) {
    let (client, server) = mock::client();
    let (leading, is_leading) = watch::channel(false);
    let elector = Elector::new(
        Api::namespaced(client, "tollgate"),
        LeaderSettings {
            name: "tollgate-controller".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            retry: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        },
        Arc::new(now),
        leading,
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(elector.run(stop.clone()));
    (server, is_leading, stop, task)
}

/// A Lease as the API server returns it.
fn lease(holder: Option<&str>, version: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "tollgate-controller", "namespace": "tollgate", "resourceVersion": version},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2023-11-14T22:00:00.000000Z",
            "renewTime": "2023-11-14T22:00:00.000000Z",
            "leaseTransitions": transitions,
        },
    })
}

/// Lets the elector act on what it was just told.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test(start_paused = true)]
async fn creates_a_missing_lease_renews_it_and_releases_it_on_shutdown() {
    let (mut server, is_leading, stop, task) = start();
    let get = server.answer(404, mock::not_found()).await;
    assert_eq!((get.method.as_str(), get.uri.as_str()), ("GET", LEASE));

    let created = server.answer(201, lease(Some("me"), "1", 0)).await;
    assert_eq!(created.method, "POST");
    assert_eq!(
        created.uri,
        "/apis/coordination.k8s.io/v1/namespaces/tollgate/leases?"
    );
    assert_eq!(
        created.body,
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "tollgate-controller"},
            "spec": {
                "holderIdentity": "me",
                "leaseDurationSeconds": 15,
                "acquireTime": NOW,
                "renewTime": NOW,
                "leaseTransitions": 0,
            },
        })
    );
    settle().await;
    assert!(*is_leading.borrow());

    // The leader renews from what it wrote, without reading first.
    let renewed = server.answer(200, lease(Some("me"), "2", 0)).await;
    assert_eq!(
        (renewed.method.as_str(), renewed.uri.as_str()),
        ("PUT", &*format!("{LEASE}?"))
    );
    assert_eq!(renewed.body["metadata"]["resourceVersion"], "1");
    assert_eq!(renewed.body["spec"]["holderIdentity"], "me");
    assert_eq!(renewed.body["spec"]["renewTime"], NOW);

    stop.cancel();
    let released = server.answer(200, lease(None, "3", 0)).await;
    assert_eq!(released.method, "PUT");
    assert_eq!(released.body["metadata"]["resourceVersion"], "2");
    assert_eq!(released.body["spec"].get("holderIdentity"), None);
    assert_eq!(released.body["spec"]["leaseDurationSeconds"], 1);
    task.await.unwrap();
    assert!(!*is_leading.borrow());
}

#[tokio::test(start_paused = true)]
async fn a_standby_takes_over_a_lease_nobody_renews_within_its_duration() {
    let (mut server, is_leading, stop, task) = start();
    let started = tokio::time::Instant::now();
    let mut reads = 0;
    let takeover = loop {
        let request = server.answer(200, lease(Some("other"), "7", 3)).await;
        if request.method == "PUT" {
            break request;
        }
        assert_eq!(request.method, "GET");
        reads += 1;
        settle().await;
        assert!(
            !*is_leading.borrow(),
            "a follower while the holder may be alive"
        );
    };
    assert_eq!(
        reads, 9,
        "looked every 2 s, and took over once unchanged for 15 s"
    );
    assert!(started.elapsed() <= Duration::from_secs(17));
    assert_eq!(takeover.body["metadata"]["resourceVersion"], "7");
    assert_eq!(takeover.body["spec"]["holderIdentity"], "me");
    assert_eq!(takeover.body["spec"]["acquireTime"], NOW);
    assert_eq!(takeover.body["spec"]["leaseTransitions"], 4);
    settle().await;
    assert!(*is_leading.borrow());
    drop(server);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_over_at_once() {
    let (mut server, is_leading, stop, task) = start();
    server.answer(200, lease(None, "9", 1)).await;
    let takeover = server.answer(200, lease(Some("me"), "10", 2)).await;
    assert_eq!(takeover.method, "PUT");
    assert_eq!(takeover.body["spec"]["leaseTransitions"], 2);
    settle().await;
    assert!(*is_leading.borrow());
    drop(server);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_renewal_means_another_replica_won() {
    let (mut server, is_leading, stop, task) = start();
    server.answer(404, mock::not_found()).await;
    server.answer(201, lease(Some("me"), "1", 0)).await;
    settle().await;
    assert!(*is_leading.borrow());

    let renewal = server.answer(409, mock::conflict()).await;
    assert_eq!(renewal.method, "PUT");
    settle().await;
    assert!(!*is_leading.borrow(), "steps down at once");

    let read = server.answer(200, lease(Some("other"), "5", 1)).await;
    assert_eq!(read.method, "GET", "reads the Lease afresh");
    settle().await;
    assert!(!*is_leading.borrow());

    stop.cancel();
    server.expect_silence().await;
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_before_the_lease_expires() {
    let (mut server, is_leading, stop, task) = start();
    server.answer(404, mock::not_found()).await;
    server.answer(201, lease(Some("me"), "1", 0)).await;
    let acquired = tokio::time::Instant::now();
    loop {
        server
            .answer(500, mock::failure(500, "InternalError"))
            .await;
        settle().await;
        if !*is_leading.borrow() {
            break;
        }
    }
    let led_for = acquired.elapsed();
    assert!(led_for >= Duration::from_secs(10), "{led_for:?}");
    assert!(led_for < Duration::from_secs(15), "{led_for:?}");
    stop.cancel();
    server.expect_silence().await;
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_requests_hang_steps_down_before_the_lease_expires() {
    let (mut server, mut is_leading, stop, task) = start();
    server.answer(404, mock::not_found()).await;
    server.answer(201, lease(Some("me"), "1", 0)).await;
    let acquired = tokio::time::Instant::now();
    is_leading.changed().await.unwrap();
    assert!(*is_leading.borrow_and_update());
    // The API server never answers again.
    is_leading.changed().await.unwrap();
    assert!(!*is_leading.borrow());
    let led_for = acquired.elapsed();
    assert!(led_for >= Duration::from_secs(10), "{led_for:?}");
    assert!(led_for < Duration::from_secs(15), "{led_for:?}");
    drop(server);
    stop.cancel();
    task.await.unwrap();
}
