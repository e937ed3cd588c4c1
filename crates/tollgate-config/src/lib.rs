//! The snapshot: the plain, validated configuration a Tollgate proxy serves one Gateway with.
//!
//! Translation (in `tollgate-controller`) is the only producer; the proxy only ever reads an
//! immutable [`Snapshot`]. Nothing here does I/O, and every value is already validated, so the
//! proxy never has to second-guess its configuration on the request path.

mod budget;
mod durations;
mod hostnames;
mod identity;
mod matching;
mod mcp;
mod policy;
mod provider;
mod routes;
mod secret;
mod services;
pub mod wire;

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

pub use budget::{
    BudgetPolicy, Budgets, Enforcement, FailureMode, Limit, NANOS_PER_USD, Subject, Unit, Window,
};
pub use hostnames::{HostRank, host_matches, host_rank, request_host};
pub use identity::{Access, ApiKeys, Identity};
pub use matching::{Match, MatchPrecedence, ModelMatch, RequestFacts, has_path_prefix};
pub use mcp::{ArgumentRule, Grant, McpEndpoint, McpServer, McpTransport, ToolRules};
pub use policy::{LoadBalancer, OutlierDetection, RetryOn, RetryPolicy, RouteTimeouts, RulePolicy};
pub use provider::{
    AwsAccount, AwsCredentials, CloudAccount, EntraApplication, GcpAccount, Pricing, Provider,
    ProviderId, ProviderKind, ServiceAccountKey, Timeouts,
};
pub use routes::{Backend, RouteTable, Rule};
pub use secret::Secret;
pub use services::{
    HeaderModifier, PathRewrite, ServiceBackend, ServiceMatch, ServiceRoutes, ServiceRule,
    ServiceTimeouts,
};
pub use tollgate_jwt::{JwtProvider, KeySource};

/// A snapshot as published to a proxy: the configuration and the version it was published as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases by one each time the published configuration of a Gateway changes.
    pub version: u64,
    /// The configuration itself.
    pub config: GatewayConfig,
}

/// Everything one Gateway's proxy needs to serve traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// The Gateway this configuration is for.
    pub gateway: ObjectRef,
    /// Where to listen.
    pub listeners: Vec<Listener>,
    /// The upstream providers, addressed by [`ProviderId`].
    pub providers: Vec<Provider>,
    /// How requests are matched to providers.
    pub routes: RouteTable,
    /// The API keys callers may present.
    pub api_keys: ApiKeys,
    /// The budgets and rate limits requests must fit.
    pub budgets: Budgets,
    /// The identity providers whose JWTs are accepted as credentials.
    pub jwt_providers: Vec<JwtProvider>,
    /// The MCP endpoints, by path.
    pub mcp: Vec<McpEndpoint>,
    /// HTTPRoute rules proxied as plain HTTP to Services.
    #[serde(default)]
    pub service_routes: ServiceRoutes,
}

impl GatewayConfig {
    /// The provider a backend points at.
    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.providers[id.0]
    }
}

/// The namespace and name of a Kubernetes object.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    /// Reads `namespace/name`, as [`ObjectRef`]'s `Serialize` writes it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.split_once('/') {
            Some((namespace, name)) => Ok(Self::new(namespace, name)),
            None => Err(serde::de::Error::custom(format_args!(
                "{text:?} is not a reference of the form namespace/name"
            ))),
        }
    }
}

/// One Gateway listener: a port the proxy listens on, for a host name or any. Listeners of a
/// Gateway may share a port when they all speak plain HTTP or all TLS, with different host
/// names; the proxy then binds the port once and picks the certificate by SNI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    /// The Gateway listener's name.
    pub name: String,
    /// The TCP port.
    pub port: u16,
    /// The host name (exact or `*.` wildcard) the listener is for; any when unset. Routes
    /// attached through it serve only the names it shares with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The certificate to terminate TLS with; plain HTTP when unset.
    pub tls: Option<TlsCertificate>,
}

/// A certificate chain and its private key, PEM-encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsCertificate {
    /// The certificate chain, leaf first.
    pub certificate_chain_pem: String,
    /// The private key.
    pub private_key_pem: Secret,
}
