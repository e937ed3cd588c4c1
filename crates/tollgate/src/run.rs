//! `tollgate run` and `tollgate validate`: the controller's translation and the proxy in one
//! process, reading manifests from files instead of the API server.

use anyhow::Context;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tollgate_audit::{AuditLog, AuditOptions};
use tollgate_controller::{Diagnostic, TranslateOptions, Translation, Versions, files, translate};
use tollgate_proxy::telemetry::TraceSettings;
use tollgate_proxy::{CaptureSettings, Proxy, ProxySettings, RequestLimits, StoreConfig};

use crate::cli::{FilesArgs, RunArgs};

/// How long file events are coalesced before a reload.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);
/// How long queued spans may take to export at shutdown.
const TRACE_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

fn options() -> TranslateOptions {
    TranslateOptions {
        implicit_gateway_class: Some("tollgate".into()),
    }
}

/// Loads and translates the files; load failures and parse errors become one translation.
fn load_and_translate(paths: &[PathBuf]) -> anyhow::Result<Translation> {
    let (resources, mut parse_diagnostics) = files::load(paths)?;
    let mut translation = translate(&resources, &options());
    parse_diagnostics.append(&mut translation.diagnostics);
    parse_diagnostics.sort_by_key(|d| d.severity);
    translation.diagnostics = parse_diagnostics;
    Ok(translation)
}

/// `tollgate validate`.
pub(crate) fn validate(args: &FilesArgs) -> anyhow::Result<ExitCode> {
    let translation = load_and_translate(&args.files)?;
    for diagnostic in &translation.diagnostics {
        println!("{diagnostic}");
    }
    for (gateway, config) in &translation.configs {
        println!(
            "gateway {gateway}: {} listener(s), {} provider(s), {} rule(s), {} API key(s)",
            config.listeners.len(),
            config.providers.len(),
            config.routes.rules().len(),
            config.api_keys.len()
        );
    }
    if translation.has_errors() {
        let errors = translation
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        println!("{errors} error(s)");
        return Ok(ExitCode::FAILURE);
    }
    if translation.configs.is_empty() {
        println!("no Gateway of class tollgate found: nothing would be served");
        return Ok(ExitCode::FAILURE);
    }
    println!("valid");
    Ok(ExitCode::SUCCESS)
}

fn log_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        if d.is_error() {
            tracing::error!(kind = %d.kind, namespace = %d.namespace, name = %d.name, field = %d.field, reason = d.reason, "{}", d.message);
        } else {
            tracing::warn!(kind = %d.kind, namespace = %d.namespace, name = %d.name, field = %d.field, reason = d.reason, "{}", d.message);
        }
    }
}

/// `tollgate run`.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let paths = args.files.files.clone();
    let translation = load_and_translate(&paths)?;
    log_diagnostics(&translation.diagnostics);
    if translation.has_errors() {
        anyhow::bail!("the manifests have errors (listed above); nothing was started");
    }
    if translation.configs.is_empty() {
        anyhow::bail!(
            "no Gateway with gatewayClassName `tollgate` in the manifests: nothing to serve"
        );
    }

    let mut registry = Registry::default();
    let telemetry = tollgate_proxy::telemetry::install(
        &TraceSettings {
            endpoint: args.otlp_endpoint.clone(),
            protocol: args.otlp_protocol.clone(),
            queue_capacity: args.trace_queue,
            audit_logs: args.audit_otlp,
        },
        &mut registry,
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
        anyhow::bail!("--audit-capture-bodies needs an audit sink: --audit-log or --audit-otlp");
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
        capture: (args.audit_capture_bodies || args.trace_content).then(|| {
            Arc::new(CaptureSettings {
                in_audit: args.audit_capture_bodies,
                in_spans: args.trace_content,
                max_bytes: args.audit_capture_max_bytes,
                redact: args.audit_redact.clone(),
            })
        }),
    };
    let proxy = Arc::new(Proxy::new(settings, &mut registry)?);
    let mut versions = Versions::default();
    proxy.apply(&versions.publish(translation.configs)).await?;
    proxy.spawn_budget_gauges(args.budget_gauge_interval);

    let admin = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("cannot listen on the admin address {}", args.admin_addr))?;
    tracing::info!(address = %args.admin_addr, "admin server listening");
    let admin_task = tokio::spawn(tollgate_proxy::admin::serve(
        admin,
        proxy.clone(),
        Arc::new(registry),
    ));

    let (changed_tx, mut changed) = mpsc::channel(1);
    let _watcher = files::watch(&paths, RELOAD_DEBOUNCE, changed_tx)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            Some(()) = changed.recv() => reload(&paths, &proxy, &mut versions).await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    tracing::info!(
        deadline_s = args.drain_timeout.as_secs(),
        "shutting down: no new connections, finishing requests in flight"
    );
    let drained = proxy.drain(args.drain_timeout).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown(TRACE_FLUSH_DEADLINE).await;
    }
    if let Some(audit) = audit {
        audit.close().await;
    }
    admin_task.abort();
    if drained {
        tracing::info!("all requests finished; exiting");
    } else {
        tracing::warn!("drain deadline passed with requests still open; exiting");
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-reads the files and applies them, or keeps the last good configuration.
async fn reload(paths: &[PathBuf], proxy: &Proxy, versions: &mut Versions) {
    let translation = match load_and_translate(paths) {
        Ok(translation) => translation,
        Err(error) => {
            tracing::error!(%error, "cannot read the manifests; keeping the last good configuration");
            proxy.count_reload(false);
            return;
        }
    };
    log_diagnostics(&translation.diagnostics);
    if translation.has_errors() {
        tracing::error!(
            "the changed manifests have errors (listed above); keeping the last good configuration"
        );
        proxy.count_reload(false);
        return;
    }
    if translation.configs.is_empty() {
        // An emptied or half-written file must not take every listener down.
        tracing::error!(
            "the changed manifests hold no Gateway of class tollgate; keeping the last good configuration"
        );
        proxy.count_reload(false);
        return;
    }
    match proxy.apply(&versions.publish(translation.configs)).await {
        Ok(()) => {
            let versions: Vec<String> = proxy
                .snapshots()
                .iter()
                .map(|s| format!("{}@{}", s.config.gateway, s.version))
                .collect();
            tracing::info!(?versions, "configuration reloaded");
            proxy.count_reload(true);
        }
        Err(error) => {
            tracing::error!(%error, "cannot apply the changed manifests; keeping the last good configuration");
            proxy.count_reload(false);
        }
    }
}

/// `tollgate replay`: sends a captured request again and streams the answer to stdout.
pub(crate) fn replay(args: &crate::cli::ReplayArgs) -> anyhow::Result<ExitCode> {
    use http_body_util::BodyExt;
    use std::io::Write;
    let files = tollgate_audit::log_files(&args.audit_log);
    let request = tollgate_proxy::replay::find_captured(&files, &args.request_id)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = tollgate_proxy::replay::send(&request, &args.url, &args.api_key).await?;
        let status = response.status();
        eprintln!("{} {} -> {status}", request.method, request.path);
        let mut body = response.into_body();
        let mut stdout = std::io::stdout().lock();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                stdout.write_all(&data)?;
                stdout.flush()?;
            }
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
