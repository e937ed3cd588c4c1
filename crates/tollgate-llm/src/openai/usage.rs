//! OpenAI's `usage` object, in responses and in the last event of a stream.

use serde::Deserialize;

use crate::Usage;

/// `usage` as OpenAI reports it for chat completions and embeddings.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OpenAIUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<OpenAIUsage> for Usage {
    fn from(usage: OpenAIUsage) -> Self {
        Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cached_tokens: usage
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<OpenAIUsage>,
}

/// The usage a complete (non-streamed) response body reports, if it reports any.
pub fn usage_of_response(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chat_and_embedding_usage() {
        let chat = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        assert_eq!(
            usage_of_response(chat),
            Some(Usage {
                input_tokens: 12,
                output_tokens: 7,
                cached_tokens: 4,
                reasoning_tokens: 2
            })
        );
        let embeddings =
            br#"{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        assert_eq!(
            usage_of_response(embeddings),
            Some(Usage {
                input_tokens: 8,
                ..Usage::default()
            })
        );
        assert_eq!(usage_of_response(b"{}"), None);
        assert_eq!(usage_of_response(b"not json"), None);
    }
}
