//! Gemini's `generateContent` and `streamGenerateContent?alt=sse` (on the Gemini API's
//! `/v1beta/models/{model}:…` and on Vertex AI's `…/publishers/google/models/{model}:…`): a
//! `GenerateContentResponse`, or a stream of them, and errors.
//!
//! A stream has one response per text piece, each with `usageMetadata` (`promptTokenCount` and
//! `totalTokenCount` only, until the last, which has `candidatesTokenCount` and the
//! `finishReason`); a tool call comes whole in one response. Events end in `\r\n\r\n`, as
//! Gemini's do.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::behaviour::Behaviour;
use crate::conversation::{Answer, Conversation};
use crate::journal::Journal;
use crate::{MockBody, json_response, stream};

/// The `responseId` of every answer.
const RESPONSE_ID: &str = "mock-response";

/// The `status` of an HTTP status, as Google's APIs name them.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        code if (400..500).contains(&code) => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

/// A Google error body: `{"error": {"code", "message", "status"}}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "status": status_name(status)}}),
    )
}

/// The vector the mock gives every text, in every format (OpenAI's too).
const VECTOR: [f32; 8] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

/// Gemini's `:batchEmbedContents` (`vertex` false: `{"embeddings": [{"values"}]}`, no token
/// counts) or Vertex AI's `:predict` (true: `{"predictions": [{"embeddings": {"values",
/// "statistics": {"token_count"}}}]}`, a token per four bytes of each text).
pub(crate) fn embed(body: &Bytes, vertex: bool) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let texts: Option<Vec<&str>> = if vertex {
        request["instances"]
            .as_array()
            .map(|all| all.iter().filter_map(|i| i["content"].as_str()).collect())
    } else {
        request["requests"].as_array().map(|all| {
            all.iter()
                .filter_map(|r| r["content"]["parts"][0]["text"].as_str())
                .collect()
        })
    };
    let Some(texts) = texts.filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "* BatchEmbedContentsRequest.requests: contents is not specified",
        );
    };
    let body = if vertex {
        let predictions: Vec<Value> = texts
            .iter()
            .map(|text| json!({"embeddings": {"values": VECTOR, "statistics": {"token_count": text.len().div_ceil(4).max(1), "truncated": false}}}))
            .collect();
        json!({"predictions": predictions})
    } else {
        let embeddings: Vec<Value> = texts.iter().map(|_| json!({"values": VECTOR})).collect();
        json!({"embeddings": embeddings})
    };
    json_response(StatusCode::OK, &body)
}

/// `…/models/{model}:generateContent` (`stream` false) or `:streamGenerateContent` (true, which
/// needs `alt=sse` in the query).
pub(crate) fn generate(
    body: &Bytes,
    model: &str,
    stream: bool,
    query: Option<&str>,
    behaviour: Behaviour,
    journal: Arc<Journal>,
) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    if !request.get("contents").is_some_and(Value::is_array) {
        return error(StatusCode::BAD_REQUEST, "contents is required");
    }
    if stream && !crate::route::query_has(query, "alt", "sse") {
        return error(
            StatusCode::BAD_REQUEST,
            "the mock streams only server-sent events: add alt=sse",
        );
    }
    let model = model.to_owned();
    let conversation = Conversation::gemini(&request);
    let prompt = conversation.prompt_tokens();
    let answer = Answer::new(conversation);
    let output = answer.output_tokens(behaviour.chunks);
    let full_usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output});
    let response = move |parts: Value, last: bool| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let usage = if last {
            candidate["finishReason"] = Value::from("STOP");
            full_usage.clone()
        } else {
            json!({"promptTokenCount": prompt, "totalTokenCount": prompt})
        };
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": RESPONSE_ID})
    };
    let call_part = |answer: &Answer| {
        answer
            .tool_call()
            .map(|call| json!([{"functionCall": {"name": call.name, "args": call.input}}]))
    };
    if !stream {
        let parts =
            call_part(&answer).unwrap_or_else(|| json!([{"text": answer.text(behaviour.chunks)}]));
        return json_response(StatusCode::OK, &response(parts, true));
    }
    stream::respond("text/event-stream", behaviour, journal, move || {
        if let Some(parts) = call_part(&answer) {
            return vec![stream::data_crlf(&response(parts, true))];
        }
        let mut pieces = answer.text_pieces(behaviour.chunks).peekable();
        let mut events = Vec::with_capacity(behaviour.chunks);
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            events.push(stream::data_crlf(&response(json!([{"text": piece}]), last)));
        }
        events
    })
}
