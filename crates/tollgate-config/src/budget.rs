//! Budgets and rate limits: which policies a request must fit, and what each one limits.

use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;

use crate::{Identity, ObjectRef};

/// One `BudgetPolicy`, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetPolicy {
    /// The policy resource.
    pub id: ObjectRef,
    /// Whose requests it counts.
    pub subject: Subject,
    /// Its limits; never empty.
    pub limits: Vec<Limit>,
    /// Whether reaching a limit refuses requests.
    pub enforcement: Enforcement,
    /// What to do when the store cannot be reached.
    pub failure_mode: FailureMode,
    /// Percentages of a limit at which to alert, ascending and without duplicates.
    pub alert_thresholds: Vec<u16>,
    /// Whether a request's output cap may be lowered to fit instead of refusing it.
    pub clamp: bool,
    /// The output tokens reserved for a request that sets no cap.
    pub default_max_output_tokens: u64,
    /// The time zone `Day` and `Month` windows follow.
    #[serde(
        serialize_with = "serialize_time_zone",
        deserialize_with = "deserialize_time_zone"
    )]
    pub time_zone: TimeZone,
    /// Glob patterns of MCP tool names: when any, the policy counts calls of matching tools,
    /// one request each, and never model requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

impl BudgetPolicy {
    /// The store key of one of the policy's limits: stable across reloads as long as the
    /// policy keeps the limit at the same position with the same window and unit, so counts
    /// survive configuration changes that do not touch them.
    pub fn counter_key(&self, limit: usize) -> String {
        let Limit { window, unit, .. } = &self.limits[limit];
        format!(
            "{}/{}/{limit}/{}/{}",
            self.id.namespace,
            self.id.name,
            unit.as_str(),
            window.as_str()
        )
    }
}

fn serialize_time_zone<S: Serializer>(zone: &TimeZone, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(zone.iana_name().unwrap_or("UTC"))
}

/// Reads a zone by its IANA name from the bundled database; `UTC` is [`TimeZone::UTC`], as
/// translation makes it.
fn deserialize_time_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TimeZone, D::Error> {
    let name = String::deserialize(deserializer)?;
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(&name)
        .map_err(|e| serde::de::Error::custom(format_args!("unknown time zone {name:?}: {e}")))
}

/// Whose requests a policy counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name")]
pub enum Subject {
    /// Requests made with one API key, by key id (`namespace/secret-name`).
    Key(String),
    /// Requests of one user.
    User(String),
    /// Requests of one team.
    Team(String),
    /// Requests served by one AIRoute.
    Route(ObjectRef),
    /// Every request.
    Global,
}

/// One limit of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The window it counts over.
    pub window: Window,
    /// What it counts.
    pub unit: Unit,
    /// The most that may be counted in one window, in `unit`s.
    pub amount: u64,
}

/// Nano-dollars in a dollar: spend is counted in integer billionths ([`Unit::NanoUsd`]).
pub const NANOS_PER_USD: u64 = 1_000_000_000;

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Spend, in billionths of a US dollar, so that sums are exact integers.
    NanoUsd,
    /// Input plus output tokens.
    Tokens,
    /// Requests.
    Requests,
}

impl Unit {
    /// The unit's name in store keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::NanoUsd => "usd",
            Unit::Tokens => "tokens",
            Unit::Requests => "requests",
        }
    }
}

/// The window a limit counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The last 60 seconds, in one-second slots.
    Minute,
    /// The last 60 minutes, in one-minute slots.
    Hour,
    /// The calendar day in the policy's time zone.
    Day,
    /// The calendar month in the policy's time zone.
    Month,
}

impl Window {
    /// The window's name in store keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// Whether reaching a limit refuses requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Enforcement {
    /// Refuse with 429.
    Hard,
    /// Allow, but report.
    Soft,
}

/// What to do when the budget store cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureMode {
    /// Serve the request uncounted.
    Open,
    /// Refuse the request.
    Closed,
}

/// Every policy, indexed by subject so a request finds its policies without a scan. It is
/// written as its policies alone and read back through [`Budgets::new`], which builds the
/// indexes and counter keys.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Vec<BudgetPolicy>")]
pub struct Budgets {
    policies: Vec<BudgetPolicy>,
    /// Each policy's counter keys, one per limit, built once.
    keys: Vec<Vec<String>>,
    by_key: HashMap<String, Vec<usize>>,
    by_user: HashMap<String, Vec<usize>>,
    by_team: HashMap<String, Vec<usize>>,
    by_route: HashMap<ObjectRef, Vec<usize>>,
    global: Vec<usize>,
}

impl Budgets {
    /// Indexes `policies`.
    pub fn new(policies: Vec<BudgetPolicy>) -> Self {
        let mut budgets = Budgets::default();
        for (index, policy) in policies.iter().enumerate() {
            let list = match &policy.subject {
                Subject::Key(key) => budgets.by_key.entry(key.clone()).or_default(),
                Subject::User(user) => budgets.by_user.entry(user.clone()).or_default(),
                Subject::Team(team) => budgets.by_team.entry(team.clone()).or_default(),
                Subject::Route(route) => budgets.by_route.entry(route.clone()).or_default(),
                Subject::Global => &mut budgets.global,
            };
            list.push(index);
        }
        budgets.keys = policies
            .iter()
            .map(|p| (0..p.limits.len()).map(|l| p.counter_key(l)).collect())
            .collect();
        budgets.policies = policies;
        budgets
    }

