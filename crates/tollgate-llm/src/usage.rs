//! Token usage, the same shape whatever dialect reported it.

use serde::Serialize;

/// Tokens a request consumed. `input_tokens` includes `cached_tokens` and `output_tokens`
/// includes `reasoning_tokens`, as providers count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// Completion tokens spent on hidden reasoning.
    pub reasoning_tokens: u64,
}

use memchr::memmem::Finder;
use std::sync::LazyLock;

/// Where OpenAI states a finish reason, and where Anthropic does. Searchers built once:
/// building one costs more than searching a short event.
static FINISH_REASON: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(br#""finish_reason":""#));
static STOP_REASON: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(br#""stop_reason":""#));

/// The first finish reason a response body (or stream event) states, as its API spells it:
/// OpenAI's `finish_reason` or Anthropic's `stop_reason`. Found by scanning, not parsing, so
/// that it costs nothing on events that have none.
pub fn reported_finish_reason(body: &[u8]) -> Option<&str> {
    string_value(body, &FINISH_REASON).or_else(|| string_value(body, &STOP_REASON))
}

/// OpenAI's `finish_reason` only: for an OpenAI stream, whose every event would otherwise be
/// scanned for Anthropic's spelling too.
pub(crate) fn openai_finish_reason(body: &[u8]) -> Option<&str> {
    string_value(body, &FINISH_REASON)
}

/// The string value of the first field `field` finds (its needle ends with the opening quote).
fn string_value<'a>(body: &'a [u8], field: &Finder<'_>) -> Option<&'a str> {
    let at = field.find(body)? + field.needle().len();
    let end = memchr::memchr(b'"', &body[at..])?;
    std::str::from_utf8(&body[at..at + end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_are_found_in_either_spelling() {
        assert_eq!(
            reported_finish_reason(br#"{"choices":[{"finish_reason":"length"}]}"#),
            Some("length")
        );
        assert_eq!(
            reported_finish_reason(br#"{"stop_reason":"end_turn","stop_sequence":null}"#),
            Some("end_turn")
        );
        assert_eq!(reported_finish_reason(br#"{"finish_reason":null}"#), None);
    }
}
