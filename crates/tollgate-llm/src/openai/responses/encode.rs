//! Writes common stream events as a Responses stream for the caller.

use serde::Serialize;

use super::object::{Ids, Item, Outcome, OutputText, ResponseObject, Status};
use crate::Usage;
use crate::chat::{FinishReason, StreamEncoder, StreamEvent};

/// Writes [`StreamEvent`]s as the Responses API's server-sent events, each with its `event:`
/// line and a `sequence_number` counting from 0, as the SDKs accumulate them (by
/// `output_index` and `content_index`, the ids matching between an item's events):
///
/// - `response.created` and `response.in_progress`, with the response `in_progress`, no
///   output and no usage;
/// - for each run of text, a `message` item: `response.output_item.added`,
///   `response.content_part.added` (one `output_text` part), a `response.output_text.delta`
///   for every text the upstream sends, at once (text is never held back), then
///   `response.output_text.done`, `response.content_part.done` and
///   `response.output_item.done` when the next item begins or the model stops;
/// - for each tool call, a `function_call` item: `response.output_item.added`, a
///   `response.function_call_arguments.delta` for every piece of the arguments,
///   `response.function_call_arguments.done` and `response.output_item.done`. A call whose
///   upstream sent no arguments gets a `{}` delta, as the API wants JSON text;
/// - at the end, `response.completed`, or `response.incomplete` when the model stopped at the
///   output cap or by a content filter, with the whole response: every item, and the usage
///   the upstream reported last.
///
/// For those closing events and the final response, the encoder keeps every item's text and
/// arguments until the stream ends: its memory grows with the answer, bounded by what the
/// upstream streamed. Text after a tool call opens a new message item. Arguments for a call
/// whose item has already closed (no upstream interleaves calls so) still go out as deltas
/// of that item, and the final response carries them whole. Ids are those of
/// [`write_response`](super::write_response); the fields that echo the request carry the same
/// neutral values.
#[derive(Debug)]
pub struct Encoder {
    created: u64,
    ids: Ids,
    model: String,
    started: bool,
    finished: bool,
    /// The next event's `sequence_number`.
    sequence: u64,
    /// The output items so far, whole.
    output: Vec<Item>,
    /// The output index of the item being written.
    open: Option<usize>,
    /// The output index of each tool call, by call number.
    calls: Vec<(u32, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Encoder {
    /// An encoder for one stream; `created` is the Unix time the response carries
    /// (`created_at`).
    pub fn new(created: u64) -> Self {
        Encoder {
            created,
            ids: Ids::of(""),
            model: String::new(),
            started: false,
            finished: false,
            sequence: 0,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// Writes `response.created` and `response.in_progress` if they are still to come.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = || {
            let (id, model) = (&self.ids.response, &self.model);
            ResponseObject::new(id, self.created, model, &[], Outcome::InProgress, None)
        };
        let created = EventOut::Created {
            response: response(),
        };
        let in_progress = EventOut::InProgress {
            response: response(),
        };
        for event in [created, in_progress] {
            emit(out, &mut self.sequence, &event);
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(index) if matches!(self.output[index], Item::Message { .. }) => index,
            _ => self.open_message(out),
        };
        self.output[index].push(text);
        let event = EventOut::TextDelta {
            item_id: self.output[index].id(),
            output_index: index,
            content_index: 0,
            delta: text,
            logprobs: [],
        };
        emit(out, &mut self.sequence, &event);
    }

    /// Closes the open item and opens a message with one empty part; returns its index.
    fn open_message(&mut self, out: &mut Vec<u8>) -> usize {
        let index = self.open_item(Item::message(self.ids.message(self.output.len())), out);
        // Opens the message's part.
        self.output[index].push("");
        let event = EventOut::PartAdded {
            item_id: self.output[index].id(),
            output_index: index,
            content_index: 0,
            part: &OutputText::new(""),
        };
        emit(out, &mut self.sequence, &event);
        index
    }

    fn tool_call(&mut self, call: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        let index = self.open_item(Item::function_call(id, name, ""), out);
        self.calls.retain(|(known, _)| *known != call);
        self.calls.push((call, index));
    }

    /// Closes the open item and opens `item` after it (`response.output_item.added`); returns
    /// its index.
    fn open_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        self.close(Status::Completed, out);
        let index = self.output.len();
        self.output.push(item);
        let event = EventOut::ItemAdded {
            output_index: index,
            item: &self.output[index],
        };
        emit(out, &mut self.sequence, &event);
        self.open = Some(index);
        index
    }

    /// A piece of a call's arguments, written to that call's item.
    fn arguments(&mut self, call: u32, delta: &str, out: &mut Vec<u8>) {
        if let Some(&(_, index)) = self.calls.iter().find(|(known, _)| *known == call) {
            self.push_arguments(index, delta, out);
        }
    }

    /// Appends `delta` to the arguments of the call at `index` and writes it.
    fn push_arguments(&mut self, index: usize, delta: &str, out: &mut Vec<u8>) {
        self.output[index].push(delta);
        let event = EventOut::ArgumentsDelta {
            item_id: self.output[index].id(),
            output_index: index,
            delta,
        };
        emit(out, &mut self.sequence, &event);
    }

    /// Writes the events that close the open item, which ends with `status`.
    fn close(&mut self, status: Status, out: &mut Vec<u8>) {
        let Some(index) = self.open.take() else {
            return;
        };
        if let Item::FunctionCall { arguments, .. } = &self.output[index]
            && arguments.is_empty()
        {
            self.push_arguments(index, "{}", out);
        }
        self.output[index].set_status(status);
        let item = &self.output[index];
        let (item_id, output_index) = (item.id(), index);
        match item {
            Item::Message { content, .. } => {
                for (content_index, part) in content.iter().enumerate() {
                    let events = [
                        EventOut::TextDone {
                            item_id,
                            output_index,
                            content_index,
                            text: &part.text,
                            logprobs: [],
                        },
                        EventOut::PartDone {
                            item_id,
                            output_index,
                            content_index,
                            part,
                        },
                    ];
                    for event in &events {
                        emit(out, &mut self.sequence, event);
                    }
                }
            }
            Item::FunctionCall { arguments, .. } => {
                let event = EventOut::ArgumentsDone {
                    item_id,
                    output_index,
                    arguments,
                };
                emit(out, &mut self.sequence, &event);
            }
        }
        emit(
            out,
            &mut self.sequence,
            &EventOut::ItemDone { output_index, item },
        );
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    self.ids = Ids::of(id);
                    self.model.clone_from(model);
                    self.start(out);
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Text(text) if text.is_empty() => {}
            StreamEvent::Text(text) => {
                self.start(out);
                self.text(text, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.start(out);
                self.tool_call(*index, id, name, out);
            }
            StreamEvent::ToolArguments { delta, .. } if delta.is_empty() => {}
            StreamEvent::ToolArguments { index, delta } => {
                self.start(out);
                self.arguments(*index, delta, out);
            }
            StreamEvent::Finish(reason) => {
                self.start(out);
                self.finish = Some(*reason);
                self.close(Outcome::of(self.finish).item_status(), out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(out);
        let outcome = Outcome::of(self.finish);
        self.close(outcome.item_status(), out);
        let (id, model) = (&self.ids.response, &self.model);
        let response =
            ResponseObject::new(id, self.created, model, &self.output, outcome, self.usage);
        let event = match outcome {
            Outcome::Incomplete(_) => EventOut::Incomplete { response },
            Outcome::InProgress | Outcome::Completed => EventOut::Completed { response },
        };
        emit(out, &mut self.sequence, &event);
    }
}

/// One event's payload; its `type` is also its `event:` name.
#[derive(Serialize)]
#[serde(tag = "type")]
enum EventOut<'a> {
    #[serde(rename = "response.created")]
    Created { response: ResponseObject<'a> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: ResponseObject<'a> },
    #[serde(rename = "response.output_item.added")]
    ItemAdded { output_index: usize, item: &'a Item },
    #[serde(rename = "response.content_part.added")]
    PartAdded {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a OutputText,
    },
    #[serde(rename = "response.output_text.delta")]
    TextDelta {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.output_text.done")]
    TextDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: &'a str,
        logprobs: [(); 0],
    },
    #[serde(rename = "response.content_part.done")]
    PartDone {
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: &'a OutputText,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta {
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone {
        item_id: &'a str,
        output_index: usize,
        arguments: &'a str,
    },
    #[serde(rename = "response.output_item.done")]
    ItemDone { output_index: usize, item: &'a Item },
    #[serde(rename = "response.completed")]
    Completed { response: ResponseObject<'a> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: ResponseObject<'a> },
}

impl EventOut<'_> {
    fn name(&self) -> &'static str {
        match self {
            EventOut::Created { .. } => "response.created",
            EventOut::InProgress { .. } => "response.in_progress",
            EventOut::ItemAdded { .. } => "response.output_item.added",
            EventOut::PartAdded { .. } => "response.content_part.added",
            EventOut::TextDelta { .. } => "response.output_text.delta",
            EventOut::TextDone { .. } => "response.output_text.done",
            EventOut::PartDone { .. } => "response.content_part.done",
            EventOut::ArgumentsDelta { .. } => "response.function_call_arguments.delta",
            EventOut::ArgumentsDone { .. } => "response.function_call_arguments.done",
            EventOut::ItemDone { .. } => "response.output_item.done",
            EventOut::Completed { .. } => "response.completed",
            EventOut::Incomplete { .. } => "response.incomplete",
        }
    }
}

/// An event with its place in the stream.
#[derive(Serialize)]
struct Numbered<'a> {
    #[serde(flatten)]
    event: &'a EventOut<'a>,
    sequence_number: u64,
}

/// Appends one server-sent event, named after its type, and counts it.
fn emit(out: &mut Vec<u8>, sequence: &mut u64, event: &EventOut<'_>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.name().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let numbered = Numbered {
        event,
        sequence_number: *sequence,
    };
    serde_json::to_writer(&mut *out, &numbered).expect("a Responses event serialises");
    out.extend_from_slice(b"\n\n");
    *sequence += 1;
}
