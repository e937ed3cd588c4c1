//! HTTPRoutes: AI handling for ModelProvider and MCPServer backends, plain HTTP for Services,
//! references across namespaces, host names, listeners, and precedence.

use std::time::Duration;
use tollgate_config::{
    GatewayConfig, Match, ObjectRef, PathRewrite, RequestFacts, ServiceBackend, ServiceTimeouts,
};

use super::{assert_clean, diagnostic, gateway, provider, reasons, route, run, summaries};
use crate::{ParentAttachment, RouteId, RouteKind, Translation};

/// What the routes of these tests refer to: `default/openai`, `models/shared` (a provider in
/// another namespace), MCPServers `default/github` and `tools/search`, Services
/// `default/web` (ExternalName 127.0.0.1) and `backends/api` (a cluster IP), and a session key
/// Secret `default/mcp-key`.
const BACKENDS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: github, namespace: default}
spec: {url: "http://127.0.0.1:9200/mcp"}
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: search, namespace: tools}
spec: {url: "http://127.0.0.1:9201/mcp"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: ExternalName, externalName: 127.0.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: backends}
spec: {clusterIP: 10.0.0.7, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Secret
metadata: {name: mcp-key, namespace: default}
stringData: {key: 0123456789abcdef0123456789abcdef}
"#;

/// `default/ai-gateway` with `listeners`, the [`BACKENDS`], and `documents`.
fn run_with(listeners: &str, documents: &[String]) -> Translation {
    let mut all = vec![
        gateway("default", "ai-gateway", listeners),
        provider(
            "default",
            "openai",
            r#"{type: OpenAI, endpoint: "http://127.0.0.1:9100"}"#,
        ),
        provider(
            "models",
            "shared",
            r#"{type: OpenAI, endpoint: "http://127.0.0.1:9101"}"#,
        ),
        BACKENDS.to_string(),
    ];
    all.extend_from_slice(documents);
    run(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

const HTTP: &str = "[{name: http, protocol: HTTP, port: 8080}]";

/// An HTTPRoute in `namespace` with the given spec (a YAML flow mapping) and metadata extras.
fn http_route(namespace: &str, name: &str, metadata: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {namespace}{metadata}}}\nspec: {spec}\n"
    )
}

/// An HTTPRoute `default/<name>` attached to `ai-gateway` with one rule (a flow mapping
/// without braces).
fn one_rule(name: &str, rule: &str) -> String {
    http_route(
        "default",
        name,
        "",
        &format!("{{parentRefs: [{{name: ai-gateway}}], rules: [{{{rule}}}]}}"),
    )
}

