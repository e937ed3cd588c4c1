//! The caller's `Mcp-Session-Id`: the upstream sessions behind it, sealed so that any replica
//! can serve any request of the session without shared state.
//!
//! # Token format
//!
//! `base64url_nopad(version ‖ key fingerprint ‖ nonce ‖ AES-256-GCM(json(state)) ‖ tag)`
//!
//! - `version`: one byte, [`TOKEN_VERSION`];
//! - key fingerprint: the first 4 bytes of SHA-256(`"tollgate-mcp-session-key\0"` ‖ key), so
//!   `open` knows which of its keys sealed the token and can tell "unknown key" from
//!   "tampered"; it reveals nothing useful about the key;
//! - nonce: 96 random bits from the system RNG (new for every token);
//! - the version byte and the fingerprint are the AEAD's associated data, so they cannot be
//!   changed either.
//!
//! The alphabet (`A-Z a-z 0-9 - _`) is visible ASCII, as the transport requires of session
//! ids. A token with three upstreams is about 300–400 characters.
//!
//! The token is bound to the caller's key id and has a maximum age; a session is not
//! revocable before then (deleting it deletes the upstream sessions, after which their
//! upstreams answer 404 and the caller must start over).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::message::{ErrorObject, SESSION_INVALID};

/// The format version of tokens sealed by this code.
pub const TOKEN_VERSION: u8 = 1;
/// The format version of the sealed state.
pub const STATE_VERSION: u8 = 1;
/// Tokens longer than this are refused before decoding.
pub const MAX_TOKEN_LEN: usize = 8192;
/// The length of a session key in bytes.
pub const KEY_LEN: usize = 32;

const FINGERPRINT_LEN: usize = 4;
const HEADER_LEN: usize = 1 + FINGERPRINT_LEN;
const TAG_LEN: usize = 16;

/// One upstream session of a caller's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamSession {
    /// The upstream's `Mcp-Session-Id`, if it gave one (stateless servers do not).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The protocol version the upstream negotiated, to send as `MCP-Protocol-Version`.
    #[serde(rename = "p")]
    pub protocol_version: String,
}

/// What a caller's session id carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// [`STATE_VERSION`] when sealed.
    #[serde(rename = "v")]
    pub version: u8,
    /// The key id of the caller the session belongs to.
    #[serde(rename = "k")]
    pub key_id: String,
    /// The upstreams initialized for this session, by server prefix.
    #[serde(rename = "u")]
    pub upstreams: BTreeMap<String, UpstreamSession>,
    /// The protocol version negotiated with the caller.
    #[serde(rename = "p")]
    pub protocol_version: String,
    /// When the session was created, in Unix seconds.
    #[serde(rename = "t")]
    pub issued_at_unix: u64,
}

