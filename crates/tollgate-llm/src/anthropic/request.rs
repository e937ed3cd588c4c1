//! Anthropic Messages requests to and from the common shape.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::json::{
    Object, Path, array, field, invalid, object, optional_bool, optional_f64, optional_str,
    required, required_str, string,
};
use super::wire::{BlockOut, SourceOut};
use super::{COMMON_SHAPE, UPSTREAM, to_json};
use crate::chat::{
    ChatRequest, Image, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult, TranslateError,
};

/// The `max_tokens` sent upstream when the caller set none, since Anthropic requires one:
/// enough for a long answer, within every current model's output limit.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The name given to a structured-output schema, which Anthropic does not name.
const SCHEMA_NAME: &str = "response";

/// Tool names by call id, from the history's `tool_use` blocks.
type ToolNames<'v> = HashMap<&'v str, &'v str>;

/// Reads an Anthropic Messages request body into the common shape (see the module
/// documentation for what is dropped and what is refused).
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Invalid(format!("the body is not valid JSON: {e}")))?;
    let root = Path::Root;
    let body = object(&value, root)?;
    refuse_what_cannot_travel(body)?;
    let (tool_choice, parallel_tool_calls) = parse_tool_choice(body)?;
    Ok(ChatRequest {
        model: required_str(body, "model", root)?.to_owned(),
        system: parse_system(body)?,
        messages: parse_messages(body)?,
        max_tokens: Some(parse_max_tokens(body)?),
        temperature: optional_f64(body, "temperature", root)?,
        top_p: optional_f64(body, "top_p", root)?,
        stop: parse_stop_sequences(body)?,
        stream: optional_bool(body, "stream", root)?.unwrap_or(false),
        tools: parse_tools(body)?,
        tool_choice,
        parallel_tool_calls,
        response_format: parse_output_format(body)?,
        user: parse_user(body)?,
    })
}

fn unsupported(field: String) -> TranslateError {
    TranslateError::Unsupported {
        field,
        upstream: COMMON_SHAPE,
    }
}

/// Refuses the request options the common shape cannot carry.
fn refuse_what_cannot_travel(body: &Object) -> Result<(), TranslateError> {
    if field(body, "top_k").is_some() {
        return Err(unsupported("top_k".into()));
    }
    if let Some(thinking) = field(body, "thinking")
        && thinking.get("type").and_then(Value::as_str) != Some("disabled")
    {
        return Err(unsupported("thinking".into()));
    }
    if field(body, "mcp_servers")
        .and_then(Value::as_array)
        .is_some_and(|servers| !servers.is_empty())
    {
        return Err(unsupported("mcp_servers".into()));
    }
    Ok(())
}

fn parse_max_tokens(body: &Object) -> Result<u64, TranslateError> {
    let root = Path::Root;
    required(body, "max_tokens", root)?
        .as_u64()
        .ok_or_else(|| invalid(root.key("max_tokens"), "must be a non-negative integer"))
}

/// The system prompt: a string, or text blocks joined by blank lines.
fn parse_system(body: &Object) -> Result<Option<String>, TranslateError> {
    let root = Path::Root;
    let path = root.key("system");
    let system = match field(body, "system") {
        None => return Ok(None),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| system_text(block, path.index(i)))
            .collect::<Result<Vec<_>, _>>()?
            .join("\n\n"),
        Some(_) => return Err(invalid(path, "must be a string or an array of text blocks")),
    };
    Ok((!system.is_empty()).then_some(system))
}

fn system_text<'v>(value: &'v Value, path: Path<'_>) -> Result<&'v str, TranslateError> {
    let block = object(value, path)?;
    if required_str(block, "type", path)? != "text" {
        return Err(invalid(path.key("type"), "must be `text`"));
    }
    required_str(block, "text", path)
}

fn parse_messages(body: &Object) -> Result<Vec<Message>, TranslateError> {
    let root = Path::Root;
    let path = root.key("messages");
    let mut names = ToolNames::new();
    array(required(body, "messages", root)?, path)?
        .iter()
        .enumerate()
        .map(|(i, message)| parse_message(message, path.index(i), &mut names))
        .collect()
}

fn parse_message<'v>(
    value: &'v Value,
    path: Path<'_>,
    names: &mut ToolNames<'v>,
) -> Result<Message, TranslateError> {
    let message = object(value, path)?;
    let role = match required_str(message, "role", path)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return Err(invalid(path.key("role"), "must be `user` or `assistant`")),
    };
    let content_path = path.key("content");
    let content = match required(message, "content", path)? {
        Value::String(text) => vec![Part::Text(text.clone())],
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| parse_block(block, content_path.index(i), role, names))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                content_path,
                "must be a string or an array of content blocks",
            ));
        }
    };
    Ok(Message { role, content })
}

