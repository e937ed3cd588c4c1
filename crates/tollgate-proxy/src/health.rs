//! What the proxy has learned about each backend from the traffic it sent: consecutive
//! failures and ejection (passive outlier detection), requests in flight, and a peak-EWMA of
//! time to first byte. State is kept per provider and upstream model, shared by every rule
//! that uses them, and survives configuration reloads.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tollgate_config::{GatewayConfig, OutlierDetection, Snapshot};
use tower::retry::budget::TpsBudget;

use crate::metrics::AttemptLabels;

/// How fast the latency estimate forgets: the EWMA's decay time. An estimate with no news
/// decays towards zero, so a backend that was slow gets tried again after a while and can
/// win its traffic back once it recovers.
const EWMA_DECAY: Duration = Duration::from_secs(3);
/// The latency assumed for a backend nothing is known about yet.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// Whether a backend may be sent a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Availability {
    /// In rotation.
    Healthy,
    /// Ejected, and its ejection time has passed: one request may probe it.
    Probe,
    /// Ejected.
    Ejected,
}

/// One backend's learned state. All fields are atomics: the request path never locks.
#[derive(Debug)]
pub(crate) struct BackendState {
    epoch: Instant,
    /// `namespace/name` of the provider, for logs and metrics.
    provider: String,
    /// The upstream model, empty when the requested one is passed on.
    model: String,
    /// Where ejections are counted.
    ejections: Family<AttemptLabels, Counter>,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `epoch` until which the backend is out; 0 when in rotation.
    ejected_until_ms: AtomicU64,
    /// Set while one probe request is out to an ejected backend.
    probing: AtomicBool,
    outstanding: AtomicU32,
    /// Peak-EWMA of time to first byte, in nanoseconds, as f64 bits.
    ewma_ns: AtomicU64,
    /// When `ewma_ns` was last updated, nanoseconds since `epoch`.
    ewma_at_ns: AtomicU64,
}

