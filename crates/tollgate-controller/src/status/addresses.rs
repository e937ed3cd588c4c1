//! Where a Gateway is reachable: the addresses of the Services labelled with its name.

use gateway_api::gateways::GatewayStatusAddresses;
use tollgate_api::GATEWAY_LABEL;
use tollgate_api::upstream::Service;
use tollgate_config::ObjectRef;

use super::{name_of, namespace_of};

const IP_ADDRESS: &str = "IPAddress";
const HOSTNAME: &str = "Hostname";

/// The addresses of `gateway`: for each Service in its namespace labelled
/// [`GATEWAY_LABEL`]`: <its name>`, by Service name, the load balancer's ingress IPs and
/// hostnames, or the cluster IP when it has none. `None` when there is no such address.
pub(super) fn gateway_addresses(
    gateway: &ObjectRef,
    services: &[Service],
) -> Option<Vec<GatewayStatusAddresses>> {
    let mut matching: Vec<&Service> = services
        .iter()
        .filter(|s| {
            namespace_of(&s.metadata) == gateway.namespace
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(GATEWAY_LABEL))
                    .is_some_and(|name| *name == gateway.name)
        })
        .collect();
    matching.sort_by_key(|s| name_of(&s.metadata));
    let mut addresses: Vec<GatewayStatusAddresses> = Vec::new();
    for service in matching {
        for address in service_addresses(service) {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    (!addresses.is_empty()).then_some(addresses)
}

/// One Service's addresses: its load balancer ingress, else its cluster IP.
fn service_addresses(service: &Service) -> Vec<GatewayStatusAddresses> {
    let address = |kind: &str, value: &str| GatewayStatusAddresses {
        r#type: Some(kind.into()),
        value: value.into(),
    };
    let ingress: Vec<GatewayStatusAddresses> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|i| {
            let ip = i.ip.as_deref().map(|ip| address(IP_ADDRESS, ip));
            let hostname = i.hostname.as_deref().map(|h| address(HOSTNAME, h));
            ip.into_iter().chain(hostname)
        })
        .collect();
    if !ingress.is_empty() {
        return ingress;
    }
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .map(|ip| address(IP_ADDRESS, ip))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(namespace: &str, name: &str, gateway: &str, rest: &str) -> Service {
        serde_json::from_str(&format!(
            r#"{{"metadata": {{"namespace": "{namespace}", "name": "{name}", "labels": {{"tollgate.dev/gateway": "{gateway}"}}}}, {rest}}}"#
        ))
        .unwrap()
    }

    fn values(addresses: Option<Vec<GatewayStatusAddresses>>) -> Vec<(String, String)> {
        addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.r#type.unwrap_or_default(), a.value))
            .collect()
    }

    #[test]
    fn load_balancer_ingress_wins_over_the_cluster_ip() {
        let services = [
            service(
                "default",
                "b-lb",
                "gw",
                r#""spec": {"clusterIP": "10.0.0.2"}, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "gw.example.com"}]}}"#,
            ),
            service(
                "default",
                "a-internal",
                "gw",
                r#""spec": {"clusterIP": "10.0.0.1"}"#,
            ),
            service(
                "default",
                "headless",
                "gw",
                r#""spec": {"clusterIP": "None"}"#,
            ),
            service(
                "default",
                "other",
                "other-gw",
                r#""spec": {"clusterIP": "10.0.0.3"}"#,
            ),
            service(
                "elsewhere",
                "same-name",
                "gw",
                r#""spec": {"clusterIP": "10.0.0.4"}"#,
            ),
        ];
        let found = gateway_addresses(&ObjectRef::new("default", "gw"), &services);
        assert_eq!(
            values(found),
            [
                ("IPAddress".into(), "10.0.0.1".into()),
                ("IPAddress".into(), "203.0.113.7".into()),
                ("Hostname".into(), "gw.example.com".into()),
            ]
        );
    }

    #[test]
    fn no_service_means_no_addresses() {
        assert_eq!(
            gateway_addresses(&ObjectRef::new("default", "gw"), &[]),
            None
        );
    }
}
