//! A rule's reliability settings (balancing, retries, timeouts, ejection) → [`RulePolicy`].

use std::time::Duration;
use tollgate_api::{AIRouteRule, LoadBalancer as ApiBalancer, RetryOn as ApiRetryOn};
use tollgate_config::{LoadBalancer, RetryOn, RulePolicy};

use super::providers::parse_duration;

/// A problem with one field of a rule's policy: the field below the rule, a reason, a message.
pub(super) type PolicyError = (String, &'static str, String);

/// Reads a rule's policy, filling in defaults; every problem is returned, not just the first.
pub(super) fn translate(rule: &AIRouteRule) -> Result<RulePolicy, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut policy = RulePolicy::default();
    let mut duration = |field: &str, value: &Option<String>, into: &mut Duration| {
        if let Some(value) = value {
            match parse_duration(value) {
                Ok(parsed) => *into = parsed,
                Err(message) => errors.push((field.to_string(), "InvalidDuration", message)),
            }
        }
    };

    policy.load_balancer = match rule.load_balancer.unwrap_or_default() {
        ApiBalancer::WeightedRandom => LoadBalancer::WeightedRandom,
        ApiBalancer::LeastRequest => LoadBalancer::LeastRequest,
        ApiBalancer::LatencyAware => LoadBalancer::LatencyAware,
        ApiBalancer::CostAware => LoadBalancer::CostAware,
    };

    if let Some(retry) = &rule.retry {
        if let Some(backoff) = &retry.backoff {
            duration(
                "retry.backoff.base",
                &backoff.base,
                &mut policy.retry.backoff_base,
            );
            duration(
                "retry.backoff.max",
                &backoff.max,
                &mut policy.retry.backoff_max,
            );
        }
        if let Some(attempts) = retry.attempts {
            policy.retry.attempts = attempts;
        }
        if let Some(on) = &retry.on {
            policy.retry.on = RetryOn::NONE;
            for kind in on {
                match kind {
                    ApiRetryOn::ConnectFailure => policy.retry.on.connect_failure = true,
                    ApiRetryOn::RateLimited => policy.retry.on.rate_limited = true,
                    ApiRetryOn::ServerError => policy.retry.on.server_error = true,
                    ApiRetryOn::Timeout => policy.retry.on.timeout = true,
                }
            }
        }
        if let Some(budget) = &retry.budget {
            policy.retry.budget_percent = budget.percent.unwrap_or(policy.retry.budget_percent);
            policy.retry.budget_min_per_second = budget
                .min_per_second
                .unwrap_or(policy.retry.budget_min_per_second);
        }
    }

    if let Some(timeouts) = &rule.timeouts {
        let mut first_byte = Duration::ZERO;
        let mut request = Duration::ZERO;
        duration("timeouts.firstByte", &timeouts.first_byte, &mut first_byte);
        duration("timeouts.request", &timeouts.request, &mut request);
        policy.timeouts.first_byte = (!first_byte.is_zero()).then_some(first_byte);
        policy.timeouts.request = (!request.is_zero()).then_some(request);
    }

    if let Some(outlier) = &rule.outlier_detection {
        duration(
            "outlierDetection.ejectionTime",
            &outlier.ejection_time,
            &mut policy.outlier.ejection_time,
        );
        if let Some(failures) = outlier.consecutive_failures {
            policy.outlier.consecutive_failures = failures;
        }
    }

    if !(1..=10).contains(&policy.retry.attempts) {
        errors.push((
            "retry.attempts".into(),
            "InvalidRetry",
            format!(
                "attempts must be between 1 and 10, not {}",
                policy.retry.attempts
            ),
        ));
    }
    if policy.retry.budget_percent > 1000 || policy.retry.budget_min_per_second > 1_000_000 {
        errors.push((
            "retry.budget".into(),
            "InvalidRetry",
            "percent must be at most 1000 and minPerSecond at most 1000000".into(),
        ));
    }
    if policy.retry.backoff_base > policy.retry.backoff_max {
        errors.push((
            "retry.backoff".into(),
            "InvalidRetry",
            "backoff base must not exceed max".into(),
        ));
    }
    if policy.outlier.consecutive_failures == 0 {
        errors.push((
            "outlierDetection.consecutiveFailures".into(),
            "InvalidOutlierDetection",
            "must be at least 1".into(),
        ));
    }
    if let (Some(first_byte), Some(request)) = (policy.timeouts.first_byte, policy.timeouts.request)
        && first_byte > request
    {
        errors.push((
            "timeouts.firstByte".into(),
            "InvalidTimeout",
            "firstByte must not exceed request".into(),
        ));
    }
    if errors.is_empty() {
        Ok(policy)
    } else {
        Err(errors)
    }
}
