//! Looking up Secret values by namespace, name and key.

use std::collections::HashMap;
use tollgate_api::upstream::Secret;

use super::{name_of, namespace_of};

/// Why a Secret value could not be read.
pub(super) enum SecretError {
    /// No Secret of that name in the namespace.
    NotFound,
    /// The Secret has no such key.
    KeyNotFound,
    /// The value is not UTF-8 text.
    NotText,
}

impl SecretError {
    pub(super) fn reason(&self) -> &'static str {
        match self {
            SecretError::NotFound => "SecretNotFound",
            SecretError::KeyNotFound => "SecretKeyNotFound",
            SecretError::NotText => "InvalidSecret",
        }
    }

    pub(super) fn message(&self, namespace: &str, name: &str, key: &str) -> String {
        match self {
            SecretError::NotFound => format!("Secret {namespace}/{name} does not exist"),
            SecretError::KeyNotFound => format!("Secret {namespace}/{name} has no key {key:?}"),
            SecretError::NotText => {
                format!("key {key:?} of Secret {namespace}/{name} is not UTF-8 text")
            }
        }
    }
}

/// Secrets by namespace and name.
pub(super) struct SecretIndex<'a> {
    by_name: HashMap<(&'a str, &'a str), &'a Secret>,
}

impl<'a> SecretIndex<'a> {
    pub(super) fn new(secrets: &'a [Secret]) -> Self {
        let by_name = secrets
            .iter()
            .map(|s| ((namespace_of(&s.metadata), name_of(&s.metadata)), s))
            .collect();
        Self { by_name }
    }

    /// The text value of `key` in Secret `namespace/name`.
    pub(super) fn value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<String, SecretError> {
        let secret = self
            .by_name
            .get(&(namespace, name))
            .ok_or(SecretError::NotFound)?;
        value_of(secret, key)
    }
}

/// The text value of one key of a Secret; `stringData` wins over `data`, as the API server
/// merges them.
pub(super) fn value_of(secret: &Secret, key: &str) -> Result<String, SecretError> {
    if let Some(value) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(value.clone());
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or(SecretError::KeyNotFound)?;
    String::from_utf8(bytes.0.clone()).map_err(|_| SecretError::NotText)
}
