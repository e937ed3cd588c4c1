//! How the mock behaves: the runtime defaults every model request follows (set by
//! `POST /_mock/behaviour`, or `--status` and `--delay-ms` at start), and, per request, those
//! defaults overridden by the request's `x-mock-*` headers.

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{MockBody, Options, json_response, openai};

/// The status `fail_ratio` fails requests with when `status` is unset.
const RATIO_STATUS: u16 = 500;

/// The most chunks a stream has, whatever is asked.
const MAX_CHUNKS: usize = 10_000;

/// What every model request does unless its headers say otherwise; all unset (`{}`) is normal.
/// `POST /_mock/behaviour` replaces it whole.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Defaults {
    /// Fail with this status (every request, or the `fail_ratio` share of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// The `retry-after` header (seconds) of 429 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_s: Option<u64>,
    /// Wait before response headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    /// Streams: wait after the headers, before the first event.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_chunk_delay_ms: Option<u64>,
    /// Streams: abort the connection after this many events.
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_after_chunks: Option<usize>,
    /// Streams: pause between events (instead of `--chunk-interval-ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_interval_ms: Option<u64>,
    /// Content chunks of an answer (instead of `--chunks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    chunks: Option<usize>,
    /// Fail this share (0..=1) of requests, evenly spread, with `status` (default 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    fail_ratio: Option<f64>,
    /// Model requests seen since these defaults were set: they number requests for `fail_ratio`.
    #[serde(skip)]
    seen: AtomicU64,
}

impl Defaults {
    /// The defaults the command line starts with.
    pub(crate) fn from_options(options: &Options) -> Self {
        Defaults {
            status: options.status,
            delay_ms: options.delay_ms,
            ..Defaults::default()
        }
    }

    fn parse(body: &Bytes) -> Result<Self, String> {
        let defaults: Defaults = if body.iter().all(u8::is_ascii_whitespace) {
            Defaults::default()
        } else {
            serde_json::from_slice(body).map_err(|e| format!("bad behaviour: {e}"))?
        };
        if let Some(status) = defaults.status
            && !(200..=599).contains(&status)
        {
            return Err(format!(
                "bad behaviour: status {status} is not in 200..=599"
            ));
        }
        if let Some(ratio) = defaults.fail_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            return Err(format!("bad behaviour: fail_ratio {ratio} is not in 0..=1"));
        }
        Ok(defaults)
    }

    /// The status this model request fails with, if any. Numbers the request when a
    /// `fail_ratio` is set: request n fails when floor(n * ratio) != floor((n - 1) * ratio), so
    /// exactly that share of requests fails, spread evenly.
    fn failure(&self) -> Option<StatusCode> {
        let status = match self.fail_ratio {
            None => self.status?,
            Some(ratio) => {
                let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
                // The epsilon keeps e.g. 100 * 0.29 (28.999999999999996) at 29.
                let step = |n: u64| (n as f64 * ratio + 1e-9).floor() as u64;
                if step(n) == step(n - 1) {
                    return None;
                }
                self.status.unwrap_or(RATIO_STATUS)
            }
        };
        StatusCode::from_u16(status).ok()
    }
}

/// What one request does: the defaults, overridden by its `x-mock-*` headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Behaviour {
    pub(crate) status: Option<StatusCode>,
    pub(crate) retry_after_s: Option<u64>,
    pub(crate) delay: Duration,
    pub(crate) chunks: usize,
    pub(crate) chunk_interval: Duration,
    pub(crate) first_chunk_delay: Duration,
    pub(crate) reset_after_chunks: Option<usize>,
    pub(crate) end_delay: Duration,
}

impl Behaviour {
    /// The behaviour of a model request with these headers (which numbers it for `fail_ratio`).
    pub(crate) fn new(headers: &HeaderMap, defaults: &Defaults, options: &Options) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let millis = |name: &str, default: Option<u64>| {
            Duration::from_millis(header(name).or(default).unwrap_or(0))
        };
        let failure = defaults.failure();
        Behaviour {
            status: header("x-mock-status").map_or(failure, |status| {
                u16::try_from(status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
            }),
            retry_after_s: header("x-mock-retry-after-s").or(defaults.retry_after_s),
            delay: millis("x-mock-delay-ms", defaults.delay_ms),
            chunks: header("x-mock-chunks")
                .map(|c| usize::try_from(c).unwrap_or(MAX_CHUNKS))
                .or(defaults.chunks)
                .unwrap_or(options.chunks)
                .clamp(1, MAX_CHUNKS),
            chunk_interval: millis(
                "x-mock-chunk-interval-ms",
                defaults
                    .chunk_interval_ms
                    .or(Some(options.chunk_interval_ms)),
            ),
            first_chunk_delay: millis("x-mock-first-chunk-delay-ms", defaults.first_chunk_delay_ms),
            reset_after_chunks: header("x-mock-reset-after-chunks")
                .map(|c| usize::try_from(c).unwrap_or(usize::MAX))
                .or(defaults.reset_after_chunks),
            end_delay: millis("x-mock-end-delay-ms", None),
        }
    }
}

/// `GET /_mock/behaviour` (the current defaults), `POST /_mock/behaviour` (replaces them; `{}`
/// is normal) and `POST /_mock/behaviour/reset` (normal again); `None` for any other request.
pub(crate) fn control(
    method: &Method,
    path: &str,
    body: &Bytes,
    defaults: &ArcSwap<Defaults>,
) -> Option<Response<MockBody>> {
    match (method, path) {
        (&Method::GET, "/_mock/behaviour") => {}
        (&Method::POST, "/_mock/behaviour") => match Defaults::parse(body) {
            Ok(parsed) => defaults.store(Arc::new(parsed)),
            Err(message) => return Some(openai::error(StatusCode::BAD_REQUEST, &message)),
        },
        (&Method::POST, "/_mock/behaviour/reset") => defaults.store(Arc::default()),
        _ => return None,
    }
    let current = serde_json::to_value(&**defaults.load()).unwrap_or_default();
    Some(json_response(StatusCode::OK, &current))
}
