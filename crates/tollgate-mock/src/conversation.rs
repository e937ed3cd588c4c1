//! What the mock understands of a conversation, whatever its wire format, and the answer it gives.
//!
//! Each format's request is read into a [`Conversation`] by the function named after the format:
//! how much text it holds, the first tool it offers and the tool results its last message
//! carries. The [`Answer`] follows from the conversation alone, so the same conversation gets
//! the same answer and the same usage in every format; each format's module only words it.
//!
//! - The conversation's last message carries tool results: a text answer that quotes them,
//!   `The tool said: <their text>` (split into `chunks` pieces: `The tool said: `, the text, then
//!   `.` for each further piece).
//! - Otherwise, the request offers tools: a call of the first one, with arguments built from its
//!   JSON schema ([`arguments`]); the arguments' compact JSON is streamed in two or three pieces.
//! - Otherwise: the reply words, one per chunk, cycling.
//!
//! **Usage.** Prompt tokens are one per four bytes (rounded up, at least one) of the
//! conversation's text: the system prompt, the text parts of every message, the string values in
//! the arguments of earlier tool calls and the text of tool results (the string values of a JSON
//! result). Roles, names, ids, tool definitions, images, numbers and everything else do not count,
//! so an OpenAI, Anthropic, Gemini or Bedrock body of the same conversation gives the same count.
//! Output tokens are the answer's content pieces: `chunks` for a text answer, the two or three
//! argument pieces for a tool call (also for Gemini, which sends the call whole).
//!
//! Reading the conversation allocates nothing unless the last message carries tool results.

use serde_json::{Map, Value};

/// What a text answer says, one word per chunk, cycling.
pub(crate) const REPLY_WORDS: [&str; 8] = [
    "Hello",
    " from",
    " the",
    " mock",
    " provider",
    ".",
    " How",
    " can I help?",
];

/// How the answer to a tool result starts.
const TOOL_SAID: &str = "The tool said: ";

/// A conversation, borrowed from its request.
#[derive(Debug, Default)]
pub(crate) struct Conversation<'a> {
    /// Bytes of the conversation's text (see the module doc).
    text_bytes: usize,
    /// The first tool the request offers.
    tool: Option<Tool<'a>>,
    /// The text of the tool results the last message carries; `None` when it carries none.
    tool_result: Option<String>,
}

/// A tool the request offers: its name and its parameters' JSON schema.
#[derive(Clone, Copy, Debug)]
struct Tool<'a> {
    name: &'a str,
    schema: Option<&'a Value>,
}

/// The items of a JSON array (none when it is absent or not an array).
fn items(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The length of a JSON string (0 when it is absent or not a string).
fn str_len(value: Option<&Value>) -> usize {
    value.and_then(Value::as_str).map_or(0, str::len)
}

/// The first of two spellings of a field (Gemini accepts camelCase and snake_case).
fn either<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.get(camel).or_else(|| value.get(snake))
}

/// The bytes of the string values in a JSON value (tool arguments, JSON tool results).
fn json_text_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(json_text_bytes).sum(),
        Value::Object(map) => map.values().map(json_text_bytes).sum(),
        _ => 0,
    }
}

/// The bytes of OpenAI's tool-call `arguments`, a JSON text: the string values in it.
fn arguments_bytes(arguments: Option<&Value>) -> usize {
    match arguments {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text)
            .map_or(text.len(), |parsed| json_text_bytes(&parsed)),
        Some(other) => json_text_bytes(other),
        None => 0,
    }
}

/// Appends a piece of tool-result text, a space between pieces.
fn push_text(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
}

/// Appends the text of a JSON tool result: its string values, or its JSON when it has none.
fn push_json_text(out: &mut String, value: &Value) {
    fn strings(value: &Value, out: &mut String) {
        match value {
            Value::String(s) => push_text(out, s),
            Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
            Value::Object(map) => map.values().for_each(|item| strings(item, out)),
            _ => {}
        }
    }
    let before = out.len();
    strings(value, out);
    if out.len() == before && !value.is_null() {
        push_text(out, &value.to_string());
    }
}

impl<'a> Conversation<'a> {
    /// Prompt tokens: one per four bytes of text, rounded up, at least one.
    pub(crate) fn prompt_tokens(&self) -> u64 {
        (self.text_bytes as u64).div_ceil(4).max(1)
    }

