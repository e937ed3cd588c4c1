//! AIRoutes → the rules of each Gateway they attach to, in precedence order.

use std::collections::{BTreeMap, HashMap};
use tollgate_api::{AIRoute, AIRouteRule, Access as ApiAccess};
use tollgate_config::{
    Access, Backend, GatewayConfig, McpEndpoint, ObjectRef, ProviderId, RouteTable, Rule, Secret,
    ServiceRoutes,
};

use super::gateways::ServedGateway;
use super::grants::Grants;
use super::http_routes::HttpRouteRules;
use super::mcp::McpServers;
use super::parents::{Attaching, ParentAttachment, Parents, RouteAttachments, RouteId, RouteKind};
use super::providers::Providers;
use super::secrets::SecretIndex;
use super::services::ServiceIndex;
use super::{matches, policy};
use super::{name_of, namespace_of};
use crate::Diagnostic;

const KIND: &str = "AIRoute";
/// The path an MCP rule without path matches serves.
pub(super) const DEFAULT_MCP_PATH: &str = "/mcp";
/// The shortest session key accepted: 32 characters.
pub(super) const MIN_SESSION_KEY: usize = 32;

/// What routes refer to besides providers.
pub(super) struct References<'a> {
    /// Model providers.
    pub(super) providers: &'a Providers,
    /// MCP servers.
    pub(super) mcp_servers: &'a McpServers,
    /// Secrets.
    pub(super) secrets: &'a SecretIndex<'a>,
    /// ReferenceGrants, for HTTPRoutes' references to other namespaces.
    pub(super) grants: &'a Grants<'a>,
    /// Services, for HTTPRoutes' Service backends.
    pub(super) services: &'a ServiceIndex<'a>,
}

