//! BudgetPolicy alerts from the use the proxies report: a limit's use reaching one of the
//! policy's `alertThresholds` (percent), and a `Soft` policy's use passing its limit (allowed,
//! but someone should know). Each fires once, and again only after the use fell back below it
//! (a new window, or a rolling window that drained), so the Kubernetes controller can turn each
//! into one Event.

use std::collections::BTreeMap;
use tollgate_api::{BudgetEnforcement, BudgetPolicy, BudgetUsage};
use tollgate_config::ObjectRef;

/// Why an alert fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertReason {
    /// Use reached an alert threshold.
    ThresholdReached,
    /// A `Soft` policy's use passed its limit; requests still go through.
    SoftLimitExceeded,
}

impl AlertReason {
    /// The reason as Kubernetes Events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertReason::ThresholdReached => "BudgetThresholdReached",
            AlertReason::SoftLimitExceeded => "SoftLimitExceeded",
        }
    }
}

/// One alert to raise.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetAlert {
    /// The policy.
    pub policy: ObjectRef,
    /// Why.
    pub reason: AlertReason,
    /// What happened, for a person.
    pub message: String,
}

/// Which thresholds of which limits have fired and not re-armed.
#[derive(Debug, Default)]
pub struct BudgetAlerts {
    fired: BTreeMap<(ObjectRef, usize, u16), bool>,
}

impl BudgetAlerts {
    /// The alerts that `usage` (each policy's, per limit in `spec.limits` order) raises now.
    /// Policies without reported use are left as they were; policies that are gone are
    /// forgotten.
    pub fn observe(
        &mut self,
        policies: &[BudgetPolicy],
        usage: &BTreeMap<ObjectRef, Vec<BudgetUsage>>,
    ) -> Vec<BudgetAlert> {
        let names: Vec<ObjectRef> = policies.iter().map(policy_ref).collect();
        self.fired
            .retain(|(policy, _, _), _| names.contains(policy));
        let mut alerts = Vec::new();
        for (policy, name) in policies.iter().zip(names) {
            let Some(limits) = usage.get(&name) else {
                continue;
            };
            let soft = policy.spec.enforcement == BudgetEnforcement::Soft;
            for (index, limit) in limits.iter().enumerate() {
                let Some(percent) = percent_used(limit) else {
                    continue;
                };
                let mut thresholds: Vec<(u16, AlertReason)> = policy
                    .spec
                    .alert_thresholds
                    .iter()
                    .map(|t| (*t, AlertReason::ThresholdReached))
                    .collect();
                if soft {
                    // Over the limit, strictly: a Soft policy at exactly its limit is full.
                    thresholds.push((u16::MAX, AlertReason::SoftLimitExceeded));
                }
                for (threshold, reason) in thresholds {
                    let reached = match reason {
                        AlertReason::ThresholdReached => percent >= f64::from(threshold),
                        AlertReason::SoftLimitExceeded => percent > 100.0,
                    };
                    let fired = self
                        .fired
                        .entry((name.clone(), index, threshold))
                        .or_default();
                    if reached && !*fired {
                        alerts.push(BudgetAlert {
                            policy: name.clone(),
                            reason,
                            message: message(reason, threshold, limit),
                        });
                    }
                    *fired = reached;
                }
            }
        }
        alerts
    }
}

fn policy_ref(policy: &BudgetPolicy) -> ObjectRef {
    ObjectRef::new(
        policy.metadata.namespace.as_deref().unwrap_or("default"),
        policy.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Use as a percentage of the limit; `None` when either does not read as a number.
fn percent_used(usage: &BudgetUsage) -> Option<f64> {
    let limit: f64 = usage.limit.parse().ok()?;
    let used: f64 = usage.used.parse().ok()?;
    (limit > 0.0).then(|| used / limit * 100.0)
}

fn message(reason: AlertReason, threshold: u16, usage: &BudgetUsage) -> String {
    let what = format!(
        "{} of {} {} used this {} (resets {})",
        usage.used, usage.limit, usage.unit, usage.window, usage.resets_at
    );
    match reason {
        AlertReason::ThresholdReached => format!("{threshold}% of the limit reached: {what}"),
        AlertReason::SoftLimitExceeded => {
            format!("over the limit, allowed because enforcement is Soft: {what}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(enforcement: &str, thresholds: &[u16]) -> BudgetPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1",
            "kind": "BudgetPolicy",
            "metadata": {"name": "research", "namespace": "default"},
            "spec": {
                "subject": {"kind": "Team", "name": "research"},
                "limits": [{"window": "Month", "usd": "100"}],
                "enforcement": enforcement,
                "alertThresholds": thresholds,
            }
        }))
        .unwrap()
    }

    fn used(amount: &str) -> BTreeMap<ObjectRef, Vec<BudgetUsage>> {
        let usage = BudgetUsage {
            window: "month".into(),
            unit: "usd".into(),
            limit: "100".into(),
            used: amount.into(),
            remaining: String::new(),
            resets_at: "2026-01-01T00:00:00Z".into(),
            reported_at: String::new(),
        };
        [(ObjectRef::new("default", "research"), vec![usage])].into()
    }

    fn reasons(alerts: &[BudgetAlert]) -> Vec<&str> {
        alerts.iter().map(|a| a.message.as_str()).collect()
    }

    #[test]
    fn each_threshold_fires_once_until_use_falls_back_below_it() {
        let policies = [policy("Hard", &[50, 80, 100])];
        let mut alerts = BudgetAlerts::default();
        assert_eq!(alerts.observe(&policies, &used("10")), []);
        let crossed = alerts.observe(&policies, &used("85"));
        assert_eq!(
            reasons(&crossed),
            [
                "50% of the limit reached: 85 of 100 usd used this month (resets 2026-01-01T00:00:00Z)",
                "80% of the limit reached: 85 of 100 usd used this month (resets 2026-01-01T00:00:00Z)",
            ]
        );
        assert!(
            crossed
                .iter()
                .all(|a| a.reason == AlertReason::ThresholdReached)
        );
        assert_eq!(alerts.observe(&policies, &used("90")), [], "already fired");
        assert_eq!(alerts.observe(&policies, &BTreeMap::new()), [], "no report");
        assert_eq!(alerts.observe(&policies, &used("100")).len(), 1, "100%");
        // A new window: the use starts over, and the thresholds fire again when reached.
        assert_eq!(alerts.observe(&policies, &used("1")), []);
        assert_eq!(alerts.observe(&policies, &used("60")).len(), 1);
    }

    #[test]
    fn a_soft_policy_over_its_limit_says_so_once() {
        let policies = [policy("Soft", &[])];
        let mut alerts = BudgetAlerts::default();
        assert_eq!(
            alerts.observe(&policies, &used("100")),
            [],
            "full, not over"
        );
        let over = alerts.observe(&policies, &used("100.01"));
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].reason, AlertReason::SoftLimitExceeded);
        assert!(over[0].message.starts_with("over the limit, allowed"));
        assert_eq!(alerts.observe(&policies, &used("140")), []);
        assert_eq!(
            alerts.observe(&[], &used("140")),
            [],
            "a deleted policy is forgotten"
        );
        assert_eq!(alerts.observe(&policies, &used("140")).len(), 1);
    }
}
