//! HTTPRoute rules whose backends are Services: their requests are proxied as plain HTTP.
//!
//! A request picks its rule the Gateway API way: among the rules whose host names serve its
//! host and one of whose matches holds, those with the most specific matching host name
//! first (the longest exact name, then the longest name), then by match precedence
//! ([`Match::precedence`]), then in the order the rules were given (oldest route first).

use serde::{Deserialize, Serialize, Serializer};
use std::time::Duration;

use crate::ObjectRef;
use crate::hostnames::{HostRank, host_rank};
use crate::matching::{Match, RequestFacts};

/// The Service rules of a Gateway, with their matches in precedence order. Written as its
/// rules alone and read back through [`ServiceRoutes::new`], so the order is always computed
/// here.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Vec<ServiceRule>")]
pub struct ServiceRoutes {
    rules: Vec<ServiceRule>,
    /// Every rule and match (`None`: a rule without matches, which serves every request), in
    /// precedence order.
    order: Vec<(usize, Option<usize>)>,
}

/// The rule and match a request found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceMatch {
    /// The rule's index in [`ServiceRoutes::rules`].
    pub rule: usize,
    /// The match that held, by index in the rule's matches.
    pub matched: Option<usize>,
    /// Whether that match is on the exact path, which outranks the AI endpoints.
    pub exact_path: bool,
}

impl ServiceRoutes {
    /// Orders the matches of rules given oldest route first (then by namespace and name,
    /// then by position in the route).
    pub fn new(rules: Vec<ServiceRule>) -> Self {
        let mut order: Vec<(usize, Option<usize>)> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.matches.is_empty() {
                order.push((index, None));
            }
            order.extend((0..rule.matches.len()).map(|m| (index, Some(m))));
        }
        let default = Match::default();
        order.sort_by_key(|(rule, matched)| {
            matched
                .map_or(&default, |m| &rules[*rule].matches[m])
                .precedence()
        });
        Self { rules, order }
    }

    /// The rule that serves a request, if any.
    pub fn lookup(&self, facts: &RequestFacts<'_>) -> Option<ServiceMatch> {
        let mut best: Option<(HostRank, ServiceMatch)> = None;
        for (rule_index, matched) in &self.order {
            let rule = &self.rules[*rule_index];
            let Some(rank) = host_rank(&rule.hostnames, facts.host) else {
                continue;
            };
            if best.as_ref().is_some_and(|(found, _)| *found >= rank) {
                continue;
            }
            let condition = matched.map(|m| &rule.matches[m]);
            if condition.is_none_or(|m| m.holds(facts)) {
                let found = ServiceMatch {
                    rule: *rule_index,
                    matched: *matched,
                    exact_path: condition.is_some_and(|m| m.path.is_some()),
                };
                best = Some((rank, found));
            }
        }
        best.map(|(_, found)| found)
    }

    /// The rule at an index [`ServiceRoutes::lookup`] returned.
    pub fn rule(&self, index: usize) -> &ServiceRule {
        &self.rules[index]
    }

    /// All rules, in the order given.
    pub fn rules(&self) -> &[ServiceRule] {
        &self.rules
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl From<Vec<ServiceRule>> for ServiceRoutes {
    fn from(rules: Vec<ServiceRule>) -> Self {
        Self::new(rules)
    }
}

impl Serialize for ServiceRoutes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.rules)
    }
}

/// One HTTPRoute rule proxied to Services.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRule {
    /// The HTTPRoute the rule belongs to.
    pub route: ObjectRef,
    /// The rule's name, or its index when unnamed; used in metrics and logs.
    pub name: String,
    /// The hosts the rule serves (exact or `*.` wildcard names); every host when empty.
    pub hostnames: Vec<String>,
    /// The rule applies when any of these holds; no matches means every request. Only the
    /// HTTP conditions (path, method, headers, query) are set.
    pub matches: Vec<Match>,
    /// Where requests go, by weight. Empty when none of the route's backends could be used:
    /// the rule then answers 500, as the Gateway API requires.
    pub backends: Vec<ServiceBackend>,
    /// Changes to the request's headers.
    pub request_headers: HeaderModifier,
    /// A new path for the request.
    pub rewrite: Option<PathRewrite>,
    /// A new `Host` for the request.
    pub rewrite_host: Option<String>,
    /// Time limits.
    pub timeouts: ServiceTimeouts,
}

/// A Service port requests are sent to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBackend {
    /// The Service.
    pub service: ObjectRef,
    /// The host to connect to: a DNS name or an IP address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Share of the rule's traffic; 0 takes none.
    pub weight: u32,
}

impl ServiceBackend {
    /// `host:port`, with an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        match self.host.contains(':') && !self.host.starts_with('[') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Changes to headers, applied in the order remove, set, add; names in lower case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    /// Headers replaced, or added when absent.
    pub set: Vec<(String, String)>,
    /// Headers added to any already there.
    pub add: Vec<(String, String)>,
    /// Headers removed.
    pub remove: Vec<String>,
}

impl HeaderModifier {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// How a request's path is rewritten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathRewrite {
    /// The whole path is replaced.
    FullPath(String),
    /// The part the match's path condition matched is replaced.
    PrefixMatch(String),
}

