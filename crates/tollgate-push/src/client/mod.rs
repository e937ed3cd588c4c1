//! The proxy's side: [`Subscriber`] follows one Gateway's snapshots, hands each to the
//! caller's apply function, acknowledges the outcome, and reconnects with backoff whenever
//! the stream breaks. What it applied last stays in force while it is disconnected.

mod backoff;
mod connection;
mod lines;
mod target;

use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

use crate::message::{Ack, Message, parse_line, valid_gateway, valid_name};
use crate::{ClientLimits, PushError};
use backoff::Backoff;
use connection::Connection;
use target::Target;

/// What a subscriber needs.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The controller, `https://HOST:PORT`; HOST must be in its certificate.
    pub url: String,
    /// The Gateway to follow, `namespace/name`.
    pub gateway: String,
    /// This proxy's name, as the controller lists it.
    pub proxy_name: String,
    /// TLS with the CA and this proxy's certificate (see [`crate::client_config_from_files`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// Bounds and intervals.
    pub limits: ClientLimits,
}

/// What the subscriber is doing, for readiness and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStatus {
    /// Whether a subscription stream is open.
    pub connected: bool,
    /// The last version the apply function accepted.
    pub applied_version: Option<u64>,
}

/// The last snapshot handed to the apply function and whether it took it: a reconnect that
/// delivers the same bytes again is acknowledged without applying them twice.
struct Applied {
    version: u64,
    payload: Bytes,
    accepted: bool,
}

/// Follows one Gateway's snapshots (see the module docs).
pub struct Subscriber {
    settings: ClientSettings,
    target: Target,
    status: watch::Sender<ClientStatus>,
    reports: watch::Sender<Option<Bytes>>,
}

/// Hands the subscriber reports for the controller (the proxy's budget counts): each is sent
/// once, on the open connection, or on the next one; a newer one replaces one not yet sent.
#[derive(Clone, Debug)]
pub struct Reporter(watch::Sender<Option<Bytes>>);

impl Reporter {
    /// Queues `report`, which must be JSON (the server refuses anything else).
    pub fn send(&self, report: Bytes) {
        self.0.send_replace(Some(report));
    }
}

impl Subscriber {
    /// Checks the settings; nothing connects until [`Subscriber::run`].
    pub fn new(settings: ClientSettings) -> Result<Self, PushError> {
        let target = Target::parse(&settings.url)?;
        if !valid_gateway(&settings.gateway) {
            return Err(PushError::Gateway(settings.gateway));
        }
        if !valid_name(&settings.proxy_name) {
            return Err(PushError::ProxyName(settings.proxy_name));
        }
        Ok(Self {
            settings,
            target,
            status: watch::Sender::new(ClientStatus::default()),
            reports: watch::Sender::new(None),
        })
    }

    /// Where to hand reports for the controller.
    pub fn reporter(&self) -> Reporter {
        Reporter(self.reports.clone())
    }

    /// Its status, updated as it connects, disconnects and applies.
    pub fn status(&self) -> watch::Receiver<ClientStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes, reconnecting forever. `apply` gets each new snapshot's
    /// version and payload and says whether it is now in force or why not; its answer is
    /// sent to the controller. Shutdown may interrupt `apply`.
    pub async fn run<F, Fut>(self, mut apply: F, shutdown: impl Future<Output = ()>)
    where
        F: FnMut(u64, Bytes) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let limits = self.settings.limits;
        let mut backoff = Backoff::new(limits.backoff_initial, limits.backoff_max);
        let mut applied = None;
        tokio::pin!(shutdown);
        loop {
            let ended = tokio::select! {
                ended = self.session(&mut apply, &mut applied, &mut backoff) => ended,
                () = &mut shutdown => break,
            };
            self.status.send_modify(|s| s.connected = false);
            let delay = backoff.next_delay();
            tracing::warn!(
                controller = self.settings.url,
                gateway = self.settings.gateway,
                error = %ended,
                retry_in_ms = delay.as_millis() as u64,
                "config push: not connected"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = &mut shutdown => break,
            }
        }
        self.status.send_modify(|s| s.connected = false);
    }

    /// One connection, from connecting until it breaks; returns why it did.
    async fn session<F, Fut>(
        &self,
        apply: &mut F,
        applied: &mut Option<Applied>,
        backoff: &mut Backoff,
    ) -> PushError
    where
        F: FnMut(u64, Bytes) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let settings = &self.settings;
        let mut connection =
            match Connection::open(&self.target, &settings.tls, settings.limits).await {
                Ok(connection) => connection,
                Err(error) => return error,
            };
        let body = match connection
            .subscribe(&settings.gateway, &settings.proxy_name)
            .await
        {
            Ok(body) => body,
            Err(error) => return error,
        };
        self.status.send_modify(|s| s.connected = true);
        tracing::info!(
            controller = settings.url,
            gateway = settings.gateway,
            "config push: connected"
        );
        let limits = settings.limits;
        let mut lines = lines::Lines::new(body, limits.max_message_bytes, limits.idle_timeout);
        // The latest report goes out on each new connection, then each newer one.
        let mut reports = self.reports.subscribe();
        reports.mark_changed();
        loop {
            let next = tokio::select! {
                next = lines.next_line() => next,
                Ok(()) = reports.changed() => {
                    let report = reports.borrow_and_update().clone();
                    if let Some(report) = report
                        && let Err(error) = connection
                            .report(&settings.gateway, &settings.proxy_name, &report)
                            .await
                    {
                        return error;
                    }
                    continue;
                }
            };
            let line = match next {
                Ok(line) => line,
                Err(error) => return error,
            };
            let (version, payload) = match parse_line(&line) {
                Err(error) => return PushError::Protocol(error),
                Ok(Message::Ping) => continue,
                Ok(Message::Unknown(kind)) => {
                    tracing::debug!(kind, "config push: ignoring a message of an unknown type");
                    continue;
                }
                Ok(Message::Removed) => {
                    tracing::warn!(
                        gateway = settings.gateway,
                        "config push: the controller no longer has this Gateway; serving the last configuration until it returns"
                    );
                    continue;
                }
                Ok(Message::Snapshot { version, payload }) => (version, payload),
            };
            let outcome = match applied {
                Some(last)
                    if last.accepted && last.version == version && last.payload == payload =>
                {
                    Ok(())
                }
                _ => apply(version, payload.clone()).await,
            };
            match &outcome {
                Ok(()) => {
                    self.status
                        .send_modify(|s| s.applied_version = Some(version));
                }
                Err(error) => {
                    tracing::warn!(gateway = settings.gateway, version, %error, "config push: snapshot rejected; keeping the last configuration");
                }
            }
            *applied = Some(Applied {
                version,
                payload,
                accepted: outcome.is_ok(),
            });
            backoff.reset();
            let ack = Ack {
                proxy: settings.proxy_name.clone(),
                version,
                accepted: outcome.is_ok(),
                error: outcome.err(),
            };
            if let Err(error) = connection.acknowledge(&settings.gateway, &ack).await {
                return error;
            }
        }
    }
}
