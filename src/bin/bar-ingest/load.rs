//! `bar-ingest load PATH...`: the daemon's pipeline run once over files and folders, in place,
//! with a progress bar on a terminal, a summary, and an exit code that says how it went.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use bar_ingest::config::Settings;
use bar_ingest::ingest::{
    DeliveryResult, FileResult, FileSummary, LoadOptions, Loader, Progress, WaitForDatabase,
};
use bar_ingest::names::Shown;
use bar_ingest::pipeline::watch::is_candidate_name;
use bar_ingest::telemetry::health::Health;

use crate::cli::LoadArgs;
use crate::exit;

/// How often the progress bar is refreshed.
const PROGRESS_TICK: Duration = Duration::from_millis(200);
/// How often plain progress lines are printed when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a folder held that is not loaded: a symbolic link, a FIFO, a socket, a device (folders
/// are walked, dot-files and `*.part`/`*.tmp` are not deliveries and are not listed).
pub struct Skipped {
    pub path: PathBuf,
    pub kind: &'static str,
}

/// The files named by `paths`, folders expanded, in a stable order, and the entries of those
/// folders that are not regular files (never followed).
pub fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Skipped>), String> {
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", Shown(p)))?;
        if meta.is_dir() {
            walk(p, &mut out, &mut skipped)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok((out, skipped))
}

/// What an entry that is neither a folder nor a regular file is.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_symlink() {
        "a symbolic link (load follows none: name the file it points to)"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", Shown(dir)))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if !is_candidate_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out, skipped)?,
            Ok(t) if t.is_file() => out.push(path),
            Ok(t) => skipped.push(Skipped {
                path,
                kind: kind_of(t),
            }),
            Err(_) => skipped.push(Skipped {
                path,
                kind: "unreadable (its type cannot be read)",
            }),
        }
    }
    Ok(())
}

/// Totals over every file of a run.
#[derive(Debug, Default)]
struct Totals {
    files: usize,
    /// Units loaded or attempted (a zip's members count one each).
    units: u64,
    loaded: u64,
    duplicate: u64,
    quarantined: u64,
    failed: u64,
    empty: u64,
    rows_in: u64,
    rows_written: u64,
    rows_rejected: u64,
    interrupted: bool,
}

impl Totals {
    /// Counts one file's result; false when the run was interrupted.
    fn count(&mut self, result: &FileResult) -> bool {
        if !matches!(result, FileResult::Interrupted) {
            self.units += 1;
        }
        let rows = |t: &mut Self, s: &FileSummary| {
            t.rows_in += s.rows_in;
            t.rows_written += s.rows_written;
            t.rows_rejected += s.rows_rejected;
        };
        match result {
            FileResult::Loaded(s) | FileResult::AlreadyDone(s) => {
                self.loaded += 1;
                rows(self, s);
            }
            FileResult::Duplicate(_) => self.duplicate += 1,
            FileResult::Quarantined(s, _) => {
                self.quarantined += 1;
                self.rows_in += s.rows_in;
                self.rows_rejected += s.rows_rejected;
            }
            FileResult::Failed(s, _) => {
                self.failed += 1;
                rows(self, s);
            }
            FileResult::Empty(_) => self.empty += 1,
            FileResult::Changed(_) => self.failed += 1,
            FileResult::Interrupted => {
                self.interrupted = true;
                return false;
            }
        }
        true
    }

    /// Every row written, nothing rejected, failed, quarantined or empty, not interrupted.
    fn clean(&self) -> bool {
        !self.interrupted
            && self.rows_rejected == 0
            && self.failed + self.quarantined + self.empty == 0
    }

