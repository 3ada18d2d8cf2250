//! The database side: connecting to the cluster, the schema, and the prepared statements.

mod access;
mod bars;
mod columns;
mod days;
pub mod retry;
mod retry_policy;
mod schema;
mod schema_check;
mod session;
mod tls;

pub use access::{Access, check_access, check_load_access, grants};
pub use bars::{BarRow, BarStatements, StoredVolume};
pub use days::{DayInsertValues, DayRow, DayStatements, DaySummaryRow, resolve_layout};
pub use schema::{Schema, SchemaState, check_schema, ensure_schema, init_schema};
pub use schema_check::SchemaProblem;
pub use session::connect;

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError};
use scylla::statement::prepared::PreparedStatement;

/// Prepares `cql` and marks it idempotent (every statement of ours is safe to retry: upserts,
/// reads, and deletes at a fixed timestamp).
pub(crate) async fn prepare_idempotent(
    session: &Session,
    cql: &str,
) -> Result<PreparedStatement, StoreError> {
    let mut prepared = session
        .prepare(cql)
        .await
        .map_err(|source| StoreError::Prepare {
            statement: cql.to_owned(),
            source: Box::new(source),
        })?;
    prepared.set_is_idempotent(true);
    Ok(prepared)
}

/// Why talking to the database failed, with what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No session could be opened to any contact point: the cluster is down or unreachable
    /// (the only variant that is an outage, see [`StoreError::is_outage`]).
    #[error(
        "cannot connect to the database at {points}: {source}\n\
         (is the cluster up and reachable? if it requires TLS, set database.tls.enabled; for \
         the local dev node run `./scripts/dev-db start`)"
    )]
    Connect {
        points: String,
        source: Box<NewSessionError>,
    },
    /// `database.local_datacenter` names no datacenter of the cluster (a typo): every request
    /// would find no node to go to.
    #[error(
        "database.local_datacenter = `{named}` names no datacenter of the cluster at {points} \
         (its datacenters: {known}); a configuration error, not an outage: fix the name, or \
         leave it empty"
    )]
    UnknownDatacenter {
        named: String,
        points: String,
        known: String,
    },
    /// The cluster refused the credentials (or wants some).
    #[error(
        "authentication failed: the database at {points} refused {who}: {said}\n\
         (check database.username and database.password or password_file; a configuration \
         error, not an outage: not retried)"
    )]
    Authentication {
        points: String,
        who: String,
        said: String,
    },
    /// The TLS handshake failed (certificate not verified, protocol mismatch).
    #[error(
        "TLS handshake with the database at {points} failed: {detail}\n({hint}; a \
         configuration error, not an outage: not retried)"
    )]
    TlsHandshake {
        points: String,
        detail: String,
        hint: String,
    },
    /// TLS material could not be loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The role may not do something the command needs.
    #[error("permission denied: {who} may not {doing}: {said}\n({hint})")]
    Unauthorized {
        who: String,
        doing: String,
        said: String,
        hint: String,
    },
    /// The keyspace or a table is missing and `database.manage_schema` is false.
    #[error(
        "the schema is incomplete and database.manage_schema is false, so nothing was \
         created:\n{problems}\nan administrator can create it with \
         (`bar-ingest schema` prints it too):\n{cql}"
    )]
    SchemaMissing { problems: String, cql: String },
    /// The tables exist but differ from what the code reads and writes.
    #[error(
        "the schema differs from what bar-ingest reads and writes:\n{problems}\n\
         (fix or recreate the table; `bar-ingest schema` prints the expected CQL)"
    )]
    SchemaMismatch { problems: String },
    /// The schema tables could not be read.
    #[error("cannot read the cluster's schema: {source}\n  statement: {statement}")]
    SchemaRead {
        statement: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A schema statement failed.
    #[error("schema statement failed: {source}\n  statement: {statement}")]
    Schema {
        statement: String,
        source: Box<ExecutionError>,
    },
    /// A statement could not be prepared (usually: the schema is missing or differs).
    #[error("cannot prepare statement: {source}\n  statement: {statement}")]
    Prepare {
        statement: String,
        source: Box<PrepareError>,
    },
}

impl StoreError {
    /// Whether waiting can help: the cluster could not be reached. Refused credentials, a failed
    /// TLS handshake, missing permissions or schema are configuration errors.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

/// The role a refusal concerns, for messages.
pub(crate) fn who(user: Option<&str>) -> String {
    match user {
        Some(user) => format!("user `{user}`"),
        None => "a client without credentials (database.username is not set)".into(),
    }
}

/// The server's message when `err` is a permission refusal (`Unauthorized`).
pub(crate) fn unauthorized(err: &ExecutionError) -> Option<&str> {
    match err {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unauthorized,
            said,
        )) => Some(said),
        _ => None,
    }
}
