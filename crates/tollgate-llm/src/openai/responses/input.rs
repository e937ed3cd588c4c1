//! Reads a caller's `input`, a string or an array of items, into the system prompt's parts and
//! the conversation.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::chat::{Message, Part, Role, ToolCall, TranslateError};
use crate::openai::caller::{Conversation, invalid, not_carried};
use crate::openai::chat::{TextOr, from_json, image};

/// Reads `input` into the texts of its system and developer messages, in order, and the
/// conversation.
pub(super) fn conversation(
    input: &RawValue,
) -> Result<(Vec<String>, Vec<Message>), TranslateError> {
    let mut conversation = Conversation::default();
    match from_json::<TextOr<&RawValue>>("input", input.get().as_bytes())? {
        TextOr::Text(text) => conversation.push(Role::User, non_empty(text).into_iter().collect()),
        TextOr::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                add(&mut conversation, i, item)?;
            }
        }
    }
    Ok((conversation.system, conversation.messages))
}

/// What an item is, read first: the rest of its shape depends on it.
#[derive(Deserialize)]
struct ItemHead {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct MessageIn {
    role: RoleIn,
    content: TextOr<PartIn>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleIn {
    User,
    Assistant,
    System,
    Developer,
}

/// A content part, of any type: its type decides which of the other fields it needs.
#[derive(Deserialize)]
struct PartIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
}

#[derive(Deserialize)]
struct FunctionCallIn {
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct FunctionCallOutputIn {
    call_id: String,
    output: TextOr<PartIn>,
}

/// Reads item `i` of `input` into the conversation.
fn add(conversation: &mut Conversation, i: usize, item: &RawValue) -> Result<(), TranslateError> {
    let at = format!("input[{i}]");
    let json = item.get().as_bytes();
    let head: ItemHead = from_json(&at, json)?;
    let mut tool_results = false;
    match head.kind.as_deref() {
        None | Some("message") => add_message(conversation, &at, from_json(&at, json)?)?,
        Some("function_call") => {
            let call: FunctionCallIn = from_json(&at, json)?;
            let call = ToolCall {
                id: call.call_id,
                name: call.name,
                arguments: call.arguments,
            };
            conversation.note_call(&call);
            push_assistant(conversation, vec![Part::ToolCall(call)]);
        }
        Some("function_call_output") => {
            let output: FunctionCallOutputIn = from_json(&at, json)?;
            add_tool_result(conversation, &at, output)?;
            tool_results = true;
        }
        // Reasoning items carry OpenAI's encrypted reasoning, which means nothing to
        // another upstream; the visible turns around them carry the conversation.
        Some("reasoning") => return Ok(()),
        Some(kind) => return Err(not_carried(format!("{at}.type={kind}"))),
    }
    conversation.in_tool_results = tool_results;
    Ok(())
}

/// Reads the message item at `at`: system and developer texts into the system prompt, user
/// and assistant messages into the conversation.
fn add_message(
    conversation: &mut Conversation,
    at: &str,
    message: MessageIn,
) -> Result<(), TranslateError> {
    let parts = match message.content {
        TextOr::Text(text) => {
            let kind = match message.role {
                RoleIn::Assistant => "output_text",
                _ => "input_text",
            };
            vec![PartIn::text(kind, text)]
        }
        TextOr::List(parts) => parts,
    };
    match message.role {
        role @ (RoleIn::System | RoleIn::Developer) => {
            let role = if matches!(role, RoleIn::System) {
                "system"
            } else {
                "developer"
            };
            for (j, part) in parts.into_iter().enumerate() {
                let at = format!("{at}.content[{j}]");
                match part.kind.as_str() {
                    "input_text" => conversation.system.push(required(&at, "text", part.text)?),
                    "input_image" | "input_file" | "input_audio" => {
                        return Err(not_carried(format!(
                            "{at}.type={} in a {role} message",
                            part.kind
                        )));
                    }
                    _ => return Err(part.misplaced(&at, "a system or developer")),
                }
            }
        }
        RoleIn::User => {
            let content = parts
                .into_iter()
                .enumerate()
                .map(|(j, part)| part.into_input(&format!("{at}.content[{j}]"), "a user"))
                .collect::<Result<Vec<_>, _>>()?;
            conversation.push(Role::User, content.into_iter().flatten().collect());
        }
        RoleIn::Assistant => {
            let mut content = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                let at = format!("{at}.content[{j}]");
                let text = match part.kind.as_str() {
                    "output_text" | "input_text" => required(&at, "text", part.text)?,
                    "refusal" => required(&at, "refusal", part.refusal)?,
                    _ => return Err(part.misplaced(&at, "an assistant")),
                };
                content.extend(non_empty(text));
            }
            push_assistant(conversation, content);
        }
    }
    Ok(())
}

/// Reads the `function_call_output` item at `at` as a tool result.
fn add_tool_result(
    conversation: &mut Conversation,
    at: &str,
    output: FunctionCallOutputIn,
) -> Result<(), TranslateError> {
    let content = match output.output {
        TextOr::Text(text) => non_empty(text).into_iter().collect(),
        TextOr::List(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| part.into_input(&format!("{at}.output[{j}]"), "a tool"))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect(),
    };
    conversation.push_tool_result(output.call_id, content);
    Ok(())
}

/// Adds to the assistant's turn: the API gives each text and call of a turn its own item.
fn push_assistant(conversation: &mut Conversation, content: Vec<Part>) {
    match conversation.messages.last_mut() {
        Some(last) if last.role == Role::Assistant => last.content.extend(content),
        _ => conversation.push(Role::Assistant, content),
    }
}

impl PartIn {
    fn text(kind: &str, text: String) -> Self {
        PartIn {
            kind: kind.to_owned(),
            text: Some(text),
            refusal: None,
            image_url: None,
            file_id: None,
        }
    }

    /// A part of a user message or a tool's output: text or an image (`None` for an empty
    /// text, which says nothing and which some upstreams refuse).
    fn into_input(self, at: &str, holder: &str) -> Result<Option<Part>, TranslateError> {
        match self.kind.as_str() {
            "input_text" => Ok(non_empty(required(at, "text", self.text)?)),
            "input_image" => match (self.image_url, self.file_id) {
                (Some(url), _) => Ok(Some(Part::Image(image(&format!("{at}.image_url"), url)?))),
                (None, Some(_)) => Err(not_carried(format!("{at}.file_id"))),
                (None, None) => Err(invalid(format!("`{at}.image_url` is required"))),
            },
            "input_file" | "input_audio" => Err(not_carried(format!("{at}.type={}", self.kind))),
            _ => Err(self.misplaced(at, holder)),
        }
    }

    /// The error for a part that `holder` message cannot hold: invalid when the API defines
    /// it elsewhere, not supported when this module does not know it.
    fn misplaced(&self, at: &str, holder: &str) -> TranslateError {
        match self.kind.as_str() {
            "input_text" | "input_image" | "input_file" | "input_audio" | "output_text"
            | "refusal" => invalid(format!(
                "`{at}` is invalid: {holder} message cannot hold `{}` parts",
                self.kind
            )),
            kind => not_carried(format!("{at}.type={kind}")),
        }
    }
}

/// A field a part of its type needs.
fn required(at: &str, name: &str, value: Option<String>) -> Result<String, TranslateError> {
    value.ok_or_else(|| invalid(format!("`{at}.{name}` is required")))
}

/// A text as a part, unless it is empty: an empty text says nothing, and some upstreams
/// refuse it.
fn non_empty(text: String) -> Option<Part> {
    (!text.is_empty()).then_some(Part::Text(text))
}
