//! Status of HTTPRoutes: accepted with references left out, partially invalid, refused by
//! host name; and no write once the status is in place.

use serde_json::json;

use super::StatusKind;
use super::tests::{SCENARIO, condition, now, patches_for, resources, with_patches};
use crate::Programmed;
use tollgate_config::ObjectRef;

const ROUTES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: ExternalName, externalName: 127.0.0.1}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: site, namespace: default, generation: 2}
spec:
  parentRefs: [{name: ai-gateway, sectionName: http}]
  rules:
    - backendRefs: [{name: web, port: 80}, {name: api, namespace: backends, port: 80}]
    - matches: [{path: {type: RegularExpression, value: "/a.*"}}]
      backendRefs: [{name: web, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere, namespace: default, generation: 1}
spec:
  parentRefs: [{name: ai-gateway, sectionName: tls}]
  hostnames: [api.example.net]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#;

/// The scenario's Gateway with a third listener for `*.example.com`, and [`ROUTES`].
fn manifests() -> String {
    let scenario = SCENARIO.replace(
        "    - {name: metrics, protocol: HTTP, port: 9090}",
        "    - {name: metrics, protocol: HTTP, port: 9090}\n    - {name: tls, protocol: HTTP, port: 8443, hostname: \"*.example.com\"}",
    );
    format!("{scenario}---\n{ROUTES}")
}

fn programmed() -> std::collections::BTreeMap<ObjectRef, Programmed> {
    [(
        ObjectRef::new("default", "ai-gateway"),
        Programmed::Programmed { version: 1 },
    )]
    .into()
}

fn parents_of<'p>(patches: &'p [super::StatusPatch], name: &str) -> &'p serde_json::Value {
    &patches
        .iter()
        .find(|p| p.target.kind == StatusKind::HTTPRoute && p.target.name == name)
        .unwrap_or_else(|| panic!("no patch for {name}"))
        .patch["status"]["parents"]
}

#[test]
fn a_served_route_reports_what_it_left_out() {
    let patches = patches_for(&resources(&manifests()), &[], &programmed(), now());
    let not_permitted = "spec.rules[0].backendRefs[1].namespace: Service backends/api is in another namespace and no ReferenceGrant in backends allows HTTPRoutes of default to refer to it";
    assert_eq!(
        parents_of(&patches, "site"),
        &json!([{
            "parentRef": {"name": "ai-gateway", "sectionName": "http"},
            "controllerName": "tollgate.dev/gateway-controller",
            "conditions": [
                condition("Accepted", "True", "Accepted", "attached to Gateway default/ai-gateway through listener http", 2),
                condition("ResolvedRefs", "False", "RefNotPermitted", not_permitted, 2),
                condition("PartiallyInvalid", "True", "UnsupportedValue", "some rules are not served: spec.rules[1].matches[0].path.type: RegularExpression matches are not supported; use Exact or PathPrefix", 2),
            ],
        }])
    );
}

#[test]
fn a_route_for_other_host_names_is_not_accepted() {
    let patches = patches_for(&resources(&manifests()), &[], &programmed(), now());
    assert_eq!(
        parents_of(&patches, "elsewhere"),
        &json!([{
            "parentRef": {"name": "ai-gateway", "sectionName": "tls"},
            "controllerName": "tollgate.dev/gateway-controller",
            "conditions": [
                condition("Accepted", "False", "NoMatchingListenerHostname", "none of the route's hostnames (api.example.net) is served by a listener of Gateway default/ai-gateway", 1),
                condition("ResolvedRefs", "True", "ResolvedRefs", "references resolved", 1),
            ],
        }])
    );
}

#[test]
fn nothing_is_written_once_the_status_is_in_place() {
    let manifests = manifests();
    let patches = patches_for(&resources(&manifests), &[], &programmed(), now());
    let written = with_patches(&manifests, &patches);
    let again = patches_for(&written, &[], &programmed(), now());
    assert!(
        !again.iter().any(|p| p.target.kind == StatusKind::HTTPRoute),
        "{again:#?}"
    );
}
