//! `MCPServer`: one upstream MCP server and the rules for its tools.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
