//! Config push: the controller serves each Gateway's snapshots to the proxies that serve it,
//! and learns which version each proxy runs. Payloads are opaque JSON to this crate.
//!
//! # Protocol
//!
//! HTTP/2 over TLS (ALPN `h2`) with mutual authentication: the server requires a client
//! certificate signed by its client CA, and the client checks the server's certificate
//! against its CA and the host of the controller URL.
//!
//! - `GET /v1/gateways/{namespace}/{name}/snapshots`, with the header
//!   `tollgate-proxy: <proxy name>`, answers 200 with a body that never ends by itself:
//!   newline-delimited JSON messages,
//!   - `{"type":"snapshot","version":N,"payload":<the snapshot's JSON, as published>}`,
//!     first the current snapshot (if the Gateway has one; otherwise nothing until it
//!     does), then each newer one. A subscriber that reads slowly skips versions: it only
//!     ever gets the newest one when it is ready for the next message.
//!   - `{"type":"ping"}` after 15 s without a message;
//!   - `{"type":"removed"}` when the Gateway is removed (the stream stays open, as it does
//!     for a Gateway that does not exist yet: it may appear later).
//!
//!   Messages of other types are ignored by clients (newer servers may add some). With too
//!   many subscribers (1024 by default) the answer is 503.
//! - `POST /v1/gateways/{namespace}/{name}/acks` with
//!   `{"proxy":NAME,"version":N,"accepted":true}` or
//!   `{"proxy":NAME,"version":N,"accepted":false,"error":TEXT}` answers 204. The body may
//!   hold 64 KiB; the error text is cut to 4096 characters.
//! - `POST /v1/gateways/{namespace}/{name}/reports` with `{"proxy":NAME,"report":JSON}`
//!   answers 204: the proxy's latest report (its budget counts, see [`Reporter`]), which the
//!   server keeps as it came, one per proxy ([`SnapshotServer::reports`]). The body may hold
//!   1 MiB.
//!
//! The client refuses messages over 32 MiB, reconnects when it has received nothing (not
//! even a ping) for 45 s, gives connecting 10 s, and waits 0.5 s before reconnecting,
//! doubling to 30 s with jitter and starting over after a snapshot arrives. A proxy keeps
//! what it applied last for as long as it is disconnected.

mod client;
mod error;
mod limits;
mod message;
mod server;
mod tls;

pub use client::{ClientSettings, ClientStatus, Reporter, Subscriber};
pub use error::PushError;
pub use limits::{ClientLimits, ServerLimits};
pub use server::{GatewayPushState, ProxyPushState, ProxyReport, Rejection, SnapshotServer};
pub use tls::{client_config, client_config_from_files, server_config, server_config_from_files};
