//! Numbers snapshots: a Gateway's version goes up by one each time its configuration changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_config::{GatewayConfig, ObjectRef, Snapshot};

/// The last published snapshot of every Gateway.
#[derive(Debug, Default)]
pub struct Versions {
    published: BTreeMap<ObjectRef, Arc<Snapshot>>,
}

impl Versions {
    /// Publishes a new set of configurations: unchanged ones keep their snapshot (and version),
    /// changed or new ones get the next version. Gateways missing from `configs` are dropped.
    pub fn publish(
        &mut self,
        configs: BTreeMap<ObjectRef, GatewayConfig>,
    ) -> BTreeMap<ObjectRef, Arc<Snapshot>> {
        let mut next = BTreeMap::new();
        for (gateway, config) in configs {
            let snapshot = match self.published.get(&gateway) {
                Some(previous) if previous.config == config => previous.clone(),
                previous => Arc::new(Snapshot {
                    version: previous.map_or(1, |p| p.version + 1),
                    config,
                }),
            };
            next.insert(gateway, snapshot);
        }
        self.published = next.clone();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listener_port: u16) -> (ObjectRef, GatewayConfig) {
        let gateway = ObjectRef::new("default", "gw");
        let config = GatewayConfig {
            gateway: gateway.clone(),
            listeners: vec![tollgate_config::Listener {
                name: "http".into(),
                port: listener_port,
                hostname: None,
                tls: None,
            }],
            ..GatewayConfig::default()
        };
        (gateway, config)
    }

    #[test]
    fn version_moves_only_when_config_changes() {
        let mut versions = Versions::default();
        let first = versions.publish([config(8080)].into());
        let again = versions.publish([config(8080)].into());
        let changed = versions.publish([config(8081)].into());
        let key = ObjectRef::new("default", "gw");
        assert_eq!(first[&key].version, 1);
        assert!(Arc::ptr_eq(&first[&key], &again[&key]));
        assert_eq!(changed[&key].version, 2);
    }
}
