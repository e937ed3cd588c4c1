//! The stages every AI request passes, outermost first. Each is a `Layer` holding only its
//! configuration and a `Service` that does the work; `crate::stack` puts them in order.

pub(crate) mod authenticate;
pub(crate) mod authorize;
pub(crate) mod endpoints;
pub(crate) mod inspect;
pub(crate) mod record;
pub(crate) mod reserve;
pub(crate) mod route;

use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use tollgate_llm::openai::InspectedRequest;
use tower::Service;

use crate::body::ProxyBody;
use crate::error::ProxyError;

/// The future every inner stage returns: boxed once per stage, which costs far less than the
/// network it waits on and keeps each stage's code a plain `async` block.
pub(crate) type StageFuture<T> = Pin<Box<dyn Future<Output = Result<T, ProxyError>> + Send>>;

/// What every stage after inspection is: a cloneable service from an inspected request to a
/// response, whose futures can move between threads.
pub(crate) trait InspectedService:
    Service<
        Request<InspectedRequest>,
        Response = Response<ProxyBody>,
        Error = ProxyError,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> InspectedService for S where
    S: Service<
            Request<InspectedRequest>,
            Response = Response<ProxyBody>,
            Error = ProxyError,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}
