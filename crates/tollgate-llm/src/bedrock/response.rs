//! A Converse answer read into the common chat shape.

use serde::Deserialize;
use serde_json::Value;

use super::{WireUsage, finish_reason, from_json};
use crate::chat::{ChatResponse, Part, ToolCall, TranslateError};

/// Reads the body of a successful Converse call. The id and the model are left empty: Bedrock
/// does not put them in the body (the gateway fills them in, see the module doc).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let response: ConverseResponse = from_json(body).map_err(|error| {
        TranslateError::Invalid(format!("invalid Bedrock Converse response at {error}"))
    })?;
    let content = response
        .output
        .message
        .map(|message| message.content)
        .unwrap_or_default()
        .into_iter()
        .filter_map(ContentBlock::into_part)
        .collect();
    Ok(ChatResponse {
        id: String::new(),
        model: String::new(),
        content,
        finish_reason: response.stop_reason.as_deref().and_then(finish_reason),
        usage: response.usage.unwrap_or_default().into(),
    })
}

/// The fields of a `ConverseResponse` the common shape carries.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: Output,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

/// `ConverseOutput`, a union whose only member today is `message`.
#[derive(Deserialize)]
struct Output {
    message: Option<OutputMessage>,
}

#[derive(Deserialize)]
struct OutputMessage {
    content: Vec<ContentBlock>,
}

/// A `ContentBlock` union: the members read here, the others (reasoning, citations) ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlock {
    text: Option<String>,
    tool_use: Option<ToolUse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    input: Value,
}

impl ContentBlock {
    fn into_part(self) -> Option<Part> {
        if let Some(tool_use) = self.tool_use {
            return Some(Part::ToolCall(ToolCall {
                id: tool_use.tool_use_id,
                name: tool_use.name,
                arguments: tool_use.input.to_string(),
            }));
        }
        self.text.map(Part::Text)
    }
}
