//! ModelProviders: endpoint, credential, prices and timeouts.

use std::time::Duration;
use tollgate_config::{CloudAccount, ObjectRef, Pricing, Provider, ProviderKind, Timeouts};

use super::{assert_clean, diagnostic, gateway, provider, reasons, route, run, secret};
use crate::{Diagnostic, Translation};

/// Secrets the credential cases refer to: `text` holds a text `apiKey`, `binary` bytes that
/// are not UTF-8, `blank` a key with a space, `newline` `sk-nl` plus a trailing newline.
/// `aws` holds IAM credentials, `aws-temporary` a session token too, `gcp` a service account
/// key file under `key.json`, `gcp-user` a key file of another type.
fn credentials() -> [String; 8] {
    [
        secret("default", "text", "{}", "stringData: {apiKey: sk-text}"),
        secret("default", "binary", "{}", "data: {apiKey: //4=}"),
        secret("default", "blank", "{}", "stringData: {apiKey: \"sk one\"}"),
        secret("default", "newline", "{}", "data: {apiKey: c2stbmwK}"),
        secret(
            "default",
            "aws",
            "{}",
            "stringData: {AWS_ACCESS_KEY_ID: AKIDEXAMPLE, AWS_SECRET_ACCESS_KEY: secret}",
        ),
        secret(
            "default",
            "aws-temporary",
            "{}",
            "stringData: {AWS_ACCESS_KEY_ID: ASIAEXAMPLE, AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: token}",
        ),
        secret(
            "default",
            "gcp",
            "{}",
            &format!(
                "stringData: {{key.json: '{}'}}",
                key_file("service_account")
            ),
        ),
        secret(
            "default",
            "gcp-user",
            "{}",
            &format!(
                "stringData: {{key.json: '{}'}}",
                key_file("authorized_user")
            ),
        ),
    ]
}

/// A Google key file of `kind` holding the proxy's test RSA key.
fn key_file(kind: &str) -> String {
    let pem = include_str!("../../../../tollgate-proxy/tests/fixtures/service_account_key.pem");
    serde_json::json!({
        "type": kind,
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "gw@p.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:9100/token",
    })
    .to_string()
}

