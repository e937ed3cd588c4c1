//! `tollgate controller`: turns resources into one snapshot per Gateway and pushes them to
//! the proxies that subscribe (see `tollgate_push`). The resources come from manifest files
//! (watched for changes) or from the Kubernetes API server (`tollgate_controller::kubernetes`,
//! which also writes status and elects a leader); [`PushPublisher`] numbers and publishes
//! the translations and reads the proxies' acknowledgements back.

use anyhow::Context;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tollgate_api::BudgetUsage;
use tollgate_config::wire;
use tollgate_controller::kubernetes::{ControllerHandle, KubernetesSettings};
use tollgate_controller::{Programmed, Publisher as _, Translation, Versions, files};
use tollgate_push::{ServerLimits, SnapshotServer};

use crate::cli::ControllerArgs;
use crate::controller_admin::{self, AdminState};
use crate::controller_metrics::ControllerMetrics;
use crate::proxy_runtime::shutdown_signal;
use crate::push_metrics::ControllerPushMetrics;
use crate::run::{RELOAD_DEBOUNCE, load_and_translate, log_diagnostics, reload_refusal};

/// How long the push server may take to close its connections at shutdown.
const PUSH_STOP_DEADLINE: Duration = Duration::from_secs(10);

/// `tollgate controller`.
pub(crate) fn controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let tls =
        tollgate_push::server_config_from_files(&args.tls_cert, &args.tls_key, &args.client_ca)?;
    let source = match args.files.is_empty() {
        true => Source::Kubernetes(kubernetes_settings(&args).await?),
        false => Source::Files(watch_files(args.files.clone())?),
    };
    let server = SnapshotServer::new(ServerLimits::default());

    let listener = tokio::net::TcpListener::bind(args.push_listen)
        .await
        .with_context(|| format!("cannot listen on the push address {}", args.push_listen))?;
    tracing::info!(address = %args.push_listen, "serving configuration to proxies");
    let (stop_push, push_stopped) = oneshot::channel::<()>();
    let push_task = tokio::spawn(server.clone().serve(listener, tls, async {
        let _ = push_stopped.await;
    }));

    let mut registry = Registry::default();
    registry.register_collector(Box::new(ControllerPushMetrics(server.clone())));
    let handle = ControllerHandle::default();
    if matches!(source, Source::Kubernetes(_)) {
        registry.register_collector(Box::new(ControllerMetrics(handle.clone())));
    }
    let ready = Arc::new(AtomicBool::new(false));
    let admin = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("cannot listen on the admin address {}", args.admin_addr))?;
    tracing::info!(address = %args.admin_addr, "admin server listening");
    let admin_task = tokio::spawn(controller_admin::serve(
        admin,
        Arc::new(AdminState {
            server: server.clone(),
            registry,
            ready: ready.clone(),
        }),
    ));

    let publisher = Arc::new(PushPublisher::new(server));
    let shutdown = shutdown_signal()?;
    match source {
        Source::Files(mut translations) => {
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    translation = translations.recv() => match translation {
                        Some(translation) => {
                            publisher.publish(&translation.configs);
                            ready.store(true, Ordering::Release);
                        }
                        None => anyhow::bail!("the manifest source stopped"),
                    },
                    () = &mut shutdown => break,
                }
            }
        }
        Source::Kubernetes((client, settings)) => {
            let follow = tokio::spawn(follow_leadership(
                client.clone(),
                settings.namespace.clone(),
                settings.identity.clone(),
                handle.clone(),
                ready.clone(),
            ));
            tollgate_controller::kubernetes::run(client, settings, publisher, handle, shutdown)
                .await;
            follow.abort();
        }
    }
    tracing::info!("shutting down: closing the proxies' subscriptions");
    ready.store(false, Ordering::Release);
    drop(stop_push);
    if tokio::time::timeout(PUSH_STOP_DEADLINE, push_task)
        .await
        .is_err()
    {
        tracing::warn!("the push server did not stop in time");
    }
    admin_task.abort();
    Ok(ExitCode::SUCCESS)
}

