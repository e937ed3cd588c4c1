//! Sends each path to what serves it: an MCP endpoint, a Service rule of an HTTPRoute (plain
//! HTTP, see [`crate::forward`]), the model listing, which needs only an identity, or the AI
//! pipeline (inspect → authorize → route) for chat (OpenAI's completions and Anthropic's
//! messages) and embeddings. On a Gateway with AI rules, the AI endpoints go to them unless a
//! Service rule matches their exact path.

use http::{HeaderValue, Method, Request, Response, header};
use serde_json::json;
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::{ServiceMatch, Snapshot};
use tower::{Layer, Service};

use super::StageFuture;
use super::inspect::read_body;
use crate::body::{BoxError, ProxyBody};
use crate::budget::Ledger;
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, caller};
use crate::forward::ServiceClient;
use crate::metrics::Metrics;
use crate::stack::RequestLimits;
use crate::stages::record::{Audit, RequestIdValue};
use crate::telemetry::spans::RequestSpan;
use crate::upstream::UpstreamClients;
use bytes::Bytes;

/// The AI operation a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `POST /v1/chat/completions` and `POST /v1/responses` (OpenAI) or `POST /v1/messages`
    /// (Anthropic).
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/messages/count_tokens` (Anthropic): the prompt's size, asked of an Anthropic
    /// provider or else counted by the gateway.
    CountTokens,
}

impl Operation {
    /// The operation at a method and path, if it is one the pipeline serves.
    fn of(method: &Method, path: &str) -> Option<Operation> {
        if method != Method::POST {
            return None;
        }
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/v1/responses" | "/v1/messages" => Some(Operation::Chat),
            "/v1/embeddings" => Some(Operation::Embeddings),
            "/v1/messages/count_tokens" => Some(Operation::CountTokens),
            _ => None,
        }
    }

    /// The operation's name in errors.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
            Operation::CountTokens => "count_tokens",
        }
    }
}

/// Adds the endpoint dispatch in front of the AI pipeline.
#[derive(Clone)]
pub(crate) struct EndpointsLayer {
    clients: Arc<UpstreamClients>,
    services: Arc<ServiceClient>,
    metrics: Arc<Metrics>,
    limits: RequestLimits,
    ledger: Arc<Ledger>,
}

impl EndpointsLayer {
    /// Dispatches; MCP endpoints read their messages within `limits`, call their upstreams
    /// with `clients`, count tool calls in `metrics` and against per-tool limits in `ledger`.
    pub(crate) fn new(
        clients: Arc<UpstreamClients>,
        metrics: Arc<Metrics>,
        limits: RequestLimits,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            clients,
            services: Arc::new(ServiceClient::default()),
            metrics,
            limits,
            ledger,
        }
    }
}

impl<S> Layer<S> for EndpointsLayer {
    type Service = Endpoints<S>;

    fn layer(&self, pipeline: S) -> Endpoints<S> {
        Endpoints {
            pipeline,
            clients: self.clients.clone(),
            services: self.services.clone(),
            metrics: self.metrics.clone(),
            limits: self.limits,
            ledger: self.ledger.clone(),
        }
    }
}

/// The dispatching service; `pipeline` serves the AI operations.
#[derive(Clone)]
pub(crate) struct Endpoints<S> {
    pipeline: S,
    clients: Arc<UpstreamClients>,
    services: Arc<ServiceClient>,
    metrics: Arc<Metrics>,
    limits: RequestLimits,
    ledger: Arc<Ledger>,
}

impl<S, B> Service<Request<B>> for Endpoints<S>
where
    S: Service<
            Request<B>,
            Response = Response<ProxyBody>,
            Error = ProxyError,
            Future = StageFuture<Response<ProxyBody>>,
        > + Send
        + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.pipeline.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let operation = Operation::of(request.method(), request.uri().path());
        let target = request
            .extensions()
            .get::<Arc<Snapshot>>()
            .and_then(|snapshot| plain_target(snapshot, &request, operation.is_some()));
        match target {
            Some(PlainTarget::Mcp(index)) => {
                return Box::pin(serve_mcp(
                    request,
                    index,
                    McpShared {
                        clients: self.clients.clone(),
                        metrics: Metrics::clone(&self.metrics),
                        limits: self.limits,
                        ledger: self.ledger.clone(),
                    },
                ));
            }
            Some(PlainTarget::Service(found)) => {
                return Box::pin(crate::forward::serve(
                    request,
                    found,
                    self.services.clone(),
                    self.limits,
                ));
            }
            None => {}
        }
        let path = request.uri().path();
        if let Some(operation) = operation {
            if let Some(exchange) = request.extensions().get::<SharedExchange>() {
                let _ = exchange.operation.set(operation);
            }
            // Already boxed: passed on as it is.
            return self.pipeline.call(request);
        }
        let result =
            if request.method() == Method::GET && path.trim_end_matches('/') == "/v1/models" {
                list_models(&request)
            } else {
                Err(ProxyError::UnknownEndpoint {
                    method: request.method().clone(),
                    path: path.chars().take(256).collect(),
                })
            };
        Box::pin(std::future::ready(result))
    }
}

/// What serves a request outside the AI pipeline.
enum PlainTarget {
    /// The MCP endpoint at this index of the snapshot.
    Mcp(usize),
    /// A Service rule.
    Service(ServiceMatch),
}

/// The MCP endpoint or Service rule that serves a request, if any; `operation`: whether the
/// path is an AI operation's.
fn plain_target<B>(
    snapshot: &Snapshot,
    request: &Request<B>,
    operation: bool,
) -> Option<PlainTarget> {
    if let Some(index) = crate::forward::mcp_endpoint(snapshot, request) {
        return Some(PlainTarget::Mcp(index));
    }
    let models = request.method() == Method::GET && request.uri().path() == "/v1/models";
    let ai_endpoint = (operation || models) && !snapshot.config.routes.rules().is_empty();
    crate::forward::service_rule(snapshot, request, ai_endpoint).map(PlainTarget::Service)
}

/// What every MCP request shares.
struct McpShared {
    clients: Arc<UpstreamClients>,
    metrics: Metrics,
    limits: RequestLimits,
    ledger: Arc<Ledger>,
}

/// A request to the MCP endpoint `index` of the snapshot.
async fn serve_mcp<B>(
    request: Request<B>,
    index: usize,
    McpShared {
        clients,
        metrics,
        limits,
        ledger,
    }: McpShared,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let identity = caller(&request)?.clone();
    let (parts, body) = request.into_parts();
    let missing = |what: &str| ProxyError::Internal(format!("no {what} in request"));
    let snapshot = parts
        .extensions
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| missing("snapshot"))?;
    let runtime = parts
        .extensions
        .get::<Arc<crate::mcp::McpRuntime>>()
        .ok_or_else(|| missing("MCP runtime"))?;
    let body = read_body(
        &parts.headers,
        body,
        limits.max_body_bytes,
        limits.body_timeout,
    )
    .await?;
    let endpoint = &snapshot.config.mcp[index];
    let request_id = parts
        .extensions
        .get::<RequestIdValue>()
        .and_then(|id| id.0.to_str().ok())
        .unwrap_or_default();
    let call = crate::mcp::Call {
        snapshot,
        ledger: &ledger,
        endpoint,
        runtime,
        index,
        identity: &identity,
        clients: &clients,
        recorder: crate::mcp::Recorder {
            metrics,
            audit: parts.extensions.get::<Audit>().cloned(),
            span: parts.extensions.get::<RequestSpan>().cloned(),
            request_id: request_id.to_string(),
            route: endpoint.route.clone(),
            identity: identity.clone(),
        },
    };
    Ok(crate::mcp::serve(call, &parts.method, &parts.headers, body).await)
}

/// `GET /v1/models`: the models the caller may ask for, in Anthropic's list format when the
/// caller is an Anthropic client (it sends `anthropic-version`), else in OpenAI's.
fn list_models<B>(request: &Request<B>) -> Result<Response<ProxyBody>, ProxyError> {
    let snapshot = request
        .extensions()
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| ProxyError::Internal("no snapshot".into()))?;
    let identity = caller(request)?;
    let config = &snapshot.config;
    let models = config
        .routes
        .models()
        .into_iter()
        .filter(|(_, rule)| rule.allows(identity));
    let body = if request.headers().contains_key("anthropic-version") {
        let data: Vec<serde_json::Value> = models
            .map(|(model, _)| {
                json!({"type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        let (first, last) = (data.first(), data.last());
        json!({"data": data, "has_more": false, "first_id": first.map(|m| &m["id"]), "last_id": last.map(|m| &m["id"])})
    } else {
        let data: Vec<serde_json::Value> = models
            .map(|(model, rule)| {
                let owner = rule
                    .backends
                    .first()
                    .map(|b| config.provider(b.provider).name.to_string())
                    .unwrap_or_default();
                json!({"id": model, "object": "model", "created": 0, "owned_by": owner})
            })
            .collect();
        json!({"object": "list", "data": data})
    }
    .to_string();
    let mut response = Response::new(ProxyBody::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
