//! HTTPRoutes → what they add to each Gateway they attach to. A rule whose backendRefs name
//! ModelProviders gets AI handling (a model rule that passes the requested model on), one
//! naming MCPServers serves an MCP endpoint, one naming Services is proxied as plain HTTP.
//!
//! Routes attach through `parentRefs` as AIRoutes do, and serve the host names they share
//! with the listeners they attach through. Routes are taken oldest first (then by namespace
//! and name), so that their rules keep the Gateway API's order among equals.

mod backends;
mod filters;
mod matches;
mod rules;

use gateway_api::httproutes::{HttpRoute, HttpRouteRules as ApiRule};
use std::collections::{BTreeMap, BTreeSet};
use tollgate_config::{Match, McpEndpoint, ObjectRef, RulePolicy, ServiceRule};

use super::parents::{Attaching, ParentAttachment, Parents, RouteAttachments, RouteId, RouteKind};
use super::routes::References;
use super::{name_of, namespace_of};
use crate::Diagnostic;
use rules::Programmed;

const KIND: &str = "HTTPRoute";
/// The Gateway API's reason for a value Tollgate does not support.
const UNSUPPORTED: &str = "UnsupportedValue";

/// What HTTPRoutes add to one Gateway.
#[derive(Debug, Default)]
pub(super) struct HttpRouteRules {
    /// Model rules, one per match, in Gateway API precedence.
    pub(super) models: Vec<ModelRule>,
    /// MCP endpoints.
    pub(super) mcp: Vec<McpEndpoint>,
    /// Service rules, oldest route first.
    pub(super) services: Vec<ServiceRule>,
}

/// A model rule of an HTTPRoute, its providers named rather than numbered.
#[derive(Debug)]
pub(super) struct ModelRule {
    pub(super) route: ObjectRef,
    pub(super) name: String,
    pub(super) hostnames: Vec<String>,
    /// The one match it stands for (a rule's matches rank separately).
    pub(super) matched: Option<Match>,
    pub(super) providers: Vec<(ObjectRef, u32)>,
    pub(super) policy: RulePolicy,
}

/// Findings about one HTTPRoute.
pub(super) struct Report<'a> {
    route: ObjectRef,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Report<'_> {
    fn error(&mut self, field: String, reason: &'static str, message: String) {
        let route = &self.route;
        self.diagnostics.push(Diagnostic::error(
            KIND,
            &route.namespace,
            &route.name,
            field,
            reason,
            message,
        ));
    }

    fn warning(&mut self, field: String, reason: &'static str, message: String) {
        let route = &self.route;
        self.diagnostics.push(
            Diagnostic::error(KIND, &route.namespace, &route.name, field, reason, message)
                .warning(),
        );
    }

    /// How many errors have been found so far, to tell whether a step found any.
    fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// Translates every HTTPRoute: what each adds to the Gateways it attaches to, and how each