/// Manifest files as a source of translations: the first must be servable (as for
/// `tollgate run`, nothing starts otherwise); a later one that is not is logged and
/// skipped, so the last good configuration stays published.
fn watch_files(paths: Vec<PathBuf>) -> anyhow::Result<mpsc::Receiver<Translation>> {
    let first = load_and_translate(&paths)?;
    log_diagnostics(&first.diagnostics);
    if first.has_errors() {
        anyhow::bail!("the manifests have errors (listed above); nothing was started");
    }
    if first.configs.is_empty() {
        anyhow::bail!(
            "no Gateway with gatewayClassName `tollgate` in the manifests: nothing to serve"
        );
    }
    let (translations, received) = mpsc::channel(1);
    translations
        .try_send(first)
        .map_err(|_| anyhow::anyhow!("the translation channel is closed"))?;
    let (changed_tx, mut changed) = mpsc::channel(1);
    let watcher = files::watch(&paths, RELOAD_DEBOUNCE, changed_tx)?;
    tokio::spawn(async move {
        let _watcher = watcher;
        while changed.recv().await.is_some() {
            let translation = match load_and_translate(&paths) {
                Ok(translation) => translation,
                Err(error) => {
                    tracing::error!(%error, "cannot read the manifests; keeping the last good configuration");
                    continue;
                }
            };
            log_diagnostics(&translation.diagnostics);
            if let Some(refusal) = reload_refusal(&translation) {
                tracing::error!("{refusal}");
                continue;
            }
            if translations.send(translation).await.is_err() {
                return;
            }
        }
    });
    Ok(received)
}

/// Where the controller's resources come from.
enum Source {
    /// Manifest files: their translations, as they change.
    Files(mpsc::Receiver<Translation>),
    /// The Kubernetes API server.
    Kubernetes((kube::Client, KubernetesSettings)),
}

/// A client of the API server (in-cluster, or from KUBECONFIG) and who this replica is.
async fn kubernetes_settings(
    args: &ControllerArgs,
) -> anyhow::Result<(kube::Client, KubernetesSettings)> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API server (no in-cluster configuration and no usable \
         KUBECONFIG); give --files to serve manifests from files instead",
    )?;
    let namespace = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let identity = args
        .identity
        .clone()
        .or_else(crate::push_proxy::host_name)
        .context("cannot tell this replica's name: give --identity or set POD_NAME")?;
    let mut settings = KubernetesSettings::new(namespace, identity);
    settings.lease_name = args.leader_election_lease.clone();
    tracing::info!(
        namespace = settings.namespace,
        identity = settings.identity,
        lease = settings.lease_name,
        "watching the Kubernetes API server"
    );
    Ok((client, settings))
}

/// The label the leader's Pod carries; the push Service selects it, so proxies subscribe to
/// the leader, which sees every acknowledgement and writes `Programmed` from them.
const LEADER_LABEL: &str = "tollgate.dev/leader";
/// How often a failed relabelling is tried again.
const RELABEL_RETRY: Duration = Duration::from_secs(2);

/// Ready once the first reconcile published (every replica, so rolling updates proceed);
/// the Pod `pod` labelled [`LEADER_LABEL`] while this replica leads.
async fn follow_leadership(
    client: kube::Client,
    namespace: String,
    pod: String,
    handle: ControllerHandle,
    ready: Arc<AtomicBool>,
) {
    let reconciled = handle.clone();
    let readiness = tokio::spawn(async move {
        while reconciled.counters().reconciles() == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        ready.store(true, Ordering::Release);
    });
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client, &namespace);
    let mut leading = handle.leadership();
    loop {
        let leader = *leading.borrow_and_update();
        let value = leader.then_some("true");
        let patch = serde_json::json!({"metadata": {"labels": {LEADER_LABEL: value}}});
        loop {
            let params = kube::api::PatchParams::default();
            match pods
                .patch(&pod, &params, &kube::api::Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(pod, leader, "leader label updated");
                    break;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    tracing::warn!(
                        pod,
                        "no Pod of this name to label as leader: proxies reach the push port of \
                         whichever replica the Service picks"
                    );
                    break;
                }
                Err(error) => {
                    tracing::warn!(pod, %error, "cannot update the leader label; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(RELABEL_RETRY) => {}
                        changed = leading.changed() => {
                            if changed.is_err() { readiness.abort(); return; }
                            break;
                        }
                    }
                }
            }
        }
        if leading.changed().await.is_err() {
            readiness.abort();
            return;
        }
    }
}

/// Numbers each Gateway's configuration, publishes the ones that changed, and tells from the
/// proxies' acknowledgements whether each Gateway is programmed.
struct PushPublisher {
    server: SnapshotServer,
    state: parking_lot::Mutex<Published>,
}

