//! OpenAI-shaped answers: chat completions (whole and streamed), embeddings, models, errors.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::behaviour::Behaviour;
use crate::journal::Journal;
use crate::{MockBody, full};

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

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<MockBody> {
    let mut response = Response::new(full(body.to_string()));
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
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(4);
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
        let reset_after = behaviour.reset_after_chunks.map(|n| n.min(events.len()));
        events.truncate(reset_after.unwrap_or(usize::MAX));
        for (i, event) in events.into_iter().enumerate() {
            let pause = if i == 0 {
                behaviour.first_chunk_delay
            } else {
                behaviour.chunk_interval
            };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if tx.send(Ok(Frame::data(event))).await.is_err() {
                journal.streams_aborted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if reset_after.is_some() {
            // A body error makes hyper abort the connection (HTTP/2: reset the stream) without
            // ending the body, so the client sees a broken stream rather than a clean end.
            let reset = io::Error::new(io::ErrorKind::ConnectionReset, "told to reset the stream");
            let counter = match tx.send(Err(reset)).await {
                Ok(()) => &journal.streams_reset,
                Err(_) => &journal.streams_aborted,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return;
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
    rx: mpsc::Receiver<Result<Frame<Bytes>, io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        if item.is_err() {
            // Pending before the error, so that hyper sends the events before it aborts: HTTP/1
            // flushes what it buffered when the body is pending, not when it fails; HTTP/2
            // drops a stream's queued frames when it resets it, so give them a moment to go.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((item, rx))
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
