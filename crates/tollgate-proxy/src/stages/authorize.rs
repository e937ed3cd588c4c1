//! **authorize**: finds the rule that serves the request (by model, then by the rule's other
//! conditions: headers, path, prompt size, tools, images), and checks that the caller may use
//! it (the route's and the rule's `access`). A request no rule serves is refused here with
//! 404, one the caller may not make with 403, before any budget or upstream is touched.

use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::{RequestFacts, Snapshot};
use tollgate_llm::openai::InspectedRequest;
use tower::{Layer, Service};

use super::StageFuture;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::exchange::{SharedExchange, caller};
use crate::request_facts;

/// The index of the rule chosen for a request, in the snapshot's route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RuleIndex(pub usize);

/// Adds the authorize stage.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AuthorizeLayer;

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize { inner }
    }
}

/// The authorize stage's service.
#[derive(Clone, Debug)]
pub(crate) struct Authorize<S> {
    inner: S,
}

impl<S> Service<Request<InspectedRequest>> for Authorize<S>
where
    S: Service<
            Request<InspectedRequest>,
            Response = Response<ProxyBody>,
            Error = ProxyError,
            Future = StageFuture<Response<ProxyBody>>,
        > + Send
        + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<InspectedRequest>) -> Self::Future {
        match find_rule(&request) {
            Ok(index) => {
                if let Some(exchange) = request.extensions().get::<SharedExchange>() {
                    let _ = exchange.rule.set(RuleIndex(index));
                }
                // Already boxed: passed on as it is.
                self.inner.call(request)
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}

/// The rule that serves a request, from what the request says about itself.
fn find_rule(request: &Request<InspectedRequest>) -> Result<usize, ProxyError> {
    let snapshot = request
        .extensions()
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| ProxyError::Internal("no snapshot".into()))?;
    let inspected = request.body();
    let header_is = |name: &str, value: &str| request_facts::header_is(request, name, value);
    let query = request.uri().query();
    let query_is = |name: &str, value: &str| request_facts::query_is(query, name, value);
    let facts = RequestFacts {
        model: &inspected.model,
        path: request.uri().path(),
        method: request.method().as_str(),
        host: request_facts::host(request),
        header_is: &header_is,
        query_is: &query_is,
        prompt_tokens: inspected.prompt_tokens_estimate,
        has_tools: inspected.has_tools,
        has_images: inspected.has_images,
    };
    let index = snapshot
        .config
        .routes
        .lookup(&facts)
        .ok_or_else(|| ProxyError::ModelNotFound(inspected.model.clone()))?;
    let rule = snapshot.config.routes.rule(index);
    let identity = caller(request)?;
    if !rule.allows(identity) {
        return Err(ProxyError::AccessDenied(format!(
            "key {} may not use the model `{}`: route {} allows only the teams, users and keys it lists; ask its owner for access",
            identity.key_id, inspected.model, rule.route
        )));
    }
    Ok(index)
}
