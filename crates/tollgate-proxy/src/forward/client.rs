//! The connection pool to Services (plain HTTP/1.1, as Gateway API Service backends speak
//! without a BackendTLSPolicy), and the weighted choice among a rule's backends.

use bytes::Bytes;
use http::Request;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;
use tollgate_config::ServiceBackend;

use crate::body::BoxError;

/// A request body on its way to a Service: the caller's, streamed.
pub(crate) type ServiceBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long opening a connection to a Service may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per backend.
const MAX_IDLE_PER_HOST: usize = 256;

/// Pooled connections to Services, shared by the requests of a listener.
pub(crate) struct ServiceClient {
    client: Client<HttpConnector, ServiceBody>,
}

impl Default for ServiceClient {
    fn default() -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(http);
        Self { client }
    }
}

impl ServiceClient {
    /// Sends a request to the backend its URI names.
    pub(crate) fn send(&self, request: Request<ServiceBody>) -> ResponseFuture {
        self.client.request(request)
    }
}

/// The backend for a request, drawn in proportion to weight; `random` is uniform in
/// `[0, 1)`. `None` when no backend has any weight.
pub(crate) fn pick(backends: &[ServiceBackend], random: f64) -> Option<&ServiceBackend> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut point = (random.clamp(0.0, 1.0) * total as f64) as u64;
    for backend in backends.iter().filter(|b| b.weight > 0) {
        let weight = u64::from(backend.weight);
        if point < weight {
            return Some(backend);
        }
        point -= weight;
    }
    backends.iter().rfind(|b| b.weight > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::ObjectRef;

    fn backend(name: &str, weight: u32) -> ServiceBackend {
        ServiceBackend {
            service: ObjectRef::new("default", name),
            host: "127.0.0.1".into(),
            port: 80,
            weight,
        }
    }

    #[test]
    fn backends_are_drawn_by_weight_and_weight_zero_never() {
        let backends = [backend("a", 3), backend("off", 0), backend("b", 1)];
        let name = |random| pick(&backends, random).unwrap().service.name.as_str();
        assert_eq!(name(0.0), "a");
        assert_eq!(name(0.74), "a");
        assert_eq!(name(0.75), "b");
        assert_eq!(name(0.999_999), "b");
        assert_eq!(name(1.0), "b");
        assert!(pick(&[backend("off", 0)], 0.5).is_none());
        assert!(pick(&[], 0.5).is_none());
    }
}
