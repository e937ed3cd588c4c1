//! Which Gateway, and which of its listeners, each parentRef of a route attaches to.
//!
//! Routes attach the Gateway API way: a parentRef names a Gateway (and optionally one listener
//! by `sectionName`), and attaches to the listeners it names that allow routes from the route's
//! namespace. The outcome of every parentRef is kept, so that status can report per parent.

use std::collections::HashSet;
use tollgate_api::ParentReference;
use tollgate_config::ObjectRef;

use super::gateways::{Admission, ServedGateway};
use super::hostnames::{intersect, union};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The kinds of route that attach to Gateways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// A Tollgate `AIRoute`.
    AIRoute,
    /// A Gateway API `HTTPRoute`.
    HTTPRoute,
}

impl RouteKind {
    /// The kind as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::AIRoute => "AIRoute",
            RouteKind::HTTPRoute => "HTTPRoute",
        }
    }
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
        /// A stable reason: `NoMatchingParent`, `NotAllowedByListeners`,
        /// `NoMatchingListenerHostname`.
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

/// The route a parentRef belongs to, as far as attaching is concerned.
pub(super) struct Attaching<'a> {
    /// Its kind.
    pub(super) kind: RouteKind,
    /// Its namespace and name.
    pub(super) name: &'a ObjectRef,
    /// Its host names, lower-cased; none means every host.
    pub(super) hostnames: &'a [String],
}

impl Parents<'_> {
    /// Resolves one parentRef (with the listener port it names, if any) of `route`.
    pub(super) fn resolve(
        &self,
        parent: &ParentReference,
        port: Option<i32>,
        route: &Attaching<'_>,
    ) -> ParentAttachment {
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
            parent.namespace.as_deref().unwrap_or(&route.name.namespace),
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
        let named: Vec<(&String, &Admission)> = gateway
            .admission
            .iter()
            .filter(|(l, _)| parent.section_name.as_ref().is_none_or(|s| s == *l))
            .filter(|(_, a)| port.is_none_or(|p| p == i32::from(a.port)))
            .collect();
        if named.is_empty() {
            return refused(
                "NoMatchingParent",
                match (&parent.section_name, port) {
                    (Some(section), _) => format!(
                        "Gateway {wanted} has no listener {section:?}{}",
                        port.map(|p| format!(" on port {p}")).unwrap_or_default()
                    ),
                    (None, Some(port)) => {
                        format!("Gateway {wanted} has no listener on port {port}")
                    }
                    (None, None) => format!("Gateway {wanted} has no usable listener"),
                },
            );
        }
        let in_namespace: Vec<(&String, &Admission)> = named
            .into_iter()
            .filter(|(_, a)| {
                a.namespace
                    .as_deref()
                    .is_none_or(|ns| ns == route.name.namespace)
            })
            .collect();
        if in_namespace.is_empty() {
            return refused(
                "NotAllowedByListeners",
                format!(
                    "Gateway {wanted}'s listeners do not allow routes from namespace {}",
                    route.name.namespace
                ),
            );
        }
        let of_kind: Vec<(&String, &Admission)> = in_namespace
            .into_iter()
            .filter(|(_, a)| a.kinds.as_ref().is_none_or(|k| k.contains(&route.kind)))
            .collect();
        if of_kind.is_empty() {
            return refused(
                "NotAllowedByListeners",
                format!(
                    "Gateway {wanted}'s listeners do not allow {}s (allowedRoutes.kinds)",
                    route.kind.as_str()
                ),
            );
        }
        let listeners: Vec<String> = of_kind
            .into_iter()
            .filter(|(_, a)| intersect(a.hostname.as_deref(), route.hostnames).is_some())
            .map(|(l, _)| l.clone())
            .collect();
        if listeners.is_empty() {
            return refused(
                "NoMatchingListenerHostname",
                format!(
                    "none of the route's hostnames ({}) is served by a listener of Gateway {wanted}",
                    route.hostnames.join(", ")
                ),
            );
        }
        ParentAttachment::Attached {
            gateway: wanted,
            listeners,
        }
    }

    /// The host names a route with `hostnames` serves on `gateway` through `listeners` (as
    /// [`ParentAttachment::Attached`] lists them); every host when empty.
    pub(super) fn hostnames_through<'l>(
        &self,
        gateway: &ObjectRef,
        listeners: impl IntoIterator<Item = &'l String>,
        hostnames: &[String],
    ) -> Vec<String> {
        let Some(served) = self.served.iter().find(|g| g.name == *gateway) else {
            return Vec::new();
        };
        union(listeners.into_iter().filter_map(|listener| {
            let admission = served.admission.get(listener)?;
            intersect(admission.hostname.as_deref(), hostnames)
        }))
    }
}

/// An HTTPRoute's parentRef in the shape Tollgate's routes use, and the port it names.
pub(super) fn from_http_route(
    parent: &gateway_api::httproutes::HttpRouteParentRefs,
) -> (ParentReference, Option<i32>) {
    let reference = ParentReference {
        group: parent.group.clone(),
        kind: parent.kind.clone(),
        namespace: parent.namespace.clone(),
        name: parent.name.clone(),
        section_name: parent.section_name.clone(),
    };
    (reference, parent.port)
}
