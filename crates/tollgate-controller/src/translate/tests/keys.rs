//! API key Secrets: which Secrets are keys, how they are read, and which are refused.

use tollgate_config::{ApiKeys, Identity, ObjectRef};

use super::{CONTRACT, assert_clean, diagnostic, reasons, run, secret, summaries};
use crate::Translation;

const API_KEY: &str = r#"{tollgate.dev/api-key: "true"}"#;

/// Translates the contract manifest with more Secrets.
fn run_secrets(secrets: &[String]) -> Translation {
    let mut documents = vec![CONTRACT];
    documents.extend(secrets.iter().map(String::as_str));
    run(&documents)
}

/// The API keys of the contract's Gateway.
fn api_keys(translation: &Translation) -> &ApiKeys {
    &translation.configs[&ObjectRef::new("default", "ai-gateway")].api_keys
}

/// The key id a presented key authenticates as.
fn key_id(translation: &Translation, key: &str) -> Option<String> {
    api_keys(translation)
        .authenticate(key)
        .map(|identity| identity.key_id.clone())
}

#[test]
fn keys_are_read_from_base64_data_and_trimmed() {
    let translation = run_secrets(&[
        // "tg-bob-secret-1"
        secret(
            "team-b",
            "bob-key",
            API_KEY,
            "data: {key: dGctYm9iLXNlY3JldC0x}",
        ),
        // "tg-carol-secret\n", as `echo tg-carol-secret | base64` gives it
        secret(
            "default",
            "carol-key",
            API_KEY,
            "data: {key: dGctY2Fyb2wtc2VjcmV0Cg==}",
        ),
        secret(
            "default",
            "dave-key",
            API_KEY,
            r#"stringData: {key: "  tg-dave-secret  "}"#,
        ),
    ]);
    assert_clean(&translation);
    let bob = Identity {
        key_id: "team-b/bob-key".into(),
        team: None,
        user: None,
        expires_at: None,
    };
    assert_eq!(
        api_keys(&translation).authenticate("tg-bob-secret-1"),
        Some(&bob)
    );
    assert_eq!(
        key_id(&translation, "tg-carol-secret").as_deref(),
        Some("default/carol-key")
    );
    assert_eq!(
        key_id(&translation, "tg-dave-secret").as_deref(),
        Some("default/dave-key")
    );
    assert_eq!(api_keys(&translation).len(), 4);
}

#[test]
fn only_secrets_labelled_true_are_api_keys() {
    let translation = run_secrets(&[
        secret(
            "default",
            "labelled-false",
            r#"{tollgate.dev/api-key: "false"}"#,
            "stringData: {key: tg-false-secret}",
        ),
        secret(
            "default",
            "unlabelled",
            "{}",
            "stringData: {key: tg-unlabelled-secret}",
        ),
        secret(
            "default",
            "no-key-at-all",
            "{}",
            "stringData: {token: whatever}",
        ),
    ]);
    assert_clean(&translation);
    assert_eq!(api_keys(&translation).len(), 1);
    assert_eq!(key_id(&translation, "tg-false-secret"), None);
    assert_eq!(key_id(&translation, "tg-unlabelled-secret"), None);
}

#[test]
fn a_duplicate_key_stays_with_the_first_secret() {
    let translation = run_secrets(&[
        secret(
            "team-b",
            "copy-of-alice",
            API_KEY,
            "stringData: {key: tg-alice-secret}",
        ),
        secret(
            "default",
            "another-copy",
            API_KEY,
            "data: {key: dGctYWxpY2Utc2VjcmV0}",
        ),
    ]);
    assert_eq!(
        summaries(&translation),
        [
            "error Secret team-b/copy-of-alice data.key DuplicateApiKey",
            "error Secret default/another-copy data.key DuplicateApiKey",
        ]
    );
    assert!(
        translation.diagnostics[0]
            .message
            .contains("already held by Secret default/alice-key"),
        "{}",
        translation.diagnostics[0]
    );
    assert_eq!(
        key_id(&translation, "tg-alice-secret").as_deref(),
        Some("default/alice-key")
    );
    assert_eq!(api_keys(&translation).len(), 1);
}

