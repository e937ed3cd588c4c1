//! Reads a caller's Chat Completions request into the common shape.

mod messages;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use self::messages::{MessageIn, conversation};
pub(in crate::openai) use self::messages::{TextOr, image};
use super::from_json;
use crate::chat::{ChatRequest, ResponseFormat, Tool, ToolChoice, TranslateError};

/// What lacks a field the common shape cannot carry, in [`TranslateError::Unsupported`].
const NOT_CARRIED: &str = "translation to another provider";

/// Reads a Chat Completions request body. Fields that would change the answer if dropped and
/// that the common shape cannot carry are refused (see the module doc for the list).
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let fields: BTreeMap<String, &RawValue> = from_json("", body)?;
    let mut request = ChatRequest::default();
    let mut rest = Rest::default();
    for (name, raw) in &fields {
        read_field(name, raw, &mut request, &mut rest)?;
    }
    if request.model.is_empty() {
        return Err(invalid("`model` is required".to_owned()));
    }
    let messages = rest
        .messages
        .ok_or_else(|| invalid("`messages` is required".to_owned()))?;
    (request.system, request.messages) = conversation(messages)?;
    request.max_tokens = rest.max_completion_tokens.or(rest.max_tokens);
    request.user = request.user.or(rest.safety_identifier);
    Ok(request)
}

/// Fields read before they can be placed: they depend on one another.
#[derive(Default)]
struct Rest {
    messages: Option<Vec<MessageIn>>,
    max_completion_tokens: Option<u64>,
    max_tokens: Option<u64>,
    safety_identifier: Option<String>,
}

/// Reads one top-level field into `request` (or `rest`), or refuses it.
fn read_field(
    name: &str,
    raw: &RawValue,
    request: &mut ChatRequest,
    rest: &mut Rest,
) -> Result<(), TranslateError> {
    match name {
        "model" => request.model = field(name, raw)?,
        "messages" => rest.messages = Some(field(name, raw)?),
        "max_completion_tokens" => rest.max_completion_tokens = field(name, raw)?,
        "max_tokens" => rest.max_tokens = field(name, raw)?,
        "temperature" => request.temperature = field(name, raw)?,
        "top_p" => request.top_p = field(name, raw)?,
        "stop" => {
            request.stop = match field(name, raw)? {
                None => Vec::new(),
                Some(TextOr::Text(stop)) => vec![stop],
                Some(TextOr::List(stops)) => stops,
            }
        }
        "stream" => request.stream = field::<Option<bool>>(name, raw)?.unwrap_or(false),
        "tools" => request.tools = tools(field(name, raw)?)?,
        "tool_choice" => request.tool_choice = tool_choice(field(name, raw)?)?,
        "parallel_tool_calls" => request.parallel_tool_calls = field(name, raw)?,
        "response_format" => {
            request.response_format = field::<Option<ResponseFormatIn>>(name, raw)?
                .and_then(ResponseFormatIn::into_common)
        }
        "user" => request.user = field(name, raw)?,
        "safety_identifier" => rest.safety_identifier = field(name, raw)?,
        _ => return check_dropped(name, raw),
    }
    Ok(())
}

/// Accepts a field the common shape does not carry when dropping it is harmless, at least
/// at the value the caller gave; refuses it otherwise.
fn check_dropped(name: &str, raw: &RawValue) -> Result<(), TranslateError> {
    let harmless = match name {
        "metadata"
        | "store"
        | "service_tier"
        | "seed"
        | "stream_options"
        | "prompt_cache_key"
        | "prompt_cache_retention" => true,
        "n" => field::<Option<u64>>(name, raw)?.is_none_or(|n| n <= 1),
        "logprobs" => field::<Option<bool>>(name, raw)? != Some(true),
        "top_logprobs" => field::<Option<u64>>(name, raw)?.is_none_or(|n| n == 0),
        "frequency_penalty" | "presence_penalty" => {
            field::<Option<f64>>(name, raw)?.is_none_or(|penalty| penalty == 0.0)
        }
        "logit_bias" => field::<Option<BTreeMap<String, IgnoredAny>>>(name, raw)?
            .is_none_or(|bias| bias.is_empty()),
        "modalities" => field::<Option<Vec<String>>>(name, raw)?
            .is_none_or(|modalities| modalities.iter().all(|m| m == "text")),
        "audio" | "prediction" | "functions" | "function_call" | "reasoning_effort"
        | "verbosity" | "web_search_options" => field::<Option<IgnoredAny>>(name, raw)?.is_none(),
        _ => false,
    };
    if harmless {
        Ok(())
    } else {
        Err(not_carried(name.to_owned()))
    }
}

/// Deserializes one top-level field, naming the field (and the path inside it) on failure.
fn field<'de, T: Deserialize<'de>>(name: &str, raw: &'de RawValue) -> Result<T, TranslateError> {
    from_json(name, raw.get().as_bytes())
}

fn invalid(message: String) -> TranslateError {
    TranslateError::Invalid(message)
}

fn not_carried(field: String) -> TranslateError {
    TranslateError::Unsupported {
        field,
        upstream: NOT_CARRIED,
    }
}

#[derive(Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<FunctionIn>,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

fn tools(list: Option<Vec<ToolIn>>) -> Result<Vec<Tool>, TranslateError> {
    let list = list.unwrap_or_default();
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.into_iter().enumerate() {
        if tool.kind != "function" {
            return Err(not_carried(format!("tools[{i}].type={}", tool.kind)));
        }
        let function = tool
            .function
            .ok_or_else(|| invalid(format!("`tools[{i}].function` is required")))?;
        tools.push(Tool {
            name: function.name,
            description: function.description,
            // OpenAI reads a missing schema as a function without parameters.
            parameters: function
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

fn tool_choice(value: Option<Value>) -> Result<Option<ToolChoice>, TranslateError> {
    let wrong = || {
        invalid(
            "`tool_choice` is invalid: expected \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}"
                .to_owned(),
        )
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
                let name = value.pointer("/function/name").and_then(Value::as_str);
                ToolChoice::Tool(name.ok_or_else(wrong)?.to_owned())
            }
            Some(kind) => return Err(not_carried(format!("tool_choice.type={kind}"))),
            None => return Err(wrong()),
        },
        _ => return Err(wrong()),
    };
    Ok(Some(choice))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormatIn {
    Text {},
    JsonObject {},
    JsonSchema { json_schema: JsonSchemaIn },
}

#[derive(Deserialize)]
struct JsonSchemaIn {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

impl ResponseFormatIn {
    fn into_common(self) -> Option<ResponseFormat> {
        match self {
            ResponseFormatIn::Text {} => None,
            ResponseFormatIn::JsonObject {} => Some(ResponseFormat::JsonObject),
            ResponseFormatIn::JsonSchema { json_schema } => Some(ResponseFormat::JsonSchema {
                name: json_schema.name,
                // OpenAI reads a missing schema as any JSON.
                schema: json_schema
                    .schema
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
                strict: json_schema.strict,
            }),
        }
    }
}
