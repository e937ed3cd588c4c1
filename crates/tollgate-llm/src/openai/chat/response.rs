//! A complete (non-streamed) chat completion, read from an upstream or written for a caller.

use serde::{Deserialize, Serialize};

use super::write::ToolCallOut;
use super::{UsageOut, finish_reason_name, finish_reason_of, from_json};
use crate::chat::{ChatResponse, Part, ToolCall, TranslateError};
use crate::openai::usage::OpenAIUsage;

#[derive(Deserialize)]
struct CompletionIn {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    choices: Vec<ChoiceIn>,
    #[serde(default)]
    usage: Option<OpenAIUsage>,
}

#[derive(Deserialize)]
struct ChoiceIn {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    message: Option<MessageIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct MessageIn {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
}

#[derive(Deserialize)]
struct ToolCallIn {
    id: String,
    function: FunctionCallIn,
}

#[derive(Deserialize)]
struct FunctionCallIn {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Reads an upstream's chat completion (its first choice: Tollgate never asks for more).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let completion: CompletionIn = from_json("", body)?;
    let choice = completion.choices.into_iter().find(|c| c.index == 0);
    let (message, finish_reason) = match choice {
        Some(choice) => (choice.message, choice.finish_reason),
        None => (None, None),
    };
    let mut content = Vec::new();
    if let Some(message) = message {
        let texts = [message.content, message.refusal];
        content.extend(
            texts
                .into_iter()
                .flatten()
                .filter(|t| !t.is_empty())
                .map(Part::Text),
        );
        let calls = message.tool_calls.unwrap_or_default().into_iter();
        content.extend(calls.map(|call| {
            Part::ToolCall(ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
        }));
    }
    Ok(ChatResponse {
        id: completion.id,
        model: completion.model,
        content,
        finish_reason: finish_reason.as_deref().and_then(finish_reason_of),
        usage: completion.usage.map(Into::into).unwrap_or_default(),
    })
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

/// Writes a `chat.completion` object for the caller. `created` is the answer's Unix time,
/// which the caller's SDK requires and the common shape does not carry.
pub fn write_response(response: &ChatResponse, created: u64) -> Vec<u8> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for part in &response.content {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall(call) => tool_calls.push(ToolCallOut::from(call)),
            // An answer holds text and tool calls only.
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    // Like OpenAI: content is null beside tool calls when there is no text.
    let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
    let finish_reason = match response.finish_reason {
        Some(reason) => finish_reason_name(reason),
        // The upstream did not say: it either stopped to call tools or was done.
        None if !tool_calls.is_empty() => "tool_calls",
        None => "stop",
    };
    let completion = CompletionOut {
        id: &response.id,
        object: "chat.completion",
        created,
        model: &response.model,
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content,
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason,
        }],
        usage: response.usage.into(),
    };
    serde_json::to_vec(&completion).expect("a completion serialises")
}
