//! The proxy's startup and shutdown, shared by `tollgate run` and `tollgate proxy`: traces,
//! the audit log, the [`Proxy`] itself, its admin server, and the drain on SIGTERM/SIGINT.

use anyhow::Context;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tollgate_audit::{AuditLog, AuditOptions};
use tollgate_proxy::telemetry::{Telemetry, TraceSettings};
use tollgate_proxy::{CaptureSettings, Proxy, ProxySettings, RequestLimits, StoreConfig};

use crate::cli::ProxyArgs;

/// How long queued spans may take to export at shutdown.
const TRACE_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// A started proxy with what must be closed after it drains.
pub(crate) struct ProxyRuntime {
    pub(crate) proxy: Arc<Proxy>,
    telemetry: Option<Telemetry>,
    audit: Option<Arc<AuditLog>>,
    drain_timeout: Duration,
    admin: Option<JoinHandle<()>>,
}

impl ProxyRuntime {
    /// Installs telemetry, opens the audit log and creates the proxy (serving nothing yet),
    /// registering their metrics in `registry`. The caller starts the budget gauges once
    /// the proxy has a configuration.
    pub(crate) fn start(args: &ProxyArgs, registry: &mut Registry) -> anyhow::Result<Self> {
        let telemetry = tollgate_proxy::telemetry::install(
            &TraceSettings {
                endpoint: args.otlp_endpoint.clone(),
                protocol: args.otlp_protocol.clone(),
                queue_capacity: args.trace_queue,
                audit_logs: args.audit_otlp,
            },
            registry,
        )?;
        if telemetry.is_some() {
            tracing::info!("exporting traces over OTLP");
        } else if args.audit_otlp {
            anyhow::bail!(
                "--audit-otlp needs an OTLP endpoint (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)"
            );
        }
        if args.trace_content && telemetry.is_none() {
            anyhow::bail!(
                "--trace-content needs an OTLP endpoint (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)"
            );
        }
        if args.audit_capture_bodies && args.audit_log.is_none() && !args.audit_otlp {
            anyhow::bail!(
                "--audit-capture-bodies needs an audit sink: --audit-log or --audit-otlp"
            );
        }
        let audit = match &args.audit_log {
            None => None,
            Some(path) => {
                let options = AuditOptions {
                    max_bytes: args.audit_max_bytes,
                    max_files: args.audit_max_files,
                    buffer: args.audit_buffer,
                };
                let log = AuditLog::open(path, options)
                    .with_context(|| format!("cannot open the audit log {}", path.display()))?;
                tracing::info!(path = %path.display(), "recording every request in the audit log");
                Some(Arc::new(log))
            }
        };
        let settings = ProxySettings {
            listen_address: args.listen_address,
            limits: RequestLimits {
                max_body_bytes: args.max_request_bytes,
                body_timeout: args.body_timeout,
            },
            budget_store: match args.budget_store.as_str() {
                "memory" => StoreConfig::Memory,
                url => StoreConfig::Redis {
                    url: url.to_string(),
                    timeout: args.budget_store_timeout,
                    namespace: args.budget_store_namespace.clone(),
                },
            },
            audit: audit.clone(),
            audit_otlp: telemetry.as_ref().and_then(|t| t.audit_logger()),
            worker_threads: match args.worker_threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                threads => threads,
            },
            capture: (args.audit_capture_bodies || args.trace_content).then(|| {
                Arc::new(CaptureSettings {
                    in_audit: args.audit_capture_bodies,
                    in_spans: args.trace_content,
                    max_bytes: args.audit_capture_max_bytes,
                    redact: args.audit_redact.clone(),
                })
            }),
        };
        let proxy = Arc::new(Proxy::new(settings, registry)?);
        Ok(Self {
            proxy,
            telemetry,
            audit,
            drain_timeout: args.drain_timeout,
            admin: None,
        })
    }

    /// Serves the proxy's admin endpoints on `address` with the metrics of `registry`.
    pub(crate) async fn serve_admin(
        &mut self,
        address: SocketAddr,
        registry: Registry,
    ) -> anyhow::Result<()> {
        let admin = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on the admin address {address}"))?;
        tracing::info!(%address, "admin server listening");
        self.admin = Some(tokio::spawn(tollgate_proxy::admin::serve(
            admin,
            self.proxy.clone(),
            Arc::new(registry),
        )));
        Ok(())
    }

    /// Stops accepting connections, lets requests in flight finish (up to the drain
    /// timeout), then flushes traces and the audit log.
    pub(crate) async fn shutdown(self) {
        tracing::info!(
            deadline_s = self.drain_timeout.as_secs(),
            "shutting down: no new connections, finishing requests in flight"
        );
        let drained = self.proxy.drain(self.drain_timeout).await;
        if let Some(telemetry) = self.telemetry {
            telemetry.shutdown(TRACE_FLUSH_DEADLINE).await;
        }
        if let Some(audit) = self.audit {
            audit.close().await;
        }
        if let Some(admin) = self.admin {
            admin.abort();
        }
        if drained {
            tracing::info!("all requests finished; exiting");
        } else {
            tracing::warn!("drain deadline passed with requests still open; exiting");
        }
    }
}

/// The runtime of everything but Gateway traffic (which the proxy's own worker threads
/// serve): configuration, the audit writer, exporters, the admin server. One thread; blocking
/// work such as translating manifests goes to its blocking pool.
pub(crate) fn control_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tg-control")
        .enable_all()
        .build()
}

/// Completes on the first SIGTERM or SIGINT.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
