//! `BudgetPolicy`: spend and rate limits for a subject.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ResourceStatus;

/// Spend and rate limits for one subject: an API key, a user, a team, a route, or everyone.
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
    pub alert_thresholds: Vec<u8>,
}

/// The subject of a budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSubject {
    /// The kind of subject.
    pub kind: BudgetSubjectKind,
    /// The subject's name: the key id, user, team or route name. Unset for `Global`.
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
    /// Every request through the Gateway.
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

/// Windows a limit counts over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetWindow {
    /// A rolling minute.
    Minute,
    /// A rolling hour.
    Hour,
    /// A calendar day, UTC.
    Day,
    /// A calendar month, UTC.
    #[default]
    Month,
}

/// What happens when a limit is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BudgetEnforcement {
    /// Refuse the request with 429.
    #[default]
    Hard,
    /// Allow the request, but record and alert.
    Soft,
}

/// What happens when the budget store is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailureMode {
    /// Let requests through uncounted.
    Open,
    /// Refuse requests.
    #[default]
    Closed,
}

/// What Tollgate observed about this policy.
pub type BudgetPolicyStatus = ResourceStatus;
