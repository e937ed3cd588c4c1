//! A rule's reliability settings: defaults, every field read, and every refusal.

use std::time::Duration;
use tollgate_config::{LoadBalancer, ObjectRef, RetryOn, RulePolicy};

use super::{assert_clean, diagnostic, reasons, run_one_rule};
use crate::Translation;

/// One rule with two backends (priorities 0 and 1) and the given extra rule fields (YAML
/// flow-mapping entries, such as `loadBalancer: CostAware`).
fn run_rule(fields: &str) -> Translation {
    let extra = if fields.is_empty() {
        String::new()
    } else {
        format!(", {fields}")
    };
    run_one_rule(&format!(
        "backends: [{{provider: openai, model: a}}, {{provider: openai, model: b, priority: 1}}]{extra}"
    ))
}

fn policy(translation: &Translation) -> RulePolicy {
    let config = &translation.configs[&ObjectRef::new("default", "ai-gateway")];
    config.routes.rules()[0].policy
}

#[test]
fn an_unconfigured_rule_gets_the_documented_defaults() {
    let translation = run_rule("");
    assert_clean(&translation);
    let policy = policy(&translation);
    assert_eq!(policy, RulePolicy::default());
    assert_eq!(policy.load_balancer, LoadBalancer::WeightedRandom);
    assert_eq!(policy.retry.attempts, 2);
    assert_eq!(policy.retry.on, RetryOn::ALL);
    assert_eq!(
        (
            policy.retry.budget_percent,
            policy.retry.budget_min_per_second
        ),
        (20, 5)
    );
    assert_eq!(policy.outlier.consecutive_failures, 5);
    assert_eq!(policy.outlier.ejection_time, Duration::from_secs(30));
    assert_eq!(policy.timeouts.first_byte, None);
    let config = &translation.configs[&ObjectRef::new("default", "ai-gateway")];
    let priorities: Vec<u32> = config.routes.rules()[0]
        .backends
        .iter()
        .map(|b| b.priority)
        .collect();
    assert_eq!(priorities, [0, 1]);
}

#[test]
fn every_field_is_read() {
    let translation = run_rule(
        "loadBalancer: LatencyAware, retry: {attempts: 4, on: [Timeout, RateLimited], backoff: {base: 10ms, max: 2s}, budget: {percent: 50, minPerSecond: 1}}, timeouts: {firstByte: 800ms, request: 1m}, outlierDetection: {consecutiveFailures: 2, ejectionTime: 5s}",
    );
    assert_clean(&translation);
    let policy = policy(&translation);
    assert_eq!(policy.load_balancer, LoadBalancer::LatencyAware);
    assert_eq!(policy.retry.attempts, 4);
    assert_eq!(
        policy.retry.on,
        RetryOn {
            timeout: true,
            rate_limited: true,
            ..RetryOn::NONE
        }
    );
    assert_eq!(
        (policy.retry.backoff_base, policy.retry.backoff_max),
        (Duration::from_millis(10), Duration::from_secs(2))
    );
    assert_eq!(
        (
            policy.retry.budget_percent,
            policy.retry.budget_min_per_second
        ),
        (50, 1)
    );
    assert_eq!(policy.timeouts.first_byte, Some(Duration::from_millis(800)));
    assert_eq!(policy.timeouts.request, Some(Duration::from_secs(60)));
    assert_eq!(policy.outlier.consecutive_failures, 2);
    assert_eq!(policy.outlier.ejection_time, Duration::from_secs(5));
    for balancer in ["WeightedRandom", "LeastRequest", "CostAware"] {
        assert_clean(&run_rule(&format!("loadBalancer: {balancer}")));
    }
}

#[test]
fn an_empty_retry_on_list_turns_retries_off() {
    let translation = run_rule("retry: {on: []}");
    assert_clean(&translation);
    assert_eq!(policy(&translation).retry.on, RetryOn::NONE);
}

#[test]
fn invalid_policies_are_refused_with_the_field_at_fault() {
    for (fields, reason, field) in [
        (
            "retry: {attempts: 0}",
            "InvalidRetry",
            "spec.rules[0].retry.attempts",
        ),
        (
            "retry: {attempts: 11}",
            "InvalidRetry",
            "spec.rules[0].retry.attempts",
        ),
        (
            "retry: {backoff: {base: 2s, max: 1s}}",
            "InvalidRetry",
            "spec.rules[0].retry.backoff",
        ),
        (
            "retry: {budget: {percent: 1001}}",
            "InvalidRetry",
            "spec.rules[0].retry.budget",
        ),
        (
            "retry: {backoff: {base: soon}}",
            "InvalidDuration",
            "spec.rules[0].retry.backoff.base",
        ),
        (
            "retry: {backoff: {max: 0s}}",
            "InvalidDuration",
            "spec.rules[0].retry.backoff.max",
        ),
        (
            r#"timeouts: {firstByte: "10"}"#,
            "InvalidDuration",
            "spec.rules[0].timeouts.firstByte",
        ),
        (
            "timeouts: {request: 1d}",
            "InvalidDuration",
            "spec.rules[0].timeouts.request",
        ),
        (
            "timeouts: {firstByte: 2s, request: 1s}",
            "InvalidTimeout",
            "spec.rules[0].timeouts.firstByte",
        ),
        (
            "outlierDetection: {consecutiveFailures: 0}",
            "InvalidOutlierDetection",
            "spec.rules[0].outlierDetection.consecutiveFailures",
        ),
        (
            "outlierDetection: {ejectionTime: forever}",
            "InvalidDuration",
            "spec.rules[0].outlierDetection.ejectionTime",
        ),
    ] {
        let translation = run_rule(fields);
        diagnostic(
            &translation,
            reason,
            &format!("error AIRoute default/chat {field}"),
        );
        assert_eq!(reasons(&translation), [reason], "{fields}");
        assert!(
            translation.configs[&ObjectRef::new("default", "ai-gateway")]
                .routes
                .rules()
                .is_empty(),
            "{fields}: the route is left out"
        );
    }
}
