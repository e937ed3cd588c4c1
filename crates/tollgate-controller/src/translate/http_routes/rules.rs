//! One HTTPRoute rule → what it serves: a model rule (its backends are ModelProviders), an
//! MCP endpoint (MCPServers) or a Service rule (Services, or no usable backend at all). A rule
//! with an unsupported or invalid value serves nothing; its backends that do not resolve are
//! left out.

use gateway_api::httproutes::{HttpRoute, HttpRouteRules};
use std::collections::BTreeMap;
use tollgate_api::{MCP_SESSION_KEY_ANNOTATION, SecretKeyRef};
use tollgate_config::{
    Match, McpServer, ObjectRef, RouteTimeouts, RulePolicy, Secret, ServiceRule,
};

use super::backends::{self, Kind, Resolved};
use super::{Report, UNSUPPORTED, filters, matches};
use crate::translate::routes::{DEFAULT_MCP_PATH, MIN_SESSION_KEY, References};

/// What a valid rule serves, before the Gateway it is attached to gives it host names.
#[derive(Clone, Debug)]
pub(super) enum Programmed {
    /// Model requests, sent to these providers by weight.
    Models {
        matches: Vec<Match>,
        providers: Vec<(ObjectRef, u32)>,
        policy: RulePolicy,
    },
    /// An MCP endpoint at these paths.
    Mcp {
        paths: Vec<String>,
        servers: Vec<McpServer>,
        session_key: Secret,
    },
    /// Plain HTTP to Services.
    Services(ServiceRule),
}

/// Translates rule `index` of `route` (named `name`), reporting what is wrong on `report`;
/// `None` when it serves nothing.
pub(super) fn translate(
    route: &HttpRoute,
    index: usize,
    rule: &HttpRouteRules,
    references: &References<'_>,
    report: &mut Report<'_>,
) -> Option<Programmed> {
    let field = |sub: &str| format!("spec.rules[{index}].{sub}");
    // Whether the rule itself is wrong, as opposed to some of its backends.
    let mut invalid = false;
    let mut read_matches = Vec::new();
    for (m, matched) in rule.matches.iter().flatten().enumerate() {
        match matches::translate(matched) {
            Ok(read) => read_matches.push(read),
            Err(errors) => {
                invalid = true;
                for (sub, reason, message) in errors {
                    report.error(field(&format!("matches[{m}].{sub}")), reason, message);
                }
            }
        }
    }
    let name = report.route.clone();
    let backends = backends::resolve(
        rule.backend_refs.as_deref().unwrap_or_default(),
        &name,
        references,
        &mut |sub, reason, message| report.error(field(&sub), reason, message),
    );
    let kind = backends
        .as_ref()
        .and_then(|b| b.kind)
        .unwrap_or(Kind::Services);
    let read_filters = filters::translate(
        rule.filters.as_deref().unwrap_or_default(),
        &read_matches,
        kind == Kind::Services,
    );
    let read_filters = match read_filters {
        Ok(read) => Some(read),
        Err(errors) => {
            for (sub, reason, message) in errors {
                report.error(field(&sub), reason, message);
            }
            None
        }
    };
    let timeouts = match filters::timeouts(rule.timeouts.as_ref()) {
        Ok(timeouts) => timeouts,
        Err(errors) => {
            invalid = true;
            for (sub, reason, message) in errors {
                report.error(field(&sub), reason, message);
            }
            Default::default()
        }
    };
    let (Some(backends), Some(read_filters), false) = (backends, read_filters, invalid) else {
        return None;
    };
    let rule_name = rule.name.clone().unwrap_or_else(|| index.to_string());
    match kind {
        Kind::Models => {
            let providers: Vec<(ObjectRef, u32)> = backends
                .resolved
                .into_iter()
                .filter_map(|b| match b {
                    Resolved::Provider(provider, weight) => Some((provider, weight)),
                    _ => None,
                })
                .collect();
            if !providers.is_empty() && providers.iter().all(|(_, weight)| *weight == 0) {
                report.error(
                    field("backendRefs"),
                    "NoBackends",
                    "every backend has weight 0, so the rule can serve nothing".into(),
                );
            }
            if providers.iter().all(|(_, weight)| *weight == 0) {
                return None;
            }
            let policy = RulePolicy {
                timeouts: RouteTimeouts {
                    first_byte: timeouts.backend_request,
                    request: timeouts.request,
                },
                ..RulePolicy::default()
            };
            Some(Programmed::Models {
                matches: read_matches,
                providers,
                policy,
            })
        }
        Kind::Mcp => {
            if rule.timeouts.is_some() {
                report.warning(
                    field("timeouts"),
                    UNSUPPORTED,
                    "timeouts do not apply to MCP endpoints; each MCPServer's own timeouts do"
                        .into(),
                );
            }
            let servers: Vec<McpServer> = backends
                .resolved
                .into_iter()
                .filter_map(|b| match b {
                    Resolved::Mcp(server) => Some(server),
                    _ => None,
                })
                .collect();
            mcp(route, &read_matches, servers, references, &field, report)
        }
        Kind::Services => Some(Programmed::Services(ServiceRule {
            route: name,
            name: rule_name,
            hostnames: Vec::new(),
            matches: read_matches,
            backends: backends
                .resolved
                .into_iter()
                .filter_map(|b| match b {
                    Resolved::Service(service) => Some(service),
                    _ => None,
                })
                .collect(),
            request_headers: read_filters.headers,
            rewrite: read_filters.rewrite,
            rewrite_host: read_filters.rewrite_host,
            timeouts,
        })),
    }
}

