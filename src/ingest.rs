//! Loads one file through every stage: fingerprint and validate it (pass 1), then batch and write
//! its good rows (pass 2), replace the range it covers, and account for every row.
//!
//! The daemon and `load` both call [`Loader::load`]; they differ only in where files come from
//! and where they go afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use chrono_tz::Tz;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::account::dead_letter::DeadLetterLog;
use crate::account::history::{History, HistoryRecord, Outcome};
use crate::exchange_time::start_of_day;
use crate::model::Bucket;
use crate::pipeline::batch::{BatchLimits, Batcher, PartitionBatch};
use crate::pipeline::parse::symbol_from_file_name;
use crate::pipeline::validate::{BarReader, Row};
use crate::pipeline::write::Writer;
use crate::store::retry::RequestError as WriteError;
use crate::telemetry::metrics::{self, FileOutcomeLabel};

/// Read buffer of both passes.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Batches read ahead of the writes (the bounded channel between the reader and the writer).
const BATCHES_QUEUED: usize = 16;

/// The reader's error when the writer side stopped taking batches (a failure or a shutdown;
/// the writer side's own error is the one reported).
const WRITES_STOPPED: &str = "writes stopped";

/// Dead-letter reason code of a file without data lines (line 0: the whole file).
pub const EMPTY_FILE: &str = "empty_file";

/// Progress of the file being loaded, for progress bars and the backlog gauge.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read, both passes together (a file counts twice its size).
    pub bytes: AtomicU64,
    /// Rows acknowledged by the database.
    pub rows_written: AtomicU64,
}

/// How a file is to be loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Load even if the same content is recorded as loaded.
    pub force: bool,
    /// The file was found in processing/ at start: an earlier run may have finished it.
    pub resuming: bool,
}

/// The counts of one file; `rows_in == rows_written + rows_rejected` once it is loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSummary {
    pub file_name: String,
    pub fingerprint: String,
    pub symbol: String,
    pub size_bytes: u64,
    pub rows_in: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub months: BTreeSet<String>,
    /// The file's dead-letter log, if anything was rejected.
    pub dead_letter: Option<PathBuf>,
}

/// What became of a file.
#[derive(Debug)]
pub enum FileResult {
    /// Every good row written, the covered range replaced.
    Loaded(FileSummary),
    /// Already loaded (same content); nothing written.
    Duplicate(FileSummary),
    /// Already loaded by an earlier run of this instance that stopped before archiving it.
    AlreadyDone(FileSummary),
    /// Too many rejected rows: nothing written.
    Quarantined(FileSummary, String),
    /// No data lines.
    Empty(FileSummary),
    /// Cannot be loaded (unreadable, no symbol in the name, the database refused it for good).
    Failed(FileSummary, String),
    /// The file changed while it was being loaded: hand it back to be loaded again whole.
    Changed(FileSummary),
    /// Shutdown interrupted it; it stays claimed and is resumed at the next start.
    Interrupted,
}

/// Everything needed to load files, shared by every file being loaded.
pub struct Loader {
    pub writer: Writer,
    pub history: History,
    pub delete_range: PreparedStatement,
    pub tz: Tz,
    pub limits: BatchLimits,
    pub reject_threshold: f64,
    pub dead_letter_dir: PathBuf,
    pub instance: String,
}

/// What pass 1 learned of a file.
#[derive(Debug, Default)]
struct Scan {
    fingerprint: String,
    size: u64,
    rows_in: u64,
    rows_rejected: u64,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    months: BTreeMap<Bucket, MonthSpan>,
    first_bar: Option<i64>,
    last_bar: Option<i64>,
}

/// The local days a file covers within one month.
#[derive(Debug, Clone, Copy)]
struct MonthSpan {
    first_day: NaiveDate,
    last_day: NaiveDate,
}

