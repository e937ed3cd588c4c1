//! Golden, round-trip and property tests of the OpenAI Chat Completions translator, against
//! fixtures in OpenAI's wire format (`tests/fixtures/openai/`): requests, answers, and streams
//! from OpenAI and Azure OpenAI.

use serde_json::{Value, json};
use tollgate_llm::Usage;
use tollgate_llm::chat::{
    ChatRequest, ChatResponse, FinishReason, Image, Part, ResponseFormat, StreamDecoder,
    StreamEncoder, StreamError, StreamEvent, ToolChoice, TranslateError,
};
use tollgate_llm::openai::chat::{
    Decoder, Encoder, MaxTokensField, error_message, parse_request, parse_response, write_request,
    write_response,
};

mod support;

use support::{
    arguments, assert_invalid, assistant, call, delta, not_carried, result, start, text,
    tool_start, user, weather_request,
};

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("openai", name)
}

fn fixture_json(name: &str) -> Value {
    support::fixture_json("openai", name)
}

fn written(request: &ChatRequest, field: MaxTokensField) -> Value {
    serde_json::from_slice(&write_request(request, field).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn a_callers_request_reads_into_the_common_shape() {
    assert_eq!(
        parse_request(&fixture("request.json")).unwrap(),
        weather_request()
    );
}

#[test]
fn the_common_shape_writes_as_an_upstream_request() {
    assert_eq!(
        written(&weather_request(), MaxTokensField::MaxCompletionTokens),
        fixture_json("request.upstream.json")
    );
}

#[test]
fn a_request_survives_writing_and_reading_back() {
    let request = weather_request();
    let body = write_request(&request, MaxTokensField::MaxCompletionTokens).unwrap();
    assert_eq!(parse_request(&body).unwrap(), request);
    let body = write_request(&request, MaxTokensField::MaxTokens).unwrap();
    assert_eq!(parse_request(&body).unwrap(), request);
}

#[test]
fn tool_results_become_tool_messages_and_their_images_follow_them() {
    let mut failed = match result(
        "toolu_02",
        None,
        vec![text("error: "), text("no page is open")],
    ) {
        Part::ToolResult(result) => result,
        _ => unreachable!(),
    };
    failed.is_error = true;
    let request = ChatRequest {
        model: "gpt-4.1-mini".to_owned(),
        messages: vec![
            user(vec![text(
                "Take a screenshot of the page, then describe it.",
            )]),
            assistant(vec![
                text("I'll take the screenshot."),
                call("toolu_01", "screenshot", ""),
                call("toolu_02", "page_title", "{}"),
            ]),
            user(vec![
                result(
                    "toolu_01",
                    None,
                    vec![
                        text("Screenshot taken."),
                        Part::Image(Image::Base64 {
                            media_type: "image/jpeg".to_owned(),
                            data: "/9j/4AAQSkZJRg==".to_owned(),
                        }),
                    ],
                ),
                Part::ToolResult(failed),
                text("Describe it briefly."),
            ]),
        ],
        max_tokens: Some(300),
        // Without tools, OpenAI refuses these; they are left out.
        tool_choice: Some(ToolChoice::Required),
        parallel_tool_calls: Some(false),
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        written(&request, MaxTokensField::MaxTokens),
        fixture_json("request.tool_results.upstream.json")
    );
}

#[test]
fn tool_choices_are_written_as_openai_spells_them() {
    let mut request = weather_request();
    for (choice, expected) in [
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Tool("get_weather".to_owned()),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ] {
        request.tool_choice = Some(choice.clone());
        let body = written(&request, MaxTokensField::MaxCompletionTokens);
        assert_eq!(body["tool_choice"], expected);
        assert_eq!(
            parse_request(body.to_string().as_bytes())
                .unwrap()
                .tool_choice,
            Some(choice)
        );
    }
}

#[test]
fn an_image_in_an_assistant_message_is_refused_upstream() {
    let request = ChatRequest {
        model: "gpt-4o".to_owned(),
        messages: vec![assistant(vec![Part::Image(Image::Url(
            "https://x/y.png".to_owned(),
        ))])],
        ..ChatRequest::default()
    };
    assert!(matches!(
        write_request(&request, MaxTokensField::MaxCompletionTokens),
        Err(TranslateError::Unsupported {
            upstream: "OpenAI Chat Completions",
            ..
        })
    ));
}

fn parsed(body: Value) -> Result<ChatRequest, TranslateError> {
    parse_request(body.to_string().as_bytes())
}

fn minimal(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[test]
fn small_variants_of_a_request_read_as_expected() {
    let request = parsed(minimal(
        json!({"max_tokens": 64, "stop": "END", "safety_identifier": "u-9"}),
    ))
    .unwrap();
    assert_eq!(request.max_tokens, Some(64));
    assert_eq!(request.stop, vec!["END".to_owned()]);
    assert_eq!(request.user.as_deref(), Some("u-9"));
    assert!(!request.stream);
    let request = parsed(minimal(
        json!({"response_format": {"type": "text"}, "stop": null}),
    ))
    .unwrap();
    assert_eq!(request.response_format, None);
    assert!(request.stop.is_empty());
    let request = parsed(minimal(json!({
        "tools": [{"type": "function", "function": {"name": "now"}}],
        "tool_choice": {"type": "function", "function": {"name": "now"}}
    })))
    .unwrap();
    assert_eq!(
        request.tools[0].parameters,
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("now".to_owned()))
    );
}

#[test]
fn a_tool_result_without_its_call_carries_no_name() {
    let request = parsed(json!({"model": "m", "messages": [
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "user", "content": "next"},
        {"role": "tool", "tool_call_id": "c2", "content": "also done"}
    ]}))
    .unwrap();
    assert_eq!(
        request.messages,
        vec![
            user(vec![result("c1", None, vec![text("done")])]),
            user(vec![text("next")]),
            user(vec![result("c2", None, vec![text("also done")])]),
        ]
    );
}

#[test]
fn fields_that_would_change_the_answer_are_refused() {
    for (extra, field) in [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"frequency_penalty": 0.5}), "frequency_penalty"),
        (json!({"presence_penalty": -1}), "presence_penalty"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (
            json!({"prediction": {"type": "content", "content": "x"}}),
            "prediction",
        ),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"reasoning_effort": "high"}), "reasoning_effort"),
        (json!({"verbosity": "low"}), "verbosity"),
        (json!({"web_search_options": {}}), "web_search_options"),
        (json!({"top_k": 40}), "top_k"),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}),
            "tools[0].type=custom",
        ),
        (
            json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}}),
            "tool_choice.type=allowed_tools",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "messages[0].content[0].type=input_audio",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}),
            "messages[0].content[0].type=file",
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "1"}]}),
            "messages[0].role=function",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}}]}),
            "messages[0].function_call",
        ),
    ] {
        assert_eq!(
            parsed(minimal(extra.clone())),
            not_carried(field),
            "{extra}"
        );
    }
}

