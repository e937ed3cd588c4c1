//! Merging what the upstreams answered into one answer for the caller.
//!
//! - [`initialize`]: capabilities, protocol version, server info and instructions, and the
//!   session state to seal.
//! - [`listing`]: `tools/list`, `prompts/list`, `resources/list` and
//!   `resources/templates/list` across upstreams, with prefixes, the tool policy and a
//!   cross-upstream cursor.
//!
//! An upstream that fails is left out of the merged answer; the failure is returned to the
//! proxy (to log and count) and also reported to the caller in the result's `_meta` under
//! [`META_UPSTREAM_ERRORS`], as `[{"server": <prefix>, "error": <text>}]`. A logging
//! notification was not chosen: it reaches the caller only if it set a log level and only on
//! an SSE response, while `_meta` travels with every result.

pub mod initialize;
pub mod listing;

use serde_json::{Value, json};

/// The `_meta` key under which failed upstreams are reported.
pub const META_UPSTREAM_ERRORS: &str = "tollgate/upstreamErrors";

/// An upstream that did not answer usefully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamFailure {
    /// The server's prefix.
    pub server: String,
    /// What went wrong, for the log and the caller.
    pub error: String,
}

impl UpstreamFailure {
    /// A failure of `server`.
    pub fn new(server: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            error: error.into(),
        }
    }
}

/// Adds `failures` to `result._meta` (nothing when there are none).
fn report_failures(result: &mut serde_json::Map<String, Value>, failures: &[UpstreamFailure]) {
    if failures.is_empty() {
        return;
    }
    let list: Vec<Value> = failures
        .iter()
        .map(|f| json!({"server": f.server, "error": f.error}))
        .collect();
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(META_UPSTREAM_ERRORS.into(), Value::Array(list));
    }
}
