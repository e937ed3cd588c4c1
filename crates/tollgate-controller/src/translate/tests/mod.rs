//! Unit tests of [`translate()`]. Inputs are written as manifests and read with
//! [`parse_documents`], as `tollgate run` reads its files.

mod budgets;
mod contract;
mod gateways;
mod http_routes;
mod jwt;
mod keys;
mod matches;
mod mcp;
mod policy;
mod providers;
mod routes;
mod wire;

use super::{TranslateOptions, Translation, translate};
use crate::files::parse_documents;
use crate::{Diagnostic, Resources};
use tollgate_config::{RequestFacts, RouteTable, Rule};

/// The manifest every release must serve: one Gateway, one provider with a credential, one
/// route and one API key.
const CONTRACT: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ai-gateway, namespace: default}
spec:
  gatewayClassName: tollgate
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: v1
kind: Secret
metadata: {name: openai-credentials, namespace: default}
stringData: {apiKey: sk-upstream-test}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: openai, namespace: default}
spec:
  type: OpenAI
  endpoint: http://127.0.0.1:9100
  auth: {secretRef: {name: openai-credentials, key: apiKey}}
  models:
    - name: gpt-4o-mini
      pricing: {inputPerMillionTokens: "0.15", outputPerMillionTokens: "0.60"}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: chat, namespace: default}
spec:
  parentRefs: [{name: ai-gateway}]
  rules:
    - matches: [{model: gpt-4o-mini}]
      backends: [{provider: openai, model: gpt-4o-mini}]
---
apiVersion: v1
kind: Secret
metadata:
  name: alice-key
  namespace: default
  labels: {tollgate.dev/api-key: "true", tollgate.dev/team: research, tollgate.dev/user: alice}
stringData: {key: tg-alice-secret}
"#;

/// Options as `tollgate run` sets them: Gateways of class `tollgate` are served without a
/// GatewayClass object.
fn run_options() -> TranslateOptions {
    TranslateOptions {
        implicit_gateway_class: Some("tollgate".into()),
    }
}

/// Reads YAML documents into resources; a test manifest that does not parse fails the test.
fn resources(documents: &[&str]) -> Resources {
    let (parsed, diagnostics) = parse_documents(&documents.join("\n---\n"), "test.yaml");
    assert!(
        diagnostics.is_empty(),
        "the test manifest does not parse: {diagnostics:#?}"
    );
    let mut resources = Resources::default();
    parsed.into_iter().for_each(|r| resources.push(r));
    resources
}

/// Translates YAML documents with [`run_options`].
fn run(documents: &[&str]) -> Translation {
    translate(&resources(documents), &run_options())
}

/// The one diagnostic with `reason`, checked against `expected`: its severity, kind,
/// `namespace/name` and field, as in `"error Gateway default/gw spec.listeners[1].port"`.
/// Returned so that a test can check its message too.
fn diagnostic<'t>(translation: &'t Translation, reason: &str, expected: &str) -> &'t Diagnostic {
    let matching: Vec<&Diagnostic> = translation
        .diagnostics
        .iter()
        .filter(|d| d.reason == reason)
        .collect();
    let [found] = matching[..] else {
        panic!(
            "expected one {reason} diagnostic, got: {:#?}",
            translation.diagnostics
        );
    };
    let actual = summary(found);
    assert_eq!(actual, expected, "{found}");
    found
}

/// A diagnostic's severity, kind, `namespace/name` and field, space-separated.
fn summary(diagnostic: &Diagnostic) -> String {
    let severity = if diagnostic.is_error() {
        "error"
    } else {
        "warning"
    };
    let Diagnostic {
        kind,
        namespace,
        name,
        field,
        ..
    } = diagnostic;
    format!("{severity} {kind} {namespace}/{name} {field}")
}

/// Every diagnostic as its summary and reason, in order, for tests that expect several with
/// the same reason.
fn summaries(translation: &Translation) -> Vec<String> {
    translation
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", summary(d), d.reason))
        .collect()
}

/// Checks that nothing at all was reported.
fn assert_clean(translation: &Translation) {
    assert!(
        translation.diagnostics.is_empty(),
        "unexpected diagnostics: {:#?}",
        translation.diagnostics
    );
}

/// The reasons of all diagnostics, in order, for tests that check nothing else was reported.
fn reasons(translation: &Translation) -> Vec<&'static str> {
    translation.diagnostics.iter().map(|d| d.reason).collect()
}

/// A Gateway of class `tollgate` with the given listeners (a YAML flow sequence).
fn gateway(namespace: &str, name: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  gatewayClassName: tollgate\n  listeners: {listeners}\n"
    )
}

/// A ModelProvider with the given spec (a YAML flow mapping).
fn provider(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// An AIRoute with the given spec (a YAML flow mapping).
fn route(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// A Secret with the given `stringData` or `data` (a YAML flow mapping) and labels.
fn secret(namespace: &str, name: &str, labels: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}\n{data}\n"
    )
}

/// The rule a plain chat request for `model` would use.
fn find<'t>(routes: &'t RouteTable, model: &str) -> Option<&'t Rule> {
    let no_headers = |_: &str, _: &str| false;
    let facts = RequestFacts {
        model,
        path: "/v1/chat/completions",
        method: "POST",
        host: "gateway.example.com",
        header_is: &no_headers,
        query_is: &no_headers,
        prompt_tokens: 10,
        has_tools: false,
        has_images: false,
    };
    routes.lookup(&facts).map(|index| routes.rule(index))
}

/// `default/ai-gateway` (HTTP on 8080), provider `default/openai`, and AIRoute `default/chat`
/// attached to it with one rule (a YAML flow mapping without braces, e.g. `backends: [...]`).
fn run_one_rule(rule: &str) -> Translation {
    let documents = [
        gateway(
            "default",
            "ai-gateway",
            "[{name: http, protocol: HTTP, port: 8080}]",
        ),
        provider(
            "default",
            "openai",
            r#"{type: OpenAI, endpoint: "http://127.0.0.1:9100"}"#,
        ),
        route(
            "default",
            "chat",
            &format!("{{parentRefs: [{{name: ai-gateway}}], rules: [{{{rule}}}]}}"),
        ),
    ];
    run(&documents.iter().map(String::as_str).collect::<Vec<_>>())
}
