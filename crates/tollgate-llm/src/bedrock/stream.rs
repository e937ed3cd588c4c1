//! A ConverseStream answer (`application/vnd.amazon.eventstream`) read into
//! [`StreamEvent`]s.
//!
//! Each event-stream frame is a prelude (total length, headers length, prelude CRC32), typed
//! headers, a payload and a message CRC32. `aws-smithy-eventstream` checks the framing and
//! the checksums; this module only holds the bytes of the frame in progress and refuses a
//! frame that announces more than [`MAX_FRAME`] bytes, so memory stays bounded whatever the
//! upstream sends. Frames carry `:message-type` `event` (with `:event-type` and a JSON
//! payload), `exception` (with `:exception-type` and `{"message"}`) or `error` (with
//! `:error-code` and `:error-message`).

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::BytesMut;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{WireUsage, finish_reason, from_json};
use crate::chat::{StreamDecoder, StreamError, StreamEvent};

/// The largest frame accepted. Bedrock's frames are a few hundred bytes; a tool call's whole
/// input or an image fits with room to spare.
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The smallest possible frame: the 12-byte prelude and the 4-byte message CRC.
const MIN_FRAME: usize = 16;

/// Turns a ConverseStream body into [`StreamEvent`]s as its bytes arrive. The stream has no
/// id and no model, so [`StreamEvent::Start`] carries empty ones (see the module doc of
/// [`crate::bedrock`]).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of the frame in progress (at most one frame once `push` returns).
    buffer: BytesMut,
    frames: MessageFrameDecoder,
    started: bool,
    stopped: bool,
    /// The tool call being streamed (Bedrock streams one content block at a time).
    open_tool: Option<OpenTool>,
    next_tool: u32,
}

/// A tool call whose input is streaming.
#[derive(Debug, Clone, Copy)]
struct OpenTool {
    /// Bedrock's `contentBlockIndex` of its block.
    block: u64,
    /// Its position among this answer's tool calls.
    index: u32,
    /// Whether any input arrived; a call without input gets `{}` when its block stops, so
    /// callers always receive a JSON object.
    has_input: bool,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next whole frame in the buffer, if any.
    fn next_frame(&mut self) -> Result<Option<Message>, StreamError> {
        let Some(prefix) = self.buffer.first_chunk::<4>() else {
            return Ok(None);
        };
        let total = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
        if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
            return Err(StreamError::Malformed(format!(
                "an event-stream frame announces {total} bytes, outside {MIN_FRAME}..={MAX_FRAME}"
            )));
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        match self.frames.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Complete(message)) => Ok(Some(message)),
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Err(error) => Err(StreamError::Malformed(format!(
                "invalid event-stream frame: {error}"
            ))),
        }
    }

    fn on_message(
        &mut self,
        message: &Message,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        match header(message, ":message-type").unwrap_or("event") {
            "event" => {
                let kind = header(message, ":event-type").ok_or_else(|| {
                    StreamError::Malformed("an event frame has no `:event-type`".to_owned())
                })?;
                self.on_event(kind, message.payload(), events)
            }
            "exception" => Err(exception(message)),
            "error" => Err(StreamError::Upstream(format!(
                "{}: {}",
                header(message, ":error-code").unwrap_or("error"),
                header(message, ":error-message").unwrap_or_default()
            ))),
            other => Err(StreamError::Malformed(format!(
                "unknown event-stream message type `{other}`"
            ))),
        }
    }

    fn on_event(
        &mut self,
        kind: &str,
        payload: &[u8],
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        match kind {
            "messageStart" => self.start(events),
            "contentBlockStart" => self.on_block_start(payload_of(kind, payload)?, events),
            "contentBlockDelta" => self.on_block_delta(payload_of(kind, payload)?, events)?,
            "contentBlockStop" => {
                let stop: BlockStop = payload_of(kind, payload)?;
                self.on_block_stop(stop.content_block_index, events);
            }
            "messageStop" => {
                let stop: MessageStop = payload_of(kind, payload)?;
                self.start(events);
                self.stopped = true;
                events.extend(finish_reason(&stop.stop_reason).map(StreamEvent::Finish));
            }
            "metadata" => {
                let metadata: Metadata = payload_of(kind, payload)?;
                self.start(events);
                events.extend(metadata.usage.map(|usage| StreamEvent::Usage(usage.into())));
            }
            _ => {}
        }
        Ok(())
    }

    /// Emits [`StreamEvent::Start`] once, before anything else.
    fn start(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            events.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
            });
        }
    }

    fn on_block_start(&mut self, start: BlockStart, events: &mut Vec<StreamEvent>) {
        self.start(events);
        let Some(tool_use) = start.start.tool_use else {
            return;
        };
        let index = self.next_tool;
        self.next_tool = self.next_tool.saturating_add(1);
        self.open_tool = Some(OpenTool {
            block: start.content_block_index,
            index,
            has_input: false,
        });
        events.push(StreamEvent::ToolCallStart {
            index,
            id: tool_use.tool_use_id,
            name: tool_use.name,
        });
    }

    fn on_block_delta(
        &mut self,
        delta: BlockDelta,
        events: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        self.start(events);
        if let Some(text) = delta.delta.text.filter(|text| !text.is_empty()) {
            events.push(StreamEvent::Text(text));
        }
        let Some(tool_use) = delta.delta.tool_use else {
            return Ok(());
        };
        let tool = self
            .open_tool
            .as_mut()
            .filter(|tool| tool.block == delta.content_block_index)
            .ok_or_else(|| {
                StreamError::Malformed(format!(
                    "tool input for content block {} which started no tool call",
                    delta.content_block_index
                ))
            })?;
        if !tool_use.input.is_empty() {
            tool.has_input = true;
            events.push(StreamEvent::ToolArguments {
                index: tool.index,
                delta: tool_use.input,
            });
        }
        Ok(())
    }

    /// Closes the tool call of `block`, giving it `{}` if no input arrived.
    fn on_block_stop(&mut self, block: u64, events: &mut Vec<StreamEvent>) {
        let Some(tool) = self.open_tool.filter(|tool| tool.block == block) else {
            return;
        };
        self.open_tool = None;
        if !tool.has_input {
            events.push(StreamEvent::ToolArguments {
                index: tool.index,
                delta: "{}".to_owned(),
            });
        }
    }
}