    /// An OpenAI Chat Completions request: `messages` (`content` a string or text parts, an
    /// assistant's `tool_calls`, `tool` messages) and `tools`.
    pub(crate) fn openai(request: &'a Value) -> Self {
        /// The text of a `content`: a string, or the `text` of its parts.
        fn content_bytes(content: Option<&Value>) -> usize {
            match content {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(parts)) => parts.iter().map(|p| str_len(p.get("text"))).sum(),
                _ => 0,
            }
        }
        fn push_content(out: &mut String, content: Option<&Value>) {
            match content {
                Some(Value::String(s)) => push_text(out, s),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .for_each(|text| push_text(out, text)),
                _ => {}
            }
        }
        let messages = items(request.get("messages"));
        let text_bytes = messages
            .iter()
            .map(|message| {
                content_bytes(message.get("content"))
                    + items(message.get("tool_calls"))
                        .iter()
                        .map(|call| arguments_bytes(call.pointer("/function/arguments")))
                        .sum::<usize>()
            })
            .sum();
        let tool = items(request.get("tools")).first().and_then(|tool| {
            let function = tool.get("function")?;
            Some(Tool {
                name: function.get("name")?.as_str()?,
                schema: function.get("parameters"),
            })
        });
        let results = messages
            .iter()
            .rev()
            .take_while(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
            .count();
        let tool_result = (results > 0).then(|| {
            let mut text = String::new();
            for message in &messages[messages.len() - results..] {
                push_content(&mut text, message.get("content"));
            }
            text
        });
        Conversation {
            text_bytes,
            tool,
            tool_result,
        }
    }

