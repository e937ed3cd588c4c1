//! One listening socket: accepts connections on every worker thread (see [`crate::workers`]),
//! terminates TLS when configured, and serves HTTP/1.1 and HTTP/2 with the Gateway's service.
//! Every connection is watched for graceful shutdown, so stopping a listener never cuts a
//! request in flight.

use arc_swap::ArcSwapOption;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::stack::GatewayService;
use crate::workers::{Placement, Workers};

/// How long a client may take to send request headers, and to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A listener that is accepting connections.
pub(crate) struct RunningListener {
    /// The TLS acceptor, swapped in place when the certificate changes; `None` for plain HTTP.
    pub(crate) tls: Arc<ArcSwapOption<TlsAcceptor>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningListener {
    /// Starts accepting on `socket` on every worker, serving with `service`. Each worker
    /// watches its own copy of the socket, the kernel gives each connection to one of those
    /// that wait, and that one has the least busy worker serve it (see [`Placement`]).
    pub(crate) fn start(
        socket: std::net::TcpListener,
        service: GatewayService,
        tls: Option<TlsAcceptor>,
        graceful: Arc<GracefulShutdown>,
        workers: &Workers,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let copies = (0..workers.count())
            .map(|index| Ok((socket.try_clone()?, workers.placement(index))))
            .collect::<std::io::Result<Vec<_>>>()?;
        let tls = Arc::new(ArcSwapOption::from(tls.map(Arc::new)));
        let (stop, stopped) = watch::channel(false);
        let tasks = workers.spawn_on_each(copies, |(socket, placement)| {
            let (service, tls, graceful, stopped) = (
                service.clone(),
                tls.clone(),
                graceful.clone(),
                stopped.clone(),
            );
            async move {
                match TcpListener::from_std(socket) {
                    Ok(socket) => {
                        accept_loop(socket, placement, service, tls, graceful, stopped).await
                    }
                    Err(error) => {
                        tracing::error!(%error, "a worker cannot watch the listening socket")
                    }
                }
            }
        });
        Ok(Self { tls, stop, tasks })
    }

    /// Stops accepting and closes the socket; connections already open carry on.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    placement: Placement,
    service: GatewayService,
    tls: Arc<ArcSwapOption<TlsAcceptor>>,
    graceful: Arc<GracefulShutdown>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(256 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024);
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            accepted = socket.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let service = TowerToHyperService::new(service.clone());
        let builder = builder.clone();
        let acceptor = tls.load_full();
        placement.serve(stream, move |stream| async move {
            match acceptor {
                None => serve(builder, stream, service, watcher).await,
                Some(acceptor) => match handshake(&acceptor, stream).await {
                    Ok(stream) => serve(builder, stream, service, watcher).await,
                    Err(error) => tracing::debug!(%error, "TLS handshake failed"),
                },
            }
        });
    }
}

/// Serves one connection, plain or TLS, until it closes or the graceful shutdown ends it.
async fn serve<I>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    service: TowerToHyperService<GatewayService>,
    watcher: Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}