#[test]
fn harmless_fields_and_neutral_values_are_dropped() {
    let extra = json!({
        "n": 1, "logprobs": false, "top_logprobs": 0, "frequency_penalty": 0, "presence_penalty": null,
        "logit_bias": {}, "modalities": ["text"], "audio": null, "seed": 7, "store": true,
        "metadata": {"a": "b"}, "service_tier": "flex", "stream_options": {"include_usage": true},
        "prompt_cache_key": "k", "prompt_cache_retention": "24h", "reasoning_effort": null
    });
    assert_eq!(
        parsed(minimal(extra)).unwrap(),
        parsed(minimal(json!({}))).unwrap()
    );
}

#[test]
fn a_malformed_request_is_invalid_and_names_the_field() {
    for (body, expected) in [
        (json!([1]), "the body is invalid"),
        (json!({"messages": []}), "`model` is required"),
        (json!({"model": "m"}), "`messages` is required"),
        (json!({"model": 3, "messages": []}), "`model` is invalid"),
        (
            minimal(json!({"messages": {"role": "user"}})),
            "`messages` is invalid",
        ),
        (
            minimal(
                json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 5}]}),
            ),
            "`messages[1].content` is invalid: invalid type: integer `5`, expected a string or an array",
        ),
        (
            minimal(json!({"messages": [{"role": "robot", "content": "a"}]})),
            "`messages[0].role` is invalid",
        ),
        (
            minimal(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
            ),
            "`messages[0].content[0]` is invalid: missing field `url`",
        ),
        (
            minimal(json!({"messages": [{"role": "tool", "content": "x"}]})),
            "`messages[0].tool_call_id` is required",
        ),
        (
            minimal(
                json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]}),
            ),
            "`messages[0].content[0]` is invalid",
        ),
        (
            minimal(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
            ),
            "`messages[0].content[0].image_url.url` is invalid",
        ),
        (
            minimal(json!({"max_tokens": -1})),
            "`max_tokens` is invalid",
        ),
        (minimal(json!({"stop": 1})), "`stop` is invalid"),
        (
            minimal(json!({"tool_choice": "sometimes"})),
            "`tool_choice` is invalid",
        ),
        (
            minimal(json!({"tools": [{"type": "function"}]})),
            "`tools[0].function` is required",
        ),
        (
            minimal(json!({"response_format": {"type": "yaml"}})),
            "`response_format.type` is invalid: unknown variant `yaml`",
        ),
    ] {
        assert_invalid(parsed(body.clone()), expected, &body);
    }
    assert!(matches!(
        parse_request(b"{"),
        Err(TranslateError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Answers

fn weather_response() -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".to_owned(),
        model: "gpt-4o-2024-08-06".to_owned(),
        content: vec![
            text("Let me check both cities."),
            call("call_paris", "get_weather", r#"{"city":"Paris"}"#),
            call("call_rome", "get_weather", r#"{"city":"Rome"}"#),
        ],
        finish_reason: Some(FinishReason::ToolUse),
        usage: Usage {
            input_tokens: 1117,
            output_tokens: 46,
            cached_tokens: 1024,
            reasoning_tokens: 0,
        },
    }
}

#[test]
fn an_upstream_answer_reads_into_the_common_shape() {
    assert_eq!(
        parse_response(&fixture("response.json")).unwrap(),
        weather_response()
    );
}

#[test]
fn a_refusal_reads_as_text() {
    let response = parse_response(&fixture("response.refusal.json")).unwrap();
    assert_eq!(
        response.content,
        vec![text("I'm sorry, I can't help with that.")]
    );
    assert_eq!(response.finish_reason, Some(FinishReason::EndTurn));
    assert_eq!(response.usage.input_tokens, 25);
}

#[test]
fn an_answer_writes_as_a_chat_completion() {
    let body = write_response(&weather_response(), 1741570283);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, fixture_json("response.written.json"));
}

#[test]
fn an_answer_survives_writing_and_reading_back() {
    let mut response = weather_response();
    assert_eq!(
        parse_response(&write_response(&response, 1)).unwrap(),
        response
    );
    response
        .content
        .retain(|part| matches!(part, Part::ToolCall(_)));
    response.finish_reason = None;
    let body: Value = serde_json::from_slice(&write_response(&response, 1)).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    response.content = vec![text("Done.")];
    response.finish_reason = Some(FinishReason::StopSequence);
    let body: Value = serde_json::from_slice(&write_response(&response, 1)).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Done.");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[test]
fn a_malformed_answer_is_invalid() {
    assert!(
        matches!(parse_response(b"{\"id\":\"x\"}"), Err(TranslateError::Invalid(m)) if m.contains("choices"))
    );
    assert!(matches!(
        parse_response(br#"{"choices":[{"message":{"tool_calls":[{"id":"c"}]}}]}"#),
        Err(TranslateError::Invalid(m)) if m.starts_with("`choices[0].message.tool_calls[0]`")
    ));
}

#[test]
fn error_bodies_give_their_message() {
    let body = br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    assert_eq!(
        error_message(body).as_deref(),
        Some("Rate limit reached for gpt-4o")
    );
    assert_eq!(error_message(&fixture("response.json")), None);
}

// ---------------------------------------------------------------------------------------------
// Streams

/// Decodes `chunks` in order; returns the events and the error that stopped the stream.
fn decode(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Option<StreamError>) {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = decoder.push(chunk, &mut events) {
            return (events, Some(error));
        }
    }
    let error = decoder.finish(&mut events).err();
    (events, error)
}

fn expected_stream(name: &str) -> (Vec<StreamEvent>, Option<StreamError>) {
    match name {
        "stream_text.sse" => (
            vec![
                start("chatcmpl-BxT7q0rWarmer", "o4-mini-2025-04-16"),
                delta("Rome"),
                delta(" is warmer"),
                delta(" (24°C vs 18°C)"),
                delta("."),
                StreamEvent::Finish(FinishReason::EndTurn),
                StreamEvent::Usage(Usage {
                    input_tokens: 1203,
                    output_tokens: 140,
                    cached_tokens: 1152,
                    reasoning_tokens: 128,
                }),
            ],
            None,
        ),
        "stream_tools.sse" => (
            vec![
                start("chatcmpl-BxT8a1ToolCalls", "gpt-4o-2024-08-06"),
                tool_start(0, "call_paris", "get_weather"),
                arguments(0, r#"{"ci"#),
                arguments(0, r#"ty": "Pa"#),
                arguments(0, r#"ris"}"#),
                tool_start(1, "call_rome", "get_weather"),
                arguments(1, r#"{"city""#),
                arguments(1, r#": "Rome"}"#),
                StreamEvent::Finish(FinishReason::ToolUse),
            ],
            None,
        ),
        "stream_azure.sse" => (
            vec![
                start("chatcmpl-BxT9AzureFiltered", "gpt-4o-2024-11-20"),
                delta("Here is how"),
                delta(" to"),
                StreamEvent::Finish(FinishReason::ContentFilter),
                StreamEvent::Usage(Usage {
                    input_tokens: 31,
                    output_tokens: 4,
                    ..Usage::default()
                }),
            ],
            None,
        ),
        "stream_error.sse" => (
            vec![
                start("chatcmpl-BxTAServerError", "gpt-4o-2024-08-06"),
                delta("Partial"),
            ],
            Some(StreamError::Upstream(
                "The server had an error while processing your request. Sorry about that!"
                    .to_owned(),
            )),
        ),
        _ => unreachable!("{name}"),
    }
}

const STREAMS: [&str; 4] = [
    "stream_text.sse",
    "stream_tools.sse",
    "stream_azure.sse",
    "stream_error.sse",
];

#[test]
fn upstream_streams_decode_into_common_events() {
    for name in STREAMS {
        assert_eq!(decode(&[&fixture(name)]), expected_stream(name), "{name}");
    }
}

#[test]
fn streams_split_at_random_boundaries_decode_the_same() {
    for name in STREAMS {
        support::assert_splits_decode_the_same(
            name,
            &fixture(name),
            0x5EED_0F0A_1C4A_7000,
            12,
            decode,
        );
    }
}

#[test]
fn a_stream_reads_without_its_done_marker_and_ignores_what_follows_it() {
    let stream = fixture("stream_text.sse");
    let text = std::str::from_utf8(&stream).unwrap();
    let (without_done, _) = text.split_once("data: [DONE]").unwrap();
    assert_eq!(
        decode(&[without_done.trim_end().as_bytes()]),
        expected_stream("stream_text.sse")
    );
    let after = format!("{text}data: {{\"oops\"\n\n");
    assert_eq!(
        decode(&[after.as_bytes()]),
        expected_stream("stream_text.sse")
    );
}

#[test]
fn broken_streams_are_reported() {
    let (_, error) = decode(&[b"data: {\"choices\": [}\n\n"]);
    assert!(matches!(error, Some(StreamError::Malformed(_))));
    let nameless = br#"data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}

"#;
    let (events, error) = decode(&[nameless]);
    assert_eq!(events, vec![start("c", "")]);
    assert!(matches!(error, Some(StreamError::Malformed(m)) if m.contains("without a name")));
    let (events, error) = decode(&[b"event: error\ndata: {\"error\":\"overloaded\"}\n\n"]);
    assert_eq!(
        (events, error),
        (vec![], Some(StreamError::Upstream("overloaded".to_owned())))
    );
}

/// What an Anthropic upstream's stream becomes: text, then a tool call, usage twice.
fn common_events() -> Vec<StreamEvent> {
    vec![
        start("msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5"),
        StreamEvent::Usage(Usage {
            input_tokens: 472,
            ..Usage::default()
        }),
        delta("Let me check."),
        tool_start(0, "toolu_01A09q90qw90lq917835lq9", "get_weather"),
        arguments(0, r#"{"city": "#),
        arguments(0, r#""Paris"}"#),
        StreamEvent::Finish(FinishReason::ToolUse),
        StreamEvent::Usage(Usage {
            input_tokens: 472,
            output_tokens: 89,
            cached_tokens: 400,
            reasoning_tokens: 0,
        }),
    ]
}

fn encode(events: &[StreamEvent], include_usage: bool) -> Vec<u8> {
    let mut encoder = Encoder::new(include_usage, 1741570400);
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    out
}

#[test]
fn common_events_encode_as_the_sdk_expects() {
    let out = encode(&common_events(), true);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        std::str::from_utf8(&fixture("stream.encoded.sse")).unwrap()
    );
}

#[test]
fn the_usage_chunk_comes_only_when_asked_for() {
    let with = String::from_utf8(encode(&common_events(), true)).unwrap();
    let without = String::from_utf8(encode(&common_events(), false)).unwrap();
    let usage_chunk = with
        .lines()
        .find(|l| l.contains(r#""choices":[]"#))
        .unwrap();
    assert!(usage_chunk.contains(r#""choices":[],"usage":{"prompt_tokens":472"#));
    assert_eq!(with.replace(&format!("{usage_chunk}\n\n"), ""), without);
    assert!(!without.contains("usage"));
}

#[test]
fn encoded_events_decode_back_to_themselves() {
    let mut events = common_events();
    events.remove(1); // The encoder reports only the last usage.
    let out = encode(&events, true);
    assert_eq!(decode(&[&out]), (events, None));
    for name in ["stream_text.sse", "stream_tools.sse"] {
        let (events, _) = decode(&[&fixture(name)]);
        assert_eq!(decode(&[&encode(&events, true)]), (events, None), "{name}");
    }
}
