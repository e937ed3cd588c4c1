//! Tollgate's custom resources, group `tollgate.dev`, version `v1alpha1`.
//!
//! These types are the API a platform team writes: `ModelProvider`, `AIRoute`, `BudgetPolicy`
//! and `MCPServer`. They are plain serde + schemars types with no I/O, shared by the controller
//! (which reads them from the API server or from YAML files) and by the CRD generator that
//! produces `crds/`.

mod ai_route;
mod budget_policy;
mod common;
pub mod crd;
mod jwt_provider;
mod mcp_server;
mod model_provider;
pub mod schema;

pub use ai_route::{
    AIRoute, AIRouteBackend, AIRouteMCP, AIRouteMatch, AIRouteRule, AIRouteSpec, AIRouteStatus,
    Access, Backoff, HeaderMatch, LoadBalancer, OutlierDetection, RetryBudget, RetryOn,
    RetryPolicy, RouteTimeouts, TokenRange,
};
pub use budget_policy::{
    BudgetEnforcement, BudgetLimit, BudgetPolicy, BudgetPolicySpec, BudgetPolicyStatus,
    BudgetSubject, BudgetSubjectKind, BudgetUsage, BudgetWindow, FailureMode,
};
pub use common::{
    API_KEY_LABEL, API_KEY_SHA256_ANNOTATION, EXPIRES_AT_ANNOTATION, GATEWAY_LABEL, GROUP,
    MCP_SESSION_KEY_ANNOTATION, ParentReference, ResourceStatus, RouteParentStatus, SecretKeyRef,
    TEAM_LABEL, USER_LABEL, VERSION,
};
pub use jwt_provider::{
    ClaimMappings, JWTProvider, JWTProviderSpec, JWTProviderStatus, JwksSource,
};
pub use mcp_server::{
    MCPArgumentRule, MCPGrant, MCPHeader, MCPServer, MCPServerSpec, MCPServerStatus, MCPTimeouts,
    MCPToolRules, MCPTransport,
};
pub use model_provider::{
    AzureSettings, BedrockSettings, EntraSettings, ModelPricing, ModelProvider, ModelProviderSpec,
    ModelProviderStatus, ProviderAuth, ProviderModel, ProviderTimeouts, ProviderType, SecretRef,
    VertexSettings,
};

/// Gateway API and core Kubernetes types that Tollgate's translation consumes, re-exported so
/// every crate agrees on one version of each.
pub mod upstream {
    pub use gateway_api::gatewayclasses::GatewayClass;
    pub use gateway_api::gateways::Gateway;
    pub use gateway_api::httproutes::HttpRoute;
    pub use gateway_api::referencegrants::ReferenceGrant;
    pub use k8s_openapi::api::core::v1::{Secret, Service};
    pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
}