/// What was published so far.
#[derive(Default)]
struct Published {
    versions: Versions,
    /// The version published for each Gateway (`namespace/name`).
    by_gateway: BTreeMap<String, u64>,
}

impl PushPublisher {
    fn new(server: SnapshotServer) -> Self {
        Self {
            server,
            state: parking_lot::Mutex::new(Published::default()),
        }
    }
}

impl tollgate_controller::Publisher for PushPublisher {
    /// Publishes this set of configurations; Gateways not in it are removed.
    fn publish(
        &self,
        configs: &BTreeMap<tollgate_config::ObjectRef, tollgate_config::GatewayConfig>,
    ) {
        let mut state = self.state.lock();
        let Published {
            versions,
            by_gateway,
        } = &mut *state;
        let snapshots = versions.publish(configs.clone());
        let mut published = BTreeMap::new();
        for (gateway, snapshot) in &snapshots {
            let name = gateway.to_string();
            if by_gateway.get(&name) != Some(&snapshot.version) {
                let payload = Bytes::from(wire::encode(snapshot));
                match self.server.publish(&name, snapshot.version, &payload) {
                    Ok(()) => tracing::info!(
                        gateway = name,
                        version = snapshot.version,
                        bytes = payload.len(),
                        "configuration published"
                    ),
                    Err(error) => {
                        tracing::error!(gateway = name, %error, "cannot publish the configuration");
                        continue;
                    }
                }
            }
            published.insert(name, snapshot.version);
        }
        let names: BTreeSet<&String> = published.keys().collect();
        for gone in by_gateway.keys().filter(|g| !names.contains(g)) {
            tracing::info!(gateway = gone, "Gateway removed; telling its proxies");
        }
        self.server.retain(|g| names.contains(&g.to_string()));
        *by_gateway = published;
    }

    fn programmed(&self, gateway: &tollgate_config::ObjectRef) -> Programmed {
        let state = self.server.state();
        let Some(pushed) = state.get(&gateway.to_string()) else {
            return Programmed::NoProxies;
        };
        let Some(version) = pushed.version else {
            return Programmed::NoProxies;
        };
        programmed(version, pushed)
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.server.changes()
    }

    fn budget_usage(&self) -> BTreeMap<tollgate_config::ObjectRef, Vec<BudgetUsage>> {
        budget_usage(&self.server.reports())
    }
}

/// One proxy's budget report, as `report_budgets` in `push_proxy` sends it.
#[derive(serde::Deserialize)]
struct BudgetReport {
    budgets: Vec<PolicyCounts>,
}

#[derive(serde::Deserialize)]
struct PolicyCounts {
    policy: String,
    limits: Vec<LimitCounts>,
}

#[derive(serde::Deserialize)]
struct LimitCounts {
    window: String,
    unit: String,
    limit: String,
    used: String,
    remaining: String,
    resets_at: String,
}

/// Each policy's usage from the proxies' reports: per limit, the report that counted most
/// (the same everywhere when counts are shared through Redis; each proxy's own with the
/// memory store). Reports that do not parse are skipped.
pub(crate) fn budget_usage(
    reports: &[tollgate_push::ProxyReport],
) -> BTreeMap<tollgate_config::ObjectRef, Vec<BudgetUsage>> {
    let used = |usage: &BudgetUsage| usage.used.parse::<f64>().unwrap_or(0.0);
    let mut usage: BTreeMap<tollgate_config::ObjectRef, Vec<BudgetUsage>> = BTreeMap::new();
    for report in reports {
        let Ok(parsed) = serde_json::from_slice::<BudgetReport>(&report.report) else {
            tracing::debug!(proxy = report.proxy, "a budget report that does not parse");
            continue;
        };
        for policy in parsed.budgets {
            let Some((namespace, name)) = policy.policy.split_once('/') else {
                continue;
            };
            let limits = usage
                .entry(tollgate_config::ObjectRef::new(namespace, name))
                .or_default();
            for (index, counts) in policy.limits.into_iter().enumerate() {
                let reported = BudgetUsage {
                    window: counts.window,
                    unit: counts.unit,
                    limit: counts.limit,
                    used: counts.used,
                    remaining: counts.remaining,
                    resets_at: counts.resets_at,
                    reported_at: report.at.to_string(),
                };
                match limits.get_mut(index) {
                    None => limits.push(reported),
                    Some(kept) if used(&reported) > used(kept) => *kept = reported,
                    Some(_) => {}
                }
            }
        }
    }
    usage
}

