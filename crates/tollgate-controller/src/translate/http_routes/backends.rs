//! An HTTPRoute rule's backendRefs: what kind they are (ModelProvider, MCPServer or Service,
//! one kind per rule), whether the route may refer to them (a ReferenceGrant for another
//! namespace), and what they resolve to. A backend that does not resolve is left out and
//! reported; the rest of the rule still serves.

use gateway_api::httproutes::HttpRouteRulesBackendRefs;
use tollgate_config::{McpServer, ObjectRef, ServiceBackend};

use super::super::grants::Target;
use super::super::routes::References;
use super::UNSUPPORTED;

/// The kinds of backend an HTTPRoute rule may send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `tollgate.dev` ModelProviders: AI handling.
    Models,
    /// `tollgate.dev` MCPServers: an MCP endpoint.
    Mcp,
    /// Core Services: plain HTTP.
    Services,
}

impl Kind {
    fn of(group: &str, kind: &str) -> Option<Kind> {
        match (group, kind) {
            (tollgate_api::GROUP, "ModelProvider") => Some(Kind::Models),
            (tollgate_api::GROUP, "MCPServer") => Some(Kind::Mcp),
            ("", "Service") => Some(Kind::Services),
            _ => None,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Models => "ModelProviders",
            Kind::Mcp => "MCPServers",
            Kind::Services => "Services",
        }
    }
}

/// One backend that resolved.
pub(super) enum Resolved {
    /// A valid ModelProvider and its weight.
    Provider(ObjectRef, u32),
    /// A valid MCPServer.
    Mcp(McpServer),
    /// A Service port.
    Service(ServiceBackend),
}

/// A rule's backends: the kind they share (none when the rule names no backend of a known
/// kind) and those that resolved.
pub(super) struct Backends {
    pub(super) kind: Option<Kind>,
    pub(super) resolved: Vec<Resolved>,
}

/// Reads the backendRefs of a rule of `route`, reporting each problem under its field below
/// the rule. `None` when the rule cannot be served at all: it mixes kinds, or has backend
/// filters.
pub(super) fn resolve(
    refs: &[HttpRouteRulesBackendRefs],
    route: &ObjectRef,
    references: &References<'_>,
    error: &mut dyn FnMut(String, &'static str, String),
) -> Option<Backends> {
    let mut kind: Option<Kind> = None;
    let mut servable = true;
    let mut resolved = Vec::new();
    for (index, backend) in refs.iter().enumerate() {
        let field = format!("backendRefs[{index}]");
        if backend.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            error(
                format!("{field}.filters"),
                UNSUPPORTED,
                "filters on a backendRef are not supported; put them on the rule".into(),
            );
            servable = false;
        }
        let group = backend.group.as_deref().unwrap_or("");
        let kind_name = backend.kind.as_deref().unwrap_or("Service");
        let Some(this) = Kind::of(group, kind_name) else {
            error(
                format!("{field}.kind"),
                "InvalidKind",
                format!(
                    "{group}/{kind_name} is not a backend Tollgate serves; name a tollgate.dev ModelProvider or MCPServer, or a Service"
                ),
            );
            continue;
        };
        match kind {
            Some(earlier) if earlier != this => {
                error(
                    "backendRefs".into(),
                    "InvalidKind",
                    format!(
                        "a rule sends to {} or to {}, not to both; split it into two rules",
                        earlier.plural(),
                        this.plural()
                    ),
                );
                return None;
            }
            _ => kind = Some(this),
        }
        let target = ObjectRef::new(
            backend.namespace.as_deref().unwrap_or(&route.namespace),
            &backend.name,
        );
        let allowed = references.grants.allows(
            &route.namespace,
            &Target {
                group,
                kind: kind_name,
                namespace: &target.namespace,
                name: &target.name,
            },
        );
        if !allowed {
            error(
                format!("{field}.namespace"),
                "RefNotPermitted",
                format!(
                    "{kind_name} {target} is in another namespace and no ReferenceGrant in {} allows HTTPRoutes of {} to refer to it",
                    target.namespace, route.namespace
                ),
            );
            continue;
        }
        let weight = u32::try_from(backend.weight.unwrap_or(1)).unwrap_or(0);
        let found = match this {
            Kind::Models => match references.providers.get(&target) {
                Some(Some(_)) => Ok(Resolved::Provider(target, weight)),
                found => Err(missing(found.is_some(), "ModelProvider", &target)),
            },
            Kind::Mcp => match references.mcp_servers.get(&target) {
                Some(Some(server)) => Ok(Resolved::Mcp(server.clone())),
                found => Err(missing(found.is_some(), "MCPServer", &target)),
            },
            Kind::Services => service(backend, target, weight, references),
        };
        match found {
            Ok(backend) => resolved.push(backend),
            Err((reason, message)) => error(field, reason, message),
        }
    }
    servable.then_some(Backends { kind, resolved })
}

/// Why a ModelProvider or MCPServer cannot be used: it is missing, or invalid itself.
fn missing(exists: bool, kind: &str, target: &ObjectRef) -> (&'static str, String) {
    match exists {
        true => (
            "InvalidBackend",
            format!("{kind} {target} is invalid; see its own errors"),
        ),
        false => ("BackendNotFound", format!("{kind} {target} does not exist")),
    }
}

/// A Service backendRef: its port, and the host that reaches it.
fn service(
    backend: &HttpRouteRulesBackendRefs,
    target: ObjectRef,
    weight: u32,
    references: &References<'_>,
) -> Result<Resolved, (&'static str, String)> {
    let port = backend
        .port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            (
                "InvalidBackend",
                format!("a backendRef to Service {target} needs a port between 1 and 65535"),
            )
        })?;
    let host = references.services.host(&target, port)?;
    Ok(Resolved::Service(ServiceBackend {
        service: target,
        host,
        port,
        weight,
    }))
}
