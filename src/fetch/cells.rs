//! The read of one partition (a symbol's month) of the day-cell table: the cells of the days
//! the range touches in one query, decoded off the async threads into one set of columns,
//! checked against their rows, trimmed to the requested instants, then either passed bar by bar
//! through the session filter and the resampler (as the rows are) or, for one-minute output, cut
//! to the session by whole ranges of each day and sent as columns.

use std::ops::Range;
use std::sync::Arc;

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use scylla::value::CqlTimestamp;
use tokio::sync::mpsc;

use super::day::Day;
use super::read::{BucketOutput, Plan};
use super::{FetchError, SessionFilter};
use crate::cell::{self, DayColumns};
use crate::exchange_time::local_date;
use crate::model::{Bar, Bucket, Symbol};
use crate::store::DayRow;

/// Rows (days) per page: a month is at most 31 rows of at most a few tens of kilobytes.
pub(crate) const PAGE_DAYS: i32 = 31;

/// The `SELECT` of one partition's cells over a range of days (both included), ascending.
pub(crate) fn select_cql(days_table: &str) -> String {
    format!(
        "SELECT day, format_version, bar_count, first_ts, last_ts, cell FROM {days_table} \
         WHERE symbol = ? AND bucket = ? AND day >= ? AND day <= ?"
    )
}

/// A month of one symbol decoded: every day's bars back to back, and each day's date and its
/// bars' positions in the columns (days ascending, times strictly increasing throughout).
#[derive(Debug, Default)]
struct Month {
    columns: DayColumns,
    days: Vec<(NaiveDate, Range<usize>)>,
}

/// The reader of one partition of the day-cell table, producing chunks of bars filtered to the
/// session and resampled exactly as the rows reader does.
pub(crate) fn bars_reader(
    plan: Arc<Plan>,
    symbol: usize,
    bucket: Bucket,
    tx: mpsc::Sender<Vec<Bar>>,
) -> BoxFuture<'static, Result<(), FetchError>> {
    Box::pin(async move {
        let month = read_month(&plan, symbol, bucket, false).await?;
        let c = &month.columns;
        let mut out = BucketOutput::new(&plan, tx);
        for i in 0..c.len() {
            let bar = Bar {
                ts_millis: c.times[i],
                open: c.open[i],
                high: c.high[i],
                low: c.low[i],
                close: c.close[i],
                volume: c.volume[i],
            };
            if !out.push(bar).await {
                return Ok(());
            }
        }
        out.finish().await;
        Ok(())
    })
}

/// The reader of one partition of the day-cell table for one-minute output: the month's bars of
/// the session as columns, sent as one message (none when no bar is kept).
pub(crate) fn columns_reader(
    plan: Arc<Plan>,
    symbol: usize,
    bucket: Bucket,
    tx: mpsc::Sender<DayColumns>,
) -> BoxFuture<'static, Result<(), FetchError>> {
    Box::pin(async move {
        let month = read_month(&plan, symbol, bucket, true).await?;
        if !month.columns.is_empty() {
            // A closed channel means the fetch was dropped; nothing is waiting for these bars.
            let _ = tx.send(month.columns).await;
        }
        Ok(())
    })
}

/// Queries the partition's cells, then decodes them on a blocking thread, trimmed to the range
/// (and cut to the session when `cut_session`).
async fn read_month(
    plan: &Arc<Plan>,
    symbol: usize,
    bucket: Bucket,
    cut_session: bool,
) -> Result<Month, FetchError> {
    let rows = query_month(plan, symbol, bucket).await?;
    let name = plan.symbols[symbol].to_string();
    let plan = Arc::clone(plan);
    let decode = tokio::task::spawn_blocking(move || {
        let symbol = &plan.symbols[symbol];
        let mut month = decode_month(&plan, symbol, rows)?;
        if cut_session {
            cut_to_session(&plan, &mut month);
        } else {
            trim(&plan, &mut month.columns);
        }
        Ok(month)
    });
    decode.await.map_err(|join| FetchError::ReaderStopped {
        symbol: name,
        bucket,
        reason: join.to_string(),
    })?
}

