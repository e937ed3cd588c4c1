//! Status computed from manifests, as a cluster would hold them: the exact patches, and none
//! once the patches are in place.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tollgate_api::BudgetUsage;
use tollgate_api::upstream::Service;
use tollgate_config::ObjectRef;

use super::{StatusInputs, StatusKind, StatusPatch, status_patches};
use crate::files::parse_documents;
use crate::{Programmed, Resources, TranslateOptions, translate};

/// A GatewayClass of ours and one of another controller; a Gateway of each; a second listener
/// on the first listener's port; a provider with its Secret and one whose Secret is missing;
/// an AIRoute with a good parentRef, a bad one and one to the other controller's Gateway.
pub(crate) const SCENARIO: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate, generation: 1}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio, generation: 1}
spec: {controllerName: istio.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ai-gateway, namespace: default, generation: 2}
spec:
  gatewayClassName: tollgate
  listeners:
    - {name: http, protocol: HTTP, port: 8080}
    - {name: admin, protocol: HTTP, port: 9090}
    - {name: metrics, protocol: HTTP, port: 9090}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: istio-gateway, namespace: default, generation: 1}
spec:
  gatewayClassName: istio
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: v1
kind: Secret
metadata: {name: openai-credentials, namespace: default}
stringData: {apiKey: sk-test}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: openai, namespace: default, generation: 1}
spec:
  type: OpenAI
  auth: {secretRef: {name: openai-credentials, key: apiKey}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: anthropic, namespace: default, generation: 3}
spec:
  type: Anthropic
  auth: {secretRef: {name: missing, key: apiKey}}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: chat, namespace: default, generation: 4, resourceVersion: "41"}
spec:
  parentRefs:
    - {name: ai-gateway, sectionName: http}
    - {name: ai-gateway, sectionName: admin}
    - {name: istio-gateway}
  rules: [{backends: [{provider: openai}]}]
"#;

/// The clock of every test: 2023-11-14T22:13:20Z.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

/// A later time, for changes.
fn later() -> Timestamp {
    Timestamp::from_second(1_700_000_600).unwrap()
}

/// The manifests as resources.
pub(crate) fn resources(manifests: &str) -> Resources {
    let (parsed, diagnostics) = parse_documents(manifests, "test.yaml");
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    let mut resources = Resources::default();
    parsed.into_iter().for_each(|r| resources.push(r));
    resources
}

/// The patches for `resources` as translated in a cluster (no implicit class).
pub(crate) fn patches_for(
    resources: &Resources,
    services: &[Service],
    programmed: &BTreeMap<ObjectRef, Programmed>,
    now: Timestamp,
) -> Vec<StatusPatch> {
    let translation = translate(resources, &TranslateOptions::default());
    status_patches(&StatusInputs {
        resources,
        translation: &translation,
        services,
        programmed,
        budget_usage: &BTreeMap::new(),
        now,
    })
}

/// A BudgetPolicy with two limits.
const BUDGET: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: BudgetPolicy
metadata: {name: research, namespace: default, generation: 2}
spec:
  subject: {kind: Team, name: research}
  limits: [{window: Month, usd: "100"}, {window: Minute, tokens: 50000}]
"#;

fn usage(used: &str) -> Vec<BudgetUsage> {
    vec![BudgetUsage {
        window: "month".into(),
        unit: "usd".into(),
        limit: "100".into(),
        used: used.into(),
        remaining: "90".into(),
        resets_at: "2023-12-01T00:00:00Z".into(),
        reported_at: "2023-11-14T22:13:00Z".into(),
    }]
}

fn budget_patches(resources: &Resources, reported: Option<Vec<BudgetUsage>>) -> Vec<StatusPatch> {
    let translation = translate(resources, &TranslateOptions::default());
    let budget_usage: BTreeMap<ObjectRef, Vec<BudgetUsage>> = reported
        .map(|usage| (ObjectRef::new("default", "research"), usage))
        .into_iter()
        .collect();
    status_patches(&StatusInputs {
        resources,
        translation: &translation,
        services: &[],
        programmed: &BTreeMap::new(),
        budget_usage: &budget_usage,
        now: now(),
    })
}

