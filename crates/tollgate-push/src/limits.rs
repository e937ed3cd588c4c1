//! Every bound and interval of the protocol, with the defaults a deployment wants; tests
//! shorten them.

use std::time::Duration;

/// The server's bounds.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Subscriptions streaming at once; more get 503 and retry with backoff.
    pub max_subscribers: usize,
    /// TCP connections open at once (subscriptions and acknowledgements); past it new
    /// connections wait to be accepted.
    pub max_connections: usize,
    /// A ping is sent after this much silence on a stream.
    pub ping_interval: Duration,
    /// How long the TLS handshake may take.
    pub handshake_timeout: Duration,
    /// The largest acknowledgement body accepted.
    pub max_ack_bytes: usize,
    /// The largest report body accepted.
    pub max_report_bytes: usize,
    /// How long an acknowledgement or report body may take to arrive.
    pub ack_timeout: Duration,
    /// Characters of a rejection's error text that are kept.
    pub max_error_chars: usize,
    /// How long a disconnected proxy stays listed in the state before it is forgotten.
    pub forget_after: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_subscribers: 1024,
            max_connections: 2048,
            ping_interval: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            max_ack_bytes: 64 * 1024,
            max_report_bytes: 1024 * 1024,
            ack_timeout: Duration::from_secs(10),
            max_error_chars: 4096,
            forget_after: Duration::from_secs(300),
        }
    }
}

/// The client's bounds.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// The largest message accepted; a larger one ends the connection.
    pub max_message_bytes: usize,
    /// With nothing received for this long (not even a ping) the client reconnects.
    pub idle_timeout: Duration,
    /// How long connecting, the TLS handshake and the HTTP/2 handshake may take together.
    pub connect_timeout: Duration,
    /// How long the server may take to answer a subscription or an acknowledgement.
    pub request_timeout: Duration,
    /// The first wait before reconnecting.
    pub backoff_initial: Duration,
    /// The longest wait before reconnecting.
    pub backoff_max: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 * 1024 * 1024,
            idle_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}