impl PathRewrite {
    /// The new path of a request to `path` that `matched` (the match that held, if any)
    /// selected.
    pub fn apply(&self, path: &str, matched: Option<&Match>) -> String {
        match self {
            PathRewrite::FullPath(full) => full.clone(),
            PathRewrite::PrefixMatch(replacement) => {
                let prefix = matched
                    .and_then(|m| m.path_prefix.as_deref().or(m.path.as_deref()))
                    .unwrap_or("/");
                let rest = match prefix {
                    "/" => path,
                    prefix => path.strip_prefix(prefix).unwrap_or(path),
                };
                let joined = format!("{}{rest}", replacement.trim_end_matches('/'));
                match joined.is_empty() {
                    true => "/".to_owned(),
                    false => joined,
                }
            }
        }
    }
}

/// Time limits of a Service rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTimeouts {
    /// The whole request, response body included; unlimited when unset (the response
    /// headers must still come within the backend's limit).
    #[serde(with = "crate::durations::optional_millis")]
    pub request: Option<Duration>,
    /// Until the backend's response headers; the proxy's default when unset.
    #[serde(with = "crate::durations::optional_millis")]
    pub backend_request: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, hostnames: &[&str], matches: Vec<Match>) -> ServiceRule {
        ServiceRule {
            route: ObjectRef::new("default", name),
            name: name.into(),
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            matches,
            ..ServiceRule::default()
        }
    }

    fn prefix(prefix: &str) -> Match {
        Match {
            path_prefix: Some(prefix.into()),
            ..Match::default()
        }
    }

    fn exact(path: &str) -> Match {
        Match {
            path: Some(path.into()),
            ..Match::default()
        }
    }

    fn none(_: &str, _: &str) -> bool {
        false
    }

    fn served(routes: &ServiceRoutes, host: &str, method: &str, path: &str) -> Option<String> {
        let header_is = |name: &str, value: &str| name == "x-canary" && value == "1";
        let facts = RequestFacts {
            model: "",
            path,
            method,
            host,
            header_is: &header_is,
            query_is: &none,
            prompt_tokens: 0,
            has_tools: false,
            has_images: false,
        };
        routes
            .lookup(&facts)
            .map(|found| routes.rule(found.rule).name.clone())
    }

    #[test]
    fn exact_paths_beat_longer_prefixes_beat_shorter_ones_then_route_order() {
        let routes = ServiceRoutes::new(vec![
            rule("root", &[], vec![]),
            rule("api", &[], vec![prefix("/api")]),
            rule("api-v1", &[], vec![prefix("/api/v1")]),
            rule("health", &[], vec![exact("/api/v1/health")]),
            rule("api-again", &[], vec![prefix("/api")]),
        ]);
        assert_eq!(
            served(&routes, "h", "GET", "/api/v1/health").unwrap(),
            "health"
        );
        assert_eq!(served(&routes, "h", "GET", "/api/v1/x").unwrap(), "api-v1");
        assert_eq!(served(&routes, "h", "GET", "/api/v2").unwrap(), "api");
        assert_eq!(served(&routes, "h", "GET", "/apis").unwrap(), "root");
    }

    #[test]
    fn method_then_headers_break_ties_between_equal_paths() {
        let get = Match {
            method: Some("GET".into()),
            ..prefix("/a")
        };
        let canary = Match {
            headers: vec![("x-canary".into(), "1".into())],
            ..prefix("/a")
        };
        let routes = ServiceRoutes::new(vec![
            rule("plain", &[], vec![prefix("/a")]),
            rule("canary", &[], vec![canary]),
            rule("get", &[], vec![get]),
        ]);
        assert_eq!(served(&routes, "h", "GET", "/a").unwrap(), "get");
        assert_eq!(served(&routes, "h", "POST", "/a").unwrap(), "canary");
    }

    #[test]
    fn the_most_specific_host_name_wins_before_paths() {
        let routes = ServiceRoutes::new(vec![
            rule("any", &[], vec![exact("/x")]),
            rule("wild", &["*.example.com"], vec![prefix("/")]),
            rule("exact", &["api.example.com"], vec![prefix("/")]),
            rule("other", &["other.test"], vec![prefix("/")]),
        ]);
        assert_eq!(
            served(&routes, "api.example.com", "GET", "/x").unwrap(),
            "exact"
        );
        assert_eq!(
            served(&routes, "web.example.com", "GET", "/x").unwrap(),
            "wild"
        );
        assert_eq!(served(&routes, "else.test", "GET", "/x").unwrap(), "any");
        assert_eq!(served(&routes, "else.test", "GET", "/y"), None);
    }

    #[test]
    fn prefix_rewrites_replace_what_the_match_matched() {
        let rewrite = PathRewrite::PrefixMatch("/v2".into());
        let api = prefix("/api");
        assert_eq!(rewrite.apply("/api/users", Some(&api)), "/v2/users");
        assert_eq!(rewrite.apply("/api", Some(&api)), "/v2");
        assert_eq!(rewrite.apply("/users", None), "/v2/users");
        let to_root = PathRewrite::PrefixMatch("/".into());
        assert_eq!(to_root.apply("/api/users", Some(&api)), "/users");
        assert_eq!(to_root.apply("/api", Some(&api)), "/");
        let full = PathRewrite::FullPath("/fixed".into());
        assert_eq!(full.apply("/anything", Some(&api)), "/fixed");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let backend = |host: &str| ServiceBackend {
            service: ObjectRef::new("default", "web"),
            host: host.into(),
            port: 80,
            weight: 1,
        };
        assert_eq!(backend("::1").authority(), "[::1]:80");
        assert_eq!(backend("web.default.svc").authority(), "web.default.svc:80");
    }
}
