//! Reflectors: an in-memory copy of every kind Tollgate reads, each kept current by a watch,
//! and one counter that moves whenever any of them changes.

use futures::{Future, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tollgate_api::upstream::{Gateway, GatewayClass, HttpRoute, ReferenceGrant, Secret, Service};
use tollgate_api::{
    AIRoute, API_KEY_LABEL, BudgetPolicy, GATEWAY_LABEL, JWTProvider, MCPServer, ModelProvider,
};
use tracing::{info, warn};

use crate::Resources;

/// How often the wait for the first lists says what it still waits for.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long the first reconcile waits for ReferenceGrants, which translation does not read yet
/// and which clusters with older Gateway API CRDs serve under another version.
const OPTIONAL_WAIT: Duration = Duration::from_secs(30);

/// Moves whenever a watched object changes.
pub(super) type Changes = watch::Sender<u64>;

/// Starts a reflector of `api`: returns its store and the task that keeps it current, which
/// retries a failing watch with backoff and bumps `changes` on every change.
pub(super) fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changes: Changes,
) -> (Store<K>, impl Future<Output = ()> + Send + 'static)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let feed = watch_stream(api, config)
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer)
        .for_each(move |event| {
            match event {
                Ok(Event::Init | Event::InitApply(_)) => {}
                Ok(_) => changes.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => warn!(%kind, %error, "watch failed; retrying with backoff"),
            }
            futures::future::ready(())
        });
    (reader, feed)
}

/// The stores of every kind watched cluster-wide.
pub(super) struct Stores {
    gateway_classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    http_routes: Store<HttpRoute>,
    reference_grants: Store<ReferenceGrant>,
    ai_routes: Store<AIRoute>,
    model_providers: Store<ModelProvider>,
    budget_policies: Store<BudgetPolicy>,
    mcp_servers: Store<MCPServer>,
    jwt_providers: Store<JWTProvider>,
    api_keys: Store<Secret>,
    services: Store<Service>,
}

impl Stores {
    /// Starts every reflector on `tasks`. API key Secrets are found by their label; other
    /// Secrets are watched one by one (see `secrets`). Services are all watched: HTTPRoutes
    /// may send to any, and those labelled [`GATEWAY_LABEL`] expose Gateways.
    pub(super) fn start(client: &Client, changes: &Changes, tasks: &mut JoinSet<()>) -> Self {
        let everything = watcher::Config::default;
        Self {
            gateway_classes: start(client, everything(), changes, tasks),
            gateways: start(client, everything(), changes, tasks),
            http_routes: start(client, everything(), changes, tasks),
            reference_grants: start(client, everything(), changes, tasks),
            ai_routes: start(client, everything(), changes, tasks),
            model_providers: start(client, everything(), changes, tasks),
            budget_policies: start(client, everything(), changes, tasks),
            mcp_servers: start(client, everything(), changes, tasks),
            jwt_providers: start(client, everything(), changes, tasks),
            api_keys: start(
                client,
                everything().labels(&format!("{API_KEY_LABEL}=true")),
                changes,
                tasks,
            ),
            services: start(client, everything(), changes, tasks),
        }
    }

    /// Waits until every store holds its first full list, saying what it waits for.
    pub(super) async fn wait_until_ready(&self) {
        wait("GatewayClass", self.gateway_classes.wait_until_ready()).await;
        wait("Gateway", self.gateways.wait_until_ready()).await;
        wait("HTTPRoute", self.http_routes.wait_until_ready()).await;
        let grants = wait("ReferenceGrant", self.reference_grants.wait_until_ready());
        if tokio::time::timeout(OPTIONAL_WAIT, grants).await.is_err() {
            warn!("ReferenceGrants cannot be listed; going on without them");
        }
        wait("AIRoute", self.ai_routes.wait_until_ready()).await;
        wait("ModelProvider", self.model_providers.wait_until_ready()).await;
        wait("BudgetPolicy", self.budget_policies.wait_until_ready()).await;
        wait("MCPServer", self.mcp_servers.wait_until_ready()).await;
        wait("JWTProvider", self.jwt_providers.wait_until_ready()).await;
        wait("Secret", self.api_keys.wait_until_ready()).await;
        wait("Service", self.services.wait_until_ready()).await;
    }

