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

use crate::labels::{Label, LabelSetDigest};
use std::hash::{Hash, Hasher};

/// Labels of a request.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `namespace/name` of the AIRoute, empty when none was chosen.
    pub route: Label,
    /// The rule's model, `*` for a catch-all rule, empty when no rule was chosen.
    pub model: Label,
    /// `namespace/name` of the provider, empty when none was chosen.
    pub provider: Label,
    /// The HTTP status returned to the caller.
    pub status: u16,
    /// `ok`, a stable error code, or `client_disconnect`.
    pub outcome: &'static str,
}

/// Labels of token counts.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    /// `namespace/name` of the AIRoute.
    pub route: Label,
    /// The rule's model.
    pub model: Label,
    /// `namespace/name` of the provider.
    pub provider: Label,
    /// `input`, `output`, `cached` or `reasoning`.
    pub r#type: &'static str,
}

/// Labels of per-request latencies and token histograms.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabels {
    /// `namespace/name` of the AIRoute.
    pub(crate) route: Label,
    /// The rule's model.
    pub(crate) model: Label,
    /// `namespace/name` of the provider.
    pub(crate) provider: Label,
}

/// Labels of OpenTelemetry's `gen_ai.client.token.usage` histogram, named as its
/// attributes are.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GenAiTokenLabels {
    /// `chat`, `embeddings`, ...
    pub(crate) gen_ai_operation_name: &'static str,
    /// The provider's kind (`openai`, `anthropic`, `aws.bedrock`, ...).
    pub(crate) gen_ai_provider_name: &'static str,
    /// The rule's model (as [`ModelLabels::model`]).
    pub(crate) gen_ai_request_model: Label,
    /// `input` or `output`.
    pub(crate) gen_ai_token_type: &'static str,
}

/// Labels of spend.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CostLabels {
    /// The caller's team (from its key or token), empty when it has none.
    pub(crate) team: String,
    /// The rule's model.
    pub(crate) model: Label,
}

/// Labels of a budget limit's gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BudgetLimitLabels {
    /// `namespace/name` of the BudgetPolicy.
    pub(crate) policy: String,
    /// `minute`, `hour`, `day` or `month`.
    pub(crate) window: &'static str,
    /// `usd`, `tokens` or `requests`.
    pub(crate) unit: &'static str,
}

/// Labels of MCP tool calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ToolCallLabels {
    /// The server's prefix (empty when the name named no configured server).
    pub(crate) server: String,
    /// The tool, only for calls the upstream served (`ok`, `tool_error`): other names come
    /// from callers, and would let them grow the label set without bound.
    pub(crate) tool: String,
    /// `ok`, `tool_error`, `error`, `refused`, `invalid` or `upstream_unavailable`.
    pub(crate) outcome: &'static str,
}

/// Labels of upstream attempts and ejections.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AttemptLabels {
    /// `namespace/name` of the provider.
    pub(crate) provider: String,
    /// `ok`, `connect_failure`, `timeout`, `rate_limited` or `server_error`.
    pub(crate) outcome: &'static str,
}

/// Labels of a rule's retries.
#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabels {
    /// `namespace/name` of the AIRoute.
    pub(crate) route: Label,
    /// The rule's name.
    pub(crate) rule: Label,
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

// Label sets that every request records hash as one number (see [`LabelSetDigest`]).
impl Hash for RequestLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .label(&self.route)
            .label(&self.model)
            .label(&self.provider)
            .number(u64::from(self.status))
            .text(self.outcome)
            .feed(state);
    }
}

impl Hash for TokenLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .label(&self.route)
            .label(&self.model)
            .label(&self.provider)
            .text(self.r#type)
            .feed(state);
    }
}

impl Hash for ModelLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .label(&self.route)
            .label(&self.model)
            .label(&self.provider)
            .feed(state);
    }
}

impl Hash for GenAiTokenLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .text(self.gen_ai_operation_name)
            .text(self.gen_ai_provider_name)
            .label(&self.gen_ai_request_model)
            .text(self.gen_ai_token_type)
            .feed(state);
    }
}

