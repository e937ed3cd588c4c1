//! Translation at the scale of a large platform: 10,000 AIRoutes on one Gateway.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate_controller::{Resources, TranslateOptions, files, translate};

/// A Gateway, 100 providers and `routes` AIRoutes of two rules each, read as `tollgate run`
/// reads files.
fn resources(routes: usize) -> Resources {
    let mut text = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec: {gatewayClassName: tollgate, listeners: [{name: http, protocol: HTTP, port: 8080}]}\n",
    );
    for p in 0..100 {
        text.push_str(&format!(
            "---\napiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: {{name: p{p}, namespace: default}}\nspec: {{type: OpenAICompatible, endpoint: \"http://10.0.0.{p}:8000/v1\"}}\n"
        ));
    }
    for r in 0..routes {
        text.push_str(&format!(
            "---\napiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: r{r}, namespace: default}}\nspec: {{parentRefs: [{{name: gw}}], rules: [{{matches: [{{model: m{r}}}], backends: [{{provider: p{}, weight: 3}}, {{provider: p{}, priority: 1}}], retry: {{attempts: 3}}}}, {{matches: [{{modelPrefix: f{r}-}}], backends: [{{provider: p{}}}]}}]}}\n",
            r % 100,
            (r + 1) % 100,
            (r + 2) % 100
        ));
    }
    let (parsed, diagnostics) = files::parse_documents(&text, "bench.yaml");
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut resources = Resources::default();
    parsed.into_iter().for_each(|r| resources.push(r));
    resources
}

fn benches(c: &mut Criterion) {
    let resources = resources(10_000);
    let options = TranslateOptions {
        implicit_gateway_class: Some("tollgate".into()),
    };
    let mut group = c.benchmark_group("translate");
    group.sample_size(10);
    group.bench_function("10000_airoutes", |b| {
        b.iter(|| translate(black_box(&resources), &options))
    });
    group.finish();
}

criterion_group!(translate_benches, benches);
criterion_main!(translate_benches);
