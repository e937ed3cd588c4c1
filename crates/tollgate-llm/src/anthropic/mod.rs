//! Anthropic's Messages API (`POST /v1/messages`): its requests, answers and streams, to and
//! from the common chat shape. Anthropic is both a caller dialect (an Anthropic SDK or Claude
//! Code talking to any upstream) and an upstream format.
//!
//! # What travels and what does not
//!
//! Reading a caller's request ([`parse_request`]):
//! - `system` is a string or an array of text blocks; blocks are joined by blank lines.
//! - `cache_control` (on the request, system blocks, messages, content blocks and tools) is
//!   dropped: it asks for prompt caching, which saves cost but does not change the answer.
//!   So are `citations` on text blocks, the tool fields `strict`, `eager_input_streaming`,
//!   `input_examples` and `defer_loading`, `metadata` other than `user_id` (which becomes
//!   `user`), `output_config.effort`, `service_tier`, `inference_geo`, `speed`, `container`
//!   and `context_management`.
//! - `output_config.format` (and the beta `output_format`) of type `json_schema` becomes
//!   [`ResponseFormat::JsonSchema`] named `response`, strict, as Anthropic always is.
//! - Refused with [`TranslateError::Unsupported`], since the common shape cannot carry them
//!   and dropping them would change the answer: `thinking` (unless `{"type":"disabled"}`),
//!   `thinking` and `redacted_thinking` blocks in the history (their signatures have no
//!   place in the common shape), `document`, `search_result` and any other block that is
//!   not text, image, `tool_use` or `tool_result`, images by `file` id, server tools (a
//!   `tools` entry whose `type` is not `custom`, such as `web_search_20250305`),
//!   `mcp_servers`, and `top_k` (no other format has it).
//! - `max_tokens` is required, as Anthropic requires it.
//! - A `tool_result` gets the tool's name from the history's `tool_use` with its id, for the
//!   formats that need it (Gemini).
//!
//! Writing an upstream request ([`write_request`]):
//! - `max_tokens` is required by Anthropic: a request without one gets
//!   [`DEFAULT_MAX_TOKENS`].
//! - [`ResponseFormat::JsonSchema`] becomes `output_config.format` (Anthropic's structured
//!   outputs; the schema's name and `strict` have no place there and are dropped).
//!   [`ResponseFormat::JsonObject`] is refused: Anthropic has no schema-less JSON mode.
//! - Consecutive messages of the same role are merged (Anthropic does so itself, and wants
//!   all the results of a turn's tool calls in one user message); empty text parts, which
//!   Anthropic refuses, are skipped, and so are messages left with nothing in them.
//! - An image URL of the `data:` kind is sent inline, as base64.
//! - `tool_choice` is sent only with tools; `parallel_tool_calls: false` becomes
//!   `disable_parallel_tool_use`.
//! - Values are not clamped to Anthropic's ranges (a `temperature` above 1 is the
//!   upstream's to refuse, with its own message).
//!
//! Answers ([`parse_response`], [`write_response`]):
//! - `thinking`, `redacted_thinking` and server-tool blocks of an answer are dropped (the
//!   reasoning stays counted in usage); so are blocks of types this crate does not know.
//! - Stop reasons: `pause_turn` is [`FinishReason::EndTurn`], `refusal`
//!   [`FinishReason::ContentFilter`], `model_context_window_exceeded`
//!   [`FinishReason::MaxTokens`]. Which stop sequence matched is not carried:
//!   `stop_sequence` is written as `null`.
//! - Usage: the common `input_tokens` is Anthropic's `input_tokens` plus
//!   `cache_read_input_tokens` plus `cache_creation_input_tokens`; `cached_tokens` is
//!   `cache_read_input_tokens`; `reasoning_tokens` is `output_tokens_details.thinking_tokens`.
//!   Written back, cache writes count as plain input.
//!
//! Streams ([`Decoder`], [`Encoder`]): see their own documentation.
//!
//! [`ResponseFormat::JsonSchema`]: crate::chat::ResponseFormat::JsonSchema
//! [`ResponseFormat::JsonObject`]: crate::chat::ResponseFormat::JsonObject
//! [`TranslateError::Unsupported`]: crate::chat::TranslateError::Unsupported
//! [`FinishReason::EndTurn`]: crate::chat::FinishReason::EndTurn
//! [`FinishReason::ContentFilter`]: crate::chat::FinishReason::ContentFilter
//! [`FinishReason::MaxTokens`]: crate::chat::FinishReason::MaxTokens

mod encoder;
mod json;
mod request;
mod response;
mod stream;
mod wire;

pub use encoder::Encoder;
pub use request::{DEFAULT_MAX_TOKENS, parse_request, write_request, write_vertex_request};
pub use response::{parse_response, write_response};
pub use stream::Decoder;

/// What a refused caller field lacks: the common shape, and so every other provider.
const COMMON_SHAPE: &str = "translation to another provider";

/// The upstream named in errors about fields Anthropic cannot take.
const UPSTREAM: &str = "Anthropic";

/// The message of an Anthropic error body (`{"type":"error","error":{"type":...,
/// "message":...}}`), so that an upstream's error can be told to the caller in its own
/// dialect; `None` when the body is not one.
pub fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<wire::ErrorBody>(body)
        .ok()
        .map(|body| body.error.message)
}

/// Tollgate's own wire types as JSON. They hold only strings, numbers and JSON values, which
/// always serialise.
fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("Anthropic wire types serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_their_message() {
        let body = br#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#;
        assert_eq!(error_message(body).as_deref(), Some("model: x"));
        assert_eq!(error_message(b"{\"error\":\"plain\"}"), None);
        assert_eq!(error_message(b"<html>"), None);
    }
}
