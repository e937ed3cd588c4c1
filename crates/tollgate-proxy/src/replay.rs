//! `tollgate replay`: finds a request whose bodies the audit log captured and sends it through
//! a gateway again, to reproduce what happened. The caller's credential was never captured, so
//! the replay authenticates with a key given for it.

use bytes::Bytes;
use http_body_util::Full;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::upstream::UpstreamClients;

/// How long the gateway may take to start answering a replay.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request as the audit log captured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    /// Its method.
    pub method: String,
    /// Its path.
    pub path: String,
    /// The caller's headers, credentials removed.
    pub headers: BTreeMap<String, String>,
    /// Its body.
    pub body: String,
}

/// Why a request cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log cannot be read.
    #[error("cannot read {file}: {reason}")]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// What failed.
        reason: String,
    },
    /// No record has that id.
    #[error("no request {0} in the audit log")]
    NotFound(String),
    /// The record has no captured body (capture was off).
    #[error(
        "request {0} was recorded without its body: start the gateway with --audit-capture-bodies"
    )]
    NotCaptured(String),
    /// The body was longer than capture kept.
    #[error(
        "request {0}'s body was cut off at capture (raise --audit-capture-max-bytes): it cannot be replayed as it was"
    )]
    Truncated(String),
    /// Sending failed.
    #[error("cannot send the replay: {0}")]
    Send(String),
}

/// Finds request `id` in the audit log `files` (the newest match wins).
pub fn find_captured(files: &[PathBuf], id: &str) -> Result<CapturedRequest, ReplayError> {
    let mut found = None;
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| ReplayError::Unreadable {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let needle = format!("\"request_id\":{}", serde_json::Value::from(id));
        for line in text.lines().filter(|line| line.contains(&needle)) {
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(line) {
                found = Some(record);
            }
        }
    }
    let record = found.ok_or_else(|| ReplayError::NotFound(id.to_string()))?;
    let capture = record
        .get("capture")
        .filter(|c| c.is_object())
        .ok_or_else(|| ReplayError::NotCaptured(id.to_string()))?;
    if capture["request_body"]["truncated"] == true {
        return Err(ReplayError::Truncated(id.to_string()));
    }
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let headers = capture["request_headers"]
        .as_object()
        .map(|headers| headers.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    Ok(CapturedRequest {
        method: text(&record["method"]),
        path: text(&record["path"]),
        headers,
        body: text(&capture["request_body"]["text"]),
    })
}

/// Sends `request` to the gateway at `base` (`http://127.0.0.1:8080`) as the holder of
/// `api_key`; the answer's body streams as the gateway sends it.
pub async fn send(
    request: &CapturedRequest,
    base: &str,
    api_key: &str,
) -> Result<http::Response<hyper::body::Incoming>, ReplayError> {
    let failed = |e: &dyn std::fmt::Display| ReplayError::Send(e.to_string());
    let url = format!("{}{}", base.trim_end_matches('/'), request.path);
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(&url);
    // A replay is a new request: its own id and trace.
    for (name, value) in request
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "traceparent" | "tracestate"))
    {
        builder = builder.header(name, value);
    }
    let outgoing = builder
        .header(http::header::AUTHORIZATION, format!("Bearer {api_key}"))
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| failed(&e))?;
    let client = UpstreamClients::default().get(CONNECT_TIMEOUT);
    client.request(outgoing).await.map_err(|e| failed(&e))
}
