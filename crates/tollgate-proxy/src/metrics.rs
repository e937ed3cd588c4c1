//! Prometheus metrics, registered once and served on the admin port.
//!
//! Labels come from configuration (route, rule model, provider), never from what a caller
//! sends, so their number is bounded by the configuration, not by traffic.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `namespace/name` of the AIRoute, empty when none was chosen.
    pub route: String,
    /// The rule's model, `*` for a catch-all rule, empty when no rule was chosen.
    pub model: String,
    /// `namespace/name` of the provider, empty when none was chosen.
    pub provider: String,
    /// The HTTP status returned to the caller.
    pub status: u16,
    /// `ok`, a stable error code, or `client_disconnect`.
    pub outcome: String,
}

/// Labels of token counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    /// `namespace/name` of the AIRoute.
    pub route: String,
    /// The rule's model.
    pub model: String,
    /// `namespace/name` of the provider.
    pub provider: String,
    /// `input`, `output`, `cached` or `reasoning`.
    pub r#type: &'static str,
}

/// Labels of upstream attempts and ejections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AttemptLabels {
    /// `namespace/name` of the provider.
    pub(crate) provider: String,
    /// `ok`, `connect_failure`, `timeout`, `rate_limited` or `server_error`.
    pub(crate) outcome: &'static str,
}

/// Labels of a rule's retries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabels {
    /// `namespace/name` of the AIRoute.
    pub(crate) route: String,
    /// The rule's name.
    pub(crate) rule: String,
}

/// Labels of configuration state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GatewayLabels {
    /// `namespace/name` of the Gateway.
    pub gateway: String,
}

/// Labels of configuration reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReloadLabels {
    /// `applied` or `rejected`.
    pub result: &'static str,
}

/// Labels of a budget policy's events.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BudgetLabels {
    /// `namespace/name` of the BudgetPolicy.
    pub(crate) policy: String,
    /// `refused` (a hard limit refused a request), `over_limit` (a soft limit was passed),
    /// `clamped` (a request's output cap was lowered to fit), or `unmetered` (served
    /// uncounted because the store failed and the policy fails open).
    pub(crate) outcome: &'static str,
}

/// Labels of a budget alert.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AlertLabels {
    /// `namespace/name` of the BudgetPolicy.
    pub(crate) policy: String,
    /// The percentage of the limit reached.
    pub(crate) threshold: u16,
}

/// Labels of budget store failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StoreLabels {
    /// `reserve`, `settle` or `alert`.
    pub(crate) operation: &'static str,
}

/// Every metric the proxy records.
#[derive(Clone)]
pub struct Metrics {
    /// Requests by route, model, provider, status and outcome.
    pub(crate) requests: Family<RequestLabels, Counter>,
    /// Time from receiving a request until its response ended.
    pub(crate) request_duration: Family<RequestLabels, Histogram>,
    /// Tokens consumed.
    pub(crate) tokens: Family<TokenLabels, Counter>,
    /// Version of the configuration in use, per Gateway.
    pub(crate) config_version: Family<GatewayLabels, Gauge>,
    /// Configuration changes applied or rejected.
    pub(crate) config_reloads: Family<ReloadLabels, Counter>,
    /// Attempts sent upstream, by provider and outcome.
    pub(crate) upstream_attempts: Family<AttemptLabels, Counter>,
    /// Backends ejected by outlier detection, by provider and the failure that did it.
    pub(crate) ejections: Family<AttemptLabels, Counter>,
    /// Retries that went to another backend.
    pub(crate) failovers: Family<RuleLabels, Counter>,
    /// Retries on the same backend after a backoff.
    pub(crate) retries: Family<RuleLabels, Counter>,
    /// Retries refused because the rule's retry budget was spent.
    pub(crate) retry_budget_exhausted: Family<RuleLabels, Counter>,
    /// What budget policies did to requests.
    pub(crate) budget_outcomes: Family<BudgetLabels, Counter>,
    /// Budget alerts fired (once per threshold and window).
    pub(crate) budget_alerts: Family<AlertLabels, Counter>,
    /// Budget store calls that failed or timed out.
    pub(crate) budget_store_errors: Family<StoreLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them with `registry` under the `tollgate_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0,
                ])
            }),
            tokens: Family::default(),
            config_version: Family::default(),
            config_reloads: Family::default(),
            upstream_attempts: Family::default(),
            ejections: Family::default(),
            failovers: Family::default(),
            retries: Family::default(),
            retry_budget_exhausted: Family::default(),
            budget_outcomes: Family::default(),
            budget_alerts: Family::default(),
            budget_store_errors: Family::default(),
        };
        let registry = registry.sub_registry_with_prefix("tollgate");
        registry.register(
            "requests",
            "AI requests handled, by route, model, provider, status and outcome",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response",
            metrics.request_duration.clone(),
        );
        registry.register(
            "tokens",
            "Tokens consumed, by route, model, provider and type",
            metrics.tokens.clone(),
        );
        registry.register(
            "budget_outcomes",
            "Requests a budget policy refused, let past a soft limit, clamped, or left unmetered",
            metrics.budget_outcomes.clone(),
        );
        registry.register(
            "budget_alerts",
            "Budget alert thresholds reached, once per policy, threshold and window",
            metrics.budget_alerts.clone(),
        );
        registry.register(
            "budget_store_errors",
            "Budget store calls that failed or timed out, by operation",
            metrics.budget_store_errors.clone(),
        );
        registry.register(
            "config_version",
            "Version of the configuration snapshot in use, per Gateway",
            metrics.config_version.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration changes, applied or rejected",
            metrics.config_reloads.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Attempts sent to providers, by provider and outcome",
            metrics.upstream_attempts.clone(),
        );
        registry.register(
            "backend_ejections",
            "Backends taken out of rotation by outlier detection",
            metrics.ejections.clone(),
        );
        registry.register(
            "failovers",
            "Retries sent to another backend",
            metrics.failovers.clone(),
        );
        registry.register(
            "retries",
            "Retries on the same backend after a backoff",
            metrics.retries.clone(),
        );
        registry.register(
            "retry_budget_exhausted",
            "Retries refused because the retry budget was spent",
            metrics.retry_budget_exhausted.clone(),
        );
        metrics
    }
}
