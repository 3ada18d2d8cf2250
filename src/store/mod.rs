//! The database side: connecting to the cluster, the schema, and the prepared statements.

mod bars;
pub mod retry;
mod schema;
mod session;

pub use bars::{BarRow, BarStatements};
pub use schema::{Schema, init_schema};
pub use session::connect;

use scylla::client::session::Session;
use scylla::errors::{ExecutionError, NewSessionError, PrepareError};
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
    /// No session could be opened to any contact point.
    #[error(
        "cannot connect to the database at {points}: {source}\n\
         (is the cluster up and reachable? for the local dev node run `./scripts/dev-db start`)"
    )]
    Connect {
        points: String,
        source: Box<NewSessionError>,
    },
    /// TLS material could not be loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
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
