//! Why a token was refused, and why a verifier could not be built.

/// Why a token was refused. Each variant has a stable [`code`](JwtError::code) for API
/// responses; no message ever includes the token or other caller-supplied text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is not a well-formed JWT; the text says which part is wrong.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// No configured provider issues tokens with the token's `iss`.
    #[error("token issuer is not trusted")]
    UnknownIssuer,
    /// The token's `exp` has passed, beyond the allowed clock skew.
    #[error("token has expired")]
    Expired,
    /// The token's `nbf` is still ahead, beyond the allowed clock skew.
    #[error("token is not valid yet")]
    NotYetValid,
    /// The token's `aud` names none of the provider's accepted audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The token names a signing key its issuer does not publish, even after refetching the
    /// issuer's keys.
    #[error("token was signed with a key its issuer does not publish")]
    UnknownKey,
    /// The signature does not verify, or the header's algorithm does not fit the signing key.
    #[error("token signature is invalid")]
    BadSignature,
    /// The issuer's signing keys could not be fetched, so no token of it can be verified.
    #[error("signing keys of identity provider {provider} are unavailable")]
    KeysUnavailable {
        /// Name of the provider whose keys are missing.
        provider: String,
    },
    /// A claim that every token must carry is absent.
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
}

impl JwtError {
    /// Stable snake_case code for API error responses and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_token",
            Self::UnknownIssuer => "unknown_token_issuer",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongAudience => "invalid_token_audience",
            Self::UnknownKey => "unknown_token_key",
            Self::BadSignature => "invalid_token_signature",
            Self::KeysUnavailable { .. } => "token_keys_unavailable",
            Self::MissingClaim(_) => "missing_token_claim",
        }
    }
}

/// Why a [`crate::JwtVerifier`] could not be built from its providers.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    /// Two providers claim the same issuer, so a token could not be attributed to one.
    #[error("identity providers {first} and {second} both use issuer {issuer}")]
    DuplicateIssuer {
        /// The shared issuer.
        issuer: String,
        /// The provider configured first.
        first: String,
        /// The provider configured second.
        second: String,
    },
    /// A provider's inline key set is not a usable JWKS.
    #[error("identity provider {provider} has an invalid inline key set: {reason}")]
    InvalidKeys {
        /// The provider's name.
        provider: String,
        /// What is wrong with the key set.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_snake_case() {
        let all = [
            JwtError::Malformed("x"),
            JwtError::UnknownIssuer,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::WrongAudience,
            JwtError::UnknownKey,
            JwtError::BadSignature,
            JwtError::KeysUnavailable {
                provider: "idp".into(),
            },
            JwtError::MissingClaim("exp"),
        ];
        let codes: HashSet<_> = all.iter().map(JwtError::code).collect();
        assert_eq!(codes.len(), all.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        assert_eq!(JwtError::Expired.code(), "token_expired");
        assert_eq!(JwtError::WrongAudience.code(), "invalid_token_audience");
    }
}
