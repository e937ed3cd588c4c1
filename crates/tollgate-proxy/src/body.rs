//! Response bodies: a complete body Tollgate wrote, or the upstream's body passing through
//! frame by frame while usage is read from it. An upstream body that breaks, or outlives the
//! rule's request timeout, after it began ends with an error event in the caller's dialect
//! when it is a stream (a plain body can only be cut), and counts against the backend.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use tokio::time::{Instant, Sleep};
use tollgate_config::OutlierDetection;
use tollgate_llm::openai::ChatStream;
use tollgate_llm::{Dialect, WireFormat};

use crate::exchange::SharedExchange;
use crate::health::{BackendState, InFlight};
use crate::stream_translation::StreamTranslation;

/// Errors a body can end with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest non-streamed response whose usage is read; larger ones pass through unread.
const MAX_READ_RESPONSE: usize = 16 << 20;

/// The most bytes of stream events that were ready together and go to the caller as one
/// frame (see [`UpstreamBody::poll_batched`]).
const MAX_BATCH_BYTES: usize = 64 << 10;
/// The most upstream frames gathered into one frame to the caller.
const MAX_BATCH_FRAMES: usize = 64;

/// A response body on its way to the caller.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Upstream(Box<UpstreamBody>),
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

/// The backend a response comes from: counted in flight until the body ends, and told when
/// the body breaks.
#[derive(Debug)]
pub(crate) struct BackendLease {
    pub(crate) state: Arc<BackendState>,
    pub(crate) outlier: OutlierDetection,
    pub(crate) _in_flight: InFlight,
}

/// Everything an upstream body needs.
#[derive(Debug)]
pub(crate) struct UpstreamParts {
    /// The upstream's body.
    pub(crate) incoming: Incoming,
    /// A first frame already read from `incoming` (to be sure a stream really started).
    pub(crate) first: Option<Bytes>,
    /// Where usage goes.
    pub(crate) exchange: SharedExchange,
    /// How the body is read on its way.
    pub(crate) reading: Reading,
    /// When the rule's request timeout ends the body.
    pub(crate) deadline: Option<Instant>,
    /// The caller's dialect, for a closing error event.
    pub(crate) dialect: Dialect,
    /// The backend the body comes from.
    pub(crate) backend: BackendLease,
}

/// How an upstream body is read as it passes.
#[derive(Debug)]
pub(crate) enum Reading {
    /// A complete body in this format, read for usage at its end.
    Whole(WireFormat),
    /// An OpenAI chat stream passed through; `hide_usage`: Tollgate asked for the usage the
    /// caller did not (see [`ChatStream::new`]).
    OpenAIStream {
        /// Whether to hide the usage Tollgate asked for.
        hide_usage: bool,
    },
    /// Any other stream: decoded as it passes, re-encoded or passed on unchanged.
    Decoded(Box<StreamTranslation>),
}

