//! The contract manifest, GatewayClass selection, determinism and reporting in general.

use rust_decimal::Decimal;
use tollgate_config::{
    Backend, Identity, Listener, Match, ModelMatch, ObjectRef, Pricing, ProviderId, ProviderKind,
    Secret, Timeouts,
};

use super::{
    CONTRACT, assert_clean, diagnostic, find, reasons, resources, route, run, run_options,
};
use crate::Severity::Error;
use crate::translate::{TranslateOptions, Translation, translate};

const GATEWAY_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: tollgate}\nspec: {controllerName: tollgate.dev/gateway-controller}\n";

fn price(value: &str) -> Decimal {
    value.parse().expect("a decimal")
}

#[test]
fn contract_manifest_translates_to_one_gateway_config() {
    let translation = run(&[CONTRACT]);
    assert_clean(&translation);
    assert!(!translation.has_errors());

    let gateway = ObjectRef::new("default", "ai-gateway");
    assert_eq!(translation.configs.keys().collect::<Vec<_>>(), [&gateway]);
    let config = &translation.configs[&gateway];
    assert_eq!(config.gateway, gateway);
    assert_eq!(
        config.listeners,
        [Listener {
            name: "http".into(),
            port: 8080,
            hostname: None,
            tls: None,
        }]
    );

    assert_eq!(config.providers.len(), 1);
    let provider = &config.providers[0];
    assert_eq!(provider.name, ObjectRef::new("default", "openai"));
    assert_eq!(provider.kind, ProviderKind::OpenAI);
    assert_eq!(provider.endpoint, "http://127.0.0.1:9100/v1");
    assert_eq!(
        provider.api_key.as_ref().map(Secret::expose),
        Some("sk-upstream-test")
    );
    assert_eq!(provider.timeouts, Timeouts::default());
    let pricing = Pricing {
        input_per_million: price("0.15"),
        cached_input_per_million: price("0.15"),
        output_per_million: price("0.60"),
    };
    assert_eq!(
        provider.models.iter().collect::<Vec<_>>(),
        [(&"gpt-4o-mini".to_string(), &pricing)]
    );

    let rule = find(&config.routes, "gpt-4o-mini").expect("a rule for gpt-4o-mini");
    assert_eq!(rule.route, ObjectRef::new("default", "chat"));
    assert_eq!(rule.name, "0");
    assert_eq!(
        rule.matches,
        [Match::model(ModelMatch::Exact("gpt-4o-mini".into()))]
    );
    assert_eq!(
        rule.backends,
        [Backend {
            provider: ProviderId(0),
            model: Some("gpt-4o-mini".into()),
            weight: 1,
            priority: 0,
        }]
    );
    assert_eq!(
        config.provider(rule.backends[0].provider).name,
        provider.name
    );
    assert!(
        find(&config.routes, "gpt-4o").is_none(),
        "no catch-all rule"
    );

    assert_eq!(config.api_keys.len(), 1);
    let alice = Identity {
        key_id: "default/alice-key".into(),
        team: Some("research".into()),
        user: Some("alice".into()),
        expires_at: None,
    };
    assert_eq!(
        config.api_keys.authenticate("tg-alice-secret"),
        Some(&alice)
    );
    assert_eq!(
        config.api_keys.authenticate("sk-upstream-test"),
        None,
        "an unlabelled Secret is no API key"
    );
}

#[test]
fn without_an_implicit_class_only_gateway_classes_of_tollgate_are_served() {
    let options = TranslateOptions::default();

    let translation = translate(&resources(&[CONTRACT]), &options);
    assert!(translation.configs.is_empty());
    diagnostic(
        &translation,
        "NoMatchingParent",
        "warning AIRoute default/chat spec.parentRefs[0]",
    );
    assert!(!translation.has_errors());

    let translation = translate(&resources(&[GATEWAY_CLASS, CONTRACT]), &options);
    assert_eq!(
        translation.configs.keys().collect::<Vec<_>>(),
        [&ObjectRef::new("default", "ai-gateway")]
    );
    assert_clean(&translation);
    assert_eq!(translation.configs, run(&[CONTRACT]).configs);

    let foreign = GATEWAY_CLASS.replace(
        "tollgate.dev/gateway-controller",
        "example.com/other-controller",
    );
    let translation = translate(&resources(&[&foreign, CONTRACT]), &options);
    assert!(
        translation.configs.is_empty(),
        "a class of another controller is not served"
    );
}

#[test]
fn gateways_of_other_classes_are_ignored() {
    let other = CONTRACT.replace("gatewayClassName: tollgate", "gatewayClassName: istio");
    let translation = run(&[&other]);
    assert!(translation.configs.is_empty());
    assert_eq!(reasons(&translation), ["NoMatchingParent"]);
}

#[test]
fn has_errors_is_true_only_with_an_error_and_errors_come_first() {
    let unsupported_listener = CONTRACT.replace(
        "[{name: http, protocol: HTTP, port: 8080}]",
        "[{name: http, protocol: HTTP, port: 8080}, {name: tcp, protocol: TCP, port: 9000}]",
    );
    let warned = run(&[&unsupported_listener]);
    assert_eq!(reasons(&warned), ["UnsupportedProtocol"]);
    assert!(!warned.has_errors());

    let broken_route = route(
        "default",
        "broken",
        "{parentRefs: [{name: ai-gateway}], rules: [{backends: [{provider: missing}]}]}",
    );
    let failed = run(&[&unsupported_listener, &broken_route]);
    assert!(failed.has_errors());
    assert_eq!(
        reasons(&failed),
        ["BackendNotFound", "UnsupportedProtocol"],
        "errors first, though found later"
    );
    assert_eq!(failed.diagnostics[0].severity, Error);
    assert!(
        !failed.configs.is_empty(),
        "what is valid is still translated"
    );
}

#[test]
fn translation_is_deterministic() {
    let extra = [
        route(
            "default",
            "fallback",
            "{parentRefs: [{name: ai-gateway}], rules: [{backends: [{provider: openai, weight: 3}, {provider: local}]}]}",
        ),
        super::provider(
            "default",
            "local",
            r#"{type: OpenAICompatible, endpoint: "http://vllm:8000/v1"}"#,
        ),
        super::secret(
            "default",
            "bob-key",
            r#"{tollgate.dev/api-key: "true"}"#,
            "stringData: {key: tg-bob-secret}",
        ),
        route(
            "default",
            "broken",
            "{parentRefs: [{name: ai-gateway}], rules: []}",
        ),
    ];
    let mut documents = vec![CONTRACT];
    documents.extend(extra.iter().map(String::as_str));
    let parsed = resources(&documents);
    let first = translate(&parsed, &run_options());
    let second = translate(&parsed, &run_options());
    let reparsed = translate(&resources(&documents), &run_options());
    for other in [&second, &reparsed] {
        assert_eq!(first.configs, other.configs);
        assert_eq!(first.diagnostics, other.diagnostics);
        let json = |t: &Translation| {
            serde_json::to_string(&t.configs.values().collect::<Vec<_>>()).unwrap()
        };
        assert_eq!(
            json(&first),
            json(other),
            "the published form is byte for byte the same"
        );
    }
    assert_eq!(reasons(&first), ["NoRules"]);
}
