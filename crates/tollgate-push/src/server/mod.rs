//! The controller's side: [`SnapshotServer`] holds each Gateway's latest snapshot, streams it
//! to the proxies that subscribe, and records what they acknowledge.

mod http;
mod hub;
mod stream;

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

pub use hub::{GatewayPushState, ProxyPushState, ProxyReport, Rejection};

use crate::message::{snapshot_line, valid_gateway};
use crate::{PushError, ServerLimits};
use hub::Hub;

/// The snapshot server: a cheap handle, cloned into whatever publishes and whatever reads
/// the state; [`SnapshotServer::serve`] runs its listener.
#[derive(Clone)]
pub struct SnapshotServer {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Arc<Hub>,
    limits: ServerLimits,
    subscribers: Arc<Semaphore>,
}

impl SnapshotServer {
    /// A server with nothing published yet.
    pub fn new(limits: ServerLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub: Arc::new(Hub::new()),
                limits,
                subscribers: Arc::new(Semaphore::new(limits.max_subscribers)),
            }),
        }
    }

    /// Makes `payload` (JSON) version `version` of `gateway` (`namespace/name`) and sends it
    /// to its subscribers, unless that version is already the latest. The payload is checked
    /// to be JSON, then embedded in the stream byte for byte.
    pub fn publish(&self, gateway: &str, version: u64, payload: &Bytes) -> Result<(), PushError> {
        if !valid_gateway(gateway) {
            return Err(PushError::Gateway(gateway.to_string()));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(|e| {
            PushError::NotJson {
                gateway: gateway.to_string(),
                reason: e.to_string(),
            }
        })?;
        self.inner
            .hub
            .publish(gateway, version, snapshot_line(version, payload));
        Ok(())
    }

    /// Tells `gateway`'s subscribers that it was removed; they keep their subscription in
    /// case it comes back.
    pub fn remove(&self, gateway: &str) {
        self.inner.hub.remove_where(|g| g != gateway);
    }

    /// Removes every Gateway for which `keep` says false: after publishing a whole new set,
    /// `retain(|g| set.contains(g))` removes those no longer in it.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.inner.hub.remove_where(keep);
    }

    /// Every Gateway's latest version and its proxies' connection and acknowledgement state.
    pub fn state(&self) -> BTreeMap<String, GatewayPushState> {
        self.inner.hub.state()
    }

    /// The latest report of every proxy that sent one (and is not forgotten yet).
    pub fn reports(&self) -> Vec<ProxyReport> {
        self.inner.hub.reports()
    }

    /// A counter bumped on every publish, removal, connect, disconnect, report, acknowledgement and
    /// rejection: wait on it to rewrite status from [`SnapshotServer::state`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.hub.changes()
    }
}
