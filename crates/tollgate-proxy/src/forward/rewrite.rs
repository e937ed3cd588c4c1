//! The request a Service backend receives: the caller's, sent to the backend's address with
//! the rule's path rewrite and header changes, without hop-by-hop headers and without the
//! caller's Tollgate credential.

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Uri, Version};
use tollgate_config::{Match, ServiceBackend, ServiceRule};

use crate::upstream::strip_hop_by_hop;

/// Turns the caller's request head into the one sent to `backend` for `rule`, whose match
/// `matched` selected it. Fails only on a rewrite that does not make a URI, which translation
/// prevents.
pub(crate) fn upstream_parts(
    parts: &mut Parts,
    rule: &ServiceRule,
    matched: Option<&Match>,
    backend: &ServiceBackend,
) -> Result<(), String> {
    let path = match &rule.rewrite {
        Some(rewrite) => rewrite.apply(parts.uri.path(), matched),
        None => parts.uri.path().to_owned(),
    };
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let host = match parts.headers.get(header::HOST) {
        Some(host) => Some(host.clone()),
        // HTTP/2 callers name the host in the URI; the backend reads it in `Host`.
        None => (parts.uri.authority()).and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(backend.authority())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| format!("cannot build the backend URI: {e}"))?;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    // The caller's Tollgate key or token is for Tollgate, not for the backend.
    headers.remove(header::AUTHORIZATION);
    let host = rule
        .rewrite_host
        .as_deref()
        .and_then(|h| HeaderValue::from_str(h).ok())
        .or(host);
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    let modifier = &rule.request_headers;
    for name in &modifier.remove {
        headers.remove(name.as_str());
    }
    for (name, value, replace) in (modifier.set.iter().map(|(n, v)| (n, v, true)))
        .chain(modifier.add.iter().map(|(n, v)| (n, v, false)))
    {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(format!("header {name:?} cannot be sent"));
        };
        if replace {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{HeaderModifier, ObjectRef, PathRewrite};

    fn backend() -> ServiceBackend {
        ServiceBackend {
            service: ObjectRef::new("default", "web"),
            host: "127.0.0.1".into(),
            port: 9000,
            weight: 1,
        }
    }

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_backend_gets_the_rewritten_path_the_query_and_the_changed_headers() {
        let rule = ServiceRule {
            rewrite: Some(PathRewrite::PrefixMatch("/v2".into())),
            request_headers: HeaderModifier {
                set: vec![("x-env".into(), "prod".into())],
                add: vec![("x-via".into(), "tollgate".into())],
                remove: vec!["x-debug".into()],
            },
            ..ServiceRule::default()
        };
        let matched = Match {
            path_prefix: Some("/api".into()),
            ..Match::default()
        };
        let mut head = parts(
            http::Request::post("/api/users?id=7")
                .header("host", "site.example.com")
                .header("authorization", "Bearer tg-secret")
                .header("connection", "keep-alive, x-hop")
                .header("x-hop", "1")
                .header("x-env", "dev")
                .header("x-via", "edge")
                .header("x-debug", "1")
                .header("x-kept", "yes"),
        );
        upstream_parts(&mut head, &rule, Some(&matched), &backend()).unwrap();
        assert_eq!(head.uri, "http://127.0.0.1:9000/v2/users?id=7");
        assert_eq!(head.version, Version::HTTP_11);
        let headers = &head.headers;
        assert_eq!(headers["host"], "site.example.com", "the Host is kept");
        for gone in ["authorization", "connection", "x-hop", "x-debug"] {
            assert!(!headers.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(headers["x-env"], "prod");
        let via: Vec<&HeaderValue> = headers.get_all("x-via").iter().collect();
        assert_eq!(via, ["edge", "tollgate"]);
        assert_eq!(headers["x-kept"], "yes");
    }

    #[test]
    fn an_http2_authority_becomes_the_host_unless_the_rule_rewrites_it() {
        let mut head = parts(http::Request::get("https://site.example.com/x"));
        upstream_parts(&mut head, &ServiceRule::default(), None, &backend()).unwrap();
        assert_eq!(head.headers["host"], "site.example.com");
        assert_eq!(head.uri, "http://127.0.0.1:9000/x");
        let rewrite = ServiceRule {
            rewrite_host: Some("internal.web".into()),
            ..ServiceRule::default()
        };
        let mut head = parts(http::Request::get("/x").header("host", "a"));
        upstream_parts(&mut head, &rewrite, None, &backend()).unwrap();
        assert_eq!(head.headers["host"], "internal.web");
    }
}
