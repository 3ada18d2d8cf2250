//! Write: sends one partition batch at a time under a shared bound on batches in flight, with
//! the store's retries for whatever the database could not take now.

use std::sync::Arc;
use std::time::Instant;

use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::batch::PartitionBatch;
use crate::store::BarStatements;
use crate::store::retry::{RequestError, Retrier};
use crate::telemetry::metrics;

/// The batch statement shapes of one file (see [`Writer::shapes`]).
pub(crate) struct BatchShapes {
    /// A batch of as many inserts as a full partition batch holds.
    full: Batch,
    timestamp_micros: i64,
}

/// Sends statements with retries under a shared in-flight bound.
#[derive(Clone)]
pub(crate) struct Writer {
    session: Arc<Session>,
    insert: PreparedStatement,
    /// Permits = batches in flight, over every file being loaded.
    in_flight: Arc<Semaphore>,
    retrier: Retrier,
}

impl Writer {
    pub fn new(
        session: Arc<Session>,
        statements: &BarStatements,
        max_in_flight: usize,
        retrier: Retrier,
    ) -> Self {
        Self {
            session,
            insert: statements.insert.clone(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            retrier,
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The retry policy every request of a load goes through.
    pub(crate) fn retrier(&self) -> &Retrier {
        &self.retrier
    }

    /// Waits for an in-flight slot. Hold the permit while the batch is written.
    pub(crate) async fn slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the in-flight semaphore is never closed")
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
    pub async fn write_batch(
        &self,
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
            .map(|bar| BarStatements::insert_values(&batch.symbol, &bucket, bar))
            .collect();
        metrics::batches_in_flight(1.0);
        let result = self
            .retrier
            .retrying(cancel, || async {
                let started = Instant::now();
                let r = self.session.batch(statement, &values).await.map(|_| ());
                if r.is_ok() {
                    metrics::write_latency(started.elapsed());
                }
                r
            })
            .await;
        metrics::batches_in_flight(-1.0);
        result
    }
}
