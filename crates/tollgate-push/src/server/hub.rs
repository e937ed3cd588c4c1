//! What the server knows: the latest snapshot of every Gateway (one `watch` channel each, so
//! a subscriber that falls behind only ever sees the newest), and every proxy's connection
//! and acknowledgement state.

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::message::Ack;

/// The newest thing a Gateway's subscribers should know.
#[derive(Clone, Debug)]
pub(crate) enum Latest {
    /// Nothing was published for it (yet).
    Nothing,
    /// Its current snapshot, as the stream line that carries it.
    Snapshot {
        /// The snapshot's version.
        version: u64,
        /// The whole message, newline included.
        line: Bytes,
    },
    /// It was removed.
    Removed,
}

/// What the server knows about one Gateway, for status and metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GatewayPushState {
    /// The version published last (none before the first publish and after removal).
    pub version: Option<u64>,
    /// The proxies that subscribed to it or acknowledged it, by name.
    pub proxies: BTreeMap<String, ProxyPushState>,
    /// Acknowledgements received for it (since the server started).
    pub acknowledgements: u64,
    /// Rejections received for it (since the server started).
    pub rejections: u64,
}

/// What the server knows about one proxy of one Gateway.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyPushState {
    /// Whether it has a subscription open now.
    pub connected: bool,
    /// The last version it said it serves.
    pub acked_version: Option<u64>,
    /// The last version it refused, unless it has since acknowledged a version as new.
    pub rejected: Option<Rejection>,
    /// When it last connected, disconnected, acknowledged or reported.
    pub last_seen: jiff::Timestamp,
    /// When it last sent a report.
    pub reported_at: Option<jiff::Timestamp>,
}

/// The last report of one proxy of one Gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyReport {
    /// The Gateway, `namespace/name`.
    pub gateway: String,
    /// The proxy's name.
    pub proxy: String,
    /// Whether it has a subscription open now.
    pub connected: bool,
    /// When it sent the report.
    pub at: jiff::Timestamp,
    /// The report, JSON as the proxy sent it.
    pub report: Bytes,
}

/// A snapshot a proxy could not apply, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    /// The refused version.
    pub version: u64,
    /// The proxy's error, cut to the server's limit.
    pub error: String,
}

/// One proxy's record, with the monotonic time its state last changed.
struct ProxyRecord {
    state: ProxyPushState,
    connections: usize,
    changed_at: Instant,
    report: Option<Bytes>,
}

impl ProxyRecord {
    fn new() -> Self {
        Self {
            state: ProxyPushState {
                connected: false,
                acked_version: None,
                rejected: None,
                last_seen: jiff::Timestamp::now(),
                reported_at: None,
            },
            connections: 0,
            changed_at: Instant::now(),
            report: None,
        }
    }

    fn touch(&mut self) {
        self.state.connected = self.connections > 0;
        self.state.last_seen = jiff::Timestamp::now();
        self.changed_at = Instant::now();
    }
}

struct GatewayRecord {
    latest: watch::Sender<Latest>,
    proxies: BTreeMap<String, ProxyRecord>,
    acknowledgements: u64,
    rejections: u64,
}

impl GatewayRecord {
    fn new() -> Self {
        Self {
            latest: watch::Sender::new(Latest::Nothing),
            proxies: BTreeMap::new(),
            acknowledgements: 0,
            rejections: 0,
        }
    }

    fn version(&self) -> Option<u64> {
        match &*self.latest.borrow() {
            Latest::Snapshot { version, .. } => Some(*version),
            Latest::Nothing | Latest::Removed => None,
        }
    }
}

/// Every Gateway's latest snapshot and proxies. Locks are held only for map updates.
pub(crate) struct Hub {
    gateways: Mutex<BTreeMap<String, GatewayRecord>>,
    changes: watch::Sender<u64>,
}

