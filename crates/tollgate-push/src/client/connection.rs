//! One HTTP/2 connection to the controller over mutual TLS, and the two requests made on it.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

use super::target::Target;
use crate::error::with_causes;
use crate::message::{Ack, Endpoint, PROXY_HEADER, path};
use crate::{ClientLimits, PushError};

/// How much of an error answer's body is read, for the log.
const MAX_ERROR_BODY_BYTES: usize = 1024;

/// How long a failed request waits for the connection to say why it failed.
const EXPLANATION_WAIT: Duration = Duration::from_millis(200);

/// A live connection; requests are multiplexed over it.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    base: String,
    limits: ClientLimits,
    /// Why the connection failed, once it has: a request on it only learns that it was
    /// cancelled, while this says, for instance, that the server refused the certificate.
    failure: Option<oneshot::Receiver<String>>,
}

impl Connection {
    /// Connects, with the TLS and HTTP/2 handshakes, within the connect timeout.
    pub(crate) async fn open(
        target: &Target,
        tls: &Arc<rustls::ClientConfig>,
        limits: ClientLimits,
    ) -> Result<Self, PushError> {
        let attempt = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(|e| {
                    PushError::Connect(format!(
                        "{}:{}: {}",
                        target.host,
                        target.port,
                        with_causes(&e)
                    ))
                })?;
            let _ = tcp.set_nodelay(true);
            let tls = TlsConnector::from(tls.clone())
                .connect(target.server_name.clone(), tcp)
                .await
                .map_err(|e| PushError::Connect(format!("TLS handshake: {}", with_causes(&e))))?;
            // HTTP/2 pings notice a dead peer sooner than the idle timeout would.
            let keepalive = limits.idle_timeout / 3;
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .keep_alive_interval(keepalive)
                    .keep_alive_timeout(keepalive)
                    .keep_alive_while_idle(true)
                    .handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| {
                        PushError::Connect(format!("HTTP/2 handshake: {}", with_causes(&e)))
                    })?;
            let (failed, failure) = oneshot::channel();
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    let _ = failed.send(with_causes(&error));
                }
            });
            Ok::<_, PushError>((sender, failure))
        };
        let (sender, failure) = tokio::time::timeout(limits.connect_timeout, attempt)
            .await
            .map_err(|_| {
                PushError::Connect(format!(
                    "no connection within {} ms",
                    limits.connect_timeout.as_millis()
                ))
            })??;
        Ok(Self {
            sender,
            base: target.base.clone(),
            limits,
            failure: Some(failure),
        })
    }

    /// Subscribes to `gateway`'s snapshots; returns the stream's body.
    pub(crate) async fn subscribe(
        &mut self,
        gateway: &str,
        proxy: &str,
    ) -> Result<Incoming, PushError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!(
                "{}{}",
                self.base,
                path(gateway, Endpoint::Snapshots)
            ))
            .header(PROXY_HEADER, proxy)
            .body(Full::new(Bytes::new()))
            .map_err(|e| PushError::Connect(e.to_string()))?;
        self.send(request, StatusCode::OK).await
    }

    /// Tells the server what became of a snapshot.
    pub(crate) async fn acknowledge(&mut self, gateway: &str, ack: &Ack) -> Result<(), PushError> {
        let body = serde_json::to_vec(ack).map_err(|e| PushError::Protocol(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base, path(gateway, Endpoint::Acks)))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PushError::Connect(e.to_string()))?;
        self.send(request, StatusCode::NO_CONTENT).await.map(drop)
    }

    /// Sends the server `report` (JSON) from `proxy`.
    pub(crate) async fn report(
        &mut self,
        gateway: &str,
        proxy: &str,
        report: &[u8],
    ) -> Result<(), PushError> {
        let mut body = Vec::with_capacity(report.len() + proxy.len() + 24);
        body.extend_from_slice(b"{\"proxy\":");
        body.extend_from_slice(
            &serde_json::to_vec(proxy).map_err(|e| PushError::Protocol(e.to_string()))?,
        );
        body.extend_from_slice(b",\"report\":");
        body.extend_from_slice(report);
        body.push(b'}');
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base, path(gateway, Endpoint::Reports)))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PushError::Connect(e.to_string()))?;
        self.send(request, StatusCode::NO_CONTENT).await.map(drop)
    }

    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        expected: StatusCode,
    ) -> Result<Incoming, PushError> {
        let exchange = async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        };
        let response = match tokio::time::timeout(self.limits.request_timeout, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(self.explain(&error).await),
            Err(_) => {
                return Err(PushError::Stream(format!(
                    "no answer within {} ms",
                    self.limits.request_timeout.as_millis()
                )));
            }
        };
        let status = response.status();
        if status == expected {
            return Ok(response.into_body());
        }
        let body = Limited::new(response.into_body(), MAX_ERROR_BODY_BYTES).collect();
        let body = match tokio::time::timeout(self.limits.request_timeout, body).await {
            Ok(Ok(body)) => String::from_utf8_lossy(&body.to_bytes()).trim().to_string(),
            _ => String::new(),
        };
        Err(PushError::Status { status, body })
    }

    /// A failed request's error, or better, why its connection failed.
    async fn explain(&mut self, error: &hyper::Error) -> PushError {
        if let Some(failure) = self.failure.take()
            && let Ok(Ok(reason)) = tokio::time::timeout(EXPLANATION_WAIT, failure).await
        {
            return PushError::Stream(reason);
        }
        PushError::Stream(with_causes(error))
    }
}
