//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong building TLS settings, publishing, or talking to the other side.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// PEM text holds nothing usable (no certificate, no key, or garbage).
    #[error("{what}: {reason}")]
    Pem {
        /// What was being read (`the client CA bundle /etc/tls/ca.crt`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificates or key.
    #[error("invalid TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    /// The controller URL cannot be used.
    #[error("invalid controller URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A gateway is not named `namespace/name`.
    #[error("invalid gateway {0:?}: expected NAMESPACE/NAME")]
    Gateway(String),
    /// A proxy name the server would refuse.
    #[error("invalid proxy name {0:?}: use 1 to 253 of A-Z a-z 0-9 . _ -")]
    ProxyName(String),
    /// A payload handed to `publish` is not JSON.
    #[error("the snapshot payload of {gateway} is not JSON: {reason}")]
    NotJson {
        /// The gateway.
        gateway: String,
        /// Where the JSON breaks.
        reason: String,
    },
    /// Connecting, the TLS handshake or the HTTP/2 handshake failed or took too long.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server answered the subscription with another status than 200.
    #[error("the controller answered {status}: {body}")]
    Status {
        /// The status.
        status: http::StatusCode,
        /// The start of its body.
        body: String,
    },
    /// The stream broke, ended or stayed silent too long.
    #[error("the stream ended: {0}")]
    Stream(String),
    /// A message broke the protocol (too large, not JSON, not a known shape).
    #[error("bad message from the controller: {0}")]
    Protocol(String),
}

/// An error with its causes, `outer: inner: innermost`: hyper's own messages ("connection
/// error") say little without what caused them.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_appended_once() {
        let inner = std::io::Error::other("peer sent alert: UnknownCA");
        let outer = PushError::ReadFile {
            path: "/x".into(),
            source: inner,
        };
        assert_eq!(
            with_causes(&outer),
            "cannot read /x: peer sent alert: UnknownCA"
        );
    }
}
