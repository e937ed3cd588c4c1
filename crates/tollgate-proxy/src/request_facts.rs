//! What rules match on in a request besides its body: the host it names, its headers and its
//! query parameters, read the same way for AI rules, MCP endpoints and Service rules.

use http::{Request, header};
use percent_encoding::percent_decode_str;

/// The host a request names (its `Host` header, or the URI's authority as HTTP/2 sends it),
/// without port; empty when it names none.
pub(crate) fn host<B>(request: &Request<B>) -> &str {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    tollgate_config::request_host(authority)
}

/// Whether the request has a header `name` (lower case) with exactly `value`.
pub(crate) fn header_is<B>(request: &Request<B>, name: &str, value: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .any(|v| v.as_bytes() == value.as_bytes())
}

/// Whether the query string `query` has a parameter `name` with exactly `value`, both
/// compared percent-decoded.
pub(crate) fn query_is(query: Option<&str>, name: &str, value: &str) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .any(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            percent_decode_str(n).decode_utf8_lossy() == name
                && percent_decode_str(v).decode_utf8_lossy() == value
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_comes_from_the_header_or_the_authority() {
        let request = Request::get("/")
            .header("host", "Api.Example.com:8080")
            .body(())
            .unwrap();
        assert_eq!(host(&request), "Api.Example.com");
        let http2 = Request::get("https://h2.example.com/x").body(()).unwrap();
        assert_eq!(host(&http2), "h2.example.com");
        assert_eq!(host(&Request::get("/").body(()).unwrap()), "");
    }

    #[test]
    fn query_parameters_are_compared_decoded() {
        let query = Some("a=1&tier=gold%20plus&flag&b=");
        assert!(query_is(query, "tier", "gold plus"));
        assert!(query_is(query, "flag", ""));
        assert!(query_is(query, "b", ""));
        assert!(!query_is(query, "a", "2"));
        assert!(!query_is(None, "a", "1"));
    }
}
