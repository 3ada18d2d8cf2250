//! The load history: one row per file content fingerprint, shared by every instance, telling
//! whether that content was loaded, with what counts, and at which write timestamp.

use std::collections::BTreeSet;

use scylla::client::session::Session;
use scylla::errors::ExecutionError;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use crate::store::retry::{Classify, Disposition};
use crate::store::{Schema, StoreError, prepare_idempotent};

/// What happened to a file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Being loaded now (or the loader crashed: a restart resumes it with the same timestamp).
    Loading,
    /// Every good row written and older rows of its range replaced.
    Loaded,
    /// Too many rejected rows: nothing written, the file is in failed/.
    Quarantined,
    /// A permanent database error: the file is in failed/ with a sidecar.
    Failed,
    /// No data lines at all.
    Empty,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Loaded => "loaded",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
            Self::Empty => "empty",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "loading" => Self::Loading,
            "loaded" => Self::Loaded,
            "quarantined" => Self::Quarantined,
            "failed" => Self::Failed,
            "empty" => Self::Empty,
            _ => return None,
        })
    }
}

/// One row of the load history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    /// BLAKE3 of the whole file content, hex.
    pub fingerprint: String,
    pub file_name: String,
    pub symbol: String,
    pub size_bytes: i64,
    /// Data lines in the file (trailing blank lines are not lines).
    pub rows_in: i64,
    pub rows_written: i64,
    pub rows_rejected: i64,
    /// Month buckets the file touched, `YYYY-MM`.
    pub months: BTreeSet<String>,
    pub first_bar: Option<i64>,
    pub last_bar: Option<i64>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub instance: String,
    /// Client timestamp (µs) of every write of this content: resuming reuses it.
    pub write_timestamp: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// The bound values of the upsert, by column name.
#[derive(scylla::SerializeRow)]
struct HistoryRow<'a> {
    fingerprint: &'a str,
    file_name: &'a str,
    symbol: &'a str,
    size_bytes: i64,
    rows_in: i64,
    rows_written: i64,
    rows_rejected: i64,
    months: Vec<&'a str>,
    first_bar: Option<CqlTimestamp>,
    last_bar: Option<CqlTimestamp>,
    outcome: &'a str,
    error: Option<&'a str>,
    instance: &'a str,
    write_timestamp: i64,
    started_at: CqlTimestamp,
    finished_at: Option<CqlTimestamp>,
}

/// What the history knows of a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub outcome: Outcome,
    pub write_timestamp: i64,
}

/// Prepared statements on the history table.
#[derive(Debug, Clone)]
pub struct History {
    lookup: PreparedStatement,
    upsert: PreparedStatement,
    select_all: PreparedStatement,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Vec<String>>,
    Option<CqlTimestamp>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<CqlTimestamp>,
    Option<CqlTimestamp>,
);

const COLUMNS: &str = "fingerprint, file_name, symbol, size_bytes, rows_in, rows_written, \
    rows_rejected, months, first_bar, last_bar, outcome, error, instance, write_timestamp, \
    started_at, finished_at";

impl History {
    pub async fn prepare(session: &Session, schema: &Schema) -> Result<Self, StoreError> {
        let table = schema.history();
        Ok(Self {
            lookup: prepare_idempotent(
                session,
                &format!("SELECT outcome, write_timestamp FROM {table} WHERE fingerprint = ?"),
            )
            .await?,
            upsert: prepare_idempotent(
                session,
                &format!(
                    "INSERT INTO {table} ({COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
            )
            .await?,
            select_all: prepare_idempotent(session, &format!("SELECT {COLUMNS} FROM {table}"))
                .await?,
        })
    }

    /// The recorded outcome and write timestamp of a fingerprint, if any.
    pub async fn lookup(
        &self,
        session: &Session,
        fingerprint: &str,
    ) -> Result<Option<Known>, HistoryError> {
        let result = session
            .execute_unpaged(&self.lookup, (fingerprint,))
            .await
            .map_err(|e| HistoryError::Db(Box::new(e)))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| bad_result(e.to_string()))?;
        let row = rows
            .maybe_first_row::<(Option<String>, Option<i64>)>()
            .map_err(|e| bad_result(e.to_string()))?;
        Ok(row.and_then(|(outcome, ts)| {
            Some(Known {
                outcome: Outcome::parse(outcome.as_deref()?)?,
                write_timestamp: ts?,
            })
        }))
    }

    /// Writes (replaces) the row of `record.fingerprint`.
    pub async fn record(
        &self,
        session: &Session,
        record: &HistoryRecord,
    ) -> Result<(), ExecutionError> {
        let r = record;
        let row = HistoryRow {
            fingerprint: &r.fingerprint,
            file_name: &r.file_name,
            symbol: &r.symbol,
            size_bytes: r.size_bytes,
            rows_in: r.rows_in,
            rows_written: r.rows_written,
            rows_rejected: r.rows_rejected,
            months: r.months.iter().map(String::as_str).collect(),
            first_bar: r.first_bar.map(CqlTimestamp),
            last_bar: r.last_bar.map(CqlTimestamp),
            outcome: r.outcome.as_str(),
            error: r.error.as_deref(),
            instance: &r.instance,
            write_timestamp: r.write_timestamp,
            started_at: CqlTimestamp(r.started_at),
            finished_at: r.finished_at.map(CqlTimestamp),
        };
        session.execute_unpaged(&self.upsert, row).await.map(|_| ())
    }

    /// Every row (for tests, reconciliation and `load` summaries; the table is one row per file).
    pub async fn all(&self, session: &Session) -> Result<Vec<HistoryRecord>, HistoryError> {
        use futures_util::TryStreamExt;
        let pager = session
            .execute_iter(self.select_all.clone(), ())
            .await
            .map_err(|e| bad_result(e.to_string()))?;
        let rows: Vec<Row> = pager
            .rows_stream::<Row>()
            .map_err(|e| bad_result(e.to_string()))?
            .try_collect()
            .await
            .map_err(|e| bad_result(e.to_string()))?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}

fn from_row(r: Row) -> HistoryRecord {
    HistoryRecord {
        fingerprint: r.0,
        file_name: r.1.unwrap_or_default(),
        symbol: r.2.unwrap_or_default(),
        size_bytes: r.3.unwrap_or_default(),
        rows_in: r.4.unwrap_or_default(),
        rows_written: r.5.unwrap_or_default(),
        rows_rejected: r.6.unwrap_or_default(),
        months: r.7.unwrap_or_default().into_iter().collect(),
        first_bar: r.8.map(|t| t.0),
        last_bar: r.9.map(|t| t.0),
        outcome: r
            .10
            .as_deref()
            .and_then(Outcome::parse)
            .unwrap_or(Outcome::Failed),
        error: r.11,
        instance: r.12.unwrap_or_default(),
        write_timestamp: r.13.unwrap_or_default(),
        started_at: r.14.map(|t| t.0).unwrap_or_default(),
        finished_at: r.15.map(|t| t.0),
    }
}

/// A load-history request that failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Db(#[from] Box<ExecutionError>),
    /// The result does not have the shape the statement promises (schema changed under us).
    #[error("unexpected load-history result: {0}")]
    Shape(String),
}

impl Classify for HistoryError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Db(e) => e.as_ref().disposition(),
            Self::Shape(_) => Disposition::Permanent,
        }
    }
}

fn bad_result(message: String) -> HistoryError {
    HistoryError::Shape(message)
}
