//! Writes the common shape as a Chat Completions request for an OpenAI-speaking upstream.

use serde::Serialize;
use serde_json::Value;

use super::UPSTREAM;
use crate::chat::{
    ChatRequest, Image, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult, TranslateError,
};

/// The field that carries the output cap: OpenAI's reasoning models refuse `max_tokens`,
/// while many compatible servers know nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`, for OpenAI and Azure OpenAI.
    MaxCompletionTokens,
    /// `max_tokens`, for OpenAI-compatible servers.
    MaxTokens,
}

impl MaxTokensField {
    /// The field's name in a request body.
    pub fn name(self) -> &'static str {
        match self {
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensField::MaxTokens => "max_tokens",
        }
    }
}

/// Writes a Chat Completions request body, with the output cap in `cap_field`. A stream
/// always asks for usage, so that usage reaches the gateway whatever the caller asked.
pub fn write_request(
    request: &ChatRequest,
    cap_field: MaxTokensField,
) -> Result<Vec<u8>, TranslateError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(MessageOut::System { content: system });
    }
    for message in &request.messages {
        match message.role {
            Role::User => user_messages(message, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(message)?),
        }
    }
    let has_tools = !request.tools.is_empty();
    let (max_completion_tokens, max_tokens) = match cap_field {
        MaxTokensField::MaxCompletionTokens => (request.max_tokens, None),
        MaxTokensField::MaxTokens => (None, request.max_tokens),
    };
    let body = RequestOut {
        model: &request.model,
        messages,
        max_completion_tokens,
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: (!request.stop.is_empty()).then_some(&request.stop),
        stream: request.stream.then_some(true),
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
        tools: request.tools.iter().map(ToolOut::from).collect(),
        // OpenAI refuses these two without tools; without tools they mean nothing.
        tool_choice: request
            .tool_choice
            .as_ref()
            .filter(|_| has_tools)
            .map(ToolChoiceOut::from),
        parallel_tool_calls: request.parallel_tool_calls.filter(|_| has_tools),
        response_format: request
            .response_format
            .as_ref()
            .map(ResponseFormatOut::from),
        user: request.user.as_deref(),
    };
    Ok(serde_json::to_vec(&body).expect("a request serialises"))
}

#[derive(Serialize)]
struct RequestOut<'a> {
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormatOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum MessageOut<'a> {
    System {
        content: &'a str,
    },
    User {
        content: ContentOut<'a>,
    },
    Assistant {
        content: Option<ContentOut<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCallOut<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: ContentOut<'a>,
    },
}

/// Content as one string when it is a single text, as parts otherwise (every OpenAI-speaking
/// server reads the string; not all read parts).
#[derive(Serialize)]
#[serde(untagged)]
enum ContentOut<'a> {
    Text(&'a str),
    Parts(Vec<PartOut<'a>>),
}

impl<'a> ContentOut<'a> {
    fn of(parts: Vec<PartOut<'a>>) -> Self {
        match parts.as_slice() {
            [PartOut::Text { text }] => ContentOut::Text(text),
            [] => ContentOut::Text(""),
            _ => ContentOut::Parts(parts),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PartOut<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrlOut },
}

#[derive(Serialize)]
struct ImageUrlOut {
    url: String,
}

impl From<&Image> for PartOut<'_> {
    fn from(image: &Image) -> Self {
        let url = match image {
            Image::Url(url) => url.clone(),
            Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        };
        PartOut::ImageUrl {
            image_url: ImageUrlOut { url },
        }
    }
}

/// A user message's tool results become `tool` messages, which must follow the assistant's
/// calls directly; its other parts, and the images the tool results held, follow them in
/// one user message.
fn user_messages<'a>(
    message: &'a Message,
    out: &mut Vec<MessageOut<'a>>,
) -> Result<(), TranslateError> {
    let mut rest = Vec::new();
    let mut has_results = false;
    for part in &message.content {
        if let Part::ToolResult(result) = part {
            out.push(tool_message(result, &mut rest)?);
            has_results = true;
        }
    }
    for part in &message.content {
        match part {
            Part::Text(text) => rest.push(PartOut::Text { text }),
            Part::Image(image) => rest.push(PartOut::from(image)),
            Part::ToolResult(_) => {}
            Part::ToolCall(_) => {
                return Err(TranslateError::Invalid(
                    "a tool call in a user message".to_owned(),
                ));
            }
        }
    }
    if !rest.is_empty() || !has_results {
        out.push(MessageOut::User {
            content: ContentOut::of(rest),
        });
    }
    Ok(())
}

