//! Which caller may see and call which tool of one upstream server, and which arguments are
//! refused.
//!
//! Tool names in rules are the upstream's own names, without the server prefix; rules are
//! globs (see [`crate::globs`]).
//!
//! # Tool access
//!
//! - [`ToolRules`] (server-wide): `allow` (empty means every tool) and `deny`.
//! - [`Grant`]s: `teams`, `users` and `keys` say whom a grant is for (an identity matches
//!   when its key id, team or user is listed, compared exactly, as route access is); `allow`
//!   and `deny` say what it gives. A grant that lists nobody matches nobody.
//!
//! For an identity that **no grant matches**, a tool is permitted when the server-wide
//! `allow` matches it (or is empty) and the server-wide `deny` does not.
//!
//! For an identity that **one or more grants match**, the grants replace the server-wide
//! `allow`: a tool is permitted when at least one matching grant allows it (a grant with an
//! empty `allow` allows every tool) and no `deny` matches it, neither of any matching grant
//! nor the server-wide one. Deny always wins: the server-wide `deny` is a floor no grant
//! lifts, and a deny in one matching grant is not undone by another grant's allow.
//!
//! # Argument rules
//!
//! An [`ArgumentRule`] refuses a call of a tool matching its `tool` glob when its `deny`
//! regex (the `regex` crate's syntax, unanchored: it matches anywhere in the text) matches
//!
//! - with `argument` set to a name: the value of that top-level argument; or
//! - with `argument: "*"`: any value anywhere in the arguments, and every object key too.
//!
//! Strings are matched as they are, numbers and booleans as their JSON text (`22`, `true`);
//! arrays and objects are searched through. A missing argument matches nothing. These rules
//! are a guardrail against the obvious, not a sandbox: an upstream that interprets its
//! arguments (a shell, SQL) can be reached with text a deny pattern does not foresee.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::globs::{any_match, glob_match};

/// Who is calling. The proxy converts its own identity (an API key's or a JWT's) to this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// A stable, non-secret id of the credential (for API keys `namespace/secret-name`).
    pub key_id: String,
    /// The caller's team, if known.
    pub team: Option<String>,
    /// The caller's user, if known.
    pub user: Option<String>,
}

/// Server-wide allow and deny lists of tool globs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRules {
    /// Tools exposed; every tool when empty.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tools never exposed, even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl ToolRules {
    /// Whether these rules alone permit `tool`.
    pub fn permits(&self, tool: &str) -> bool {
        (self.allow.is_empty() || any_match(&self.allow, tool)) && !any_match(&self.deny, tool)
    }
}

/// Tools given to some teams, users or keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// Teams this grant is for.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Users this grant is for.
    #[serde(default)]
    pub users: Vec<String>,
    /// Key ids this grant is for.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Tools it allows; every tool when empty.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tools it denies.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl Grant {
    /// Whether this grant is for `identity`.
    pub fn matches(&self, identity: &Identity) -> bool {
        let listed = |list: &[String], value: &Option<String>| {
            value.as_ref().is_some_and(|v| list.contains(v))
        };
        self.keys.contains(&identity.key_id)
            || listed(&self.teams, &identity.team)
            || listed(&self.users, &identity.user)
    }
}

/// A pattern that refuses calls whose arguments match it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentRule {
    /// Glob of the tools it applies to.
    pub tool: String,
    /// A top-level argument name, or `*` for every value anywhere in the arguments.
    pub argument: String,
    /// The regex that refuses the call when it matches.
    pub deny: String,
}

/// A configuration the policy could not be built from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An argument rule's regex does not compile.
    #[error("argument rule {index}: invalid deny regex: {reason}")]
    InvalidRegex {
        /// The rule's index in the list.
        index: usize,
        /// What the regex crate said.
        reason: String,
    },
    /// An argument rule names no argument.
    #[error("argument rule {index}: `argument` is empty (use \"*\" for every argument)")]
    EmptyArgument {
        /// The rule's index in the list.
        index: usize,
    },
}

