//! How a request picks a rule: candidates by model (exact, then prefix, longest first, then
//! rules with no model condition), each in precedence order, the first whose match holds.

use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashMap;

use crate::matching::{Match, ModelMatch, RequestFacts};
use crate::{Access, Identity, ObjectRef, ProviderId, RulePolicy};

/// A rule and which of its matches put it in a candidate list (`None`: it has no matches).
type Entry = (usize, Option<usize>);

/// The rules of every route attached to a Gateway, indexed for lookup by model. It is written
/// as its rules alone and read back through [`RouteTable::new`], so the index is always built
/// here, never taken from outside.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Vec<Rule>")]
pub struct RouteTable {
    rules: Vec<Rule>,
    by_model: HashMap<String, Vec<Entry>>,
    by_prefix: HashMap<String, Vec<Entry>>,
    /// The distinct lengths of the prefixes, longest first: a lookup tries only these.
    prefix_lengths: Vec<usize>,
    any_model: Vec<Entry>,
}

impl RouteTable {
    /// Builds the table from rules given in precedence order (earlier wins among equals).
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut by_model: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut prefixes: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut any_model = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.matches.is_empty() {
                any_model.push((index, None));
            }
            for (m, matched) in rule.matches.iter().enumerate() {
                let entry = (index, Some(m));
                match &matched.model {
                    ModelMatch::Any => any_model.push(entry),
                    ModelMatch::Exact(model) => {
                        by_model.entry(model.clone()).or_default().push(entry)
                    }
                    ModelMatch::Prefix(prefix) => {
                        prefixes.entry(prefix.clone()).or_default().push(entry)
                    }
                }
            }
        }
        let mut prefix_lengths: Vec<usize> = prefixes.keys().map(String::len).collect();
        prefix_lengths.sort_unstable_by(|a, b| b.cmp(a));
        prefix_lengths.dedup();
        Self {
            rules,
            by_model,
            by_prefix: prefixes,
            prefix_lengths,
            any_model,
        }
    }

    /// The index of the rule that serves a request, if any: the first entry, in the order
    /// exact model, prefix (longest first), any model, whose rule serves the request's host
    /// and whose match holds entirely.
    pub fn lookup(&self, facts: &RequestFacts<'_>) -> Option<usize> {
        let exact = self.by_model.get(facts.model).into_iter().flatten();
        let prefixed = self
            .prefix_lengths
            .iter()
            .filter_map(|length| facts.model.get(..*length))
            .filter_map(|prefix| self.by_prefix.get(prefix))
            .flatten();
        exact
            .chain(prefixed)
            .chain(&self.any_model)
            .find(|(rule, matched)| {
                let rule = &self.rules[*rule];
                rule.serves_host(facts.host) && matched.is_none_or(|m| rule.matches[m].holds(facts))
            })
            .map(|(rule, _)| *rule)
    }

    /// The rule at an index [`RouteTable::lookup`] returned.
    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    /// The model names rules match exactly, sorted, with the first rule naming each, for
    /// `/v1/models`.
    pub fn models(&self) -> Vec<(&str, &Rule)> {
        let mut models: Vec<(&str, &Rule)> = self
            .by_model
            .iter()
            .map(|(model, entries)| (model.as_str(), &self.rules[entries[0].0]))
            .collect();
        models.sort_by_key(|(model, _)| *model);
        models
    }

    /// All rules in precedence order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl From<Vec<Rule>> for RouteTable {
    fn from(rules: Vec<Rule>) -> Self {
        Self::new(rules)
    }
}

impl Serialize for RouteTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.rules)
    }
}

/// One rule of one route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The AIRoute (or HTTPRoute) the rule belongs to.
    pub route: ObjectRef,
    /// The rule's name, or its index when unnamed; used in metrics and logs.
    pub name: String,
    /// The hosts the rule serves (exact or `*.` wildcard names); every host when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The rule applies when any of these holds; no matches means every request.
    pub matches: Vec<Match>,
    /// Where matching requests go; never empty, weights never all zero.
    pub backends: Vec<Backend>,
    /// Balancing, retries, timeouts and ejection.
    pub policy: RulePolicy,
    /// Who may use the rule: a caller must be allowed by every entry (the route's, then the
    /// rule's own); everyone when empty.
    pub access: Vec<Access>,
}

impl Rule {
    /// Whether the rule serves requests for `host`.
    pub fn serves_host(&self, host: &str) -> bool {
        crate::hostnames::host_rank(&self.hostnames, host).is_some()
    }

