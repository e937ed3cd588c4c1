//! The codec over a configuration that uses every type of the snapshot.

use jiff::tz::TimeZone;
use std::time::Duration;
use tollgate_jwt::{JwtProvider, KeySource};

use super::*;
use crate::*;

fn secret(value: &str) -> Secret {
    Secret::new(value)
}

fn providers() -> Vec<Provider> {
    let provider = |name: &str, kind, account| Provider {
        name: ObjectRef::new("ai", name),
        kind,
        endpoint: format!("https://{name}.example.com/v1"),
        api_key: None,
        models: [(
            "m".to_owned(),
            Pricing {
                input_per_million: "0.15".parse().unwrap(),
                cached_input_per_million: "0.075".parse().unwrap(),
                output_per_million: "0.60".parse().unwrap(),
            },
        )]
        .into(),
        timeouts: Timeouts {
            connect: Duration::from_millis(1500),
            ..Timeouts::default()
        },
        api_version: None,
        account,
    };
    let aws = CloudAccount::Aws(AwsAccount {
        region: "us-east-1".into(),
        credentials: Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: secret("aws-secret"),
            session_token: Some(secret("aws-session")),
        }),
    });
    let gcp = CloudAccount::Gcp(GcpAccount {
        project: "p".into(),
        location: "global".into(),
        service_account: ServiceAccountKey {
            client_email: "gw@p.iam.gserviceaccount.com".into(),
            private_key_id: Some("k1".into()),
            private_key: secret("gcp-private-key"),
            token_uri: "https://oauth2.googleapis.com/token".into(),
        },
    });
    let azure = CloudAccount::Azure(EntraApplication {
        token_uri: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
        client_id: "app".into(),
        client_secret: secret("entra-secret"),
        scope: "https://cognitiveservices.azure.com/.default".into(),
    });
    vec![
        Provider {
            api_key: Some(secret("sk-openai")),
            ..provider("openai", ProviderKind::OpenAI, None)
        },
        provider("vllm", ProviderKind::OpenAICompatible, None),
        provider("anthropic", ProviderKind::Anthropic, None),
        provider("gemini", ProviderKind::Gemini, None),
        Provider {
            api_version: Some("2024-10-21".into()),
            ..provider("azure", ProviderKind::AzureOpenAI, Some(azure))
        },
        provider("bedrock", ProviderKind::Bedrock, Some(aws)),
        provider("vertex", ProviderKind::VertexAI, Some(gcp)),
    ]
}

fn rules() -> Vec<Rule> {
    let backend = |provider, weight, priority| Backend {
        provider: ProviderId(provider),
        model: Some("m".into()),
        weight,
        priority,
    };
    vec![
        Rule {
            route: ObjectRef::new("ai", "chat"),
            name: "gold".into(),
            hostnames: vec!["api.example.com".into(), "*.ai.example.com".into()],
            matches: vec![Match {
                model: ModelMatch::Prefix("gpt".into()),
                headers: vec![("x-tier".into(), "gold".into())],
                path: Some("/v1/chat/completions".into()),
                path_prefix: Some("/v1".into()),
                method: Some("POST".into()),
                query: vec![("tier".into(), "gold".into())],
                min_prompt_tokens: Some(10),
                max_prompt_tokens: Some(900),
                has_tools: Some(true),
                has_images: Some(false),
            }],
            backends: vec![backend(0, 3, 0), backend(4, 1, 1)],
            policy: RulePolicy {
                load_balancer: LoadBalancer::CostAware,
                retry: RetryPolicy {
                    on: RetryOn::NONE,
                    ..RetryPolicy::default()
                },
                timeouts: RouteTimeouts {
                    first_byte: Some(Duration::from_millis(800)),
                    request: None,
                },
                outlier: OutlierDetection::default(),
            },
            access: vec![Access {
                teams: vec!["research".into()],
                users: vec!["alice".into()],
                keys: vec!["ai/alice-key".into()],
            }],
        },
        Rule {
            name: "exact".into(),
            matches: vec![Match::model(ModelMatch::Exact("claude".into()))],
            backends: vec![backend(2, 1, 0)],
            ..Rule::default()
        },
        Rule {
            name: "rest".into(),
            backends: vec![backend(6, 1, 0)],
            ..Rule::default()
        },
    ]
}

