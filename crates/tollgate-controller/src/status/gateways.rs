//! Status of GatewayClasses (Accepted) and of the Gateways Tollgate serves: Accepted,
//! Programmed (what the proxies acknowledged), one entry per listener, and addresses.

use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayStatusListeners, GatewayStatusListenersSupportedKinds,
};
use serde_json::Map;
use std::collections::{BTreeSet, HashMap};
use tollgate_config::{GatewayConfig, ObjectRef};

use super::addresses::gateway_addresses;
use super::conditions::{
    ACCEPTED, CONFLICTED, Desired, PROGRAMMED, REASON_ACCEPTED, REASON_INVALID,
    REASON_NO_CONFLICTS, REASON_PENDING, REASON_PROGRAMMED, REASON_RESOLVED_REFS, RESOLVED_REFS,
    conditions,
};
use super::{
    Findings, StatusInputs, StatusKind, StatusPatch, StatusTarget, describe, merge_patch, name_of,
    namespace_of, namespaced, to_json,
};
use crate::{CONTROLLER_NAME, Diagnostic, ParentAttachment, Programmed};

/// The route kinds every HTTP and HTTPS listener supports, as (group, kind).
const ROUTE_KINDS: [(&str, &str); 2] = [
    ("gateway.networking.k8s.io", "HTTPRoute"),
    ("tollgate.dev", "AIRoute"),
];
/// Translation's reason for listeners on one port with different protocols, which is also
/// the reason of their `Conflicted` condition.
const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
/// Translation's reason for listeners on one port with the same protocol and host name.
const HOSTNAME_CONFLICT: &str = "HostnameConflict";
/// A Gateway's listeners are not all usable.
const REASON_LISTENERS_NOT_VALID: &str = "ListenersNotValid";

pub(super) fn class_patches(inputs: &StatusInputs<'_>, out: &mut Vec<StatusPatch>) {
    let ours = inputs
        .resources
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME);
    for class in ours {
        let current = class.status.as_ref().and_then(|s| s.conditions.as_deref());
        let accepted = Desired::yes(
            ACCEPTED,
            REASON_ACCEPTED,
            "Tollgate serves the Gateways of this class",
        );
        let mut desired = Map::new();
        desired.insert(
            "conditions".into(),
            to_json(&conditions(
                vec![accepted],
                current.unwrap_or_default(),
                class.metadata.generation,
                inputs.now,
            )),
        );
        if let Some(patch) = merge_patch(to_json(&class.status), desired) {
            out.push(StatusPatch {
                target: StatusTarget {
                    kind: StatusKind::GatewayClass,
                    namespace: None,
                    name: name_of(&class.metadata).into(),
                },
                resource_version: class.metadata.resource_version.clone(),
                patch,
            });
        }
    }
}

pub(super) fn gateway_patches(
    inputs: &StatusInputs<'_>,
    findings: &Findings<'_>,
    out: &mut Vec<StatusPatch>,
) {
    for gateway in &inputs.resources.gateways {
        let id = ObjectRef::new(namespace_of(&gateway.metadata), name_of(&gateway.metadata));
        let Some(config) = inputs.translation.configs.get(&id) else {
            continue;
        };
        let found = findings.of(StatusKind::Gateway, &id.namespace, &id.name);
        let programmed = programmed(inputs.programmed.get(&id));
        let attached = attached_routes(inputs, &id);
        let generation = gateway.metadata.generation;
        let current = gateway.status.as_ref();
        let current_listeners = current
            .and_then(|s| s.listeners.as_deref())
            .unwrap_or_default();
        let listeners: Vec<GatewayStatusListeners> = distinct_listeners(gateway, config, found)
            .into_iter()
            .map(|(index, spec)| {
                let desired = listener_conditions(gateway, index, config, found, &programmed);
                let current = current_listeners
                    .iter()
                    .find(|l| l.name == spec.name)
                    .map_or(&[][..], |l| l.conditions.as_slice());
                GatewayStatusListeners {
                    attached_routes: attached.get(spec.name.as_str()).copied().unwrap_or(0),
                    conditions: conditions(desired, current, generation, inputs.now),
                    name: spec.name.clone(),
                    supported_kinds: Some(supported_kinds(spec).0),
                }
            })
            .collect();
        let desired_conditions = gateway_conditions(gateway, config, found, programmed);
        let current_conditions = current.and_then(|s| s.conditions.as_deref());
        let mut desired = Map::new();
        desired.insert(
            "conditions".into(),
            to_json(&conditions(
                desired_conditions,
                current_conditions.unwrap_or_default(),
                generation,
                inputs.now,
            )),
        );
        desired.insert("listeners".into(), to_json(&listeners));
        desired.insert(
            "addresses".into(),
            to_json(&gateway_addresses(&id, inputs.services)),
        );
        if let Some(patch) = merge_patch(to_json(&current), desired) {
            out.push(namespaced(StatusKind::Gateway, &gateway.metadata, patch));
        }
    }
}

