//! Golden, round-trip and split-stream tests of the Anthropic Messages translator, on
//! fixtures in Anthropic's wire format (`tests/fixtures/anthropic/`).

use serde_json::{Value, json};
use tollgate_llm::Usage;
use tollgate_llm::anthropic::{
    DEFAULT_MAX_TOKENS, Decoder, Encoder, error_message, parse_request, parse_response,
    write_request, write_response,
};
use tollgate_llm::chat::{
    ChatRequest, ChatResponse, FinishReason, Image, Message, Part, ResponseFormat, Role,
    StreamDecoder, StreamEncoder, StreamError, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult,
    TranslateError,
};

mod support;

use support::{arguments, delta, not_carried, start, text, user};

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("anthropic", name)
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

const CALL_A: &str = "toolu_01A09q90qw90lq917835lq9";
const CALL_B: &str = "toolu_01B19r91rx91mr918946mr0";

/// The common shape of `request_full.json`.
fn full_request() -> ChatRequest {
    ChatRequest {
        model: "claude-sonnet-4-5".into(),
        system: Some("You are a weather assistant.\n\nAnswer in one sentence.".into()),
        messages: vec![
            Message {
                role: Role::User,
                content: vec![text("What is the weather in Paris and in Rome?")],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    text("Let me check both cities."),
                    Part::ToolCall(ToolCall {
                        id: CALL_A.into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris","unit":"celsius"}"#.into(),
                    }),
                    Part::ToolCall(ToolCall {
                        id: CALL_B.into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Rome"}"#.into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::ToolResult(ToolResult {
                        call_id: CALL_A.into(),
                        name: Some("get_weather".into()),
                        content: vec![text("18 degrees, cloudy")],
                        is_error: false,
                    }),
                    Part::ToolResult(ToolResult {
                        call_id: CALL_B.into(),
                        name: Some("get_weather".into()),
                        content: vec![
                            text("weather service unavailable"),
                            Part::Image(Image::Base64 {
                                media_type: "image/png".into(),
                                data: "iVBORw0KGgo=".into(),
                            }),
                        ],
                        is_error: true,
                    }),
                    text("And what does this sky look like?"),
                    Part::Image(Image::Url("https://example.com/sky.jpg".into())),
                ],
            },
        ],
        max_tokens: Some(1024),
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["\n\nHuman:".into(), "END".into()],
        stream: true,
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Get the current weather in a given city".into()),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "The city, e.g. Paris"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["city"]
                }),
            },
            Tool {
                name: "get_time".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {"timezone": {"type": "string"}}}),
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(false),
        response_format: None,
        user: Some("13803d75-b4b5-4c3e-b2a2-6f21399b021b".into()),
    }
}

#[test]
fn a_caller_request_reads_into_the_common_shape() {
    assert_eq!(
        parse_request(&fixture("request_full.json")).unwrap(),
        full_request()
    );
}

#[test]
fn the_common_request_is_written_in_anthropic_form() {
    let written = write_request(&full_request()).unwrap();
    assert_eq!(json_of(&written), json_of(&fixture("request_written.json")));
}

#[test]
fn a_written_request_reads_back_the_same() {
    let request = full_request();
    let written = write_request(&request).unwrap();
    assert_eq!(parse_request(&written).unwrap(), request);
}

