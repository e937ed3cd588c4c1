//! A rule's match conditions → [`Match`].

use tollgate_api::AIRouteMatch;
use tollgate_config::{Match, ModelMatch};

use super::policy::PolicyError;

/// Reads one match; every problem is returned, each with its field below the match.
pub(super) fn translate(matched: &AIRouteMatch) -> Result<Match, Vec<PolicyError>> {
    let mut errors: Vec<PolicyError> = Vec::new();
    let mut invalid = |field: &str, message: &str| {
        errors.push((field.to_string(), "InvalidMatch", message.to_string()))
    };
    let model = match (&matched.model, &matched.model_prefix) {
        (Some(_), Some(_)) => {
            invalid("modelPrefix", "set model or modelPrefix, not both");
            ModelMatch::Any
        }
        (Some(model), None) if model.is_empty() => {
            invalid(
                "model",
                "model must not be empty; omit it to match every model",
            );
            ModelMatch::Any
        }
        (None, Some(prefix)) if prefix.is_empty() => {
            invalid(
                "modelPrefix",
                "modelPrefix must not be empty; omit it to match every model",
            );
            ModelMatch::Any
        }
        (Some(model), None) => ModelMatch::Exact(model.clone()),
        (None, Some(prefix)) => ModelMatch::Prefix(prefix.clone()),
        (None, None) => ModelMatch::Any,
    };
    let mut headers = Vec::new();
    for (index, header) in matched.headers.iter().enumerate() {
        if http_token(&header.name) {
            headers.push((header.name.to_ascii_lowercase(), header.value.clone()));
        } else {
            invalid(&format!("headers[{index}].name"), "not a valid header name");
        }
    }
    if matched.path.as_deref().is_some_and(|p| !p.starts_with('/')) {
        invalid("path", "a path starts with /");
    }
    let (min, max) = matched
        .prompt_tokens
        .as_ref()
        .map_or((None, None), |r| (r.min, r.max));
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        invalid("promptTokens", "min must not exceed max");
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Match {
        model,
        headers,
        path: matched.path.clone(),
        min_prompt_tokens: min,
        max_prompt_tokens: max,
        has_tools: matched.has_tools,
        has_images: matched.has_images,
        ..Match::default()
    })
}

/// Whether a header name is an HTTP token (RFC 9110 §5.6.2).
pub(super) fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
