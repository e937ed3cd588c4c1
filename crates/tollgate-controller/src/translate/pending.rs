//! Resources this version accepts but does not act on yet, reported so that nobody believes
//! an HTTPRoute is in force when it is not.

use tollgate_api::upstream::ObjectMeta;

use super::{name_of, namespace_of};
use crate::{Diagnostic, Resources};

pub(super) fn report(resources: &Resources, diagnostics: &mut Vec<Diagnostic>) {
    let mut warn = |kind: &str, meta: &ObjectMeta, what: &str| {
        diagnostics.push(
            Diagnostic::error(kind, namespace_of(meta), name_of(meta), "spec", "NotImplemented", format!("{what} are not enforced by this version of Tollgate; this resource has no effect"))
                .warning(),
        );
    };
    for route in &resources.http_routes {
        warn("HTTPRoute", &route.metadata, "HTTPRoutes");
    }
}