    /// The resources as the stores hold them now, API key Secrets included, each kind in
    /// namespace and name order so that equal contents translate equally.
    pub(super) fn resources(&self) -> Resources {
        Resources {
            gateway_classes: snapshot(&self.gateway_classes),
            gateways: snapshot(&self.gateways),
            http_routes: snapshot(&self.http_routes),
            ai_routes: snapshot(&self.ai_routes),
            model_providers: snapshot(&self.model_providers),
            budget_policies: snapshot(&self.budget_policies),
            mcp_servers: snapshot(&self.mcp_servers),
            jwt_providers: snapshot(&self.jwt_providers),
            secrets: snapshot(&self.api_keys),
            reference_grants: snapshot(&self.reference_grants),
            services: snapshot(&self.services),
        }
    }

    /// The Services labelled [`GATEWAY_LABEL`].
    pub(super) fn services(&self) -> Vec<Service> {
        let mut labelled = snapshot(&self.services);
        labelled.retain(|s| s.labels().contains_key(GATEWAY_LABEL));
        labelled
    }
}

fn start<K>(
    client: &Client,
    config: watcher::Config,
    changes: &Changes,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, feed) = reflect(Api::all(client.clone()), config, changes.clone());
    tasks.spawn(feed);
    store
}

/// Waits for one store, logging every [`WAITING_LOG_INTERVAL`] until it is ready.
async fn wait<E>(kind: &str, ready: impl Future<Output = Result<(), E>>) {
    let mut ready = std::pin::pin!(ready);
    loop {
        tokio::select! {
            _ = &mut ready => return,
            () = tokio::time::sleep(WAITING_LOG_INTERVAL) => {
                info!(kind, "waiting for the first list; is the CRD installed and may the controller list it?");
            }
        }
    }
}

/// The objects of a store, sorted by namespace and name.
pub(super) fn snapshot<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let mut objects: Vec<K> = store.state().iter().map(|o| (**o).clone()).collect();
    objects.sort_by_key(|a| (a.namespace(), a.name_any()));
    objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::mock;

    #[tokio::test(start_paused = true)]
    async fn every_kind_is_listed_and_secrets_only_by_label() {
        let (client, mut server) = mock::client();
        let (changes, mut changed) = watch::channel(0);
        let mut tasks = JoinSet::new();
        let stores = Stores::start(&client, &changes, &mut tasks);
        let mut lists = Vec::new();
        for _ in 0..11 {
            let request = server.answer(200, mock::list(Vec::new())).await;
            let path = request.uri.split("&limit").next().unwrap().to_string();
            lists.push(format!("{} {path}", request.method));
        }
        lists.sort();
        assert_eq!(
            lists,
            [
                "GET /api/v1/secrets?&labelSelector=tollgate.dev%2Fapi-key%3Dtrue",
                "GET /api/v1/services?",
                "GET /apis/gateway.networking.k8s.io/v1/gatewayclasses?",
                "GET /apis/gateway.networking.k8s.io/v1/gateways?",
                "GET /apis/gateway.networking.k8s.io/v1/httproutes?",
                "GET /apis/gateway.networking.k8s.io/v1/referencegrants?",
                "GET /apis/tollgate.dev/v1alpha1/airoutes?",
                "GET /apis/tollgate.dev/v1alpha1/budgetpolicies?",
                "GET /apis/tollgate.dev/v1alpha1/jwtproviders?",
                "GET /apis/tollgate.dev/v1alpha1/mcpservers?",
                "GET /apis/tollgate.dev/v1alpha1/modelproviders?",
            ]
        );
        stores.wait_until_ready().await;
        changed.changed().await.unwrap();
        let resources = stores.resources();
        assert!(resources.gateways.is_empty() && resources.secrets.is_empty());
    }
}
