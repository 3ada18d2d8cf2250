//! Write: sends one partition batch at a time, at the pace of the configured caps and under the
//! adaptive limit on batches in flight (both shared by every file being loaded), with the
//! store's retries for whatever the database could not take now.

mod slots;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use tokio_util::sync::CancellationToken;

use super::batch::PartitionBatch;
use super::days::DayCell;
use super::limit::Bounds;
use super::pace::Pace;
use crate::config::{InFlightBounds, PaceLimits};
use crate::model::VolumeColumn;
use crate::store::retry::{RequestError, Retrier};
use crate::store::{BarStatements, DayStatements};
use crate::telemetry::metrics;
pub(crate) use slots::Slot;
use slots::Slots;

/// The batch statement shapes of one file (see [`Writer::shapes`]).
pub(crate) struct BatchShapes {
    /// A batch of as many inserts as a full partition batch holds.
    full: Batch,
    timestamp_micros: i64,
}

/// Sends statements with retries, paced and under the adaptive in-flight limit.
#[derive(Clone)]
pub(crate) struct Writer {
    session: Arc<Session>,
    insert: PreparedStatement,
    /// The day table's insert (None: the layout writes no day cells).
    day_insert: Option<PreparedStatement>,
    /// The bars table's volume column type: how a volume is bound.
    volumes: VolumeColumn,
    /// Slots = batches in flight, over every file being loaded.
    slots: Arc<Slots>,
    /// The caps on rows and bytes per second, over every file being loaded.
    pacer: Arc<Pacer>,
    retrier: Retrier,
}

impl Writer {
    pub fn new(
        session: Arc<Session>,
        statements: &BarStatements,
        in_flight: InFlightBounds,
        pace: PaceLimits,
        retrier: Retrier,
    ) -> Self {
        Self {
            session,
            insert: statements.insert.clone(),
            day_insert: None,
            volumes: statements.volume_column,
            slots: Slots::new(bounds(in_flight), in_flight.initial),
            pacer: Arc::new(Pacer::new(pace)),
            retrier,
        }
    }

    /// Writes day cells too, with `days`' insert.
    pub fn with_days(mut self, days: &DayStatements) -> Self {
        self.day_insert = Some(days.insert.clone());
        self
    }

