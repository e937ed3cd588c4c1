//! The controller's admin server: `/healthz` (alive), `/readyz` (configuration published
//! and not shutting down), `/metrics` (Prometheus text) and `/status` (each Gateway's
//! published version and what each of its proxies acknowledged, and each BudgetPolicy's use
//! as the proxies reported it, as JSON).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tollgate_push::SnapshotServer;

/// What the endpoints read.
pub(crate) struct AdminState {
    pub(crate) server: SnapshotServer,
    pub(crate) registry: Registry,
    pub(crate) ready: Arc<AtomicBool>,
}

/// Serves the endpoints on `socket` until the task is dropped.
pub(crate) async fn serve(socket: TcpListener, state: Arc<AdminState>) {
    loop {
        let Ok((stream, _)) = socket.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&request, &state)) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(request: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here\n".into(),
            TEXT,
        );
    }
    match request.uri().path() {
        "/healthz" => reply(StatusCode::OK, "ok\n".into(), TEXT),
        "/readyz" if state.ready.load(Ordering::Acquire) => {
            reply(StatusCode::OK, "ready\n".into(), TEXT)
        }
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into(), TEXT),
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
                Ok(()) => reply(
                    StatusCode::OK,
                    body,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode metrics\n".into(),
                    TEXT,
                ),
            }
        }
        "/status" => {
            let status = serde_json::json!({
                "gateways": state.server.state(),
                "budgets": crate::controller::budget_usage(&state.server.reports()),
            });
            let body = serde_json::to_string_pretty(&status).unwrap_or_default();
            reply(StatusCode::OK, body, "application/json")
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz, /metrics or /status\n".into(),
            TEXT,
        ),
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn reply(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
