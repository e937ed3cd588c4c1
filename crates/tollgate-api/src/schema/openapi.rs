//! Turns a CRD's `openAPIV3Schema` into a JSON Schema (draft 4) that judges a document the way
//! the API server does on `kubectl apply`.
//!
//! OpenAPI v3.0 schemas are almost draft 4; the differences that matter are Kubernetes'
//! extensions and its structural-schema rules:
//! - `nullable: true` admits `null` (added to `type`, and to `enum` when there is one);
//! - `x-kubernetes-int-or-string: true` admits an integer or a string;
//! - an object admits only its declared properties (the API server refuses unknown fields
//!   under strict field validation, kubectl's default), unless it has
//!   `x-kubernetes-preserve-unknown-fields: true` or an `additionalProperties` schema;
//! - every other `x-kubernetes-*` key (list types, CEL validations, ...) is dropped, so CEL
//!   rules are not checked here.

use serde_json::{Map, Value, json};

/// Keywords whose value is one schema.
const SCHEMA_KEYWORDS: [&str; 3] = ["items", "additionalProperties", "not"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: [&str; 3] = ["allOf", "anyOf", "oneOf"];

/// The JSON Schema equivalent of one OpenAPI v3 schema node and everything under it.
pub(super) fn to_json_schema(openapi: &Value) -> Value {
    let Value::Object(node) = openapi else {
        return openapi.clone();
    };
    let mut out = Map::new();
    for (key, value) in node {
        if key.starts_with("x-kubernetes-") || key == "nullable" {
            continue;
        }
        let converted = if key == "properties" {
            convert_each_value(value)
        } else if SCHEMA_KEYWORDS.contains(&key.as_str()) {
            to_json_schema(value)
        } else if SCHEMA_LIST_KEYWORDS.contains(&key.as_str()) {
            convert_each_item(value)
        } else {
            value.clone()
        };
        out.insert(key.clone(), converted);
    }
    if flag(node, "x-kubernetes-int-or-string") {
        out.remove("anyOf");
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if is_closed_object(node) {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if flag(node, "nullable") {
        admit_null(&mut out);
    }
    Value::Object(out)
}

/// Converts the schemas that are the values of a map (`properties`).
fn convert_each_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, schema)| (name.clone(), to_json_schema(schema)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Converts the schemas of a list (`anyOf`, ...).
fn convert_each_item(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Whether an extension flag is set to `true`.
fn flag(node: &Map<String, Value>, key: &str) -> bool {
    node.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Whether fields not declared in the node must be refused: an object without
/// `additionalProperties` and without `x-kubernetes-preserve-unknown-fields`.
fn is_closed_object(node: &Map<String, Value>) -> bool {
    let is_object = node.get("type").and_then(Value::as_str) == Some("object")
        || node.contains_key("properties");
    is_object
        && !node.contains_key("additionalProperties")
        && !flag(node, "x-kubernetes-preserve-unknown-fields")
}

/// Lets a converted node accept `null` besides what it accepted.
fn admit_null(node: &mut Map<String, Value>) {
    match node.get_mut("type") {
        Some(Value::String(single)) => {
            let single = std::mem::take(single);
            node.insert("type".into(), json!([single, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = node.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_admits_null_in_type_and_enum() {
        let schema = json!({"type": "string", "enum": ["A", "B"], "nullable": true});
        assert_eq!(
            to_json_schema(&schema),
            json!({"type": ["string", "null"], "enum": ["A", "B", null]})
        );
    }

    #[test]
    fn int_or_string_replaces_its_any_of() {
        let schema = json!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        });
        assert_eq!(
            to_json_schema(&schema),
            json!({"type": ["integer", "string"]})
        );
    }

    #[test]
    fn objects_are_closed_unless_they_preserve_unknown_fields() {
        let schema = json!({
            "type": "object",
            "properties": {
                "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
                "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        });
        let converted = to_json_schema(&schema);
        assert_eq!(converted["additionalProperties"], json!(false));
        assert_eq!(
            converted["properties"]["closed"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(converted["properties"]["open"], json!({"type": "object"}));
        assert_eq!(
            converted["properties"]["map"]["additionalProperties"],
            json!({"type": "string"})
        );
    }

    #[test]
    fn other_kubernetes_extensions_are_dropped_and_data_is_kept() {
        let schema = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "default": [{"nullable": true}],
            "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self != ''"}]},
        });
        assert_eq!(
            to_json_schema(&schema),
            json!({"type": "array", "default": [{"nullable": true}], "items": {"type": "string"}})
        );
    }
}
