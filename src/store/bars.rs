//! Prepared statements on the bars table: the idempotent insert and the typed partition read.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{Schema, StoreError, prepare_idempotent};
use crate::model::{Bar, Symbol};

/// The bars table's prepared statements, prepared once per session.
#[derive(Debug, Clone)]
pub struct BarStatements {
    /// `INSERT` of one bar; an upsert, so marked idempotent and safe to retry.
    pub insert: PreparedStatement,
    /// Range tombstone over `[from, to)` of one partition at a given write timestamp: after a
    /// file's rows are written at T, deleting its covered range at T-1 removes every older row
    /// and none of the new ones (replace, not merge, with no moment of an empty month).
    pub delete_range: PreparedStatement,
}

/// One row of `SELECT ts, open, high, low, close, volume`, matched by column name.
#[derive(Debug, Clone, Copy, scylla::DeserializeRow)]
pub struct BarRow {
    pub ts: CqlTimestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
}

impl From<BarRow> for Bar {
    fn from(r: BarRow) -> Self {
        Bar {
            ts_millis: r.ts.0,
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            volume: r.volume,
        }
    }
}

/// The bound values of [`BarStatements::insert`], in column order.
pub(crate) type InsertValues<'a> = (&'a str, &'a str, CqlTimestamp, f64, f64, f64, f64, i64);

impl BarStatements {
    /// Prepares the statements against `schema`'s bars table.
    pub async fn prepare(session: &Session, schema: &Schema) -> Result<Self, StoreError> {
        let bars = schema.bars();
        let insert = prepare_idempotent(
            session,
            &format!(
                "INSERT INTO {bars} (symbol, bucket, ts, open, high, low, close, volume) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        )
        .await?;
        let delete_range = prepare_idempotent(
            session,
            &format!(
                "DELETE FROM {bars} USING TIMESTAMP ? \
                 WHERE symbol = ? AND bucket = ? AND ts >= ? AND ts < ?"
            ),
        )
        .await?;
        Ok(Self {
            insert,
            delete_range,
        })
    }

    /// The values that insert `bar` for `symbol` into `bucket` (its `YYYY-MM` text).
    pub fn insert_values<'a>(symbol: &'a Symbol, bucket: &'a str, bar: &Bar) -> InsertValues<'a> {
        (
            symbol.as_str(),
            bucket,
            CqlTimestamp(bar.ts_millis),
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
        )
    }
}
