//! The metric series every request to a target records, found in their families at their
//! first use and kept with the snapshot's labels, so that recording a request looks nothing up
//! in a family's map. A target is one backend of one rule, for one model label; a series kept
//! here stays the family's own (families of requests and tokens are never cleared).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use std::hash::Hash;
use std::sync::OnceLock;

/// The token types `tollgate_tokens` counts, in the order [`TargetSeries::tokens`] keeps them.
pub(crate) const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached", "reasoning"];

/// One target's series, each found at its first use.
#[derive(Debug, Default)]
pub(crate) struct TargetSeries {
    /// `tollgate_requests` of answers with status 200 and outcome `ok`.
    pub(crate) ok_requests: OnceLock<Counter>,
    /// `tollgate_request_duration_seconds` of the same answers.
    pub(crate) ok_durations: OnceLock<Histogram>,
    /// `tollgate_tokens`, by [`TOKEN_TYPES`].
    pub(crate) tokens: [OnceLock<Counter>; 4],
    /// `gen_ai_client_token_usage` of chat requests: input, then output.
    pub(crate) chat_token_usage: [OnceLock<Histogram>; 2],
}

/// The series of `family` with the labels `labels` makes, found once and then kept in `kept`.
pub(crate) fn kept<'a, S, M, C>(
    kept: &'a OnceLock<M>,
    family: &Family<S, M, C>,
    labels: impl FnOnce() -> S,
) -> &'a M
where
    S: Clone + Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    kept.get_or_init(|| family.get_or_create_owned(&labels()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    #[test]
    fn a_kept_series_is_the_familys_own() {
        let family = Family::<Vec<(String, String)>, Counter>::default();
        let mut registry = Registry::default();
        registry.register("hits", "Hits", family.clone());
        let cell = OnceLock::new();
        let labels = || vec![("route".to_owned(), "chat".to_owned())];
        kept(&cell, &family, labels).inc();
        kept(&cell, &family, || unreachable!("found once")).inc_by(2);
        assert_eq!(family.get_or_create(&labels()).get(), 3);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains(r#"hits_total{route="chat"} 3"#), "{text}");
    }
}
