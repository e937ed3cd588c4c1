//! The credentials the mock checks where the real clouds check them: Bedrock's SigV4
//! signatures (recomputed with AWS's own signer over the request exactly as received) and
//! Vertex AI's OAuth2 access tokens, which the mock's own token endpoint mints from a service
//! account's JWT assertion (RFC 7523), as Google's does.
//!
//! - Bedrock: requests signed by the mock's IAM user ([`AWS_ACCESS_KEY_ID`] /
//!   [`AWS_SECRET_ACCESS_KEY`], any region, with or without a session token) or carrying a
//!   bearer key (a Bedrock API key) pass; an unknown key id, a signature that does not match,
//!   or no credential is a 403 in Bedrock's shape.
//! - `POST /oauth2/token` (form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//!   `assertion=<JWT>`): the assertion's claims are checked (`iss`, `scope` with
//!   `cloud-platform`, `aud` this endpoint, `exp` after `iat`, `alg` RS256) but not its
//!   signature (the mock does not hold the account's public key); the answer is
//!   `{"access_token": "ya29.mock-<n>", "expires_in": <--token-lifetime-s>, "token_type": "Bearer"}`.
//! - `POST /{tenant}/oauth2/v2.0/token` (Microsoft Entra ID, form `grant_type=client_credentials`,
//!   `client_id`, `client_secret` = [`ENTRA_CLIENT_SECRET`], `scope` ending in `/.default`):
//!   the same kind of token; a wrong secret is a 401 `invalid_client`.
//! - Vertex AI paths (`/v1/projects/...`) need `authorization: Bearer` with a token the mock
//!   issued and that has not expired; otherwise a 401 in Google's shape. Azure deployment paths
//!   that carry a bearer (rather than an `api-key`) need one too (a 401 in OpenAI's shape).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{MockBody, bedrock, gemini, json_response, openai};

/// The access key id of the mock's IAM user.
pub(crate) const AWS_ACCESS_KEY_ID: &str = "AKIDTOLLGATEMOCK";
/// The secret access key of the mock's IAM user.
pub(crate) const AWS_SECRET_ACCESS_KEY: &str = "tollgate-mock-secret-access-key";
/// The path of the mock's token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth2/token";
/// The client secret of the mock's Entra ID application (any client id).
pub(crate) const ENTRA_CLIENT_SECRET: &str = "tollgate-mock-client-secret";

/// Whether `path` is an Entra ID token endpoint (`/{tenant}/oauth2/v2.0/token`).
pub(crate) fn is_entra_token_path(path: &str) -> bool {
    path.strip_suffix("/oauth2/v2.0/token")
        .and_then(|tenant| tenant.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}
/// The tokens kept at most (the oldest are forgotten first, as if expired).
const MAX_TOKENS: usize = 10_000;

/// The refusal of a Bedrock request whose credential does not pass, if it does not.
pub(crate) fn bedrock_refusal(
    parts: &http::request::Parts,
    body: &[u8],
) -> Option<Response<MockBody>> {
    let refuse = |message: String| Some(bedrock::error(StatusCode::FORBIDDEN, &message));
    let Some(authorization) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return refuse("Missing Authentication Token".into());
    };
    if authorization.starts_with("Bearer ") {
        return None;
    }
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return refuse(format!("unsupported authorization {authorization:?}"));
    };
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed_headers)) = (field("Credential"), field("SignedHeaders"))
    else {
        return refuse("malformed authorization header".into());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, _date, region, service, "aws4_request"] = scope[..] else {
        return refuse(format!("malformed credential scope {credential:?}"));
    };
    if key_id != AWS_ACCESS_KEY_ID {
        return refuse("The security token included in the request is invalid.".into());
    }
    if service != "bedrock" {
        return refuse(format!(
            "credential should be scoped to service 'bedrock', not {service:?}"
        ));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(time) = header("x-amz-date").and_then(parse_amz_date) else {
        return refuse("missing or malformed x-amz-date".into());
    };
    let identity: Identity = Credentials::new(
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        header("x-amz-security-token").map(str::to_string),
        None,
        "tollgate-mock",
    )
    .into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
    else {
        return refuse("cannot build signing parameters".into());
    };
    let params = params.into();
    let host = header("host").unwrap_or_default();
    let uri = format!(
        "http://{host}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let signed: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter(|name| !matches!(*name, "host" | "x-amz-date" | "x-amz-security-token"))
        .map(|name| (name, header(name).unwrap_or_default()))
        .collect();
    let expected = SignableRequest::new(
        parts.method.as_str(),
        uri,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .ok()
    .and_then(|request| aws_sigv4::http_request::sign(request, &params).ok())
    .map(|output| {
        let (instructions, _) = output.into_parts();
        let mut probe = http::Request::new(());
        instructions.apply_to_request_http1x(&mut probe);
        probe.headers().get(header::AUTHORIZATION).cloned()
    });
    match expected.flatten() {
        Some(expected) if expected.as_bytes() == authorization.as_bytes() => None,
        _ => refuse(
            "The request signature we calculated does not match the signature you provided.".into(),
        ),
    }
}

/// `20261202T100000Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let time = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", text).ok()?;
    let instant = jiff::tz::TimeZone::UTC.to_timestamp(time).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(instant.as_second()).ok()?))
}

