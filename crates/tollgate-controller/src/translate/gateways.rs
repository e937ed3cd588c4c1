//! Gateways of a Tollgate class → listeners, and what each listener lets attach.

use std::collections::{BTreeMap, HashSet};
use tollgate_api::upstream::Gateway;
use tollgate_config::{Listener, ObjectRef, Secret, TlsCertificate};

use gateway_api::gateways::{GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom};

use super::parents::RouteKind;
use super::port_sharing::{Conflict, PortUse, conflicts};
use super::secrets::SecretIndex;
use super::{CONTROLLER_NAME, TranslateOptions, name_of, namespace_of};
use crate::{Diagnostic, Resources};

const KIND: &str = "Gateway";

/// A Gateway that Tollgate serves, with what routes need to know to attach to it.
pub(super) struct ServedGateway {
    pub(super) name: ObjectRef,
    pub(super) listeners: Vec<Listener>,
    /// For each listener name, which routes it lets attach.
    pub(super) admission: BTreeMap<String, Admission>,
}

/// Which routes one listener lets attach.
pub(super) struct Admission {
    /// The namespace routes must live in; `None` means any.
    pub(super) namespace: Option<String>,
    /// The kinds of route allowed; `None` means every kind Tollgate serves.
    pub(super) kinds: Option<Vec<RouteKind>>,
    /// The listener's port.
    pub(super) port: u16,
    /// The listener's host name, lower-cased; any when unset.
    pub(super) hostname: Option<String>,
}

pub(super) fn translate_all(
    resources: &Resources,
    options: &TranslateOptions,
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<ServedGateway> {
    let mut classes: HashSet<&str> = resources
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .map(|c| name_of(&c.metadata))
        .collect();
    if let Some(implicit) = &options.implicit_gateway_class {
        classes.insert(implicit);
    }
    resources
        .gateways
        .iter()
        .filter(|g| classes.contains(g.spec.gateway_class_name.as_str()))
        .map(|g| translate(g, secrets, diagnostics))
        .collect()
}

fn translate(
    gateway: &Gateway,
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> ServedGateway {
    let name = ObjectRef::new(namespace_of(&gateway.metadata), name_of(&gateway.metadata));
    let error = |index: usize, sub: &str, reason: &'static str, message: String| {
        Diagnostic::error(
            KIND,
            &name.namespace,
            &name.name,
            format!("spec.listeners[{index}]{sub}"),
            reason,
            message,
        )
    };
    let candidates = candidates(gateway, diagnostics, error);
    let uses: Vec<PortUse<'_>> = candidates.iter().map(Candidate::port_use).collect();
    let mut listeners: Vec<Listener> = Vec::new();
    let mut admission: BTreeMap<String, Admission> = BTreeMap::new();
    for ((candidate, usage), conflict) in candidates.iter().zip(&uses).zip(conflicts(&uses)) {
        let spec = candidate.spec;
        if let Some(conflict) = conflict {
            let field = match conflict {
                Conflict::Protocol { .. } => ".protocol",
                Conflict::Hostname { .. } => ".hostname",
            };
            diagnostics.push(error(
                candidate.index,
                field,
                conflict.reason(),
                conflict.message(usage),
            ));
            continue;
        }
        let tls = match spec.protocol.as_str() {
            "HTTPS" => match certificate(&name, spec, secrets) {
                Ok(tls) => Some(tls),
                Err((reason, message)) => {
                    diagnostics.push(error(
                        candidate.index,
                        ".tls.certificateRefs",
                        reason,
                        message,
                    ));
                    continue;
                }
            },
            _ => None,
        };
        admission.insert(
            spec.name.clone(),
            Admission {
                namespace: allowed_namespace(&name, spec),
                kinds: allowed_kinds(spec),
                port: candidate.port,
                hostname: candidate.hostname.clone(),
            },
        );
        listeners.push(Listener {
            name: spec.name.clone(),
            port: candidate.port,
            hostname: candidate.hostname.clone(),
            tls,
        });
    }
    ServedGateway {
        name,
        listeners,
        admission,
    }
}

/// A listener that is valid on its own, before it is checked against the others on its port.
struct Candidate<'g> {
    /// Its index in `spec.listeners`.
    index: usize,
    spec: &'g GatewayListeners,
    port: u16,
    /// The host name, lower-cased.
    hostname: Option<String>,
}

impl Candidate<'_> {
    fn port_use(&self) -> PortUse<'_> {
        PortUse {
            name: &self.spec.name,
            port: self.port,
            protocol: &self.spec.protocol,
            hostname: self.hostname.as_deref(),
        }
    }
}

