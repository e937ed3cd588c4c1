//! Kubernetes as a source of resources: the thin shell around [`translate()`] and
//! [`status_patches`] that `tollgate controller` runs in a cluster.
//!
//! Reflectors keep a copy of every kind Tollgate reads (and of exactly the Secrets the resources
//! refer to). Any change, after a short debounce, gathers [`Resources`], translates them and
//! hands the result to the [`Publisher`] — on every replica, so that proxies may connect to
//! any. Only the replica holding the leader Lease writes status.
//!
//! [`translate()`]: crate::translate
//! [`status_patches`]: crate::status::status_patches
//! [`Resources`]: crate::Resources

mod events;
mod leader;
#[cfg(test)]
mod mock;
mod reconcile;
mod references;
mod secrets;
mod watch;
mod writer;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::Publisher;
use events::AlertEvents;
use leader::{Elector, LeaderSettings};
use reconcile::Reconciler;
use secrets::SecretWatches;
use watch::Stores;
use writer::StatusWriter;

/// The Lease's default name.
pub const DEFAULT_LEASE_NAME: &str = "tollgate-controller";
/// How long a Lease nobody renews stays held: a standby takes over after it, and, looking every
/// [`LEASE_RETRY`], within 14 s of the leader's last renewal (the issue asks for 15 s).
const LEASE_DURATION: Duration = Duration::from_secs(12);
/// How often replicas look at the Lease, and the leader renews it.
const LEASE_RETRY: Duration = Duration::from_secs(2);
/// How long a leader whose renewals fail keeps leading; shorter than [`LEASE_DURATION`], so it
/// steps down before a standby may take over.
const LEASE_RENEW_DEADLINE: Duration = Duration::from_secs(8);
/// How long shutdown waits for the Lease to be released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The time source of conditions and Lease timestamps.
type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How the controller runs in a cluster.
#[derive(Clone, Debug)]
pub struct KubernetesSettings {
    /// The namespace the controller runs in; its leader Lease lives there.
    pub namespace: String,
    /// This replica's name, written as the Lease's holder: the pod name.
    pub identity: String,
    /// The leader Lease's name. Default [`DEFAULT_LEASE_NAME`].
    pub lease_name: String,
    /// How long to wait for more changes before reconciling. Default 200 ms.
    pub debounce: Duration,
}

impl KubernetesSettings {
    /// Settings with the defaults, for the replica `identity` in `namespace`.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            identity: identity.into(),
            lease_name: DEFAULT_LEASE_NAME.into(),
            debounce: Duration::from_millis(200),
        }
    }
}

/// What the binary reads about a running controller: whether this replica leads (only the
/// leader should report ready, so that the push Service sends proxies to it) and counters.
#[derive(Clone, Debug)]
pub struct ControllerHandle {
    leading: tokio::sync::watch::Sender<bool>,
    counters: Arc<Counters>,
}

impl Default for ControllerHandle {
    fn default() -> Self {
        Self {
            leading: tokio::sync::watch::Sender::new(false),
            counters: Arc::default(),
        }
    }
}

impl ControllerHandle {
    /// Whether this replica holds the leader Lease.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Leadership as a channel, to wait for it to change.
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Counters of the work done.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// Counters of the controller's work, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    reconciles: AtomicU64,
    status_writes: AtomicU64,
    status_write_failures: AtomicU64,
}

impl Counters {
    /// Reconciles run: translations published.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// Status patches written.
    pub fn status_writes(&self) -> u64 {
        self.status_writes.load(Ordering::Relaxed)
    }

    /// Status patches that failed (and are retried with backoff).
    pub fn status_write_failures(&self) -> u64 {
        self.status_write_failures.load(Ordering::Relaxed)
    }

    fn reconciled(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }

    fn status_written(&self) {
        self.status_writes.fetch_add(1, Ordering::Relaxed);
    }

    fn status_failed(&self) {
        self.status_write_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the controller until `shutdown` completes: watches, translates, publishes to
/// `publisher`, takes part in leader election and, while leading, writes status. On shutdown
/// the leader releases its Lease so that a standby takes over at once.
pub async fn run(
    client: Client,
    settings: KubernetesSettings,
    publisher: Arc<dyn Publisher>,
    handle: ControllerHandle,
    shutdown: impl Future<Output = ()>,
) {
    let clock: Clock = Arc::new(Timestamp::now);
    let (changes, changed) = tokio::sync::watch::channel(0u64);
    let mut tasks = JoinSet::new();
    let stores = Stores::start(&client, &changes, &mut tasks);

    let stop = CancellationToken::new();
    let elector = Elector::new(
        Api::<Lease>::namespaced(client.clone(), &settings.namespace),
        LeaderSettings {
            name: settings.lease_name.clone(),
            identity: settings.identity.clone(),
            lease_duration: LEASE_DURATION,
            retry: LEASE_RETRY,
            renew_deadline: LEASE_RENEW_DEADLINE,
        },
        clock.clone(),
        handle.leading.clone(),
    );
    let election = tokio::spawn(elector.run(stop.clone()));

    let reconciler = Reconciler {
        secrets: SecretWatches::new(client.clone(), changes),
        acks: publisher.changes(),
        alerts: AlertEvents::new(client.clone(), &settings.identity),
        writer: StatusWriter::new(client, handle.clone()),
        leadership: handle.leadership(),
        stores,
        publisher,
        handle,
        clock,
        changed,
        debounce: settings.debounce,
    };
    tokio::select! {
        () = shutdown => {}
        () = reconciler.run() => {}
    }
    stop.cancel();
    if tokio::time::timeout(RELEASE_TIMEOUT, election)
        .await
        .is_err()
    {
        warn!("the leader Lease was not released in time");
    }
}