    fn print_summary(&self, secs: f64) {
        eprintln!(
            "summary: {} files{}: {} loaded, {} duplicate, {} quarantined, {} failed, {} empty; \
             rows: {} in, {} written, {} rejected; {:.1} s, {:.0} rows/s{}",
            self.files,
            if self.units == self.files as u64 {
                String::new()
            } else {
                format!(" ({} units)", self.units)
            },
            self.loaded,
            self.duplicate,
            self.quarantined,
            self.failed,
            self.empty,
            self.rows_in,
            self.rows_written,
            self.rows_rejected,
            secs,
            self.rows_written as f64 / secs.max(1e-9),
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
    }
}

/// Runs `bar-ingest load`.
pub async fn run(settings: Settings, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let (files, skipped) = match expand(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(exit::code(exit::CANNOT_RUN));
        }
    };
    for s in &skipped {
        eprintln!("bar-ingest: skipped {}: {}", Shown(&s.path), s.kind);
    }
    if files.is_empty() && !skipped.is_empty() {
        eprintln!(
            "bar-ingest: error: nothing to load: {} entries skipped, no regular file",
            skipped.len()
        );
        return Ok(exit::code(exit::CANNOT_RUN));
    }
    let cancel = cancel_on_ctrl_c();
    // `load` does not wait for a database that is down at start: it says so and exits 2.
    // (Once running, writes are retried for as long as the database is away, like the daemon.)
    let dead_letter_dir = settings.paths.state_root.join("dead-letter");
    let health = Arc::new(Health::default());
    let wait = WaitForDatabase::No;
    let loader = match Loader::connect(&settings, health, dead_letter_dir, wait, &cancel).await {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(exit::code(exit::CANNOT_RUN)),
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(exit::code(exit::CANNOT_RUN));
        }
    };
    let mut view = ProgressView::new(&files, args.no_progress);
    let mut totals = Totals {
        files: files.len(),
        ..Totals::default()
    };
    // Each file's write timestamp is the time it is opened (no claim).
    let options = LoadOptions {
        force: args.force,
        ..LoadOptions::default()
    };
    for file in &files {
        let progress = Arc::new(Progress::default());
        let load = loader.load(file, options, &cancel, Some(progress.clone()));
        let result = view
            .follow(file, load, &progress, totals.rows_written)
            .await;
        if !result.units.iter().all(|r| totals.count(r)) {
            break;
        }
    }
    view.bar.finish_and_clear();
    totals.print_summary(view.started.elapsed().as_secs_f64());
    Ok(exit::code(if totals.clean() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

/// A token cancelled at the first Ctrl-C: files not finished can be loaded again.
fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bar-ingest: interrupted; stopping (files not finished can be loaded again)");
            on_signal.cancel();
        }
    });
    cancel
}

/// The progress bar (or plain progress lines when stderr is not a terminal).
struct ProgressView {
    bar: ProgressBar,
    /// Both passes read every file: the bar runs to twice the bytes.
    total: u64,
    plain: bool,
    last_plain: Instant,
    started: Instant,
}

impl ProgressView {
    fn new(files: &[PathBuf], no_progress: bool) -> Self {
        let bytes: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let bar = progress_bar(bytes * 2, no_progress);
        Self {
            plain: bar.is_hidden() && !no_progress,
            bar,
            total: bytes * 2,
            last_plain: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Drives `load` to its end, updating the view; prints the file's line.
    async fn follow(
        &mut self,
        file: &Path,
        load: impl std::future::Future<Output = DeliveryResult>,
        progress: &Progress,
        rows_before: u64,
    ) -> DeliveryResult {
        let base = self.bar.position();
        tokio::pin!(load);
        let result = loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tokio::time::sleep(PROGRESS_TICK) => self.tick(base, progress, rows_before),
            }
        };
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        self.bar.set_position(base + size * 2);
        let several = result.units.len() > 1;
        for unit in &result.units {
            let shown = match unit.summary() {
                Some(s) if several => file.with_file_name(&s.file_name),
                _ => file.to_owned(),
            };
            let line = describe(&shown, unit);
            self.bar.suspend(|| eprintln!("{line}"));
        }
        result
    }

    fn tick(&mut self, base: u64, progress: &Progress, rows_before: u64) {
        self.bar
            .set_position(base + progress.bytes.load(Ordering::Relaxed));
        let rows = rows_before + progress.rows_written.load(Ordering::Relaxed);
        let rate = rows as f64 / self.started.elapsed().as_secs_f64();
        self.bar
            .set_message(format!("{rows} rows written, {rate:.0} rows/s"));
        if self.plain && self.last_plain.elapsed() >= PLAIN_PROGRESS_EVERY {
            self.last_plain = Instant::now();
            let read = self.bar.position();
            eprintln!(
                "progress: {read} of {} bytes read, {rows} rows written",
                self.total
            );
        }
    }
}

fn describe(file: &Path, r: &FileResult) -> String {
    let f = Shown(file);
    match r {
        FileResult::Loaded(s) | FileResult::AlreadyDone(s) => format!(
            "loaded      {f}: {} rows written, {} rejected ({}{}){}",
            s.rows_written,
            s.rows_rejected,
            s.layout,
            if s.symbols > 1 {
                format!(", {} symbols", s.symbols)
            } else {
                String::new()
            },
            s.dead_letter
                .as_ref()
                .map(|d| format!(" (dead letters: {})", Shown(d)))
                .unwrap_or_default()
        ),
        FileResult::Duplicate(_) => {
            format!("duplicate   {f}: same content already loaded (use --force to reload)")
        }
        FileResult::Quarantined(_, why) => format!("quarantined {f}: {why}"),
        FileResult::Failed(_, why) => format!("failed      {f}: {}", why.chain()),
        FileResult::Empty(_) => format!("empty       {f}: no data lines"),
        FileResult::Changed(_) => {
            format!("changed     {f}: the file changed while it was read; load it again")
        }
        FileResult::Interrupted => format!("interrupted {f}"),
    }
}

fn progress_bar(len: u64, disabled: bool) -> ProgressBar {
    if disabled || !std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        return bar;
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, ETA {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
