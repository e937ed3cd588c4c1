//! Anthropic Messages answers (the `message` object) to and from the common shape.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::{BlockOut, UsageIn, UsageOut, finish_reason, stop_reason};
use super::{error_message, to_json};
use crate::chat::{ChatResponse, Part, ToolCall, TranslateError};

#[derive(Deserialize)]
struct MessageIn {
    id: String,
    model: String,
    content: Vec<BlockIn>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: UsageIn,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockIn {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking, server-tool and newer blocks, which the common shape does not carry.
    #[serde(other)]
    Other,
}

impl BlockIn {
    fn into_part(self) -> Option<Part> {
        match self {
            BlockIn::Text { text } => Some(Part::Text(text)),
            BlockIn::ToolUse { id, name, input } => Some(Part::ToolCall(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            })),
            BlockIn::Other => None,
        }
    }
}

/// Reads an Anthropic `message` answer into the common shape.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let message: MessageIn = serde_json::from_slice(body).map_err(|e| {
        TranslateError::Invalid(match error_message(body) {
            Some(message) => format!("the upstream answered with an error: {message}"),
            None => format!("the Anthropic answer is malformed: {e}"),
        })
    })?;
    Ok(ChatResponse {
        id: message.id,
        model: message.model,
        content: message
            .content
            .into_iter()
            .filter_map(BlockIn::into_part)
            .collect(),
        finish_reason: message.stop_reason.as_deref().and_then(finish_reason),
        usage: message.usage.to_usage(),
    })
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: UsageOut,
}

/// Writes the common answer as an Anthropic `message` object. Tool-call arguments that are
/// not JSON (a model's slip) are passed on as a JSON string rather than lost.
pub fn write_response(response: &ChatResponse) -> Vec<u8> {
    let message = MessageOut {
        id: &response.id,
        kind: "message",
        role: "assistant",
        model: &response.model,
        content: response.content.iter().filter_map(answer_block).collect(),
        stop_reason: response.finish_reason.map(stop_reason),
        stop_sequence: None,
        usage: UsageOut::from(&response.usage),
    };
    to_json(&message)
}

/// The block of an answer's part: text and tool calls (an answer holds nothing else).
fn answer_block(part: &Part) -> Option<BlockOut<'_>> {
    match part {
        Part::Text(text) if !text.is_empty() => Some(BlockOut::Text { text }),
        Part::ToolCall(call) => Some(BlockOut::ToolUse {
            id: &call.id,
            name: &call.name,
            input: answer_input(&call.arguments),
        }),
        _ => None,
    }
}

fn answer_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}
