//! Keys, tokens and a scripted JWKS fetcher for the unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::JwksFetcher;

/// A private key that signs test tokens, and its public JWK.
pub(crate) struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A fixed 2048-bit RSA key (generating one per test would be slow), published for RS256.
    pub(crate) fn rsa(kid: &str) -> Self {
        let der = STANDARD
            .decode(include_str!("../testdata/rsa2048-pkcs1.der.b64"))
            .unwrap();
        let n = include_str!("../testdata/rsa2048-modulus.b64url");
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(&der),
            jwk: json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": n, "e": "AQAB" }),
        }
    }

    /// A fresh P-256 key, published for ES256.
    pub(crate) fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "kid": kid, "alg": "ES256", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            }),
        }
    }

    /// A fresh Ed25519 key, published for EdDSA.
    pub(crate) fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "OKP", "kid": kid, "alg": "EdDSA", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    /// The public JWK.
    pub(crate) fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A token with `claims`, signed with this key's algorithm and naming its `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A JWKS document publishing the JWKs `keys`.
pub(crate) fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// A fetcher that serves whatever document (or failure) it was last given and counts fetches.
/// Each fetch yields once before answering, so concurrent verifications overlap with it.
pub(crate) struct FakeFetcher {
    response: ArcSwap<Result<Bytes, String>>,
    fetches: AtomicUsize,
}

impl FakeFetcher {
    pub(crate) fn serving(document: String) -> Arc<Self> {
        Arc::new(Self {
            response: ArcSwap::from_pointee(Ok(Bytes::from(document))),
            fetches: AtomicUsize::new(0),
        })
    }

    pub(crate) fn failing() -> Arc<Self> {
        let fetcher = Self::serving(String::new());
        fetcher.fail();
        fetcher
    }

    pub(crate) fn serve(&self, document: String) {
        self.response.store(Arc::new(Ok(Bytes::from(document))));
    }

    pub(crate) fn fail(&self) {
        self.response
            .store(Arc::new(Err("connection refused".to_owned())));
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for FakeFetcher {
    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, String>> {
        assert_eq!(url, "https://idp.example/jwks");
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let response = Result::clone(&self.response.load());
        async move {
            tokio::task::yield_now().await;
            response
        }
        .boxed()
    }
}
