//! JSON-RPC 2.0 messages as MCP uses them, and the error codes Tollgate answers with.
//!
//! A POST body holds exactly one message: a request, a notification, or a response (result or
//! error) to a request the server sent. Batches (a JSON array) were allowed by MCP 2025-03-26
//! only and removed in 2025-06-18; no current client sends them, and a batch would smuggle
//! several calls past per-message policy checks, so [`parse`] refuses them with
//! [`INVALID_REQUEST`].
//!
//! Messages are kept as [`serde_json::Value`] envelopes: `params` and `result` are passed on
//! untouched except for the few members the gateway rewrites, so fields of newer protocol
//! revisions or vendor extensions survive the trip.

use std::fmt;

use serde_json::{Map, Value};

/// Invalid JSON was received (JSON-RPC).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC message, or is a batch, or is too large (JSON-RPC).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not served by the gateway (JSON-RPC).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters: an unknown tool or prompt, a missing name, an invalid cursor
/// (JSON-RPC; MCP uses it for unknown tools and prompts).
pub const INVALID_PARAMS: i64 = -32602;
/// An internal error of the gateway (JSON-RPC).
pub const INTERNAL_ERROR: i64 = -32603;
/// A resource URI names no server of this session (MCP's code for "resource not found").
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// Tollgate: the caller may not use this tool, or an argument rule refuses the call. `data`
/// carries `{"tool": <caller's name>}` and, for argument rules, `{"rule": <index>}`.
pub const NOT_PERMITTED: i64 = -32050;
/// Tollgate: the server owning the tool, prompt or resource is not reachable or was not
/// initialized in this session. `data` carries `{"server": <prefix>}`.
pub const UPSTREAM_UNAVAILABLE: i64 = -32051;
/// Tollgate: the `Mcp-Session-Id` is invalid, expired, sealed with an unknown key, or
/// belongs to another caller. Sent with HTTP 404 so the client starts a new session.
pub const SESSION_INVALID: i64 = -32052;
/// A tool call refused by a BudgetPolicy that counts calls of the tool (`data` says which
/// policy and when to retry).
pub const TOOL_CALL_LIMITED: i64 = -32053;

/// A request id: MCP allows a string or an integer, never null.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestId {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(String),
}

impl RequestId {
    /// Reads an id from JSON: a string, or an integer that fits in `i64`.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Number(n) => n.as_i64().map(Self::Number),
            _ => None,
        }
    }

    /// The id as JSON.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Number(n) => Value::from(*n),
            Self::String(s) => Value::String(s.clone()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A request: it expects a response with the same id.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The request id.
    pub id: RequestId,
    /// The method, such as `tools/call`.
    pub method: String,
    /// The parameters: an object (or, rarely in JSON-RPC and never in MCP, an array).
    pub params: Option<Value>,
}

/// A notification: no response.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The method, such as `notifications/cancelled`.
    pub method: String,
    /// The parameters.
    pub params: Option<Value>,
}

/// A successful response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: RequestId,
    /// The result.
    pub result: Value,
}

/// The `error` member of an error response.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorObject {
    /// The error code; see the constants of this module.
    pub code: i64,
    /// A short, human-readable description.
    pub message: String,
    /// More detail, when there is any.
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with `code` and `message` and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// An error response carrying this error, for the request `id` (`None`: `"id": null`).
    pub fn into_response(self, id: Option<RequestId>) -> ErrorResponse {
        ErrorResponse { id, error: self }
    }

    fn to_value(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::String(self.message.clone()));
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        Value::Object(error)
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorObject {}

/// An error response.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    /// The id of the request this answers; `None` when it could not be read (serialized as
    /// `"id": null`, as JSON-RPC 2.0 requires).
    pub id: Option<RequestId>,
    /// The error.
    pub error: ErrorObject,
}

/// One JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A successful response.
    Response(Response),
    /// An error response.
    Error(ErrorResponse),
}