/// An MCP endpoint: matches on paths only (an exact path, or a prefix taken as the exact
/// path; `/mcp` when none), servers with distinct prefixes, and the session key the route's
/// annotation names.
fn mcp(
    route: &HttpRoute,
    matches: &[Match],
    servers: Vec<McpServer>,
    references: &References<'_>,
    field: &dyn Fn(&str) -> String,
    report: &mut Report<'_>,
) -> Option<Programmed> {
    let before = report.errors();
    let mut paths: Vec<String> = Vec::new();
    for (m, matched) in matches.iter().enumerate() {
        if !matched.headers.is_empty() || !matched.query.is_empty() || matched.method.is_some() {
            report.error(
                field(&format!("matches[{m}]")),
                UNSUPPORTED,
                "a rule that sends to MCPServers matches on path only".into(),
            );
        }
        if let Some(path) = matched.path.clone().or_else(|| matched.path_prefix.clone())
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        paths.push(DEFAULT_MCP_PATH.to_owned());
    }
    let mut prefixes: BTreeMap<&str, &ObjectRef> = BTreeMap::new();
    for server in &servers {
        if let Some(other) = prefixes.insert(&server.prefix, &server.name) {
            report.error(
                field("backendRefs"),
                "PrefixConflict",
                format!(
                    "MCPServers {other} and {} both use the prefix {:?}; give one a toolPrefix of its own",
                    server.name, server.prefix
                ),
            );
        }
    }
    let session_key = session_key(route, references, report);
    if report.errors() > before || servers.is_empty() {
        return None;
    }
    Some(Programmed::Mcp {
        paths,
        servers,
        session_key: session_key?,
    })
}

/// The session key the route's [`MCP_SESSION_KEY_ANNOTATION`] names.
fn session_key(
    route: &HttpRoute,
    references: &References<'_>,
    report: &mut Report<'_>,
) -> Option<Secret> {
    let field = format!("metadata.annotations[{MCP_SESSION_KEY_ANNOTATION}]");
    let annotation = route
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MCP_SESSION_KEY_ANNOTATION));
    let Some(key) = annotation.and_then(|a| SecretKeyRef::parse(a)) else {
        report.error(
            field,
            "InvalidSessionKey",
            format!(
                "a route that sends to MCPServers needs the annotation {MCP_SESSION_KEY_ANNOTATION}: <secret>/<key>, naming a Secret key of at least {MIN_SESSION_KEY} characters that seals session ids"
            ),
        );
        return None;
    };
    let namespace = report.route.namespace.clone();
    match references.secrets.value(&namespace, &key.name, &key.key) {
        Ok(value) if value.trim().len() >= MIN_SESSION_KEY => {
            Some(Secret::new(value.trim().to_string()))
        }
        Ok(_) => {
            report.error(
                field,
                "InvalidSecret",
                format!(
                    "the session key in Secret {namespace}/{} must be at least {MIN_SESSION_KEY} characters",
                    key.name
                ),
            );
            None
        }
        Err(e) => {
            report.error(
                field,
                e.reason(),
                e.message(&namespace, &key.name, &key.key),
            );
            None
        }
    }
}
