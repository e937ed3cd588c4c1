//! Status of AIRoutes and HTTPRoutes: one `status.parents` entry per parentRef that names a
//! Gateway Tollgate serves, with `Accepted` and `ResolvedRefs`, and `PartiallyInvalid` where
//! an HTTPRoute serves only some of its rules.
//!
//! `status.parents` is shared with other controllers: their entries are kept as they are, and
//! the patch carries the route's `resourceVersion` so that a concurrent write by one of them is
//! never overwritten (the write fails with a conflict and is redone on the fresh object).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::{Value, json};
use tollgate_api::upstream::ObjectMeta;
use tollgate_config::ObjectRef;

use super::conditions::{
    ACCEPTED, Desired, PARTIALLY_INVALID, REASON_ACCEPTED, REASON_RESOLVED_REFS, RESOLVED_REFS,
    conditions,
};
use super::{
    Findings, StatusInputs, StatusKind, StatusPatch, describe_first, name_of, namespace_of,
    namespaced, to_json,
};
use crate::{CONTROLLER_NAME, Diagnostic, ParentAttachment, RouteAttachments, RouteId, RouteKind};

/// The most `status.parents` entries a route may have (the Gateway API's `maxItems`).
const MAX_PARENTS: usize = 32;
/// Reasons of findings that are about references, reported in `ResolvedRefs`.
const REFERENCE_REASONS: [&str; 7] = [
    "BackendNotFound",
    "InvalidBackend",
    "RefNotPermitted",
    "InvalidKind",
    "SecretNotFound",
    "SecretKeyNotFound",
    "InvalidSecret",
];

pub(super) fn patches(
    inputs: &StatusInputs<'_>,
    findings: &Findings<'_>,
    out: &mut Vec<StatusPatch>,
) {
    for route in &inputs.resources.ai_routes {
        let route_ref = Route {
            kind: StatusKind::AIRoute,
            meta: &route.metadata,
            parent_refs: route.spec.parent_refs.iter().map(to_json).collect(),
            current: route
                .status
                .iter()
                .flat_map(|s| &s.parents)
                .map(to_json)
                .collect(),
        };
        out.extend(route_ref.patch(inputs, findings));
    }
    for route in &inputs.resources.http_routes {
        let route_ref = Route {
            kind: StatusKind::HTTPRoute,
            meta: &route.metadata,
            parent_refs: route
                .spec
                .parent_refs
                .iter()
                .flatten()
                .map(to_json)
                .collect(),
            current: route
                .status
                .iter()
                .flat_map(|s| &s.parents)
                .map(to_json)
                .collect(),
        };
        out.extend(route_ref.patch(inputs, findings));
    }
}

/// A route of either kind, its parentRefs and current `status.parents` as JSON.
struct Route<'a> {
    kind: StatusKind,
    meta: &'a ObjectMeta,
    parent_refs: Vec<Value>,
    current: Vec<Value>,
}

