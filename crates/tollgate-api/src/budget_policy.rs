//! `BudgetPolicy`: spend and rate limits for a subject.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Spend and rate limits for one subject: an API key, a user, a team, a route, or everyone.
/// Every policy applies to every Gateway Tollgate serves, and a request must fit every policy
/// whose subject it belongs to. Before a request is routed, its worst case (input tokens
/// counted from the prompt, output at `max_tokens` or `defaultMaxOutputTokens`) is reserved
/// against each limit; when its response ends, the reservation is settled to what it used.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "BudgetPolicy",
    namespaced,
    status = "BudgetPolicyStatus",
    shortname = "bp",
    category = "tollgate",
    printcolumn = r#"{"name":"Subject","type":"string","jsonPath":".spec.subject.kind"}"#,
    printcolumn = r#"{"name":"Name","type":"string","jsonPath":".spec.subject.name"}"#,
    printcolumn = r#"{"name":"Enforcement","type":"string","jsonPath":".spec.enforcement"}"#,
    printcolumn = r#"{"name":"Used","type":"string","jsonPath":".status.usage[0].used"}"#,
    printcolumn = r#"{"name":"Limit","type":"string","jsonPath":".status.usage[0].limit"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BudgetPolicySpec {
    /// Whose requests this policy counts.
    pub subject: BudgetSubject,
    /// The limits; a request must fit every one of them.
    pub limits: Vec<BudgetLimit>,
    /// What happens when a limit is reached. Default `Hard`.
    #[serde(default)]
    pub enforcement: BudgetEnforcement,
    /// What happens when the budget store cannot be reached. Default `Closed`.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Percentages of a limit at which an alert is emitted once per window (for example 50, 80, 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Above 100 only `Soft` policies can reach.
    #[schemars(inner(range(min = 1, max = 1000)))]
    pub alert_thresholds: Vec<u16>,
    /// When the worst case of a request does not fit a `usd` or `tokens` limit, lower the
    /// request's `max_tokens` so that it fits instead of refusing it. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clamp: bool,
    /// The output tokens reserved for a request that sets no `max_tokens`. Default 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_max_output_tokens: Option<u64>,
    /// The IANA time zone that `Day` and `Month` windows follow, such as `Europe/Paris`.
    /// Default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// MCP tools whose calls this policy counts, as callers name them (`github__create_*`;
    /// `*` matches any run of characters). Set, the policy counts each call of a matching tool
    /// as one request — per-tool call rate limits and call budgets — and no model requests;
    /// only `requests` limits apply. A refused call gets JSON-RPC error -32053.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

/// The subject of a budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSubject {
    /// The kind of subject.
    pub kind: BudgetSubjectKind,
    /// The subject's name: for `Key`, the name of the API key's Secret in the policy's
    /// namespace; for `User` and `Team`, the user or team as labelled on keys or mapped from
    /// token claims; for `Route`, the name of an AIRoute in the policy's namespace. Unset for
    /// `Global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Kinds of budget subject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetSubjectKind {
    /// One API key, by key id.
    Key,
    /// One user.
    User,
    /// One team.
    Team,
    /// One AIRoute.
    Route,
    /// Every request.
    #[default]
    Global,
}

/// One limit within a window. Exactly one of `usd`, `tokens` and `requests` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetLimit {
    /// The window the limit counts over.
    pub window: BudgetWindow,
    /// Maximum spend in USD, a decimal string such as `"25.00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?$"))]
    pub usd: Option<String>,
    /// Maximum tokens (input plus output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Maximum number of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
}

/// Windows a limit counts over. `Minute` and `Hour` roll: they count the last 60 seconds or
/// minutes, in slots of one sixtieth. `Day` and `Month` are calendar periods in the policy's
/// time zone and reset at their end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetWindow {
    /// A rolling minute.
    Minute,
    /// A rolling hour.
    Hour,
    /// A calendar day.
    Day,
    /// A calendar month.
    #[default]
    Month,
}

/// What happens when a limit is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetEnforcement {
    /// Refuse the request with 429 (`budget_exceeded` for USD and token budgets,
    /// `rate_limit_exceeded` for per-minute limits) and a `retry-after` until it would fit.
    #[default]
    Hard,
    /// Allow the request, but count it, log it and raise the over-limit metric.
    Soft,
}

/// What happens when the budget store is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailureMode {
    /// Let requests through uncounted (and count the store failure in a metric).
    Open,
    /// Refuse requests with 503 until the store answers again.
    #[default]
    Closed,
}

/// What Tollgate observed about this policy: whether it is valid, and how much of each limit
/// its current window has used, as the proxies last reported it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, and why not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One entry per limit, in `spec.limits` order. Counts shared through Redis are the same
    /// at every proxy; with the memory store each proxy counts alone and the highest count is
    /// shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<BudgetUsage>,
}

/// One limit's use in its current window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetUsage {
    /// The window: `minute`, `hour`, `day` or `month`.
    pub window: String,
    /// What is counted: `usd`, `tokens` or `requests`.
    pub unit: String,
    /// The limit, in the unit.
    pub limit: String,
    /// How much the window has used.
    pub used: String,
    /// How much is left.
    pub remaining: String,
    /// When the window resets (calendar windows) or its oldest count stops counting (rolling
    /// windows), RFC 3339.
    pub resets_at: String,
    /// When a proxy reported these counts, RFC 3339.
    pub reported_at: String,
}
