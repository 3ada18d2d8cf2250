//! The concurrent read: one task per partition (a symbol's month bucket), at most `concurrency`
//! ahead, each streaming its partition (driver-paged) through a bounded channel; partitions are
//! emitted in order (symbol by symbol, each month after the one before), so one bound covers
//! every symbol of a request.
//!
//! With `--session regular` or `extended`, a month's query is narrowed to the clustering ranges of
//! that session on each trading day, so the database reads only the rows wanted.
//!
//! Memory stays bounded however long the range: at most `concurrency` buckets are read at once,
//! and each holds at most [`CHUNKS_PER_BUCKET`] × [`CHUNK_BARS`] decoded bars plus the driver's
//! page buffers. A month of one-minute bars (04:00–20:00, ~21k rows) fits in one bucket's
//! channel, so a full window of buckets is read without waiting for the consumer.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::day::{Day, DayCache};
use super::range::TimeRange;
use super::resample::{Interval, Resampler};
use super::{BarChunk, FetchError, SessionFilter};
use crate::model::{Bar, Bucket, Symbol};
use crate::store::BarRow;
use chrono_tz::Tz;

/// Bars per message from a bucket task to the merger (amortises channel costs).
pub(crate) const CHUNK_BARS: usize = 1024;
/// Messages a bucket task may have queued before it waits for the merger (its channel bound).
pub(crate) const CHUNKS_PER_BUCKET: usize = 32;
/// Rows per page the driver asks the cluster for.
pub(crate) const PAGE_ROWS: i32 = 5000;

/// The `SELECT` of one partition between two instants (both included). Middle months of a range
/// are wider than the bounds, so the same statement serves the first, last and every month.
pub(crate) fn select_cql(bars_table: &str) -> String {
    format!(
        "SELECT ts, open, high, low, close, volume FROM {bars_table} \
         WHERE symbol = ? AND bucket = ? AND ts >= ? AND ts <= ?"
    )
}

/// What every bucket task of one fetch shares.
#[derive(Clone)]
pub(crate) struct Plan {
    pub session: Arc<Session>,
    /// The `SELECT` of one partition of the table the plan's reader reads: [`select_cql`] for
    /// [`rows_reader`], the day-cell table's for the readers of day cells.
    pub select: PreparedStatement,
    /// The symbols, in the order they are emitted.
    pub symbols: Arc<[Symbol]>,
    pub range: TimeRange,
    pub tz: Tz,
    pub filter: SessionFilter,
    pub interval: Interval,
}

/// A partition's reader: reads `(symbol index, month)` of the plan and sends what it produces
/// (chunks of bars, or a month of columns) in order; returns early when the receiver is gone.
pub(crate) type Reader<T> =
    fn(Arc<Plan>, usize, Bucket, mpsc::Sender<T>) -> BoxFuture<'static, Result<(), FetchError>>;

/// The reader of one partition of the bars table, producing chunks of bars.
pub(crate) fn rows_reader(
    plan: Arc<Plan>,
    symbol: usize,
    bucket: Bucket,
    tx: mpsc::Sender<Vec<Bar>>,
) -> BoxFuture<'static, Result<(), FetchError>> {
    Box::pin(async move { read_bucket(&plan, symbol, bucket, tx).await })
}

/// One partition being read: its channel and its task (aborted if the reader is dropped early).
struct BucketReader<T> {
    /// Index of the symbol in [`Plan::symbols`].
    symbol: usize,
    bucket: Bucket,
    chunks: mpsc::Receiver<T>,
    task: JoinHandle<Result<(), FetchError>>,
}

impl<T> Drop for BucketReader<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The in-order merge of partition readers, with up to `concurrency` of them running.
pub(crate) struct Merge<T> {
    plan: Arc<Plan>,
    reader: Reader<T>,
    /// Partitions not started yet, in order: (index into [`Plan::symbols`], month).
    pending: Box<dyn Iterator<Item = (usize, Bucket)> + Send>,
    /// Started partitions, in order; the front one is being emitted.
    running: VecDeque<BucketReader<T>>,
    /// Most partitions read at once.
    concurrency: usize,
    /// Set after the last chunk or the first error.
    done: bool,
}