impl BackendState {
    pub(crate) fn new(
        epoch: Instant,
        provider: String,
        model: String,
        ejections: Family<AttemptLabels, Counter>,
    ) -> Self {
        Self {
            epoch,
            provider,
            model,
            ejections,
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            outstanding: AtomicU32::new(0),
            ewma_ns: AtomicU64::new((DEFAULT_RTT.as_nanos() as f64).to_bits()),
            ewma_at_ns: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the backend may take a request now.
    pub(crate) fn availability(&self) -> Availability {
        let until = self.ejected_until_ms.load(Ordering::Acquire);
        if until == 0 {
            Availability::Healthy
        } else if self.now_ms() >= until && !self.probing.load(Ordering::Acquire) {
            Availability::Probe
        } else {
            Availability::Ejected
        }
    }

    /// Claims the single probe of an ejected backend; false when another request has it.
    pub(crate) fn claim_probe(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    /// Gives up a claimed probe without a verdict (the caller left, or the backend asked to
    /// be left alone), so that a later request can probe.
    pub(crate) fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// Records a first byte, and how long it took: the backend is (back) in rotation: the backend is back in rotation.
    pub(crate) fn on_first_byte(&self, first_byte: Duration) {
        self.ejected_until_ms.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        self.observe(first_byte);
    }

    /// Records a response that ended cleanly: the run of consecutive failures is over. (A
    /// stream that breaks after its first byte counts as a failure, so a backend whose streams
    /// keep breaking is ejected like one that refuses connections.)
    pub(crate) fn on_completed(&self) {
        self.consecutive_failures.store(0, Ordering::Release);
    }

    /// Records a failure (`reason` names it in metrics); returns true when it takes the
    /// backend out of rotation, which a failure of a backend already out does not. A failed
    /// `probe` ejects it again at once. Ejections are counted and logged here.
    pub(crate) fn on_failure(
        &self,
        policy: &OutlierDetection,
        probe: bool,
        reason: &'static str,
    ) -> bool {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        let now = self.now_ms();
        let out = self.ejected_until_ms.load(Ordering::Acquire) > now;
        if !probe && (failures < policy.consecutive_failures || out) {
            return false;
        }
        let until = now + policy.ejection_time.as_millis() as u64;
        self.ejected_until_ms.store(until.max(1), Ordering::Release);
        self.ejections
            .get_or_create(&AttemptLabels {
                provider: self.provider.clone(),
                outcome: reason,
            })
            .inc();
        tracing::warn!(
            provider = %self.provider,
            model = %self.model,
            failures,
            reason,
            seconds = policy.ejection_time.as_secs_f64(),
            "backend ejected"
        );
        true
    }

    /// Keeps a backend out until `until` (a `retry-after`), without counting a failure.
    pub(crate) fn hold_off(&self, wait: Duration) {
        let until = (self.now_ms() + wait.as_millis() as u64).max(1);
        self.ejected_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Counts a request in flight until the guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Requests in flight.
    pub(crate) fn outstanding(&self) -> u32 {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Expected cost of one more request: the latency estimate, decayed as time passes
    /// without news, times the requests in flight plus one.
    pub(crate) fn latency_cost(&self) -> f64 {
        let (estimate, _) = self.decayed_estimate();
        estimate * f64::from(self.outstanding() + 1)
    }

    /// The estimate decayed to now, and the decay factor applied.
    fn decayed_estimate(&self) -> (f64, f64) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let at = self.ewma_at_ns.load(Ordering::Acquire);
        let ewma = f64::from_bits(self.ewma_ns.load(Ordering::Acquire));
        let decay = (-(now.saturating_sub(at) as f64) / EWMA_DECAY.as_nanos() as f64).exp();
        (ewma * decay, decay)
    }

    /// Peak-EWMA update: a slower sample is taken at once, a faster one is averaged in.
    fn observe(&self, sample: Duration) {
        let sample = sample.as_nanos() as f64;
        let (belief, decay) = self.decayed_estimate();
        let next = if sample > belief {
            sample
        } else {
            belief + sample * (1.0 - decay)
        };
        self.ewma_ns.store(next.to_bits(), Ordering::Release);
        self.ewma_at_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Release);
    }

    /// A summary for `/config`.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let until = self.ejected_until_ms.load(Ordering::Acquire);
        serde_json::json!({
            "ejected": until != 0,
            "ejectedForMs": until.saturating_sub(self.now_ms()),
            "consecutiveFailures": self.consecutive_failures.load(Ordering::Acquire),
            "outstanding": self.outstanding(),
            "ewmaFirstByteMs": f64::from_bits(self.ewma_ns.load(Ordering::Acquire)) / 1e6,
        })
    }
}

/// A request in flight to a backend; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<BackendState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A rule's runtime state: its backends' states (in the rule's order) and its retry budget.
#[derive(Debug)]
pub(crate) struct RuleRuntime {
    pub(crate) backends: Vec<Arc<BackendState>>,
    pub(crate) budget: Arc<TpsBudget>,
}

/// Runtime state for every rule of one snapshot, in the route table's order.
#[derive(Debug, Default)]
pub(crate) struct RouteRuntime {
    pub(crate) rules: Vec<RuleRuntime>,
}

/// Every backend's and rule's state, kept across reloads by name.
#[derive(Debug)]
pub(crate) struct HealthRegistry {
    epoch: Instant,
    ejections: Family<AttemptLabels, Counter>,
    backends: HashMap<(String, String), Arc<BackendState>>,
    budgets: HashMap<(String, String, u32, u32), Arc<TpsBudget>>,
}

impl HealthRegistry {
    /// An empty registry counting ejections in `ejections`.
    pub(crate) fn new(ejections: Family<AttemptLabels, Counter>) -> Self {
        Self {
            epoch: Instant::now(),
            ejections,
            backends: HashMap::new(),
            budgets: HashMap::new(),
        }
    }

    /// The runtime state for a snapshot's rules, reusing what is known about backends and
    /// budgets it shares with earlier snapshots. State nothing refers to any more is dropped.
    pub(crate) fn runtime_for(&mut self, snapshots: &[&Arc<Snapshot>]) -> Vec<Arc<RouteRuntime>> {
        let mut backends = HashMap::new();
        let mut budgets = HashMap::new();
        let runtimes = snapshots
            .iter()
            .map(|snapshot| Arc::new(self.build(&snapshot.config, &mut backends, &mut budgets)))
            .collect();
        self.backends = backends;
        self.budgets = budgets;
        runtimes
    }

    fn build(
        &self,
        config: &GatewayConfig,
        backends: &mut HashMap<(String, String), Arc<BackendState>>,
        budgets: &mut HashMap<(String, String, u32, u32), Arc<TpsBudget>>,
    ) -> RouteRuntime {
        let rules = config
            .routes
            .rules()
            .iter()
            .map(|rule| {
                let states = rule
                    .backends
                    .iter()
                    .map(|backend| {
                        let key = (
                            config.provider(backend.provider).name.to_string(),
                            backend.model.clone().unwrap_or_default(),
                        );
                        let state = self.backends.get(&key).cloned().unwrap_or_else(|| {
                            Arc::new(BackendState::new(
                                self.epoch,
                                key.0.clone(),
                                key.1.clone(),
                                self.ejections.clone(),
                            ))
                        });
                        backends.entry(key).or_insert(state).clone()
                    })
                    .collect();
                let retry = &rule.policy.retry;
                let key = (
                    rule.route.to_string(),
                    rule.name.clone(),
                    retry.budget_percent,
                    retry.budget_min_per_second,
                );
                let budget = self.budgets.get(&key).cloned().unwrap_or_else(|| {
                    Arc::new(TpsBudget::new(
                        Duration::from_secs(1),
                        retry.budget_min_per_second,
                        retry.budget_percent as f32 / 100.0,
                    ))
                });
                let budget = budgets.entry(key).or_insert(budget).clone();
                RuleRuntime {
                    backends: states,
                    budget,
                }
            })
            .collect();
        RouteRuntime { rules }
    }

    /// Every backend's state, for `/config`.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let mut entries: Vec<(&(String, String), &Arc<BackendState>)> =
            self.backends.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries
            .into_iter()
            .map(|((provider, model), state)| {
                let mut value = state.describe();
                value["provider"] = provider.clone().into();
                value["model"] = model.clone().into();
                value
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierDetection {
        OutlierDetection {
            consecutive_failures: 3,
            ejection_time: Duration::from_secs(10),
        }
    }

    fn test_state() -> BackendState {
        BackendState::new(
            Instant::now(),
            "default/p".into(),
            String::new(),
            Family::default(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn ejects_after_consecutive_failures_then_probes_once() {
        let state = test_state();
        assert!(!state.on_failure(&policy(), false, "test"));
        state.on_first_byte(Duration::from_millis(10));
        assert!(!state.on_failure(&policy(), false, "test"));
        assert!(
            state.on_failure(&policy(), false, "test"),
            "a first byte alone does not end a run of failures: a stream may still break"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        state.on_first_byte(Duration::from_millis(10));
        state.on_completed();
        assert!(!state.on_failure(&policy(), false, "test"));
        assert!(!state.on_failure(&policy(), false, "test"));
        assert!(
            state.on_failure(&policy(), false, "test"),
            "the third failure in a row ejects"
        );
        assert!(
            !state.on_failure(&policy(), false, "test"),
            "a failure while out is no new ejection"
        );
        assert_eq!(state.availability(), Availability::Ejected);

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(state.availability(), Availability::Probe);
        assert!(state.claim_probe());
        assert!(!state.claim_probe(), "one probe at a time");
        assert_eq!(state.availability(), Availability::Ejected);

        assert!(
            state.on_failure(&policy(), true, "test"),
            "a failed probe ejects again at once"
        );
        state.release_probe();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(state.claim_probe());
        state.on_first_byte(Duration::from_millis(10));
        assert_eq!(state.availability(), Availability::Healthy);
        state.on_completed();
        assert_eq!(state.consecutive_failures.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_takes_slow_samples_at_once_and_forgets_them_slowly() {
        let state = test_state();
        state.on_first_byte(Duration::from_millis(500));
        let slow = state.latency_cost();
        assert!((slow - 500e6).abs() < 1e6, "{slow}");
        tokio::time::advance(Duration::from_secs(1)).await;
        state.on_first_byte(Duration::from_millis(10));
        let after_fast = state.latency_cost();
        assert!(after_fast < slow && after_fast > 10e6, "{after_fast}");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(state.latency_cost() < 1e6, "old news decays away");
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_raise_the_cost_and_are_counted_until_dropped() {
        let state = Arc::new(test_state());
        let idle = state.latency_cost();
        let guard = state.start();
        assert_eq!(state.outstanding(), 1);
        assert!((state.latency_cost() - 2.0 * idle).abs() < 1.0);
        drop(guard);
        assert_eq!(state.outstanding(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn hold_off_keeps_a_backend_out_without_counting_a_failure() {
        let state = test_state();
        state.hold_off(Duration::from_secs(2));
        assert_eq!(state.availability(), Availability::Ejected);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(state.availability(), Availability::Probe);
        assert_eq!(state.consecutive_failures.load(Ordering::Relaxed), 0);
    }
}
