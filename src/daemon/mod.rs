//! The daemon (`run`): the one module that wires every stage together. Watch feeds paths, claim
//! takes them into processing/, the loader runs each file through every stage, and the result
//! decides where the file goes. [`run`] takes its stop signal as a future (the binary turns
//! SIGTERM/SIGINT into it), so tests run the daemon in-process: when it resolves, no new file is
//! claimed, files in flight get `ingest.shutdown_deadline` to finish, and `run` returns. It
//! takes reloads the same way, as a channel of [`Reload`] requests (the binary sends one per
//! SIGHUP): the live keys apply at once, the others are named as needing a restart.
//! Beside the flow: retention sweeps the archive folders, and below the free-space floor no new
//! file is claimed.

mod backlog;
mod blocking;
mod changing;
mod files;
pub mod reload;
pub mod retention;
mod space;

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::changing::Changing;
use crate::config::Settings;
use crate::ingest::{DeliveryResult, LoadOptions, Loader, WaitForDatabase};
use crate::names::Shown;
use crate::pipeline::claim::{self, FolderError, Folders};
use crate::pipeline::validate::RejectReason;
use crate::pipeline::watch::{self, WatchOptions};
use crate::store::{
    self,
    retry::{Backoff, RetryCause},
};
use crate::telemetry::health::{self, Health};
use crate::telemetry::{exporter, metrics, systemd};
use space::SpaceFloor;

pub use reload::Reload;

/// Paths reported by the watcher and not yet claimed.
const WATCH_QUEUE: usize = 1024;
/// How often readiness checks the database when nothing else talks to it.
const DATABASE_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long files may take to end after the deadline interrupted them (a pass stops within
/// milliseconds; a task still running after this is abandoned: its file stays claimed).
const DRAIN_AFTER_INTERRUPT: Duration = Duration::from_secs(10);
/// Main-loop tick when systemd's watchdog is off.
const IDLE_TICK: Duration = Duration::from_secs(60);

/// Why the daemon could not run, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Folders(#[from] FolderError),
    #[error("cannot watch the inbox")]
    Watch(#[from] watch::WatchError),
    /// The watcher ended although no stop was asked for: no new file would ever be seen.
    #[error("the inbox watcher stopped unexpectedly{0}")]
    WatcherEnded(String),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Exporter(#[from] exporter::ExporterError),
}

/// Runs the daemon until `shutdown` resolves, applying the `reloads` it receives (none when
/// the sender is dropped). Errors: anything that keeps it from starting, and a watcher that
/// stops on its own.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: mpsc::Receiver<Reload>,
) -> Result<(), DaemonError> {
    let stop = CancellationToken::new();
    let on_stop = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        info!("stop requested");
        on_stop.cancel();
    });
    // Everything the daemon spawned (endpoint, probes, file tasks) ends when `run` returns.
    let hard = CancellationToken::new();
    let _end = hard.clone().drop_guard();
    let Some(mut daemon) = Daemon::start(&settings, stop.clone(), hard.clone()).await? else {
        info!("stopped before the database was reachable");
        return Ok(());
    };
    let loader = daemon.loader.clone();
    tokio::spawn(reload::serve(
        reloads,
        settings.clone(),
        loader,
        hard.clone(),
    ));
    daemon.resume().await?;
    let (watcher, rx) = daemon.start_watcher(&settings);
    daemon.claim_loop(rx).await;
    let watched = daemon.watcher_result(watcher).await;
    daemon.drain().await;
    info!("stopped");
    watched
}

/// A running daemon: the loader, the folders, and the files in flight.
struct Daemon {
    loader: Arc<Loader>,
    folders: Folders,
    health: Arc<Health>,
    /// Below the free-space floor, nothing is claimed.
    space: Arc<SpaceFloor>,
    /// One task per file being loaded.
    files: JoinSet<()>,
    /// Permits = files loaded at once (`ingest.files_in_parallel`).
    slots: Arc<Semaphore>,
    /// Cancelled by the stop signal: claim nothing more.
    stop: CancellationToken,
    /// Cancelled when the deadline passes (or `run` returns): interrupt files in flight.
    hard: CancellationToken,
    /// How long files in flight may take to finish after a stop.
    deadline: Duration,
    /// Files handed back because they changed under the loader, and when to claim them again.
    changing: Arc<Mutex<Changing>>,
    /// Delayed claims of such files come back through here.
    requeue: (mpsc::Sender<PathBuf>, mpsc::Receiver<PathBuf>),
    /// Between retries of a failed move out of processing/ (`ingest.retry_initial` to
    /// `ingest.retry_max`).
    move_backoff: Backoff,
}