#[test]
fn a_budget_policy_shows_what_the_proxies_reported_and_is_rewritten_only_when_it_changes() {
    let first = budget_patches(&resources(BUDGET), Some(usage("10")));
    let patch = patch_of(&first, StatusKind::BudgetPolicy, "research").expect("a patch");
    assert_eq!(
        patch["status"]["usage"],
        serde_json::to_value(usage("10")).unwrap()
    );
    assert_eq!(patch["status"]["conditions"][0]["type"], "Accepted");
    assert_eq!(patch["status"]["observedGeneration"], 2);

    let written = with_patches(BUDGET, &first);
    assert_eq!(budget_patches(&written, Some(usage("10"))), []);
    assert_eq!(
        budget_patches(&written, None),
        [],
        "without a report the usage shown stays"
    );
    let changed = budget_patches(&written, Some(usage("12.5")));
    let patch = patch_of(&changed, StatusKind::BudgetPolicy, "research").expect("a patch");
    assert_eq!(patch["status"]["usage"][0]["used"], "12.5");
}

/// `ai-gateway`'s proxies all acknowledged version 1.
fn programmed_v1() -> BTreeMap<ObjectRef, Programmed> {
    [(
        ObjectRef::new("default", "ai-gateway"),
        Programmed::Programmed { version: 1 },
    )]
    .into()
}

/// A condition as the patch holds it, stamped [`now`].
pub(crate) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: i64,
) -> Value {
    json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2023-11-14T22:13:20Z",
    })
}

/// The patch for one object, by kind and name.
fn patch_of<'p>(patches: &'p [StatusPatch], kind: StatusKind, name: &str) -> Option<&'p Value> {
    patches
        .iter()
        .find(|p| p.target.kind == kind && p.target.name == name)
        .map(|p| &p.patch)
}

/// Applies a JSON merge patch (RFC 7386), as the API server does.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// The resources with every patch applied, as the watch would deliver them after the writes.
pub(crate) fn with_patches(manifests: &str, patches: &[StatusPatch]) -> Resources {
    let mut documents: Vec<Value> = serde_yaml::Deserializer::from_str(manifests)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    for patch in patches {
        let document = documents
            .iter_mut()
            .find(|d| {
                d["kind"] == patch.target.kind.as_str()
                    && d["metadata"]["name"] == patch.target.name.as_str()
            })
            .expect("a patch for a known object");
        let mut status_only = patch.patch.clone();
        status_only.as_object_mut().unwrap().remove("metadata");
        merge(document, &status_only);
    }
    let text: Vec<String> = documents
        .iter()
        .map(|d| serde_yaml::to_string(d).unwrap())
        .collect();
    resources(&text.join("---\n"))
}

#[test]
fn an_ai_route_reports_on_each_of_our_parents_and_skips_foreign_gateways() {
    let patches = patches_for(&resources(SCENARIO), &[], &programmed_v1(), now());
    let attached = "attached to Gateway default/ai-gateway through listener http";
    let no_admin = "Gateway default/ai-gateway has no listener \"admin\"";
    let resolved = condition(
        "ResolvedRefs",
        "True",
        "ResolvedRefs",
        "references resolved",
        4,
    );
    assert_eq!(
        patch_of(&patches, StatusKind::AIRoute, "chat").unwrap(),
        &json!({
            "metadata": {"resourceVersion": "41"},
            "status": {"parents": [
                {
                    "parentRef": {"name": "ai-gateway", "sectionName": "http"},
                    "controllerName": "tollgate.dev/gateway-controller",
                    "conditions": [condition("Accepted", "True", "Accepted", attached, 4), resolved],
                },
                {
                    "parentRef": {"name": "ai-gateway", "sectionName": "admin"},
                    "controllerName": "tollgate.dev/gateway-controller",
                    "conditions": [condition("Accepted", "False", "NoMatchingParent", no_admin, 4), resolved],
                },
            ]},
        })
    );
}