/// The Gateway's `Programmed` condition as the proxies' acknowledgements have it.
fn programmed(state: Option<&Programmed>) -> Desired {
    match state.unwrap_or(&Programmed::NoProxies) {
        Programmed::NoProxies => Desired::no(
            PROGRAMMED,
            REASON_PENDING,
            "no proxy serving this Gateway is connected",
        ),
        Programmed::Pending { version } => Desired::no(
            PROGRAMMED,
            REASON_PENDING,
            format!("waiting for the proxies to acknowledge version {version}"),
        ),
        Programmed::Programmed { version } => Desired::yes(
            PROGRAMMED,
            REASON_PROGRAMMED,
            format!("the proxies run version {version}"),
        ),
        Programmed::Rejected {
            version,
            proxy,
            error,
        } => Desired::no(
            PROGRAMMED,
            REASON_INVALID,
            format!(
                "proxy {proxy} rejected version {version} and keeps serving an older one: {error}"
            ),
        ),
    }
}

fn gateway_conditions(
    gateway: &Gateway,
    config: &GatewayConfig,
    found: &[&Diagnostic],
    programmed: Desired,
) -> Vec<Desired> {
    let invalid: Vec<String> = found
        .iter()
        .filter(|d| d.field.starts_with("spec.listeners["))
        .map(|d| {
            let name = listener_index(&d.field)
                .and_then(|i| gateway.spec.listeners.get(i))
                .map_or("?", |l| l.name.as_str());
            format!("listener {name:?}: {}", describe(d))
        })
        .collect();
    if config.listeners.is_empty() {
        let message = match invalid.is_empty() {
            true => "the Gateway has no listener".to_string(),
            false => format!("no listener is valid; {}", invalid.join("; ")),
        };
        return vec![
            Desired::no(ACCEPTED, REASON_LISTENERS_NOT_VALID, message.clone()),
            Desired::no(PROGRAMMED, REASON_INVALID, message),
        ];
    }
    let accepted = match invalid.is_empty() {
        true => Desired::yes(ACCEPTED, REASON_ACCEPTED, "Tollgate serves this Gateway"),
        false => Desired::yes(
            ACCEPTED,
            REASON_LISTENERS_NOT_VALID,
            format!("some listeners are not served; {}", invalid.join("; ")),
        ),
    };
    vec![accepted, programmed]
}

/// One listener per name, in spec order: the one that is served, else the first of that name.
fn distinct_listeners<'g>(
    gateway: &'g Gateway,
    config: &GatewayConfig,
    found: &[&Diagnostic],
) -> Vec<(usize, &'g GatewayListeners)> {
    let mut chosen: Vec<(usize, &GatewayListeners)> = Vec::new();
    for (index, spec) in gateway.spec.listeners.iter().enumerate() {
        let served = config.listeners.iter().any(|l| l.name == spec.name)
            && !found.iter().any(|d| on_listener(d, index));
        match chosen.iter_mut().find(|(_, l)| l.name == spec.name) {
            Some(slot) if served => *slot = (index, spec),
            Some(_) => {}
            None => chosen.push((index, spec)),
        }
    }
    chosen
}