/// An I/O error naming the file.
fn io_context(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

/// The running BLAKE3 hash of everything read; shared so the caller can finish it after the
/// reader was consumed.
type SharedHasher = Arc<std::sync::Mutex<blake3::Hasher>>;

/// Reads everything through a BLAKE3 hasher (one lock per buffer refill, not per line).
struct Hashing<R> {
    inner: R,
    hasher: SharedHasher,
    progress: Option<Arc<Progress>>,
}

fn finish_hash(hasher: &SharedHasher) -> String {
    let h = hasher
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    h.finalize().to_hex().to_string()
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(&buf[..n]);
        if let Some(p) = &self.progress {
            p.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

fn open_hashing(
    path: &Path,
    progress: Option<Arc<Progress>>,
) -> Result<(BufReader<Hashing<File>>, SharedHasher), String> {
    let file = File::open(path).map_err(|e| io_context(path, "cannot open", e))?;
    let hasher = SharedHasher::default();
    let reader = BufReader::with_capacity(
        READ_BUFFER_BYTES,
        Hashing {
            inner: file,
            hasher: Arc::clone(&hasher),
            progress,
        },
    );
    Ok((reader, hasher))
}

/// Pass 1: fingerprint, validate every line, write the dead-letter log, learn the covered range.
fn scan(
    path: &Path,
    tz: Tz,
    dead_letter: &mut DeadLetterLog,
    progress: Option<Arc<Progress>>,
) -> Result<Scan, String> {
    let (reader, hasher) = open_hashing(path, progress)?;
    let rows = BarReader::new(reader, tz);
    let mut s = Scan::default();
    for row in rows {
        let row = row.map_err(|e| io_context(path, "cannot read", e))?;
        s.rows_in += 1;
        match row {
            Row::Bar(v) => {
                s.first_bar.get_or_insert(v.bar.ts_millis);
                s.last_bar = Some(v.bar.ts_millis);
                s.months
                    .entry(v.bucket)
                    .and_modify(|m| {
                        m.first_day = m.first_day.min(v.local_date);
                        m.last_day = m.last_day.max(v.local_date);
                    })
                    .or_insert(MonthSpan {
                        first_day: v.local_date,
                        last_day: v.local_date,
                    });
            }
            Row::Rejected(r) => {
                s.rows_rejected += 1;
                *s.rejected_by_reason.entry(r.reason.code()).or_default() += 1;
                dead_letter
                    .write(r.line, &r.raw, r.reason.code(), &r.message)
                    .map_err(|e| format!("cannot write the dead-letter log: {e}"))?;
            }
        }
    }
    s.fingerprint = finish_hash(&hasher);
    s.size = std::fs::metadata(path)
        .map_err(|e| io_context(path, "cannot stat", e))?
        .len();
    Ok(s)
}

/// A blocking task's result with its panic (if any) as an error message.
fn flatten<T>(r: Result<Result<T, String>, tokio::task::JoinError>) -> Result<T, String> {
    r.unwrap_or_else(|join| Err(format!("reader task failed: {join}")))
}

/// Makes the file's dead-letter log durable under its final name (None: nothing was rejected).
async fn keep(log: DeadLetterLog, fingerprint: &str) -> Result<Option<PathBuf>, String> {
    let fingerprint = fingerprint.to_owned();
    flatten(
        tokio::task::spawn_blocking(move || {
            log.finish(&fingerprint)
                .map_err(|e| format!("cannot write the dead-letter log: {e}"))
        })
        .await,
    )
}

/// Counts a failed file and returns its result.
fn failed(summary: FileSummary, why: String, started: Instant) -> FileResult {
    metrics::file_finished(FileOutcomeLabel::Failed, started.elapsed());
    FileResult::Failed(summary, why)
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

impl Loader {
    /// Loads the file at `path` (already claimed, or given to `load`). Never panics on input;
    /// every outcome is returned, recorded in the load history and counted in the metrics.
    pub async fn load(
        self: &Arc<Self>,
        path: &Path,
        options: LoadOptions,
        cancel: &CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> FileResult {
        let started = Instant::now();
        // The write timestamp of this delivery is taken when it is picked up, so that of two
        // deliveries loaded at once, the one that arrived later wins.
        let claimed_at = now_micros();
        let started_at = claimed_at / 1000;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut summary = FileSummary {
            file_name: file_name.clone(),
            ..FileSummary::default()
        };

        let Some(symbol) = symbol_from_file_name(&file_name) else {
            let why = format!(
                "cannot tell the symbol from the file name `{file_name}` \
                 (expected e.g. AAPL_full_1min_adjsplit.txt)"
            );
            return failed(summary, why, started);
        };
        summary.symbol = symbol.to_string();

        // Pass 1 on a blocking thread: hashing and validation are CPU and file I/O.
        let scan_result = {
            let path = path.to_owned();
            let tz = self.tz;
            let mut dead_letter =
                DeadLetterLog::new(&self.dead_letter_dir, &file_name, &self.instance);
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || {
                let s = scan(&path, tz, &mut dead_letter, progress)?;
                Ok::<_, String>((s, dead_letter))
            })
            .await
        };
        let (scan, mut dead_letter) = match flatten(scan_result) {
            Ok(v) => v,
            Err(why) => return failed(summary, why, started),
        };
        metrics::bytes_read(scan.size);
        summary.fingerprint = scan.fingerprint.clone();
        summary.size_bytes = scan.size;
        summary.rows_in = scan.rows_in;
        summary.rows_rejected = scan.rows_rejected;
        summary.months = scan.months.keys().map(Bucket::to_string).collect();

        let mut record = HistoryRecord {
            fingerprint: scan.fingerprint.clone(),
            file_name: file_name.clone(),
            symbol: symbol.to_string(),
            size_bytes: scan.size as i64,
            rows_in: scan.rows_in as i64,
            rows_written: 0,
            rows_rejected: scan.rows_rejected as i64,
            months: summary.months.clone(),
            first_bar: scan.first_bar,
            last_bar: scan.last_bar,
            outcome: Outcome::Loading,
            error: None,
            instance: self.instance.clone(),
            write_timestamp: 0,
            started_at,
            finished_at: None,
        };

        let count_rejects = |scan: &Scan| {
            for (code, n) in &scan.rejected_by_reason {
                metrics::rows_rejected(code, *n);
            }
        };

        if scan.rows_in == 0 {
            if let Err(e) = dead_letter.write(0, "", EMPTY_FILE, "the file has no data lines") {
                return failed(
                    summary,
                    format!("cannot write the dead-letter log: {e}"),
                    started,
                );
            }
            match keep(dead_letter, &scan.fingerprint).await {
                Ok(p) => summary.dead_letter = p,
                Err(why) => return failed(summary, why, started),
            }
            record.outcome = Outcome::Empty;
            record.error = Some("the file has no data lines".into());
            return self
                .finish(
                    record,
                    started,
                    cancel,
                    FileOutcomeLabel::Empty,
                    FileResult::Empty(summary),
                )
                .await;
        }
        let share = scan.rows_rejected as f64 / scan.rows_in as f64;
        if share > self.reject_threshold {
            match keep(dead_letter, &scan.fingerprint).await {
                Ok(p) => summary.dead_letter = p,
                Err(why) => return failed(summary, why, started),
            }
            count_rejects(&scan);
            let why = format!(
                "{} of {} rows rejected ({:.1}%), above the quarantine threshold of {:.1}%; \
                 nothing written (see the dead-letter log)",
                scan.rows_rejected,
                scan.rows_in,
                share * 100.0,
                self.reject_threshold * 100.0
            );
            record.outcome = Outcome::Quarantined;
            record.error = Some(why.clone());
            return self
                .finish(
                    record,
                    started,
                    cancel,
                    FileOutcomeLabel::Quarantined,
                    FileResult::Quarantined(summary, why),
                )
                .await;
        }

        // Exactly once per content: the history decides.
        let session = self.writer.session().clone();
        let known = match self
            .writer
            .retrier()
            .retrying(cancel, || self.history.lookup(&session, &scan.fingerprint))
            .await
        {
            Ok(k) => k,
            Err(e) => {
                // Interrupted: the next attempt writes the log again. Failed: keep the rejects.
                if matches!(e, WriteError::Refused(_)) {
                    summary.dead_letter = keep(dead_letter, &scan.fingerprint).await.ok().flatten();
                } else {
                    dead_letter.discard();
                }
                return db_failure(e, summary, started);
            }
        };
        let write_timestamp = match known {
            Some(k) if k.outcome == Outcome::Loaded && !options.force => {
                // Its rejects were logged when it was loaded: nothing to log again.
                dead_letter.discard();
                summary.rows_written = scan.rows_in - scan.rows_rejected;
                if options.resuming {
                    return FileResult::AlreadyDone(summary);
                }
                metrics::file_finished(FileOutcomeLabel::Duplicate, started.elapsed());
                return FileResult::Duplicate(summary);
            }
            // An interrupted load of this content: the same timestamp keeps it idempotent.
            Some(k) if k.outcome == Outcome::Loading && !options.force => k.write_timestamp,
            _ => claimed_at,
        };
        record.write_timestamp = write_timestamp;
        match keep(dead_letter, &scan.fingerprint).await {
            Ok(p) => summary.dead_letter = p,
            Err(why) => return failed(summary, why, started),
        }
        if let Err(e) = self
            .writer
            .retrier()
            .retrying(cancel, || self.history.record(&session, &record))
            .await
        {
            return db_failure(e, summary, started);
        }

        // Pass 2: the reader thread batches good rows into a bounded channel; writes go out
        // under the shared in-flight bound.
        let (tx, mut rx) = mpsc::channel::<PartitionBatch>(BATCHES_QUEUED);
        let reader = {
            let path = path.to_owned();
            let tz = self.tz;
            let limits = self.limits;
            let symbol_len = symbol.as_str().len();
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || -> Result<String, String> {
                let (reader, hasher) = open_hashing(&path, progress)?;
                let rows = BarReader::new(reader, tz);
                let mut batcher = Batcher::new(limits, symbol_len);
                for row in rows {
                    let Row::Bar(v) = row.map_err(|e| io_context(&path, "cannot read", e))? else {
                        continue;
                    };
                    if let Some(b) = batcher.push(v.bucket, v.bar)
                        && tx.blocking_send(b).is_err()
                    {
                        return Err(WRITES_STOPPED.into());
                    }
                }
                if let Some(b) = batcher.finish()
                    && tx.blocking_send(b).is_err()
                {
                    return Err(WRITES_STOPPED.into());
                }
                Ok(finish_hash(&hasher))
            })
        };

        let file_cancel = cancel.child_token();
        let symbol = Arc::new(symbol);
        let mut writes: JoinSet<Result<u64, WriteError>> = JoinSet::new();
        let mut written: u64 = 0;
        let mut failure: Option<WriteError> = None;
        let mut absorb = |r: Result<Result<u64, WriteError>, tokio::task::JoinError>,
                          failure: &mut Option<WriteError>,
                          file_cancel: &CancellationToken| {
            match r {
                Ok(Ok(n)) => {
                    written += n;
                    metrics::rows_written(n);
                    if let Some(p) = &progress {
                        p.rows_written.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Ok(Err(e)) => {
                    file_cancel.cancel();
                    if failure.is_none() || matches!(failure, Some(WriteError::Cancelled)) {
                        *failure = Some(e);
                    }
                }
                Err(join) => {
                    file_cancel.cancel();
                    *failure = Some(WriteError::Refused(Box::new(join)));
                }
            }
        };
        while let Some(batch) = rx.recv().await {
            if file_cancel.is_cancelled() {
                break;
            }
            let permit = tokio::select! {
                p = self.writer.slot() => p,
                _ = file_cancel.cancelled() => break,
            };
            // Collect finished writes as we go, so errors stop the file early.
            while let Some(r) = writes.try_join_next() {
                absorb(r, &mut failure, &file_cancel);
            }
            let me = Arc::clone(self);
            let symbol = Arc::clone(&symbol);
            let token = file_cancel.clone();
            writes.spawn(async move {
                let _permit = permit;
                let n = batch.bars.len() as u64;
                me.writer
                    .write_batch(&symbol, &batch, write_timestamp, &token)
                    .await
                    .map(|()| n)
            });
        }
        drop(rx);
        while let Some(r) = writes.join_next().await {
            absorb(r, &mut failure, &file_cancel);
        }
        let reread = reader.await;
        summary.rows_written = written;

        if let Some(e) = failure {
            return match e {
                WriteError::Cancelled if cancel.is_cancelled() => FileResult::Interrupted,
                other => db_failure(other, summary, started),
            };
        }
        if cancel.is_cancelled() {
            return FileResult::Interrupted;
        }
        match flatten(reread) {
            Ok(fp) if fp == scan.fingerprint => {}
            Ok(_) => {
                warn!(file = %path.display(), "the file changed while it was being loaded; handing it back");
                return FileResult::Changed(summary);
            }
            Err(why) => return failed(summary, why, started),
        }

        // Replace, not merge: remove older rows in the covered days, below the new rows' timestamp.
        for (bucket, span) in &scan.months {
            let from = start_of_day(self.tz, span.first_day).timestamp_millis();
            let to = start_of_day(self.tz, span.last_day.succ_opt().unwrap_or(span.last_day))
                .timestamp_millis();
            let bucket_text = bucket.to_string();
            let values = (
                write_timestamp - 1,
                symbol.as_str(),
                bucket_text.as_str(),
                CqlTimestamp(from),
                CqlTimestamp(to),
            );
            let r = self
                .writer
                .retrier()
                .retrying(cancel, || {
                    let session = &session;
                    let values = &values;
                    async move {
                        session
                            .execute_unpaged(&self.delete_range, values)
                            .await
                            .map(|_| ())
                    }
                })
                .await;
            if let Err(e) = r {
                return match e {
                    WriteError::Cancelled => FileResult::Interrupted,
                    other => db_failure(other, summary, started),
                };
            }
        }

        count_rejects(&scan);
        record.rows_written = written as i64;
        record.outcome = Outcome::Loaded;
        info!(
            file = %file_name, symbol = %symbol, rows_in = scan.rows_in, written,
            rejected = scan.rows_rejected, months = scan.months.len(),
            seconds = started.elapsed().as_secs_f64(), "file loaded"
        );
        self.finish(
            record,
            started,
            cancel,
            FileOutcomeLabel::Loaded,
            FileResult::Loaded(summary),
        )
        .await
    }

    /// Records the final history row, counts the file, returns `result`.
    async fn finish(
        &self,
        mut record: HistoryRecord,
        started: Instant,
        cancel: &CancellationToken,
        label: FileOutcomeLabel,
        result: FileResult,
    ) -> FileResult {
        record.finished_at = Some(now_micros() / 1000);
        let session = self.writer.session().clone();
        match self
            .writer
            .retrier()
            .retrying(cancel, || self.history.record(&session, &record))
            .await
        {
            Ok(()) => {
                metrics::file_finished(label, started.elapsed());
                result
            }
            Err(WriteError::Cancelled) => FileResult::Interrupted,
            Err(WriteError::Refused(e)) => {
                let why = chain(e.as_ref());
                let summary = match result {
                    FileResult::Loaded(s)
                    | FileResult::Empty(s)
                    | FileResult::Quarantined(s, _)
                    | FileResult::Duplicate(s)
                    | FileResult::AlreadyDone(s)
                    | FileResult::Failed(s, _)
                    | FileResult::Changed(s) => s,
                    FileResult::Interrupted => FileSummary::default(),
                };
                failed(
                    summary,
                    format!("cannot record the load history: {why}"),
                    started,
                )
            }
        }
    }
}

/// A permanent database error (or a shutdown) while loading.
fn db_failure(e: WriteError, summary: FileSummary, started: Instant) -> FileResult {
    match e {
        WriteError::Cancelled => FileResult::Interrupted,
        WriteError::Refused(e) => failed(summary, chain(e.as_ref()), started),
    }
}

/// An error and its sources, `outer: inner: ...`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