impl ProxyBody {
    /// A body Tollgate wrote in full.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Full(Some(bytes.into())),
        }
    }

    /// A body Tollgate writes as it goes: the chunks sent to the channel, until every sender
    /// is gone. The channel's capacity is what may wait for a slow caller.
    pub(crate) fn channel(chunks: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self {
            kind: Kind::Channel(chunks),
        }
    }

    /// The upstream's body, read for usage as it passes.
    pub(crate) fn upstream(parts: UpstreamParts) -> Self {
        let reader = match parts.reading {
            Reading::OpenAIStream { hide_usage } => {
                let stream = ChatStream::new(hide_usage);
                // Output is counted only when a reservation may need it to settle.
                UsageReader::Stream(if parts.exchange.reservation.get().is_some() {
                    stream.counting_output()
                } else {
                    stream
                })
            }
            Reading::Decoded(translation) => UsageReader::Decoded(translation),
            Reading::Whole(format) => UsageReader::Whole {
                frames: Vec::new(),
                size: 0,
                format,
            },
        };
        Self {
            kind: Kind::Upstream(Box::new(UpstreamBody {
                inner: parts.incoming,
                first: parts.first,
                reader,
                exchange: parts.exchange,
                deadline: parts
                    .deadline
                    .map(|at| Box::pin(tokio::time::sleep_until(at))),
                dialect: parts.dialect,
                backend: parts.backend,
                pending_end: false,
                broken: None,
                batch: Batch::default(),
            })),
        }
    }

    /// For an upstream stream of a request with a reservation, how many events carried
    /// output so far (see [`ChatStream::output_events`]); `None` for any other body.
    pub(crate) fn stream_output_events(&self) -> Option<u64> {
        match &self.kind {
            Kind::Upstream(body) => match &body.reader {
                UsageReader::Stream(stream) => stream.output_events(),
                UsageReader::Decoded(translation) => Some(translation.output_events()),
                UsageReader::Whole { .. } => None,
            },
            Kind::Full(_) | Kind::Channel(_) => None,
        }
    }

    /// Whether the caller has everything that matters: a body Tollgate wrote is complete once
    /// handed over, an upstream body once it ended or its stream sent `[DONE]` (SDKs hang up
    /// right after it, before the chunked encoding's last empty chunk); a body written as it
    /// goes once its writer finished and every chunk was taken.
    pub(crate) fn is_complete(&self) -> bool {
        match &self.kind {
            Kind::Full(_) => true,
            Kind::Channel(chunks) => chunks.is_closed() && chunks.is_empty(),
            Kind::Upstream(body) => {
                body.batch.is_empty()
                    && (body.pending_end
                        || match &body.reader {
                            UsageReader::Stream(stream) => stream.is_done(),
                            UsageReader::Decoded(translation) => translation.is_done(),
                            UsageReader::Whole { .. } => false,
                        })
            }
        }
    }
}

#[derive(Debug)]
struct UpstreamBody {
    inner: Incoming,
    first: Option<Bytes>,
    reader: UsageReader,
    exchange: SharedExchange,
    deadline: Option<Pin<Box<Sleep>>>,
    dialect: Dialect,
    backend: BackendLease,
    /// The upstream ended but a held-back tail was sent first; end on the next poll.
    pending_end: bool,
    /// A translated stream's upstream reported an error: break on the next poll.
    broken: Option<String>,
    /// Stream output ready but not yet handed over (see [`UpstreamBody::poll_batched`]).
    batch: Batch,
}

/// Stream output gathered from upstream frames that were ready one right after another.
#[derive(Debug, Default)]
struct Batch {
    frames: Vec<Bytes>,
    size: usize,
    /// Set once the tasks that were waiting to run on this thread when the batch last grew
    /// have run (the upstream connection's among them); `None` until the batch waits for them.
    turn: Option<Arc<AtomicBool>>,
    /// What the upstream body said after the batch's frames: handed over once they are.
    after: Option<Option<Result<Frame<Bytes>, BoxError>>>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn is_full(&self) -> bool {
        self.frames.len() >= MAX_BATCH_FRAMES || self.size >= MAX_BATCH_BYTES
    }

    fn push(&mut self, data: Bytes) {
        self.size += data.len();
        self.frames.push(data);
        self.turn = None;
    }

    /// Whether the batch has waited a turn of this thread's scheduler since it last grew;
    /// starts the wait if not. A task marks the turn's end: it is queued behind every task
    /// already waiting, and wakes the body's task when it runs. (Yielding by waking oneself
    /// would not do: hyper's connection may poll the body again in the same turn.)
    fn waited_a_turn(&mut self, cx: &Context<'_>) -> bool {
        if let Some(passed) = &self.turn {
            return passed.load(Ordering::Acquire);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return true;
        };
        let passed = Arc::new(AtomicBool::new(false));
        let marker = passed.clone();
        let waker = cx.waker().clone();
        runtime.spawn(async move {
            marker.store(true, Ordering::Release);
            waker.wake();
        });
        self.turn = Some(passed);
        false
    }

