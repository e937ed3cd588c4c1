//! OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoints, so that MCP clients
//! that do OAuth discover which issuers' tokens the gateway accepts: the JWTProviders of the
//! Gateway. The document is served without authentication at
//! `/.well-known/oauth-protected-resource<endpoint path>` (and at the bare well-known path for
//! the first endpoint), and every 401 of an MCP endpoint points at it in `WWW-Authenticate`.
//!
//! The resource's URL is built from what the caller used: `X-Forwarded-Proto` and
//! `X-Forwarded-Host` when a load balancer in front sets them, else the request's own scheme
//! (HTTP/2) and `Host`; without a scheme, `https` when every listener of the Gateway has TLS.

use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri, header};
use serde_json::json;
use tollgate_config::Snapshot;

use crate::body::ProxyBody;

/// Where RFC 9728 puts the metadata of a resource.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// The longest host name used in the URLs built.
const MAX_HOST: usize = 255;

/// The metadata document answering `path`, if `path` asks for an MCP endpoint's metadata.
pub(crate) fn answer(
    snapshot: &Snapshot,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response<ProxyBody>> {
    let endpoint_path = endpoint_path(snapshot, path)?;
    let resource = format!("{}{endpoint_path}", origin(snapshot, uri, headers));
    let document = json!({
        "resource": resource,
        "authorization_servers": snapshot
            .config
            .jwt_providers
            .iter()
            .map(|p| p.issuer.as_str())
            .collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Tollgate MCP gateway",
    });
    let mut response = Response::new(ProxyBody::full(document.to_string()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    Some(response)
}

/// The `WWW-Authenticate` value of a 401 at `path`, when `path` is an MCP endpoint.
pub(crate) fn challenge(
    snapshot: &Snapshot,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<HeaderValue> {
    super::endpoint_for(snapshot, path)?;
    let url = format!("{}{WELL_KNOWN}{path}", origin(snapshot, uri, headers));
    HeaderValue::from_str(&format!("Bearer resource_metadata=\"{url}\"")).ok()
}

/// The MCP endpoint path whose metadata `path` names.
fn endpoint_path<'a>(snapshot: &'a Snapshot, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(WELL_KNOWN)?;
    let mut paths = snapshot.config.mcp.iter().flat_map(|e| &e.paths);
    if rest.is_empty() || rest == "/" {
        return paths.next().map(String::as_str);
    }
    paths.find(|p| *p == rest).map(String::as_str)
}

/// `scheme://host` as the caller reached the gateway.
fn origin(snapshot: &Snapshot, uri: &Uri, headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim())
            .filter(|v| !v.is_empty() && v.len() <= MAX_HOST && is_host_like(v))
    };
    let scheme = match header("x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None => match uri.scheme_str() {
            Some("https") => "https",
            Some(_) => "http",
            None => {
                let listeners = &snapshot.config.listeners;
                if !listeners.is_empty() && listeners.iter().all(|l| l.tls.is_some()) {
                    "https"
                } else {
                    "http"
                }
            }
        },
    };
    let host = header("x-forwarded-host")
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .or_else(|| header("host"))
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// Whether a header value can be written into a URL as a host (and port) unescaped.
fn is_host_like(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tollgate_config::{
        GatewayConfig, JwtProvider, KeySource, Listener, McpEndpoint, ObjectRef, Secret,
    };

    fn snapshot(paths: &[&str], issuers: &[&str]) -> Snapshot {
        Snapshot {
            version: 1,
            config: GatewayConfig {
                listeners: vec![Listener {
                    name: "http".into(),
                    port: 8080,
                    hostname: None,
                    tls: None,
                }],
                mcp: vec![McpEndpoint {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                    hostnames: Vec::new(),
                    servers: Vec::new(),
                    session_key: Secret::new("k".repeat(32)),
                    rule: "mcp".into(),
                    route: ObjectRef::new("default", "tools"),
                    access: Vec::new(),
                }],
                jwt_providers: issuers
                    .iter()
                    .map(|i| JwtProvider::new("idp", *i, KeySource::Inline(String::new())))
                    .collect(),
                ..GatewayConfig::default()
            },
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    async fn json_of(response: Response<ProxyBody>) -> serde_json::Value {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn names_the_endpoint_and_the_issuers() {
        let snapshot = snapshot(&["/mcp", "/tools"], &["https://idp.example"]);
        let uri = Uri::from_static("/.well-known/oauth-protected-resource/tools");
        let host = headers(&[("host", "gw.example:8080")]);
        let response = answer(&snapshot, uri.path(), &uri, &host).unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let document = json_of(response).await;
        assert_eq!(document["resource"], "http://gw.example:8080/tools");
        assert_eq!(
            document["authorization_servers"],
            json!(["https://idp.example"])
        );
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));

        let root = Uri::from_static("/.well-known/oauth-protected-resource");
        let document = json_of(answer(&snapshot, root.path(), &root, &host).unwrap()).await;
        assert_eq!(
            document["resource"], "http://gw.example:8080/mcp",
            "the bare path describes the first endpoint"
        );
    }

    #[test]
    fn other_paths_are_not_metadata() {
        let snapshot = snapshot(&["/mcp"], &[]);
        for path in [
            "/.well-known/oauth-protected-resource/other",
            "/.well-known/openid-configuration",
            "/mcp",
        ] {
            let uri = Uri::from_static("/");
            assert!(
                answer(&snapshot, path, &uri, &HeaderMap::new()).is_none(),
                "{path}"
            );
        }
        let no_mcp = Snapshot {
            version: 1,
            config: GatewayConfig::default(),
        };
        let uri = Uri::from_static("/");
        assert!(answer(&no_mcp, WELL_KNOWN, &uri, &HeaderMap::new()).is_none());
    }

    #[test]
    fn the_challenge_points_at_the_metadata_as_the_caller_sees_the_gateway() {
        let snapshot = snapshot(&["/mcp"], &[]);
        let uri = Uri::from_static("/mcp");
        let forwarded = headers(&[
            ("host", "10.0.0.7:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "ai.example.com"),
        ]);
        assert_eq!(
            challenge(&snapshot, "/mcp", &uri, &forwarded).unwrap(),
            "Bearer resource_metadata=\"https://ai.example.com/.well-known/oauth-protected-resource/mcp\""
        );
        let hostile = headers(&[("host", "evil\"host")]);
        assert_eq!(
            challenge(&snapshot, "/mcp", &uri, &hostile).unwrap(),
            "Bearer resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\"",
            "a host that cannot be written into the URL is not"
        );
        assert!(challenge(&snapshot, "/v1/chat/completions", &uri, &forwarded).is_none());
    }
}
