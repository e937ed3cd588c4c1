//! Certificates, servers and clients on 127.0.0.1 for the push tests.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tollgate_push::{
    ClientLimits, ClientSettings, ClientStatus, Reporter, ServerLimits, SnapshotServer, Subscriber,
};

pub const GATEWAY: &str = "default/gw";
/// Long enough for anything that should happen on loopback.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A certificate authority that issues server and client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for these names, and its key, as PEM.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.leaf(&["127.0.0.1", "localhost"]);
        tollgate_push::server_config(cert.as_bytes(), key.as_bytes(), self.pem().as_bytes())
            .unwrap()
    }

    /// A client trusting `server_ca`, with a certificate from this CA.
    pub fn client_tls(&self, server_ca: &Ca) -> Arc<rustls::ClientConfig> {
        let (cert, key) = self.leaf(&["proxy"]);
        tollgate_push::client_config(server_ca.pem().as_bytes(), cert.as_bytes(), key.as_bytes())
            .unwrap()
    }
}

/// A client trusting `server_ca` that has no certificate of its own.
pub fn anonymous_tls(server_ca: &Ca) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(server_ca.pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

pub fn server_limits() -> ServerLimits {
    ServerLimits {
        ping_interval: Duration::from_millis(100),
        ..ServerLimits::default()
    }
}

pub fn client_limits() -> ClientLimits {
    ClientLimits {
        idle_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..ClientLimits::default()
    }
}

/// A serving server; dropping `stop` (or sending on it) shuts it down.
pub struct Running {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    pub async fn start(server: &SnapshotServer, tls: Arc<rustls::ServerConfig>, port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, tls, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    pub async fn stop(mut self) {
        drop(self.stop.take());
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A subscriber whose apply function reports each (version, payload) it is handed and
/// rejects payloads containing `bad`.
pub struct Client {
    pub applied: mpsc::UnboundedReceiver<(u64, Bytes)>,
    pub status: watch::Receiver<ClientStatus>,
    pub reporter: Reporter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Client {
    pub fn start(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        name: &str,
        limits: ClientLimits,
    ) -> Self {
        Self::start_gated(url, tls, name, limits, None)
    }

    /// Like `start`, but the first apply waits until `gate` is released.
    pub fn start_gated(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        name: &str,
        limits: ClientLimits,
        gate: Option<oneshot::Receiver<()>>,
    ) -> Self {
        let subscriber = Subscriber::new(ClientSettings {
            url: url.to_string(),
            gateway: GATEWAY.into(),
            proxy_name: name.into(),
            tls,
            limits,
        })
        .unwrap();
        let status = subscriber.status();
        let reporter = subscriber.reporter();
        let (report, applied) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let gate = Arc::new(tokio::sync::Mutex::new(gate));
        let apply = move |version: u64, payload: Bytes| {
            let (report, gate) = (report.clone(), gate.clone());
            async move {
                if let Some(gate) = gate.lock().await.take() {
                    let _ = gate.await;
                }
                let _ = report.send((version, payload.clone()));
                if String::from_utf8_lossy(&payload).contains("bad") {
                    return Err(format!("version {version} is bad"));
                }
                Ok(())
            }
        };
        let task = tokio::spawn(subscriber.run(apply, async {
            let _ = stopped.await;
        }));
        Self {
            applied,
            status,
            reporter,
            stop: Some(stop),
            task,
        }
    }

    /// The next snapshot handed to apply.
    pub async fn next_applied(&mut self) -> (u64, Bytes) {
        tokio::time::timeout(PATIENCE, self.applied.recv())
            .await
            .expect("a snapshot arrives")
            .unwrap()
    }

    /// Waits until the status satisfies `predicate`.
    pub async fn wait_status(&mut self, predicate: impl Fn(&ClientStatus) -> bool) {
        tokio::time::timeout(PATIENCE, self.status.wait_for(predicate))
            .await
            .expect("the status is reached")
            .unwrap();
    }

    pub async fn stop(mut self) {
        drop(self.stop.take());
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the client stops")
            .unwrap();
    }
}

/// Waits until the server's state satisfies `predicate`.
pub async fn wait_state(
    server: &SnapshotServer,
    predicate: impl Fn(&std::collections::BTreeMap<String, tollgate_push::GatewayPushState>) -> bool,
) {
    let mut changes = server.changes();
    let wait = async {
        loop {
            if predicate(&server.state()) {
                return;
            }
            changes.changed().await.unwrap();
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("state not reached: {:?}", server.state()));
}

/// A bare HTTP/2 connection to the server, to look at the protocol itself.
pub struct Raw {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    base: String,
}

impl Raw {
    pub async fn connect(address: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Self {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        Self {
            sender,
            base: format!("https://{address}"),
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        proxy: Option<&str>,
        body: impl Into<Bytes>,
    ) -> http::Response<Incoming> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(proxy) = proxy {
            request = request.header("tollgate-proxy", proxy);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        self.sender.ready().await.unwrap();
        self.sender.send_request(request).await.unwrap()
    }
}

/// Reads one line of a stream body (keeping what followed it in `buffer`).
pub async fn read_line(body: &mut Incoming, buffer: &mut Vec<u8>) -> String {
    let read = async {
        loop {
            if let Some(at) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=at).collect();
                return String::from_utf8(line[..at].to_vec()).unwrap();
            }
            let frame = body.frame().await.expect("the stream goes on").unwrap();
            if let Ok(data) = frame.into_data() {
                buffer.extend_from_slice(&data);
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("a line arrives")
}
