//! OpenAI Chat Completions (`POST /v1/chat/completions`) to and from the common chat shape,
//! both as the caller's dialect and as an upstream format (OpenAI, Azure OpenAI and the
//! OpenAI-compatible servers), for when the caller and the upstream speak different dialects.
//!
//! # What a caller's request may carry ([`parse_request`])
//!
//! - Carried: `model`, `messages` (`system` and `developer` become the system prompt, joined
//!   by blank lines wherever they stand; `tool` messages become tool results in a user message,
//!   consecutive ones in the same message, named after the call they answer), text and
//!   `image_url` parts (an `http(s)` URL or a `data:` URL), assistant `tool_calls` and
//!   `refusal` (as text), `tools` of type `function`, `tool_choice`, `response_format`,
//!   `stop`, `max_completion_tokens` (or else `max_tokens`), `temperature`, `top_p`, `user`
//!   (or else `safety_identifier`), `parallel_tool_calls`, `stream`.
//! - Dropped, because nothing the caller relies on changes: `metadata`, `store`,
//!   `service_tier`, `seed`, `stream_options` (the gateway reads `include_usage` itself and
//!   tells the [`Encoder`]), `prompt_cache_key`, `prompt_cache_retention`, a message's `name`,
//!   an image's `detail`, a tool's `strict` (the Agents SDK sets it on every tool; the
//!   arguments still follow the schema as well as the upstream can), a JSON schema's
//!   `description`, penalties and `n` at their neutral values (`0`, `1`), `logprobs: false`,
//!   `modalities: ["text"]`, empty `logit_bias`, empty texts (some upstreams refuse them).
//! - Refused with [`TranslateError::Unsupported`], because the answer would differ: `n` > 1,
//!   `logprobs`, `top_logprobs`, `logit_bias`, non-zero `frequency_penalty` or
//!   `presence_penalty`, `audio` and audio `modalities`, `prediction`, the legacy `functions`,
//!   `function_call` and `function` role, `reasoning_effort`, `verbosity`,
//!   `web_search_options`, `custom` tools and tool calls, `allowed_tools` tool choices,
//!   `input_audio` and `file` parts, and any field this module does not know.
//!
//! # What an upstream request says ([`write_request`])
//!
//! OpenAI can express the whole common shape, with three adaptations: tool results become
//! `tool` messages ahead of the rest of their user message; an image inside a tool result
//! (which a `tool` message cannot hold) moves to the user message that follows the tool
//! messages; and a tool result's error flag is dropped (its text says what failed). A stream
//! always asks for usage (`stream_options.include_usage`).
//!
//! # Answers and streams
//!
//! Reading ([`parse_response`], [`Decoder`]): a refusal is read as text, so the caller sees
//! why the model declined. `reasoning_content` (DeepSeek, vLLM) is dropped: the common shape
//! has no hidden reasoning, and its tokens are still counted in usage. Finish reasons map
//! `stop` → end of turn, `length` → max tokens, `tool_calls` and `function_call` → tool use,
//! `content_filter` → content filter; any other is read as no reason. Azure's content-filter
//! annotations (chunks whose `object` is empty) carry no output and are skipped. A tool call
//! delta without an id gets `call_<index>`; one that begins a call without a name is
//! malformed. Only the first choice is read: Tollgate never asks for more.
//!
//! Writing ([`write_response`], [`Encoder`]): a stop sequence is reported as `stop`, as OpenAI
//! does; an answer whose upstream gave no reason says `tool_calls` if it calls tools and
//! `stop` otherwise. The encoder keeps the last usage it is given and writes it in one chunk
//! (`choices: []`) before `data: [DONE]`, only when the caller asked (`include_usage`).
//! `created` is passed in (the gateway's clock), since the common shape does not carry it.

mod decode;
mod encode;
mod parse;
mod response;
mod write;

use serde::{Deserialize, Serialize};

pub use decode::Decoder;
pub use encode::Encoder;
pub use parse::parse_request;
pub(super) use parse::{TextOr, image};
pub use response::{parse_response, write_response};
pub use write::{MaxTokensField, write_request};

use crate::Usage;
use crate::chat::{FinishReason, TranslateError};

/// The name of this format in [`crate::chat::TranslateError::Unsupported`].
const UPSTREAM: &str = "OpenAI Chat Completions";