/// Builds every served Gateway's configuration from the AIRoutes that attach to it and what
/// HTTPRoutes add (`http`), and tells how every parentRef of every AIRoute fared.
pub(super) fn attach_all(
    routes: &[AIRoute],
    mut http: BTreeMap<ObjectRef, HttpRouteRules>,
    parents: &Parents<'_>,
    references: &References<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (
    BTreeMap<ObjectRef, GatewayConfig>,
    BTreeMap<RouteId, RouteAttachments>,
) {
    let mut ordered: Vec<&AIRoute> = routes.iter().collect();
    ordered.sort_by(|a, b| {
        let key = |r: &AIRoute| {
            (
                r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                namespace_of(&r.metadata).to_string(),
                name_of(&r.metadata).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });

    let mut rules_by_gateway: HashMap<ObjectRef, Vec<AttachedRule<'_>>> = HashMap::new();
    let mut attachments = BTreeMap::new();
    for route in ordered {
        let route_name = ObjectRef::new(namespace_of(&route.metadata), name_of(&route.metadata));
        let served = rules_are_valid(route, &route_name, references, diagnostics);
        let attaching = Attaching {
            kind: RouteKind::AIRoute,
            name: &route_name,
            hostnames: &[],
        };
        let outcomes: Vec<ParentAttachment> = route
            .spec
            .parent_refs
            .iter()
            .map(|parent| parents.resolve(parent, None, &attaching))
            .collect();
        // A Gateway's rules are shared by all its listeners: a route attached to it through
        // several parentRefs (one per listener, say) adds its rules once, serving the host
        // names of all the listeners it attached through.
        let mut listeners_by_gateway: BTreeMap<&ObjectRef, Vec<&String>> = BTreeMap::new();
        for (index, outcome) in outcomes.iter().enumerate() {
            let (reason, message) = match outcome {
                ParentAttachment::Attached { gateway, listeners } => {
                    listeners_by_gateway
                        .entry(gateway)
                        .or_default()
                        .extend(listeners);
                    continue;
                }
                ParentAttachment::Refused {
                    reason, message, ..
                }
                | ParentAttachment::Unresolved { reason, message } => (*reason, message.clone()),
                ParentAttachment::Foreign { gateway } => (
                    "NoMatchingParent",
                    format!("Gateway {gateway} is not of a Tollgate GatewayClass"),
                ),
            };
            diagnostics.push(
                Diagnostic::error(
                    KIND,
                    &route_name.namespace,
                    &route_name.name,
                    format!("spec.parentRefs[{index}]"),
                    reason,
                    message,
                )
                .warning(),
            );
        }
        for (gateway, listeners) in listeners_by_gateway.into_iter().filter(|_| served) {
            let hostnames = parents.hostnames_through(gateway, listeners, &[]);
            let rules = rules_by_gateway.entry(gateway.clone()).or_default();
            rules.extend(
                route
                    .spec
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| AttachedRule {
                        route: route_name.clone(),
                        index: i,
                        rule: r,
                        route_access: route.spec.access.as_ref(),
                        hostnames: hostnames.clone(),
                    }),
            );
        }
        attachments.insert(
            RouteId {
                kind: RouteKind::AIRoute,
                route: route_name,
            },
            RouteAttachments {
                parents: outcomes,
                served,
            },
        );
    }

    let configs = parents
        .served
        .iter()
        .map(|gateway| {
            let rules = rules_by_gateway.remove(&gateway.name).unwrap_or_default();
            let from_http = http.remove(&gateway.name).unwrap_or_default();
            (
                gateway.name.clone(),
                build_config(gateway, rules, from_http, references),
            )
        })
        .collect();
    (configs, attachments)
}

/// Checks every rule of a route; a route with any invalid rule is left out entirely, so that
/// a half-understood route never serves traffic.
fn rules_are_valid(
    route: &AIRoute,
    name: &ObjectRef,
    references: &References<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let providers = references.providers;
    let before = diagnostics.len();
    let error = |field: String, reason: &'static str, message: String| {
        Diagnostic::error(KIND, &name.namespace, &name.name, field, reason, message)
    };
    if route.spec.rules.is_empty() {
        diagnostics.push(error(
            "spec.rules".into(),
            "NoRules",
            "a route needs at least one rule".into(),
        ));
    }
    for (r, rule) in route.spec.rules.iter().enumerate() {
        if let Err(errors) = policy::translate(rule) {
            for (field, reason, message) in errors {
                diagnostics.push(error(format!("spec.rules[{r}].{field}"), reason, message));
            }
        }
        for (m, matched) in rule.matches.iter().enumerate() {
            if let Err(errors) = matches::translate(matched) {
                for (field, reason, message) in errors {
                    diagnostics.push(error(
                        format!("spec.rules[{r}].matches[{m}].{field}"),
                        reason,
                        message,
                    ));
                }
            }
        }
        if rule.mcp.is_some() {
            mcp_rule_is_valid(rule, r, name, references, &mut |field, reason, message| {
                diagnostics.push(error(field, reason, message))
            });
            continue;
        }
        if rule.backends.is_empty() {
            diagnostics.push(error(
                format!("spec.rules[{r}].backends"),
                "NoBackends",
                "a rule needs at least one backend".into(),
            ));
        } else if rule.backends.iter().all(|b| b.weight == Some(0)) {
            diagnostics.push(error(
                format!("spec.rules[{r}].backends"),
                "NoBackends",
                "every backend has weight 0, so the rule can serve nothing".into(),
            ));
        }
        for (b, backend) in rule.backends.iter().enumerate() {
            let field = format!("spec.rules[{r}].backends[{b}]");
            if backend.model.as_deref() == Some("") {
                diagnostics.push(error(
                    format!("{field}.model"),
                    "InvalidBackend",
                    "model must not be empty; omit it to send the requested model".into(),
                ));
            }
            let provider_ref = ObjectRef::new(&name.namespace, &backend.provider);
            match providers.get(&provider_ref) {
                None => diagnostics.push(error(
                    format!("{field}.provider"),
                    "BackendNotFound",
                    format!("ModelProvider {provider_ref} does not exist"),
                )),
                Some(None) => diagnostics.push(error(
                    format!("{field}.provider"),
                    "InvalidBackend",
                    format!("ModelProvider {provider_ref} is invalid; see its own errors"),
                )),
                Some(Some(provider)) => {
                    let listed = |model: &str| {
                        provider.models.is_empty() || provider.models.contains_key(model)
                    };
                    let upstream_models: Vec<&str> = match &backend.model {
                        Some(model) => vec![model.as_str()],
                        None => rule
                            .matches
                            .iter()
                            .filter_map(|m| m.model.as_deref())
                            .collect(),
                    };
                    // An empty model is already an error of its own (InvalidMatch, InvalidBackend).
                    for model in upstream_models
                        .into_iter()
                        .filter(|m| !m.is_empty() && !listed(m))
                    {
                        diagnostics.push(
                            error(
                                format!("{field}.model"),
                                "ModelNotListed",
                                format!("ModelProvider {provider_ref} does not list model {model:?}, so its usage is priced at zero"),
                            )
                            .warning(),
                        );
                    }
                }
            }
        }
    }
    !diagnostics[before..].iter().any(Diagnostic::is_error)
}

/// Checks a rule that serves an MCP endpoint: no backends, paths only, servers that exist and
/// are valid with distinct prefixes, and a session key.
fn mcp_rule_is_valid(
    rule: &AIRouteRule,
    r: usize,
    route: &ObjectRef,
    references: &References<'_>,
    error: &mut dyn FnMut(String, &'static str, String),
) {
    let Some(mcp) = &rule.mcp else { return };
    if !rule.backends.is_empty() {
        error(
            format!("spec.rules[{r}].backends"),
            "MCPWithBackends",
            "a rule serves models (backends) or an MCP endpoint (mcp), not both".into(),
        );
    }
    for (m, matched) in rule.matches.iter().enumerate() {
        let only_path = matched.model.is_none()
            && matched.model_prefix.is_none()
            && matched.headers.is_empty()
            && matched.prompt_tokens.is_none()
            && matched.has_tools.is_none()
            && matched.has_images.is_none();
        if !only_path || matched.path.is_none() {
            error(
                format!("spec.rules[{r}].matches[{m}]"),
                "InvalidMatch",
                "an MCP rule matches on path only".into(),
            );
        }
    }
    if mcp.servers.is_empty() {
        error(
            format!("spec.rules[{r}].mcp.servers"),
            "NoBackends",
            "an MCP rule needs at least one MCPServer".into(),
        );
    }
    let mut prefixes: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, server) in mcp.servers.iter().enumerate() {
        let field = format!("spec.rules[{r}].mcp.servers[{i}]");
        let server_ref = ObjectRef::new(&route.namespace, server);
        match references.mcp_servers.get(&server_ref) {
            None => error(
                field,
                "BackendNotFound",
                format!("MCPServer {server_ref} does not exist"),
            ),
            Some(None) => error(
                field,
                "InvalidBackend",
                format!("MCPServer {server_ref} is invalid; see its own errors"),
            ),
            Some(Some(found)) => {
                if let Some(other) = prefixes.insert(&found.prefix, server) {
                    error(
                        field,
                        "PrefixConflict",
                        format!(
                            "MCPServers {other} and {server} both use the prefix {:?}; give one a toolPrefix of its own",
                            found.prefix
                        ),
                    );
                }
            }
        }
    }
    let key = &mcp.session_key_ref;
    match references
        .secrets
        .value(&route.namespace, &key.name, &key.key)
    {
        Ok(value) if value.trim().len() >= MIN_SESSION_KEY => {}
        Ok(_) => error(
            format!("spec.rules[{r}].mcp.sessionKeyRef"),
            "InvalidSecret",
            format!(
                "the session key in Secret {}/{} must be at least {MIN_SESSION_KEY} characters",
                route.namespace, key.name
            ),
        ),
        Err(e) => error(
            format!("spec.rules[{r}].mcp.sessionKeyRef"),
            e.reason(),
            e.message(&route.namespace, &key.name, &key.key),
        ),
    }
}

/// A valid rule attached to a Gateway, with what it needs from its route.
struct AttachedRule<'a> {
    route: ObjectRef,
    index: usize,
    rule: &'a AIRouteRule,
    route_access: Option<&'a ApiAccess>,
    /// The host names it serves on this Gateway; every host when empty.
    hostnames: Vec<String>,
}

