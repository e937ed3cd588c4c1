//! Configuration of the identity providers whose tokens are trusted.

use std::time::Duration;

/// Allowance for clock differences between an identity provider and the gateway, applied to
/// `exp` and `nbf`, unless a provider sets its own.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// One trusted token issuer, such as an OIDC identity provider: which tokens it issues (by
/// `iss` and `aud`), where its signing keys come from, and how its claims map to a principal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JwtProvider {
    /// Name reported in [`crate::Principal::provider`] and in logs.
    pub name: String,
    /// The exact `iss` claim of this provider's tokens; it selects the provider for a token.
    pub issuer: String,
    /// Accepted audiences: a token must name at least one of them in `aud`. Empty means the
    /// audience is not checked.
    pub audiences: Vec<String>,
    /// Where the provider's public signing keys come from.
    pub keys: KeySource,
    /// Allowance for clock differences, applied to `exp` and `nbf`.
    pub clock_skew: Duration,
    /// Claim holding the user name reported in [`crate::Principal::user`].
    pub user_claim: String,
    /// Claim holding the team reported in [`crate::Principal::team`]; if the claim is an array,
    /// its first string element is taken.
    pub team_claim: Option<String>,
}

impl JwtProvider {
    /// A provider that checks no audience, allows [`DEFAULT_CLOCK_SKEW`], takes the user from
    /// `sub` and maps no team; adjust the public fields for anything else.
    pub fn new(name: impl Into<String>, issuer: impl Into<String>, keys: KeySource) -> Self {
        Self {
            name: name.into(),
            issuer: issuer.into(),
            audiences: Vec::new(),
            keys,
            clock_skew: DEFAULT_CLOCK_SKEW,
            user_claim: "sub".to_owned(),
            team_claim: None,
        }
    }
}

/// Where a provider's public signing keys (a JSON Web Key Set) come from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeySource {
    /// A JWKS document given in configuration; it is parsed once and never fetched.
    Inline(String),
    /// A JWKS document served by the provider (its `jwks_uri`), fetched on first use and
    /// cached.
    Remote {
        /// Address handed to the [`crate::JwksFetcher`].
        url: String,
        /// How long fetched keys are used before they are fetched again. Fetches are never
        /// more frequent than [`crate::MIN_REFETCH_INTERVAL`].
        refresh_interval: Duration,
    },
}
