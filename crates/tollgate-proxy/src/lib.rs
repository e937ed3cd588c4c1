//! Tollgate's data plane. A [`Proxy`] serves the Gateways whose snapshots it is given:
//! it binds their listeners, runs every request through the stages in [`stack`], and swaps
//! snapshots atomically so that requests in flight finish on the snapshot they started with.

pub mod admin;
mod audit;
mod balance;
mod body;
mod budget;
mod clock;
mod cloud_auth;
mod error;
mod exchange;
mod forward;
mod health;
mod jwks;
mod labels;
mod listener;
mod mcp;
mod metrics;
pub mod replay;
mod request_facts;
mod series;
mod stack;
mod stages;
mod stream_translation;
pub mod telemetry;
mod tls;
mod upstream;
mod workers;

use arc_swap::ArcSwap;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tollgate_config::{Listener, ObjectRef, Snapshot};

pub use audit::CaptureSettings;
pub use budget::{
    Consumed, Demand, Ledger, RateLimitHeaders, Reservation, StoreConfig, Verdict, WorstPrice,
};
pub use error::ProxyError;
pub use metrics::Metrics;
pub use stack::RequestLimits;

use health::HealthRegistry;
use listener::RunningListener;
use metrics::{GatewayLabels, ReloadLabels};
use stack::Served;
use upstream::UpstreamClients;
use workers::Workers;

/// Settings fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// The address Gateway listeners bind to (their ports come from the Gateway).
    pub listen_address: IpAddr,
    /// Limits on every request.
    pub limits: RequestLimits,
    /// Where budget and rate limit counts are kept.
    pub budget_store: StoreConfig,
    /// The audit log every request is recorded in, if any; the caller closes it after
    /// [`Proxy::drain`].
    pub audit: Option<Arc<tollgate_audit::AuditLog>>,
    /// Where audit records are also sent as OTLP log records, if anywhere.
    pub audit_otlp: Option<Arc<telemetry::AuditLogger>>,
    /// Whether request and response bodies are captured, for audit records or spans.
    pub capture: Option<Arc<CaptureSettings>>,
    /// How many threads serve Gateway traffic (see [`workers`]); at least one.
    pub worker_threads: usize,
}

/// The proxy cannot start with these settings.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSettings {
    /// The budget store cannot be used.
    #[error("invalid budget store: {0}")]
    BudgetStore(String),
    /// The worker threads cannot be started.
    #[error("cannot start the worker threads: {0}")]
    Workers(#[source] std::io::Error),
}

/// Why a new set of snapshots was not applied. Nothing changes when apply fails.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Two Gateways want the same port.
    #[error("port {port} is claimed by both Gateway {first} and Gateway {second}")]
    PortConflict {
        /// The port.
        port: u16,
        /// One Gateway.
        first: ObjectRef,
        /// The other.
        second: ObjectRef,
    },
    /// Listeners of one Gateway share a port but not whether they speak TLS.
    #[error(
        "listeners {plain:?} and {tls:?} of Gateway {gateway} share port {port}, but only one speaks TLS"
    )]
    MixedProtocols {
        /// The Gateway.
        gateway: ObjectRef,
        /// The port.
        port: u16,
        /// A plain HTTP listener on it.
        plain: String,
        /// An HTTPS listener on it.
        tls: String,
    },
    /// A listener's certificate cannot be used.
    #[error("listener {listener} of Gateway {gateway}: {reason}")]
    Tls {
        /// The Gateway.
        gateway: ObjectRef,
        /// The listener's name.
        listener: String,
        /// What is wrong.
        reason: String,
    },
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A JWTProvider's keys cannot be used.
    #[error("Gateway {gateway}: {source}")]
    Jwt {
        /// The Gateway.
        gateway: ObjectRef,
        /// What is wrong.
        #[source]
        source: tollgate_jwt::JwtConfigError,
    },
    /// The proxy is draining and takes no new configuration.
    #[error("the proxy is shutting down")]
    ShuttingDown,
}

/// The running data plane.
pub struct Proxy {
    settings: ProxySettings,
    metrics: Metrics,
    clients: Arc<UpstreamClients>,
    ledger: Arc<Ledger>,
    workers: Workers,
    control: tokio::sync::Mutex<Control>,
    published: ArcSwap<Vec<Arc<Snapshot>>>,
    ready: AtomicBool,
}

