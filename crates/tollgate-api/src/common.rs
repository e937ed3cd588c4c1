//! Small types shared by several resources: references to Secrets and Gateways, and status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every Tollgate resource.
pub const GROUP: &str = "tollgate.dev";
/// The API version of every Tollgate resource.
pub const VERSION: &str = "v1alpha1";
/// Label that marks a Secret as holding a Tollgate API key (value `"true"`).
pub const API_KEY_LABEL: &str = "tollgate.dev/api-key";
/// Label on a Service that exposes a Gateway's proxies, naming the Gateway (in the Service's
/// namespace); the controller reports the Service's addresses in the Gateway's status.
pub const GATEWAY_LABEL: &str = "tollgate.dev/gateway";
/// Label naming the team that owns an API key Secret.
pub const TEAM_LABEL: &str = "tollgate.dev/team";
/// Label naming the user that owns an API key Secret.
pub const USER_LABEL: &str = "tollgate.dev/user";
/// Annotation on an API key Secret holding the key's SHA-256 digest (64 hex digits) instead of
/// the key itself, so the plaintext need not live in the cluster. A `sha256` data key works too.
pub const API_KEY_SHA256_ANNOTATION: &str = "tollgate.dev/api-key-sha256";
/// Annotation on an HTTPRoute whose rules send to MCPServers: the Secret key (`<secret>/<key>`,
/// in the route's namespace, at least 32 characters) whose hash seals `Mcp-Session-Id`s, as
/// `sessionKeyRef` does for an AIRoute's MCP rule.
pub const MCP_SESSION_KEY_ANNOTATION: &str = "tollgate.dev/mcp-session-key";
/// Annotation on an API key Secret: the RFC 3339 time after which the key is refused.
pub const EXPIRES_AT_ANNOTATION: &str = "tollgate.dev/expires-at";

/// A reference to one key of a Secret in the referring resource's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the resource that refers to it.
    pub name: String,
    /// Key inside the Secret's `data` or `stringData` whose value is used.
    pub key: String,
}

impl SecretKeyRef {
    /// Reads `<secret>/<key>`, as in the [`MCP_SESSION_KEY_ANNOTATION`] annotation; `None`
    /// when either part is missing.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, key) = text.trim().split_once('/')?;
        (!name.is_empty() && !key.is_empty()).then(|| Self {
            name: name.into(),
            key: key.into(),
        })
    }
}

/// A reference to the Gateway a route attaches to, as in Gateway API's `ParentReference`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// API group of the parent. Defaults to `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the parent. Defaults to `Gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the parent. Defaults to the route's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the parent Gateway.
    pub name: String,
    /// Name of one listener of the Gateway to attach to; all listeners when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// Status shared by resources that only report conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions in the Gateway API style: `Accepted`, `ResolvedRefs`, `Programmed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Per-parent status of a route, as in Gateway API's `RouteParentStatus`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent this entry describes.
    pub parent_ref: ParentReference,
    /// The controller that wrote this entry (`tollgate.dev/gateway-controller`).
    pub controller_name: String,
    /// `Accepted` and `ResolvedRefs` conditions for this parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
