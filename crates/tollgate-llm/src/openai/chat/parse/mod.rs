//! Reads a caller's Chat Completions request into the common shape.

mod messages;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use self::messages::{MessageIn, conversation};
pub(in crate::openai) use self::messages::{TextOr, image};
use crate::chat::{ChatRequest, ResponseFormat, TranslateError};
use crate::openai::caller::{
    FunctionIn, ToolEntry, field, invalid, not_carried, read_fields, tool_choice, tools,
};

/// Reads a Chat Completions request body. Fields that would change the answer if dropped and
/// that the common shape cannot carry are refused (see the module doc for the list).
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let (mut request, rest) = read_fields::<Rest>(body, read_field)?;
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

/// Reads one top-level field into `request` (or `rest`), drops it where that is harmless, or
/// refuses it.
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
        "tools" => request.tools = tools::<ToolIn>(field(name, raw)?)?,
        "tool_choice" => {
            request.tool_choice = tool_choice(
                field(name, raw)?,
                "/function/name",
                r#"{"type":"function","function":{"name":...}}"#,
            )?
        }
        "parallel_tool_calls" => request.parallel_tool_calls = field(name, raw)?,
        "response_format" => {
            request.response_format = field::<Option<ResponseFormatIn>>(name, raw)?
                .and_then(ResponseFormatIn::into_common)
        }
        "user" => request.user = field(name, raw)?,
        "safety_identifier" => rest.safety_identifier = field(name, raw)?,
        _ if harmless_to_drop(name, raw)? => {}
        _ => return Err(not_carried(name.to_owned())),
    }
    Ok(())
}

/// Whether dropping a field the common shape does not carry is harmless, at least at the
/// value the caller gave.
fn harmless_to_drop(name: &str, raw: &RawValue) -> Result<bool, TranslateError> {
    Ok(match name {
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
    })
}

/// A `tools` entry: a function, inside `function`, or another tool (refused by its type).
#[derive(Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<FunctionIn>,
}

impl ToolEntry for ToolIn {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn into_function(self, i: usize) -> Result<FunctionIn, TranslateError> {
        self.function
            .ok_or_else(|| invalid(format!("`tools[{i}].function` is required")))
    }
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