#[test]
fn a_gateway_reports_its_conflicting_listeners_and_what_the_proxies_run() {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "ai-gateway-proxy", "namespace": "default", "labels": {"tollgate.dev/gateway": "ai-gateway"}},
        "spec": {"clusterIP": "10.96.0.10"},
    }))
    .unwrap();
    let patches = patches_for(&resources(SCENARIO), &[service], &programmed_v1(), now());
    let conflict = |index: usize, other: &str| {
        format!(
            "spec.listeners[{index}].hostname: listener {other:?} also serves HTTP on port 9090 with no hostname; listeners sharing a port need different hostnames"
        )
    };
    let (admin, metrics) = (conflict(1, "metrics"), conflict(2, "admin"));
    let refused = |conflict: &str| {
        json!([
            condition("Accepted", "False", "PortUnavailable", conflict, 2),
            condition("Conflicted", "True", "HostnameConflict", conflict, 2),
            condition(
                "ResolvedRefs",
                "True",
                "ResolvedRefs",
                "references resolved",
                2
            ),
            condition("Programmed", "False", "Invalid", conflict, 2),
        ])
    };
    let kinds = json!([
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
        {"group": "tollgate.dev", "kind": "AIRoute"},
    ]);
    let runs = "the proxies run version 1";
    assert_eq!(
        patch_of(&patches, StatusKind::Gateway, "ai-gateway").unwrap(),
        &json!({"status": {
            "conditions": [
                condition("Accepted", "True", "ListenersNotValid", &format!("some listeners are not served; listener \"admin\": {admin}; listener \"metrics\": {metrics}"), 2),
                condition("Programmed", "True", "Programmed", runs, 2),
            ],
            "listeners": [
                {
                    "name": "http",
                    "attachedRoutes": 1,
                    "supportedKinds": kinds,
                    "conditions": [
                        condition("Accepted", "True", "Accepted", "listener is valid", 2),
                        condition("Conflicted", "False", "NoConflicts", "no conflicts", 2),
                        condition("ResolvedRefs", "True", "ResolvedRefs", "references resolved", 2),
                        condition("Programmed", "True", "Programmed", runs, 2),
                    ],
                },
                {"name": "admin", "attachedRoutes": 0, "supportedKinds": kinds, "conditions": refused(&admin)},
                {"name": "metrics", "attachedRoutes": 0, "supportedKinds": kinds, "conditions": refused(&metrics)},
            ],
            "addresses": [{"type": "IPAddress", "value": "10.96.0.10"}],
        }})
    );
    assert_eq!(
        patch_of(&patches, StatusKind::Gateway, "istio-gateway"),
        None,
        "another controller's Gateway"
    );
}

#[test]
fn classes_and_providers_report_accepted() {
    let patches = patches_for(&resources(SCENARIO), &[], &programmed_v1(), now());
    assert_eq!(
        patch_of(&patches, StatusKind::GatewayClass, "tollgate").unwrap(),
        &json!({"status": {"conditions": [
            condition("Accepted", "True", "Accepted", "Tollgate serves the Gateways of this class", 1),
        ]}})
    );
    assert_eq!(patch_of(&patches, StatusKind::GatewayClass, "istio"), None);
    assert_eq!(
        patch_of(&patches, StatusKind::ModelProvider, "anthropic").unwrap(),
        &json!({"status": {
            "observedGeneration": 3,
            "conditions": [condition("Accepted", "False", "SecretNotFound", "spec.auth.secretRef: Secret default/missing does not exist", 3)],
        }})
    );
    assert_eq!(
        patch_of(&patches, StatusKind::ModelProvider, "openai").unwrap(),
        &json!({"status": {
            "observedGeneration": 1,
            "conditions": [condition("Accepted", "True", "Accepted", "valid", 1)],
        }})
    );
}

