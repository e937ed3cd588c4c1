//! Which Secrets the resources refer to, so that exactly those are watched (besides API keys,
//! found by label) and not every Secret in the cluster.

use std::collections::{BTreeSet, HashSet};
use tollgate_api::upstream::ObjectMeta;
use tollgate_api::{MCP_SESSION_KEY_ANNOTATION, SecretKeyRef};
use tollgate_config::ObjectRef;

use crate::{CONTROLLER_NAME, Resources};

/// The Secrets that ModelProviders, MCPServers, AIRoutes, HTTPRoutes (their MCP session key)
/// and the listeners of Tollgate's Gateways refer to, by namespace and name.
pub(super) fn referenced_secrets(resources: &Resources) -> BTreeSet<ObjectRef> {
    let mut found = BTreeSet::new();
    let mut add = |meta: &ObjectMeta, namespace: Option<&str>, name: &str| {
        let namespace = namespace.or(meta.namespace.as_deref()).unwrap_or("default");
        found.insert(ObjectRef::new(namespace, name));
    };
    for provider in &resources.model_providers {
        let spec = &provider.spec;
        let names = [
            spec.auth.as_ref().map(|a| &a.secret_ref.name),
            spec.bedrock
                .as_ref()
                .and_then(|b| b.credentials_secret_ref.as_ref())
                .map(|r| &r.name),
            spec.vertex
                .as_ref()
                .map(|v| &v.service_account_secret_ref.name),
            spec.azure
                .as_ref()
                .and_then(|a| a.entra.as_ref())
                .map(|e| &e.client_secret_ref.name),
        ];
        for name in names.into_iter().flatten() {
            add(&provider.metadata, None, name);
        }
    }
    for server in &resources.mcp_servers {
        let headers = server.spec.headers.iter().map(|h| &h.secret_ref.name);
        for name in server.spec.auth.iter().map(|a| &a.name).chain(headers) {
            add(&server.metadata, None, name);
        }
    }
    for route in &resources.ai_routes {
        for mcp in route.spec.rules.iter().filter_map(|r| r.mcp.as_ref()) {
            add(&route.metadata, None, &mcp.session_key_ref.name);
        }
    }
    for route in &resources.http_routes {
        let session_key = (route.metadata.annotations.as_ref())
            .and_then(|a| a.get(MCP_SESSION_KEY_ANNOTATION))
            .and_then(|value| SecretKeyRef::parse(value));
        if let Some(key) = session_key {
            add(&route.metadata, None, &key.name);
        }
    }
    let classes: HashSet<&str> = resources
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let gateways = resources
        .gateways
        .iter()
        .filter(|g| classes.contains(g.spec.gateway_class_name.as_str()));
    for gateway in gateways {
        let refs = gateway
            .spec
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref()?.certificate_refs.as_ref())
            .flatten()
            .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Secret"))
            .filter(|r| r.group.as_deref().is_none_or(str::is_empty));
        for cert in refs {
            add(&gateway.metadata, cert.namespace.as_deref(), &cert.name);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::resources;

    #[test]
    fn every_kind_of_secret_reference_is_found() {
        let manifests = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: tollgate
  listeners:
    - name: https
      protocol: HTTPS
      port: 443
      tls: {certificateRefs: [{name: gw-cert}, {name: shared-cert, namespace: certs}, {name: cm, kind: ConfigMap}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: not-ours, namespace: edge}
spec:
  gatewayClassName: istio
  listeners:
    - {name: https, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: istio-cert}]}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: openai, namespace: ai}
spec: {type: OpenAI, auth: {secretRef: {name: openai-key, key: apiKey}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: bedrock, namespace: ai}
spec: {type: Bedrock, bedrock: {region: us-east-1, credentialsSecretRef: {name: aws}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: vertex, namespace: ai}
spec: {type: VertexAI, vertex: {project: p, location: global, serviceAccountSecretRef: {name: gcp, key: key.json}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: ModelProvider
metadata: {name: azure, namespace: ai}
spec: {type: AzureOpenAI, azure: {entra: {tenantId: t, clientId: c, clientSecretRef: {name: entra, key: secret}}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: tools, namespace: ai}
spec: {url: "http://tools/mcp", auth: {name: tools-token, key: token}, headers: [{name: x-key, secretRef: {name: tools-header, key: k}}]}
---
apiVersion: tollgate.dev/v1alpha1
kind: AIRoute
metadata: {name: mcp, namespace: ai}
spec:
  parentRefs: [{name: gw, namespace: edge}]
  rules: [{mcp: {servers: [tools], sessionKeyRef: {name: session, key: key}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: tools, namespace: web, annotations: {tollgate.dev/mcp-session-key: web-session/key}}
spec:
  parentRefs: [{name: gw, namespace: edge}]
  rules: [{backendRefs: [{group: tollgate.dev, kind: MCPServer, name: tools, namespace: ai}]}]
"#;
        let found: Vec<String> = referenced_secrets(&resources(manifests))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "ai/aws",
                "ai/entra",
                "ai/gcp",
                "ai/openai-key",
                "ai/session",
                "ai/tools-header",
                "ai/tools-token",
                "certs/shared-cert",
                "edge/gw-cert",
                "web/web-session",
            ]
        );
    }
}
