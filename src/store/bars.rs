//! Prepared statements on the bars table: the idempotent insert and the typed partition read,
//! for a `volume` column of either type (`double`, or `bigint` in tables created before
//! fractional volumes were kept).

use scylla::client::session::Session;
use scylla::deserialize::value::DeserializeValue;
use scylla::deserialize::{DeserializationError, FrameSlice, TypeCheckError};
use scylla::frame::response::result::{ColumnType, NativeType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue};

use super::{Schema, StoreError, prepare_idempotent};
use crate::model::{Bar, Symbol, VolumeColumn};

/// The bars table's prepared statements, prepared once per session.
#[derive(Debug, Clone)]
pub struct BarStatements {
    /// `INSERT` of one bar; an upsert, so marked idempotent and safe to retry.
    pub insert: PreparedStatement,
    /// Range tombstone over `[from, to)` of one partition at a given write timestamp: after a
    /// file's rows are written at T, deleting its covered range at T-1 removes every older row
    /// and none of the new ones (replace, not merge, with no moment of an empty month).
    pub delete_range: PreparedStatement,
    /// The type of the table's `volume` column, as the prepared insert reports it.
    pub volume_column: VolumeColumn,
}

/// One row of `SELECT ts, open, high, low, close, volume`, matched by column name.
#[derive(Debug, Clone, Copy, scylla::DeserializeRow)]
pub struct BarRow {
    pub ts: CqlTimestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: StoredVolume,
}

/// A `volume` cell of either column type, as the `f64` every reader hands out (a `bigint`
/// above 2^53 rounds to the nearest `f64`; none is written that large).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredVolume(pub f64);

/// A `volume` column of a type bar-ingest cannot read.
#[derive(Debug, thiserror::Error)]
#[error("the `volume` column is {0}: bar-ingest reads `double` or `bigint`")]
struct UnreadableVolume(String);

impl<'frame, 'metadata> DeserializeValue<'frame, 'metadata> for StoredVolume {
    fn type_check(typ: &ColumnType) -> Result<(), TypeCheckError> {
        match typ {
            ColumnType::Native(NativeType::Double | NativeType::BigInt) => Ok(()),
            other => Err(TypeCheckError::new(UnreadableVolume(format!("{other:?}")))),
        }
    }

    fn deserialize(
        typ: &'metadata ColumnType<'metadata>,
        v: Option<FrameSlice<'frame>>,
    ) -> Result<Self, DeserializationError> {
        match typ {
            ColumnType::Native(NativeType::BigInt) => {
                i64::deserialize(typ, v).map(|shares| Self(shares as f64))
            }
            _ => f64::deserialize(typ, v).map(Self),
        }
    }
}

impl From<BarRow> for Bar {
    fn from(r: BarRow) -> Self {
        Bar {
            ts_millis: r.ts.0,
            open: r.open,
            high: r.high,
            low: r.low,
            close: r.close,
            volume: r.volume.0,
        }
    }
}

/// The bound values of [`BarStatements::insert`], in column order; the volume as the column's
/// type (`CqlValue::Double` or `CqlValue::BigInt`).
pub(crate) type InsertValues<'a> = (&'a str, &'a str, CqlTimestamp, f64, f64, f64, f64, CqlValue);

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
        let volume_column = volume_column(&insert);
        Ok(Self {
            insert,
            delete_range,
            volume_column,
        })
    }

    /// The values that insert `bar` for `symbol` into `bucket` (its `YYYY-MM` text), in a
    /// table whose volume column is `column`. For a `bigint` column a whole volume is bound as
    /// an integer; a fractional one (which validation rejects first) stays a double, which the
    /// driver then refuses to bind: an error, never a truncated volume.
    pub fn insert_values<'a>(
        symbol: &'a Symbol,
        bucket: &'a str,
        bar: &Bar,
        column: VolumeColumn,
    ) -> InsertValues<'a> {
        let volume = match column {
            VolumeColumn::BigInt if bar.volume.fract() == 0.0 => {
                // Whole and at most 2^53 (validated): exact.
                CqlValue::BigInt(bar.volume as i64)
            }
            VolumeColumn::BigInt | VolumeColumn::Double => CqlValue::Double(bar.volume),
        };
        (
            symbol.as_str(),
            bucket,
            CqlTimestamp(bar.ts_millis),
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            volume,
        )
    }
}

/// The volume column's type as the prepared insert binds it: `bigint` or (anything else, which
/// the schema check has ruled out) `double`.
fn volume_column(insert: &PreparedStatement) -> VolumeColumn {
    let bigint = insert
        .get_variable_col_specs()
        .get_by_name("volume")
        .is_some_and(|(_, spec)| matches!(spec.typ(), ColumnType::Native(NativeType::BigInt)));
    if bigint {
        VolumeColumn::BigInt
    } else {
        VolumeColumn::Double
    }
}
