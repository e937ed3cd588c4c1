//! Bedrock's Converse (`POST /model/{modelId}/converse`, JSON) and ConverseStream
//! (`POST /model/{modelId}/converse-stream`, AWS event-stream frames, see [`crate::eventstream`]),
//! and errors (`{"message"}` with an `x-amzn-errortype` header). SigV4 signatures are not
//! checked; the journal keeps the `authorization` and `x-amz-date` headers for tests to see.
//!
//! A stream is `messageStart`, for a tool call a `contentBlockStart` (`toolUse` id and name),
//! a `contentBlockDelta` per piece (`text`, or `toolUse.input` for a tool call), then
//! `contentBlockStop`, `messageStop` (`stopReason`) and `metadata` (`usage`, `metrics`). Like
//! the service's, every payload carries a `p` padding field, which readers ignore.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::behaviour::Behaviour;
use crate::conversation::{Answer, Conversation};
use crate::journal::Journal;
use crate::{MockBody, eventstream, json_response, stream};

/// The id of the tool call the mock makes.
const TOOL_USE_ID: &str = "tooluse_mock";
/// The request id header of every answer.
const REQUEST_ID: &str = "mock-request";
/// The padding field of event payloads.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0";

/// The exception name of a status, as Bedrock names them.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        code if (400..500).contains(&code) => "ValidationException",
        _ => "InternalServerException",
    }
}

/// A Bedrock error: `{"message"}`, the exception in `x-amzn-errortype` (with the service's
/// `:…` suffix, which readers strip).
pub(crate) fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    let mut response = json_response(status, &json!({"message": message}));
    let kind = format!(
        "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        error_type(status)
    );
    let headers = response.headers_mut();
    headers.insert("x-amzn-errortype", kind.parse().expect("valid"));
    headers.insert("x-amzn-requestid", REQUEST_ID.parse().expect("valid"));
    response
}

/// Converse (`stream` false) or ConverseStream (true).
pub(crate) fn converse(
    body: &Bytes,
    stream: bool,
    behaviour: Behaviour,
    journal: Arc<Journal>,
) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    if !request.get("messages").is_some_and(Value::is_array) {
        return error(
            StatusCode::BAD_REQUEST,
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        );
    }
    let conversation = Conversation::bedrock(&request);
    let input = conversation.prompt_tokens();
    let answer = Answer::new(conversation);
    let output = answer.output_tokens(behaviour.chunks);
    let usage =
        json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    // What the mock waited before answering.
    let metrics = json!({"latencyMs": behaviour.delay.as_millis() as u64});
    let stop_reason = match answer.tool_call() {
        Some(_) => "tool_use",
        None => "end_turn",
    };
    let mut response = if !stream {
        let content = match answer.tool_call() {
            Some(call) => {
                json!([{"toolUse": {"toolUseId": TOOL_USE_ID, "name": call.name, "input": call.input}}])
            }
            None => json!([{"text": answer.text(behaviour.chunks)}]),
        };
        json_response(
            StatusCode::OK,
            &json!({
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop_reason, "usage": usage, "metrics": metrics,
            }),
        )
    } else {
        stream::respond(
            "application/vnd.amazon.eventstream",
            behaviour,
            journal,
            move || {
                let event = |kind: &str, mut payload: Value| {
                    payload["p"] = Value::from(PADDING);
                    eventstream::event(kind, payload.to_string().as_bytes())
                };
                let mut events = Vec::with_capacity(behaviour.chunks + 5);
                events.push(event("messageStart", json!({"role": "assistant"})));
                let delta = |delta: Value| json!({"contentBlockIndex": 0, "delta": delta});
                match answer.tool_call() {
                    Some(call) => {
                        events.push(event(
                            "contentBlockStart",
                            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": TOOL_USE_ID, "name": call.name}}}),
                        ));
                        for piece in call.pieces() {
                            events.push(event(
                                "contentBlockDelta",
                                delta(json!({"toolUse": {"input": piece}})),
                            ));
                        }
                    }
                    None => {
                        for piece in answer.text_pieces(behaviour.chunks) {
                            events.push(event("contentBlockDelta", delta(json!({"text": piece}))));
                        }
                    }
                }
                events.push(event("contentBlockStop", json!({"contentBlockIndex": 0})));
                events.push(event("messageStop", json!({"stopReason": stop_reason})));
                events.push(event(
                    "metadata",
                    json!({"usage": usage, "metrics": metrics}),
                ));
                events
            },
        )
    };
    response
        .headers_mut()
        .insert("x-amzn-requestid", REQUEST_ID.parse().expect("valid"));
    response
}
