//! Per-request lookups in the snapshot: the rule for a model among 10,000, and a caller's key.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate_config::{
    ApiKeys, Backend, Identity, Match, ModelMatch, ObjectRef, ProviderId, RequestFacts, RouteTable,
    Rule, RulePolicy,
};

fn table(rules: usize) -> RouteTable {
    RouteTable::new(
        (0..rules)
            .map(|i| Rule {
                route: ObjectRef::new("default", format!("route-{i}")),
                name: "0".into(),
                hostnames: Vec::new(),
                matches: vec![if i % 10 == 0 {
                    Match::model(ModelMatch::Prefix(format!("family-{i}-")))
                } else {
                    Match::model(ModelMatch::Exact(format!("model-{i}")))
                }],
                backends: vec![Backend {
                    provider: ProviderId(0),
                    model: None,
                    weight: 1,
                    priority: 0,
                }],
                policy: RulePolicy::default(),
                access: Vec::new(),
            })
            .collect(),
    )
}

fn benches(c: &mut Criterion) {
    let table = table(10_000);
    let no_headers = |_: &str, _: &str| false;
    let facts = |model: &'static str| RequestFacts {
        model,
        path: "/v1/chat/completions",
        method: "POST",
        host: "gateway.example.com",
        header_is: &no_headers,
        query_is: &no_headers,
        prompt_tokens: 100,
        has_tools: false,
        has_images: false,
    };
    c.bench_function("route_lookup_exact_of_10000", |b| {
        b.iter(|| table.lookup(black_box(&facts("model-7777"))))
    });
    c.bench_function("route_lookup_prefix_of_10000", |b| {
        b.iter(|| table.lookup(black_box(&facts("family-5000-x"))))
    });
    c.bench_function("route_lookup_miss_of_10000", |b| {
        b.iter(|| table.lookup(black_box(&facts("unknown"))))
    });

    let mut keys = ApiKeys::default();
    for i in 0..10_000 {
        let identity = Identity {
            key_id: format!("default/key-{i}"),
            team: None,
            user: None,
            expires_at: None,
        };
        keys.insert(&format!("tg-key-{i:08}"), identity).unwrap();
    }
    c.bench_function("api_key_lookup_of_10000", |b| {
        b.iter(|| keys.authenticate(black_box("tg-key-00004242")))
    });
}

criterion_group!(lookup, benches);
criterion_main!(lookup);
