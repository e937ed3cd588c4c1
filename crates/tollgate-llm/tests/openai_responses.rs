//! Golden and property tests of the OpenAI Responses translator, a caller dialect only, against
//! fixtures written from the API reference (`tests/fixtures/openai_responses/`): a request
//! read into the common shape, answers written as `response` objects, and common stream events
//! written as the Responses stream the SDKs accumulate.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tollgate_llm::chat::{
    ChatRequest, ChatResponse, FinishReason, Image, Part, ResponseFormat, StreamDecoder,
    StreamEncoder, StreamEvent, ToolChoice, TranslateError,
};
use tollgate_llm::openai::responses::{Encoder, parse_request, write_response};
use tollgate_llm::{Dialect, Usage, WireFormat};

mod support;

use support::{
    arguments, assert_invalid, assistant, call, delta, not_carried, result, start, text,
    tool_start, user,
};

fn fixture(name: &str) -> Vec<u8> {
    support::fixture("openai_responses", name)
}

fn fixture_json(name: &str) -> Value {
    support::fixture_json("openai_responses", name)
}

/// The common shape of `request.json`: the Chat Completions fixture's request, for another
/// model and without stop sequences (the Responses API has none).
fn weather_request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4.1".to_owned(),
        stop: Vec::new(),
        ..support::weather_request()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

fn parsed(body: Value) -> Result<ChatRequest, TranslateError> {
    parse_request(body.to_string().as_bytes())
}

fn minimal(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4.1", "input": "Hi"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[test]
fn a_callers_request_reads_into_the_common_shape() {
    assert_eq!(
        parse_request(&fixture("request.json")).unwrap(),
        weather_request()
    );
    assert_eq!(
        Dialect::OpenAIResponses
            .parse_request(&fixture("request.json"))
            .unwrap(),
        weather_request()
    );
}

#[test]
fn a_string_input_is_one_user_message() {
    let request = parsed(minimal(json!({}))).unwrap();
    assert_eq!(
        request,
        ChatRequest {
            model: "gpt-4.1".to_owned(),
            messages: vec![user(vec![text("Hi")])],
            ..ChatRequest::default()
        }
    );
}

#[test]
fn short_messages_and_string_contents_read_as_expected() {
    let request = parsed(minimal(json!({
        "instructions": "",
        "input": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": ""},
            {"role": "assistant", "content": "Hello."},
            {"type": "function_call", "call_id": "c1", "name": "now", "arguments": ""},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}], "phase": "final_answer"},
            {"type": "function_call_output", "call_id": "c9", "output": [
                {"type": "input_text", "text": "seen"},
                {"type": "input_image", "image_url": "https://x/y.png"}
            ]},
            {"type": "function_call_output", "call_id": "c1", "output": ""},
            {"role": "user", "content": [{"type": "input_text", "text": "next"}]},
            {"type": "function_call_output", "call_id": "c1", "output": "again"}
        ],
        "safety_identifier": "u-9",
        "tools": [{"type": "function", "name": "now", "parameters": null, "strict": false}],
        "tool_choice": {"type": "function", "name": "now"},
        "text": {"format": {"type": "json_object"}}
    })))
    .unwrap();
    assert_eq!(request.system.as_deref(), Some("Be brief."));
    assert_eq!(
        request.messages,
        vec![
            user(vec![]),
            assistant(vec![
                text("Hello."),
                call("c1", "now", ""),
                text("I can't.")
            ]),
            user(vec![
                result(
                    "c9",
                    None,
                    vec![
                        text("seen"),
                        Part::Image(Image::Url("https://x/y.png".to_owned()))
                    ]
                ),
                result("c1", Some("now"), vec![]),
            ]),
            user(vec![text("next")]),
            user(vec![result("c1", Some("now"), vec![text("again")])]),
        ]
    );
    assert_eq!(request.user.as_deref(), Some("u-9"));
    assert_eq!(
        request.tools[0].parameters,
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Tool("now".to_owned()))
    );
    assert_eq!(request.response_format, Some(ResponseFormat::JsonObject));
    assert!(!request.stream);
    let request = parsed(minimal(json!({
        "text": {"format": {"type": "text"}},
        "tool_choice": "required",
        "user": "u-1",
        "safety_identifier": "u-2"
    })))
    .unwrap();
    assert_eq!(request.response_format, None);
    assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    assert_eq!(request.user.as_deref(), Some("u-1"));
}

