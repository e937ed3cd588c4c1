//! Golden and property tests of the Amazon Bedrock Converse translator, against fixtures in
//! Bedrock's wire format (`tests/fixtures/bedrock/`).
//!
//! Stream fixtures are readable JSON lists of frames (`{"event", "payload"}` or
//! `{"exception", "payload"}`), encoded here into the binary event-stream framing with
//! `aws-smithy-eventstream`'s encoder and the headers Bedrock sends. `stream_text.bin` holds
//! the same frames as `stream_text.json`, written by `make_bin.py` straight from the
//! event-stream layout, so the decoder also meets bytes that crate did not produce.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message as Frame};
use serde_json::{Value, json};
use tollgate_llm::Usage;
use tollgate_llm::bedrock::{Decoder, error_message, parse_response, write_request};
use tollgate_llm::chat::{
    ChatRequest, ChatResponse, FinishReason, Image, Part, ResponseFormat, StreamDecoder,
    StreamError, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, TranslateError,
};

mod support;

use support::{arguments, assistant, text, user};

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("bedrock", name)
}

fn fixture_json(name: &str) -> Value {
    support::fixture_json("bedrock", name)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The written body as JSON, with the structured-output schema (JSON text on the wire)
/// parsed, so key order inside it does not matter.
fn written(request: &ChatRequest) -> Value {
    let mut body: Value = serde_json::from_slice(&write_request(request).unwrap()).unwrap();
    normalise_schema(&mut body);
    body
}

fn normalise_schema(body: &mut Value) {
    let pointer = "/outputConfig/textFormat/structure/jsonSchema/schema";
    if let Some(schema) = body.pointer_mut(pointer) {
        *schema = serde_json::from_str(schema.as_str().unwrap()).unwrap();
    }
}

fn expected_request(name: &str) -> Value {
    let mut body = fixture_json(name);
    normalise_schema(&mut body);
    body
}

fn chat_request() -> ChatRequest {
    ChatRequest {
        model: "anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
        system: Some("You are terse.".to_owned()),
        messages: vec![
            user(vec![
                text("What is in this picture?"),
                Part::Image(Image::Base64 {
                    media_type: "image/png".to_owned(),
                    data: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==".to_owned(),
                }),
            ]),
            assistant(vec![text("A cat on a red sofa.")]),
            user(vec![text(""), text("What colour is the cat?")]),
        ],
        max_tokens: Some(256),
        temperature: Some(0.2),
        top_p: Some(0.9),
        stop: vec!["\n\nHuman:".to_owned()],
        stream: true,
        response_format: Some(ResponseFormat::JsonSchema {
            name: "cat_colour".to_owned(),
            schema: json!({
                "type": "object",
                "properties": { "colour": { "type": "string" } },
                "required": ["colour"],
                "additionalProperties": false,
            }),
            strict: Some(true),
        }),
        user: Some("user-1234".to_owned()),
        ..ChatRequest::default()
    }
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".to_owned(),
        description: Some("The current weather in a city.".to_owned()),
        parameters: json!({
            "type": "object",
            "properties": { "city": { "type": "string" } },
            "required": ["city"],
        }),
    }
}