impl Hub {
    pub(crate) fn new() -> Self {
        Self {
            gateways: Mutex::new(BTreeMap::new()),
            changes: watch::Sender::new(0),
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Makes `line` the Gateway's latest snapshot unless it already has this version.
    pub(crate) fn publish(&self, gateway: &str, version: u64, line: Bytes) {
        let modified = self
            .gateways
            .lock()
            .entry(gateway.to_string())
            .or_insert_with(GatewayRecord::new)
            .latest
            .send_if_modified(|latest| {
                if matches!(latest, Latest::Snapshot { version: v, .. } if *v == version) {
                    return false;
                }
                *latest = Latest::Snapshot { version, line };
                true
            });
        if modified {
            self.bump();
        }
    }

    /// Marks the Gateways for which `keep` says false as removed.
    pub(crate) fn remove_where(&self, keep: impl Fn(&str) -> bool) {
        let mut modified = false;
        for (gateway, record) in self.gateways.lock().iter() {
            if keep(gateway) {
                continue;
            }
            modified |= record.latest.send_if_modified(|latest| {
                if matches!(latest, Latest::Snapshot { .. }) {
                    *latest = Latest::Removed;
                    return true;
                }
                false
            });
        }
        if modified {
            self.bump();
        }
    }

    /// Registers a subscription of `proxy` to `gateway`; it ends when the guard is dropped.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        gateway: &str,
        proxy: &str,
    ) -> (watch::Receiver<Latest>, Connected) {
        let receiver = {
            let mut gateways = self.gateways.lock();
            let record = gateways
                .entry(gateway.to_string())
                .or_insert_with(GatewayRecord::new);
            let entry = record
                .proxies
                .entry(proxy.to_string())
                .or_insert_with(ProxyRecord::new);
            entry.connections += 1;
            entry.touch();
            record.latest.subscribe()
        };
        self.bump();
        let guard = Connected {
            hub: self.clone(),
            gateway: gateway.to_string(),
            proxy: proxy.to_string(),
        };
        (receiver, guard)
    }

    fn disconnect(&self, gateway: &str, proxy: &str) {
        if let Some(record) = self
            .gateways
            .lock()
            .get_mut(gateway)
            .and_then(|g| g.proxies.get_mut(proxy))
        {
            record.connections = record.connections.saturating_sub(1);
            record.touch();
        }
        self.bump();
    }

    /// Records an acknowledgement or a rejection (whose error is already cut to size).
    pub(crate) fn ack(&self, gateway: &str, ack: Ack) {
        {
            let mut gateways = self.gateways.lock();
            let gateway = gateways
                .entry(gateway.to_string())
                .or_insert_with(GatewayRecord::new);
            if ack.accepted {
                gateway.acknowledgements += 1;
            } else {
                gateway.rejections += 1;
            }
            let record = gateway
                .proxies
                .entry(ack.proxy)
                .or_insert_with(ProxyRecord::new);
            if ack.accepted {
                record.state.acked_version = Some(ack.version);
                if record
                    .state
                    .rejected
                    .as_ref()
                    .is_some_and(|r| r.version <= ack.version)
                {
                    record.state.rejected = None;
                }
            } else {
                record.state.rejected = Some(Rejection {
                    version: ack.version,
                    error: ack.error.unwrap_or_default(),
                });
            }
            record.touch();
        }
        self.bump();
    }

    /// Keeps `proxy`'s latest report (valid JSON, within the size limit).
    pub(crate) fn report(&self, gateway: &str, proxy: &str, report: Bytes) {
        {
            let mut gateways = self.gateways.lock();
            let record = gateways
                .entry(gateway.to_string())
                .or_insert_with(GatewayRecord::new)
                .proxies
                .entry(proxy.to_string())
                .or_insert_with(ProxyRecord::new);
            record.report = Some(report);
            record.touch();
            record.state.reported_at = Some(record.state.last_seen);
        }
        self.bump();
    }

    /// The latest report of every proxy that sent one.
    pub(crate) fn reports(&self) -> Vec<ProxyReport> {
        let gateways = self.gateways.lock();
        let mut reports = Vec::new();
        for (gateway, record) in gateways.iter() {
            for (proxy, record) in &record.proxies {
                let (Some(report), Some(at)) = (&record.report, record.state.reported_at) else {
                    continue;
                };
                reports.push(ProxyReport {
                    gateway: gateway.clone(),
                    proxy: proxy.clone(),
                    connected: record.state.connected,
                    at,
                    report: report.clone(),
                });
            }
        }
        reports
    }

    /// Every Gateway that has a snapshot or proxies.
    pub(crate) fn state(&self) -> BTreeMap<String, GatewayPushState> {
        self.gateways
            .lock()
            .iter()
            .filter(|(_, record)| record.version().is_some() || !record.proxies.is_empty())
            .map(|(gateway, record)| {
                let proxies = record
                    .proxies
                    .iter()
                    .map(|(name, proxy)| (name.clone(), proxy.state.clone()))
                    .collect();
                let state = GatewayPushState {
                    version: record.version(),
                    proxies,
                    acknowledgements: record.acknowledgements,
                    rejections: record.rejections,
                };
                (gateway.clone(), state)
            })
            .collect()
    }

    /// Forgets proxies disconnected for longer than `forget_after`, and Gateways left with
    /// neither a snapshot, nor proxies, nor subscribers.
    pub(crate) fn prune(&self, forget_after: Duration) {
        let now = Instant::now();
        let mut forgotten = false;
        self.gateways.lock().retain(|_, record| {
            let before = record.proxies.len();
            record.proxies.retain(|_, proxy| {
                proxy.connections > 0 || now.duration_since(proxy.changed_at) < forget_after
            });
            forgotten |= record.proxies.len() != before;
            record.version().is_some()
                || !record.proxies.is_empty()
                || record.latest.receiver_count() > 0
        });
        if forgotten {
            self.bump();
        }
    }
}

/// An open subscription; dropping it marks the proxy disconnected (when it has no other).
pub(crate) struct Connected {
    hub: Arc<Hub>,
    gateway: String,
    proxy: String,
}

impl Connected {
    pub(crate) fn proxy(&self) -> &str {
        &self.proxy
    }

