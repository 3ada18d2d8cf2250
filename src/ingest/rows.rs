//! Pass 2 over a unit: a reader thread batches the good rows by partition (rows layout) and
//! gathers them into day cells (days layout; both for `both`) into a bounded channel; each batch
//! or cell waits for its turn (the pace caps, then a slot under the adaptive limit
//! on batches in flight, both shared by every file) and is written. Only the content pass 1
//! validated is read (its length, each chunk checked against pass 1's hash before its rows are
//! batched): a unit that changed or grew stops with [`Written::Changed`]. Stops at the
//! first write the database refuses for good, or at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::Progress;
use super::outcome::LoadError;
use super::plan::Plan;
use super::scan::Pass;
use super::verify::{Content, ContentChanged};
use crate::config::StorageLayout;
use crate::model::Symbol;
use crate::pipeline::batch::{BatchLimits, Batcher, PartitionBatch};
use crate::pipeline::days::{DayBuilder, DayCell, DayError};
use crate::pipeline::validate::{Row, ValidBar};
use crate::pipeline::write::Writer;
use crate::source::container::Unit;
use crate::store::retry::RequestError;
use crate::telemetry::metrics;

/// Batches read ahead of the writes (the bounded channel between the reader and the writer).
const BATCHES_QUEUED: usize = 16;

/// One write of pass 2.
enum Work {
    /// Bar rows of one partition; `counted`: its bars count as rows written (not in `both`,
    /// where the cells count them).
    Rows {
        batch: PartitionBatch,
        counted: bool,
    },
    /// One symbol's day.
    Cell(DayCell),
}

/// How pass 2 ended.
pub(crate) enum Written {
    /// Every batch acknowledged; the content read was pass 1's, whole.
    All { rows: u64 },
    /// The unit is not what pass 1 validated (it changed or grew): rows acknowledged so far
    /// (all of them from content that matched pass 1's), and how it differs.
    Changed { rows: u64, why: String },
    /// Stopped early: rows acknowledged so far, and why.
    Stopped { rows: u64, why: Stop },
}

/// Why pass 2 stopped early.
pub(crate) enum Stop {
    /// Shutdown.
    Cancelled,
    /// The database refused a write for good, or a task failed.
    Failed(LoadError),
}

/// What pass 2 needs of the loader.
pub(crate) struct RowsJob<'a> {
    /// The descriptor pass 1 read.
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) unit: Arc<Unit>,
    pub(crate) plan: Arc<Plan>,
    pub(crate) writer: &'a Writer,
    pub(crate) limits: BatchLimits,
    pub(crate) write_timestamp: i64,
    /// Which tables the bars go to.
    pub(crate) layout: StorageLayout,
    pub(crate) progress: Option<Arc<Progress>>,
    /// What pass 1 read: the only content whose rows are written.
    pub(crate) content: Arc<Content>,
}

/// How the reader thread ended.
enum ReadEnd {
    /// Every row of pass 1's content read.
    All,
    /// The writer side stopped taking batches.
    WriterStopped,
    /// The content is not pass 1's: why.
    Changed(String),
}

impl RowsJob<'_> {
    /// The longest symbol the unit's rows can have (batches are sized by it).
    fn longest_symbol(&self) -> usize {
        self.plan
            .symbol
            .as_ref()
            .map_or(Symbol::MAX_LEN, |s| s.as_str().len())
    }
}

/// Reads the unit again and writes its good rows.
pub(crate) async fn write_rows(job: RowsJob<'_>, cancel: &CancellationToken) -> Written {
    let (tx, mut rx) = mpsc::channel::<Work>(BATCHES_QUEUED);
    let reader = spawn_reader(&job, tx);
    let file_cancel = cancel.child_token();
    let mut tally = Tally::new(job.progress.clone(), file_cancel.clone());
    let mut writes: JoinSet<Result<u64, RequestError>> = JoinSet::new();
    let full_rows = job.limits.rows_per_batch(job.longest_symbol());
    let shapes = Arc::new(job.writer.shapes(job.write_timestamp, full_rows));
    let timestamp = job.write_timestamp;
    while let Some(work) = rx.recv().await {
        if file_cancel.is_cancelled() {
            break;
        }
        let turn = async {
            match &work {
                Work::Rows { batch, .. } => job.writer.turn(batch).await,
                Work::Cell(cell) => job.writer.turn_cell(cell).await,
            }
        };
        let slot = tokio::select! {
            s = turn => s,
            _ = file_cancel.cancelled() => break,
        };
        // Collect finished writes as we go, so errors stop the file early.
        while let Some(r) = writes.try_join_next() {
            tally.absorb(r);
        }
        let writer = job.writer.clone();
        let (token, shapes) = (file_cancel.clone(), Arc::clone(&shapes));
        writes.spawn(async move {
            match work {
                Work::Rows { batch, counted } => {
                    let n = if counted { batch.bars.len() as u64 } else { 0 };
                    let written = writer.write_batch(slot, &batch, &shapes, &token).await;
                    written.map(|()| n)
                }
                Work::Cell(cell) => {
                    let n = cell.header.bars as u64;
                    let written = writer.write_cell(slot, &cell, timestamp, &token).await;
                    written.map(|()| n)
                }
            }
        });
    }
    drop(rx);
    while let Some(r) = writes.join_next().await {
        tally.absorb(r);
    }
    tally.finish(reader.await, cancel)
}