/// What only configuration changes and shutdown touch, behind an async lock that the request
/// path never takes.
struct Control {
    gateways: HashMap<ObjectRef, Arc<ArcSwap<Served>>>,
    health: HealthRegistry,
    listeners: HashMap<u16, (ObjectRef, RunningListener)>,
    graceful: Option<Arc<GracefulShutdown>>,
}

impl Proxy {
    /// A proxy with no Gateways yet, registering its metrics in `registry`.
    pub fn new(settings: ProxySettings, registry: &mut Registry) -> Result<Self, InvalidSettings> {
        let metrics = Metrics::register(registry);
        if let Some(audit) = &settings.audit {
            registry.register_collector(Box::new(audit::AuditMetrics(audit.counters())));
        }
        let health = HealthRegistry::new(metrics.ejections.clone());
        let ledger = Ledger::new(&settings.budget_store, metrics.clone())
            .map_err(InvalidSettings::BudgetStore)?;
        let workers = Workers::start(settings.worker_threads).map_err(InvalidSettings::Workers)?;
        tracing::debug!(threads = workers.count(), "worker threads started");
        Ok(Self {
            settings,
            metrics,
            clients: Arc::new(UpstreamClients::default()),
            ledger: Arc::new(ledger),
            workers,
            control: tokio::sync::Mutex::new(Control {
                gateways: HashMap::new(),
                health,
                listeners: HashMap::new(),
                graceful: Some(Arc::new(GracefulShutdown::new())),
            }),
            published: ArcSwap::from_pointee(Vec::new()),
            ready: AtomicBool::new(false),
        })
    }

