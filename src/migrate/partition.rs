//! One partition's conversion: read its rows (paged, with their write timestamps), group them by
//! exchange-local day, write each day's cell at the newest write timestamp of its rows, then
//! verify and record the partition.

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::{Context, MigrateError, Partition, verify};
use crate::cell::{self, CellError, CellHeader, DayColumns};
use crate::exchange_time::local_date;
use crate::model::Bucket;
use crate::store::{DayStatements, Schema, StoredVolume, prepare_idempotent};

/// The statements a partition needs.
pub(crate) struct Statements {
    /// `SELECT ts, open, high, low, close, volume, WRITETIME(close)` of one partition.
    pub rows: PreparedStatement,
    /// The day table's statements (the insert).
    pub days: DayStatements,
    /// `SELECT day, cell, WRITETIME(cell)` of one partition over a range of days.
    pub cells: PreparedStatement,
}

impl Statements {
    pub async fn prepare(
        session: &Session,
        schema: &Schema,
    ) -> Result<Self, crate::store::StoreError> {
        let rows = prepare_idempotent(
            session,
            &format!(
                "SELECT ts, open, high, low, close, volume, WRITETIME(close) AS written \
                 FROM {} WHERE symbol = ? AND bucket = ?",
                schema.bars()
            ),
        )
        .await?;
        let cells = prepare_idempotent(
            session,
            &format!(
                "SELECT day, cell, WRITETIME(cell) AS written FROM {} \
                 WHERE symbol = ? AND bucket = ? AND day >= ? AND day <= ?",
                schema.days()
            ),
        )
        .await?;
        Ok(Self {
            rows,
            days: DayStatements::prepare(session, schema).await?,
            cells,
        })
    }
}

/// One row as read for the conversion.
#[derive(Debug, Clone, Copy, scylla::DeserializeRow)]
struct Row {
    ts: CqlTimestamp,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: StoredVolume,
    written: i64,
}

/// One exchange-local day of a partition's rows.
#[derive(Debug)]
pub(crate) struct Day {
    pub day: NaiveDate,
    pub bars: DayColumns,
    /// The newest write timestamp (µs) of the day's rows: the cell's.
    pub written: i64,
}

/// What one partition added.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub days: u64,
    pub bars: u64,
    pub newer_days: u64,
    pub emptied_days: u64,
}

/// Converts (or only compares) `partition`, verifies it, and records it when the whole month
/// was asked for.
pub(crate) async fn migrate(
    ctx: &Context<'_>,
    partition: Partition,
) -> Result<Counts, MigrateError> {
    let Some((from, to)) = partition.days_in(ctx.options) else {
        return Ok(Counts::default());
    };
    let days = read_days(ctx, &partition, from, to).await?;
    if !ctx.options.verify_only {
        write_days(ctx, &partition, &days).await?;
    }
    let verified = verify::partition(ctx, &partition, &days, from, to).await?;
    let bars: u64 = days.iter().map(|d| d.bars.len() as u64).sum();
    if let Some(progress) = ctx
        .progress
        .as_ref()
        .filter(|_| partition.whole_in(ctx.options))
    {
        progress.mark_done(ctx.session, &partition, bars).await?;
    }
    tracing::debug!(%partition, days = days.len(), bars, ?verified, "partition done");
    Ok(Counts {
        days: days.len() as u64,
        bars,
        newer_days: verified.newer,
        emptied_days: verified.emptied,
    })
}

/// The partition's rows of the days `[from, to]`, grouped by exchange-local day, in order.
async fn read_days(
    ctx: &Context<'_>,
    partition: &Partition,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Day>, MigrateError> {
    let doing = || format!("reading the rows of {partition}");
    let bucket = partition.bucket.to_string();
    let mut rows = ctx
        .session
        .execute_iter(
            ctx.statements.rows.clone(),
            (partition.symbol.as_str(), bucket.as_str()),
        )
        .await
        .map_err(|e| MigrateError::query(doing(), e))?
        .rows_stream::<Row>()
        .map_err(|e| MigrateError::query(doing(), e))?;
    let mut days: Vec<Day> = Vec::new();
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| MigrateError::query(doing(), e))?
    {
        let day = local_date(ctx.tz, row.ts.0);
        if Bucket::of_local_date(day) != partition.bucket {
            return Err(MigrateError::WrongBucket {
                symbol: partition.symbol.clone(),
                bucket: partition.bucket,
                ts_millis: row.ts.0,
                day,
            });
        }
        if day < from || day > to {
            continue;
        }
        push_row(&mut days, day, &row);
    }
    Ok(days)
}

/// Appends `row` to the last day of `days`, starting a new day when it is of another.
fn push_row(days: &mut Vec<Day>, day: NaiveDate, row: &Row) {
    if days.last().is_none_or(|d| d.day != day) {
        days.push(Day {
            day,
            bars: DayColumns::with_capacity(cell::MAX_BARS / 2),
            written: i64::MIN,
        });
    }
    let last = days.last_mut().expect("a day was just pushed");
    last.bars.push(
        row.ts.0,
        row.open,
        row.high,
        row.low,
        row.close,
        row.volume.0,
    );
    last.written = last.written.max(row.written);
}

/// Encodes and writes every day's cell at the day's write timestamp, all at once.
async fn write_days(
    ctx: &Context<'_>,
    partition: &Partition,
    days: &[Day],
) -> Result<(), MigrateError> {
    let bucket = partition.bucket.to_string();
    let mut cells = Vec::with_capacity(days.len());
    for d in days {
        let (encoded, header) =
            encode(d, ctx.options.compression).map_err(|source| MigrateError::Cell {
                symbol: partition.symbol.clone(),
                day: d.day,
                source,
            })?;
        cells.push((d, encoded, header));
    }
    let writes = cells.iter().map(|(d, encoded, header)| {
        let values = DayStatements::insert_values(
            &partition.symbol,
            &bucket,
            d.day,
            header,
            encoded,
            d.written,
        );
        let insert = &ctx.statements.days.insert;
        async move {
            ctx.session
                .execute_unpaged(insert, values)
                .await
                .map_err(|e| {
                    MigrateError::query(format!("writing {} {}", partition.symbol, d.day), e)
                })
        }
    });
    futures_util::future::try_join_all(writes).await?;
    Ok(())
}

/// A day's cell and its header.
fn encode(day: &Day, compression: cell::Compression) -> Result<(Vec<u8>, CellHeader), CellError> {
    let encoded = cell::encode_with(day.bars.view(), compression)?;
    let header = cell::read_header(&encoded)?;
    Ok((encoded, header))
}
