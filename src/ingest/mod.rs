//! Loads one delivery through every stage: open it and list its units (a zip's members, or the
//! file itself), then for each unit decide its layout and symbol (the `[[source]]` rule, or
//! detection), fingerprint and validate it and judge its times (pass 1), decide from the load
//! history whether and at which write timestamp to write it, batch and write its good rows
//! (pass 2), replace the range it covers, and account for every row.
//!
//! The daemon and `load` both build a [`Loader`] with [`Loader::connect`] and call
//! [`Loader::load`]; they differ only in where files come from and where they go afterwards.

mod members;
mod outcome;
mod plan;
mod replace;
mod rows;
mod scan;
mod spacing;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono_tz::Tz;
use futures_util::StreamExt;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use outcome::{DeliveryResult, FileResult, FileSummary, LoadError};

use crate::account::dead_letter::DeadLetterLog;
use crate::account::history::{History, HistoryRecord, Outcome};
use crate::config::{DeadLetterConfig, Settings, StorageLayout};
use crate::model::{Symbol, VolumeColumn};
use crate::names::Shown;
use crate::pipeline::batch::BatchLimits;
use crate::pipeline::claim;
use crate::pipeline::gate::Verdict;
use crate::pipeline::write::Writer;
use crate::source::container::{self, Delivery, Unit};
use crate::store::retry::{Backoff, RequestError, Retrier};
use crate::store::{self, BarStatements, DayStatements, Schema, StoreError};
use crate::telemetry::health::Health;
use members::EarlierMembers;
pub(crate) use plan::MANY_SYMBOLS;
use plan::Plan;
use rows::{RowsJob, Stop, Written};
use scan::Scan;

/// Dead-letter reason code of a file without data lines (line 0: the whole file).
pub(crate) const EMPTY_FILE: &str = "empty_file";

/// Quarantine reason code of a file with more rejected rows than `ingest.reject_threshold`.
pub const TOO_MANY_REJECTS: &str = "too_many_rejects";

/// Quarantine reason code of a unit whose bars are not one-minute bars (by its name, its rule,
/// its records or the spacing of its times): the one-minute store holds one-minute bars only.
pub const NOT_ONE_MINUTE: &str = "not_one_minute";

/// Quarantine reason code of a unit whose name states a price adjustment other than
/// `input.adjustment`.
pub const OTHER_ADJUSTMENT: &str = "other_adjustment";

/// Quarantine reason code of a unit that is a binary format (DBN, Parquet, ...), not text.
pub const BINARY_UNIT: &str = "binary_unit";

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
    /// When the delivery was claimed (µs since the epoch): the write timestamp of every one of
    /// its units, so that of two deliveries the later-claimed wins. None: a resumed file's
    /// claim time is its status-change time (set by the claim's rename), else now.
    pub claimed_at: Option<i64>,
}

/// Whether [`Loader::connect`] waits for a database that is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitForDatabase {
    /// Retry with backoff until it answers or the token is cancelled (the daemon).
    UntilCancelled,
    /// Fail at once (`load`: a user at a terminal wants to know now).
    No,
}

/// Everything needed to load files, shared by every file being loaded.
pub struct Loader {
    /// Batches at the pace caps and under the adaptive in-flight limit, with retries.
    writer: Writer,
    history: History,
    /// Range tombstone of the replaced range, below the new rows' timestamp.
    delete_range: PreparedStatement,
    /// Which tables loads write: bar rows, day cells, or both.
    layout: StorageLayout,
    /// Range tombstone of the replaced days in the day-cell table (when the layout writes cells).
    delete_days: Option<PreparedStatement>,
    /// The bars table's volume column type: a `bigint` one takes whole volumes only.
    volume_column: VolumeColumn,
    /// The exchange's time zone: buckets and days go by it (and naive times, unless a
    /// `[[source]]` rule says otherwise).
    tz: Tz,
    /// The `[[source]]` rules (what each unit is read as).
    settings: Arc<Settings>,
    limits: BatchLimits,
    /// Rejected share above which a file is quarantined whole.
    reject_threshold: f64,
    dead_letter_dir: PathBuf,
    /// How much of a file's rejects its dead-letter log keeps in full.
    dead_letter_budget: DeadLetterConfig,
    /// Recorded in the load history and in dead-letter names.
    instance: String,
}

