//! Opens a driver session from the settings: contact points, DC preference, consistency,
//! timeouts, authentication and TLS; a refusal is reported as what it is (credentials, TLS,
//! permissions), apart from an unreachable cluster.

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::NewSessionError;
use scylla::policies::load_balancing::DefaultPolicy;

use super::retry::{ConnectFailure, TlsFailure, classify_connect};
use super::tls::tls_context;
use super::{StoreError, who};
use crate::config::{Database, Settings};

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
        .retry_policy(std::sync::Arc::new(super::retry_policy::ReportUnavailable))
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
    let session = builder
        .build()
        .await
        .map_err(|source| connect_error(db, source))?;
    check_datacenter(db, &session)?;
    Ok(session)
}

/// A `local_datacenter` must be one the cluster has: with a typo, no node is ever chosen and
/// every request fails with the driver's "empty plan".
fn check_datacenter(db: &Database, session: &Session) -> Result<(), StoreError> {
    if db.local_datacenter.is_empty() {
        return Ok(());
    }
    let state = session.get_cluster_state();
    let known: std::collections::BTreeSet<String> = state
        .get_nodes_info()
        .iter()
        .filter_map(|n| n.datacenter.clone())
        .collect();
    if known.is_empty() || known.contains(&db.local_datacenter) {
        return Ok(());
    }
    Err(StoreError::UnknownDatacenter {
        named: db.local_datacenter.clone(),
        points: db.contact_points.join(", "),
        known: known.into_iter().collect::<Vec<_>>().join(", "),
    })
}

/// A failed session as an outage or as the configuration error it is.
fn connect_error(db: &Database, source: NewSessionError) -> StoreError {
    let points = db.contact_points.join(", ");
    match classify_connect(&source) {
        ConnectFailure::Unreachable => StoreError::Connect {
            points,
            source: Box::new(source),
        },
        ConnectFailure::Authentication(said) => StoreError::Authentication {
            points,
            who: who(db.user()),
            said,
        },
        ConnectFailure::Tls(failure) => StoreError::TlsHandshake {
            points,
            hint: tls_hint(db, &failure),
            detail: failure.detail,
        },
        ConnectFailure::Unauthorized(said) => StoreError::Unauthorized {
            who: who(db.user()),
            doing: format!("connect to {points}"),
            said,
            hint: "the role needs LOGIN = true".into(),
        },
    }
}

/// What to check after a failed handshake.
fn tls_hint(db: &Database, failure: &TlsFailure) -> String {
    let tls = &db.tls;
    let ca = tls
        .ca_file
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if failure.unknown_issuer {
        return format!(
            "the node's certificate is not signed by a CA of database.tls.ca_file ({ca}): give \
             the CA that signed the nodes' certificates"
        );
    }
    if failure.name_mismatch {
        return match &tls.server_name {
            Some(name) => {
                format!("the node's certificate does not name `{name}` (database.tls.server_name)")
            }
            None => "the driver checks each node's certificate against the IP address it \
                     connects to: the certificate needs that address as an IP subjectAltName, \
                     or set database.tls.server_name to a DNS name the certificate carries"
                .into(),
        };
    }
    format!(
        "check that the cluster's client encryption is on for these addresses and that \
         database.tls (CA {ca}) matches it"
    )
}