    /// New bounds of the in-flight limit and new pace caps, from the next batch on (a reload;
    /// `in_flight.initial` only matters at start).
    pub fn set_live(&self, in_flight: InFlightBounds, pace: PaceLimits) {
        self.slots.set_bounds(bounds(in_flight));
        self.pacer.set(pace);
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The retry policy every request of a load goes through.
    pub(crate) fn retrier(&self) -> &Retrier {
        &self.retrier
    }

    /// Waits for an in-flight slot. Hold it while the request is being written.
    pub(crate) async fn slot(&self) -> Slot {
        self.slots.acquire().await
    }

    /// Waits for `batch`'s turn: its share of the pace caps, then a slot in flight (in that
    /// order, so that a batch held back by the pace does not sit on a slot, and the limit
    /// judges only batches actually sent).
    pub(crate) async fn turn(&self, batch: &PartitionBatch) -> Slot {
        let rows = batch.bars.len() as u64;
        self.pacer.wait(rows, batch.estimated_bytes() as u64).await;
        self.slot().await
    }

    /// Waits for `cell`'s turn, as [`Writer::turn`] does for a batch (its bars count as rows,
    /// its encoded size as bytes).
    pub(crate) async fn turn_cell(&self, cell: &DayCell) -> Slot {
        let bars = cell.header.bars as u64;
        self.pacer.wait(bars, cell.cell.len() as u64).await;
        self.slot().await
    }

    /// Writes one day cell at `timestamp_micros` (the delivery's write timestamp), with the same
    /// retries as a batch: until acknowledged, refused for good, or cancelled.
    pub async fn write_cell(
        &self,
        mut slot: Slot,
        cell: &DayCell,
        timestamp_micros: i64,
        cancel: &CancellationToken,
    ) -> Result<(), RequestError> {
        let insert = self
            .day_insert
            .as_ref()
            .expect("a writer of day cells is built with_days");
        let bucket = cell.bucket.to_string();
        let values = DayStatements::insert_values(
            &cell.symbol,
            &bucket,
            cell.day,
            &cell.header,
            &cell.cell,
            timestamp_micros,
        );
        self.retrier
            .retrying_heard(cancel, &mut slot, || async {
                self.session
                    .execute_unpaged(insert, &values)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// The batch statements of one file's writes: unlogged, idempotent, at the file's write
    /// timestamp, built once for full batches (most of them) rather than once per batch.
    pub fn shapes(&self, timestamp_micros: i64, full_rows: usize) -> BatchShapes {
        BatchShapes {
            full: self.batch_of(full_rows, timestamp_micros),
            timestamp_micros,
        }
    }

    fn batch_of(&self, rows: usize, timestamp_micros: i64) -> Batch {
        let mut statement = Batch::new(BatchType::Unlogged);
        for _ in 0..rows {
            statement.append_statement(self.insert.clone());
        }
        statement.set_is_idempotent(true);
        statement.set_timestamp(Some(timestamp_micros));
        statement
    }

    /// Writes one partition batch as an unlogged batch at `shapes`' client timestamp (see DESIGN
    /// "replace, not merge"), retrying until it is acknowledged, refused for good, or cancelled.
    /// `slot` hears how each attempt went, and is given back at the end.
    pub async fn write_batch(
        &self,
        mut slot: Slot,
        batch: &PartitionBatch,
        shapes: &BatchShapes,
        cancel: &CancellationToken,
    ) -> Result<(), RequestError> {
        let bucket = batch.bucket.to_string();
        let partial;
        let statement = if batch.bars.len() == shapes.full.statements.len() {
            &shapes.full
        } else {
            partial = self.batch_of(batch.bars.len(), shapes.timestamp_micros);
            &partial
        };
        let values: Vec<_> = batch
            .bars
            .iter()
            .map(|bar| BarStatements::insert_values(&batch.symbol, &bucket, bar, self.volumes))
            .collect();
        self.retrier
            .retrying_heard(cancel, &mut slot, || async {
                self.session.batch(statement, &values).await.map(|_| ())
            })
            .await
    }
}

/// The adaptive limit's bounds from the configured ones.
fn bounds(in_flight: InFlightBounds) -> Bounds {
    Bounds {
        min: in_flight.min,
        max: in_flight.max,
    }
}

/// The pace caps as a shared pair of token buckets.
#[derive(Debug)]
struct Pacer {
    /// Never held across an await.
    pace: Mutex<Pace>,
}

impl Pacer {
    fn new(limits: PaceLimits) -> Self {
        metrics::pace_limits(limits.rows_per_second, limits.bytes_per_second);
        Self {
            pace: Mutex::new(Pace::new(
                limits.rows_per_second,
                limits.bytes_per_second,
                now(),
            )),
        }
    }

    /// Waits until `rows` rows and `bytes` bytes may be sent.
    async fn wait(&self, rows: u64, bytes: u64) {
        let wait = self.lock().reserve(rows, bytes, now());
        if wait > Duration::ZERO {
            tokio::time::sleep(wait).await;
        }
    }

    fn set(&self, limits: PaceLimits) {
        let (rows, bytes) = (limits.rows_per_second, limits.bytes_per_second);
        self.lock().set_rates(rows, bytes, now());
        metrics::pace_limits(rows, bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Now, on tokio's clock (which tests can pause and advance).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 50 000 rows/s, batches of 100 rows: after the burst (5000 rows), 95 000 more rows take
    /// 1.9 s on tokio's paused clock; lifting the cap lets the rest go at once.
    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_batches_at_the_cap_and_a_new_cap_applies_at_once() {
        let pacer = Pacer::new(PaceLimits {
            rows_per_second: 50_000,
            bytes_per_second: 0,
        });
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            pacer.wait(100, 12_000).await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1899) && took <= Duration::from_millis(1901),
            "{took:?}"
        );
        pacer.set(PaceLimits::default());
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            pacer.wait(100, 12_000).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
