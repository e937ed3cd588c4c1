//! JWTProvider resources: key sources, claim mappings, and what is refused.

use std::time::Duration;
use tollgate_config::{KeySource, ObjectRef};

use super::{CONTRACT, assert_clean, run, summaries};

fn jwt_provider(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: tollgate.dev/v1alpha1\nkind: JWTProvider\nmetadata: {{name: {name}, namespace: default}}\nspec: {spec}\n"
    )
}

#[test]
fn providers_translate_with_their_keys_and_claims() {
    let translation = run(&[
        CONTRACT,
        &jwt_provider(
            "sso",
            r#"{issuer: "https://sso.example.com", audiences: [tollgate], jwks: {uri: "https://sso.example.com/jwks.json", refreshInterval: 10m}, claims: {user: email, team: groups}, clockSkew: 5s}"#,
        ),
        &jwt_provider(
            "ci",
            r#"{issuer: "https://ci.example.com", jwks: {inline: '{"keys": []}'}}"#,
        ),
    ]);
    assert_clean(&translation);
    let providers = &translation.configs[&ObjectRef::new("default", "ai-gateway")].jwt_providers;
    let [sso, ci] = &providers[..] else {
        panic!("two providers expected: {providers:?}");
    };
    assert_eq!(sso.name, "default/sso");
    assert_eq!(sso.audiences, ["tollgate"]);
    assert_eq!(
        sso.keys,
        KeySource::Remote {
            url: "https://sso.example.com/jwks.json".into(),
            refresh_interval: Duration::from_secs(600)
        }
    );
    assert_eq!(
        (
            sso.user_claim.as_str(),
            sso.team_claim.as_deref(),
            sso.clock_skew
        ),
        ("email", Some("groups"), Duration::from_secs(5))
    );
    assert_eq!(ci.keys, KeySource::Inline(r#"{"keys": []}"#.into()));
    assert_eq!(
        (ci.user_claim.as_str(), ci.team_claim.as_deref()),
        ("sub", None)
    );
}

#[test]
fn invalid_providers_are_refused() {
    let translation = run(&[
        CONTRACT,
        &jwt_provider(
            "both",
            r#"{issuer: a, jwks: {uri: "https://a/jwks", inline: "{}"}}"#,
        ),
        &jwt_provider("neither", r#"{issuer: b, jwks: {}}"#),
        &jwt_provider("not-url", r#"{issuer: c, jwks: {uri: "ftp://c/jwks"}}"#),
        &jwt_provider("not-jwks", r#"{issuer: d, jwks: {inline: "[1]"}}"#),
        &jwt_provider("first", r#"{issuer: e, jwks: {uri: "https://e/jwks"}}"#),
        &jwt_provider(
            "again",
            r#"{issuer: e, jwks: {uri: "https://e/jwks"}, clockSkew: soon}"#,
        ),
    ]);
    assert_eq!(
        summaries(&translation),
        [
            "error JWTProvider default/both spec.jwks InvalidJWKS",
            "error JWTProvider default/neither spec.jwks InvalidJWKS",
            "error JWTProvider default/not-url spec.jwks.uri InvalidURI",
            "error JWTProvider default/not-jwks spec.jwks.inline InvalidJWKS",
            "error JWTProvider default/again spec.issuer DuplicateIssuer",
            "error JWTProvider default/again spec.clockSkew InvalidDuration",
        ]
    );
}
