//! Prepared statements on the day-cell table: write one day's cell at a write timestamp, shadow
//! a range of days below it, read a partition's cells over a range of days; and which layout a
//! keyspace is read and written in.

use chrono::NaiveDate;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{Schema, StoreError, prepare_idempotent};
use crate::config::StorageLayout;
use crate::model::Symbol;

/// The day-cell table's prepared statements, prepared once per session.
#[derive(Debug, Clone)]
pub struct DayStatements {
    /// Upsert of one day's cell `USING TIMESTAMP ?`: bind with [`DayStatements::insert_values`].
    pub insert: PreparedStatement,
    /// Range tombstone over days `[from, to]` of one partition `USING TIMESTAMP ?`: after a
    /// delivery's cells are written at T, deleting its covered days at T-1 removes every older
    /// cell of those days (a covered day without bars included) and none of the new ones.
    /// Bind `(timestamp, symbol, bucket, from, to)`.
    pub delete_days: PreparedStatement,
    /// `SELECT day, format_version, bar_count, first_ts, last_ts, cell` of one partition over
    /// days `[from, to]`, ascending. Bind `(symbol, bucket, from, to)`; read rows as [`DayRow`].
    pub select: PreparedStatement,
    /// The same without the blob (`day, bar_count, first_ts, last_ts`), for coverage and range
    /// planning. Bind `(symbol, bucket, from, to)`; read rows as [`DaySummaryRow`].
    pub select_summary: PreparedStatement,
}

/// One row of [`DayStatements::select`].
#[derive(Debug, Clone, scylla::DeserializeRow)]
pub struct DayRow {
    pub day: NaiveDate,
    pub format_version: i32,
    pub bar_count: i32,
    pub first_ts: CqlTimestamp,
    pub last_ts: CqlTimestamp,
    pub cell: Vec<u8>,
}

/// One row of [`DayStatements::select_summary`].
#[derive(Debug, Clone, Copy, scylla::DeserializeRow)]
pub struct DaySummaryRow {
    pub day: NaiveDate,
    pub bar_count: i32,
    pub first_ts: CqlTimestamp,
    pub last_ts: CqlTimestamp,
}

/// The bound values of [`DayStatements::insert`], in order.
pub type DayInsertValues<'a> = (
    &'a str,
    &'a str,
    NaiveDate,
    i32,
    i32,
    CqlTimestamp,
    CqlTimestamp,
    &'a [u8],
    i64,
);

impl DayStatements {
    /// Prepares the statements against `schema`'s day-cell table.
    pub async fn prepare(session: &Session, schema: &Schema) -> Result<Self, StoreError> {
        let days = schema.days();
        let insert = prepare_idempotent(
            session,
            &format!(
                "INSERT INTO {days} \
                 (symbol, bucket, day, format_version, bar_count, first_ts, last_ts, cell) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ),
        )
        .await?;
        let delete_days = prepare_idempotent(
            session,
            &format!(
                "DELETE FROM {days} USING TIMESTAMP ? \
                 WHERE symbol = ? AND bucket = ? AND day >= ? AND day <= ?"
            ),
        )
        .await?;
        let select = prepare_idempotent(
            session,
            &format!(
                "SELECT day, format_version, bar_count, first_ts, last_ts, cell FROM {days} \
                 WHERE symbol = ? AND bucket = ? AND day >= ? AND day <= ?"
            ),
        )
        .await?;
        let select_summary = prepare_idempotent(
            session,
            &format!(
                "SELECT day, bar_count, first_ts, last_ts FROM {days} \
                 WHERE symbol = ? AND bucket = ? AND day >= ? AND day <= ?"
            ),
        )
        .await?;
        Ok(Self {
            insert,
            delete_days,
            select,
            select_summary,
        })
    }

    /// The values that write `cell` (an encoded day, see `crate::cell`) as `symbol`'s cell of
    /// `day` in `bucket` (its `YYYY-MM` text) at `write_timestamp` (µs). The header's bar count
    /// and first and last instants go into the plain columns.
    pub fn insert_values<'a>(
        symbol: &'a Symbol,
        bucket: &'a str,
        day: NaiveDate,
        header: &crate::cell::CellHeader,
        cell: &'a [u8],
        write_timestamp: i64,
    ) -> DayInsertValues<'a> {
        (
            symbol.as_str(),
            bucket,
            day,
            i32::from(header.version),
            header.bars as i32,
            CqlTimestamp(header.first_millis),
            CqlTimestamp(header.last_millis),
            cell,
            write_timestamp,
        )
    }
}

/// The layout a keyspace is read and written in: the configured one, else what it holds. A
/// keyspace whose bars table holds a row and whose day-cell table (missing or not) holds none
/// is `rows` (made before day cells: it keeps working as it was); any other is `days`.
pub async fn resolve_layout(
    session: &Session,
    schema: &Schema,
    configured: Option<StorageLayout>,
) -> Result<StorageLayout, StoreError> {
    if let Some(layout) = configured {
        return Ok(layout);
    }
    if table_has_rows(session, &schema.keyspace, &schema.days_table).await? {
        return Ok(StorageLayout::Days);
    }
    if table_has_rows(session, &schema.keyspace, &schema.bars_table).await? {
        return Ok(StorageLayout::Rows);
    }
    Ok(StorageLayout::Days)
}

/// Whether `keyspace.table` exists and holds at least one row.
async fn table_has_rows(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<bool, StoreError> {
    let listed = "SELECT table_name FROM system_schema.tables \
                  WHERE keyspace_name = ? AND table_name = ?";
    if rows_found(session, listed, (keyspace, table)).await? == 0 {
        return Ok(false);
    }
    let probe = format!("SELECT symbol FROM {keyspace}.{table} LIMIT 1");
    Ok(rows_found(session, &probe, ()).await? > 0)
}

/// How many rows `statement` returns (one page).
async fn rows_found(
    session: &Session,
    statement: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Result<usize, StoreError> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::SchemaRead {
        statement: statement.to_owned(),
        source,
    };
    let result = session
        .query_unpaged(statement, values)
        .await
        .map_err(|e| failed(Box::new(e)))?;
    let rows = result.into_rows_result().map_err(|e| failed(Box::new(e)))?;
    Ok(rows.rows_num())
}
