//! TLS termination for HTTPS listeners.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tollgate_config::TlsCertificate;

/// Builds an acceptor that offers HTTP/2 and HTTP/1.1 with the given certificate.
pub(crate) fn acceptor(certificate: &TlsCertificate) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_slice_iter(certificate.certificate_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate chain holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.private_key_pem.expose().as_bytes())
        .map_err(|e| format!("invalid private key: {e}"))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
