//! One attempt at one backend: send the request, wait for its first byte (for a stream, its
//! first event, so that a stream that hangs after its headers fails over too), and say how it
//! went.

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::time::Duration;
use tokio::time::Instant;
use tollgate_config::{Provider, RetryOn};

use crate::error::ProxyError;
use crate::upstream::{UpstreamClient, is_timeout};

/// How an attempt ended.
pub(super) enum Outcome {
    /// The backend answered: a success, or a client error that another backend would repeat.
    Answered {
        head: http::response::Parts,
        incoming: Incoming,
        first: Option<Bytes>,
        first_byte: Duration,
    },
    /// The backend failed before the caller saw a byte; another attempt may do better.
    Failed(Failure),
}

/// Why an attempt failed, and what the caller gets if it is the last.
pub(super) struct Failure {
    pub(super) kind: FailureKind,
    pub(super) retry_after: Option<Duration>,
    pub(super) answer: FinalAnswer,
}

/// Kinds of retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// Refused, reset, or broken before the response began.
    Connect,
    /// No first byte in time.
    Timeout,
    /// 429.
    RateLimited,
    /// 5xx, or the upstream refused the gateway's credential.
    Server,
    /// The request cannot be sent to this backend as it is (it cannot be translated to the
    /// backend's format): final, and no fault of the backend.
    Refused,
}

impl FailureKind {
    /// Whether a rule retries this kind.
    pub(super) fn retried_by(self, on: RetryOn) -> bool {
        match self {
            FailureKind::Connect => on.connect_failure,
            FailureKind::Timeout => on.timeout,
            FailureKind::RateLimited => on.rate_limited,
            FailureKind::Server => on.server_error,
            FailureKind::Refused => false,
        }
    }

    /// The metric label.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect_failure",
            FailureKind::Timeout => "timeout",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Server => "server_error",
            FailureKind::Refused => "refused",
        }
    }

    /// Whether it says the backend is unwell (a 429 says it is busy, not broken).
    pub(super) fn counts_against_health(self) -> bool {
        !matches!(self, FailureKind::RateLimited | FailureKind::Refused)
    }
}

/// What the caller gets when the last attempt failed.
pub(super) enum FinalAnswer {
    /// A gateway error.
    Error(ProxyError),
    /// The upstream's own answer (its 429 or 5xx), passed on.
    Upstream(Response<Incoming>),
}

/// Sends `request` to `provider`, giving up at `deadline`.
pub(super) async fn attempt(
    client: &UpstreamClient,
    request: Request<Full<Bytes>>,
    provider: &Provider,
    deadline: Instant,
) -> Outcome {
    let started = Instant::now();
    let timed_out = || {
        Outcome::Failed(Failure {
            kind: FailureKind::Timeout,
            retry_after: None,
            answer: FinalAnswer::Error(ProxyError::UpstreamTimeout {
                provider: provider.name.to_string(),
                seconds: deadline.saturating_duration_since(started).as_secs_f64(),
            }),
        })
    };
    let connect_failed = |reason: String| {
        Outcome::Failed(Failure {
            kind: FailureKind::Connect,
            retry_after: None,
            answer: FinalAnswer::Error(ProxyError::UpstreamUnreachable {
                provider: provider.name.to_string(),
                reason,
            }),
        })
    };
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return timed_out(),
        Ok(Err(error)) if is_timeout(&error) => return timed_out(),
        Ok(Err(error)) => {
            let reason =
                std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": ");
            return connect_failed(reason);
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    // The wait a failure asks for; a success's headers are not searched for one.
    let failed = |kind, answer: FinalAnswer, retry_after: Option<Duration>| {
        Outcome::Failed(Failure {
            kind,
            retry_after,
            answer,
        })
    };
    match status {
        429 => {
            let wait = retry_after(response.headers());
            return failed(
                FailureKind::RateLimited,
                FinalAnswer::Upstream(response),
                wait,
            );
        }
        401 | 403 => {
            let error = ProxyError::UpstreamAuth {
                provider: provider.name.to_string(),
                status,
            };
            let wait = retry_after(response.headers());
            return failed(FailureKind::Server, FinalAnswer::Error(error), wait);
        }
        500..=599 => {
            let wait = retry_after(response.headers());
            return failed(FailureKind::Server, FinalAnswer::Upstream(response), wait);
        }
        _ => {}
    }
    let (head, mut incoming) = response.into_parts();
    let is_stream = is_stream(&head.headers);
    let mut first = None;
    if is_stream && head.status.is_success() {
        match tokio::time::timeout_at(deadline, incoming.frame()).await {
            Err(_) => return timed_out(),
            Ok(Some(Err(error))) => {
                return connect_failed(format!("the stream broke before its first event: {error}"));
            }
            Ok(Some(Ok(frame))) => first = frame.into_data().ok(),
            Ok(None) => {}
        }
    }
    Outcome::Answered {
        head,
        incoming,
        first,
        first_byte: started.elapsed(),
    }
}

/// Whether a response is a stream: SSE, or AWS's binary event stream (Bedrock).
pub(super) fn is_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/event-stream")
                || v.starts_with("application/vnd.amazon.eventstream")
        })
}

/// The largest complete answer read to be translated.
const MAX_TRANSLATED_ANSWER: usize = 16 << 20;

/// Reads a complete answer (after `first`, a frame already read) to translate it, within
/// the request's deadline and [`MAX_TRANSLATED_ANSWER`].
pub(super) async fn read_whole(
    incoming: Incoming,
    first: Option<Bytes>,
    deadline: Option<Instant>,
) -> Result<Bytes, String> {
    let limit = MAX_TRANSLATED_ANSWER - first.as_ref().map_or(0, Bytes::len);
    let read = http_body_util::Limited::new(incoming, limit).collect();
    let collected = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| "the route's request timeout ended the answer".to_string())?,
        None => read.await,
    }
    .map_err(|error| format!("the answer could not be read: {error}"))?;
    let rest = collected.to_bytes();
    Ok(match first {
        Some(first) => [first, rest].concat().into(),
        None => rest,
    })
}

/// The wait an upstream asks for: `retry-after-ms` (Azure) or `retry-after` in seconds.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// Reads a failed upstream answer to pass it on whole: small, so it is read with a cap and a
/// short timeout; what cannot be read is dropped.
pub(super) async fn read_answer(response: Response<Incoming>) -> (http::response::Parts, Bytes) {
    const MAX: usize = 64 * 1024;
    let (head, incoming) = response.into_parts();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::Limited::new(incoming, MAX).collect(),
    )
    .await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    (head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_first_then_seconds() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.insert("retry-after-ms", "soon".parse().unwrap());
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn which_failures_a_rule_retries() {
        let on = RetryOn {
            rate_limited: false,
            ..RetryOn::ALL
        };
        assert!(FailureKind::Connect.retried_by(on));
        assert!(!FailureKind::RateLimited.retried_by(on));
        assert!(!FailureKind::Timeout.retried_by(RetryOn::NONE));
        assert!(!FailureKind::RateLimited.counts_against_health());
    }
}