/// parentRef fared.
pub(super) fn attach_all(
    routes: &[HttpRoute],
    parents: &Parents<'_>,
    references: &References<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (
    BTreeMap<ObjectRef, HttpRouteRules>,
    BTreeMap<RouteId, RouteAttachments>,
) {
    let mut ordered: Vec<&HttpRoute> = routes.iter().collect();
    ordered.sort_by_key(|r| {
        (
            r.metadata.creation_timestamp.as_ref().map(|t| t.0),
            namespace_of(&r.metadata).to_string(),
            name_of(&r.metadata).to_string(),
        )
    });
    let mut by_gateway: BTreeMap<ObjectRef, HttpRouteRules> = BTreeMap::new();
    let mut attachments = BTreeMap::new();
    for route in ordered {
        let name = ObjectRef::new(namespace_of(&route.metadata), name_of(&route.metadata));
        let mut report = Report {
            route: name.clone(),
            diagnostics,
        };
        let hostnames: Vec<String> = route
            .spec
            .hostnames
            .iter()
            .flatten()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let attaching = Attaching {
            kind: RouteKind::HTTPRoute,
            name: &name,
            hostnames: &hostnames,
        };
        let outcomes: Vec<ParentAttachment> = route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .map(|parent| {
                let (parent, port) = super::parents::from_http_route(parent);
                parents.resolve(&parent, port, &attaching)
            })
            .collect();
        // An HTTPRoute may be another implementation's (a mesh's, another Gateway's): its
        // rules are read, and reported on, only when it names a Gateway Tollgate serves.
        let ours = outcomes.iter().any(|o| {
            matches!(
                o,
                ParentAttachment::Attached { .. } | ParentAttachment::Refused { .. }
            )
        });
        // What the API server fills in for a route without rules: every path, no backend.
        let default_rules = [ApiRule::default()];
        let route_rules = match route.spec.rules.as_deref() {
            Some(rules) if !rules.is_empty() => rules,
            _ => &default_rules[..],
        };
        let programmed: Vec<(String, Programmed)> = route_rules
            .iter()
            .enumerate()
            .filter(|_| ours)
            .filter_map(|(index, rule)| {
                let rule_name = rule.name.clone().unwrap_or_else(|| index.to_string());
                rules::translate(route, index, rule, references, &mut report)
                    .map(|p| (rule_name, p))
            })
            .collect();
        let mut listeners_by_gateway: BTreeMap<&ObjectRef, BTreeSet<&String>> = BTreeMap::new();
        for (index, outcome) in outcomes.iter().enumerate() {
            match outcome {
                ParentAttachment::Attached { gateway, listeners } => {
                    listeners_by_gateway
                        .entry(gateway)
                        .or_default()
                        .extend(listeners);
                }
                ParentAttachment::Refused {
                    reason, message, ..
                }
                | ParentAttachment::Unresolved { reason, message }
                    if *reason != "InvalidKind" =>
                {
                    report.warning(format!("spec.parentRefs[{index}]"), reason, message.clone())
                }
                // Another implementation's Gateway, or a parent of another kind (a mesh's
                // Service): not Tollgate's to report on.
                _ => {}
            }
        }
        for (gateway, listeners) in listeners_by_gateway {
            let served = parents.hostnames_through(gateway, listeners, &hostnames);
            let rules = by_gateway.entry(gateway.clone()).or_default();
            for (rule_name, rule) in &programmed {
                add(rules, &name, rule_name, rule, &served);
            }
        }
        attachments.insert(
            RouteId {
                kind: RouteKind::HTTPRoute,
                route: name,
            },
            RouteAttachments {
                parents: outcomes,
                served: !programmed.is_empty(),
            },
        );
    }
    for rules in by_gateway.values_mut() {
        rules
            .models
            .sort_by_key(|rule| rule.matched.clone().unwrap_or_default().precedence());
    }
    (by_gateway, attachments)
}

/// Adds one programmed rule of `route` to a Gateway's rules, serving `hostnames`.
fn add(
    rules: &mut HttpRouteRules,
    route: &ObjectRef,
    rule_name: &str,
    rule: &Programmed,
    hostnames: &[String],
) {
    match rule {
        Programmed::Models {
            matches,
            providers,
            policy,
        } => {
            let each: Vec<Option<Match>> = match matches.is_empty() {
                true => vec![None],
                false => matches.iter().cloned().map(Some).collect(),
            };
            rules
                .models
                .extend(each.into_iter().map(|matched| ModelRule {
                    route: route.clone(),
                    name: rule_name.to_owned(),
                    hostnames: hostnames.to_vec(),
                    matched,
                    providers: providers.clone(),
                    policy: *policy,
                }));
        }
        Programmed::Mcp {
            paths,
            servers,
            session_key,
        } => rules.mcp.push(McpEndpoint {
            route: route.clone(),
            rule: rule_name.to_owned(),
            paths: paths.clone(),
            hostnames: hostnames.to_vec(),
            servers: servers.clone(),
            session_key: session_key.clone(),
            access: Vec::new(),
        }),
        Programmed::Services(service) => rules.services.push(ServiceRule {
            hostnames: hostnames.to_vec(),
            ..service.clone()
        }),
    }
}
