//! YAML files as a source of resources, for `tollgate run` and `tollgate validate`.
//!
//! Parsing is pure ([`parse_documents`]); [`load`] reads files and folders, and [`watch`]
//! signals when any of them changes.

use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::{Diagnostic, Resource, Resources};

/// Why the files could not be read at all (as opposed to holding invalid resources).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A path named on the command line holds no YAML or JSON file.
    #[error("{0} holds no .yaml, .yml or .json file")]
    Empty(PathBuf),
    /// The file watcher could not be started.
    #[error("cannot watch files: {0}")]
    Watch(#[from] notify::Error),
}

/// Parses a multi-document YAML text. Documents of kinds Tollgate does not read are reported
/// as warnings; documents that do not fit their kind's schema as errors naming the field.
pub fn parse_documents(text: &str, origin: &str) -> (Vec<Resource>, Vec<Diagnostic>) {
    let mut resources = Vec::new();
    let mut diagnostics = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = match <Value as serde::Deserialize>::deserialize(document) {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    "Document",
                    "",
                    &format!("{origin}#{index}"),
                    "",
                    "InvalidYAML",
                    e.to_string(),
                ));
                // A syntax error ends the stream: the parser cannot find the next document.
                break;
            }
        };
        match parse_resource(value) {
            Ok(Some(resource)) => resources.push(resource),
            Ok(None) => {}
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
    }
    (resources, diagnostics)
}

/// Deserialises a document into its kind, defaulting the namespace to `default`.
fn parse_resource(mut value: Value) -> Result<Option<Resource>, Box<Diagnostic>> {
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let api_version = text(&value, "apiVersion");
    let kind = text(&value, "kind");
    let metadata = value.get("metadata").cloned().unwrap_or(Value::Null);
    let name = text(&metadata, "name");
    let namespace = match metadata.get("namespace").and_then(Value::as_str) {
        Some(ns) => ns.to_string(),
        None => "default".to_string(),
    };
    let error = |field: &str, reason: &'static str, message: String| {
        Box::new(Diagnostic::error(
            &kind, &namespace, &name, field, reason, message,
        ))
    };
    if name.is_empty() {
        return Err(error(
            "metadata.name",
            "MissingName",
            "every resource needs metadata.name".into(),
        ));
    }
    let cluster_scoped = kind == "GatewayClass";
    if !cluster_scoped && let Some(meta) = value.get_mut("metadata").and_then(Value::as_mapping_mut)
    {
        meta.insert("namespace".into(), namespace.clone().into());
    }
    fn typed<T: DeserializeOwned>(value: Value) -> Result<Box<T>, (String, String)> {
        serde_path_to_error::deserialize(value)
            .map(Box::new)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let parsed = match (group, kind.as_str()) {
        ("gateway.networking.k8s.io", "GatewayClass") => typed(value).map(Resource::GatewayClass),
        ("gateway.networking.k8s.io", "Gateway") => typed(value).map(Resource::Gateway),
        ("gateway.networking.k8s.io", "HTTPRoute") => typed(value).map(Resource::HttpRoute),
        ("gateway.networking.k8s.io", "ReferenceGrant") => {
            typed(value).map(Resource::ReferenceGrant)
        }
        ("tollgate.dev", "AIRoute") => typed(value).map(Resource::AIRoute),
        ("tollgate.dev", "ModelProvider") => typed(value).map(Resource::ModelProvider),
        ("tollgate.dev", "BudgetPolicy") => typed(value).map(Resource::BudgetPolicy),
        ("tollgate.dev", "MCPServer") => typed(value).map(Resource::MCPServer),
        ("tollgate.dev", "JWTProvider") => typed(value).map(Resource::JWTProvider),
        ("", "Secret") if api_version == "v1" => typed(value).map(Resource::Secret),
        ("", "Service") if api_version == "v1" => typed(value).map(Resource::Service),
        _ => {
            return Err(Box::new(
                Diagnostic::error(
                    &kind,
                    &namespace,
                    &name,
                    "kind",
                    "UnknownKind",
                    format!("{api_version} {kind} is not a kind Tollgate reads; it is ignored"),
                )
                .warning(),
            ));
        }
    };
    parsed
        .map(Some)
        .map_err(|(path, message)| error(&path, "InvalidResource", message))
}

