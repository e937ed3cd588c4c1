//! TLS termination for HTTPS listeners. The HTTPS listeners that share a port share one
//! acceptor, which picks each connection's certificate by the server name the client asks for
//! (SNI): an exact host name first, then the most specific wildcard, then the listener
//! without a host name.

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tollgate_config::{Listener, TlsCertificate, host_matches};

/// A listener whose certificate cannot be used.
#[derive(Debug)]
pub(crate) struct InvalidCertificate {
    /// The listener's name.
    pub(crate) listener: String,
    /// What is wrong.
    pub(crate) reason: String,
}

/// Builds the acceptor of one port from its HTTPS listeners (at least one), offering HTTP/2
/// and HTTP/1.1. A port with a single listener serves its certificate whatever the client
/// asks for, as do clients that send no server name to the listener without a host name.
pub(crate) fn acceptor(listeners: &[&Listener]) -> Result<TlsAcceptor, InvalidCertificate> {
    let builder = ServerConfig::builder().with_no_client_auth();
    let provider = builder.crypto_provider().clone();
    let mut certificates = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let Some(certificate) = &listener.tls else {
            continue;
        };
        let key = certified_key(certificate, &provider).map_err(|reason| InvalidCertificate {
            listener: listener.name.clone(),
            reason,
        })?;
        certificates.push((listener.hostname.clone(), Arc::new(key)));
    }
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver::new(certificates)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads a PEM chain and key, and checks that they belong together.
fn certified_key(
    certificate: &TlsCertificate,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(certificate.certificate_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate chain holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.private_key_pem.expose().as_bytes())
        .map_err(|e| format!("invalid private key: {e}"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))
}

/// The certificates of one port, by the host name of their listener.
#[derive(Debug)]
struct SniResolver {
    /// Listeners with a host name, most specific first: exact names, then wildcards with
    /// the longest suffix first.
    named: Vec<(String, Arc<CertifiedKey>)>,
    /// What a client gets whose server name matches no host name, or that sends none.
    fallback: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn new(certificates: Vec<(Option<String>, Arc<CertifiedKey>)>) -> Self {
        let single = match certificates.as_slice() {
            [(_, only)] => Some(only.clone()),
            _ => None,
        };
        let mut fallback = None;
        let mut named = Vec::with_capacity(certificates.len());
        for (hostname, key) in certificates {
            match hostname {
                Some(hostname) => named.push((hostname, key)),
                None => fallback = Some(key),
            }
        }
        named.sort_by_key(|(hostname, _)| std::cmp::Reverse(specificity(hostname)));
        Self {
            named,
            fallback: fallback.or(single),
        }
    }

    /// The certificate for a server name, or for a client that sent none.
    fn certificate_for(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        server_name
            .and_then(|name| {
                self.named
                    .iter()
                    .find(|(pattern, _)| host_matches(pattern, name))
            })
            .map(|(_, key)| key.clone())
            .or_else(|| self.fallback.clone())
    }
}

/// How specific a listener host name is: any exact name beats any wildcard, and a longer
/// wildcard suffix beats a shorter one (`*.a.example.com` before `*.example.com`).
fn specificity(hostname: &str) -> (bool, usize) {
    (!hostname.starts_with('*'), hostname.len())
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(client_hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::sign::SigningKey;

    /// A signing key that is never used: the tests only look at which one is chosen.
    #[derive(Debug)]
    struct Unused;

    impl SigningKey for Unused {
        fn choose_scheme(
            &self,
            _offered: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }

        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ED25519
        }
    }

    /// A certificate whose only content is `label`, to tell which one was chosen.
    fn key(label: &str) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(label.as_bytes().to_vec())],
            Arc::new(Unused),
        ))
    }

    fn chosen(resolver: &SniResolver, server_name: Option<&str>) -> Option<String> {
        resolver
            .certificate_for(server_name)
            .map(|key| String::from_utf8(key.cert[0].to_vec()).unwrap())
    }

    fn resolver(hostnames: &[Option<&str>]) -> SniResolver {
        SniResolver::new(
            hostnames
                .iter()
                .map(|h| (h.map(str::to_string), key(h.unwrap_or("default"))))
                .collect(),
        )
    }

    #[test]
    fn the_most_specific_hostname_wins() {
        let resolver = resolver(&[
            Some("*.example.com"),
            None,
            Some("a.example.com"),
            Some("*.b.example.com"),
        ]);
        let cases = [
            (Some("a.example.com"), "a.example.com"),
            (Some("A.Example.com"), "a.example.com"),
            (Some("c.example.com"), "*.example.com"),
            (Some("x.y.example.com"), "*.example.com"),
            (Some("x.b.example.com"), "*.b.example.com"),
            (Some("example.com"), "default"),
            (Some("other.test"), "default"),
            (None, "default"),
        ];
        for (server_name, expected) in cases {
            assert_eq!(
                chosen(&resolver, server_name).as_deref(),
                Some(expected),
                "{server_name:?}"
            );
        }
    }

    #[test]
    fn without_a_listener_for_any_host_unknown_names_get_no_certificate() {
        let resolver = resolver(&[Some("a.example.test"), Some("b.example.test")]);
        assert_eq!(
            chosen(&resolver, Some("b.example.test")).as_deref(),
            Some("b.example.test")
        );
        assert_eq!(chosen(&resolver, Some("c.example.test")), None);
        assert_eq!(chosen(&resolver, None), None);
    }

    #[test]
    fn a_single_listener_serves_every_name() {
        let resolver = resolver(&[Some("a.example.test")]);
        for server_name in [Some("a.example.test"), Some("other.test"), None] {
            assert_eq!(
                chosen(&resolver, server_name).as_deref(),
                Some("a.example.test"),
                "{server_name:?}"
            );
        }
    }
}
