//! The snapshot wire format over translated configurations: every example and a fixture that
//! uses every kind of provider, credential, policy and endpoint come back from the bytes the
//! controller sends exactly as translation made them.

use std::path::{Path, PathBuf};
use tollgate_config::wire::{decode, encode};
use tollgate_config::{CloudAccount, GatewayConfig, KeySource, ProviderKind, Snapshot};

use super::{assert_clean, gateway, provider, route, run, run_options, secret};
use crate::{files, translate};

/// Every configuration of `translation`, encoded and decoded.
fn assert_round_trips(configs: impl IntoIterator<Item = GatewayConfig>) {
    for (version, config) in (1..).zip(configs) {
        let snapshot = Snapshot { version, config };
        let bytes = encode(&snapshot);
        let decoded = decode(&bytes)
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", snapshot.config.gateway));
        assert_eq!(decoded, snapshot, "{}", snapshot.config.gateway);
    }
}

/// The folders under `examples/`, each read as `tollgate run -f examples/<name>/` reads it.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

#[test]
fn every_example_round_trips() {
    let folders = examples();
    assert!(!folders.is_empty(), "no examples found");
    for folder in folders {
        let (resources, diagnostics) = files::load(std::slice::from_ref(&folder)).unwrap();
        let translation = translate(&resources, &run_options());
        assert!(
            diagnostics.is_empty() && !translation.has_errors(),
            "{}: {diagnostics:#?} {:#?}",
            folder.display(),
            translation.diagnostics
        );
        assert!(!translation.configs.is_empty(), "{}", folder.display());
        assert_round_trips(translation.configs.into_values());
    }
}

/// A Google service account key file holding the proxy's test RSA key.
fn key_file() -> String {
    let pem = include_str!("../../../../tollgate-proxy/tests/fixtures/service_account_key.pem");
    serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "gw@p.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:9100/token",
    })
    .to_string()
}

/// Providers of every kind, cloud accounts of every kind among them.
const PROVIDERS: [(&str, &str); 9] = [
    (
        "openai",
        r#"{type: OpenAI, auth: {secretRef: {name: upstream, key: apiKey}}, models: [{name: gpt-4o-mini, pricing: {inputPerMillionTokens: "0.15", cachedInputPerMillionTokens: "0.075", outputPerMillionTokens: "0.60"}}]}"#,
    ),
    (
        "vllm",
        r#"{type: OpenAICompatible, endpoint: "http://vllm.internal:8000/v1", timeouts: {connect: 500ms, responseHeaders: 1m30s}, models: [{name: llama}]}"#,
    ),
    (
        "anthropic",
        "{type: Anthropic, auth: {secretRef: {name: upstream, key: apiKey}}}",
    ),
    ("gemini", "{type: Gemini}"),
    (
        "azure",
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", auth: {secretRef: {name: upstream, key: apiKey}}, azure: {apiVersion: 2025-04-01-preview}}"#,
    ),
    (
        "azure-entra",
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", azure: {entra: {tenantId: contoso.onmicrosoft.com, clientId: app-1, clientSecretRef: {name: upstream, key: apiKey}}}}"#,
    ),
    (
        "bedrock",
        "{type: Bedrock, bedrock: {region: eu-west-3, credentialsSecretRef: {name: aws}}}",
    ),
    (
        "bedrock-key",
        "{type: Bedrock, bedrock: {region: us-west-2}, auth: {secretRef: {name: upstream, key: apiKey}}}",
    ),
    (
        "vertex",
        "{type: VertexAI, vertex: {project: my-project, location: us-central1, serviceAccountSecretRef: {name: gcp, key: key.json}}}",
    ),
];