fn tools_request() -> ChatRequest {
    let call = |id: &str, city: &str| {
        Part::ToolCall(ToolCall {
            id: id.to_owned(),
            name: "get_weather".to_owned(),
            arguments: format!(r#"{{"city": "{city}"}}"#),
        })
    };
    let result = |id: &str, output: &str, is_error: bool| {
        user(vec![Part::ToolResult(ToolResult {
            call_id: id.to_owned(),
            name: Some("get_weather".to_owned()),
            content: vec![text(output)],
            is_error,
        })])
    };
    ChatRequest {
        model: "amazon.nova-pro-v1:0".to_owned(),
        messages: vec![
            user(vec![text("Weather in Paris and in Rome?")]),
            assistant(vec![
                text("Let me check both."),
                call("tooluse_Paris01", "Paris"),
                call("tooluse_Rome02", "Rome"),
            ]),
            result("tooluse_Paris01", "18°C, sunny", false),
            result("tooluse_Rome02", "weather service unavailable", true),
        ],
        max_tokens: Some(1024),
        tools: vec![
            weather_tool(),
            Tool {
                name: "ping".to_owned(),
                description: None,
                parameters: Value::Null,
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        ..ChatRequest::default()
    }
}

#[test]
fn writes_system_history_images_sampling_and_structured_output() {
    assert_eq!(
        written(&chat_request()),
        expected_request("request_chat.json")
    );
}

#[test]
fn writes_tools_calls_and_results_merging_consecutive_user_turns() {
    assert_eq!(
        written(&tools_request()),
        expected_request("request_tools.json")
    );
}

#[test]
fn writes_tool_choices() {
    let choice = |choice: ToolChoice| {
        let request = ChatRequest {
            messages: vec![user(vec![text("hi")])],
            tools: vec![weather_tool()],
            tool_choice: Some(choice),
            ..ChatRequest::default()
        };
        written(&request)["toolConfig"]["toolChoice"].clone()
    };
    assert_eq!(choice(ToolChoice::Auto), json!({ "auto": {} }));
    assert_eq!(choice(ToolChoice::Required), json!({ "any": {} }));
    assert_eq!(
        choice(ToolChoice::Tool("get_weather".to_owned())),
        json!({ "tool": { "name": "get_weather" } })
    );
}

#[test]
fn tool_choice_none_leaves_the_tools_out_when_the_history_has_no_tool_blocks() {
    let request = ChatRequest {
        messages: vec![user(vec![text("hi")])],
        tools: vec![weather_tool()],
        tool_choice: Some(ToolChoice::None),
        ..ChatRequest::default()
    };
    let body = written(&request);
    assert!(body.get("toolConfig").is_none(), "{body}");
}

#[test]
fn tool_choice_none_is_refused_when_the_history_has_tool_blocks() {
    let request = ChatRequest {
        tool_choice: Some(ToolChoice::None),
        ..tools_request()
    };
    assert_eq!(
        write_request(&request),
        Err(TranslateError::Unsupported {
            field: "tool_choice".to_owned(),
            upstream: "Amazon Bedrock",
        })
    );
}

#[test]
fn disabling_parallel_tool_calls_is_refused_unless_one_tool_is_named() {
    let request = ChatRequest {
        parallel_tool_calls: Some(false),
        ..tools_request()
    };
    assert_eq!(
        write_request(&request),
        Err(TranslateError::Unsupported {
            field: "parallel_tool_calls".to_owned(),
            upstream: "Amazon Bedrock",
        })
    );
    let named = ChatRequest {
        tool_choice: Some(ToolChoice::Tool("get_weather".to_owned())),
        ..request
    };
    assert!(write_request(&named).is_ok());
}

#[test]
fn json_mode_becomes_an_object_schema() {
    let request = ChatRequest {
        messages: vec![user(vec![text("Reply in JSON.")])],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        written(&request)["outputConfig"],
        json!({
            "textFormat": {
                "type": "json_schema",
                "structure": { "jsonSchema": { "name": "json_object", "schema": { "type": "object" } } },
            }
        })
    );
}

#[test]
fn image_urls_and_unknown_image_types_are_refused() {
    let with_image = |image: Image| ChatRequest {
        messages: vec![user(vec![Part::Image(image)])],
        ..ChatRequest::default()
    };
    assert_eq!(
        write_request(&with_image(Image::Url(
            "https://example.com/cat.png".to_owned()
        ))),
        Err(TranslateError::Unsupported {
            field: "image_url".to_owned(),
            upstream: "Amazon Bedrock",
        })
    );
    let bmp = Image::Base64 {
        media_type: "image/bmp".to_owned(),
        data: "Qk0=".to_owned(),
    };
    assert!(matches!(
        write_request(&with_image(bmp)),
        Err(TranslateError::Unsupported { field, .. }) if field.contains("image/bmp")
    ));
}

#[test]
fn tool_call_arguments_must_be_json() {
    let request = ChatRequest {
        messages: vec![assistant(vec![Part::ToolCall(ToolCall {
            id: "tooluse_1".to_owned(),
            name: "get_weather".to_owned(),
            arguments: "{city: Paris".to_owned(),
        })])],
        ..ChatRequest::default()
    };
    assert!(matches!(
        write_request(&request),
        Err(TranslateError::Invalid(message)) if message.contains("tooluse_1")
    ));
}

#[test]
fn empty_tool_call_arguments_are_an_empty_object() {
    let request = ChatRequest {
        messages: vec![assistant(vec![Part::ToolCall(ToolCall {
            id: "tooluse_1".to_owned(),
            name: "ping".to_owned(),
            arguments: String::new(),
        })])],
        ..ChatRequest::default()
    };
    assert_eq!(
        written(&request)["messages"][0]["content"][0]["toolUse"]["input"],
        json!({})
    );
}

#[test]
fn a_minimal_request_has_only_messages() {
    let request = ChatRequest {
        model: "meta.llama3-8b-instruct-v1:0".to_owned(),
        messages: vec![user(vec![text("hi")])],
        ..ChatRequest::default()
    };
    assert_eq!(
        written(&request),
        json!({ "messages": [{ "role": "user", "content": [{ "text": "hi" }] }] })
    );
}

// ---------------------------------------------------------------------------------------------
// Answers

#[test]
fn reads_a_text_answer_with_cached_input() {
    assert_eq!(
        parse_response(&fixture("response_text.json")),
        Ok(ChatResponse {
            id: String::new(),
            model: String::new(),
            content: vec![text("Paris is the capital of France.")],
            finish_reason: Some(FinishReason::EndTurn),
            usage: Usage {
                input_tokens: 1036,
                output_tokens: 9,
                cached_tokens: 1024,
                reasoning_tokens: 0,
            },
        })
    );
}

#[test]
fn reads_a_tool_call_and_skips_reasoning() {
    let response = parse_response(&fixture("response_tool_use.json")).unwrap();
    assert_eq!(response.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(response.content.len(), 2, "{:?}", response.content);
    assert_eq!(response.content[0], text("Let me check the weather."));
    let Part::ToolCall(call) = &response.content[1] else {
        panic!("not a tool call: {:?}", response.content[1]);
    };
    assert_eq!(call.id, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(call.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&call.arguments).unwrap(),
        json!({ "city": "Paris", "unit": "celsius" })
    );
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 810,
            output_tokens: 87,
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    );
}

#[test]
fn a_guardrail_stop_is_a_content_filter() {
    let response = parse_response(&fixture("response_guardrail.json")).unwrap();
    assert_eq!(response.finish_reason, Some(FinishReason::ContentFilter));
}

#[test]
fn a_malformed_answer_is_invalid_and_names_the_field() {
    let error = parse_response(br#"{"stopReason":"end_turn"}"#).unwrap_err();
    assert!(
        matches!(&error, TranslateError::Invalid(message) if message.contains("output")),
        "{error:?}"
    );
    let missing_name = br#"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","input":{}}}]}},"stopReason":"tool_use"}"#;
    let error = parse_response(missing_name).unwrap_err();
    assert!(
        matches!(&error, TranslateError::Invalid(message)
            if message.contains("output.message.content[0].toolUse") && message.contains("name")),
        "{error:?}"
    );
    assert!(matches!(
        parse_response(b"not json"),
        Err(TranslateError::Invalid(_))
    ));
}

#[test]
fn reads_error_messages() {
    assert_eq!(
        error_message(&fixture("error_validation.json")).as_deref(),
        Some(
            "The text field in the ContentBlock object at messages.0.content.0 is blank. Add text to the text field, and try again."
        )
    );
    assert_eq!(
        error_message(br#"{"Message":"User is not authorized"}"#).as_deref(),
        Some("User is not authorized")
    );
    assert_eq!(error_message(b"<html>502</html>"), None);
    assert_eq!(error_message(br#"{"error":"x"}"#), None);
}

// ---------------------------------------------------------------------------------------------
// Streams

/// Encodes a readable stream fixture into event-stream frames, with the headers Bedrock sends.
fn encode_stream(name: &str) -> Vec<u8> {
    let frames = fixture_json(name);
    let mut out = Vec::new();
    for frame in frames.as_array().unwrap() {
        let payload = serde_json::to_vec(&frame["payload"]).unwrap();
        let headers = match (frame.get("event"), frame.get("exception")) {
            (Some(event), None) => [
                (":event-type", event.as_str().unwrap()),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            (None, Some(exception)) => [
                (":exception-type", exception.as_str().unwrap()),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            _ => panic!("{name}: a frame is an event or an exception: {frame}"),
        };
        write_frame(&headers, payload, &mut out);
    }
    out
}

fn write_frame(headers: &[(&str, &str)], payload: Vec<u8>, out: &mut Vec<u8>) {
    let message = headers
        .iter()
        .fold(Frame::new(payload), |message, (name, value)| {
            message.add_header(Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            ))
        });
    write_message_to(&message, out).unwrap();
}

type Outcome = (Vec<StreamEvent>, Result<(), StreamError>);

/// Feeds `chunks` in order to a fresh decoder, then finishes it.
fn decode(chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(error) = decoder.push(chunk, &mut events) {
            return (events, Err(error));
        }
    }
    let result = decoder.finish(&mut events);
    (events, result)
}

fn decode_whole(bytes: &[u8]) -> Outcome {
    decode(&[bytes])
}

fn start() -> StreamEvent {
    StreamEvent::Start {
        id: String::new(),
        model: String::new(),
    }
}

fn text_events() -> Vec<StreamEvent> {
    vec![
        start(),
        StreamEvent::Text("Hello".to_owned()),
        StreamEvent::Text(", world".to_owned()),
        StreamEvent::Finish(FinishReason::EndTurn),
        StreamEvent::Usage(Usage {
            input_tokens: 11,
            output_tokens: 4,
            cached_tokens: 0,
            reasoning_tokens: 0,
        }),
    ]
}

#[test]
fn decodes_a_text_stream() {
    assert_eq!(
        decode_whole(&encode_stream("stream_text.json")),
        (text_events(), Ok(()))
    );
}

#[test]
fn decodes_bytes_written_from_the_event_stream_layout() {
    assert_eq!(
        decode_whole(&fixture("stream_text.bin")),
        (text_events(), Ok(()))
    );
}

#[test]
fn decodes_tool_calls_with_streamed_arguments_and_skips_reasoning() {
    assert_eq!(
        decode_whole(&encode_stream("stream_tool_use.json")),
        (
            vec![
                start(),
                StreamEvent::Text("Let me check.".to_owned()),
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q".to_owned(),
                    name: "get_weather".to_owned(),
                },
                arguments(0, "{\"city\": "),
                arguments(0, "\"Paris\"}"),
                StreamEvent::ToolCallStart {
                    index: 1,
                    id: "tooluse_Hn2Ozk9kS2uRuVd5TNQbRw".to_owned(),
                    name: "get_time".to_owned(),
                },
                arguments(1, "{}"),
                StreamEvent::Finish(FinishReason::ToolUse),
                StreamEvent::Usage(Usage {
                    input_tokens: 2450,
                    output_tokens: 61,
                    cached_tokens: 2048,
                    reasoning_tokens: 0,
                }),
            ],
            Ok(())
        )
    );
}

#[test]
fn an_exception_frame_is_an_upstream_error_with_its_type_and_message() {
    assert_eq!(
        decode_whole(&encode_stream("stream_exception.json")),
        (
            vec![start(), StreamEvent::Text("Once upon a".to_owned())],
            Err(StreamError::Upstream(
                "throttlingException: Too many requests, please wait before trying again."
                    .to_owned()
            ))
        )
    );
}

#[test]
fn an_error_frame_is_an_upstream_error() {
    let mut bytes = Vec::new();
    write_frame(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "Something broke"),
        ],
        Vec::new(),
        &mut bytes,
    );
    assert_eq!(
        decode_whole(&bytes).1,
        Err(StreamError::Upstream(
            "InternalFailure: Something broke".to_owned()
        ))
    );
}

fn event_frame(event: &str, payload: Value, out: &mut Vec<u8>) {
    write_frame(
        &[
            (":event-type", event),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        serde_json::to_vec(&payload).unwrap(),
        out,
    );
}

#[test]
fn guardrail_and_unknown_stop_reasons() {
    let stop = |reason: &str| {
        let mut bytes = Vec::new();
        event_frame("messageStop", json!({ "stopReason": reason }), &mut bytes);
        decode_whole(&bytes)
    };
    assert_eq!(
        stop("guardrail_intervened"),
        (
            vec![start(), StreamEvent::Finish(FinishReason::ContentFilter)],
            Ok(())
        )
    );
    assert_eq!(
        stop("content_filtered").0[1],
        StreamEvent::Finish(FinishReason::ContentFilter)
    );
    assert_eq!(
        stop("model_context_window_exceeded").0[1],
        StreamEvent::Finish(FinishReason::MaxTokens)
    );
    assert_eq!(stop("malformed_model_output"), (vec![start()], Ok(())));
}

#[test]
fn unknown_events_are_ignored() {
    let mut bytes = Vec::new();
    event_frame("messageStart", json!({ "role": "assistant" }), &mut bytes);
    event_frame("somethingNew", json!({ "x": 1 }), &mut bytes);
    event_frame(
        "messageStop",
        json!({ "stopReason": "end_turn" }),
        &mut bytes,
    );
    assert_eq!(
        decode_whole(&bytes),
        (
            vec![start(), StreamEvent::Finish(FinishReason::EndTurn)],
            Ok(())
        )
    );
}

#[test]
fn a_frame_announcing_too_many_bytes_is_refused_before_it_is_buffered() {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    let announce = (17u32 * 1024 * 1024).to_be_bytes();
    assert!(matches!(
        decoder.push(&announce, &mut events),
        Err(StreamError::Malformed(_))
    ));
}

#[test]
fn a_corrupt_checksum_is_malformed() {
    let mut bytes = encode_stream("stream_text.json");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert!(matches!(
        decode_whole(&bytes).1,
        Err(StreamError::Malformed(_))
    ));
}

#[test]
fn a_stream_cut_short_is_malformed() {
    let bytes = encode_stream("stream_text.json");
    assert!(matches!(
        decode_whole(&bytes[..bytes.len() - 5]).1,
        Err(StreamError::Malformed(message)) if message.contains("inside")
    ));
    let mut without_stop = Vec::new();
    event_frame(
        "messageStart",
        json!({ "role": "assistant" }),
        &mut without_stop,
    );
    assert!(matches!(
        decode_whole(&without_stop).1,
        Err(StreamError::Malformed(message)) if message.contains("messageStop")
    ));
}

#[test]
fn tool_input_without_a_tool_start_is_malformed() {
    let mut bytes = Vec::new();
    event_frame(
        "contentBlockDelta",
        json!({ "contentBlockIndex": 0, "delta": { "toolUse": { "input": "{}" } } }),
        &mut bytes,
    );
    assert!(matches!(
        decode_whole(&bytes).1,
        Err(StreamError::Malformed(_))
    ));
}

#[test]
fn a_bad_payload_is_malformed() {
    let mut bytes = Vec::new();
    event_frame("messageStop", json!({ "reason": "end_turn" }), &mut bytes);
    assert!(matches!(
        decode_whole(&bytes).1,
        Err(StreamError::Malformed(message)) if message.contains("messageStop")
    ));
}

#[test]
fn every_stream_split_at_random_boundaries_decodes_as_when_whole() {
    let streams = [
        ("stream_text.json", encode_stream("stream_text.json")),
        (
            "stream_tool_use.json",
            encode_stream("stream_tool_use.json"),
        ),
        (
            "stream_exception.json",
            encode_stream("stream_exception.json"),
        ),
        ("stream_text.bin", fixture("stream_text.bin")),
    ];
    for (name, bytes) in &streams {
        support::assert_splits_decode_the_same(name, bytes, 0x5eed_b3d0_c0ff_ee11, 12, decode);
    }
}
