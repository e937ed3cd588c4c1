//! Watches of exactly the Secrets the resources refer to: one field-selected watch
//! (`metadata.name=...`) per referenced Secret, started when a reference appears and stopped
//! when the last one goes. The controller so never holds Secrets nobody refers to.

use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;
use tollgate_api::upstream::Secret;
use tollgate_config::ObjectRef;
use tracing::{info, warn};

use super::watch::{Changes, reflect, snapshot};

/// The most Secrets watched one by one; references beyond it are reported and not watched.
const MAX_WATCHED: usize = 2048;

/// One watched Secret.
struct Watched {
    store: Store<Secret>,
    _feed: AbortOnDropHandle<()>,
}

/// The watches of referenced Secrets.
pub(super) struct SecretWatches {
    client: Client,
    changes: Changes,
    watched: BTreeMap<ObjectRef, Watched>,
    /// The watches started by the last [`SecretWatches::sync`], not yet waited for.
    fresh: Vec<ObjectRef>,
}

impl SecretWatches {
    pub(super) fn new(client: Client, changes: Changes) -> Self {
        Self {
            client,
            changes,
            watched: BTreeMap::new(),
            fresh: Vec::new(),
        }
    }

    /// Watches exactly the Secrets in `wanted`: stops the watches of the others and starts the
    /// missing ones.
    pub(super) fn sync(&mut self, wanted: &BTreeSet<ObjectRef>) {
        let before = self.watched.len();
        self.watched.retain(|secret, _| wanted.contains(secret));
        let stopped = before - self.watched.len();
        if wanted.len() > MAX_WATCHED {
            warn!(
                referenced = wanted.len(),
                limit = MAX_WATCHED,
                "more Secrets are referenced than are watched; the rest read as missing"
            );
        }
        let mut started = 0;
        for secret in wanted.iter().take(MAX_WATCHED) {
            if self.watched.contains_key(secret) {
                continue;
            }
            let api = Api::namespaced(self.client.clone(), &secret.namespace);
            let config =
                watcher::Config::default().fields(&format!("metadata.name={}", secret.name));
            let (store, feed) = reflect(api, config, self.changes.clone());
            let feed = AbortOnDropHandle::new(tokio::spawn(feed));
            self.watched
                .insert(secret.clone(), Watched { store, _feed: feed });
            self.fresh.push(secret.clone());
            started += 1;
        }
        if started + stopped > 0 {
            info!(
                started,
                stopped,
                watched = self.watched.len(),
                "referenced Secrets changed"
            );
        }
    }

    /// Waits until the watches started since the last call have listed their Secret, at most
    /// `timeout`; a Secret not listed by then reads as missing until it is (and is not waited
    /// for again).
    pub(super) async fn wait_until_ready(&mut self, timeout: Duration) {
        let fresh = std::mem::take(&mut self.fresh);
        let all = futures::future::join_all(
            fresh
                .iter()
                .filter_map(|secret| self.watched.get(secret))
                .map(|w| w.store.wait_until_ready()),
        );
        if tokio::time::timeout(timeout, all).await.is_err() {
            warn!(
                ?timeout,
                "some referenced Secrets could not be listed in time; may the controller list them?"
            );
        }
    }

    /// Every watched Secret that exists.
    pub(super) fn secrets(&self) -> impl Iterator<Item = Secret> + '_ {
        self.watched.values().flat_map(|w| snapshot(&w.store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::mock;
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn each_referenced_secret_is_watched_by_name_and_forgotten_when_unreferenced() {
        let (client, mut server) = mock::client();
        let (changes, _) = tokio::sync::watch::channel(0);
        let mut watches = SecretWatches::new(client, changes);
        let key = ObjectRef::new("ai", "openai-key");
        watches.sync(&[key.clone()].into());
        let secret = json!({"metadata": {"name": "openai-key", "namespace": "ai", "resourceVersion": "1"}, "stringData": {"apiKey": "sk"}});
        let listed = server.answer(200, mock::list(vec![secret])).await;
        assert_eq!(listed.method, "GET");
        assert!(
            listed.uri.starts_with(
                "/api/v1/namespaces/ai/secrets?&fieldSelector=metadata.name%3Dopenai-key"
            ),
            "{}",
            listed.uri
        );
        watches.wait_until_ready(Duration::from_secs(1)).await;
        let names: Vec<Option<String>> = watches.secrets().map(|s| s.metadata.name).collect();
        assert_eq!(names, [Some("openai-key".to_string())]);

        watches.sync(&BTreeSet::new());
        assert_eq!(watches.secrets().count(), 0);
    }
}