impl Loader {
    /// Connects, checks the schema (creating what is missing only with
    /// `database.manage_schema`), prepares the statements. None: cancelled while waiting for the
    /// database. Refused credentials, TLS or permissions are errors at once, never waited for.
    pub async fn connect(
        settings: &Settings,
        health: Arc<Health>,
        dead_letter_dir: PathBuf,
        wait: WaitForDatabase,
        cancel: &CancellationToken,
    ) -> Result<Option<Arc<Self>>, StoreError> {
        let backoff = Backoff {
            initial: settings.ingest.retry_initial,
            max: settings.ingest.retry_max,
        };
        let Some(session) = open_session(settings, &health, backoff, wait, cancel).await? else {
            return Ok(None);
        };
        let schema = Schema::from_config(&settings.database);
        let db = &settings.database;
        let user = db.user();
        let state = store::ensure_schema(&session, &schema, db.manage_schema, user).await?;
        if state == store::SchemaState::Created {
            info!(keyspace = %schema.keyspace, "created the missing keyspace or tables");
        }
        let layout = store::check_load_access(&session, &schema, settings.layout, user).await?;
        info!(keyspace = %schema.keyspace, layout = layout.name(), "storage layout");
        let statements = BarStatements::prepare(&session, &schema).await?;
        let days = match layout.writes_days() {
            true => Some(DayStatements::prepare(&session, &schema).await?),
            false => None,
        };
        let history = History::prepare(&session, &schema).await?;
        let ingest = &settings.ingest;
        let mut writer = Writer::new(
            Arc::new(session),
            &statements,
            ingest.in_flight,
            ingest.pace,
            Retrier::new(backoff, health),
        );
        if let Some(days) = &days {
            writer = writer.with_days(days);
        }
        Ok(Some(Arc::new(Self {
            writer,
            history,
            delete_range: statements.delete_range,
            layout,
            delete_days: days.map(|d| d.delete_days),
            volume_column: statements.volume_column,
            tz: settings.timezone,
            settings: Arc::new(settings.clone()),
            limits: BatchLimits {
                max_rows: settings.ingest.batch_rows,
                max_bytes: settings.ingest.batch_max_bytes,
            },
            reject_threshold: settings.ingest.reject_threshold,
            dead_letter_dir,
            dead_letter_budget: settings.dead_letter,
            instance: settings.ingest.instance.clone(),
        })))
    }

    /// Applies the keys of `ingest` a reload may change while files load: the bounds of the
    /// adaptive limit on batches in flight and the pace caps (from the next batch on).
    pub fn apply_live(&self, ingest: &crate::config::Ingest) {
        self.writer.set_live(ingest.in_flight, ingest.pace);
    }

    /// Which tables loads write (the configured layout, else what the keyspace holds).
    pub fn layout(&self) -> StorageLayout {
        self.layout
    }

    /// The database session (for readiness probes).
    pub fn session(&self) -> &Arc<scylla::client::session::Session> {
        self.writer.session()
    }

    /// Loads the delivery at `path` (already claimed, or given to `load`), unit by unit. Never
    /// panics on input; every unit's outcome is returned, recorded in the load history, and
    /// counted in the metrics once.
    pub async fn load(
        self: &Arc<Self>,
        path: &Path,
        options: LoadOptions,
        cancel: &CancellationToken,
        progress: Option<Arc<Progress>>,
    ) -> DeliveryResult {
        let started = Instant::now();
        // The delivered name, without a suffix a hand-back beside a new delivery added.
        let name = claim::logical_name(path.file_name().unwrap_or_default()).to_owned();
        let delivery_summary = || FileSummary {
            file_name: name.to_string_lossy().into_owned(),
            ..FileSummary::default()
        };
        let opened = {
            let (path, name) = (path.to_owned(), name.clone());
            tokio::task::spawn_blocking(move || open_delivery(&path, &name)).await
        };
        let (file, delivery) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return one_result(FileResult::failed(delivery_summary(), e), started),
            Err(source) => {
                let e = LoadError::Task {
                    what: "opening the delivery",
                    source,
                };
                return one_result(FileResult::failed(delivery_summary(), e), started);
            }
        };
        if delivery.units().is_empty() {
            return one_result(FileResult::Empty(delivery_summary()), started);
        }
        let file = Arc::new(file);
        // The write timestamp of every unit of this delivery, taken once (see `claim_time`).
        let claimed_at = claim_time(&file, options);
        let mut result = DeliveryResult::default();
        let mut earlier = EarlierMembers::default();
        for unit in delivery.into_units() {
            if cancel.is_cancelled() {
                result.units.push(FileResult::Interrupted);
                break;
            }
            let unit_started = Instant::now();
            let mut job = FileJob {
                loader: self,
                path,
                unit: Arc::new(unit),
                file: Arc::clone(&file),
                options,
                cancel,
                progress: progress.clone(),
                claimed_at,
                earlier: &mut earlier,
                member_offset: 0,
                summary: FileSummary::default(),
            };
            job.summary.file_name = job.unit.name().to_string_lossy().into_owned();
            let unit_result = match job.phases().await {
                Ok(r) | Err(r) => r,
            };
            unit_result.record_metrics(unit_started.elapsed());
            let stop = matches!(
                unit_result,
                FileResult::Changed(_) | FileResult::Interrupted
            );
            result.units.push(unit_result);
            if stop {
                break;
            }
        }
        result
    }
}