/// The reader thread: validated rows → partition batches and day cells → the channel.
fn spawn_reader(
    job: &RowsJob<'_>,
    tx: mpsc::Sender<Work>,
) -> JoinHandle<Result<ReadEnd, LoadError>> {
    let (limits, symbol_len, layout) = (job.limits, job.longest_symbol(), job.layout);
    let (unit, plan) = (Arc::clone(&job.unit), Arc::clone(&job.plan));
    let (progress, file) = (job.progress.clone(), Arc::clone(&job.file));
    let content = Arc::clone(&job.content);
    tokio::task::spawn_blocking(move || {
        // A plain file that grew or shrank since pass 1: nothing of it is written.
        if unit.is_whole_plain() {
            let now = file.metadata().map_err(|source| LoadError::Unit {
                unit: unit.name().to_string_lossy().into_owned(),
                source,
            })?;
            if now.len() != content.len {
                return Ok(ReadEnd::Changed(format!(
                    "it has {} bytes, not the {} validated",
                    now.len(),
                    content.len
                )));
            }
        }
        let mut pass = Pass::new(&file, &unit, &plan, progress, Some(content))?;
        let mut sink = Sink::new(layout, limits, symbol_len, tx);
        let unit_name = || unit.name().to_string_lossy().into_owned();
        let mut symbols = Interned::new(plan.symbol.clone().map(Arc::new));
        loop {
            let row = match pass.next_row() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(LoadError::Unit { source, .. }) if ContentChanged::is(&source) => {
                    return Ok(ReadEnd::Changed(source.to_string()));
                }
                Err(e) => return Err(e),
            };
            let Row::Bar(mut v) = row else { continue };
            let Some(symbol) = symbols.get(v.symbol.take()) else {
                return Err(LoadError::Unit {
                    unit: unit.name().to_string_lossy().into_owned(),
                    source: std::io::Error::other(format!(
                        "line {}: a record of a multi-symbol layout names no symbol",
                        v.line
                    )),
                });
            };
            match sink.push(symbol, &v) {
                Ok(true) => {}
                Ok(false) => return Ok(ReadEnd::WriterStopped),
                Err(e) => return Err(day_failed(unit_name(), e)),
            }
        }
        match sink.finish() {
            Ok(true) => {}
            Ok(false) => return Ok(ReadEnd::WriterStopped),
            Err(e) => return Err(day_failed(unit_name(), e)),
        }
        pass.end();
        Ok(ReadEnd::All)
    })
}

/// A day that could not be built, as the unit's error.
fn day_failed(unit: String, e: DayError) -> LoadError {
    LoadError::Unit {
        unit,
        source: std::io::Error::other(e),
    }
}

/// Where the reader's bars go: partition batches (rows), day cells (days), or both; and on to
/// the channel. The `bool`s say whether the writer side still takes work.
struct Sink {
    batcher: Option<Batcher>,
    days: Option<DayBuilder>,
    /// Whether the batches' bars count as written (not when the cells count them).
    rows_counted: bool,
    tx: mpsc::Sender<Work>,
}

impl Sink {
    fn new(
        layout: StorageLayout,
        limits: BatchLimits,
        symbol_len: usize,
        tx: mpsc::Sender<Work>,
    ) -> Self {
        Self {
            batcher: layout
                .writes_rows()
                .then(|| Batcher::new(limits, symbol_len)),
            days: layout.writes_days().then(DayBuilder::new),
            rows_counted: !layout.writes_days(),
            tx,
        }
    }

    fn push(&mut self, symbol: &Arc<Symbol>, v: &ValidBar) -> Result<bool, DayError> {
        if let Some(batcher) = &mut self.batcher {
            for b in batcher.push(symbol, v.bucket, v.bar).into_iter().flatten() {
                if !self.send_rows(b) {
                    return Ok(false);
                }
            }
        }
        if let Some(days) = &mut self.days
            && let Some(cell) = days.push(symbol, v.local_date, v.bucket, &v.bar)?
        {
            return Ok(self.tx.blocking_send(Work::Cell(cell)).is_ok());
        }
        Ok(true)
    }

