//! What a rule's matches test about a request.

use serde::{Deserialize, Serialize};

/// The facts about a request that rules can match on.
pub struct RequestFacts<'a> {
    /// The requested model.
    pub model: &'a str,
    /// The request path.
    pub path: &'a str,
    /// The request method (`POST`).
    pub method: &'a str,
    /// The host the request names, without port (see [`crate::request_host`]).
    pub host: &'a str,
    /// Whether the request has a header (lower-case name) with exactly this value.
    pub header_is: &'a dyn Fn(&str, &str) -> bool,
    /// Whether the request's query has a parameter (exact name) with exactly this value.
    pub query_is: &'a dyn Fn(&str, &str) -> bool,
    /// The prompt's estimated size in tokens.
    pub prompt_tokens: u64,
    /// Whether the request defines tools.
    pub has_tools: bool,
    /// Whether the request carries images.
    pub has_images: bool,
}

/// The model condition of a match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelMatch {
    /// Any model.
    #[default]
    Any,
    /// Exactly this model.
    Exact(String),
    /// Any model starting with this.
    Prefix(String),
}

/// One match of a rule: every condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The model condition.
    pub model: ModelMatch,
    /// Headers that must be present with these values; names in lower case.
    pub headers: Vec<(String, String)>,
    /// The exact path required.
    pub path: Option<String>,
    /// A path prefix required, matched on whole segments: `/api` matches `/api` and
    /// `/api/v1`, not `/apis`. Never ends in `/` unless it is `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The request method required (`GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Query parameters that must be present with these values; names as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// Least estimated prompt tokens.
    pub min_prompt_tokens: Option<u64>,
    /// Greatest estimated prompt tokens.
    pub max_prompt_tokens: Option<u64>,
    /// Required presence (or absence) of tools.
    pub has_tools: Option<bool>,
    /// Required presence (or absence) of images.
    pub has_images: Option<bool>,
}

impl Match {
    /// A match on the model alone.
    pub fn model(model: ModelMatch) -> Self {
        Self {
            model,
            ..Self::default()
        }
    }

    /// Whether the request satisfies every condition.
    pub fn holds(&self, facts: &RequestFacts<'_>) -> bool {
        let model = match &self.model {
            ModelMatch::Any => true,
            ModelMatch::Exact(model) => facts.model == model,
            ModelMatch::Prefix(prefix) => facts.model.starts_with(prefix.as_str()),
        };
        model
            && self.path.as_deref().is_none_or(|path| path == facts.path)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| has_path_prefix(facts.path, prefix))
            && self
                .method
                .as_deref()
                .is_none_or(|method| method == facts.method)
            && self
                .query
                .iter()
                .all(|(name, value)| (facts.query_is)(name, value))
            && self
                .headers
                .iter()
                .all(|(name, value)| (facts.header_is)(name, value))
            && self
                .min_prompt_tokens
                .is_none_or(|min| facts.prompt_tokens >= min)
            && self
                .max_prompt_tokens
                .is_none_or(|max| facts.prompt_tokens <= max)
            && self
                .has_tools
                .is_none_or(|wanted| wanted == facts.has_tools)
            && self
                .has_images
                .is_none_or(|wanted| wanted == facts.has_images)
    }
}

/// Whether `path` starts with the segments of `prefix` (`/api` is a prefix of `/api/v1` but
/// not of `/apis`; `/` is a prefix of every path).
pub fn has_path_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A match's precedence among the matches of HTTPRoute rules, as the Gateway API orders
/// them: an exact path first, then the longest path prefix, then a method condition, then
/// the most header conditions, then the most query conditions. Smaller comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MatchPrecedence {
    inexact_path: bool,
    shorter_prefix: std::cmp::Reverse<usize>,
    no_method: bool,
    fewer_headers: std::cmp::Reverse<usize>,
    fewer_query: std::cmp::Reverse<usize>,
}

impl Match {
    /// Where this match ranks among HTTPRoute matches (a match without path condition ranks
    /// as the prefix `/`).
    pub fn precedence(&self) -> MatchPrecedence {
        let prefix = self.path_prefix.as_deref().map_or(1, str::len);
        MatchPrecedence {
            inexact_path: self.path.is_none(),
            shorter_prefix: std::cmp::Reverse(if self.path.is_some() { 0 } else { prefix }),
            no_method: self.method.is_none(),
            fewer_headers: std::cmp::Reverse(self.headers.len()),
            fewer_query: std::cmp::Reverse(self.query.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(has_path_prefix("/api", "/api"));
        assert!(has_path_prefix("/api/v1", "/api"));
        assert!(!has_path_prefix("/apis", "/api"));
        assert!(has_path_prefix("/anything", "/"));
        assert!(!has_path_prefix("/ap", "/api"));
    }

    #[test]
    fn precedence_follows_the_gateway_api_order() {
        let path = |p: &str| Match {
            path: Some(p.into()),
            ..Match::default()
        };
        let prefix = |p: &str| Match {
            path_prefix: Some(p.into()),
            ..Match::default()
        };
        let with_method = Match {
            method: Some("GET".into()),
            ..prefix("/a")
        };
        let with_header = Match {
            headers: vec![("x".into(), "1".into())],
            ..with_method.clone()
        };
        let with_query = Match {
            query: vec![("q".into(), "1".into())],
            ..with_header.clone()
        };
        let ordered = [
            path("/z"),
            prefix("/longer"),
            with_query,
            with_header,
            with_method,
            prefix("/a"),
            Match::default(),
        ];
        for pair in ordered.windows(2) {
            assert!(
                pair[0].precedence() < pair[1].precedence(),
                "{pair:?} out of order"
            );
        }
        assert_eq!(prefix("/").precedence(), Match::default().precedence());
    }
}
