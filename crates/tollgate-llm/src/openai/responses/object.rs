//! The `response` object and its output items, as the API writes them: whole in an answer, and
//! in the events of a stream.

use serde::Serialize;

use crate::Usage;
use crate::chat::{ChatResponse, FinishReason, Part};

/// Writes a `response` object for the caller. `created` is its Unix time (`created_at`),
/// which the common shape does not carry. See the module doc for the fields that echo the
/// request.
pub fn write_response(response: &ChatResponse, created: u64) -> Vec<u8> {
    let ids = Ids::of(&response.id);
    let mut output: Vec<Item> = Vec::new();
    for part in &response.content {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => match output.last_mut() {
                Some(last @ Item::Message { .. }) => last.push(text),
                _ => {
                    let mut message = Item::message(ids.message(output.len()));
                    message.push(text);
                    output.push(message);
                }
            },
            Part::ToolCall(call) => {
                // The API wants JSON text; a call without arguments has none.
                let arguments = if call.arguments.is_empty() {
                    "{}"
                } else {
                    &call.arguments
                };
                output.push(Item::function_call(&call.id, &call.name, arguments));
            }
            // An answer holds text and tool calls only.
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    let outcome = Outcome::of(response.finish_reason);
    for item in &mut output {
        item.set_status(Status::Completed);
    }
    if let Some(last) = output.last_mut() {
        last.set_status(outcome.item_status());
    }
    let body = ResponseObject::new(
        &ids.response,
        created,
        &response.model,
        &output,
        outcome,
        Some(response.usage),
    );
    serde_json::to_vec(&body).expect("a response serialises")
}

/// The ids of a response and of its items, all derived from the upstream's answer id.
#[derive(Debug)]
pub(super) struct Ids {
    /// `resp_<id>`.
    pub(super) response: String,
    /// The upstream's id without `resp_`, which the message ids are made of.
    base: String,
}

impl Ids {
    pub(super) fn of(upstream: &str) -> Self {
        let base = upstream.strip_prefix("resp_").unwrap_or(upstream);
        Ids {
            response: format!("resp_{base}"),
            base: base.to_owned(),
        }
    }

    /// The id of the message item at `output_index`.
    pub(super) fn message(&self, output_index: usize) -> String {
        format!("msg_{}_{output_index}", self.base)
    }
}

/// The status of a response or an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    InProgress,
    Completed,
    Incomplete,
}

/// How a response ended: completed, or incomplete and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Still running (a stream's first events).
    InProgress,
    Completed,
    Incomplete(&'static str),
}

impl Outcome {
    /// The outcome of a finish: the output cap and a content filter leave it incomplete.
    pub(super) fn of(finish: Option<FinishReason>) -> Self {
        match finish {
            Some(FinishReason::MaxTokens) => Outcome::Incomplete("max_output_tokens"),
            Some(FinishReason::ContentFilter) => Outcome::Incomplete("content_filter"),
            Some(FinishReason::EndTurn | FinishReason::StopSequence | FinishReason::ToolUse)
            | None => Outcome::Completed,
        }
    }

    /// The status of the item the finish cut, or of the last one.
    pub(super) fn item_status(self) -> Status {
        match self {
            Outcome::Incomplete(_) => Status::Incomplete,
            Outcome::InProgress | Outcome::Completed => Status::Completed,
        }
    }
}

/// An output item, kept whole: the stream encoder keeps each one's text and arguments for the
/// events that close it and for the final response.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Item {
    Message {
        id: String,
        status: Status,
        content: Vec<OutputText>,
        role: &'static str,
    },
    FunctionCall {
        id: String,
        status: Status,
        arguments: String,
        call_id: String,
        name: String,
    },
}

impl Item {
    /// A message item without parts yet, in progress.
    pub(super) fn message(id: String) -> Self {
        Item::Message {
            id,
            status: Status::InProgress,
            content: Vec::new(),
            role: "assistant",
        }
    }

    /// A function call item, in progress, with the arguments known so far.
    pub(super) fn function_call(call_id: &str, name: &str, arguments: &str) -> Self {
        Item::FunctionCall {
            id: format!("fc_{call_id}"),
            status: Status::InProgress,
            arguments: arguments.to_owned(),
            call_id: call_id.to_owned(),
            name: name.to_owned(),
        }
    }