/// The biggest compiled regex accepted, so a configuration cannot blow up proxy memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The compiled tool policy of one upstream server.
#[derive(Clone, Debug, Default)]
pub struct ToolPolicy {
    rules: ToolRules,
    grants: Vec<Grant>,
    arguments: Vec<(ArgumentRule, Regex)>,
}

impl ToolPolicy {
    /// A policy that permits every tool and every argument.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Compiles a policy; fails on an invalid argument rule.
    pub fn new(
        rules: ToolRules,
        grants: Vec<Grant>,
        argument_rules: Vec<ArgumentRule>,
    ) -> Result<Self, PolicyError> {
        let arguments = argument_rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                if rule.argument.is_empty() {
                    return Err(PolicyError::EmptyArgument { index });
                }
                let regex = RegexBuilder::new(&rule.deny)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| PolicyError::InvalidRegex {
                        index,
                        reason: e.to_string(),
                    })?;
                Ok((rule, regex))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            grants,
            arguments,
        })
    }

    /// Whether `identity` may see and call `tool` (the upstream's name, unprefixed).
    pub fn permits_tool(&self, identity: &Identity, tool: &str) -> bool {
        if any_match(&self.rules.deny, tool) {
            return false;
        }
        let mut matched = self
            .grants
            .iter()
            .filter(|g| g.matches(identity))
            .peekable();
        if matched.peek().is_none() {
            return self.rules.permits(tool);
        }
        let mut allowed = false;
        for grant in matched {
            if any_match(&grant.deny, tool) {
                return false;
            }
            allowed |= grant.allow.is_empty() || any_match(&grant.allow, tool);
        }
        allowed
    }

    /// Checks a call's `arguments` against the argument rules for `tool` (unprefixed). The
    /// error names the first rule that refuses it, the argument path and the pattern.
    pub fn check_arguments(&self, tool: &str, arguments: &Value) -> Result<(), String> {
        self.refusing_rule(tool, arguments)
            .map_or(Ok(()), |refusal| Err(refusal.message))
    }

    /// The first argument rule refusing the call, as its index and a message.
    pub fn refusing_rule(&self, tool: &str, arguments: &Value) -> Option<Refusal> {
        for (index, (rule, regex)) in self.arguments.iter().enumerate() {
            if !glob_match(&rule.tool, tool) {
                continue;
            }
            let hit = if rule.argument == "*" {
                find_match(regex, arguments, String::new(), true)
            } else {
                arguments
                    .get(&rule.argument)
                    .and_then(|value| find_match(regex, value, rule.argument.clone(), false))
            };
            if let Some(path) = hit {
                return Some(Refusal {
                    rule: index,
                    message: format!(
                        "argument rule {index} (tool {:?}, argument {:?}) refuses this call: \
                         {} matches /{}/",
                        rule.tool,
                        rule.argument,
                        if path.is_empty() {
                            "the arguments"
                        } else {
                            &path
                        },
                        rule.deny,
                    ),
                });
            }
        }
        None
    }
}

/// An argument rule refusing a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The rule's index in the configured list.
    pub rule: usize,
    /// What to tell the caller.
    pub message: String,
}