    /// Whether `identity` may use this rule.
    pub fn allows(&self, identity: &Identity) -> bool {
        self.access.iter().all(|access| access.allows(identity))
    }

    /// Whether `model` is a model this rule names exactly (for metric labels, which must not
    /// take arbitrary names from callers).
    pub fn names_model(&self, model: &str) -> bool {
        self.matches
            .iter()
            .any(|m| matches!(&m.model, ModelMatch::Exact(exact) if exact == model))
    }
}

/// A provider and the model to ask it for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

    fn rule(name: &str, matches: Vec<Match>) -> Rule {
        Rule {
            route: ObjectRef::new("default", "chat"),
            name: name.into(),
            hostnames: Vec::new(),
            matches,
            backends: vec![Backend {
                provider: ProviderId(0),
                model: None,
                weight: 1,
                priority: 0,
            }],
            policy: RulePolicy::default(),
            access: Vec::new(),
        }
    }

    fn exact(model: &str) -> Match {
        Match::model(ModelMatch::Exact(model.into()))
    }

    fn prefix(model: &str) -> Match {
        Match::model(ModelMatch::Prefix(model.into()))
    }

    fn no_headers(_: &str, _: &str) -> bool {
        false
    }

    fn facts(model: &str) -> RequestFacts<'_> {
        RequestFacts {
            model,
            path: "/v1/chat/completions",
            method: "POST",
            host: "gateway.example.com",
            header_is: &no_headers,
            query_is: &no_headers,
            prompt_tokens: 100,
            has_tools: false,
            has_images: false,
        }
    }

    fn served(table: &RouteTable, facts: &RequestFacts<'_>) -> Option<String> {
        table.lookup(facts).map(|i| table.rule(i).name.clone())
    }

    #[test]
    fn exact_beats_prefix_beats_any_and_longer_prefixes_win() {
        let table = RouteTable::new(vec![
            rule("any", vec![]),
            rule("gpt", vec![prefix("gpt")]),
            rule("gpt-4o", vec![prefix("gpt-4o")]),
            rule("mini", vec![exact("gpt-4o-mini")]),
            rule("mini-again", vec![exact("gpt-4o-mini"), exact("gpt-4o")]),
        ]);
        assert_eq!(served(&table, &facts("gpt-4o-mini")).unwrap(), "mini");
        assert_eq!(served(&table, &facts("gpt-4o")).unwrap(), "mini-again");
        assert_eq!(served(&table, &facts("gpt-4o-2024")).unwrap(), "gpt-4o");
        assert_eq!(served(&table, &facts("gpt-3.5")).unwrap(), "gpt");
        assert_eq!(served(&table, &facts("claude")).unwrap(), "any");
        let models: Vec<&str> = table.models().iter().map(|(m, _)| *m).collect();
        assert_eq!(models, ["gpt-4o", "gpt-4o-mini"]);
    }

    #[test]
    fn a_candidate_whose_conditions_fail_gives_way_to_the_next() {
        let gold = Match {
            headers: vec![("x-tier".into(), "gold".into())],
            ..exact("m")
        };
        let big = Match {
            min_prompt_tokens: Some(1000),
            ..exact("m")
        };
        let tools = Match {
            has_tools: Some(true),
            path: Some("/v1/chat/completions".into()),
            ..Match::default()
        };
        let table = RouteTable::new(vec![
            rule("gold", vec![gold]),
            rule("big", vec![big]),
            rule("tools", vec![tools]),
            rule("plain", vec![exact("m")]),
        ]);
        assert_eq!(served(&table, &facts("m")).unwrap(), "plain");

        let gold_header = |name: &str, value: &str| name == "x-tier" && value == "gold";
        let request = RequestFacts {
            header_is: &gold_header,
            ..facts("m")
        };
        assert_eq!(served(&table, &request).unwrap(), "gold");
        assert_eq!(
            served(
                &table,
                &RequestFacts {
                    prompt_tokens: 5000,
                    ..facts("m")
                }
            )
            .unwrap(),
            "big"
        );
        assert_eq!(
            served(
                &table,
                &RequestFacts {
                    has_tools: true,
                    ..facts("other")
                }
            )
            .unwrap(),
            "tools"
        );
        assert_eq!(
            served(
                &table,
                &RequestFacts {
                    has_tools: true,
                    path: "/v1/embeddings",
                    ..facts("other")
                }
            ),
            None
        );
    }

    #[test]
    fn a_rule_for_other_hosts_gives_way_to_the_next() {
        let mut elsewhere = rule("elsewhere", vec![exact("m")]);
        elsewhere.hostnames = vec!["*.internal".into()];
        let table = RouteTable::new(vec![elsewhere, rule("here", vec![])]);
        assert_eq!(served(&table, &facts("m")).unwrap(), "here");
        let internal = RequestFacts {
            host: "api.internal",
            ..facts("m")
        };
        assert_eq!(served(&table, &internal).unwrap(), "elsewhere");
    }

    #[test]
    fn no_rule_without_a_model_condition_means_unknown_models_find_nothing() {
        let table = RouteTable::new(vec![rule("mini", vec![exact("gpt-4o-mini")])]);
        assert!(table.lookup(&facts("gpt-5")).is_none());
    }

    #[test]
    fn every_condition_of_a_match_is_checked() {
        let m = Match {
            model: ModelMatch::Prefix("gpt".into()),
            max_prompt_tokens: Some(200),
            has_images: Some(false),
            ..Match::default()
        };
        assert!(m.holds(&facts("gpt-4o")));
        assert!(!m.holds(&facts("o3")));
        assert!(!m.holds(&RequestFacts {
            prompt_tokens: 201,
            ..facts("gpt-4o")
        }));
        assert!(!m.holds(&RequestFacts {
            has_images: true,
            ..facts("gpt-4o")
        }));
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        const MODELS: [&str; 4] = ["a", "ab", "abc", "b"];

        fn model_match() -> impl Strategy<Value = ModelMatch> {
            prop_oneof![
                Just(ModelMatch::Any),
                (0..4usize).prop_map(|i| ModelMatch::Exact(MODELS[i].into())),
                (0..4usize).prop_map(|i| ModelMatch::Prefix(MODELS[i].into())),
            ]
        }

        fn a_match() -> impl Strategy<Value = Match> {
            (
                model_match(),
                any::<bool>(),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(|(model, gold, has_tools)| Match {
                    model,
                    headers: if gold {
                        vec![("x-tier".into(), "gold".into())]
                    } else {
                        vec![]
                    },
                    has_tools,
                    ..Match::default()
                })
        }

        /// Precedence written the slow, obvious way: the first rule (in order) with an exact
        /// match that holds; else the longest prefix match that holds; else the first rule
        /// with no matches or a model-less match that holds.
        fn reference(rules: &[Rule], facts: &RequestFacts<'_>) -> Option<usize> {
            let holding = |class: fn(&ModelMatch, &str) -> Option<usize>| {
                let mut found: Vec<(std::cmp::Reverse<usize>, usize)> = Vec::new();
                for (index, rule) in rules.iter().enumerate() {
                    for m in &rule.matches {
                        if let Some(length) = class(&m.model, facts.model)
                            && m.holds(facts)
                        {
                            found.push((std::cmp::Reverse(length), index));
                        }
                    }
                }
                found.into_iter().min().map(|(_, index)| index)
            };
            holding(|m, model| matches!(m, ModelMatch::Exact(x) if x == model).then_some(0))
                .or_else(|| {
                    holding(|m, model| match m {
                        ModelMatch::Prefix(p) if model.starts_with(p.as_str()) => Some(p.len()),
                        _ => None,
                    })
                })
                .or_else(|| {
                    rules.iter().position(|r| {
                        r.matches.is_empty()
                            || r.matches
                                .iter()
                                .any(|m| m.model == ModelMatch::Any && m.holds(facts))
                    })
                })
        }

        proptest! {
            #[test]
            fn lookup_follows_the_documented_precedence(
                rules in proptest::collection::vec(proptest::collection::vec(a_match(), 0..3), 0..8),
                model in 0..4usize,
                gold in any::<bool>(),
                has_tools in any::<bool>(),
            ) {
                let rules: Vec<Rule> = rules.into_iter().enumerate().map(|(i, matches)| rule(&i.to_string(), matches)).collect();
                let table = RouteTable::new(rules.clone());
                let header_is = move |name: &str, value: &str| gold && name == "x-tier" && value == "gold";
                let facts = RequestFacts { model: MODELS[model], has_tools, header_is: &header_is, ..facts("") };
                prop_assert_eq!(table.lookup(&facts), reference(&rules, &facts));
            }
        }
    }
}