/// A route sending a rule to each provider, with matches, access and a full policy.
const ROUTE: &str = r#"{parentRefs: [{name: ai-gateway}], access: {teams: [research]}, rules: [
    {name: gold, matches: [{modelPrefix: gpt-4, headers: [{name: X-Tier, value: gold}], path: /v1/chat/completions, promptTokens: {min: 10, max: 900}, hasTools: true, hasImages: false}],
     backends: [{provider: openai, model: gpt-4o-mini, weight: 3}, {provider: azure, weight: 1}, {provider: azure-entra, priority: 1}],
     access: {users: [alice], keys: [alice-key]},
     loadBalancer: LatencyAware, retry: {attempts: 4, on: [Timeout, RateLimited], backoff: {base: 10ms, max: 2s}, budget: {percent: 50, minPerSecond: 1}},
     timeouts: {firstByte: 800ms, request: 1m}, outlierDetection: {consecutiveFailures: 2, ejectionTime: 5s}},
    {matches: [{model: llama}], backends: [{provider: vllm}], loadBalancer: CostAware},
    {matches: [{model: claude}], backends: [{provider: anthropic}, {provider: vertex, model: claude-sonnet}], loadBalancer: LeastRequest},
    {matches: [{modelPrefix: gemini}], backends: [{provider: gemini}, {provider: vertex}]},
    {backends: [{provider: bedrock}, {provider: bedrock-key}]},
    {name: tools, matches: [{path: /mcp}], mcp: {servers: [github, local.tools], sessionKeyRef: {name: mcp-key, key: key}}}]}"#;

const MCP_SERVERS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: github, namespace: default}
spec:
  url: https://mcp.example.com/mcp
  auth: {name: tokens, key: github}
  headers: [{name: X-Team, secretRef: {name: tokens, key: team}}]
  tools: {allow: ["get_*"], deny: ["get_secret"]}
  access: [{teams: [research], allow: ["*"]}, {users: [bob], deny: ["delete_*"]}]
  argumentRules: [{tool: "*", argument: "*", deny: "rm -rf"}, {tool: "run_*", argument: command, deny: "(?i)sudo"}]
  timeouts: {request: 5s}
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: local.tools, namespace: default}
spec: {url: "http://127.0.0.1:9200/mcp", toolPrefix: local, transport: SSE}
"#;

const BUDGETS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: BudgetPolicy
metadata: {name: monthly, namespace: default}
spec: {subject: {kind: Team, name: research}, limits: [{window: Month, usd: "100.25"}, {window: Minute, tokens: 50000}, {window: Minute, requests: 60}]}
---
apiVersion: tollgate.dev/v1alpha1
kind: BudgetPolicy
metadata: {name: alice-key, namespace: default}
spec: {subject: {kind: Key, name: alice-key}, limits: [{window: Day, usd: "0.5"}], enforcement: Soft, failureMode: Open, alertThresholds: [50, 80], clamp: true, defaultMaxOutputTokens: 256, timeZone: Europe/Paris}
---
apiVersion: tollgate.dev/v1alpha1
kind: BudgetPolicy
metadata: {name: everyone, namespace: default}
spec: {subject: {kind: Global}, limits: [{window: Hour, requests: 1000}]}
"#;

const JWT_PROVIDERS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: JWTProvider
metadata: {name: sso, namespace: default}
spec: {issuer: "https://sso.example.com", audiences: [tollgate], jwks: {uri: "https://sso.example.com/jwks.json", refreshInterval: 10m}, claims: {user: email, team: groups}, clockSkew: 5s}
---
apiVersion: tollgate.dev/v1alpha1
kind: JWTProvider
metadata: {name: ci, namespace: default}
spec: {issuer: "https://ci.example.com", jwks: {inline: '{"keys": []}'}}
"#;

/// Secrets: upstream credentials, a TLS certificate, MCP tokens and two API keys, one in
/// plain text and one as a digest with an expiry.
fn secrets() -> Vec<String> {
    let api_key =
        r#"{tollgate.dev/api-key: "true", tollgate.dev/team: research, tollgate.dev/user: alice}"#;
    vec![
        secret(
            "default",
            "upstream",
            "{}",
            "stringData: {apiKey: sk-upstream}",
        ),
        secret(
            "default",
            "aws",
            "{}",
            "stringData: {AWS_ACCESS_KEY_ID: ASIAEXAMPLE, AWS_SECRET_ACCESS_KEY: aws-secret, AWS_SESSION_TOKEN: aws-token}",
        ),
        secret(
            "default",
            "gcp",
            "{}",
            &format!("stringData: {{key.json: '{}'}}", key_file()),
        ),
        secret(
            "default",
            "tls",
            "{}",
            "type: kubernetes.io/tls\nstringData: {tls.crt: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\", tls.key: \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\"}",
        ),
        secret(
            "default",
            "tokens",
            "{}",
            "stringData: {github: ghp-token, team: research}",
        ),
        secret(
            "default",
            "mcp-key",
            "{}",
            "stringData: {key: 0123456789abcdef0123456789abcdef}",
        ),
        secret(
            "default",
            "alice-key",
            api_key,
            "stringData: {key: tg-alice-secret}",
        ),
        secret(
            "default",
            "bob-key",
            r#"{tollgate.dev/api-key: "true"}"#,
            // `printf %s tg-bob-secret | sha256sum`
            "stringData: {sha256: 97396977a5876c939f7f5185a85b45cd91d5bee4f11ee993e25332aa208a3f8a}",
        ),
    ]
}

