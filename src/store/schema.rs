//! The CQL schema (keyspace, bars table, load-history table), created idempotently.

use scylla::client::session::Session;

use super::StoreError;
use crate::config::{Database, ReplicationConfig};

/// Names and options of everything the schema creates. Built from `[database]`; tests give each
/// run its own keyspace.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Keyspace holding both tables.
    pub keyspace: String,
    /// One-minute bars, `PRIMARY KEY ((symbol, bucket), ts)`.
    pub bars_table: String,
    /// One row per loaded file content.
    pub history_table: String,
    /// Replication used when creating the keyspace.
    pub replication: ReplicationConfig,
    /// Extra `WITH` options for the bars table.
    pub bars_table_options: String,
}

impl Schema {
    /// The schema described by `[database]` (names already validated as plain identifiers).
    pub fn from_config(db: &Database) -> Self {
        Self {
            keyspace: db.keyspace.clone(),
            bars_table: db.bars_table.clone(),
            history_table: db.history_table.clone(),
            replication: db.replication.clone(),
            bars_table_options: db.bars_table_options.clone(),
        }
    }

    /// `keyspace.bars_table`.
    pub fn bars(&self) -> String {
        format!("{}.{}", self.keyspace, self.bars_table)
    }

    /// `keyspace.history_table`.
    pub fn history(&self) -> String {
        format!("{}.{}", self.keyspace, self.history_table)
    }

    /// The replication map as CQL.
    fn replication_cql(&self) -> String {
        let r = &self.replication;
        if r.class == "NetworkTopologyStrategy" {
            let dcs: Vec<String> = r
                .datacenters
                .iter()
                .map(|(dc, n)| format!("'{dc}': {n}"))
                .collect();
            format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
        } else {
            format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                r.factor
            )
        }
    }

    /// Every DDL statement, in order. All are `IF NOT EXISTS`, so running them again is harmless.
    pub fn statements(&self) -> Vec<String> {
        let extra = if self.bars_table_options.trim().is_empty() {
            String::new()
        } else {
            format!(" AND {}", self.bars_table_options.trim())
        };
        vec![
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
                self.keyspace,
                self.replication_cql()
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 symbol text, bucket text, ts timestamp, \
                 open double, high double, low double, close double, volume bigint, \
                 PRIMARY KEY ((symbol, bucket), ts)\
                 ) WITH CLUSTERING ORDER BY (ts ASC){extra}",
                self.bars()
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\
                 fingerprint text PRIMARY KEY, \
                 file_name text, symbol text, size_bytes bigint, \
                 rows_in bigint, rows_written bigint, rows_rejected bigint, \
                 months set<text>, first_bar timestamp, last_bar timestamp, \
                 outcome text, error text, instance text, write_timestamp bigint, \
                 started_at timestamp, finished_at timestamp)",
                self.history()
            ),
        ]
    }
}

/// Creates the keyspace and tables if missing and waits for schema agreement.
pub async fn init_schema(session: &Session, schema: &Schema) -> Result<(), StoreError> {
    for statement in schema.statements() {
        session
            .query_unpaged(statement.as_str(), ())
            .await
            .map_err(|source| StoreError::Schema {
                statement: statement.clone(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}
