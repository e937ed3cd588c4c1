//! The common chat request written as a Gemini `GenerateContentRequest`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{UPSTREAM, schema};
use crate::chat::{
    ChatRequest, Image, Message, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult, TranslateError,
};

/// The signature Google documents for function calls the model did not sign in this
/// conversation (history from another model, or whose signature a translation lost): Gemini 3
/// refuses a function call in the history without one.
const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tools<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<WirePart<'a>>,
}

#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum WirePart<'a> {
    Text {
        text: Cow<'a, str>,
    },
    InlineData {
        inline_data: Blob<'a>,
    },
    FileData {
        file_data: FileData<'a>,
    },
    FunctionCall {
        function_call: FunctionCall<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought_signature: Option<&'static str>,
    },
    FunctionResponse {
        function_response: FunctionResponse<'a>,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    mime_type: &'static str,
    file_uri: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Value,
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tools<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
            && self.response_mime_type.is_none()
    }
}

/// The body of a `generateContent` or `streamGenerateContent` call for `request`. The model
/// and streaming are in the URL, so `model` and `stream` are not read; `user` is dropped.
pub fn write_request(request: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    if request.parallel_tool_calls == Some(false) {
        return Err(TranslateError::Unsupported {
            field: "parallel_tool_calls".into(),
            upstream: UPSTREAM,
        });
    }
    let body = GenerateContentRequest {
        system_instruction: request.system.as_deref().map(|system| Content {
            role: None,
            parts: vec![WirePart::Text {
                text: Cow::Borrowed(system),
            }],
        }),
        contents: contents(&request.messages)?,
        tools: tools(&request.tools)?,
        tool_config: tool_config(request)?,
        generation_config: generation_config(request)?,
    };
    serde_json::to_vec(&body).map_err(|error| TranslateError::Invalid(error.to_string()))
}

/// The conversation as Gemini contents: consecutive messages of one role become one content
/// (Gemini wants all the results of parallel calls in one turn), and messages left without
/// parts are dropped (Gemini refuses empty contents).
fn contents(messages: &[Message]) -> Result<Vec<Content<'_>>, TranslateError> {
    let mut contents: Vec<Content<'_>> = Vec::new();
    for (at, message) in messages.iter().enumerate() {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::new();
        for part in &message.content {
            push_part(part, &messages[..at], &mut parts)?;
        }
        match contents.last_mut() {
            _ if parts.is_empty() => {}
            Some(last) if last.role == Some(role) => last.parts.append(&mut parts),
            _ => contents.push(Content {
                role: Some(role),
                parts,
            }),
        }
    }
    for content in &mut contents {
        sign_first_call(content);
    }
    Ok(contents)
}

fn push_part<'a>(
    part: &'a Part,
    earlier: &'a [Message],
    parts: &mut Vec<WirePart<'a>>,
) -> Result<(), TranslateError> {
    match part {
        Part::Text(text) if text.is_empty() => {}
        Part::Text(text) => parts.push(WirePart::Text {
            text: Cow::Borrowed(text),
        }),
        Part::Image(image) => parts.push(image_part(image)),
        Part::ToolCall(call) => parts.push(function_call(call)?),
        Part::ToolResult(result) => push_result(result, earlier, parts)?,
    }
    Ok(())
}

/// An image: inline data as is; a URL as `fileData`, which Gemini fetches (public and signed
/// `https` URLs, Cloud Storage and Files API URIs). A URL carries no MIME type and Vertex
/// requires one, so it is read from the file extension, JPEG when there is none.
fn image_part(image: &Image) -> WirePart<'_> {
    match image {
        Image::Base64 { media_type, data } => WirePart::InlineData {
            inline_data: Blob {
                mime_type: media_type,
                data,
            },
        },
        Image::Url(url) => WirePart::FileData {
            file_data: FileData {
                mime_type: mime_type_of(url),
                file_uri: url,
            },
        },
    }
}

/// The image MIME type a URL's path suggests by its extension.
fn mime_type_of(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => "image/jpeg",
    }
}

/// A tool call: Gemini takes the arguments as an object, not as JSON text. Its call ids are
/// not sent: Gemini pairs calls and results by name and order, and ids it did not make
/// itself are refused by some of its API versions.
fn function_call(call: &ToolCall) -> Result<WirePart<'_>, TranslateError> {
    let args = match call.arguments.trim() {
        "" => Value::Object(Map::new()),
        text => serde_json::from_str(text).map_err(|error| {
            TranslateError::Invalid(format!(
                "the arguments of tool call `{}` are not valid JSON: {error}",
                call.id
            ))
        })?,
    };
    if !args.is_object() {
        return Err(TranslateError::Invalid(format!(
            "the arguments of tool call `{}` are not a JSON object",
            call.id
        )));
    }
    Ok(WirePart::FunctionCall {
        function_call: FunctionCall {
            name: &call.name,
            args,
        },
        thought_signature: None,
    })
}