/// Translates the providers with a route that sends one rule to each of them through
/// `default/ai-gateway`.
fn run_providers(providers: &[String]) -> Translation {
    let backends: Vec<String> = (0..providers.len())
        .map(|i| format!("{{backends: [{{provider: p{i}}}]}}"))
        .collect();
    let route = route(
        "default",
        "chat",
        &format!(
            "{{parentRefs: [{{name: ai-gateway}}], rules: [{}]}}",
            backends.join(", ")
        ),
    );
    let gateway = gateway(
        "default",
        "ai-gateway",
        "[{name: http, protocol: HTTP, port: 8080}]",
    );
    let mut documents: Vec<String> = providers
        .iter()
        .enumerate()
        .map(|(i, spec)| provider("default", &format!("p{i}"), spec))
        .collect();
    documents.extend([gateway, route]);
    documents.extend(credentials());
    run(&documents.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The translated providers of `default/ai-gateway`, in the order the route uses them.
fn providers(translation: &Translation) -> &[Provider] {
    &translation.configs[&ObjectRef::new("default", "ai-gateway")].providers
}

/// Checks that a provider spec is refused with one error of `reason` on `field`, and that the
/// route using it is left out. Returns the error.
fn assert_refused(spec: &str, reason: &str, field: &str) -> Diagnostic {
    let translation = run_providers(&[spec.to_string()]);
    let found = diagnostic(
        &translation,
        reason,
        &format!("error ModelProvider default/p0 {field}"),
    );
    diagnostic(
        &translation,
        "InvalidBackend",
        "error AIRoute default/chat spec.rules[0].backends[0].provider",
    );
    assert_eq!(reasons(&translation), [reason, "InvalidBackend"], "{found}");
    assert!(providers(&translation).is_empty(), "{spec}");
    found.clone()
}

#[test]
fn defaults_and_normalisation() {
    let translation = run_providers(&[
        "{type: OpenAI}".into(),
        r#"{type: OpenAICompatible, endpoint: "http://vllm.internal:8000/v1/", timeouts: {connect: 500ms, responseHeaders: 1m30s},
            models: [{name: llama}, {name: qwen, pricing: {inputPerMillionTokens: "1", outputPerMillionTokens: "2.5", cachedInputPerMillionTokens: "0.1"}}]}"#
            .into(),
        r#"{type: OpenAI, endpoint: "https://proxy.example.com", auth: {secretRef: {name: text, key: apiKey}}, timeouts: {responseHeaders: 5m}}"#.into(),
        "{type: OpenAI, auth: {secretRef: {name: newline, key: apiKey}}}".into(),
    ]);
    assert_clean(&translation);
    let [openai, local, proxied, trimmed] = providers(&translation) else {
        panic!("four providers")
    };
    assert_eq!(
        trimmed.api_key.as_ref().map(|k| k.expose()),
        Some("sk-nl"),
        "a trailing newline from `echo | base64` is not part of the key"
    );

    assert_eq!(
        (openai.kind, openai.endpoint.as_str()),
        (ProviderKind::OpenAI, "https://api.openai.com/v1")
    );
    assert!(openai.api_key.is_none() && openai.models.is_empty());
    assert_eq!(openai.timeouts, Timeouts::default());

    assert_eq!(
        (local.kind, local.endpoint.as_str()),
        (
            ProviderKind::OpenAICompatible,
            "http://vllm.internal:8000/v1"
        )
    );
    let timeouts = Timeouts {
        connect: Duration::from_millis(500),
        response_headers: Duration::from_secs(90),
    };
    assert_eq!(local.timeouts, timeouts);
    assert_eq!(
        local.models["llama"],
        Pricing::default(),
        "a model without pricing costs nothing"
    );
    let qwen = Pricing {
        input_per_million: "1".parse().unwrap(),
        cached_input_per_million: "0.1".parse().unwrap(),
        output_per_million: "2.5".parse().unwrap(),
    };
    assert_eq!(local.models["qwen"], qwen);

    assert_eq!(
        proxied.api_key.as_ref().map(|k| k.expose()),
        Some("sk-text")
    );
    assert_eq!(
        proxied.endpoint, "https://proxy.example.com/v1",
        "a bare origin gets the API's /v1"
    );
    assert_eq!(proxied.timeouts.response_headers, Duration::from_secs(300));
    assert_eq!(proxied.timeouts.connect, Timeouts::default().connect);
}

#[test]
fn anthropic_gemini_and_azure_have_their_roots_and_azure_its_api_version() {
    let translation = run_providers(&[
        "{type: Anthropic}".into(),
        "{type: Gemini}".into(),
        r#"{type: Gemini, endpoint: "http://127.0.0.1:9100"}"#.into(),
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com"}"#.into(),
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com/openai", azure: {apiVersion: 2025-04-01-preview}}"#.into(),
        r#"{type: Anthropic, endpoint: "http://127.0.0.1:9100"}"#.into(),
    ]);
    assert_clean(&translation);
    let endpoints: Vec<(&str, Option<&str>)> = providers(&translation)
        .iter()
        .map(|p| (p.endpoint.as_str(), p.api_version.as_deref()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("https://api.anthropic.com/v1", None),
            ("https://generativelanguage.googleapis.com/v1beta", None),
            ("http://127.0.0.1:9100/v1beta", None),
            ("https://r.openai.azure.com/openai", Some("2024-10-21")),
            (
                "https://r.openai.azure.com/openai",
                Some("2025-04-01-preview")
            ),
            ("http://127.0.0.1:9100/v1", None),
        ]
    );
}

#[test]
fn azure_needs_an_endpoint_and_a_clean_api_version() {
    assert_refused("{type: AzureOpenAI}", "MissingEndpoint", "spec.endpoint");
    assert_refused(
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", azure: {apiVersion: "2024-10-21&x=1"}}"#,
        "InvalidApiVersion",
        "spec.azure.apiVersion",
    );
    let translation =
        run_providers(&[r#"{type: OpenAI, azure: {apiVersion: "2024-10-21"}}"#.into()]);
    diagnostic(
        &translation,
        "IgnoredField",
        "warning ModelProvider default/p0 spec.azure",
    );
    assert_eq!(providers(&translation)[0].api_version, None);
}

#[test]
fn azure_can_use_entra_id_instead_of_an_api_key() {
    let translation = run_providers(&[
        r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", azure: {entra: {tenantId: contoso.onmicrosoft.com, clientId: app-1, clientSecretRef: {name: text, key: apiKey}}}}"#.into(),
    ]);
    assert_clean(&translation);
    let Some(CloudAccount::Azure(app)) = &providers(&translation)[0].account else {
        panic!("{:?}", providers(&translation))
    };
    assert_eq!(
        app.token_uri,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(app.client_id, "app-1");
    assert_eq!(app.client_secret.expose(), "sk-text");
    assert_eq!(app.scope, "https://cognitiveservices.azure.com/.default");
    for (spec, reason, field) in [
        (
            r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", auth: {secretRef: {name: text, key: apiKey}}, azure: {entra: {tenantId: t, clientId: c, clientSecretRef: {name: text, key: apiKey}}}}"#,
            "ConflictingCredentials",
            "spec.auth",
        ),
        (
            r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", azure: {entra: {tenantId: "t/../x", clientId: c, clientSecretRef: {name: text, key: apiKey}}}}"#,
            "InvalidEntraSettings",
            "spec.azure.entra",
        ),
        (
            r#"{type: AzureOpenAI, endpoint: "https://r.openai.azure.com", azure: {entra: {tenantId: t, clientId: c, clientSecretRef: {name: missing, key: s}}}}"#,
            "SecretNotFound",
            "spec.azure.entra.clientSecretRef",
        ),
    ] {
        assert_refused(spec, reason, field);
    }
}

#[test]
fn bedrock_providers_sign_with_iam_credentials_or_send_an_api_key() {
    let translation = run_providers(&[
        "{type: Bedrock, bedrock: {region: us-east-1, credentialsSecretRef: {name: aws}}}".into(),
        "{type: Bedrock, bedrock: {region: eu-west-3, credentialsSecretRef: {name: aws-temporary}}, endpoint: \"http://127.0.0.1:9100\"}".into(),
        "{type: Bedrock, bedrock: {region: us-west-2}, auth: {secretRef: {name: text, key: apiKey}}}".into(),
    ]);
    assert_clean(&translation);
    let [signed, temporary, keyed] = providers(&translation) else {
        panic!("three providers")
    };
    assert_eq!(signed.kind, ProviderKind::Bedrock);
    assert_eq!(
        signed.endpoint,
        "https://bedrock-runtime.us-east-1.amazonaws.com"
    );
    let Some(CloudAccount::Aws(account)) = &signed.account else {
        panic!("{signed:?}")
    };
    assert_eq!(account.region, "us-east-1");
    let credentials = account.credentials.as_ref().unwrap();
    assert_eq!(credentials.access_key_id, "AKIDEXAMPLE");
    assert_eq!(credentials.secret_access_key.expose(), "secret");
    assert!(credentials.session_token.is_none());
    assert_eq!(
        temporary.endpoint, "http://127.0.0.1:9100",
        "a bare origin is Bedrock's root"
    );
    let Some(CloudAccount::Aws(account)) = &temporary.account else {
        panic!("{temporary:?}")
    };
    let token = account.credentials.as_ref().unwrap().session_token.as_ref();
    assert_eq!(token.unwrap().expose(), "token");
    let Some(CloudAccount::Aws(account)) = &keyed.account else {
        panic!("{keyed:?}")
    };
    assert!(account.credentials.is_none());
    assert_eq!(keyed.api_key.as_ref().unwrap().expose(), "sk-text");
}

#[test]
fn bedrock_providers_need_a_region_and_one_credential() {
    for (spec, reason, field) in [
        ("{type: Bedrock}", "MissingSettings", "spec.bedrock"),
        (
            "{type: Bedrock, bedrock: {region: \"us-east-1.evil.com\", credentialsSecretRef: {name: aws}}}",
            "InvalidRegion",
            "spec.bedrock.region",
        ),
        (
            "{type: Bedrock, bedrock: {region: us-east-1}}",
            "MissingCredentials",
            "spec.bedrock.credentialsSecretRef",
        ),
        (
            "{type: Bedrock, bedrock: {region: us-east-1, credentialsSecretRef: {name: aws}}, auth: {secretRef: {name: text, key: apiKey}}}",
            "ConflictingCredentials",
            "spec.auth",
        ),
        (
            "{type: Bedrock, bedrock: {region: us-east-1, credentialsSecretRef: {name: text}}}",
            "SecretKeyNotFound",
            "spec.bedrock.credentialsSecretRef",
        ),
    ] {
        assert_refused(spec, reason, field);
    }
}

#[test]
fn vertex_providers_mint_tokens_from_a_service_account() {
    let translation = run_providers(&[
        "{type: VertexAI, vertex: {project: my-project, location: us-central1, serviceAccountSecretRef: {name: gcp, key: key.json}}}".into(),
        "{type: VertexAI, vertex: {project: my-project, location: global, serviceAccountSecretRef: {name: gcp, key: key.json}}}".into(),
        "{type: VertexAI, endpoint: \"http://127.0.0.1:9100\", vertex: {project: p, location: europe-west4, serviceAccountSecretRef: {name: gcp, key: key.json}}}".into(),
    ]);
    assert_clean(&translation);
    let [regional, global, local] = providers(&translation) else {
        panic!("three providers")
    };
    assert_eq!(
        regional.endpoint,
        "https://us-central1-aiplatform.googleapis.com/v1"
    );
    assert_eq!(global.endpoint, "https://aiplatform.googleapis.com/v1");
    assert_eq!(local.endpoint, "http://127.0.0.1:9100/v1");
    let Some(CloudAccount::Gcp(account)) = &regional.account else {
        panic!("{regional:?}")
    };
    assert_eq!(account.project, "my-project");
    assert_eq!(account.location, "us-central1");
    let key = &account.service_account;
    assert_eq!(key.client_email, "gw@p.iam.gserviceaccount.com");
    assert_eq!(key.private_key_id.as_deref(), Some("k1"));
    assert_eq!(key.token_uri, "http://127.0.0.1:9100/token");
    assert!(
        key.private_key
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

#[test]
fn vertex_providers_need_a_usable_service_account_key() {
    for (spec, reason, field) in [
        ("{type: VertexAI}", "MissingSettings", "spec.vertex"),
        (
            "{type: VertexAI, vertex: {project: p, location: us-central1, serviceAccountSecretRef: {name: gcp, key: other.json}}}",
            "SecretKeyNotFound",
            "spec.vertex.serviceAccountSecretRef",
        ),
        (
            "{type: VertexAI, vertex: {project: p, location: us-central1, serviceAccountSecretRef: {name: text, key: apiKey}}}",
            "InvalidServiceAccountKey",
            "spec.vertex.serviceAccountSecretRef",
        ),
        (
            "{type: VertexAI, vertex: {project: p, location: us-central1, serviceAccountSecretRef: {name: gcp-user, key: key.json}}}",
            "InvalidServiceAccountKey",
            "spec.vertex.serviceAccountSecretRef",
        ),
        (
            "{type: VertexAI, vertex: {project: \"p/../x\", location: us-central1, serviceAccountSecretRef: {name: gcp, key: key.json}}}",
            "InvalidProject",
            "spec.vertex.project",
        ),
    ] {
        assert_refused(spec, reason, field);
    }
}

#[test]
fn bad_endpoints_are_refused() {
    assert_refused(
        "{type: OpenAICompatible}",
        "MissingEndpoint",
        "spec.endpoint",
    );
    for endpoint in [
        "not a url",
        "/v1",
        "ftp://files.example.com",
        "http://vllm:8000/v1?debug=1",
        "http://vllm:8000/#top",
        "https://user:pass@api.example.com",
    ] {
        assert_refused(
            &format!("{{type: OpenAICompatible, endpoint: {endpoint:?}}}"),
            "InvalidEndpoint",
            "spec.endpoint",
        );
    }
}

#[test]
fn unusable_credentials_are_refused() {
    let cases = [
        (
            "{name: missing, key: apiKey}",
            "SecretNotFound",
            "Secret default/missing does not exist",
        ),
        (
            "{name: text, key: token}",
            "SecretKeyNotFound",
            "Secret default/text has no key \"token\"",
        ),
        (
            "{name: blank, key: apiKey}",
            "InvalidSecret",
            "characters an HTTP header cannot carry",
        ),
        (
            "{name: binary, key: apiKey}",
            "InvalidSecret",
            "not UTF-8 text",
        ),
    ];
    for (secret_ref, reason, message) in cases {
        let spec = format!("{{type: OpenAI, auth: {{secretRef: {secret_ref}}}}}");
        let found = assert_refused(&spec, reason, "spec.auth.secretRef");
        assert!(found.message.contains(message), "{found}");
    }
}

#[test]
fn bad_prices_are_refused() {
    for price in ["-1", "1e3", "abc", "", "1.2.3", "0x10", " 1", "+1", "."] {
        for (field, pricing) in [
            (
                "inputPerMillionTokens",
                format!("{{inputPerMillionTokens: {price:?}, outputPerMillionTokens: \"1\"}}"),
            ),
            (
                "outputPerMillionTokens",
                format!("{{inputPerMillionTokens: \"1\", outputPerMillionTokens: {price:?}}}"),
            ),
            (
                "cachedInputPerMillionTokens",
                format!(
                    "{{inputPerMillionTokens: \"1\", outputPerMillionTokens: \"1\", cachedInputPerMillionTokens: {price:?}}}"
                ),
            ),
        ] {
            let spec =
                format!("{{type: OpenAI, models: [{{name: gpt-4o-mini, pricing: {pricing}}}]}}");
            assert_refused(
                &spec,
                "InvalidPrice",
                &format!("spec.models[0].pricing.{field}"),
            );
        }
    }
}

#[test]
fn bad_durations_are_refused() {
    for duration in ["10", "ten seconds", "1d", "0s", "-1s", "1.5s"] {
        for (field, timeouts) in [
            ("connect", format!("{{connect: {duration:?}}}")),
            (
                "responseHeaders",
                format!("{{responseHeaders: {duration:?}}}"),
            ),
        ] {
            assert_refused(
                &format!("{{type: OpenAI, timeouts: {timeouts}}}"),
                "InvalidDuration",
                &format!("spec.timeouts.{field}"),
            );
        }
    }
}

#[test]
fn empty_and_duplicate_model_names_are_refused() {
    assert_refused(
        "{type: OpenAI, models: [{name: gpt-4o}, {name: \"\"}]}",
        "InvalidModel",
        "spec.models[1].name",
    );
    assert_refused(
        "{type: OpenAI, models: [{name: gpt-4o}, {name: gpt-4o-mini}, {name: gpt-4o}]}",
        "DuplicateModel",
        "spec.models[2].name",
    );
}

#[test]
fn every_error_of_a_provider_is_reported() {
    let spec = r#"{type: OpenAI, auth: {secretRef: {name: missing, key: apiKey}},
                   models: [{name: a, pricing: {inputPerMillionTokens: x, outputPerMillionTokens: "1"}}, {name: b}, {name: b}]}"#;
    let translation = run_providers(&[spec.into()]);
    assert_eq!(
        reasons(&translation),
        [
            "SecretNotFound",
            "InvalidPrice",
            "DuplicateModel",
            "InvalidBackend"
        ]
    );
}

#[test]
fn providers_are_checked_even_when_no_route_uses_them() {
    let unused = provider("default", "unused", "{type: Bedrock}");
    let translation = run(&[&unused]);
    diagnostic(
        &translation,
        "MissingSettings",
        "error ModelProvider default/unused spec.bedrock",
    );
}