fn parse_block<'v>(
    value: &'v Value,
    path: Path<'_>,
    role: Role,
    names: &mut ToolNames<'v>,
) -> Result<Part, TranslateError> {
    let block = object(value, path)?;
    match (required_str(block, "type", path)?, role) {
        ("text", _) => Ok(Part::Text(required_str(block, "text", path)?.to_owned())),
        ("image", _) => parse_image(block, path).map(Part::Image),
        ("tool_use", Role::Assistant) => parse_tool_use(block, path, names),
        ("tool_result", Role::User) => parse_tool_result(block, path, names),
        ("tool_use", Role::User) => Err(invalid(
            path,
            "is a `tool_use` block, which only assistant messages hold",
        )),
        ("tool_result", Role::Assistant) => Err(invalid(
            path,
            "is a `tool_result` block, which only user messages hold",
        )),
        (kind, _) => Err(unsupported(format!("{path} ({kind} block)"))),
    }
}

fn parse_image(block: &Object, path: Path<'_>) -> Result<Image, TranslateError> {
    let source_path = path.key("source");
    let source = object(required(block, "source", path)?, source_path)?;
    let path = source_path;
    match required_str(source, "type", path)? {
        "base64" => Ok(Image::Base64 {
            media_type: required_str(source, "media_type", path)?.to_owned(),
            data: required_str(source, "data", path)?.to_owned(),
        }),
        "url" => Ok(Image::Url(required_str(source, "url", path)?.to_owned())),
        kind => Err(unsupported(format!("{path} ({kind} image source)"))),
    }
}

fn parse_tool_use<'v>(
    block: &'v Object,
    path: Path<'_>,
    names: &mut ToolNames<'v>,
) -> Result<Part, TranslateError> {
    let id = required_str(block, "id", path)?;
    let name = required_str(block, "name", path)?;
    let input = required(block, "input", path)?;
    object(input, path.key("input"))?;
    names.insert(id, name);
    Ok(Part::ToolCall(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: input.to_string(),
    }))
}

fn parse_tool_result(
    block: &Object,
    path: Path<'_>,
    names: &ToolNames<'_>,
) -> Result<Part, TranslateError> {
    let call_id = required_str(block, "tool_use_id", path)?;
    let content_path = path.key("content");
    let content = match field(block, "content") {
        None => Vec::new(),
        Some(Value::String(text)) => vec![Part::Text(text.clone())],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, block)| parse_result_block(block, content_path.index(i)))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(
                content_path,
                "must be a string or an array of content blocks",
            ));
        }
    };
    Ok(Part::ToolResult(ToolResult {
        call_id: call_id.to_owned(),
        name: names.get(call_id).map(|name| (*name).to_owned()),
        content,
        is_error: optional_bool(block, "is_error", path)?.unwrap_or(false),
    }))
}

/// A block of a tool result: text or an image.
fn parse_result_block(value: &Value, path: Path<'_>) -> Result<Part, TranslateError> {
    let block = object(value, path)?;
    match required_str(block, "type", path)? {
        "text" => Ok(Part::Text(required_str(block, "text", path)?.to_owned())),
        "image" => parse_image(block, path).map(Part::Image),
        kind => Err(unsupported(format!("{path} ({kind} block)"))),
    }
}

fn parse_stop_sequences(body: &Object) -> Result<Vec<String>, TranslateError> {
    let root = Path::Root;
    let path = root.key("stop_sequences");
    let Some(sequences) = field(body, "stop_sequences") else {
        return Ok(Vec::new());
    };
    array(sequences, path)?
        .iter()
        .enumerate()
        .map(|(i, sequence)| string(sequence, path.index(i)).map(str::to_owned))
        .collect()
}

fn parse_tools(body: &Object) -> Result<Vec<Tool>, TranslateError> {
    let root = Path::Root;
    let path = root.key("tools");
    let Some(tools) = field(body, "tools") else {
        return Ok(Vec::new());
    };
    array(tools, path)?
        .iter()
        .enumerate()
        .map(|(i, tool)| parse_tool(tool, path.index(i)))
        .collect()
}

