//! What a rule's matches test about a request.

use serde::{Deserialize, Serialize};

/// The facts about a request that rules can match on.
pub struct RequestFacts<'a> {
    /// The requested model.
    pub model: &'a str,
    /// The request path.
    pub path: &'a str,
    /// Whether the request has a header (lower-case name) with exactly this value.
    pub header_is: &'a dyn Fn(&str, &str) -> bool,
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
