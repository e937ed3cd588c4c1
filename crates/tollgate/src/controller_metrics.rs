//! The Kubernetes controller's own metrics, read from its counters at each scrape: whether
//! this replica leads, reconciles run, and status writes by result.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use tollgate_controller::kubernetes::ControllerHandle;

/// `tollgate_controller_*`.
pub(crate) struct ControllerMetrics(pub(crate) ControllerHandle);

impl fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControllerMetrics")
    }
}

impl Collector for ControllerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let leader = ConstGauge::new(i64::from(self.0.is_leader()));
        leader.encode(encoder.encode_descriptor(
            "tollgate_controller_leader",
            "Whether this replica holds the leader Lease (1) and writes status",
            None,
            leader.metric_type(),
        )?)?;
        let counters = self.0.counters();
        let reconciles = ConstCounter::new(counters.reconciles());
        reconciles.encode(encoder.encode_descriptor(
            "tollgate_controller_reconciles",
            "Reconciles run: resources translated and published",
            None,
            reconciles.metric_type(),
        )?)?;
        let mut writes = encoder.encode_descriptor(
            "tollgate_controller_status_writes",
            "Status patches, by result: written, or failed (retried with backoff)",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (result, count) in [
            ("written", counters.status_writes()),
            ("failed", counters.status_write_failures()),
        ] {
            ConstCounter::new(count).encode(writes.encode_family(&[("result", result)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn a_standby_with_nothing_done_reports_zeros() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ControllerMetrics(ControllerHandle::default())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "tollgate_controller_leader 0",
            "tollgate_controller_reconciles_total 0",
            "tollgate_controller_status_writes_total{result=\"written\"} 0",
            "tollgate_controller_status_writes_total{result=\"failed\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }
}
