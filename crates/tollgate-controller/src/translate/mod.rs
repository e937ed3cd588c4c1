//! The pure translation from resources to one configuration per Gateway.
//!
//! Invalid parts are left out and reported as [`Diagnostic`]s; what is valid is still
//! translated, so a caller can choose to serve the rest (the Kubernetes controller, which
//! reports per resource in status) or refuse the whole change (`tollgate run`, which keeps its
//! last good snapshot on any error).

mod budgets;
mod cloud;
mod gateways;
mod grants;
mod hostnames;
mod http_routes;
mod jwt;
mod keys;
mod matches;
mod mcp;
mod parents;
mod policy;
mod port_sharing;
mod providers;
mod routes;
mod secrets;
mod services;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use tollgate_config::{GatewayConfig, ObjectRef};

use crate::{Diagnostic, Resources};

pub use parents::{ParentAttachment, RouteAttachments, RouteId, RouteKind};

/// The `controllerName` of GatewayClasses that Tollgate serves.
pub const CONTROLLER_NAME: &str = "tollgate.dev/gateway-controller";

/// Choices that depend on where resources come from.
#[derive(Clone, Debug, Default)]
pub struct TranslateOptions {
    /// A GatewayClass name served even when no GatewayClass object declares it. `tollgate run`
    /// sets `tollgate`, so a directory of manifests needs no GatewayClass; in a cluster the
    /// GatewayClass object is the contract and this is unset.
    pub implicit_gateway_class: Option<String>,
}

/// The result of a translation.
#[derive(Clone, Debug, Default)]
pub struct Translation {
    /// One configuration per Gateway that Tollgate serves.
    pub configs: BTreeMap<ObjectRef, GatewayConfig>,
    /// Everything found wrong, errors first, then in resource order.
    pub diagnostics: Vec<Diagnostic>,
    /// How every parentRef of every route fared, for route and Gateway status.
    pub routes: BTreeMap<RouteId, RouteAttachments>,
}

impl Translation {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Translates a set of resources into one configuration per Gateway of a Tollgate class.
pub fn translate(resources: &Resources, options: &TranslateOptions) -> Translation {
    let mut diagnostics = Vec::new();
    let secrets = secrets::SecretIndex::new(&resources.secrets);
    let providers =
        providers::translate_all(&resources.model_providers, &secrets, &mut diagnostics);
    let api_keys = keys::translate_all(&resources.secrets, &mut diagnostics);
    let budgets = budgets::translate_all(&resources.budget_policies, &mut diagnostics);
    let jwt_providers = jwt::translate_all(&resources.jwt_providers, &mut diagnostics);
    let gateways = gateways::translate_all(resources, options, &secrets, &mut diagnostics);
    let mcp_servers = mcp::translate_all(&resources.mcp_servers, &secrets, &mut diagnostics);
    let grants = grants::Grants::new(&resources.reference_grants);
    let services = services::ServiceIndex::new(&resources.services);
    let references = routes::References {
        providers: &providers,
        mcp_servers: &mcp_servers,
        secrets: &secrets,
        grants: &grants,
        services: &services,
    };
    let parents = parents::Parents {
        served: &gateways,
        existing: resources
            .gateways
            .iter()
            .map(|g| ObjectRef::new(namespace_of(&g.metadata), name_of(&g.metadata)))
            .collect(),
    };
    let (http_rules, http_attachments) = http_routes::attach_all(
        &resources.http_routes,
        &parents,
        &references,
        &mut diagnostics,
    );
    let (mut configs, mut routes) = routes::attach_all(
        &resources.ai_routes,
        http_rules,
        &parents,
        &references,
        &mut diagnostics,
    );
    routes.extend(http_attachments);
    for config in configs.values_mut() {
        config.api_keys = api_keys.clone();
        config.budgets = budgets.clone();
        config.jwt_providers = jwt_providers.clone();
    }
    diagnostics.sort_by_key(|d| d.severity);
    Translation {
        configs,
        diagnostics,
        routes,
    }
}

/// The namespace of a resource; sources always set it, but a missing one reads as `default`.
fn namespace_of(meta: &tollgate_api::upstream::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// The name of a resource.
fn name_of(meta: &tollgate_api::upstream::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}
