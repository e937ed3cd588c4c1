//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly
//! one writes status.
//!
//! Every replica looks at the Lease every `retry` interval. The holder renews it; a standby
//! takes it over once it has seen it unchanged for a whole lease duration (measured on its own
//! clock, so clock skew between replicas does not matter), or at once when the holder released
//! it on shutdown. Every write carries the `resourceVersion` read, so two replicas can never
//! both win: the loser gets a conflict. A leader that cannot renew for `renew_deadline` steps
//! down before a standby may take over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Clock;

/// How the election runs.
#[derive(Clone, Debug)]
pub(super) struct LeaderSettings {
    /// The Lease's name.
    pub(super) name: String,
    /// This replica's identity, written as the Lease's holder.
    pub(super) identity: String,
    /// How long a Lease nobody renews stays held.
    pub(super) lease_duration: Duration,
    /// How often every replica looks at the Lease (and the leader renews it).
    pub(super) retry: Duration,
    /// How long a leader keeps leading while its renewals fail.
    pub(super) renew_deadline: Duration,
}

/// What to do about the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// There is none: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Nobody holds it, or its holder stopped renewing: take it over.
    TakeOver,
    /// Another replica holds it: wait.
    Follow,
}

/// The Lease as far as the decision goes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Observed<'a> {
    /// Its holder, if any.
    pub(super) holder: Option<&'a str>,
    /// How long it stays held without renewal.
    pub(super) duration: Duration,
    /// How long it has been seen unchanged, on this replica's clock.
    pub(super) unchanged_for: Duration,
}

/// Decides what to do about the Lease (`None` when it does not exist).
pub(super) fn decide(lease: Option<Observed<'_>>, identity: &str) -> Action {
    match lease {
        None => Action::Create,
        Some(lease) => match lease.holder {
            Some(holder) if holder == identity => Action::Renew,
            None | Some("") => Action::TakeOver,
            Some(_) if lease.unchanged_for >= lease.duration => Action::TakeOver,
            Some(_) => Action::Follow,
        },
    }
}

/// Runs the election for one replica, publishing whether it leads.
pub(super) struct Elector {
    api: Api<Lease>,
    settings: LeaderSettings,
    clock: Clock,
    leading: watch::Sender<bool>,
    /// The Lease as last read or written.
    known: Option<Lease>,
    /// The `resourceVersion` last seen, and when it was first seen.
    seen: Option<(String, Instant)>,
    /// When the last renewal (or acquisition) succeeded.
    renewed: Option<Instant>,
}

impl Elector {
    pub(super) fn new(
        api: Api<Lease>,
        settings: LeaderSettings,
        clock: Clock,
        leading: watch::Sender<bool>,
    ) -> Self {
        Self {
            api,
            settings,
            clock,
            leading,
            known: None,
            seen: None,
            renewed: None,
        }
    }

    /// Takes part in the election until `stop`; then releases the Lease if it holds it, so that
    /// a standby takes over at once.
    pub(super) async fn run(mut self, stop: CancellationToken) {
        loop {
            self.round().await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = sleep(self.settings.retry) => {}
            }
        }
        if self.is_leading() {
            self.release().await;
        }
        self.set_leading(false);
    }

    async fn round(&mut self) {
        // A request that hangs must not keep a leader leading past its deadline.
        let limit = self.settings.renew_deadline / 2;
        let outcome = match tokio::time::timeout(limit, self.try_round()).await {
            Ok(outcome) => outcome.map_err(|e| e.to_string()),
            Err(_) => {
                self.known = None;
                Err(format!("no answer within {limit:?}"))
            }
        };
        match outcome {
            Ok(leading) => {
                if leading {
                    self.renewed = Some(Instant::now());
                }
                self.set_leading(leading);
            }
            Err(error) => {
                let within_deadline = self
                    .renewed
                    .is_some_and(|at| at.elapsed() < self.settings.renew_deadline);
                warn!(lease = %self.settings.name, %error, "cannot read or renew the leader Lease");
                let leading = self.is_leading() && within_deadline;
                self.set_leading(leading);
            }
        }
    }

    /// One look at the Lease; whether this replica holds it afterwards. A conflict means
    /// another replica wrote the Lease first: this one does not hold it.
    async fn try_round(&mut self) -> Result<bool, kube::Error> {
        match self.look().await {
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                self.known = None;
                Ok(false)
            }
            outcome => outcome,
        }
    }

    async fn look(&mut self) -> Result<bool, kube::Error> {
        let identity = self.settings.identity.clone();
        let identity = identity.as_str();
        let current = match self.known.take() {
            // The leader wrote the Lease last; it renews without reading it first.
            Some(lease) if self.is_leading() && holder(&lease) == Some(identity) => Some(lease),
            _ => self.api.get_opt(&self.settings.name).await?,
        };
        let observed = current.as_ref().map(|lease| self.observe(lease));
        let now = MicroTime((self.clock)());
        let params = PostParams::default();
        let written = match (decide(observed, identity), current) {
            (Action::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(identity.into()),
                        lease_duration_seconds: Some(self.duration_seconds()),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&params, &lease).await?
            }
            (Action::Renew, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_seconds());
                lease.metadata.managed_fields = None;
                self.api
                    .replace(&self.settings.name, &params, &lease)
                    .await?
            }
            (Action::TakeOver, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                let previous = spec.holder_identity.replace(identity.into());
                info!(lease = %self.settings.name, previous = previous.as_deref().unwrap_or(""), "taking over the leader Lease");
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(self.duration_seconds());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                lease.metadata.managed_fields = None;
                self.api
                    .replace(&self.settings.name, &params, &lease)
                    .await?
            }
            (_, current) => {
                self.known = current;
                return Ok(false);
            }
        };
        self.observe(&written);
        self.known = Some(written);
        Ok(true)
    }

    /// Gives the Lease up: no holder, and a one-second duration for other implementations.
    async fn release(&mut self) {
        let Some(mut lease) = self.known.take() else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime((self.clock)()));
        lease.metadata.managed_fields = None;
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!(lease = %self.settings.name, "released the leader Lease"),
            Err(error) => {
                warn!(lease = %self.settings.name, %error, "cannot release the leader Lease; a standby takes over once it expires")
            }
        }
    }

    /// Notes when the Lease changed, on this replica's clock.
    fn observe<'l>(&mut self, lease: &'l Lease) -> Observed<'l> {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let since = match &self.seen {
            Some((seen, since)) if *seen == version => *since,
            _ => {
                let now = Instant::now();
                self.seen = Some((version, now));
                now
            }
        };
        let seconds = lease.spec.as_ref().and_then(|s| s.lease_duration_seconds);
        Observed {
            holder: holder(lease),
            duration: seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.settings.lease_duration, Duration::from_secs),
            unchanged_for: since.elapsed(),
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    fn set_leading(&self, leading: bool) {
        let changed = self.leading.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            match leading {
                true => {
                    info!(lease = %self.settings.name, identity = %self.settings.identity, "became the leader")
                }
                false => {
                    info!(lease = %self.settings.name, identity = %self.settings.identity, "no longer the leader")
                }
            }
        }
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
