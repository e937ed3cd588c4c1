//! Metric label values of a configuration — route, rule, provider and model names — made once
//! when the configuration is applied and shared by every request that names them: a request's
//! labels are reference counts, not copies, and hash as one number.

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, OnceLock};
use tollgate_config::{ModelMatch, Provider, ProviderId, Rule, Snapshot};

use crate::series::TargetSeries;

/// A label value: its text, made once and shared, and a digest of it computed then, which is
/// all that hashing a label set reads of it.
#[derive(Clone)]
pub(crate) struct Label {
    text: Arc<str>,
    digest: u64,
}

impl Label {
    /// The label `text`.
    pub(crate) fn new(text: &str) -> Self {
        // Unkeyed, so that equal texts always have equal digests.
        let digest = BuildHasherDefault::<DefaultHasher>::default().hash_one(text);
        Self {
            text: text.into(),
            digest,
        }
    }

    /// The empty label, for what a request never reached (no route, no provider).
    pub(crate) fn empty() -> Self {
        static EMPTY: LazyLock<Label> = LazyLock::new(|| Label::new(""));
        EMPTY.clone()
    }

    /// The label's text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.text, &other.text)
            || (self.digest == other.digest && self.text == other.text)
    }
}

impl Eq for Label {}

impl Hash for Label {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest);
    }
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.text, f)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

/// Mixes the values of a label set into one number, which is all a label set feeds the
/// metric family's hasher: one write instead of one per field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelSetDigest(u64);

impl LabelSetDigest {
    /// FxHash's multiplier: an odd constant with well-spread bits.
    const K: u64 = 0x517c_c1b7_2722_0a95;

    /// The digest of no values yet.
    pub(crate) fn new() -> Self {
        Self(0)
    }

    /// Mixes in a number.
    pub(crate) fn number(self, value: u64) -> Self {
        Self((self.0.rotate_left(5) ^ value).wrapping_mul(Self::K))
    }

    /// Mixes in a label.
    pub(crate) fn label(self, label: &Label) -> Self {
        self.number(label.digest)
    }

    /// Mixes in a text, eight bytes at a time, then its length (so that texts side by side
    /// cannot run into each other).
    pub(crate) fn text(self, text: &str) -> Self {
        let mut digest = self;
        for chunk in text.as_bytes().chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            digest = digest.number(u64::from_le_bytes(word));
        }
        digest.number(text.len() as u64)
    }

    /// Feeds the digest to a hasher.
    pub(crate) fn feed<H: Hasher>(self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The labels of one snapshot, by rule and provider index.
#[derive(Debug)]
pub(crate) struct Labels {
    rules: Vec<RuleLabels>,
    providers: Vec<ProviderLabels>,
    /// The model label of a request a rule serves without naming its model (`*`).
    any_model: Label,
}

/// The labels of one rule.
#[derive(Debug)]
struct RuleLabels {
    /// `namespace/name` of its AIRoute.
    route: Label,
    /// Its name.
    rule: Label,
    /// The models it names exactly.
    models: Vec<Label>,
    /// The series of its targets: for each backend, one per model it names and one for `*`.
    series: Vec<Arc<TargetSeries>>,
}

/// The label of one provider, and the series of its successful attempts.
#[derive(Debug)]
struct ProviderLabels {
    /// `namespace/name` of the provider.
    label: Label,
    /// `tollgate_upstream_attempts` with outcome `ok`.
    ok_attempts: OnceLock<Counter>,
}

impl Default for Labels {
    /// No labels made in advance: each is made when asked for.
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            providers: Vec::new(),
            any_model: Label::new("*"),
        }
    }
}

impl Labels {
    /// The labels of `snapshot`'s rules and providers.
    pub(crate) fn of(snapshot: &Snapshot) -> Self {
        let rules = snapshot
            .config
            .routes
            .rules()
            .iter()
            .map(rule_labels)
            .collect();
        let providers = snapshot
            .config
            .providers
            .iter()
            .map(|provider| ProviderLabels {
                label: Label::new(&provider.name.to_string()),
                ok_attempts: OnceLock::new(),
            })
            .collect();
        Self {
            rules,
            providers,
            any_model: Label::new("*"),
        }
    }

    /// The route and rule labels of `rule`, the rule at `index` of the snapshot's route table.
    pub(crate) fn rule(&self, index: usize, rule: &Rule) -> (Label, Label) {
        match self.rules.get(index) {
            Some(labels) => (labels.route.clone(), labels.rule.clone()),
            None => (Label::new(&rule.route.to_string()), Label::new(&rule.name)),
        }
    }

    /// The label of `provider`, whose id is `id`.
    pub(crate) fn provider(&self, id: ProviderId, provider: &Provider) -> Label {
        match self.providers.get(id.0) {
            Some(labels) => labels.label.clone(),
            None => Label::new(&provider.name.to_string()),
        }
    }

    /// Where the series of the provider `id`'s successful attempts is kept, if anywhere.
    pub(crate) fn ok_attempts(&self, id: ProviderId) -> Option<&OnceLock<Counter>> {
        self.providers.get(id.0).map(|labels| &labels.ok_attempts)
    }

    /// The model label and the series of a request for `model` served by `backend` of `rule`,
    /// the rule at `index`. The model label is the model when the rule names it exactly, `*`
    /// otherwise (labels never take arbitrary names from callers).
    pub(crate) fn target(
        &self,
        index: usize,
        rule: &Rule,
        backend: usize,
        model: &str,
    ) -> (Label, Arc<TargetSeries>) {
        let Some(labels) = self.rules.get(index) else {
            let label = rule.names_model(model).then(|| Label::new(model));
            let series = Arc::default();
            return (label.unwrap_or_else(|| self.any_model.clone()), series);
        };
        let named = labels
            .models
            .iter()
            .position(|label| label.as_str() == model);
        let label = named.map_or(&self.any_model, |slot| &labels.models[slot]);
        let slot = backend * (labels.models.len() + 1) + named.unwrap_or(labels.models.len());
        let series = labels.series.get(slot).cloned().unwrap_or_default();
        (label.clone(), series)
    }
}

fn rule_labels(rule: &Rule) -> RuleLabels {
    let mut models: Vec<Label> = Vec::new();
    for matched in &rule.matches {
        if let ModelMatch::Exact(model) = &matched.model
            && !models.iter().any(|label| label.as_str() == model)
        {
            models.push(Label::new(model));
        }
    }
    let series = (0..rule.backends.len() * (models.len() + 1))
        .map(|_| Arc::default())
        .collect();
    RuleLabels {
        route: Label::new(&rule.route.to_string()),
        rule: Label::new(&rule.name),
        models,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_texts_are_equal_labels_however_made() {
        let (a, b) = (Label::new("default/chat"), Label::new("default/chat"));
        assert_eq!(a, b);
        assert_ne!(a, Label::new("default/other"));
        let set: HashSet<Label> = [a.clone(), b, a.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a.to_string(), "default/chat");
        assert_eq!(Label::empty().as_str(), "");
    }
}
