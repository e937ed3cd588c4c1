//! The listener: TLS with client certificates, HTTP/2, and the three endpoints.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stream::{self, Subscription};
use super::{Inner, SnapshotServer};
use crate::message::{Ack, Endpoint, PROXY_HEADER, Report, parse_path, truncate, valid_name};

/// How long connections may take to close after shutdown ended their streams.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);
/// How often disconnected proxies are looked at for forgetting.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// A peer that does not answer an HTTP/2 ping within this long is gone.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

type ResponseBody = BoxBody<Bytes, Infallible>;

impl SnapshotServer {
    /// Serves subscriptions and acknowledgements on `listener` with `tls` (see
    /// [`crate::server_config_from_files`]) until `shutdown` completes; then ends every
    /// stream and gives connections a few seconds to close.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) {
        let inner = self.inner;
        let acceptor = TlsAcceptor::from(tls);
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let connections = Arc::new(Semaphore::new(inner.limits.max_connections));
        tasks.spawn(prune(inner.clone(), cancel.clone()));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => permit,
                () = &mut shutdown => break,
            };
            let Ok(permit) = permit else { break };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let connection = Connection {
                inner: inner.clone(),
                acceptor: acceptor.clone(),
                cancel: cancel.clone(),
            };
            tasks.spawn(async move {
                connection.serve(stream, peer).await;
                drop(permit);
            });
        }
        drop(listener);
        cancel.cancel();
        tasks.close();
        if tokio::time::timeout(CLOSE_DEADLINE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("config push connections did not close in time");
        }
    }
}

async fn prune(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => inner.hub.prune(inner.limits.forget_after),
            () = cancel.cancelled() => return,
        }
    }
}

/// What serving one connection needs.
struct Connection {
    inner: Arc<Inner>,
    acceptor: TlsAcceptor,
    cancel: CancellationToken,
}

impl Connection {
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let handshake = tokio::time::timeout(
            self.inner.limits.handshake_timeout,
            self.acceptor.accept(stream),
        );
        let tls = tokio::select! {
            handshake = handshake => match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::warn!(%peer, %error, "config push: TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "config push: TLS handshake timed out");
                    return;
                }
            },
            () = self.cancel.cancelled() => return,
        };
        let (inner, cancel) = (self.inner.clone(), self.cancel.clone());
        let service = hyper::service::service_fn(move |request| {
            let (inner, cancel) = (inner.clone(), cancel.clone());
            async move { Ok::<_, Infallible>(respond(&inner, request, &cancel).await) }
        });
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(self.inner.limits.ping_interval)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .serve_connection(TokioIo::new(tls), service);
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            () = self.cancel.cancelled() => {
                // Streams end on the same signal; GOAWAY lets acknowledgements in flight finish.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "config push connection ended");
        }
    }
}

async fn respond(
    inner: &Arc<Inner>,
    request: Request<Incoming>,
    cancel: &CancellationToken,
) -> Response<ResponseBody> {
    let Some((gateway, endpoint)) = parse_path(request.uri().path()) else {
        return text(
            StatusCode::NOT_FOUND,
            "not found; the endpoints are GET /v1/gateways/NAMESPACE/NAME/snapshots, POST /v1/gateways/NAMESPACE/NAME/acks and POST /v1/gateways/NAMESPACE/NAME/reports\n",
        );
    };
    match (request.method(), endpoint) {
        (&Method::GET, Endpoint::Snapshots) => subscribe(inner, &request, gateway, cancel),
        (&Method::POST, Endpoint::Acks) => acknowledge(inner, request, &gateway).await,
        (&Method::POST, Endpoint::Reports) => report(inner, request, &gateway).await,
        (_, Endpoint::Snapshots) => text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        (_, Endpoint::Acks | Endpoint::Reports) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n")
        }
    }
}

fn subscribe(
    inner: &Arc<Inner>,
    request: &Request<Incoming>,
    gateway: String,
    cancel: &CancellationToken,
) -> Response<ResponseBody> {
    let proxy = request
        .headers()
        .get(PROXY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|name| valid_name(name));
    let Some(proxy) = proxy else {
        return text(
            StatusCode::BAD_REQUEST,
            "the tollgate-proxy header must name the proxy (1 to 253 of A-Z a-z 0-9 . _ -)\n",
        );
    };
    let Ok(permit) = inner.subscribers.clone().try_acquire_owned() else {
        tracing::warn!(%gateway, proxy, "config push: too many subscribers; refused");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many subscribers; retry later\n",
        );
    };
    let (latest, connected) = inner.hub.subscribe(&gateway, proxy);
    let body = stream::start(Subscription {
        latest,
        connected,
        permit,
        ping_interval: inner.limits.ping_interval,
        shutdown: cancel.clone(),
    });
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// A request's body, within `max_bytes` and the limits' time; or the answer saying why not.
async fn read_body(
    inner: &Arc<Inner>,
    request: Request<Incoming>,
    max_bytes: usize,
) -> Result<Bytes, Response<ResponseBody>> {
    let body = Limited::new(request.into_body(), max_bytes).collect();
    match tokio::time::timeout(inner.limits.ack_timeout, body).await {
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            "the body took too long\n",
        )),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is too large\n",
        )),
        Ok(Err(_)) => Err(text(StatusCode::BAD_REQUEST, "the body broke off\n")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

async fn report(
    inner: &Arc<Inner>,
    request: Request<Incoming>,
    gateway: &str,
) -> Response<ResponseBody> {
    let bytes = match read_body(inner, request, inner.limits.max_report_bytes).await {
        Ok(bytes) => bytes,
        Err(answer) => return answer,
    };
    let report: Report<'_> = match serde_json::from_slice(&bytes) {
        Ok(report) => report,
        Err(error) => {
            return owned_text(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"proxy\":NAME,\"report\":JSON}}: {error}\n"),
            );
        }
    };
    if !valid_name(&report.proxy) {
        return text(StatusCode::BAD_REQUEST, "invalid proxy name\n");
    }
    let json = Bytes::copy_from_slice(report.report.get().as_bytes());
    inner.hub.report(gateway, &report.proxy, json);
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

async fn acknowledge(
    inner: &Arc<Inner>,
    request: Request<Incoming>,
    gateway: &str,
) -> Response<ResponseBody> {
    let limits = inner.limits;
    let bytes = match read_body(inner, request, limits.max_ack_bytes).await {
        Ok(bytes) => bytes,
        Err(answer) => return answer,
    };
    let mut ack: Ack = match serde_json::from_slice(&bytes) {
        Ok(ack) => ack,
        Err(error) => {
            return owned_text(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"proxy\":NAME,\"version\":N,\"accepted\":BOOL,\"error\":TEXT}}: {error}\n"
                ),
            );
        }
    };
    if !valid_name(&ack.proxy) {
        return text(StatusCode::BAD_REQUEST, "invalid proxy name\n");
    }
    ack.error = ack.error.map(|e| truncate(e, limits.max_error_chars));
    if ack.accepted {
        tracing::info!(
            gateway,
            proxy = ack.proxy,
            version = ack.version,
            "proxy applied the snapshot"
        );
    } else {
        tracing::warn!(
            gateway,
            proxy = ack.proxy,
            version = ack.version,
            error = ack.error.as_deref().unwrap_or_default(),
            "proxy rejected the snapshot"
        );
    }
    inner.hub.ack(gateway, ack);
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn text(status: StatusCode, message: &'static str) -> Response<ResponseBody> {
    owned_text(status, message.to_string())
}

fn owned_text(status: StatusCode, message: String) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(message)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