/// When the delivery was claimed, in µs since the epoch: the write timestamp of each of its
/// units (unless a unit resumes an interrupted load, which keeps its recorded one, or shares
/// days with an earlier unit, which goes a few µs above: `members`), so that of
/// two deliveries the later-claimed wins, whichever finishes first and whatever a zip's members
/// or a restart do. The daemon passes the time of its claim. A file resumed at start-up (an
/// earlier run claimed it and crashed or stopped, possibly before any history row was written,
/// e.g. in pass 1) takes its status-change time: the claim's rename into processing/ set it,
/// and nothing changes the file in processing/ afterwards (capped at now). `load` takes the
/// time it opened the file.
fn claim_time(file: &std::fs::File, options: LoadOptions) -> i64 {
    use std::os::unix::fs::MetadataExt;
    let now = now_micros();
    if let Some(t) = options.claimed_at {
        return t;
    }
    if !options.resuming {
        return now;
    }
    match file.metadata() {
        Ok(m) => (m.ctime() * 1_000_000 + m.ctime_nsec() / 1000).min(now),
        Err(_) => now,
    }
}

/// Opens a claimed delivery once (a regular file, [`scan::open_regular`]) and lists its units.
fn open_delivery(
    path: &Path,
    name: &std::ffi::OsStr,
) -> Result<(std::fs::File, Delivery), LoadError> {
    let file = scan::open_regular(path)?;
    let delivery =
        Delivery::read(&file, name, container::Limits::default()).map_err(|e| LoadError::Unit {
            unit: name.to_string_lossy().into_owned(),
            source: e.into(),
        })?;
    Ok((file, delivery))
}

/// A delivery with one result (it could not be opened, or it holds no unit), counted once.
fn one_result(result: FileResult, started: Instant) -> DeliveryResult {
    result.record_metrics(started.elapsed());
    DeliveryResult {
        units: vec![result],
    }
}

/// Opens a session; with [`WaitForDatabase::UntilCancelled`], retries until the database answers.
/// Only an outage is waited for: refused credentials or a failed TLS handshake return at once.
async fn open_session(
    settings: &Settings,
    health: &Health,
    backoff: Backoff,
    wait: WaitForDatabase,
    cancel: &CancellationToken,
) -> Result<Option<scylla::client::session::Session>, StoreError> {
    let mut attempt = 0;
    loop {
        match store::connect(settings).await {
            Ok(s) => {
                health.set_database_up(true);
                return Ok(Some(s));
            }
            Err(e) if wait == WaitForDatabase::No || !e.is_outage() => return Err(e),
            Err(e) => {
                health.set_database_up(false);
                let delay = backoff.delay(attempt);
                warn!(error = %e, retry_in = ?delay, "database not reachable; retrying");
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return Ok(None),
                }
            }
        }
    }
}

