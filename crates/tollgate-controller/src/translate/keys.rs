//! API key Secrets (labelled `tollgate.dev/api-key: "true"`) → [`ApiKeys`].

use tollgate_api::upstream::Secret;
use tollgate_api::{API_KEY_LABEL, TEAM_LABEL, USER_LABEL};
use tollgate_config::{ApiKeys, Identity};

use super::secrets::value_of;
use super::{name_of, namespace_of};
use crate::Diagnostic;

/// The data key holding the API key's value.
const KEY_FIELD: &str = "key";

pub(super) fn translate_all(secrets: &[Secret], diagnostics: &mut Vec<Diagnostic>) -> ApiKeys {
    let mut keys = ApiKeys::default();
    let labelled = secrets.iter().filter(|s| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(API_KEY_LABEL))
            .is_some_and(|v| v == "true")
    });
    for secret in labelled {
        let (namespace, name) = (namespace_of(&secret.metadata), name_of(&secret.metadata));
        let error = |field: &str, reason: &'static str, message: String| {
            Diagnostic::error("Secret", namespace, name, field, reason, message)
        };
        let value = match value_of(secret, KEY_FIELD) {
            Ok(value) => value,
            Err(e) => {
                diagnostics.push(error(
                    &format!("data.{KEY_FIELD}"),
                    e.reason(),
                    e.message(namespace, name, KEY_FIELD),
                ));
                continue;
            }
        };
        let value = value.trim();
        if value.len() < 8 {
            diagnostics.push(error(
                &format!("data.{KEY_FIELD}"),
                "WeakApiKey",
                "an API key must be at least 8 characters long".into(),
            ));
            continue;
        }
        let label = |key: &str| {
            secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .cloned()
        };
        let identity = Identity {
            key_id: format!("{namespace}/{name}"),
            team: label(TEAM_LABEL),
            user: label(USER_LABEL),
        };
        if let Err(previous) = keys.insert(value, identity) {
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
