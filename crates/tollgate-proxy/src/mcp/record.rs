//! Every MCP tool call recorded: an audit record (identity, server, tool, a digest of the
//! arguments, outcome, latency), a span beneath the request's, and the per-server and
//! per-tool metrics.

use serde_json::Value;
use tokio::time::Instant;
use tollgate_config::{Identity, ObjectRef};

use crate::audit::ToolCallRecord;
use crate::metrics::{Metrics, ToolCallLabels};
use crate::stages::record::Audit;
use crate::telemetry::spans::{AttemptSpan, RequestSpan};

/// Where tool calls of one request are recorded. It owns what it needs, so that a call whose
/// answer streams on after the request's handler returned is recorded when it ends.
#[derive(Clone)]
pub(crate) struct Recorder {
    pub(crate) metrics: Metrics,
    pub(crate) audit: Option<Audit>,
    pub(crate) span: Option<RequestSpan>,
    pub(crate) request_id: String,
    pub(crate) route: ObjectRef,
    pub(crate) identity: Identity,
}

/// A tool call under way.
pub(super) struct ToolCall {
    /// The tool as the caller named it.
    pub(super) tool: String,
    server: Option<String>,
    arguments_sha256: String,
    started: Instant,
    span: Option<AttemptSpan>,
}

impl Recorder {
    /// Starts recording a call of `tool` (as the caller named it) with `arguments`;
    /// `server` is the configured server the name points at, if any.
    pub(super) fn start(
        &self,
        tool: &str,
        server: Option<&str>,
        arguments: Option<&Value>,
    ) -> ToolCall {
        use sha2::Digest;
        let json = arguments.map(Value::to_string).unwrap_or_default();
        let digest = sha2::Sha256::digest(json.as_bytes());
        ToolCall {
            tool: tool.to_string(),
            server: server.map(str::to_string),
            arguments_sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
            started: Instant::now(),
            span: self.span.as_ref().map(|span| span.tool_call(tool, server)),
        }
    }

    /// Ends the call with `outcome` (and the error's message, if any).
    pub(super) fn finish(&self, call: ToolCall, outcome: &'static str, error: Option<&str>) {
        let elapsed = call.started.elapsed();
        let served = matches!(outcome, "ok" | "tool_error");
        let labels = ToolCallLabels {
            server: call.server.clone().unwrap_or_default(),
            tool: if served {
                call.tool.clone()
            } else {
                String::new()
            },
            outcome,
        };
        self.metrics.mcp_tool_calls.get_or_create(&labels).inc();
        self.metrics
            .mcp_tool_call_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(span) = call.span {
            span.finish(None, (outcome != "ok").then_some(outcome));
        }
        let Some(audit) = &self.audit else { return };
        let record = ToolCallRecord {
            event: "tool_call",
            time: jiff::Timestamp::now().to_string(),
            request_id: &self.request_id,
            key_id: &self.identity.key_id,
            user: self.identity.user.as_deref(),
            team: self.identity.team.as_deref(),
            route: self.route.to_string(),
            server: call.server.as_deref(),
            tool: &call.tool,
            arguments_sha256: call.arguments_sha256,
            outcome,
            error,
            latency_ms: elapsed.as_secs_f64() * 1000.0,
        };
        audit.write("tollgate.tool_call", &self.request_id, &record);
    }
}
