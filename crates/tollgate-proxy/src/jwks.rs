//! Fetches identity providers' JSON Web Key Sets for JWT verification, over the same pooled
//! client providers use, with a timeout and a size limit.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::JwtProvider;
use tollgate_jwt::{JwksFetcher, JwtConfigError, JwtVerifier, MAX_JWKS_BYTES};

use crate::upstream::UpstreamClients;

/// How long one fetch may take, connecting included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches key sets with the proxy's upstream clients.
pub(crate) struct HttpJwksFetcher {
    clients: Arc<UpstreamClients>,
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, String>> {
        let client = self.clients.get(FETCH_TIMEOUT);
        let request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()));
        Box::pin(async move {
            let request = request.map_err(|e| format!("invalid JWKS URL: {e}"))?;
            let fetch = async {
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("the JWKS endpoint answered {}", response.status()));
                }
                Limited::new(response.into_body(), MAX_JWKS_BYTES)
                    .collect()
                    .await
                    .map(|body| body.to_bytes())
                    .map_err(|e| format!("cannot read the key set: {e}"))
            };
            tokio::time::timeout(FETCH_TIMEOUT, fetch)
                .await
                .map_err(|_| format!("no key set within {FETCH_TIMEOUT:?}"))?
        })
    }
}

/// A verifier for `providers`, or `None` when there are none.
pub(crate) fn verifier(
    providers: &[JwtProvider],
    clients: &Arc<UpstreamClients>,
) -> Result<Option<Arc<JwtVerifier>>, JwtConfigError> {
    if providers.is_empty() {
        return Ok(None);
    }
    let fetcher = Arc::new(HttpJwksFetcher {
        clients: clients.clone(),
    });
    JwtVerifier::new(providers.to_vec(), fetcher).map(|v| Some(Arc::new(v)))
}
