//! **authorize**: finds the rule that serves the requested model. A model no rule serves is
//! refused here with 404, before any budget or upstream is touched. Per-identity access
//! rules join this stage when routes declare them.

use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::Snapshot;
use tollgate_llm::openai::InspectedRequest;
use tower::{Layer, Service};

use super::StageFuture;
use crate::body::ProxyBody;
use crate::error::ProxyError;

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
    S: Service<Request<InspectedRequest>, Response = Response<ProxyBody>, Error = ProxyError>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<InspectedRequest>) -> Self::Future {
        let found = request
            .extensions()
            .get::<Arc<Snapshot>>()
            .ok_or_else(|| ProxyError::Internal("no snapshot".into()))
            .and_then(|snapshot| {
                let model = &request.body().model;
                snapshot
                    .config
                    .routes
                    .lookup(model)
                    .ok_or_else(|| ProxyError::ModelNotFound(model.clone()))
            });
        match found {
            Ok(index) => {
                request.extensions_mut().insert(RuleIndex(index));
                Box::pin(self.inner.call(request))
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}
