//! Sends each path to what serves it: the model listing, which needs only an identity, or the
//! AI pipeline (inspect → authorize → route) for chat (OpenAI's completions and Anthropic's
//! messages) and embeddings.

use http::{HeaderValue, Method, Request, Response, header};
use serde_json::json;
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::Snapshot;
use tower::{Layer, Service};

use super::StageFuture;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::exchange::caller;

/// The AI operation a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `POST /v1/chat/completions` (OpenAI) or `POST /v1/messages` (Anthropic).
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Operation {
    /// The operation at a method and path, if it is one the pipeline serves.
    fn of(method: &Method, path: &str) -> Option<Operation> {
        if method != Method::POST {
            return None;
        }
        match path.trim_end_matches('/') {
            "/v1/chat/completions" | "/v1/messages" => Some(Operation::Chat),
            "/v1/embeddings" => Some(Operation::Embeddings),
            _ => None,
        }
    }

    /// The operation's name in errors.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// Adds the endpoint dispatch in front of the AI pipeline.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EndpointsLayer;

impl<S> Layer<S> for EndpointsLayer {
    type Service = Endpoints<S>;

    fn layer(&self, pipeline: S) -> Endpoints<S> {
        Endpoints { pipeline }
    }
}

/// The dispatching service; `pipeline` serves the AI operations.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints<S> {
    pipeline: S,
}

impl<S, B> Service<Request<B>> for Endpoints<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.pipeline.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if let Some(operation) = Operation::of(request.method(), path) {
            request.extensions_mut().insert(operation);
            return Box::pin(self.pipeline.call(request));
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

/// `GET /v1/models`: the models the caller may ask for, in OpenAI's list format.
fn list_models<B>(request: &Request<B>) -> Result<Response<ProxyBody>, ProxyError> {
    let snapshot = request
        .extensions()
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| ProxyError::Internal("no snapshot".into()))?;
    let identity = caller(request)?;
    let config = &snapshot.config;
    let data: Vec<serde_json::Value> = config
        .routes
        .models()
        .into_iter()
        .filter(|(_, rule)| rule.allows(identity))
        .map(|(model, rule)| {
            let owner = rule
                .backends
                .first()
                .map(|b| config.provider(b.provider).name.to_string())
                .unwrap_or_default();
            json!({"id": model, "object": "model", "created": 0, "owned_by": owner})
        })
        .collect();
    let body = json!({"object": "list", "data": data}).to_string();
    let mut response = Response::new(ProxyBody::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
