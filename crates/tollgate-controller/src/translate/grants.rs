//! Cross-namespace references from HTTPRoutes to their backends, which the Gateway API allows
//! only when a ReferenceGrant in the namespace referred to says so.

use tollgate_api::upstream::ReferenceGrant;

use super::namespace_of;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The ReferenceGrants of every namespace.
pub(super) struct Grants<'a> {
    grants: &'a [ReferenceGrant],
}

/// What a backendRef refers to: group (`""` for core), kind, namespace and name.
pub(super) struct Target<'a> {
    pub(super) group: &'a str,
    pub(super) kind: &'a str,
    pub(super) namespace: &'a str,
    pub(super) name: &'a str,
}

impl<'a> Grants<'a> {
    /// The grants as gathered.
    pub(super) fn new(grants: &'a [ReferenceGrant]) -> Self {
        Self { grants }
    }

    /// Whether an HTTPRoute in `from_namespace` may refer to `target`: always within its own
    /// namespace, else when a grant in the target's namespace names HTTPRoutes of that
    /// namespace and the target's kind (and name, if the grant names one).
    pub(super) fn allows(&self, from_namespace: &str, target: &Target<'_>) -> bool {
        from_namespace == target.namespace
            || self
                .grants
                .iter()
                .filter(|g| namespace_of(&g.metadata) == target.namespace)
                .any(|grant| {
                    let from = grant.spec.from.iter().any(|f| {
                        f.group == GATEWAY_GROUP
                            && f.kind == "HTTPRoute"
                            && f.namespace == from_namespace
                    });
                    let to = grant.spec.to.iter().any(|t| {
                        t.group == target.group
                            && t.kind == target.kind
                            && t.name.as_deref().is_none_or(|n| n == target.name)
                    });
                    from && to
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(namespace: &str, from: &str, to_kind: &str, to_name: Option<&str>) -> ReferenceGrant {
        let name = to_name.map(|n| format!(", name: {n}")).unwrap_or_default();
        let group = if to_kind == "Service" {
            "\"\""
        } else {
            "tollgate.dev"
        };
        serde_yaml::from_str(&format!(
            "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: {namespace}}}\nspec: {{from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {from}}}], to: [{{group: {group}, kind: {to_kind}{name}}}]}}\n"
        ))
        .unwrap()
    }

    fn target<'a>(group: &'a str, kind: &'a str, name: &'a str) -> Target<'a> {
        Target {
            group,
            kind,
            namespace: "models",
            name,
        }
    }

    #[test]
    fn a_grant_allows_only_what_it_names() {
        let grants = [
            grant("models", "web", "ModelProvider", None),
            grant("models", "web", "Service", Some("api")),
            grant("elsewhere", "web", "MCPServer", None),
        ];
        let grants = Grants::new(&grants);
        assert!(grants.allows("web", &target("tollgate.dev", "ModelProvider", "any")));
        assert!(!grants.allows("other", &target("tollgate.dev", "ModelProvider", "any")));
        assert!(grants.allows("web", &target("", "Service", "api")));
        assert!(!grants.allows("web", &target("", "Service", "db")));
        assert!(!grants.allows("web", &target("tollgate.dev", "MCPServer", "tools")));
        assert!(grants.allows("models", &target("tollgate.dev", "MCPServer", "tools")));
    }
}
