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

/// The first finish reason a response body (or stream event) states, as its API spells it:
/// OpenAI's `finish_reason` or Anthropic's `stop_reason`. Found by scanning, not parsing, so
/// that it costs nothing on events that have none.
pub fn reported_finish_reason(body: &[u8]) -> Option<&str> {
    // Searchers built once: building one costs more than searching a short event.
    static FIELDS: LazyLock<[Finder<'static>; 2]> = LazyLock::new(|| {
        [
            Finder::new(br#""finish_reason":""#),
            Finder::new(br#""stop_reason":""#),
        ]
    });
    for field in FIELDS.iter() {
        if let Some(at) = field.find(body) {
            let rest = &body[at + field.needle().len()..];
            let end = memchr::memchr(b'"', rest)?;
            return std::str::from_utf8(&rest[..end]).ok();
        }
    }
    None
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