/// A grant in `namespace` letting HTTPRoutes of `default` refer to `kind` (group `group`).
fn grant(namespace: &str, group: &str, kind: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: from-default, namespace: {namespace}}}\nspec: {{from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}}], to: [{{group: \"{group}\", kind: {kind}}}]}}\n"
    )
}

fn config(translation: &Translation) -> &GatewayConfig {
    &translation.configs[&ObjectRef::new("default", "ai-gateway")]
}

fn none(_: &str, _: &str) -> bool {
    false
}

/// The Service rule serving `method path` on `host`, as `route#rule`.
fn service_rule(config: &GatewayConfig, host: &str, method: &str, path: &str) -> Option<String> {
    let facts = RequestFacts {
        model: "",
        path,
        method,
        host,
        header_is: &none,
        query_is: &none,
        prompt_tokens: 0,
        has_tools: false,
        has_images: false,
    };
    let routes = &config.service_routes;
    routes.lookup(&facts).map(|found| {
        let rule = routes.rule(found.rule);
        format!("{}#{}", rule.route.name, rule.name)
    })
}

#[test]
fn model_provider_backends_get_ai_handling_with_their_weights() {
    let translation = run_with(
        HTTP,
        &[
            route(
                "default",
                "chat",
                "{parentRefs: [{name: ai-gateway}], rules: [{matches: [{model: gpt-4o}], backends: [{provider: openai}]}]}",
            ),
            one_rule(
                "models",
                "name: split, matches: [{path: {type: Exact, value: /v1/chat/completions}, headers: [{name: X-Team, value: a}]}], backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: openai, weight: 3}, {group: tollgate.dev, kind: ModelProvider, name: shared, namespace: models, weight: 1}], timeouts: {request: 30s}",
            ),
            grant("models", "tollgate.dev", "ModelProvider"),
        ],
    );
    assert_clean(&translation);
    let config = config(&translation);
    let rules = config.routes.rules();
    assert_eq!(
        rules.len(),
        2,
        "the AIRoute's rule first, then the HTTPRoute's"
    );
    let rule = &rules[1];
    assert_eq!(
        (rule.route.name.as_str(), rule.name.as_str()),
        ("models", "split")
    );
    let weights: Vec<(String, u32, Option<&str>)> = rule
        .backends
        .iter()
        .map(|b| {
            let provider = config.provider(b.provider).name.to_string();
            (provider, b.weight, b.model.as_deref())
        })
        .collect();
    assert_eq!(
        weights,
        [
            ("default/openai".to_string(), 3, None),
            ("models/shared".to_string(), 1, None)
        ],
        "the requested model is passed through"
    );
    assert_eq!(
        rule.matches,
        [Match {
            path: Some("/v1/chat/completions".into()),
            headers: vec![("x-team".into(), "a".into())],
            ..Match::default()
        }]
    );
    assert_eq!(rule.policy.timeouts.request, Some(Duration::from_secs(30)));
    assert_eq!(config.providers.len(), 2, "openai is listed once");
}

#[test]
fn mcp_server_backends_serve_an_endpoint_sealed_by_the_annotated_key() {
    let annotated = ", annotations: {tollgate.dev/mcp-session-key: mcp-key/key}";
    let tools = http_route(
        "default",
        "tools",
        annotated,
        "{parentRefs: [{name: ai-gateway}], rules: [{backendRefs: [{group: tollgate.dev, kind: MCPServer, name: github}, {group: tollgate.dev, kind: MCPServer, name: search, namespace: tools}]}, {name: docs, matches: [{path: {type: Exact, value: /docs/mcp}}], backendRefs: [{group: tollgate.dev, kind: MCPServer, name: github}]}]}",
    );
    let translation = run_with(HTTP, &[tools, grant("tools", "tollgate.dev", "MCPServer")]);
    assert_clean(&translation);
    let endpoints = &config(&translation).mcp;
    let paths: Vec<(&str, &[String], usize)> = endpoints
        .iter()
        .map(|e| (e.rule.as_str(), &e.paths[..], e.servers.len()))
        .collect();
    assert_eq!(
        paths,
        [
            ("0", &["/mcp".to_string()][..], 2),
            ("docs", &["/docs/mcp".to_string()][..], 1)
        ]
    );
    assert_eq!(
        endpoints[0].session_key.expose(),
        "0123456789abcdef0123456789abcdef"
    );

    let unannotated = one_rule(
        "bare",
        "backendRefs: [{group: tollgate.dev, kind: MCPServer, name: github}]",
    );
    let translation = run_with(HTTP, &[unannotated]);
    let found = diagnostic(
        &translation,
        "InvalidSessionKey",
        "error HTTPRoute default/bare metadata.annotations[tollgate.dev/mcp-session-key]",
    );
    assert!(found.message.contains("<secret>/<key>"), "{found}");
    assert!(config(&translation).mcp.is_empty());
}

#[test]
fn service_backends_are_proxied_with_their_filters_and_timeouts() {
    let translation = run_with(
        HTTP,
        &[
            one_rule(
                "site",
                "matches: [{path: {type: PathPrefix, value: /api/}}], backendRefs: [{name: web, port: 9000, weight: 2}, {name: api, namespace: backends, port: 8080}], filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Env, value: prod}]}}, {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}], timeouts: {request: 20s, backendRequest: 5s}",
            ),
            grant("backends", "", "Service"),
        ],
    );
    assert_clean(&translation);
    let [rule] = config(&translation).service_routes.rules() else {
        panic!("one Service rule expected");
    };
    assert_eq!(
        rule.backends,
        [
            ServiceBackend {
                service: ObjectRef::new("default", "web"),
                host: "127.0.0.1".into(),
                port: 9000,
                weight: 2,
            },
            ServiceBackend {
                service: ObjectRef::new("backends", "api"),
                host: "10.0.0.7".into(),
                port: 8080,
                weight: 1,
            },
        ]
    );
    assert_eq!(rule.matches[0].path_prefix.as_deref(), Some("/api"));
    assert_eq!(rule.request_headers.set, [("x-env".into(), "prod".into())]);
    assert_eq!(rule.rewrite, Some(PathRewrite::PrefixMatch("/v2".into())));
    assert_eq!(
        rule.timeouts,
        ServiceTimeouts {
            request: Some(Duration::from_secs(20)),
            backend_request: Some(Duration::from_secs(5)),
        }
    );
}

#[test]
fn cross_namespace_backends_need_a_reference_grant() {
    let rule = "backendRefs: [{name: web, port: 80}, {name: api, namespace: backends, port: 8080}]";
    let translation = run_with(HTTP, &[one_rule("site", rule)]);
    let found = diagnostic(
        &translation,
        "RefNotPermitted",
        "error HTTPRoute default/site spec.rules[0].backendRefs[1].namespace",
    );
    assert!(
        found.message.contains("ReferenceGrant in backends"),
        "{found}"
    );
    let services: Vec<&str> = config(&translation).service_routes.rules()[0]
        .backends
        .iter()
        .map(|b| b.service.name.as_str())
        .collect();
    assert_eq!(services, ["web"], "the backend without a grant is left out");

    let wrong_kind = grant("backends", "tollgate.dev", "ModelProvider");
    let translation = run_with(HTTP, &[one_rule("site", rule), wrong_kind]);
    assert_eq!(
        reasons(&translation),
        ["RefNotPermitted"],
        "a grant for another kind"
    );

    let granted = run_with(
        HTTP,
        &[one_rule("site", rule), grant("backends", "", "Service")],
    );
    assert_clean(&granted);
    assert_eq!(config(&granted).service_routes.rules()[0].backends.len(), 2);
}

#[test]
fn missing_backends_are_left_out_and_a_rule_without_any_answers_500() {
    let translation = run_with(
        HTTP,
        &[
            one_rule(
                "site",
                "backendRefs: [{name: gone, port: 80}, {name: web}, {group: example.com, kind: Bucket, name: b}]",
            ),
            one_rule(
                "ai",
                "backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: missing}]",
            ),
        ],
    );
    assert_eq!(
        summaries(&translation),
        [
            "error HTTPRoute default/ai spec.rules[0].backendRefs[0] BackendNotFound",
            "error HTTPRoute default/site spec.rules[0].backendRefs[0] BackendNotFound",
            "error HTTPRoute default/site spec.rules[0].backendRefs[1] InvalidBackend",
            "error HTTPRoute default/site spec.rules[0].backendRefs[2].kind InvalidKind",
        ]
    );
    let config = config(&translation);
    assert!(config.service_routes.rules()[0].backends.is_empty());
    assert!(
        config.routes.rules().is_empty(),
        "a model rule without backends is left out"
    );
    let served = |name: &str| {
        translation.routes[&RouteId {
            kind: RouteKind::HTTPRoute,
            route: ObjectRef::new("default", name),
        }]
            .served
    };
    assert!(served("site") && !served("ai"));
}

#[test]
fn a_rule_mixing_kinds_or_asking_for_the_unsupported_is_not_served() {
    let translation = run_with(
        HTTP,
        &[http_route(
            "default",
            "mixed",
            "",
            "{parentRefs: [{name: ai-gateway}], rules: [{backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: openai}, {name: web, port: 80}]}, {matches: [{path: {type: RegularExpression, value: '/a.*'}}], backendRefs: [{name: web, port: 80}]}, {filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}}}], backendRefs: [{name: web, port: 80}]}, {filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x]}}], backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: openai}]}, {name: fine, backendRefs: [{name: web, port: 80}]}]}",
        )],
    );
    assert_eq!(
        summaries(&translation),
        [
            "error HTTPRoute default/mixed spec.rules[0].backendRefs InvalidKind",
            "error HTTPRoute default/mixed spec.rules[1].matches[0].path.type UnsupportedValue",
            "error HTTPRoute default/mixed spec.rules[2].filters[0].type UnsupportedValue",
            "error HTTPRoute default/mixed spec.rules[3].filters[0].type UnsupportedValue",
        ]
    );
    let config = config(&translation);
    let names: Vec<&str> = config
        .service_routes
        .rules()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["fine"]);
    assert!(config.routes.rules().is_empty());
}

