//! How a rule behaves when backends fail or differ: balancing, retries, timeouts, ejection.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Everything a rule says about reliability, with defaults filled in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulePolicy {
    /// How a backend is picked within a priority.
    pub load_balancer: LoadBalancer,
    /// Retries and failover.
    pub retry: RetryPolicy,
    /// Time limits.
    pub timeouts: RouteTimeouts,
    /// Passive health checking.
    pub outlier: OutlierDetection,
}

/// Ways of picking a backend among several of the same priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadBalancer {
    /// At random, in proportion to weight.
    #[default]
    WeightedRandom,
    /// Fewest requests in flight.
    LeastRequest,
    /// Power of two choices over peak-EWMA time to first byte.
    LatencyAware,
    /// Cheapest by price.
    CostAware,
}

/// Retries and failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub attempts: u32,
    /// Which failures are retried.
    pub on: RetryOn,
    /// The first backoff's upper bound.
    #[serde(with = "crate::durations::millis")]
    pub backoff_base: Duration,
    /// The largest backoff.
    #[serde(with = "crate::durations::millis")]
    pub backoff_max: Duration,
    /// Retries allowed as a percentage of recent requests.
    pub budget_percent: u32,
    /// Retries always allowed per second.
    pub budget_min_per_second: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 2,
            on: RetryOn::ALL,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_secs(1),
            budget_percent: 20,
            budget_min_per_second: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry) on the same backend:
    /// full jitter over an exponentially growing bound. `random` is uniform in `[0, 1)`.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let bound = self
            .backoff_base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.backoff_max);
        bound.mul_f64(random.clamp(0.0, 1.0))
    }
}

/// The failures a rule retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOn {
    /// Connection refused, reset, or broken before the response began.
    pub connect_failure: bool,
    /// 429.
    pub rate_limited: bool,
    /// 5xx, and 401/403 (the upstream refused the gateway's own credential).
    pub server_error: bool,
    /// No first byte in time.
    pub timeout: bool,
}

impl RetryOn {
    /// Every kind of failure.
    pub const ALL: RetryOn = RetryOn {
        connect_failure: true,
        rate_limited: true,
        server_error: true,
        timeout: true,
    };
    /// No failure at all.
    pub const NONE: RetryOn = RetryOn {
        connect_failure: false,
        rate_limited: false,
        server_error: false,
        timeout: false,
    };
}

/// Time limits of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTimeouts {
    /// Per attempt, until the first byte (a stream's first event); the provider's
    /// response-header timeout when unset.
    #[serde(with = "crate::durations::optional_millis")]
    pub first_byte: Option<Duration>,
    /// The whole request, response included; unlimited when unset.
    #[serde(with = "crate::durations::optional_millis")]
    pub request: Option<Duration>,
}

/// When a failing backend leaves rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlierDetection {
    /// Consecutive failures that eject a backend.
    pub consecutive_failures: u32,
    /// How long it stays out before a probe.
    #[serde(with = "crate::durations::millis")]
    pub ejection_time: Duration,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            ejection_time: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_its_cap_with_full_jitter() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, 0.0), Duration::ZERO);
        assert_eq!(
            policy.backoff(0, 0.999_999),
            Duration::from_millis(25).mul_f64(0.999_999)
        );
        assert_eq!(policy.backoff(2, 0.5), Duration::from_millis(50));
        assert_eq!(policy.backoff(10, 1.0), Duration::from_secs(1));
        assert_eq!(policy.backoff(u32::MAX, 1.0), Duration::from_secs(1));
    }
}
