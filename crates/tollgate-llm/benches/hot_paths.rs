//! The dialect code on every request: reading and rewriting a request, and reading usage from
//! a stream as it passes.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate_llm::openai::{ChatStream, InspectedRequest, Rewrite};

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

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
