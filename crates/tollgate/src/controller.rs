//! `tollgate controller`: turns manifests into one snapshot per Gateway and pushes them to
//! the proxies that subscribe (see `tollgate_push`). A source yields [`Translation`]s
//! (today manifest files, watched for changes); [`Publisher`] numbers and publishes them.

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
use tollgate_config::wire;
use tollgate_controller::{Translation, Versions, files};
use tollgate_push::{ServerLimits, SnapshotServer};

use crate::cli::ControllerArgs;
use crate::controller_admin::{self, AdminState};
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
    if args.files.is_empty() {
        anyhow::bail!("give the manifests to serve with --files FILE_OR_FOLDER...");
    }
    let tls =
        tollgate_push::server_config_from_files(&args.tls_cert, &args.tls_key, &args.client_ca)?;
    let mut translations = watch_files(args.files.clone())?;
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

    let mut publisher = Publisher::new(server);
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            translation = translations.recv() => match translation {
                Some(translation) => {
                    publisher.publish(translation.configs);
                    ready.store(true, Ordering::Release);
                }
                None => anyhow::bail!("the manifest source stopped"),
            },
            () = &mut shutdown => break,
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

/// Numbers each Gateway's configuration and publishes the ones that changed.
struct Publisher {
    server: SnapshotServer,
    versions: Versions,
    /// The version published for each Gateway (`namespace/name`).
    published: BTreeMap<String, u64>,
}

impl Publisher {
    fn new(server: SnapshotServer) -> Self {
        Self {
            server,
            versions: Versions::default(),
            published: BTreeMap::new(),
        }
    }

    /// Publishes this set of configurations; Gateways not in it are removed.
    fn publish(
        &mut self,
        configs: BTreeMap<tollgate_config::ObjectRef, tollgate_config::GatewayConfig>,
    ) {
        let snapshots = self.versions.publish(configs);
        let mut published = BTreeMap::new();
        for (gateway, snapshot) in &snapshots {
            let name = gateway.to_string();
            if self.published.get(&name) != Some(&snapshot.version) {
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
        for gone in self.published.keys().filter(|g| !names.contains(g)) {
            tracing::info!(gateway = gone, "Gateway removed; telling its proxies");
        }
        self.server.retain(|g| names.contains(&g.to_string()));
        self.published = published;
    }
}
