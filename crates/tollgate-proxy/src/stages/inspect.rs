//! **inspect**: reads the request body within the size limit and checks that it is a
//! request Tollgate can serve (valid JSON, a `model`). It comes before authorize because the
//! model a caller may or may not use is written in the body.

use bytes::Bytes;
use http::{Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use std::task::{Context, Poll};
use std::time::Duration;
use tollgate_llm::openai::InspectedRequest;
use tower::{Layer, Service};

use super::StageFuture;
use crate::body::{BoxError, ProxyBody};
use crate::error::ProxyError;
use crate::exchange::{CaptureBodies, Requested, SharedExchange};

/// Adds the inspect stage.
/// Reads a request body whole: refused when its declared or actual length passes
/// `max_body_bytes` (413), or when it takes longer than `body_timeout` to arrive.
pub(crate) async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    max_body_bytes: usize,
    body_timeout: Duration,
) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body_bytes as u64) {
        return Err(ProxyError::BodyTooLarge {
            limit: max_body_bytes,
        });
    }
    let collected =
        tokio::time::timeout(body_timeout, Limited::new(body, max_body_bytes).collect())
            .await
            .map_err(|_| {
                ProxyError::BodyRead(
                    format!("the body did not arrive within {}s", body_timeout.as_secs()).into(),
                )
            })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::BodyTooLarge {
                limit: max_body_bytes,
            })
        }
        Err(error) => Err(ProxyError::BodyRead(error)),
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct InspectLayer {
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl InspectLayer {
    /// Refuses bodies over `max_body_bytes`, and bodies that take longer than `body_timeout`
    /// to arrive.
    pub(crate) fn new(max_body_bytes: usize, body_timeout: Duration) -> Self {
        Self {
            max_body_bytes,
            body_timeout,
        }
    }
}

impl<S> Layer<S> for InspectLayer {
    type Service = Inspect<S>;

    fn layer(&self, inner: S) -> Inspect<S> {
        Inspect {
            inner,
            layer: *self,
        }
    }
}

/// The inspect stage's service.
#[derive(Clone, Debug)]
pub(crate) struct Inspect<S> {
    inner: S,
    layer: InspectLayer,
}

impl<S, B> Service<Request<B>> for Inspect<S>
where
    S: Service<Request<InspectedRequest>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready inner service serves this request; a fresh clone takes its place.
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        let InspectLayer {
            max_body_bytes,
            body_timeout,
        } = self.layer;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = read_body(&parts.headers, body, max_body_bytes, body_timeout).await?;
            let inspected = InspectedRequest::parse(bytes)?;
            if let Some(exchange) = parts.extensions.get::<SharedExchange>() {
                let operation = exchange.operation.get().map_or("", |o| o.as_str());
                if parts.extensions.get::<CaptureBodies>().is_some() {
                    let _ = exchange.request_body.set(inspected.body().clone());
                }
                let _ = exchange.requested.set(Requested {
                    operation,
                    model: inspected.model.clone(),
                    max_tokens: inspected.max_tokens,
                    stream: inspected.stream,
                });
            }
            inner.call(Request::from_parts(parts, inspected)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use tower::ServiceExt;

    async fn inspect(body: &'static str, limit: usize) -> Result<String, ProxyError> {
        let inner = tower::service_fn(|request: Request<InspectedRequest>| async move {
            Ok::<_, ProxyError>(Response::new(ProxyBody::full(request.body().model.clone())))
        });
        let request = Request::post("/v1/chat/completions")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = InspectLayer::new(limit, Duration::from_secs(5))
            .layer(inner)
            .oneshot(request)
            .await?;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Ok(String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn passes_the_parsed_request_on() {
        assert_eq!(
            inspect(r#"{"model":"gpt-4o-mini"}"#, 100).await.unwrap(),
            "gpt-4o-mini"
        );
    }

    #[tokio::test]
    async fn refuses_oversized_and_invalid_bodies() {
        let error = inspect(
            r#"{"model":"gpt-4o-mini","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            20,
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), "request_too_large");
        assert_eq!(
            inspect("{", 100).await.unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            inspect("{}", 100).await.unwrap_err().code(),
            "invalid_request"
        );
    }
}
