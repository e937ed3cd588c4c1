//! Cheap, unverified inspection of a token: its shape, header and issuer. Nothing read here is
//! trusted beyond choosing the provider and key to verify the token with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use serde::Deserialize;

use crate::JwtError;

/// Longest token accepted, in bytes; longer ones are refused as malformed before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Whether `s` has the shape of a JWT: three non-empty base64url segments separated by dots.
/// It decodes nothing, so it is cheap enough to tell a JWT from an API key on every request.
pub fn looks_like_jwt(s: &str) -> bool {
    let mut segments = s.split('.');
    let mut base64url = || {
        segments.next().is_some_and(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    base64url() && base64url() && base64url() && segments.next().is_none()
}

/// What a token says about itself, before its signature is checked.
#[derive(Debug)]
pub(crate) struct Unverified {
    /// The decoded header; its `alg` is checked against the key before it is used.
    pub(crate) header: Header,
    /// The `iss` claim, used only to pick the provider.
    pub(crate) issuer: String,
}

/// Reads the header and the `iss` claim of `token` without verifying anything.
pub(crate) fn inspect(token: &str) -> Result<Unverified, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("token is longer than 16 KiB"));
    }
    if !looks_like_jwt(token) {
        return Err(JwtError::Malformed("token is not three base64url segments"));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        JwtError::Malformed("token header is invalid or names an unsupported algorithm")
    })?;

    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed("token payload is not base64url"))?;
    let claims: Issuer = serde_json::from_slice(&payload).map_err(|_| {
        JwtError::Malformed("token payload is not a JSON object with a string `iss`")
    })?;
    let issuer = claims.iss.ok_or(JwtError::MissingClaim("iss"))?;
    Ok(Unverified { header, issuer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn recognises_the_jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("a-_9.B.c"));
        assert!(!looks_like_jwt("tg-live-abc123"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("a.b+/.c"));
        assert!(!looks_like_jwt("a.b=.c"));
        assert!(!looks_like_jwt(""));
    }

    #[test]
    fn reads_header_and_issuer() {
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","kid":"k1"}"#),
            b64(r#"{"iss":"https://idp","sub":"u"}"#)
        );
        let unverified = inspect(&token).unwrap();
        assert_eq!(unverified.header.alg, Algorithm::ES256);
        assert_eq!(unverified.header.kid.as_deref(), Some("k1"));
        assert_eq!(unverified.issuer, "https://idp");
    }

    #[test]
    fn refuses_what_cannot_be_a_token() {
        let header = b64(r#"{"alg":"RS256"}"#);
        let malformed = |token: &str| matches!(inspect(token), Err(JwtError::Malformed(_)));
        assert!(malformed(&format!(
            "{header}.{}.sig",
            "a".repeat(MAX_TOKEN_BYTES)
        )));
        assert!(malformed("not-a-token"));
        assert!(malformed(&format!(
            "{}.{}.sig",
            b64(r#"{"alg":"none"}"#),
            b64("{}")
        )));
        assert!(malformed(&format!("{header}.{}.sig", b64("[1]"))));
        assert!(malformed(&format!("{header}.{}.sig", b64(r#"{"iss":7}"#))));
        assert_eq!(
            inspect(&format!("{header}.{}.sig", b64(r#"{"sub":"u"}"#))).unwrap_err(),
            JwtError::MissingClaim("iss")
        );
    }
}
