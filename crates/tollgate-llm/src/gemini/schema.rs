//! JSON Schema, as callers write tool parameters and structured output, turned into the subset
//! of OpenAPI 3.0 that Gemini's `Schema` object accepts (it answers 400 to keywords outside it).

use serde_json::{Map, Value};

use super::UPSTREAM;
use crate::chat::TranslateError;

/// Keywords Gemini's `Schema` takes with the same name and meaning as JSON Schema.
const KEPT: &[&str] = &[
    "title",
    "description",
    "format",
    "nullable",
    "default",
    "example",
    "required",
    "propertyOrdering",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
];

/// The most subschemas a conversion writes, so that definitions referring to one another many
/// times over cannot make an inlined schema explode.
const MAX_NODES: usize = 10_000;

/// The Gemini form of `schema`; `path` names it in errors, as in `tools[0].parameters`.
///
/// Local `$ref`s are inlined (a recursive one is refused: Gemini has no references), `type`
/// arrays become `nullable` or `anyOf`, `oneOf` becomes `anyOf`, `const` becomes a one-value
/// `enum`, enum values become strings, a single `allOf` member is merged; keywords Gemini lacks
/// (`$schema`, `$id`, `$defs`, `additionalProperties`, `exclusiveMinimum`, `multipleOf`,
/// `uniqueItems`, `not`, `if`, `examples`...) are dropped.
pub(super) fn convert(schema: &Value, path: &str) -> Result<Value, TranslateError> {
    let mut converter = Converter {
        root: schema,
        expanding: vec!["#"],
        nodes: 0,
    };
    converter.schema(schema, path)
}

/// The state of one conversion: the schema `$ref`s point into and the references being
/// inlined, to catch recursion.
struct Converter<'a> {
    root: &'a Value,
    expanding: Vec<&'a str>,
    nodes: usize,
}

/// What a schema object's keywords become, before its alternatives and merged members are
/// folded in.
#[derive(Default)]
struct Pieces {
    out: Map<String, Value>,
    alternatives: Vec<Value>,
    merged: Vec<Value>,
    nullable: bool,
}

impl<'a> Converter<'a> {
    fn schema(&mut self, schema: &'a Value, path: &str) -> Result<Value, TranslateError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(unsupported(format!(
                "{path} (more than {MAX_NODES} subschemas once `$ref`s are inlined)"
            )));
        }
        let Value::Object(object) = schema else {
            // `true` and other non-object schemas constrain nothing.
            return Ok(Value::Object(Map::new()));
        };
        let mut pieces = Pieces::default();
        for (key, value) in object {
            self.keyword(key, value, path, &mut pieces)?;
        }
        Ok(pieces.fold())
    }

    fn keyword(
        &mut self,
        key: &str,
        value: &'a Value,
        path: &str,
        pieces: &mut Pieces,
    ) -> Result<(), TranslateError> {
        match key {
            "type" => type_of(value, pieces),
            "properties" => {
                if let Value::Object(properties) = value {
                    let converted = self.properties(properties, path)?;
                    pieces.out.insert("properties".into(), converted);
                }
            }
            "items" => self.items(value, path, pieces)?,
            "anyOf" | "oneOf" => {
                for (i, alternative) in value.as_array().into_iter().flatten().enumerate() {
                    let converted = self.schema(alternative, &format!("{path}.{key}[{i}]"))?;
                    pieces.alternatives.push(converted);
                }
            }
            "allOf" => self.all_of(value, path, pieces)?,
            "$ref" => {
                let target = self.reference(value, path)?;
                pieces.merged.push(target);
            }
            "enum" => {
                if let Value::Array(values) = value {
                    let values = enum_of(values, pieces);
                    pieces.out.insert("enum".into(), values);
                }
            }
            "const" => {
                let values = enum_of(std::slice::from_ref(value), pieces);
                pieces.out.entry("enum").or_insert(values);
            }
            _ if KEPT.contains(&key) => {
                pieces.out.insert(key.into(), value.clone());
            }
            _ => {}
        }
        Ok(())
    }

    fn properties(
        &mut self,
        properties: &'a Map<String, Value>,
        path: &str,
    ) -> Result<Value, TranslateError> {
        let mut converted = Map::new();
        for (name, property) in properties {
            let property = self.schema(property, &format!("{path}.properties.{name}"))?;
            converted.insert(name.clone(), property);
        }
        Ok(Value::Object(converted))
    }

    fn items(
        &mut self,
        items: &'a Value,
        path: &str,
        pieces: &mut Pieces,
    ) -> Result<(), TranslateError> {
        match items {
            Value::Object(_) => {
                let converted = self.schema(items, &format!("{path}.items"))?;
                pieces.out.insert("items".into(), converted);
                Ok(())
            }
            Value::Array(_) => Err(unsupported(format!("{path}.items (a tuple)"))),
            _ => Ok(()),
        }
    }

    fn all_of(
        &mut self,
        members: &'a Value,
        path: &str,
        pieces: &mut Pieces,
    ) -> Result<(), TranslateError> {
        match members.as_array().map(Vec::as_slice) {
            Some([member]) => {
                let converted = self.schema(member, &format!("{path}.allOf[0]"))?;
                pieces.merged.push(converted);
                Ok(())
            }
            Some([_, _, ..]) => Err(unsupported(format!("{path}.allOf"))),
            _ => Ok(()),
        }
    }

    /// The converted target of a local `$ref` (`#/$defs/...`, `#/definitions/...`, any
    /// pointer into the schema).
    fn reference(&mut self, reference: &'a Value, path: &str) -> Result<Value, TranslateError> {
        let field = format!("{path}.$ref");
        let Some(reference) = reference.as_str() else {
            return Err(TranslateError::Invalid(format!(
                "`{field}` is not a string"
            )));
        };
        if self.expanding.contains(&reference) {
            return Err(unsupported(format!("{field} (a recursive reference)")));
        }
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| self.root.pointer(pointer))
            .ok_or_else(|| {
                TranslateError::Invalid(format!(
                    "`{field}` refers to `{reference}`, which the schema does not define"
                ))
            })?;
        self.expanding.push(reference);
        let converted = self.schema(target, &field);
        self.expanding.pop();
        converted
    }
}