/// The partition's rows of the days from the range's first to its last exchange-local date.
async fn query_month(
    plan: &Plan,
    symbol: usize,
    bucket: Bucket,
) -> Result<Vec<DayRow>, FetchError> {
    let symbol = &plan.symbols[symbol];
    let first_day = local_date(plan.tz, plan.range.from_ms);
    let last_day = local_date(plan.tz, plan.range.to_ms);
    let bucket_name = bucket.to_string();
    let pager = plan
        .session
        .execute_iter(
            plan.select.clone(),
            (symbol.as_str(), bucket_name.as_str(), first_day, last_day),
        )
        .await
        .map_err(|source| FetchError::Query {
            symbol: symbol.to_string(),
            bucket,
            source: Box::new(source),
        })?;
    let rows = pager
        .rows_stream::<DayRow>()
        .map_err(|source| FetchError::Types {
            symbol: symbol.to_string(),
            bucket,
            source: Box::new(source),
        })?;
    rows.try_collect().await.map_err(|source| FetchError::Rows {
        symbol: symbol.to_string(),
        bucket,
        source: Box::new(source),
    })
}

/// Decodes the cells of `rows` (ascending days) into one [`Month`]; a cell that cannot be
/// decoded, or does not match its row or its day, is an error naming the symbol and the day.
fn decode_month(plan: &Plan, symbol: &Symbol, rows: Vec<DayRow>) -> Result<Month, FetchError> {
    let bars: usize = rows.iter().map(|r| r.bar_count.max(0) as usize).sum();
    let mut month = Month {
        columns: DayColumns::with_capacity(bars.min(31 * cell::MAX_BARS)),
        days: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        let damaged = |reason: String| FetchError::Cell {
            symbol: symbol.to_string(),
            day: row.day,
            reason,
        };
        if row.format_version != i32::from(cell::FORMAT_VERSION) {
            return Err(damaged(format!(
                "format version {} is unknown (this build reads version {})",
                row.format_version,
                cell::FORMAT_VERSION
            )));
        }
        let start = month.columns.len();
        let n =
            cell::decode_into(&row.cell, &mut month.columns).map_err(|e| damaged(e.to_string()))?;
        check_row(plan, row, &month.columns.times[start..]).map_err(damaged)?;
        if n > 0 {
            month.days.push((row.day, start..start + n));
        }
    }
    Ok(month)
}

/// The decoded bars `times` of `row` agree with the row's plain columns and lie in its day.
fn check_row(plan: &Plan, row: &DayRow, times: &[i64]) -> Result<(), String> {
    if times.len() != usize::try_from(row.bar_count).unwrap_or(usize::MAX) {
        return Err(format!(
            "the cell holds {} bars, its row says {}",
            times.len(),
            row.bar_count
        ));
    }
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Ok(());
    };
    if (CqlTimestamp(first), CqlTimestamp(last)) != (row.first_ts, row.last_ts) {
        return Err(format!(
            "the cell's bars run from {first} to {last} ms, its row says {} to {} ms",
            row.first_ts.0, row.last_ts.0
        ));
    }
    let day = Day::of(plan.tz, row.day);
    if !day.contains(first) || !day.contains(last) {
        return Err(format!(
            "the cell's bars run from {first} to {last} ms, outside the exchange day \
             [{}, {}) ms",
            day.start_ms, day.end_ms
        ));
    }
    Ok(())
}

/// Keeps the bars opening in the requested range (first and last day trimmed by binary search).
fn trim(plan: &Plan, columns: &mut DayColumns) {
    let keep = span(&columns.times, plan.range.from_ms, plan.range.to_ms);
    compact(columns, std::iter::once(keep));
}

/// Keeps the bars of the requested range and session: per day, the session's ranges of instants
/// clipped to the range, found by binary search, so no bar is looked at one by one.
fn cut_to_session(plan: &Plan, month: &mut Month) {
    let (from_ms, to_ms) = (plan.range.from_ms, plan.range.to_ms);
    let mut keep: Vec<Range<usize>> = Vec::with_capacity(2 * month.days.len());
    for (date, at) in &month.days {
        let day = Day::of(plan.tz, *date);
        let times = &month.columns.times[at.clone()];
        for (lo, end) in session_spans(&day, plan.filter) {
            // `end` is exclusive; the requested range is inclusive.
            let hit = span(times, lo.max(from_ms), (end - 1).min(to_ms));
            if !hit.is_empty() {
                keep.push(at.start + hit.start..at.start + hit.end);
            }
        }
    }
    compact(&mut month.columns, keep.into_iter());
    month.days.clear();
}