#[test]
fn fields_that_would_change_the_answer_or_need_state_are_refused() {
    for (extra, field) in [
        (
            json!({"previous_response_id": "resp_123"}),
            "previous_response_id",
        ),
        (json!({"conversation": "conv_123"}), "conversation"),
        (
            json!({"prompt": {"id": "pmpt_123", "version": "2"}}),
            "prompt",
        ),
        (json!({"background": true}), "background"),
        (
            json!({"context_management": [{"type": "compaction"}]}),
            "context_management",
        ),
        (json!({"truncation": "auto"}), "truncation"),
        (json!({"top_logprobs": 5}), "top_logprobs"),
        (
            json!({"include": ["reasoning.encrypted_content", "message.output_text.logprobs"]}),
            "include=message.output_text.logprobs",
        ),
        (
            json!({"reasoning": {"effort": "high", "summary": null}}),
            "reasoning.effort",
        ),
        (
            json!({"reasoning": {"effort": null, "summary": "auto"}}),
            "reasoning.summary",
        ),
        (json!({"text": {"verbosity": "low"}}), "text.verbosity"),
        (
            json!({"prompt_cache_options": {"prewarm": true}}),
            "prompt_cache_options.prewarm",
        ),
        (json!({"moderation": {"model": "omni"}}), "moderation"),
        (json!({"top_k": 40}), "top_k"),
        (
            json!({"tools": [{"type": "web_search"}]}),
            "tools[0].type=web_search",
        ),
        (
            json!({"tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "tools[1].type=file_search",
        ),
        (
            json!({"tools": [{"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"}]}),
            "tools[0].type=computer_use_preview",
        ),
        (
            json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}),
            "tools[0].type=code_interpreter",
        ),
        (
            json!({"tools": [{"type": "mcp", "server_label": "docs", "server_url": "https://x"}]}),
            "tools[0].type=mcp",
        ),
        (
            json!({"tools": [{"type": "image_generation"}]}),
            "tools[0].type=image_generation",
        ),
        (
            json!({"tools": [{"type": "custom", "name": "grammar"}]}),
            "tools[0].type=custom",
        ),
        (
            json!({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}),
            "tool_choice.type=allowed_tools",
        ),
        (
            json!({"tool_choice": {"type": "web_search_preview"}}),
            "tool_choice.type=web_search_preview",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}),
            "input[0].content[0].type=input_file",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "input[0].content[0].type=input_audio",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]}),
            "input[0].content[0].file_id",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_video", "url": "https://x"}]}]}),
            "input[0].content[0].type=input_video",
        ),
        (
            json!({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]}),
            "input[0].content[0].type=input_image in a system message",
        ),
        (
            json!({"input": [{"role": "developer", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0].type=input_file in a developer message",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_123"}]}),
            "input[0].type=item_reference",
        ),
        (
            json!({"input": [{"role": "user", "content": "Hi"}, {"type": "web_search_call", "id": "ws_1", "status": "completed"}]}),
            "input[1].type=web_search_call",
        ),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_file", "file_id": "file-1"}]}]}),
            "input[0].output[0].type=input_file",
        ),
        (
            json!({"input": [{"type": "computer_call_output", "call_id": "c", "output": {"type": "computer_screenshot"}}]}),
            "input[0].type=computer_call_output",
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
        "metadata": {"a": "b"}, "store": true, "service_tier": "flex", "prompt_cache_key": "k",
        "prompt_cache_retention": "24h", "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
        "stream_options": {"include_obfuscation": false}, "max_tool_calls": 3,
        "truncation": "disabled", "background": false, "top_logprobs": 0, "context_management": [],
        "include": ["reasoning.encrypted_content", "message.input_image.image_url",
            "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
            "code_interpreter_call.outputs", "computer_call_output.output.image_url"],
        "reasoning": {"effort": null, "summary": null}, "text": {"verbosity": "medium"},
        "previous_response_id": null, "conversation": null, "prompt": null, "instructions": null,
        "input": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}]},
            {"type": "message", "role": "user", "status": "completed", "content": [
                {"type": "input_text", "text": "Hi", "prompt_cache_breakpoint": {"mode": "explicit"}},
                {"type": "input_text", "text": ""}
            ]}
        ]
    });
    assert_eq!(
        parsed(minimal(extra)).unwrap(),
        parsed(minimal(json!({}))).unwrap()
    );
    assert_eq!(
        parsed(minimal(json!({"reasoning": {}, "include": null})))
            .unwrap()
            .messages,
        vec![user(vec![text("Hi")])]
    );
}

