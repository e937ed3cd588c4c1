//! `AIRoute`: which requests go to which provider and model.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ParentReference, RouteParentStatus, SecretKeyRef};

/// Routes AI requests arriving at a Gateway to model providers. Attaches to Gateways through
/// `parentRefs`, as Gateway API routes do.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "AIRoute",
    namespaced,
    status = "AIRouteStatus",
    shortname = "air",
    category = "tollgate",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.parents[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteSpec {
    /// The Gateways (and optionally their listeners) this route attaches to.
    pub parent_refs: Vec<ParentReference>,
    /// Rules, each matching requests and naming the backends that serve them. A request uses
    /// the first rule that matches, looking first at rules naming its exact `model`, then at
    /// rules with a `modelPrefix` of it (longest prefix first), then at rules with no model
    /// condition; among equals, the oldest route wins (creation time), then namespace, name and
    /// rule position. A rule matches when any of its matches holds entirely. A route's rules
    /// serve every listener of the Gateways it attaches to.
    pub rules: Vec<AIRouteRule>,
    /// Who may use this route; everyone with a valid credential when unset. A rule's own
    /// `access` narrows it further: a caller must be allowed by both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// The callers allowed: anyone in one of the lists. Others get 403 naming what was refused,
/// and `GET /v1/models` lists only the models a caller may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// Teams allowed (as labelled on API keys or mapped from token claims).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// Users allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// API keys allowed, by the name of their Secret in the route's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// One routing rule: what it matches and where it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteRule {
    /// An optional name for the rule, shown in metrics and logs instead of its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions on the request; the rule applies when any one matches. No matches means the
    /// rule applies to every request.
    #[serde(default)]
    pub matches: Vec<AIRouteMatch>,
    /// The backends that serve matching requests. Those of the lowest `priority` serve while
    /// any of them is healthy; within a priority, `loadBalancer` picks one.
    #[serde(default)]
    pub backends: Vec<AIRouteBackend>,
    /// Serve an MCP endpoint instead of models: the paths of `matches` (default `/mcp`) are
    /// one virtual MCP server aggregating these MCPServers. Such a rule has no `backends`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<AIRouteMCP>,
    /// How a backend is picked among those of one priority. Default `WeightedRandom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// When and how often a failed attempt is tried again, on another backend when there is
    /// one. Default: 2 attempts on connect failures, 429, 5xx and timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Limits on how long requests of this rule may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<RouteTimeouts>,
    /// When a failing backend is taken out of rotation. Default: after 5 consecutive failures,
    /// for 30s, then tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Who may use the models of this rule, on top of the route's `access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// An MCP endpoint that aggregates MCP servers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteMCP {
    /// The MCPServers (in the route's namespace) behind the endpoint.
    pub servers: Vec<String>,
    /// The Secret key (at least 32 characters) whose hash seals `Mcp-Session-Id`s, so that
    /// any proxy replica with the same Secret can serve any request of a session.
    pub session_key_ref: SecretKeyRef,
}

/// Ways of picking one backend among several of the same priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancer {
    /// At random, in proportion to `weight`.
    #[default]
    WeightedRandom,
    /// The backend with the fewest requests in flight (ties by weight at random).
    LeastRequest,
    /// Of two backends drawn by weight, the one with the lower peak-EWMA time to first byte
    /// times its requests in flight (power of two choices).
    LatencyAware,
    /// The cheapest backend by its model's prices (input plus output per million tokens).
    CostAware,
}

/// Retries and failover.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 2; 1 turns retries off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub attempts: Option<u32>,
    /// Which failures are tried again. Default all of them. A failure after the first byte of
    /// the response reached the caller is never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<RetryOn>>,
    /// Exponential backoff with full jitter between attempts on the same backend, as Gateway
    /// API durations. Default base `25ms`, max `1s`. Failover to another backend does not wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Caps retries so that an outage cannot multiply load: each second, retries may add at
    /// most `percent` of the second's requests, plus `minPerSecond`. Default 20 and 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RetryBudget>,
}

/// Failures that may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RetryOn {
    /// The connection could not be opened, or broke before the response began.
    ConnectFailure,
    /// The upstream answered 429; its `retry-after` is honoured.
    RateLimited,
    /// The upstream answered 5xx, or refused the gateway's credential (401, 403).
    ServerError,
    /// No first byte arrived within `timeouts.firstByte`.
    Timeout,
}

/// Exponential backoff bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// The first wait's upper bound; each retry doubles it. Default `25ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub base: Option<String>,
    /// The largest wait. Default `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub max: Option<String>,
}

/// How many retries the rule may add to its traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudget {
    /// Retries allowed, as a percentage of recent requests. Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub percent: Option<u32>,
    /// Retries always allowed per second, however few requests there are. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub min_per_second: Option<u32>,
}

/// Time limits of a rule, as Gateway API durations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTimeouts {
    /// Per attempt: how long until the response's first byte (for a stream, its first event).
    /// A backend that misses it is failed over. Defaults to the provider's `responseHeaders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub first_byte: Option<String>,
    /// The whole request, all attempts and the full response stream included. Unlimited
    /// by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub request: Option<String>,
}

/// Passive health checking: failing backends leave rotation for a while.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// Consecutive failures that eject a backend. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub consecutive_failures: Option<u32>,
    /// How long an ejected backend stays out before one request probes it (half-open); a
    /// success brings it back, a failure ejects it again. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"))]
    pub ejection_time: Option<String>,
}

/// A condition on an AI request; every field set must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteMatch {
    /// The exact model name the caller asks for (the `model` field of the request). It may be
    /// an alias such as `fast`, which the rule's backends resolve to real models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A prefix of the requested model (`gpt-4o` matches `gpt-4o-mini`). Not with `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_prefix: Option<String>,
    /// Request headers that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// The exact request path, such as `/v1/embeddings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bounds on the prompt's size in tokens, estimated from its length (four bytes a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<TokenRange>,
    /// Whether the request must (true) or must not (false) define tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_tools: Option<bool>,
    /// Whether the request must (true) or must not (false) carry images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_images: Option<bool>,
}

/// A request header and its required value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// The header's name, case-insensitive.
    pub name: String,
    /// The exact value required.
    pub value: String,
}

/// An inclusive range of token counts; either bound may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRange {
    /// The least number of tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// The greatest number of tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// A provider and the upstream model to ask it for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteBackend {
    /// Name of a `ModelProvider` in the route's namespace.
    pub provider: String,
    /// The model to request upstream, replacing the caller's. Defaults to the requested model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Relative share of traffic among backends of the same priority. Default 1; 0 disables
    /// the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub weight: Option<u32>,
    /// Failover group: all backends of priority 0 serve first, priority 1 only when none of
    /// priority 0 is healthy or all were tried, and so on. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub priority: Option<u32>,
}

/// What Tollgate observed about this route, per parent Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIRouteStatus {
    /// One entry per parent Gateway this route attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<RouteParentStatus>,
}