impl Hash for CostLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .text(&self.team)
            .label(&self.model)
            .feed(state);
    }
}

impl Hash for AttemptLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .text(&self.provider)
            .text(self.outcome)
            .feed(state);
    }
}

impl Hash for RuleLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelSetDigest::new()
            .label(&self.route)
            .label(&self.rule)
            .feed(state);
    }
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
    /// Tokens per request, as OpenTelemetry's `gen_ai.client.token.usage`.
    pub(crate) token_usage: Family<GenAiTokenLabels, Histogram>,
    /// From a streamed request's arrival to its first answer byte.
    pub(crate) time_to_first_token: Family<ModelLabels, Histogram>,
    /// A stream's time after its first byte, per further output token.
    pub(crate) time_per_output_token: Family<ModelLabels, Histogram>,
    /// Spend in USD.
    pub(crate) cost: Family<CostLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
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
    /// MCP tool calls by server, tool and outcome.
    pub(crate) mcp_tool_calls: Family<ToolCallLabels, Counter>,
    /// MCP tool call durations.
    pub(crate) mcp_tool_call_duration: Family<ToolCallLabels, Histogram>,
    /// What each budget limit has used in its current window (dollars, tokens or requests).
    pub(crate) budget_used: Family<BudgetLimitLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// What each budget limit has left in its current window.
    pub(crate) budget_remaining:
        Family<BudgetLimitLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
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
            token_usage: Family::new_with_constructor(|| {
                // OpenTelemetry's advised boundaries for gen_ai.client.token.usage.
                Histogram::new([
                    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
                    1048576.0, 4194304.0, 16777216.0, 67108864.0,
                ])
            }),
            time_to_first_token: Family::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                    5.0, 7.5, 10.0,
                ])
            }),
            time_per_output_token: Family::new_with_constructor(|| {
                Histogram::new([
                    0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                    0.5, 0.75, 1.0, 2.5,
                ])
            }),
            cost: Family::default(),
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
            mcp_tool_calls: Family::default(),
            mcp_tool_call_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ])
            }),
            budget_used: Family::default(),
            budget_remaining: Family::default(),
        };
        let root = &mut *registry;
        let registry = root.sub_registry_with_prefix("tollgate");
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
            "time_to_first_token_seconds",
            "Streamed requests: time from the request to the first byte of the answer",
            metrics.time_to_first_token.clone(),
        );
        registry.register(
            "time_per_output_token_seconds",
            "Streamed requests: time after the first byte, per further output token",
            metrics.time_per_output_token.clone(),
        );
        registry.register(
            "cost_usd",
            "Spend in US dollars, by team and model",
            metrics.cost.clone(),
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
            "mcp_tool_calls",
            "MCP tool calls, by server, tool and outcome",
            metrics.mcp_tool_calls.clone(),
        );
        registry.register(
            "mcp_tool_call_duration_seconds",
            "MCP tool call durations, by server, tool and outcome",
            metrics.mcp_tool_call_duration.clone(),
        );
        registry.register(
            "budget_used",
            "What each budget limit has used in its current window (USD, tokens or requests), refreshed every --budget-gauge-interval",
            metrics.budget_used.clone(),
        );
        registry.register(
            "budget_remaining",
            "What each budget limit has left in its current window, refreshed every --budget-gauge-interval",
            metrics.budget_remaining.clone(),
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
        // OpenTelemetry's own name, outside the tollgate_ prefix, so that dashboards made for
        // GenAI clients read it.
        root.register(
            "gen_ai_client_token_usage",
            "Tokens per request, by operation, provider, model and token type",
            metrics.token_usage.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    /// The metric names a PromQL expression reads: what is left once label matchers
    /// (`{...}`), grouping lists (`by (...)`) and range selectors are taken out.
    fn metric_names(expr: &str) -> Vec<String> {
        let mut bare = String::new();
        let mut depth = 0;
        for c in expr.chars() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                _ if depth > 0 => {}
                _ => bare.push(c),
            }
        }
        let bare = bare.replace("by (", "by(");
        let mut names = Vec::new();
        let mut rest = bare.as_str();
        while let Some(at) = rest.find("by(") {
            let end = rest[at..].find(')').map_or(rest.len(), |e| at + e + 1);
            names.extend(words(&rest[..at]));
            rest = &rest[end..];
        }
        names.extend(words(rest));
        names
    }

    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("tollgate_") || w.starts_with("gen_ai_"))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_metric_the_dashboard_charts_exists() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        crate::telemetry::register_metrics(&mut registry);
        registry.register_collector(Box::new(crate::audit::AuditMetrics(
            tollgate_audit::AuditCounters::default(),
        )));
        // Empty families are not encoded: give each one sample.
        let route = || RuleLabels {
            route: "r".into(),
            rule: "0".into(),
        };
        let model = || ModelLabels {
            route: "r".into(),
            model: "m".into(),
            provider: "p".into(),
        };
        let request = RequestLabels {
            route: "r".into(),
            model: "m".into(),
            provider: "p".into(),
            status: 200,
            outcome: "ok",
        };
        metrics.requests.get_or_create(&request).inc();
        metrics
            .request_duration
            .get_or_create(&request)
            .observe(1.0);
        let _ = metrics.tokens.get_or_create(&TokenLabels {
            route: "r".into(),
            model: "m".into(),
            provider: "p".into(),
            r#type: "input",
        });
        let _ = metrics.token_usage.get_or_create(&GenAiTokenLabels {
            gen_ai_operation_name: "chat",
            gen_ai_provider_name: "openai",
            gen_ai_request_model: "m".into(),
            gen_ai_token_type: "input",
        });
        let _ = metrics.time_to_first_token.get_or_create(&model());
        let _ = metrics.time_per_output_token.get_or_create(&model());
        let _ = metrics.cost.get_or_create(&CostLabels {
            team: "t".into(),
            model: "m".into(),
        });
        let _ = metrics.config_version.get_or_create(&GatewayLabels {
            gateway: "g".into(),
        });
        let _ = metrics
            .config_reloads
            .get_or_create(&ReloadLabels { result: "applied" });
        let attempt = AttemptLabels {
            provider: "p".into(),
            outcome: "ok",
        };
        let _ = metrics.upstream_attempts.get_or_create(&attempt);
        let _ = metrics.ejections.get_or_create(&attempt);
        let _ = metrics.failovers.get_or_create(&route());
        let _ = metrics.retries.get_or_create(&route());
        let _ = metrics.retry_budget_exhausted.get_or_create(&route());
        let _ = metrics.budget_outcomes.get_or_create(&BudgetLabels {
            policy: "b".into(),
            outcome: "refused",
        });
        let _ = metrics.budget_alerts.get_or_create(&AlertLabels {
            policy: "b".into(),
            threshold: 80,
        });
        let tool_call = ToolCallLabels {
            server: "s".into(),
            tool: "t".into(),
            outcome: "ok",
        };
        let _ = metrics.mcp_tool_calls.get_or_create(&tool_call);
        let _ = metrics.mcp_tool_call_duration.get_or_create(&tool_call);
        let _ = metrics.budget_store_errors.get_or_create(&StoreLabels {
            operation: "reserve",
        });
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();

        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/grafana/tollgate.json")).unwrap();
        let mut charted = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                charted.extend(metric_names(target["expr"].as_str().unwrap()));
            }
        }
        assert!(charted.len() > 20, "{charted:?}");
        // The config push's and the controller's metrics are the binary's (`tollgate proxy`,
        // `tollgate controller`), checked there.
        for name in charted.into_iter().filter(|n| {
            !n.starts_with("tollgate_config_push_") && !n.starts_with("tollgate_controller_")
        }) {
            assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("{name} "))
                        || line.starts_with(&format!("{name}{{"))),
                "the dashboard charts {name}, which the gateway does not serve"
            );
        }
    }

    #[test]
    fn metric_names_skip_labels_and_groupings() {
        assert_eq!(
            metric_names(
                r#"sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_bucket{gen_ai_request_model=~"$model"}[5m]))"#
            ),
            ["gen_ai_client_token_usage_bucket"]
        );
    }
}