/// The fixture's one Gateway configuration, checked to hold what the test means to cover.
fn fixture() -> GatewayConfig {
    let mut documents = vec![gateway(
        "default",
        "ai-gateway",
        "[{name: http, protocol: HTTP, port: 8080}, {name: https, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{name: tls}]}}]",
    )];
    documents.extend(
        PROVIDERS
            .iter()
            .map(|(name, spec)| provider("default", name, spec)),
    );
    documents.push(route("default", "chat", ROUTE));
    documents.extend([MCP_SERVERS, BUDGETS, JWT_PROVIDERS].map(str::to_owned));
    documents.extend(secrets());
    let translation = run(&documents.iter().map(String::as_str).collect::<Vec<_>>());
    assert_clean(&translation);
    let [config]: [GatewayConfig; 1] = translation
        .configs
        .into_values()
        .collect::<Vec<_>>()
        .try_into()
        .expect("one Gateway");

    let kinds: Vec<ProviderKind> = config.providers.iter().map(|p| p.kind).collect();
    for kind in [
        ProviderKind::OpenAI,
        ProviderKind::OpenAICompatible,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::AzureOpenAI,
        ProviderKind::Bedrock,
        ProviderKind::VertexAI,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} provider");
    }
    let accounts = |pick: fn(&CloudAccount) -> bool| {
        config
            .providers
            .iter()
            .filter_map(|p| p.account.as_ref())
            .any(pick)
    };
    assert!(accounts(
        |a| matches!(a, CloudAccount::Aws(aws) if aws.credentials.is_some())
    ));
    assert!(accounts(|a| matches!(a, CloudAccount::Gcp(_))));
    assert!(accounts(|a| matches!(a, CloudAccount::Azure(_))));
    assert!(config.listeners.iter().any(|l| l.tls.is_some()));
    assert_eq!(config.routes.rules().len(), 5);
    assert_eq!(config.api_keys.len(), 2);
    assert_eq!(config.budgets.policies().len(), 3);
    let remote = |p: &&tollgate_config::JwtProvider| matches!(p.keys, KeySource::Remote { .. });
    assert_eq!(config.jwt_providers.iter().filter(remote).count(), 1);
    assert_eq!(config.jwt_providers.len(), 2);
    let [endpoint] = &config.mcp[..] else {
        panic!("one MCP endpoint: {:?}", config.mcp)
    };
    assert_eq!(endpoint.servers[0].argument_rules.len(), 2);
    assert_eq!(endpoint.servers[0].grants.len(), 2);
    config
}

#[test]
fn a_fixture_of_every_kind_round_trips() {
    assert_round_trips([fixture()]);
}

#[test]
fn the_bytes_carry_the_secrets_that_the_display_redacts() {
    let config = fixture();
    let snapshot = Snapshot { version: 1, config };
    let bytes = String::from_utf8(encode(&snapshot)).unwrap();
    let display = serde_json::to_string(&snapshot.config).unwrap();
    for secret in [
        "sk-upstream",
        "aws-secret",
        "aws-token",
        "BEGIN PRIVATE KEY",
        "ghp-token",
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(bytes.contains(secret), "{secret} is not sent");
        assert!(!display.contains(secret), "{secret} is displayed");
    }
    assert!(display.contains("<redacted>"));
    assert!(
        !bytes.contains("tg-alice-secret"),
        "API keys travel as digests"
    );
}
