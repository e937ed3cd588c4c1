//! What [`super::decode`] checks beyond the schema: references from one part of the
//! configuration to another, and patterns the proxy compiles, so that a snapshot the proxy
//! accepts is one it can serve without a panic or a silently missing policy.

use tollgate_mcp::policy::{PolicyError, ToolPolicy};

use super::WireError;
use crate::{GatewayConfig, PathRewrite};

/// Whether every backend names a provider of the snapshot, every MCP server's tool policy
/// compiles, and every Service route can be sent on.
pub(super) fn servable(config: &GatewayConfig) -> Result<(), WireError> {
    for (r, rule) in config.routes.rules().iter().enumerate() {
        for (b, backend) in rule.backends.iter().enumerate() {
            if backend.provider.0 >= config.providers.len() {
                return Err(WireError::Invalid {
                    path: format!("config.routes[{r}].backends[{b}].provider"),
                    reason: format!(
                        "provider {} does not exist: the snapshot has {} provider(s)",
                        backend.provider.0,
                        config.providers.len()
                    ),
                });
            }
        }
    }
    for (e, endpoint) in config.mcp.iter().enumerate() {
        for (s, server) in endpoint.servers.iter().enumerate() {
            let compiled = ToolPolicy::new(
                server.rules.clone(),
                server.grants.clone(),
                server.argument_rules.clone(),
            );
            if let Err(error) = compiled {
                let field = match error {
                    PolicyError::InvalidRegex { index, .. } => format!("[{index}].deny"),
                    PolicyError::EmptyArgument { index } => format!("[{index}].argument"),
                };
                return Err(WireError::Invalid {
                    path: format!("config.mcp[{e}].servers[{s}].argument_rules{field}"),
                    reason: error.to_string(),
                });
            }
        }
    }
    service_routes(config)
}

/// Whether every Service backend has a host and a port, and every rewrite gives a path.
fn service_routes(config: &GatewayConfig) -> Result<(), WireError> {
    for (r, rule) in config.service_routes.rules().iter().enumerate() {
        for (b, backend) in rule.backends.iter().enumerate() {
            let path = |field: &str| format!("config.service_routes[{r}].backends[{b}].{field}");
            if backend.port == 0 {
                return Err(WireError::Invalid {
                    path: path("port"),
                    reason: "port 0 cannot be connected to".into(),
                });
            }
            if backend.host.is_empty() {
                return Err(WireError::Invalid {
                    path: path("host"),
                    reason: "a backend needs a host".into(),
                });
            }
        }
        let rewritten = match &rule.rewrite {
            Some(PathRewrite::FullPath(path) | PathRewrite::PrefixMatch(path)) => Some(path),
            None => None,
        };
        if rewritten.is_some_and(|path| !path.starts_with('/')) {
            return Err(WireError::Invalid {
                path: format!("config.service_routes[{r}].rewrite"),
                reason: "a rewritten path must start with /".into(),
            });
        }
    }
    Ok(())
}

/// A path `serde_path_to_error` reports inside the configuration, as a path from the
/// envelope.
pub(super) fn path_in_config(path: &str) -> String {
    match path {
        "." => "config".to_owned(),
        _ => format!("config.{path}"),
    }
}

/// A schema error's message without serde_json's position, which would count from the start
/// of the configuration rather than of the bytes received: the path says where instead.
pub(super) fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(bare) => bare.to_owned(),
        None => message,
    }
}