impl Pieces {
    /// The schema object: its own keywords, then what `$ref` and `allOf` brought (the
    /// schema's own keywords win), then its `anyOf` alternatives, with a `null` alternative
    /// turned into `nullable` and a lone remaining one merged in.
    fn fold(mut self) -> Value {
        for member in std::mem::take(&mut self.merged) {
            self.merge(member);
        }
        let mut alternatives = std::mem::take(&mut self.alternatives);
        alternatives.retain(|alternative| {
            let is_null = alternative.get("type").and_then(Value::as_str) == Some("NULL")
                && alternative.as_object().is_some_and(|o| o.len() == 1);
            self.nullable |= is_null;
            !is_null
        });
        match alternatives.len() {
            0 => {}
            1 => {
                if let Some(alternative) = alternatives.pop() {
                    self.merge(alternative);
                }
            }
            _ => {
                self.out.insert("anyOf".into(), Value::Array(alternatives));
            }
        }
        if self.nullable {
            self.out.insert("nullable".into(), Value::Bool(true));
        }
        Value::Object(self.out)
    }

    fn merge(&mut self, member: Value) {
        if let Value::Object(member) = member {
            for (key, value) in member {
                self.out.entry(key).or_insert(value);
            }
        }
    }
}

/// `type` as Gemini spells it (upper case), one type per schema: `["string", "null"]` is a
/// nullable string, several non-null types become `anyOf` alternatives.
fn type_of(value: &Value, pieces: &mut Pieces) {
    let types: Vec<&str> = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let mut non_null: Vec<String> = types
        .iter()
        .filter(|name| **name != "null")
        .map(|name| name.to_ascii_uppercase())
        .collect();
    if non_null.len() < types.len() {
        if types.len() == 1 {
            pieces.out.insert("type".into(), Value::from("NULL"));
            return;
        }
        pieces.nullable = true;
    }
    if non_null.len() == 1 {
        pieces
            .out
            .insert("type".into(), Value::from(non_null.remove(0)));
    } else {
        let alternatives = non_null
            .into_iter()
            .map(|name| Value::Object(Map::from_iter([("type".into(), Value::from(name))])));
        pieces.alternatives.extend(alternatives);
    }
}

