//! Mutual TLS settings from PEM: the server presents its certificate and requires a client
//! certificate signed by the client CA; the client trusts only its CA and presents its own
//! certificate. Both offer only ALPN `h2`.

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

use crate::PushError;

/// Certificate and key files are small; anything larger is not one.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// The server's settings from PEM files: its certificate chain, its private key, and the CA
/// bundle that client certificates must chain to.
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, PushError> {
    let chain = certificates(&read(cert)?, &describe("the certificate", cert))?;
    let key = private_key(&read(key)?, &describe("the private key", key))?;
    let roots = roots(&read(client_ca)?, &describe("the client CA", client_ca))?;
    build_server(chain, key, roots)
}

/// The server's settings from PEM text (see [`server_config_from_files`]).
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<ServerConfig>, PushError> {
    build_server(
        certificates(cert_pem, "the certificate")?,
        private_key(key_pem, "the private key")?,
        roots(client_ca_pem, "the client CA")?,
    )
}

/// The client's settings from PEM files: the CA bundle the server's certificate must chain
/// to, and the client's own certificate chain and private key.
pub fn client_config_from_files(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, PushError> {
    let roots = roots(&read(ca)?, &describe("the CA", ca))?;
    let chain = certificates(&read(cert)?, &describe("the certificate", cert))?;
    let key = private_key(&read(key)?, &describe("the private key", key))?;
    build_client(roots, chain, key)
}

/// The client's settings from PEM text (see [`client_config_from_files`]).
pub fn client_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ClientConfig>, PushError> {
    build_client(
        roots(ca_pem, "the CA")?,
        certificates(cert_pem, "the certificate")?,
        private_key(key_pem, "the private key")?,
    )
}

fn build_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: RootCertStore,
) -> Result<Arc<ServerConfig>, PushError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| PushError::Pem {
            what: "the client CA".into(),
            reason: e.to_string(),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn build_client(
    roots: RootCertStore,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>, PushError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn describe(what: &str, path: &Path) -> String {
    format!("{what} {}", path.display())
}

fn read(path: &Path) -> Result<Vec<u8>, PushError> {
    let read_error = |source| PushError::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_PEM_FILE_BYTES {
        return Err(PushError::Pem {
            what: describe("the file", path),
            reason: format!("{size} bytes is too large for PEM certificates or keys"),
        });
    }
    std::fs::read(path).map_err(read_error)
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, PushError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PushError::Pem {
            what: what.into(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(PushError::Pem {
            what: what.into(),
            reason: "holds no PEM CERTIFICATE block".into(),
        });
    }
    Ok(chain)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, PushError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| PushError::Pem {
        what: what.into(),
        reason: format!("holds no usable private key ({e})"),
    })
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, PushError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(pem, what)? {
        roots.add(certificate).map_err(|e| PushError::Pem {
            what: what.into(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_what_is_wrong() {
        let error = server_config(b"", b"", b"").unwrap_err().to_string();
        assert_eq!(error, "the certificate: holds no PEM CERTIFICATE block");
        let missing = Path::new("/nonexistent/ca.crt");
        let error = client_config_from_files(missing, missing, missing)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot read /nonexistent/ca.crt:"),
            "{error}"
        );
    }
}