impl Daemon {
    /// Folders, the metrics endpoint, the database and the schema. None: stopped while the
    /// database was awaited.
    async fn start(
        settings: &Settings,
        stop: CancellationToken,
        hard: CancellationToken,
    ) -> Result<Option<Self>, DaemonError> {
        let folders = Folders::new(
            &settings.paths.inbox,
            &settings.paths.state_root,
            &settings.ingest.instance,
        );
        let f = folders.clone();
        blocking::fs(move || Ok(f.create_all()))
            .await
            .map_err(|source| DaemonError::Io {
                path: folders.inbox.clone(),
                source,
            })??;
        let health = Arc::new(Health::default());
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
        let space = start_housekeeping(settings, &folders, &health, &stop, &hard);
        systemd::status("connecting to the database");
        let wait = WaitForDatabase::UntilCancelled;
        let dead_letter = folders.dead_letter.clone();
        let connected = Loader::connect(settings, health.clone(), dead_letter, wait, &stop).await?;
        let Some(loader) = connected else {
            return Ok(None);
        };
        info!(
            instance = %settings.ingest.instance,
            contact_points = %settings.database.contact_points.join(","),
            keyspace = %settings.database.keyspace,
            inbox = %folders.inbox.display(),
            "connected and schema ready"
        );
        tokio::spawn(health::probe_database(
            loader.session().clone(),
            health.clone(),
            DATABASE_PROBE_INTERVAL,
            hard.clone(),
        ));
        tokio::spawn(backlog::report(folders.clone(), stop.clone()));
        start_staleness(settings, &loader, &hard); // coverage (issue 21)
        Ok(Some(Self {
            loader,
            folders,
            health,
            space,
            files: JoinSet::new(),
            slots: Arc::new(Semaphore::new(settings.ingest.files_in_parallel)),
            stop,
            hard,
            deadline: settings.ingest.shutdown_deadline,
            changing: Arc::new(Mutex::new(Changing::new(
                settings.watch.changed_backoff,
                settings.watch.changed_backoff_max,
            ))),
            requeue: mpsc::channel(WATCH_QUEUE),
            move_backoff: Backoff {
                initial: settings.ingest.retry_initial,
                max: settings.ingest.retry_max,
            },
        }))
    }

    /// Queues the files an earlier run of this instance claimed and did not finish. Each waits
    /// for a file slot in its own task: start-up (the watcher, READY, the watchdog) never waits
    /// for a file to finish.
    async fn resume(&mut self) -> Result<(), DaemonError> {
        let processing = self.folders.processing.clone();
        let dir = processing.clone();
        let pending = blocking::fs(move || claim::pending(&dir))
            .await
            .map_err(|source| DaemonError::Io {
                path: processing,
                source,
            })?;
        if !pending.is_empty() {
            info!(
                files = pending.len(),
                "resuming files claimed by an earlier run"
            );
        }
        let options = LoadOptions {
            resuming: true,
            ..LoadOptions::default()
        };
        for path in pending {
            let slots = self.slots.clone();
            let task = self.file_task(path, options);
            self.files.spawn(async move {
                let Ok(_permit) = slots.acquire_owned().await else {
                    return;
                };
                task.await;
            });
        }
        Ok(())
    }

    /// Starts the watcher; READY is sent once its first scan is done.
    fn start_watcher(
        &self,
        settings: &Settings,
    ) -> (
        JoinHandle<Result<(), watch::WatchError>>,
        mpsc::Receiver<PathBuf>,
    ) {
        let (tx, rx) = mpsc::channel::<PathBuf>(WATCH_QUEUE);
        let (first_scan_tx, first_scan_rx) = oneshot::channel();
        let options = WatchOptions {
            inbox: self.folders.inbox.clone(),
            mode: settings.watch.mode,
            rescan_interval: settings.watch.rescan_interval,
            poll_interval: settings.watch.poll_interval,
            settle: settings.watch.settle,
        };
        let watcher = tokio::spawn(watch::watch(options, tx, first_scan_tx, self.stop.clone()));
        let health = self.health.clone();
        tokio::spawn(async move {
            if first_scan_rx.await.is_ok() {
                health.set_watcher_ready(true);
                systemd::ready();
                systemd::status("watching the inbox");
                info!("first scan of the inbox done; ready");
            }
        });
        (watcher, rx)
    }

