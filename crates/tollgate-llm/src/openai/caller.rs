//! What the two caller dialects, Chat Completions ([`super::chat`]) and Responses
//! ([`super::responses`]), share in reading a caller's request: its top-level fields one by
//! one, the errors that name what is wrong or not carried, the tool choice, and the
//! conversation's tool calls and results.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::chat::from_json;
use crate::chat::{
    ChatRequest, Message, Part, Role, Tool, ToolCall, ToolChoice, ToolResult, TranslateError,
};

/// What lacks a field the common shape cannot carry, in [`TranslateError::Unsupported`].
const NOT_CARRIED: &str = "translation to another provider";

/// A request that is not what the dialect defines; `message` names the field.
pub(super) fn invalid(message: String) -> TranslateError {
    TranslateError::Invalid(message)
}

/// A request whose `field` (or value) the common shape cannot carry.
pub(super) fn not_carried(field: String) -> TranslateError {
    TranslateError::Unsupported {
        field,
        upstream: NOT_CARRIED,
    }
}

/// Reads a request body's top-level fields in order of their names, each with `read_field`
/// into the request or into `R` (the fields read before they can be placed, because they
/// depend on one another), and requires a `model`.
pub(super) fn read_fields<'a, R: Default>(
    body: &'a [u8],
    mut read_field: impl FnMut(
        &str,
        &'a RawValue,
        &mut ChatRequest,
        &mut R,
    ) -> Result<(), TranslateError>,
) -> Result<(ChatRequest, R), TranslateError> {
    let fields: BTreeMap<String, &'a RawValue> = from_json("", body)?;
    let mut request = ChatRequest::default();
    let mut rest = R::default();
    for (name, raw) in fields {
        read_field(&name, raw, &mut request, &mut rest)?;
    }
    if request.model.is_empty() {
        return Err(invalid("`model` is required".to_owned()));
    }
    Ok((request, rest))
}

/// Deserializes one top-level field, naming the field (and the path inside it) on failure.
pub(super) fn field<'de, T: Deserialize<'de>>(
    name: &str,
    raw: &'de RawValue,
) -> Result<T, TranslateError> {
    from_json(name, raw.get().as_bytes())
}

/// The function a `tools` entry of type `function` defines, as both dialects write it: Chat
/// Completions in the entry's `function`, Responses in the entry itself.
#[derive(Deserialize)]
pub(super) struct FunctionIn {
    /// The function's name.
    pub(super) name: String,
    /// What the function does, for the model.
    #[serde(default)]
    pub(super) description: Option<String>,
    /// The JSON schema of its arguments.
    #[serde(default)]
    pub(super) parameters: Option<Value>,
}

/// A `tools` entry as a dialect writes it.
pub(super) trait ToolEntry {
    /// The entry's `type`: `function`, or a built-in or custom tool.
    fn kind(&self) -> &str;

    /// The function that entry `i`, of type `function`, defines, or the error naming what it
    /// lacks.
    fn into_function(self, i: usize) -> Result<FunctionIn, TranslateError>;
}

/// Reads `tools`: entries of type `function` become tools; any other type (a built-in or
/// custom tool) is refused.
pub(super) fn tools<T: ToolEntry>(list: Option<Vec<T>>) -> Result<Vec<Tool>, TranslateError> {
    let list = list.unwrap_or_default();
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.into_iter().enumerate() {
        if tool.kind() != "function" {
            return Err(not_carried(format!("tools[{i}].type={}", tool.kind())));
        }
        let function = tool.into_function(i)?;
        tools.push(Tool {
            name: function.name,
            description: function.description,
            // OpenAI reads a missing or null schema as a function without parameters.
            parameters: function
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

/// Reads `tool_choice`: `"auto"`, `"none"`, `"required"`, or an object of type `function`
/// whose name stands at the JSON pointer `name_at` (`function_shape` spells that object in the
/// error). An object of another type (a built-in or custom tool, `allowed_tools`) is refused:
/// the common shape cannot carry it.
pub(super) fn tool_choice(
    value: Option<Value>,
    name_at: &str,
    function_shape: &str,
) -> Result<Option<ToolChoice>, TranslateError> {
    let wrong = || {
        invalid(format!(
            "`tool_choice` is invalid: expected \"auto\", \"none\", \"required\" or {function_shape}"
        ))
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let choice = match &value {
        Value::String(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(wrong()),
        },
        Value::Object(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = value.pointer(name_at).and_then(Value::as_str);
                ToolChoice::Tool(name.ok_or_else(wrong)?.to_owned())
            }
            Some(kind) => return Err(not_carried(format!("tool_choice.type={kind}"))),
            None => return Err(wrong()),
        },
        _ => return Err(wrong()),
    };
    Ok(Some(choice))
}

/// The conversation as it is read, message by message (Chat Completions) or item by item
/// (Responses).
#[derive(Default)]
pub(super) struct Conversation {
    /// The texts of the system and developer messages, in order.
    pub(super) system: Vec<String>,
    /// The conversation's messages so far.
    pub(super) messages: Vec<Message>,
    /// Tool names by call id, for the tool results that answer the calls.
    names: HashMap<String, String>,
    /// Whether the last message holds the tool results just read, so that the next result
    /// joins it. The reader keeps it, since only the reader knows what may stand between two
    /// results without parting them.
    pub(super) in_tool_results: bool,
}

impl Conversation {
    /// Appends a message.
    pub(super) fn push(&mut self, role: Role, content: Vec<Part>) {
        self.messages.push(Message { role, content });
    }

    /// Notes a tool call, so that the result answering it is named after its tool.
    pub(super) fn note_call(&mut self, call: &ToolCall) {
        self.names.insert(call.id.clone(), call.name.clone());
    }

    /// Adds the result of call `call_id`, named after the call it answers: to the user message
    /// of the tool results just read, or else in a new user message.
    pub(super) fn push_tool_result(&mut self, call_id: String, content: Vec<Part>) {
        let result = Part::ToolResult(ToolResult {
            name: self.names.get(&call_id).cloned(),
            call_id,
            content,
            is_error: false,
        });
        match self.messages.last_mut() {
            Some(last) if self.in_tool_results => last.content.push(result),
            _ => self.push(Role::User, vec![result]),
        }
    }
}
