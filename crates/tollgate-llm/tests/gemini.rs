//! Golden tests of the Gemini upstream format: requests written from the common shape,
//! answers and streams read into it, against fixtures in Gemini's wire format.

use serde_json::{Value, json};
use tollgate_llm::Usage;
use tollgate_llm::chat::{
    ChatRequest, ChatResponse, FinishReason, Image, Message, Part, ResponseFormat, Role,
    StreamDecoder, StreamError, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult,
    TranslateError,
};
use tollgate_llm::gemini::{Decoder, error_message, parse_response, write_request};

mod support;

use support::{call, text};

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("gemini", name)
}

fn fixture_json(name: &str) -> Value {
    support::fixture_json("gemini", name)
}

fn written(request: &ChatRequest) -> Value {
    serde_json::from_slice(&write_request(request).unwrap()).unwrap()
}

fn message(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

fn result(call_id: &str, name: Option<&str>, content: Vec<Part>, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: call_id.into(),
        name: name.map(Into::into),
        content,
        is_error,
    })
}

fn usage(input: u64, output: u64, cached: u64, reasoning: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        reasoning_tokens: reasoning,
    }
}

const PIXEL: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn chat_request() -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-flash".into(),
        system: Some("You are a terse assistant.\n\nAnswer in English.".into()),
        messages: vec![
            message(
                Role::User,
                vec![
                    text("What is in these two pictures?"),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: PIXEL.into(),
                    }),
                    Part::Image(Image::Url(
                        "https://example.com/images/cat.WEBP?size=large".into(),
                    )),
                ],
            ),
            message(Role::Assistant, vec![text("A red pixel and a cat.")]),
            message(Role::Assistant, vec![text("")]),
            message(Role::User, vec![text("Describe the cat")]),
            message(
                Role::User,
                vec![
                    text("as JSON."),
                    Part::Image(Image::Url("https://example.com/photo".into())),
                ],
            ),
        ],
        max_tokens: Some(256),
        temperature: Some(0.7),
        top_p: Some(0.9),
        stop: vec!["END".into(), "\n\n\n".into()],
        stream: true,
        parallel_tool_calls: Some(true),
        response_format: Some(ResponseFormat::JsonObject),
        user: Some("user-42".into()),
        ..ChatRequest::default()
    }
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("The current weather in a city.".into()),
        parameters: json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "The city's name.", "minLength": 1},
                "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", null]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7, "default": 1, "multipleOf": 1}
            },
            "required": ["city"]
        }),
    }
}

fn tools_request() -> ChatRequest {
    ChatRequest {
        model: "gemini-2.5-pro".into(),
        messages: vec![
            message(
                Role::User,
                vec![text("Weather in Paris and in Rome, please.")],
            ),
            message(
                Role::Assistant,
                vec![
                    text("Checking both cities."),
                    call(
                        "call_a",
                        "get_weather",
                        r#"{"city":"Paris","unit":"celsius"}"#,
                    ),
                    call("call_b", "get_weather", r#"{"city": "Rome"}"#),
                ],
            ),
            message(
                Role::User,
                vec![result("call_a", None, vec![text("18°C, cloudy")], false)],
            ),
            message(
                Role::User,
                vec![result(
                    "call_b",
                    Some("get_weather"),
                    vec![
                        text("station offline"),
                        text("retry later"),
                        Part::Image(Image::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        }),
                    ],
                    true,
                )],
            ),
            message(Role::Assistant, vec![call("call_t", "get_time", "")]),
            message(
                Role::User,
                vec![result("call_t", None, vec![text("09:12")], false)],
            ),
            message(
                Role::Assistant,
                vec![text(
                    "Paris: 18°C and cloudy at 09:12. Rome's station is offline.",
                )],
            ),
            message(Role::User, vec![text("Summarise that as a record.")]),
        ],
        tools: vec![
            weather_tool(),
            Tool {
                name: "get_time".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
            },
        ],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "temperature": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                    "conditions": {"type": "array", "items": {"type": "string"},
                        "maxItems": 3, "uniqueItems": true}
                },
                "required": ["city", "temperature", "conditions"],
                "additionalProperties": false,
                "propertyOrdering": ["city", "temperature", "conditions"]
            }),
            strict: Some(true),
        }),
        ..ChatRequest::default()
    }
}

#[test]
fn a_chat_request_is_written_as_gemini_contents() {
    assert_eq!(written(&chat_request()), fixture_json("request_chat.json"));
}

