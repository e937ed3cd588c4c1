//! AIRoutes: validation, attachment to Gateways, precedence, and what each Gateway gets.

use tollgate_config::{Backend, GatewayConfig, ModelMatch, ObjectRef, ProviderId};

use super::{assert_clean, diagnostic, find, gateway, provider, reasons, route, run, secret};
use crate::Translation;

const HTTP_LISTENER: &str = "[{name: http, protocol: HTTP, port: 8080}]";

/// `default/ai-gateway` with `listeners`, provider `default/openai` serving gpt-4o-mini and
/// gpt-4o, and the given documents.
fn run_with(listeners: &str, documents: &[String]) -> Translation {
    let mut all = vec![
        gateway("default", "ai-gateway", listeners),
        provider(
            "default",
            "openai",
            r#"{type: OpenAI, endpoint: "http://127.0.0.1:9100", models: [{name: gpt-4o-mini}, {name: gpt-4o}]}"#,
        ),
    ];
    all.extend_from_slice(documents);
    run(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The configuration of `default/ai-gateway`.
fn config(translation: &Translation) -> &GatewayConfig {
    &translation.configs[&ObjectRef::new("default", "ai-gateway")]
}

/// The rules of `default/ai-gateway` in precedence order, as `namespace/route#rule`.
fn rule_names(translation: &Translation) -> Vec<String> {
    config(translation)
        .routes
        .rules()
        .iter()
        .map(|r| format!("{}#{}", r.route, r.name))
        .collect()
}

/// The route serving `model` on `default/ai-gateway`, as `namespace/route`.
fn served_by(translation: &Translation, model: &str) -> Option<String> {
    find(&config(translation).routes, model).map(|r| r.route.to_string())
}

#[test]
fn an_exact_model_match_beats_an_earlier_catch_all() {
    let translation = run_with(
        HTTP_LISTENER,
        &[
            route(
                "default",
                "a-catch-all",
                "{parentRefs: [{name: ai-gateway}], rules: [{backends: [{provider: openai, model: gpt-4o}]}]}",
            ),
            route(
                "default",
                "b-exact",
                "{parentRefs: [{name: ai-gateway}], rules: [{matches: [{model: gpt-4o-mini}], backends: [{provider: openai}]}]}",
            ),
        ],
    );
    assert_clean(&translation);
    assert_eq!(
        rule_names(&translation),
        ["default/a-catch-all#0", "default/b-exact#0"]
    );
    assert_eq!(
        served_by(&translation, "gpt-4o-mini").as_deref(),
        Some("default/b-exact")
    );
    assert_eq!(
        served_by(&translation, "anything-else").as_deref(),
        Some("default/a-catch-all")
    );
    let catch_all = find(&config(&translation).routes, "anything-else").unwrap();
    assert!(catch_all.matches.is_empty());
}

#[test]
fn routes_are_ordered_by_namespace_then_name_whatever_the_document_order() {
    let spec = "{parentRefs: [{name: ai-gateway, namespace: default}], rules: [{name: first, matches: [{model: gpt-4o-mini}], backends: [{provider: openai}]}, {matches: [{model: gpt-4o-mini}, {}], backends: [{provider: openai}]}]}";
    let translation = run_with(
        "[{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}]",
        &[
            provider("team-a", "openai", "{type: OpenAI}"),
            route("team-a", "aaa", spec),
            route("default", "zzz", spec),
            route("default", "mmm", spec),
        ],
    );
    assert_clean(&translation);
    assert_eq!(
        rule_names(&translation),
        [
            "default/mmm#first",
            "default/mmm#1",
            "default/zzz#first",
            "default/zzz#1",
            "team-a/aaa#first",
            "team-a/aaa#1"
        ]
    );
    assert_eq!(
        served_by(&translation, "gpt-4o-mini").as_deref(),
        Some("default/mmm")
    );
    let second = &config(&translation).routes.rules()[1];
    let models: Vec<&ModelMatch> = second.matches.iter().map(|m| &m.model).collect();
    assert_eq!(
        models,
        [&ModelMatch::Exact("gpt-4o-mini".into()), &ModelMatch::Any]
    );
    assert_eq!(
        served_by(&translation, "other").as_deref(),
        Some("default/mmm"),
        "the first rule matching any model"
    );
}

/// Pins the current order for resources that carry a creation time (in a cluster): the older
/// route wins before namespace and name are compared, as in Gateway API.
#[test]
fn an_older_route_wins_over_a_newer_one() {
    let dated = |name: &str, created: &str| {
        format!(
            "apiVersion: tollgate.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: {name}, namespace: default, creationTimestamp: \"{created}\"}}\nspec: {{parentRefs: [{{name: ai-gateway}}], rules: [{{matches: [{{model: gpt-4o-mini}}], backends: [{{provider: openai}}]}}]}}\n"
        )
    };
    let translation = run_with(
        HTTP_LISTENER,
        &[
            dated("aaa", "2024-02-01T00:00:00Z"),
            dated("zzz", "2024-01-01T00:00:00Z"),
        ],
    );
    assert_eq!(
        served_by(&translation, "gpt-4o-mini").as_deref(),
        Some("default/zzz")
    );
}

#[test]
fn a_route_with_one_invalid_rule_is_left_out_entirely() {
    let translation = run_with(
        HTTP_LISTENER,
        &[
            route(
                "default",
                "a-broken",
                "{parentRefs: [{name: ai-gateway}], rules: [{matches: [{model: gpt-4o-mini}], backends: [{provider: openai}]}, {matches: [{model: gpt-4o}], backends: [{provider: missing}]}]}",
            ),
            route(
                "default",
                "chat",
                "{parentRefs: [{name: ai-gateway}], rules: [{matches: [{model: gpt-4o-mini}], backends: [{provider: openai}]}]}",
            ),
        ],
    );
    let found = diagnostic(
        &translation,
        "BackendNotFound",
        "error AIRoute default/a-broken spec.rules[1].backends[0].provider",
    );
    assert!(
        found
            .message
            .contains("ModelProvider default/missing does not exist"),
        "{found}"
    );
    assert_eq!(reasons(&translation), ["BackendNotFound"]);
    assert_eq!(rule_names(&translation), ["default/chat#0"]);
    assert_eq!(served_by(&translation, "gpt-4o"), None);
}

#[test]
fn invalid_rules_are_reported() {
    let cases = [
        ("[]", "NoRules", "spec.rules", "at least one rule"),
        (
            r#"[{matches: [{model: ""}], backends: [{provider: openai}]}]"#,
            "InvalidMatch",
            "spec.rules[0].matches[0].model",
            "must not be empty",
        ),
        (
            r#"[{backends: [{provider: openai, model: ""}]}]"#,
            "InvalidBackend",
            "spec.rules[0].backends[0].model",
            "must not be empty",
        ),
        (
            "[{backends: []}]",
            "NoBackends",
            "spec.rules[0].backends",
            "at least one backend",
        ),
        (
            "[{backends: [{provider: openai, weight: 0}, {provider: openai, weight: 0}]}]",
            "NoBackends",
            "spec.rules[0].backends",
            "weight 0",
        ),
        (
            "[{backends: [{provider: openai}]}, {backends: [{provider: missing}]}]",
            "BackendNotFound",
            "spec.rules[1].backends[0].provider",
            "default/missing",
        ),
    ];
    for (rules, reason, field, message) in cases {
        let translation = run_with(
            HTTP_LISTENER,
            &[route(
                "default",
                "chat",
                &format!("{{parentRefs: [{{name: ai-gateway}}], rules: {rules}}}"),
            )],
        );
        let found = diagnostic(
            &translation,
            reason,
            &format!("error AIRoute default/chat {field}"),
        );
        assert!(found.message.contains(message), "{found}");
        assert_eq!(reasons(&translation), [reason]);
        assert!(rule_names(&translation).is_empty(), "{rules}");
    }
}

#[test]
fn backends_keep_their_weights_and_upstream_models() {
    let translation = run_with(
        HTTP_LISTENER,
        &[route(
            "default",
            "chat",
            "{parentRefs: [{name: ai-gateway}], rules: [{name: split, backends: [{provider: openai, model: gpt-4o, weight: 3}, {provider: openai, weight: 0}]}]}",
        )],
    );
    assert_clean(&translation);
    let rule = find(&config(&translation).routes, "anything").unwrap();
    let expected = [
        Backend {
            provider: ProviderId(0),
            model: Some("gpt-4o".into()),
            weight: 3,
            priority: 0,
        },
        Backend {
            provider: ProviderId(0),
            model: None,
            weight: 0,
            priority: 0,
        },
    ];
    assert_eq!(
        (rule.name.as_str(), rule.backends.as_slice()),
        ("split", &expected[..])
    );
    assert_eq!(
        config(&translation).providers.len(),
        1,
        "a provider used twice is listed once"
    );
}

#[test]
fn models_the_provider_does_not_list_are_warned_about_but_served() {
    let cases = [
        (
            "[{backends: [{provider: openai, model: gpt-5}]}]",
            "spec.rules[0].backends[0].model",
        ),
        (
            "[{matches: [{model: gpt-4o}, {model: gpt-5}], backends: [{provider: any}, {provider: openai}]}]",
            "spec.rules[0].backends[1].model",
        ),
    ];
    for (rules, field) in cases {
        let translation = run_with(
            HTTP_LISTENER,
            &[
                provider("default", "any", "{type: OpenAI}"),
                route(
                    "default",
                    "chat",
                    &format!("{{parentRefs: [{{name: ai-gateway}}], rules: {rules}}}"),
                ),
            ],
        );
        let found = diagnostic(
            &translation,
            "ModelNotListed",
            &format!("warning AIRoute default/chat {field}"),
        );
        assert!(found.message.contains("\"gpt-5\""), "{found}");
        assert_eq!(rule_names(&translation), ["default/chat#0"]);
    }
}

#[test]
fn parent_refs_that_do_not_resolve_are_warned_about() {
    let other_class = gateway("default", "istio-gateway", HTTP_LISTENER)
        .replace("gatewayClassName: tollgate", "gatewayClassName: istio");
    let cases = [
        (
            "{name: ai-gateway, kind: Service}",
            "InvalidKind",
            "not gateway.networking.k8s.io/Service",
        ),
        (
            "{name: ai-gateway, group: example.com, kind: Gateway}",
            "InvalidKind",
            "not example.com/Gateway",
        ),
        (
            "{name: missing}",
            "NoMatchingParent",
            "Gateway default/missing does not exist",
        ),
        (
            "{name: ai-gateway, namespace: other}",
            "NoMatchingParent",
            "Gateway other/ai-gateway does not exist",
        ),
        (
            "{name: istio-gateway}",
            "NoMatchingParent",
            "not of a Tollgate GatewayClass",
        ),
        (
            "{name: ai-gateway, sectionName: https}",
            "NoMatchingParent",
            "has no listener \"https\"",
        ),
    ];
    for (parent, reason, message) in cases {
        let route = route(
            "default",
            "chat",
            &format!("{{parentRefs: [{parent}], rules: [{{backends: [{{provider: openai}}]}}]}}"),
        );
        let translation = run_with(HTTP_LISTENER, &[other_class.clone(), route]);
        let found = diagnostic(
            &translation,
            reason,
            "warning AIRoute default/chat spec.parentRefs[0]",
        );
        assert!(found.message.contains(message), "{found}");
        assert_eq!(reasons(&translation), [reason]);
        assert!(rule_names(&translation).is_empty(), "{parent}");
    }
}

#[test]
fn a_route_attaches_through_the_parent_refs_that_resolve() {
    let route = route(
        "default",
        "chat",
        "{parentRefs: [{name: missing}, {group: gateway.networking.k8s.io, kind: Gateway, name: ai-gateway, sectionName: http}], rules: [{backends: [{provider: openai}]}]}",
    );
    let translation = run_with(HTTP_LISTENER, &[route]);
    diagnostic(
        &translation,
        "NoMatchingParent",
        "warning AIRoute default/chat spec.parentRefs[0]",
    );
    assert_eq!(rule_names(&translation), ["default/chat#0"]);
}

#[test]
fn a_route_attached_through_two_listeners_of_one_gateway_adds_its_rules_once() {
    let route = route(
        "default",
        "chat",
        "{parentRefs: [{name: ai-gateway, sectionName: http}, {name: ai-gateway, sectionName: public}], rules: [{backends: [{provider: openai}]}]}",
    );
    let translation = run_with(
        "[{name: http, protocol: HTTP, port: 8080}, {name: public, protocol: HTTP, port: 8081}]",
        &[route],
    );
    assert_clean(&translation);
    assert_eq!(rule_names(&translation), ["default/chat#0"]);
}

#[test]
fn cross_namespace_routes_need_listeners_that_allow_them() {
    let documents = |section: &str| {
        let parent = format!("{{name: ai-gateway, namespace: default{section}}}");
        [
            provider("team-a", "openai", "{type: OpenAI}"),
            route(
                "team-a",
                "chat",
                &format!(
                    "{{parentRefs: [{parent}], rules: [{{backends: [{{provider: openai}}]}}]}}"
                ),
            ),
        ]
    };
    let refused = [
        (HTTP_LISTENER, ""),
        (
            "[{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: Same}}}]",
            "",
        ),
        (
            "[{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: a}}}}}]",
            "",
        ),
        (
            "[{name: http, protocol: HTTP, port: 8080}, {name: public, protocol: HTTP, port: 8081, allowedRoutes: {namespaces: {from: All}}}]",
            ", sectionName: http",
        ),
    ];
    for (listeners, section) in refused {
        let translation = run_with(listeners, &documents(section));
        let found = diagnostic(
            &translation,
            "NotAllowedByListeners",
            "warning AIRoute team-a/chat spec.parentRefs[0]",
        );
        assert!(found.message.contains("namespace team-a"), "{found}");
        assert_eq!(reasons(&translation), ["NotAllowedByListeners"]);
        assert!(rule_names(&translation).is_empty(), "{listeners}{section}");
    }
    let allowed = [
        (
            "[{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}]",
            "",
        ),
        (
            "[{name: http, protocol: HTTP, port: 8080}, {name: public, protocol: HTTP, port: 8081, allowedRoutes: {namespaces: {from: All}}}]",
            "",
        ),
        (
            "[{name: http, protocol: HTTP, port: 8080}, {name: public, protocol: HTTP, port: 8081, allowedRoutes: {namespaces: {from: All}}}]",
            ", sectionName: public",
        ),
    ];
    for (listeners, section) in allowed {
        let translation = run_with(listeners, &documents(section));
        assert_clean(&translation);
        assert_eq!(rule_names(&translation), ["team-a/chat#0"]);
        let providers: Vec<String> = config(&translation)
            .providers
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(
            providers,
            ["team-a/openai"],
            "backends name providers in the route's namespace"
        );
    }
}

#[test]
fn backends_never_reach_providers_in_another_namespace() {
    let route = route(
        "team-a",
        "chat",
        "{parentRefs: [{name: ai-gateway, namespace: default}], rules: [{backends: [{provider: openai}]}]}",
    );
    let translation = run_with(
        "[{name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}]",
        &[route],
    );
    let found = diagnostic(
        &translation,
        "BackendNotFound",
        "error AIRoute team-a/chat spec.rules[0].backends[0].provider",
    );
    assert!(
        found
            .message
            .contains("ModelProvider team-a/openai does not exist"),
        "{found}"
    );
    assert!(rule_names(&translation).is_empty());
}

#[test]
fn each_gateway_gets_only_the_providers_its_routes_use_and_every_api_key() {
    let translation = run(&[
        &gateway("default", "gw-a", HTTP_LISTENER),
        &gateway(
            "default",
            "gw-b",
            "[{name: http, protocol: HTTP, port: 8081}]",
        ),
        &provider("default", "openai", "{type: OpenAI}"),
        &provider(
            "default",
            "mistral",
            r#"{type: OpenAICompatible, endpoint: "https://api.mistral.ai"}"#,
        ),
        &provider(
            "default",
            "local",
            r#"{type: OpenAICompatible, endpoint: "http://vllm:8000"}"#,
        ),
        &provider("default", "unused", "{type: OpenAI}"),
        &route(
            "default",
            "to-a",
            "{parentRefs: [{name: gw-a}], rules: [{matches: [{model: gpt-4o-mini}], backends: [{provider: openai}]}]}",
        ),
        &route(
            "default",
            "to-b",
            "{parentRefs: [{name: gw-b}], rules: [{matches: [{model: mistral-small}], backends: [{provider: mistral}]}]}",
        ),
        &route(
            "default",
            "shared",
            "{parentRefs: [{name: gw-a}, {name: gw-b}], rules: [{backends: [{provider: local, model: a}, {provider: local, model: b}]}]}",
        ),
        &secret(
            "default",
            "alice-key",
            r#"{tollgate.dev/api-key: "true"}"#,
            "stringData: {key: tg-alice-secret}",
        ),
    ]);
    assert_clean(&translation);
    let cases = [
        ("gw-a", "gpt-4o-mini", ["default/local", "default/openai"]),
        (
            "gw-b",
            "mistral-small",
            ["default/local", "default/mistral"],
        ),
    ];
    for (gateway, model, expected) in cases {
        let config = &translation.configs[&ObjectRef::new("default", gateway)];
        let providers: Vec<String> = config
            .providers
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(providers, expected, "{gateway}");
        let rule = find(&config.routes, model).unwrap();
        assert_eq!(
            config.provider(rule.backends[0].provider).name.to_string(),
            expected[1],
            "{gateway}"
        );
        let shared = find(&config.routes, "anything").unwrap();
        let ids: Vec<ProviderId> = shared.backends.iter().map(|b| b.provider).collect();
        assert_eq!(ids, [ProviderId(0), ProviderId(0)]);
        assert!(
            config.api_keys.authenticate("tg-alice-secret").is_some(),
            "{gateway}"
        );
    }
}

#[test]
fn access_of_the_route_and_of_the_rule_must_both_allow() {
    let translation = run(&[
        &gateway(
            "default",
            "ai-gateway",
            "[{name: http, protocol: HTTP, port: 8080}]",
        ),
        &provider(
            "default",
            "openai",
            r#"{type: OpenAI, endpoint: "http://127.0.0.1:9100"}"#,
        ),
        &route(
            "default",
            "chat",
            "{parentRefs: [{name: ai-gateway}], access: {teams: [research]}, rules: [{matches: [{model: a}], backends: [{provider: openai}], access: {users: [alice], keys: [ops-key]}}, {matches: [{model: b}], backends: [{provider: openai}]}]}",
        ),
    ]);
    assert_clean(&translation);
    let config = &translation.configs[&ObjectRef::new("default", "ai-gateway")];
    let a = find(&config.routes, "a").unwrap();
    assert_eq!(a.access.len(), 2);
    assert_eq!(a.access[0].teams, ["research"]);
    assert_eq!(a.access[1].keys, ["default/ops-key"]);
    let identity = |team: &str, user: &str| tollgate_config::Identity {
        key_id: "default/k".into(),
        team: Some(team.into()),
        user: Some(user.into()),
        expires_at: None,
    };
    assert!(a.allows(&identity("research", "alice")));
    assert!(!a.allows(&identity("research", "bob")), "the rule narrows");
    assert!(
        !a.allows(&identity("finance", "alice")),
        "the route narrows"
    );
    let b = find(&config.routes, "b").unwrap();
    assert!(b.allows(&identity("research", "bob")));
    assert!(!b.allows(&identity("finance", "bob")));
}

#[test]
fn the_outcome_of_every_parent_ref_is_kept_for_status() {
    use crate::{ParentAttachment, RouteAttachments, RouteId, RouteKind};
    let other_class = gateway("default", "istio-gateway", HTTP_LISTENER)
        .replace("gatewayClassName: tollgate", "gatewayClassName: istio");
    let ai_route = route(
        "default",
        "chat",
        "{parentRefs: [{name: ai-gateway}, {name: ai-gateway, sectionName: admin}, {name: istio-gateway}, {name: missing}, {name: ai-gateway, kind: Service}], rules: [{backends: [{provider: openai}]}]}",
    );
    let broken = route(
        "default",
        "broken",
        "{parentRefs: [{name: ai-gateway, sectionName: public}], rules: [{backends: [{provider: gone}]}]}",
    );
    let http_route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: default}\nspec: {parentRefs: [{name: ai-gateway}]}\n".to_string();
    let translation = run_with(
        "[{name: http, protocol: HTTP, port: 8080}, {name: public, protocol: HTTP, port: 8081, allowedRoutes: {namespaces: {from: All}}}]",
        &[other_class, ai_route, broken, http_route],
    );
    let id = |kind, name: &str| RouteId {
        kind,
        route: ObjectRef::new("default", name),
    };
    let gw = ObjectRef::new("default", "ai-gateway");
    let both = vec!["http".to_string(), "public".to_string()];
    let chat = &translation.routes[&id(RouteKind::AIRoute, "chat")];
    assert!(chat.served);
    assert_eq!(
        chat.parents[0],
        ParentAttachment::Attached {
            gateway: gw.clone(),
            listeners: both.clone()
        }
    );
    assert!(matches!(
        &chat.parents[1],
        ParentAttachment::Refused { gateway, reason: "NoMatchingParent", .. } if *gateway == gw
    ));
    assert_eq!(
        chat.parents[2],
        ParentAttachment::Foreign {
            gateway: ObjectRef::new("default", "istio-gateway")
        }
    );
    assert!(matches!(
        chat.parents[3],
        ParentAttachment::Unresolved {
            reason: "NoMatchingParent",
            ..
        }
    ));
    assert!(matches!(
        chat.parents[4],
        ParentAttachment::Unresolved {
            reason: "InvalidKind",
            ..
        }
    ));
    assert_eq!(
        translation.routes[&id(RouteKind::AIRoute, "broken")],
        RouteAttachments {
            parents: vec![ParentAttachment::Attached {
                gateway: gw.clone(),
                listeners: vec!["public".into()]
            }],
            served: false,
        }
    );
    assert_eq!(
        translation.routes[&id(RouteKind::HTTPRoute, "web")],
        RouteAttachments {
            parents: vec![ParentAttachment::Attached {
                gateway: gw,
                listeners: both
            }],
            served: true,
        },
        "an HTTPRoute without rules serves every path (with no backend)"
    );
    assert_eq!(rule_names(&translation), ["default/chat#0"]);
}
