//! Reconciles against a scripted API server: the exact status writes, none when nothing
//! changed, bounded retries.

use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tollgate_config::{GatewayConfig, ObjectRef};

use super::step;
use crate::kubernetes::ControllerHandle;
use crate::kubernetes::mock::{self, ApiServer};
use crate::kubernetes::writer::StatusWriter;
use crate::status::StatusPatch;
use crate::status::tests::{SCENARIO, condition, now, resources, with_patches};
use crate::{Programmed, Publisher};

/// A publisher whose proxies acknowledged version 1 of everything.
#[derive(Default)]
struct Acknowledging {
    published: Mutex<Vec<Vec<ObjectRef>>>,
}

impl Publisher for Acknowledging {
    fn publish(&self, configs: &BTreeMap<ObjectRef, GatewayConfig>) {
        self.published
            .lock()
            .push(configs.keys().cloned().collect());
    }

    fn programmed(&self, _: &ObjectRef) -> Programmed {
        Programmed::Programmed { version: 1 }
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        tokio::sync::watch::channel(0).1
    }
}

/// The scenario with an entry of another controller in the AIRoute's status.
fn scenario_with_foreign_parent() -> String {
    let foreign = json!({
        "parentRef": {"name": "istio-gateway"},
        "controllerName": "istio.io/gateway-controller",
        "conditions": [condition("Accepted", "True", "Accepted", "istio's own words", 4)],
    });
    format!("{SCENARIO}status: {{parents: [{foreign}]}}\n")
}

/// Writes `patches` while the API server answers each with `status`; returns what it received.
async fn write(
    writer: &mut StatusWriter,
    server: &mut ApiServer,
    patches: Vec<StatusPatch>,
    status: u16,
) -> Vec<mock::Received> {
    let count = patches.len();
    let serve = async {
        let mut received = Vec::new();
        for _ in 0..count {
            received.push(
                server
                    .answer(status, json!({"metadata": {"name": "x"}}))
                    .await,
            );
        }
        received
    };
    let (_, received) = tokio::join!(writer.write(patches), serve);
    received
}

#[tokio::test(start_paused = true)]
async fn status_writes_are_exact_merge_patches_and_happen_once() {
    let (client, mut server) = mock::client();
    let mut writer = StatusWriter::new(client, ControllerHandle::default());
    let publisher = Acknowledging::default();
    let manifests = scenario_with_foreign_parent();
    let patches = step(&resources(&manifests), &[], &publisher, true, now());
    assert_eq!(
        publisher.published.lock()[0],
        [ObjectRef::new("default", "ai-gateway")]
    );

    let received = write(&mut writer, &mut server, patches.clone(), 200).await;
    let requests: Vec<(String, String)> = received
        .iter()
        .map(|r| (r.method.clone(), r.uri.clone()))
        .collect();
    let status = |path: &str| {
        (
            "PATCH".to_string(),
            format!("{path}/status?&fieldManager=tollgate-controller"),
        )
    };
    assert_eq!(
        requests,
        [
            status("/apis/gateway.networking.k8s.io/v1/gatewayclasses/tollgate"),
            status("/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/ai-gateway"),
            status("/apis/tollgate.dev/v1alpha1/namespaces/default/airoutes/chat"),
            status("/apis/tollgate.dev/v1alpha1/namespaces/default/modelproviders/openai"),
            status("/apis/tollgate.dev/v1alpha1/namespaces/default/modelproviders/anthropic"),
        ]
    );
    assert!(
        received
            .iter()
            .all(|r| r.content_type.as_deref() == Some("application/merge-patch+json"))
    );

    for (request, patch) in received.iter().zip(&patches) {
        assert_eq!(
            request.body, patch.patch,
            "the body is the computed patch, as is"
        );
    }
    let route = &received[2].body;
    assert_eq!(route["metadata"], json!({"resourceVersion": "41"}));
    let parents = route["status"]["parents"].as_array().unwrap();
    let owners: Vec<&Value> = parents.iter().map(|p| &p["controllerName"]).collect();
    assert_eq!(
        owners,
        [
            "istio.io/gateway-controller",
            "tollgate.dev/gateway-controller",
            "tollgate.dev/gateway-controller"
        ],
        "the other controller's entry survives, first as it was"
    );
    assert_eq!(parents[0]["conditions"][0]["message"], "istio's own words");
    assert_eq!(
        parents[2]["conditions"][0]["reason"], "NoMatchingParent",
        "the bad parentRef"
    );

    let gateway = &received[1].body["status"];
    let admin = &gateway["listeners"][1];
    assert_eq!(admin["name"], "admin");
    assert_eq!(admin["conditions"][1]["type"], "Conflicted");
    assert_eq!(admin["conditions"][1]["status"], "True");
    assert_eq!(gateway["conditions"][1]["reason"], "Programmed");

    assert_eq!(
        received[4].body,
        json!({"status": {
            "observedGeneration": 3,
            "conditions": [condition("Accepted", "False", "SecretNotFound", "spec.auth.secretRef: Secret default/missing does not exist", 3)],
        }})
    );

    // The watch has not delivered the written AIRoute yet: the same patch is not written again.
    let route_only: Vec<StatusPatch> = patches
        .into_iter()
        .filter(|p| p.target.name == "chat")
        .collect();
    writer.write(route_only).await;
    server.expect_silence().await;

    // Once it has, nothing differs: nothing is written.
    let written = with_patches(
        &manifests,
        &step(&resources(&manifests), &[], &publisher, true, now()),
    );
    let later = now() + Duration::from_secs(60);
    let again = step(&written, &[], &publisher, true, later);
    assert_eq!(again, []);
    writer.write(again).await;
    server.expect_silence().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_write_is_retried_with_backoff() {
    let (client, mut server) = mock::client();
    let handle = ControllerHandle::default();
    let mut writer = StatusWriter::new(client, handle.clone());
    let patches: Vec<StatusPatch> = step(
        &resources(SCENARIO),
        &[],
        &Acknowledging::default(),
        true,
        now(),
    )
    .into_iter()
    .filter(|p| p.target.name == "anthropic")
    .collect();

    let start = tokio::time::Instant::now();
    let serve = server.answer(500, mock::failure(500, "InternalError"));
    let (retry_at, _) = tokio::join!(writer.write(patches.clone()), serve);
    assert_eq!(retry_at, Some(start + Duration::from_secs(1)));
    assert_eq!(handle.counters().status_write_failures(), 1);

    // Not before the backoff has passed...
    assert_eq!(writer.write(patches.clone()).await, retry_at);
    server.expect_silence().await;

    // ...then again, with twice the delay on a second failure.
    let serve = server.answer(500, mock::failure(500, "InternalError"));
    let (retry_at, _) = tokio::join!(writer.write(patches.clone()), serve);
    assert_eq!(
        retry_at,
        Some(tokio::time::Instant::now() + Duration::from_secs(2))
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = write(&mut writer, &mut server, patches, 200).await;
    assert_eq!(received.len(), 1);
    assert_eq!(handle.counters().status_writes(), 1);
}

#[tokio::test]
async fn a_standby_publishes_but_writes_no_status() {
    let publisher = Acknowledging::default();
    let patches = step(&resources(SCENARIO), &[], &publisher, false, now());
    assert_eq!(patches, []);
    assert_eq!(publisher.published.lock().len(), 1);
}
