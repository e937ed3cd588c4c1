//! MCP endpoints: paths of a Gateway where callers reach several MCP servers as one.

use serde::{Deserialize, Serialize};
use std::time::Duration;
pub use tollgate_mcp::policy::{ArgumentRule, Grant, ToolRules};

use crate::{Access, ObjectRef, Secret};

/// One virtual MCP server: what a rule with `mcp` serves at its paths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpEndpoint {
    /// The AIRoute (or HTTPRoute) it comes from.
    pub route: ObjectRef,
    /// The rule's name.
    pub rule: String,
    /// The paths it serves (exact).
    pub paths: Vec<String>,
    /// The hosts it serves (exact or `*.` wildcard names); every host when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The upstream servers, in declaration order; their prefixes differ.
    pub servers: Vec<McpServer>,
    /// The secret whose SHA-256 seals session ids.
    pub session_key: Secret,
    /// Who may use it (every list must allow the caller).
    pub access: Vec<Access>,
}

/// One upstream MCP server, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    /// The MCPServer resource.
    pub name: ObjectRef,
    /// The prefix of its names in the aggregate (`<prefix>__<tool>`).
    pub prefix: String,
    /// Its endpoint.
    pub url: String,
    /// The transport it speaks.
    pub transport: McpTransport,
    /// A bearer token it is sent.
    pub bearer: Option<Secret>,
    /// Further headers it is sent.
    pub headers: Vec<(String, Secret)>,
    /// Its tools' server-wide rules.
    pub rules: ToolRules,
    /// Per-identity grants.
    pub grants: Vec<Grant>,
    /// Refusals by argument.
    pub argument_rules: Vec<ArgumentRule>,
    /// Time allowed to connect.
    #[serde(with = "crate::durations::millis")]
    pub connect_timeout: Duration,
    /// Time allowed for one request until its answer (or first streamed event).
    #[serde(with = "crate::durations::millis")]
    pub request_timeout: Duration,
}

impl McpEndpoint {
    /// Whether the endpoint serves requests for `path` on `host`.
    pub fn serves(&self, path: &str, host: &str) -> bool {
        self.paths.iter().any(|p| p == path)
            && crate::hostnames::host_rank(&self.hostnames, host).is_some()
    }
}

/// MCP transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum McpTransport {
    /// Streamable HTTP.
    StreamableHttp,
    /// The older HTTP+SSE transport.
    Sse,
}
