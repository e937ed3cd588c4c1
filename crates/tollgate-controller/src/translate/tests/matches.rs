//! A rule's match conditions: what is read, and what is refused.

use tollgate_config::{Match, ModelMatch, ObjectRef};

use super::{assert_clean, diagnostic, reasons, run_one_rule};
use crate::Translation;

/// One rule with the given matches (a YAML flow sequence).
fn run_matches(matches: &str) -> Translation {
    run_one_rule(&format!(
        "matches: {matches}, backends: [{{provider: openai}}]"
    ))
}

#[test]
fn every_condition_is_read() {
    let translation = run_matches(
        "[{modelPrefix: gpt-4, headers: [{name: X-Tier, value: gold}], path: /v1/chat/completions, promptTokens: {min: 10, max: 900}, hasTools: true, hasImages: false}, {model: fast}]",
    );
    assert_clean(&translation);
    let rule = &translation.configs[&ObjectRef::new("default", "ai-gateway")]
        .routes
        .rules()[0];
    assert_eq!(
        rule.matches,
        [
            Match {
                model: ModelMatch::Prefix("gpt-4".into()),
                headers: vec![("x-tier".into(), "gold".into())],
                path: Some("/v1/chat/completions".into()),
                min_prompt_tokens: Some(10),
                max_prompt_tokens: Some(900),
                has_tools: Some(true),
                has_images: Some(false),
                ..Match::default()
            },
            Match::model(ModelMatch::Exact("fast".into())),
        ]
    );
}

#[test]
fn invalid_conditions_are_refused_with_the_field_at_fault() {
    for (matches, field) in [
        (
            "[{model: a, modelPrefix: b}]",
            "spec.rules[0].matches[0].modelPrefix",
        ),
        (
            r#"[{modelPrefix: ""}]"#,
            "spec.rules[0].matches[0].modelPrefix",
        ),
        (
            r#"[{model: a}, {model: ""}]"#,
            "spec.rules[0].matches[1].model",
        ),
        (
            r#"[{headers: [{name: "bad name", value: x}]}]"#,
            "spec.rules[0].matches[0].headers[0].name",
        ),
        ("[{path: v1/chat}]", "spec.rules[0].matches[0].path"),
        (
            "[{promptTokens: {min: 10, max: 5}}]",
            "spec.rules[0].matches[0].promptTokens",
        ),
    ] {
        let translation = run_matches(matches);
        diagnostic(
            &translation,
            "InvalidMatch",
            &format!("error AIRoute default/chat {field}"),
        );
        assert_eq!(reasons(&translation), ["InvalidMatch"], "{matches}");
    }
}