/// The path of the first scalar in `value` (or, with `keys`, object key) that `regex` matches.
fn find_match(regex: &Regex, value: &Value, path: String, keys: bool) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => regex.is_match(s).then_some(path),
        Value::Bool(_) | Value::Number(_) => regex.is_match(&value.to_string()).then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_match(regex, item, format!("{path}[{i}]"), keys)),
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if keys && regex.is_match(key) {
                return Some(format!("key {child}"));
            }
            find_match(regex, item, child, keys)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn identity(key: &str, team: Option<&str>, user: Option<&str>) -> Identity {
        Identity {
            key_id: key.into(),
            team: team.map(Into::into),
            user: user.map(Into::into),
        }
    }

    fn policy(allow: &[&str], deny: &[&str], grants: Vec<Grant>) -> ToolPolicy {
        ToolPolicy::new(
            ToolRules {
                allow: strings(allow),
                deny: strings(deny),
            },
            grants,
            vec![],
        )
        .expect("valid")
    }

    #[test]
    fn server_wide_rules() {
        let anyone = identity("ns/k", None, None);
        let p = policy(&[], &[], vec![]);
        assert!(p.permits_tool(&anyone, "anything"));
        let p = policy(&["get_*", "list_*"], &["list_secrets"], vec![]);
        assert!(p.permits_tool(&anyone, "get_issue"));
        assert!(p.permits_tool(&anyone, "list_repos"));
        assert!(!p.permits_tool(&anyone, "list_secrets"), "deny wins");
        assert!(!p.permits_tool(&anyone, "delete_repo"), "not allowed");
        let p = policy(&[], &["delete_*"], vec![]);
        assert!(p.permits_tool(&anyone, "get_issue"));
        assert!(!p.permits_tool(&anyone, "delete_repo"));
    }

    #[test]
    fn grants_replace_the_server_wide_allow_for_matched_identities() {
        let p = policy(
            &["get_*"],
            &["drop_database"],
            vec![
                Grant {
                    teams: strings(&["platform"]),
                    ..Grant::default()
                },
                Grant {
                    users: strings(&["alice"]),
                    allow: strings(&["create_*"]),
                    ..Grant::default()
                },
            ],
        );
        let outsider = identity("ns/other", Some("sales"), Some("bob"));
        let platform = identity("ns/p", Some("platform"), None);
        let alice = identity("ns/a", Some("sales"), Some("alice"));
        assert!(p.permits_tool(&outsider, "get_issue"));
        assert!(!p.permits_tool(&outsider, "create_issue"));
        // An empty grant allow is every tool, but the server-wide deny still holds.
        assert!(p.permits_tool(&platform, "create_issue"));
        assert!(p.permits_tool(&platform, "delete_repo"));
        assert!(!p.permits_tool(&platform, "drop_database"));
        // Alice's grant replaces the server-wide allow: get_* is no longer hers.
        assert!(p.permits_tool(&alice, "create_issue"));
        assert!(!p.permits_tool(&alice, "get_issue"));
    }

    #[test]
    fn matched_grants_add_allows_and_any_deny_wins() {
        let p = policy(
            &[],
            &[],
            vec![
                Grant {
                    teams: strings(&["contractors"]),
                    allow: strings(&["get_*", "delete_*"]),
                    deny: strings(&["delete_*"]),
                    ..Grant::default()
                },
                Grant {
                    keys: strings(&["ns/ci"]),
                    allow: strings(&["run_*", "delete_branch"]),
                    ..Grant::default()
                },
            ],
        );
        let both = identity("ns/ci", Some("contractors"), None);
        assert!(p.permits_tool(&both, "get_issue"), "from the first grant");
        assert!(p.permits_tool(&both, "run_tests"), "from the second grant");
        assert!(
            !p.permits_tool(&both, "delete_branch"),
            "a deny in one matched grant is not undone by another's allow"
        );
        assert!(
            !p.permits_tool(&both, "other"),
            "allowed by no matched grant"
        );
    }

    #[test]
    fn grant_matching_is_exact_and_an_empty_grant_matches_nobody() {
        let g = Grant {
            teams: strings(&["eng"]),
            users: strings(&["alice"]),
            keys: strings(&["ns/key"]),
            ..Grant::default()
        };
        assert!(g.matches(&identity("ns/key", None, None)));
        assert!(g.matches(&identity("x", Some("eng"), None)));
        assert!(g.matches(&identity("x", None, Some("alice"))));
        assert!(!g.matches(&identity("x", Some("eng-2"), Some("Alice"))));
        assert!(!g.matches(&identity("x", None, None)));
        assert!(!Grant::default().matches(&identity("", None, None)));
        assert!(!Grant::default().matches(&identity("x", Some(""), Some(""))));
    }

    fn argument_policy(rules: &[(&str, &str, &str)]) -> ToolPolicy {
        ToolPolicy::new(
            ToolRules::default(),
            vec![],
            rules
                .iter()
                .map(|(tool, argument, deny)| ArgumentRule {
                    tool: (*tool).into(),
                    argument: (*argument).into(),
                    deny: (*deny).into(),
                })
                .collect(),
        )
        .expect("valid")
    }

    #[test]
    fn named_argument_rules() {
        let p = argument_policy(&[
            ("run_*", "command", r"rm\s+-rf"),
            ("connect", "port", "^22$"),
        ]);
        assert_eq!(
            p.check_arguments("run_shell", &json!({"command": "ls -la"})),
            Ok(())
        );
        let e = p
            .check_arguments("run_shell", &json!({"command": "rm  -rf /"}))
            .expect_err("refused");
        assert!(e.contains("argument rule 0"), "{e}");
        assert!(e.contains(r#"argument "command""#), "{e}");
        assert!(e.contains(r"/rm\s+-rf/"), "{e}");
        // Another tool, a missing argument, or the text in another argument: not refused.
        assert_eq!(
            p.check_arguments("read_file", &json!({"command": "rm -rf /"})),
            Ok(())
        );
        assert_eq!(p.check_arguments("run_shell", &json!({})), Ok(()));
        assert_eq!(p.check_arguments("run_shell", &Value::Null), Ok(()));
        assert_eq!(
            p.check_arguments("run_shell", &json!({"note": "rm -rf /"})),
            Ok(())
        );
        // Numbers are matched as their text, nested values are searched.
        assert!(p.check_arguments("connect", &json!({"port": 22})).is_err());
        assert!(p.check_arguments("connect", &json!({"port": 2222})).is_ok());
        let e = p
            .check_arguments("run_x", &json!({"command": ["echo", "rm -rf ~"]}))
            .expect_err("refused");
        assert!(e.contains("command[1]"), "{e}");
    }

    #[test]
    fn wildcard_argument_rules_search_everything() {
        let p = argument_policy(&[("*", "*", "(?i)password")]);
        assert!(p.check_arguments("t", &json!({"a": "fine"})).is_ok());
        let e = p
            .check_arguments("t", &json!({"a": {"b": [1, "my PASSWORD"]}}))
            .expect_err("refused");
        assert!(e.contains("a.b[1]"), "{e}");
        let e = p
            .check_arguments("t", &json!({"a": {"password": 1}}))
            .expect_err("keys too");
        assert!(e.contains("key a.password"), "{e}");
        let p = argument_policy(&[("*", "*", "secret")]);
        assert!(p.check_arguments("t", &json!("a secret")).is_err());
    }

    #[test]
    fn the_first_refusing_rule_is_named() {
        let p = argument_policy(&[("other", "*", "x"), ("t", "a", "x"), ("t", "*", "x")]);
        let refusal = p.refusing_rule("t", &json!({"a": "x"})).expect("refused");
        assert_eq!(refusal.rule, 1);
    }

    #[test]
    fn invalid_rules_are_refused_at_build_time() {
        let bad = ToolPolicy::new(
            ToolRules::default(),
            vec![],
            vec![
                ArgumentRule {
                    tool: "*".into(),
                    argument: "*".into(),
                    deny: "ok".into(),
                },
                ArgumentRule {
                    tool: "*".into(),
                    argument: "a".into(),
                    deny: "(unclosed".into(),
                },
            ],
        );
        assert!(matches!(
            bad,
            Err(PolicyError::InvalidRegex { index: 1, .. })
        ));
        let empty = ToolPolicy::new(
            ToolRules::default(),
            vec![],
            vec![ArgumentRule {
                tool: "*".into(),
                argument: String::new(),
                deny: "x".into(),
            }],
        );
        assert_eq!(empty.err(), Some(PolicyError::EmptyArgument { index: 0 }));
    }

    #[test]
    fn rules_deserialize_from_camel_case_config() {
        let grant: Grant =
            serde_json::from_value(json!({"teams": ["eng"], "allow": ["get_*"]})).expect("grant");
        assert_eq!(grant.teams, vec!["eng"]);
        assert!(grant.users.is_empty() && grant.deny.is_empty());
        let rules: ToolRules = serde_json::from_value(json!({"deny": ["x"]})).expect("rules");
        assert!(rules.allow.is_empty());
    }
}