    pub(super) fn id(&self) -> &str {
        match self {
            Item::Message { id, .. } | Item::FunctionCall { id, .. } => id,
        }
    }

    /// Appends a delta: text to a message's (only) part, which it opens if need be, or
    /// arguments to a call.
    pub(super) fn push(&mut self, delta: &str) {
        match self {
            Item::Message { content, .. } => match content.last_mut() {
                Some(part) => part.text.push_str(delta),
                None => content.push(OutputText::new(delta)),
            },
            Item::FunctionCall { arguments, .. } => arguments.push_str(delta),
        }
    }

    pub(super) fn set_status(&mut self, to: Status) {
        match self {
            Item::Message { status, .. } | Item::FunctionCall { status, .. } => *status = to,
        }
    }
}

/// An `output_text` part.
#[derive(Clone, Debug, Serialize)]
pub(super) struct OutputText {
    #[serde(rename = "type")]
    kind: &'static str,
    annotations: [(); 0],
    logprobs: [(); 0],
    pub(super) text: String,
}

impl OutputText {
    pub(super) fn new(text: &str) -> Self {
        OutputText {
            kind: "output_text",
            annotations: [],
            logprobs: [],
            text: text.to_owned(),
        }
    }
}

/// The `response` object. Fields that echo the request carry the API's neutral values.
#[derive(Serialize)]
pub(super) struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: Status,
    background: bool,
    error: Option<()>,
    incomplete_details: Option<IncompleteDetails>,
    instructions: Option<()>,
    max_output_tokens: Option<()>,
    model: &'a str,
    output: &'a [Item],
    parallel_tool_calls: bool,
    previous_response_id: Option<()>,
    reasoning: Option<()>,
    store: bool,
    temperature: Option<()>,
    text: TextConfig,
    tool_choice: &'static str,
    tools: [(); 0],
    top_p: Option<()>,
    truncation: &'static str,
    usage: Option<UsageOut>,
    user: Option<()>,
    metadata: Empty,
}

impl<'a> ResponseObject<'a> {
    /// A response with `output`; `usage` is null until it is known.
    pub(super) fn new(
        id: &'a str,
        created_at: u64,
        model: &'a str,
        output: &'a [Item],
        outcome: Outcome,
        usage: Option<Usage>,
    ) -> Self {
        let (status, incomplete_details) = match outcome {
            Outcome::InProgress => (Status::InProgress, None),
            Outcome::Completed => (Status::Completed, None),
            Outcome::Incomplete(reason) => (Status::Incomplete, Some(IncompleteDetails { reason })),
        };
        ResponseObject {
            id,
            object: "response",
            created_at,
            status,
            background: false,
            error: None,
            incomplete_details,
            instructions: None,
            max_output_tokens: None,
            model,
            output,
            parallel_tool_calls: true,
            previous_response_id: None,
            reasoning: None,
            store: false,
            temperature: None,
            text: TextConfig {
                format: TextFormat { kind: "text" },
            },
            tool_choice: "auto",
            tools: [],
            top_p: None,
            truncation: "disabled",
            usage: usage.map(UsageOut::from),
            user: None,
            metadata: Empty {},
        }
    }
}

#[derive(Serialize)]
struct IncompleteDetails {
    reason: &'static str,
}

#[derive(Serialize)]
struct TextConfig {
    format: TextFormat,
}

#[derive(Serialize)]
struct TextFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

/// `usage` as the Responses API writes it.
#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    input_tokens_details: CachedOut,
    output_tokens: u64,
    output_tokens_details: ReasoningOut,
    total_tokens: u64,
}

/// `input_tokens_details`. Cache writes are not carried by the common usage (they count as
/// input): `cache_write_tokens` is 0.
#[derive(Serialize)]
struct CachedOut {
    cache_write_tokens: u64,
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningOut {
    reasoning_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(usage: Usage) -> Self {
        UsageOut {
            input_tokens: usage.input_tokens,
            input_tokens_details: CachedOut {
                cache_write_tokens: 0,
                cached_tokens: usage.cached_tokens,
            },
            output_tokens: usage.output_tokens,
            output_tokens_details: ReasoningOut {
                reasoning_tokens: usage.reasoning_tokens,
            },
            total_tokens: usage.input_tokens + usage.output_tokens,
        }
    }
}
