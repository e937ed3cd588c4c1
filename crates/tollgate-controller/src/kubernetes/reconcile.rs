//! The reconcile loop: gather, translate, publish, and (as leader) write status — after any
//! change of a watched object, of what the proxies acknowledged, or of leadership, debounced.

use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use tollgate_api::upstream::{Secret, Service};
use tollgate_config::ObjectRef;
use tracing::{debug, info};

use super::events::AlertEvents;
use super::references::referenced_secrets;
use super::secrets::SecretWatches;
use super::watch::Stores;
use super::writer::StatusWriter;
use super::{Clock, ControllerHandle};
use crate::status::{StatusInputs, StatusPatch, status_patches};
use crate::{Programmed, Publisher, Resources, TranslateOptions, translate};

/// How long a reconcile waits for newly referenced Secrets to be listed.
const SECRET_LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often everything is reconciled even when nothing seems to change, to mend status that
/// was changed behind the controller's back.
const RESYNC: Duration = Duration::from_secs(300);

/// Everything one replica's reconcile loop works with.
pub(super) struct Reconciler {
    pub(super) stores: Stores,
    pub(super) secrets: SecretWatches,
    pub(super) publisher: Arc<dyn Publisher>,
    pub(super) writer: StatusWriter,
    pub(super) alerts: AlertEvents,
    pub(super) handle: ControllerHandle,
    pub(super) clock: Clock,
    /// Moves when a watched object changes.
    pub(super) changed: watch::Receiver<u64>,
    /// Moves when what the proxies acknowledged changes.
    pub(super) acks: watch::Receiver<u64>,
    /// Whether this replica leads.
    pub(super) leadership: watch::Receiver<bool>,
    pub(super) debounce: Duration,
}

impl Reconciler {
    /// Reconciles once every store is listed, then after every change; never returns.
    pub(super) async fn run(mut self) {
        self.stores.wait_until_ready().await;
        loop {
            let retry_at = self.reconcile().await;
            tokio::select! {
                () = changed(&mut self.changed) => {}
                () = changed(&mut self.acks) => {}
                () = changed(&mut self.leadership) => {}
                () = sleep_until_some(retry_at) => {}
                () = sleep(RESYNC) => {}
            }
            sleep(self.debounce).await;
            self.changed.borrow_and_update();
            self.acks.borrow_and_update();
            self.leadership.borrow_and_update();
        }
    }

    /// One pass; returns when failed status writes may be retried.
    async fn reconcile(&mut self) -> Option<Instant> {
        let mut resources = self.stores.resources();
        self.secrets.sync(&referenced_secrets(&resources));
        self.secrets.wait_until_ready(SECRET_LIST_TIMEOUT).await;
        add_secrets(&mut resources.secrets, self.secrets.secrets());
        let services = self.stores.services();
        let leading = self.handle.is_leader();
        let patches = step(
            &resources,
            &services,
            &*self.publisher,
            leading,
            (self.clock)(),
        );
        self.handle.counters.reconciled();
        if leading {
            let usage = self.publisher.budget_usage();
            self.alerts.raise(&resources.budget_policies, &usage).await;
        }
        self.writer.write(patches).await
    }
}

/// Translates `resources`, publishes the result and, when `leading`, returns the status
/// patches to write.
pub(super) fn step(
    resources: &Resources,
    services: &[Service],
    publisher: &dyn Publisher,
    leading: bool,
    now: Timestamp,
) -> Vec<StatusPatch> {
    let translation = translate(resources, &TranslateOptions::default());
    publisher.publish(&translation.configs);
    let errors = translation
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .count();
    let programmed: BTreeMap<ObjectRef, Programmed> = translation
        .configs
        .keys()
        .map(|gateway| (gateway.clone(), publisher.programmed(gateway)))
        .collect();
    for diagnostic in &translation.diagnostics {
        debug!(%diagnostic, "translation finding");
    }
    let versions: Vec<String> = programmed
        .iter()
        .map(|(gateway, state)| format!("{gateway}: {state}"))
        .collect();
    info!(
        leading,
        gateways = translation.configs.len(),
        versions = %versions.join(", "),
        errors,
        warnings = translation.diagnostics.len() - errors,
        "translated and published"
    );
    if !leading {
        return Vec::new();
    }
    status_patches(&StatusInputs {
        resources,
        translation: &translation,
        services,
        programmed: &programmed,
        budget_usage: &publisher.budget_usage(),
        now,
    })
}

/// Adds the referenced Secrets to the API key Secrets, once each, in namespace and name order.
fn add_secrets(secrets: &mut Vec<Secret>, referenced: impl Iterator<Item = Secret>) {
    secrets.extend(referenced);
    let key = |s: &Secret| (s.metadata.namespace.clone(), s.metadata.name.clone());
    secrets.sort_by_key(key);
    secrets.dedup_by(|a, b| key(a) == key(b));
}

/// Completes when the channel moves; never when its sender is gone.
async fn changed<T>(receiver: &mut watch::Receiver<T>) {
    if receiver.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Completes at `at`; never when there is no `at`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
