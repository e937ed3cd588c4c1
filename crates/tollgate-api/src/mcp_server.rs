//! `MCPServer`: one upstream MCP server and the rules for its tools.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ai_route::Access;
use crate::common::{ResourceStatus, SecretKeyRef};

/// One upstream MCP server, how to reach it, and which of its tools callers may use.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "MCPServer",
    namespaced,
    status = "MCPServerStatus",
    shortname = "mcps",
    category = "tollgate",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Prefix","type":"string","jsonPath":".spec.toolPrefix"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MCPServerSpec {
    /// The server's MCP endpoint URL.
    pub url: String,
    /// The transport the server speaks. Default `StreamableHTTP`.
    #[serde(default)]
    pub transport: MCPTransport,
    /// A bearer token for the upstream, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SecretKeyRef>,
    /// Prefix added to this server's tool, prompt and resource names in the aggregated listing.
    /// Defaults to the resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_prefix: Option<String>,
    /// Which tools are exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<MCPToolRules>,
    /// Headers sent with every upstream request, their values from Secrets (for servers
    /// that want a key in a header of their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<MCPHeader>,
    /// Which tools particular teams, users or keys may see and call. A caller covered by a
    /// grant may use what its grants allow (instead of `tools.allow`); `tools.deny` and every
    /// covering grant's `deny` still win. Callers no grant covers get `tools`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<MCPGrant>,
    /// Calls refused by their arguments: a regular expression that must not match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argument_rules: Vec<MCPArgumentRule>,
    /// Limits on how long Tollgate waits for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<MCPTimeouts>,
}

/// A header sent upstream, its value from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPHeader {
    /// The header's name.
    pub name: String,
    /// Where its value is.
    pub secret_ref: SecretKeyRef,
}

/// Tools some callers may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPGrant {
    /// Who the grant covers: teams, users, API key Secrets.
    #[serde(flatten)]
    pub covers: Access,
    /// Tools (glob patterns) they may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Tools (glob patterns) they may not use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// A refusal by argument: calls of `tool` whose `argument` matches `deny` are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPArgumentRule {
    /// The tools (a glob pattern, unprefixed) the rule applies to.
    pub tool: String,
    /// A top-level argument's name, or `*` for every value anywhere in the arguments.
    pub argument: String,
    /// A regular expression; a call whose argument matches it is refused.
    pub deny: String,
}

/// Timeouts for calls to one MCP server, as Gateway API durations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPTimeouts {
    /// Time allowed to open a connection. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub connect: Option<String>,
    /// Time allowed for one upstream request until its answer (or, for a streamed answer,
    /// its first event) arrives. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub request: Option<String>,
}

/// MCP transports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MCPTransport {
    /// Streamable HTTP, the current MCP transport.
    #[default]
    StreamableHTTP,
    /// The older HTTP+SSE transport.
    SSE,
}

/// Allow and deny lists of tool names (glob patterns such as `read_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MCPToolRules {
    /// Tools that are exposed; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Tools that are never exposed, even when allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// What Tollgate observed about this server.
pub type MCPServerStatus = ResourceStatus;