#[test]
fn nothing_is_written_once_the_status_is_in_place() {
    let programmed = programmed_v1();
    let first = patches_for(&resources(SCENARIO), &[], &programmed, now());
    assert_eq!(first.len(), 5, "{first:#?}");
    let written = with_patches(SCENARIO, &first);
    let second = patches_for(&written, &[], &programmed, later());
    assert_eq!(second, [], "unchanged input, nothing to write");
}

#[test]
fn only_the_condition_that_changed_gets_a_new_transition_time() {
    let pending: BTreeMap<_, _> = [(
        ObjectRef::new("default", "ai-gateway"),
        Programmed::Pending { version: 2 },
    )]
    .into();
    let first = patches_for(&resources(SCENARIO), &[], &pending, now());
    let written = with_patches(SCENARIO, &first);
    let rejected: BTreeMap<_, _> = [(
        ObjectRef::new("default", "ai-gateway"),
        Programmed::Rejected {
            version: 2,
            proxy: "proxy-0".into(),
            error: "port 8080 is in use".into(),
        },
    )]
    .into();
    let second = patches_for(&written, &[], &rejected, later());
    assert_eq!(second.len(), 1, "only the Gateway changed: {second:#?}");
    let conditions = &second[0].patch["status"]["conditions"];
    assert_eq!(conditions[0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
    assert_eq!(conditions[1]["reason"], "Invalid");
    assert_eq!(
        conditions[1]["message"],
        "proxy proxy-0 rejected version 2 and keeps serving an older one: port 8080 is in use"
    );
    assert_eq!(
        conditions[1]["lastTransitionTime"], "2023-11-14T22:13:20Z",
        "still False: Pending to Invalid is no transition"
    );
    let programmed = patches_for(&written, &[], &programmed_v1(), later());
    let conditions = &programmed[0].patch["status"]["conditions"];
    assert_eq!(conditions[1]["status"], "True");
    assert_eq!(conditions[1]["lastTransitionTime"], "2023-11-14T22:23:20Z");
}

#[test]
fn another_controllers_parents_entry_survives() {
    let foreign = json!({
        "parentRef": {"name": "istio-gateway"},
        "controllerName": "istio.io/gateway-controller",
        "conditions": [condition("Accepted", "True", "Accepted", "istio's own words", 4)],
    });
    let manifests = format!(
        "{SCENARIO}status: {{parents: [{}]}}\n",
        serde_json::to_string(&foreign).unwrap()
    );
    let patches = patches_for(&resources(&manifests), &[], &programmed_v1(), now());
    let parents = &patch_of(&patches, StatusKind::AIRoute, "chat").unwrap()["status"]["parents"];
    assert_eq!(parents[0], foreign);
    assert_eq!(parents.as_array().unwrap().len(), 3);
    let written = with_patches(&manifests, &patches);
    let again = patches_for(&written, &[], &programmed_v1(), later());
    assert_eq!(again, []);
}

#[test]
fn an_invalid_route_is_not_accepted_where_it_attaches_and_names_its_unresolved_reference() {
    let manifests = SCENARIO.replace(
        "rules: [{backends: [{provider: openai}]}]",
        "rules: [{backends: [{provider: gone}]}]",
    );
    let patches = patches_for(&resources(&manifests), &[], &programmed_v1(), now());
    let parents = &patch_of(&patches, StatusKind::AIRoute, "chat").unwrap()["status"]["parents"];
    let missing = "spec.rules[0].backends[0].provider: ModelProvider default/gone does not exist";
    assert_eq!(
        parents[0]["conditions"],
        json!([
            condition(
                "Accepted",
                "False",
                "BackendNotFound",
                &format!("the route serves nothing until this is fixed: {missing}"),
                4
            ),
            condition("ResolvedRefs", "False", "BackendNotFound", missing, 4),
        ])
    );
    let gateway = patch_of(&patches, StatusKind::Gateway, "ai-gateway").unwrap();
    assert_eq!(gateway["status"]["listeners"][0]["attachedRoutes"], 0);
}

#[test]
fn routes_whose_parents_do_not_exist() {
    let manifests = format!(
        "{SCENARIO}---\n{}",
        r#"
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: lost, namespace: default, generation: 1}
spec:
  parentRefs: [{name: nowhere}, {name: ai-gateway, kind: Service, group: ""}]
  rules: [{backends: [{provider: openai}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default, generation: 1}
spec:
  parentRefs: [{name: nowhere}, {name: istio-gateway}, {name: ai-gateway}]
"#
    );
    let patches = patches_for(&resources(&manifests), &[], &programmed_v1(), now());
    let lost = &patch_of(&patches, StatusKind::AIRoute, "lost").unwrap()["status"]["parents"];
    let reasons: Vec<&Value> = lost
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["conditions"][0]["reason"])
        .collect();
    assert_eq!(
        reasons,
        ["NoMatchingParent", "InvalidKind"],
        "only Tollgate reads AIRoutes"
    );
    let web = &patch_of(&patches, StatusKind::HTTPRoute, "web").unwrap()["status"]["parents"];
    assert_eq!(
        web,
        &json!([{
            "parentRef": {"name": "ai-gateway"},
            "controllerName": "tollgate.dev/gateway-controller",
            "conditions": [
                condition("Accepted", "True", "Accepted", "attached to Gateway default/ai-gateway through listener http", 1),
                condition("ResolvedRefs", "True", "ResolvedRefs", "references resolved", 1),
            ],
        }]),
        "an HTTPRoute gets entries only for the Gateways Tollgate serves"
    );
}

#[test]
fn a_gateway_without_proxies_or_valid_listeners() {
    let manifests = SCENARIO
        .replace(
            "protocol: HTTP, port: 8080}\n    - {name: admin",
            "protocol: TCP, port: 8080}\n    - {name: admin",
        )
        .replace(
            "{name: admin, protocol: HTTP, port: 9090}",
            "{name: admin, protocol: HTTPS, port: 8443}",
        )
        .replace("    - {name: metrics, protocol: HTTP, port: 9090}\n", "");
    let patches = patches_for(&resources(&manifests), &[], &BTreeMap::new(), now());
    let status = &patch_of(&patches, StatusKind::Gateway, "ai-gateway").unwrap()["status"];
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "ListenersNotValid");
    assert_eq!(status["conditions"][1]["reason"], "Invalid");
    assert_eq!(status["listeners"][0]["supportedKinds"], json!([]));
    assert_eq!(
        status["listeners"][0]["conditions"][0]["reason"],
        "UnsupportedProtocol"
    );
    assert_eq!(
        status["listeners"][1]["conditions"][2]["reason"],
        "InvalidCertificateRef"
    );
    assert_eq!(status["addresses"], Value::Null);

    let no_proxies = patches_for(&resources(SCENARIO), &[], &BTreeMap::new(), now());
    let status = &patch_of(&no_proxies, StatusKind::Gateway, "ai-gateway").unwrap()["status"];
    assert_eq!(
        status["conditions"][1],
        condition(
            "Programmed",
            "False",
            "Pending",
            "no proxy serving this Gateway is connected",
            2
        )
    );
}

#[test]
fn listeners_that_ask_for_route_kinds_tollgate_does_not_support() {
    let manifests = SCENARIO.replace(
        "{name: admin, protocol: HTTP, port: 9090}",
        "{name: admin, protocol: HTTP, port: 8081, allowedRoutes: {kinds: [{kind: GRPCRoute}, {group: tollgate.dev, kind: AIRoute}]}}",
    );
    let patches = patches_for(&resources(&manifests), &[], &programmed_v1(), now());
    let admin =
        &patch_of(&patches, StatusKind::Gateway, "ai-gateway").unwrap()["status"]["listeners"][1];
    assert_eq!(
        admin["supportedKinds"],
        json!([{"group": "tollgate.dev", "kind": "AIRoute"}])
    );
    assert_eq!(admin["conditions"][2]["reason"], "InvalidRouteKinds");
    assert_eq!(admin["attachedRoutes"], 1);
}
