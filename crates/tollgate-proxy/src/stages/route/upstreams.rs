//! What every request to a provider carries the same way, prepared once per snapshot instead
//! of once per request: the URL of each operation whose URL does not name the model, the
//! `Host` header of plain-HTTP providers, and the credential header.

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use tollgate_config::{Provider, ProviderId, Snapshot};

use super::headers::{Credential, credential};
use super::wire;
use crate::stages::endpoints::Operation;

/// The operations, in the order [`Prepared::urls`] holds them.
const OPERATIONS: [Operation; 3] = [
    Operation::Chat,
    Operation::Embeddings,
    Operation::CountTokens,
];

/// The prepared requests of one snapshot's providers.
#[derive(Debug, Default)]
pub(crate) struct Upstreams {
    providers: Vec<Prepared>,
}

/// One provider's prepared parts.
#[derive(Debug)]
struct Prepared {
    /// By operation (as [`OPERATIONS`]), then for a whole answer and for a stream; `None`
    /// where the URL names the model, or cannot be made.
    urls: [[Option<Uri>; 2]; 3],
    /// The credential header of its key, `None` when it could not be made (the request says
    /// why when it makes it).
    credential: Option<Option<Credential>>,
    /// The authority of the provider's endpoint, and the `Host` header naming it; `None`
    /// unless the endpoint is a plain `http://` URL.
    host: Option<(Authority, HeaderValue)>,
}

impl Upstreams {
    /// The prepared parts of `snapshot`'s providers.
    pub(crate) fn of(snapshot: &Snapshot) -> Self {
        let providers = snapshot
            .config
            .providers
            .iter()
            .map(|provider| Prepared {
                urls: OPERATIONS
                    .map(|operation| [false, true].map(|stream| url(provider, operation, stream))),
                credential: credential(provider, None).ok(),
                host: host(&provider.endpoint),
            })
            .collect();
        Self { providers }
    }

    /// The URL of `operation` on the provider `id`, when it is the same for every model.
    pub(crate) fn url(&self, id: ProviderId, operation: Operation, stream: bool) -> Option<&Uri> {
        let index = OPERATIONS.iter().position(|known| *known == operation)?;
        self.providers.get(id.0)?.urls[index][usize::from(stream)].as_ref()
    }

    /// The credential header of the provider `id`'s key, when prepared.
    pub(crate) fn credential(&self, id: ProviderId) -> Option<&Option<Credential>> {
        self.providers.get(id.0)?.credential.as_ref()
    }

    /// The `Host` header of a request to `uri` on the provider `id`, when prepared for that
    /// URI's authority. Otherwise the HTTP client makes it from the URI, for each request.
    pub(crate) fn host(&self, id: ProviderId, uri: &Uri) -> Option<&HeaderValue> {
        let (authority, host) = self.providers.get(id.0)?.host.as_ref()?;
        (uri.scheme() == Some(&Scheme::HTTP) && uri.authority() == Some(authority)).then_some(host)
    }
}

/// The authority of a plain `http://` `endpoint` and its `Host` header: the host, with the
/// port unless it is 80 (as HTTP clients write it). Only for plain HTTP, always HTTP/1.1: over
/// TLS the connection may turn out to be HTTP/2, where the authority travels as `:authority`
/// and the client adds `Host` only when it speaks HTTP/1.1.
fn host(endpoint: &str) -> Option<(Authority, HeaderValue)> {
    let uri = Uri::try_from(endpoint).ok()?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return None;
    }
    let authority = uri.authority()?.clone();
    let value = match authority.port_u16() {
        Some(port) if port != 80 => HeaderValue::try_from(format!("{}:{port}", authority.host())),
        _ => HeaderValue::from_str(authority.host()),
    };
    Some((authority, value.ok()?))
}

/// The URL of `operation` on `provider`, if it does not depend on the model.
fn url(provider: &Provider, operation: Operation, stream: bool) -> Option<Uri> {
    let one = wire::url(provider, operation, "model-one", stream).ok()?;
    let other = wire::url(provider, operation, "model-two", stream).ok()?;
    (one == other).then(|| Uri::try_from(one).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{GatewayConfig, ObjectRef, ProviderKind, Secret, Timeouts};

    fn provider(kind: ProviderKind, endpoint: &str) -> Provider {
        Provider {
            name: ObjectRef::new("default", "p"),
            kind,
            endpoint: endpoint.into(),
            api_key: Some(Secret::new("sk-1")),
            models: Default::default(),
            timeouts: Timeouts::default(),
            api_version: (kind == ProviderKind::AzureOpenAI).then(|| "2024-10-21".into()),
            account: None,
        }
    }

    fn upstreams(providers: Vec<Provider>) -> Upstreams {
        let config = GatewayConfig {
            providers,
            ..GatewayConfig::default()
        };
        Upstreams::of(&Snapshot { version: 1, config })
    }

    #[test]
    fn urls_that_name_no_model_are_prepared_as_wire_makes_them() {
        let upstreams = upstreams(vec![
            provider(ProviderKind::OpenAI, "https://api.openai.com/v1"),
            provider(ProviderKind::Gemini, "https://g/v1beta"),
            provider(
                ProviderKind::AzureOpenAI,
                "https://r.openai.azure.com/openai",
            ),
        ]);
        let chat = upstreams.url(ProviderId(0), Operation::Chat, true).unwrap();
        assert_eq!(chat, "https://api.openai.com/v1/chat/completions");
        assert!(
            upstreams
                .url(ProviderId(0), Operation::CountTokens, false)
                .is_none()
        );
        assert!(
            upstreams
                .url(ProviderId(1), Operation::Chat, false)
                .is_none()
        );
        assert!(
            upstreams
                .url(ProviderId(2), Operation::Chat, false)
                .is_none()
        );
        assert!(
            upstreams
                .url(ProviderId(3), Operation::Chat, false)
                .is_none()
        );
        let (name, value) = upstreams
            .credential(ProviderId(0))
            .unwrap()
            .clone()
            .unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer sk-1")
        );
        assert!(value.is_sensitive());
        let (name, _) = upstreams
            .credential(ProviderId(1))
            .unwrap()
            .clone()
            .unwrap();
        assert_eq!(name, "x-goog-api-key");
    }

    #[test]
    fn the_host_header_of_plain_http_names_the_port_unless_it_is_80() {
        let upstreams = upstreams(vec![
            provider(ProviderKind::OpenAI, "http://user@127.0.0.1:8080/v1"),
            provider(ProviderKind::OpenAI, "http://h:80/v1"),
            provider(ProviderKind::OpenAI, "http://h:443/v1"),
            provider(ProviderKind::OpenAI, "https://api.openai.com/v1"),
            provider(ProviderKind::OpenAI, "not a url"),
        ]);
        let host = |id, uri: &str| {
            let uri = Uri::try_from(uri).unwrap();
            upstreams
                .host(ProviderId(id), &uri)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let local = "http://user@127.0.0.1:8080/v1/chat/completions";
        assert_eq!(host(0, local).as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(host(1, "http://h:80/v1/x").as_deref(), Some("h"));
        assert_eq!(host(2, "http://h:443/v1/x").as_deref(), Some("h:443"));
        assert_eq!(host(0, "http://elsewhere/v1/chat/completions"), None);
        assert_eq!(host(0, "https://user@127.0.0.1:8080/v1/x"), None);
        // Over TLS the client decides (HTTP/2 carries no Host).
        assert_eq!(host(3, "https://api.openai.com/v1/chat/completions"), None);
        assert_eq!(host(4, local), None);
        assert_eq!(host(5, local), None);
    }
}
