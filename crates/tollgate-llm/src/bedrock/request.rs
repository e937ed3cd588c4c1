//! The common chat shape written as a Converse / ConverseStream request body.

use serde_json::{Map, Value, json};

use super::UPSTREAM;
use crate::chat::{
    ChatRequest, Image, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult, TranslateError,
};

/// Writes `request` as the JSON body of a Converse or ConverseStream call (the model and the
/// streaming choice go in the URL, so `model` and `stream` are not written). Fails with
/// [`TranslateError::Unsupported`] for what Bedrock cannot express (see the module doc).
pub fn write_request(request: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    let mut body = Map::new();
    if let Some(system) = request.system.as_deref().filter(|text| !text.is_empty()) {
        body.insert("system".into(), json!([{ "text": system }]));
    }
    body.insert(
        "messages".into(),
        Value::Array(messages(&request.messages)?),
    );
    if let Some(config) = inference_config(request) {
        body.insert("inferenceConfig".into(), config);
    }
    if let Some(config) = tool_config(request)? {
        body.insert("toolConfig".into(), config);
    }
    if let Some(format) = &request.response_format {
        body.insert("outputConfig".into(), output_config(format));
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

/// The conversation as Bedrock turns, consecutive messages of one role merged into one turn.
fn messages(messages: &[Message]) -> Result<Vec<Value>, TranslateError> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::with_capacity(messages.len());
    for message in messages {
        let blocks = message
            .content
            .iter()
            .filter(|part| !matches!(part, Part::Text(text) if text.is_empty()))
            .map(content_block)
            .collect::<Result<Vec<_>, _>>()?;
        match turns.last_mut() {
            Some((role, content)) if *role == message.role => content.extend(blocks),
            _ => turns.push((message.role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role_name(role), "content": content }))
        .collect())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// One part as a Bedrock `ContentBlock`.
fn content_block(part: &Part) -> Result<Value, TranslateError> {
    Ok(match part {
        Part::Text(text) => json!({ "text": text }),
        Part::Image(image) => json!({ "image": image_block(image)? }),
        Part::ToolCall(call) => json!({ "toolUse": tool_use(call)? }),
        Part::ToolResult(result) => json!({ "toolResult": tool_result(result)? }),
    })
}

/// An `ImageBlock`: Bedrock takes inline bytes (base64 in JSON) or S3, never a URL.
fn image_block(image: &Image) -> Result<Value, TranslateError> {
    match image {
        Image::Url(_) => Err(unsupported("image_url".to_owned())),
        Image::Base64 { media_type, data } => Ok(json!({
            "format": image_format(media_type)?,
            "source": { "bytes": data },
        })),
    }
}

fn image_format(media_type: &str) -> Result<&'static str, TranslateError> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        _ => Err(unsupported(format!("image of type {media_type}"))),
    }
}

/// A `ToolUseBlock`: Bedrock wants the arguments as a JSON value, not as text.
fn tool_use(call: &ToolCall) -> Result<Value, TranslateError> {
    let input = if call.arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str::<Value>(&call.arguments).map_err(|error| {
            TranslateError::Invalid(format!(
                "the arguments of tool call `{}` are not valid JSON: {error}",
                call.id
            ))
        })?
    };
    Ok(json!({ "toolUseId": call.id, "name": call.name, "input": input }))
}

/// A `ToolResultBlock` (text and images); `status` only when the tool failed.
fn tool_result(result: &ToolResult) -> Result<Value, TranslateError> {
    let content = result
        .content
        .iter()
        .map(|part| match part {
            Part::Text(text) => Ok(json!({ "text": text })),
            Part::Image(image) => Ok(json!({ "image": image_block(image)? })),
            Part::ToolCall(_) | Part::ToolResult(_) => Err(TranslateError::Invalid(format!(
                "the result of tool call `{}` may hold only text and images",
                result.call_id
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut block = json!({ "toolUseId": result.call_id, "content": content });
    if result.is_error {
        block["status"] = json!("error");
    }
    Ok(block)
}

/// `inferenceConfig`, or nothing when the request sets none of its fields.
fn inference_config(request: &ChatRequest) -> Option<Value> {
    let mut config = Map::new();
    if let Some(max_tokens) = request.max_tokens {
        config.insert("maxTokens".into(), json!(max_tokens));
    }
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        config.insert("topP".into(), json!(top_p));
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), json!(request.stop));
    }
    (!config.is_empty()).then_some(Value::Object(config))
}

/// `toolConfig`, or nothing when the model gets no tools.
fn tool_config(request: &ChatRequest) -> Result<Option<Value>, TranslateError> {
    let choice = match &request.tool_choice {
        Some(ToolChoice::None) => return no_tool_config(request),
        Some(ToolChoice::Auto) => Some(json!({ "auto": {} })),
        Some(ToolChoice::Required) => Some(json!({ "any": {} })),
        Some(ToolChoice::Tool(name)) => Some(json!({ "tool": { "name": name } })),
        None => None,
    };
    if request.tools.is_empty() {
        return Ok(None);
    }
    let one_named_tool = matches!(request.tool_choice, Some(ToolChoice::Tool(_)));
    if request.parallel_tool_calls == Some(false) && !one_named_tool {
        return Err(unsupported("parallel_tool_calls".to_owned()));
    }
    let mut config = Map::new();
    config.insert(
        "tools".into(),
        request.tools.iter().map(tool_spec).collect::<Value>(),
    );
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

/// `tool_choice: none`: leaving the tools out forbids calls, unless the history holds tool
/// blocks, for which Bedrock requires `toolConfig`.
fn no_tool_config(request: &ChatRequest) -> Result<Option<Value>, TranslateError> {
    let history_uses_tools = request.messages.iter().any(|message| {
        message
            .content
            .iter()
            .any(|part| matches!(part, Part::ToolCall(_) | Part::ToolResult(_)))
    });
    if history_uses_tools && !request.tools.is_empty() {
        return Err(unsupported("tool_choice".to_owned()));
    }
    Ok(None)
}

fn tool_spec(tool: &Tool) -> Value {
    let schema = match &tool.parameters {
        Value::Null => json!({ "type": "object", "properties": {} }),
        parameters => parameters.clone(),
    };
    let mut spec = json!({ "name": tool.name, "inputSchema": { "json": schema } });
    if let Some(description) = &tool.description {
        spec["description"] = json!(description);
    }
    json!({ "toolSpec": spec })
}

/// `outputConfig`: Bedrock's structured output takes the schema as JSON text.
fn output_config(format: &ResponseFormat) -> Value {
    let (name, schema) = match format {
        ResponseFormat::JsonObject => ("json_object", json!({ "type": "object" })),
        ResponseFormat::JsonSchema { name, schema, .. } => (name.as_str(), schema.clone()),
    };
    json!({
        "textFormat": {
            "type": "json_schema",
            "structure": { "jsonSchema": { "schema": schema.to_string(), "name": name } },
        }
    })
}

fn unsupported(field: String) -> TranslateError {
    TranslateError::Unsupported {
        field,
        upstream: UPSTREAM,
    }
}
