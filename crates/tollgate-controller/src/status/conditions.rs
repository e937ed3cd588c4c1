//! Conditions the Gateway API way: their types and reasons, and the one rule for turning what
//! should be reported into `Condition`s — `lastTransitionTime` moves only when a condition's
//! status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The resource is valid and taken into account.
pub(super) const ACCEPTED: &str = "Accepted";
/// Everything the resource refers to exists and may be used.
pub(super) const RESOLVED_REFS: &str = "ResolvedRefs";
/// The proxies run the resource's latest configuration.
pub(super) const PROGRAMMED: &str = "Programmed";
/// A route is served, but some of its rules are not (they are invalid and left out).
pub(super) const PARTIALLY_INVALID: &str = "PartiallyInvalid";
/// A listener clashes with another one.
pub(super) const CONFLICTED: &str = "Conflicted";

/// Reason of a `True` `Accepted` condition.
pub(super) const REASON_ACCEPTED: &str = "Accepted";
/// Reason of a `True` `ResolvedRefs` condition.
pub(super) const REASON_RESOLVED_REFS: &str = "ResolvedRefs";
/// Reason of a `True` `Programmed` condition.
pub(super) const REASON_PROGRAMMED: &str = "Programmed";
/// Reason of a `False` `Programmed` condition while the proxies have not caught up.
pub(super) const REASON_PENDING: &str = "Pending";
/// Reason of a `False` `Programmed` condition when the configuration cannot be served.
pub(super) const REASON_INVALID: &str = "Invalid";
/// Reason of a `False` `Conflicted` condition.
pub(super) const REASON_NO_CONFLICTS: &str = "NoConflicts";

/// The longest condition message written; the API server allows 32 KiB.
const MAX_MESSAGE: usize = 4096;

/// A condition as it should be reported, before its transition time is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Desired {
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
}

impl Desired {
    /// A condition with status `True`.
    pub(super) fn yes(
        type_: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, true, reason, message)
    }

    /// A condition with status `False`.
    pub(super) fn no(
        type_: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, false, reason, message)
    }

    /// A condition with status `True` or `False`.
    pub(super) fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: truncate(message.into()),
        }
    }
}

/// The conditions to write: `observedGeneration` is `generation`; `lastTransitionTime` is
/// carried over from the current condition of the same type when its status is unchanged,
/// and `now` (whole seconds, as the API server stores it) otherwise.
pub(super) fn conditions(
    desired: Vec<Desired>,
    current: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    desired
        .into_iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let since = current
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                last_transition_time: since,
                message: d.message,
                observed_generation: generation,
                reason: d.reason.into(),
                status: status.into(),
                type_: d.type_.into(),
            }
        })
        .collect()
}

/// `message`, cut at a character boundary to at most [`MAX_MESSAGE`] bytes.
fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn current(type_: &str, status: &str, second: i64) -> Condition {
        Condition {
            last_transition_time: Time(at(second)),
            message: "old".into(),
            observed_generation: Some(1),
            reason: "Old".into(),
            status: status.into(),
            type_: type_.into(),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let existing = [
            current(ACCEPTED, "True", 10),
            current(PROGRAMMED, "True", 20),
        ];
        let written = conditions(
            vec![
                Desired::yes(ACCEPTED, REASON_ACCEPTED, "new message"),
                Desired::no(PROGRAMMED, REASON_PENDING, "waiting"),
                Desired::yes(RESOLVED_REFS, REASON_RESOLVED_REFS, "all resolved"),
            ],
            &existing,
            Some(2),
            at(100),
        );
        let times: Vec<i64> = written
            .iter()
            .map(|c| c.last_transition_time.0.as_second())
            .collect();
        assert_eq!(times, [10, 100, 100]);
        assert!(written.iter().all(|c| c.observed_generation == Some(2)));
        assert_eq!(written[0].message, "new message");
        assert_eq!(written[1].status, "False");
        assert_eq!(written[1].reason, "Pending");
    }

    #[test]
    fn new_transition_times_are_whole_seconds() {
        let now = Timestamp::from_nanosecond(5_500_000_000).unwrap();
        let written = conditions(
            vec![Desired::yes(ACCEPTED, REASON_ACCEPTED, "")],
            &[],
            None,
            now,
        );
        assert_eq!(written[0].last_transition_time.0, at(5));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(MAX_MESSAGE));
        assert!(cut.len() <= MAX_MESSAGE);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
