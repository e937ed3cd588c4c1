//! Services as HTTPRoute backends: where a Service's port is reached from the proxy.

use std::collections::HashMap;
use tollgate_api::upstream::Service;
use tollgate_config::ObjectRef;

use super::{name_of, namespace_of};

/// The Services, by namespace and name.
pub(super) struct ServiceIndex<'a> {
    by_name: HashMap<ObjectRef, &'a Service>,
}

impl<'a> ServiceIndex<'a> {
    /// Indexes the Services as gathered.
    pub(super) fn new(services: &'a [Service]) -> Self {
        let by_name = services
            .iter()
            .map(|s| {
                let name = ObjectRef::new(namespace_of(&s.metadata), name_of(&s.metadata));
                (name, s)
            })
            .collect();
        Self { by_name }
    }

    /// The host that reaches `port` of the Service `service`: an ExternalName Service's
    /// external name, a Service's cluster IP, or else its cluster DNS name. Refused with a
    /// reason and a message when the Service does not exist or has no such port.
    pub(super) fn host(
        &self,
        service: &ObjectRef,
        port: u16,
    ) -> Result<String, (&'static str, String)> {
        let Some(found) = self.by_name.get(service) else {
            return Err((
                "BackendNotFound",
                format!("Service {service} does not exist"),
            ));
        };
        let spec = found.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            return match spec.external_name.filter(|n| !n.is_empty()) {
                Some(name) => Ok(name.trim_end_matches('.').to_owned()),
                None => Err((
                    "InvalidBackend",
                    format!("Service {service} is of type ExternalName but has no externalName"),
                )),
            };
        }
        let ports = spec.ports.unwrap_or_default();
        if !ports.is_empty() && !ports.iter().any(|p| p.port == i32::from(port)) {
            return Err((
                "BackendNotFound",
                format!("Service {service} has no port {port}"),
            ));
        }
        match spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") {
            Some(ip) => Ok(ip),
            None => Ok(format!(
                "{}.{}.svc.cluster.local",
                service.name, service.namespace
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn each_kind_of_service_gives_its_host() {
        let services = [
            service(
                "metadata: {name: ext, namespace: web}\nspec: {type: ExternalName, externalName: api.example.com.}",
            ),
            service(
                "metadata: {name: ip, namespace: web}\nspec: {clusterIP: 10.0.0.9, ports: [{port: 80}]}",
            ),
            service("metadata: {name: headless, namespace: web}\nspec: {clusterIP: None}"),
            service("metadata: {name: broken, namespace: web}\nspec: {type: ExternalName}"),
        ];
        let index = ServiceIndex::new(&services);
        let host = |name: &str, port| index.host(&ObjectRef::new("web", name), port);
        assert_eq!(host("ext", 443).unwrap(), "api.example.com");
        assert_eq!(host("ip", 80).unwrap(), "10.0.0.9");
        assert_eq!(host("ip", 81).unwrap_err().0, "BackendNotFound");
        assert_eq!(
            host("headless", 8080).unwrap(),
            "headless.web.svc.cluster.local"
        );
        assert_eq!(host("broken", 80).unwrap_err().0, "InvalidBackend");
        assert_eq!(host("gone", 80).unwrap_err().0, "BackendNotFound");
    }
}