#[test]
fn tools_calls_and_results_are_written_as_gemini_functions() {
    assert_eq!(
        written(&tools_request()),
        fixture_json("request_tools.json")
    );
}

#[test]
fn tool_choices_become_function_calling_modes() {
    let mode = |choice| {
        let request = ChatRequest {
            tools: vec![weather_tool()],
            tool_choice: Some(choice),
            ..ChatRequest::default()
        };
        written(&request)["toolConfig"]["functionCallingConfig"].clone()
    };
    assert_eq!(mode(ToolChoice::Auto), json!({"mode": "AUTO"}));
    assert_eq!(mode(ToolChoice::None), json!({"mode": "NONE"}));
    assert_eq!(mode(ToolChoice::Required), json!({"mode": "ANY"}));
    let no_tools = ChatRequest {
        tool_choice: Some(ToolChoice::None),
        ..ChatRequest::default()
    };
    assert_eq!(written(&no_tools), json!({"contents": []}));
}

#[test]
fn what_gemini_cannot_express_is_refused() {
    let serial = ChatRequest {
        parallel_tool_calls: Some(false),
        ..chat_request()
    };
    assert_eq!(
        write_request(&serial),
        Err(TranslateError::Unsupported {
            field: "parallel_tool_calls".into(),
            upstream: "Gemini",
        })
    );
    let mut recursive = weather_tool();
    recursive.parameters = json!({
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/Tree"}},
        "$defs": {"Tree": {"type": "object", "properties": {"kids": {
            "type": "array", "items": {"$ref": "#/$defs/Tree"}}}}}
    });
    let request = ChatRequest {
        tools: vec![recursive],
        ..ChatRequest::default()
    };
    assert!(matches!(
        write_request(&request),
        Err(TranslateError::Unsupported { field, upstream: "Gemini" })
            if field.starts_with("tools[0].parameters.properties.tree.$ref")
    ));
}

#[test]
fn malformed_calls_and_orphan_results_are_invalid() {
    let with = |messages| ChatRequest {
        messages,
        ..ChatRequest::default()
    };
    for arguments in ["{\"city\":", "[1, 2]"] {
        let request = with(vec![message(
            Role::Assistant,
            vec![call("call_x", "get_weather", arguments)],
        )]);
        assert!(matches!(
            write_request(&request),
            Err(TranslateError::Invalid(message)) if message.contains("call_x")
        ));
    }
    let orphan = with(vec![message(
        Role::User,
        vec![result("call_gone", None, vec![text("ok")], false)],
    )]);
    assert!(matches!(
        write_request(&orphan),
        Err(TranslateError::Invalid(message)) if message.contains("call_gone")
    ));
    let forced_without_tools = ChatRequest {
        tool_choice: Some(ToolChoice::Required),
        ..ChatRequest::default()
    };
    assert!(matches!(
        write_request(&forced_without_tools),
        Err(TranslateError::Invalid(message)) if message.contains("tool_choice")
    ));
}

#[test]
fn a_text_answer_is_read_with_its_usage() {
    assert_eq!(
        parse_response(&fixture("response_text.json")).unwrap(),
        ChatResponse {
            id: "mG1oaJ-hLZyUz7IPx_bHgQE".into(),
            model: "gemini-2.5-flash".into(),
            content: vec![text("Hello! How can I help you today?")],
            finish_reason: Some(FinishReason::EndTurn),
            usage: usage(1032, 37, 1024, 28),
        }
    );
}

