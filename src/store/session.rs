//! Opens a driver session from the settings: contact points, DC preference, consistency,
//! timeouts, authentication and TLS.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;

use super::StoreError;
use crate::config::{Settings, TlsConfig};

/// Connects to the cluster. Token-aware routing is the driver's default; `local_datacenter`
/// makes it prefer that DC's nodes.
pub async fn connect(settings: &Settings) -> Result<Session, StoreError> {
    let db = &settings.database;
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if !db.local_datacenter.is_empty() {
        policy = policy.prefer_datacenter(db.local_datacenter.clone());
    }
    let profile = ExecutionProfile::builder()
        .consistency(settings.database.consistency)
        .request_timeout(Some(db.request_timeout))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&settings.database.contact_points)
        .connection_timeout(db.connect_timeout)
        .default_execution_profile_handle(profile.into_handle());
    if let Some((user, password)) = &db.credentials {
        if !db.tls.enabled {
            tracing::warn!(
                "a password is sent to the cluster without TLS (set database.tls.enabled); \
                 anyone on the network path can read it"
            );
        }
        builder = builder.user(user.clone(), password.expose());
    }
    if db.tls.enabled {
        builder = builder.tls_context(Some(tls_context(&db.tls)?));
    }
    builder.build().await.map_err(|source| StoreError::Connect {
        points: settings.database.contact_points.join(", "),
        source: Box::new(source),
    })
}

fn tls_context(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, StoreError> {
    let err = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        StoreError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca = tls
        .ca_file
        .as_deref()
        .ok_or_else(|| StoreError::Tls("database.tls.ca_file is required with TLS".into()))?;
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| err("cannot read CA file", ca, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("bad PEM in CA file", ca, &e))?;
    if certs.is_empty() {
        return Err(StoreError::Tls(format!(
            "no certificate in CA file {}",
            ca.display()
        )));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| err("unusable CA certificate in", ca, &e))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| err("cannot read client certificate", cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err("bad PEM in client certificate", cert, &e))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| err("cannot read client key", key, &e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| err("client certificate/key rejected", cert, &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
