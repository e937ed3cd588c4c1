//! OpenAI-shaped answers: chat completions (whole and streamed, also on Azure OpenAI's
//! deployment paths), embeddings, models, errors.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::behaviour::Behaviour;
use crate::conversation::{Answer, Conversation};
use crate::journal::Journal;
use crate::{MockBody, json_response, stream};

/// The id of the tool call the mock makes.
const CALL_ID: &str = "call_mock";

/// An OpenAI error body with the given status.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": "mock_error", "param": null, "code": status.as_u16().to_string()}}),
    )
}

/// `POST /v1/chat/completions`, and Azure's `POST /openai/deployments/{deployment}/chat/completions`
/// (the answer's model is then the deployment).
pub(crate) fn chat(
    body: &Bytes,
    deployment: Option<&str>,
    behaviour: Behaviour,
    journal: Arc<Journal>,
) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let model = deployment
        .or_else(|| request.get("model").and_then(Value::as_str))
        .unwrap_or("mock")
        .to_string();
    let conversation = Conversation::openai(&request);
    let prompt_tokens = conversation.prompt_tokens();
    let answer = Answer::new(conversation);
    let completion_tokens = answer.output_tokens(behaviour.chunks);
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let (message, finish_reason) = match answer.tool_call() {
            Some(call) => (
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": CALL_ID, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]}),
                "tool_calls",
            ),
            None => (
                json!({"role": "assistant", "content": answer.text(behaviour.chunks)}),
                "stop",
            ),
        };
        return json_response(
            StatusCode::OK,
            &json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                "usage": usage,
            }),
        );
    }
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    stream::respond("text/event-stream", behaviour, journal, move || {
        let chunk = |choices: Value, usage: Option<&Value>| {
            let mut object = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": choices});
            if include_usage {
                object["usage"] = usage.cloned().unwrap_or(Value::Null);
            }
            stream::data(&object)
        };
        let delta = |delta: Value| json!([{"index": 0, "delta": delta, "finish_reason": null}]);
        let mut events = Vec::with_capacity(behaviour.chunks + 4);
        let finish_reason = match answer.tool_call() {
            Some(call) => {
                events.push(chunk(
                    delta(json!({"role": "assistant", "content": null, "tool_calls": [
                        {"index": 0, "id": CALL_ID, "type": "function", "function": {"name": call.name, "arguments": ""}}]})),
                    None,
                ));
                for piece in call.pieces() {
                    events.push(chunk(
                        delta(
                            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                        ),
                        None,
                    ));
                }
                "tool_calls"
            }
            None => {
                for (i, piece) in answer.text_pieces(behaviour.chunks).enumerate() {
                    let content = if i == 0 {
                        json!({"role": "assistant", "content": piece})
                    } else {
                        json!({"content": piece})
                    };
                    events.push(chunk(delta(content), None));
                }
                "stop"
            }
        };
        events.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish_reason}]),
            None,
        ));
        if include_usage {
            events.push(chunk(json!([]), Some(&usage)));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events
    })
}

/// `POST /v1/embeddings` (and Azure's deployment path): one small vector per input.
pub(crate) fn embeddings(body: &Bytes, deployment: Option<&str>) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    /// One token per four bytes of the input's strings.
    fn chars(value: &Value) -> usize {
        match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(chars).sum(),
            _ => 0,
        }
    }
    let inputs = match request.get("input") {
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}))
        .collect();
    let tokens = (request.get("input").map_or(0, chars) as u64)
        .div_ceil(4)
        .max(1);
    let model = deployment.map_or_else(
        || request.get("model").cloned().unwrap_or(Value::Null),
        Value::from,
    );
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// `GET /v1/models`.
pub(crate) fn models() -> Response<MockBody> {
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "mock"}]}),
    )
}
