//! SigV4 signing of Bedrock requests with AWS's own signer (`aws-sigv4`).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header;
use std::time::SystemTime;
use tollgate_config::AwsCredentials;

/// The service name Bedrock's runtime API is signed for.
const SERVICE: &str = "bedrock";

/// Signs `request`, whose body is `body`, for `region` at `time`: adds `authorization`,
/// `x-amz-date` and, for temporary credentials, `x-amz-security-token`. Only `host` and
/// `content-type` are signed among the headers, so that no hop between here and AWS that
/// adds or rewrites a header (a tracing header, say) can break the signature.
pub(crate) fn sign<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    credentials: &AwsCredentials,
    region: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity: Identity = Credentials::new(
        credentials.access_key_id.as_str(),
        credentials.secret_access_key.expose(),
        credentials
            .session_token
            .as_ref()
            .map(|token| token.expose().to_string()),
        None,
        "tollgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign: {e}"))?
        .into();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        std::iter::once(("content-type", content_type)),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    for name in ["authorization", "x-amz-security-token"] {
        if let Some(value) = request.headers_mut().get_mut(name) {
            value.set_sensitive(true);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};
    use tollgate_config::Secret;

    fn credentials(session_token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: session_token.map(Secret::new),
        }
    }

    fn request() -> http::Request<()> {
        http::Request::post(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        )
        .header("content-type", "application/json")
        .header("x-request-id", "abc")
        .body(())
        .unwrap()
    }

    /// 2026-12-02T10:00:00Z.
    fn time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_205_600)
    }

    #[test]
    fn signs_host_content_type_and_date_for_bedrock_in_the_region() {
        let mut request = request();
        sign(&mut request, b"{}", &credentials(None), "us-east-1", time()).unwrap();
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{authorization}"
        );
        assert!(request.headers()["authorization"].is_sensitive());
        assert_eq!(request.headers()["x-amz-date"], "20261202T100000Z");
        assert!(request.headers().get("x-amz-security-token").is_none());
    }

    #[test]
    fn the_signature_covers_the_body() {
        let signature = |body: &[u8]| {
            let mut request = request();
            sign(&mut request, body, &credentials(None), "us-east-1", time()).unwrap();
            request.headers()["authorization"].clone()
        };
        assert_eq!(signature(b"{\"a\":1}"), signature(b"{\"a\":1}"));
        assert_ne!(signature(b"{\"a\":1}"), signature(b"{\"a\":2}"));
    }

    #[test]
    fn temporary_credentials_send_their_session_token() {
        let mut request = request();
        sign(
            &mut request,
            b"{}",
            &credentials(Some("token-1")),
            "eu-west-3",
            time(),
        )
        .unwrap();
        assert_eq!(request.headers()["x-amz-security-token"], "token-1");
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.contains("/eu-west-3/bedrock/"),
            "{authorization}"
        );
    }
}