/// Why a key or a token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A key is not 32 bytes long.
    #[error("a session key must be 32 bytes, not {0}")]
    KeyLength(usize),
    /// `open` was given no key.
    #[error("no session key is configured")]
    NoKeys,
    /// The token is not base64url, too short or too long.
    #[error("malformed session id: {0}")]
    Malformed(&'static str),
    /// The token was made by a format version this code does not read.
    #[error("session id of unknown format version {0}")]
    UnknownVersion(u8),
    /// None of the keys sealed the token (sealed with a retired key, or by another gateway).
    #[error("session id sealed with an unknown key")]
    UnknownKey,
    /// The token does not authenticate under the key it names: it was altered.
    #[error("session id fails authentication (tampered)")]
    Tampered,
    /// The token belongs to another caller.
    #[error("session id belongs to another caller")]
    WrongCaller,
    /// The token is older than the maximum age.
    #[error("session expired: {age_secs}s old, the maximum is {max_age_secs}s")]
    Expired {
        /// The token's age.
        age_secs: u64,
        /// The maximum age.
        max_age_secs: u64,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Encryption failed (only possible for absurdly large states).
    #[error("the session state could not be sealed")]
    Seal,
}

impl SessionError {
    /// The JSON-RPC error to answer with ([`SESSION_INVALID`]; send it with HTTP 404 so the
    /// client starts a new session). A caller presenting another caller's session is told
    /// only that the session is invalid.
    pub fn to_error(&self) -> ErrorObject {
        let message = match self {
            Self::WrongCaller => "session not found".to_owned(),
            other => other.to_string(),
        };
        ErrorObject::new(SESSION_INVALID, message)
    }
}

/// A 32-byte AES-256-GCM key for session ids.
pub struct SessionKey {
    key: LessSafeKey,
    fingerprint: [u8; FINGERPRINT_LEN],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    /// A key from its 32 bytes (for instance decoded from a Secret).
    pub fn new(bytes: &[u8]) -> Result<Self, SessionError> {
        if bytes.len() != KEY_LEN {
            return Err(SessionError::KeyLength(bytes.len()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SessionError::KeyLength(bytes.len()))?;
        let mut input = b"tollgate-mcp-session-key\0".to_vec();
        input.extend_from_slice(bytes);
        let hash = digest(&SHA256, &input);
        let mut fingerprint = [0; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&hash.as_ref()[..FINGERPRINT_LEN]);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            fingerprint,
        })
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut header = [0; HEADER_LEN];
        header[0] = TOKEN_VERSION;
        header[1..].copy_from_slice(&self.fingerprint);
        header
    }
}

/// Seals `state` under `key` into a session id.
pub fn seal(state: &SessionState, key: &SessionKey) -> Result<String, SessionError> {
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SessionError::Random)?;
    let header = key.header();
    // Serializing plain strings, maps and numbers cannot fail.
    let mut sealed = serde_json::to_vec(state).unwrap_or_default();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut sealed,
        )
        .map_err(|_| SessionError::Seal)?;
    let mut token = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
    token.extend_from_slice(&header);
    token.extend_from_slice(&nonce);
    token.extend_from_slice(&sealed);
    Ok(URL_SAFE_NO_PAD.encode(token))
}

