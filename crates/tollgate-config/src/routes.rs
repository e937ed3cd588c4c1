//! How a request's model picks a rule, and how a rule picks a backend.

use serde::{Serialize, Serializer};
use std::collections::HashMap;

use crate::{ObjectRef, ProviderId, RulePolicy};

/// The rules of every route attached to a Gateway, indexed for lookup by model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteTable {
    rules: Vec<Rule>,
    by_model: HashMap<String, usize>,
    catch_all: Option<usize>,
}

impl RouteTable {
    /// Builds the table from rules given in precedence order (earlier wins). A model named by
    /// several rules goes to the first; the first rule that matches any model catches the rest.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut by_model = HashMap::new();
        let mut catch_all = None;
        for (index, rule) in rules.iter().enumerate() {
            if rule.matches_any {
                catch_all.get_or_insert(index);
            }
            for model in &rule.models {
                by_model.entry(model.clone()).or_insert(index);
            }
        }
        Self {
            rules,
            by_model,
            catch_all,
        }
    }

    /// The rule that serves a requested model: an exact match first, then the catch-all.
    pub fn find(&self, model: &str) -> Option<&Rule> {
        self.lookup(model).map(|index| &self.rules[index])
    }

    /// The index of the rule [`RouteTable::find`] returns, for carrying in a request.
    pub fn lookup(&self, model: &str) -> Option<usize> {
        self.by_model.get(model).copied().or(self.catch_all)
    }

    /// The rule at an index [`RouteTable::lookup`] returned.
    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    /// The model names rules match explicitly, sorted, for `/v1/models`.
    pub fn models(&self) -> Vec<(&str, &Rule)> {
        let mut models: Vec<(&str, &Rule)> = self
            .by_model
            .iter()
            .map(|(model, index)| (model.as_str(), &self.rules[*index]))
            .collect();
        models.sort_by_key(|(model, _)| *model);
        models
    }

    /// All rules in precedence order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl Serialize for RouteTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.rules)
    }
}

/// One rule of one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rule {
    /// The AIRoute the rule belongs to.
    pub route: ObjectRef,
    /// The rule's name, or its index when unnamed; used in metrics and logs.
    pub name: String,
    /// The models the rule matches exactly.
    pub models: Vec<String>,
    /// Whether the rule also matches models it does not name (it has a match without a model,
    /// or no matches at all).
    pub matches_any: bool,
    /// Where matching requests go; never empty, weights never all zero.
    pub backends: Vec<Backend>,
    /// Balancing, retries, timeouts and ejection.
    pub policy: RulePolicy,
}

/// A provider and the model to ask it for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Backend {
    /// The provider.
    pub provider: ProviderId,
    /// The upstream model; the requested model is passed on when unset.
    pub model: Option<String>,
    /// Share of the traffic among backends of the same priority.
    pub weight: u32,
    /// Failover group; lower serves first.
    pub priority: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, models: &[&str], weights: &[u32]) -> Rule {
        Rule {
            route: ObjectRef::new("default", "chat"),
            name: name.into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            matches_any: models.is_empty(),
            policy: RulePolicy::default(),
            backends: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Backend {
                    provider: ProviderId(i),
                    model: None,
                    weight: *w,
                    priority: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn exact_match_wins_over_catch_all_and_earlier_wins_ties() {
        let table = RouteTable::new(vec![
            rule("any", &[], &[1]),
            rule("mini", &["gpt-4o-mini"], &[1]),
            rule("mini-again", &["gpt-4o-mini", "gpt-4o"], &[1]),
        ]);
        assert_eq!(table.find("gpt-4o-mini").unwrap().name, "mini");
        assert_eq!(table.find("gpt-4o").unwrap().name, "mini-again");
        assert_eq!(table.find("other").unwrap().name, "any");
        let models: Vec<&str> = table.models().iter().map(|(m, _)| *m).collect();
        assert_eq!(models, ["gpt-4o", "gpt-4o-mini"]);
    }

    #[test]
    fn no_catch_all_means_unknown_models_find_nothing() {
        let table = RouteTable::new(vec![rule("mini", &["gpt-4o-mini"], &[1])]);
        assert!(table.find("gpt-5").is_none());
    }
}
