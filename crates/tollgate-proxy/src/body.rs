//! Response bodies: a complete body Tollgate wrote, or the upstream's body passing through
//! frame by frame while usage is read from it. An upstream body that breaks, or outlives the
//! rule's request timeout, after it began ends with an error event in the caller's dialect
//! when it is a stream (a plain body can only be cut), and counts against the backend.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
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
                body.pending_end
                    || match &body.reader {
                        UsageReader::Stream(stream) => stream.is_done(),
                        UsageReader::Decoded(translation) => translation.is_done(),
                        UsageReader::Whole { .. } => false,
                    }
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
            Kind::Upstream(body) => body.poll_upstream(cx),
            Kind::Channel(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(body) => body.pending_end,
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
