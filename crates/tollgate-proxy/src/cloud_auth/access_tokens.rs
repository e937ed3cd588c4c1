//! OAuth2 access tokens for providers that take them instead of a key, cached and replaced
//! shortly before they expire: Vertex AI's, for which an RS256 JWT assertion signed with the
//! service account's key is exchanged at its `token_uri` (the JWT bearer grant, RFC 7523), and
//! Azure OpenAI's, minted by Microsoft Entra ID with the client-credentials grant. Requests for
//! the same account share one mint: while it runs the others wait for it rather than minting
//! their own.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tollgate_config::{CloudAccount, ServiceAccountKey};

use crate::upstream::UpstreamClients;

/// The scope every Vertex AI call needs.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long an assertion is valid; Google accepts at most an hour.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// How long before expiry a token is replaced (or a quarter of its lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long one mint may take, connecting included.
const MINT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest token response read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Accounts remembered at most; past it the cache starts afresh (keys rotate, configs change).
const MAX_ACCOUNTS: usize = 1024;

/// A token as the token endpoint issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MintedToken {
    /// The bearer token.
    pub(crate) access_token: String,
    /// How long it is valid from now.
    pub(crate) lifetime: Duration,
}

/// Exchanges an account's credential for an access token.
pub(crate) trait TokenMinter: Send + Sync + 'static {
    /// Mints a fresh token for `account`, or says why it cannot.
    fn mint(&self, account: &CloudAccount) -> BoxFuture<'static, Result<MintedToken, String>>;
}

/// A cached token and when to replace it.
struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
}

/// One account's cache slot; its lock is held across a mint, so that mints coalesce.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Access tokens by account.
pub(crate) struct AccessTokens {
    minter: Box<dyn TokenMinter>,
    slots: parking_lot::Mutex<HashMap<String, Slot>>,
}

impl AccessTokens {
    /// Tokens minted by `minter`.
    pub(crate) fn new(minter: impl TokenMinter) -> Self {
        Self {
            minter: Box::new(minter),
            slots: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// A valid access token for `account`: the cached one, or a fresh one when none is cached
    /// or the cached one is about to expire.
    pub(crate) async fn token(&self, account: &CloudAccount) -> Result<Arc<str>, String> {
        let slot = self.slot(account);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(token.token.clone());
        }
        let minted = self.minter.mint(account).await?;
        let margin = REFRESH_MARGIN.min(minted.lifetime / 4);
        let token: Arc<str> = minted.access_token.into();
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + minted.lifetime.saturating_sub(margin),
        });
        Ok(token)
    }

    fn slot(&self, account: &CloudAccount) -> Slot {
        let id = match account {
            CloudAccount::Gcp(gcp) => {
                let key = &gcp.service_account;
                format!(
                    "gcp\n{}\n{}\n{}",
                    key.client_email,
                    key.token_uri,
                    key.private_key_id.as_deref().unwrap_or_default()
                )
            }
            CloudAccount::Azure(app) => format!("entra\n{}\n{}", app.client_id, app.token_uri),
            CloudAccount::Aws(aws) => format!("aws\n{}", aws.region),
        };
        let mut slots = self.slots.lock();
        if slots.len() >= MAX_ACCOUNTS && !slots.contains_key(&id) {
            slots.clear();
        }
        slots.entry(id).or_default().clone()
    }
}

/// Mints tokens over HTTP with the proxy's upstream clients.
pub(crate) struct HttpTokenMinter {
    clients: Arc<UpstreamClients>,
}

