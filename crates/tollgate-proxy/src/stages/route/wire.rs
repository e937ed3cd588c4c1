//! Where, and in which wire format, each kind of provider takes each operation.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tollgate_config::{Provider, ProviderKind};
use tollgate_llm::WireFormat;
use tollgate_llm::openai::chat::MaxTokensField;

use crate::error::ProxyError;
use crate::stages::endpoints::Operation;

/// Characters kept as they are in a model name placed in a URL path; everything else is
/// percent-encoded, so a model name can never add a path segment or a query.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@');

/// The wire format a provider speaks.
pub(crate) fn format_of(kind: ProviderKind) -> WireFormat {
    match kind {
        ProviderKind::OpenAI | ProviderKind::AzureOpenAI => {
            WireFormat::OpenAIChat(MaxTokensField::MaxCompletionTokens)
        }
        ProviderKind::OpenAICompatible => WireFormat::OpenAIChat(MaxTokensField::MaxTokens),
        ProviderKind::Anthropic => WireFormat::Anthropic,
        ProviderKind::Gemini => WireFormat::Gemini,
    }
}

/// The URL of `operation` on `provider` for the upstream model `model`.
pub(super) fn url(
    provider: &Provider,
    operation: Operation,
    model: &str,
    stream: bool,
) -> Result<String, ProxyError> {
    let base = &provider.endpoint;
    let model = || utf8_percent_encode(model, PATH_SEGMENT);
    let unsupported = || ProxyError::UnsupportedOperation {
        provider: provider.name.to_string(),
        operation: operation.as_str(),
    };
    Ok(match (provider.kind, operation) {
        (ProviderKind::OpenAI | ProviderKind::OpenAICompatible, Operation::Chat) => {
            format!("{base}/chat/completions")
        }
        (ProviderKind::OpenAI | ProviderKind::OpenAICompatible, Operation::Embeddings) => {
            format!("{base}/embeddings")
        }
        (ProviderKind::AzureOpenAI, operation) => {
            let path = match operation {
                Operation::Chat => "chat/completions",
                Operation::Embeddings => "embeddings",
            };
            let version = provider.api_version.as_deref().unwrap_or_default();
            format!(
                "{base}/deployments/{}/{path}?api-version={version}",
                model()
            )
        }
        (ProviderKind::Anthropic, Operation::Chat) => format!("{base}/messages"),
        (ProviderKind::Gemini, Operation::Chat) if stream => {
            format!("{base}/models/{}:streamGenerateContent?alt=sse", model())
        }
        (ProviderKind::Gemini, Operation::Chat) => {
            format!("{base}/models/{}:generateContent", model())
        }
        (ProviderKind::Anthropic | ProviderKind::Gemini, Operation::Embeddings) => {
            return Err(unsupported());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{ObjectRef, Timeouts};

    fn provider(kind: ProviderKind, endpoint: &str) -> Provider {
        Provider {
            name: ObjectRef::new("default", "p"),
            kind,
            endpoint: endpoint.into(),
            api_key: None,
            models: Default::default(),
            timeouts: Timeouts::default(),
            api_version: (kind == ProviderKind::AzureOpenAI).then(|| "2024-10-21".into()),
        }
    }

    #[test]
    fn each_kind_has_its_paths() {
        let cases = [
            (
                ProviderKind::OpenAI,
                "https://api.openai.com/v1",
                Operation::Chat,
                false,
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                ProviderKind::OpenAICompatible,
                "http://vllm/v1",
                Operation::Embeddings,
                false,
                "http://vllm/v1/embeddings",
            ),
            (
                ProviderKind::AzureOpenAI,
                "https://r.openai.azure.com/openai",
                Operation::Chat,
                true,
                "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            ),
            (
                ProviderKind::Anthropic,
                "https://api.anthropic.com/v1",
                Operation::Chat,
                true,
                "https://api.anthropic.com/v1/messages",
            ),
            (
                ProviderKind::Gemini,
                "https://g/v1beta",
                Operation::Chat,
                false,
                "https://g/v1beta/models/gpt-4o:generateContent",
            ),
            (
                ProviderKind::Gemini,
                "https://g/v1beta",
                Operation::Chat,
                true,
                "https://g/v1beta/models/gpt-4o:streamGenerateContent?alt=sse",
            ),
        ];
        for (kind, endpoint, operation, stream, expected) in cases {
            assert_eq!(
                url(&provider(kind, endpoint), operation, "gpt-4o", stream).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn a_model_name_cannot_escape_its_path_segment() {
        let gemini = provider(ProviderKind::Gemini, "https://g/v1beta");
        let url = url(&gemini, Operation::Chat, "../x?y=1#z", false).unwrap();
        assert_eq!(
            url,
            "https://g/v1beta/models/..%2Fx%3Fy%3D1%23z:generateContent"
        );
    }

    #[test]
    fn embeddings_need_an_openai_style_provider() {
        let anthropic = provider(ProviderKind::Anthropic, "https://a/v1");
        assert!(url(&anthropic, Operation::Embeddings, "m", false).is_err());
    }
}
