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

/// One history row as a `SELECT *` returns it, matched by column name (the struct names every
/// column, so a column added to the table must be added here too). Every column but the key may
/// be null, e.g. in a row written by hand. The product never reads whole rows; this is the read
/// side for tests and tools, kept next to the write side so that both change together.
#[derive(Debug, Clone, scylla::DeserializeRow)]
pub struct StoredHistoryRow {
    pub fingerprint: String,
    pub file_name: Option<String>,
    pub symbol: Option<String>,
    pub size_bytes: Option<i64>,
    pub rows_in: Option<i64>,
    pub rows_written: Option<i64>,
    pub rows_rejected: Option<i64>,
    pub months: Option<BTreeSet<String>>,
    pub first_bar: Option<CqlTimestamp>,
    pub last_bar: Option<CqlTimestamp>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub instance: Option<String>,
    pub write_timestamp: Option<i64>,
    pub started_at: Option<CqlTimestamp>,
    pub finished_at: Option<CqlTimestamp>,
}

impl From<StoredHistoryRow> for HistoryRecord {
    /// Null columns become empty or zero; a missing or unknown outcome reads as `Failed`.
    fn from(r: StoredHistoryRow) -> Self {
        Self {
            fingerprint: r.fingerprint,
            file_name: r.file_name.unwrap_or_default(),
            symbol: r.symbol.unwrap_or_default(),
            size_bytes: r.size_bytes.unwrap_or_default(),
            rows_in: r.rows_in.unwrap_or_default(),
            rows_written: r.rows_written.unwrap_or_default(),
            rows_rejected: r.rows_rejected.unwrap_or_default(),
            months: r.months.unwrap_or_default(),
            first_bar: r.first_bar.map(|t| t.0),
            last_bar: r.last_bar.map(|t| t.0),
            outcome: r
                .outcome
                .as_deref()
                .and_then(Outcome::parse)
                .unwrap_or(Outcome::Failed),
            error: r.error,
            instance: r.instance.unwrap_or_default(),
            write_timestamp: r.write_timestamp.unwrap_or_default(),
            started_at: r.started_at.map(|t| t.0).unwrap_or_default(),
            finished_at: r.finished_at.map(|t| t.0),
        }
    }
}

/// What the history knows of a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    pub outcome: Outcome,
    pub write_timestamp: i64,
}

/// Prepared statements on the history table.
#[derive(Debug, Clone)]
pub(crate) struct History {
    lookup: PreparedStatement,
    upsert: PreparedStatement,
}

const COLUMNS: &str = "fingerprint, file_name, symbol, size_bytes, rows_in, rows_written, \
    rows_rejected, months, first_bar, last_bar, outcome, error, instance, write_timestamp, \
    started_at, finished_at";

impl History {
    pub async fn prepare(session: &Session, schema: &Schema) -> Result<Self, StoreError> {
        let table = schema.history();
        Ok(Self {
            lookup: prepare_idempotent(
                session,
                &format!(
                    "SELECT outcome, write_timestamp FROM {table} \
                     WHERE fingerprint = ? AND symbol = ?"
                ),
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
        })
    }

    /// The recorded outcome and write timestamp of a delivery identity (content fingerprint
    /// and symbol), if any.
    pub(crate) async fn lookup(
        &self,
        session: &Session,
        fingerprint: &str,
        symbol: &str,
    ) -> Result<Option<Known>, HistoryError> {
        let result = session
            .execute_unpaged(&self.lookup, (fingerprint, symbol))
            .await
            .map_err(|e| HistoryError::Db(Box::new(e)))?;
        let rows = result.into_rows_result().map_err(bad_result)?;
        let row = rows
            .maybe_first_row::<(Option<String>, Option<i64>)>()
            .map_err(bad_result)?;
        Ok(row.and_then(|(outcome, ts)| {
            Some(Known {
                outcome: Outcome::parse(outcome.as_deref()?)?,
                write_timestamp: ts?,
            })
        }))
    }

    /// Writes (replaces) the row of `record`'s identity (fingerprint and symbol).
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
}

/// A load-history request that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    #[error(transparent)]
    Db(#[from] Box<ExecutionError>),
    /// The result does not have the shape the statement promises (schema changed under us).
    #[error("unexpected load-history result (was the table changed?)")]
    Shape(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Classify for HistoryError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Db(e) => e.as_ref().disposition(),
            Self::Shape(_) => Disposition::Permanent,
        }
    }
}

fn bad_result(e: impl std::error::Error + Send + Sync + 'static) -> HistoryError {
    HistoryError::Shape(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in [
            Outcome::Loading,
            Outcome::Loaded,
            Outcome::Quarantined,
            Outcome::Failed,
            Outcome::Empty,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("done"), None);
    }

    #[test]
    fn stored_row_with_null_columns_reads_as_an_empty_failed_record() {
        let row = StoredHistoryRow {
            fingerprint: "ab12".into(),
            file_name: None,
            symbol: None,
            size_bytes: None,
            rows_in: None,
            rows_written: None,
            rows_rejected: None,
            months: None,
            first_bar: None,
            last_bar: None,
            outcome: Some("no-such-outcome".into()),
            error: None,
            instance: None,
            write_timestamp: None,
            started_at: None,
            finished_at: None,
        };
        let record = HistoryRecord::from(row);
        assert_eq!(record.fingerprint, "ab12");
        assert_eq!(record.outcome, Outcome::Failed);
        assert!(record.months.is_empty() && record.file_name.is_empty());
        assert_eq!((record.rows_in, record.started_at), (0, 0));
        assert_eq!((record.first_bar, record.finished_at), (None, None));
    }

    #[test]
    fn stored_row_converts_every_column() {
        let row = StoredHistoryRow {
            fingerprint: "cd34".into(),
            file_name: Some("AAPL_full_1min.txt".into()),
            symbol: Some("AAPL".into()),
            size_bytes: Some(1234),
            rows_in: Some(10),
            rows_written: Some(9),
            rows_rejected: Some(1),
            months: Some(["2024-01".to_owned(), "2024-02".to_owned()].into()),
            first_bar: Some(CqlTimestamp(1_000)),
            last_bar: Some(CqlTimestamp(2_000)),
            outcome: Some("loaded".into()),
            error: Some("one bad line".into()),
            instance: Some("host-a".into()),
            write_timestamp: Some(42),
            started_at: Some(CqlTimestamp(3_000)),
            finished_at: Some(CqlTimestamp(4_000)),
        };
        let expected = HistoryRecord {
            fingerprint: "cd34".into(),
            file_name: "AAPL_full_1min.txt".into(),
            symbol: "AAPL".into(),
            size_bytes: 1234,
            rows_in: 10,
            rows_written: 9,
            rows_rejected: 1,
            months: ["2024-01".to_owned(), "2024-02".to_owned()].into(),
            first_bar: Some(1_000),
            last_bar: Some(2_000),
            outcome: Outcome::Loaded,
            error: Some("one bad line".into()),
            instance: "host-a".into(),
            write_timestamp: 42,
            started_at: 3_000,
            finished_at: Some(4_000),
        };
        assert_eq!(HistoryRecord::from(row), expected);
    }
}
