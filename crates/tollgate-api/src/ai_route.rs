//! `AIRoute`: which requests go to which provider and model.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ParentReference, RouteParentStatus};

/// Routes AI requests arriving at a Gateway to model providers. Attaches to Gateways through
/// `parentRefs`, as Gateway API routes do.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "AIRoute",
    namespaced,
    status = "AIRouteStatus",
    shortname = "air",
    category = "tollgate",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.parents[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteSpec {
    /// The Gateways (and optionally their listeners) this route attaches to.
    pub parent_refs: Vec<ParentReference>,
    /// Rules, each matching requests and naming the backends that serve them. A request uses
    /// the first rule that matches: rules with an exact `model` match win over catch-all rules;
    /// among equals, the oldest route wins (creation time), then namespace, name and rule
    /// position. A route's rules serve every listener of the Gateways it attaches to.
    pub rules: Vec<AIRouteRule>,
}

/// One routing rule: what it matches and where it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteRule {
    /// An optional name for the rule, shown in metrics and logs instead of its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions on the request; the rule applies when any one matches. No matches means the
    /// rule applies to every request.
    #[serde(default)]
    pub matches: Vec<AIRouteMatch>,
    /// The backends that serve matching requests; one is picked at random by weight.
    pub backends: Vec<AIRouteBackend>,
}

/// A condition on an AI request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteMatch {
    /// The exact model name the caller asks for (the `model` field of the request). It may be
    /// an alias such as `fast`, which the rule's backends resolve to real models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// A provider and the upstream model to ask it for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteBackend {
    /// Name of a `ModelProvider` in the route's namespace.
    pub provider: String,
    /// The model to request upstream, replacing the caller's. Defaults to the requested model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Relative share of traffic among this rule's backends. Default 1; 0 disables the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub weight: Option<u32>,
}

/// What Tollgate observed about this route, per parent Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteStatus {
    /// One entry per parent Gateway this route attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<RouteParentStatus>,
}