/// One unit of a delivery being loaded: what every phase reads, and the counts so far.
struct FileJob<'a> {
    loader: &'a Arc<Loader>,
    /// The delivery's path (for log lines).
    path: &'a Path,
    unit: Arc<Unit>,
    /// The delivery, opened once: every pass of every unit reads this descriptor.
    file: Arc<std::fs::File>,
    options: LoadOptions,
    cancel: &'a CancellationToken,
    progress: Option<Arc<Progress>>,
    /// Microseconds since the epoch when the delivery was claimed ([`claim_time`]): its write
    /// timestamp unless it resumes an interrupted load of the same content.
    claimed_at: i64,
    /// The days of this delivery's earlier units, per symbol (`members`).
    earlier: &'a mut EarlierMembers,
    /// µs above `claimed_at` this unit writes at, so that it replaces an earlier unit of the
    /// delivery over the days of a symbol they share (`members`; 0 for most).
    member_offset: i64,
    summary: FileSummary,
}

/// An early end of a file's phases: its result.
type Early = FileResult;

// The `Err` of a phase is the file's final result, built at most once per file: boxing it
// would buy nothing.
#[allow(clippy::result_large_err)]
impl FileJob<'_> {
    /// The data flow of one unit. Each phase returns what the next needs, or its result.
    async fn phases(&mut self) -> Result<FileResult, Early> {
        let plan = self.identify().await?;
        let (scan, dead_letter) = self.scan(&plan).await?;
        if scan.changed {
            // The early stop assumed the size the file had when it was opened.
            dead_letter.discard();
            warn!(file = %Shown(self.path), "the file changed while it was being validated; handing it back");
            return Err(FileResult::Changed(self.take_summary()));
        }
        self.member_offset =
            self.earlier
                .offset(scan.days.iter().filter_map(|(named, (first, last))| {
                    Some((named.as_ref().or(plan.symbol.as_ref())?, *first, *last))
                }));
        let mut record = self.history_record(&scan);
        if let Some((outcome, reason, why)) = self.early_outcome(&scan) {
            self.summary.reason = reason;
            return Ok(self.finish_early(record, outcome, why, dead_letter).await);
        }
        record.write_timestamp = self.write_timestamp(&scan, dead_letter).await?;
        self.record(&record, "cannot record the load history")
            .await?;
        if let Err(early) = self.write_and_replace(&plan, &scan, &mut record).await {
            return Err(self.record_not_loaded(&mut record, early).await);
        }
        info!(
            file = %Shown(Path::new(self.unit.name())), layout = plan.layout.name(),
            symbol = %self.summary.symbol, symbols = self.summary.symbols, rows_in = scan.rows_in,
            written = self.summary.rows_written, rejected = scan.rows_rejected,
            months = scan.months.len(), "file loaded"
        );
        Ok(FileResult::Loaded(self.take_summary()))
    }

    /// Pass 2, the replaced range and the final history row (`loaded`).
    async fn write_and_replace(
        &mut self,
        plan: &Arc<Plan>,
        scan: &Scan,
        record: &mut HistoryRecord,
    ) -> Result<(), Early> {
        self.write_rows(plan, scan, record.write_timestamp).await?;
        self.replace_range(plan, scan, record.write_timestamp)
            .await?;
        record.rows_written = self.summary.rows_written as i64;
        record.outcome = Outcome::Loaded;
        self.record_final(record).await
    }

    /// A unit that failed for good, or changed, after its `loading` row was recorded: the
    /// history says `failed` with why and how many rows were written (which a later delivery
    /// of the content replaces: only a resume reuses a `loading` row's timestamp). An
    /// interruption leaves `loading`, to be resumed. Returns `early` as it was.
    async fn record_not_loaded(&mut self, record: &mut HistoryRecord, early: Early) -> Early {
        let why = match &early {
            FileResult::Failed(s, e) => {
                record.rows_written = s.rows_written as i64;
                e.chain()
            }
            FileResult::Changed(s) => {
                record.rows_written = s.rows_written as i64;
                format!(
                    "the file changed while it was being loaded ({} rows of the content \
                     validated were written); handed back to be loaded again",
                    s.rows_written
                )
            }
            _ => return early,
        };
        record.outcome = Outcome::Failed;
        record.error = Some(why);
        record.finished_at = Some(now_micros() / 1000);
        let (loader, session) = (self.loader, self.loader.writer.session().clone());
        let recorded = loader
            .writer
            .retrier()
            .retrying(self.cancel, || loader.history.record(&session, record))
            .await;
        if let Err(e) = recorded {
            warn!(file = %Shown(Path::new(self.unit.name())), error = %e,
                "cannot record the failed load in the load history; it stays `loading`");
        }
        early
    }

    /// How the unit is read: the rule that covers it, its layout (the rule's, or detected from
    /// its first bytes) and its symbol. Blocking (it may read and decode the first bytes).
    async fn identify(&mut self) -> Result<Arc<Plan>, Early> {
        let delivery_name =
            claim::logical_name(self.path.file_name().unwrap_or_default()).to_string_lossy();
        let inner = self.unit.inner_name().to_string_lossy();
        let rule = self
            .loader
            .settings
            .rule_for(&inner, &delivery_name)
            .clone();
        let (unit, file, tz, adjustment) = (
            Arc::clone(&self.unit),
            Arc::clone(&self.file),
            self.loader.tz,
            self.loader.settings.adjustment,
        );
        let decided =
            tokio::task::spawn_blocking(move || Plan::decide(rule, &unit, &file, tz, adjustment))
                .await;
        let mut plan = match decided {
            Ok(Ok(plan)) => plan,
            Ok(Err(e)) => return Err(self.fail(e)),
            Err(source) => {
                let what = "deciding the layout";
                return Err(self.fail(LoadError::Task { what, source }));
            }
        };
        plan.volumes = self.loader.volume_column;
        self.summary.symbol = plan.history_symbol();
        self.summary.layout = plan.layout.name();
        Ok(Arc::new(plan))
    }

    /// Pass 1 on a blocking thread: decoding, hashing and validation are CPU and file I/O.
    async fn scan(&mut self, plan: &Arc<Plan>) -> Result<(Scan, DeadLetterLog), Early> {
        let loader = self.loader;
        let mut dead_letter = DeadLetterLog::new(
            &loader.dead_letter_dir,
            self.unit.flat_name(),
            &loader.instance,
            loader.dead_letter_budget,
        );
        let (unit, file, plan) = (
            Arc::clone(&self.unit),
            Arc::clone(&self.file),
            Arc::clone(plan),
        );
        let (progress, threshold) = (self.progress.clone(), loader.reject_threshold);
        let cancel = self.cancel.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let scan = scan::scan(
                &file,
                &unit,
                &plan,
                threshold,
                &mut dead_letter,
                progress,
                &cancel,
            )?;
            Ok((scan, dead_letter))
        })
        .await;
        let (scan, dead_letter) = match scanned {
            Ok(Ok((scan, dead_letter))) if scan.interrupted => {
                // The next attempt scans and logs again.
                dead_letter.discard();
                return Err(FileResult::Interrupted);
            }
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(self.fail(e)),
            Err(source) => {
                let what = "the scan of the file";
                return Err(self.fail(LoadError::Task { what, source }));
            }
        };
        crate::telemetry::metrics::bytes_read(scan.size);
        let s = &mut self.summary;
        s.fingerprint = scan.fingerprint.clone();
        s.size_bytes = scan.size;
        s.rows_in = scan.rows_in;
        s.rows_rejected = scan.rows_rejected;
        s.rejected_by_reason = scan.rejected_by_reason.clone();
        s.months = scan.months.iter().map(ToString::to_string).collect();
        s.symbols = scan.days.len() as u64;
        s.dead_letter_dropped = dead_letter.dropped();
        s.scan_stopped_after_line = scan.stopped_after_line;
        Ok((scan, dead_letter))
    }

    /// The history row this load starts from (outcome `loading`, nothing written yet).
    fn history_record(&self, scan: &Scan) -> HistoryRecord {
        HistoryRecord {
            fingerprint: scan.fingerprint.clone(),
            file_name: self.summary.file_name.clone(),
            symbol: self.summary.symbol.clone(),
            size_bytes: scan.size as i64,
            rows_in: scan.rows_in as i64,
            rows_written: 0,
            rows_rejected: scan.rows_rejected as i64,
            months: self.summary.months.clone(),
            first_bar: scan.first_bar,
            last_bar: scan.last_bar,
            outcome: Outcome::Loading,
            error: None,
            instance: self.loader.instance.clone(),
            write_timestamp: 0,
            started_at: self.claimed_at / 1000,
            finished_at: None,
        }
    }

    /// A unit refused whole (binary, not one-minute bars, another adjustment), an empty file,
    /// one with too many rejects, or one whose times look shifted by hours or stamped at the
    /// other end of the bar (the gate): nothing is written. The outcome, its reason code and the
    /// reason in words.
    fn early_outcome(&self, scan: &Scan) -> Option<(Outcome, Option<&'static str>, String)> {
        if let Some(refused) = &scan.refused {
            let why = format!("{}: {}", refused.code, refused.why);
            return Some((Outcome::Quarantined, Some(refused.code), why));
        }
        if scan.rows_in == 0 {
            return Some((Outcome::Empty, None, outcome::NO_DATA_LINES.to_owned()));
        }
        let threshold = self.loader.reject_threshold;
        if let Some(quarantined) = self.too_many_rejects(scan, threshold) {
            return Some((Outcome::Quarantined, Some(TOO_MANY_REJECTS), quarantined));
        }
        match &scan.verdict {
            Some(
                verdict @ (Verdict::Suspect { message, .. }
                | Verdict::SuspectBarEnd { message, .. }),
            ) => {
                let code = verdict.reason_code();
                let why = format!("{}: {message}; nothing written", code.unwrap_or_default());
                Some((Outcome::Quarantined, code, why))
            }
            Some(Verdict::NotEnoughEvidence { message }) => {
                debug!(file = %Shown(Path::new(self.unit.name())), verdict = %message,
                    "the time-zone gate could not judge the file; loading it");
                None
            }
            Some(Verdict::Pass) | None => None,
        }
    }

    /// The quarantine reason of a unit with too many rejected rows.
    fn too_many_rejects(&self, scan: &Scan, threshold: f64) -> Option<String> {
        scan::over_threshold(scan.rows_rejected, scan.rows_in, threshold).then(|| {
            let share = scan.rows_rejected as f64 / scan.rows_in as f64;
            let mut why = format!(
                "{} of {} rows rejected ({:.1}%), above the quarantine threshold of {:.1}%; \
                 nothing written (see the dead-letter log)",
                scan.rows_rejected,
                scan.rows_in,
                share * 100.0,
                threshold * 100.0
            );
            if let Some(line) = scan.stopped_after_line {
                why.push_str(&format!(
                    "; validation stopped early after line {line}, the file being certain to be \
                     quarantined (the counts are those of lines 1 to {line})"
                ));
            }
            why
        })
    }

    /// Keeps the dead-letter log and records an empty or quarantined file.
    async fn finish_early(
        &mut self,
        mut record: HistoryRecord,
        outcome: Outcome,
        why: String,
        mut dead_letter: DeadLetterLog,
    ) -> FileResult {
        if outcome == Outcome::Empty
            && let Err(e) = dead_letter.whole_file(EMPTY_FILE, &why)
        {
            return self.fail(LoadError::DeadLetter(e));
        }
        if let Err(early) = self.keep(dead_letter).await {
            return early;
        }
        record.outcome = outcome;
        record.error = Some(why.clone());
        if self.recorded_loaded(&record.fingerprint).await {
            // Its rows are in the database: the history keeps saying so.
            info!(file = %Shown(Path::new(self.unit.name())), outcome = outcome.as_str(),
                "this content is recorded as loaded; its history row is kept");
        } else if let Err(early) = self.record_final(&mut record).await {
            return early;
        }
        let summary = self.take_summary();
        match outcome {
            Outcome::Empty => FileResult::Empty(summary),
            _ => FileResult::Quarantined(summary, why),
        }
    }

    /// Whether the history records this identity as loaded (a failed lookup says no).
    async fn recorded_loaded(&self, fingerprint: &str) -> bool {
        let (loader, session) = (self.loader, self.loader.writer.session().clone());
        let looked_up = loader
            .writer
            .retrier()
            .retrying(self.cancel, || {
                loader
                    .history
                    .lookup(&session, fingerprint, &self.summary.symbol)
            })
            .await;
        matches!(looked_up, Ok(Some(k)) if k.outcome == Outcome::Loaded)
    }

    /// Exactly once per content: the history decides whether to write, and at which timestamp.
    async fn write_timestamp(
        &mut self,
        scan: &Scan,
        dead_letter: DeadLetterLog,
    ) -> Result<i64, Early> {
        let (loader, session) = (self.loader, self.loader.writer.session().clone());
        let looked_up = loader
            .writer
            .retrier()
            .retrying(self.cancel, || {
                loader
                    .history
                    .lookup(&session, &scan.fingerprint, &self.summary.symbol)
            })
            .await;
        let known = match looked_up {
            Ok(k) => k,
            // Interrupted: the next attempt writes the log again.
            Err(RequestError::Cancelled) => {
                dead_letter.discard();
                return Err(FileResult::Interrupted);
            }
            // Failed: keep the rejects with the failed file.
            Err(source) => {
                self.keep(dead_letter).await?;
                let step = "cannot read the load history";
                return Err(self.fail(LoadError::Database { step, source }));
            }
        };
        let force = self.options.force;
        let timestamp = match known {
            Some(k) if k.outcome == Outcome::Loaded && !force => {
                // Its rejects were logged when it was loaded: nothing to log again.
                dead_letter.discard();
                self.summary.rows_written = scan.rows_in - scan.rows_rejected;
                let summary = self.take_summary();
                return Err(if self.options.resuming {
                    FileResult::AlreadyDone(summary)
                } else {
                    FileResult::Duplicate(summary)
                });
            }
            // Resuming an interrupted load of this content: the same timestamp keeps it
            // idempotent. A new delivery of it (dropped again, or handed back) takes its own
            // claim time, so it wins over what was loaded since, and replaces partial rows.
            Some(k) if k.outcome == Outcome::Loading && self.options.resuming && !force => {
                k.write_timestamp
            }
            _ => self.claimed_at + self.member_offset,
        };
        self.keep(dead_letter).await?;
        Ok(timestamp)
    }

    /// Pass 2: writes the good rows of the content pass 1 validated, and nothing else.
    async fn write_rows(
        &mut self,
        plan: &Arc<Plan>,
        scan: &Scan,
        write_timestamp: i64,
    ) -> Result<(), Early> {
        let loader = self.loader;
        let job = RowsJob {
            file: Arc::clone(&self.file),
            unit: Arc::clone(&self.unit),
            plan: Arc::clone(plan),
            writer: &loader.writer,
            limits: loader.limits,
            write_timestamp,
            layout: loader.layout,
            progress: self.progress.clone(),
            content: Arc::clone(&scan.content),
        };
        match rows::write_rows(job, self.cancel).await {
            Written::All { rows } => {
                self.summary.rows_written = rows;
                Ok(())
            }
            Written::Changed { rows, why } => {
                self.summary.rows_written = rows;
                warn!(file = %Shown(self.path), written = rows, change = %why,
                    "the file changed while it was being loaded; only rows of the content \
                     validated were written; handing it back");
                Err(FileResult::Changed(self.take_summary()))
            }
            Written::Stopped { rows, why } => {
                self.summary.rows_written = rows;
                Err(match why {
                    Stop::Cancelled => FileResult::Interrupted,
                    Stop::Failed(e) => self.fail(e),
                })
            }
        }
    }

    /// Replace, not merge: for each symbol of the delivery, a range tombstone just below the
    /// new rows' (and cells') timestamp over every bucket from its first bar's local day to its
    /// last's (a multi-symbol day file replaces each symbol's rows of that day only), in each
    /// table the layout writes. Sent concurrently, under the writer's in-flight bound.
    async fn replace_range(
        &mut self,
        plan: &Plan,
        scan: &Scan,
        write_timestamp: i64,
    ) -> Result<(), Early> {
        let loader = self.loader;
        let mut ranges = Vec::new();
        for (named, (first, last)) in &scan.days {
            // Rows of a multi-symbol file all name their symbol.
            let Some(symbol) = named.as_ref().or(plan.symbol.as_ref()) else {
                continue;
            };
            if loader.layout.writes_rows() {
                for range in replace::replaced_ranges(loader.tz, *first, *last) {
                    ranges.push((symbol.clone(), Replace::Rows(range)));
                }
            }
            if loader.layout.writes_days() {
                for days in replace::replaced_days(*first, *last) {
                    ranges.push((symbol.clone(), Replace::Days(days)));
                }
            }
        }
        let cancel = self.cancel;
        let deletes = futures_util::stream::iter(ranges)
            .map(|(symbol, range)| async move {
                let _slot = loader.writer.slot().await;
                match range {
                    Replace::Rows(range) => {
                        delete_range(loader, &symbol, range, write_timestamp, cancel).await
                    }
                    Replace::Days(days) => {
                        delete_days(loader, &symbol, days, write_timestamp, cancel).await
                    }
                }
            })
            .buffer_unordered(REPLACE_CONCURRENCY);
        futures_util::pin_mut!(deletes);
        while let Some(deleted) = deletes.next().await {
            self.check(deleted, "cannot replace the older rows of the range")?;
        }
        Ok(())
    }

    /// Records the final history row of the file.
    async fn record_final(&mut self, record: &mut HistoryRecord) -> Result<(), Early> {
        record.finished_at = Some(now_micros() / 1000);
        self.record(record, "cannot record the load history").await
    }

    /// Writes `record` to the load history, retrying while the database is away.
    async fn record(&mut self, record: &HistoryRecord, step: &'static str) -> Result<(), Early> {
        let (loader, session) = (self.loader, self.loader.writer.session().clone());
        let recorded = loader
            .writer
            .retrier()
            .retrying(self.cancel, || loader.history.record(&session, record))
            .await;
        self.check(recorded, step)
    }

    /// A database request's result as a phase result: shutdown interrupts, a refusal fails.
    fn check<T>(&mut self, r: Result<T, RequestError>, step: &'static str) -> Result<T, Early> {
        match r {
            Ok(v) => Ok(v),
            Err(RequestError::Cancelled) => Err(FileResult::Interrupted),
            Err(source) => Err(self.fail(LoadError::Database { step, source })),
        }
    }

    /// Makes the file's dead-letter log durable under its final name.
    async fn keep(&mut self, log: DeadLetterLog) -> Result<(), Early> {
        let fingerprint = self.summary.fingerprint.clone();
        let kept = tokio::task::spawn_blocking(move || log.finish(&fingerprint)).await;
        match kept {
            Ok(Ok(path)) => {
                self.summary.dead_letter = path;
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(LoadError::DeadLetter(e))),
            Err(source) => {
                let what = "writing the dead-letter log";
                Err(self.fail(LoadError::Task { what, source }))
            }
        }
    }

    fn take_summary(&mut self) -> FileSummary {
        std::mem::take(&mut self.summary)
    }

    /// The file's failed result.
    fn fail(&mut self, e: LoadError) -> FileResult {
        FileResult::failed(self.take_summary(), e)
    }
}

