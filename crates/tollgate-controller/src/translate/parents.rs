//! Which Gateway, and which of its listeners, each parentRef of a route attaches to.
//!
//! Routes attach the Gateway API way: a parentRef names a Gateway (and optionally one listener
//! by `sectionName`), and attaches to the listeners it names that allow routes from the route's
//! namespace. The outcome of every parentRef is kept, so that status can report per parent.

use std::collections::{BTreeMap, HashSet};
use tollgate_api::ParentReference;
use tollgate_config::ObjectRef;

use super::gateways::ServedGateway;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The kinds of route that attach to Gateways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// A Tollgate `AIRoute`.
    AIRoute,
    /// A Gateway API `HTTPRoute`.
    HTTPRoute,
}

/// One route, by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteId {
    /// The route's kind.
    pub kind: RouteKind,
    /// The route's namespace and name.
    pub route: ObjectRef,
}

/// How one parentRef of a route fared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParentAttachment {
    /// Attached to a Gateway Tollgate serves, through these listeners (by name).
    Attached {
        /// The Gateway.
        gateway: ObjectRef,
        /// The listeners the route attached to.
        listeners: Vec<String>,
    },
    /// Names a Gateway Tollgate serves, but cannot attach to it.
    Refused {
        /// The Gateway.
        gateway: ObjectRef,
        /// A stable reason: `NoMatchingParent`, `NotAllowedByListeners`.
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// Names no Gateway that exists: a missing one, or a parent of another kind.
    Unresolved {
        /// A stable reason: `NoMatchingParent`, `InvalidKind`.
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// Names a Gateway of a class another controller serves.
    Foreign {
        /// The Gateway.
        gateway: ObjectRef,
    },
}

/// How a route fared as a whole: one outcome per parentRef, in the order of `spec.parentRefs`,
/// and whether its rules are served at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteAttachments {
    /// One outcome per parentRef.
    pub parents: Vec<ParentAttachment>,
    /// Whether the route's rules are valid and in force; an invalid route serves nothing,
    /// wherever it attaches.
    pub served: bool,
}

/// Every Gateway a parentRef may name: the ones Tollgate serves, and all that exist.
pub(super) struct Parents<'a> {
    /// The Gateways of a Tollgate class.
    pub(super) served: &'a [ServedGateway],
    /// Every Gateway, of any class.
    pub(super) existing: HashSet<ObjectRef>,
}

impl Parents<'_> {
    /// Resolves one parentRef of the route `route`.
    pub(super) fn resolve(&self, parent: &ParentReference, route: &ObjectRef) -> ParentAttachment {
        let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        if group != GATEWAY_GROUP || kind != "Gateway" {
            return ParentAttachment::Unresolved {
                reason: "InvalidKind",
                message: format!(
                    "parentRefs must name a {GATEWAY_GROUP} Gateway, not {group}/{kind}"
                ),
            };
        }
        let wanted = ObjectRef::new(
            parent.namespace.as_deref().unwrap_or(&route.namespace),
            &parent.name,
        );
        let Some(gateway) = self.served.iter().find(|g| g.name == wanted) else {
            if self.existing.contains(&wanted) {
                return ParentAttachment::Foreign { gateway: wanted };
            }
            return ParentAttachment::Unresolved {
                reason: "NoMatchingParent",
                message: format!("Gateway {wanted} does not exist"),
            };
        };
        let refused = |reason, message| ParentAttachment::Refused {
            gateway: wanted.clone(),
            reason,
            message,
        };
        let named: Vec<&String> = gateway
            .allowed_namespaces
            .keys()
            .filter(|l| parent.section_name.as_ref().is_none_or(|s| s == *l))
            .collect();
        if named.is_empty() {
            return refused(
                "NoMatchingParent",
                match &parent.section_name {
                    Some(section) => format!("Gateway {wanted} has no listener {section:?}"),
                    None => format!("Gateway {wanted} has no usable listener"),
                },
            );
        }
        let listeners: Vec<String> = named
            .into_iter()
            .filter(|l| admits(&gateway.allowed_namespaces, l, &route.namespace))
            .cloned()
            .collect();
        if listeners.is_empty() {
            return refused(
                "NotAllowedByListeners",
                format!(
                    "Gateway {wanted}'s listeners do not allow routes from namespace {}",
                    route.namespace
                ),
            );
        }
        ParentAttachment::Attached {
            gateway: wanted,
            listeners,
        }
    }
}

/// Whether the listener `listener` admits routes from `namespace`.
fn admits(allowed: &BTreeMap<String, Option<String>>, listener: &str, namespace: &str) -> bool {
    allowed
        .get(listener)
        .is_some_and(|ns| ns.as_deref().is_none_or(|ns| ns == namespace))
}

/// An HTTPRoute's parentRef in the shape Tollgate's routes use.
pub(super) fn from_http_route(
    parent: &gateway_api::httproutes::HttpRouteParentRefs,
) -> ParentReference {
    ParentReference {
        group: parent.group.clone(),
        kind: parent.kind.clone(),
        namespace: parent.namespace.clone(),
        name: parent.name.clone(),
        section_name: parent.section_name.clone(),
    }
}
