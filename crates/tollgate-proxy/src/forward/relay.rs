//! A Service's response body, passed to the caller frame by frame as it arrives, within the
//! rule's request deadline. A body that breaks or outlives its deadline is cut, and the
//! request is recorded as failed.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::exchange::SharedExchange;

/// Chunks that may wait for a slow caller.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Passes `body` on until it ends, breaks, the caller goes away, or `deadline` passes.
pub(crate) fn relay(
    mut body: Incoming,
    deadline: Option<Instant>,
    exchange: SharedExchange,
    backend: String,
) -> ProxyBody {
    let (chunks, received) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    tokio::spawn(async move {
        loop {
            let next = match deadline {
                Some(at) => match tokio::time::timeout_at(at, body.frame()).await {
                    Ok(next) => next,
                    Err(_) => {
                        tracing::warn!(%backend, "response cut at the route's request timeout");
                        let _ = exchange.failure.set("backend_timeout");
                        return;
                    }
                },
                None => body.frame().await,
            };
            match next {
                None => return,
                Some(Err(error)) => {
                    tracing::warn!(%backend, %error, "backend response broke");
                    let _ = exchange.failure.set("upstream_body_error");
                    return;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if chunks.send(data).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    ProxyBody::channel(received)
}