impl HttpTokenMinter {
    /// Mints with `clients`.
    pub(crate) fn new(clients: Arc<UpstreamClients>) -> Self {
        Self { clients }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenMinter for HttpTokenMinter {
    fn mint(&self, account: &CloudAccount) -> BoxFuture<'static, Result<MintedToken, String>> {
        let form = |value: &str| utf8_percent_encode(value, NON_ALPHANUMERIC).to_string();
        let grant = match account {
            CloudAccount::Gcp(gcp) => {
                let key = &gcp.service_account;
                assertion(key, crate::clock::unix_millis() / 1000).map(|assertion| {
                    let body = format!(
                        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
                    );
                    (key.token_uri.clone(), body)
                })
            }
            CloudAccount::Azure(app) => Ok((
                app.token_uri.clone(),
                format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                    form(&app.client_id),
                    form(app.client_secret.expose()),
                    form(&app.scope)
                ),
            )),
            CloudAccount::Aws(_) => Err("AWS requests are signed, not given tokens".to_string()),
        };
        let client = self.clients.get(MINT_TIMEOUT);
        Box::pin(async move {
            let (uri, body) = grant?;
            let request = Request::post(&uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| format!("invalid token_uri {uri:?}: {e}"))?;
            let exchange = async {
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| format!("the token endpoint {uri} is unreachable: {e}"))?;
                let status = response.status();
                let body = Limited::new(response.into_body(), MAX_TOKEN_RESPONSE)
                    .collect()
                    .await
                    .map_err(|e| format!("cannot read the token endpoint's answer: {e}"))?
                    .to_bytes();
                read_token_response(status, &body)
            };
            tokio::time::timeout(MINT_TIMEOUT, exchange)
                .await
                .map_err(|_| {
                    format!("the token endpoint {uri} did not answer within {MINT_TIMEOUT:?}")
                })?
        })
    }
}

/// The signed JWT assertion for `key` at Unix time `now`.
fn assertion(key: &ServiceAccountKey, now: i64) -> Result<String, String> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = key.private_key_id.clone();
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": SCOPE,
        "aud": key.token_uri,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME.as_secs() as i64,
    });
    let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.expose().as_bytes())
        .map_err(|e| format!("the service account's private key is not an RSA key: {e}"))?;
    jsonwebtoken::encode(&header, &claims, &signing_key)
        .map_err(|e| format!("cannot sign the token assertion: {e}"))
}

