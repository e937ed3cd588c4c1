//! `JWTProvider`: an identity provider whose JWTs callers may present instead of API keys.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ResourceStatus;

/// An identity provider (an OIDC issuer, say) whose signed JWTs are accepted as bearer
/// credentials on every Gateway, next to API keys. A token is checked against the provider
/// named by its `iss`: signature (with the provider's published keys), `exp` and `nbf` (with
/// `clockSkew`), and audience; its claims map to the caller's user and team.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "JWTProvider",
    namespaced,
    status = "JWTProviderStatus",
    shortname = "jwtp",
    category = "tollgate",
    printcolumn = r#"{"name":"Issuer","type":"string","jsonPath":".spec.issuer"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct JWTProviderSpec {
    /// The exact `iss` claim of the provider's tokens.
    pub issuer: String,
    /// Audiences accepted: a token must name one of them in `aud`. Not checked when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where the provider's public signing keys (a JSON Web Key Set) come from.
    pub jwks: JwksSource,
    /// Which claims name the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimMappings>,
    /// Allowed difference between the provider's clock and Tollgate's, for `exp` and `nbf`,
    /// as a Gateway API duration. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub clock_skew: Option<String>,
}

/// A JSON Web Key Set: fetched from `uri`, or given `inline`. Exactly one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwksSource {
    /// The provider's `jwks_uri`. Keys are fetched on first use, cached, refreshed every
    /// `refreshInterval`, and fetched again (at most every 10s) when a token names an unknown
    /// key id, so rotated keys are picked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The key set itself, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// How long fetched keys are used before they are fetched again. Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub refresh_interval: Option<String>,
}

/// Claims that name the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMappings {
    /// The claim holding the user. Default `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The claim holding the team; when it is a list, its first entry. No team when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// What Tollgate observed about this provider.
pub type JWTProviderStatus = ResourceStatus;
