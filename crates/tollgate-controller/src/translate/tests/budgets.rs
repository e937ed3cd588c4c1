//! BudgetPolicy resources: subjects, limits, windows, and what is refused.

use tollgate_config::{
    Budgets, Enforcement, FailureMode, Identity, Limit, ObjectRef, Subject, Unit, Window,
};

use super::{CONTRACT, assert_clean, run, summaries};
use crate::Translation;

/// A BudgetPolicy in `research` with the given spec (a YAML flow mapping).
fn policy(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: tollgate.dev/v1alpha1\nkind: BudgetPolicy\nmetadata: {{name: {name}, namespace: research}}\nspec: {spec}\n"
    )
}

fn run_policies(policies: &[String]) -> Translation {
    let mut documents = vec![CONTRACT];
    documents.extend(policies.iter().map(String::as_str));
    run(&documents)
}

fn budgets(translation: &Translation) -> &Budgets {
    &translation.configs[&ObjectRef::new("default", "ai-gateway")].budgets
}

#[test]
fn policies_translate_with_defaults_and_exact_usd() {
    let translation = run_policies(&[
        policy(
            "monthly",
            r#"{subject: {kind: Team, name: research}, limits: [{window: Month, usd: "100.25"}, {window: Minute, tokens: 50000}, {window: Minute, requests: 60}]}"#,
        ),
        policy(
            "alice-key",
            r#"{subject: {kind: Key, name: alice-key}, limits: [{window: Day, usd: "0.000000001"}], enforcement: Soft, failureMode: Open, alertThresholds: [80, 50, 80], clamp: true, defaultMaxOutputTokens: 256, timeZone: Europe/Paris}"#,
        ),
        policy(
            "everyone",
            r#"{subject: {kind: Global}, limits: [{window: Hour, requests: 1000}]}"#,
        ),
    ]);
    assert_clean(&translation);
    let budgets = budgets(&translation);
    let [monthly, key, everyone] = budgets.policies() else {
        panic!("three policies expected");
    };
    assert_eq!(monthly.subject, Subject::Team("research".into()));
    assert_eq!(
        monthly.limits,
        [
            Limit {
                window: Window::Month,
                unit: Unit::NanoUsd,
                amount: 100_250_000_000
            },
            Limit {
                window: Window::Minute,
                unit: Unit::Tokens,
                amount: 50_000
            },
            Limit {
                window: Window::Minute,
                unit: Unit::Requests,
                amount: 60
            },
        ]
    );
    assert_eq!(
        (
            monthly.enforcement,
            monthly.failure_mode,
            monthly.clamp,
            monthly.default_max_output_tokens
        ),
        (Enforcement::Hard, FailureMode::Closed, false, 4096)
    );
    assert_eq!(monthly.time_zone.iana_name(), Some("UTC"));
    // A key subject names the key's Secret in the policy's namespace.
    assert_eq!(key.subject, Subject::Key("research/alice-key".into()));
    assert_eq!(key.limits[0].amount, 1);
    assert_eq!(key.alert_thresholds, [50, 80]);
    assert_eq!(
        (
            key.enforcement,
            key.failure_mode,
            key.clamp,
            key.default_max_output_tokens
        ),
        (Enforcement::Soft, FailureMode::Open, true, 256)
    );
    assert_eq!(key.time_zone.iana_name(), Some("Europe/Paris"));
    assert_eq!(everyone.subject, Subject::Global);

    let researcher = Identity {
        key_id: "default/alice-key".into(),
        team: Some("research".into()),
        user: Some("alice".into()),
        expires_at: None,
    };
    let chat = ObjectRef::new("default", "chat");
    let names: Vec<_> = budgets
        .applicable(&researcher, &chat)
        .map(|p| budgets.policy(p).id.name.as_str())
        .collect();
    assert_eq!(names, ["monthly", "everyone"]);
}

#[test]
fn invalid_policies_are_refused_field_by_field() {
    let translation = run_policies(&[
        policy(
            "no-name",
            r#"{subject: {kind: Team}, limits: [{window: Month, usd: "1"}]}"#,
        ),
        policy(
            "named-global",
            r#"{subject: {kind: Global, name: x}, limits: [{window: Month, usd: "1"}]}"#,
        ),
        policy("no-limits", r#"{subject: {kind: Global}, limits: []}"#),
        policy(
            "two-units",
            r#"{subject: {kind: Global}, limits: [{window: Month, usd: "1", tokens: 5}, {window: Day}]}"#,
        ),
        policy(
            "zero",
            r#"{subject: {kind: Global}, limits: [{window: Month, requests: 0}]}"#,
        ),
        policy(
            "too-fine",
            r#"{subject: {kind: Global}, limits: [{window: Month, usd: "0.0000000001"}]}"#,
        ),
        policy(
            "bad-zone",
            r#"{subject: {kind: Global}, limits: [{window: Day, usd: "1"}], timeZone: Mars/Olympus}"#,
        ),
        policy(
            "bad-threshold",
            r#"{subject: {kind: Global}, limits: [{window: Day, usd: "1"}], alertThresholds: [0]}"#,
        ),
    ]);
    assert_eq!(
        summaries(&translation),
        [
            "error BudgetPolicy research/no-name spec.subject.name InvalidSubject",
            "error BudgetPolicy research/named-global spec.subject.name InvalidSubject",
            "error BudgetPolicy research/no-limits spec.limits InvalidLimit",
            "error BudgetPolicy research/two-units spec.limits[0] InvalidLimit",
            "error BudgetPolicy research/two-units spec.limits[1] InvalidLimit",
            "error BudgetPolicy research/zero spec.limits[0] InvalidLimit",
            "error BudgetPolicy research/too-fine spec.limits[0] InvalidLimit",
            "error BudgetPolicy research/bad-zone spec.timeZone InvalidTimeZone",
            "error BudgetPolicy research/bad-threshold spec.alertThresholds InvalidThreshold",
        ]
    );
    assert!(budgets(&translation).is_empty());
}

#[test]
fn tool_policies_count_requests_of_named_tools_only() {
    let translation = run_policies(&[
        policy(
            "github-calls",
            r#"{subject: {kind: Team, name: research}, tools: ["github__create_*"], limits: [{window: Minute, requests: 10}, {window: Day, requests: 200}]}"#,
        ),
        policy(
            "github-spend",
            r#"{subject: {kind: Global}, tools: ["github__*"], limits: [{window: Day, usd: "1"}]}"#,
        ),
        policy(
            "blank",
            r#"{subject: {kind: Global}, tools: [" "], limits: [{window: Day, requests: 1}]}"#,
        ),
    ]);
    assert_eq!(
        summaries(&translation),
        [
            "error BudgetPolicy research/github-spend spec.limits[0] InvalidLimit",
            "error BudgetPolicy research/blank spec.tools InvalidTools",
        ]
    );
    let [calls] = budgets(&translation).policies() else {
        panic!("one policy expected");
    };
    assert_eq!(calls.tools, ["github__create_*"]);
}