    /// Claims what the watcher reports (and files whose backoff ended), one file slot at a
    /// time, until the stop signal or until the watcher ends. Pings systemd's watchdog as it
    /// turns. Below the free-space floor a reported file is left in the inbox; the watcher
    /// reports it again (every `watch.rescan_interval`), so it is claimed once space is back.
    async fn claim_loop(&mut self, mut rx: mpsc::Receiver<PathBuf>) {
        let mut watchdog = tokio::time::interval(systemd::watchdog_interval().unwrap_or(IDLE_TICK));
        loop {
            let path = tokio::select! {
                p = rx.recv() => match p { Some(p) => p, None => return },
                Some(p) = self.requeue.1.recv() => {
                    self.with_changing(|c| c.requeue_fired(&file_name(&p)));
                    p
                }
                _ = watchdog.tick() => {
                    systemd::watchdog_ping();
                    continue;
                }
                _ = self.stop.cancelled() => return,
            };
            if self.backing_off(&path) {
                continue;
            }
            // Wait for a file slot before claiming, so that idle instances get their share.
            let Some(permit) = self.file_slot(&mut watchdog).await else {
                return;
            };
            self.reap_finished();
            // Paused: only the monitor's next check resumes. Else a fresh check before each claim.
            if self.space.paused() || !self.space.check().await {
                continue;
            }
            let processing = self.folders.processing.clone();
            let from = path.clone();
            let claimed = match blocking::fs(move || claim::claim(&from, &processing)).await {
                Ok(claim::Claim::Claimed(c)) => c,
                Ok(claim::Claim::Gone) => continue,
                Ok(claim::Claim::NameInProcessing(there)) => {
                    warn!(file = %Shown(&path), processing = %Shown(&there),
                        "a file of this name is still in processing/ (being loaded, or its move \
                         out is being retried): this delivery waits in the inbox");
                    continue;
                }
                Err(e) => {
                    warn!(file = %Shown(&path), error = %e, "cannot claim; it stays in the inbox");
                    continue;
                }
            };
            // The delivery's write timestamp: the later-claimed of two deliveries wins.
            let options = LoadOptions {
                claimed_at: Some(micros_since_epoch()),
                ..LoadOptions::default()
            };
            let task = self.file_task(claimed, options);
            self.files.spawn(async move {
                let _permit = permit;
                task.await;
            });
        }
    }

