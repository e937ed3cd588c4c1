//! The caller's API dialect, which decides the shape of every error Tollgate returns.

use bytes::Bytes;
use serde_json::json;

/// The API a caller speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's API (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`).
    OpenAI,
    /// OpenAI's Responses API (`/v1/responses`). Its errors have the shape of OpenAI's.
    OpenAIResponses,
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
    /// The dialect of a request path: Anthropic's under `/v1/messages`, OpenAI's Responses
    /// at `/v1/responses` and under it, else OpenAI's.
    pub fn of_path(path: &str) -> Dialect {
        if path.starts_with("/v1/messages") {
            Dialect::Anthropic
        } else if path == "/v1/responses" || path.starts_with("/v1/responses/") {
            Dialect::OpenAIResponses
        } else {
            Dialect::OpenAI
        }
    }

    /// An error body in this dialect. `code` is a stable machine-readable code such as
    /// `model_not_found`.
    pub fn error_body(self, kind: ErrorKind, code: &str, message: &str) -> Bytes {
        match self {
            Dialect::OpenAI | Dialect::OpenAIResponses => {
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
    ///
    /// For the Responses API this is an `error` event: its `type`, `code`, `message` and
    /// `param` are the API's error event, and an `error` object beside them, in OpenAI's error
    /// shape, is what the OpenAI SDKs raise on (openai-python raises an `APIError` for any
    /// event whose data has an `error`). It has no `sequence_number`: the event is written
    /// apart from the stream's encoder, and the SDKs raise before they read one.
    pub fn stream_error_event(self, code: &str, message: &str) -> Bytes {
        match self {
            Dialect::OpenAI => {
                let body = json!({"error": stream_error(code, message)});
                Bytes::from(format!("data: {body}\n\n"))
            }
            Dialect::OpenAIResponses => {
                let body = json!({
                    "type": "error",
                    "code": code,
                    "message": message,
                    "param": null,
                    "error": stream_error(code, message),
                });
                Bytes::from(format!("event: error\ndata: {body}\n\n"))
            }
            Dialect::Anthropic => {
                let body = anthropic_error(ErrorKind::Upstream, code, message);
                Bytes::from(format!("event: error\ndata: {body}\n\n"))
            }
        }
    }
}

/// OpenAI's error object for a stream that broke.
fn stream_error(code: &str, message: &str) -> serde_json::Value {
    json!({"message": message, "type": "api_error", "param": null, "code": code})
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

    #[test]
    fn responses_callers_get_openai_errors_and_an_error_event_their_sdk_raises_on() {
        for path in ["/v1/responses", "/v1/responses/", "/v1/responses/resp_1"] {
            assert_eq!(Dialect::of_path(path), Dialect::OpenAIResponses, "{path}");
        }
        assert_eq!(Dialect::of_path("/v1/responsesx"), Dialect::OpenAI);
        for kind in [ErrorKind::RateLimit, ErrorKind::Upstream] {
            assert_eq!(
                Dialect::OpenAIResponses.error_body(kind, "c", "m"),
                Dialect::OpenAI.error_body(kind, "c", "m")
            );
        }
        let event = Dialect::OpenAIResponses.stream_error_event("upstream_stream_error", "broke");
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .strip_prefix("event: error\ndata: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "upstream_stream_error");
        assert_eq!(value["message"], "broke");
        assert_eq!(value["error"]["message"], "broke");
        assert_eq!(value["error"]["type"], "api_error");
    }
}
