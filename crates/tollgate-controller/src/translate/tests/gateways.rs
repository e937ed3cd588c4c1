//! Gateways: which are served, and their listeners.

use tollgate_config::{ObjectRef, Secret};

use super::{assert_clean, diagnostic, gateway, reasons, run, secret, summaries};
use crate::Translation;

const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEtest\n-----END PRIVATE KEY-----\n";

/// Translates one Gateway `default/ai-gateway` with the given listeners, plus other documents.
fn run_gateway(listeners: &str, others: &[&str]) -> Translation {
    let gateway = gateway("default", "ai-gateway", listeners);
    let mut documents = vec![gateway.as_str()];
    documents.extend(others);
    run(&documents)
}

/// The names of the listeners `default/ai-gateway` is served with.
fn listener_names(translation: &Translation) -> Vec<&str> {
    let config = &translation.configs[&ObjectRef::new("default", "ai-gateway")];
    config.listeners.iter().map(|l| l.name.as_str()).collect()
}

/// A `kubernetes.io/tls` Secret `default/ai-gateway-tls` with the given certificate and key.
fn tls_secret(certificate: &str, key: &str) -> String {
    let data = format!(
        "type: kubernetes.io/tls\nstringData: {{tls.crt: {certificate:?}, tls.key: {key:?}}}"
    );
    secret("default", "ai-gateway-tls", "{}", &data)
}

#[test]
fn https_listener_terminates_tls_with_a_kubernetes_tls_secret() {
    let translation = run_gateway(
        r#"[{name: http, protocol: HTTP, port: 8080},
            {name: https, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{group: "", kind: Secret, name: ai-gateway-tls}]}}]"#,
        &[&tls_secret(CERTIFICATE, PRIVATE_KEY)],
    );
    assert_clean(&translation);
    let listeners = &translation.configs[&ObjectRef::new("default", "ai-gateway")].listeners;
    assert_eq!(
        (listeners[0].port, listeners[0].tls.is_none()),
        (8080, true)
    );
    assert_eq!(
        (listeners[1].name.as_str(), listeners[1].port),
        ("https", 8443)
    );
    let tls = listeners[1]
        .tls
        .as_ref()
        .expect("the HTTPS listener has a certificate");
    assert_eq!(tls.certificate_chain_pem, CERTIFICATE);
    assert_eq!(tls.private_key_pem.expose(), PRIVATE_KEY);
    assert_eq!(
        format!("{:?}", tls.private_key_pem),
        format!("{:?}", Secret::new("")),
        "the key never prints"
    );
}

#[test]
fn https_listener_without_a_usable_certificate_is_left_out() {
    let valid = tls_secret(CERTIFICATE, PRIVATE_KEY);
    let no_key = secret(
        "default",
        "ai-gateway-tls",
        "{}",
        &format!("stringData: {{tls.crt: {CERTIFICATE:?}}}"),
    );
    let cases: [(&str, &str, &str, &str); 8] = [
        (
            "{}",
            &valid,
            "InvalidCertificateRef",
            "needs tls.certificateRefs",
        ),
        (
            "{certificateRefs: [{kind: ConfigMap, name: ai-gateway-tls}]}",
            &valid,
            "InvalidCertificateRef",
            "core Secret",
        ),
        (
            "{certificateRefs: [{group: example.com, kind: Secret, name: ai-gateway-tls}]}",
            &valid,
            "InvalidCertificateRef",
            "core Secret",
        ),
        (
            "{certificateRefs: [{name: ai-gateway-tls, namespace: certs}]}",
            &valid,
            "RefNotPermitted",
            "another namespace",
        ),
        (
            "{certificateRefs: [{name: missing}]}",
            &valid,
            "InvalidCertificateRef",
            "Secret default/missing does not exist",
        ),
        (
            "{certificateRefs: [{name: ai-gateway-tls}]}",
            &no_key,
            "InvalidCertificateRef",
            "has no key \"tls.key\"",
        ),
        (
            "{certificateRefs: [{name: ai-gateway-tls}]}",
            &tls_secret("not a certificate", PRIVATE_KEY),
            "InvalidCertificateRef",
            "no PEM certificate",
        ),
        (
            "{certificateRefs: [{name: ai-gateway-tls}]}",
            &tls_secret(CERTIFICATE, "not a key"),
            "InvalidCertificateRef",
            "no PEM private key",
        ),
    ];
    for (tls, secret, reason, message) in cases {
        let listeners = format!(
            "[{{name: http, protocol: HTTP, port: 8080}}, {{name: https, protocol: HTTPS, port: 8443, tls: {tls}}}]"
        );
        let translation = run_gateway(&listeners, &[secret]);
        let found = diagnostic(
            &translation,
            reason,
            "error Gateway default/ai-gateway spec.listeners[1].tls.certificateRefs",
        );
        assert!(found.message.contains(message), "{found}");
        assert_eq!(
            reasons(&translation).len(),
            1,
            "{:#?}",
            translation.diagnostics
        );
        assert_eq!(listener_names(&translation), ["http"], "{tls}");
    }
}

#[test]
fn ports_outside_1_to_65535_are_refused() {
    for port in ["0", "-1", "65536"] {
        let translation = run_gateway(
            &format!("[{{name: http, protocol: HTTP, port: {port}}}]"),
            &[],
        );
        let found = diagnostic(
            &translation,
            "InvalidPort",
            "error Gateway default/ai-gateway spec.listeners[0].port",
        );
        assert!(found.message.contains(port), "{found}");
        assert!(listener_names(&translation).is_empty());
    }
}

