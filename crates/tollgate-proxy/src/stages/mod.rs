//! The stages every AI request passes, outermost first. Each is a `Layer` holding only its
//! configuration and a `Service` that does the work; `crate::stack` puts them in order.

pub(crate) mod authenticate;
pub(crate) mod authorize;
pub(crate) mod endpoints;
pub(crate) mod inspect;
pub(crate) mod record;
pub(crate) mod reserve;
pub(crate) mod route;

use std::future::Future;
use std::pin::Pin;

use crate::error::ProxyError;

/// The future every inner stage returns: boxed once per stage, which costs far less than the
/// network it waits on and keeps each stage's code a plain `async` block.
pub(crate) type StageFuture<T> = Pin<Box<dyn Future<Output = Result<T, ProxyError>> + Send>>;