    /// An Anthropic Messages request: `system` (a string or text blocks), `messages` (`content` a
    /// string or blocks: `text`, `tool_use`, `tool_result`) and `tools`.
    pub(crate) fn anthropic(request: &'a Value) -> Self {
        /// The text of a `content` (or `system`, or a tool result's `content`).
        fn content_bytes(content: Option<&Value>) -> usize {
            match content {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .map(|block| match block.get("type").and_then(Value::as_str) {
                        Some("text") => str_len(block.get("text")),
                        Some("tool_use") => block.get("input").map_or(0, json_text_bytes),
                        Some("tool_result") => content_bytes(block.get("content")),
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            }
        }
        fn push_content(out: &mut String, content: Option<&Value>) {
            match content {
                Some(Value::String(s)) => push_text(out, s),
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .for_each(|text| push_text(out, text)),
                _ => {}
            }
        }
        let messages = items(request.get("messages"));
        let text_bytes = content_bytes(request.get("system"))
            + messages
                .iter()
                .map(|message| content_bytes(message.get("content")))
                .sum::<usize>();
        let tool = items(request.get("tools")).first().and_then(|tool| {
            Some(Tool {
                name: tool.get("name")?.as_str()?,
                schema: tool.get("input_schema"),
            })
        });
        let results = messages
            .last()
            .map(|last| items(last.get("content")))
            .unwrap_or_default()
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"));
        let mut tool_result = None;
        for block in results {
            push_content(
                tool_result.get_or_insert_with(String::new),
                block.get("content"),
            );
        }
        Conversation {
            text_bytes,
            tool,
            tool_result,
        }
    }

    /// A Gemini `generateContent` request: `systemInstruction`, `contents` (`parts`: `text`,
    /// `functionCall`, `functionResponse`) and `tools` (`functionDeclarations`); snake_case
    /// spellings too.
    pub(crate) fn gemini(request: &'a Value) -> Self {
        fn parts_bytes(content: &Value) -> usize {
            items(content.get("parts"))
                .iter()
                .map(|part| {
                    str_len(part.get("text"))
                        + either(part, "functionCall", "function_call")
                            .and_then(|call| call.get("args"))
                            .map_or(0, json_text_bytes)
                        + either(part, "functionResponse", "function_response")
                            .and_then(|response| response.get("response"))
                            .map_or(0, json_text_bytes)
                })
                .sum()
        }
        let contents = items(request.get("contents"));
        let text_bytes = either(request, "systemInstruction", "system_instruction")
            .map_or(0, parts_bytes)
            + contents.iter().map(parts_bytes).sum::<usize>();
        let tool = items(request.get("tools")).iter().find_map(|tool| {
            let declaration = items(either(
                tool,
                "functionDeclarations",
                "function_declarations",
            ))
            .first()?;
            Some(Tool {
                name: declaration.get("name")?.as_str()?,
                schema: declaration.get("parameters").or_else(|| {
                    either(
                        declaration,
                        "parametersJsonSchema",
                        "parameters_json_schema",
                    )
                }),
            })
        });
        let results = contents
            .last()
            .map(|last| items(last.get("parts")))
            .unwrap_or_default()
            .iter()
            .filter_map(|part| either(part, "functionResponse", "function_response"));
        let mut tool_result = None;
        for response in results {
            let text = tool_result.get_or_insert_with(String::new);
            push_json_text(text, response.get("response").unwrap_or(&Value::Null));
        }
        Conversation {
            text_bytes,
            tool,
            tool_result,
        }
    }

    /// A Bedrock Converse request: `system` (blocks with `text`), `messages` (`content` blocks:
    /// `text`, `toolUse`, `toolResult`) and `toolConfig.tools` (`toolSpec`).
    pub(crate) fn bedrock(request: &'a Value) -> Self {
        fn result_bytes(result: &Value) -> usize {
            items(result.get("content"))
                .iter()
                .map(|c| str_len(c.get("text")) + c.get("json").map_or(0, json_text_bytes))
                .sum()
        }
        fn blocks_bytes(blocks: Option<&Value>) -> usize {
            items(blocks)
                .iter()
                .map(|block| {
                    str_len(block.get("text"))
                        + block
                            .get("toolUse")
                            .and_then(|call| call.get("input"))
                            .map_or(0, json_text_bytes)
                        + block.get("toolResult").map_or(0, result_bytes)
                })
                .sum()
        }
        let messages = items(request.get("messages"));
        let text_bytes = blocks_bytes(request.get("system"))
            + messages
                .iter()
                .map(|message| blocks_bytes(message.get("content")))
                .sum::<usize>();
        let tool = items(request.pointer("/toolConfig/tools"))
            .iter()
            .find_map(|tool| {
                let spec = tool.get("toolSpec")?;
                Some(Tool {
                    name: spec.get("name")?.as_str()?,
                    schema: spec.pointer("/inputSchema/json"),
                })
            });
        let results = messages
            .last()
            .map(|last| items(last.get("content")))
            .unwrap_or_default()
            .iter()
            .filter_map(|block| block.get("toolResult"));
        let mut tool_result = None;
        for result in results {
            let text = tool_result.get_or_insert_with(String::new);
            for content in items(result.get("content")) {
                match (
                    content.get("text").and_then(Value::as_str),
                    content.get("json"),
                ) {
                    (Some(s), _) => push_text(text, s),
                    (None, Some(json)) => push_json_text(text, json),
                    (None, None) => {}
                }
            }
        }
        Conversation {
            text_bytes,
            tool,
            tool_result,
        }
    }
}

/// The arguments of a call of a tool with this JSON schema: each `required` property, in order,
/// with a value of its `type` (the first that is not `"null"` when it is a list; any case, as
/// Gemini writes `STRING`): `"value"` for a string, `1` for a number or an integer, `true` for a
/// boolean, `[]` for an array and `{}` for anything else. No schema, or no `required`: `{}`.
pub(crate) fn arguments(schema: Option<&Value>) -> Map<String, Value> {
    let mut arguments = Map::new();
    let Some(schema) = schema else {
        return arguments;
    };
    let properties = schema.get("properties");
    for name in items(schema.get("required"))
        .iter()
        .filter_map(Value::as_str)
    {
        let kind = match properties.and_then(|p| p.get(name)?.get("type")) {
            Some(Value::String(kind)) => kind.as_str(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| !kind.eq_ignore_ascii_case("null"))
                .unwrap_or(""),
            _ => "",
        };
        let is = |name: &str| kind.eq_ignore_ascii_case(name);
        let value = if is("string") {
            Value::from("value")
        } else if is("number") || is("integer") {
            Value::from(1)
        } else if is("boolean") {
            Value::Bool(true)
        } else if is("array") {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        };
        arguments.insert(name.to_owned(), value);
    }
    arguments
}

/// A call of the first tool the request offers.
#[derive(Debug)]
pub(crate) struct ToolCall {
    /// The tool's name.
    pub(crate) name: String,
    /// The arguments, as a JSON object.
    pub(crate) input: Value,
    /// The arguments' compact JSON text.
    pub(crate) arguments: String,
    /// Where each piece of `arguments` ends (the first `pieces` of them).
    ends: [usize; 3],
    pieces: usize,
}

impl ToolCall {
    fn new(name: &str, input: Map<String, Value>) -> Self {
        let input = Value::Object(input);
        let arguments = input.to_string();
        let len = arguments.len();
        // Three pieces when there are three bytes to share (two for `{}`), cut at characters.
        let wanted: &[usize] = if len >= 3 {
            &[len / 3, len * 2 / 3, len]
        } else {
            &[len / 2, len]
        };
        let mut ends = [0; 3];
        let mut pieces: usize = 0;
        for &end in wanted {
            let end = (end..=len)
                .find(|&i| arguments.is_char_boundary(i))
                .unwrap_or(len);
            if end > pieces.checked_sub(1).map_or(0, |last| ends[last]) {
                ends[pieces] = end;
                pieces += 1;
            }
        }
        ToolCall {
            name: name.to_owned(),
            input,
            arguments,
            ends,
            pieces,
        }
    }

    /// The pieces of `arguments`, in order: two or three, none empty.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &str> {
        (0..self.pieces).map(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.arguments[start..self.ends[i]]
        })
    }
}

