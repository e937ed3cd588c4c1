//! Reads the messages of a caller's request: the conversation and its system prompt.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::chat::{Image, Message, Part, Role, ToolCall, TranslateError};
use crate::openai::caller::{Conversation, invalid, not_carried};

/// A value OpenAI accepts either as one string or as a list (`stop`, `content`, and the
/// Responses API's `input` and `output`).
pub(in crate::openai) enum TextOr<T> {
    Text(String),
    List(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for TextOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
            type Value = TextOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(text.to_owned()))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(text))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(TextOr::List(list))
            }
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

#[derive(Deserialize)]
pub(super) struct MessageIn {
    role: RoleIn,
    #[serde(default)]
    content: Option<TextOr<PartIn>>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
    #[serde(default)]
    audio: Option<IgnoredAny>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleIn {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartIn {
    Text { text: String },
    ImageUrl { image_url: ImageUrlIn },
    Refusal { refusal: String },
    InputAudio {},
    File {},
}

#[derive(Deserialize)]
struct ImageUrlIn {
    url: String,
}

#[derive(Deserialize)]
struct ToolCallIn {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionCallIn>,
}

#[derive(Deserialize)]
struct FunctionCallIn {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Reads the messages into the system prompt and the conversation.
pub(super) fn conversation(
    messages: Vec<MessageIn>,
) -> Result<(Option<String>, Vec<Message>), TranslateError> {
    let mut conversation = Conversation::default();
    for (i, message) in messages.into_iter().enumerate() {
        add(&mut conversation, i, message)?;
    }
    let system = &conversation.system;
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, conversation.messages))
}

/// Reads message `i` into the conversation.
fn add(
    conversation: &mut Conversation,
    i: usize,
    message: MessageIn,
) -> Result<(), TranslateError> {
    if message.function_call.is_some() {
        return Err(not_carried(format!("messages[{i}].function_call")));
    }
    if message.audio.is_some() {
        return Err(not_carried(format!("messages[{i}].audio")));
    }
    let role = message.role;
    match role {
        RoleIn::System | RoleIn::Developer => {
            let texts = text_parts(i, message.content)?;
            conversation
                .system
                .extend(texts.into_iter().filter(|t| !t.is_empty()));
        }
        RoleIn::User => {
            let content = user_parts(i, message.content)?;
            conversation.push(Role::User, content);
        }
        RoleIn::Assistant => {
            let content = assistant_parts(conversation, i, message)?;
            conversation.push(Role::Assistant, content);
        }
        RoleIn::Tool => add_tool_result(conversation, i, message)?,
        RoleIn::Function => return Err(not_carried(format!("messages[{i}].role=function"))),
    }
    conversation.in_tool_results = matches!(role, RoleIn::Tool);
    Ok(())
}

/// The parts of assistant message `i`: its texts, its refusal and its tool calls, which the
/// conversation notes.
fn assistant_parts(
    conversation: &mut Conversation,
    i: usize,
    message: MessageIn,
) -> Result<Vec<Part>, TranslateError> {
    let mut content = Vec::new();
    let parts = match message.content {
        None => Vec::new(),
        Some(TextOr::Text(text)) => vec![PartIn::Text { text }],
        Some(TextOr::List(parts)) => parts,
    };
    for (j, part) in parts.into_iter().enumerate() {
        match part {
            PartIn::Text { text: t } | PartIn::Refusal { refusal: t } => push_text(&mut content, t),
            _ => {
                return Err(invalid(format!(
                    "`messages[{i}].content[{j}]` is invalid: an assistant message holds text and refusals only"
                )));
            }
        }
    }
    if let Some(refusal) = message.refusal {
        push_text(&mut content, refusal);
    }
    for (j, call) in message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let call = tool_call(i, j, call)?;
        conversation.note_call(&call);
        content.push(Part::ToolCall(call));
    }
    Ok(content)
}

/// Reads `tool` message `i` as a tool result.
fn add_tool_result(
    conversation: &mut Conversation,
    i: usize,
    message: MessageIn,
) -> Result<(), TranslateError> {
    let call_id = message
        .tool_call_id
        .ok_or_else(|| invalid(format!("`messages[{i}].tool_call_id` is required")))?;
    let mut content = Vec::new();
    for text in text_parts(i, message.content)? {
        push_text(&mut content, text);
    }
    conversation.push_tool_result(call_id, content);
    Ok(())
}

/// Appends text unless it is empty: some upstreams refuse empty text blocks, and an empty
/// text says nothing.
fn push_text(content: &mut Vec<Part>, text: String) {
    if !text.is_empty() {
        content.push(Part::Text(text));
    }
}

/// The texts of a message that may hold only text (system, developer and tool messages).
fn text_parts(i: usize, content: Option<TextOr<PartIn>>) -> Result<Vec<String>, TranslateError> {
    match content {
        None => Ok(Vec::new()),
        Some(TextOr::Text(text)) => Ok(vec![text]),
        Some(TextOr::List(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| match part {
                PartIn::Text { text } => Ok(text),
                _ => Err(invalid(format!(
                    "`messages[{i}].content[{j}]` is invalid: this message holds text parts only"
                ))),
            })
            .collect(),
    }
}

/// The parts of a user message.
fn user_parts(i: usize, content: Option<TextOr<PartIn>>) -> Result<Vec<Part>, TranslateError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(TextOr::Text(text)) => vec![PartIn::Text { text }],
        Some(TextOr::List(parts)) => parts,
    };
    let mut content = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        match part {
            PartIn::Text { text } => push_text(&mut content, text),
            PartIn::ImageUrl { image_url } => {
                let at_url = format!("{}.image_url.url", at());
                content.push(Part::Image(image(&at_url, image_url.url)?))
            }
            PartIn::Refusal { .. } => {
                return Err(invalid(format!(
                    "`{}` is invalid: a refusal belongs to an assistant message",
                    at()
                )));
            }
            PartIn::InputAudio {} => return Err(not_carried(format!("{}.type=input_audio", at()))),
            PartIn::File {} => return Err(not_carried(format!("{}.type=file", at()))),
        }
    }
    Ok(content)
}

/// An image from its URL, found at `at_url` in the request: a `data:` URL becomes inline data,
/// anything else a URL.
pub(in crate::openai) fn image(at_url: &str, url: String) -> Result<Image, TranslateError> {
    let Some(data_url) = url.strip_prefix("data:") else {
        return Ok(Image::Url(url));
    };
    let (media_type, data) = data_url
        .split_once(";base64,")
        .filter(|(media_type, _)| !media_type.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "`{at_url}` is invalid: a data URL must be `data:<media type>;base64,<data>`"
            ))
        })?;
    Ok(Image::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

fn tool_call(i: usize, j: usize, call: ToolCallIn) -> Result<ToolCall, TranslateError> {
    if let Some(kind) = call.kind.filter(|kind| kind != "function") {
        return Err(not_carried(format!(
            "messages[{i}].tool_calls[{j}].type={kind}"
        )));
    }
    let function = call.function.ok_or_else(|| {
        invalid(format!(
            "`messages[{i}].tool_calls[{j}].function` is required"
        ))
    })?;
    Ok(ToolCall {
        id: call.id,
        name: function.name,
        arguments: function.arguments,
    })
}