    /// Sends what is still open: partly filled batches, then every open day.
    fn finish(&mut self) -> Result<bool, DayError> {
        let batches = self.batcher.as_mut().map(Batcher::finish);
        for b in batches.into_iter().flatten() {
            if !self.send_rows(b) {
                return Ok(false);
            }
        }
        let Some(days) = &mut self.days else {
            return Ok(true);
        };
        while let Some(cell) = days.pop() {
            if self.tx.blocking_send(Work::Cell(cell?)).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn send_rows(&self, batch: PartitionBatch) -> bool {
        let counted = self.rows_counted;
        self.tx.blocking_send(Work::Rows { batch, counted }).is_ok()
    }
}

/// One shared copy of each symbol a file's records name, so batches hold a pointer, not a
/// string each. Records of a multi-symbol file come in runs of one symbol (sorted by symbol) or
/// cycle through them (sorted by time): the last one is checked first, then the map.
struct Interned {
    /// The delivery's symbol (None for a multi-symbol layout, whose records all name one).
    delivery: Option<Arc<Symbol>>,
    last: Option<Arc<Symbol>>,
    seen: HashMap<Symbol, Arc<Symbol>>,
}

impl Interned {
    fn new(delivery: Option<Arc<Symbol>>) -> Self {
        Self {
            last: delivery.clone(),
            delivery,
            seen: HashMap::new(),
        }
    }

    /// The row's symbol: the one its record named, or the delivery's (None: neither).
    #[inline]
    fn get(&mut self, named: Option<Symbol>) -> Option<&Arc<Symbol>> {
        let Some(named) = named else {
            return self.delivery.as_ref();
        };
        if self.last.as_deref() != Some(&named) {
            let shared = self
                .seen
                .entry(named)
                .or_insert_with_key(|k| Arc::new(k.clone()));
            self.last = Some(Arc::clone(shared));
        }
        self.last.as_ref()
    }
}

/// Rows acknowledged so far, and the first reason to stop.
struct Tally {
    rows: u64,
    stop: Option<Stop>,
    progress: Option<Arc<Progress>>,
    /// Cancelled at the first failure, so the file's other writes stop.
    file_cancel: CancellationToken,
}

impl Tally {
    fn new(progress: Option<Arc<Progress>>, file_cancel: CancellationToken) -> Self {
        Self {
            rows: 0,
            stop: None,
            progress,
            file_cancel,
        }
    }

    fn absorb(&mut self, r: Result<Result<u64, RequestError>, JoinError>) {
        let why = match r {
            Ok(Ok(n)) => {
                self.rows += n;
                metrics::rows_written(n);
                if let Some(p) = &self.progress {
                    p.rows_written.fetch_add(n, Ordering::Relaxed);
                }
                return;
            }
            Ok(Err(RequestError::Cancelled)) => Stop::Cancelled,
            Ok(Err(source)) => Stop::Failed(LoadError::Database {
                step: "cannot write a batch of rows or a day cell",
                source,
            }),
            Err(source) => Stop::Failed(LoadError::Task {
                what: "a write task",
                source,
            }),
        };
        self.file_cancel.cancel();
        // A failure explains more than the cancellations it caused.
        if matches!(self.stop, None | Some(Stop::Cancelled)) {
            self.stop = Some(why);
        }
    }

    fn finish(
        self,
        reader: Result<Result<ReadEnd, LoadError>, JoinError>,
        cancel: &CancellationToken,
    ) -> Written {
        let rows = self.rows;
        let stopped = |why| Written::Stopped { rows, why };
        match (self.stop, reader) {
            (Some(Stop::Failed(e)), _) => stopped(Stop::Failed(e)),
            _ if cancel.is_cancelled() => stopped(Stop::Cancelled),
            (Some(Stop::Cancelled), _) => stopped(Stop::Cancelled),
            (None, Ok(Ok(ReadEnd::All))) => Written::All { rows },
            (None, Ok(Ok(ReadEnd::Changed(why)))) => Written::Changed { rows, why },
            // The channel closed with no failure recorded: only a cancellation does that.
            (None, Ok(Ok(ReadEnd::WriterStopped))) => stopped(Stop::Cancelled),
            (None, Ok(Err(e))) => stopped(Stop::Failed(e)),
            (None, Err(source)) => stopped(Stop::Failed(LoadError::Task {
                what: "the reader task",
                source,
            })),
        }
    }
}
