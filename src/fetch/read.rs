//! The concurrent read: one task per month bucket, at most `concurrency` ahead, each streaming
//! its partition (driver-paged) through a bounded channel; buckets are emitted in order.
//!
//! Memory stays bounded however long the range: at most `concurrency` buckets are read at once,
//! and each holds at most [`CHUNKS_PER_BUCKET`] × [`CHUNK_BARS`] decoded bars plus the driver's
//! page buffers. A month of one-minute bars (04:00–20:00, ~21k rows) fits in one bucket's
//! channel, so a full window of buckets is read without waiting for the consumer.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::day::DayCache;
use super::range::TimeRange;
use super::resample::{Interval, Resampler};
use super::{FetchError, SessionFilter};
use crate::model::{Bar, Bucket, Symbol};
use chrono_tz::Tz;

/// Bars per message from a bucket task to the merger (amortises channel costs).
pub const CHUNK_BARS: usize = 1024;
/// Messages a bucket task may have queued before it waits for the merger (its channel bound).
pub const CHUNKS_PER_BUCKET: usize = 32;
/// Rows per page the driver asks the cluster for.
pub const PAGE_ROWS: i32 = 5000;

/// The `SELECT` of one partition between two instants (both included). Middle months of a range
/// are wider than the bounds, so the same statement serves the first, last and every month.
pub fn select_cql(bars_table: &str) -> String {
    format!(
        "SELECT ts, open, high, low, close, volume FROM {bars_table} \
         WHERE symbol = ? AND bucket = ? AND ts >= ? AND ts <= ?"
    )
}

/// What every bucket task of one fetch shares.
#[derive(Clone)]
pub struct Plan {
    pub session: Arc<Session>,
    pub select: PreparedStatement,
    pub symbol: Symbol,
    pub range: TimeRange,
    pub tz: Tz,
    pub filter: SessionFilter,
    pub interval: Interval,
}

/// One bucket being read: its channel and its task (aborted if the reader is dropped early).
struct BucketReader {
    bucket: Bucket,
    chunks: mpsc::Receiver<Vec<Bar>>,
    task: JoinHandle<Result<(), FetchError>>,
}

impl Drop for BucketReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The in-order merge of bucket readers, with up to `concurrency` of them running.
pub struct Merge {
    plan: Arc<Plan>,
    /// Buckets not started yet, in order.
    pending: Box<dyn Iterator<Item = Bucket> + Send>,
    /// Started buckets, in order; the front one is being emitted.
    running: VecDeque<BucketReader>,
    /// Most buckets read at once.
    concurrency: usize,
    /// The chunk being emitted.
    current: std::vec::IntoIter<Bar>,
    /// Set after the last bar or the first error.
    done: bool,
}

impl Merge {
    pub fn new(plan: Plan, concurrency: usize) -> Self {
        let pending = Box::new(plan.range.buckets(plan.tz));
        Self {
            plan: Arc::new(plan),
            pending,
            running: VecDeque::new(),
            concurrency: concurrency.max(1),
            current: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The next bar in time order, an error (after which the merge ends), or None at the end.
    pub async fn next(&mut self) -> Option<Result<Bar, FetchError>> {
        loop {
            if let Some(bar) = self.current.next() {
                return Some(Ok(bar));
            }
            if self.done {
                return None;
            }
            self.start_buckets();
            let Some(front) = self.running.front_mut() else {
                self.done = true;
                return None;
            };
            if let Some(chunk) = front.chunks.recv().await {
                self.current = chunk.into_iter();
                continue;
            }
            // The front bucket's channel closed: its task ended. Find out how.
            let Some(mut finished) = self.running.pop_front() else {
                continue;
            };
            let outcome = match (&mut finished.task).await {
                Ok(result) => result,
                Err(join) => Err(FetchError::ReaderStopped {
                    symbol: self.plan.symbol.to_string(),
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

    /// Starts bucket tasks until `concurrency` run.
    fn start_buckets(&mut self) {
        while self.running.len() < self.concurrency {
            let Some(bucket) = self.pending.next() else {
                return;
            };
            let (tx, rx) = mpsc::channel(CHUNKS_PER_BUCKET);
            let plan = Arc::clone(&self.plan);
            let task = tokio::spawn(async move { read_bucket(&plan, bucket, tx).await });
            self.running.push_back(BucketReader {
                bucket,
                chunks: rx,
                task,
            });
        }
    }
}

/// Reads one partition in time order (paged by the driver), keeps the bars of the requested
/// session, aggregates them, and sends them in chunks. Returns early, without error, when the
/// merger has gone (the fetch was dropped).
async fn read_bucket(
    plan: &Plan,
    bucket: Bucket,
    tx: mpsc::Sender<Vec<Bar>>,
) -> Result<(), FetchError> {
    let symbol = plan.symbol.as_str();
    let pager = plan
        .session
        .execute_iter(
            plan.select.clone(),
            (
                symbol,
                bucket.to_string(),
                CqlTimestamp(plan.range.from_ms),
                CqlTimestamp(plan.range.to_ms),
            ),
        )
        .await
        .map_err(|source| FetchError::Query {
            symbol: plan.symbol.to_string(),
            bucket,
            source: Box::new(source),
        })?;
    let mut rows = pager
        .rows_stream::<(CqlTimestamp, f64, f64, f64, f64, i64)>()
        .map_err(|source| FetchError::Types {
            symbol: plan.symbol.to_string(),
            bucket,
            source: Box::new(source),
        })?;

    let mut days = DayCache::new(plan.tz);
    let mut resampler = Resampler::new(plan.interval);
    let mut chunk = Vec::with_capacity(CHUNK_BARS);
    while let Some((ts, open, high, low, close, volume)) =
        rows.try_next().await.map_err(|source| FetchError::Rows {
            symbol: plan.symbol.to_string(),
            bucket,
            source: Box::new(source),
        })?
    {
        let bar = Bar {
            ts_millis: ts.0,
            open,
            high,
            low,
            close,
            volume,
        };
        let day = days.day_of(bar.ts_millis);
        let segment = day.segment(bar.ts_millis);
        if !plan.filter.keeps(segment) {
            continue;
        }
        let out = match &mut resampler {
            Some(r) => r.push(&day, segment, &bar),
            None => Some(bar),
        };
        if let Some(out) = out {
            chunk.push(out);
            if chunk.len() == CHUNK_BARS {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BARS));
                if tx.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    if let Some(last) = resampler.as_mut().and_then(Resampler::finish) {
        chunk.push(last);
    }
    if !chunk.is_empty() {
        // A closed channel means the fetch was dropped; nothing is waiting for these bars.
        let _ = tx.send(chunk).await;
    }
    Ok(())
}
