//! OpenAI-style rate limit headers: where the caller stands against the tightest request
//! limit and the tightest token limit that applied to its request.

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_config::{Limit, Unit};

use super::store::Counted;
use super::window::Span;

/// The limit, remaining and reset headers of request limits.
const REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];

/// The limit, remaining and reset headers of token limits.
const TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// The tightest limit of one unit: its size, what is left, and milliseconds until it resets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tightest {
    pub(super) limit: u64,
    pub(super) remaining: u64,
    reset_ms: i64,
}

/// The headers for one request, computed when its reservation was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub(super) requests: Option<Tightest>,
    pub(super) tokens: Option<Tightest>,
}

impl RateLimitHeaders {
    /// From every limit a request was counted on, as the counters stood after it.
    pub(crate) fn of<'a>(
        counters: impl Iterator<Item = (&'a Limit, &'a Span, Counted)>,
        now: i64,
    ) -> Self {
        let mut headers = Self::default();
        for (limit, span, counted) in counters {
            let slot = match limit.unit {
                Unit::Requests => &mut headers.requests,
                Unit::Tokens => &mut headers.tokens,
                Unit::NanoUsd => continue,
            };
            let candidate = Tightest {
                limit: limit.amount,
                remaining: limit.amount.saturating_sub(counted.used),
                reset_ms: (span.expiry_of(counted.oldest_slot.unwrap_or(span.slot)) - now).max(0),
            };
            if slot.is_none_or(|held| candidate.remaining < held.remaining) {
                *slot = Some(candidate);
            }
        }
        headers
    }

    /// Adds the headers to a response.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for (names, tightest) in [(REQUESTS, self.requests), (TOKENS, self.tokens)] {
            let Some(tightest) = tightest else { continue };
            let [limit, remaining, reset] = names;
            headers.insert(limit, HeaderValue::from(tightest.limit));
            headers.insert(remaining, HeaderValue::from(tightest.remaining));
            if let Ok(value) = HeaderValue::try_from(duration(tightest.reset_ms)) {
                headers.insert(reset, value);
            }
        }
    }
}

/// A duration as OpenAI writes it: `20ms`, `1s`, `6m0s`, `1h2m3.5s`.
fn duration(ms: i64) -> String {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let mut text = String::with_capacity(16);
    if ms < 1000 {
        let _ = write!(text, "{ms}ms");
        return text;
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    match (hours, minutes) {
        (0, 0) => {}
        (0, m) => {
            let _ = write!(text, "{m}m");
        }
        (h, m) => {
            let _ = write!(text, "{h}h{m}m");
        }
    }
    let (seconds, millis) = (rest / 1000, rest % 1000);
    let _ = write!(text, "{seconds}");
    if millis != 0 {
        let _ = write!(text, ".{millis:03}");
        text.truncate(text.trim_end_matches('0').len());
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use tollgate_config::Window;

    #[test]
    fn durations_read_like_openais() {
        assert_eq!(duration(20), "20ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(3_723_500), "1h2m3.5s");
        assert_eq!(duration(59_999), "59.999s");
        assert_eq!(duration(61_010), "1m1.01s");
    }

    #[test]
    fn the_tightest_limit_of_each_unit_is_shown() {
        let now = 1_000_000;
        let span = Span::at(Window::Minute, &TimeZone::UTC, now);
        let rpm = Limit {
            window: Window::Minute,
            unit: Unit::Requests,
            amount: 60,
        };
        let rph = Limit {
            window: Window::Hour,
            unit: Unit::Requests,
            amount: 100,
        };
        let tpm = Limit {
            window: Window::Minute,
            unit: Unit::Tokens,
            amount: 1000,
        };
        let usd = Limit {
            window: Window::Month,
            unit: Unit::NanoUsd,
            amount: 5,
        };
        let counted = |used| Counted {
            used,
            oldest_slot: Some(span.slot - 10),
        };
        let headers = RateLimitHeaders::of(
            [
                (&rpm, &span, counted(10)),
                (&rph, &span, counted(95)),
                (&tpm, &span, counted(400)),
                (&usd, &span, counted(5)),
            ]
            .into_iter(),
            now,
        );
        let mut map = HeaderMap::new();
        headers.apply(&mut map);
        let get = |name: &str| map[name].to_str().unwrap().to_string();
        assert_eq!(get("x-ratelimit-limit-requests"), "100");
        assert_eq!(get("x-ratelimit-remaining-requests"), "5");
        assert_eq!(get("x-ratelimit-limit-tokens"), "1000");
        assert_eq!(get("x-ratelimit-remaining-tokens"), "600");
        // The oldest slot counted was 10 s ago, so it rolls out in 50 s.
        assert_eq!(get("x-ratelimit-reset-tokens"), "50s");
        assert_eq!(map.len(), 6);
    }
}