fn budgets() -> Budgets {
    let policy = |name: &str, subject, time_zone| BudgetPolicy {
        id: ObjectRef::new("ai", name),
        subject,
        limits: vec![
            Limit {
                window: Window::Month,
                unit: Unit::NanoUsd,
                amount: 100 * NANOS_PER_USD,
            },
            Limit {
                window: Window::Minute,
                unit: Unit::Tokens,
                amount: 50_000,
            },
        ],
        enforcement: Enforcement::Soft,
        failure_mode: FailureMode::Open,
        alert_thresholds: vec![50, 80],
        clamp: true,
        default_max_output_tokens: 256,
        time_zone,
        tools: vec!["github__create_*".into()],
    };
    let paris = TimeZone::get("Europe/Paris").unwrap();
    Budgets::new(vec![
        policy("team", Subject::Team("research".into()), paris),
        policy("key", Subject::Key("ai/alice-key".into()), TimeZone::UTC),
        policy("user", Subject::User("alice".into()), TimeZone::UTC),
        policy(
            "route",
            Subject::Route(ObjectRef::new("ai", "chat")),
            TimeZone::UTC,
        ),
        policy("all", Subject::Global, TimeZone::UTC),
    ])
}

fn mcp() -> McpEndpoint {
    McpEndpoint {
        route: ObjectRef::new("ai", "tools"),
        rule: "tools".into(),
        paths: vec!["/mcp".into()],
        hostnames: vec!["tools.example.com".into()],
        servers: vec![McpServer {
            name: ObjectRef::new("ai", "github"),
            prefix: "github".into(),
            url: "https://mcp.example.com/mcp".into(),
            transport: McpTransport::Sse,
            bearer: Some(secret("ghp-token")),
            headers: vec![("x-team".into(), secret("header-secret"))],
            rules: ToolRules {
                allow: vec!["get_*".into()],
                deny: vec!["get_secret".into()],
            },
            grants: vec![Grant {
                teams: vec!["research".into()],
                allow: vec!["*".into()],
                ..Grant::default()
            }],
            argument_rules: vec![ArgumentRule {
                tool: "*".into(),
                argument: "*".into(),
                deny: r"rm\s+-rf".into(),
            }],
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
        }],
        session_key: secret("session-key-0123456789abcdef"),
        access: vec![Access::default()],
    }
}

fn service_routes() -> ServiceRoutes {
    ServiceRoutes::new(vec![
        ServiceRule {
            route: ObjectRef::new("web", "site"),
            name: "api".into(),
            hostnames: vec!["*.example.com".into()],
            matches: vec![Match {
                path_prefix: Some("/api".into()),
                method: Some("GET".into()),
                headers: vec![("x-canary".into(), "1".into())],
                query: vec![("v".into(), "2".into())],
                ..Match::default()
            }],
            backends: vec![
                ServiceBackend {
                    service: ObjectRef::new("web", "api"),
                    host: "10.0.0.7".into(),
                    port: 8080,
                    weight: 9,
                },
                ServiceBackend {
                    service: ObjectRef::new("other", "api"),
                    host: "api.other.svc.cluster.local".into(),
                    port: 80,
                    weight: 1,
                },
            ],
            request_headers: HeaderModifier {
                set: vec![("x-env".into(), "prod".into())],
                add: vec![("x-via".into(), "tollgate".into())],
                remove: vec!["x-debug".into()],
            },
            rewrite: Some(PathRewrite::PrefixMatch("/v2".into())),
            rewrite_host: Some("api.internal".into()),
            timeouts: ServiceTimeouts {
                request: Some(Duration::from_secs(30)),
                backend_request: Some(Duration::from_secs(5)),
            },
        },
        ServiceRule {
            route: ObjectRef::new("web", "site"),
            name: "1".into(),
            rewrite: Some(PathRewrite::FullPath("/index.html".into())),
            ..ServiceRule::default()
        },
    ])
}