#[test]
fn structured_output_travels_both_ways() {
    let request = parse_request(&fixture("request_structured.json")).unwrap();
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": false
    });
    assert_eq!(
        request.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: schema.clone(),
            strict: Some(true),
        })
    );
    assert_eq!(request.tool_choice, Some(ToolChoice::None));
    assert_eq!(request.parallel_tool_calls, None);
    let written = json_of(&write_request(&request).unwrap());
    assert_eq!(
        written["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}})
    );
    assert_eq!(written["tool_choice"], json!({"type": "none"}));
    assert_eq!(parse_request(&to_bytes(&written)).unwrap(), request);

    let beta = json!({
        "model": "m", "max_tokens": 5, "messages": [],
        "output_format": {"type": "json_schema", "schema": {"type": "object"}}
    });
    assert!(matches!(
        parse_request(&to_bytes(&beta)).unwrap().response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[test]
fn what_anthropic_requires_is_always_sent() {
    let request = ChatRequest {
        model: "claude-haiku-4-5".into(),
        messages: vec![user(vec![text("hi")])],
        ..ChatRequest::default()
    };
    let written = json_of(&write_request(&request).unwrap());
    assert_eq!(
        written,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
        })
    );
}

#[test]
fn messages_are_shaped_as_anthropic_accepts_them() {
    let call = ToolCall {
        id: "call_1".into(),
        name: "f".into(),
        arguments: String::new(),
    };
    let result = |content| {
        user(vec![Part::ToolResult(ToolResult {
            call_id: "call_1".into(),
            name: None,
            content,
            is_error: false,
        })])
    };
    let request = ChatRequest {
        model: "m".into(),
        messages: vec![
            user(vec![
                text(""),
                Part::Image(Image::Url("data:image/jpeg;base64,/9j/4AAQ".into())),
            ]),
            Message {
                role: Role::Assistant,
                content: vec![text(""), Part::ToolCall(call)],
            },
            result(vec![text("1")]),
            result(Vec::new()),
            user(vec![text("")]),
            user(vec![text("next")]),
        ],
        ..ChatRequest::default()
    };
    let written = json_of(&write_request(&request).unwrap());
    assert_eq!(
        written["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "1"}]},
                {"type": "tool_result", "tool_use_id": "call_1"},
                {"type": "text", "text": "next"}
            ]}
        ])
    );
}

#[test]
fn tool_options_are_written_only_with_tools() {
    let tool = Tool {
        name: "f".into(),
        description: None,
        parameters: Value::Null,
    };
    let base = ChatRequest {
        model: "m".into(),
        messages: vec![user(vec![text("hi")])],
        ..ChatRequest::default()
    };
    let written = |request: &ChatRequest| json_of(&write_request(request).unwrap());

    let serial = ChatRequest {
        tools: vec![tool.clone()],
        parallel_tool_calls: Some(false),
        ..base.clone()
    };
    let out = written(&serial);
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        out["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}})
    );

    let forced = ChatRequest {
        tool_choice: Some(ToolChoice::Tool("f".into())),
        parallel_tool_calls: Some(true),
        ..serial.clone()
    };
    assert_eq!(
        written(&forced)["tool_choice"],
        json!({"type": "tool", "name": "f", "disable_parallel_tool_use": false})
    );
    let any = ChatRequest {
        tool_choice: Some(ToolChoice::Required),
        parallel_tool_calls: None,
        ..serial
    };
    assert_eq!(written(&any)["tool_choice"], json!({"type": "any"}));

    let no_tools = ChatRequest {
        tool_choice: Some(ToolChoice::Required),
        parallel_tool_calls: Some(false),
        ..base
    };
    let out = written(&no_tools);
    assert!(out.get("tool_choice").is_none() && out.get("tools").is_none());
}

#[test]
fn what_anthropic_cannot_express_is_refused_by_name() {
    let json_mode = ChatRequest {
        model: "m".into(),
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        write_request(&json_mode),
        Err(TranslateError::Unsupported {
            field: "response_format".into(),
            upstream: "Anthropic",
        })
    );
    let bad_arguments = ChatRequest {
        model: "m".into(),
        messages: vec![Message {
            role: Role::Assistant,
            content: vec![Part::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "not json".into(),
            })],
        }],
        ..ChatRequest::default()
    };
    assert!(matches!(
        write_request(&bad_arguments),
        Err(TranslateError::Invalid(message)) if message.contains("`c`")
    ));
}

/// A minimal valid request with `extra` merged in at the top level.
fn request_with(extra: Value) -> Vec<u8> {
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    to_bytes(&body)
}