/// The YAML and JSON files a path names: the file itself, or the files under a folder,
/// recursively, in name order.
fn files_under(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    if !path.metadata().map_err(read_err)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files.extend(files_under(&entry)?);
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// Reads and parses every file the paths name.
pub fn load(paths: &[PathBuf]) -> Result<(Resources, Vec<Diagnostic>), LoadError> {
    let mut resources = Resources::default();
    let mut diagnostics = Vec::new();
    // Where each resource was first defined, to refuse a second definition.
    let mut defined: HashMap<(&'static str, String, String), String> = HashMap::new();
    for path in paths {
        let files = files_under(path)?;
        if files.is_empty() {
            return Err(LoadError::Empty(path.clone()));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
                path: file.clone(),
                source,
            })?;
            let origin = file.display().to_string();
            let (parsed, found) = parse_documents(&text, &origin);
            for resource in parsed {
                let meta = resource.metadata();
                let namespace = meta.namespace.clone().unwrap_or_default();
                let name = meta.name.clone().unwrap_or_default();
                match defined.entry((resource.kind(), namespace.clone(), name.clone())) {
                    Entry::Occupied(first) => diagnostics.push(Diagnostic::error(
                        resource.kind(),
                        &namespace,
                        &name,
                        "metadata.name",
                        "DuplicateResource",
                        format!("defined in {origin} and already in {}; each resource may be defined once", first.get()),
                    )),
                    Entry::Vacant(slot) => {
                        slot.insert(origin.clone());
                        resources.push(resource);
                    }
                }
            }
            diagnostics.extend(found);
        }
    }
    Ok((resources, diagnostics))
}

/// Sends `()` on `changed` shortly after any of the paths changes: events are coalesced for
/// `debounce`, so that an editor's write-and-rename or a `cp -r` yields one reload. Dropping
/// the returned watcher stops watching.
pub fn watch(
    paths: &[PathBuf],
    debounce: Duration,
    changed: mpsc::Sender<()>,
) -> Result<notify::RecommendedWatcher, LoadError> {
    use notify::{RecursiveMode, Watcher};
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = raw_tx.send(());
        }
    })?;
    for path in paths {
        // Watch a file's folder rather than the file: editors replace files by renaming, which
        // would end a watch on the file itself.
        let target = if path.is_dir() {
            path.clone()
        } else {
            path.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        let target = if target.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            target
        };
        watcher.watch(&target, RecursiveMode::Recursive)?;
    }
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            tokio::time::sleep(debounce).await;
            while raw_rx.try_recv().is_ok() {}
            if changed.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_kinds_and_defaults_namespace() {
        let text = "apiVersion: tollgate.dev/v1alpha1\nkind: ModelProvider\nmetadata: {name: openai}\nspec: {type: OpenAI}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: team-a}\nstringData: {apiKey: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: ExternalName, externalName: 127.0.0.1}\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: models}\nspec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}], to: [{group: tollgate.dev, kind: ModelProvider}]}\n";
        let (resources, diagnostics) = parse_documents(text, "test.yaml");
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(resources.len(), 4);
        assert_eq!(resources[2].kind(), "Service");
        assert_eq!(resources[3].kind(), "ReferenceGrant");
        let Resource::ModelProvider(provider) = &resources[0] else {
            panic!("not a provider")
        };
        assert_eq!(provider.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn reports_the_field_that_does_not_fit() {
        let text = "apiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: chat}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n    - backends: [{provider: 7, weight: lots}]\n";
        let (resources, diagnostics) = parse_documents(text, "test.yaml");
        assert!(resources.is_empty());
        assert_eq!(diagnostics.len(), 1);
        let d = &diagnostics[0];
        assert_eq!(
            (d.kind.as_str(), d.name.as_str(), d.reason),
            ("AIRoute", "chat", "InvalidResource")
        );
        assert!(
            d.field.starts_with("spec.rules[0].backends[0]"),
            "{}",
            d.field
        );
    }

    #[test]
    fn a_resource_defined_twice_is_an_error() {
        let dir = std::env::temp_dir().join(format!("tollgate-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n";
        std::fs::write(dir.join("a.yaml"), doc).unwrap();
        std::fs::write(dir.join("b.yml"), doc).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let (resources, diagnostics) = load(std::slice::from_ref(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(resources.secrets.len(), 1);
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(
            (diagnostics[0].reason, diagnostics[0].name.as_str()),
            ("DuplicateResource", "s")
        );
        assert!(
            diagnostics[0].message.contains("a.yaml"),
            "{}",
            diagnostics[0].message
        );
    }

    #[test]
    fn unknown_kinds_are_warnings_and_broken_yaml_is_an_error() {
        let (_, diagnostics) = parse_documents(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            "a.yaml",
        );
        assert!(!diagnostics[0].is_error());
        let (_, diagnostics) = parse_documents("kind: [unclosed\n", "b.yaml");
        assert_eq!(diagnostics[0].reason, "InvalidYAML");
        let (_, diagnostics) = parse_documents(
            "apiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {}\n",
            "c.yaml",
        );
        assert_eq!(diagnostics[0].reason, "MissingName");
    }
}
