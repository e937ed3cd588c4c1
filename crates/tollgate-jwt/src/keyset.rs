//! A provider's public signing keys, parsed from a JWKS document, and signature checks
//! against them. Each key fixes the algorithms it may verify, so a token header cannot pick
//! an algorithm the key was not published for.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::JwtError;

/// Largest JWKS document parsed, in bytes. A [`crate::JwksFetcher`] should stop reading at this
/// size too; anything larger is refused here regardless.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The verified claims of a token.
pub(crate) type Claims = Map<String, Value>;

/// The usable keys of one JWKS document.
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

struct VerifyingKey {
    kid: Option<String>,
    allowed: Allowed,
    key: DecodingKey,
}

/// The algorithms a key may verify: the JWK's `alg` if it has one, else all those its key
/// type supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Allowed {
    Only(Algorithm),
    AnyRsa,
}

impl Allowed {
    fn permits(self, alg: Algorithm) -> bool {
        match self {
            Self::Only(only) => alg == only,
            Self::AnyRsa => RSA.contains(&alg),
        }
    }
}

const RSA: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot verify signatures here: symmetric
    /// (`oct`) keys, encryption keys, unsupported curves and key types, and keys whose `alg`
    /// does not fit their type. Fails if the document is too large, is not a JWKS, or leaves
    /// no usable key.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, String> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(format!("key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document = serde_json::from_slice(document)
            .map_err(|e| format!("key set is not a JWKS document: {e}"))?;
        let keys: Vec<_> = document
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
            .filter_map(|jwk| VerifyingKey::from_jwk(&jwk))
            .collect();
        if keys.is_empty() {
            return Err("key set has no usable signing key".to_owned());
        }
        Ok(Self { keys })
    }

    /// Whether the set holds a key with this `kid`.
    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Verifies `token`'s signature with the key its header names (or, without a `kid`, with
    /// any key) and returns its claims. Only the signature is checked here, not the claims.
    pub(crate) fn verify(&self, token: &str, header: &Header) -> Result<Claims, JwtError> {
        let mut named = false;
        let candidates = self.keys.iter().filter(|key| match &header.kid {
            Some(kid) => key.kid.as_ref() == Some(kid),
            None => true,
        });
        for key in candidates {
            named = true;
            if !key.allowed.permits(header.alg) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, &key.key, &signature_only(header.alg)) {
                Ok(data) => return Ok(data.claims),
                Err(e) if is_malformed(e.kind()) => {
                    return Err(JwtError::Malformed("token is not valid base64url JSON"));
                }
                Err(_) => {}
            }
        }
        Err(if named {
            JwtError::BadSignature
        } else {
            JwtError::UnknownKey
        })
    }
}

impl VerifyingKey {
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let by_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Allowed::AnyRsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => Allowed::Only(Algorithm::ES256),
                EllipticCurve::P384 => Allowed::Only(Algorithm::ES384),
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Allowed::Only(Algorithm::EdDSA)
            }
            AlgorithmParameters::OctetKeyPair(_) | AlgorithmParameters::OctetKey(_) => return None,
        };
        let allowed = match jwk.common.key_algorithm {
            None => by_type,
            Some(alg) => {
                let alg = signing_algorithm(alg)?;
                by_type.permits(alg).then_some(Allowed::Only(alg))?
            }
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id.clone(),
            allowed,
            key,
        })
    }
}

/// The asymmetric signing algorithm a JWK `alg` names, if any.
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::HS256
        | KeyAlgorithm::HS384
        | KeyAlgorithm::HS512
        | KeyAlgorithm::RSA1_5
        | KeyAlgorithm::RSA_OAEP
        | KeyAlgorithm::RSA_OAEP_256 => return None,
    })
}

/// Validation that checks the signature with `alg` and nothing else: the claims are checked
/// by [`crate::claims`] against the injected time.
fn signature_only(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

fn is_malformed(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{SigningKey, jwks};
    use serde_json::json;

    fn allowed(document: &Value) -> Vec<(Option<String>, Allowed)> {
        KeySet::parse(document.to_string().as_bytes())
            .map(|set| set.keys.into_iter().map(|k| (k.kid, k.allowed)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn algorithms_come_from_the_key() {
        let rsa = SigningKey::rsa("r");
        let es = SigningKey::es256("e");
        let ed = SigningKey::ed25519("d");
        let mut rsa_ps = rsa.jwk();
        rsa_ps["alg"] = json!("PS256");
        let mut no_alg = es.jwk();
        no_alg.as_object_mut().unwrap().remove("alg");
        no_alg["kid"] = json!("e2");
        let document = json!({ "keys": [rsa.jwk(), rsa_ps, es.jwk(), no_alg, ed.jwk()] });
        assert_eq!(
            allowed(&document),
            vec![
                (Some("r".into()), Allowed::Only(Algorithm::RS256)),
                (Some("r".into()), Allowed::Only(Algorithm::PS256)),
                (Some("e".into()), Allowed::Only(Algorithm::ES256)),
                (Some("e2".into()), Allowed::Only(Algorithm::ES256)),
                (Some("d".into()), Allowed::Only(Algorithm::EdDSA)),
            ]
        );
        let mut any_rsa = rsa.jwk();
        any_rsa.as_object_mut().unwrap().remove("alg");
        assert_eq!(
            allowed(&json!({ "keys": [any_rsa] })),
            vec![(Some("r".into()), Allowed::AnyRsa)]
        );
    }

    #[test]
    fn skips_keys_that_cannot_verify_signatures() {
        let es = SigningKey::es256("e");
        let mut hs_alg_on_ec = es.jwk();
        hs_alg_on_ec["alg"] = json!("HS256");
        let mut es384_alg_on_p256 = es.jwk();
        es384_alg_on_p256["alg"] = json!("ES384");
        let mut encryption = es.jwk();
        encryption["use"] = json!("enc");
        let document = json!({ "keys": [
            { "kty": "oct", "kid": "s", "k": "c2VjcmV0", "alg": "HS256" },
            { "kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA" },
            { "kty": "OKP", "kid": "x", "crv": "X25519", "x": "AA" },
            { "kty": "unknown", "kid": "u" },
            hs_alg_on_ec, es384_alg_on_p256, encryption,
            SigningKey::ed25519("d").jwk(),
        ]});
        assert_eq!(
            allowed(&document),
            vec![(Some("d".into()), Allowed::Only(Algorithm::EdDSA))]
        );
    }

    #[test]
    fn refuses_unusable_documents() {
        assert!(KeySet::parse(b"not json").is_err());
        assert!(KeySet::parse(br#"{"keys":[]}"#).is_err());
        assert!(KeySet::parse(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        let key = SigningKey::es256("e").jwk().to_string();
        let mut big = format!(r#"{{"keys":[{key}]"#);
        big.push_str(&" ".repeat(MAX_JWKS_BYTES));
        big.push('}');
        assert_eq!(
            KeySet::parse(big.as_bytes()).err().as_deref(),
            Some("key set is larger than 1048576 bytes")
        );
        assert!(KeySet::parse(jwks(&[SigningKey::es256("e").jwk()]).as_bytes()).is_ok());
    }
}
