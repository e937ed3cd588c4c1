//! The admin server: health, readiness, metrics and the configuration in use. It listens on
//! its own address (loopback by default) so none of it is reachable through a Gateway.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::Proxy;

/// Serves the admin endpoints on `socket` until the task is dropped:
/// `/healthz` (the process is alive), `/readyz` (a configuration is applied and not draining),
/// `/metrics` (Prometheus text), `/config` (the snapshots in use, secrets redacted, and
/// what is known of each backend's health) and `/budgets` (each budget policy's spend,
/// remaining room and reset time per limit, as the budget store holds them).
pub async fn serve(socket: TcpListener, proxy: Arc<Proxy>, registry: Arc<Registry>) {
    loop {
        let Ok((stream, _)) = socket.accept().await else {
            continue;
        };
        let proxy = proxy.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (proxy, registry) = (proxy.clone(), registry.clone());
                async move { Ok::<_, Infallible>(respond(&request, &proxy, &registry).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    request: &Request<Incoming>,
    proxy: &Proxy,
    registry: &Registry,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here\n");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if proxy.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => with_type(
                    StatusCode::OK,
                    body,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
            }
        }
        "/config" => {
            let gateways: Vec<serde_json::Value> = proxy
                .snapshots()
                .iter()
                .map(|s| json!({"gateway": s.config.gateway, "version": s.version, "config": s.config}))
                .collect();
            let backends = proxy.backend_health().await;
            let body = serde_json::to_string_pretty(
                &json!({ "gateways": gateways, "backends": backends }),
            )
            .unwrap_or_default();
            with_type(StatusCode::OK, body, "application/json")
        }
        "/budgets" => match proxy.budget_report().await {
            Ok(report) => with_type(
                StatusCode::OK,
                serde_json::to_string_pretty(&json!({ "policies": report })).unwrap_or_default(),
                "application/json",
            ),
            Err(error) => with_type(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the budget store cannot be read: {error}\n"),
                "text/plain; charset=utf-8",
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz, /metrics, /config or /budgets\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, body.to_string(), "text/plain; charset=utf-8")
}

fn with_type(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
