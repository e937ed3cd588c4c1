//! MCPServers and AIRoute rules that serve MCP endpoints.

use std::time::Duration;
use tollgate_config::{McpTransport, ObjectRef};

use super::{assert_clean, diagnostic, gateway, reasons, route, run, secret};
use crate::Translation;

const SERVERS: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: github, namespace: default}
spec:
  url: https://mcp.example.com/mcp
  auth: {name: tokens, key: github}
  headers: [{name: X-Team, secretRef: {name: tokens, key: team}}]
  tools: {allow: ["get_*"], deny: ["get_secret"]}
  access: [{teams: [research], allow: ["*"]}]
  argumentRules: [{tool: "*", argument: "*", deny: "rm -rf"}]
  timeouts: {request: 5s}
---
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: local.tools, namespace: default}
spec: {url: "http://127.0.0.1:9200/mcp", toolPrefix: local, transport: SSE}
"#;

fn documents(rule: &str) -> Translation {
    let tokens = secret(
        "default",
        "tokens",
        "{}",
        "stringData: {github: ghp-token, team: research}",
    );
    let key = secret(
        "default",
        "mcp-key",
        "{}",
        "stringData: {key: 0123456789abcdef0123456789abcdef, short: tiny}",
    );
    let gateway = gateway(
        "default",
        "ai-gateway",
        "[{name: http, protocol: HTTP, port: 8080}]",
    );
    let route = route(
        "default",
        "tools",
        &format!("{{parentRefs: [{{name: ai-gateway}}], rules: [{rule}]}}"),
    );
    run(&[SERVERS, &tokens, &key, &gateway, &route])
}

#[test]
fn an_mcp_rule_becomes_an_endpoint_of_its_servers() {
    let translation = documents(
        "{name: tools, matches: [{path: /mcp}, {path: /tools}], mcp: {servers: [github, local.tools], sessionKeyRef: {name: mcp-key, key: key}}}",
    );
    assert_clean(&translation);
    let config = &translation.configs[&ObjectRef::new("default", "ai-gateway")];
    let [endpoint] = &config.mcp[..] else {
        panic!("{:?}", config.mcp)
    };
    assert_eq!(endpoint.paths, ["/mcp", "/tools"]);
    assert_eq!(endpoint.rule, "tools");
    assert_eq!(
        endpoint.session_key.expose(),
        "0123456789abcdef0123456789abcdef"
    );
    let [github, local] = &endpoint.servers[..] else {
        panic!("two servers")
    };
    assert_eq!(github.prefix, "github");
    assert_eq!(github.bearer.as_ref().unwrap().expose(), "ghp-token");
    assert_eq!(github.headers[0].0, "x-team");
    assert_eq!(github.rules.deny, ["get_secret"]);
    assert_eq!(github.grants[0].teams, ["research"]);
    assert_eq!(github.request_timeout, Duration::from_secs(5));
    assert_eq!(local.prefix, "local");
    assert_eq!(local.transport, McpTransport::Sse);
    assert!(
        config.routes.rules().is_empty(),
        "an MCP rule serves no models"
    );
}

#[test]
fn mcp_rules_and_servers_are_checked() {
    for (rule, reason, field) in [
        (
            "{mcp: {servers: [github], sessionKeyRef: {name: mcp-key, key: short}}}",
            "InvalidSecret",
            "spec.rules[0].mcp.sessionKeyRef",
        ),
        (
            "{mcp: {servers: [missing], sessionKeyRef: {name: mcp-key, key: key}}}",
            "BackendNotFound",
            "spec.rules[0].mcp.servers[0]",
        ),
        (
            "{matches: [{model: gpt-4o}], mcp: {servers: [github], sessionKeyRef: {name: mcp-key, key: key}}}",
            "InvalidMatch",
            "spec.rules[0].matches[0]",
        ),
        (
            "{backends: [{provider: p}], mcp: {servers: [github], sessionKeyRef: {name: mcp-key, key: key}}}",
            "MCPWithBackends",
            "spec.rules[0].backends",
        ),
    ] {
        let translation = documents(rule);
        diagnostic(
            &translation,
            reason,
            &format!("error AIRoute default/tools {field}"),
        );
    }
}

#[test]
fn a_server_whose_name_cannot_be_a_prefix_must_set_one() {
    let server = r#"
apiVersion: tollgate.dev/v1alpha1
kind: MCPServer
metadata: {name: bad.name, namespace: default}
spec: {url: "http://127.0.0.1:9200/mcp", argumentRules: [{tool: x, argument: y, deny: "("}]}
"#;
    let translation = run(&[server]);
    assert_eq!(reasons(&translation), ["InvalidPrefix", "InvalidRule"]);
}