/// The access tokens the mock issued, with when each expires.
pub(crate) struct Tokens {
    lifetime: Duration,
    issued: parking_lot::Mutex<(u64, HashMap<String, SystemTime>)>,
}

impl Tokens {
    /// Tokens that live `lifetime`.
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            issued: parking_lot::Mutex::new((0, HashMap::new())),
        }
    }

    /// `POST /oauth2/token`: `host` is the mock's address as the caller named it.
    pub(crate) fn mint(&self, host: &str, body: &[u8]) -> Response<MockBody> {
        let refuse = |error: &str, description: String| {
            json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": error, "error_description": description}),
            )
        };
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        if form.get("grant_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return refuse(
                "unsupported_grant_type",
                "expected the JWT bearer grant".into(),
            );
        }
        let Some(assertion) = form.get("assertion") else {
            return refuse("invalid_request", "no assertion".into());
        };
        let decode_part = |part: &str| -> Option<Value> {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let parts: Vec<&str> = assertion.split('.').collect();
        let (Some(head), Some(claims)) = (
            parts.first().and_then(|p| decode_part(p)),
            parts.get(1).and_then(|p| decode_part(p)),
        ) else {
            return refuse("invalid_grant", "the assertion is not a JWT".into());
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as i64;
        let audience = format!("http://{host}{TOKEN_PATH}");
        let problem = if parts.len() != 3 || parts[2].is_empty() {
            Some("the assertion is not signed".to_string())
        } else if head["alg"] != "RS256" {
            Some(format!("alg must be RS256, not {}", head["alg"]))
        } else if !claims["iss"].as_str().is_some_and(|iss| iss.contains('@')) {
            Some("iss must be the service account's e-mail".into())
        } else if claims["aud"] != audience.as_str() {
            Some(format!("aud must be {audience}, not {}", claims["aud"]))
        } else if !claims["scope"].as_str().is_some_and(|s| {
            s.split(' ')
                .any(|s| s == "https://www.googleapis.com/auth/cloud-platform")
        }) {
            Some("scope must include cloud-platform".into())
        } else {
            match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
                (Some(iat), Some(exp)) if iat <= now + 60 && exp > now && exp - iat <= 3600 => None,
                _ => Some("iat and exp must frame now, an hour at most".into()),
            }
        };
        if let Some(problem) = problem {
            return refuse("invalid_grant", problem);
        }
        self.issue()
    }

    /// `POST /{tenant}/oauth2/v2.0/token`, Entra ID's client-credentials grant.
    pub(crate) fn mint_entra(&self, body: &[u8]) -> Response<MockBody> {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str);
        if field("grant_type") != Some("client_credentials") {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "unsupported_grant_type", "error_description": "AADSTS70003: expected client_credentials"}),
            );
        }
        if field("client_id").is_none_or(str::is_empty)
            || !field("scope").is_some_and(|s| s.ends_with("/.default"))
        {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request", "error_description": "AADSTS900144: client_id and a /.default scope are required"}),
            );
        }
        if field("client_secret") != Some(ENTRA_CLIENT_SECRET) {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
            );
        }
        self.issue()
    }

    /// A new token, remembered until it expires.
    fn issue(&self) -> Response<MockBody> {
        let token = {
            let mut issued = self.issued.lock();
            issued.0 += 1;
            let token = format!("ya29.mock-{}", issued.0);
            if issued.1.len() >= MAX_TOKENS {
                issued.1.clear();
            }
            issued
                .1
                .insert(token.clone(), SystemTime::now() + self.lifetime);
            token
        };
        json_response(
            StatusCode::OK,
            &json!({"access_token": token, "expires_in": self.lifetime.as_secs(), "token_type": "Bearer"}),
        )
    }

    /// Whether `headers` carry a bearer token the mock issued and that has not expired.
    pub(crate) fn is_valid(&self, headers: &http::HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token.is_some_and(|token| {
            self.issued
                .lock()
                .1
                .get(token)
                .is_some_and(|expires| SystemTime::now() < *expires)
        })
    }

    /// The refusal of a Vertex AI request without a valid bearer token, if it has none.
    pub(crate) fn vertex_refusal(&self, headers: &http::HeaderMap) -> Option<Response<MockBody>> {
        (!self.is_valid(headers)).then(|| {
            gemini::error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            )
        })
    }

    /// The refusal of an Azure request whose bearer token the mock did not issue (an `api-key`
    /// passes unchecked).
    pub(crate) fn azure_refusal(&self, headers: &http::HeaderMap) -> Option<Response<MockBody>> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
        (bearer && !self.is_valid(headers)).then(|| {
            openai::error(
                StatusCode::UNAUTHORIZED,
                "Access denied due to invalid subscription key or wrong API endpoint.",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_are_read() {
        assert_eq!(
            parse_amz_date("20261202T100000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_205_600))
        );
        assert_eq!(
            parse_amz_date("20000229T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        assert_eq!(parse_amz_date("2026-12-02T10:00:00Z"), None);
    }
}