impl StreamDecoder for Decoder {
    fn push(&mut self, chunk: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        self.buffer.extend_from_slice(chunk);
        while let Some(message) = self.next_frame()? {
            self.on_message(&message, events)?;
        }
        Ok(())
    }

    fn finish(&mut self, _events: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if !self.buffer.is_empty() {
            return Err(StreamError::Malformed(format!(
                "the stream ended inside an event-stream frame ({} bytes left)",
                self.buffer.len()
            )));
        }
        if !self.stopped {
            return Err(StreamError::Malformed(
                "the stream ended before `messageStop`".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The value of a string header of `message`.
fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|header| header.name().as_str() == name)
        .and_then(|header| header.value().as_string().ok())
        .map(|value| value.as_str())
}

/// An exception frame as the upstream's error: its type and its message.
fn exception(message: &Message) -> StreamError {
    let kind = header(message, ":exception-type").unwrap_or("exception");
    let text = serde_json::from_slice::<ExceptionPayload>(message.payload())
        .ok()
        .and_then(|payload| payload.message.or(payload.message_capitalised))
        .unwrap_or_else(|| String::from_utf8_lossy(message.payload()).into_owned());
    StreamError::Upstream(format!("{kind}: {text}"))
}

/// The JSON payload of an event of type `kind`.
fn payload_of<T: DeserializeOwned>(kind: &str, payload: &[u8]) -> Result<T, StreamError> {
    from_json(payload)
        .map_err(|error| StreamError::Malformed(format!("invalid `{kind}` event at {error}")))
}

/// `ContentBlockStartEvent`: only a tool use announces itself this way.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u64,
    start: Start,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Start {
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    tool_use_id: String,
    name: String,
}

/// `ContentBlockDeltaEvent`: text or a piece of a tool call's input; reasoning and
/// citations deltas are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u64,
    delta: Delta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delta {
    text: Option<String>,
    tool_use: Option<ToolUseDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStop {
    content_block_index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: String,
}

/// `ConverseStreamMetadataEvent`: usage (and latency metrics, not kept).
#[derive(Deserialize)]
struct Metadata {
    usage: Option<WireUsage>,
}

/// The payload of an exception frame.
#[derive(Deserialize)]
struct ExceptionPayload {
    message: Option<String>,
    #[serde(rename = "Message")]
    message_capitalised: Option<String>,
}
