//! Forwarding over loopback sockets: a backend that echoes, one that is closed, one too slow.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tollgate_config::{
    GatewayConfig, Match, ObjectRef, ServiceBackend, ServiceMatch, ServiceRoutes, ServiceRule,
    ServiceTimeouts, Snapshot,
};

use super::{ServiceClient, serve};
use crate::error::ProxyError;
use crate::exchange::{Exchange, SharedExchange};
use crate::stack::RequestLimits;

/// A backend on a loopback port that answers, after `delay`, with the path and query it got
/// and whether it saw an `authorization` header.
async fn backend(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service_fn(move |request: Request<hyper::body::Incoming>| async move {
                tokio::time::sleep(delay).await;
                let seen = format!(
                    "{} {} auth={}",
                    request.method(),
                    request.uri(),
                    request.headers().contains_key("authorization")
                );
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen))))
            });
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

/// A request for `path` with a snapshot holding one rule to `port`.
fn request(
    path: &str,
    port: u16,
    timeouts: ServiceTimeouts,
) -> (Request<Full<Bytes>>, SharedExchange) {
    let rule = ServiceRule {
        route: ObjectRef::new("default", "site"),
        name: "0".into(),
        matches: vec![Match {
            path_prefix: Some("/app".into()),
            ..Match::default()
        }],
        backends: vec![ServiceBackend {
            service: ObjectRef::new("default", "web"),
            host: "127.0.0.1".into(),
            port,
            weight: 1,
        }],
        rewrite: Some(tollgate_config::PathRewrite::PrefixMatch("/".into())),
        timeouts,
        ..ServiceRule::default()
    };
    let snapshot = Arc::new(Snapshot {
        version: 1,
        config: GatewayConfig {
            service_routes: ServiceRoutes::new(vec![rule]),
            ..GatewayConfig::default()
        },
    });
    let exchange: SharedExchange = Arc::new(Exchange::default());
    let mut request = Request::get(path)
        .header("authorization", "Bearer tg-key")
        .body(Full::new(Bytes::new()))
        .unwrap();
    request.extensions_mut().insert(snapshot);
    request.extensions_mut().insert(exchange.clone());
    (request, exchange)
}

const FOUND: ServiceMatch = ServiceMatch {
    rule: 0,
    matched: Some(0),
    exact_path: false,
};

fn limits() -> RequestLimits {
    RequestLimits {
        max_body_bytes: 1024,
        body_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_request_reaches_its_backend_rewritten_and_without_the_caller_key() {
    let port = backend(Duration::ZERO).await;
    let (request, exchange) = request("/app/items?id=7", port, ServiceTimeouts::default());
    let client = Arc::new(ServiceClient::default());
    let response = serve(request, FOUND, client, limits()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "GET /items?id=7 auth=false");
    let target = exchange.target.get().unwrap();
    assert_eq!(
        (target.route.as_str(), target.provider.as_str()),
        ("default/site", "default/web")
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_a_slow_backend_times_out() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Arc::new(ServiceClient::default());
    let (request_to_closed, _) = request("/app", closed, ServiceTimeouts::default());
    let error = serve(request_to_closed, FOUND, client.clone(), limits())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProxyError::ServiceUnreachable { .. }),
        "{error}"
    );
    assert_eq!(error.kind().status(), 502);

    let slow = backend(Duration::from_secs(5)).await;
    let timeouts = ServiceTimeouts {
        request: Some(Duration::from_millis(100)),
        backend_request: None,
    };
    let (request_to_slow, _) = request("/app", slow, timeouts);
    let error = serve(request_to_slow, FOUND, client, limits())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProxyError::ServiceTimeout { .. }),
        "{error}"
    );
    assert_eq!(error.kind().status(), 504);
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_sending() {
    let (mut request, _) = request("/app", 1, ServiceTimeouts::default());
    request
        .headers_mut()
        .insert("content-length", http::HeaderValue::from_static("4096"));
    let client = Arc::new(ServiceClient::default());
    let error = serve(request, FOUND, client, limits()).await.unwrap_err();
    assert!(
        matches!(error, ProxyError::BodyTooLarge { limit: 1024 }),
        "{error}"
    );
}