impl Message {
    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::Request(r) => Some(&r.method),
            Self::Notification(n) => Some(&n.method),
            Self::Response(_) | Self::Error(_) => None,
        }
    }

    /// The message as JSON.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("jsonrpc".into(), Value::from("2.0"));
        match self {
            Self::Request(r) => {
                m.insert("id".into(), r.id.to_value());
                m.insert("method".into(), Value::String(r.method.clone()));
                if let Some(params) = &r.params {
                    m.insert("params".into(), params.clone());
                }
            }
            Self::Notification(n) => {
                m.insert("method".into(), Value::String(n.method.clone()));
                if let Some(params) = &n.params {
                    m.insert("params".into(), params.clone());
                }
            }
            Self::Response(r) => {
                m.insert("id".into(), r.id.to_value());
                m.insert("result".into(), r.result.clone());
            }
            Self::Error(e) => {
                m.insert(
                    "id".into(),
                    e.id.as_ref().map_or(Value::Null, RequestId::to_value),
                );
                m.insert("error".into(), e.error.to_value());
            }
        }
        Value::Object(m)
    }

    /// The message as a JSON body.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a `Value` cannot fail.
        serde_json::to_vec(&self.to_value()).unwrap_or_default()
    }

    /// Reads one message from parsed JSON. Errors are ready to send back; they carry the
    /// request id whenever it could be read.
    pub fn from_value(value: Value) -> Result<Self, ErrorResponse> {
        let invalid = |id: Option<RequestId>, why: &str| {
            ErrorObject::new(INVALID_REQUEST, format!("invalid JSON-RPC message: {why}"))
                .into_response(id)
        };
        let mut object = match value {
            Value::Object(object) => object,
            Value::Array(_) => {
                return Err(ErrorObject::new(
                    INVALID_REQUEST,
                    "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): \
                     send one message per request",
                )
                .into_response(None));
            }
            _ => return Err(invalid(None, "not a JSON object")),
        };
        let id = match object.remove("id") {
            None => None,
            Some(raw) => match RequestId::from_value(&raw) {
                Some(id) => Some(Ok(id)),
                None => Some(Err(raw)),
            },
        };
        let readable_id = id.as_ref().and_then(|id| id.as_ref().ok().cloned());
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(readable_id, r#""jsonrpc" must be "2.0""#));
        }
        let params = object.remove("params");
        if params
            .as_ref()
            .is_some_and(|p| !p.is_object() && !p.is_array())
        {
            return Err(invalid(readable_id, r#""params" must be an object"#));
        }
        let result = object.remove("result");
        let error = object.remove("error");
        match (object.remove("method"), result, error) {
            (Some(Value::String(method)), None, None) => match id {
                None => Ok(Self::Notification(Notification { method, params })),
                Some(Ok(id)) => Ok(Self::Request(Request { id, method, params })),
                Some(Err(_)) => Err(invalid(
                    None,
                    r#""id" must be a string or an integer (not null)"#,
                )),
            },
            (Some(Value::String(_)), _, _) => Err(invalid(
                readable_id,
                "a request cannot carry \"result\" or \"error\"",
            )),
            (Some(_), _, _) => Err(invalid(readable_id, r#""method" must be a string"#)),
            (None, Some(_), Some(_)) => Err(invalid(
                readable_id,
                "a response cannot carry both \"result\" and \"error\"",
            )),
            (None, Some(result), None) => match id {
                Some(Ok(id)) => Ok(Self::Response(Response { id, result })),
                _ => Err(invalid(None, "a response needs a string or integer \"id\"")),
            },
            (None, None, Some(error)) => {
                let error = parse_error_object(error)
                    .ok_or_else(|| invalid(readable_id.clone(), "malformed \"error\" member"))?;
                match id {
                    None | Some(Ok(_)) => Ok(Self::Error(ErrorResponse {
                        id: readable_id,
                        error,
                    })),
                    // An error answering a request whose id could not be read.
                    Some(Err(Value::Null)) => Ok(Self::Error(ErrorResponse { id: None, error })),
                    Some(Err(_)) => Err(invalid(None, r#""id" must be a string or an integer"#)),
                }
            }
            (None, None, None) => Err(invalid(
                readable_id,
                r#"no "method", "result" or "error" member"#,
            )),
        }
    }
}

fn parse_error_object(value: Value) -> Option<ErrorObject> {
    let Value::Object(mut object) = value else {
        return None;
    };
    let code = object.get("code")?.as_i64()?;
    let Value::String(message) = object.remove("message")? else {
        return None;
    };
    Some(ErrorObject {
        code,
        message,
        data: object.remove("data"),
    })
}

/// Parses one POST body into a message.
///
/// A body longer than `max_bytes` is refused before it is parsed ([`INVALID_REQUEST`], with
/// `data: {"maxBytes": max_bytes}`; the proxy should also stop reading at that size and
/// answer HTTP 413). Malformed JSON gets [`PARSE_ERROR`]; a batch or anything that is not a
/// JSON-RPC 2.0 message gets [`INVALID_REQUEST`].
pub fn parse(body: &[u8], max_bytes: usize) -> Result<Message, ErrorResponse> {
    if body.len() > max_bytes {
        return Err(ErrorObject::new(
            INVALID_REQUEST,
            format!(
                "message of {} bytes is over the limit of {max_bytes} bytes",
                body.len()
            ),
        )
        .with_data(serde_json::json!({ "maxBytes": max_bytes }))
        .into_response(None));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ErrorObject::new(PARSE_ERROR, format!("invalid JSON: {e}")).into_response(None)
    })?;
    Message::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_ok(body: &str) -> Message {
        parse(body.as_bytes(), 1 << 20).expect("parses")
    }

    fn parse_err(body: &str) -> ErrorResponse {
        parse(body.as_bytes(), 1 << 20).expect_err("refused")
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            parse_ok(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Message::Request(Request {
                id: RequestId::Number(1),
                method: "tools/list".into(),
                params: None,
            })
        );
        assert_eq!(
            parse_ok(r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#),
            Message::Notification(Notification {
                method: "notifications/initialized".into(),
                params: Some(json!({})),
            })
        );
        assert_eq!(
            parse_ok(r#"{"jsonrpc":"2.0","id":"a","result":{"roots":[]}}"#),
            Message::Response(Response {
                id: RequestId::String("a".into()),
                result: json!({"roots": []}),
            })
        );
        assert_eq!(
            parse_ok(r#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}"#),
            Message::Error(ErrorResponse {
                id: Some(RequestId::String("a".into())),
                error: ErrorObject::new(-1, "no"),
            })
        );
    }

    #[test]
    fn round_trips_through_json() {
        for body in [
            json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{}}}),
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":2}}),
            json!({"jsonrpc":"2.0","id":"s","result":{}}),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad","data":{"x":1}}}),
        ] {
            let message = Message::from_value(body.clone()).expect("valid");
            assert_eq!(message.to_value(), body);
            let bytes = message.to_bytes();
            assert_eq!(parse(&bytes, bytes.len()).expect("reparses"), message);
        }
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        let e = parse_err("{not json");
        assert_eq!(e.error.code, PARSE_ERROR);
        assert_eq!(e.id, None);
        assert_eq!(parse_err("").error.code, PARSE_ERROR);
    }

    #[test]
    fn batches_are_refused() {
        let e = parse_err(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert_eq!(e.error.code, INVALID_REQUEST);
        assert!(e.error.message.contains("batches are not supported"));
        assert_eq!(parse_err("[]").error.code, INVALID_REQUEST);
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let e = parse(body, body.len() - 1).expect_err("too large");
        assert_eq!(e.error.code, INVALID_REQUEST);
        assert_eq!(e.error.data, Some(json!({"maxBytes": body.len() - 1})));
        assert!(parse(body, body.len()).is_ok());
        // Not even parsed: garbage over the limit is "too large", not a parse error.
        assert_eq!(parse(b"xxxx", 3).expect_err("").error.code, INVALID_REQUEST);
    }

    #[test]
    fn invalid_messages_are_refused_with_the_id_when_readable() {
        let cases = [
            (r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, Some(3)),
            (r#"{"id":3,"method":"ping"}"#, Some(3)),
            (r#"{"jsonrpc":"2.0","id":3,"method":5}"#, Some(3)),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":"x"}"#,
                Some(3),
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":"ping","result":{}}"#,
                Some(3),
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"result":{},"error":{}}"#,
                Some(3),
            ),
            (r#"{"jsonrpc":"2.0","id":3}"#, Some(3)),
            (
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":"x","message":"m"}}"#,
                Some(3),
            ),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, None),
            (r#"{"jsonrpc":"2.0","result":{}}"#, None),
            ("42", None),
            (r#""text""#, None),
            ("null", None),
        ];
        for (body, id) in cases {
            let e = parse_err(body);
            assert_eq!(e.error.code, INVALID_REQUEST, "{body}");
            assert_eq!(e.id, id.map(RequestId::Number), "{body}");
        }
    }

    #[test]
    fn error_responses_serialize_null_ids() {
        let e = ErrorObject::new(METHOD_NOT_FOUND, "no such method").into_response(None);
        assert_eq!(
            Message::Error(e).to_value(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"no such method"}})
        );
    }

    #[test]
    fn tollgate_codes_are_in_the_server_range_and_distinct() {
        let ours = [NOT_PERMITTED, UPSTREAM_UNAVAILABLE, SESSION_INVALID];
        for code in ours {
            assert!((-32099..=-32000).contains(&code));
            // Codes already given meaning by MCP or its SDKs.
            assert!(![-32000, -32001, -32002, -32042].contains(&code));
        }
        assert_ne!(ours[0], ours[1]);
        assert_ne!(ours[1], ours[2]);
    }
}