/// A tool result as a `tool` message; its images go to `images`, for the user message after.
fn tool_message<'a>(
    result: &'a ToolResult,
    images: &mut Vec<PartOut<'a>>,
) -> Result<MessageOut<'a>, TranslateError> {
    let mut texts = Vec::with_capacity(result.content.len());
    for part in &result.content {
        match part {
            Part::Text(text) => texts.push(PartOut::Text { text }),
            Part::Image(image) => images.push(PartOut::from(image)),
            Part::ToolCall(_) | Part::ToolResult(_) => {
                return Err(TranslateError::Invalid(
                    "a tool result holds text and images only".to_owned(),
                ));
            }
        }
    }
    Ok(MessageOut::Tool {
        tool_call_id: &result.call_id,
        content: ContentOut::of(texts),
    })
}

fn assistant_message(message: &Message) -> Result<MessageOut<'_>, TranslateError> {
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for part in &message.content {
        match part {
            Part::Text(text) => texts.push(PartOut::Text { text }),
            Part::ToolCall(call) => tool_calls.push(ToolCallOut::from(call)),
            Part::Image(_) => {
                return Err(TranslateError::Unsupported {
                    field: "an image in an assistant message".to_owned(),
                    upstream: UPSTREAM,
                });
            }
            Part::ToolResult(_) => {
                return Err(TranslateError::Invalid(
                    "a tool result in an assistant message".to_owned(),
                ));
            }
        }
    }
    // OpenAI wants content or tool calls; content may be null only beside tool calls.
    let content = (!texts.is_empty() || tool_calls.is_empty()).then(|| ContentOut::of(texts));
    Ok(MessageOut::Assistant {
        content,
        tool_calls,
    })
}

/// A tool call as OpenAI writes it, in requests and in answers.
#[derive(Serialize)]
pub(super) struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCallOut<'a>,
}

#[derive(Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for ToolCallOut<'a> {
    fn from(call: &'a ToolCall) -> Self {
        ToolCallOut {
            id: &call.id,
            kind: "function",
            function: FunctionCallOut {
                name: &call.name,
                // OpenAI wants JSON text; a call without arguments has none.
                arguments: if call.arguments.is_empty() {
                    "{}"
                } else {
                    &call.arguments
                },
            },
        }
    }
}

#[derive(Serialize)]
struct ToolOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

impl<'a> From<&'a Tool> for ToolOut<'a> {
    fn from(tool: &'a Tool) -> Self {
        ToolOut {
            kind: "function",
            function: FunctionOut {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: &tool.parameters,
            },
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: NameOut<'a>,
    },
}

#[derive(Serialize)]
struct NameOut<'a> {
    name: &'a str,
}

impl<'a> From<&'a ToolChoice> for ToolChoiceOut<'a> {
    fn from(choice: &'a ToolChoice) -> Self {
        match choice {
            ToolChoice::Auto => ToolChoiceOut::Mode("auto"),
            ToolChoice::None => ToolChoiceOut::Mode("none"),
            ToolChoice::Required => ToolChoiceOut::Mode("required"),
            ToolChoice::Tool(name) => ToolChoiceOut::Function {
                kind: "function",
                function: NameOut { name },
            },
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormatOut<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchemaOut<'a> },
}

#[derive(Serialize)]
struct JsonSchemaOut<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl<'a> From<&'a ResponseFormat> for ResponseFormatOut<'a> {
    fn from(format: &'a ResponseFormat) -> Self {
        match format {
            ResponseFormat::JsonObject => ResponseFormatOut::JsonObject,
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => ResponseFormatOut::JsonSchema {
                json_schema: JsonSchemaOut {
                    name,
                    schema,
                    strict: *strict,
                },
            },
        }
    }
}