#[test]
fn short_keys_are_refused() {
    for key in ["\"\"", "short", "\"1234567\"", "\"  short  \""] {
        let translation = run_secrets(&[secret(
            "default",
            "weak-key",
            API_KEY,
            &format!("stringData: {{key: {key}}}"),
        )]);
        let found = diagnostic(
            &translation,
            "WeakApiKey",
            "error Secret default/weak-key data.key",
        );
        assert!(found.message.contains("at least 8 characters"), "{found}");
        assert_eq!(reasons(&translation), ["WeakApiKey"]);
        assert_eq!(api_keys(&translation).len(), 1, "{key}");
    }
    let translation = run_secrets(&[secret(
        "default",
        "eight",
        API_KEY,
        "stringData: {key: \"12345678\"}",
    )]);
    assert_eq!(
        key_id(&translation, "12345678").as_deref(),
        Some("default/eight")
    );
}

#[test]
fn unreadable_keys_are_refused() {
    let cases = [
        (
            "stringData: {token: tg-erin-secret}",
            "SecretKeyNotFound",
            "has neither a \"key\" key",
        ),
        ("data: {key: //4=}", "InvalidSecret", "not UTF-8 text"),
    ];
    for (data, reason, message) in cases {
        let translation = run_secrets(&[secret("default", "erin-key", API_KEY, data)]);
        let found = diagnostic(
            &translation,
            reason,
            "error Secret default/erin-key data.key",
        );
        assert!(found.message.contains(message), "{found}");
        assert_eq!(reasons(&translation), [reason]);
        assert_eq!(api_keys(&translation).len(), 1);
    }
}

#[test]
fn keys_may_be_stored_as_digests_with_an_expiry() {
    // What `printf %s tg-dave-secret | sha256sum` prints.
    let real = {
        use sha2::{Digest, Sha256};
        Sha256::digest(b"tg-dave-secret")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let translation = run_secrets(&[
        secret(
            "default",
            "dave-key",
            API_KEY,
            &format!("stringData: {{sha256: {real}}}"),
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: erin-key\n  namespace: default\n  labels: {API_KEY}\n  annotations: {{tollgate.dev/api-key-sha256: \"{}\", tollgate.dev/expires-at: \"2027-01-31T00:00:00Z\"}}\n",
            real.to_uppercase()
        ),
    ]);
    // Both Secrets hold the same digest (hex in either case): the second is a duplicate.
    assert_eq!(reasons(&translation), ["DuplicateApiKey"]);
    assert_eq!(
        key_id(&translation, "tg-dave-secret").as_deref(),
        Some("default/dave-key")
    );
    let translation = run_secrets(&[format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: erin-key\n  namespace: default\n  labels: {API_KEY}\n  annotations: {{tollgate.dev/api-key-sha256: \"{real}\", tollgate.dev/expires-at: \"2027-01-31T00:00:00Z\"}}\n"
    )]);
    assert_clean(&translation);
    let identity = api_keys(&translation)
        .authenticate("tg-dave-secret")
        .unwrap();
    assert_eq!(identity.key_id, "default/erin-key");
    assert_eq!(identity.expires_at, Some(1_801_353_600));
}

#[test]
fn bad_digests_and_expiries_are_refused() {
    let translation = run_secrets(&[
        secret("default", "short", API_KEY, "stringData: {sha256: abc}"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: late\n  namespace: default\n  labels: {API_KEY}\n  annotations: {{tollgate.dev/expires-at: next-week}}\nstringData: {{key: tg-late-secret}}\n"
        ),
    ]);
    assert_eq!(
        summaries(&translation),
        [
            "error Secret default/short data.sha256 InvalidDigest",
            "error Secret default/late metadata.annotations[tollgate.dev/expires-at] InvalidExpiry",
        ]
    );
}
