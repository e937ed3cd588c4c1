//! **authenticate**: turns the caller's bearer credential — an API key, or a JWT from a
//! trusted `JWTProvider` — into an [`Identity`]. Nothing past this stage runs for a caller
//! without one, so it sits right inside record.

use http::{Request, Response, header};
use std::sync::Arc;
use std::task::{Context, Poll};
use tollgate_config::{Identity, Snapshot};
use tollgate_jwt::{JwtVerifier, Principal, looks_like_jwt};
use tower::{Layer, Service};

use super::StageFuture;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::exchange::SharedExchange;

/// Adds the authenticate stage.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AuthenticateLayer;

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate { inner }
    }
}

/// The authenticate stage's service.
#[derive(Clone, Debug)]
pub(crate) struct Authenticate<S> {
    inner: S,
}

/// The key a caller presents: `Authorization: Bearer <key>`.
fn presented_key<B>(request: &Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}

impl<S, B> Service<Request<B>> for Authenticate<S>
where
    S: Service<
            Request<B>,
            Response = Response<ProxyBody>,
            Error = ProxyError,
            Future = StageFuture<Response<ProxyBody>>,
        > + Clone
        + Send
        + 'static,
    B: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = StageFuture<Response<ProxyBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // What a client must read before it can authenticate needs no identity.
        if request.method() == http::Method::GET
            && request
                .uri()
                .path()
                .starts_with(crate::mcp::metadata::WELL_KNOWN)
            && let Some(answer) = request.extensions().get::<Arc<Snapshot>>().and_then(|s| {
                crate::mcp::metadata::answer(
                    s,
                    request.uri().path(),
                    request.uri(),
                    request.headers(),
                )
            })
        {
            return Box::pin(std::future::ready(Ok(answer)));
        }
        let outcome = authenticate(&request);
        match outcome {
            // Already boxed: passed on as it is.
            Ok(None) => self.inner.call(request),
            Ok(Some((verifier, token))) => {
                // A JWT may need its issuer's keys fetched first: verify, then go on.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let exchange = request
                        .extensions()
                        .get::<SharedExchange>()
                        .ok_or_else(|| ProxyError::Internal("no exchange".into()))?
                        .clone();
                    let principal = verifier
                        .verify(&token, unix_now().max(0) as u64)
                        .await
                        .map_err(ProxyError::InvalidToken)?;
                    let _ = exchange.identity.set(identity_of(principal));
                    inner.call(request).await
                })
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}

/// The identity a verified token speaks for; its key id names the provider and subject.
fn identity_of(principal: Principal) -> Identity {
    Identity {
        key_id: format!("jwt:{}:{}", principal.provider, principal.subject),
        team: principal.team,
        user: principal.user,
        expires_at: None,
    }
}

/// Authenticates an API key at once; for a JWT, returns the verifier and token to check.
fn authenticate<B>(request: &Request<B>) -> Result<Option<(Arc<JwtVerifier>, String)>, ProxyError> {
    let snapshot = request
        .extensions()
        .get::<Arc<Snapshot>>()
        .ok_or_else(|| ProxyError::Internal("no snapshot".into()))?;
    let exchange = request
        .extensions()
        .get::<SharedExchange>()
        .ok_or_else(|| ProxyError::Internal("no exchange".into()))?;
    let key = presented_key(request).ok_or(ProxyError::MissingCredential)?;
    if let Some(verifier) = request.extensions().get::<Arc<JwtVerifier>>()
        && looks_like_jwt(key)
    {
        return Ok(Some((verifier.clone(), key.to_string())));
    }
    let identity = snapshot
        .config
        .api_keys
        .authenticate(key)
        .ok_or(ProxyError::InvalidCredential)?;
    if identity.expires_at.is_some_and(|at| at <= unix_now()) {
        return Err(ProxyError::ExpiredCredential);
    }
    let _ = exchange.identity.set(identity.clone());
    Ok(None)
}

/// The time now in Unix seconds, for credential expiry and token validity.
fn unix_now() -> i64 {
    crate::clock::unix_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Exchange;
    use tollgate_config::{GatewayConfig, Identity};
    use tower::ServiceExt;

    fn request(authorization: Option<&str>) -> (Request<()>, SharedExchange) {
        let mut config = GatewayConfig::default();
        config
            .api_keys
            .insert(
                "tg-alice-secret",
                Identity {
                    key_id: "default/alice-key".into(),
                    ..Identity::default()
                },
            )
            .unwrap();
        config
            .api_keys
            .insert(
                "tg-old-secret",
                Identity {
                    key_id: "default/old-key".into(),
                    expires_at: Some(unix_now() - 1),
                    ..Identity::default()
                },
            )
            .unwrap();
        let exchange = SharedExchange::new(Exchange::default());
        let mut builder = Request::builder().uri("/v1/models");
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let mut request = builder.body(()).unwrap();
        request
            .extensions_mut()
            .insert(Arc::new(Snapshot { version: 1, config }));
        request.extensions_mut().insert(exchange.clone());
        (request, exchange)
    }

    async fn call(
        authorization: Option<&str>,
    ) -> (Result<Response<ProxyBody>, ProxyError>, SharedExchange) {
        let (request, exchange) = request(authorization);
        let inner = tower::service_fn(|_: Request<()>| -> StageFuture<Response<ProxyBody>> {
            Box::pin(async { Ok(Response::new(ProxyBody::full("ok"))) })
        });
        (
            AuthenticateLayer.layer(inner).oneshot(request).await,
            exchange,
        )
    }

    #[tokio::test]
    async fn known_key_passes_with_its_identity() {
        let (result, exchange) = call(Some("Bearer tg-alice-secret")).await;
        assert!(result.is_ok());
        assert_eq!(exchange.identity.get().unwrap().key_id, "default/alice-key");
        let (result, _) = call(Some("bearer   tg-alice-secret ")).await;
        assert!(
            result.is_ok(),
            "scheme is case-insensitive and the key is trimmed"
        );
    }

    #[tokio::test]
    async fn missing_or_unknown_keys_are_refused() {
        for (header, expected) in [
            (None, "missing_api_key"),
            (Some("Bearer "), "missing_api_key"),
            (Some("Basic dXNlcjpwYXNz"), "missing_api_key"),
            (Some("Bearer tg-mallory"), "invalid_api_key"),
            (Some("Bearer tg-old-secret"), "expired_api_key"),
        ] {
            let (result, exchange) = call(header).await;
            assert_eq!(result.unwrap_err().code(), expected, "{header:?}");
            assert!(exchange.identity.get().is_none());
        }
    }
}