#[test]
fn caller_fields_the_common_shape_cannot_carry_are_refused() {
    let history = |block: Value| json!({"messages": [{"role": "assistant", "content": [block]}]});
    let cases = [
        (
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
            not_carried("thinking"),
        ),
        (
            json!({"thinking": {"type": "adaptive"}}),
            not_carried("thinking"),
        ),
        (json!({"top_k": 5}), not_carried("top_k")),
        (
            json!({"mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}]}),
            not_carried("mcp_servers"),
        ),
        (
            history(json!({"type": "thinking", "thinking": "hm", "signature": "sig"})),
            not_carried("messages[0].content[0] (thinking block)"),
        ),
        (
            history(json!({"type": "redacted_thinking", "data": "abc"})),
            not_carried("messages[0].content[0] (redacted_thinking block)"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "summarise"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
            ]}]}),
            not_carried("messages[0].content[1] (document block)"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_011"}}
            ]}]}),
            not_carried("messages[0].content[0].source (file image source)"),
        ),
        (
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}),
            not_carried("tools[0] (web_search_20250305 tool)"),
        ),
        (
            json!({"output_config": {"format": {"type": "xml"}}}),
            not_carried("output_config.format (xml)"),
        ),
    ];
    for (extra, expected) in cases {
        let body = request_with(extra.clone());
        assert_eq!(parse_request(&body).map(drop), expected, "{extra}");
    }
}

#[test]
fn harmless_caller_fields_are_dropped() {
    let body = request_with(json!({
        "thinking": {"type": "disabled"},
        "service_tier": "auto",
        "metadata": {"user_id": "u1", "other": 1},
        "output_config": {"effort": "low"},
        "cache_control": {"type": "ephemeral"},
        "temperature": null,
        "system": [],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "citations": []}
        ]}]
    }));
    let request = parse_request(&body).unwrap();
    assert_eq!(request.user.as_deref(), Some("u1"));
    assert_eq!(request.system, None);
    assert_eq!(request.temperature, None);
    assert_eq!(request.response_format, None);
    assert_eq!(request.messages, vec![user(vec![text("hi")])]);
}

fn invalid_message(body: &[u8]) -> String {
    match parse_request(body) {
        Err(TranslateError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn malformed_caller_requests_name_the_field() {
    let without_max_tokens = br#"{"model":"m","messages":[]}"#;
    assert_eq!(
        invalid_message(without_max_tokens),
        "`max_tokens` is required"
    );
    let cases = [
        (json!({"model": 5}), "`model` must be a string"),
        (
            json!({"max_tokens": -1}),
            "`max_tokens` must be a non-negative integer",
        ),
        (json!({"messages": {}}), "`messages` must be an array"),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "`messages[0].role` must be `user` or `assistant`",
        ),
        (
            json!({"messages": [{"role": "user", "content": 3}]}),
            "`messages[0].content` must be a string or an array of content blocks",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]}]}),
            "`messages[0].content[0].source.data` is required",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]}),
            "`messages[0].content[0]` is a `tool_use` block, which only assistant messages hold",
        ),
        (
            json!({"system": [{"type": "image"}]}),
            "`system[0].type` must be `text`",
        ),
        (
            json!({"tools": [{"name": "f"}]}),
            "`tools[0].input_schema` is required",
        ),
        (
            json!({"tool_choice": {"type": "sometimes"}}),
            "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
        ),
        (
            json!({"stop_sequences": ["a", 1]}),
            "`stop_sequences[1]` must be a string",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(invalid_message(&request_with(extra)), expected);
    }
    assert!(invalid_message(b"{not json").starts_with("the body is not valid JSON"));
    assert_eq!(invalid_message(b"[1]"), "`body` must be an object");
}

#[test]
fn an_answer_with_a_tool_call_reads_into_the_common_shape() {
    let response = parse_response(&fixture("response_tool_use.json")).unwrap();
    assert_eq!(
        response,
        ChatResponse {
            id: "msg_01Aq9w938a90dw8q".into(),
            model: "claude-sonnet-4-5-20250929".into(),
            content: vec![
                text("I'll look up the weather in Paris."),
                Part::ToolCall(ToolCall {
                    id: CALL_A.into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }),
            ],
            finish_reason: Some(FinishReason::ToolUse),
            usage: Usage {
                input_tokens: 412 + 1024 + 2048,
                output_tokens: 57,
                cached_tokens: 2048,
                reasoning_tokens: 0,
            },
        }
    );
}

