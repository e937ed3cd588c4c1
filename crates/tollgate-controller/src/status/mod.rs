//! What every resource should report in its status, computed from the resources, their
//! translation and what the proxies acknowledged.
//!
//! Pure: the clock is an input and nothing is read or written. [`status_patches`] returns the
//! merge patches of `/status` that bring each resource's current status to the desired one, and
//! nothing for a resource whose status is already right, so that writing them is idempotent.

mod accepted;
mod addresses;
mod conditions;
mod gateways;
mod routes;

#[cfg(test)]
mod http_route_tests;
#[cfg(test)]
pub(crate) mod tests;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use tollgate_api::upstream::{ObjectMeta, Service};
use tollgate_config::ObjectRef;

use crate::{Diagnostic, Programmed, Resources, Translation};

/// Everything status is computed from.
#[derive(Clone, Copy, Debug)]
pub struct StatusInputs<'a> {
    /// The resources as last gathered, each with its current status.
    pub resources: &'a Resources,
    /// Their translation.
    pub translation: &'a Translation,
    /// Services labelled [`tollgate_api::GATEWAY_LABEL`]: where each Gateway is reachable.
    pub services: &'a [Service],
    /// What the proxies of each served Gateway made of its latest version; a Gateway missing
    /// here has no proxies.
    pub programmed: &'a BTreeMap<ObjectRef, Programmed>,
    /// Each BudgetPolicy's use of its limits as the proxies reported it (see
    /// [`crate::Publisher::budget_usage`]); a policy missing here keeps the usage it shows.
    pub budget_usage: &'a BTreeMap<ObjectRef, Vec<tollgate_api::BudgetUsage>>,
    /// The time written as `lastTransitionTime` of conditions that change.
    pub now: Timestamp,
}

/// The kinds whose status Tollgate writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusKind {
    /// A Gateway API GatewayClass (cluster-scoped).
    GatewayClass,
    /// A Gateway API Gateway.
    Gateway,
    /// A Gateway API HTTPRoute.
    HTTPRoute,
    /// A Tollgate AIRoute.
    AIRoute,
    /// A Tollgate ModelProvider.
    ModelProvider,
    /// A Tollgate BudgetPolicy.
    BudgetPolicy,
    /// A Tollgate MCPServer.
    MCPServer,
    /// A Tollgate JWTProvider.
    JWTProvider,
}

impl StatusKind {
    /// The kind as written in manifests and in [`Diagnostic::kind`].
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::GatewayClass => "GatewayClass",
            StatusKind::Gateway => "Gateway",
            StatusKind::HTTPRoute => "HTTPRoute",
            StatusKind::AIRoute => "AIRoute",
            StatusKind::ModelProvider => "ModelProvider",
            StatusKind::BudgetPolicy => "BudgetPolicy",
            StatusKind::MCPServer => "MCPServer",
            StatusKind::JWTProvider => "JWTProvider",
        }
    }
}

/// The object a status patch is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusTarget {
    /// Its kind.
    pub kind: StatusKind,
    /// Its namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// One status write: a JSON merge patch of the target's `/status` subresource.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusPatch {
    /// The object to patch.
    pub target: StatusTarget,
    /// The `resourceVersion` of the object the patch was computed from.
    pub resource_version: Option<String>,
    /// The merge patch: `{"status": {...}}`, with `metadata.resourceVersion` when the write
    /// must not overwrite a concurrent change (route `parents`, shared with other controllers).
    pub patch: Value,
}

/// The status patches that bring every resource Tollgate reports on to its desired status;
/// resources whose status is already right get none.
pub fn status_patches(inputs: &StatusInputs<'_>) -> Vec<StatusPatch> {
    let findings = Findings::new(&inputs.translation.diagnostics);
    let mut patches = Vec::new();
    gateways::class_patches(inputs, &mut patches);
    gateways::gateway_patches(inputs, &findings, &mut patches);
    routes::patches(inputs, &findings, &mut patches);
    accepted::patches(inputs, &findings, &mut patches);
    patches
}

/// Diagnostics by the resource they are about, errors first.
struct Findings<'a> {
    by_resource: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Diagnostic>>,
}

impl<'a> Findings<'a> {
    fn new(diagnostics: &'a [Diagnostic]) -> Self {
        let mut by_resource: HashMap<_, Vec<_>> = HashMap::new();
        for d in diagnostics {
            by_resource
                .entry((d.kind.as_str(), d.namespace.as_str(), d.name.as_str()))
                .or_default()
                .push(d);
        }
        for found in by_resource.values_mut() {
            found.sort_by_key(|d| d.severity);
        }
        Self { by_resource }
    }

    /// What was found about the resource `kind` `namespace/name`, errors first.
    fn of<'s>(
        &'s self,
        kind: StatusKind,
        namespace: &'s str,
        name: &'s str,
    ) -> &'s [&'s Diagnostic] {
        self.by_resource
            .get(&(kind.as_str(), namespace, name))
            .map_or(&[], Vec::as_slice)
    }
}

/// A diagnostic as a condition message: the field, then what is wrong.
fn describe(diagnostic: &Diagnostic) -> String {
    match diagnostic.field.as_str() {
        "" => diagnostic.message.clone(),
        field => format!("{field}: {}", diagnostic.message),
    }
}

/// The first of several diagnostics as a condition message, saying how many more there are.
fn describe_first(diagnostics: &[&Diagnostic]) -> String {
    match diagnostics {
        [] => String::new(),
        [only] => describe(only),
        [first, rest @ ..] => format!("{} (and {} more)", describe(first), rest.len()),
    }
}

/// `{"status": desired}` when `current` (the object's status as JSON) differs from `desired`
/// in any of `desired`'s fields; `None` when it already holds them all.
fn merge_patch(current: Value, desired: Map<String, Value>) -> Option<Value> {
    let unchanged = desired
        .iter()
        .all(|(field, value)| current.get(field).unwrap_or(&Value::Null) == value);
    (!unchanged).then(|| serde_json::json!({ "status": desired }))
}

/// The patch of a namespaced object of `kind`.
fn namespaced(kind: StatusKind, meta: &ObjectMeta, patch: Value) -> StatusPatch {
    StatusPatch {
        target: StatusTarget {
            kind,
            namespace: Some(namespace_of(meta).to_string()),
            name: name_of(meta).to_string(),
        },
        resource_version: meta.resource_version.clone(),
        patch,
    }
}

/// The namespace of a resource; sources always set it.
fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// The name of a resource.
fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// A value as JSON; status types always serialize.
fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
