//! `tollgate proxy`: serves one Gateway with the snapshots a controller pushes. Each one is
//! decoded and applied whole or not at all; a refused one is reported to the controller and
//! the last good configuration keeps serving, as it does while the controller is away.

use anyhow::Context;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::{ObjectRef, wire};
use tollgate_proxy::Proxy;
use tollgate_push::{ClientLimits, ClientSettings, Subscriber};

use crate::cli::PushProxyArgs;
use crate::proxy_runtime::{ProxyRuntime, shutdown_signal};
use crate::push_metrics::ProxyPushMetrics;

/// `tollgate proxy`.
pub(crate) fn proxy(args: PushProxyArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::proxy_runtime::control_runtime()?;
    runtime.block_on(serve(args))
}

async fn serve(args: PushProxyArgs) -> anyhow::Result<ExitCode> {
    let gateway = match args.gateway.split_once('/') {
        Some((namespace, name)) => ObjectRef::new(namespace, name),
        None => anyhow::bail!("--gateway {:?} must be NAMESPACE/NAME", args.gateway),
    };
    let tls = tollgate_push::client_config_from_files(&args.ca, &args.cert, &args.key)?;
    let proxy_name = match args.proxy_name.clone() {
        Some(name) => name,
        None => host_name()
            .context("cannot tell this proxy's name: give --proxy-name or set POD_NAME")?,
    };
    let subscriber = Subscriber::new(ClientSettings {
        url: args.controller.clone(),
        gateway: args.gateway.clone(),
        proxy_name: proxy_name.clone(),
        tls,
        limits: ClientLimits::default(),
    })?;

    let mut registry = Registry::default();
    let mut runtime = ProxyRuntime::start(&args.proxy, &mut registry)?;
    let metrics = ProxyPushMetrics::register(&mut registry);
    let proxy = runtime.proxy.clone();
    proxy.spawn_budget_gauges(args.proxy.budget_gauge_interval);
    runtime.serve_admin(args.proxy.admin_addr, registry).await?;
    tokio::spawn(metrics.clone().follow(subscriber.status()));
    tracing::info!(
        controller = args.controller,
        %gateway,
        proxy = proxy_name,
        "waiting for the controller's configuration; not ready until the first one is applied"
    );

    let apply = move |version: u64, payload: Bytes| {
        let (proxy, gateway, metrics) = (proxy.clone(), gateway.clone(), metrics.clone());
        async move {
            let outcome = apply_snapshot(&proxy, &gateway, version, &payload).await;
            metrics.count(outcome.is_ok());
            proxy.count_reload(outcome.is_ok());
            outcome
        }
    };
    let reports = tokio::spawn(report_budgets(
        runtime.proxy.clone(),
        subscriber.reporter(),
        args.proxy.budget_gauge_interval,
    ));
    subscriber.run(apply, shutdown_signal()?).await;
    reports.abort();
    runtime.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Tells the controller, every `every`, how much of each budget is used (it writes
/// BudgetPolicy status from it): `{"budgets": [...]}` as the admin server's `/budgets`.
async fn report_budgets(proxy: Arc<Proxy>, reporter: tollgate_push::Reporter, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match proxy.budget_report().await {
            Ok(serde_json::Value::Array(budgets)) if budgets.is_empty() => {}
            Ok(budgets) => {
                let report = serde_json::json!({ "budgets": budgets });
                reporter.send(Bytes::from(report.to_string()));
            }
            Err(error) => tracing::debug!(%error, "budget counts unreadable; not reported"),
        }
    }
}

/// Decodes a pushed snapshot and makes it the proxy's configuration.
async fn apply_snapshot(
    proxy: &Proxy,
    gateway: &ObjectRef,
    version: u64,
    payload: &[u8],
) -> Result<(), String> {
    let snapshot = wire::decode(payload).map_err(|e| e.to_string())?;
    if snapshot.version != version {
        return Err(format!(
            "the snapshot says version {} but was sent as version {version}",
            snapshot.version
        ));
    }
    if snapshot.config.gateway != *gateway {
        return Err(format!(
            "the snapshot is for Gateway {}, not {gateway}",
            snapshot.config.gateway
        ));
    }
    let snapshots = BTreeMap::from([(gateway.clone(), Arc::new(snapshot))]);
    proxy.apply(&snapshots).await.map_err(|e| e.to_string())?;
    tracing::info!(%gateway, version, "configuration applied");
    Ok(())
}

/// The machine's host name (a pod's name, in Kubernetes).
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}