/// Opens a session id sealed by one of `keys` (the current key first, then the retired ones
/// still accepted) for the caller `key_id`, refusing it when older than `max_age_secs` at
/// `now_unix`. A token issued "in the future" (clock skew between replicas) is accepted.
pub fn open(
    token: &str,
    keys: &[SessionKey],
    key_id: &str,
    now_unix: u64,
    max_age_secs: u64,
) -> Result<SessionState, SessionError> {
    if keys.is_empty() {
        return Err(SessionError::NoKeys);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(SessionError::Malformed("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| SessionError::Malformed("not base64url"))?;
    if bytes.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
        return Err(SessionError::Malformed("too short"));
    }
    if bytes[0] != TOKEN_VERSION {
        return Err(SessionError::UnknownVersion(bytes[0]));
    }
    let (header, rest) = bytes.split_at(HEADER_LEN);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let mut candidates = keys
        .iter()
        .filter(|k| k.fingerprint == header[1..])
        .peekable();
    if candidates.peek().is_none() {
        return Err(SessionError::UnknownKey);
    }
    let plain = candidates
        .find_map(|key| {
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut buffer = sealed.to_vec();
            let plain = key
                .key
                .open_in_place(nonce, Aad::from(header), &mut buffer)
                .ok()?;
            Some(plain.to_vec())
        })
        .ok_or(SessionError::Tampered)?;
    // Authenticated, so only our own (possibly newer) format can fail to parse here.
    let state: SessionState =
        serde_json::from_slice(&plain).map_err(|_| SessionError::Malformed("unreadable state"))?;
    if state.version != STATE_VERSION {
        return Err(SessionError::UnknownVersion(state.version));
    }
    if state.key_id != key_id {
        return Err(SessionError::WrongCaller);
    }
    let age_secs = now_unix.saturating_sub(state.issued_at_unix);
    if age_secs > max_age_secs {
        return Err(SessionError::Expired {
            age_secs,
            max_age_secs,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::new(&[byte; KEY_LEN]).expect("32 bytes")
    }

    fn state() -> SessionState {
        SessionState {
            version: STATE_VERSION,
            key_id: "team-a/key-1".into(),
            upstreams: BTreeMap::from([
                (
                    "github".into(),
                    UpstreamSession {
                        session_id: Some("0f6b2c3e-7f0e-4a4e-9c53-1a2b3c4d5e6f".into()),
                        protocol_version: "2025-06-18".into(),
                    },
                ),
                (
                    "fs".into(),
                    UpstreamSession {
                        session_id: None,
                        protocol_version: "2025-03-26".into(),
                    },
                ),
            ]),
            protocol_version: "2025-06-18".into(),
            issued_at_unix: 1_000_000,
        }
    }

    #[test]
    fn seal_then_open_round_trips() {
        let k = key(1);
        let token = seal(&state(), &k).expect("sealed");
        let opened = open(&token, &[k], "team-a/key-1", 1_000_100, 3600).expect("opened");
        assert_eq!(opened, state());
    }

    #[test]
    fn tokens_are_valid_session_ids_and_unique() {
        let k = key(1);
        let a = seal(&state(), &k).expect("sealed");
        let b = seal(&state(), &k).expect("sealed");
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert!(a.len() < 400, "{} characters", a.len());
    }

    #[test]
    fn three_upstreams_fit_in_a_modest_header() {
        let mut s = state();
        s.upstreams.insert(
            "jira".into(),
            UpstreamSession {
                session_id: Some("a1b2c3d4e5f60718293a4b5c6d7e8f90".into()),
                protocol_version: "2025-06-18".into(),
            },
        );
        let token = seal(&s, &key(1)).expect("sealed");
        assert!(token.len() < 450, "{} characters", token.len());
    }

    #[test]
    fn key_rotation_opens_tokens_of_retired_keys() {
        let (old, new) = (key(1), key(2));
        let token = seal(&state(), &old).expect("sealed");
        assert_eq!(
            open(&token, &[new, old], "team-a/key-1", 1_000_000, 60).map(|s| s.key_id),
            Ok("team-a/key-1".into())
        );
    }

    #[test]
    fn refuses_a_token_of_another_key() {
        let token = seal(&state(), &key(1)).expect("sealed");
        assert_eq!(
            open(&token, &[key(2)], "team-a/key-1", 1_000_000, 60),
            Err(SessionError::UnknownKey)
        );
    }

    #[test]
    fn refuses_tampered_tokens() {
        let k = key(1);
        let token = seal(&state(), &k).expect("sealed");
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        for position in [HEADER_LEN, HEADER_LEN + NONCE_LEN + 3, bytes.len() - 1] {
            bytes[position] ^= 1;
            let altered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                open(
                    &altered,
                    std::slice::from_ref(&k),
                    "team-a/key-1",
                    1_000_000,
                    60
                ),
                Err(SessionError::Tampered),
                "byte {position}"
            );
            bytes[position] ^= 1;
        }
        // Changing the version byte is caught before decryption.
        bytes[0] = 9;
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            open(&altered, &[k], "team-a/key-1", 1_000_000, 60),
            Err(SessionError::UnknownVersion(9))
        );
    }

    #[test]
    fn refuses_another_callers_token() {
        let k = key(1);
        let token = seal(&state(), &k).expect("sealed");
        let e = open(&token, &[k], "team-b/key-9", 1_000_000, 60).expect_err("refused");
        assert_eq!(e, SessionError::WrongCaller);
        assert_eq!(e.to_error().code, SESSION_INVALID);
        assert!(!e.to_error().message.contains("team-a"));
    }

    #[test]
    fn refuses_expired_tokens() {
        let k = key(1);
        let token = seal(&state(), &k).expect("sealed");
        let keys = [k];
        assert!(open(&token, &keys, "team-a/key-1", 1_000_060, 60).is_ok());
        assert_eq!(
            open(&token, &keys, "team-a/key-1", 1_000_061, 60),
            Err(SessionError::Expired {
                age_secs: 61,
                max_age_secs: 60
            })
        );
        // Issued "in the future" by a replica whose clock runs ahead.
        assert!(open(&token, &keys, "team-a/key-1", 999_000, 60).is_ok());
    }

    #[test]
    fn refuses_malformed_tokens_and_bad_keys() {
        let keys = [key(1)];
        for (token, why) in [
            ("not base64!", "not base64url"),
            ("", "too short"),
            ("AQID", "too short"),
        ] {
            assert_eq!(
                open(token, &keys, "k", 0, 60),
                Err(SessionError::Malformed(why)),
                "{token:?}"
            );
        }
        let long = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            open(&long, &keys, "k", 0, 60),
            Err(SessionError::Malformed("too long"))
        );
        assert_eq!(open("AAAA", &[], "k", 0, 60), Err(SessionError::NoKeys));
        assert_eq!(
            SessionKey::new(&[0; 16]).err(),
            Some(SessionError::KeyLength(16))
        );
    }
}
