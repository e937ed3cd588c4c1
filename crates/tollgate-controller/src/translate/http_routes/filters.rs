//! An HTTPRoute rule's filters and timeouts. Requests to Services support
//! `RequestHeaderModifier` and `URLRewrite`; every other filter, and any filter on a rule that
//! sends to ModelProviders or MCPServers, is an unsupported value that keeps the rule out.

use gateway_api::httproutes::{
    HttpRouteRulesFilters, HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewritePathType,
    HttpRouteRulesTimeouts,
};
use std::str::FromStr;
use std::time::Duration;
use tollgate_config::{HeaderModifier, Match, PathRewrite, ServiceTimeouts};

use super::super::policy::PolicyError;
use super::UNSUPPORTED;

/// What a Service rule's filters do to its requests.
#[derive(Debug, Default)]
pub(super) struct Filters {
    pub(super) headers: HeaderModifier,
    pub(super) rewrite: Option<PathRewrite>,
    pub(super) rewrite_host: Option<String>,
}

/// Reads the filters of a rule whose matches are `matches`; `to_services` tells whether the
/// rule sends to Services, the only backends filters apply to.
pub(super) fn translate(
    filters: &[HttpRouteRulesFilters],
    matches: &[Match],
    to_services: bool,
) -> Result<Filters, Vec<PolicyError>> {
    let mut errors: Vec<PolicyError> = Vec::new();
    let mut result = Filters::default();
    let mut seen: Vec<&HttpRouteRulesFiltersType> = Vec::new();
    for (index, filter) in filters.iter().enumerate() {
        let field = |sub: &str| format!("filters[{index}]{sub}");
        let mut unsupported = |sub: &str, message: String| {
            errors.push((field(sub), UNSUPPORTED, message));
        };
        if !to_services {
            unsupported(
                ".type",
                "filters apply only to rules that send to Services, not to ModelProviders or MCPServers".into(),
            );
            continue;
        }
        if seen.contains(&&filter.r#type) {
            unsupported(
                ".type",
                "each kind of filter may be given once per rule".into(),
            );
            continue;
        }
        seen.push(&filter.r#type);
        match &filter.r#type {
            HttpRouteRulesFiltersType::RequestHeaderModifier => {
                let Some(modifier) = &filter.request_header_modifier else {
                    unsupported(".requestHeaderModifier", "missing".into());
                    continue;
                };
                result.headers = HeaderModifier {
                    set: (modifier.set.iter().flatten())
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
                        .collect(),
                    add: (modifier.add.iter().flatten())
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
                        .collect(),
                    remove: (modifier.remove.iter().flatten())
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                };
                let headers = &result.headers;
                let named = headers.set.iter().chain(&headers.add).map(|(n, _)| n);
                for name in named.chain(&headers.remove) {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        unsupported(
                            ".requestHeaderModifier",
                            format!("{name:?} is not a header name"),
                        );
                    }
                }
                for (name, value) in headers.set.iter().chain(&headers.add) {
                    if http::HeaderValue::from_str(value).is_err() {
                        unsupported(
                            ".requestHeaderModifier",
                            format!("the value of {name} is not a valid header value"),
                        );
                    }
                }
            }
            HttpRouteRulesFiltersType::UrlRewrite => {
                let Some(rewrite) = &filter.url_rewrite else {
                    unsupported(".urlRewrite", "missing".into());
                    continue;
                };
                if let Some(host) = &rewrite.hostname {
                    if http::HeaderValue::from_str(host).is_err() || host.is_empty() {
                        unsupported(
                            ".urlRewrite.hostname",
                            format!("{host:?} is not a host name"),
                        );
                    }
                    result.rewrite_host = Some(host.clone());
                }
                let Some(path) = &rewrite.path else { continue };
                let (value, rewrite) = match path.r#type {
                    HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath => {
                        let value = path.replace_full_path.clone().unwrap_or_default();
                        (value.clone(), PathRewrite::FullPath(value))
                    }
                    HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch => {
                        if matches.iter().any(|m| m.path.is_some()) {
                            unsupported(
                                ".urlRewrite.path",
                                "ReplacePrefixMatch needs PathPrefix matches, not Exact ones"
                                    .into(),
                            );
                        }
                        let value = path.replace_prefix_match.clone().unwrap_or_default();
                        (value.clone(), PathRewrite::PrefixMatch(value))
                    }
                };
                if !value.starts_with('/') {
                    unsupported(".urlRewrite.path", format!("{value:?} is not a path"));
                }
                result.rewrite = Some(rewrite);
            }
            other => unsupported(
                ".type",
                format!(
                    "filter {other:?} is not supported; Tollgate supports RequestHeaderModifier and URLRewrite"
                ),
            ),
        }
    }
    match errors.is_empty() {
        true => Ok(result),
        false => Err(errors),
    }
}

