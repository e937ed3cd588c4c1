//! OpenTelemetry over OTLP (gRPC or HTTP/protobuf, as the standard `OTEL_EXPORTER_OTLP_*`
//! variables say): traces, and optionally the audit records as OTLP log records. Export never
//! slows a request: finished items go into a bounded queue that one task drains in batches; a
//! full queue drops the item and counts it.
//!
//! Nothing here runs unless an endpoint is configured: without one, [`enabled`] is false and
//! the stages create no spans at all.

mod propagation;
mod queue;
pub(crate) mod spans;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogExporter as _, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(crate) use queue::QueueMetrics;
use queue::{Logs, Queue, Spans};

/// Whether spans are made and exported.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether an OTLP trace pipeline is installed.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How telemetry is exported.
#[derive(Clone, Debug, Default)]
pub struct TraceSettings {
    /// The OTLP endpoint (`http://collector:4317` for gRPC, `http://collector:4318` for
    /// HTTP); `None` leaves it to `OTEL_EXPORTER_OTLP_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and without those nothing is exported.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`; `None` leaves it to `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC.
    pub protocol: Option<String>,
    /// Items waiting for export at most, per signal; more are dropped and counted.
    pub queue_capacity: usize,
    /// Whether audit records are also sent as OTLP log records.
    pub audit_logs: bool,
}

/// The installed pipelines; [`Telemetry::shutdown`] exports what is queued.
pub struct Telemetry {
    traces: SdkTracerProvider,
    logs: Option<SdkLoggerProvider>,
    exports: Vec<tokio::task::JoinHandle<()>>,
}

/// The telemetry pipelines could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot export telemetry: {0}")]
pub struct TelemetryError(String);

/// Sends audit records as OTLP log records (event `tollgate.request` or `tollgate.tool_call`,
/// the record's JSON as the body).
#[derive(Debug)]
pub struct AuditLogger(SdkLogger);

impl AuditLogger {
    /// Queues one record for export.
    pub(crate) fn emit(&self, event: &'static str, request_id: &str, record: String) {
        let mut log = self.0.create_log_record();
        log.set_event_name(event);
        log.set_timestamp(std::time::SystemTime::now());
        log.set_body(AnyValue::String(record.into()));
        log.add_attribute("tollgate.request_id", request_id.to_string());
        self.0.emit(log);
    }
}

/// Installs the OTLP pipelines when an endpoint is configured (in `settings` or the
/// environment), registering their counters in `registry`. Must be called inside the Tokio
/// runtime that will export.
pub fn install(
    settings: &TraceSettings,
    registry: &mut Registry,
) -> Result<Option<Telemetry>, TelemetryError> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let disabled = from_env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || from_env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    let configured = settings.endpoint.is_some()
        || from_env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || from_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    if disabled || !configured {
        return Ok(None);
    }
    let transport = Transport::of(settings)?;
    let mut resource = Resource::builder();
    if from_env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tollgate");
    }
    let resource = resource.build();
    let capacity = settings.queue_capacity.max(1);

    let mut spans = transport.span_exporter()?;
    spans.set_resource(&resource);
    let (queue, span_export) = Queue::start(Spans(spans), capacity, register_metrics(registry));
    let traces = SdkTracerProvider::builder()
        .with_span_processor(queue)
        .build();
    let mut exports = vec![span_export];

    let logs = if settings.audit_logs {
        let mut exporter = transport.log_exporter()?;
        exporter.set_resource(&resource);
        let metrics = register_queue_metrics(
            registry,
            "tollgate_audit_otlp_records",
            "audit records sent as OTLP logs",
        );
        let (queue, log_export) = Queue::start(Logs(exporter), capacity, metrics);
        exports.push(log_export);
        Some(
            SdkLoggerProvider::builder()
                .with_log_processor(queue)
                .with_resource(resource)
                .build(),
        )
    } else {
        None
    };

    opentelemetry::global::set_tracer_provider(traces.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(Telemetry {
        traces,
        logs,
        exports,
    }))
}

