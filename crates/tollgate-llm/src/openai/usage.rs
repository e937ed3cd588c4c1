//! OpenAI's `usage` object, in responses and in the last event of a stream.

use memchr::memmem::FinderRev;
use serde::Deserialize;
use std::sync::LazyLock;

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

/// The usage a complete (non-streamed) response body reports, if it reports any. Only the
/// value of the last `"usage"` key is parsed (OpenAI puts usage after the choices, and a key
/// inside a string would have its quotes escaped); a body where that finds no usage object is
/// parsed whole.
pub fn usage_of_response(body: &[u8]) -> Option<Usage> {
    if let Some(usage) = last_usage_value(body) {
        return usage;
    }
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage
        .map(Usage::from)
}

/// The value of the last `"usage"` key of `body`, parsed alone: `Some(None)` when it is
/// `null`, `None` when there is no such key or its value is not a usage object that counts
/// any token (an object of some other kind, nested in a later field, reads as all zeros).
fn last_usage_value(body: &[u8]) -> Option<Option<Usage>> {
    static KEY: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(br#""usage""#));
    let after_key = KEY.rfind(body)? + KEY.needle().len();
    let rest = body[after_key..].trim_ascii_start().strip_prefix(b":")?;
    let mut value = serde_json::Deserializer::from_slice(rest);
    match Option::<OpenAIUsage>::deserialize(&mut value).ok()? {
        None => Some(None),
        Some(usage) => {
            let usage = Usage::from(usage);
            (usage != Usage::default()).then_some(Some(usage))
        }
    }
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

    #[test]
    fn usage_is_found_wherever_the_top_level_key_is() {
        let input = |tokens| {
            Some(Usage {
                input_tokens: tokens,
                ..Usage::default()
            })
        };
        // Not last, and spaced.
        let before = br#"{"usage" : {"prompt_tokens":3}, "system_fingerprint":"fp"}"#;
        assert_eq!(usage_of_response(before), input(3));
        // A "usage" key inside the answer's text is escaped and never mistaken for it.
        let quoted = br#"{"usage":{"prompt_tokens":4},"choices":[{"message":{"content":"{\"usage\": 9}"}}]}"#;
        assert_eq!(usage_of_response(quoted), input(4));
        assert_eq!(usage_of_response(br#"{"choices":[],"usage":null}"#), None);
        // A last "usage" that is no usage object: the body is read whole.
        let odd = br#"{"usage":{"prompt_tokens":5},"metadata":{"usage":"high"}}"#;
        assert_eq!(usage_of_response(odd), input(5));
        let nested = br#"{"usage":{"prompt_tokens":6},"metadata":{"usage":{"tier":"x"}}}"#;
        assert_eq!(usage_of_response(nested), input(6));
    }
}