#[test]
fn function_calls_are_read_as_tool_calls() {
    assert_eq!(
        parse_response(&fixture("response_tool_call.json")).unwrap(),
        ChatResponse {
            id: "Kz9paM2bN4qPz7IP3q2KcA".into(),
            model: "gemini-2.5-pro".into(),
            content: vec![
                text("I'll check both cities."),
                call(
                    "call_Kz9paM2bN4qPz7IP3q2KcA_0",
                    "get_weather",
                    r#"{"city": "Paris", "unit": "celsius"}"#,
                ),
                call("fc-rome-2", "get_weather", r#"{"city": "Rome"}"#),
            ],
            finish_reason: Some(FinishReason::ToolUse),
            usage: usage(87, 41, 0, 0),
        }
    );
}

#[test]
fn a_blocked_prompt_is_a_filtered_empty_answer() {
    let response = parse_response(&fixture("response_blocked.json")).unwrap();
    assert_eq!(response.content, vec![]);
    assert_eq!(response.finish_reason, Some(FinishReason::ContentFilter));
    assert_eq!(response.usage, usage(14, 0, 0, 0));
}

#[test]
fn thoughts_are_skipped_and_the_limit_reported() {
    let response = parse_response(&fixture("response_max_tokens.json")).unwrap();
    assert!(response.id.starts_with("gemini-"), "{}", response.id);
    assert_eq!(response.model, "gemini-2.5-flash-lite");
    assert_eq!(response.content, vec![text("1. Apples\n2. Pears\n3.")]);
    assert_eq!(response.finish_reason, Some(FinishReason::MaxTokens));
    assert_eq!(response.usage, usage(20, 76, 0, 64));
}

#[test]
fn finish_reasons_map_to_the_common_ones() {
    let finish = |reason: &str| {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]},
            "finishReason": reason}]});
        parse_response(body.to_string().as_bytes())
            .unwrap()
            .finish_reason
    };
    for reason in [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
    ] {
        assert_eq!(
            finish(reason),
            Some(FinishReason::ContentFilter),
            "{reason}"
        );
    }
    for reason in ["STOP", "OTHER", "LANGUAGE", "MALFORMED_FUNCTION_CALL"] {
        assert_eq!(finish(reason), Some(FinishReason::EndTurn), "{reason}");
    }
    assert_eq!(finish("MAX_TOKENS"), Some(FinishReason::MaxTokens));
}

#[test]
fn a_body_that_is_not_an_answer_is_invalid() {
    assert!(matches!(
        parse_response(b"[1]"),
        Err(TranslateError::Invalid(_))
    ));
    assert!(matches!(
        parse_response(&fixture("error.json")),
        Err(TranslateError::Invalid(message)) if message.contains("API key not valid")
    ));
}

#[test]
fn error_bodies_give_their_message() {
    let message = "API key not valid. Please pass a valid API key.";
    assert_eq!(
        error_message(&fixture("error.json")).as_deref(),
        Some(message)
    );
    let wrapped = format!("[{}]", String::from_utf8(fixture("error.json")).unwrap());
    assert_eq!(error_message(wrapped.as_bytes()).as_deref(), Some(message));
    assert_eq!(error_message(&fixture("response_text.json")), None);
    assert_eq!(error_message(b"upstream connect error"), None);
}

/// The events and the outcome of a stream fed in `chunks`.
fn decode(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), StreamError>) {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = decoder.push(chunk, &mut events) {
            return (events, Err(error));
        }
    }
    let outcome = decoder.finish(&mut events);
    (events, outcome)
}

fn decode_fixture(name: &str) -> (Vec<StreamEvent>, Result<(), StreamError>) {
    decode(&[&fixture(name)])
}

#[test]
fn a_text_stream_is_decoded_as_it_comes() {
    assert_eq!(
        decode_fixture("stream_text.sse"),
        (
            vec![
                StreamEvent::Start {
                    id: "2b1oaP6xKqOQz7IPjvLb4QE".into(),
                    model: "gemini-2.5-flash".into(),
                },
                StreamEvent::Text("The".into()),
                StreamEvent::Usage(usage(9, 0, 0, 0)),
                StreamEvent::Text(" quick brown fox jumps".into()),
                StreamEvent::Text(" over the lazy dog — «done».".into()),
                StreamEvent::Finish(FinishReason::EndTurn),
                StreamEvent::Usage(usage(9, 34, 0, 20)),
            ],
            Ok(())
        )
    );
}

#[test]
fn a_streamed_function_call_comes_whole() {
    let id = "qL9oaLzXM8Wdz7IPmaTQ8QQ";
    assert_eq!(
        decode_fixture("stream_tool_call.sse"),
        (
            vec![
                StreamEvent::Start {
                    id: id.into(),
                    model: "gemini-2.5-pro".into(),
                },
                StreamEvent::Text("Let me look that up.".into()),
                StreamEvent::Usage(usage(120, 0, 64, 0)),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: format!("call_{id}_0"),
                    name: "get_weather".into(),
                },
                StreamEvent::ToolArguments {
                    index: 0,
                    delta: r#"{"city":"Paris","unit":"celsius"}"#.into(),
                },
                StreamEvent::ToolCallStart {
                    index: 1,
                    id: format!("call_{id}_1"),
                    name: "get_time".into(),
                },
                StreamEvent::ToolArguments {
                    index: 1,
                    delta: "{}".into(),
                },
                StreamEvent::Finish(FinishReason::ToolUse),
                StreamEvent::Usage(usage(120, 31, 64, 0)),
            ],
            Ok(())
        )
    );
}

