//! What the translator tests share: reading fixtures, building the common shape's messages,
//! parts and stream events, the common request of the OpenAI fixtures, and the property every
//! stream decoder must have (the same events however the stream is cut).

use serde_json::{Value, json};
use tollgate_llm::chat::{
    ChatRequest, Image, Message, Part, ResponseFormat, Role, StreamEvent, Tool, ToolCall,
    ToolChoice, ToolResult, TranslateError,
};

/// The bytes of `tests/fixtures/<format>/<name>`.
pub(crate) fn fixture(format: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{format}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// A fixture parsed as JSON.
#[allow(
    dead_code,
    reason = "the Anthropic tests read their JSON fixtures otherwise"
)]
pub(crate) fn fixture_json(format: &str, name: &str) -> Value {
    serde_json::from_slice(&fixture(format, name)).unwrap()
}

/// A user message.
#[allow(dead_code, reason = "the Gemini tests build their messages by role")]
pub(crate) fn user(content: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        content,
    }
}

/// An assistant message.
#[allow(
    dead_code,
    reason = "the Gemini tests build their messages by role, the Anthropic tests write theirs out whole"
)]
pub(crate) fn assistant(content: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        content,
    }
}

/// A text part.
pub(crate) fn text(text: &str) -> Part {
    Part::Text(text.to_owned())
}

/// A tool call part.
#[allow(
    dead_code,
    reason = "the Bedrock and Anthropic tests write their calls out whole"
)]
pub(crate) fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: arguments.to_owned(),
    })
}

/// A tool result part that is not an error.
#[allow(
    dead_code,
    reason = "the other tests write their results out whole, or with an error flag"
)]
pub(crate) fn result(call_id: &str, name: Option<&str>, content: Vec<Part>) -> Part {
    Part::ToolResult(ToolResult {
        call_id: call_id.to_owned(),
        name: name.map(str::to_owned),
        content,
        is_error: false,
    })
}

/// The common shape of `tests/fixtures/openai/request.json`, a request that uses every part
/// of the common shape: a system prompt, images, tool calls and results, sampling, stop
/// sequences, a tool, structured output.
#[allow(dead_code, reason = "only the OpenAI tests read this request")]
pub(crate) fn weather_request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o".to_owned(),
        system: Some("You are a helpful travel assistant.\n\nAnswer in English.".to_owned()),
        messages: vec![
            user(vec![
                text("What is the weather in Paris and in Rome? Here is a map."),
                Part::Image(Image::Url("https://example.com/map.png".to_owned())),
                Part::Image(Image::Base64 {
                    media_type: "image/png".to_owned(),
                    data: "iVBORw0KGgoAAAANSUhEUg==".to_owned(),
                }),
            ]),
            assistant(vec![
                call("call_paris", "get_weather", r#"{"city":"Paris"}"#),
                call("call_rome", "get_weather", r#"{"city":"Rome"}"#),
            ]),
            user(vec![
                result(
                    "call_paris",
                    Some("get_weather"),
                    vec![text("18°C, cloudy")],
                ),
                result("call_rome", Some("get_weather"), vec![text("24°C, sunny")]),
            ]),
            assistant(vec![text(
                "Paris is 18°C and cloudy; Rome is 24°C and sunny.",
            )]),
            user(vec![text("Thanks! Which one is warmer?")]),
        ],
        max_tokens: Some(512),
        temperature: Some(0.2),
        top_p: Some(0.9),
        stop: vec!["\n\nUser:".to_owned()],
        stream: true,
        tools: vec![Tool {
            name: "get_weather".to_owned(),
            description: Some("Current weather for a city.".to_owned()),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": false
            }),
        }],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "comparison".to_owned(),
            schema: json!({
                "type": "object",
                "properties": {"warmer": {"type": "string"}, "difference_celsius": {"type": "number"}},
                "required": ["warmer", "difference_celsius"],
                "additionalProperties": false
            }),
            strict: Some(true),
        }),
        user: Some("user-1234".to_owned()),
    }
}

/// What reading a caller's request gives when it asks for `field`, which the common shape
/// cannot carry to another provider.
#[allow(
    dead_code,
    reason = "only the caller dialects' tests read callers' requests"
)]
pub(crate) fn not_carried<T>(field: &str) -> Result<T, TranslateError> {
    Err(TranslateError::Unsupported {
        field: field.to_owned(),
        upstream: "translation to another provider",
    })
}

/// Asserts that the caller's request `body`, read into `read`, is invalid with a message that
/// starts with `expected`.
#[allow(dead_code, reason = "the other tests check invalid requests otherwise")]
pub(crate) fn assert_invalid(
    read: Result<ChatRequest, TranslateError>,
    expected: &str,
    body: &Value,
) {
    match read {
        Err(TranslateError::Invalid(message)) => {
            assert!(message.starts_with(expected), "{body}: {message}")
        }
        other => panic!("{body}: {other:?}"),
    }
}

/// A stream's start event.
#[allow(
    dead_code,
    reason = "the Bedrock and Gemini tests write their start events out whole"
)]
pub(crate) fn start(id: &str, model: &str) -> StreamEvent {
    StreamEvent::Start {
        id: id.to_owned(),
        model: model.to_owned(),
    }
}

/// A text event.
#[allow(
    dead_code,
    reason = "the Bedrock and Gemini tests write their text events out whole"
)]
pub(crate) fn delta(text: &str) -> StreamEvent {
    StreamEvent::Text(text.to_owned())
}

/// The event that starts tool call `index`.
#[allow(
    dead_code,
    reason = "the other tests write their tool call starts out whole"
)]
pub(crate) fn tool_start(index: u32, id: &str, name: &str) -> StreamEvent {
    StreamEvent::ToolCallStart {
        index,
        id: id.to_owned(),
        name: name.to_owned(),
    }
}

/// A piece of tool call `index`'s arguments.
#[allow(
    dead_code,
    reason = "the Gemini tests write their argument events out whole"
)]
pub(crate) fn arguments(index: u32, delta: &str) -> StreamEvent {
    StreamEvent::ToolArguments {
        index,
        delta: delta.to_owned(),
    }
}

/// A small seeded generator (xorshift64*), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    }
}

/// Asserts that `decode` (which feeds a fresh decoder the pieces in order) gives what it gives
/// for the whole stream when the stream is cut at every single position, fed byte by byte, and
/// cut at up to `max_cuts` random positions in 300 rounds seeded with `seed`.
pub(crate) fn assert_splits_decode_the_same<T: PartialEq + std::fmt::Debug>(
    name: &str,
    stream: &[u8],
    seed: u64,
    max_cuts: usize,
    decode: impl Fn(&[&[u8]]) -> T,
) {
    let whole = decode(&[stream]);
    for cut in 0..=stream.len() {
        let (head, tail) = stream.split_at(cut);
        assert_eq!(decode(&[head, tail]), whole, "{name} cut at {cut}");
    }
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(&bytewise), whole, "{name} byte by byte");
    let mut rng = Rng(seed);
    for round in 0..300 {
        let mut cuts: Vec<usize> = (0..1 + rng.below(max_cuts))
            .map(|_| rng.below(stream.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        let mut from = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            pieces.push(&stream[from..cut]);
            from = cut;
        }
        assert_eq!(decode(&pieces), whole, "{name} round {round}: {pieces:?}");
    }
}