#[test]
fn thinking_is_dropped_from_answers_but_counted() {
    let response = parse_response(&fixture("response_thinking.json")).unwrap();
    assert_eq!(
        response.content,
        vec![text("Hello! How can I help you today?")]
    );
    assert_eq!(response.finish_reason, Some(FinishReason::EndTurn));
    assert_eq!(response.usage.reasoning_tokens, 96);
    assert_eq!(response.usage.output_tokens, 120);
}

#[test]
fn answers_are_written_as_anthropic_messages() {
    let response = parse_response(&fixture("response_tool_use.json")).unwrap();
    let written = write_response(&response);
    assert_eq!(
        json_of(&written),
        json!({
            "id": "msg_01Aq9w938a90dw8q",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "text", "text": "I'll look up the weather in Paris."},
                {"type": "tool_use", "id": CALL_A, "name": "get_weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 412 + 1024,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 2048,
                "output_tokens": 57
            }
        })
    );
    assert_eq!(parse_response(&written).unwrap(), response);
    let thinking = parse_response(&fixture("response_thinking.json")).unwrap();
    assert_eq!(
        parse_response(&write_response(&thinking)).unwrap(),
        thinking
    );
}

#[test]
fn unparseable_arguments_reach_the_caller_as_they_are() {
    let response = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        content: vec![Part::ToolCall(ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"a\":".into(),
        })],
        finish_reason: None,
        usage: Usage::default(),
    };
    let written = json_of(&write_response(&response));
    assert_eq!(written["content"][0]["input"], json!("{\"a\":"));
    assert_eq!(written["stop_reason"], Value::Null);
}

#[test]
fn error_bodies_are_read() {
    let body = fixture("error.json");
    assert_eq!(error_message(&body).as_deref(), Some("Overloaded"));
    assert!(matches!(
        parse_response(&body),
        Err(TranslateError::Invalid(message)) if message.contains("Overloaded")
    ));
    assert!(matches!(
        parse_response(b"{\"id\":1}"),
        Err(TranslateError::Invalid(message)) if message.starts_with("the Anthropic answer is malformed")
    ));
}

/// What a decoder makes of `chunks`: its events, and how the stream ended.
fn decode(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Result<(), StreamError>) {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = decoder.push(chunk, &mut events) {
            return (events, Err(error));
        }
    }
    let end = decoder.finish(&mut events);
    (events, end)
}

fn usage(input_tokens: u64, output_tokens: u64, cached_tokens: u64) -> StreamEvent {
    StreamEvent::Usage(Usage {
        input_tokens,
        output_tokens,
        cached_tokens,
        reasoning_tokens: 0,
    })
}

fn tool_stream_events() -> Vec<StreamEvent> {
    vec![
        start("msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929"),
        usage(2472, 2, 2000),
        delta("Let me check "),
        delta("both cities."),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into(),
        },
        arguments(0, "{\"city\": \"Par"),
        arguments(0, "is\"}"),
        StreamEvent::ToolCallStart {
            index: 1,
            id: "toolu_01Vq3aT8fC8nGo1Xb3tLhSyM".into(),
            name: "get_weather".into(),
        },
        arguments(1, "{\"city\":"),
        arguments(1, " \"Rome\"}"),
        StreamEvent::Finish(FinishReason::ToolUse),
        usage(2472, 89, 2000),
    ]
}

#[test]
fn streams_decode_into_common_events() {
    let (events, end) = decode(&[&fixture("stream_text.sse")]);
    assert_eq!(end, Ok(()));
    assert_eq!(
        events,
        vec![
            start("msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5-20250929"),
            usage(25, 1, 0),
            delta("Hello"),
            delta("! Ça va ? 👋"),
            StreamEvent::Finish(FinishReason::EndTurn),
            usage(25, 15, 0),
        ]
    );

    let (events, end) = decode(&[&fixture("stream_tool_use.sse")]);
    assert_eq!(end, Ok(()));
    assert_eq!(events, tool_stream_events());
}

#[test]
fn thinking_is_passed_over_in_streams() {
    let (events, end) = decode(&[&fixture("stream_thinking.sse")]);
    assert_eq!(end, Ok(()));
    assert_eq!(
        events,
        vec![
            start("msg_01LE6ie5qgVaMCTC9eTNwDeb", "claude-opus-4-1"),
            usage(40, 3, 0),
            delta("27 * 453 = 12231"),
            StreamEvent::Finish(FinishReason::MaxTokens),
            StreamEvent::Usage(Usage {
                input_tokens: 40,
                output_tokens: 210,
                cached_tokens: 0,
                reasoning_tokens: 180,
            }),
        ]
    );
}

