//! The budget work on every metered request, with the in-memory store: reserve on every
//! applicable limit, then settle to the usage reported, as the reserve and record stages do;
//! and counting a 4 KiB prompt's tokens with tiktoken, which a token or USD limit needs. The
//! issue's target: authentication (benched in tollgate-config as `api_key_lookup_of_10000`)
//! plus reserve plus settle under 20 µs median.

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use prometheus_client::registry::Registry;
use std::hint::black_box;
use std::sync::Arc;
use tollgate_config::{
    BudgetPolicy, Budgets, Enforcement, FailureMode, GatewayConfig, Limit, ObjectRef, Snapshot,
    Subject, Unit, Window,
};
use tollgate_llm::Tokenizer;
use tollgate_llm::openai::InspectedRequest;
use tollgate_proxy::{Consumed, Demand, Ledger, Metrics, StoreConfig, Verdict, WorstPrice};

/// A policy with a USD budget per month and a token-per-minute limit, never reached here.
fn policy(name: &str, subject: Subject) -> BudgetPolicy {
    BudgetPolicy {
        id: ObjectRef::new("default", name),
        subject,
        limits: vec![
            Limit {
                window: Window::Month,
                unit: Unit::NanoUsd,
                amount: u64::MAX / 4,
            },
            Limit {
                window: Window::Minute,
                unit: Unit::Tokens,
                amount: u64::MAX / 4,
            },
        ],
        enforcement: Enforcement::Hard,
        failure_mode: FailureMode::Closed,
        alert_thresholds: vec![50, 80, 100],
        clamp: false,
        default_max_output_tokens: 4096,
        time_zone: TimeZone::UTC,
        tools: Vec::new(),
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let ledger = Ledger::new(
        &StoreConfig::Memory,
        Metrics::register(&mut Registry::default()),
    )
    .expect("a memory ledger");
    let config = GatewayConfig {
        budgets: Budgets::new(vec![
            policy("global", Subject::Global),
            policy("team", Subject::Team("research".into())),
        ]),
        ..GatewayConfig::default()
    };
    let snapshot = Arc::new(Snapshot { version: 1, config });
    let policies = [0, 1];
    let demand = Demand {
        input_tokens: 1000,
        max_output: Some(500),
        price: WorstPrice {
            input: 150,
            output: 600,
        },
    };
    c.bench_function("budget_reserve_settle_memory_2_policies", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let verdict = ledger
                    .reserve(&snapshot, black_box(&policies), demand)
                    .await
                    .expect("room");
                let Verdict::Reserved { reservation, .. } = verdict else {
                    panic!("the memory store meters every request");
                };
                ledger
                    .settle(
                        &reservation,
                        Consumed {
                            tokens: 1200,
                            nano_usd: 270_000,
                        },
                    )
                    .await;
            })
        })
    });

    let content = "The quick brown fox jumps over the lazy dog. ".repeat(88);
    let request = InspectedRequest::parse(
        format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"system","content":"be brief"}},{{"role":"user","content":"{content}"}}]}}"#
        )
        .into(),
    )
    .expect("a valid request");
    let tokenizer = Tokenizer::of_model("gpt-4o-mini");
    request.prompt_tokens(tokenizer);
    c.bench_function("prompt_tokens_tiktoken_4k", |b| {
        b.iter(|| black_box(&request).prompt_tokens(tokenizer))
    });
}

criterion_group!(budget, benches);
criterion_main!(budget);