/// A tool result as a `functionResponse` whose response is `{"output": text}`, or
/// `{"error": text}` when the tool failed, as Gemini's reference suggests. Images in the
/// result follow it as parts of their own.
fn push_result<'a>(
    result: &'a ToolResult,
    earlier: &'a [Message],
    parts: &mut Vec<WirePart<'a>>,
) -> Result<(), TranslateError> {
    let name = tool_name(result, earlier)?;
    let mut text = String::new();
    let mut images = Vec::new();
    for part in &result.content {
        match part {
            Part::Text(piece) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(piece);
            }
            Part::Image(image) => images.push(image_part(image)),
            Part::ToolCall(_) | Part::ToolResult(_) => {
                return Err(TranslateError::Invalid(format!(
                    "the result of tool call `{}` holds something other than text and images",
                    result.call_id
                )));
            }
        }
    }
    let key = if result.is_error { "error" } else { "output" };
    parts.push(WirePart::FunctionResponse {
        function_response: FunctionResponse {
            name,
            response: Value::Object(Map::from_iter([(key.to_owned(), Value::String(text))])),
        },
    });
    parts.append(&mut images);
    Ok(())
}

/// The function a result answers, which Gemini needs: the result's own name, else the name of
/// the latest earlier call with its id.
fn tool_name<'a>(
    result: &'a ToolResult,
    earlier: &'a [Message],
) -> Result<&'a str, TranslateError> {
    if let Some(name) = &result.name {
        return Ok(name);
    }
    earlier
        .iter()
        .rev()
        .flat_map(|message| message.content.iter().rev())
        .find_map(|part| match part {
            Part::ToolCall(call) if call.id == result.call_id => Some(call.name.as_str()),
            _ => None,
        })
        .ok_or_else(|| {
            TranslateError::Invalid(format!(
                "the tool result for call `{}` answers no earlier tool call, and Gemini needs \
                 the name of the function it answers",
                result.call_id
            ))
        })
}

/// Gives the first function call of a model turn the signature Gemini 3 requires; the
/// original signature cannot have survived the common shape.
fn sign_first_call(content: &mut Content<'_>) {
    let first_call = content.parts.iter_mut().find_map(|part| match part {
        WirePart::FunctionCall {
            thought_signature, ..
        } => Some(thought_signature),
        _ => None,
    });
    if let Some(signature) = first_call {
        *signature = Some(FOREIGN_SIGNATURE);
    }
}

/// The tools, all in one `functionDeclarations` list.
fn tools(tools: &[Tool]) -> Result<Vec<Tools<'_>>, TranslateError> {
    if tools.is_empty() {
        return Ok(Vec::new());
    }
    let function_declarations = tools
        .iter()
        .enumerate()
        .map(|(at, tool)| {
            Ok(FunctionDeclaration {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: parameters(&tool.parameters, at)?,
            })
        })
        .collect::<Result<_, TranslateError>>()?;
    Ok(vec![Tools {
        function_declarations,
    }])
}

/// A tool's parameters in Gemini's schema subset; none for a function without parameters,
/// since Gemini refuses an object schema with no properties.
fn parameters(parameters: &Value, at: usize) -> Result<Option<Value>, TranslateError> {
    if parameters.is_null() {
        return Ok(None);
    }
    let converted = schema::convert(parameters, &format!("tools[{at}].parameters"))?;
    let no_properties = converted
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    let is_object = converted.get("type").is_none_or(|kind| kind == "OBJECT");
    Ok((!(is_object && no_properties)).then_some(converted))
}

/// `tool_choice` as a function-calling mode: `AUTO`, `NONE`, or `ANY` (limited to one
/// function for a named tool). Without tools, `auto` and `none` say nothing.
fn tool_config(request: &ChatRequest) -> Result<Option<ToolConfig<'_>>, TranslateError> {
    let Some(choice) = &request.tool_choice else {
        return Ok(None);
    };
    let (mode, allowed_function_names) = match choice {
        ToolChoice::Auto | ToolChoice::None if request.tools.is_empty() => return Ok(None),
        _ if request.tools.is_empty() => {
            return Err(TranslateError::Invalid(
                "`tool_choice` requires a tool to call, and `tools` is empty".into(),
            ));
        }
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::None => ("NONE", None),
        ToolChoice::Required => ("ANY", None),
        ToolChoice::Tool(name) => ("ANY", Some([name.as_str()])),
    };
    Ok(Some(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names,
        },
    }))
}

/// Sampling, limits and the output's shape: JSON mode is `responseMimeType`, a JSON Schema
/// also becomes `responseSchema` (in Gemini's subset, which Gemini always enforces).
fn generation_config(request: &ChatRequest) -> Result<GenerationConfig<'_>, TranslateError> {
    let (response_mime_type, response_schema) = match &request.response_format {
        None => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => (
            Some("application/json"),
            Some(schema::convert(
                schema,
                "response_format.json_schema.schema",
            )?),
        ),
    };
    Ok(GenerationConfig {
        max_output_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: &request.stop,
        response_mime_type,
        response_schema,
    })
}