/// A snapshot using every type and every variant the proxy reads.
fn sample() -> Snapshot {
    let mut api_keys = ApiKeys::default();
    let alice = Identity {
        key_id: "ai/alice-key".into(),
        team: Some("research".into()),
        user: Some("alice".into()),
        expires_at: Some(1_801_353_600),
    };
    api_keys.insert("tg-alice-secret", alice).unwrap();
    api_keys
        .insert_digest(
            [7; 32],
            Identity {
                key_id: "ai/bob-key".into(),
                ..Identity::default()
            },
        )
        .unwrap();
    let mut remote = JwtProvider::new(
        "ai/sso",
        "https://sso.example.com",
        KeySource::Remote {
            url: "https://sso.example.com/jwks.json".into(),
            refresh_interval: Duration::from_secs(600),
        },
    );
    remote.audiences = vec!["tollgate".into()];
    remote.team_claim = Some("groups".into());
    Snapshot {
        version: 42,
        config: GatewayConfig {
            gateway: ObjectRef::new("ai", "gateway"),
            listeners: vec![
                Listener {
                    name: "http".into(),
                    port: 8080,
                    hostname: None,
                    tls: None,
                },
                Listener {
                    name: "https".into(),
                    port: 8443,
                    hostname: Some("*.example.com".into()),
                    tls: Some(TlsCertificate {
                        certificate_chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
                        private_key_pem: secret("tls-private-key"),
                    }),
                },
            ],
            providers: providers(),
            routes: RouteTable::new(rules()),
            api_keys,
            budgets: budgets(),
            jwt_providers: vec![
                remote,
                JwtProvider::new(
                    "ai/ci",
                    "https://ci",
                    KeySource::Inline("{\"keys\":[]}".into()),
                ),
            ],
            mcp: vec![mcp()],
            service_routes: service_routes(),
        },
    }
}

/// `sample()` encoded, as a JSON value to edit.
fn encoded_value() -> serde_json::Value {
    serde_json::from_slice(&encode(&sample())).unwrap()
}

fn decode_value(value: &serde_json::Value) -> Result<Snapshot, WireError> {
    decode(&serde_json::to_vec(value).unwrap())
}

/// The path and reason of an [`WireError::Invalid`].
fn invalid(result: Result<Snapshot, WireError>) -> (String, String) {
    match result {
        Err(WireError::Invalid { path, reason }) => (path, reason),
        other => panic!("expected an invalid snapshot, got {other:?}"),
    }
}

#[test]
fn a_snapshot_round_trips_with_its_indexes_rebuilt() {
    let snapshot = sample();
    let decoded = decode(&encode(&snapshot)).unwrap();
    assert_eq!(decoded, snapshot);
    let alice = decoded.config.api_keys.authenticate("tg-alice-secret");
    assert_eq!(alice.map(|i| i.key_id.as_str()), Some("ai/alice-key"));
    let no_headers = |_: &str, _: &str| false;
    let facts = RequestFacts {
        model: "claude",
        path: "/v1/messages",
        method: "POST",
        host: "api.example.com",
        header_is: &no_headers,
        query_is: &no_headers,
        prompt_tokens: 1,
        has_tools: false,
        has_images: false,
    };
    let rule = decoded.config.routes.lookup(&facts).unwrap();
    assert_eq!(decoded.config.routes.rule(rule).name, "exact");
    let web = RequestFacts {
        path: "/api/users",
        method: "GET",
        host: "www.example.com",
        ..facts
    };
    let found = decoded.config.service_routes.lookup(&web).unwrap();
    assert_eq!(decoded.config.service_routes.rule(found.rule).name, "1");
    assert_eq!(
        decoded.config.budgets.counter_key(0, 1),
        "ai/team/1/tokens/minute"
    );
}

#[test]
fn the_envelope_names_its_format_and_version() {
    let value = encoded_value();
    assert_eq!(value["format"], 2);
    assert_eq!(value["version"], 42);
    assert_eq!(value["config"]["gateway"], "ai/gateway");
}

#[test]
fn only_the_encoding_carries_secrets_and_key_digests() {
    let snapshot = sample();
    let encoded = String::from_utf8(encode(&snapshot)).unwrap();
    let displayed = serde_json::to_string(&snapshot.config).unwrap();
    for secret in [
        "sk-openai",
        "aws-secret",
        "aws-session",
        "gcp-private-key",
        "entra-secret",
        "ghp-token",
        "header-secret",
        "session-key-0123456789abcdef",
        "tls-private-key",
    ] {
        assert!(encoded.contains(secret), "{secret} missing from the wire");
        assert!(!displayed.contains(secret), "{secret} displayed");
    }
    let bob_digest = hex::encode([7; 32]);
    assert!(encoded.contains(&bob_digest));
    assert!(!displayed.contains(&bob_digest));
    assert!(
        !encoded.contains("tg-alice-secret"),
        "keys travel as digests"
    );
    assert!(displayed.contains("\"<redacted>\""));
    assert!(!encoded.contains("<redacted>"));
    assert_eq!(
        serde_json::to_string(&snapshot.config).unwrap(),
        displayed,
        "encoding leaves later displays redacted"
    );
}

