//! OpenAI-shaped answers: chat completions (whole and streamed), embeddings, models, errors.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::{Behaviour, MockBody};

const REPLY_WORDS: [&str; 8] = [
    "Hello",
    " from",
    " the",
    " mock",
    " provider",
    ".",
    " How",
    " can I help?",
];

fn json_response(status: StatusCode, body: &Value) -> Response<MockBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    response
}

/// An OpenAI error body with the given status.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": "mock_error", "param": null, "code": status.as_u16().to_string()}}),
    )
}

/// A rough token count: one per four characters of every string in the messages.
fn prompt_tokens(request: &Value) -> u64 {
    fn chars(value: &Value) -> usize {
        match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(chars).sum(),
            Value::Object(map) => map.values().map(chars).sum(),
            _ => 0,
        }
    }
    let source = request
        .get("messages")
        .or_else(|| request.get("input"))
        .unwrap_or(&Value::Null);
    (chars(source) as u64).div_ceil(4).max(1)
}

/// `POST /v1/chat/completions`.
pub(crate) fn chat(
    body: &Bytes,
    behaviour: Behaviour,
    journal: Arc<Journal>,
) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let usage = json!({"prompt_tokens": prompt_tokens(&request), "completion_tokens": behaviour.chunks, "total_tokens": prompt_tokens(&request) + behaviour.chunks as u64});
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let content: String = (0..behaviour.chunks)
            .map(|i| REPLY_WORDS[i % REPLY_WORDS.len()])
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": usage,
            }),
        );
    }
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    journal.streams_started.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let chunk = |choices: Value, usage: Option<&Value>| {
            let mut object = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": choices});
            if include_usage {
                object["usage"] = usage.cloned().unwrap_or(Value::Null);
            }
            Bytes::from(format!("data: {object}\n\n"))
        };
        let mut events = Vec::with_capacity(behaviour.chunks + 3);
        for i in 0..behaviour.chunks {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": REPLY_WORDS[0]})
            } else {
                json!({"content": REPLY_WORDS[i % REPLY_WORDS.len()]})
            };
            events.push(chunk(
                json!([{"index": 0, "delta": delta, "finish_reason": null}]),
                None,
            ));
        }
        events.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            None,
        ));
        if include_usage {
            events.push(chunk(json!([]), Some(&usage)));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        for (i, event) in events.into_iter().enumerate() {
            if i > 0 && !behaviour.chunk_interval.is_zero() {
                tokio::time::sleep(behaviour.chunk_interval).await;
            }
            if tx.send(Ok(Frame::data(event))).await.is_err() {
                journal.streams_aborted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if !behaviour.end_delay.is_zero() {
            tokio::time::sleep(behaviour.end_delay).await;
        }
        journal.streams_completed.fetch_add(1, Ordering::Relaxed);
    });
    let mut response = Response::new(StreamBody::new(tokio_stream_from(rx)).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/event-stream".parse().expect("valid"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-cache".parse().expect("valid"));
    response
}

/// Adapts a channel receiver into a stream of frames.
fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// `POST /v1/embeddings`: one small vector per input.
pub(crate) fn embeddings(body: &Bytes) -> Response<MockBody> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let inputs = match request.get("input") {
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}))
        .collect();
    let tokens = prompt_tokens(&request);
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": request.get("model"), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// `GET /v1/models`.
pub(crate) fn models() -> Response<MockBody> {
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "mock"}]}),
    )
}