impl<T: Send + 'static> Merge<T> {
    pub fn new(plan: Plan, concurrency: usize, reader: Reader<T>) -> Self {
        let (range, tz) = (plan.range, plan.tz);
        let pending = Box::new(
            (0..plan.symbols.len()).flat_map(move |i| range.buckets(tz).map(move |b| (i, b))),
        );
        Self {
            plan: Arc::new(plan),
            reader,
            pending,
            running: VecDeque::new(),
            concurrency: concurrency.max(1),
            done: false,
        }
    }

    /// The symbols of the plan, in the order they are emitted.
    pub fn symbols(&self) -> &Arc<[Symbol]> {
        &self.plan.symbols
    }

    /// The next item a reader sent, with the index of its symbol in [`Merge::symbols`] (symbol
    /// by symbol, each in time order), an error (after which the merge ends), or None at the end.
    pub async fn next_item(&mut self) -> Option<Result<(usize, T), FetchError>> {
        loop {
            if self.done {
                return None;
            }
            self.start_buckets();
            let Some(front) = self.running.front_mut() else {
                self.done = true;
                return None;
            };
            if let Some(item) = front.chunks.recv().await {
                return Some(Ok((front.symbol, item)));
            }
            // The front bucket's channel closed: its task ended. Find out how.
            let Some(mut finished) = self.running.pop_front() else {
                continue;
            };
            let outcome = match (&mut finished.task).await {
                Ok(result) => result,
                Err(join) => Err(FetchError::ReaderStopped {
                    symbol: self.plan.symbols[finished.symbol].to_string(),
                    bucket: finished.bucket,
                    reason: join.to_string(),
                }),
            };
            if let Err(e) = outcome {
                self.done = true;
                self.running.clear();
                return Some(Err(e));
            }
        }
    }

    /// Starts partition tasks until `concurrency` run.
    fn start_buckets(&mut self) {
        while self.running.len() < self.concurrency {
            let Some((symbol, bucket)) = self.pending.next() else {
                return;
            };
            let (tx, rx) = mpsc::channel(CHUNKS_PER_BUCKET);
            let task = tokio::spawn((self.reader)(Arc::clone(&self.plan), symbol, bucket, tx));
            self.running.push_back(BucketReader {
                symbol,
                bucket,
                chunks: rx,
                task,
            });
        }
    }
}

impl Merge<Vec<Bar>> {
    /// The next chunk of bars (symbol by symbol, each in time order), an error (after which the
    /// merge ends), or None at the end. Chunks are never empty.
    pub async fn next(&mut self) -> Option<Result<BarChunk, FetchError>> {
        let item = self.next_item().await?;
        Some(item.map(|(symbol, bars)| BarChunk {
            symbol: self.plan.symbols[symbol].clone(),
            bars,
        }))
    }
}

