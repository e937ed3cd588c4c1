//! BudgetPolicy alerts as Kubernetes Events, raised by the leader from the use the proxies
//! report (see [`crate::budget_alerts`]): `kubectl describe budgetpolicy` and event
//! pipelines see them.

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use std::collections::BTreeMap;
use std::time::Duration;
use tollgate_api::{BudgetPolicy, BudgetUsage};
use tollgate_config::ObjectRef;
use tracing::{info, warn};

use crate::budget_alerts::BudgetAlerts;

/// How long one Event may take to be written.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Raises each new budget alert as a Warning Event on its BudgetPolicy.
pub(super) struct AlertEvents {
    recorder: Recorder,
    alerts: BudgetAlerts,
}

impl AlertEvents {
    /// Events written with `client`, reported by this replica (`identity`).
    pub(super) fn new(client: Client, identity: &str) -> Self {
        let reporter = Reporter {
            controller: "tollgate-controller".into(),
            instance: Some(identity.to_string()),
        };
        Self {
            recorder: Recorder::new(client, reporter),
            alerts: BudgetAlerts::default(),
        }
    }

    /// Raises the alerts `usage` brings about; a failed write is logged, not retried (the
    /// alert is also in the proxies' logs and metrics).
    pub(super) async fn raise(
        &mut self,
        policies: &[BudgetPolicy],
        usage: &BTreeMap<ObjectRef, Vec<BudgetUsage>>,
    ) {
        for alert in self.alerts.observe(policies, usage) {
            let Some(policy) = policies.iter().find(|p| {
                p.metadata.name.as_deref() == Some(&alert.policy.name)
                    && p.metadata.namespace.as_deref() == Some(&alert.policy.namespace)
            }) else {
                continue;
            };
            let event = Event {
                type_: EventType::Warning,
                reason: alert.reason.as_str().into(),
                note: Some(alert.message.clone()),
                action: "Budget".into(),
                secondary: None,
            };
            let published = tokio::time::timeout(
                EVENT_TIMEOUT,
                self.recorder.publish(&event, &policy.object_ref(&())),
            )
            .await;
            match published {
                Ok(Ok(())) => {
                    info!(policy = %alert.policy, reason = alert.reason.as_str(), "{}", alert.message)
                }
                Ok(Err(error)) => {
                    warn!(policy = %alert.policy, %error, "cannot write a budget Event")
                }
                Err(_) => warn!(policy = %alert.policy, "writing a budget Event timed out"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::mock;

    fn policy() -> BudgetPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1",
            "kind": "BudgetPolicy",
            "metadata": {"name": "research", "namespace": "default", "uid": "u-1"},
            "spec": {
                "subject": {"kind": "Team", "name": "research"},
                "limits": [{"window": "Day", "requests": 100}],
                "alertThresholds": [80],
            }
        }))
        .unwrap()
    }

    fn used(amount: &str) -> BTreeMap<ObjectRef, Vec<BudgetUsage>> {
        let usage = BudgetUsage {
            window: "day".into(),
            unit: "requests".into(),
            limit: "100".into(),
            used: amount.into(),
            ..BudgetUsage::default()
        };
        [(ObjectRef::new("default", "research"), vec![usage])].into()
    }

    #[tokio::test]
    async fn a_crossed_threshold_is_one_warning_event_on_the_policy() {
        let (client, mut server) = mock::client();
        let policies = [policy()];
        let raised = tokio::spawn(async move {
            let mut events = AlertEvents::new(client, "controller-0");
            events.raise(&policies, &used("85")).await;
            events.raise(&policies, &used("90")).await;
        });
        let received = server.answer(201, serde_json::json!({})).await;
        assert_eq!(received.method, "POST");
        assert!(
            received
                .uri
                .starts_with("/apis/events.k8s.io/v1/namespaces/default/events"),
            "{}",
            received.uri
        );
        let body = &received.body;
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["reason"], "BudgetThresholdReached");
        assert_eq!(body["regarding"]["kind"], "BudgetPolicy");
        assert_eq!(body["regarding"]["name"], "research");
        assert!(
            body["note"]
                .as_str()
                .unwrap()
                .starts_with("80% of the limit reached: 85 of 100 requests")
        );
        tokio::time::timeout(Duration::from_secs(5), raised)
            .await
            .expect("no second event: the threshold already fired")
            .unwrap();
    }
}
