//! The entry point: picks a token's provider, verifies its signature with the provider's keys
//! and its claims against the injected time.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::keys::{KeyStore, RemoteKeys};
use crate::keyset::KeySet;
use crate::{JwksFetcher, JwtConfigError, JwtError, JwtProvider, KeySource, Principal, token};

/// Verifies bearer tokens from a fixed set of trusted providers. Build one per configuration
/// and share it (behind an `Arc`) across requests: it caches each provider's remote keys.
pub struct JwtVerifier {
    by_issuer: HashMap<String, Issuer>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut issuers: Vec<&String> = self.by_issuer.keys().collect();
        issuers.sort();
        f.debug_struct("JwtVerifier")
            .field("issuers", &issuers)
            .finish()
    }
}

struct Issuer {
    provider: JwtProvider,
    keys: KeyStore,
}

impl JwtVerifier {
    /// Builds a verifier for `providers`; remote key sets are fetched through `fetcher` on
    /// first use. Fails if two providers share an issuer or an inline key set is unusable.
    pub fn new(
        providers: Vec<JwtProvider>,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        let mut by_issuer: HashMap<String, Issuer> = HashMap::with_capacity(providers.len());
        for provider in providers {
            let keys = match &provider.keys {
                KeySource::Inline(document) => {
                    KeyStore::Inline(Arc::new(KeySet::parse(document.as_bytes()).map_err(
                        |reason| JwtConfigError::InvalidKeys {
                            provider: provider.name.clone(),
                            reason,
                        },
                    )?))
                }
                KeySource::Remote {
                    url,
                    refresh_interval,
                } => KeyStore::Remote(RemoteKeys::new(
                    provider.name.clone(),
                    url.clone(),
                    *refresh_interval,
                    Arc::clone(&fetcher),
                )),
            };
            match by_issuer.entry(provider.issuer.clone()) {
                Entry::Occupied(taken) => {
                    return Err(JwtConfigError::DuplicateIssuer {
                        issuer: provider.issuer,
                        first: taken.get().provider.name.clone(),
                        second: provider.name,
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(Issuer { provider, keys });
                }
            }
        }
        Ok(Self { by_issuer })
    }

    /// Verifies `token` (without the `Bearer ` prefix) at `now_unix_seconds` and returns the
    /// principal it speaks for. The token's `iss` picks the provider and its `kid` the key;
    /// the key fixes the algorithm. May wait for a fetch of the provider's keys.
    pub async fn verify(&self, token: &str, now_unix_seconds: u64) -> Result<Principal, JwtError> {
        let unverified = token::inspect(token)?;
        let issuer = self
            .by_issuer
            .get(&unverified.issuer)
            .ok_or(JwtError::UnknownIssuer)?;
        let keys = issuer
            .keys
            .current(unverified.header.kid.as_deref(), now_unix_seconds)
            .await
            .ok_or_else(|| JwtError::KeysUnavailable {
                provider: issuer.provider.name.clone(),
            })?;
        let claims = keys.verify(token, &unverified.header)?;
        Principal::from_claims(&issuer.provider, &claims, now_unix_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{FakeFetcher, SigningKey, jwks};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};
    use std::time::Duration;

    const NOW: u64 = 1_700_000_000;
    const ISSUER: &str = "https://idp.example";
    const REFRESH: u64 = 300;

    fn provider(keys: KeySource) -> JwtProvider {
        JwtProvider {
            audiences: vec!["tollgate".into()],
            user_claim: "email".into(),
            team_claim: Some("team".into()),
            ..JwtProvider::new("idp", ISSUER, keys)
        }
    }

    fn remote() -> JwtProvider {
        provider(KeySource::Remote {
            url: "https://idp.example/jwks".into(),
            refresh_interval: Duration::from_secs(REFRESH),
        })
    }

    fn verifier(providers: Vec<JwtProvider>, fetcher: &Arc<FakeFetcher>) -> JwtVerifier {
        JwtVerifier::new(providers, Arc::clone(fetcher) as Arc<dyn JwksFetcher>).unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "u-1", "aud": ["other", "tollgate"], "exp": NOW + 60,
            "email": "ada@example.com", "team": "ml-platform",
        })
    }

    fn with(mut claims: Value, patch: Value) -> Value {
        for (name, value) in patch.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    }

    fn expected(team: &str) -> Principal {
        Principal {
            provider: "idp".into(),
            subject: "u-1".into(),
            user: Some("ada@example.com".into()),
            team: Some(team.into()),
        }
    }

    #[tokio::test]
    async fn accepts_every_supported_key_type() {
        let fetcher = FakeFetcher::failing();
        for key in [
            SigningKey::rsa("r"),
            SigningKey::es256("e"),
            SigningKey::ed25519("d"),
        ] {
            let verifier = verifier(
                vec![provider(KeySource::Inline(jwks(&[key.jwk()])))],
                &fetcher,
            );
            assert_eq!(
                verifier.verify(&key.sign(&claims()), NOW).await,
                Ok(expected("ml-platform"))
            );
        }
        assert_eq!(fetcher.fetches(), 0, "inline keys are never fetched");
    }

    #[tokio::test]
    async fn maps_team_from_an_array_and_fetches_remote_keys_once() {
        let key = SigningKey::es256("e");
        let fetcher = FakeFetcher::serving(jwks(&[key.jwk()]));
        let verifier = verifier(vec![remote()], &fetcher);
        let token = key.sign(&with(claims(), json!({ "team": [1, "research", "ops"] })));
        assert_eq!(verifier.verify(&token, NOW).await, Ok(expected("research")));
        assert_eq!(
            verifier.verify(&token, NOW + 1).await,
            Ok(expected("research"))
        );
        assert_eq!(fetcher.fetches(), 1);
    }

    #[tokio::test]
    async fn checks_the_validity_window_with_skew() {
        let key = SigningKey::ed25519("d");
        let verifier = verifier(
            vec![provider(KeySource::Inline(jwks(&[key.jwk()])))],
            &FakeFetcher::failing(),
        );
        let at = |patch: Value| key.sign(&with(claims(), patch));
        assert!(
            verifier
                .verify(&at(json!({ "exp": NOW - 29 })), NOW)
                .await
                .is_ok()
        );
        assert_eq!(
            verifier.verify(&at(json!({ "exp": NOW - 31 })), NOW).await,
            Err(JwtError::Expired)
        );
        assert!(
            verifier
                .verify(&at(json!({ "nbf": NOW + 29 })), NOW)
                .await
                .is_ok()
        );
        assert_eq!(
            verifier.verify(&at(json!({ "nbf": NOW + 60 })), NOW).await,
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            verifier.verify(&at(json!({ "exp": null })), NOW).await,
            Err(JwtError::MissingClaim("exp"))
        );
    }

    #[tokio::test]
    async fn refuses_wrong_audience_and_unknown_issuer() {
        let key = SigningKey::es256("e");
        let verifier = verifier(
            vec![provider(KeySource::Inline(jwks(&[key.jwk()])))],
            &FakeFetcher::failing(),
        );
        let wrong_audience = key.sign(&with(claims(), json!({ "aud": "someone-else" })));
        assert_eq!(
            verifier.verify(&wrong_audience, NOW).await,
            Err(JwtError::WrongAudience)
        );
        let unknown_issuer = key.sign(&with(claims(), json!({ "iss": "https://evil.example" })));
        assert_eq!(
            verifier.verify(&unknown_issuer, NOW).await,
            Err(JwtError::UnknownIssuer)
        );
        let oversized = key.sign(&with(
            claims(),
            json!({ "pad": "x".repeat(crate::MAX_TOKEN_BYTES) }),
        ));
        assert!(matches!(
            verifier.verify(&oversized, NOW).await,
            Err(JwtError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn honours_rotated_keys_and_rate_limits_refetches() {
        let (old, new) = (SigningKey::es256("old"), SigningKey::es256("new"));
        let fetcher = FakeFetcher::serving(jwks(&[old.jwk()]));
        let verifier = verifier(vec![remote()], &fetcher);
        assert!(verifier.verify(&old.sign(&claims()), NOW).await.is_ok());

        fetcher.serve(jwks(&[new.jwk()]));
        let later = NOW + 20;
        assert_eq!(
            verifier.verify(&new.sign(&claims()), later).await,
            Ok(expected("ml-platform"))
        );
        assert_eq!(fetcher.fetches(), 2, "an unknown kid refetches at once");
        assert_eq!(
            verifier.verify(&old.sign(&claims()), later).await,
            Err(JwtError::UnknownKey)
        );

        let bogus = SigningKey::es256("bogus").sign(&claims());
        assert_eq!(
            verifier.verify(&bogus, later + 9).await,
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            fetcher.fetches(),
            2,
            "a second unknown kid within 10 s does not refetch"
        );
        assert_eq!(
            verifier.verify(&bogus, later + 10).await,
            Err(JwtError::UnknownKey)
        );
        assert_eq!(fetcher.fetches(), 3);
    }

    #[tokio::test]
    async fn refreshes_old_keys_and_keeps_them_when_refresh_fails() {
        let key = SigningKey::rsa("r");
        let fetcher = FakeFetcher::serving(jwks(&[key.jwk()]));
        let verifier = verifier(vec![remote()], &fetcher);
        let token = key.sign(&with(claims(), json!({ "exp": NOW + 10 * REFRESH })));
        assert!(verifier.verify(&token, NOW).await.is_ok());
        assert!(verifier.verify(&token, NOW + REFRESH - 1).await.is_ok());
        assert_eq!(fetcher.fetches(), 1);

        fetcher.fail();
        assert!(verifier.verify(&token, NOW + REFRESH).await.is_ok());
        assert_eq!(
            fetcher.fetches(),
            2,
            "keys older than the refresh interval are refetched"
        );
        assert!(verifier.verify(&token, NOW + REFRESH + 5).await.is_ok());
        assert_eq!(
            fetcher.fetches(),
            2,
            "a failed refresh is not retried within 10 s"
        );

        fetcher.serve("{\"keys\":[]}".to_owned());
        assert!(verifier.verify(&token, NOW + REFRESH + 10).await.is_ok());
        assert_eq!(
            fetcher.fetches(),
            3,
            "an empty key set does not replace the previous keys"
        );
    }

    #[tokio::test]
    async fn reports_unavailable_keys_until_a_fetch_succeeds() {
        let key = SigningKey::es256("e");
        let fetcher = FakeFetcher::failing();
        let verifier = verifier(vec![remote()], &fetcher);
        let token = key.sign(&claims());
        let unavailable = Err(JwtError::KeysUnavailable {
            provider: "idp".into(),
        });
        assert_eq!(verifier.verify(&token, NOW).await, unavailable);
        assert_eq!(verifier.verify(&token, NOW + 9).await, unavailable);
        assert_eq!(fetcher.fetches(), 1);
        fetcher.serve(jwks(&[key.jwk()]));
        assert!(verifier.verify(&token, NOW + 10).await.is_ok());
        assert_eq!(fetcher.fetches(), 2);
    }

    #[tokio::test]
    async fn coalesces_concurrent_fetches() {
        let key = SigningKey::es256("e");
        let fetcher = FakeFetcher::serving(jwks(&[key.jwk()]));
        let verifier = verifier(vec![remote()], &fetcher);
        let token = key.sign(&claims());
        let results = futures::future::join_all((0..8).map(|_| verifier.verify(&token, NOW))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(fetcher.fetches(), 1);
    }

    #[tokio::test]
    async fn refuses_tampered_tokens() {
        let key = SigningKey::es256("e");
        let verifier = verifier(
            vec![provider(KeySource::Inline(jwks(&[key.jwk()])))],
            &FakeFetcher::failing(),
        );
        let token = key.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();

        let forged = URL_SAFE_NO_PAD.encode(with(claims(), json!({ "sub": "admin" })).to_string());
        let tampered_payload = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            verifier.verify(&tampered_payload, NOW).await,
            Err(JwtError::BadSignature)
        );

        let first = if parts[2].starts_with('A') { 'B' } else { 'A' };
        let tampered_signature = format!("{}.{}.{first}{}", parts[0], parts[1], &parts[2][1..]);
        assert_eq!(
            verifier.verify(&tampered_signature, NOW).await,
            Err(JwtError::BadSignature)
        );
    }

    #[tokio::test]
    async fn algorithm_comes_from_the_key_not_the_header() {
        let rsa = SigningKey::rsa("r");
        let mut any_rsa = rsa.jwk();
        any_rsa.as_object_mut().unwrap().remove("alg");
        any_rsa["kid"] = json!("any");
        let document = json!({ "keys": [rsa.jwk(), any_rsa] }).to_string();
        let verifier = verifier(
            vec![provider(KeySource::Inline(document))],
            &FakeFetcher::failing(),
        );
        let sign = |alg: Algorithm, kid: Option<&str>, key: &EncodingKey| {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_owned);
            jsonwebtoken::encode(&header, &claims(), key).unwrap()
        };

        let public_bytes = EncodingKey::from_secret(rsa.jwk().to_string().as_bytes());
        for kid in [Some("r"), Some("any"), None] {
            let confused = sign(Algorithm::HS256, kid, &public_bytes);
            assert_eq!(
                verifier.verify(&confused, NOW).await,
                Err(JwtError::BadSignature),
                "{kid:?}"
            );
        }

        let der = base64::engine::general_purpose::STANDARD
            .decode(include_str!("../testdata/rsa2048-pkcs1.der.b64"))
            .unwrap();
        let private = EncodingKey::from_rsa_der(&der);
        let ps256 = sign(Algorithm::PS256, Some("r"), &private);
        assert_eq!(
            verifier.verify(&ps256, NOW).await,
            Err(JwtError::BadSignature),
            "key says RS256"
        );
        let ps256 = sign(Algorithm::PS256, Some("any"), &private);
        assert!(
            verifier.verify(&ps256, NOW).await.is_ok(),
            "an RSA key without alg allows PS256"
        );

        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"r"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let unsigned = format!("{header}.{payload}.AAAA");
        assert!(matches!(
            verifier.verify(&unsigned, NOW).await,
            Err(JwtError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn ignores_symmetric_keys_in_a_key_set() {
        let es = SigningKey::es256("e");
        let secret = json!({ "kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0" });
        let document = json!({ "keys": [es.jwk(), secret] }).to_string();
        let verifier = verifier(
            vec![provider(KeySource::Inline(document))],
            &FakeFetcher::failing(),
        );
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("s".into());
        let token =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"secret")).unwrap();
        assert_eq!(
            verifier.verify(&token, NOW).await,
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn refuses_bad_configuration() {
        let fetcher = FakeFetcher::failing();
        let build =
            |providers| JwtVerifier::new(providers, Arc::clone(&fetcher) as Arc<dyn JwksFetcher>);
        let second = JwtProvider {
            name: "idp-2".into(),
            ..remote()
        };
        assert!(matches!(
            build(vec![remote(), second]),
            Err(JwtConfigError::DuplicateIssuer { first, second, .. }) if first == "idp" && second == "idp-2"
        ));
        assert!(matches!(
            build(vec![provider(KeySource::Inline("{}".into()))]),
            Err(JwtConfigError::InvalidKeys { provider, .. }) if provider == "idp"
        ));
    }

    #[test]
    fn verification_can_run_on_any_runtime_thread() {
        fn assert_send<T: Send>(_: &T) {}
        let verifier = verifier(vec![remote()], &FakeFetcher::failing());
        assert_send(&verifier.verify("a.b.c", NOW));
    }
}