/// The answer to a conversation (see the module doc).
#[derive(Debug)]
pub(crate) enum Answer {
    /// Text: the reply words (`said` is `None`), or `The tool said: <text>`.
    Text { said: Option<String> },
    /// A call of the first tool.
    ToolCall(ToolCall),
}

impl Answer {
    /// The answer to this conversation.
    pub(crate) fn new(conversation: Conversation<'_>) -> Self {
        if let Some(result) = conversation.tool_result {
            Answer::Text {
                said: Some(format!("{TOOL_SAID}{result}")),
            }
        } else if let Some(tool) = conversation.tool {
            Answer::ToolCall(ToolCall::new(tool.name, arguments(tool.schema)))
        } else {
            Answer::Text { said: None }
        }
    }

    /// The tool call, if the answer is one.
    pub(crate) fn tool_call(&self) -> Option<&ToolCall> {
        match self {
            Answer::ToolCall(call) => Some(call),
            Answer::Text { .. } => None,
        }
    }

    /// The content pieces of the answer (and so its output tokens): `chunks` for text, the
    /// argument pieces for a tool call.
    pub(crate) fn output_tokens(&self, chunks: usize) -> u64 {
        match self {
            Answer::Text { .. } => chunks as u64,
            Answer::ToolCall(call) => call.pieces as u64,
        }
    }

    /// The text pieces of a text answer with `chunks` chunks (none for a tool call).
    pub(crate) fn text_pieces(&self, chunks: usize) -> impl Iterator<Item = &str> {
        let count = match self {
            Answer::Text { .. } => chunks,
            Answer::ToolCall(_) => 0,
        };
        (0..count).map(move |i| match self {
            Answer::Text { said: None } | Answer::ToolCall(_) => REPLY_WORDS[i % REPLY_WORDS.len()],
            Answer::Text {
                said: Some(sentence),
            } => match (i, count) {
                (0, 1) => sentence,
                (0, _) => &sentence[..TOOL_SAID.len()],
                (1, _) => &sentence[TOOL_SAID.len()..],
                _ => ".",
            },
        })
    }

