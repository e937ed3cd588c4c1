//! The caller's API dialect, which decides the shape of every error Tollgate returns.

use bytes::Bytes;
use serde_json::json;

/// The API a caller speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's API (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`).
    OpenAI,
    /// Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`).
    Anthropic,
}

/// What went wrong, in terms every dialect can express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (400).
    InvalidRequest,
    /// No or unknown credential (401).
    Authentication,
    /// The caller may not do this (403).
    Permission,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The request body is too large (413).
    TooLarge,
    /// A limit was reached (429).
    RateLimit,
    /// The upstream failed or could not be reached (502).
    Upstream,
    /// Nothing can serve the request right now (503).
    Unavailable,
    /// The upstream did not answer in time (504).
    Timeout,
    /// Tollgate itself failed (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind of error.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::TooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Upstream => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Internal => 500,
        }
    }
}

impl Dialect {
    /// The dialect of a request path: Anthropic's under `/v1/messages`, else OpenAI's.
    pub fn of_path(path: &str) -> Dialect {
        if path.starts_with("/v1/messages") {
            Dialect::Anthropic
        } else {
            Dialect::OpenAI
        }
    }

    /// An error body in this dialect. `code` is a stable machine-readable code such as
    /// `model_not_found`.
    pub fn error_body(self, kind: ErrorKind, code: &str, message: &str) -> Bytes {
        match self {
            Dialect::OpenAI => {
                let error_type = match kind {
                    ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::TooLarge => {
                        "invalid_request_error"
                    }
                    ErrorKind::Authentication => "authentication_error",
                    ErrorKind::Permission => "permission_error",
                    ErrorKind::RateLimit => "rate_limit_error",
                    ErrorKind::Upstream
                    | ErrorKind::Unavailable
                    | ErrorKind::Timeout
                    | ErrorKind::Internal => "api_error",
                };
                let body = json!({"error": {"message": message, "type": error_type, "param": null, "code": code}});
                Bytes::from(body.to_string())
            }
            Dialect::Anthropic => Bytes::from(anthropic_error(kind, code, message).to_string()),
        }
    }
}

/// Anthropic's error body. Its `type`s are fixed by kind; Tollgate's own code rides along in
/// `error.code`, which Anthropic's SDKs keep in the error's body.
fn anthropic_error(kind: ErrorKind, code: &str, message: &str) -> serde_json::Value {
    let error_type = match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::TooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::Upstream | ErrorKind::Timeout | ErrorKind::Internal => "api_error",
    };
    json!({"type": "error", "error": {"type": error_type, "message": message, "code": code}})
}

impl Dialect {
    /// A stream event that ends a stream which broke after it began, so that the caller's SDK
    /// raises an error instead of taking a truncated answer for a complete one.
    pub fn stream_error_event(self, code: &str, message: &str) -> Bytes {
        match self {
            Dialect::OpenAI => {
                let body = json!({"error": {"message": message, "type": "api_error", "param": null, "code": code}});
                Bytes::from(format!("data: {body}\n\n"))
            }
            Dialect::Anthropic => {
                let body = anthropic_error(ErrorKind::Upstream, code, message);
                Bytes::from(format!("event: error\ndata: {body}\n\n"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_errors_have_message_type_and_code() {
        let body =
            Dialect::OpenAI.error_body(ErrorKind::NotFound, "model_not_found", "no \"route\"");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["error"]["message"], "no \"route\"");
        assert_eq!(value["error"]["type"], "invalid_request_error");
        assert_eq!(value["error"]["code"], "model_not_found");
        assert_eq!(ErrorKind::NotFound.status(), 404);
    }

    #[test]
    fn anthropic_errors_have_its_shape() {
        assert_eq!(Dialect::of_path("/v1/messages"), Dialect::Anthropic);
        assert_eq!(Dialect::of_path("/v1/chat/completions"), Dialect::OpenAI);
        let body = Dialect::Anthropic.error_body(ErrorKind::RateLimit, "budget_exceeded", "no");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["error"]["type"], "rate_limit_error");
        assert_eq!(value["error"]["message"], "no");
        let event = Dialect::Anthropic.stream_error_event("upstream_stream_error", "broke");
        assert!(event.starts_with(b"event: error\ndata: {"));
    }

    #[test]
    fn openai_stream_errors_are_one_sse_event() {
        let event = Dialect::OpenAI.stream_error_event("upstream_stream_error", "broke");
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(value["error"]["code"], "upstream_stream_error");
    }
}
