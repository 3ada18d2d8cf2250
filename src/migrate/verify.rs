//! Verification: a partition's cells read back, decoded and compared with its rows bar for bar
//! (the instant and the bits of every value); a cell newer than the rows is a later delivery
//! and is left out of the comparison, and so is a missing cell of a day a later delivery
//! emptied (`later`).

use std::collections::HashMap;

use chrono::NaiveDate;
use futures_util::TryStreamExt;

use super::partition::Day;
use super::{Context, MigrateError, Partition};
use crate::cell::{self, DayColumns};
use crate::model::Symbol;

/// A day whose cell does not hold exactly its rows' bars.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("verification failed: {symbol} {day}: {detail}")]
pub struct Mismatch {
    pub symbol: Symbol,
    pub day: NaiveDate,
    /// What differs: a missing or older cell, a cell that does not decode, or the first bar
    /// that differs, both sides shown.
    pub detail: String,
}

/// One cell as read back.
#[derive(Debug, scylla::DeserializeRow)]
struct StoredCell {
    day: NaiveDate,
    cell: Vec<u8>,
    written: i64,
}

/// Days of a partition left out of the comparison, and why.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Skipped {
    /// The cell is newer than the rows: a later delivery's.
    pub newer: u64,
    /// No cell: a later delivery covered the day without bars on it.
    pub emptied: u64,
}

/// Compares every day of `days` (the partition's rows over `[from, to]`) with its stored
/// cell. Returns the days not compared (a newer cell; no cell, emptied by a later delivery);
/// the first difference is an error.
pub(crate) async fn partition(
    ctx: &Context<'_>,
    partition: &Partition,
    days: &[Day],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Skipped, MigrateError> {
    let mut skipped = Skipped::default();
    if days.is_empty() {
        return Ok(skipped);
    }
    let cells = read_cells(ctx, partition, from, to).await?;
    let mut decoded = DayColumns::with_capacity(cell::MAX_BARS);
    for day in days {
        let mismatch = |detail: String| Mismatch {
            symbol: partition.symbol.clone(),
            day: day.day,
            detail,
        };
        let Some(stored) = cells.get(&day.day) else {
            let by = ctx
                .later
                .emptied_by(ctx.session, &partition.symbol, day.day, day.written);
            match by.await? {
                Some(file) => {
                    tracing::debug!(symbol = %partition.symbol, day = %day.day, %file,
                        "no cell: emptied by a later delivery");
                    skipped.emptied += 1;
                    continue;
                }
                None => {
                    let n = day.bars.len();
                    let detail = format!(
                        "no cell, but {n} bars in rows, and no delivery recorded after the rows \
                         covers the day"
                    );
                    return Err(mismatch(detail).into());
                }
            }
        };
        if stored.written > day.written {
            skipped.newer += 1;
            continue;
        }
        if stored.written < day.written {
            return Err(mismatch(format!(
                "the cell (written at {} µs) is older than the rows (written at {} µs): not \
                 migrated",
                stored.written, day.written
            ))
            .into());
        }
        decoded.clear();
        if let Err(e) = cell::decode_into(&stored.cell, &mut decoded) {
            return Err(mismatch(format!("the cell does not decode: {e}")).into());
        }
        if let Some(detail) = first_difference(&day.bars, &decoded) {
            return Err(mismatch(detail).into());
        }
    }
    Ok(skipped)
}

/// The partition's cells over `[from, to]`, by day.
async fn read_cells(
    ctx: &Context<'_>,
    partition: &Partition,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<NaiveDate, StoredCell>, MigrateError> {
    let doing = || format!("reading the cells of {partition}");
    let bucket = partition.bucket.to_string();
    let key = (partition.symbol.as_str(), bucket.as_str(), from, to);
    let mut rows = ctx
        .session
        .execute_iter(ctx.statements.cells.clone(), key)
        .await
        .map_err(|e| MigrateError::query(doing(), e))?
        .rows_stream::<StoredCell>()
        .map_err(|e| MigrateError::query(doing(), e))?;
    let mut cells = HashMap::new();
    while let Some(c) = rows
        .try_next()
        .await
        .map_err(|e| MigrateError::query(doing(), e))?
    {
        cells.insert(c.day, c);
    }
    Ok(cells)
}

/// The first bar that differs between the rows and the cell (instant, or any value's bits),
/// described with both sides; `None` when every bar is the same.
pub(crate) fn first_difference(rows: &DayColumns, cell: &DayColumns) -> Option<String> {
    let n = rows.len().max(cell.len());
    (0..n).find_map(|i| {
        let (r, c) = (bar_at(rows, i), bar_at(cell, i));
        let same = match (r, c) {
            (Some(r), Some(c)) => {
                r.0 == c.0 && r.1.iter().zip(c.1).all(|(a, b)| a.to_bits() == b.to_bits())
            }
            _ => false,
        };
        (!same).then(|| {
            format!(
                "bar {} differs: rows have {}, the cell has {} ({} bars in rows, {} in the cell)",
                i + 1,
                shown(r),
                shown(c),
                rows.len(),
                cell.len()
            )
        })
    })
}

/// Bar `i` as (instant, [open, high, low, close, volume]).
fn bar_at(c: &DayColumns, i: usize) -> Option<(i64, [f64; 5])> {
    Some((
        *c.times.get(i)?,
        [
            *c.open.get(i)?,
            *c.high.get(i)?,
            *c.low.get(i)?,
            *c.close.get(i)?,
            *c.volume.get(i)?,
        ],
    ))
}

fn shown(bar: Option<(i64, [f64; 5])>) -> String {
    let Some((t, [o, h, l, c, v])) = bar else {
        return "no bar".into();
    };
    let at = chrono::DateTime::from_timestamp_millis(t).map_or_else(
        || format!("{t} ms"),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    );
    format!("{at} open {o:?} high {h:?} low {l:?} close {c:?} volume {v:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_bar_is_named_with_both_sides() {
        let mut a = DayColumns::default();
        a.push(60_000, 1.0, 2.0, 0.5, 1.5, 100.0);
        a.push(120_000, 1.5, 2.0, 0.5, 1.25, 10.0);
        let mut b = a.clone();
        assert_eq!(first_difference(&a, &b), None);
        b.close[1] = 1.2500000000000002;
        let d = first_difference(&a, &b).unwrap();
        assert!(
            d.starts_with("bar 2 differs: rows have 1970-01-01T00:02:00.000Z"),
            "{d}"
        );
        assert!(
            d.contains("close 1.25 ") && d.contains("close 1.2500000000000002 "),
            "{d}"
        );
        b.close[1] = 1.25;
        b.volume[0] = -0.0;
        a.volume[0] = 0.0;
        assert!(
            first_difference(&a, &b)
                .unwrap()
                .starts_with("bar 1 differs")
        );
        b.volume[0] = 0.0;
        b.truncate(1);
        let d = first_difference(&a, &b).unwrap();
        assert!(
            d.contains("the cell has no bar (2 bars in rows, 1 in the cell)"),
            "{d}"
        );
    }
}
