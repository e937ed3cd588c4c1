//! Pieces of Anthropic's wire format that requests, answers and streams share: content
//! blocks, stop reasons, usage and error bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Usage;
use crate::chat::FinishReason;

/// A content block as Anthropic writes it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockOut<'a> {
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// An image.
    Image {
        /// Where its bytes are.
        source: SourceOut<'a>,
    },
    /// A call of a tool by the model.
    ToolUse {
        /// The call's id.
        id: &'a str,
        /// The tool's name.
        name: &'a str,
        /// The arguments, a JSON object.
        input: Value,
    },
    /// What a tool call returned.
    ToolResult {
        /// The call it answers.
        tool_use_id: &'a str,
        /// Text and image blocks.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<BlockOut<'a>>,
        /// Whether the tool failed.
        #[serde(skip_serializing_if = "is_false")]
        is_error: bool,
    },
}

/// Where an image's bytes are.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum SourceOut<'a> {
    /// Inline.
    Base64 {
        /// The MIME type.
        media_type: &'a str,
        /// The base64 data.
        data: &'a str,
    },
    /// At a URL the upstream fetches.
    Url {
        /// The URL.
        url: &'a str,
    },
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The common finish reason of an Anthropic `stop_reason`; `None` for one this crate does
/// not know.
pub(super) fn finish_reason(stop_reason: &str) -> Option<FinishReason> {
    Some(match stop_reason {
        "end_turn" | "pause_turn" => FinishReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::MaxTokens,
        "stop_sequence" => FinishReason::StopSequence,
        "tool_use" => FinishReason::ToolUse,
        "refusal" => FinishReason::ContentFilter,
        _ => return None,
    })
}

/// The Anthropic `stop_reason` of a common finish reason.
pub(super) fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::EndTurn => "end_turn",
        FinishReason::MaxTokens => "max_tokens",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::ToolUse => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Anthropic's usage object, in answers, `message_start` and (cumulative, with only some
/// fields) `message_delta`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(super) struct UsageIn {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

/// The breakdown of output tokens.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
pub(super) struct OutputDetails {
    #[serde(default)]
    thinking_tokens: u64,
}

impl UsageIn {
    /// Takes the counts a later report carries: `message_delta` counts are cumulative totals
    /// and leave out the ones that did not change.
    pub(super) fn merge(&mut self, later: UsageIn) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.output_tokens_details = later.output_tokens_details.or(self.output_tokens_details);
    }

    /// The common usage: Anthropic's `input_tokens` leaves out the tokens read from and
    /// written to the cache, the common count includes them.
    pub(super) fn to_usage(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0)
                + cached
                + self.cache_creation_input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: cached,
            reasoning_tokens: self.output_tokens_details.map_or(0, |d| d.thinking_tokens),
        }
    }
}

/// Anthropic's usage object as Tollgate writes it. The common shape does not tell cache
/// writes from other input, so they count as uncached input.
#[derive(Debug, Serialize)]
pub(super) struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens_details: Option<OutputDetails>,
}

impl From<&Usage> for UsageOut {
    fn from(usage: &Usage) -> Self {
        Self {
            input_tokens: usage.input_tokens.saturating_sub(usage.cached_tokens),
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: usage.cached_tokens,
            output_tokens: usage.output_tokens,
            output_tokens_details: (usage.reasoning_tokens > 0).then_some(OutputDetails {
                thinking_tokens: usage.reasoning_tokens,
            }),
        }
    }
}

/// Anthropic's error body, `{"type":"error","error":{"type":...,"message":...}}`, also sent
/// as a stream's `error` event.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    /// What went wrong.
    pub(super) error: ErrorObject,
}

/// The `error` object of an error body.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorObject {
    /// The kind of error, such as `overloaded_error`.
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// The human-readable message.
    pub(super) message: String,
}

impl ErrorObject {
    /// The message, led by the kind of error when there is one.
    pub(super) fn describe(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{kind}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finish_reason_survives_the_round_trip() {
        for reason in [
            FinishReason::EndTurn,
            FinishReason::MaxTokens,
            FinishReason::StopSequence,
            FinishReason::ToolUse,
            FinishReason::ContentFilter,
        ] {
            assert_eq!(finish_reason(stop_reason(reason)), Some(reason));
        }
        assert_eq!(finish_reason("pause_turn"), Some(FinishReason::EndTurn));
        assert_eq!(finish_reason("something_new"), None);
    }

    #[test]
    fn later_usage_overwrites_only_what_it_carries() {
        let mut usage: UsageIn = serde_json::from_str(
            r#"{"input_tokens":10,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":1}"#,
        )
        .unwrap();
        usage.merge(serde_json::from_str(r#"{"output_tokens":30}"#).unwrap());
        assert_eq!(
            usage.to_usage(),
            Usage {
                input_tokens: 16,
                output_tokens: 30,
                cached_tokens: 4,
                reasoning_tokens: 0
            }
        );
    }

    #[test]
    fn written_usage_reads_back_the_same() {
        let usage = Usage {
            input_tokens: 100,
            output_tokens: 50,
            cached_tokens: 60,
            reasoning_tokens: 20,
        };
        let text = serde_json::to_string(&UsageOut::from(&usage)).unwrap();
        let back: UsageIn = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_usage(), usage);
    }
}
