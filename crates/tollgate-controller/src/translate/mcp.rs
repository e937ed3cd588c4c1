//! MCPServers → [`McpServer`]s: endpoint, credentials, prefix and tool rules, validated so
//! that a bad pattern or prefix is reported here rather than failing calls.

use std::collections::BTreeMap;
use std::time::Duration;
use tollgate_api::{MCPServer, MCPTransport};
use tollgate_config::{ArgumentRule, Grant, McpServer, McpTransport, ObjectRef, Secret, ToolRules};
use tollgate_mcp::policy::ToolPolicy;

use super::providers::parse_duration;
use super::secrets::SecretIndex;
use super::{name_of, namespace_of};
use crate::Diagnostic;

const KIND: &str = "MCPServer";
/// Default time allowed to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for one upstream request's answer to begin.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every MCP server by namespace/name: `Some` when valid, `None` when it has errors.
pub(super) type McpServers = BTreeMap<ObjectRef, Option<McpServer>>;

pub(super) fn translate_all(
    servers: &[MCPServer],
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> McpServers {
    servers
        .iter()
        .map(|server| {
            let name = ObjectRef::new(namespace_of(&server.metadata), name_of(&server.metadata));
            let before = diagnostics.len();
            let translated = translate(server, &name, secrets, diagnostics);
            let clean = !diagnostics[before..].iter().any(Diagnostic::is_error);
            (name, translated.filter(|_| clean))
        })
        .collect()
}

fn translate(
    server: &MCPServer,
    name: &ObjectRef,
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<McpServer> {
    let spec = &server.spec;
    let mut error = |field: &str, reason: &'static str, message: String| {
        diagnostics.push(Diagnostic::error(
            KIND,
            &name.namespace,
            &name.name,
            field,
            reason,
            message,
        ));
    };
    match url::Url::parse(&spec.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
        _ => error(
            "spec.url",
            "InvalidURL",
            format!("{:?} is not an http(s) URL", spec.url),
        ),
    }
    let prefix = spec
        .tool_prefix
        .clone()
        .unwrap_or_else(|| name.name.clone());
    if let Err(e) = tollgate_mcp::names::validate_prefix(&prefix) {
        let field = if spec.tool_prefix.is_some() {
            "spec.toolPrefix"
        } else {
            "metadata.name"
        };
        error(
            field,
            "InvalidPrefix",
            format!("{e}; set spec.toolPrefix to letters, digits, '-' and single '_'"),
        );
    }
    let mut secret = |field: String, namespace: &str, secret: &str, key: &str| match secrets
        .value(namespace, secret, key)
    {
        Ok(value)
            if !value.trim().is_empty()
                && value
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b == b' ') =>
        {
            Some(Secret::new(value.trim()))
        }
        Ok(_) => {
            error(
                &field,
                "InvalidSecret",
                format!(
                    "key {key:?} of Secret {namespace}/{secret} is empty or not a header value"
                ),
            );
            None
        }
        Err(e) => {
            error(&field, e.reason(), e.message(namespace, secret, key));
            None
        }
    };
    let bearer = spec
        .auth
        .as_ref()
        .and_then(|r| secret("spec.auth".into(), &name.namespace, &r.name, &r.key));
    let headers: Vec<(String, Secret)> = spec
        .headers
        .iter()
        .enumerate()
        .filter_map(|(i, header)| {
            let value = secret(
                format!("spec.headers[{i}].secretRef"),
                &name.namespace,
                &header.secret_ref.name,
                &header.secret_ref.key,
            )?;
            Some((header.name.to_ascii_lowercase(), value))
        })
        .collect();
    for (i, header) in spec.headers.iter().enumerate() {
        if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            error(
                &format!("spec.headers[{i}].name"),
                "InvalidHeader",
                format!("{:?} is not a header name", header.name),
            );
        }
    }
    let rules = spec
        .tools
        .as_ref()
        .map(|t| ToolRules {
            allow: t.allow.clone(),
            deny: t.deny.clone(),
        })
        .unwrap_or_default();
    let grants: Vec<Grant> = spec
        .access
        .iter()
        .map(|g| Grant {
            teams: g.covers.teams.clone(),
            users: g.covers.users.clone(),
            keys: g
                .covers
                .keys
                .iter()
                .map(|k| format!("{}/{k}", name.namespace))
                .collect(),
            allow: g.allow.clone(),
            deny: g.deny.clone(),
        })
        .collect();
    let argument_rules: Vec<ArgumentRule> = spec
        .argument_rules
        .iter()
        .map(|r| ArgumentRule {
            tool: r.tool.clone(),
            argument: r.argument.clone(),
            deny: r.deny.clone(),
        })
        .collect();
    if let Err(e) = ToolPolicy::new(rules.clone(), grants.clone(), argument_rules.clone()) {
        error("spec.argumentRules", "InvalidRule", e.to_string());
    }
    let timeout = |value: Option<&String>,
                   field: &str,
                   default: Duration,
                   error: &mut dyn FnMut(&str, &'static str, String)| match value
    {
        None => default,
        Some(text) => parse_duration(text).unwrap_or_else(|message| {
            error(field, "InvalidDuration", message);
            default
        }),
    };
    let timeouts = spec.timeouts.clone().unwrap_or_default();
    let connect_timeout = timeout(
        timeouts.connect.as_ref(),
        "spec.timeouts.connect",
        CONNECT_TIMEOUT,
        &mut error,
    );
    let request_timeout = timeout(
        timeouts.request.as_ref(),
        "spec.timeouts.request",
        REQUEST_TIMEOUT,
        &mut error,
    );
    Some(McpServer {
        name: name.clone(),
        prefix,
        url: spec.url.clone(),
        transport: match spec.transport {
            MCPTransport::StreamableHTTP => McpTransport::StreamableHttp,
            MCPTransport::SSE => McpTransport::Sse,
        },
        bearer,
        headers,
        rules,
        grants,
        argument_rules,
        connect_timeout,
        request_timeout,
    })
}
