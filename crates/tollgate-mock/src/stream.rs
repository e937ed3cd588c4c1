//! Streamed answers, whatever their format: the events, sent one by one as the behaviour says
//! (`first_chunk_delay`, `chunk_interval`, `reset_after_chunks`, `end_delay`), with the stream
//! counters of the journal kept.

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::MockBody;
use crate::behaviour::Behaviour;
use crate::journal::Journal;

/// A `200` streaming the events `build` makes (built once the headers are on their way), each
/// event a body frame.
pub(crate) fn respond(
    content_type: &'static str,
    behaviour: Behaviour,
    journal: Arc<Journal>,
    build: impl FnOnce() -> Vec<Bytes> + Send + 'static,
) -> Response<MockBody> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(4);
    journal.streams_started.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let mut events = build();
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
    let mut response = Response::new(StreamBody::new(stream_from(rx)).boxed());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type.parse().expect("valid"));
    headers.insert(header::CACHE_CONTROL, "no-cache".parse().expect("valid"));
    response
}

/// Adapts a channel receiver into a stream of frames.
fn stream_from(
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

/// A server-sent event with only data, lines ending in `\n` (OpenAI).
pub(crate) fn data(data: &impl std::fmt::Display) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// A named server-sent event (Anthropic).
pub(crate) fn named(event: &str, data: &impl std::fmt::Display) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// A server-sent event with only data, lines ending in `\r\n` as Gemini's `alt=sse` has them.
pub(crate) fn data_crlf(data: &impl std::fmt::Display) -> Bytes {
    Bytes::from(format!("data: {data}\r\n\r\n"))
}
