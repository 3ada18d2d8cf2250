//! The daemon (`run`): the one module that wires every stage together. Watch feeds paths, claim
//! takes them into processing/, the loader runs each file through parse → validate → batch →
//! write → account, and the result decides where the file goes. SIGTERM/SIGINT stop claiming,
//! let files in flight finish within the deadline, and exit 0; a second signal exits at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::account::history::History;
use crate::config::Settings;
use crate::ingest::{FileResult, FileSummary, LoadOptions, Loader};
use crate::pipeline::batch::BatchLimits;
use crate::pipeline::claim::{self, FolderError, Folders};
use crate::pipeline::validate::RejectReason;
use crate::pipeline::watch::{self, WatchOptions};
use crate::pipeline::write::Writer;
use crate::store::retry::{Backoff, Retrier, RetryCause};
use crate::store::{self, BarStatements, Schema};
use crate::telemetry::health::{self, Health};
use crate::telemetry::{exporter, metrics, systemd};

/// Paths reported by the watcher and not yet claimed.
const WATCH_QUEUE: usize = 1024;
/// How often readiness checks the database when nothing else talks to it.
const DATABASE_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Main-loop tick when systemd's watchdog is off.
const IDLE_TICK: Duration = Duration::from_secs(60);
/// How often the backlog gauges are refreshed.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Folders(#[from] FolderError),
    #[error("cannot watch the inbox: {0}")]
    Watch(#[from] watch::WatchError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Exporter(#[from] exporter::ExporterError),
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

/// Connects, creates the schema and prepares the statements; returns the shared loader.
/// With `wait_for_database`, an unreachable database is retried until it answers (the daemon);
/// without, it is an error at once (`load`). None: cancelled while waiting.
pub async fn connect_loader(
    settings: &Settings,
    health: Arc<Health>,
    dead_letter_dir: PathBuf,
    cancel: &CancellationToken,
    wait_for_database: bool,
) -> Result<Option<Arc<Loader>>, DaemonError> {
    let backoff = Backoff {
        initial: settings.ingest.retry_initial,
        max: settings.ingest.retry_max,
    };
    let mut attempt = 0;
    let session = loop {
        match store::connect(settings).await {
            Ok(s) => break s,
            Err(e) if !wait_for_database => return Err(e.into()),
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
    };
    health.set_database_up(true);
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema).await?;
    let statements = BarStatements::prepare(&session, &schema).await?;
    let history = History::prepare(&session, &schema).await?;
    let writer = Writer::new(
        Arc::new(session),
        &statements,
        settings.ingest.max_batches_in_flight,
        Retrier::new(backoff, health),
    );
    Ok(Some(Arc::new(Loader {
        writer,
        history,
        delete_range: statements.delete_range,
        tz: settings.timezone,
        limits: BatchLimits {
            max_rows: settings.ingest.batch_rows,
            max_bytes: settings.ingest.batch_max_bytes,
        },
        reject_threshold: settings.ingest.reject_threshold,
        dead_letter_dir,
        instance: settings.instance.clone(),
    })))
}

/// Runs the daemon until a stop signal arrives.
pub async fn run(settings: Settings) -> Result<(), DaemonError> {
    let folders = Folders::new(
        &settings.paths.inbox,
        &settings.paths.state_root,
        &settings.instance,
    );
    folders.create_all()?;
    let health = Arc::new(Health::default());

    // First signal: stop claiming, finish within the deadline. Second: exit at once.
    let stop = CancellationToken::new();
    let hard = CancellationToken::new();
    spawn_signal_handler(stop.clone()).map_err(DaemonError::Signal)?;

    // The endpoint comes first: /healthz answers while the database is still awaited.
    let labels = metrics::KnownLabels {
        reject_reasons: &RejectReason::CODES,
        retry_causes: &RetryCause::LABELS,
    };
    let served = exporter::start(
        settings.metrics_listen,
        health.clone(),
        labels,
        hard.clone(),
    )
    .await?;
    metrics::build_info();
    info!(address = %served, "serving /metrics, /healthz and /readyz");
    systemd::status("connecting to the database");

    let Some(loader) = connect_loader(
        &settings,
        health.clone(),
        folders.dead_letter.clone(),
        &stop,
        true,
    )
    .await?
    else {
        info!("stopped before the database was reachable");
        return Ok(());
    };
    info!(
        instance = %settings.instance,
        contact_points = %settings.contact_points.join(","),
        keyspace = %settings.database.keyspace,
        inbox = %folders.inbox.display(),
        "connected and schema ready"
    );

    tokio::spawn(health::probe_database(
        loader.writer.session().clone(),
        health.clone(),
        DATABASE_PROBE_INTERVAL,
        hard.clone(),
    ));

    let files_slots = Arc::new(Semaphore::new(settings.ingest.files_in_parallel));
    let mut files: JoinSet<()> = JoinSet::new();

    // Finish what an earlier run of this instance claimed and did not finish.
    let pending = claim::pending(&folders.processing).map_err(|source| DaemonError::Io {
        path: folders.processing.clone(),
        source,
    })?;
    if !pending.is_empty() {
        info!(
            files = pending.len(),
            "resuming files claimed by an earlier run"
        );
    }
    // Each waits for a file slot in its own task: start-up (the watcher, READY, the watchdog)
    // never waits for a file to finish.
    for path in pending {
        let (loader, folders, hard) = (loader.clone(), folders.clone(), hard.clone());
        let slots = files_slots.clone();
        files.spawn(async move {
            let _permit = slots.acquire_owned().await.expect("never closed");
            process(
                &loader,
                &folders,
                &path,
                LoadOptions {
                    resuming: true,
                    ..Default::default()
                },
                &hard,
            )
            .await;
        });
    }

    let (tx, mut rx) = mpsc::channel::<PathBuf>(WATCH_QUEUE);
    let (first_scan_tx, first_scan_rx) = oneshot::channel();
    let watch_options = WatchOptions {
        inbox: folders.inbox.clone(),
        mode: settings.watch.mode,
        rescan_interval: settings.watch.rescan_interval,
        poll_interval: settings.watch.poll_interval,
        settle: settings.watch.settle,
    };
    let watcher = tokio::spawn(watch::watch(watch_options, tx, first_scan_tx, stop.clone()));
    {
        let health = health.clone();
        tokio::spawn(async move {
            if first_scan_rx.await.is_ok() {
                health.set_watcher_ready(true);
                systemd::ready();
                systemd::status("watching the inbox");
                info!("first scan of the inbox done; ready");
            }
        });
    }
    tokio::spawn(report_backlog(folders.clone(), stop.clone()));

    // The main loop pings the watchdog: if it stops turning, systemd restarts the service.
    let mut watchdog = tokio::time::interval(systemd::watchdog_interval().unwrap_or(IDLE_TICK));
    loop {
        let path = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => break },
            _ = watchdog.tick() => {
                systemd::watchdog_ping();
                continue;
            }
            _ = stop.cancelled() => break,
        };
        // Wait for a file slot before claiming, so that idle instances get their share.
        let permit = loop {
            tokio::select! {
                p = files_slots.clone().acquire_owned() => break Some(p.expect("never closed")),
                _ = watchdog.tick() => systemd::watchdog_ping(),
                _ = stop.cancelled() => break None,
            }
        };
        let Some(permit) = permit else { break };
        // Reap finished file tasks so the set does not grow.
        while files.try_join_next().is_some() {}
        let claimed = match claim::claim(&path, &folders.processing) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot claim; it stays in the inbox");
                continue;
            }
        };
        let (loader, folders, hard) = (loader.clone(), folders.clone(), hard.clone());
        files.spawn(async move {
            let _permit = permit;
            process(&loader, &folders, &claimed, LoadOptions::default(), &hard).await;
        });
    }

    health.set_watcher_ready(false);
    systemd::stopping();
    info!(
        files_in_flight = files.len(),
        deadline = ?settings.ingest.shutdown_deadline,
        "stopping: no new files are claimed; finishing files in flight"
    );
    match watcher.await {
        Ok(Err(e)) => warn!(error = %e, "the watcher ended with an error"),
        Err(e) => warn!(error = %e, "the watcher task failed"),
        Ok(Ok(())) => {}
    }
    let drained = tokio::time::timeout(settings.ingest.shutdown_deadline, async {
        while files.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "deadline passed: interrupting files in flight; they stay claimed and resume at the next start"
        );
        hard.cancel();
        while files.join_next().await.is_some() {}
    }
    info!("stopped");
    Ok(())
}

