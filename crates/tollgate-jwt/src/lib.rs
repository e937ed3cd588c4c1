//! Verifies JWT bearer tokens issued by trusted identity providers.
//!
//! A [`JwtVerifier`] is built once from the configured [`JwtProvider`]s and a [`JwksFetcher`]
//! (the crate does no network I/O itself). Per request, [`looks_like_jwt`] cheaply tells a JWT
//! from an API key, and [`JwtVerifier::verify`] checks the token against its issuer's keys and
//! claims and returns the [`Principal`] it speaks for.
//!
//! The signing algorithm is always derived from the issuer's JWK (its `alg`, or its key type),
//! never taken from the token header alone, so `none` and HMAC tokens forged with a public key
//! are rejected.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//!
//! use futures::future::BoxFuture;
//! use tollgate_jwt::{JwksFetcher, JwtProvider, JwtVerifier, KeySource, looks_like_jwt};
//!
//! /// In the gateway: an HTTPS GET with a timeout that stops reading past `MAX_JWKS_BYTES`.
//! struct Fetcher;
//!
//! impl JwksFetcher for Fetcher {
//!     fn fetch(&self, _url: &str) -> BoxFuture<'static, Result<bytes::Bytes, String>> {
//!         Box::pin(async { Err("this example has no HTTP client".to_owned()) })
//!     }
//! }
//!
//! let mut sso = JwtProvider::new(
//!     "corp-sso",
//!     "https://sso.example.com",
//!     KeySource::Remote {
//!         url: "https://sso.example.com/.well-known/jwks.json".into(),
//!         refresh_interval: Duration::from_secs(3600),
//!     },
//! );
//! sso.audiences = vec!["tollgate".into()];
//! sso.team_claim = Some("groups".into());
//! let verifier = JwtVerifier::new(vec![sso], Arc::new(Fetcher))?;
//!
//! async fn authenticate(verifier: &JwtVerifier, bearer: &str) -> Result<String, &'static str> {
//!     if !looks_like_jwt(bearer) {
//!         return Err("not a JWT: try it as an API key");
//!     }
//!     let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
//!     match verifier.verify(bearer, now).await {
//!         Ok(principal) => Ok(principal.subject),
//!         Err(refused) => Err(refused.code()),
//!     }
//! }
//! # let _ = authenticate(&verifier, "a.b.c");
//! # Ok::<(), tollgate_jwt::JwtConfigError>(())
//! ```

mod claims;
mod error;
mod keys;
mod keyset;
mod provider;
mod token;
mod verify;

#[cfg(test)]
mod test_support;

pub use claims::Principal;
pub use error::{JwtConfigError, JwtError};
pub use keys::{JwksFetcher, MIN_REFETCH_INTERVAL};
pub use keyset::MAX_JWKS_BYTES;
pub use provider::{DEFAULT_CLOCK_SKEW, JwtProvider, KeySource};
pub use token::{MAX_TOKEN_BYTES, looks_like_jwt};
pub use verify::JwtVerifier;
