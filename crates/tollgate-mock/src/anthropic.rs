//! Anthropic's Messages API: `POST /v1/messages`, and Vertex AI's `rawPredict` and
//! `streamRawPredict` for Anthropic models (the model in the path, `anthropic_version` in the
//! body): a whole `message`, or its stream of named server-sent events, and errors.
//!
//! A stream is `message_start` (the message with no content, `usage.input_tokens` and
//! `output_tokens: 1`), `content_block_start`, `ping`, a `content_block_delta` per piece
//! (`text_delta`, or `input_json_delta` for a tool call's input), `content_block_stop`,
//! `message_delta` (`stop_reason`, `usage.output_tokens`, the total) and `message_stop`.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::behaviour::Behaviour;
use crate::conversation::{Answer, Conversation};
use crate::journal::Journal;
use crate::{MockBody, json_response, stream};

/// The id of the message the mock answers with.
const MESSAGE_ID: &str = "msg_mock";
/// The id of the tool call the mock makes.
const TOOL_USE_ID: &str = "toolu_mock";

/// Where the request came: `POST /v1/messages`, or Vertex AI's paths for this model.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Endpoint<'a> {
    /// `POST /v1/messages`: the model in the body, an `anthropic-version` header.
    Messages,
    /// Vertex AI's `:rawPredict` (`stream: false`) or `:streamRawPredict` (`stream: true`) for
    /// this model: no model in the body, `anthropic_version` in it.
    Vertex { model: &'a str, stream: bool },
}

/// The error `type` of a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        code if (400..500).contains(&code) => "invalid_request_error",
        _ => "api_error",
    }
}

/// An Anthropic error body: `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": error_type(status), "message": message}}),
    )
}

/// What a request lacks or has too much of, as Anthropic would say it; `None` when it is fine.
fn invalid(request: &Value, headers: &HeaderMap, endpoint: Endpoint<'_>) -> Option<&'static str> {
    match endpoint {
        Endpoint::Messages if !headers.contains_key("anthropic-version") => {
            return Some("anthropic-version: header is required");
        }
        Endpoint::Messages if !request.get("model").is_some_and(Value::is_string) => {
            return Some("model: Field required");
        }
        Endpoint::Vertex { .. }
            if !request
                .get("anthropic_version")
                .is_some_and(Value::is_string) =>
        {
            return Some("anthropic_version: Field required");
        }
        Endpoint::Vertex { .. } if request.get("model").is_some() => {
            return Some("model: Extra inputs are not permitted");
        }
        _ => {}
    }
    if !request.get("max_tokens").is_some_and(Value::is_u64) {
        return Some("max_tokens: Field required");
    }
    if !request.get("messages").is_some_and(Value::is_array) {
        return Some("messages: Field required");
    }
    None
}

/// `POST /v1/messages/count_tokens`: the prompt tokens the mock would count for the same
/// request to `/v1/messages` (`max_tokens` is not needed).
pub(crate) fn count_tokens(body: &Bytes, headers: &HeaderMap) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    if !headers.contains_key("anthropic-version") {
        return error(
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        );
    }
    if !request.get("model").is_some_and(Value::is_string)
        || !request.get("messages").is_some_and(Value::is_array)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "model and messages: Field required",
        );
    }
    let input_tokens = Conversation::anthropic(&request).prompt_tokens();
    json_response(StatusCode::OK, &json!({"input_tokens": input_tokens}))
}

/// A Messages request, on either endpoint.
pub(crate) fn messages(
    body: &Bytes,
    headers: &HeaderMap,
    endpoint: Endpoint<'_>,
    behaviour: Behaviour,
    journal: Arc<Journal>,
) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    if let Some(message) = invalid(&request, headers, endpoint) {
        return error(StatusCode::BAD_REQUEST, message);
    }
    let (model, stream_path) = match endpoint {
        Endpoint::Messages => (request.get("model").and_then(Value::as_str), false),
        Endpoint::Vertex { model, stream } => (Some(model), stream),
    };
    let model = model.unwrap_or("mock").to_owned();
    let conversation = Conversation::anthropic(&request);
    let input_tokens = conversation.prompt_tokens();
    let answer = Answer::new(conversation);
    let output_tokens = answer.output_tokens(behaviour.chunks);
    let stop_reason = match answer.tool_call() {
        Some(_) => "tool_use",
        None => "end_turn",
    };
    let usage = |output_tokens: u64| json!({"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output_tokens});
    if !stream_path && request.get("stream").and_then(Value::as_bool) != Some(true) {
        let content = match answer.tool_call() {
            Some(call) => {
                json!([{"type": "tool_use", "id": TOOL_USE_ID, "name": call.name, "input": call.input}])
            }
            None => json!([{"type": "text", "text": answer.text(behaviour.chunks)}]),
        };
        return json_response(
            StatusCode::OK,
            &json!({
                "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": null,
                "usage": usage(output_tokens),
            }),
        );
    }
    let started = usage(1);
    stream::respond("text/event-stream", behaviour, journal, move || {
        let event = |data: Value| {
            let name = data["type"].as_str().unwrap_or_default().to_owned();
            stream::named(&name, &data)
        };
        let mut events = Vec::with_capacity(behaviour.chunks + 6);
        events.push(event(json!({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": started,
        }})));
        let block = match answer.tool_call() {
            Some(call) => {
                json!({"type": "tool_use", "id": TOOL_USE_ID, "name": call.name, "input": {}})
            }
            None => json!({"type": "text", "text": ""}),
        };
        events.push(event(
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ));
        events.push(event(json!({"type": "ping"})));
        let delta =
            |delta: Value| json!({"type": "content_block_delta", "index": 0, "delta": delta});
        match answer.tool_call() {
            Some(call) => {
                for piece in call.pieces() {
                    events.push(event(delta(
                        json!({"type": "input_json_delta", "partial_json": piece}),
                    )));
                }
            }
            None => {
                for piece in answer.text_pieces(behaviour.chunks) {
                    events.push(event(delta(json!({"type": "text_delta", "text": piece}))));
                }
            }
        }
        events.push(event(json!({"type": "content_block_stop", "index": 0})));
        events.push(event(json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens},
        })));
        events.push(event(json!({"type": "message_stop"})));
        events
    })
}