fn parse_tool(value: &Value, path: Path<'_>) -> Result<Tool, TranslateError> {
    let tool = object(value, path)?;
    if let Some(kind) = optional_str(tool, "type", path)?
        && kind != "custom"
    {
        return Err(unsupported(format!("{path} ({kind} tool)")));
    }
    let parameters = required(tool, "input_schema", path)?;
    object(parameters, path.key("input_schema"))?;
    Ok(Tool {
        name: required_str(tool, "name", path)?.to_owned(),
        description: optional_str(tool, "description", path)?.map(str::to_owned),
        parameters: parameters.clone(),
    })
}

/// The tool choice and whether parallel calls are allowed (`disable_parallel_tool_use`
/// lives inside `tool_choice`).
fn parse_tool_choice(body: &Object) -> Result<(Option<ToolChoice>, Option<bool>), TranslateError> {
    let root = Path::Root;
    let path = root.key("tool_choice");
    let Some(value) = field(body, "tool_choice") else {
        return Ok((None, None));
    };
    let choice = object(value, path)?;
    let tool_choice = match required_str(choice, "type", path)? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(required_str(choice, "name", path)?.to_owned()),
        _ => {
            return Err(invalid(
                path.key("type"),
                "must be `auto`, `any`, `tool` or `none`",
            ));
        }
    };
    let parallel = optional_bool(choice, "disable_parallel_tool_use", path)?.map(|off| !off);
    Ok((Some(tool_choice), parallel))
}

/// Structured output: `output_config.format`, or the beta `output_format`.
fn parse_output_format(body: &Object) -> Result<Option<ResponseFormat>, TranslateError> {
    let root = Path::Root;
    let config_path = root.key("output_config");
    let format_path = config_path.key("format");
    let format = match field(body, "output_config") {
        Some(config) => field(object(config, config_path)?, "format").map(|f| (f, format_path)),
        None => None,
    };
    let beta_path = root.key("output_format");
    let format = format.or_else(|| field(body, "output_format").map(|f| (f, beta_path)));
    let Some((format, path)) = format else {
        return Ok(None);
    };
    let format = object(format, path)?;
    let kind = required_str(format, "type", path)?;
    if kind != "json_schema" {
        return Err(unsupported(format!("{path} ({kind})")));
    }
    let schema = required(format, "schema", path)?;
    object(schema, path.key("schema"))?;
    Ok(Some(ResponseFormat::JsonSchema {
        name: SCHEMA_NAME.to_owned(),
        schema: schema.clone(),
        strict: Some(true),
    }))
}

fn parse_user(body: &Object) -> Result<Option<String>, TranslateError> {
    let root = Path::Root;
    let path = root.key("metadata");
    let Some(metadata) = field(body, "metadata") else {
        return Ok(None);
    };
    Ok(optional_str(object(metadata, path)?, "user_id", path)?.map(str::to_owned))
}

/// An Anthropic Messages request body.
#[derive(Serialize)]
struct RequestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    anthropic_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Vec<BlockOut<'a>>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Cow<'a, Value>,
}

#[derive(Serialize)]
struct ToolChoiceOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize)]
struct OutputConfig<'a> {
    format: FormatOut<'a>,
}

#[derive(Serialize)]
struct FormatOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'a Value,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// Writes the common request as an Anthropic Messages request body, or names the field
/// Anthropic cannot express.
pub fn write_request(request: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    write(request, None, Some(&request.model))
}

/// The `anthropic_version` Vertex AI's Claude endpoints require in the body.
const VERTEX_VERSION: &str = "vertex-2023-10-16";

/// Writes the common request for Claude on Vertex AI (`rawPredict`): the model is in the URL,
/// not the body, and the API version is in the body, not a header.
pub fn write_vertex_request(request: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    write(request, Some(VERTEX_VERSION), None)
}

fn write(
    request: &ChatRequest,
    anthropic_version: Option<&'static str>,
    model: Option<&str>,
) -> Result<Vec<u8>, TranslateError> {
    let body = RequestOut {
        anthropic_version,
        model,
        max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system: request.system.as_deref().filter(|s| !s.is_empty()),
        messages: write_messages(&request.messages)?,
        stop_sequences: &request.stop,
        temperature: request.temperature,
        top_p: request.top_p,
        stream: request.stream,
        tools: request.tools.iter().map(write_tool).collect(),
        tool_choice: write_tool_choice(request),
        output_config: write_output_config(request.response_format.as_ref())?,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
    };
    Ok(to_json(&body))
}

