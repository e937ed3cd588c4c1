//! The AI API dialects Tollgate speaks: what a request asks for, how to rewrite it for an
//! upstream, how to read usage from a response or a stream, and how to say "no" in the
//! caller's own dialect.
//!
//! Everything here is pure (bytes in, bytes out, no I/O), so it is golden-tested and fuzzed
//! on its own, and the proxy stays a thin layer of plumbing around it.

pub mod anthropic;
pub mod bedrock;
pub mod chat;
mod dialect;
pub mod embeddings;
pub mod gemini;
pub mod openai;
mod sse;
mod tokens;
mod translate;
mod usage;

pub use dialect::{Dialect, ErrorKind};
pub use sse::{SseEvents, data_of as sse_data};
pub use tokens::Tokenizer;
pub use translate::WireFormat;
pub use usage::{Usage, reported_finish_reason};

/// Why a request body cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not valid JSON, or not a JSON object.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// A required field is absent.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong type or value.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}