/// Reads a rule's timeouts; `0s` turns a timeout off, as in the Gateway API.
pub(super) fn timeouts(
    timeouts: Option<&HttpRouteRulesTimeouts>,
) -> Result<ServiceTimeouts, Vec<PolicyError>> {
    let mut errors: Vec<PolicyError> = Vec::new();
    let mut read = |field: &str, value: Option<&String>| {
        let value = value?;
        match gateway_api::Duration::from_str(value) {
            Ok(parsed) => {
                let duration = Duration::from_nanos(parsed.as_nanos() as u64);
                (!duration.is_zero()).then_some(duration)
            }
            Err(e) => {
                errors.push((
                    format!("timeouts.{field}"),
                    "InvalidDuration",
                    format!("{value:?} is not a duration such as \"10s\" or \"500ms\": {e}"),
                ));
                None
            }
        }
    };
    let result = ServiceTimeouts {
        request: read("request", timeouts.and_then(|t| t.request.as_ref())),
        backend_request: read(
            "backendRequest",
            timeouts.and_then(|t| t.backend_request.as_ref()),
        ),
    };
    if let (Some(request), Some(backend)) = (result.request, result.backend_request)
        && backend > request
    {
        errors.push((
            "timeouts.backendRequest".into(),
            "InvalidDuration",
            "backendRequest must not be longer than request".into(),
        ));
    }
    match errors.is_empty() {
        true => Ok(result),
        false => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(yaml: &str) -> Vec<HttpRouteRulesFilters> {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn prefix(path: &str) -> Match {
        Match {
            path_prefix: Some(path.into()),
            ..Match::default()
        }
    }

    #[test]
    fn header_modifiers_and_rewrites_are_read_for_services() {
        let read = translate(
            &filters(
                "[{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Env, value: prod}], add: [{name: x-via, value: tg}], remove: [X-Debug]}}, {type: URLRewrite, urlRewrite: {hostname: api.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}]",
            ),
            &[prefix("/api")],
            true,
        )
        .unwrap();
        assert_eq!(
            read.headers.set,
            [("x-env".to_string(), "prod".to_string())]
        );
        assert_eq!(read.headers.remove, ["x-debug"]);
        assert_eq!(read.rewrite, Some(PathRewrite::PrefixMatch("/v2".into())));
        assert_eq!(read.rewrite_host.as_deref(), Some("api.internal"));
    }

    #[test]
    fn other_filters_and_filters_on_ai_rules_are_unsupported() {
        let mirror = filters(
            "[{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}]",
        );
        let errors = translate(&mirror, &[], true).unwrap_err();
        assert_eq!(errors[0].1, UNSUPPORTED);
        assert!(errors[0].2.contains("RequestMirror"), "{}", errors[0].2);
        let headers =
            filters("[{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x]}}]");
        let errors = translate(&headers, &[], false).unwrap_err();
        assert_eq!(errors[0].0, "filters[0].type");
        let exact = Match {
            path: Some("/x".into()),
            ..Match::default()
        };
        let rewrite = filters(
            "[{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]",
        );
        assert!(translate(&rewrite, &[exact], true).is_err());
    }

    #[test]
    fn timeouts_are_read_and_zero_turns_them_off() {
        let read = |yaml: &str| timeouts(Some(&serde_yaml::from_str(yaml).unwrap()));
        let both = read("{request: 30s, backendRequest: 5s}").unwrap();
        assert_eq!(both.request, Some(Duration::from_secs(30)));
        assert_eq!(both.backend_request, Some(Duration::from_secs(5)));
        assert_eq!(read("{request: 0s}").unwrap().request, None);
        assert!(read("{request: 1s, backendRequest: 2s}").is_err());
        assert_eq!(read("{request: soon}").unwrap_err()[0].1, "InvalidDuration");
    }
}
