//! The progress table `migrate_progress`: one row per partition converted and verified in full,
//! keyed by the day table it was converted into, so a re-run skips what is done.

use std::collections::HashSet;

use futures_util::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{MigrateError, MigrateOptions, Partition};
use crate::model::{Bucket, Symbol};
use crate::store::{Schema, StoreError, prepare_idempotent};

/// The progress table's name (in the keyspace of the bars).
pub const PROGRESS_TABLE: &str = "migrate_progress";

/// The progress table's prepared statements, and the day table they are about.
pub(crate) struct Progress {
    days_table: String,
    select: PreparedStatement,
    insert: PreparedStatement,
    delete: PreparedStatement,
}

/// The DDL of the progress table in `keyspace`.
pub fn create_statement(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{PROGRESS_TABLE} (days_table text, symbol text, \
         bucket text, done_at timestamp, bars bigint, PRIMARY KEY ((days_table), symbol, bucket))"
    )
}

impl Progress {
    /// Creates the table if it is missing (when `manage_schema` allows) and prepares the
    /// statements.
    pub async fn open(
        session: &Session,
        schema: &Schema,
        manage_schema: bool,
    ) -> Result<Self, MigrateError> {
        let table = format!("{}.{PROGRESS_TABLE}", schema.keyspace);
        if !exists(session, &schema.keyspace).await? {
            let ddl = create_statement(&schema.keyspace);
            if !manage_schema {
                return Err(StoreError::SchemaMissing {
                    problems: format!("  - table {table} is missing"),
                    cql: format!("  {ddl};\n"),
                }
                .into());
            }
            session
                .query_unpaged(ddl.as_str(), ())
                .await
                .map_err(|e| MigrateError::query(format!("creating {table}"), e))?;
        }
        let cql = |s: String| s.replace("{t}", &table);
        Ok(Self {
            days_table: schema.days_table.clone(),
            select: prepare_idempotent(
                session,
                &cql("SELECT symbol, bucket FROM {t} WHERE days_table = ?".into()),
            )
            .await?,
            insert: prepare_idempotent(
                session,
                &cql(
                    "INSERT INTO {t} (days_table, symbol, bucket, done_at, bars) \
                      VALUES (?, ?, ?, ?, ?)"
                        .into(),
                ),
            )
            .await?,
            delete: prepare_idempotent(
                session,
                &cql("DELETE FROM {t} WHERE days_table = ? AND symbol = ? AND bucket = ?".into()),
            )
            .await?,
        })
    }

    /// The partitions of `selected` to run: those not recorded as done, or all of them with
    /// `restart` (whose records are deleted first, so an interrupted restart resumes where it
    /// stopped).
    pub async fn to_do(
        &self,
        session: &Session,
        selected: Vec<Partition>,
        options: &MigrateOptions,
    ) -> Result<Vec<Partition>, MigrateError> {
        if options.restart {
            self.forget(session, &selected, options.concurrency).await?;
            return Ok(selected);
        }
        let done = self.done(session).await?;
        Ok(selected.into_iter().filter(|p| !done.contains(p)).collect())
    }

    /// Records `partition` as converted and verified, with its bar count.
    pub async fn mark_done(
        &self,
        session: &Session,
        partition: &Partition,
        bars: u64,
    ) -> Result<(), MigrateError> {
        let now = CqlTimestamp(chrono::Utc::now().timestamp_millis());
        let bucket = partition.bucket.to_string();
        let values = (
            self.days_table.as_str(),
            partition.symbol.as_str(),
            bucket.as_str(),
            now,
            bars as i64,
        );
        session
            .execute_unpaged(&self.insert, values)
            .await
            .map_err(|e| MigrateError::query(format!("recording {partition} as done"), e))?;
        Ok(())
    }

    /// Every partition recorded as done for this day table.
    async fn done(&self, session: &Session) -> Result<HashSet<Partition>, MigrateError> {
        let doing = || format!("reading {PROGRESS_TABLE}");
        let mut rows = session
            .execute_iter(self.select.clone(), (self.days_table.as_str(),))
            .await
            .map_err(|e| MigrateError::query(doing(), e))?
            .rows_stream::<(String, String)>()
            .map_err(|e| MigrateError::query(doing(), e))?;
        let mut done = HashSet::new();
        while let Some((symbol, bucket)) = rows
            .try_next()
            .await
            .map_err(|e| MigrateError::query(doing(), e))?
        {
            if let (Some(symbol), Some(bucket)) = (Symbol::new(&symbol), Bucket::parse(&bucket)) {
                done.insert(Partition { symbol, bucket });
            }
        }
        Ok(done)
    }

    /// Deletes the records of `partitions`, `concurrency` at a time.
    async fn forget(
        &self,
        session: &Session,
        partitions: &[Partition],
        concurrency: usize,
    ) -> Result<(), MigrateError> {
        futures_util::stream::iter(partitions)
            .map(|p| async move {
                let bucket = p.bucket.to_string();
                let key = (self.days_table.as_str(), p.symbol.as_str(), bucket.as_str());
                session
                    .execute_unpaged(&self.delete, key)
                    .await
                    .map_err(|e| MigrateError::query(format!("forgetting {p}"), e))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

/// Whether the progress table exists in `keyspace`.
async fn exists(session: &Session, keyspace: &str) -> Result<bool, MigrateError> {
    let cql = "SELECT table_name FROM system_schema.tables \
               WHERE keyspace_name = ? AND table_name = ?";
    let rows = session
        .query_unpaged(cql, (keyspace, PROGRESS_TABLE))
        .await
        .map_err(|e| MigrateError::query("reading system_schema.tables", e))?
        .into_rows_result()
        .map_err(|e| MigrateError::query("reading system_schema.tables", e))?;
    Ok(rows.rows_num() > 0)
}
