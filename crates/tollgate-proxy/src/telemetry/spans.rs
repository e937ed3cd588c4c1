//! The spans Tollgate makes, named and attributed after OpenTelemetry's GenAI semantic
//! conventions: one per request (continuing the caller's W3C trace context) and one per
//! upstream attempt beneath it, whose context is what the upstream receives.

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};

use super::{enabled, propagation};

/// The tracer's name, as the instrumentation scope of every span.
const SCOPE: &str = "tollgate";

/// A request's span, from its arrival until its response ends.
#[derive(Clone, Debug)]
pub(crate) struct RequestSpan(Context);

impl RequestSpan {
    /// A span for a request carrying `headers`, child of the caller's trace when it sent one;
    /// `None` when traces are off.
    pub(crate) fn start(headers: &http::HeaderMap) -> Option<Self> {
        if !enabled() {
            return None;
        }
        let parent = propagation::extract(headers);
        let tracer = opentelemetry::global::tracer(SCOPE);
        let span = tracer
            .span_builder("request")
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &parent);
        Some(Self(parent.with_span(span)))
    }

    /// Ends the span named `name` with `attributes`; `error` (a Tollgate error code) marks it
    /// failed.
    pub(crate) fn finish(self, name: String, attributes: Vec<KeyValue>, error: Option<&str>) {
        let span = self.0.span();
        span.update_name(name);
        span.set_attributes(attributes);
        if let Some(code) = error {
            span.set_attribute(KeyValue::new("error.type", code.to_string()));
            span.set_status(Status::error(code.to_string()));
        }
        span.end();
    }

    /// A span for one attempt at `provider` (its `gen_ai.provider.name`) at `server`, the
    /// `number`th of the request.
    pub(crate) fn attempt(
        &self,
        provider: &str,
        system: &'static str,
        server: Option<&str>,
        number: u32,
    ) -> AttemptSpan {
        let tracer = opentelemetry::global::tracer(SCOPE);
        let mut attributes = vec![
            KeyValue::new("gen_ai.provider.name", system),
            KeyValue::new("tollgate.provider", provider.to_string()),
            KeyValue::new("tollgate.attempt", i64::from(number)),
        ];
        if let Some(server) = server {
            attributes.push(KeyValue::new("server.address", server.to_string()));
        }
        let span = tracer
            .span_builder(format!("attempt {provider}"))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&tracer, &self.0);
        AttemptSpan(self.0.with_span(span))
    }
}

impl RequestSpan {
    /// A span for one MCP tool call named `tool` (as the caller named it), of `server`.
    pub(crate) fn tool_call(&self, tool: &str, server: Option<&str>) -> AttemptSpan {
        let tracer = opentelemetry::global::tracer(SCOPE);
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", tool.to_string()),
        ];
        if let Some(server) = server {
            attributes.push(KeyValue::new("tollgate.mcp.server", server.to_string()));
        }
        let span = tracer
            .span_builder(format!("execute_tool {tool}"))
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&tracer, &self.0);
        AttemptSpan(self.0.with_span(span))
    }
}

/// One upstream attempt's (or tool call's) span.
#[derive(Debug)]
pub(crate) struct AttemptSpan(Context);

impl AttemptSpan {
    /// Writes this attempt's trace context into the upstream request's headers.
    pub(crate) fn inject(&self, headers: &mut http::HeaderMap) {
        propagation::inject(&self.0, headers);
    }

    /// Ends the span: `status` is the upstream's HTTP status when it answered, `failure` the
    /// kind of failure when it did not (or answered with an error).
    pub(crate) fn finish(self, status: Option<u16>, failure: Option<&'static str>) {
        let span = self.0.span();
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(failure) = failure {
            span.set_attribute(KeyValue::new("error.type", failure));
            span.set_status(Status::error(failure));
        }
        span.end();
    }
}