/// The listeners with a valid port, a protocol Tollgate serves and a name of their own;
/// the others are reported.
fn candidates<'g>(
    gateway: &'g Gateway,
    diagnostics: &mut Vec<Diagnostic>,
    error: impl Fn(usize, &str, &'static str, String) -> Diagnostic,
) -> Vec<Candidate<'g>> {
    let mut candidates: Vec<Candidate<'g>> = Vec::new();
    for (index, spec) in gateway.spec.listeners.iter().enumerate() {
        let Ok(port) = u16::try_from(spec.port)
            .map_err(drop)
            .and_then(|p| if p == 0 { Err(()) } else { Ok(p) })
        else {
            diagnostics.push(error(
                index,
                ".port",
                "InvalidPort",
                format!("port {} is not between 1 and 65535", spec.port),
            ));
            continue;
        };
        if !matches!(spec.protocol.as_str(), "HTTP" | "HTTPS") {
            diagnostics.push(
                error(
                    index,
                    ".protocol",
                    "UnsupportedProtocol",
                    format!(
                        "protocol {:?} is not supported; use HTTP or HTTPS",
                        spec.protocol
                    ),
                )
                .warning(),
            );
            continue;
        }
        if candidates.iter().any(|c| c.spec.name == spec.name) {
            diagnostics.push(error(
                index,
                "",
                "DuplicateListener",
                format!(
                    "another listener is already named {:?}; listener names must be unique",
                    spec.name
                ),
            ));
            continue;
        }
        candidates.push(Candidate {
            index,
            spec,
            port,
            hostname: spec.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
        });
    }
    candidates
}

/// The route kinds a listener's `allowedRoutes.kinds` lets attach; `None` when it does not
/// say, which lets every kind Tollgate serves attach. Kinds Tollgate does not serve are
/// reported in the Gateway's status.
fn allowed_kinds(listener: &GatewayListeners) -> Option<Vec<RouteKind>> {
    let kinds = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_deref())
        .filter(|kinds| !kinds.is_empty())?;
    Some(
        kinds
            .iter()
            .filter_map(|k| {
                let group = k.group.as_deref().unwrap_or("gateway.networking.k8s.io");
                match (group, k.kind.as_str()) {
                    ("gateway.networking.k8s.io", "HTTPRoute") => Some(RouteKind::HTTPRoute),
                    ("tollgate.dev", "AIRoute") => Some(RouteKind::AIRoute),
                    _ => None,
                }
            })
            .collect(),
    )
}

/// Which namespace routes must live in to attach to a listener; `None` means any. Selector
/// rules need Namespace labels, which sources do not gather yet, so they admit only the
/// Gateway's own namespace.
fn allowed_namespace(gateway: &ObjectRef, listener: &GatewayListeners) -> Option<String> {
    let from = listener
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from.clone());
    match from {
        Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => None,
        _ => Some(gateway.namespace.clone()),
    }
}

fn certificate(
    gateway: &ObjectRef,
    listener: &GatewayListeners,
    secrets: &SecretIndex<'_>,
) -> Result<TlsCertificate, (&'static str, String)> {
    let refs = listener
        .tls
        .as_ref()
        .and_then(|t| t.certificate_refs.as_deref())
        .unwrap_or_default();
    let Some(cert_ref) = refs.first() else {
        return Err((
            "InvalidCertificateRef",
            "an HTTPS listener needs tls.certificateRefs naming a kubernetes.io/tls Secret".into(),
        ));
    };
    if cert_ref.kind.as_deref().is_some_and(|k| k != "Secret")
        || cert_ref.group.as_deref().is_some_and(|g| !g.is_empty())
    {
        return Err((
            "InvalidCertificateRef",
            "certificateRefs must name a core Secret".into(),
        ));
    }
    if cert_ref
        .namespace
        .as_deref()
        .is_some_and(|ns| ns != gateway.namespace)
    {
        return Err((
            "RefNotPermitted",
            "certificateRefs to another namespace are not supported yet".into(),
        ));
    }
    let read = |key: &str| {
        secrets
            .value(&gateway.namespace, &cert_ref.name, key)
            .map_err(|e| {
                (
                    "InvalidCertificateRef",
                    e.message(&gateway.namespace, &cert_ref.name, key),
                )
            })
    };
    let chain = read("tls.crt")?;
    let key = read("tls.key")?;
    if !chain.contains("-----BEGIN CERTIFICATE-----") {
        return Err((
            "InvalidCertificateRef",
            format!(
                "tls.crt of Secret {}/{} holds no PEM certificate",
                gateway.namespace, cert_ref.name
            ),
        ));
    }
    if !key.contains("PRIVATE KEY-----") {
        return Err((
            "InvalidCertificateRef",
            format!(
                "tls.key of Secret {}/{} holds no PEM private key",
                gateway.namespace, cert_ref.name
            ),
        ));
    }
    Ok(TlsCertificate {
        certificate_chain_pem: chain,
        private_key_pem: Secret::new(key),
    })
}
