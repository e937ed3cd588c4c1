//! ModelProvider → [`Provider`]: endpoint, credential, prices and timeouts, validated.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use tollgate_api::{ModelPricing, ModelProvider, ProviderTimeouts, ProviderType};
use tollgate_config::{ObjectRef, Pricing, Provider, ProviderKind, Secret, Timeouts};

use super::cloud;
use super::secrets::SecretIndex;
use super::{name_of, namespace_of};
use crate::Diagnostic;

const KIND: &str = "ModelProvider";

/// The Azure OpenAI `api-version` used when a provider names none: the latest GA version.
const AZURE_API_VERSION: &str = "2024-10-21";

/// Every provider by namespace/name: `Some` when valid, `None` when it has errors (reported).
pub(super) type Providers = BTreeMap<ObjectRef, Option<Provider>>;

pub(super) fn translate_all(
    providers: &[ModelProvider],
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Providers {
    providers
        .iter()
        .map(|p| {
            let name = ObjectRef::new(namespace_of(&p.metadata), name_of(&p.metadata));
            let errors_before = diagnostics.iter().filter(|d| d.is_error()).count();
            let provider = translate(p, name.clone(), secrets, diagnostics);
            let clean = diagnostics.iter().filter(|d| d.is_error()).count() == errors_before;
            (name, provider.filter(|_| clean))
        })
        .collect()
}

fn translate(
    resource: &ModelProvider,
    name: ObjectRef,
    secrets: &SecretIndex<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Provider> {
    let spec = &resource.spec;
    let error = |field: &str, reason: &'static str, message: String| {
        Diagnostic::error(KIND, &name.namespace, &name.name, field, reason, message)
    };

    let kind = match spec.provider_type {
        ProviderType::OpenAI => ProviderKind::OpenAI,
        ProviderType::OpenAICompatible => ProviderKind::OpenAICompatible,
        ProviderType::Anthropic => ProviderKind::Anthropic,
        ProviderType::Gemini => ProviderKind::Gemini,
        ProviderType::AzureOpenAI => ProviderKind::AzureOpenAI,
        ProviderType::Bedrock => ProviderKind::Bedrock,
        ProviderType::VertexAI => ProviderKind::VertexAI,
    };
    let account = cloud::account(spec, kind, &name, secrets, diagnostics).ok()?;

    let endpoint = match (&spec.endpoint, kind) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, ProviderKind::OpenAI) => "https://api.openai.com/v1".to_string(),
        (None, ProviderKind::Anthropic) => "https://api.anthropic.com/v1".to_string(),
        (None, ProviderKind::Gemini) => {
            "https://generativelanguage.googleapis.com/v1beta".to_string()
        }
        (None, ProviderKind::Bedrock | ProviderKind::VertexAI) => {
            cloud::default_endpoint(spec, kind)?
        }
        (None, ProviderKind::OpenAICompatible | ProviderKind::AzureOpenAI) => {
            diagnostics.push(error(
                "spec.endpoint",
                "MissingEndpoint",
                format!("an {:?} provider needs an endpoint URL", spec.provider_type),
            ));
            return None;
        }
    };
    let endpoint = match normalize_endpoint(&endpoint, kind) {
        Ok(endpoint) => endpoint,
        Err(message) => {
            diagnostics.push(error("spec.endpoint", "InvalidEndpoint", message));
            return None;
        }
    };

    let api_key = match &spec.auth {
        None => None,
        Some(auth) => {
            let r = &auth.secret_ref;
            match secrets.value(&name.namespace, &r.name, &r.key) {
                // Secrets made with `echo ... | base64` end in a newline; it is never part of a key.
                Ok(value) if is_header_safe(value.trim()) => Some(Secret::new(value.trim())),
                Ok(_) => {
                    diagnostics.push(error(
                        "spec.auth.secretRef",
                        "InvalidSecret",
                        format!("key {:?} of Secret {}/{} is empty or holds characters an HTTP header cannot carry", r.key, name.namespace, r.name),
                    ));
                    None
                }
                Err(e) => {
                    diagnostics.push(error(
                        "spec.auth.secretRef",
                        e.reason(),
                        e.message(&name.namespace, &r.name, &r.key),
                    ));
                    None
                }
            }
        }
    };

    let mut models = BTreeMap::new();
    for (index, model) in spec.models.iter().enumerate() {
        let field = format!("spec.models[{index}]");
        if model.name.is_empty() {
            diagnostics.push(error(
                &format!("{field}.name"),
                "InvalidModel",
                "model name must not be empty".into(),
            ));
            continue;
        }
        let pricing = match &model.pricing {
            None => Pricing::default(),
            Some(pricing) => match parse_pricing(pricing) {
                Ok(p) => p,
                Err((sub, message)) => {
                    diagnostics.push(error(
                        &format!("{field}.pricing.{sub}"),
                        "InvalidPrice",
                        message,
                    ));
                    continue;
                }
            },
        };
        if models.insert(model.name.clone(), pricing).is_some() {
            diagnostics.push(error(
                &format!("{field}.name"),
                "DuplicateModel",
                format!("model {:?} is listed twice", model.name),
            ));
        }
    }

    let timeouts = match parse_timeouts(spec.timeouts.as_ref()) {
        Ok(t) => t,
        Err((field, message)) => {
            diagnostics.push(error(
                &format!("spec.timeouts.{field}"),
                "InvalidDuration",
                message,
            ));
            return None;
        }
    };

    let api_version = match (kind, &spec.azure) {
        (ProviderKind::AzureOpenAI, settings) => Some(
            settings
                .as_ref()
                .and_then(|s| s.api_version.clone())
                .unwrap_or_else(|| AZURE_API_VERSION.to_string()),
        ),
        (_, Some(_)) => {
            diagnostics.push(
                error(
                    "spec.azure",
                    "IgnoredField",
                    "spec.azure applies only to AzureOpenAI providers".into(),
                )
                .warning(),
            );
            None
        }
        (_, None) => None,
    };
    if let Some(version) = &api_version
        && !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        diagnostics.push(error(
            "spec.azure.apiVersion",
            "InvalidApiVersion",
            format!("{version:?} is not an api-version such as 2024-10-21"),
        ));
        return None;
    }

    Some(Provider {
        name,
        kind,
        endpoint,
        api_key,
        models,
        timeouts,
        api_version,
        account,
    })
}