/// Enum values as Gemini takes them, strings only (`1` becomes `"1"`); `null` among them makes
/// the schema nullable instead.
fn enum_of(values: &[Value], pieces: &mut Pieces) -> Value {
    let strings = values
        .iter()
        .filter(|value| {
            pieces.nullable |= value.is_null();
            !value.is_null()
        })
        .map(|value| match value {
            Value::String(text) => Value::String(text.clone()),
            other => Value::String(other.to_string()),
        })
        .collect();
    Value::Array(strings)
}

fn unsupported(field: String) -> TranslateError {
    TranslateError::Unsupported {
        field,
        upstream: UPSTREAM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gemini(schema: Value) -> Value {
        convert(&schema, "tools[0].parameters").unwrap()
    }

    #[test]
    fn keywords_outside_the_subset_are_dropped_and_types_upper_cased() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "count": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9},
                "site": {"type": "string", "format": "uri", "description": "where"}
            },
            "required": ["count"]
        });
        assert_eq!(
            gemini(schema),
            json!({
                "type": "OBJECT",
                "properties": {
                    "count": {"type": "INTEGER", "maximum": 9},
                    "site": {"type": "STRING", "format": "uri", "description": "where"}
                },
                "required": ["count"]
            })
        );
    }

    #[test]
    fn nullable_forms_become_nullable() {
        assert_eq!(
            gemini(json!({"type": ["string", "null"]})),
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            gemini(json!({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null})),
            json!({"type": "INTEGER", "nullable": true, "default": null})
        );
        assert_eq!(
            gemini(json!({"enum": ["a", null, 2]})),
            json!({"enum": ["a", "2"], "nullable": true})
        );
        assert_eq!(
            gemini(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
        );
    }

    #[test]
    fn refs_are_inlined_and_their_siblings_win() {
        let schema = json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "home address"},
                "work": {"allOf": [{"$ref": "#/definitions/Address"}]},
                "kind": {"const": "person"}
            },
            "$defs": {"Address": {"type": "object", "description": "an address",
                "properties": {"city": {"type": "string"}}}},
            "definitions": {"Address": {"type": "object",
                "properties": {"zip": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}}
        });
        assert_eq!(
            gemini(schema),
            json!({
                "type": "OBJECT",
                "properties": {
                    "home": {"type": "OBJECT", "description": "home address",
                        "properties": {"city": {"type": "STRING"}}},
                    "work": {"type": "OBJECT", "properties": {"zip": {"anyOf": [
                        {"type": "STRING"}, {"type": "INTEGER"}]}}},
                    "kind": {"enum": ["person"]}
                }
            })
        );
    }

    #[test]
    fn what_gemini_cannot_express_is_refused_by_name() {
        let recursive = json!({
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            "$defs": {"Node": {"type": "object",
                "properties": {"next": {"$ref": "#/$defs/Node"}}}}
        });
        assert_eq!(
            convert(&recursive, "tools[0].parameters"),
            Err(TranslateError::Unsupported {
                field: "tools[0].parameters.properties.children.items.$ref.properties.next.$ref \
                        (a recursive reference)"
                    .into(),
                upstream: "Gemini",
            })
        );
        assert!(matches!(
            convert(&json!({"properties": {"x": {"$ref": "#"}}}), "p"),
            Err(TranslateError::Unsupported { .. })
        ));
        assert!(matches!(
            convert(&json!({"allOf": [{"type": "object"}, {"required": ["a"]}]}), "p"),
            Err(TranslateError::Unsupported { field, .. }) if field == "p.allOf"
        ));
        assert!(matches!(
            convert(&json!({"$ref": "#/$defs/Missing"}), "p"),
            Err(TranslateError::Invalid(message)) if message.contains("#/$defs/Missing")
        ));
    }

    #[test]
    fn definitions_that_multiply_are_cut_off() {
        let mut defs = Map::new();
        for level in 0..20 {
            let next = json!({"$ref": format!("#/$defs/L{}", level + 1)});
            defs.insert(
                format!("L{level}"),
                json!({"type": "object", "properties": {"a": next, "b": next}}),
            );
        }
        defs.insert("L20".into(), json!({"type": "string"}));
        let schema = json!({"$ref": "#/$defs/L0", "$defs": defs});
        assert!(matches!(
            convert(&schema, "p"),
            Err(TranslateError::Unsupported { .. })
        ));
    }
}