    /// Serves exactly these Gateways from now on: new listeners are bound first (so a port
    /// that cannot be bound leaves everything as it was), then snapshots are swapped, then
    /// listeners no longer wanted stop accepting while their open connections finish.
    pub async fn apply(
        &self,
        snapshots: &BTreeMap<ObjectRef, Arc<Snapshot>>,
    ) -> Result<(), ApplyError> {
        let mut control = self.control.lock().await;
        let graceful = control.graceful.clone().ok_or(ApplyError::ShuttingDown)?;

        // What should listen where: one socket per port, shared by the listeners of one
        // Gateway on that port, with one acceptor choosing among their certificates.
        let mut by_port: HashMap<u16, (&ObjectRef, Vec<&Listener>)> = HashMap::new();
        for (gateway, snapshot) in snapshots {
            for listener in &snapshot.config.listeners {
                let (owner, listeners) = by_port
                    .entry(listener.port)
                    .or_insert_with(|| (gateway, Vec::new()));
                if *owner != gateway {
                    return Err(ApplyError::PortConflict {
                        port: listener.port,
                        first: (*owner).clone(),
                        second: gateway.clone(),
                    });
                }
                listeners.push(listener);
            }
        }
        let mut wanted: HashMap<u16, (ObjectRef, Option<TlsAcceptor>)> = HashMap::new();
        for (port, (gateway, listeners)) in by_port {
            let acceptor = port_acceptor(gateway, port, &listeners)?;
            wanted.insert(port, (gateway.clone(), acceptor));
        }

        // Bind every port not already served by the same Gateway, before changing anything.
        let mut sockets = HashMap::new();
        for (port, (gateway, _)) in &wanted {
            let reusable = control
                .listeners
                .get(port)
                .is_some_and(|(g, _)| g == gateway);
            let moving = control.listeners.contains_key(port);
            if !reusable && !moving {
                let address = SocketAddr::new(self.settings.listen_address, *port);
                let socket = bind(address)
                    .await
                    .map_err(|source| ApplyError::Bind { address, source })?;
                sockets.insert(*port, socket);
            }
        }

        // JWT verifiers: kept (with their cached keys) while a Gateway's providers are
        // unchanged, built anew otherwise; any that cannot be built stops the change here.
        let mut verifiers = Vec::with_capacity(snapshots.len());
        for (gateway, snapshot) in snapshots {
            let providers = &snapshot.config.jwt_providers;
            let current = control
                .gateways
                .get(gateway)
                .map(|served| served.load_full());
            let verifier = match current {
                Some(served) if served.snapshot.config.jwt_providers == *providers => {
                    served.jwt.clone()
                }
                _ => {
                    jwks::verifier(providers, &self.clients).map_err(|source| ApplyError::Jwt {
                        gateway: gateway.clone(),
                        source,
                    })?
                }
            };
            verifiers.push(verifier);
        }

        // Swap snapshots: new requests see the new configuration from here on. What was
        // learned about backends carries over to the rules of the new snapshots.
        let ordered: Vec<&Arc<Snapshot>> = snapshots.values().collect();
        let runtimes = control.health.runtime_for(&ordered);
        for (((gateway, snapshot), runtime), jwt) in snapshots.iter().zip(runtimes).zip(verifiers) {
            let served = Arc::new(Served {
                mcp: Arc::new(mcp::McpRuntime::new(snapshot)),
                labels: labels::Labels::of(snapshot),
                upstreams: stages::route::Upstreams::of(snapshot),
                snapshot: snapshot.clone(),
                runtime,
                jwt,
            });
            match control.gateways.get(gateway) {
                Some(current) => current.store(served),
                None => {
                    control
                        .gateways
                        .insert(gateway.clone(), Arc::new(ArcSwap::new(served)));
                }
            }
            self.metrics
                .config_version
                .get_or_create(&GatewayLabels {
                    gateway: gateway.to_string(),
                })
                .set(snapshot.version as i64);
        }

        // Stop listeners that are no longer wanted, or that move to another Gateway.
        let stale: Vec<u16> = control
            .listeners
            .iter()
            .filter(|(port, (gateway, _))| wanted.get(port).is_none_or(|(g, _)| g != gateway))
            .map(|(port, _)| *port)
            .collect();
        for port in &stale {
            if let Some((_, listener)) = control.listeners.remove(port) {
                listener.stop().await;
            }
        }

        // Start new listeners and update certificates of the ones that stay.
        for (port, (gateway, acceptor)) in wanted {
            if let Some((_, running)) = control.listeners.get(&port) {
                running.tls.store(acceptor.map(Arc::new));
                continue;
            }
            let socket = match sockets.remove(&port) {
                Some(socket) => socket,
                None => {
                    // The port moved between Gateways: its old socket is closed now, bind anew.
                    let address = SocketAddr::new(self.settings.listen_address, port);
                    match bind(address).await {
                        Ok(socket) => socket,
                        Err(error) => {
                            tracing::error!(%address, %error, "cannot listen after moving the port to another Gateway");
                            continue;
                        }
                    }
                }
            };
            let service = stack::gateway_service(
                control.gateways[&gateway].clone(),
                self.metrics.clone(),
                self.clients.clone(),
                self.settings.limits,
                self.ledger.clone(),
                (self.settings.audit.is_some() || self.settings.audit_otlp.is_some()).then(|| {
                    stages::record::Audit {
                        log: self.settings.audit.clone(),
                        otlp: self.settings.audit_otlp.clone(),
                    }
                }),
                self.settings.capture.clone(),
            );
            let tls = acceptor.is_some();
            match RunningListener::start(socket, service, acceptor, graceful.clone(), &self.workers)
            {
                Ok(running) => {
                    tracing::info!(%gateway, port, tls, "listening");
                    control.listeners.insert(port, (gateway, running));
                }
                Err(error) => tracing::error!(%gateway, port, %error, "cannot accept connections"),
            }
        }

        control
            .gateways
            .retain(|gateway, _| snapshots.contains_key(gateway));
        self.published
            .store(Arc::new(snapshots.values().cloned().collect()));
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Counts a configuration change that was applied or rejected.
    pub fn count_reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.metrics
            .config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// What outlier detection and latency tracking know about each backend, for `/config`.
    pub async fn backend_health(&self) -> serde_json::Value {
        self.control.lock().await.health.describe()
    }

    /// Spend and remaining room of every budget policy, for the admin server.
    pub async fn budget_report(&self) -> Result<serde_json::Value, String> {
        let snapshots = self.snapshots();
        let Some(snapshot) = snapshots.first() else {
            return Ok(serde_json::json!([]));
        };
        let report = self.ledger.report(&snapshot.config.budgets).await?;
        serde_json::to_value(report).map_err(|e| e.to_string())
    }

    /// Sets the budget gauges from the budget store, now and then every `every` while the
    /// proxy lives.
    pub fn spawn_budget_gauges(self: &Arc<Self>, every: Duration) {
        let proxy = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(proxy) = proxy.upgrade() else { break };
                proxy.refresh_budget_gauges().await;
            }
        });
    }

    /// Reads every budget limit's use and sets its gauges.
    async fn refresh_budget_gauges(&self) {
        let snapshots = self.snapshots();
        let Some(snapshot) = snapshots.first() else {
            return;
        };
        let Ok(report) = self.ledger.report(&snapshot.config.budgets).await else {
            return;
        };
        // Policies removed by a reload must not linger.
        self.metrics.budget_used.clear();
        self.metrics.budget_remaining.clear();
        for policy in &report {
            for (name, window, unit, used, remaining) in policy.gauges() {
                let labels = metrics::BudgetLimitLabels {
                    policy: name.to_string(),
                    window,
                    unit,
                };
                self.metrics.budget_used.get_or_create(&labels).set(used);
                self.metrics
                    .budget_remaining
                    .get_or_create(&labels)
                    .set(remaining);
            }
        }
    }

    /// The snapshots in use, for the admin server.
    pub fn snapshots(&self) -> Arc<Vec<Arc<Snapshot>>> {
        self.published.load_full()
    }

    /// Whether a configuration has been applied and traffic can be served.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stops accepting connections, then waits up to `deadline` for open requests and
    /// streams to finish. Returns whether they all did.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let mut control = self.control.lock().await;
        self.ready.store(false, Ordering::Release);
        for (_, (_, listener)) in control.listeners.drain() {
            listener.stop().await;
        }
        let Some(graceful) = control.graceful.take() else {
            return true;
        };
        let Ok(graceful) = Arc::try_unwrap(graceful) else {
            tracing::error!("connections are still being accepted; cannot drain cleanly");
            return false;
        };
        let open = graceful.count();
        tracing::info!(
            open,
            deadline_s = deadline.as_secs(),
            "draining connections"
        );
        let started = tokio::time::Instant::now();
        let drained = tokio::time::timeout(deadline, graceful.shutdown())
            .await
            .is_ok();
        // Settlements of the last responses, so that what they spent is counted.
        let settled = self
            .ledger
            .flush(deadline.saturating_sub(started.elapsed()))
            .await;
        drained && settled
    }
}