#[test]
fn a_malformed_request_is_invalid_and_names_the_field() {
    for (body, expected) in [
        (json!([1]), "the body is invalid"),
        (json!({"input": "Hi"}), "`model` is required"),
        (json!({"model": "m"}), "`input` is required"),
        (json!({"model": 3, "input": "Hi"}), "`model` is invalid"),
        (
            minimal(json!({"input": 5})),
            "`input` is invalid: invalid type: integer `5`, expected a string or an array",
        ),
        (
            minimal(json!({"input": [{"content": "Hi"}]})),
            "`input[0]` is invalid: missing field `role`",
        ),
        (
            minimal(json!({"input": [{"role": "robot", "content": "Hi"}]})),
            "`input[0].role` is invalid",
        ),
        (
            minimal(json!({"input": [{"role": "user"}]})),
            "`input[0]` is invalid: missing field `content`",
        ),
        (
            minimal(json!({"input": [{"role": "user", "content": [{"type": "input_text"}]}]})),
            "`input[0].content[0].text` is required",
        ),
        (
            minimal(
                json!({"input": [{"role": "user", "content": [{"type": "input_image", "detail": "auto"}]}]}),
            ),
            "`input[0].content[0].image_url` is required",
        ),
        (
            minimal(
                json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png,abc"}]}]}),
            ),
            "`input[0].content[0].image_url` is invalid: a data URL must be",
        ),
        (
            minimal(
                json!({"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]}),
            ),
            "`input[0].content[0]` is invalid: a user message cannot hold `output_text` parts",
        ),
        (
            minimal(
                json!({"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]}]}),
            ),
            "`input[0].content[0]` is invalid: an assistant message cannot hold `input_image` parts",
        ),
        (
            minimal(
                json!({"input": [{"role": "developer", "content": [{"type": "refusal", "refusal": "x"}]}]}),
            ),
            "`input[0].content[0]` is invalid: a system or developer message cannot hold",
        ),
        (
            minimal(json!({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]})),
            "`input[0]` is invalid: missing field `arguments`",
        ),
        (
            minimal(json!({"input": [{"type": "function_call_output", "output": "x"}]})),
            "`input[0]` is invalid: missing field `call_id`",
        ),
        (
            minimal(json!({"max_output_tokens": -1})),
            "`max_output_tokens` is invalid",
        ),
        (
            minimal(json!({"instructions": 7})),
            "`instructions` is invalid",
        ),
        (
            minimal(json!({"tool_choice": "sometimes"})),
            "`tool_choice` is invalid",
        ),
        (
            minimal(json!({"tool_choice": {"type": "function"}})),
            "`tool_choice` is invalid",
        ),
        (
            minimal(json!({"tools": [{"type": "function", "parameters": {}}]})),
            "`tools[0].name` is required",
        ),
        (
            minimal(json!({"text": {"format": {"type": "yaml"}}})),
            "`text.format.type` is invalid: unknown variant `yaml`",
        ),
        (
            minimal(json!({"text": {"format": {"type": "json_schema", "schema": {}}}})),
            "`text.format` is invalid: missing field `name`",
        ),
        (
            minimal(json!({"reasoning": "high"})),
            "`reasoning` is invalid",
        ),
    ] {
        assert_invalid(parsed(body.clone()), expected, &body);
    }
    assert!(matches!(
        parse_request(b"{"),
        Err(TranslateError::Invalid(_))
    ));
}

#[test]
fn a_responses_request_reaches_every_upstream_format() {
    let request = parse_request(&fixture("request.json")).unwrap();
    let anthropic: Value =
        serde_json::from_slice(&WireFormat::Anthropic.write_request(&request).unwrap()).unwrap();
    assert_eq!(
        anthropic["system"],
        "You are a helpful travel assistant.\n\nAnswer in English."
    );
    assert_eq!(anthropic["messages"][1]["content"][1]["id"], "call_rome");
    assert_eq!(anthropic["max_tokens"], 512);
    let gemini: Value =
        serde_json::from_slice(&WireFormat::Gemini.write_request(&request).unwrap()).unwrap();
    assert_eq!(
        gemini["contents"][2]["parts"][0]["functionResponse"]["name"],
        "get_weather"
    );
}

// ---------------------------------------------------------------------------------------------
// Answers

fn weather_response() -> ChatResponse {
    ChatResponse {
        id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".to_owned(),
        model: "gpt-4o-2024-08-06".to_owned(),
        content: vec![
            text("Let me check "),
            text("both cities."),
            call("call_paris", "get_weather", r#"{"city":"Paris"}"#),
            call("call_rome", "get_weather", ""),
        ],
        finish_reason: Some(FinishReason::ToolUse),
        usage: Usage {
            input_tokens: 1117,
            output_tokens: 46,
            cached_tokens: 1024,
            reasoning_tokens: 12,
        },
    }
}

fn written(response: &ChatResponse) -> Value {
    serde_json::from_slice(&write_response(response, 1741570283)).unwrap()
}

#[test]
fn an_answer_writes_as_a_response_object() {
    assert_eq!(
        written(&weather_response()),
        fixture_json("response.written.json")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(
            &Dialect::OpenAIResponses.write_response(&weather_response(), 1741570283)
        )
        .unwrap(),
        fixture_json("response.written.json")
    );
}

#[test]
fn an_answer_cut_at_the_cap_is_incomplete() {
    let response = ChatResponse {
        id: "msg_01XFDUDYJgAACzvnptvVoYEL".to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        content: vec![text("Rome is warmer: 24°C against")],
        finish_reason: Some(FinishReason::MaxTokens),
        usage: Usage {
            input_tokens: 1203,
            output_tokens: 16,
            ..Usage::default()
        },
    };
    assert_eq!(written(&response), fixture_json("response.incomplete.json"));
}

#[test]
fn finish_reasons_set_the_status() {
    let mut response = weather_response();
    for (reason, status, details) in [
        (Some(FinishReason::EndTurn), "completed", Value::Null),
        (Some(FinishReason::StopSequence), "completed", Value::Null),
        (None, "completed", Value::Null),
        (
            Some(FinishReason::ContentFilter),
            "incomplete",
            json!({"reason": "content_filter"}),
        ),
        (
            Some(FinishReason::MaxTokens),
            "incomplete",
            json!({"reason": "max_output_tokens"}),
        ),
    ] {
        response.finish_reason = reason;
        let body = written(&response);
        assert_eq!(body["status"], status, "{reason:?}");
        assert_eq!(body["incomplete_details"], details, "{reason:?}");
        assert_eq!(body["output"][0]["status"], "completed");
        let last = if status == "completed" {
            "completed"
        } else {
            "incomplete"
        };
        assert_eq!(body["output"][2]["status"], last, "{reason:?}");
    }
    response.id = "resp_0123".to_owned();
    response.content = vec![
        call("c", "f", "{}"),
        text("done"),
        Part::Image(Image::Url("https://x".to_owned())),
    ];
    let body = written(&response);
    assert_eq!(body["id"], "resp_0123");
    assert_eq!(body["output"][1]["id"], "msg_0123_1");
    assert_eq!(body["output"].as_array().unwrap().len(), 2);
    response.content.clear();
    assert_eq!(written(&response)["output"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Streams

/// What an OpenAI upstream's text stream becomes.
fn text_events() -> Vec<StreamEvent> {
    vec![
        start("chatcmpl-BxT7q0rWarmer", "o4-mini-2025-04-16"),
        delta("Rome"),
        delta(" is warmer"),
        delta(""),
        delta(" (24°C vs 18°C)."),
        StreamEvent::Finish(FinishReason::EndTurn),
        StreamEvent::Usage(Usage {
            input_tokens: 1203,
            output_tokens: 140,
            cached_tokens: 1152,
            reasoning_tokens: 128,
        }),
    ]
}

/// What an Anthropic upstream's stream becomes: usage first, text, then two tool calls, the
/// second without arguments.
fn tool_events() -> Vec<StreamEvent> {
    vec![
        start("msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5"),
        StreamEvent::Usage(Usage {
            input_tokens: 472,
            ..Usage::default()
        }),
        delta("Let me check."),
        tool_start(0, "toolu_01A09q90qw90lq917835lq9", "get_weather"),
        arguments(0, r#"{"city": "#),
        arguments(0, ""),
        arguments(0, r#""Paris"}"#),
        tool_start(1, "toolu_01B19r91rx91mr918946mr0", "get_time"),
        StreamEvent::Finish(FinishReason::ToolUse),
        StreamEvent::Usage(Usage {
            input_tokens: 472,
            output_tokens: 89,
            cached_tokens: 400,
            reasoning_tokens: 0,
        }),
    ]
}

fn encode(events: &[StreamEvent]) -> String {
    let mut encoder = Encoder::new(1741570400);
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    encoder.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn golden(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

#[test]
fn a_text_stream_encodes_as_the_api_streams() {
    assert_eq!(encode(&text_events()), golden("stream_text.encoded.sse"));
}

#[test]
fn a_tool_call_stream_encodes_as_the_api_streams() {
    assert_eq!(encode(&tool_events()), golden("stream_tools.encoded.sse"));
}

/// The events of a stream as (`event:` name, data), checking that each is JSON whose `type`
/// is its name and whose `sequence_number` is the next one from 0.
fn events_of(stream: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    for block in stream.split_terminator("\n\n") {
        let (name, data) = block
            .strip_prefix("event: ")
            .and_then(|rest| rest.split_once("\ndata: "))
            .unwrap_or_else(|| panic!("not one named event: {block}"));
        assert!(!data.contains('\n'), "{block}");
        let data: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {block}"));
        assert_eq!(data["type"], name, "{block}");
        assert_eq!(data["sequence_number"], events.len(), "{block}");
        events.push((name.to_owned(), data));
    }
    assert!(stream.ends_with("\n\n"));
    events
}

/// Accumulates a stream as openai-python's `ResponseStreamState` does, checking that every
/// event refers to an item that was added, with its id, that the done events agree with the
/// deltas, and that the final response holds the items as they were done. Returns the final
/// event's name and response.
fn accumulate(stream: &str) -> (String, Value) {
    let events = events_of(stream);
    let (first, created) = &events[0];
    assert_eq!(first, "response.created");
    assert_eq!(events[1].0, "response.in_progress");
    let id = &created["response"]["id"];
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(created["response"]["output"], json!([]));
    let mut items: BTreeMap<u64, Value> = BTreeMap::new();
    let mut done: BTreeMap<u64, Value> = BTreeMap::new();
    let (last, tail) = events.split_last().unwrap();
    for (name, data) in tail {
        let index = data["output_index"].as_u64();
        let item = |items: &mut BTreeMap<u64, Value>| {
            let item = items.get(&index.unwrap()).unwrap().clone();
            assert_eq!(data["item_id"], item["id"], "{data}");
            item
        };
        match name.as_str() {
            "response.created" | "response.in_progress" => assert_eq!(&data["response"]["id"], id),
            "response.output_item.added" => {
                assert_eq!(data["item"]["status"], "in_progress");
                let previous = items.insert(index.unwrap(), data["item"].clone());
                assert!(previous.is_none(), "index reused: {data}");
            }
            "response.content_part.added" => {
                item(&mut items);
                let content = &mut items.get_mut(&index.unwrap()).unwrap()["content"];
                assert_eq!(data["content_index"], content.as_array().unwrap().len());
                content.as_array_mut().unwrap().push(data["part"].clone());
            }
            "response.output_text.delta" => {
                item(&mut items);
                let content_index = data["content_index"].as_u64().unwrap() as usize;
                let part = &mut items.get_mut(&index.unwrap()).unwrap()["content"][content_index];
                let text = format!(
                    "{}{}",
                    part["text"].as_str().unwrap(),
                    data["delta"].as_str().unwrap()
                );
                part["text"] = text.into();
            }
            "response.output_text.done" => {
                let item = item(&mut items);
                let content_index = data["content_index"].as_u64().unwrap() as usize;
                assert_eq!(item["content"][content_index]["text"], data["text"]);
            }
            "response.content_part.done" => {
                let item = item(&mut items);
                let content_index = data["content_index"].as_u64().unwrap() as usize;
                assert_eq!(item["content"][content_index], data["part"]);
            }
            "response.function_call_arguments.delta" => {
                let item = item(&mut items);
                let arguments = format!(
                    "{}{}",
                    item["arguments"].as_str().unwrap(),
                    data["delta"].as_str().unwrap()
                );
                items.get_mut(&index.unwrap()).unwrap()["arguments"] = arguments.into();
            }
            "response.function_call_arguments.done" => {
                let item = item(&mut items);
                assert_eq!(item["arguments"], data["arguments"]);
            }
            "response.output_item.done" => {
                let mut added = items[&index.unwrap()].clone();
                let finished = &data["item"];
                assert_eq!(added["id"], finished["id"]);
                assert_ne!(finished["status"], "in_progress");
                added["status"] = finished["status"].clone();
                assert_eq!(&added, finished, "the deltas add up to the item");
                done.insert(index.unwrap(), finished.clone());
            }
            other => panic!("unexpected event {other}"),
        }
    }
    let (name, data) = last;
    assert!(
        matches!(name.as_str(), "response.completed" | "response.incomplete"),
        "{name}"
    );
    assert_eq!(&data["response"]["id"], id);
    assert_eq!(done.len(), items.len(), "every item is done");
    let output: Vec<Value> = done.into_values().collect();
    assert_eq!(data["response"]["output"], Value::Array(output));
    (name.clone(), data["response"].clone())
}

#[test]
fn the_events_add_up_to_the_final_response() {
    let (name, response) = accumulate(&encode(&text_events()));
    assert_eq!(name, "response.completed");
    assert_eq!(response["status"], "completed");
    assert_eq!(
        response["output"][0]["content"][0]["text"],
        "Rome is warmer (24°C vs 18°C)."
    );
    assert_eq!(
        response["usage"]["output_tokens_details"]["reasoning_tokens"],
        128
    );
    let (_, response) = accumulate(&encode(&tool_events()));
    assert_eq!(response["output"][1]["arguments"], r#"{"city": "Paris"}"#);
    assert_eq!(response["output"][2]["arguments"], "{}");
    assert_eq!(response["usage"]["input_tokens"], 472);
    assert_eq!(response["usage"]["total_tokens"], 561);
}

#[test]
fn the_final_response_is_the_written_answer() {
    let (_, streamed) = accumulate(&encode(&tool_events()));
    let answer = ChatResponse {
        id: "msg_01XFDUDYJgAACzvnptvVoYEL".to_owned(),
        model: "claude-sonnet-4-5".to_owned(),
        content: vec![
            text("Let me check."),
            call(
                "toolu_01A09q90qw90lq917835lq9",
                "get_weather",
                r#"{"city": "Paris"}"#,
            ),
            call("toolu_01B19r91rx91mr918946mr0", "get_time", ""),
        ],
        finish_reason: Some(FinishReason::ToolUse),
        usage: Usage {
            input_tokens: 472,
            output_tokens: 89,
            cached_tokens: 400,
            reasoning_tokens: 0,
        },
    };
    let mut whole: Value = serde_json::from_slice(&write_response(&answer, 1741570400)).unwrap();
    assert_eq!(streamed, whole);
    whole["output"] = json!([]);
    whole["usage"] = Value::Null;
    whole["status"] = "in_progress".into();
    let created = &events_of(&encode(&tool_events()))[0].1["response"];
    assert_eq!(created, &whole);
}

#[test]
fn text_goes_out_as_it_arrives() {
    let mut encoder = Encoder::new(1);
    let mut out = Vec::new();
    encoder.encode(&start("chatcmpl-1", "gpt-4.1"), &mut out);
    for piece in ["Hel", "lo"] {
        out.clear();
        encoder.encode(&delta(piece), &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(
            last.starts_with("event: response.output_text.delta\n"),
            "{text}"
        );
        assert!(last.contains(&format!(r#""delta":"{piece}""#)), "{text}");
    }
}

#[test]
fn a_stream_cut_at_the_cap_ends_incomplete() {
    let events = [
        start("chatcmpl-2", "gpt-4.1"),
        delta("Rome is"),
        tool_start(0, "call_1", "get_weather"),
        arguments(0, r#"{"city":"#),
        StreamEvent::Finish(FinishReason::MaxTokens),
    ];
    let (name, response) = accumulate(&encode(&events));
    assert_eq!(name, "response.incomplete");
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["output"][0]["status"], "completed");
    assert_eq!(response["output"][1]["status"], "incomplete");
    assert_eq!(response["usage"], Value::Null);
}

#[test]
fn a_stream_without_its_start_or_finish_still_opens_and_closes() {
    let (name, response) = accumulate(&encode(&[delta("Hi")]));
    assert_eq!(name, "response.completed");
    assert_eq!(response["id"], "resp_");
    let (_, response) = accumulate(&encode(&[start("r", "m")]));
    assert_eq!(response["output"], json!([]));
}

#[test]
fn late_arguments_of_a_closed_call_still_reach_the_final_response() {
    let events = [
        start("r1", "m"),
        tool_start(0, "a", "f"),
        arguments(0, "{\"x\":"),
        tool_start(1, "b", "g"),
        arguments(0, "1}"),
        arguments(1, "{}"),
        arguments(7, "lost"),
    ];
    let stream = encode(&events);
    let events = events_of(&stream);
    let last = &events.last().unwrap().1["response"];
    assert_eq!(last["output"][0]["arguments"], "{\"x\":1}");
    assert_eq!(last["output"][1]["arguments"], "{}");
    assert!(!stream.contains("lost"));
}

/// Decodes an upstream's stream, fed in `pieces`, and encodes the events as a Responses stream
/// as they come, as the gateway does.
fn translate(format: WireFormat, pieces: &[&[u8]]) -> String {
    let mut decoder: Box<dyn StreamDecoder> = format.decoder();
    let mut encoder = Dialect::OpenAIResponses.encoder(false, 1741570400);
    let mut events = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece, &mut events).unwrap();
        for event in events.drain(..) {
            encoder.encode(&event, &mut out);
        }
    }
    decoder.finish(&mut events).unwrap();
    for event in &events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out).unwrap()
}

/// An upstream's fixture stream, whole, as a Responses stream.
fn translated(format: WireFormat, fixture_format: &str, name: &str) -> String {
    translate(format, &[&support::fixture(fixture_format, name)])
}

#[test]
fn an_upstream_stream_cut_anywhere_translates_the_same() {
    let stream = support::fixture("anthropic", "stream_tool_use.sse");
    support::assert_splits_decode_the_same(
        "anthropic stream_tool_use.sse",
        &stream,
        0x5EED_0F0A_1C4A_7001,
        12,
        |pieces| translate(WireFormat::Anthropic, pieces),
    );
}

#[test]
fn an_anthropic_stream_reaches_a_responses_caller() {
    let stream = translated(WireFormat::Anthropic, "anthropic", "stream_tool_use.sse");
    let (name, response) = accumulate(&stream);
    assert_eq!(name, "response.completed");
    assert_eq!(response["id"], "resp_msg_014p7gG3wDgGV9EUtLvnow3U");
    assert_eq!(response["model"], "claude-sonnet-4-5-20250929");
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["content"][0]["text"], "Let me check both cities.");
    assert_eq!(output[1]["call_id"], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(output[1]["id"], "fc_toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(output[1]["arguments"], "{\"city\": \"Paris\"}");
    assert_eq!(output[2]["arguments"], "{\"city\": \"Rome\"}");
    assert_eq!(
        response["usage"],
        json!({
            "input_tokens": 2472, "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 2000},
            "output_tokens": 89, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2561
        })
    );
}

#[test]
fn a_gemini_stream_reaches_a_responses_caller() {
    for name in [
        "stream_text.sse",
        "stream_tool_call.sse",
        "stream_blocked.sse",
    ] {
        let stream = translated(WireFormat::Gemini, "gemini", name);
        let (_, response) = accumulate(&stream);
        assert!(
            response["usage"]["input_tokens"].as_u64().unwrap() > 0,
            "{name}"
        );
    }
}