/// Whether a credential can be sent in an HTTP header: non-empty visible ASCII.
fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks a base URL, strips its trailing slash, and gives a bare origin its API's root path.
fn normalize_endpoint(endpoint: &str, kind: ProviderKind) -> Result<String, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{endpoint:?} must use http or https"));
    }
    if url.host_str().is_none() {
        return Err(format!("{endpoint:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{endpoint:?} must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{endpoint:?} must not embed credentials; use spec.auth"
        ));
    }
    let base = url.as_str().trim_end_matches('/');
    if url.path() == "/" {
        let root = match kind {
            ProviderKind::Gemini => "/v1beta",
            ProviderKind::AzureOpenAI => "/openai",
            ProviderKind::Bedrock => "",
            ProviderKind::OpenAI
            | ProviderKind::OpenAICompatible
            | ProviderKind::Anthropic
            | ProviderKind::VertexAI => "/v1",
        };
        return Ok(format!("{base}{root}"));
    }
    Ok(base.to_string())
}

fn parse_price(field: &'static str, value: &str) -> Result<Decimal, (&'static str, String)> {
    let valid = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        && value.matches('.').count() <= 1;
    match Decimal::from_str(value) {
        Ok(price) if valid => Ok(price),
        _ => Err((
            field,
            format!("{value:?} is not a non-negative decimal such as \"0.15\""),
        )),
    }
}

fn parse_pricing(pricing: &ModelPricing) -> Result<Pricing, (&'static str, String)> {
    let input = parse_price("inputPerMillionTokens", &pricing.input_per_million_tokens)?;
    let output = parse_price("outputPerMillionTokens", &pricing.output_per_million_tokens)?;
    let cached = match &pricing.cached_input_per_million_tokens {
        Some(value) => parse_price("cachedInputPerMillionTokens", value)?,
        None => input,
    };
    Ok(Pricing {
        input_per_million: input,
        cached_input_per_million: cached,
        output_per_million: output,
    })
}

/// Parses a Gateway API duration (`500ms`, `10s`, `1m30s`); zero is refused.
pub(super) fn parse_duration(value: &str) -> Result<Duration, String> {
    let parsed = gateway_api::Duration::from_str(value)
        .map_err(|e| format!("{value:?} is not a duration such as \"10s\" or \"500ms\": {e}"))?;
    let duration = Duration::from_nanos(parsed.as_nanos() as u64);
    if duration.is_zero() {
        return Err(format!("{value:?} must be greater than zero"));
    }
    Ok(duration)
}

fn parse_timeouts(timeouts: Option<&ProviderTimeouts>) -> Result<Timeouts, (&'static str, String)> {
    let mut result = Timeouts::default();
    let Some(timeouts) = timeouts else {
        return Ok(result);
    };
    if let Some(value) = &timeouts.connect {
        result.connect = parse_duration(value).map_err(|m| ("connect", m))?;
    }
    if let Some(value) = &timeouts.response_headers {
        result.response_headers = parse_duration(value).map_err(|m| ("responseHeaders", m))?;
    }
    Ok(result)
}