    /// The whole text of a text answer with `chunks` chunks (empty for a tool call).
    pub(crate) fn text(&self, chunks: usize) -> String {
        self.text_pieces(chunks).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_follow_the_required_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "ratio": {"type": ["null", "number"]},
                "metric": {"type": "BOOLEAN"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "where": {"type": "object"},
                "untyped": {},
                "optional": {"type": "string"},
            },
            "required": ["city", "days", "ratio", "metric", "tags", "where", "untyped", "missing"],
        });
        assert_eq!(
            Value::Object(arguments(Some(&schema))),
            json!({"city": "value", "days": 1, "ratio": 1, "metric": true, "tags": [],
                   "where": {}, "untyped": {}, "missing": {}})
        );
        assert_eq!(arguments(Some(&json!({"type": "object"}))), Map::new());
        assert_eq!(arguments(None), Map::new());
    }

    #[test]
    fn tool_call_arguments_come_in_two_or_three_pieces() {
        for (input, expected) in [
            (json!({}), vec!["{", "}"]),
            (json!({"a": 1}), vec!["{\"", "a\"", ":1}"]),
            (
                json!({"city": "value"}),
                vec!["{\"cit", "y\":\"v", "alue\"}"],
            ),
        ] {
            let Value::Object(map) = input else {
                unreachable!()
            };
            let call = ToolCall::new("f", map);
            assert_eq!(call.pieces().collect::<Vec<_>>(), expected);
            assert_eq!(call.pieces().collect::<String>(), call.arguments);
        }
        // Multi-byte names are cut between characters.
        let mut map = Map::new();
        map.insert("éé".to_owned(), Value::from("ü"));
        let call = ToolCall::new("f", map);
        assert!((2..=3).contains(&call.pieces().count()));
        assert_eq!(call.pieces().collect::<String>(), call.arguments);
    }

    /// The same conversation, with a system prompt, an earlier tool call and its result, in
    /// every format.
    fn same_conversation() -> [(&'static str, Value); 4] {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
        [
            (
                "openai",
                json!({
                    "model": "m",
                    "messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                        {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "call_1", "type": "function",
                             "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                    ],
                    "tools": [{"type": "function", "function": {"name": "weather", "parameters": schema}}],
                }),
            ),
            (
                "anthropic",
                json!({
                    "model": "m", "max_tokens": 100,
                    "system": [{"type": "text", "text": "Be brief."}],
                    "messages": [
                        {"role": "user", "content": "Weather in Paris?"},
                        {"role": "assistant", "content": [
                            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
                        {"role": "user", "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]},
                    ],
                    "tools": [{"name": "weather", "input_schema": schema}],
                }),
            ),
            (
                "gemini",
                json!({
                    "systemInstruction": {"parts": [{"text": "Be brief."}]},
                    "contents": [
                        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                        {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
                        {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"content": "sunny"}}}]},
                    ],
                    "tools": [{"functionDeclarations": [{"name": "weather", "parameters": schema}]}],
                }),
            ),
            (
                "bedrock",
                json!({
                    "system": [{"text": "Be brief."}],
                    "messages": [
                        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
                        {"role": "assistant", "content": [
                            {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}}]},
                        {"role": "user", "content": [
                            {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}], "status": "success"}}]},
                    ],
                    "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": schema}}}]},
                }),
            ),
        ]
    }

    fn read<'a>(format: &str, request: &'a Value) -> Conversation<'a> {
        match format {
            "openai" => Conversation::openai(request),
            "anthropic" => Conversation::anthropic(request),
            "gemini" => Conversation::gemini(request),
            _ => Conversation::bedrock(request),
        }
    }

    #[test]
    fn prompt_tokens_are_the_same_in_every_format() {
        // "Be brief." + "Weather in Paris?" + "Paris" + "sunny": 9 + 17 + 5 + 5 = 36 bytes.
        for (format, request) in same_conversation() {
            let conversation = read(format, &request);
            assert_eq!(conversation.text_bytes, 36, "{format}");
            assert_eq!(conversation.prompt_tokens(), 9, "{format}");
            let answer = Answer::new(conversation);
            assert_eq!(answer.text(5), "The tool said: sunny...", "{format}");
            assert_eq!(answer.output_tokens(5), 5, "{format}");
        }
    }

    #[test]
    fn tools_without_a_result_are_called() {
        for (format, mut request) in same_conversation() {
            // Up to the first user message: the answer is a call of the first tool.
            let turns = if format == "gemini" {
                "/contents"
            } else {
                "/messages"
            };
            let turns = request.pointer_mut(turns).unwrap().as_array_mut().unwrap();
            turns.truncate(if format == "openai" { 2 } else { 1 });
            let conversation = read(format, &request);
            // "Be brief." + "Weather in Paris?"
            assert_eq!(conversation.prompt_tokens(), 7, "{format}");
            let answer = Answer::new(conversation);
            let call = answer.tool_call().expect(format);
            assert_eq!(call.name, "weather");
            assert_eq!(call.input, json!({"city": "value"}));
            assert_eq!(answer.output_tokens(5), 3);
            assert_eq!(answer.text_pieces(5).count(), 0);
        }
    }

    #[test]
    fn plain_text_answers() {
        let request = json!({"messages": [{"role": "user", "content": "Say hello"}]});
        let conversation = Conversation::openai(&request);
        assert_eq!(conversation.prompt_tokens(), 3);
        let answer = Answer::new(conversation);
        assert_eq!(answer.text(3), "Hello from the");
        assert_eq!(answer.output_tokens(3), 3);
        // An empty conversation still counts one token.
        assert_eq!(Conversation::anthropic(&json!({})).prompt_tokens(), 1);
    }

    #[test]
    fn tool_results_in_one_chunk_and_as_json() {
        let request = json!({"messages": [
            {"role": "tool", "tool_call_id": "a", "content": "one"},
            {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "two"}]},
        ]});
        let answer = Answer::new(Conversation::openai(&request));
        assert_eq!(answer.text(1), "The tool said: one two");
        assert_eq!(
            answer.text_pieces(2).collect::<Vec<_>>(),
            ["The tool said: ", "one two"]
        );
        let request = json!({"contents": [{"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"temperature": 21}}}]}]});
        assert_eq!(
            Answer::new(Conversation::gemini(&request)).text(2),
            "The tool said: {\"temperature\":21}"
        );
        let request = json!({"messages": [{"role": "user", "content": [
            {"toolResult": {"toolUseId": "t", "content": [{"json": {"sky": "clear", "n": 1}}]}}]}]});
        assert_eq!(
            Answer::new(Conversation::bedrock(&request)).text(2),
            "The tool said: clear"
        );
    }
}