/// The clustering ranges (inclusive UTC milliseconds, in order, disjoint) of `bucket` that can
/// hold the bars of `filter` in `range`: the whole requested range for `all`; for `regular` each trading
/// day's `[open, close)`; for `extended` each trading day's pre- and post-market, where a
/// post-market and the next day's pre-market join into one range. Each is clipped to the
/// requested range. So the database reads only the rows that are wanted.
fn clustering_ranges(
    tz: Tz,
    range: TimeRange,
    filter: SessionFilter,
    bucket: Bucket,
) -> Vec<(i64, i64)> {
    let TimeRange { from_ms, to_ms } = range;
    if filter == SessionFilter::All {
        return vec![(from_ms, to_ms)];
    }
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let mut add = |lo: i64, end: i64| {
        // `end` is exclusive; clip to the request.
        let (lo, hi) = (lo.max(from_ms), (end - 1).min(to_ms));
        if lo > hi {
            return;
        }
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == lo => last.1 = hi,
            _ => ranges.push((lo, hi)),
        }
    };
    let mut date = bucket.first_day();
    while Bucket::of_local_date(date) == bucket {
        let day = Day::of(tz, date);
        if let Some(close_ms) = day.close_ms {
            if filter == SessionFilter::Regular {
                add(day.open_ms, close_ms);
            } else {
                add(day.start_ms, day.open_ms);
                add(close_ms, day.end_ms);
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    ranges
}

/// Reads one partition in time order (its clustering ranges one after the other, each paged by
/// the driver), keeps the bars of the requested session, aggregates them, and sends them in
/// chunks. Returns early, without error, when the merger has gone (the fetch was dropped).
async fn read_bucket(
    plan: &Plan,
    symbol: usize,
    bucket: Bucket,
    tx: mpsc::Sender<Vec<Bar>>,
) -> Result<(), FetchError> {
    let symbol = &plan.symbols[symbol];
    let bucket_name = bucket.to_string();
    let ranges = clustering_ranges(plan.tz, plan.range, plan.filter, bucket);
    let queries = ranges.len();
    let mut rows_read: u64 = 0;
    let mut out = BucketOutput::new(plan, tx);
    for (lo, hi) in ranges {
        let pager = plan
            .session
            .execute_iter(
                plan.select.clone(),
                (
                    symbol.as_str(),
                    bucket_name.as_str(),
                    CqlTimestamp(lo),
                    CqlTimestamp(hi),
                ),
            )
            .await
            .map_err(|source| FetchError::Query {
                symbol: symbol.to_string(),
                bucket,
                source: Box::new(source),
            })?;
        let mut rows = pager
            .rows_stream::<BarRow>()
            .map_err(|source| FetchError::Types {
                symbol: symbol.to_string(),
                bucket,
                source: Box::new(source),
            })?;
        while let Some(row) = rows.try_next().await.map_err(|source| FetchError::Rows {
            symbol: symbol.to_string(),
            bucket,
            source: Box::new(source),
        })? {
            let bar = Bar::from(row);
            rows_read += 1;
            if !out.push(bar).await {
                return Ok(());
            }
        }
    }
    tracing::debug!(symbol = symbol.as_str(), bucket = %bucket, queries, rows_read, "bucket read");
    out.finish().await;
    Ok(())
}

/// What a bucket task does with each row: session filter, aggregation, chunking, sending.
pub(crate) struct BucketOutput {
    days: DayCache,
    filter: SessionFilter,
    resampler: Option<Resampler>,
    /// Bars not sent yet (at most [`CHUNK_BARS`]).
    chunk: Vec<Bar>,
    tx: mpsc::Sender<Vec<Bar>>,
}

impl BucketOutput {
    /// The output of a partition of `plan` into `tx`.
    pub(crate) fn new(plan: &Plan, tx: mpsc::Sender<Vec<Bar>>) -> Self {
        Self {
            days: DayCache::new(plan.tz),
            filter: plan.filter,
            resampler: Resampler::new(plan.interval),
            chunk: Vec::with_capacity(CHUNK_BARS),
            tx,
        }
    }

    /// Takes one stored bar; false when the merger has gone and reading should stop.
    pub(crate) async fn push(&mut self, bar: Bar) -> bool {
        let day = self.days.day_of(bar.ts_millis);
        let segment = day.segment(bar.ts_millis);
        if !self.filter.keeps(segment) {
            return true;
        }
        let ready = match &mut self.resampler {
            Some(r) => r.push(&day, segment, &bar),
            None => Some(bar),
        };
        if let Some(ready) = ready {
            self.chunk.push(ready);
            if self.chunk.len() == CHUNK_BARS {
                let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BARS));
                return self.tx.send(full).await.is_ok();
            }
        }
        true
    }

    /// Sends the last aggregated bar and the last partial chunk.
    pub(crate) async fn finish(mut self) {
        if let Some(last) = self.resampler.as_mut().and_then(Resampler::finish) {
            self.chunk.push(last);
        }
        if !self.chunk.is_empty() {
            // A closed channel means the fetch was dropped; nothing is waiting for these bars.
            let _ = self.tx.send(self.chunk).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    use crate::fetch::ny;

    fn nov_2024() -> Bucket {
        Bucket::parse("2024-11").unwrap()
    }

    #[test]
    fn all_reads_the_requested_range_in_one_query() {
        let range = TimeRange {
            from_ms: 5,
            to_ms: 10,
        };
        let r = clustering_ranges(New_York, range, SessionFilter::All, nov_2024());
        assert_eq!(r, [(5, 10)]);
    }

    #[test]
    fn regular_reads_each_trading_day_open_to_close() {
        let range = TimeRange {
            from_ms: ny(2024, 11, 27, 12, 0),
            to_ms: ny(2024, 12, 2, 0, 0),
        };
        let r = clustering_ranges(New_York, range, SessionFilter::Regular, nov_2024());
        // Wednesday from noon (clipped), Thanksgiving closed, Friday's half day, no weekend.
        assert_eq!(
            r,
            [
                (ny(2024, 11, 27, 12, 0), ny(2024, 11, 27, 16, 0) - 1),
                (ny(2024, 11, 29, 9, 30), ny(2024, 11, 29, 13, 0) - 1),
            ]
        );
        // A whole month: one range per trading day (20 in November 2024).
        let month = TimeRange {
            from_ms: ny(2024, 11, 1, 0, 0),
            to_ms: ny(2024, 11, 30, 23, 59),
        };
        let r = clustering_ranges(New_York, month, SessionFilter::Regular, nov_2024());
        assert_eq!(r.len(), 20);
    }

    #[test]
    fn extended_joins_post_market_to_the_next_pre_market() {
        let range = TimeRange {
            from_ms: ny(2024, 11, 26, 0, 0),
            to_ms: ny(2024, 11, 29, 23, 59),
        };
        let r = clustering_ranges(New_York, range, SessionFilter::Extended, nov_2024());
        assert_eq!(
            r,
            [
                (ny(2024, 11, 26, 0, 0), ny(2024, 11, 26, 9, 30) - 1),
                (ny(2024, 11, 26, 16, 0), ny(2024, 11, 27, 9, 30) - 1),
                // Wednesday's post-market ends at midnight: Thanksgiving does not trade.
                (ny(2024, 11, 27, 16, 0), ny(2024, 11, 28, 0, 0) - 1),
                (ny(2024, 11, 29, 0, 0), ny(2024, 11, 29, 9, 30) - 1),
                (ny(2024, 11, 29, 13, 0), ny(2024, 11, 29, 23, 59)),
            ]
        );
    }
}