#[test]
fn a_port_with_two_protocols_serves_none_of_its_listeners() {
    let translation = run_gateway(
        r#"[{name: http, protocol: HTTP, port: 8080},
            {name: https, protocol: HTTPS, port: 8080, tls: {certificateRefs: [{name: ai-gateway-tls}]}},
            {name: again, protocol: HTTP, port: 8080, hostname: a.example.com},
            {name: other, protocol: HTTP, port: 8081}]"#,
        &[&tls_secret(CERTIFICATE, PRIVATE_KEY)],
    );
    assert_eq!(
        summaries(&translation),
        [
            "error Gateway default/ai-gateway spec.listeners[0].protocol ProtocolConflict",
            "error Gateway default/ai-gateway spec.listeners[1].protocol ProtocolConflict",
            "error Gateway default/ai-gateway spec.listeners[2].protocol ProtocolConflict",
        ]
    );
    assert!(
        translation.diagnostics[0]
            .message
            .contains("listener \"https\" with protocol HTTPS"),
        "{}",
        translation.diagnostics[0]
    );
    assert_eq!(listener_names(&translation), ["other"]);
}

#[test]
fn listeners_with_one_protocol_and_different_hostnames_share_a_port() {
    let secret_b = secret(
        "default",
        "b-tls",
        "{}",
        &format!(
            "type: kubernetes.io/tls\nstringData: {{tls.crt: {CERTIFICATE:?}, tls.key: {PRIVATE_KEY:?}}}"
        ),
    );
    let translation = run_gateway(
        r#"[{name: a, protocol: HTTPS, port: 8443, hostname: A.example.com, tls: {certificateRefs: [{name: ai-gateway-tls}]}},
            {name: b, protocol: HTTPS, port: 8443, hostname: "*.example.com", tls: {certificateRefs: [{name: b-tls}]}},
            {name: default, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{name: b-tls}]}},
            {name: plain-a, protocol: HTTP, port: 8080, hostname: a.example.com},
            {name: plain, protocol: HTTP, port: 8080}]"#,
        &[&tls_secret(CERTIFICATE, PRIVATE_KEY), &secret_b],
    );
    assert_clean(&translation);
    let listeners = &translation.configs[&ObjectRef::new("default", "ai-gateway")].listeners;
    let summary: Vec<(&str, u16, Option<&str>, bool)> = listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.port,
                l.hostname.as_deref(),
                l.tls.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a", 8443, Some("a.example.com"), true),
            ("b", 8443, Some("*.example.com"), true),
            ("default", 8443, None, true),
            ("plain-a", 8080, Some("a.example.com"), false),
            ("plain", 8080, None, false),
        ]
    );
}

#[test]
fn listeners_with_the_same_hostname_on_a_port_are_all_refused() {
    let translation = run_gateway(
        r#"[{name: a, protocol: HTTP, port: 8080, hostname: a.example.com},
            {name: a-again, protocol: HTTP, port: 8080, hostname: A.example.com},
            {name: any, protocol: HTTP, port: 8080},
            {name: any-again, protocol: HTTP, port: 8080},
            {name: b, protocol: HTTP, port: 8080, hostname: b.example.com}]"#,
        &[],
    );
    assert_eq!(
        summaries(&translation),
        [
            "error Gateway default/ai-gateway spec.listeners[0].hostname HostnameConflict",
            "error Gateway default/ai-gateway spec.listeners[1].hostname HostnameConflict",
            "error Gateway default/ai-gateway spec.listeners[2].hostname HostnameConflict",
            "error Gateway default/ai-gateway spec.listeners[3].hostname HostnameConflict",
        ]
    );
    assert!(
        translation.diagnostics[2].message.contains("no hostname"),
        "{}",
        translation.diagnostics[2]
    );
    assert_eq!(listener_names(&translation), ["b"]);
}

#[test]
fn listener_names_must_be_unique() {
    let translation = run_gateway(
        "[{name: http, protocol: HTTP, port: 8080}, {name: http, protocol: HTTP, port: 8081}]",
        &[],
    );
    diagnostic(
        &translation,
        "DuplicateListener",
        "error Gateway default/ai-gateway spec.listeners[1]",
    );
    assert_eq!(listener_names(&translation), ["http"]);
}

#[test]
fn unsupported_protocols_are_warned_about_and_left_out() {
    for protocol in ["TCP", "UDP", "TLS", "http"] {
        let listeners = format!(
            "[{{name: http, protocol: HTTP, port: 8080}}, {{name: other, protocol: {protocol}, port: 9000}}]"
        );
        let translation = run_gateway(&listeners, &[]);
        let found = diagnostic(
            &translation,
            "UnsupportedProtocol",
            "warning Gateway default/ai-gateway spec.listeners[1].protocol",
        );
        assert!(found.message.contains(protocol), "{found}");
        assert!(!translation.has_errors());
        assert_eq!(listener_names(&translation), ["http"]);
    }
}

#[test]
fn a_gateway_without_usable_listeners_is_still_served_but_nothing_attaches() {
    let route = super::route(
        "default",
        "chat",
        "{parentRefs: [{name: ai-gateway}], rules: [{backends: [{provider: openai}]}]}",
    );
    let provider = super::provider("default", "openai", "{type: OpenAI}");
    let translation = run_gateway(
        "[{name: tcp, protocol: TCP, port: 9000}]",
        &[&provider, &route],
    );
    assert!(listener_names(&translation).is_empty());
    diagnostic(
        &translation,
        "NoMatchingParent",
        "warning AIRoute default/chat spec.parentRefs[0]",
    );
    assert!(
        translation.configs[&ObjectRef::new("default", "ai-gateway")]
            .routes
            .rules()
            .is_empty()
    );
}
