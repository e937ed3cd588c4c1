//! Credentials that are more than a static header: Bedrock's SigV4 signatures, computed over
//! each request as it is sent, and Vertex AI's OAuth2 access tokens, minted from a service
//! account key and cached until shortly before they expire.

mod access_tokens;
mod sigv4;

pub(crate) use access_tokens::{AccessTokens, HttpTokenMinter};
pub(crate) use sigv4::sign;
