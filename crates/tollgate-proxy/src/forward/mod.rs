//! Plain HTTP to Services, for HTTPRoute rules whose backends are Services: the request is
//! forwarded (method, rewritten path, query, headers without hop-by-hop ones and without the
//! caller's credential, body streamed) to a backend drawn by weight, and the answer streamed
//! back.
//!
//! It is reached from the endpoint dispatch, after authenticate: every call through Tollgate
//! carries an identity, plain HTTP included. A rule matches a request the Gateway API way
//! ([`tollgate_config::ServiceRoutes`]); the AI endpoints (`/v1/chat/completions`, ...) stay
//! with the AI rules of a Gateway that has any, unless a Service rule matches their exact path.

mod client;
mod relay;
mod rewrite;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tollgate_config::{Pricing, RequestFacts, ServiceMatch, Snapshot};

use crate::body::{BoxError, ProxyBody};
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, Target};
use crate::labels::Label;
use crate::request_facts;
use crate::series::TargetSeries;
use crate::stack::RequestLimits;
use crate::upstream::{is_timeout, strip_hop_by_hop};

pub(crate) use client::ServiceClient;

/// How long a backend may take to answer when the rule sets no timeout.
const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The MCP endpoint that serves the request's path on its host, if any.
pub(crate) fn mcp_endpoint<B>(snapshot: &Snapshot, request: &Request<B>) -> Option<usize> {
    let host = request_facts::host(request);
    let path = request.uri().path();
    snapshot
        .config
        .mcp
        .iter()
        .position(|endpoint| endpoint.serves(path, host))
}

/// The Service rule that serves a request, if any. `ai_endpoint` says the path is one the
/// AI pipeline serves on a Gateway with AI rules: only a match on that exact path takes it.
pub(crate) fn service_rule<B>(
    snapshot: &Snapshot,
    request: &Request<B>,
    ai_endpoint: bool,
) -> Option<ServiceMatch> {
    let routes = &snapshot.config.service_routes;
    if routes.is_empty() {
        return None;
    }
    let header_is = |name: &str, value: &str| request_facts::header_is(request, name, value);
    let query = request.uri().query();
    let query_is = |name: &str, value: &str| request_facts::query_is(query, name, value);
    let facts = RequestFacts {
        model: "",
        path: request.uri().path(),
        method: request.method().as_str(),
        host: request_facts::host(request),
        header_is: &header_is,
        query_is: &query_is,
        prompt_tokens: 0,
        has_tools: false,
        has_images: false,
    };
    routes
        .lookup(&facts)
        .filter(|found| found.exact_path || !ai_endpoint)
}

/// Forwards a request to a backend of the Service rule `found` chose, and streams the answer
/// back.
pub(crate) async fn serve<B>(
    request: Request<B>,
    found: ServiceMatch,
    client: Arc<ServiceClient>,
    limits: RequestLimits,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let missing = |what: &str| ProxyError::Internal(format!("no {what} in request"));
    let snapshot = parts
        .extensions
        .get::<Arc<Snapshot>>()
        .cloned()
        .ok_or_else(|| missing("snapshot"))?;
    let exchange = parts
        .extensions
        .get::<SharedExchange>()
        .cloned()
        .ok_or_else(|| missing("exchange"))?;
    let rule = snapshot.config.service_routes.rule(found.rule);
    let matched = found.matched.map(|m| &rule.matches[m]);
    let backend = client::pick(&rule.backends, rand::random::<f64>()).ok_or_else(|| {
        ProxyError::NoServiceBackend {
            route: rule.route.to_string(),
        }
    })?;
    let name = format!("{}:{}", backend.service, backend.port);
    let _ = exchange.target.set(Target {
        route: Label::new(&rule.route.to_string()),
        rule: Label::new(&rule.name),
        model_label: Label::empty(),
        provider: Label::new(&backend.service.to_string()),
        // Plain routes are few and their labels not prepared per snapshot: the series are
        // found in their families when recorded.
        series: Arc::new(TargetSeries::default()),
        provider_kind: "http",
        upstream_model: String::new(),
        pricing: Pricing::default(),
    });
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(ProxyError::BodyTooLarge {
            limit: limits.max_body_bytes,
        });
    }
    rewrite::upstream_parts(&mut parts, rule, matched, backend).map_err(ProxyError::Internal)?;
    let body = Limited::new(body, limits.max_body_bytes)
        .map_err(BoxError::from)
        .boxed_unsync();
    let upstream = Request::from_parts(parts, body);

    let timeouts = rule.timeouts;
    let deadline = timeouts.request.map(|limit| started + limit);
    let wait = match (timeouts.backend_request, timeouts.request) {
        (Some(backend), Some(request)) => backend.min(request),
        (Some(limit), None) | (None, Some(limit)) => limit,
        (None, None) => DEFAULT_BACKEND_TIMEOUT,
    };
    exchange
        .attempts
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let answer = match tokio::time::timeout(wait, client.send(upstream)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) if is_timeout(&error) => {
            return Err(ProxyError::ServiceTimeout {
                backend: name,
                seconds: wait.as_secs_f64(),
            });
        }
        Ok(Err(error)) => {
            return Err(ProxyError::ServiceUnreachable {
                backend: name,
                reason: error_chain(&error),
            });
        }
        Err(_) => {
            return Err(ProxyError::ServiceTimeout {
                backend: name,
                seconds: wait.as_secs_f64(),
            });
        }
    };
    let (mut head, incoming) = answer.into_parts();
    strip_hop_by_hop(&mut head.headers);
    let body = relay::relay(incoming, deadline, exchange, name);
    Ok(Response::from_parts(head, body))
}

/// An error and its causes, as one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;
