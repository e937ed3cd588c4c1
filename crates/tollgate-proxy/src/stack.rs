//! The request path, written once: every AI request to a Gateway passes these stages in this
//! order. Read it top to bottom.

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::Snapshot;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::audit::CaptureSettings;
use crate::budget::Ledger;
use crate::health::RouteRuntime;
use crate::labels::Labels;
use crate::metrics::Metrics;
use crate::stages::authenticate::AuthenticateLayer;
use crate::stages::authorize::AuthorizeLayer;
use crate::stages::endpoints::EndpointsLayer;
use crate::stages::inspect::InspectLayer;
use crate::stages::record::Audit;
use crate::stages::record::{RecordLayer, RecordedBody};
use crate::stages::reserve::ReserveLayer;
use crate::stages::route::{Route, Upstreams};
use crate::upstream::UpstreamClients;

/// The service a listener hands each connection's requests to.
pub(crate) type GatewayService =
    BoxCloneSyncService<Request<Incoming>, Response<RecordedBody>, Infallible>;

/// Limits that apply to every request, whatever the Gateway.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// What a Gateway serves now: its snapshot and the runtime state of its rules.
#[derive(Debug)]
pub(crate) struct Served {
    /// The configuration.
    pub(crate) snapshot: Arc<Snapshot>,
    /// Backend health and retry budgets, one entry per rule of the snapshot.
    pub(crate) runtime: Arc<RouteRuntime>,
    /// Verifies JWTs of the snapshot's identity providers, if it has any.
    pub(crate) jwt: Option<Arc<tollgate_jwt::JwtVerifier>>,
    /// The snapshot's MCP endpoints' compiled policies and session keys.
    pub(crate) mcp: Arc<crate::mcp::McpRuntime>,
    /// The snapshot's metric labels.
    pub(crate) labels: Labels,
    /// What requests to the snapshot's providers carry alike.
    pub(crate) upstreams: Upstreams,
}

/// Builds the stack serving one Gateway, whose current configuration `served` holds.
pub(crate) fn gateway_service(
    served: Arc<ArcSwap<Served>>,
    metrics: Metrics,
    clients: Arc<UpstreamClients>,
    limits: RequestLimits,
    ledger: Arc<Ledger>,
    audit: Option<Audit>,
    capture: Option<Arc<CaptureSettings>>,
) -> GatewayService {
    // Every request gets a copy of the stack: shared, the metrics are one reference count.
    let metrics = Arc::new(metrics);
    let stack = ServiceBuilder::new()
        // 1. record: outermost, so every outcome — success, refusal, upstream failure, client
        //    disconnect — is timed, counted and logged, and every error becomes a response in
        //    the caller's dialect. It also pins the snapshot the request finishes on.
        .layer(RecordLayer::new(
            served,
            metrics.clone(),
            ledger.clone(),
            audit,
            capture,
        ))
        // 2. authenticate: no identity, no entry; nothing below runs for an unknown caller.
        .layer(AuthenticateLayer)
        // The model listing needs only an identity; AI operations continue down the pipeline.
        .layer(EndpointsLayer::new(
            clients.clone(),
            metrics.clone(),
            limits,
            ledger.clone(),
        ))
        // 3. inspect: read the body within its limits and parse what the request asks for.
        .layer(InspectLayer::new(
            limits.max_body_bytes,
            limits.body_timeout,
        ))
        // 4. authorize: which rule serves the requested model, if any.
        .layer(AuthorizeLayer)
        // 5. reserve: the worst case on every budget that applies, settled by record.
        .layer(ReserveLayer::new(ledger))
        // 6. route: call the provider and stream its answer back.
        .service(Route::new(clients, metrics));
    BoxCloneSyncService::new(stack)
}
