//! Reading a caller's JSON body field by field, so that every error names the field it is
//! about (`messages[2].content[0].source.data`), which serde's derived errors cannot do for
//! the string-or-array unions of Anthropic's request.

use std::fmt;

use serde_json::{Map, Value};

use crate::chat::TranslateError;

/// A JSON object.
pub(super) type Object = Map<String, Value>;

/// Where a value sits in the body. Built on the stack as the walk goes down and only turned
/// into text when an error needs it.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    /// The body itself.
    Root,
    /// A field of an object.
    Key(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of field `key` below this one.
    pub(super) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// The path of element `index` below this one.
    pub(super) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("body"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// An `Invalid` error saying that the value at `path` is not what `expected` describes.
pub(super) fn invalid(path: Path<'_>, expected: &str) -> TranslateError {
    TranslateError::Invalid(format!("`{path}` {expected}"))
}

/// The value as an object.
pub(super) fn object<'v>(value: &'v Value, path: Path<'_>) -> Result<&'v Object, TranslateError> {
    value
        .as_object()
        .ok_or_else(|| invalid(path, "must be an object"))
}

/// The value as an array.
pub(super) fn array<'v>(value: &'v Value, path: Path<'_>) -> Result<&'v [Value], TranslateError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(path, "must be an array"))
}

/// The value as a string.
pub(super) fn string<'v>(value: &'v Value, path: Path<'_>) -> Result<&'v str, TranslateError> {
    value
        .as_str()
        .ok_or_else(|| invalid(path, "must be a string"))
}

/// Field `key` of `object`, absent when missing or `null`.
pub(super) fn field<'v>(object: &'v Object, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// Field `key` of the object at `path`, which must be there.
pub(super) fn required<'v>(
    object: &'v Object,
    key: &str,
    path: Path<'_>,
) -> Result<&'v Value, TranslateError> {
    field(object, key).ok_or_else(|| invalid(path.key(key), "is required"))
}

/// Field `key` of the object at `path` as a string, which must be there.
pub(super) fn required_str<'v>(
    object: &'v Object,
    key: &str,
    path: Path<'_>,
) -> Result<&'v str, TranslateError> {
    string(required(object, key, path)?, path.key(key))
}

/// Field `key` of the object at `path` as a string, when present.
pub(super) fn optional_str<'v>(
    object: &'v Object,
    key: &str,
    path: Path<'_>,
) -> Result<Option<&'v str>, TranslateError> {
    field(object, key)
        .map(|value| string(value, path.key(key)))
        .transpose()
}

/// Field `key` of the object at `path` as a number, when present.
pub(super) fn optional_f64(
    object: &Object,
    key: &str,
    path: Path<'_>,
) -> Result<Option<f64>, TranslateError> {
    field(object, key)
        .map(|value| {
            value
                .as_f64()
                .ok_or_else(|| invalid(path.key(key), "must be a number"))
        })
        .transpose()
}

/// Field `key` of the object at `path` as a boolean, when present.
pub(super) fn optional_bool(
    object: &Object,
    key: &str,
    path: Path<'_>,
) -> Result<Option<bool>, TranslateError> {
    field(object, key)
        .map(|value| {
            value
                .as_bool()
                .ok_or_else(|| invalid(path.key(key), "must be a boolean"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_fields_they_name() {
        let root = Path::Root;
        let messages = root.key("messages");
        let second = messages.index(2);
        let source = second.key("source");
        assert_eq!(source.to_string(), "messages[2].source");
        assert_eq!(root.to_string(), "body");
    }

    #[test]
    fn null_fields_count_as_absent() {
        let value = serde_json::json!({"a": null, "b": 1});
        let object = value.as_object().unwrap();
        assert!(field(object, "a").is_none());
        assert_eq!(
            required(object, "a", Path::Root),
            Err(TranslateError::Invalid("`a` is required".into()))
        );
        assert_eq!(optional_f64(object, "b", Path::Root), Ok(Some(1.0)));
    }
}
