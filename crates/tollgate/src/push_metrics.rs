//! Config push metrics: the proxy's (connected, applied version, snapshots applied and
//! rejected) and the controller's (each Gateway's published version, its proxies, their
//! acknowledgements), all named `tollgate_config_push_*`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::fmt;
use tokio::sync::watch;
use tollgate_push::{ClientStatus, SnapshotServer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The proxy's side.
#[derive(Clone)]
pub(crate) struct ProxyPushMetrics {
    connected: Gauge,
    applied_version: Gauge,
    snapshots: Family<ResultLabels, Counter>,
}

impl ProxyPushMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            connected: Gauge::default(),
            applied_version: Gauge::default(),
            snapshots: Family::default(),
        };
        registry.register(
            "tollgate_config_push_connected",
            "Whether the subscription to the controller is open (1) or not (0)",
            metrics.connected.clone(),
        );
        registry.register(
            "tollgate_config_push_applied_version",
            "The version of the Gateway's configuration in use (0 before the first)",
            metrics.applied_version.clone(),
        );
        registry.register(
            "tollgate_config_push_snapshots",
            "Snapshots received from the controller, by result: applied or rejected",
            metrics.snapshots.clone(),
        );
        metrics
    }

    /// Counts a snapshot applied or rejected.
    pub(crate) fn count(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.snapshots.get_or_create(&ResultLabels { result }).inc();
    }

    /// Keeps the gauges in step with the subscriber's status while it runs.
    pub(crate) async fn follow(self, mut status: watch::Receiver<ClientStatus>) {
        loop {
            let now = *status.borrow_and_update();
            self.connected.set(i64::from(now.connected));
            let version = now.applied_version.unwrap_or(0);
            self.applied_version
                .set(i64::try_from(version).unwrap_or(i64::MAX));
            if status.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The controller's gauges per Gateway, in the order `encode` computes them.
const CONTROLLER_GAUGES: [(&str, &str); 3] = [
    (
        "tollgate_config_push_published_version",
        "The version of each Gateway's configuration last published (0 when removed)",
    ),
    (
        "tollgate_config_push_connected_proxies",
        "Proxies subscribed to each Gateway",
    ),
    (
        "tollgate_config_push_current_proxies",
        "Proxies that acknowledged each Gateway's published version",
    ),
];

/// The controller's side, read from the snapshot server's state at each scrape.
pub(crate) struct ControllerPushMetrics(pub(crate) SnapshotServer);

impl fmt::Debug for ControllerPushMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControllerPushMetrics")
    }
}

impl Collector for ControllerPushMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let state = self.0.state();
        let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        let rows: Vec<(&str, [u64; 3])> = state
            .iter()
            .map(|(gateway, g)| {
                let connected = g.proxies.values().filter(|p| p.connected).count();
                let current = g
                    .proxies
                    .values()
                    .filter(|p| g.version.is_some() && p.acked_version == g.version)
                    .count();
                let values = [g.version.unwrap_or(0), connected as u64, current as u64];
                (gateway.as_str(), values)
            })
            .collect();
        for (index, (name, help)) in CONTROLLER_GAUGES.iter().enumerate() {
            let mut metric = encoder.encode_descriptor(name, help, None, gauge(0).metric_type())?;
            for (gateway, values) in &rows {
                let labels = [("gateway", *gateway)];
                gauge(values[index]).encode(metric.encode_family(&labels)?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "tollgate_config_push_acks",
            "Acknowledgements from proxies, by Gateway and result: accepted or rejected",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (gateway, gateway_state) in &state {
            for (result, count) in [
                ("accepted", gateway_state.acknowledgements),
                ("rejected", gateway_state.rejections),
            ] {
                let labels = [("gateway", gateway.as_str()), ("result", result)];
                ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tollgate_push::ServerLimits;

    #[test]
    fn the_dashboard_charts_only_push_and_controller_metrics_that_are_served() {
        let mut registry = Registry::default();
        let proxy = ProxyPushMetrics::register(&mut registry);
        proxy.count(true);
        let server = SnapshotServer::new(ServerLimits::default());
        server
            .publish("default/ai-gateway", 1, &Bytes::from_static(b"{}"))
            .unwrap();
        registry.register_collector(Box::new(ControllerPushMetrics(server)));
        registry.register_collector(Box::new(crate::controller_metrics::ControllerMetrics(
            tollgate_controller::kubernetes::ControllerHandle::default(),
        )));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();

        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/grafana/tollgate.json")).unwrap();
        let charted: Vec<String> = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|panel| panel["targets"].as_array().unwrap())
            .flat_map(|target| {
                target["expr"]
                    .as_str()
                    .unwrap()
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| {
                        word.starts_with("tollgate_config_push_")
                            || word.starts_with("tollgate_controller_")
                    })
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(charted.len() >= 8, "{charted:?}");
        for name in charted {
            assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("{name} "))
                        || line.starts_with(&format!("{name}{{"))),
                "the dashboard charts {name}, which neither proxy nor controller serves:\n{text}"
            );
        }
    }
}