/// The half-open spans of instants of `day` that `filter` keeps, in order.
fn session_spans(day: &Day, filter: SessionFilter) -> Vec<(i64, i64)> {
    match (filter, day.close_ms) {
        (SessionFilter::All, _) => vec![(day.start_ms, day.end_ms)],
        (_, None) => Vec::new(),
        (SessionFilter::Regular, Some(close)) => vec![(day.open_ms, close)],
        (SessionFilter::Extended, Some(close)) => {
            vec![(day.start_ms, day.open_ms), (close, day.end_ms)]
        }
    }
}

/// The positions of the `times` (ascending) in `[lo, hi]`.
fn span(times: &[i64], lo: i64, hi: i64) -> Range<usize> {
    if lo > hi {
        return 0..0;
    }
    let start = times.partition_point(|&t| t < lo);
    let end = times.partition_point(|&t| t <= hi);
    start..end.max(start)
}

/// Moves the bars at `keep` (ascending, disjoint) to the front of every column and drops the
/// rest; bars already in place are not moved.
fn compact(columns: &mut DayColumns, keep: impl Iterator<Item = Range<usize>>) {
    let mut len = 0;
    for r in keep {
        if r.start != len {
            let to = len;
            columns.times.copy_within(r.clone(), to);
            for values in [
                &mut columns.open,
                &mut columns.high,
                &mut columns.low,
                &mut columns.close,
                &mut columns.volume,
            ] {
                values.copy_within(r.clone(), to);
            }
        }
        len += r.len();
    }
    columns.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    use crate::fetch::ny;

    fn columns(times: &[i64]) -> DayColumns {
        let mut c = DayColumns::default();
        for (i, &t) in times.iter().enumerate() {
            let x = i as f64;
            c.push(t, x, x + 1.0, x - 1.0, x + 0.5, 10.0 * x);
        }
        c
    }

    #[test]
    fn span_finds_the_inclusive_range_by_binary_search() {
        let t = [10, 20, 30, 40];
        assert_eq!(span(&t, 20, 30), 1..3);
        assert_eq!(span(&t, 11, 39), 1..3);
        assert_eq!(span(&t, 0, 100), 0..4);
        assert_eq!(span(&t, 41, 100), 4..4);
        assert_eq!(span(&t, 30, 20), 0..0);
    }

    #[test]
    fn compact_keeps_the_ranges_in_order_with_their_values() {
        let mut c = columns(&[1, 2, 3, 4, 5, 6, 7]);
        compact(&mut c, [1..3, 5..6].into_iter());
        assert_eq!(c.times, [2, 3, 6]);
        assert_eq!(c.open, [1.0, 2.0, 5.0]);
        assert_eq!(c.volume, [10.0, 20.0, 50.0]);
        let mut whole = columns(&[1, 2, 3]);
        compact(&mut whole, std::iter::once(0..3));
        assert_eq!(whole, columns(&[1, 2, 3]));
    }

    #[test]
    fn session_spans_of_a_half_day_and_a_holiday() {
        let half = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 11, 29).unwrap());
        assert_eq!(
            session_spans(&half, SessionFilter::Regular),
            [(ny(2024, 11, 29, 9, 30), ny(2024, 11, 29, 13, 0))]
        );
        assert_eq!(
            session_spans(&half, SessionFilter::Extended),
            [
                (half.start_ms, ny(2024, 11, 29, 9, 30)),
                (ny(2024, 11, 29, 13, 0), half.end_ms)
            ]
        );
        let holiday = Day::of(New_York, NaiveDate::from_ymd_opt(2024, 11, 28).unwrap());
        assert!(session_spans(&holiday, SessionFilter::Regular).is_empty());
        assert!(session_spans(&holiday, SessionFilter::Extended).is_empty());
        assert_eq!(
            session_spans(&holiday, SessionFilter::All),
            [(holiday.start_ms, holiday.end_ms)]
        );
    }
}
