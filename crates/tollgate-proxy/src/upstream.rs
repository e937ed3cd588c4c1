//! Connections to providers: pooled, reused, HTTP/1.1 and HTTP/2, TLS through rustls.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, header};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A pooled HTTP client for providers.
pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One pooled client per connect timeout in use, per thread. Providers with the same timeout
/// share a pool; a worker thread's requests go through connections that thread opened and
/// drives (see [`crate::workers`]), so an upstream call never waits for another thread; a
/// configuration reload keeps the pools (and their warm connections).
pub(crate) struct UpstreamClients {
    /// Tells this set's clients from those of another proxy in the same process.
    id: u64,
}

thread_local! {
    /// This thread's clients: by the [`UpstreamClients`] they belong to, and connect timeout.
    static CLIENTS: RefCell<Vec<(u64, Duration, UpstreamClient)>> = const { RefCell::new(Vec::new()) };
}

impl Default for UpstreamClients {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl UpstreamClients {
    /// This thread's client for providers with this connect timeout.
    pub(crate) fn get(&self, connect_timeout: Duration) -> UpstreamClient {
        CLIENTS.with_borrow_mut(|clients| {
            let known = clients
                .iter()
                .find(|(id, timeout, _)| *id == self.id && *timeout == connect_timeout);
            match known {
                Some((_, _, client)) => client.clone(),
                None => {
                    let client = build(connect_timeout);
                    clients.push((self.id, connect_timeout, client.clone()));
                    client
                }
            }
        })
    }
}

fn build(connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(rustls::RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        )))
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// Headers that describe one hop, never forwarded in either direction (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages have none: one look at each name costs less than a removal of each.
    let hop_by_hop = |name: &HeaderName| HOP_BY_HOP.contains(name) || name == header::UPGRADE;
    if !headers.keys().any(hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Whether a client error is, at its root, a timeout.
pub(crate) fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("x-request-id", "abc"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let untouched = headers.clone();
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);

        for (name, value) in [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);

        headers.insert(
            "x-hop",
            HeaderValue::from_static("kept without a Connection naming it"),
        );
        strip_hop_by_hop(&mut headers);
        assert!(headers.contains_key("x-hop"));
    }
}