    /// Hands over the frames gathered, as one.
    fn ready(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let data = match self.frames.len() {
            1 => self.frames.pop().unwrap_or_default(),
            _ => Bytes::from(self.frames.concat()),
        };
        self.frames.clear();
        self.size = 0;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    /// Hands over the frames gathered, if any, then `next`.
    fn ready_then(
        &mut self,
        next: Option<Result<Frame<Bytes>, BoxError>>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.is_empty() {
            return Poll::Ready(next);
        }
        self.after = Some(next);
        self.ready()
    }
}

#[derive(Debug)]
enum UsageReader {
    /// An OpenAI stream: events are read as they pass.
    Stream(ChatStream),
    /// Any other stream, decoded as it passes.
    Decoded(Box<StreamTranslation>),
    /// A complete body: frames are kept (shared, not copied) and read at the end.
    Whole {
        frames: Vec<Bytes>,
        size: usize,
        format: WireFormat,
    },
}

impl UpstreamBody {
    /// Handles one data frame; `None` when nothing is to be sent for it. A translated stream
    /// whose upstream reported an error sends what came before it, then breaks.
    fn on_data(&mut self, data: Bytes) -> Option<Bytes> {
        match &mut self.reader {
            UsageReader::Decoded(translation) => {
                let (out, error) = translation.on_chunk(data);
                if let Some(error) = error {
                    self.broken = Some(error.to_string());
                }
                if let Some(reason) = translation.finish_reason()
                    && self.exchange.finish_reason.get().is_none()
                {
                    let _ = self.exchange.finish_reason.set(reason.as_str().to_string());
                }
                out
            }
            UsageReader::Stream(stream) => {
                let out = stream.on_chunk(data);
                if let Some(reason) = stream.finish_reason()
                    && self.exchange.finish_reason.get().is_none()
                {
                    let _ = self.exchange.finish_reason.set(reason.to_string());
                }
                // Kept as soon as seen: a caller may hang up before the stream's very end.
                if let Some(usage) = stream.usage()
                    && self.exchange.usage.get().is_none()
                {
                    let _ = self.exchange.usage.set(usage);
                }
                out
            }
            UsageReader::Whole { frames, size, .. } => {
                *size += data.len();
                if *size <= MAX_READ_RESPONSE {
                    frames.push(data.clone());
                } else {
                    frames.clear();
                }
                Some(data)
            }
        }
    }

    /// Handles the end of the upstream body; returns a held-back tail to send first.
    fn on_end(&mut self) -> Option<Bytes> {
        let (usage, tail) = match &mut self.reader {
            UsageReader::Stream(stream) => {
                let tail = stream.finish();
                (stream.usage(), tail)
            }
            UsageReader::Decoded(translation) => {
                let (tail, error) = translation.finish();
                if let Some(error) = error {
                    self.broken = Some(error.to_string());
                }
                (translation.usage(), tail)
            }
            UsageReader::Whole {
                frames,
                size,
                format,
            } => {
                let whole = match frames.len() {
                    _ if *size > MAX_READ_RESPONSE => None,
                    1 => Some(frames[0].clone()),
                    _ => Some(Bytes::from(frames.concat())),
                };
                let usage = whole.as_ref().and_then(|body| {
                    if let Some(reason) = tollgate_llm::reported_finish_reason(body) {
                        let _ = self.exchange.finish_reason.set(reason.to_string());
                    }
                    format.usage_of_response(body)
                });
                frames.clear();
                (usage, None)
            }
        };
        if let Some(usage) = usage {
            let _ = self.exchange.usage.set(usage);
        }
        self.backend.state.on_completed();
        tail
    }