/// A Gateway's `Programmed` from what its connected proxies did with `version`, the latest:
/// one that rejected it wins, then one still on an older version.
fn programmed(version: u64, pushed: &tollgate_push::GatewayPushState) -> Programmed {
    let connected: Vec<_> = pushed.proxies.iter().filter(|(_, p)| p.connected).collect();
    if connected.is_empty() {
        return Programmed::NoProxies;
    }
    for (name, proxy) in &connected {
        if let Some(rejection) = proxy.rejected.as_ref().filter(|r| r.version == version) {
            return Programmed::Rejected {
                version,
                proxy: name.to_string(),
                error: rejection.error.clone(),
            };
        }
    }
    if connected
        .iter()
        .all(|(_, p)| p.acked_version == Some(version))
    {
        Programmed::Programmed { version }
    } else {
        Programmed::Pending { version }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_push::{GatewayPushState, ProxyPushState, Rejection};

    fn proxy(connected: bool, acked: Option<u64>, rejected: Option<u64>) -> ProxyPushState {
        ProxyPushState {
            connected,
            acked_version: acked,
            rejected: rejected.map(|version| Rejection {
                version,
                error: "port 8080 in use".into(),
            }),
            last_seen: jiff::Timestamp::UNIX_EPOCH,
            reported_at: None,
        }
    }

    fn gateway(proxies: &[(&str, ProxyPushState)]) -> GatewayPushState {
        GatewayPushState {
            version: Some(3),
            proxies: proxies
                .iter()
                .map(|(name, p)| (name.to_string(), p.clone()))
                .collect(),
            acknowledgements: 0,
            rejections: 0,
        }
    }

    fn report(proxy: &str, used: &str) -> tollgate_push::ProxyReport {
        let body = serde_json::json!({"budgets": [{
            "policy": "default/research",
            "enforcement": "Hard",
            "limits": [
                {"window": "month", "unit": "usd", "limit": "100", "used": used,
                 "remaining": "?", "resets_at": "2026-01-01T00:00:00Z"},
                {"window": "minute", "unit": "tokens", "limit": "5000", "used": "7",
                 "remaining": "4993", "resets_at": "2026-12-02T10:01:00Z"}
            ]
        }]});
        tollgate_push::ProxyReport {
            gateway: "default/ai-gateway".into(),
            proxy: proxy.into(),
            connected: true,
            at: jiff::Timestamp::UNIX_EPOCH,
            report: bytes::Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn budget_usage_takes_the_highest_count_of_each_limit() {
        let mut broken = report("c", "1");
        broken.report = bytes::Bytes::from_static(b"{\"budgets\": 3}");
        let usage = budget_usage(&[report("a", "2.5"), report("b", "10"), broken]);
        let research = &usage[&tollgate_config::ObjectRef::new("default", "research")];
        assert_eq!(research.len(), 2);
        assert_eq!(
            (research[0].window.as_str(), research[0].used.as_str()),
            ("month", "10")
        );
        assert_eq!(research[1].used, "7");
        assert_eq!(research[0].reported_at, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn programmed_follows_the_connected_proxies() {
        let cases = [
            (vec![], Programmed::NoProxies),
            (
                vec![("a", proxy(false, Some(3), None))],
                Programmed::NoProxies,
            ),
            (
                vec![
                    ("a", proxy(true, Some(3), None)),
                    ("b", proxy(true, Some(2), None)),
                ],
                Programmed::Pending { version: 3 },
            ),
            (
                vec![
                    ("a", proxy(true, Some(3), None)),
                    ("gone", proxy(false, Some(1), None)),
                ],
                Programmed::Programmed { version: 3 },
            ),
            (
                vec![
                    ("a", proxy(true, Some(3), None)),
                    ("b", proxy(true, Some(2), Some(3))),
                ],
                Programmed::Rejected {
                    version: 3,
                    proxy: "b".into(),
                    error: "port 8080 in use".into(),
                },
            ),
            (
                vec![("a", proxy(true, Some(3), Some(2)))],
                Programmed::Programmed { version: 3 },
            ),
        ];
        for (proxies, expected) in cases {
            assert_eq!(programmed(3, &gateway(&proxies)), expected, "{proxies:?}");
        }
    }
}
