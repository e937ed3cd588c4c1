//! The headers sent upstream: the caller's, minus what must not leave the gateway, plus the
//! provider's credential in the header its API expects.

use http::{HeaderValue, header};
use tollgate_config::{Provider, ProviderKind};

use crate::error::ProxyError;
use crate::upstream::strip_hop_by_hop;

/// Caller headers never sent upstream: the caller's credentials and cookies; framing that
/// Tollgate sets itself; and `accept-encoding`, because usage can only be read from a response
/// that is not compressed.
const CALLER_ONLY: [header::HeaderName; 6] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::ACCEPT_ENCODING,
    header::HeaderName::from_static("x-api-key"),
];

/// The Anthropic API version sent when the caller (speaking another dialect) gave none.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A provider's credential header.
pub(crate) type Credential = (header::HeaderName, HeaderValue);

/// Copies the caller's headers that are safe to pass on, and sets the provider's `credential`
/// (see [`credential`]). `anthropic-*` headers reach only Anthropic upstreams, where the
/// caller's `anthropic-version` is honoured.
pub(super) fn forward_headers(
    from: &http::HeaderMap,
    to: &mut http::HeaderMap,
    provider: &Provider,
    credential: Option<Credential>,
) {
    // Room for what is added here and for `Host` (added next for a plain-HTTP provider, by
    // the HTTP client for one over TLS that speaks HTTP/1.1).
    to.reserve(from.len() + 3);
    let anthropic = provider.kind == ProviderKind::Anthropic;
    for (name, value) in from {
        if !CALLER_ONLY.contains(name) && (anthropic || !name.as_str().starts_with("anthropic-")) {
            to.append(name.clone(), value.clone());
        }
    }
    if anthropic && !to.contains_key("anthropic-version") {
        to.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    strip_hop_by_hop(to);
    to.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some((name, value)) = credential {
        to.insert(name, value);
    }
}

/// The provider's credential in the header its API expects: its key, or `access_token` (a
/// bearer) when one was minted for it (Vertex AI, Entra ID). A Bedrock provider with IAM
/// credentials gets none here: its request is signed once complete.
pub(crate) fn credential(
    provider: &Provider,
    access_token: Option<&str>,
) -> Result<Option<Credential>, ProxyError> {
    let credential = access_token
        .map(|token| (token, true))
        .or(provider.api_key.as_ref().map(|key| (key.expose(), false)));
    let Some((key, minted)) = credential else {
        return Ok(None);
    };
    let (name, value) = match provider.kind {
        _ if minted => (
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Bearer {key}")),
        ),
        ProviderKind::OpenAI
        | ProviderKind::OpenAICompatible
        | ProviderKind::Bedrock
        | ProviderKind::VertexAI => (
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Bearer {key}")),
        ),
        ProviderKind::AzureOpenAI => (
            header::HeaderName::from_static("api-key"),
            HeaderValue::try_from(key),
        ),
        ProviderKind::Anthropic => (
            header::HeaderName::from_static("x-api-key"),
            HeaderValue::try_from(key),
        ),
        ProviderKind::Gemini => (
            header::HeaderName::from_static("x-goog-api-key"),
            HeaderValue::try_from(key),
        ),
    };
    let mut value = value.map_err(|_| {
        ProxyError::Internal(format!(
            "the key of provider {} is not a valid header value",
            provider.name
        ))
    })?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{ObjectRef, Secret, Timeouts};

    /// Forwards `from` to `to` with the credential of `provider` (or `access_token`).
    fn forward(
        from: &http::HeaderMap,
        to: &mut http::HeaderMap,
        provider: &Provider,
        access_token: Option<&str>,
    ) {
        let credential = credential(provider, access_token).unwrap();
        forward_headers(from, to, provider, credential);
    }

    fn provider(api_key: Option<&str>) -> Provider {
        Provider {
            name: ObjectRef::new("default", "openai"),
            kind: ProviderKind::OpenAI,
            endpoint: "http://127.0.0.1:9100/v1".into(),
            api_key: api_key.map(Secret::new),
            models: Default::default(),
            timeouts: Timeouts::default(),
            api_version: None,
            account: None,
        }
    }

    #[test]
    fn caller_credentials_never_go_upstream() {
        let mut from = http::HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer tg-alice-secret"),
            ("x-api-key", "tg-alice-secret"),
            ("cookie", "session=1"),
            ("accept-encoding", "gzip, br"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("content-length", "10"),
            ("content-type", "text/plain"),
            ("x-request-id", "abc"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ] {
            from.append(name, HeaderValue::from_static(value));
        }
        let mut to = http::HeaderMap::new();
        forward(&from, &mut to, &provider(Some("sk-upstream")), None);
        let mut names: Vec<&str> = to.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "authorization",
                "content-type",
                "traceparent",
                "x-request-id"
            ]
        );
        assert_eq!(to[header::AUTHORIZATION], "Bearer sk-upstream");
        assert!(to[header::AUTHORIZATION].is_sensitive());
        assert_eq!(to[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn each_provider_kind_gets_its_credential_header() {
        let mut from = http::HeaderMap::new();
        from.insert("anthropic-version", HeaderValue::from_static("2024-01-01"));
        from.insert("anthropic-beta", HeaderValue::from_static("x"));
        for (kind, name, value) in [
            (ProviderKind::AzureOpenAI, "api-key", "k"),
            (ProviderKind::Anthropic, "x-api-key", "k"),
            (ProviderKind::Gemini, "x-goog-api-key", "k"),
        ] {
            let mut to = http::HeaderMap::new();
            let provider = Provider {
                kind,
                ..provider(Some("k"))
            };
            forward(&from, &mut to, &provider, None);
            assert_eq!(to[name], value, "{kind:?}");
            assert!(to.get(header::AUTHORIZATION).is_none(), "{kind:?}");
            assert_eq!(
                to.contains_key("anthropic-beta"),
                kind == ProviderKind::Anthropic
            );
        }
        let anthropic = Provider {
            kind: ProviderKind::Anthropic,
            ..provider(None)
        };
        let mut to = http::HeaderMap::new();
        forward(&from, &mut to, &anthropic, None);
        assert_eq!(
            to["anthropic-version"], "2024-01-01",
            "the caller's is honoured"
        );
        let mut to = http::HeaderMap::new();
        forward(&http::HeaderMap::new(), &mut to, &anthropic, None);
        assert_eq!(to["anthropic-version"], ANTHROPIC_VERSION);
    }

    #[test]
    fn a_minted_token_is_a_bearer_credential() {
        let vertex = Provider {
            kind: ProviderKind::VertexAI,
            ..provider(None)
        };
        let mut to = http::HeaderMap::new();
        forward(&http::HeaderMap::new(), &mut to, &vertex, Some("ya29.t"));
        assert_eq!(to[header::AUTHORIZATION], "Bearer ya29.t");
        assert!(to[header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn an_entra_token_replaces_the_azure_api_key() {
        let azure = Provider {
            kind: ProviderKind::AzureOpenAI,
            ..provider(None)
        };
        let mut to = http::HeaderMap::new();
        forward(&http::HeaderMap::new(), &mut to, &azure, Some("eyJ0"));
        assert_eq!(to[header::AUTHORIZATION], "Bearer eyJ0");
        assert!(to.get("api-key").is_none());
    }

    #[test]
    fn a_provider_without_a_key_gets_no_authorization() {
        let mut from = http::HeaderMap::new();
        from.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tg-alice-secret"),
        );
        let mut to = http::HeaderMap::new();
        forward(&from, &mut to, &provider(None), None);
        assert!(to.get(header::AUTHORIZATION).is_none());
    }
}