impl Route<'_> {
    fn patch(self, inputs: &StatusInputs<'_>, findings: &Findings<'_>) -> Option<StatusPatch> {
        let (namespace, name) = (namespace_of(self.meta), name_of(self.meta));
        let id = RouteId {
            kind: match self.kind {
                StatusKind::HTTPRoute => RouteKind::HTTPRoute,
                _ => RouteKind::AIRoute,
            },
            route: ObjectRef::new(namespace, name),
        };
        let attachments = inputs.translation.routes.get(&id)?;
        let verdict = Verdict::new(attachments, findings.of(self.kind, namespace, name));
        let ours_now = |entry: &&Value| entry["controllerName"] == CONTROLLER_NAME;
        let (current_ours, foreign): (Vec<Value>, Vec<Value>) =
            self.current.into_iter().partition(|e| ours_now(&e));

        let mut ours: Vec<Value> = Vec::new();
        for (parent_ref, outcome) in self.parent_refs.iter().zip(&attachments.parents) {
            let accepted = match outcome {
                ParentAttachment::Attached { gateway, listeners } => {
                    verdict.accepted(gateway, listeners)
                }
                ParentAttachment::Refused {
                    reason, message, ..
                } => Desired::no(ACCEPTED, reason, message.clone()),
                // Only Tollgate reads AIRoutes, so only Tollgate can say that their parent is
                // missing; an HTTPRoute's missing parent may belong to anyone.
                ParentAttachment::Unresolved { reason, message }
                    if self.kind == StatusKind::AIRoute =>
                {
                    Desired::no(ACCEPTED, reason, message.clone())
                }
                ParentAttachment::Unresolved { .. } | ParentAttachment::Foreign { .. } => continue,
            };
            if ours.iter().any(|e| e["parentRef"] == *parent_ref) {
                continue;
            }
            let current: Vec<Condition> = current_ours
                .iter()
                .find(|e| e["parentRef"] == *parent_ref)
                .and_then(|e| serde_json::from_value(e["conditions"].clone()).ok())
                .unwrap_or_default();
            let attached = matches!(outcome, ParentAttachment::Attached { .. });
            let mut desired = vec![accepted, verdict.resolved.clone()];
            desired.extend(verdict.partial.clone().filter(|_| attached));
            ours.push(json!({
                "parentRef": parent_ref,
                "controllerName": CONTROLLER_NAME,
                "conditions": conditions(desired, &current, self.meta.generation, inputs.now),
            }));
        }
        ours.truncate(MAX_PARENTS.saturating_sub(foreign.len()));
        if ours == current_ours {
            return None;
        }
        let parents: Vec<Value> = foreign.into_iter().chain(ours).collect();
        let mut patch = json!({ "status": { "parents": parents } });
        if let Some(version) = &self.meta.resource_version {
            patch["metadata"] = json!({ "resourceVersion": version });
        }
        Some(namespaced(self.kind, self.meta, patch))
    }
}

/// What a route's own findings say, the same for every parent it attaches to.
struct Verdict {
    /// `Accepted` where it attaches, when it is not served.
    refused: Option<Desired>,
    /// `ResolvedRefs`.
    resolved: Desired,
    /// `PartiallyInvalid`, when the route is served but some of its rules are not.
    partial: Option<Desired>,
}

impl Verdict {
    fn new(attachments: &RouteAttachments, found: &[&Diagnostic]) -> Self {
        let references: Vec<&Diagnostic> = found
            .iter()
            .copied()
            .filter(|d| d.is_error() && REFERENCE_REASONS.contains(&d.reason))
            .collect();
        let resolved = match references.first() {
            Some(first) => Desired::no(RESOLVED_REFS, first.reason, describe_first(&references)),
            None => Desired::yes(RESOLVED_REFS, REASON_RESOLVED_REFS, "references resolved"),
        };
        let own: Vec<&Diagnostic> = found
            .iter()
            .copied()
            .filter(|d| !d.field.starts_with("spec.parentRefs"))
            .collect();
        let invalid: Vec<&Diagnostic> = own
            .iter()
            .copied()
            .filter(|d| d.is_error() && !REFERENCE_REASONS.contains(&d.reason))
            .collect();
        let partial = match invalid.first() {
            Some(first) if attachments.served => Some(Desired::yes(
                PARTIALLY_INVALID,
                first.reason,
                format!("some rules are not served: {}", describe_first(&invalid)),
            )),
            _ => None,
        };
        let refused = (!attachments.served).then(|| match own.first() {
            Some(first) => Desired::no(
                ACCEPTED,
                first.reason,
                format!(
                    "the route serves nothing until this is fixed: {}",
                    describe_first(&own)
                ),
            ),
            None => Desired::no(ACCEPTED, "Invalid", "the route serves nothing"),
        });
        Self {
            refused,
            resolved,
            partial,
        }
    }

    /// `Accepted` for a parent the route attached to through `listeners`.
    fn accepted(&self, gateway: &ObjectRef, listeners: &[String]) -> Desired {
        match &self.refused {
            Some(refused) => refused.clone(),
            None => Desired::yes(
                ACCEPTED,
                REASON_ACCEPTED,
                format!(
                    "attached to Gateway {gateway} through listener {}",
                    listeners.join(", ")
                ),
            ),
        }
    }
}