/// The messages, with consecutive ones of the same role merged and empty ones left out.
fn write_messages(messages: &[Message]) -> Result<Vec<MessageOut<'_>>, TranslateError> {
    let mut out: Vec<MessageOut<'_>> = Vec::with_capacity(messages.len());
    for message in messages {
        let content = write_parts(&message.content)?;
        if content.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        match out.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => out.push(MessageOut { role, content }),
        }
    }
    Ok(out)
}

fn write_parts(parts: &[Part]) -> Result<Vec<BlockOut<'_>>, TranslateError> {
    parts
        .iter()
        .filter(|part| !matches!(part, Part::Text(text) if text.is_empty()))
        .map(write_part)
        .collect()
}

fn write_part(part: &Part) -> Result<BlockOut<'_>, TranslateError> {
    Ok(match part {
        Part::Text(text) => BlockOut::Text { text },
        Part::Image(image) => BlockOut::Image {
            source: write_image(image),
        },
        Part::ToolCall(call) => BlockOut::ToolUse {
            id: &call.id,
            name: &call.name,
            input: tool_input(call)?,
        },
        Part::ToolResult(result) => {
            if result
                .content
                .iter()
                .any(|part| matches!(part, Part::ToolCall(_) | Part::ToolResult(_)))
            {
                return Err(TranslateError::Invalid(format!(
                    "the result of tool call `{}` holds more than text and images",
                    result.call_id
                )));
            }
            BlockOut::ToolResult {
                tool_use_id: &result.call_id,
                content: write_parts(&result.content)?,
                is_error: result.is_error,
            }
        }
    })
}

fn write_image(image: &Image) -> SourceOut<'_> {
    match image {
        Image::Base64 { media_type, data } => SourceOut::Base64 { media_type, data },
        Image::Url(url) => match data_url(url) {
            Some((media_type, data)) => SourceOut::Base64 { media_type, data },
            None => SourceOut::Url { url },
        },
    }
}

/// The MIME type and data of a `data:<type>;base64,<data>` URL.
fn data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// A tool call's arguments as the JSON object Anthropic's `input` must be.
fn tool_input(call: &ToolCall) -> Result<Value, TranslateError> {
    if call.arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str(&call.arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        _ => Err(TranslateError::Invalid(format!(
            "the arguments of tool call `{}` are not a JSON object",
            call.id
        ))),
    }
}

fn write_tool(tool: &Tool) -> ToolOut<'_> {
    let input_schema = if tool.parameters.is_object() {
        Cow::Borrowed(&tool.parameters)
    } else {
        Cow::Owned(json!({"type": "object", "properties": {}}))
    };
    ToolOut {
        name: &tool.name,
        description: tool.description.as_deref(),
        input_schema,
    }
}

/// `tool_choice`, which also carries whether parallel tool calls are allowed. Anthropic
/// takes it only with tools.
fn write_tool_choice(request: &ChatRequest) -> Option<ToolChoiceOut<'_>> {
    if request.tools.is_empty() {
        return None;
    }
    let disable_parallel = request.parallel_tool_calls.map(|parallel| !parallel);
    let (kind, name) = match &request.tool_choice {
        None if disable_parallel == Some(true) => ("auto", None),
        None => return None,
        Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Tool(name)) => ("tool", Some(name.as_str())),
        Some(ToolChoice::None) => {
            return Some(ToolChoiceOut {
                kind: "none",
                name: None,
                disable_parallel_tool_use: None,
            });
        }
    };
    Some(ToolChoiceOut {
        kind,
        name,
        disable_parallel_tool_use: disable_parallel,
    })
}

fn write_output_config(
    format: Option<&ResponseFormat>,
) -> Result<Option<OutputConfig<'_>>, TranslateError> {
    match format {
        None => Ok(None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => Ok(Some(OutputConfig {
            format: FormatOut {
                kind: "json_schema",
                schema,
            },
        })),
        Some(ResponseFormat::JsonObject) => Err(TranslateError::Unsupported {
            field: "response_format".into(),
            upstream: UPSTREAM,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_are_split_into_type_and_data() {
        assert_eq!(
            data_url("data:image/png;base64,iVBOR"),
            Some(("image/png", "iVBOR"))
        );
        assert_eq!(data_url("https://example.com/a.png"), None);
    }

    #[test]
    fn empty_arguments_are_an_empty_input() {
        let call = ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: String::new(),
        };
        assert_eq!(tool_input(&call), Ok(json!({})));
        let bad = ToolCall {
            arguments: "[1]".into(),
            ..call
        };
        assert!(matches!(tool_input(&bad), Err(TranslateError::Invalid(_))));
    }
}