/// A listening socket on `address`, handed to the workers (which each watch it).
async fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    TcpListener::bind(address).await?.into_std()
}

/// The TLS acceptor of the listeners of `gateway` that share `port`; `None` when they all
/// speak plain HTTP.
fn port_acceptor(
    gateway: &ObjectRef,
    port: u16,
    listeners: &[&Listener],
) -> Result<Option<TlsAcceptor>, ApplyError> {
    let (secure, plain): (Vec<&Listener>, Vec<&Listener>) =
        listeners.iter().copied().partition(|l| l.tls.is_some());
    match (secure.first(), plain.first()) {
        (None, _) => Ok(None),
        (Some(tls), Some(plain)) => Err(ApplyError::MixedProtocols {
            gateway: gateway.clone(),
            port,
            plain: plain.name.clone(),
            tls: tls.name.clone(),
        }),
        (Some(_), None) => tls::acceptor(&secure)
            .map(Some)
            .map_err(|invalid| ApplyError::Tls {
                gateway: gateway.clone(),
                listener: invalid.listener,
                reason: invalid.reason,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{Secret, TlsCertificate};

    fn listener(name: &str, tls: bool) -> Listener {
        Listener {
            name: name.into(),
            port: 8443,
            hostname: Some(format!("{name}.example.test")),
            tls: tls.then(|| TlsCertificate {
                certificate_chain_pem: "not PEM".into(),
                private_key_pem: Secret::new("not PEM"),
            }),
        }
    }

    #[test]
    fn a_port_of_plain_listeners_has_no_acceptor() {
        let (a, b) = (listener("a", false), listener("b", false));
        let gateway = ObjectRef::new("default", "gw");
        assert!(matches!(port_acceptor(&gateway, 8443, &[&a, &b]), Ok(None)));
    }

    #[test]
    fn plain_and_tls_listeners_cannot_share_a_port() {
        let (plain, secure) = (listener("plain", false), listener("secure", true));
        let gateway = ObjectRef::new("default", "gw");
        let error = port_acceptor(&gateway, 8443, &[&secure, &plain]).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some(
                "listeners \"plain\" and \"secure\" of Gateway default/gw share port 8443, but only one speaks TLS"
            )
        );
    }

    #[test]
    fn an_unusable_certificate_names_its_listener() {
        let secure = listener("secure", true);
        let gateway = ObjectRef::new("default", "gw");
        let error = port_acceptor(&gateway, 8443, &[&secure]).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some(
                "listener secure of Gateway default/gw: the certificate chain holds no certificate"
            )
        );
    }
}
