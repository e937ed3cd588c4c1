//! OpenTelemetry traces, exported over OTLP (gRPC or HTTP/protobuf, as the standard
//! `OTEL_EXPORTER_OTLP_*` variables say). Export never slows a request: finished spans go into
//! a bounded queue that one task drains in batches; a full queue drops the span and counts it.
//!
//! Nothing here runs unless an endpoint is configured: without one, [`enabled`] is false and
//! the stages create no spans at all.

mod propagation;
mod queue;
pub(crate) mod spans;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use queue::{QueueMetrics, SpanQueue};

/// Whether spans are made and exported.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether an OTLP trace pipeline is installed.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How traces are exported.
#[derive(Clone, Debug, Default)]
pub struct TraceSettings {
    /// The OTLP endpoint (`http://collector:4317` for gRPC, `http://collector:4318` for
    /// HTTP); `None` leaves it to `OTEL_EXPORTER_OTLP_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and without those no traces are exported.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`; `None` leaves it to `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC.
    pub protocol: Option<String>,
    /// Finished spans waiting for export at most; more are dropped and counted.
    pub queue_capacity: usize,
}

/// The installed pipeline; [`Telemetry::shutdown`] exports what is queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
    exported: tokio::task::JoinHandle<()>,
}

/// The trace pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces: {0}")]
pub struct TelemetryError(String);

/// Installs the OTLP trace pipeline when an endpoint is configured (in `settings` or the
/// environment), registering its counters in `registry`. Must be called inside the Tokio
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
    let mut exporter = build_exporter(settings.endpoint.as_deref(), settings.protocol.clone())?;
    let mut resource = Resource::builder();
    if from_env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tollgate");
    }
    exporter.set_resource(&resource.build());
    let metrics = register_metrics(registry);
    let capacity = settings.queue_capacity.max(1);
    let (queue, exported) = SpanQueue::start(exporter, capacity, metrics);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(queue)
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(Telemetry { provider, exported }))
}

/// Registers the export queue's counters.
pub(crate) fn register_metrics(registry: &mut Registry) -> QueueMetrics {
    let metrics = QueueMetrics::default();
    registry.register(
        "tollgate_trace_spans_exported",
        "Spans exported over OTLP",
        metrics.exported.clone(),
    );
    registry.register(
        "tollgate_trace_spans_dropped",
        "Spans dropped because the export queue was full",
        metrics.dropped.clone(),
    );
    registry.register(
        "tollgate_trace_export_failures",
        "OTLP trace exports that failed or timed out (their spans are lost)",
        metrics.failures.clone(),
    );
    metrics
}

fn build_exporter(
    endpoint: Option<&str>,
    protocol: Option<String>,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let protocol = protocol
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").ok())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok())
        .unwrap_or_else(|| "grpc".into());
    let built = match protocol.as_str() {
        "grpc" => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(Protocol::Grpc);
            match endpoint {
                Some(endpoint) => builder.with_endpoint(endpoint).build(),
                None => builder.build(),
            }
        }
        "http/protobuf" => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary);
            match endpoint {
                Some(endpoint) => builder
                    .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                    .build(),
                None => builder.build(),
            }
        }
        other => {
            return Err(TelemetryError(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported; use grpc or http/protobuf"
            )));
        }
    };
    built.map_err(|e| TelemetryError(e.to_string()))
}

impl Telemetry {
    /// Stops making spans and exports what is queued, waiting at most `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        ENABLED.store(false, Ordering::Relaxed);
        // Closes the queue; the export task drains it and ends.
        let _ = self.provider.shutdown();
        if tokio::time::timeout(deadline, self.exported).await.is_err() {
            tracing::warn!(
                "trace export did not finish before the deadline; queued spans are lost"
            );
        }
    }
}