fn listener_conditions(
    gateway: &Gateway,
    index: usize,
    config: &GatewayConfig,
    found: &[&Diagnostic],
    programmed: &Desired,
) -> Vec<Desired> {
    let spec = &gateway.spec.listeners[index];
    let errors: Vec<&Diagnostic> = found
        .iter()
        .copied()
        .filter(|d| on_listener(d, index))
        .collect();
    let with = |reasons: &[&str]| errors.iter().copied().find(|d| reasons.contains(&d.reason));
    let served = errors.is_empty() && config.listeners.iter().any(|l| l.name == spec.name);

    let accepted = match with(&[
        "InvalidPort",
        PROTOCOL_CONFLICT,
        HOSTNAME_CONFLICT,
        "UnsupportedProtocol",
    ]) {
        Some(d) if d.reason == "UnsupportedProtocol" => {
            Desired::no(ACCEPTED, "UnsupportedProtocol", describe(d))
        }
        Some(d) => Desired::no(ACCEPTED, "PortUnavailable", describe(d)),
        None => Desired::yes(ACCEPTED, REASON_ACCEPTED, "listener is valid"),
    };
    let conflicted = match with(&[PROTOCOL_CONFLICT, HOSTNAME_CONFLICT]) {
        Some(d) => Desired::yes(CONFLICTED, d.reason, describe(d)),
        None => Desired::no(CONFLICTED, REASON_NO_CONFLICTS, "no conflicts"),
    };
    let (_, unsupported) = supported_kinds(spec);
    let resolved = match with(&["InvalidCertificateRef", "RefNotPermitted"]) {
        Some(d) => Desired::no(RESOLVED_REFS, d.reason, describe(d)),
        None if !unsupported.is_empty() => Desired::no(
            RESOLVED_REFS,
            "InvalidRouteKinds",
            format!(
                "route kinds {} are not supported; use HTTPRoute or tollgate.dev AIRoute",
                unsupported.join(", ")
            ),
        ),
        None => Desired::yes(RESOLVED_REFS, REASON_RESOLVED_REFS, "references resolved"),
    };
    let programmed = match errors.first() {
        Some(d) => Desired::no(PROGRAMMED, REASON_INVALID, describe(d)),
        None if !served => Desired::no(PROGRAMMED, REASON_INVALID, "listener is not served"),
        None => programmed.clone(),
    };
    vec![accepted, conflicted, resolved, programmed]
}

/// The route kinds a listener supports, and the ones its `allowedRoutes.kinds` asks for in
/// vain (as `group/kind`).
fn supported_kinds(
    spec: &GatewayListeners,
) -> (Vec<GatewayStatusListenersSupportedKinds>, Vec<String>) {
    let kind = |(group, kind): (&str, &str)| GatewayStatusListenersSupportedKinds {
        group: Some(group.into()),
        kind: kind.into(),
    };
    if !matches!(spec.protocol.as_str(), "HTTP" | "HTTPS") {
        return (Vec::new(), Vec::new());
    }
    let requested = spec
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_deref())
        .unwrap_or_default();
    if requested.is_empty() {
        return (ROUTE_KINDS.into_iter().map(kind).collect(), Vec::new());
    }
    let mut supported = Vec::new();
    let mut unsupported = Vec::new();
    for wanted in requested {
        let group = wanted
            .group
            .as_deref()
            .unwrap_or("gateway.networking.k8s.io");
        match ROUTE_KINDS
            .into_iter()
            .find(|(g, k)| *g == group && *k == wanted.kind)
        {
            Some(known) => supported.push(kind(known)),
            None => unsupported.push(format!("{group}/{}", wanted.kind)),
        }
    }
    (supported, unsupported)
}

/// How many served routes attached to each listener of `gateway`, by listener name.
fn attached_routes<'t>(inputs: &StatusInputs<'t>, gateway: &ObjectRef) -> HashMap<&'t str, i32> {
    let mut counts: HashMap<&str, i32> = HashMap::new();
    for route in inputs.translation.routes.values().filter(|r| r.served) {
        let listeners: BTreeSet<&str> = route
            .parents
            .iter()
            .filter_map(|p| match p {
                ParentAttachment::Attached {
                    gateway: g,
                    listeners,
                } if g == gateway => Some(listeners),
                _ => None,
            })
            .flatten()
            .map(String::as_str)
            .collect();
        for listener in listeners {
            *counts.entry(listener).or_default() += 1;
        }
    }
    counts
}

/// Whether a diagnostic is about the listener at `index`.
fn on_listener(diagnostic: &Diagnostic, index: usize) -> bool {
    listener_index(&diagnostic.field) == Some(index)
}

/// The index in a field path such as `spec.listeners[2].port`.
fn listener_index(field: &str) -> Option<usize> {
    let rest = field.strip_prefix("spec.listeners[")?;
    rest[..rest.find(']')?].parse().ok()
}
