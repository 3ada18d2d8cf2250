//! The TLS client configuration: the CA roots, an optional client certificate, and the name
//! node certificates are verified against (each node's IP address, or `database.tls.server_name`).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::StoreError;
use crate::config::TlsConfig;

/// The rustls configuration `[database.tls]` describes. The driver names each node by its IP
/// address; with `server_name` set, certificates are verified against that name instead (the
/// chain is checked against the CA either way).
pub(super) fn tls_context(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, StoreError> {
    let roots = Arc::new(ca_roots(tls)?);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?;
    let builder = match tls.verified_name() {
        None => builder.with_root_certificates(roots),
        Some(name) => {
            let verifier = NamedVerifier::new(roots, provider, name)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| tls_err("cannot read client certificate", cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err("bad PEM in client certificate", cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_err("cannot read client key", key, &e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| tls_err("client certificate/key rejected", cert, &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn tls_err(what: &str, path: &Path, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Tls(format!("{what} {}: {e}", path.display()))
}

/// The CA certificates of `ca_file`.
fn ca_roots(tls: &TlsConfig) -> Result<rustls::RootCertStore, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = tls
        .ca_file
        .as_deref()
        .ok_or_else(|| StoreError::Tls("database.tls.ca_file is required with TLS".into()))?;
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| tls_err("cannot read CA file", ca, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err("bad PEM in CA file", ca, &e))?;
    if certs.is_empty() {
        return Err(StoreError::Tls(format!(
            "no certificate in CA file {}",
            ca.display()
        )));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| tls_err("unusable CA certificate in", ca, &e))?;
    }
    Ok(roots)
}

/// rustls' own WebPKI verification, with the configured name in place of the node's address.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl NamedVerifier {
    fn new(
        roots: Arc<rustls::RootCertStore>,
        provider: Arc<CryptoProvider>,
        name: ServerName<'static>,
    ) -> Result<Self, StoreError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| StoreError::Tls(format!("cannot build the certificate verifier: {e}")))?;
        Ok(Self { inner, name })
    }
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _node_address: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