/// Registers the span export queue's counters.
pub(crate) fn register_metrics(registry: &mut Registry) -> QueueMetrics {
    register_queue_metrics(registry, "tollgate_trace_spans", "spans")
}

/// Registers a queue's counters: `<prefix>_exported`, `<prefix>_dropped` and the export
/// failures (`tollgate_trace_export_failures` for spans).
fn register_queue_metrics(registry: &mut Registry, prefix: &str, what: &str) -> QueueMetrics {
    let metrics = QueueMetrics::default();
    registry.register(
        format!("{prefix}_exported"),
        format!("OTLP {what} exported"),
        metrics.exported.clone(),
    );
    registry.register(
        format!("{prefix}_dropped"),
        format!("OTLP {what} dropped because the export queue was full"),
        metrics.dropped.clone(),
    );
    let failures = match prefix {
        "tollgate_trace_spans" => "tollgate_trace_export_failures".to_string(),
        other => format!("{other}_export_failures"),
    };
    registry.register(
        failures,
        format!("OTLP exports of {what} that failed or timed out (their items are lost)"),
        metrics.failures.clone(),
    );
    metrics
}

/// Builds an exporter of either signal on `transport`: their builders share method names but
/// no trait. `path` is the signal's HTTP path.
macro_rules! exporter {
    ($transport:expr, $builder:expr, $path:literal) => {{
        let builder = $builder;
        match ($transport.protocol, $transport.endpoint($path)) {
            (Protocol::Grpc, Some(url)) => builder.with_tonic().with_endpoint(url).build(),
            (Protocol::Grpc, None) => builder.with_tonic().build(),
            (protocol, Some(url)) => builder
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(url)
                .build(),
            (protocol, None) => builder.with_http().with_protocol(protocol).build(),
        }
        .map_err(|e| TelemetryError(e.to_string()))
    }};
}

/// Where and how the exporters send.
struct Transport {
    protocol: Protocol,
    endpoint: Option<String>,
}

impl Transport {
    fn of(settings: &TraceSettings) -> Result<Self, TelemetryError> {
        let protocol = settings
            .protocol
            .clone()
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").ok())
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok())
            .unwrap_or_else(|| "grpc".into());
        let protocol = match protocol.as_str() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpBinary,
            other => {
                return Err(TelemetryError(format!(
                    "OTLP protocol {other:?} is not supported; use grpc or http/protobuf"
                )));
            }
        };
        Ok(Self {
            protocol,
            endpoint: settings.endpoint.clone(),
        })
    }

    /// The endpoint for a signal whose HTTP path is `path` (`/v1/traces`); gRPC takes the
    /// base URL.
    fn endpoint(&self, path: &str) -> Option<String> {
        let base = self.endpoint.as_deref()?.trim_end_matches('/');
        Some(match self.protocol {
            Protocol::Grpc => base.to_string(),
            _ => format!("{base}{path}"),
        })
    }

    fn span_exporter(&self) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
        exporter!(
            self,
            opentelemetry_otlp::SpanExporter::builder(),
            "/v1/traces"
        )
    }

    fn log_exporter(&self) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
        exporter!(self, opentelemetry_otlp::LogExporter::builder(), "/v1/logs")
    }
}

impl Telemetry {
    /// The sender of audit records as OTLP logs, when that is on.
    pub fn audit_logger(&self) -> Option<Arc<AuditLogger>> {
        self.logs
            .as_ref()
            .map(|logs| Arc::new(AuditLogger(logs.logger("tollgate.audit"))))
    }

    /// Stops making spans and exports what is queued, waiting at most `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        ENABLED.store(false, Ordering::Relaxed);
        // Closes the queues; the export tasks drain them and end.
        let _ = self.traces.shutdown();
        if let Some(logs) = &self.logs {
            let _ = logs.shutdown();
        }
        let all = futures::future::join_all(self.exports);
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!("OTLP export did not finish before the deadline; queued items are lost");
        }
    }
}
