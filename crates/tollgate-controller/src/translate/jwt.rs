//! `JWTProvider` resources → [`JwtProvider`]s. Like budgets, they apply to every Gateway.

use std::time::Duration;
use tollgate_api::JWTProvider;
use tollgate_config::{JwtProvider, KeySource};

use super::providers::parse_duration;
use super::{name_of, namespace_of};
use crate::Diagnostic;

/// How long fetched keys are used when a provider does not say.
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

/// The largest inline key set accepted, as the proxy accepts fetched ones.
const MAX_INLINE_JWKS: usize = 1 << 20;

pub(super) fn translate_all(
    providers: &[JWTProvider],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<JwtProvider> {
    let mut translated: Vec<JwtProvider> = Vec::new();
    for provider in providers {
        let (namespace, name) = (
            namespace_of(&provider.metadata),
            name_of(&provider.metadata),
        );
        let error = |field: &str, reason: &'static str, message: String| {
            Diagnostic::error("JWTProvider", namespace, name, field, reason, message)
        };
        let before = diagnostics.len();
        let spec = &provider.spec;
        if spec.issuer.trim().is_empty() {
            diagnostics.push(error(
                "spec.issuer",
                "InvalidIssuer",
                "the issuer must not be empty".into(),
            ));
        }
        if let Some(first) = translated.iter().find(|p| p.issuer == spec.issuer) {
            diagnostics.push(error(
                "spec.issuer",
                "DuplicateIssuer",
                format!(
                    "JWTProvider {} already trusts issuer {:?}; each issuer is declared once",
                    first.name, spec.issuer
                ),
            ));
        }
        let mut duration = |field: &str, value: &Option<String>| {
            value.as_ref().and_then(|text| {
                parse_duration(text)
                    .map_err(|message| diagnostics.push(error(field, "InvalidDuration", message)))
                    .ok()
            })
        };
        let clock_skew = duration("spec.clockSkew", &spec.clock_skew);
        let refresh = duration("spec.jwks.refreshInterval", &spec.jwks.refresh_interval)
            .unwrap_or(DEFAULT_REFRESH);
        let keys = match (&spec.jwks.uri, &spec.jwks.inline) {
            (Some(uri), None) if uri.starts_with("https://") || uri.starts_with("http://") => {
                Some(KeySource::Remote {
                    url: uri.clone(),
                    refresh_interval: refresh,
                })
            }
            (Some(uri), None) => {
                diagnostics.push(error(
                    "spec.jwks.uri",
                    "InvalidURI",
                    format!("{uri:?} is not an http(s) URL"),
                ));
                None
            }
            (None, Some(inline)) if inline.len() > MAX_INLINE_JWKS => {
                diagnostics.push(error(
                    "spec.jwks.inline",
                    "InvalidJWKS",
                    "the key set is larger than 1 MiB".into(),
                ));
                None
            }
            (None, Some(inline)) => match serde_json::from_str::<serde_json::Value>(inline) {
                Ok(value) if value.get("keys").is_some_and(serde_json::Value::is_array) => {
                    Some(KeySource::Inline(inline.clone()))
                }
                _ => {
                    diagnostics.push(error(
                        "spec.jwks.inline",
                        "InvalidJWKS",
                        "not a JSON Web Key Set: a JSON object with a `keys` list".into(),
                    ));
                    None
                }
            },
            _ => {
                diagnostics.push(error(
                    "spec.jwks",
                    "InvalidJWKS",
                    "set exactly one of `uri` and `inline`".into(),
                ));
                None
            }
        };
        let (Some(keys), true) = (keys, diagnostics.len() == before) else {
            continue;
        };
        let claims = spec.claims.clone().unwrap_or_default();
        let mut translated_provider =
            JwtProvider::new(format!("{namespace}/{name}"), spec.issuer.clone(), keys);
        translated_provider.audiences = spec.audiences.clone();
        if let Some(skew) = clock_skew {
            translated_provider.clock_skew = skew;
        }
        if let Some(user) = claims.user {
            translated_provider.user_claim = user;
        }
        translated_provider.team_claim = claims.team;
        translated.push(translated_provider);
    }
    translated
}
