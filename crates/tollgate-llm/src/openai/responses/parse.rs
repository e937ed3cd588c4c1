//! Reads a caller's Responses request into the common shape: its top-level fields (the
//! input items are read in [`super::input`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::input::conversation;
use crate::chat::{ChatRequest, ResponseFormat, TranslateError};
use crate::openai::caller::{
    FunctionIn, ToolEntry, field, invalid, not_carried, read_fields, tool_choice, tools,
};

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
    let (mut request, rest) = read_fields::<Rest>(body, read_field)?;
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

/// Reads one top-level field into `request` (or `rest`), drops it where that is harmless, or
/// refuses it.
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
        "tools" => request.tools = tools::<ToolIn>(field(name, raw)?)?,
        "tool_choice" => {
            request.tool_choice = tool_choice(
                field(name, raw)?,
                "/name",
                r#"{"type":"function","name":...}"#,
            )?
        }
        "parallel_tool_calls" => request.parallel_tool_calls = field(name, raw)?,
        "text" => request.response_format = text(field(name, raw)?)?,
        "user" => request.user = field(name, raw)?,
        "safety_identifier" => rest.safety_identifier = field(name, raw)?,
        _ if harmless_to_drop(name, raw)? => {}
        _ => return Err(not_carried(name.to_owned())),
    }
    Ok(())
}

/// Whether dropping a field the common shape does not carry is harmless, at least at the
/// value the caller gave; a member that is not is refused by name.
fn harmless_to_drop(name: &str, raw: &RawValue) -> Result<bool, TranslateError> {
    Ok(match name {
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
    })
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

impl ToolEntry for ToolIn {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn into_function(self, i: usize) -> Result<FunctionIn, TranslateError> {
        let name = self
            .name
            .ok_or_else(|| invalid(format!("`tools[{i}].name` is required")))?;
        Ok(FunctionIn {
            name,
            description: self.description,
            parameters: self.parameters,
        })
    }
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
