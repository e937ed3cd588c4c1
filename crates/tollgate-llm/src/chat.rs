//! The common shape of a chat request, its answer and its stream, which every wire format
//! translates to and from. With it, n caller dialects and m upstream formats need n + m
//! translators instead of n × m, and a field means the same thing whichever way it travels.
//!
//! Only what at least two formats can express lives here. A format that meets something it
//! cannot carry either drops it, when dropping changes nothing the caller relies on, or refuses
//! the request with [`TranslateError::Unsupported`] naming the field.

use crate::Usage;

/// A chat request, whatever API it came in or goes out in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model asked for.
    pub model: String,
    /// The system prompt (several system messages are joined by blank lines).
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The most output tokens to produce.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Sequences that end the output.
    pub stop: Vec<String>,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools at once (`None`: the upstream's default).
    pub parallel_tool_calls: Option<bool>,
    /// JSON mode or structured output.
    pub response_format: Option<ResponseFormat>,
    /// An end-user id for the upstream's abuse monitoring.
    pub user: Option<String>,
}

/// Who said a message. System prompts live in [`ChatRequest::system`]; tool results are
/// [`Part::ToolResult`]s in a user message, as Anthropic, Gemini and Bedrock carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The caller.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Part>,
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image.
    Image(Image),
    /// The model's call of a tool (assistant messages only).
    ToolCall(ToolCall),
    /// The result of a tool call (user messages only).
    ToolResult(ToolResult),
}

/// An image, by reference or inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    /// An `http(s)` URL the upstream fetches.
    Url(String),
    /// Inline data.
    Base64 {
        /// Its MIME type, such as `image/png`.
        media_type: String,
        /// The base64 data, without a `data:` prefix.
        data: String,
    },
}

/// A call of a tool by the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The call's id, which its result refers to.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text (an object).
    pub arguments: String,
}

/// What a tool call returned.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The tool's name, when the format carries it (Gemini needs it; others ignore it).
    pub name: Option<String>,
    /// The result: text and images.
    pub content: Vec<Part>,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Its parameters as a JSON Schema object.
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool.
    None,
    /// Some tool, the model picks which.
    Required,
    /// This tool.
    Tool(String),
}

/// The shape the output must have.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON that matches a schema.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Whether the upstream must follow the schema strictly.
        strict: Option<bool>,
    },
}

/// Why the model stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// It was done.
    EndTurn,
    /// It reached `max_tokens`.
    MaxTokens,
    /// It produced one of the stop sequences.
    StopSequence,
    /// It called tools and waits for their results.
    ToolUse,
    /// A safety system withheld or cut the output.
    ContentFilter,
}

impl FinishReason {
    /// The reason as OpenTelemetry's `gen_ai.response.finish_reasons` examples spell it (the
    /// OpenAI names): `stop`, `length`, `tool_calls`, `content_filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::EndTurn | FinishReason::StopSequence => "stop",
            FinishReason::MaxTokens => "length",
            FinishReason::ToolUse => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// A complete (non-streamed) answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The upstream's id for the answer.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// What it said: text and tool calls, in order.
    pub content: Vec<Part>,
    /// Why it stopped (`None` when the upstream did not say).
    pub finish_reason: Option<FinishReason>,
    /// Tokens consumed.
    pub usage: Usage,
}

/// One step of a streamed answer. A decoder turns an upstream's events into these as they
/// arrive; an encoder turns these into the caller's events.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer began. Always the first event.
    Start {
        /// The upstream's id for the answer.
        id: String,
        /// The model that answers.
        model: String,
    },
    /// More text.
    Text(String),
    /// A tool call began; its arguments follow in [`StreamEvent::ToolArguments`].
    ToolCallStart {
        /// The call's position among this answer's tool calls, from 0.
        index: u32,
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's arguments (JSON text, split anywhere).
    ToolArguments {
        /// The call's position among this answer's tool calls.
        index: u32,
        /// The next piece of the arguments.
        delta: String,
    },
    /// The model stopped.
    Finish(FinishReason),
    /// Tokens consumed so far. May come more than once (input early, output at the end); the
    /// last one holds the totals.
    Usage(Usage),
}

/// Why a translation cannot be done.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    /// The body does not have the shape the format requires.
    #[error("{0}")]
    Invalid(String),
    /// The request uses a field that the upstream cannot express, and dropping it would
    /// change the answer.
    #[error("`{field}` is not supported by {upstream}")]
    Unsupported {
        /// The field, as the caller named it.
        field: String,
        /// The upstream format that lacks it.
        upstream: &'static str,
    },
}

/// Turns one upstream format's stream into [`StreamEvent`]s as its bytes arrive, whatever the
/// chunk boundaries; memory stays bounded however long the stream runs.
pub trait StreamDecoder: Send + std::fmt::Debug {
    /// Takes the next chunk of the upstream body and appends the events it completes.
    fn push(&mut self, chunk: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), StreamError>;
    /// The upstream body ended: appends whatever its unfinished tail completes.
    fn finish(&mut self, events: &mut Vec<StreamEvent>) -> Result<(), StreamError>;
}

/// Writes [`StreamEvent`]s as one caller dialect's stream.
pub trait StreamEncoder: Send + std::fmt::Debug {
    /// Appends the caller's bytes for `event` to `out` (possibly none, possibly several
    /// events: a format may need to open or close blocks around it).
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// The stream ended normally: appends the closing events the dialect requires.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// A stream that cannot go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    /// The upstream sent an error event in its stream.
    #[error("the upstream reported an error in its stream: {0}")]
    Upstream(String),
    /// The upstream sent bytes that are not its format.
    #[error("the upstream stream is malformed: {0}")]
    Malformed(String),
}
