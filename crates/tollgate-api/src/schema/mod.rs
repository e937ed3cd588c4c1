//! Checks manifests against the CRD schemas generated from these types, before they reach a
//! cluster: what `kubectl apply` would refuse (a wrong type, a missing required field, an
//! unknown enum value or field) is found by a test or a linter instead.
//!
//! Each served version of each CRD becomes a JSON Schema (see [`openapi`]) compiled once;
//! [`SchemaValidator::validate`] then checks any document whose `apiVersion` is in one of the
//! CRDs' groups and ignores the others (Secrets, Gateways, ...). CEL rules
//! (`x-kubernetes-validations`) are not evaluated.

mod openapi;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jsonschema::paths::{Location, LocationSegment};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

/// A CRD whose schema cannot be turned into a validator: a bug in the generated schema.
#[derive(Debug, thiserror::Error)]
#[error("the schema of {kind} {version} is not a valid JSON Schema: {reason}")]
pub struct SchemaError {
    /// The CRD's kind.
    kind: String,
    /// The CRD version whose schema failed.
    version: String,
    /// What the JSON Schema compiler said.
    reason: String,
}

/// One way a document breaks its CRD's schema, located well enough to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where the document came from, as the caller named it (`examples/x.yaml#2`).
    pub source: String,
    /// The document's kind.
    pub kind: String,
    /// The document's `namespace/name` (or `name`), empty when it has none.
    pub name: String,
    /// The offending field, as a Kubernetes field path (`spec.models[0].pricing`); empty for
    /// the document itself.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.source, self.kind, self.name)?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Compiled schemas of a set of CRDs, keyed by `apiVersion` and kind.
pub struct SchemaValidator {
    /// The compiled schema of each served `(group/version, kind)`.
    validators: BTreeMap<(String, String), jsonschema::Validator>,
    /// The API groups the CRDs define: documents in them must match a known kind and version.
    groups: BTreeSet<String>,
}

impl fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("kinds", &self.validators.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchemaValidator {
    /// A validator for Tollgate's own resources, from the CRDs `tollgate crds` prints.
    pub fn for_tollgate() -> Result<Self, SchemaError> {
        Self::from_definitions(&crate::crd::definitions())
    }

    /// A validator for the served versions of these CRDs.
    pub fn from_definitions(crds: &[CustomResourceDefinition]) -> Result<Self, SchemaError> {
        let mut validators = BTreeMap::new();
        let mut groups = BTreeSet::new();
        for crd in crds {
            groups.insert(crd.spec.group.clone());
            let kind = &crd.spec.names.kind;
            for version in crd.spec.versions.iter().filter(|v| v.served) {
                let Some(schema) = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                else {
                    continue;
                };
                let error = |reason: String| SchemaError {
                    kind: kind.clone(),
                    version: version.name.clone(),
                    reason,
                };
                let openapi = serde_json::to_value(schema).map_err(|e| error(e.to_string()))?;
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .should_validate_formats(true)
                    .build(&document_schema(&openapi))
                    .map_err(|e| error(e.to_string()))?;
                let api_version = format!("{}/{}", crd.spec.group, version.name);
                validators.insert((api_version, kind.clone()), validator);
            }
        }
        Ok(Self { validators, groups })
    }

    /// Whether `document` belongs to one of the CRDs' groups, and so is checked by
    /// [`SchemaValidator::validate`].
    pub fn covers(&self, document: &Value) -> bool {
        let api_version = document["apiVersion"].as_str().unwrap_or_default();
        api_version
            .split_once('/')
            .is_some_and(|(group, _)| self.groups.contains(group))
    }

    /// Everything wrong with `document` by its CRD's schema; empty when it is valid or when it
    /// is not in one of the CRDs' groups. `source` names the document in the violations.
    pub fn validate(&self, source: &str, document: &Value) -> Vec<Violation> {
        if !self.covers(document) {
            return Vec::new();
        }
        let api_version = document["apiVersion"].as_str().unwrap_or_default();
        let kind = document["kind"].as_str().unwrap_or_default();
        let violation = |path: String, message: String| Violation {
            source: source.to_owned(),
            kind: kind.to_owned(),
            name: display_name(document),
            path,
            message,
        };
        let Some(validator) = self
            .validators
            .get(&(api_version.to_owned(), kind.to_owned()))
        else {
            let served: Vec<String> = self
                .validators
                .keys()
                .map(|(version, kind)| format!("{version} {kind}"))
                .collect();
            return vec![violation(
                String::new(),
                format!(
                    "no CRD serves kind {kind:?} in {api_version}; known: {}",
                    served.join(", ")
                ),
            )];
        };
        validator
            .iter_errors(document)
            .map(|error| violation(field_path(error.instance_path()), error.to_string()))
            .collect()
    }
}

/// The schema of a whole document: the CRD's, plus the fields every object has, which CRDs
/// leave out of `openAPIV3Schema`.
fn document_schema(openapi: &Value) -> Value {
    let mut schema = openapi::to_json_schema(openapi);
    let object = schema
        .as_object_mut()
        .expect("a CRD's openAPIV3Schema is an object");
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties is a map");
    properties.insert("apiVersion".into(), json!({"type": "string"}));
    properties.insert("kind".into(), json!({"type": "string"}));
    properties.insert("metadata".into(), object_meta_schema());
    let required = object
        .entry("required")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("required is a list");
    for field in ["apiVersion", "kind", "metadata"] {
        if !required.contains(&json!(field)) {
            required.push(json!(field));
        }
    }
    schema
}

/// What the API server checks of a custom resource's metadata that a manifest can get wrong:
/// a DNS-subdomain name, a DNS-label namespace, string labels and annotations.
fn object_meta_schema() -> Value {
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "maxLength": 253,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            },
            "namespace": {
                "type": "string",
                "maxLength": 63,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            },
            "labels": strings,
            "annotations": strings,
        },
    })
}

/// `namespace/name`, or `name`, or empty.
fn display_name(document: &Value) -> String {
    let metadata = &document["metadata"];
    match (metadata["namespace"].as_str(), metadata["name"].as_str()) {
        (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => String::new(),
    }
}

/// A JSON pointer as a Kubernetes field path: `/spec/models/0/name` -> `spec.models[0].name`.
fn field_path(location: &Location) -> String {
    let mut path = String::new();
    for segment in location.segments() {
        match segment {
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
        }
    }
    path
}

#[cfg(test)]
mod tests;
