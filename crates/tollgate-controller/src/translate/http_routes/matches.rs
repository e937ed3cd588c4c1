//! An HTTPRoute match → [`Match`]: exact and prefix paths, exact headers and query
//! parameters, and the method. Regular expressions are not supported.

use gateway_api::httproutes::{
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParamsType,
};
use tollgate_config::Match;

use super::super::matches::http_token;
use super::super::policy::PolicyError;
use super::UNSUPPORTED;

/// Reads one match; every problem is returned, each with its field below the match.
pub(super) fn translate(matched: &HttpRouteRulesMatches) -> Result<Match, Vec<PolicyError>> {
    let mut errors: Vec<PolicyError> = Vec::new();
    let mut result = Match::default();
    if let Some(path) = &matched.path {
        let value = path.value.as_deref().unwrap_or("/");
        if !value.starts_with('/') {
            errors.push((
                "path.value".into(),
                "InvalidMatch",
                "a path starts with /".into(),
            ));
        }
        match path
            .r#type
            .as_ref()
            .unwrap_or(&HttpRouteRulesMatchesPathType::PathPrefix)
        {
            HttpRouteRulesMatchesPathType::Exact => result.path = Some(value.to_owned()),
            HttpRouteRulesMatchesPathType::PathPrefix => {
                let trimmed = value.trim_end_matches('/');
                result.path_prefix = (!trimmed.is_empty()).then(|| trimmed.to_owned());
            }
            HttpRouteRulesMatchesPathType::RegularExpression => errors.push(regex("path.type")),
        }
    }
    for (index, header) in matched.headers.iter().flatten().enumerate() {
        if header.r#type == Some(HttpRouteRulesMatchesHeadersType::RegularExpression) {
            errors.push(regex(&format!("headers[{index}].type")));
        } else if !http_token(&header.name) {
            errors.push((
                format!("headers[{index}].name"),
                "InvalidMatch",
                "not a valid header name".into(),
            ));
        } else {
            result
                .headers
                .push((header.name.to_ascii_lowercase(), header.value.clone()));
        }
    }
    for (index, query) in matched.query_params.iter().flatten().enumerate() {
        if query.r#type == Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression) {
            errors.push(regex(&format!("queryParams[{index}].type")));
        } else {
            result.query.push((query.name.clone(), query.value.clone()));
        }
    }
    result.method = matched.method.as_ref().map(|m| method(m).to_owned());
    match errors.is_empty() {
        true => Ok(result),
        false => Err(errors),
    }
}

/// A method as written on the wire.
fn method(method: &HttpRouteRulesMatchesMethod) -> &'static str {
    match method {
        HttpRouteRulesMatchesMethod::Get => "GET",
        HttpRouteRulesMatchesMethod::Head => "HEAD",
        HttpRouteRulesMatchesMethod::Post => "POST",
        HttpRouteRulesMatchesMethod::Put => "PUT",
        HttpRouteRulesMatchesMethod::Delete => "DELETE",
        HttpRouteRulesMatchesMethod::Connect => "CONNECT",
        HttpRouteRulesMatchesMethod::Options => "OPTIONS",
        HttpRouteRulesMatchesMethod::Trace => "TRACE",
        HttpRouteRulesMatchesMethod::Patch => "PATCH",
    }
}

fn regex(field: &str) -> PolicyError {
    (
        field.to_owned(),
        UNSUPPORTED,
        "RegularExpression matches are not supported; use Exact or PathPrefix".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Match, Vec<PolicyError>> {
        translate(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn paths_headers_query_and_method_are_read() {
        let matched = read(
            "{path: {type: PathPrefix, value: /api/}, headers: [{name: X-Team, value: a}], queryParams: [{name: v, value: '2'}], method: GET}",
        )
        .unwrap();
        assert_eq!(matched.path_prefix.as_deref(), Some("/api"));
        assert_eq!(matched.headers, [("x-team".to_string(), "a".to_string())]);
        assert_eq!(matched.query, [("v".to_string(), "2".to_string())]);
        assert_eq!(matched.method.as_deref(), Some("GET"));
        assert_eq!(read("{path: {value: /}}").unwrap(), Match::default());
        assert_eq!(
            read("{path: {type: Exact, value: /x}}")
                .unwrap()
                .path
                .as_deref(),
            Some("/x")
        );
    }

    #[test]
    fn regular_expressions_are_unsupported_values() {
        let errors = read(
            "{path: {type: RegularExpression, value: '/a.*'}, headers: [{name: x, type: RegularExpression, value: '.*'}]}",
        )
        .unwrap_err();
        let fields: Vec<(&str, &str)> = errors.iter().map(|(f, r, _)| (f.as_str(), *r)).collect();
        assert_eq!(
            fields,
            [("path.type", UNSUPPORTED), ("headers[0].type", UNSUPPORTED)]
        );
    }
}
