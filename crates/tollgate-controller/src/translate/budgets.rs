//! `BudgetPolicy` resources → [`Budgets`]. Policies apply to every Gateway: a team's budget
//! is one budget, whichever Gateway its requests arrive at.

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use std::str::FromStr;
use tollgate_api::{
    BudgetEnforcement, BudgetLimit, BudgetPolicy as ApiPolicy, BudgetSubjectKind, BudgetWindow,
    FailureMode as ApiFailureMode,
};
use tollgate_config::{
    BudgetPolicy, Budgets, Enforcement, FailureMode, Limit, NANOS_PER_USD, ObjectRef, Subject,
    Unit, Window,
};

use super::{name_of, namespace_of};
use crate::Diagnostic;

/// The output tokens reserved for a request without `max_tokens` when a policy sets no default.
const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

pub(super) fn translate_all(policies: &[ApiPolicy], diagnostics: &mut Vec<Diagnostic>) -> Budgets {
    let mut translated = Vec::new();
    for policy in policies {
        let (namespace, name) = (namespace_of(&policy.metadata), name_of(&policy.metadata));
        match translate(namespace, name, policy) {
            Ok(policy) => translated.push(policy),
            Err(errors) => {
                diagnostics.extend(errors.into_iter().map(|(field, reason, message)| {
                    Diagnostic::error("BudgetPolicy", namespace, name, field, reason, message)
                }))
            }
        }
    }
    Budgets::new(translated)
}

type FieldError = (String, &'static str, String);

fn translate(
    namespace: &str,
    name: &str,
    policy: &ApiPolicy,
) -> Result<BudgetPolicy, Vec<FieldError>> {
    let spec = &policy.spec;
    let mut errors = Vec::new();
    let subject_name = spec.subject.name.clone().filter(|n| !n.is_empty());
    let subject = match (spec.subject.kind, subject_name) {
        (BudgetSubjectKind::Global, None) => Some(Subject::Global),
        (BudgetSubjectKind::Global, Some(_)) => {
            errors.push((
                "spec.subject.name".into(),
                "InvalidSubject",
                "a Global subject has no name; remove `name`".into(),
            ));
            None
        }
        (_, None) => {
            errors.push((
                "spec.subject.name".into(),
                "InvalidSubject",
                format!("a {:?} subject needs a `name`", spec.subject.kind),
            ));
            None
        }
        (BudgetSubjectKind::Key, Some(secret)) => {
            Some(Subject::Key(format!("{namespace}/{secret}")))
        }
        (BudgetSubjectKind::User, Some(user)) => Some(Subject::User(user)),
        (BudgetSubjectKind::Team, Some(team)) => Some(Subject::Team(team)),
        (BudgetSubjectKind::Route, Some(route)) => {
            Some(Subject::Route(ObjectRef::new(namespace, route)))
        }
    };
    if spec.limits.is_empty() {
        errors.push((
            "spec.limits".into(),
            "InvalidLimit",
            "a policy needs at least one limit".into(),
        ));
    }
    let mut limits = Vec::with_capacity(spec.limits.len());
    for (index, limit) in spec.limits.iter().enumerate() {
        match translate_limit(limit) {
            Ok(limit) => limits.push(limit),
            Err((reason, message)) => {
                errors.push((format!("spec.limits[{index}]"), reason, message))
            }
        }
    }
    let time_zone = match spec.time_zone.as_deref() {
        None | Some("UTC") => TimeZone::UTC,
        Some(zone) => TimeZone::get(zone).unwrap_or_else(|_| {
            errors.push((
                "spec.timeZone".into(),
                "InvalidTimeZone",
                format!("`{zone}` is not an IANA time zone name such as `Europe/Paris`"),
            ));
            TimeZone::UTC
        }),
    };
    let mut alert_thresholds = spec.alert_thresholds.clone();
    if let Some(bad) = alert_thresholds.iter().find(|t| **t == 0 || **t > 1000) {
        errors.push((
            "spec.alertThresholds".into(),
            "InvalidThreshold",
            format!("{bad} is not a percentage between 1 and 1000"),
        ));
    }
    alert_thresholds.sort_unstable();
    alert_thresholds.dedup();
    if !spec.tools.is_empty() {
        if spec.tools.iter().any(|t| t.trim().is_empty()) {
            errors.push((
                "spec.tools".into(),
                "InvalidTools",
                "tool patterns must not be empty".into(),
            ));
        }
        if let Some(index) = limits.iter().position(|l| l.unit != Unit::Requests) {
            errors.push((
                format!("spec.limits[{index}]"),
                "InvalidLimit",
                "a policy with `tools` counts tool calls: only `requests` limits apply".into(),
            ));
        }
    }
    if spec.default_max_output_tokens == Some(0) {
        errors.push((
            "spec.defaultMaxOutputTokens".into(),
            "InvalidLimit",
            "must be at least 1".into(),
        ));
    }
    let (Some(subject), true) = (subject, errors.is_empty()) else {
        return Err(errors);
    };
    Ok(BudgetPolicy {
        id: ObjectRef::new(namespace, name),
        subject,
        limits,
        enforcement: match spec.enforcement {
            BudgetEnforcement::Hard => Enforcement::Hard,
            BudgetEnforcement::Soft => Enforcement::Soft,
        },
        failure_mode: match spec.failure_mode {
            ApiFailureMode::Open => FailureMode::Open,
            ApiFailureMode::Closed => FailureMode::Closed,
        },
        alert_thresholds,
        clamp: spec.clamp,
        default_max_output_tokens: spec
            .default_max_output_tokens
            .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS),
        time_zone,
        tools: spec.tools.clone(),
    })
}

fn translate_limit(limit: &BudgetLimit) -> Result<Limit, (&'static str, String)> {
    let window = match limit.window {
        BudgetWindow::Minute => Window::Minute,
        BudgetWindow::Hour => Window::Hour,
        BudgetWindow::Day => Window::Day,
        BudgetWindow::Month => Window::Month,
    };
    let (unit, amount) = match (&limit.usd, limit.tokens, limit.requests) {
        (Some(usd), None, None) => (Unit::NanoUsd, nano_usd(usd)?),
        (None, Some(tokens), None) => (Unit::Tokens, tokens),
        (None, None, Some(requests)) => (Unit::Requests, requests),
        _ => {
            return Err((
                "InvalidLimit",
                "set exactly one of `usd`, `tokens` and `requests`".into(),
            ));
        }
    };
    if amount == 0 {
        return Err((
            "InvalidLimit",
            "a limit of zero refuses everything; remove the policy or raise the limit".into(),
        ));
    }
    Ok(Limit {
        window,
        unit,
        amount,
    })
}

/// A USD amount as whole nano-dollars; finer fractions are refused rather than rounded.
fn nano_usd(usd: &str) -> Result<u64, (&'static str, String)> {
    let invalid = || {
        (
            "InvalidLimit",
            format!("`{usd}` is not a USD amount such as \"25.00\""),
        )
    };
    let dollars = Decimal::from_str(usd).map_err(|_| invalid())?;
    if dollars.is_sign_negative() {
        return Err(invalid());
    }
    let nanos = dollars * Decimal::from(NANOS_PER_USD);
    if !nanos.fract().is_zero() {
        return Err((
            "InvalidLimit",
            format!("`{usd}` has more than nine decimal places"),
        ));
    }
    u64::try_from(nanos).map_err(|_| ("InvalidLimit", format!("`{usd}` is too large")))
}
