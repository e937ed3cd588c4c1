//! OpenAI-style rate limit headers: where the caller stands against the tightest request
//! limit and the tightest token limit that applied to its request.

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_config::{Limit, Unit};

use super::store::Counted;
use super::window::Span;

/// The limit, remaining and reset headers of request limits.
const REQUESTS: [&str; 3] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
];

/// The limit, remaining and reset headers of token limits.
const TOKENS: [&str; 3] = [
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
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
            let [limit, remaining, reset] = names.map(HeaderName::from_static);
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
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let text = format!("{:.3}", rest as f64 / 1000.0);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
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
