//! Every manifest the project ships parses, names itself, deserializes into its Kubernetes
//! type when it is one the chart renders, and — when it is a Tollgate resource — matches its
//! CRD's schema: the examples, the plain manifests under `deploy/`, and,
//! when `TOLLGATE_RENDERED_DIR` is set (`make test-chart` sets it), the Helm chart rendered
//! with several value sets. A relative `TOLLGATE_RENDERED_DIR` is taken from the repository root.

use std::path::{Path, PathBuf};

use gateway_api::{gatewayclasses::GatewayClass, gateways::Gateway};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tollgate_api::schema::SchemaValidator;

/// The repository's root folder.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.yaml`/`*.yml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable folder entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The documents of a YAML stream; empty ones (only comments, as Helm leaves) are skipped.
fn documents(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// What is wrong with a document besides its schema: the fields every object needs.
fn identity_problems(document: &Value) -> Vec<String> {
    let fields = [
        ("apiVersion", &document["apiVersion"]),
        ("kind", &document["kind"]),
        ("metadata.name", &document["metadata"]["name"]),
    ];
    fields
        .iter()
        .filter(|(_, value)| value.as_str().is_none_or(str::is_empty))
        .map(|(field, _)| format!("no {field}"))
        .collect()
}

/// Why a document of a kind the chart renders does not fit its Kubernetes type (a string
/// where a number goes, a map where a list goes), with the field's path. Unknown fields are
/// not caught here: serde ignores them.
fn type_problem(document: &Value) -> Option<String> {
    fn fits<T: DeserializeOwned>(document: &Value) -> Option<String> {
        serde_path_to_error::deserialize::<_, T>(document.clone())
            .err()
            .map(|error| format!("{}: {}", error.path(), error.inner()))
    }
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    let kind = document["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("apps/v1", "Deployment") => fits::<Deployment>(document),
        ("v1", "Service") => fits::<Service>(document),
        ("v1", "ServiceAccount") => fits::<ServiceAccount>(document),
        ("v1", "Secret") => fits::<Secret>(document),
        ("v1", "ConfigMap") => fits::<ConfigMap>(document),
        ("v1", "Namespace") => fits::<Namespace>(document),
        ("policy/v1", "PodDisruptionBudget") => fits::<PodDisruptionBudget>(document),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => fits::<HorizontalPodAutoscaler>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => fits::<ClusterRole>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            fits::<ClusterRoleBinding>(document)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => fits::<Role>(document),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => fits::<RoleBinding>(document),
        ("gateway.networking.k8s.io/v1", "Gateway") => fits::<Gateway>(document),
        ("gateway.networking.k8s.io/v1", "GatewayClass") => fits::<GatewayClass>(document),
        _ => None,
    }
}

/// Checks every file under the folders; returns the files read and every problem found.
fn check(dirs: &[PathBuf]) -> (usize, usize, Vec<String>) {
    let validator = SchemaValidator::for_tollgate().expect("the CRD schemas compile");
    let root = repo_root();
    let (mut files, mut checked, mut problems) = (0, 0, Vec::new());
    for dir in dirs {
        for path in yaml_files(dir) {
            files += 1;
            let shown = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&path).expect("a readable file");
            let documents = match documents(&text) {
                Ok(documents) => documents,
                Err(error) => {
                    problems.push(format!("{shown}: not YAML: {error}"));
                    continue;
                }
            };
            for (index, document) in documents.iter().enumerate() {
                let source = format!("{shown}#{index}");
                for problem in identity_problems(document) {
                    problems.push(format!("{source}: {problem}"));
                }
                if let Some(problem) = type_problem(document) {
                    problems.push(format!("{source}: {problem}"));
                }
                if validator.covers(document) {
                    checked += 1;
                }
                problems.extend(
                    validator
                        .validate(&source, document)
                        .iter()
                        .map(ToString::to_string),
                );
            }
        }
    }
    (files, checked, problems)
}

#[test]
fn examples_and_deploy_manifests_are_valid() {
    let root = repo_root();
    let (files, checked, problems) = check(&[root.join("examples"), root.join("deploy")]);
    assert!(
        problems.is_empty(),
        "invalid manifests:\n{}",
        problems.join("\n")
    );
    assert!(files >= 2, "found only {files} manifest files");
    assert!(checked > 0, "no Tollgate resource was checked");
}

#[test]
fn rendered_chart_is_valid() {
    let Some(dir) = std::env::var_os("TOLLGATE_RENDERED_DIR") else {
        eprintln!("TOLLGATE_RENDERED_DIR is not set: the rendered chart is not checked");
        return;
    };
    let dir = repo_root().join(dir);
    let (files, _, problems) = check(std::slice::from_ref(&dir));
    assert!(
        problems.is_empty(),
        "invalid rendered manifests:\n{}",
        problems.join("\n")
    );
    assert!(files > 0, "no rendered manifests under {}", dir.display());
}

#[test]
fn a_kubernetes_object_of_the_wrong_shape_is_reported() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n\
                spec: {selector: {}, template: {spec: {containers: [{name: c, ports: [{containerPort: http}]}]}}}\n";
    let problem = type_problem(&documents(text).unwrap()[0]).expect("a wrong type");
    assert!(
        problem
            .starts_with("spec.template.spec.containers[0].ports[0].containerPort: invalid type"),
        "{problem}"
    );
}

#[test]
fn a_broken_document_is_reported_with_its_place() {
    let text = "apiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: r}\n\
                spec: {parentRefs: [{name: g}], rules: [{backends: [{provider: p, weight: heavy}]}]}\n";
    let validator = SchemaValidator::for_tollgate().unwrap();
    let document = &documents(text).unwrap()[0];
    let found: Vec<String> = validator
        .validate("r.yaml#0", document)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("r.yaml#0: AIRoute r: spec.rules[0].backends[0].weight: "),
        "{found:?}"
    );
}