#[test]
fn an_unknown_format_names_both_formats() {
    let mut value = encoded_value();
    value["format"] = 1.into();
    let error = decode_value(&value).unwrap_err();
    assert!(matches!(
        error,
        WireError::UnsupportedFormat {
            found: 1,
            supported: 2
        }
    ));
    let message = error.to_string();
    assert!(
        message.contains("format 1") && message.contains("format 2"),
        "{message}"
    );
    let future = br#"{"format": 7, "snapshot": "elsewhere"}"#;
    assert!(matches!(
        decode(future),
        Err(WireError::UnsupportedFormat { found: 7, .. })
    ));
}

#[test]
fn corrupt_input_is_not_a_snapshot() {
    let encoded = encode(&sample());
    for bytes in [
        &b""[..],
        b"not json",
        b"[]",
        b"{\"version\": 1, \"config\": {}}",
        b"{\"format\": \"1\", \"version\": 1, \"config\": {}}",
        &encoded[..encoded.len() / 2],
    ] {
        let error = decode(bytes).unwrap_err();
        assert!(matches!(error, WireError::Malformed(_)), "{error}");
        assert!(error.to_string().starts_with("not a Tollgate snapshot: "));
    }
}

#[test]
fn invalid_content_is_reported_with_its_path() {
    let cases: [(&str, serde_json::Value, &str, &str); 10] = [
        (
            "/config/providers/0/kind",
            "OpenAl".into(),
            "config.providers[0].kind",
            "unknown variant `OpenAl`",
        ),
        (
            "/config/providers/1/timeouts/connect",
            "1.5s".into(),
            "config.providers[1].timeouts.connect",
            "not a duration in milliseconds",
        ),
        (
            "/config/budgets/0/time_zone",
            "Mars/Olympus".into(),
            "config.budgets[0].time_zone",
            "unknown time zone",
        ),
        (
            "/config/gateway",
            "gateway".into(),
            "config.gateway",
            "namespace/name",
        ),
        (
            "/config/providers/0/api_key",
            "<redacted>".into(),
            "config.providers[0].api_key",
            "redacted",
        ),
        (
            "/config/api_keys/0/sha256",
            "xyz".into(),
            "config.api_keys[0].sha256",
            "\"xyz\" is not 64 hex digits",
        ),
        (
            "/config/routes/2/backends/0/provider",
            7.into(),
            "config.routes[2].backends[0].provider",
            "provider 7 does not exist",
        ),
        (
            "/config/service_routes/0/backends/1/port",
            0.into(),
            "config.service_routes[0].backends[1].port",
            "port 0",
        ),
        (
            "/config/service_routes/0/rewrite",
            serde_json::json!({"PrefixMatch": "v2"}),
            "config.service_routes[0].rewrite",
            "must start with /",
        ),
        (
            "/config/mcp/0/servers/0/argument_rules/0/deny",
            "(unclosed".into(),
            "config.mcp[0].servers[0].argument_rules[0].deny",
            "invalid deny regex",
        ),
    ];
    for (pointer, replacement, path, reason) in cases {
        let mut value = encoded_value();
        *value.pointer_mut(pointer).expect(pointer) = replacement;
        let (found_path, found_reason) = invalid(decode_value(&value));
        assert_eq!(found_path, path, "{found_reason}");
        assert!(found_reason.contains(reason), "{path}: {found_reason}");
        assert!(!found_reason.contains(" line "), "{path}: {found_reason}");
    }
}

#[test]
fn a_key_digest_given_twice_is_refused() {
    let mut value = encoded_value();
    let keys = value["config"]["api_keys"].as_array_mut().unwrap();
    let first = keys[0].clone();
    keys.push(first);
    let (path, reason) = invalid(decode_value(&value));
    assert_eq!(path, "config.api_keys");
    assert!(reason.contains("given twice"), "{reason}");
}
