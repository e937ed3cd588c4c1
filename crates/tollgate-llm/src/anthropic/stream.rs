//! Reads an Anthropic Messages stream (server-sent events) into common stream events.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::wire::{ErrorObject, UsageIn, finish_reason};
use crate::SseEvents;
use crate::chat::{StreamDecoder, StreamError, StreamEvent};
use crate::sse::data_of;

/// The largest event held while waiting for its end. Anthropic's events are small (a delta
/// of a few tokens); a longer one comes back cut and fails to parse, rather than growing
/// the buffer without bound.
const MAX_EVENT: usize = 1 << 20;

/// Turns an Anthropic stream into [`StreamEvent`]s as its bytes arrive:
/// - `message_start` gives [`StreamEvent::Start`] and a first [`StreamEvent::Usage`]
///   (the input tokens);
/// - a `tool_use` block's start gives [`StreamEvent::ToolCallStart`], numbered among the
///   answer's tool calls (not among its blocks), and its `input_json_delta`s give
///   [`StreamEvent::ToolArguments`] with that number;
/// - `text_delta`s give [`StreamEvent::Text`];
/// - `message_delta` gives [`StreamEvent::Finish`] and [`StreamEvent::Usage`] with the
///   totals;
/// - an `error` event ends the stream with [`StreamError::Upstream`].
///
/// `ping`, `message_stop`, `content_block_stop`, thinking blocks and their `thinking_delta`
/// and `signature_delta`, `citations_delta`, server-tool blocks and event types this crate
/// does not know are passed over. Content before `message_start` is malformed.
///
/// Memory stays bounded: the decoder holds one unfinished event and the block being
/// streamed, whatever the length of the stream.
#[derive(Debug)]
pub struct Decoder {
    events: SseEvents,
    scratch: Vec<Bytes>,
    started: bool,
    usage: UsageIn,
    /// The number the next tool call gets.
    next_tool: u32,
    /// The block being streamed when it is a tool call: its block index and call number.
    open_tool: Option<(u64, u32)>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventIn {
    MessageStart {
        message: StartIn,
    },
    ContentBlockStart {
        index: u64,
        content_block: BlockStartIn,
    },
    ContentBlockDelta {
        index: u64,
        delta: DeltaIn,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: MessageDeltaIn,
        usage: Option<UsageIn>,
    },
    Error {
        error: ErrorObject,
    },
    /// `ping`, `message_stop` and event types added after this was written.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartIn {
    id: String,
    model: String,
    #[serde(default)]
    usage: UsageIn,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStartIn {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaIn {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaIn {
    stop_reason: Option<String>,
}

impl Decoder {
    /// A decoder for one stream.
    pub fn new() -> Self {
        Self {
            events: SseEvents::new(MAX_EVENT),
            scratch: Vec::new(),
            started: false,
            usage: UsageIn::default(),
            next_tool: 0,
            open_tool: None,
        }
    }

    fn on_event(&mut self, raw: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let data = data_of(raw);
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let event = serde_json::from_slice(&data).map_err(|e| {
            StreamError::Malformed(format!("an Anthropic stream event is not valid: {e}"))
        })?;
        match event {
            EventIn::Other => {}
            EventIn::Error { error } => return Err(StreamError::Upstream(error.describe())),
            EventIn::MessageStart { message } => self.start(message, out),
            _ if !self.started => {
                return Err(StreamError::Malformed(
                    "the Anthropic stream did not begin with message_start".into(),
                ));
            }
            EventIn::ContentBlockStart {
                index,
                content_block,
            } => self.open_block(index, content_block, out),
            EventIn::ContentBlockDelta { index, delta } => self.delta(index, delta, out),
            EventIn::ContentBlockStop { index } => {
                if self.open_tool.is_some_and(|(block, _)| block == index) {
                    self.open_tool = None;
                }
            }
            EventIn::MessageDelta { delta, usage } => self.message_delta(delta, usage, out),
        }
        Ok(())
    }

    fn start(&mut self, message: StartIn, out: &mut Vec<StreamEvent>) {
        self.started = true;
        self.usage = message.usage;
        out.push(StreamEvent::Start {
            id: message.id,
            model: message.model,
        });
        out.push(StreamEvent::Usage(self.usage.to_usage()));
    }

    fn open_block(&mut self, index: u64, block: BlockStartIn, out: &mut Vec<StreamEvent>) {
        self.open_tool = None;
        match block {
            BlockStartIn::Text { text } if !text.is_empty() => out.push(StreamEvent::Text(text)),
            BlockStartIn::ToolUse { id, name, input } => {
                let call = self.next_tool;
                self.next_tool += 1;
                self.open_tool = Some((index, call));
                out.push(StreamEvent::ToolCallStart {
                    index: call,
                    id,
                    name,
                });
                // Anthropic starts a tool block with `{}` and streams the input; a block
                // that arrives whole is passed on whole.
                if let Some(input) = input.filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                {
                    out.push(StreamEvent::ToolArguments {
                        index: call,
                        delta: input.to_string(),
                    });
                }
            }
            _ => {}
        }
    }

    fn delta(&mut self, index: u64, delta: DeltaIn, out: &mut Vec<StreamEvent>) {
        match delta {
            DeltaIn::TextDelta { text } if !text.is_empty() => out.push(StreamEvent::Text(text)),
            DeltaIn::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                if let Some((block, call)) = self.open_tool
                    && block == index
                {
                    out.push(StreamEvent::ToolArguments {
                        index: call,
                        delta: partial_json,
                    });
                }
            }
            _ => {}
        }
    }

    fn message_delta(
        &mut self,
        delta: MessageDeltaIn,
        usage: Option<UsageIn>,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(reason) = delta.stop_reason.as_deref().and_then(finish_reason) {
            out.push(StreamEvent::Finish(reason));
        }
        if let Some(usage) = usage {
            self.usage.merge(usage);
            out.push(StreamEvent::Usage(self.usage.to_usage()));
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder for Decoder {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let mut raw = std::mem::take(&mut self.scratch);
        self.events.push(Bytes::copy_from_slice(chunk), &mut raw);
        let result = raw.iter().try_for_each(|event| self.on_event(event, out));
        raw.clear();
        self.scratch = raw;
        result
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        match self.events.finish() {
            Some(rest) => self.on_event(&rest, out),
            None => Ok(()),
        }
    }
}