    /// The body broke (`code`): the backend is told, and a stream ends with an error event.
    fn on_break(
        &mut self,
        code: &'static str,
        message: String,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        tracing::warn!(code, %message, "upstream response broke after it began");
        let _ = self.exchange.failure.set(code);
        self.backend
            .state
            .on_failure(&self.backend.outlier, false, code);
        self.pending_end = true;
        match self.reader {
            UsageReader::Stream(_) | UsageReader::Decoded(_) => {
                let event = self.dialect.stream_error_event(code, &message);
                Poll::Ready(Some(Ok(Frame::data(event))))
            }
            UsageReader::Whole { .. } => Poll::Ready(Some(Err(message.into()))),
        }
    }

    /// The next frame for the caller. A stream's frames that are ready one right after
    /// another go over as one: hyper's client hands a response on one frame at a time, each
    /// after a turn of its connection task, and hyper's server writes a frame with a system
    /// call of its own unless the next is already there, so a burst of 20 events read at once
    /// would cost 20 writes (nginx reads and writes such a burst whole). When a frame arrives
    /// and the next is not ready, the body waits one scheduler turn (see
    /// [`Batch::waited_a_turn`]), letting the connection decode what it holds, before sending
    /// what it has: a frame that arrives alone goes out a turn later, and no frame waits for
    /// data still to come from the network. The first frame goes out at once, with the head.
    fn poll_batched(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // A complete body needs no batching; a stream's first frame goes out with the
        // response head, at once.
        if matches!(self.reader, UsageReader::Whole { .. }) || self.first.is_some() {
            return self.poll_upstream(cx);
        }
        // What the upstream said after the last batch, which went out on the previous poll.
        if let Some(after) = self.batch.after.take() {
            return Poll::Ready(after);
        }
        loop {
            if self.batch.is_full() {
                return self.batch.ready();
            }
            match self.poll_upstream(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.batch.push(data);
                        if self.pending_end {
                            return self.batch.ready();
                        }
                    }
                    Err(frame) => return self.batch.ready_then(Some(Ok(frame))),
                },
                Poll::Ready(other) => return self.batch.ready_then(other),
                Poll::Pending if self.batch.is_empty() => return Poll::Pending,
                Poll::Pending if self.batch.waited_a_turn(cx) => return self.batch.ready(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take()
            && let Some(out) = self.on_data(first)
        {
            return Poll::Ready(Some(Ok(Frame::data(out))));
        }
        loop {
            if let Some(message) = self.broken.take() {
                return self.on_break("upstream_stream_error", message);
            }
            if self.pending_end {
                return Poll::Ready(None);
            }
            if let Some(deadline) = &mut self.deadline
                && deadline.as_mut().poll(cx).is_ready()
            {
                self.deadline = None;
                return self.on_break(
                    "request_timeout",
                    "the route's request timeout ended the response".into(),
                );
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = self.on_data(data);
                        // A body of known length may be complete without a final empty poll,
                        // and the server may never poll again: finish now.
                        let out = if self.inner.is_end_stream() {
                            self.pending_end = true;
                            concat(out, self.on_end())
                        } else {
                            out
                        };
                        if let Some(out) = out {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(error)) => {
                    return self.on_break(
                        "upstream_stream_error",
                        format!("the upstream response broke: {error}"),
                    );
                }
                None => {
                    self.pending_end = true;
                    if let Some(tail) = self.on_end() {
                        return Poll::Ready(Some(Ok(Frame::data(tail))));
                    }
                }
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(body) => body.poll_batched(cx),
            Kind::Channel(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(body) => body.pending_end && body.batch.is_empty(),
            Kind::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream(body) => match body.reader {
                UsageReader::Whole { .. } if body.first.is_none() => body.inner.size_hint(),
                _ => SizeHint::default(),
            },
            Kind::Channel(_) => SizeHint::default(),
        }
    }
}

/// Joins two optional pieces of a body.
fn concat(first: Option<Bytes>, second: Option<Bytes>) -> Option<Bytes> {
    match (first, second) {
        (Some(a), Some(b)) => Some([a, b].concat().into()),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Exchange;
    use http_body_util::BodyExt;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
        transfer-encoding: chunked\r\n\r\n";

    fn event(index: usize) -> String {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"w{index}\"}}}}]}}\n\n")
    }

    fn chunk(text: &str) -> Vec<u8> {
        format!("{:x}\r\n{text}\r\n", text.len()).into_bytes()
    }

    /// Streams `events` events from a loopback server (all in one write when `pause` is
    /// `None`, else one at a time `pause` apart) through the pooled upstream client, a
    /// [`ProxyBody`] and hyper's server, as the gateway does; returns the chunks the caller
    /// got, one per frame the body gave hyper.
    async fn frames_of(events: usize, pause: Option<Duration>) -> Vec<Bytes> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
            let chunks: Vec<Vec<u8>> = (0..events).map(|i| chunk(&event(i))).collect();
            match pause {
                None => {
                    let all = [HEAD.to_vec(), chunks.concat(), b"0\r\n\r\n".to_vec()].concat();
                    socket.write_all(&all).await.unwrap();
                }
                Some(pause) => {
                    socket.write_all(HEAD).await.unwrap();
                    for chunk in chunks {
                        socket.write_all(&chunk).await.unwrap();
                        tokio::time::sleep(pause).await;
                    }
                    socket.write_all(b"0\r\n\r\n").await.unwrap();
                }
            }
        });
        let client = crate::upstream::UpstreamClients::default().get(Duration::from_secs(1));
        let request = http::Request::post(format!("http://{address}/v1/chat/completions"))
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let mut incoming = client.request(request).await.unwrap().into_body();
        let first = incoming.frame().await.unwrap().unwrap().into_data().ok();
        let state = Arc::new(BackendState::new(
            Instant::now(),
            "default/mock".into(),
            String::new(),
            Default::default(),
        ));
        let body = ProxyBody::upstream(UpstreamParts {
            incoming,
            first,
            exchange: Arc::new(Exchange::default()),
            reading: Reading::OpenAIStream { hide_usage: true },
            deadline: Some(Instant::now() + Duration::from_secs(60)),
            dialect: Dialect::OpenAI,
            backend: BackendLease {
                _in_flight: state.start(),
                state,
                outlier: OutlierDetection::default(),
            },
        });
        // Served by hyper's server, as a connection of the gateway's serves it; the frames
        // are the chunks of the chunked encoding the caller reads.
        let gateway = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway_address = gateway.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = gateway.accept().await.unwrap();
            let body = parking_lot::Mutex::new(Some(body));
            let service = hyper::service::service_fn(move |_| {
                let body = body.lock().take().unwrap();
                async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                .await;
        });
        let mut caller = tokio::net::TcpStream::connect(gateway_address)
            .await
            .unwrap();
        caller
            .write_all(b"GET / HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut caller, &mut answer)
            .await
            .unwrap();
        let at = find(&answer, b"\r\n\r\n") + 4;
        let mut rest = &answer[at..];
        let mut frames = Vec::new();
        loop {
            let line = find(rest, b"\r\n");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            frames.push(Bytes::copy_from_slice(&rest[line + 2..line + 2 + size]));
            rest = &rest[line + 4 + size..];
        }
        frames
    }

    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    fn all_events(events: usize) -> Vec<u8> {
        (0..events).map(event).collect::<String>().into_bytes()
    }

    #[tokio::test]
    async fn events_read_together_go_to_the_caller_together() {
        let frames = frames_of(70, None).await;
        assert_eq!(frames.concat(), all_events(70));
        // The first at once, then at most MAX_BATCH_FRAMES events a frame.
        let sizes: Vec<usize> = frames.iter().map(|f| f.len()).collect();
        assert_eq!(frames.len(), 3, "{sizes:?}");
        assert_eq!(frames[0], event(0).as_bytes());
    }

    #[tokio::test]
    async fn events_that_arrive_apart_are_never_held_for_the_next() {
        let frames = frames_of(5, Some(Duration::from_millis(20))).await;
        assert_eq!(frames.concat(), all_events(5));
        assert_eq!(frames.len(), 5, "{frames:?}");
    }
}
