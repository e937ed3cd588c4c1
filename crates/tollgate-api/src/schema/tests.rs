use super::*;

fn validator() -> SchemaValidator {
    SchemaValidator::for_tollgate().expect("Tollgate's CRDs compile to JSON Schemas")
}

/// A valid ModelProvider, as in the quickstart.
fn provider() -> Value {
    json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "ModelProvider",
        "metadata": {"name": "openai", "namespace": "default"},
        "spec": {
            "type": "OpenAI",
            "endpoint": "http://127.0.0.1:9100",
            "auth": {"secretRef": {"name": "openai-credentials", "key": "apiKey"}},
            "models": [
                {"name": "gpt-4o-mini",
                 "pricing": {"inputPerMillionTokens": "0.15", "outputPerMillionTokens": "0.60"}},
            ],
        },
    })
}

/// The violations of `document`, as `path: message` lines.
fn problems(document: &Value) -> Vec<String> {
    validator()
        .validate("test.yaml#0", document)
        .into_iter()
        .map(|v| format!("{}: {}", v.path, v.message))
        .collect()
}

#[test]
fn a_valid_resource_passes() {
    assert_eq!(problems(&provider()), Vec::<String>::new());
}

#[test]
fn null_is_accepted_where_a_field_is_nullable() {
    let mut document = provider();
    document["spec"]["timeouts"] = Value::Null;
    assert_eq!(problems(&document), Vec::<String>::new());
}

#[test]
fn a_wrong_type_is_caught_at_its_path() {
    let mut document = provider();
    document["spec"]["models"][0]["name"] = json!(42);
    let found = problems(&document);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec.models[0].name: 42 is not of type"),
        "{found:?}"
    );
}

#[test]
fn a_missing_required_field_is_caught() {
    let mut document = provider();
    document["spec"]["auth"]["secretRef"]
        .as_object_mut()
        .unwrap()
        .remove("key");
    let found = problems(&document);
    assert_eq!(
        found,
        ["spec.auth.secretRef: \"key\" is a required property"],
        "{found:?}"
    );
}

#[test]
fn an_unknown_enum_value_is_caught() {
    let mut document = provider();
    document["spec"]["type"] = json!("OpenAl");
    let found = problems(&document);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec.type: \"OpenAl\" is not one of"),
        "{found:?}"
    );
}

#[test]
fn an_unknown_field_is_caught() {
    let mut document = provider();
    document["spec"]["endpont"] = json!("http://typo");
    let found = problems(&document);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("spec: ") && found[0].contains("endpont"),
        "{found:?}"
    );
}

#[test]
fn metadata_needs_a_valid_name() {
    let mut document = provider();
    document["metadata"]["name"] = json!("Not_A_Name");
    let found = problems(&document);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("metadata.name: "), "{found:?}");
}

#[test]
fn violations_name_the_document_and_the_resource() {
    let mut document = provider();
    document["spec"]["type"] = json!(1);
    let violation = &validator().validate("examples/x.yaml#3", &document)[0];
    assert_eq!(violation.kind, "ModelProvider");
    assert_eq!(violation.name, "default/openai");
    assert!(
        violation
            .to_string()
            .starts_with("examples/x.yaml#3: ModelProvider default/openai: spec.type: 1 is not")
    );
}

#[test]
fn an_unknown_kind_or_version_in_the_group_is_caught() {
    let mut document = provider();
    document["apiVersion"] = json!("tollgate.dev/v1");
    let found = problems(&document);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with(": no CRD serves kind \"ModelProvider\" in tollgate.dev/v1"));
}

#[test]
fn other_groups_are_not_checked() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "x": 1});
    let gateway = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway"});
    assert!(!validator().covers(&secret));
    assert!(validator().validate("s", &secret).is_empty());
    assert!(validator().validate("g", &gateway).is_empty());
}

#[test]
fn int_or_string_and_preserved_fields_follow_their_extensions() {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "properties": {
                            "port": {"x-kubernetes-int-or-string": true},
                            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        },
                    }},
                }},
            }],
        },
    }))
    .unwrap();
    let validator = SchemaValidator::from_definitions(&[crd]).unwrap();
    let widget = |spec: Value| json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    for good in [
        json!({"port": 80, "extra": {"any": [1]}}),
        json!({"port": "http"}),
    ] {
        assert!(
            validator.validate("w", &widget(good.clone())).is_empty(),
            "{good}"
        );
    }
    let bad = validator.validate("w", &widget(json!({"port": true})));
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].path, "spec.port");
}
