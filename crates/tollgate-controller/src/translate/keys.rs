//! API key Secrets (labelled `tollgate.dev/api-key: "true"`) → [`ApiKeys`]. A Secret holds the
//! key in its `key` data field, or only the key's SHA-256 digest (hex) in its `sha256` field
//! or its `tollgate.dev/api-key-sha256` annotation; `tollgate.dev/expires-at` sets an expiry.

use jiff::Timestamp;
use std::collections::BTreeMap;
use tollgate_api::upstream::Secret;
use tollgate_api::{
    API_KEY_LABEL, API_KEY_SHA256_ANNOTATION, EXPIRES_AT_ANNOTATION, TEAM_LABEL, USER_LABEL,
};
use tollgate_config::{ApiKeys, Identity};

use super::secrets::{SecretError, value_of};
use super::{name_of, namespace_of};
use crate::Diagnostic;

/// The data key holding the API key's value.
const KEY_FIELD: &str = "key";
/// The data key holding the API key's SHA-256 digest, in hex.
const DIGEST_FIELD: &str = "sha256";

/// A Secret's key, as the plaintext or as its digest.
enum Stored {
    Plain(String),
    Digest([u8; 32]),
}

pub(super) fn translate_all(secrets: &[Secret], diagnostics: &mut Vec<Diagnostic>) -> ApiKeys {
    let mut keys = ApiKeys::default();
    let labelled = secrets
        .iter()
        .filter(|s| entry(&s.metadata.labels, API_KEY_LABEL).is_some_and(|v| v == "true"));
    for secret in labelled {
        let (namespace, name) = (namespace_of(&secret.metadata), name_of(&secret.metadata));
        let error = |field: &str, reason: &'static str, message: String| {
            Diagnostic::error("Secret", namespace, name, field, reason, message)
        };
        let annotation =
            |key: &str| entry(&secret.metadata.annotations, key).map(|v| v.trim().to_string());
        let label = |key: &str| entry(&secret.metadata.labels, key).cloned();
        let stored = match stored_key(secret, annotation(API_KEY_SHA256_ANNOTATION)) {
            Ok(stored) => stored,
            Err((field, reason, message)) => {
                diagnostics.push(error(&field, reason, message));
                continue;
            }
        };
        let expires_at = match annotation(EXPIRES_AT_ANNOTATION) {
            None => None,
            Some(text) => match text.parse::<Timestamp>() {
                Ok(at) => Some(at.as_second()),
                Err(_) => {
                    diagnostics.push(error(
                        &format!("metadata.annotations[{EXPIRES_AT_ANNOTATION}]"),
                        "InvalidExpiry",
                        format!("`{text}` is not an RFC 3339 time such as 2027-01-31T00:00:00Z"),
                    ));
                    continue;
                }
            },
        };
        let identity = Identity {
            key_id: format!("{namespace}/{name}"),
            team: label(TEAM_LABEL),
            user: label(USER_LABEL),
            expires_at,
        };
        let inserted = match stored {
            Stored::Plain(value) => keys.insert(&value, identity),
            Stored::Digest(digest) => keys.insert_digest(digest, identity),
        };
        if let Err(previous) = inserted {
            diagnostics.push(error(
                &format!("data.{KEY_FIELD}"),
                "DuplicateApiKey",
                format!(
                    "the same key is already held by Secret {}; every API key must be unique",
                    previous.key_id
                ),
            ));
        }
    }
    keys
}

type FieldError = (String, &'static str, String);

/// One entry of a Secret's labels or annotations.
fn entry<'a>(map: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a String> {
    map.as_ref().and_then(|m| m.get(key))
}

/// The key a Secret holds: its `key` field, else its digest from the `sha256` field or the
/// annotation.
fn stored_key(secret: &Secret, annotated_digest: Option<String>) -> Result<Stored, FieldError> {
    let (namespace, name) = (namespace_of(&secret.metadata), name_of(&secret.metadata));
    match value_of(secret, KEY_FIELD) {
        Ok(value) => {
            let value = value.trim();
            if value.len() < 8 {
                return Err((
                    format!("data.{KEY_FIELD}"),
                    "WeakApiKey",
                    "an API key must be at least 8 characters long".into(),
                ));
            }
            return Ok(Stored::Plain(value.to_string()));
        }
        Err(SecretError::KeyNotFound) => {}
        Err(e) => {
            return Err((
                format!("data.{KEY_FIELD}"),
                e.reason(),
                e.message(namespace, name, KEY_FIELD),
            ));
        }
    }
    let (field, hex) = match (value_of(secret, DIGEST_FIELD), annotated_digest) {
        (Ok(hex), _) => (format!("data.{DIGEST_FIELD}"), hex),
        (Err(_), Some(hex)) => (
            format!("metadata.annotations[{API_KEY_SHA256_ANNOTATION}]"),
            hex,
        ),
        (Err(_), None) => {
            return Err((
                format!("data.{KEY_FIELD}"),
                SecretError::KeyNotFound.reason(),
                format!(
                    "Secret {namespace}/{name} has neither a {KEY_FIELD:?} key, a {DIGEST_FIELD:?} digest, nor the {API_KEY_SHA256_ANNOTATION} annotation"
                ),
            ));
        }
    };
    parse_digest(hex.trim()).map(Stored::Digest).ok_or_else(|| {
        (
            field,
            "InvalidDigest",
            "a key digest must be 64 hex digits, as `printf %s \"$KEY\" | sha256sum` prints".into(),
        )
    })
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}