    /// Every policy, in the order given.
    pub fn policies(&self) -> &[BudgetPolicy] {
        &self.policies
    }

    /// The policy at `index`.
    pub fn policy(&self, index: usize) -> &BudgetPolicy {
        &self.policies[index]
    }

    /// The store key of limit `limit` of policy `policy` (see [`BudgetPolicy::counter_key`]).
    pub fn counter_key(&self, policy: usize, limit: usize) -> &str {
        &self.keys[policy][limit]
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The indices of the policies a model request of `identity` served by `route` must fit:
    /// its key's, its user's, its team's, its route's and the global ones, in that order
    /// (policies of MCP tools left out).
    pub fn applicable<'a>(
        &'a self,
        identity: &'a Identity,
        route: &'a ObjectRef,
    ) -> impl Iterator<Item = usize> + 'a {
        self.subject_policies(identity, route)
            .filter(|p| self.policies[*p].tools.is_empty())
    }

    /// The indices of the policies a call of MCP tool `tool` (as the caller names it) by
    /// `identity` through `route` must fit, in the order of [`Budgets::applicable`].
    pub fn applicable_to_tool<'a>(
        &'a self,
        identity: &'a Identity,
        route: &'a ObjectRef,
        tool: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        self.subject_policies(identity, route)
            .filter(move |p| tollgate_mcp::globs::any_match(&self.policies[*p].tools, tool))
    }

    /// Every policy whose subject covers `identity` and `route`.
    fn subject_policies<'a>(
        &'a self,
        identity: &'a Identity,
        route: &'a ObjectRef,
    ) -> impl Iterator<Item = usize> + 'a {
        let of = |found: Option<&'a Vec<usize>>| found.map(Vec::as_slice).unwrap_or_default();
        let lists = [
            of(self.by_key.get(&identity.key_id)),
            identity
                .user
                .as_ref()
                .map_or(&[][..], |u| of(self.by_user.get(u))),
            identity
                .team
                .as_ref()
                .map_or(&[][..], |t| of(self.by_team.get(t))),
            of(self.by_route.get(route)),
            &self.global,
        ];
        lists.into_iter().flatten().copied()
    }
}

impl From<Vec<BudgetPolicy>> for Budgets {
    fn from(policies: Vec<BudgetPolicy>) -> Self {
        Self::new(policies)
    }
}

impl Serialize for Budgets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.policies.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, subject: Subject) -> BudgetPolicy {
        BudgetPolicy {
            id: ObjectRef::new("default", name),
            subject,
            limits: vec![Limit {
                window: Window::Minute,
                unit: Unit::Requests,
                amount: 10,
            }],
            enforcement: Enforcement::Hard,
            failure_mode: FailureMode::Closed,
            alert_thresholds: Vec::new(),
            clamp: false,
            default_max_output_tokens: 4096,
            time_zone: TimeZone::UTC,
            tools: Vec::new(),
        }
    }

    #[test]
    fn tool_policies_count_only_the_calls_of_their_tools() {
        let mut github = policy("github", Subject::Team("research".into()));
        github.tools = vec!["github__create_*".into(), "github__delete_repo".into()];
        let budgets = Budgets::new(vec![policy("global", Subject::Global), github]);
        let research = Identity {
            team: Some("research".into()),
            ..Identity::default()
        };
        let route = ObjectRef::new("default", "tools");
        let model: Vec<usize> = budgets.applicable(&research, &route).collect();
        assert_eq!(model, [0], "tool policies never count model requests");
        let tool = |name| -> Vec<usize> {
            budgets
                .applicable_to_tool(&research, &route, name)
                .collect()
        };
        assert_eq!(tool("github__create_issue"), [1]);
        assert_eq!(tool("github__delete_repo"), [1]);
        assert_eq!(tool("github__list_issues"), Vec::<usize>::new());
        let bob = Identity {
            team: Some("other".into()),
            ..Identity::default()
        };
        let others: Vec<usize> = budgets
            .applicable_to_tool(&bob, &route, "github__create_issue")
            .collect();
        assert!(others.is_empty(), "the subject still decides");
    }

    #[test]
    fn a_request_finds_every_policy_of_its_subjects() {
        let budgets = Budgets::new(vec![
            policy("global", Subject::Global),
            policy("alice", Subject::User("alice".into())),
            policy("bob", Subject::User("bob".into())),
            policy("research", Subject::Team("research".into())),
            policy("key", Subject::Key("default/alice-key".into())),
            policy("chat", Subject::Route(ObjectRef::new("default", "chat"))),
        ]);
        let alice = Identity {
            key_id: "default/alice-key".into(),
            team: Some("research".into()),
            user: Some("alice".into()),
            expires_at: None,
        };
        let names = |identity: &Identity, route: &ObjectRef| -> Vec<String> {
            budgets
                .applicable(identity, route)
                .map(|p| budgets.policy(p).id.name.clone())
                .collect()
        };
        assert_eq!(
            names(&alice, &ObjectRef::new("default", "chat")),
            ["key", "alice", "research", "chat", "global"]
        );
        let anonymous = Identity {
            key_id: "default/other".into(),
            ..Identity::default()
        };
        assert_eq!(
            names(&anonymous, &ObjectRef::new("other", "chat")),
            ["global"]
        );
    }

    #[test]
    fn counter_keys_name_policy_limit_unit_and_window() {
        let p = policy("alice", Subject::User("alice".into()));
        assert_eq!(p.counter_key(0), "default/alice/0/requests/minute");
    }
}
