//! Where, and in which wire format, each kind of provider takes each operation.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tollgate_config::{CloudAccount, Provider, ProviderKind};
use tollgate_llm::WireFormat;
use tollgate_llm::embeddings::EmbeddingFormat;
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

/// Like [`PATH_SEGMENT`], but `:` and `@` are encoded too, as AWS's SDKs encode a Bedrock
/// model id (`anthropic.claude-3-haiku-20240307-v1:0`) or inference profile ARN.
const AWS_PATH_SEGMENT: &AsciiSet = &PATH_SEGMENT.add(b':').add(b'@');

/// The wire format a provider speaks for `model`: Vertex AI serves Anthropic's models
/// (`claude-*`) in Anthropic's format and the rest in Gemini's.
pub(crate) fn format_of(provider: &Provider, model: &str) -> WireFormat {
    match provider.kind {
        ProviderKind::VertexAI if is_claude(model) => WireFormat::VertexAnthropic,
        ProviderKind::VertexAI => WireFormat::Gemini,
        ProviderKind::Bedrock => WireFormat::Bedrock,
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
    let model_name = model;
    let model = || utf8_percent_encode(model_name, PATH_SEGMENT);
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
                Operation::CountTokens => return Err(unsupported()),
            };
            let version = provider.api_version.as_deref().unwrap_or_default();
            format!(
                "{base}/deployments/{}/{path}?api-version={version}",
                model()
            )
        }
        (ProviderKind::Anthropic, Operation::Chat) => format!("{base}/messages"),
        (ProviderKind::Anthropic, Operation::CountTokens) => {
            format!("{base}/messages/count_tokens")
        }
        (ProviderKind::Gemini, Operation::Chat) if stream => {
            format!("{base}/models/{}:streamGenerateContent?alt=sse", model())
        }
        (ProviderKind::Gemini, Operation::Chat) => {
            format!("{base}/models/{}:generateContent", model())
        }
        (ProviderKind::Gemini, Operation::Embeddings) => {
            format!("{base}/models/{}:batchEmbedContents", model())
        }
        (ProviderKind::Bedrock, Operation::Chat) => {
            let method = if stream {
                "converse-stream"
            } else {
                "converse"
            };
            format!(
                "{base}/model/{}/{method}",
                utf8_percent_encode(model_name, AWS_PATH_SEGMENT)
            )
        }
        (ProviderKind::VertexAI, Operation::Chat | Operation::Embeddings) => {
            let Some(CloudAccount::Gcp(account)) = &provider.account else {
                return Err(ProxyError::Internal(format!(
                    "provider {} has no Vertex AI project",
                    provider.name
                )));
            };
            let (publisher, method) = match (operation, is_claude(model_name), stream) {
                (Operation::Embeddings, _, _) => ("google", ":predict"),
                (_, true, false) => ("anthropic", ":rawPredict"),
                (_, true, true) => ("anthropic", ":streamRawPredict"),
                (_, false, false) => ("google", ":generateContent"),
                (_, false, true) => ("google", ":streamGenerateContent?alt=sse"),
            };
            format!(
                "{base}/projects/{}/locations/{}/publishers/{publisher}/models/{}{method}",
                utf8_percent_encode(&account.project, PATH_SEGMENT),
                utf8_percent_encode(&account.location, PATH_SEGMENT),
                model()
            )
        }
        (ProviderKind::Anthropic | ProviderKind::Bedrock, Operation::Embeddings)
        | (
            ProviderKind::OpenAI
            | ProviderKind::OpenAICompatible
            | ProviderKind::Gemini
            | ProviderKind::Bedrock
            | ProviderKind::VertexAI,
            Operation::CountTokens,
        ) => {
            return Err(unsupported());
        }
    })
}

/// The embeddings API of a provider that does not speak OpenAI's.
pub(super) fn embedding_format(provider: &Provider) -> Option<EmbeddingFormat> {
    match provider.kind {
        ProviderKind::Gemini => Some(EmbeddingFormat::GeminiBatch),
        ProviderKind::VertexAI => Some(EmbeddingFormat::VertexPredict),
        _ => None,
    }
}

/// Whether a Vertex AI model is one of Anthropic's, which Vertex serves under its `anthropic`
/// publisher.
fn is_claude(model: &str) -> bool {
    model.starts_with("claude")
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
            account: None,
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
    fn embeddings_need_a_provider_with_an_embeddings_api() {
        let anthropic = provider(ProviderKind::Anthropic, "https://a/v1");
        assert!(url(&anthropic, Operation::Embeddings, "m", false).is_err());
        let gemini = provider(ProviderKind::Gemini, "https://g/v1beta");
        assert_eq!(
            url(&gemini, Operation::Embeddings, "text-embedding-004", false).unwrap(),
            "https://g/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        assert_eq!(
            embedding_format(&gemini),
            Some(EmbeddingFormat::GeminiBatch)
        );
        assert_eq!(embedding_format(&anthropic), None);
    }
}