/// A token from the endpoint's answer, or its refusal in words.
fn read_token_response(status: http::StatusCode, body: &[u8]) -> Result<MintedToken, String> {
    if !status.is_success() {
        let reason = serde_json::from_slice::<TokenError>(body)
            .map(|e| match e.error_description {
                Some(description) => format!("{}: {description}", e.error),
                None => e.error,
            })
            .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned());
        return Err(format!("the token endpoint refused ({status}): {reason}"));
    }
    let token: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the token endpoint's answer is not a token: {e}"))?;
    if token.access_token.is_empty() || !token.access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token endpoint issued a token a header cannot carry".into());
    }
    Ok(MintedToken {
        access_token: token.access_token,
        lifetime: Duration::from_secs(token.expires_in.unwrap_or(3600)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tollgate_config::{EntraApplication, GcpAccount, Secret};

    /// A 2048-bit RSA key made for these tests only (`openssl genrsa 2048`).
    const PRIVATE_KEY: &str = include_str!("../../tests/fixtures/service_account_key.pem");
    const PUBLIC_KEY: &str = include_str!("../../tests/fixtures/service_account_key.pub.pem");

    fn key() -> ServiceAccountKey {
        ServiceAccountKey {
            client_email: "gateway@project.iam.gserviceaccount.com".into(),
            private_key_id: Some("key-1".into()),
            private_key: Secret::new(PRIVATE_KEY),
            token_uri: "https://oauth2.googleapis.com/token".into(),
        }
    }

    fn account(key: ServiceAccountKey) -> CloudAccount {
        CloudAccount::Gcp(GcpAccount {
            project: "project".into(),
            location: "us-central1".into(),
            service_account: key,
        })
    }

    /// Counts mints; each token lives `lifetime` and is named by its number.
    struct CountingMinter {
        minted: Arc<AtomicU32>,
        lifetime: Duration,
    }

    impl TokenMinter for CountingMinter {
        fn mint(&self, _: &CloudAccount) -> BoxFuture<'static, Result<MintedToken, String>> {
            let number = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
            let lifetime = self.lifetime;
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(MintedToken {
                    access_token: format!("token-{number}"),
                    lifetime,
                })
            })
        }
    }

    /// The token handed out now for the test account.
    async fn current(tokens: &AccessTokens) -> String {
        tokens.token(&account(key())).await.unwrap().to_string()
    }

    fn tokens(lifetime: Duration) -> (Arc<AccessTokens>, Arc<AtomicU32>) {
        let minted = Arc::new(AtomicU32::new(0));
        let tokens = AccessTokens::new(CountingMinter {
            minted: minted.clone(),
            lifetime,
        });
        (Arc::new(tokens), minted)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_mint_and_reuse_the_token() {
        let (tokens, minted) = tokens(Duration::from_secs(3600));
        let all = futures::future::join_all((0..20).map(|_| {
            let tokens = tokens.clone();
            async move { tokens.token(&account(key())).await.unwrap() }
        }))
        .await;
        assert!(all.iter().all(|t| &**t == "token-1"));
        assert_eq!(current(&tokens).await, "token-1");
        assert_eq!(minted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_replaced_before_it_expires() {
        let (tokens, minted) = tokens(Duration::from_secs(3600));
        assert_eq!(current(&tokens).await, "token-1");
        tokio::time::sleep(Duration::from_secs(3600 - 301)).await;
        assert_eq!(current(&tokens).await, "token-1");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            current(&tokens).await,
            "token-2",
            "less than five minutes were left"
        );
        assert_eq!(minted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_tokens_are_replaced_at_three_quarters_of_their_life() {
        let (tokens, _) = tokens(Duration::from_secs(40));
        assert_eq!(current(&tokens).await, "token-1");
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(current(&tokens).await, "token-1");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(current(&tokens).await, "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_have_their_own_tokens() {
        let (tokens, minted) = tokens(Duration::from_secs(3600));
        let other = ServiceAccountKey {
            client_email: "other@project.iam.gserviceaccount.com".into(),
            ..key()
        };
        assert_eq!(current(&tokens).await, "token-1");
        assert_eq!(
            tokens.token(&account(other)).await.unwrap().as_ref(),
            "token-2"
        );
        assert_eq!(minted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn entra_applications_have_their_own_tokens() {
        let (tokens, minted) = tokens(Duration::from_secs(3600));
        let app = CloudAccount::Azure(EntraApplication {
            token_uri: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
            client_id: "app".into(),
            client_secret: Secret::new("s"),
            scope: "https://cognitiveservices.azure.com/.default".into(),
        });
        assert_eq!(tokens.token(&app).await.unwrap().as_ref(), "token-1");
        assert_eq!(current(&tokens).await, "token-2");
        assert_eq!(tokens.token(&app).await.unwrap().as_ref(), "token-1");
        assert_eq!(minted.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_for_the_token_endpoint() {
        let jwt = assertion(&key(), 1_796_205_600).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["https://oauth2.googleapis.com/token"]);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some("key-1"));
        let claims = decoded.claims;
        assert_eq!(claims["iss"], "gateway@project.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["iat"], 1_796_205_600);
        assert_eq!(claims["exp"], 1_796_205_600 + 3600);
    }

    #[test]
    fn token_answers_and_refusals_are_read() {
        let ok = read_token_response(
            http::StatusCode::OK,
            br#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token, "ya29.abc");
        assert_eq!(ok.lifetime, Duration::from_secs(3599));
        let refused = read_token_response(
            http::StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .unwrap_err();
        assert!(
            refused.contains("invalid_grant: Invalid JWT Signature."),
            "{refused}"
        );
        assert!(read_token_response(http::StatusCode::OK, b"{\"access_token\":\"a b\"}").is_err());
    }
}
