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