    /// True if `path` changed under the loader lately and its delay is not over; the first
    /// such report schedules the delayed claim.
    fn backing_off(&self, path: &Path) -> bool {
        let name = file_name(path);
        // Another instance may have handed it back: its delay is on the file.
        if let Some((not_before, times)) = changing::marked(path) {
            self.with_changing(|c| c.adopt(&name, times, not_before));
        }
        let Some((left, schedule)) = self.with_changing(|c| c.wait(&name, Instant::now())) else {
            return false;
        };
        if schedule {
            let (tx, stop, path) = (self.requeue.0.clone(), self.stop.clone(), path.to_owned());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(left) => { let _ = tx.send(path).await; }
                    _ = stop.cancelled() => {}
                }
            });
        }
        true
    }

    fn with_changing<T>(&self, f: impl FnOnce(&mut Changing) -> T) -> T {
        f(&mut self.changing.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A free file slot, or None on stop.
    async fn file_slot(
        &self,
        watchdog: &mut tokio::time::Interval,
    ) -> Option<OwnedSemaphorePermit> {
        loop {
            tokio::select! {
                p = self.slots.clone().acquire_owned() => return p.ok(),
                _ = watchdog.tick() => systemd::watchdog_ping(),
                _ = self.stop.cancelled() => return None,
            }
        }
    }

    /// Loading one claimed file and putting it away, as a future to spawn.
    fn file_task(
        &self,
        path: PathBuf,
        options: LoadOptions,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (loader, folders, hard) =
            (self.loader.clone(), self.folders.clone(), self.hard.clone());
        let changing = self.changing.clone();
        let move_backoff = self.move_backoff;
        async move {
            let result = loader.load(&path, options, &hard, None).await;
            // Before the file is back in the inbox, where the watcher reports it again.
            note_change(&changing, &path, &result);
            files::put_away_retrying(&folders, &path, &result, move_backoff, &hard).await;
        }
    }

    /// Collects finished file tasks so the set does not grow; a panic is logged and counted.
    fn reap_finished(&mut self) {
        while let Some(r) = self.files.try_join_next() {
            report_panic(r);
        }
    }

    /// After the claim loop: a watcher that ended without a stop is an error.
    async fn watcher_result(
        &self,
        watcher: JoinHandle<Result<(), watch::WatchError>>,
    ) -> Result<(), DaemonError> {
        let stopping = self.stop.is_cancelled();
        // The claim loop is over: stop the watcher if it still runs.
        self.stop.cancel();
        match watcher.await {
            Ok(Err(e)) => Err(DaemonError::Watch(e)),
            Err(e) => Err(DaemonError::WatcherEnded(format!(": {e}"))),
            Ok(Ok(())) if stopping => Ok(()),
            Ok(Ok(())) => Err(DaemonError::WatcherEnded(String::new())),
        }
    }

    /// Lets files in flight finish within the deadline, then interrupts the rest (they stay
    /// claimed and resume at the next start).
    async fn drain(&mut self) {
        self.health.set_watcher_ready(false);
        systemd::stopping();
        info!(
            files_in_flight = self.files.len(),
            deadline = ?self.deadline,
            "stopping: no new files are claimed; finishing files in flight"
        );
        let files = &mut self.files;
        let drained = tokio::time::timeout(self.deadline, async {
            while let Some(r) = files.join_next().await {
                report_panic(r);
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                "deadline passed: interrupting files in flight; they stay claimed and resume at the next start"
            );
            self.hard.cancel();
            let files = &mut self.files;
            let ended = tokio::time::timeout(DRAIN_AFTER_INTERRUPT, async {
                while let Some(r) = files.join_next().await {
                    report_panic(r);
                }
            })
            .await;
            if ended.is_err() {
                error!(files = self.files.len(), waited = ?DRAIN_AFTER_INTERRUPT,
                    "files in flight did not end after the interruption; abandoning them \
                     (they stay claimed and resume at the next start)");
                self.files.abort_all();
            }
        }
    }
}

/// Starts or ends the backoff of a file that changed while it was loaded.
fn note_change(changing: &Mutex<Changing>, path: &Path, result: &DeliveryResult) {
    let mut changing = changing.lock().unwrap_or_else(PoisonError::into_inner);
    if result.changed() {
        let name = file_name(path);
        if let Some((not_before, times)) = changing::marked(path) {
            changing.adopt(&name, times, not_before);
        }
        let delay = changing.changed(name.clone(), Instant::now());
        // On the file, so that every instance on the inbox waits as long.
        let times = changing.times(&name);
        if let Err(e) = changing::mark(path, std::time::SystemTime::now() + delay, times) {
            warn!(file = %Shown(path), error = %e,
                "cannot record the backoff on the file (no user extended attributes?): other \
                 instances may claim it before the delay");
        }
        warn!(file = %Shown(path), delay = ?delay,
            "the file keeps changing; it is claimed again after this delay");
    } else if !result.interrupted() {
        changing.settled(&file_name(path));
    }
}

/// Now, in µs since the epoch (0 if the clock is before it).
fn micros_since_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The name a file has in the inbox.
fn file_name(path: &Path) -> OsString {
    path.file_name().map(OsStr::to_owned).unwrap_or_default()
}

/// Starts the free-space monitor and the retention sweeper. Neither needs the database: they
/// run while it is awaited. Returns the floor that gates claims.
fn start_housekeeping(
    settings: &Settings,
    folders: &Folders,
    health: &Arc<Health>,
    stop: &CancellationToken,
    hard: &CancellationToken,
) -> Arc<SpaceFloor> {
    let retention = &settings.retention;
    let space = Arc::new(SpaceFloor::new(
        &settings.paths.state_root,
        retention,
        health.clone(),
    ));
    let interval = retention.space_check_interval;
    tokio::spawn(space::monitor(space.clone(), interval, hard.clone()));
    tokio::spawn(retention::run(
        folders.clone(),
        retention.clone(),
        stop.clone(),
    ));
    space
}

// --- coverage (issue 21) ---
/// Starts the staleness gauges of `coverage.watch`, if it lists any symbol.
fn start_staleness(settings: &Settings, loader: &Arc<Loader>, hard: &CancellationToken) {
    if settings.watch_symbols.is_empty() {
        return;
    }
    tokio::spawn(crate::coverage::staleness::run(
        loader.session().clone(),
        crate::store::Schema::from_config(&settings.database),
        settings.timezone,
        settings.layout,
        settings.watch_symbols.clone(),
        settings.watch_refresh,
        hard.clone(),
    ));
}
// --- end coverage ---

/// Logs and counts a file task that panicked (its file stays claimed, resumed at next start).
fn report_panic(r: Result<(), JoinError>) {
    if let Err(e) = r
        && e.is_panic()
    {
        metrics::task_panicked();
        error!(error = %e, "a file task panicked (a bug); its file stays in processing/ and is resumed at the next start");
    }
}