/// Range deletes of one delivery sent at once (each also takes an in-flight slot).
const REPLACE_CONCURRENCY: usize = 16;

/// One range tombstone of a delivery's replaced span.
enum Replace {
    /// In the bars table.
    Rows(replace::Replaced),
    /// In the day-cell table.
    Days(replace::ReplacedDays),
}

/// Deletes one symbol's cells of one bucket's replaced days, below `write_timestamp`: the
/// cells this delivery wrote at `write_timestamp` stay, every older one of those days goes (a
/// covered day without bars in the delivery included).
async fn delete_days(
    loader: &Loader,
    symbol: &Symbol,
    days: replace::ReplacedDays,
    write_timestamp: i64,
    cancel: &CancellationToken,
) -> Result<(), RequestError> {
    let session = loader.writer.session();
    let statement = loader
        .delete_days
        .as_ref()
        .expect("a loader writing day cells prepared the day delete");
    let bucket = days.bucket.to_string();
    let values = (
        write_timestamp - 1,
        symbol.as_str(),
        bucket.as_str(),
        days.from,
        days.to,
    );
    loader
        .writer
        .retrier()
        .retrying(cancel, || async {
            session
                .execute_unpaged(statement, &values)
                .await
                .map(|_| ())
        })
        .await
}

/// Deletes one symbol's rows of one bucket's replaced range, below `write_timestamp`.
async fn delete_range(
    loader: &Loader,
    symbol: &Symbol,
    range: replace::Replaced,
    write_timestamp: i64,
    cancel: &CancellationToken,
) -> Result<(), RequestError> {
    let session = loader.writer.session();
    let bucket = range.bucket.to_string();
    let values = (
        write_timestamp - 1,
        symbol.as_str(),
        bucket.as_str(),
        CqlTimestamp(range.from_millis),
        CqlTimestamp(range.to_millis),
    );
    loader
        .writer
        .retrier()
        .retrying(cancel, || async {
            session
                .execute_unpaged(&loader.delete_range, &values)
                .await
                .map(|_| ())
        })
        .await
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}
