//! Amazon Bedrock's Converse API (`converse`, `converse-stream`), as an upstream: requests
//! written from the common chat shape, answers and event streams read into it.
//!
//! The model id and the choice between `converse` and `converse-stream` live in the URL, which
//! the gateway builds, so [`write_request`] ignores [`ChatRequest::model`] and
//! [`ChatRequest::stream`].
//!
//! # Requests
//!
//! - The system prompt becomes `system: [{text}]`; messages become `messages` with `text`,
//!   `image` (base64 `bytes`), `toolUse` and `toolResult` blocks. Consecutive messages of the
//!   same role are merged into one turn, because Bedrock requires turns to alternate (a caller
//!   dialect such as OpenAI's sends one message per tool result). Empty text parts are dropped:
//!   Bedrock rejects blank text blocks and they say nothing.
//! - A tool result carries `status: "error"` when the tool failed; a successful one carries no
//!   status (Bedrock's default), since only some models accept the field.
//! - `max_tokens`, `temperature`, `top_p` and `stop` go to `inferenceConfig`.
//! - Tools go to `toolConfig.tools[].toolSpec` (a tool without parameters gets an empty object
//!   schema); `tool_choice` auto / required / a named tool become `auto` / `any` / `tool`.
//!   Bedrock has no "none": the tools are then left out, so the model cannot call any, which
//!   is exactly "none". When the history already holds tool calls or results, Bedrock requires
//!   `toolConfig`, so "none" cannot be expressed and the request is refused
//!   ([`TranslateError::Unsupported`] naming `tool_choice`).
//! - Bedrock cannot forbid parallel tool calls: `parallel_tool_calls: false` is refused when
//!   the model may call tools, except when `tool_choice` names one tool (the model then calls
//!   that tool).
//! - `response_format` becomes `outputConfig.textFormat` (Bedrock's structured output): a JSON
//!   schema as is (Bedrock always enforces it, so `strict` needs no field), JSON mode as the
//!   schema `{"type": "object"}`. Only some models accept it; the others answer with their
//!   own 400.
//! - Image URLs are refused (`image_url`): Bedrock takes only inline bytes or S3 locations.
//!   Inline images must be PNG, JPEG, GIF or WebP, the formats Bedrock names.
//! - `user` is dropped: it only feeds the upstream's abuse monitoring.
//!
//! # Answers and streams
//!
//! Neither a Converse answer nor a ConverseStream stream carries an id or the model: the id
//! is only in the `x-amzn-requestid` HTTP header, which this pure crate never sees. So
//! [`ChatResponse::id`] and the id of [`StreamEvent::Start`] are empty, and the model is empty
//! too: the gateway fills in the request id and the model it asked for. Staying empty (rather
//! than counting or drawing random ids) keeps translation pure and repeatable.
//!
//! Text and `toolUse` blocks are read (a streamed tool call whose input stays empty gets `{}`
//! when its block stops, so callers always receive a JSON object). `reasoningContent`
//! (reasoning text and its signature) is ignored: the common shape has no reasoning text, this
//! translator never asks for reasoning, and Bedrock counts reasoning in `outputTokens` without
//! breaking it out. Other block kinds (citations, guard content) and
//! unknown stream events are ignored as well, so new Bedrock features do not break old
//! gateways. Bedrock's `inputTokens` leaves out the tokens read from and written to the prompt
//! cache, so [`Usage::input_tokens`] adds `cacheReadInputTokens` and `cacheWriteInputTokens`
//! back, and [`Usage::cached_tokens`] is `cacheReadInputTokens`.
//!
//! Stop reasons: `end_turn`, `tool_use`, `max_tokens`, `stop_sequence` map to their kin,
//! `model_context_window_exceeded` to [`FinishReason::MaxTokens`], `guardrail_intervened` and
//! `content_filtered` to [`FinishReason::ContentFilter`]; any other reason (for example
//! `malformed_model_output`) is reported as no reason.
//!
//! The stream's binary framing is decoded with `aws-smithy-eventstream`. A frame announcing
//! more than 16 MiB, a bad checksum, a stream that ends inside a frame or before
//! `messageStop` are [`StreamError::Malformed`]; an `exception` frame
//! (`throttlingException`, `modelStreamErrorException`...) is [`StreamError::Upstream`] with
//! its type and message.
//!
//! [`ChatRequest::model`]: crate::chat::ChatRequest::model
//! [`ChatRequest::stream`]: crate::chat::ChatRequest::stream
//! [`TranslateError::Unsupported`]: crate::chat::TranslateError::Unsupported
//! [`ChatResponse::id`]: crate::chat::ChatResponse::id
//! [`StreamEvent::Start`]: crate::chat::StreamEvent::Start
//! [`FinishReason::MaxTokens`]: crate::chat::FinishReason::MaxTokens
//! [`FinishReason::ContentFilter`]: crate::chat::FinishReason::ContentFilter
//! [`StreamError::Malformed`]: crate::chat::StreamError::Malformed
//! [`StreamError::Upstream`]: crate::chat::StreamError::Upstream

mod request;
mod response;
mod stream;

pub use request::write_request;
pub use response::parse_response;
pub use stream::Decoder;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Usage;
use crate::chat::FinishReason;

/// The upstream's name in [`crate::chat::TranslateError::Unsupported`].
const UPSTREAM: &str = "Amazon Bedrock";

/// The message of a Bedrock error body (`{"message": "..."}`, some services spell it
/// `Message`), so the gateway can repeat it in the caller's dialect.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["message", "Message"]
        .iter()
        .find_map(|key| value.get(key)?.as_str())
        .map(str::to_owned)
}

/// Deserializes a JSON body or payload; the error names the field that failed
/// (`output.message.content[1].toolUse.name: missing field ...`).
fn from_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        format!("`{path}`: {}", error.into_inner())
    })?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(value)
}

/// Bedrock's `stopReason`, in the common shape (`None` for a reason it has no word for).
fn finish_reason(stop_reason: &str) -> Option<FinishReason> {
    match stop_reason {
        "end_turn" => Some(FinishReason::EndTurn),
        "tool_use" => Some(FinishReason::ToolUse),
        "max_tokens" | "model_context_window_exceeded" => Some(FinishReason::MaxTokens),
        "stop_sequence" => Some(FinishReason::StopSequence),
        "guardrail_intervened" | "content_filtered" => Some(FinishReason::ContentFilter),
        _ => None,
    }
}

/// Bedrock's `usage` object (`TokenUsage`), in an answer or a stream's `metadata` event.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_write_input_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage {
            input_tokens: usage
                .input_tokens
                .saturating_add(usage.cache_read_input_tokens)
                .saturating_add(usage.cache_write_input_tokens),
            output_tokens: usage.output_tokens,
            cached_tokens: usage.cache_read_input_tokens,
            reasoning_tokens: 0,
        }
    }
}
