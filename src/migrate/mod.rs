//! `migrate`: converts a keyspace's bar rows into day cells, one (symbol, month) partition at a
//! time, resumably (a progress table), idempotently (each cell at its rows' write timestamp) and
//! verified bar for bar before a partition counts as done.
//!
//! - [`plan`] lists the partitions to convert (all, some symbols, a range of days).
//! - [`partition`] reads one partition's rows, encodes and writes its day cells.
//! - [`verify`] reads the cells back and compares them with the rows, bit for bit.
//! - [`progress`] records finished partitions in `migrate_progress`.

mod later;
mod partition;
mod plan;
mod progress;
mod verify;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use chrono_tz::Tz;
use futures_util::StreamExt;
use scylla::client::session::Session;
use tokio_util::sync::CancellationToken;

use crate::cell::Compression;
use crate::model::{Bucket, Symbol};
use crate::store::{Schema, StoreError};

pub use plan::Partition;
pub use progress::PROGRESS_TABLE;
pub use verify::Mismatch;

/// Largest `--concurrency`.
pub const MAX_CONCURRENCY: usize = 64;
/// Default `--concurrency`: partitions converted at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What to convert and how.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The symbols to convert; `None` for every symbol of the bars table.
    pub symbols: Option<Vec<Symbol>>,
    /// First exchange-local day converted (inclusive); `None`: from the first.
    pub from: Option<NaiveDate>,
    /// Last exchange-local day converted (inclusive); `None`: to the last.
    pub to: Option<NaiveDate>,
    /// Only compare the rows with the cells; write nothing.
    pub verify_only: bool,
    /// Convert the partitions the progress table lists as done, too.
    pub restart: bool,
    /// Partitions converted at once.
    pub concurrency: usize,
    /// Stop (as if interrupted) after this many partitions: for tests of resumption.
    pub stop_after: Option<usize>,
    /// How the cell bodies are compressed (the product writes [`crate::cell::DEFAULT_COMPRESSION`]).
    pub compression: Compression,
}

impl MigrateOptions {
    /// Every symbol, every day, written, 4 partitions at once.
    pub fn all() -> Self {
        Self {
            symbols: None,
            from: None,
            to: None,
            verify_only: false,
            restart: false,
            concurrency: DEFAULT_CONCURRENCY,
            stop_after: None,
            compression: crate::cell::DEFAULT_COMPRESSION,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Partitions selected (in the bars table, the symbols and the range asked for).
    pub selected: u64,
    /// Partitions skipped: the progress table lists them as done.
    pub skipped: u64,
    /// Partitions converted (or compared, with `verify_only`) and verified.
    pub partitions: u64,
    /// Days verified.
    pub days: u64,
    /// Bars verified.
    pub bars: u64,
    /// Days whose cell is newer than the rows (a later delivery written as a cell): left as
    /// they are, not compared.
    pub newer_days: u64,
    /// Days with rows but no cell, because a delivery written after the rows covered the day
    /// without bars on it (replace, not merge: its range tombstone emptied the day).
    pub emptied_days: u64,
    /// Whether the run stopped before the end (a signal, or `stop_after`).
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// Bars verified per second of wall time.
    pub fn bars_per_second(&self) -> f64 {
        self.bars as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request failed (after the driver's retries).
    #[error("{doing}: {source}")]
    Query {
        doing: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A day's bars could not be encoded, or a stored cell could not be decoded.
    #[error("{symbol} {day}: {source}")]
    Cell {
        symbol: Symbol,
        day: NaiveDate,
        source: crate::cell::CellError,
    },
    /// A row sits in a bucket that is not its exchange-local month.
    #[error(
        "{symbol}: the row at {ts_millis} ms is in bucket {bucket} but its exchange-local day \
         is {day} (is input.timezone the one the rows were loaded with?)"
    )]
    WrongBucket {
        symbol: Symbol,
        bucket: Bucket,
        ts_millis: i64,
        day: NaiveDate,
    },
    /// A cell differs from the rows it was made from.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
}

impl MigrateError {
    pub(crate) fn query(
        doing: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Query {
            doing: doing.into(),
            source: Box::new(source),
        }
    }
}

/// What every partition task needs.
pub(crate) struct Context<'a> {
    pub session: &'a Session,
    pub tz: Tz,
    pub options: &'a MigrateOptions,
    pub statements: partition::Statements,
    /// The progress table (`None` with `verify_only`, which records nothing).
    pub progress: Option<progress::Progress>,
    /// The history's later deliveries, for a day whose cell is missing.
    pub later: later::LaterDeliveries,
}

/// Converts (or with `verify_only`, compares) the partitions `options` selects. Stops starting
/// partitions once `cancel` fires (the summary then says `interrupted`); the first mismatch or
/// failure ends the run with an error. `manage_schema` allows creating the progress table
/// (which `verify_only` neither creates nor reads).
pub async fn run(
    session: &Session,
    schema: &Schema,
    tz: Tz,
    options: &MigrateOptions,
    manage_schema: bool,
    cancel: &CancellationToken,
) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let ctx = Context {
        session,
        tz,
        options,
        statements: partition::Statements::prepare(session, schema).await?,
        later: later::LaterDeliveries::prepare(session, schema, tz).await?,
        progress: match options.verify_only {
            true => None,
            false => Some(progress::Progress::open(session, schema, manage_schema).await?),
        },
    };
    let selected = plan::partitions(session, schema, options).await?;
    let mut summary = Summary {
        selected: selected.len() as u64,
        ..Summary::default()
    };
    let todo = match &ctx.progress {
        Some(p) => p.to_do(session, selected, options).await?,
        None => selected,
    };
    summary.skipped = summary.selected - todo.len() as u64;
    run_partitions(&ctx, todo, cancel, &mut summary).await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Runs the partitions `concurrency` at a time, adding each one's counts to `summary`.
async fn run_partitions(
    ctx: &Context<'_>,
    todo: Vec<Partition>,
    cancel: &CancellationToken,
    summary: &mut Summary,
) -> Result<(), MigrateError> {
    let limit = ctx.options.stop_after.unwrap_or(usize::MAX);
    let total = todo.len();
    let started = std::cell::Cell::new(0usize);
    let tasks = futures_util::stream::iter(todo)
        .take_while(|_| {
            let go = !cancel.is_cancelled() && started.get() < limit;
            started.set(started.get() + usize::from(go));
            std::future::ready(go)
        })
        .map(|p| partition::migrate(ctx, p))
        .buffer_unordered(ctx.options.concurrency.max(1));
    futures_util::pin_mut!(tasks);
    while let Some(done) = tasks.next().await {
        let counts = done?;
        summary.partitions += 1;
        summary.days += counts.days;
        summary.bars += counts.bars;
        summary.newer_days += counts.newer_days;
        summary.emptied_days += counts.emptied_days;
    }
    summary.interrupted = started.get() < total;
    Ok(())
}