#[test]
fn a_stream_blocked_at_the_prompt_is_filtered() {
    assert_eq!(
        decode_fixture("stream_blocked.sse"),
        (
            vec![
                StreamEvent::Start {
                    id: "YmxvY2tlZA".into(),
                    model: "gemini-2.0-flash".into(),
                },
                StreamEvent::Finish(FinishReason::ContentFilter),
                StreamEvent::Usage(usage(11, 0, 0, 0)),
            ],
            Ok(())
        )
    );
}

#[test]
fn an_error_event_stops_the_stream() {
    let (events, outcome) = decode_fixture("stream_error.sse");
    assert_eq!(events[1], StreamEvent::Text("Once upon".into()));
    assert_eq!(
        outcome,
        Err(StreamError::Upstream(
            "The model is overloaded. Please try again later.".into()
        ))
    );
}

#[test]
fn a_stream_without_ids_gets_made_up_ones_and_an_unended_tail_is_read() {
    let stream = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":",
        "{\"name\":\"get_time\"}}],\"role\":\"model\"},\"finishReason\":\"STOP\"}]}"
    );
    let (events, outcome) = decode(&[stream.as_bytes()]);
    assert_eq!(outcome, Ok(()));
    let StreamEvent::Start { id, model } = &events[0] else {
        panic!("{events:?}");
    };
    assert!(id.starts_with("gemini-"), "{id}");
    assert_eq!(model, "");
    assert_eq!(
        events[1..],
        [
            StreamEvent::ToolCallStart {
                index: 0,
                id: format!("call_{id}_0"),
                name: "get_time".into(),
            },
            StreamEvent::ToolArguments {
                index: 0,
                delta: "{}".into(),
            },
            StreamEvent::Finish(FinishReason::ToolUse),
        ]
    );
}

#[test]
fn an_event_that_is_not_json_is_malformed() {
    let (_, outcome) = decode(&[b"data: {\"candidates\": [\n\n"]);
    assert!(matches!(outcome, Err(StreamError::Malformed(_))));
}

#[test]
fn streams_split_anywhere_decode_the_same() {
    for name in [
        "stream_text.sse",
        "stream_tool_call.sse",
        "stream_blocked.sse",
        "stream_error.sse",
    ] {
        support::assert_splits_decode_the_same(name, &fixture(name), 0x5EED_0F6E_3141, 12, decode);
    }
}

/// The tool calls a stream's events describe, arguments put together.
fn streamed_calls(events: &[StreamEvent]) -> Vec<ToolCall> {
    let mut calls: Vec<ToolCall> = Vec::new();
    for event in events {
        match event {
            StreamEvent::ToolCallStart { id, name, .. } => calls.push(ToolCall {
                id: id.clone(),
                name: name.clone(),
                arguments: String::new(),
            }),
            StreamEvent::ToolArguments { index, delta } => {
                calls[*index as usize].arguments.push_str(delta);
            }
            _ => {}
        }
    }
    calls
}

/// A next turn that answers `calls` by id only, as OpenAI and Anthropic callers do.
fn answering(calls: Vec<ToolCall>) -> ChatRequest {
    let results = calls
        .iter()
        .map(|call| result(&call.id, None, vec![text("done")], false))
        .collect();
    ChatRequest {
        messages: vec![
            message(Role::User, vec![text("go")]),
            message(
                Role::Assistant,
                calls.into_iter().map(Part::ToolCall).collect(),
            ),
            message(Role::User, results),
        ],
        ..ChatRequest::default()
    }
}

#[test]
fn calls_read_from_gemini_go_back_to_it_with_their_names() {
    let response = parse_response(&fixture("response_tool_call.json")).unwrap();
    let calls = response
        .content
        .into_iter()
        .filter_map(|part| match part {
            Part::ToolCall(call) => Some(call),
            _ => None,
        })
        .collect();
    let request = written(&answering(calls));
    assert_eq!(
        request["contents"][1]["parts"],
        json!([
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}},
                "thoughtSignature": "skip_thought_signature_validator"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
        ])
    );
    assert_eq!(
        request["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"output": "done"}}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "done"}}}
        ])
    );

    let (events, _) = decode_fixture("stream_tool_call.sse");
    let request = written(&answering(streamed_calls(&events)));
    assert_eq!(
        request["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"output": "done"}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "done"}}}
        ])
    );
}
