//! Reads a caller's Responses request into the common shape: its top-level fields (the
//! input items are read in [`super::input`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::input::conversation;
use super::{invalid, not_carried};
use crate::chat::{ChatRequest, ResponseFormat, Tool, ToolChoice, TranslateError};
use crate::openai::chat::from_json;

/// `include` entries that ask only for what the common shape never produces: outputs of
/// built-in tools (which are refused), inputs echoed back, encrypted reasoning.
const HARMLESS_INCLUDES: [&str; 7] = [
    "reasoning.encrypted_content",
    "message.input_image.image_url",
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
];

/// Reads a Responses request body. Fields that would change the answer if dropped, or that
/// need state the gateway does not keep, are refused (see the module doc for the list).
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
    let input = rest
        .input
        .ok_or_else(|| invalid("`input` is required".to_owned()))?;
    let (system, messages) = conversation(input)?;
    let system: Vec<String> = rest
        .instructions
        .into_iter()
        .chain(system)
        .filter(|text| !text.is_empty())
        .collect();
    request.system = (!system.is_empty()).then(|| system.join("\n\n"));
    request.messages = messages;
    request.user = request.user.or(rest.safety_identifier);
    Ok(request)
}

/// Fields read before they can be placed: they depend on one another.
#[derive(Default)]
struct Rest<'a> {
    input: Option<&'a RawValue>,
    instructions: Option<String>,
    safety_identifier: Option<String>,
}

/// Reads one top-level field into `request` (or `rest`), or refuses it.
fn read_field<'a>(
    name: &str,
    raw: &'a RawValue,
    request: &mut ChatRequest,
    rest: &mut Rest<'a>,
) -> Result<(), TranslateError> {
    match name {
        "model" => request.model = field(name, raw)?,
        "input" => rest.input = Some(raw),
        "instructions" => rest.instructions = field(name, raw)?,
        "max_output_tokens" => request.max_tokens = field(name, raw)?,
        "temperature" => request.temperature = field(name, raw)?,
        "top_p" => request.top_p = field(name, raw)?,
        "stream" => request.stream = field::<Option<bool>>(name, raw)?.unwrap_or(false),
        "tools" => request.tools = tools(field(name, raw)?)?,
        "tool_choice" => request.tool_choice = tool_choice(field(name, raw)?)?,
        "parallel_tool_calls" => request.parallel_tool_calls = field(name, raw)?,
        "text" => request.response_format = text(field(name, raw)?)?,
        "user" => request.user = field(name, raw)?,
        "safety_identifier" => rest.safety_identifier = field(name, raw)?,
        _ => return check_dropped(name, raw),
    }
    Ok(())
}

/// Accepts a field the common shape does not carry when dropping it is harmless, at least
/// at the value the caller gave; refuses it otherwise, naming it (or the member at fault).
fn check_dropped(name: &str, raw: &RawValue) -> Result<(), TranslateError> {
    let harmless = match name {
        "metadata"
        | "store"
        | "service_tier"
        | "prompt_cache_key"
        | "prompt_cache_retention"
        | "stream_options"
        | "max_tool_calls" => true,
        "prompt_cache_options" => {
            let options: Option<PromptCacheOptionsIn> = field(name, raw)?;
            if options.is_some_and(|options| options.prewarm == Some(true)) {
                return Err(not_carried("prompt_cache_options.prewarm".to_owned()));
            }
            true
        }
        "truncation" => field::<Option<String>>(name, raw)?.is_none_or(|t| t == "disabled"),
        "background" => field::<Option<bool>>(name, raw)? != Some(true),
        "top_logprobs" => field::<Option<u64>>(name, raw)?.is_none_or(|n| n == 0),
        "context_management" => {
            field::<Option<Vec<IgnoredAny>>>(name, raw)?.is_none_or(|list| list.is_empty())
        }
        "include" => {
            let include: Option<Vec<String>> = field(name, raw)?;
            for entry in include.unwrap_or_default() {
                if !HARMLESS_INCLUDES.contains(&entry.as_str()) {
                    return Err(not_carried(format!("include={entry}")));
                }
            }
            true
        }
        "reasoning" => {
            let reasoning: Option<BTreeMap<String, Value>> = field(name, raw)?;
            if let Some((member, _)) = reasoning
                .unwrap_or_default()
                .into_iter()
                .find(|(_, value)| !value.is_null())
            {
                return Err(not_carried(format!("reasoning.{member}")));
            }
            true
        }
        "previous_response_id" | "conversation" | "prompt" => {
            field::<Option<IgnoredAny>>(name, raw)?.is_none()
        }
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

#[derive(Deserialize)]
struct PromptCacheOptionsIn {
    #[serde(default)]
    prewarm: Option<bool>,
}

/// A `tools` entry: a function in the flat shape, or a built-in tool (refused by its type).
#[derive(Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
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
        let name = tool
            .name
            .ok_or_else(|| invalid(format!("`tools[{i}].name` is required")))?;
        tools.push(Tool {
            name,
            description: tool.description,
            // The API reads a null schema as a function without parameters.
            parameters: tool
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

fn tool_choice(value: Option<Value>) -> Result<Option<ToolChoice>, TranslateError> {
    let wrong = || {
        invalid(
            "`tool_choice` is invalid: expected \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":...}"
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
                let name = choice.get("name").and_then(Value::as_str);
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
struct TextIn {
    #[serde(default)]
    format: Option<FormatIn>,
    #[serde(default)]
    verbosity: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatIn {
    Text {},
    JsonObject {},
    JsonSchema {
        name: String,
        #[serde(default)]
        schema: Option<Value>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

/// The output format `text` asks for; a verbosity other than the default is refused.
fn text(text: Option<TextIn>) -> Result<Option<ResponseFormat>, TranslateError> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text
        .verbosity
        .is_some_and(|verbosity| verbosity != "medium")
    {
        return Err(not_carried("text.verbosity".to_owned()));
    }
    Ok(match text.format {
        None | Some(FormatIn::Text {}) => None,
        Some(FormatIn::JsonObject {}) => Some(ResponseFormat::JsonObject),
        Some(FormatIn::JsonSchema {
            name,
            schema,
            strict,
        }) => Some(ResponseFormat::JsonSchema {
            name,
            // The API reads a missing schema as any JSON.
            schema: schema.unwrap_or_else(|| Value::Object(serde_json::Map::new())),
            strict,
        }),
    })
}
