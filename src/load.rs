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

use crate::config::Settings;
use crate::ingest::{FileResult, LoadOptions, Loader, Progress, WaitForDatabase};
use crate::pipeline::watch::is_candidate_name;
use crate::telemetry::health::Health;

/// Exit code: every file's rows were written (or already were).
pub const EXIT_OK: u8 = 0;
/// Exit code: rows were rejected, or files failed, were quarantined or empty.
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: the load could not run (bad arguments, database unreachable).
pub const EXIT_CANNOT_RUN: u8 = 2;
/// How often plain progress lines are printed when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Arguments of `bar-ingest load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Files or folders (folders are walked recursively; dot-files, *.part and *.tmp skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Load files even if the same content is recorded as loaded.
    #[arg(long)]
    pub force: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// The files named by `paths`, folders expanded, in a stable order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if !is_candidate_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out)?,
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    Ok(())
}

/// Totals over every file of a run.
#[derive(Debug, Default)]
struct Totals {
    loaded: u64,
    duplicate: u64,
    quarantined: u64,
    failed: u64,
    empty: u64,
    rows_in: u64,
    rows_written: u64,
    rows_rejected: u64,
}

/// Runs `bar-ingest load`.
pub async fn cli_main(settings: Settings, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let files = match expand(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(ExitCode::from(EXIT_CANNOT_RUN));
        }
    };
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();

    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "bar-ingest: interrupted; stopping (files not finished can be loaded again)"
                );
                cancel.cancel();
            }
        });
    }
    // `load` does not wait for a database that is down at start: it says so and exits 2.
    // (Once running, writes are retried for as long as the database is away, like the daemon.)
    let dead_letter_dir = settings.paths.state_root.join("dead-letter");
    let health = Arc::new(Health::default());
    let wait = WaitForDatabase::No;
    let loader = match Loader::connect(&settings, health, dead_letter_dir, wait, &cancel).await {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(ExitCode::from(EXIT_CANNOT_RUN)),
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(ExitCode::from(EXIT_CANNOT_RUN));
        }
    };

    let bar = progress_bar(total_bytes * 2, args.no_progress);
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut last_plain = Instant::now();
    let mut interrupted = false;
    for file in &files {
        let progress = Arc::new(Progress::default());
        let base = bar.position();
        let options = LoadOptions {
            force: args.force,
            resuming: false,
        };
        let load = loader.load(file, options, &cancel, Some(progress.clone()));
        tokio::pin!(load);
        let result = loop {
            tokio::select! {
                r = &mut load => break r,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    bar.set_position(base + progress.bytes.load(Ordering::Relaxed));
                    let rows = totals.rows_written + progress.rows_written.load(Ordering::Relaxed);
                    bar.set_message(format!("{} rows written, {:.0} rows/s", rows, rows as f64 / started.elapsed().as_secs_f64()));
                    if bar.is_hidden() && !args.no_progress && last_plain.elapsed() >= PLAIN_PROGRESS_EVERY {
                        last_plain = Instant::now();
                        eprintln!("progress: {} of {} bytes read, {rows} rows written", bar.position(), total_bytes * 2);
                    }
                }
            }
        };
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        bar.set_position(base + size * 2);
        let line = describe(file, &result);
        bar.suspend(|| eprintln!("{line}"));
        match result {
            FileResult::Loaded(s) | FileResult::AlreadyDone(s) => {
                totals.loaded += 1;
                add_rows(&mut totals, &s);
            }
            FileResult::Duplicate(_) => totals.duplicate += 1,
            FileResult::Quarantined(s, _) => {
                totals.quarantined += 1;
                totals.rows_in += s.rows_in;
                totals.rows_rejected += s.rows_rejected;
            }
            FileResult::Failed(s, _) => {
                totals.failed += 1;
                add_rows(&mut totals, &s);
            }
            FileResult::Empty(_) => totals.empty += 1,
            FileResult::Changed(_) => totals.failed += 1,
            FileResult::Interrupted => {
                interrupted = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "summary: {} files: {} loaded, {} duplicate, {} quarantined, {} failed, {} empty; \
         rows: {} in, {} written, {} rejected; {:.1} s, {:.0} rows/s{}",
        files.len(),
        totals.loaded,
        totals.duplicate,
        totals.quarantined,
        totals.failed,
        totals.empty,
        totals.rows_in,
        totals.rows_written,
        totals.rows_rejected,
        secs,
        totals.rows_written as f64 / secs.max(1e-9),
        if interrupted { " (interrupted)" } else { "" }
    );
    let clean = !interrupted
        && totals.rows_rejected == 0
        && totals.failed + totals.quarantined + totals.empty == 0;
    Ok(ExitCode::from(if clean { EXIT_OK } else { EXIT_PARTIAL }))
}

fn add_rows(t: &mut Totals, s: &crate::ingest::FileSummary) {
    t.rows_in += s.rows_in;
    t.rows_written += s.rows_written;
    t.rows_rejected += s.rows_rejected;
}

fn describe(file: &Path, r: &FileResult) -> String {
    let f = file.display();
    match r {
        FileResult::Loaded(s) | FileResult::AlreadyDone(s) => format!(
            "loaded      {f}: {} rows written, {} rejected{}",
            s.rows_written,
            s.rows_rejected,
            s.dead_letter
                .as_ref()
                .map(|d| format!(" (dead letters: {})", d.display()))
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
