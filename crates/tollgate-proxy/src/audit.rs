//! The audit record of each request — who, what, where it went, what every policy said, what
//! it consumed and cost, how it ended — written to the hash-chained log of `tollgate-audit`,
//! and that log's counters as Prometheus metrics.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use serde::Serialize;
use tollgate_audit::AuditCounters;

use crate::exchange::Exchange;

/// One request's audit record.
#[derive(Debug, Serialize)]
pub(crate) struct RequestRecord<'a> {
    /// Always `request` (tool calls will have their own).
    pub(crate) event: &'static str,
    /// When the request ended, RFC 3339 UTC.
    pub(crate) time: String,
    pub(crate) request_id: &'a str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    /// `ok`, or the error code or failure that ended it.
    pub(crate) outcome: &'a str,
    pub(crate) key_id: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) team: Option<&'a str>,
    pub(crate) route: Option<&'a str>,
    pub(crate) rule: Option<&'a str>,
    pub(crate) requested_model: Option<&'a str>,
    pub(crate) served_model: Option<&'a str>,
    pub(crate) provider: Option<&'a str>,
    /// Each policy's word: authorization, guardrails, budget.
    pub(crate) policies: Policies,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) reasoning_tokens: u64,
    /// USD, as an exact decimal string.
    pub(crate) cost_usd: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) latency_ms: f64,
    pub(crate) time_to_first_byte_ms: Option<f64>,
}

/// What each policy decided.
#[derive(Debug, Serialize)]
pub(crate) struct Policies {
    /// `allowed`, `denied`, `no_route` (no rule serves the model), or `not_reached` (refused
    /// before: authentication, a malformed request).
    pub(crate) authorization: &'static str,
    /// `none`: no guardrail is configured in this version.
    pub(crate) guardrails: &'static str,
    /// `reserved`, `refused`, or `none` when no budget applies.
    pub(crate) budget: &'static str,
}

/// The authorization outcome of a request that ended with `error` (its code, if any).
pub(crate) fn authorization(exchange: &Exchange, error: Option<&str>) -> &'static str {
    match error {
        Some("model_access_denied") => "denied",
        Some("model_not_found") => "no_route",
        _ if exchange.target.get().is_some() || exchange.reservation.get().is_some() => "allowed",
        Some("budget_exceeded" | "rate_limit_exceeded" | "budget_store_unavailable") => "allowed",
        _ => "not_reached",
    }
}

/// The audit log's counters, read at each scrape.
#[derive(Debug)]
pub(crate) struct AuditMetrics(pub(crate) AuditCounters);

impl Collector for AuditMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "tollgate_audit_records_written",
                "Audit records written to the log",
                self.0.written(),
            ),
            (
                "tollgate_audit_records_dropped",
                "Audit records refused because the log's buffer was full (each also logged as an error)",
                self.0.dropped(),
            ),
            (
                "tollgate_audit_write_errors",
                "Failed writes to the audit log (retried)",
                self.0.write_errors(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
