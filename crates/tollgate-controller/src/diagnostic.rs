//! What translation found wrong with a resource, precise enough for a person to fix it.

use serde::Serialize;
use std::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    /// The resource, or part of it, cannot be served as written.
    Error,
    /// The resource is served, but not entirely as its author may expect.
    Warning,
}

/// One finding about one field of one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// The resource's kind (`AIRoute`, `Secret`, ...).
    pub kind: String,
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// The path of the offending field (`spec.rules[0].backends[1].provider`).
    pub field: String,
    /// A stable CamelCase reason, as in Kubernetes conditions (`BackendNotFound`).
    pub reason: &'static str,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Diagnostic {
    /// An error about `field` of the resource `kind` `namespace/name`.
    pub fn error(
        kind: &str,
        namespace: &str,
        name: &str,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            field: field.into(),
            reason,
            message: message.into(),
        }
    }

    /// The same finding as a warning.
    pub fn warning(self) -> Self {
        Self {
            severity: Severity::Warning,
            ..self
        }
    }

    /// Whether this finding stops the resource from being served as written.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{severity}: {} {}/{}: {}: {}: {}",
            self.kind, self.namespace, self.name, self.field, self.reason, self.message
        )
    }
}
