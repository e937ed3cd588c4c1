//! The set of resources translation reads.

use tollgate_api::upstream::{
    Gateway, GatewayClass, HttpRoute, ObjectMeta, ReferenceGrant, Secret, Service,
};
use tollgate_api::{AIRoute, BudgetPolicy, JWTProvider, MCPServer, ModelProvider};

/// One resource of a kind translation understands.
#[derive(Clone, Debug)]
pub enum Resource {
    /// A Gateway API GatewayClass.
    GatewayClass(Box<GatewayClass>),
    /// A Gateway API Gateway.
    Gateway(Box<Gateway>),
    /// A Gateway API HTTPRoute.
    HttpRoute(Box<HttpRoute>),
    /// A Tollgate AIRoute.
    AIRoute(Box<AIRoute>),
    /// A Tollgate ModelProvider.
    ModelProvider(Box<ModelProvider>),
    /// A Tollgate BudgetPolicy.
    BudgetPolicy(Box<BudgetPolicy>),
    /// A Tollgate MCPServer.
    MCPServer(Box<MCPServer>),
    /// A Tollgate JWTProvider.
    JWTProvider(Box<JWTProvider>),
    /// A core Secret.
    Secret(Box<Secret>),
    /// A core Service, an HTTPRoute backend.
    Service(Box<Service>),
    /// A Gateway API ReferenceGrant.
    ReferenceGrant(Box<ReferenceGrant>),
}

impl Resource {
    /// The resource's kind, as written in manifests.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::GatewayClass(_) => "GatewayClass",
            Resource::Gateway(_) => "Gateway",
            Resource::HttpRoute(_) => "HTTPRoute",
            Resource::AIRoute(_) => "AIRoute",
            Resource::ModelProvider(_) => "ModelProvider",
            Resource::BudgetPolicy(_) => "BudgetPolicy",
            Resource::MCPServer(_) => "MCPServer",
            Resource::JWTProvider(_) => "JWTProvider",
            Resource::Secret(_) => "Secret",
            Resource::Service(_) => "Service",
            Resource::ReferenceGrant(_) => "ReferenceGrant",
        }
    }

    /// The resource's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::GatewayClass(r) => &r.metadata,
            Resource::Gateway(r) => &r.metadata,
            Resource::HttpRoute(r) => &r.metadata,
            Resource::AIRoute(r) => &r.metadata,
            Resource::ModelProvider(r) => &r.metadata,
            Resource::BudgetPolicy(r) => &r.metadata,
            Resource::MCPServer(r) => &r.metadata,
            Resource::JWTProvider(r) => &r.metadata,
            Resource::Secret(r) => &r.metadata,
            Resource::Service(r) => &r.metadata,
            Resource::ReferenceGrant(r) => &r.metadata,
        }
    }
}

/// Everything translation needs, as gathered by a source. Every resource has a namespace
/// (sources default it) except GatewayClasses, which are cluster-scoped.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// GatewayClasses.
    pub gateway_classes: Vec<GatewayClass>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// HTTPRoutes.
    pub http_routes: Vec<HttpRoute>,
    /// AIRoutes.
    pub ai_routes: Vec<AIRoute>,
    /// ModelProviders.
    pub model_providers: Vec<ModelProvider>,
    /// BudgetPolicies.
    pub budget_policies: Vec<BudgetPolicy>,
    /// MCPServers.
    pub mcp_servers: Vec<MCPServer>,
    /// JWTProviders.
    pub jwt_providers: Vec<JWTProvider>,
    /// Secrets: provider credentials, TLS certificates, API keys.
    pub secrets: Vec<Secret>,
    /// ReferenceGrants: which cross-namespace references their target namespaces allow.
    pub reference_grants: Vec<ReferenceGrant>,
    /// Services: where HTTPRoutes that name them send requests.
    pub services: Vec<Service>,
}

impl Resources {
    /// Adds one resource to the set.
    pub fn push(&mut self, resource: Resource) {
        match resource {
            Resource::GatewayClass(r) => self.gateway_classes.push(*r),
            Resource::Gateway(r) => self.gateways.push(*r),
            Resource::HttpRoute(r) => self.http_routes.push(*r),
            Resource::AIRoute(r) => self.ai_routes.push(*r),
            Resource::ModelProvider(r) => self.model_providers.push(*r),
            Resource::BudgetPolicy(r) => self.budget_policies.push(*r),
            Resource::MCPServer(r) => self.mcp_servers.push(*r),
            Resource::JWTProvider(r) => self.jwt_providers.push(*r),
            Resource::Secret(r) => self.secrets.push(*r),
            Resource::Service(r) => self.services.push(*r),
            Resource::ReferenceGrant(r) => self.reference_grants.push(*r),
        }
    }
}