/// Deserializes JSON, naming the place of a failure: `name` (a top-level field, or `""` for
/// a whole body) and the path inside it.
pub(super) fn from_json<'de, T: Deserialize<'de>>(
    name: &str,
    json: &'de [u8],
) -> Result<T, TranslateError> {
    let invalid = |path: &str, reason: String| {
        let at = match (name, path) {
            ("", ".") => "the body".to_owned(),
            (_, ".") => format!("`{name}`"),
            (_, p) if p.starts_with('[') || name.is_empty() => format!("`{name}{p}`"),
            (_, p) => format!("`{name}.{p}`"),
        };
        // serde_json's position is within the field, which would mislead.
        let reason = reason.split(" at line ").next().unwrap_or_default();
        TranslateError::Invalid(format!("{at} is invalid: {reason}"))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| invalid(&e.path().to_string(), e.into_inner().to_string()))?;
    deserializer
        .end()
        .map_err(|e| invalid(".", e.to_string()))?;
    Ok(value)
}

/// The OpenAI name of a finish reason.
fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::EndTurn | FinishReason::StopSequence => "stop",
        FinishReason::MaxTokens => "length",
        FinishReason::ToolUse => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// The finish reason an OpenAI name stands for (`None` for a name OpenAI does not define).
fn finish_reason_of(name: &str) -> Option<FinishReason> {
    match name {
        "stop" => Some(FinishReason::EndTurn),
        "length" => Some(FinishReason::MaxTokens),
        "tool_calls" | "function_call" => Some(FinishReason::ToolUse),
        "content_filter" => Some(FinishReason::ContentFilter),
        _ => None,
    }
}

/// `usage` as OpenAI writes it.
#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedOut,
    completion_tokens_details: ReasoningOut,
}

#[derive(Serialize)]
struct CachedOut {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningOut {
    reasoning_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(usage: Usage) -> Self {
        UsageOut {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens + usage.output_tokens,
            prompt_tokens_details: CachedOut {
                cached_tokens: usage.cached_tokens,
            },
            completion_tokens_details: ReasoningOut {
                reasoning_tokens: usage.reasoning_tokens,
            },
        }
    }
}

/// An error body as OpenAI and the compatible servers write it: `{"error":{"message":..}}`,
/// `{"error":".."}` (Ollama) or `{"object":"error","message":..}` (vLLM, Mistral).
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<serde_json::Value>,
    object: Option<String>,
    message: Option<String>,
}

impl ErrorBody {
    /// The error's message, if the body is an error.
    fn message(self) -> Option<String> {
        match self.error {
            Some(serde_json::Value::String(message)) => Some(message),
            Some(serde_json::Value::Object(mut error)) => match error.remove("message") {
                Some(serde_json::Value::String(message)) => Some(message),
                _ => Some(serde_json::Value::Object(error).to_string()),
            },
            Some(serde_json::Value::Null) | None => self
                .message
                .filter(|_| self.object.as_deref() == Some("error")),
            Some(other) => Some(other.to_string()),
        }
    }
}

/// The message of an OpenAI error body, such as `{"error":{"message":"..."}}`, for the
/// gateway to repeat in the caller's dialect.
pub fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body).ok()?.message()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_of_openai_and_compatible_servers() {
        let openai = br#"{"error":{"message":"Invalid model","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        assert_eq!(error_message(openai).as_deref(), Some("Invalid model"));
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#).as_deref(),
            Some("model 'x' not found")
        );
        assert_eq!(
            error_message(br#"{"object":"error","message":"bad","code":400}"#).as_deref(),
            Some("bad")
        );
        assert_eq!(
            error_message(br#"{"error":{"code":"x"}}"#).as_deref(),
            Some(r#"{"code":"x"}"#)
        );
        assert_eq!(error_message(br#"{"id":"x","message":"hi"}"#), None);
        assert_eq!(error_message(b"<html>"), None);
    }

    #[test]
    fn finish_reasons_map_both_ways() {
        for reason in [
            FinishReason::EndTurn,
            FinishReason::MaxTokens,
            FinishReason::ToolUse,
            FinishReason::ContentFilter,
        ] {
            assert_eq!(finish_reason_of(finish_reason_name(reason)), Some(reason));
        }
        assert_eq!(finish_reason_name(FinishReason::StopSequence), "stop");
        assert_eq!(
            finish_reason_of("function_call"),
            Some(FinishReason::ToolUse)
        );
        assert_eq!(finish_reason_of("eos"), None);
    }
}