/// Access lists as the snapshot holds them: key Secrets named by their key id.
fn access_of(namespace: &str, access: &ApiAccess) -> Access {
    Access {
        teams: access.teams.clone(),
        users: access.users.clone(),
        keys: access
            .keys
            .iter()
            .map(|name| format!("{namespace}/{name}"))
            .collect(),
    }
}

/// Builds one Gateway's configuration; rules arrive in precedence order and already valid.
/// AIRoute rules come before HTTPRoute model rules, MCP endpoints of AIRoutes before those of
/// HTTPRoutes.
fn build_config(
    gateway: &ServedGateway,
    rules: Vec<AttachedRule<'_>>,
    from_http: HttpRouteRules,
    references: &References<'_>,
) -> GatewayConfig {
    let providers = references.providers;
    let mut provider_ids: BTreeMap<ObjectRef, ProviderId> = BTreeMap::new();
    let mut config_providers = Vec::new();
    let mut provider_id = |provider_ref: &ObjectRef| {
        *provider_ids.entry(provider_ref.clone()).or_insert_with(|| {
            let provider = providers[provider_ref]
                .clone()
                .expect("rules were validated");
            config_providers.push(provider);
            ProviderId(config_providers.len() - 1)
        })
    };
    let mut config_rules = Vec::new();
    let mut mcp_endpoints = Vec::new();
    for AttachedRule {
        route,
        index,
        rule,
        route_access,
        hostnames,
    } in rules
    {
        let access = route_access
            .into_iter()
            .chain(rule.access.as_ref())
            .map(|a| access_of(&route.namespace, a))
            .collect();
        if let Some(mcp) = &rule.mcp {
            let key = &mcp.session_key_ref;
            mcp_endpoints.push(McpEndpoint {
                paths: match rule.matches.is_empty() {
                    true => vec![DEFAULT_MCP_PATH.to_string()],
                    false => rule.matches.iter().filter_map(|m| m.path.clone()).collect(),
                },
                servers: mcp
                    .servers
                    .iter()
                    .map(|server| {
                        references.mcp_servers[&ObjectRef::new(&route.namespace, server)]
                            .clone()
                            .expect("rules were validated")
                    })
                    .collect(),
                session_key: Secret::new(
                    references
                        .secrets
                        .value(&route.namespace, &key.name, &key.key)
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default(),
                ),
                rule: rule.name.clone().unwrap_or_else(|| index.to_string()),
                route,
                hostnames,
                access,
            });
            continue;
        }
        let backends = rule
            .backends
            .iter()
            .map(|backend| {
                let provider_ref = ObjectRef::new(&route.namespace, &backend.provider);
                Backend {
                    provider: provider_id(&provider_ref),
                    model: backend.model.clone(),
                    weight: backend.weight.unwrap_or(1),
                    priority: backend.priority.unwrap_or(0),
                }
            })
            .collect();
        config_rules.push(Rule {
            route,
            name: rule.name.clone().unwrap_or_else(|| index.to_string()),
            hostnames,
            policy: policy::translate(rule).expect("rules were validated"),
            matches: rule
                .matches
                .iter()
                .map(|m| matches::translate(m).expect("rules were validated"))
                .collect(),
            backends,
            access,
        });
    }
    for model in from_http.models {
        config_rules.push(Rule {
            backends: model
                .providers
                .iter()
                .map(|(provider, weight)| Backend {
                    provider: provider_id(provider),
                    model: None,
                    weight: *weight,
                    priority: 0,
                })
                .collect(),
            route: model.route,
            name: model.name,
            hostnames: model.hostnames,
            matches: model.matched.into_iter().collect(),
            policy: model.policy,
            access: Vec::new(),
        });
    }
    mcp_endpoints.extend(from_http.mcp);
    GatewayConfig {
        gateway: gateway.name.clone(),
        listeners: gateway.listeners.clone(),
        providers: config_providers,
        routes: RouteTable::new(config_rules),
        api_keys: Default::default(),
        budgets: Default::default(),
        jwt_providers: Vec::new(),
        mcp: mcp_endpoints,
        service_routes: ServiceRoutes::new(from_http.services),
    }
}