#[test]
fn host_names_are_intersected_with_the_listeners() {
    let listeners = "[{name: wild, protocol: HTTP, port: 8080, hostname: '*.example.com'}, {name: other, protocol: HTTP, port: 8081, hostname: other.test}]";
    let site = http_route(
        "default",
        "site",
        "",
        "{parentRefs: [{name: ai-gateway}], hostnames: [API.example.com, web.example.net], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let nowhere = http_route(
        "default",
        "nowhere",
        "",
        "{parentRefs: [{name: ai-gateway, sectionName: other}], hostnames: [api.example.com], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let any = http_route(
        "default",
        "any",
        "",
        "{parentRefs: [{name: ai-gateway, sectionName: wild}], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let chat = route(
        "default",
        "chat",
        "{parentRefs: [{name: ai-gateway}], rules: [{backends: [{provider: openai}]}]}",
    );
    let translation = run_with(listeners, &[site, nowhere, any, chat]);
    let found = diagnostic(
        &translation,
        "NoMatchingListenerHostname",
        "warning HTTPRoute default/nowhere spec.parentRefs[0]",
    );
    assert!(found.message.contains("api.example.com"), "{found}");
    let config = config(&translation);
    let hostnames: Vec<(&str, &[String])> = config
        .service_routes
        .rules()
        .iter()
        .map(|r| (r.route.name.as_str(), &r.hostnames[..]))
        .collect();
    assert_eq!(
        hostnames,
        [
            ("any", &["*.example.com".to_string()][..]),
            ("site", &["api.example.com".to_string()][..]),
        ],
        "nowhere attaches nowhere; site keeps the names its listener serves"
    );
    assert_eq!(
        service_rule(config, "api.example.com", "GET", "/").as_deref(),
        Some("site#0"),
        "the exact host name wins over the wildcard"
    );
    assert_eq!(
        service_rule(config, "www.example.com", "GET", "/").as_deref(),
        Some("any#0")
    );
    assert_eq!(service_rule(config, "other.test", "GET", "/"), None);
    assert_eq!(
        config.routes.rules()[0].hostnames,
        ["*.example.com", "other.test"],
        "an AIRoute serves the names of the listeners it attaches through"
    );
}