#[test]
fn an_error_event_ends_the_stream() {
    let (events, end) = decode(&[&fixture("stream_error.sse")]);
    assert_eq!(
        end,
        Err(StreamError::Upstream("overloaded_error: Overloaded".into()))
    );
    assert_eq!(events.last(), Some(&delta("Once upon")));
}

#[test]
fn broken_streams_are_malformed() {
    let headless = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n";
    assert!(matches!(
        decode(&[headless]).1,
        Err(StreamError::Malformed(_))
    ));
    assert!(matches!(
        decode(&[b"event: message_start\ndata: {oops\n\n"]).1,
        Err(StreamError::Malformed(_))
    ));
}

#[test]
fn an_unterminated_last_event_is_read_at_the_end() {
    let mut stream = fixture("stream_text.sse");
    stream.truncate(stream.len() - 2);
    assert_eq!(decode(&[&stream]), decode(&[&fixture("stream_text.sse")]));
}

#[test]
fn streams_split_anywhere_decode_the_same() {
    for name in [
        "stream_text.sse",
        "stream_tool_use.sse",
        "stream_thinking.sse",
        "stream_error.sse",
    ] {
        support::assert_splits_decode_the_same(
            name,
            &fixture(name),
            0x0A17_0B1C_5EED_2024,
            8,
            decode,
        );
    }
}

fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    encoder.finish(&mut out);
    out
}

#[test]
fn the_encoder_writes_the_events_anthropic_sends() {
    let events = [
        start("msg_1", "claude-haiku-4-5"),
        usage(30, 1, 10),
        delta("Hi"),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_1".into(),
            name: "get_weather".into(),
        },
        arguments(0, "{\"city\":"),
        arguments(0, "\"Oslo\"}"),
        delta("Done."),
        StreamEvent::Finish(FinishReason::ToolUse),
        usage(30, 12, 10),
    ];
    let out = String::from_utf8(encode(&events)).unwrap();
    let expected = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Oslo\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"Done.\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10,\"output_tokens\":12}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn decoded_streams_encode_and_decode_back_the_same() {
    for name in [
        "stream_text.sse",
        "stream_tool_use.sse",
        "stream_thinking.sse",
    ] {
        let (events, _) = decode(&[&fixture(name)]);
        let (again, end) = decode(&[&encode(&events)]);
        assert_eq!(end, Ok(()));
        assert_eq!(again, events, "{name}");
    }
}

#[test]
fn usage_reported_last_reaches_message_delta() {
    // As an OpenAI upstream streams: no usage until the end, after the finish reason.
    let events = [
        start("chatcmpl-1", "gpt-4o-mini"),
        delta("Hello"),
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_2".into(),
            name: "g".into(),
        },
        arguments(0, "{}"),
        arguments(1, "{\"x\":1}"),
        arguments(7, "{}"),
        StreamEvent::Finish(FinishReason::ToolUse),
        usage(9, 4, 0),
    ];
    let (decoded, end) = decode(&[&encode(&events)]);
    assert_eq!(end, Ok(()));
    let mut expected = vec![
        start("chatcmpl-1", "gpt-4o-mini"),
        usage(0, 0, 0),
        delta("Hello"),
    ];
    expected.extend(events[2..4].iter().cloned());
    // The first call's arguments went to its block after the second call opened, which
    // the SDKs accumulate by index; Tollgate's decoder follows only the open block.
    expected.push(arguments(1, "{\"x\":1}"));
    expected.push(StreamEvent::Finish(FinishReason::ToolUse));
    expected.push(usage(9, 4, 0));
    assert_eq!(decoded, expected);
    let out = String::from_utf8(encode(&events)).unwrap();
    assert!(out.contains(
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}"
    ));
}

#[test]
fn an_empty_stream_still_closes_properly() {
    let out = String::from_utf8(encode(&[])).unwrap();
    let names: Vec<&str> = out
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    assert!(out.contains("\"stop_reason\":null"));
}
