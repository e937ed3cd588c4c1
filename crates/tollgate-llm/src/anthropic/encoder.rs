//! Writes common stream events as an Anthropic Messages stream, the events the official
//! SDKs accumulate into a `message`.

use serde::Serialize;

use super::wire::{UsageOut, stop_reason};
use crate::Usage;
use crate::chat::{FinishReason, StreamEncoder, StreamEvent};

/// Writes [`StreamEvent`]s as Anthropic's server-sent events: `message_start`, then for each
/// run of text or each tool call a `content_block_start`, its `content_block_delta`s
/// (`text_delta`, `input_json_delta`) and a `content_block_stop`, then at the end
/// `message_delta` (stop reason and usage) and `message_stop`. No `ping` is sent.
///
/// Text after a tool call opens a new block. `message_start` waits for the event after
/// [`StreamEvent::Start`], so that it carries the input tokens when the upstream reports
/// them first (as Anthropic does); upstreams that count only at the end (OpenAI) leave it
/// with zeros. `message_delta` carries every total, input tokens included, and goes out
/// when the stream ends, after the upstream's last usage report. Which stop sequence
/// matched is not known: `stop_sequence` is `null`.
#[derive(Debug, Default)]
pub struct Encoder {
    /// The id and model of an answer whose `message_start` is not written yet.
    pending_start: Option<(String, String)>,
    started: bool,
    usage: Usage,
    finish: Option<FinishReason>,
    /// The index the next content block gets.
    next_block: u32,
    open: Open,
    /// The block index of each tool call, by call number.
    tool_blocks: Vec<(u32, u32)>,
    finished: bool,
}

/// The content block being written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Open {
    #[default]
    Nothing,
    Text(u32),
    Tool(u32),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventOut<'a> {
    MessageStart {
        message: StartOut<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockStartOut<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: DeltaOut<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaOut,
        usage: UsageOut,
    },
    MessageStop,
}

impl EventOut<'_> {
    fn name(&self) -> &'static str {
        match self {
            EventOut::MessageStart { .. } => "message_start",
            EventOut::ContentBlockStart { .. } => "content_block_start",
            EventOut::ContentBlockDelta { .. } => "content_block_delta",
            EventOut::ContentBlockStop { .. } => "content_block_stop",
            EventOut::MessageDelta { .. } => "message_delta",
            EventOut::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
struct StartOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: [(); 0],
    model: &'a str,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: UsageOut,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStartOut<'a> {
    Text {
        text: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Empty,
    },
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct MessageDeltaOut {
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
}

impl Encoder {
    /// An encoder for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `message_start` if it is still to come.
    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let (id, model) = self.pending_start.take().unwrap_or_default();
        let message = StartOut {
            id: &id,
            kind: "message",
            role: "assistant",
            content: [],
            model: &model,
            stop_reason: None,
            stop_sequence: None,
            usage: UsageOut::from(&self.usage),
        };
        write(out, &EventOut::MessageStart { message });
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Open::Text(index) => index,
            _ => {
                let index = self.open_block(BlockStartOut::Text { text: "" }, out);
                self.open = Open::Text(index);
                index
            }
        };
        let delta = DeltaOut::TextDelta { text };
        write(out, &EventOut::ContentBlockDelta { index, delta });
    }

    fn tool_call(&mut self, call: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        let input = Empty {};
        let index = self.open_block(BlockStartOut::ToolUse { id, name, input }, out);
        self.open = Open::Tool(index);
        self.tool_blocks.retain(|(known, _)| *known != call);
        self.tool_blocks.push((call, index));
    }

    /// A piece of a tool call's arguments, written to that call's block (by index, as the
    /// SDKs accumulate them, even when a later block has opened since).
    fn arguments(&mut self, call: u32, partial_json: &str, out: &mut Vec<u8>) {
        let Some(&(_, index)) = self.tool_blocks.iter().find(|(known, _)| *known == call) else {
            return;
        };
        let delta = DeltaOut::InputJsonDelta { partial_json };
        write(out, &EventOut::ContentBlockDelta { index, delta });
    }

    /// Closes the open block and opens a new one; returns its index.
    fn open_block(&mut self, content_block: BlockStartOut<'_>, out: &mut Vec<u8>) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        write(
            out,
            &EventOut::ContentBlockStart {
                index,
                content_block,
            },
        );
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Open::Text(index) | Open::Tool(index) = std::mem::take(&mut self.open) {
            write(out, &EventOut::ContentBlockStop { index });
        }
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    self.pending_start = Some((id.clone(), model.clone()));
                }
                return;
            }
            StreamEvent::Usage(usage) => {
                self.usage = *usage;
                if self.pending_start.is_some() {
                    self.ensure_started(out);
                }
                return;
            }
            _ => self.ensure_started(out),
        }
        match event {
            StreamEvent::Text(text) if !text.is_empty() => self.text(text, out),
            StreamEvent::ToolCallStart { index, id, name } => self.tool_call(*index, id, name, out),
            StreamEvent::ToolArguments { index, delta } if !delta.is_empty() => {
                self.arguments(*index, delta, out)
            }
            StreamEvent::Finish(reason) => {
                self.close_block(out);
                self.finish = Some(*reason);
            }
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.ensure_started(out);
        self.close_block(out);
        let delta = MessageDeltaOut {
            stop_reason: self.finish.map(stop_reason),
            stop_sequence: None,
        };
        let usage = UsageOut::from(&self.usage);
        write(out, &EventOut::MessageDelta { delta, usage });
        write(out, &EventOut::MessageStop);
    }
}

/// Appends one server-sent event, named after its type as Anthropic names them.
fn write(out: &mut Vec<u8>, event: &EventOut<'_>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&super::to_json(event));
    out.extend_from_slice(b"\n\n");
}
