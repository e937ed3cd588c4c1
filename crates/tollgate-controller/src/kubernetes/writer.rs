//! Writes status patches to the `/status` subresource, one at a time: a patch already written
//! for the same version of an object is not written again while the watch catches up, and a
//! failing one is retried with exponential backoff, never in a hot loop.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;
use tollgate_api::{AIRoute, BudgetPolicy, JWTProvider, MCPServer, ModelProvider};
use tracing::{info, warn};

use super::ControllerHandle;
use crate::status::{StatusKind, StatusPatch, StatusTarget};

/// The field manager of every write.
const FIELD_MANAGER: &str = "tollgate-controller";
/// The first retry delay of a failing write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A write that failed.
#[derive(Clone, Copy, Debug)]
struct Failure {
    attempts: u32,
    retry_at: Instant,
}

/// Writes status patches.
pub(super) struct StatusWriter {
    client: Client,
    handle: ControllerHandle,
    /// The last patch written per object, without transition times, and the object version
    /// it was computed from.
    written: HashMap<StatusTarget, (Option<String>, Value)>,
    failing: HashMap<StatusTarget, Failure>,
}

impl StatusWriter {
    pub(super) fn new(client: Client, handle: ControllerHandle) -> Self {
        Self {
            client,
            handle,
            written: HashMap::new(),
            failing: HashMap::new(),
        }
    }

    /// Writes the patches that are due; returns when the next failed one may be retried.
    pub(super) async fn write(&mut self, patches: Vec<StatusPatch>) -> Option<Instant> {
        let wanted: BTreeSet<&StatusTarget> = patches.iter().map(|p| &p.target).collect();
        self.written.retain(|target, _| wanted.contains(target));
        self.failing.retain(|target, _| wanted.contains(target));
        for patch in patches {
            let content = without_times(&patch.patch);
            let seen = (patch.resource_version.clone(), content);
            if patch.resource_version.is_some() && self.written.get(&patch.target) == Some(&seen) {
                continue;
            }
            if self
                .failing
                .get(&patch.target)
                .is_some_and(|f| f.retry_at > Instant::now())
            {
                continue;
            }
            let StatusTarget {
                kind,
                namespace,
                name,
            } = &patch.target;
            let namespace = namespace.as_deref().unwrap_or("");
            let written = tokio::time::timeout(WRITE_TIMEOUT, patch_status(&self.client, &patch))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {WRITE_TIMEOUT:?}")));
            match written {
                Ok(()) => {
                    info!(kind = kind.as_str(), namespace, name, "status written");
                    self.handle.counters.status_written();
                    self.failing.remove(&patch.target);
                    self.written.insert(patch.target, seen);
                }
                Err(error) => {
                    let failure = self.failing.entry(patch.target.clone()).or_insert(Failure {
                        attempts: 0,
                        retry_at: Instant::now(),
                    });
                    failure.attempts += 1;
                    let delay = backoff(failure.attempts);
                    failure.retry_at = Instant::now() + delay;
                    self.handle.counters.status_failed();
                    warn!(kind = kind.as_str(), namespace, name, %error, retry_in = ?delay, "cannot write status");
                }
            }
        }
        self.failing.values().map(|f| f.retry_at).min()
    }
}

/// The delay before retry `attempts` of a failing write.
fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// A patch without its `lastTransitionTime`s: two patches equal but for them say the same.
fn without_times(patch: &Value) -> Value {
    match patch {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| *key != "lastTransitionTime")
                .map(|(key, value)| (key.clone(), without_times(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

async fn patch_status(client: &Client, patch: &StatusPatch) -> Result<(), String> {
    let resource = match patch.target.kind {
        StatusKind::GatewayClass => ApiResource::erase::<GatewayClass>(&()),
        StatusKind::Gateway => ApiResource::erase::<Gateway>(&()),
        StatusKind::HTTPRoute => ApiResource::erase::<HttpRoute>(&()),
        StatusKind::AIRoute => ApiResource::erase::<AIRoute>(&()),
        StatusKind::ModelProvider => ApiResource::erase::<ModelProvider>(&()),
        StatusKind::BudgetPolicy => ApiResource::erase::<BudgetPolicy>(&()),
        StatusKind::MCPServer => ApiResource::erase::<MCPServer>(&()),
        StatusKind::JWTProvider => ApiResource::erase::<JWTProvider>(&()),
    };
    let api: Api<DynamicObject> = match &patch.target.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_status(&patch.target.name, &params, &Patch::Merge(&patch.patch))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let delays: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn transition_times_do_not_make_patches_differ() {
        let at = |time: &str| serde_json::json!({"status": {"conditions": [{"type": "Accepted", "lastTransitionTime": time}]}});
        assert_eq!(
            without_times(&at("2023-11-14T22:13:20Z")),
            without_times(&at("2024-01-01T00:00:00Z"))
        );
    }
}