    pub(crate) fn gateway(&self) -> &str {
        &self.gateway
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.hub.disconnect(&self.gateway, &self.proxy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(proxy: &str, version: u64, error: Option<&str>) -> Ack {
        Ack {
            proxy: proxy.into(),
            version,
            accepted: error.is_none(),
            error: error.map(str::to_string),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn proxies_are_tracked_then_forgotten_after_disconnecting() {
        let hub = Arc::new(Hub::new());
        let mut changes = hub.changes();
        hub.publish("ns/gw", 1, Bytes::from_static(b"x\n"));
        let (_receiver, guard) = hub.subscribe("ns/gw", "p1");
        hub.ack("ns/gw", ack("p1", 1, None));
        hub.ack("ns/gw", ack("p1", 2, Some("port in use")));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();

        let state = hub.state();
        let p1 = &state["ns/gw"].proxies["p1"];
        assert_eq!(state["ns/gw"].version, Some(1));
        assert!(p1.connected);
        assert_eq!(p1.acked_version, Some(1));
        assert_eq!(p1.rejected.as_ref().unwrap().error, "port in use");
        assert_eq!(
            (state["ns/gw"].acknowledgements, state["ns/gw"].rejections),
            (1, 1)
        );

        hub.ack("ns/gw", ack("p1", 3, None));
        assert_eq!(hub.state()["ns/gw"].proxies["p1"].rejected, None);

        drop(guard);
        assert!(changes.has_changed().unwrap());
        assert!(!hub.state()["ns/gw"].proxies["p1"].connected);
        tokio::time::advance(Duration::from_secs(299)).await;
        hub.prune(Duration::from_secs(300));
        assert!(hub.state()["ns/gw"].proxies.contains_key("p1"));
        tokio::time::advance(Duration::from_secs(2)).await;
        hub.prune(Duration::from_secs(300));
        assert!(hub.state()["ns/gw"].proxies.is_empty());
    }

    #[tokio::test]
    async fn the_same_version_is_not_sent_twice_and_removal_is() {
        let hub = Arc::new(Hub::new());
        let (mut receiver, _guard) = hub.subscribe("ns/gw", "p");
        assert!(matches!(*receiver.borrow_and_update(), Latest::Nothing));
        hub.publish("ns/gw", 1, Bytes::from_static(b"a\n"));
        assert!(receiver.has_changed().unwrap());
        receiver.mark_unchanged();
        hub.publish("ns/gw", 1, Bytes::from_static(b"a\n"));
        assert!(!receiver.has_changed().unwrap());
        hub.remove_where(|g| g != "ns/gw");
        assert!(matches!(*receiver.borrow_and_update(), Latest::Removed));
        assert_eq!(hub.state()["ns/gw"].version, None);
    }
}