#[test]
fn listeners_admit_routes_by_kind_and_port() {
    let listeners = "[{name: ai-only, protocol: HTTP, port: 8080, allowedRoutes: {kinds: [{group: tollgate.dev, kind: AIRoute}]}}, {name: web, protocol: HTTP, port: 8081}]";
    let refused = http_route(
        "default",
        "refused",
        "",
        "{parentRefs: [{name: ai-gateway, sectionName: ai-only}], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let by_port = http_route(
        "default",
        "by-port",
        "",
        "{parentRefs: [{name: ai-gateway, port: 8081}, {name: ai-gateway, port: 9999}], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let translation = run_with(listeners, &[refused, by_port]);
    let found = diagnostic(
        &translation,
        "NotAllowedByListeners",
        "warning HTTPRoute default/refused spec.parentRefs[0]",
    );
    assert!(found.message.contains("HTTPRoutes"), "{found}");
    let by_port = &translation.routes[&RouteId {
        kind: RouteKind::HTTPRoute,
        route: ObjectRef::new("default", "by-port"),
    }];
    assert_eq!(
        by_port.parents[0],
        ParentAttachment::Attached {
            gateway: ObjectRef::new("default", "ai-gateway"),
            listeners: vec!["web".into()],
        }
    );
    assert!(matches!(
        &by_port.parents[1],
        ParentAttachment::Refused { reason: "NoMatchingParent", message, .. } if message.contains("port 9999")
    ));
}

#[test]
fn a_route_attached_to_two_gateways_serves_on_both() {
    let second = gateway(
        "default",
        "second",
        "[{name: http, protocol: HTTP, port: 9090}]",
    );
    let site = http_route(
        "default",
        "site",
        "",
        "{parentRefs: [{name: ai-gateway}, {name: second}], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let translation = run_with(HTTP, &[second, site]);
    assert_clean(&translation);
    for name in ["ai-gateway", "second"] {
        let config = &translation.configs[&ObjectRef::new("default", name)];
        assert_eq!(config.service_routes.rules().len(), 1, "{name}");
    }
}

#[test]
fn precedence_follows_the_gateway_api_across_routes() {
    let timed = |name: &str, created: &str, rule: &str| {
        http_route(
            "default",
            name,
            &format!(", creationTimestamp: \"{created}\""),
            &format!("{{parentRefs: [{{name: ai-gateway}}], rules: [{rule}]}}"),
        )
    };
    let web = "backendRefs: [{name: web, port: 80}]";
    let translation = run_with(
        HTTP,
        &[
            timed(
                "z-old",
                "2024-01-01T00:00:00Z",
                &format!("{{matches: [{{path: {{value: /api}}}}], {web}}}"),
            ),
            timed(
                "a-new",
                "2024-06-01T00:00:00Z",
                &format!("{{matches: [{{path: {{value: /api}}}}], {web}}}"),
            ),
            timed(
                "b-new",
                "2024-06-01T00:00:00Z",
                &format!("{{matches: [{{path: {{value: /api}}, method: POST}}], {web}}}"),
            ),
            timed(
                "exact",
                "2024-09-01T00:00:00Z",
                &format!("{{matches: [{{path: {{type: Exact, value: /api/users}}}}], {web}}}"),
            ),
            timed(
                "longer",
                "2024-09-01T00:00:00Z",
                &format!("{{matches: [{{path: {{value: /api/users}}}}], {web}}}"),
            ),
        ],
    );
    assert_clean(&translation);
    let config = config(&translation);
    let served = |method, path| service_rule(config, "h", method, path).unwrap();
    assert_eq!(served("GET", "/api/users"), "exact#0");
    assert_eq!(served("GET", "/api/users/7"), "longer#0");
    assert_eq!(
        served("POST", "/api"),
        "b-new#0",
        "a method match outranks age"
    );
    assert_eq!(
        served("GET", "/api"),
        "z-old#0",
        "the oldest route wins a tie"
    );
}

#[test]
fn http_route_model_rules_rank_by_match_after_ai_route_rules() {
    let translation = run_with(
        HTTP,
        &[
            one_rule(
                "broad",
                "backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: openai}]",
            ),
            one_rule(
                "narrow",
                "matches: [{path: {type: Exact, value: /v1/embeddings}}], backendRefs: [{group: tollgate.dev, kind: ModelProvider, name: openai}]",
            ),
        ],
    );
    assert_clean(&translation);
    let names: Vec<&str> = config(&translation)
        .routes
        .rules()
        .iter()
        .map(|r| r.route.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["narrow", "broad"],
        "the exact path first, whatever the age"
    );
}

#[test]
fn a_listener_left_out_for_a_port_or_protocol_conflict_takes_no_route() {
    let listeners = "[{name: http, protocol: HTTP, port: 8080}, {name: clash, protocol: HTTP, port: 9090}, {name: clash-too, protocol: HTTP, port: 9090}, {name: tcp, protocol: TCP, port: 9000}]";
    let site = http_route(
        "default",
        "site",
        "",
        "{parentRefs: [{name: ai-gateway, sectionName: clash}, {name: ai-gateway, sectionName: tcp}, {name: ai-gateway}], rules: [{backendRefs: [{name: web, port: 80}]}]}",
    );
    let translation = run_with(listeners, &[site]);
    let outcomes = &translation.routes[&RouteId {
        kind: RouteKind::HTTPRoute,
        route: ObjectRef::new("default", "site"),
    }]
        .parents;
    for refused in &outcomes[..2] {
        assert!(
            matches!(
                refused,
                ParentAttachment::Refused {
                    reason: "NoMatchingParent",
                    ..
                }
            ),
            "{refused:?}"
        );
    }
    assert_eq!(
        outcomes[2],
        ParentAttachment::Attached {
            gateway: ObjectRef::new("default", "ai-gateway"),
            listeners: vec!["http".into()],
        },
        "the route still attaches through the listener that is served"
    );
    assert_eq!(config(&translation).service_routes.rules().len(), 1);
}

#[test]
fn routes_of_other_implementations_are_not_reported_on() {
    let istio = gateway("default", "istio-gateway", HTTP)
        .replace("gatewayClassName: tollgate", "gatewayClassName: istio");
    let theirs = http_route(
        "default",
        "theirs",
        "",
        "{parentRefs: [{name: istio-gateway}, {group: \"\", kind: Service, name: web}], rules: [{backendRefs: [{group: example.com, kind: Bucket, name: b}], filters: [{type: CORS, cors: {}}]}]}",
    );
    let translation = run_with(HTTP, &[istio, theirs]);
    assert_clean(&translation);
    let id = RouteId {
        kind: RouteKind::HTTPRoute,
        route: ObjectRef::new("default", "theirs"),
    };
    assert!(!translation.routes[&id].served);
}
