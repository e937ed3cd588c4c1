//! The audit record of each request — who, what, where it went, what every policy said, what
//! it consumed and cost, how it ended, and (when capture is on) its bodies — written to the
//! hash-chained log of `tollgate-audit`, and that log's counters as Prometheus metrics.

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
    /// Why the model stopped, as the upstream said.
    pub(crate) finish_reason: Option<&'a str>,
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
    /// The bodies, when capture is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) capture: Option<Captured>,
}

/// One MCP tool call's audit record.
#[derive(Debug, Serialize)]
pub(crate) struct ToolCallRecord<'a> {
    /// Always `tool_call`.
    pub(crate) event: &'static str,
    /// When the call ended, RFC 3339 UTC.
    pub(crate) time: String,
    /// The HTTP request that carried it.
    pub(crate) request_id: &'a str,
    pub(crate) key_id: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) team: Option<&'a str>,
    /// The AIRoute of the MCP endpoint.
    pub(crate) route: String,
    /// The server's prefix, when the name named a configured server.
    pub(crate) server: Option<&'a str>,
    /// The tool as the caller named it (prefixed).
    pub(crate) tool: &'a str,
    /// SHA-256 (hex) of the arguments' JSON as sent; never the arguments themselves.
    pub(crate) arguments_sha256: String,
    /// `ok`, `tool_error`, `error`, `refused`, `invalid` or `upstream_unavailable`.
    pub(crate) outcome: &'a str,
    /// The error's message, when there was one.
    pub(crate) error: Option<&'a str>,
    pub(crate) latency_ms: f64,
}

/// Whether and how request and response bodies are captured (off unless set), and where they
/// go: audit records, request spans, or both.
#[derive(Clone, Debug)]
pub struct CaptureSettings {
    /// Bodies go into audit records (`capture`).
    pub in_audit: bool,
    /// Bodies go into request spans (`gen_ai.input.messages`, `gen_ai.output.messages`).
    pub in_spans: bool,
    /// The most bytes kept of each body; the rest is cut off and the record says so.
    pub max_bytes: usize,
    /// Patterns whose matches are replaced by `[REDACTED]` in captured bodies.
    pub redact: Vec<regex::Regex>,
}

/// Caller headers never captured: credentials, and what the transport sets.
const NOT_CAPTURED: [&str; 8] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "host",
    "content-length",
    "connection",
];

/// What capture kept of a request and its answer.
#[derive(Debug, Serialize)]
pub(crate) struct Captured {
    /// The caller's headers, credentials removed.
    pub(crate) request_headers: std::collections::BTreeMap<String, String>,
    pub(crate) request_body: CapturedBody,
    pub(crate) response_body: CapturedBody,
}

/// A captured body: UTF-8 text (lossy), redacted, cut at the limit.
#[derive(Debug, Serialize)]
pub(crate) struct CapturedBody {
    pub(crate) text: String,
    /// Whether the body was longer than what was kept.
    pub(crate) truncated: bool,
}

impl CaptureSettings {
    /// The headers worth keeping for a replay.
    pub(crate) fn headers(
        &self,
        headers: &http::HeaderMap,
    ) -> std::collections::BTreeMap<String, String> {
        headers
            .iter()
            .filter(|(name, _)| !NOT_CAPTURED.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect()
    }

    /// A body as captured: redacted, then cut at the limit (on a character boundary), so that
    /// a secret is never cut in two and left half-visible. `truncated`: more came than
    /// `bytes` holds.
    pub(crate) fn body(&self, bytes: &[u8], truncated: bool) -> CapturedBody {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for pattern in &self.redact {
            if let std::borrow::Cow::Owned(redacted) = pattern.replace_all(&text, "[REDACTED]") {
                text = redacted;
            }
        }
        let cut = text.len() > self.max_bytes;
        if cut {
            let mut end = self.max_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        CapturedBody {
            text,
            truncated: truncated || cut,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_bodies_are_cut_and_redacted_and_credentials_never_kept() {
        let capture = CaptureSettings {
            in_audit: true,
            in_spans: false,
            max_bytes: 40,
            redact: vec![regex::Regex::new(r"\d{4}-\d{4}-\d{4}-\d{4}").unwrap()],
        };
        let body = capture.body(
            br#"{"card":"4111-1111-1111-1111","note":"a long tail of text"}"#,
            false,
        );
        assert_eq!(body.text, r#"{"card":"[REDACTED]","note":"a long tail"#);
        assert!(body.truncated);
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer secret".parse().unwrap());
        headers.insert("x-api-key", "secret".parse().unwrap());
        headers.insert("anthropic-version", "2023-06-01".parse().unwrap());
        let kept = capture.headers(&headers);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["anthropic-version"]);
    }
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
