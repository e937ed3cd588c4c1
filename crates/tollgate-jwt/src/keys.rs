//! Where a provider's keys are kept: parsed once for inline key sets, fetched and cached for
//! remote ones. Fetches are coalesced and rate-limited so that a flood of tokens naming
//! unknown keys cannot hammer the identity provider.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::future::BoxFuture;

use crate::keyset::KeySet;

/// Shortest time between two fetches of one provider's keys, whatever prompts them: a token
/// naming an unknown key, keys older than the refresh interval, or a failed earlier fetch.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Fetches JWKS documents, so the crate itself does no network I/O and the gateway's HTTP
/// client, TLS settings and timeouts apply.
pub trait JwksFetcher: Send + Sync + 'static {
    /// Fetches the document at `url`. Implementations must bound the request's time, since
    /// requests that need the provider's keys wait for the fetch, and should stop reading the
    /// body past [`crate::MAX_JWKS_BYTES`] (larger documents are refused anyway). The error
    /// text is logged, never returned to callers.
    fn fetch(&self, url: &str) -> BoxFuture<'static, Result<Bytes, String>>;
}

/// One provider's keys.
pub(crate) enum KeyStore {
    /// Keys given in configuration.
    Inline(Arc<KeySet>),
    /// Keys fetched from the provider.
    Remote(RemoteKeys),
}

impl KeyStore {
    /// The provider's keys at `now` (Unix seconds), fetched first if none are cached, if
    /// they are older than the refresh interval, or if they lack `kid`, subject to
    /// [`MIN_REFETCH_INTERVAL`]. `None` when no keys could ever be fetched.
    pub(crate) async fn current(&self, kid: Option<&str>, now: u64) -> Option<Arc<KeySet>> {
        match self {
            Self::Inline(keys) => Some(Arc::clone(keys)),
            Self::Remote(remote) => remote.current(kid, now).await,
        }
    }
}

/// The cache of one provider's remote keys.
pub(crate) struct RemoteKeys {
    provider: String,
    url: String,
    refresh_interval: u64,
    fetcher: Arc<dyn JwksFetcher>,
    state: ArcSwap<CacheState>,
    /// Held for the length of a fetch, so that concurrent requests share one.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    /// The last keys fetched successfully, served until a fetch replaces them.
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched.
    fetched_at: u64,
    /// When the last fetch, successful or not, started.
    attempted_at: Option<u64>,
    /// Count of fetches so far; tells a waiter whether a fetch happened while it waited.
    attempts: u64,
}

impl RemoteKeys {
    pub(crate) fn new(
        provider: String,
        url: String,
        refresh_interval: Duration,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Self {
        Self {
            provider,
            url,
            refresh_interval: refresh_interval.as_secs(),
            fetcher,
            state: ArcSwap::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    async fn current(&self, kid: Option<&str>, now: u64) -> Option<Arc<KeySet>> {
        let seen = self.state.load_full();
        if !seen.wants_fetch(kid, now, self.refresh_interval) {
            return seen.keys.clone();
        }
        let _fetching = self.fetching.lock().await;
        let latest = self.state.load_full();
        if latest.attempts == seen.attempts {
            self.fetch(&latest, now).await;
        }
        self.state.load().keys.clone()
    }

    async fn fetch(&self, previous: &CacheState, now: u64) {
        let fetched = self
            .fetcher
            .fetch(&self.url)
            .await
            .and_then(|body| KeySet::parse(&body));
        let next = match fetched {
            Ok(keys) => CacheState {
                keys: Some(Arc::new(keys)),
                fetched_at: now,
                attempted_at: Some(now),
                attempts: previous.attempts + 1,
            },
            Err(error) => {
                tracing::warn!(
                    provider = %self.provider,
                    url = %self.url,
                    %error,
                    "could not fetch the identity provider's signing keys; keeping the previous ones"
                );
                CacheState {
                    keys: previous.keys.clone(),
                    fetched_at: previous.fetched_at,
                    attempted_at: Some(now),
                    attempts: previous.attempts + 1,
                }
            }
        };
        self.state.store(Arc::new(next));
    }
}

impl CacheState {
    fn wants_fetch(&self, kid: Option<&str>, now: u64, refresh_interval: u64) -> bool {
        let Some(attempted_at) = self.attempted_at else {
            return true;
        };
        if now.saturating_sub(attempted_at) < MIN_REFETCH_INTERVAL.as_secs() {
            return false;
        }
        match &self.keys {
            None => true,
            Some(keys) => {
                now.saturating_sub(self.fetched_at) >= refresh_interval
                    || kid.is_some_and(|kid| !keys.contains(kid))
            }
        }
    }
}