/// Listens for SIGTERM/SIGINT: the first cancels `stop`, the second exits the process at once
/// (nothing is lost: claimed files resume at the next start, writes are idempotent).
fn spawn_signal_handler(stop: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            received += 1;
            if received == 1 {
                info!("stop signal received");
                stop.cancel();
            } else {
                warn!("second stop signal: exiting at once");
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// Loads one claimed file and moves it to where its result says.
async fn process(
    loader: &Arc<Loader>,
    folders: &Folders,
    path: &Path,
    options: LoadOptions,
    cancel: &CancellationToken,
) {
    let result = loader.load(path, options, cancel, None).await;
    let moved = match &result {
        FileResult::Loaded(_) | FileResult::AlreadyDone(_) => claim::archive(path, &folders.done),
        FileResult::Duplicate(s) => {
            info!(file = %s.file_name, fingerprint = %s.fingerprint, "already loaded (same content); archived as a duplicate");
            claim::archive(path, &folders.duplicates)
        }
        FileResult::Quarantined(s, why) | FileResult::Failed(s, why) => {
            error!(file = %path.display(), reason = %why, "file not loaded; moved to failed/");
            fail(path, folders, s, why, &result)
        }
        FileResult::Empty(s) => {
            warn!(file = %path.display(), "empty file; moved to failed/");
            fail(path, folders, s, "the file has no data lines", &result)
        }
        FileResult::Changed(_) => claim::archive(path, &folders.inbox),
        FileResult::Interrupted => return,
    };
    if let Err(e) = moved {
        error!(file = %path.display(), error = %e, "cannot move the file out of processing/; it will be looked at again at the next start");
    }
}

fn fail(
    path: &Path,
    folders: &Folders,
    summary: &FileSummary,
    why: &str,
    result: &FileResult,
) -> std::io::Result<PathBuf> {
    let archived = claim::archive(path, &folders.failed)?;
    let outcome = match result {
        FileResult::Quarantined(..) => "quarantined",
        FileResult::Empty(_) => "empty",
        _ => "failed",
    };
    let body = serde_json::json!({
        "file": summary.file_name,
        "outcome": outcome,
        "error": why,
        "fingerprint": summary.fingerprint,
        "symbol": summary.symbol,
        "rows_in": summary.rows_in,
        "rows_written": summary.rows_written,
        "rows_rejected": summary.rows_rejected,
        "dead_letter": summary.dead_letter,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    claim::write_sidecar(&archived, &body)?;
    Ok(archived)
}

/// Refreshes the backlog gauges: files and bytes in the inbox and in processing/.
async fn report_backlog(folders: Folders, stop: CancellationToken) {
    loop {
        let (mut files, mut bytes) = (0u64, 0u64);
        for dir in [&folders.inbox, &folders.processing] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if !watch::is_candidate_name(&entry.file_name()) {
                    continue;
                }
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    files += 1;
                    bytes += meta.len();
                }
            }
        }
        metrics::backlog(files, bytes);
        tokio::select! {
            _ = tokio::time::sleep(BACKLOG_INTERVAL) => {}
            _ = stop.cancelled() => return,
        }
    }
}
