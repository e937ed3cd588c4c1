//! The dialect code on every request: reading and rewriting a request, reading usage from a
//! stream as it passes, and translating requests, answers and streams between dialects.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate_llm::openai::chat::MaxTokensField;
use tollgate_llm::openai::{ChatStream, InspectedRequest, Rewrite};
use tollgate_llm::{Dialect, WireFormat};

/// A chat request of about 4 KiB.
fn request_4k() -> Bytes {
    let content = "x".repeat(3900);
    Bytes::from(format!(
        r#"{{"model":"fast","stream":true,"temperature":0.2,"messages":[{{"role":"system","content":"be brief"}},{{"role":"user","content":"{content}"}}]}}"#
    ))
}

/// A 200-event stream with usage requested, as OpenAI sends it, cut into 1 KiB chunks.
fn stream_200() -> Vec<Bytes> {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    text.push_str("data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":200,\"total_tokens\":212}}\n\ndata: [DONE]\n\n");
    text.as_bytes()
        .chunks(1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// The same conversation of about 4 KiB in each caller dialect.
fn caller_requests_4k() -> [(&'static str, Dialect, Vec<u8>); 3] {
    let content = "x".repeat(3900);
    [
        ("openai", Dialect::OpenAI, request_4k().to_vec()),
        (
            "anthropic",
            Dialect::Anthropic,
            format!(
                r#"{{"model":"fast","stream":true,"max_tokens":1024,"temperature":0.2,"system":"be brief","messages":[{{"role":"user","content":"{content}"}}]}}"#
            )
            .into_bytes(),
        ),
        (
            "responses",
            Dialect::OpenAIResponses,
            format!(
                r#"{{"model":"fast","stream":true,"temperature":0.2,"instructions":"be brief","input":"{content}"}}"#
            )
            .into_bytes(),
        ),
    ]
}

/// 200 text events and the end of an answer, in an upstream format's stream, cut into 1 KiB
/// chunks.
fn upstream_stream_200(format: WireFormat) -> Vec<Bytes> {
    let mut text = String::new();
    match format {
        WireFormat::Anthropic => {
            text.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n");
            text.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for i in 0..200 {
                text.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token{i} \"}}}}\n\n"));
            }
            text.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            text.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n");
            text.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        WireFormat::Gemini => {
            for i in 0..200 {
                let finish = if i == 199 {
                    ",\"finishReason\":\"STOP\""
                } else {
                    ""
                };
                text.push_str(&format!("data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"token{i} \"}}]}}{finish}}}],\"usageMetadata\":{{\"promptTokenCount\":12,\"candidatesTokenCount\":{i}}},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}}\r\n\r\n"));
            }
        }
        _ => return stream_200(),
    }
    text.as_bytes()
        .chunks(1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn translation_benches(c: &mut Criterion) {
    let openai = WireFormat::OpenAIChat(MaxTokensField::MaxCompletionTokens);
    let mut group = c.benchmark_group("translate_request_4k");
    for (caller, dialect, body) in caller_requests_4k() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        for (upstream, format) in [
            ("openai", openai),
            ("anthropic", WireFormat::Anthropic),
            ("gemini", WireFormat::Gemini),
            ("bedrock", WireFormat::Bedrock),
        ] {
            if format.speaks(dialect) {
                continue;
            }
            group.bench_function(format!("{caller}_to_{upstream}"), |b| {
                b.iter(|| {
                    let request = dialect.parse_request(black_box(&body)).unwrap();
                    format.write_request(&request).unwrap()
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("translate_stream_200_events");
    group.throughput(Throughput::Elements(200));
    for (upstream, format, caller, dialect) in [
        ("openai", openai, "anthropic", Dialect::Anthropic),
        (
            "anthropic",
            WireFormat::Anthropic,
            "openai",
            Dialect::OpenAI,
        ),
        ("gemini", WireFormat::Gemini, "openai", Dialect::OpenAI),
        (
            "anthropic",
            WireFormat::Anthropic,
            "responses",
            Dialect::OpenAIResponses,
        ),
    ] {
        let chunks = upstream_stream_200(format);
        group.bench_function(format!("{upstream}_to_{caller}"), |b| {
            b.iter(|| {
                let mut decoder = format.decoder();
                let mut encoder = dialect.encoder(true, 0);
                let (mut events, mut out) = (Vec::new(), Vec::new());
                for chunk in &chunks {
                    decoder.push(chunk, &mut events).unwrap();
                    for event in events.drain(..) {
                        encoder.encode(&event, &mut out);
                    }
                }
                decoder.finish(&mut events).unwrap();
                for event in events.drain(..) {
                    encoder.encode(&event, &mut out);
                }
                encoder.finish(&mut out);
                black_box(out)
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let request = request_4k();
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("inspect_4k", |b| {
        b.iter(|| InspectedRequest::parse(black_box(request.clone())).unwrap())
    });
    let inspected = InspectedRequest::parse(request.clone()).unwrap();
    group.bench_function("rewrite_model_and_usage_4k", |b| {
        b.iter(|| {
            inspected.rewrite(black_box(&Rewrite {
                model: Some("gpt-4o-mini"),
                include_usage: true,
                ..Rewrite::default()
            }))
        })
    });
    group.finish();

    let chunks = stream_200();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(201));
    for (name, hide_usage) in [
        ("usage_passthrough_200_events", false),
        ("usage_hidden_200_events", true),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut stream = ChatStream::new(hide_usage);
                for chunk in &chunks {
                    black_box(stream.on_chunk(chunk.clone()));
                }
                black_box(stream.finish());
                stream.usage().unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(hot_paths, benches, translation_benches);
criterion_main!(hot_paths);
