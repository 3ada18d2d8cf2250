//! Every metric bar-ingest exports: names, label values, help texts and the one function that
//! records each.
//!
//! Nothing else in the code names a metric. [`CATALOGUE`] is the one list (the exporter
//! registers its help texts, `deploy/README.md` documents it, a test keeps the two in step).
//! Counters reconcile with the load history: files seen = loaded + duplicate + quarantined +
//! failed + empty (+ in progress), and rows read = written + rejected. Label values are bounded:
//! outcomes and retry causes are fixed lists, reject reasons are the validator's reason codes.
//! Every series whose label values are known is created at zero at start: a counter that
//! appears at its first increment loses that increment to `rate()`.

use std::time::Duration;

use metrics::Unit;

/// Files finished, by outcome (`outcome` label: see [`FileOutcomeLabel`]).
pub(crate) const FILES: &str = "bar_ingest_files_total";
/// Rows written to the database.
pub(crate) const ROWS_WRITTEN: &str = "bar_ingest_rows_written_total";
/// Rows rejected, by reason code.
pub(crate) const ROWS_REJECTED: &str = "bar_ingest_rows_rejected_total";
/// Rejected rows counted but not kept in full in the dead-letter log (over its per-file budget).
pub(crate) const DEAD_LETTER_DROPPED: &str = "bar_ingest_dead_letter_lines_dropped_total";
/// Bytes of input read (first pass: fingerprint and validation).
pub(crate) const BYTES_READ: &str = "bar_ingest_bytes_read_total";
/// Files waiting: in the inbox plus being processed.
pub(crate) const BACKLOG_FILES: &str = "bar_ingest_backlog_files";
/// Bytes waiting: in the inbox plus being processed.
pub(crate) const BACKLOG_BYTES: &str = "bar_ingest_backlog_bytes";
/// Batches (and range deletes) holding a slot in flight, retries included.
pub(crate) const BATCHES_IN_FLIGHT: &str = "bar_ingest_batches_in_flight";
/// The adaptive limit on batches in flight.
pub(crate) const WRITE_CONCURRENCY_LIMIT: &str = "bar_ingest_write_concurrency_limit";
/// The cap on rows sent per second (0: none).
pub(crate) const MAX_ROWS_PER_SECOND: &str = "bar_ingest_max_rows_per_second";
/// The cap on estimated bytes sent per second (0: none).
pub(crate) const MAX_BYTES_PER_SECOND: &str = "bar_ingest_max_bytes_per_second";
/// Write retries, by cause.
pub(crate) const WRITE_RETRIES: &str = "bar_ingest_write_retries_total";
/// Latency of one successful batch write, seconds.
pub(crate) const WRITE_LATENCY: &str = "bar_ingest_write_latency_seconds";
/// Time to load one file, seconds.
pub(crate) const FILE_DURATION: &str = "bar_ingest_file_duration_seconds";
/// 1 when the last database request succeeded, 0 while it is unreachable.
pub(crate) const DATABASE_UP: &str = "bar_ingest_database_up";
/// 1 when `/readyz` answers 200 (database reachable, watcher running, enough free space), else 0.
pub const READY: &str = "bar_ingest_ready";
/// Unix time of the last file loaded.
pub(crate) const LAST_SUCCESS: &str = "bar_ingest_last_success_timestamp_seconds";
/// Counter: tasks that panicked (a bug), logged and counted; the daemon goes on.
pub(crate) const TASK_PANICS: &str = "bar_ingest_task_panics_total";
/// Always 1; labels carry the version.
pub(crate) const BUILD_INFO: &str = "bar_ingest_build_info";
/// Counter: files removed by retention, by folder.
pub(crate) const RETENTION_REMOVED_FILES: &str = "bar_ingest_retention_removed_files_total";
/// Counter: bytes of the files removed by retention, by folder.
pub(crate) const RETENTION_REMOVED_BYTES: &str = "bar_ingest_retention_removed_bytes_total";
/// Bytes in each archive folder at the last retention sweep.
pub(crate) const ARCHIVE_BYTES: &str = "bar_ingest_archive_bytes";
/// Bytes free (for unprivileged users) on the state root's filesystem.
pub(crate) const FREE_BYTES: &str = "bar_ingest_free_bytes";
/// The free-space floor in bytes: below it no new file is claimed.
pub(crate) const FREE_BYTES_FLOOR: &str = "bar_ingest_free_bytes_floor";
/// 1 while claiming is paused, by reason (`disk_space_low`), else 0.
pub(crate) const CLAIMS_PAUSED: &str = "bar_ingest_claims_paused";

/// The `folder` label values of the retention metrics: the `[retention]` keys of the archive
/// folders.
pub(crate) const RETENTION_FOLDERS: [&str; 4] = ["done", "duplicates", "failed", "dead_letter"];
/// The `reason` label value of [`CLAIMS_PAUSED`] while free space is below the floor.
pub(crate) const PAUSED_DISK_SPACE_LOW: &str = "disk_space_low";

/// Histogram buckets of [`WRITE_LATENCY`], seconds.
pub(crate) const WRITE_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram buckets of [`FILE_DURATION`], seconds.
pub(crate) const FILE_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Every histogram with its buckets: the exporter renders these as Prometheus histograms.
pub(crate) const HISTOGRAMS: &[(&str, &[f64])] = &[
    (WRITE_LATENCY, WRITE_LATENCY_BUCKETS),
    (FILE_DURATION, FILE_DURATION_BUCKETS),
];

/// What kind of metric a catalogue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One exported metric: what the table in `deploy/README.md` shows, row for row.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, comma-separated ("" for none).
    pub labels: &'static str,
    pub unit: Option<Unit>,
    /// The `# HELP` text.
    pub help: &'static str,
}

/// Every metric, in the order the README table lists them.
pub const CATALOGUE: &[MetricDef] = &[
    MetricDef {
        name: FILES,
        kind: Kind::Counter,
        labels: "outcome",
        unit: None,
        help: "Files finished, by outcome: loaded, duplicate, failed, quarantined, empty.",
    },
    MetricDef {
        name: TASK_PANICS,
        kind: Kind::Counter,
        labels: "",
        unit: None,
        help: "Tasks that panicked (a bug): the file stays claimed and is resumed at the next start.",
    },
    MetricDef {
        name: ROWS_WRITTEN,
        kind: Kind::Counter,
        labels: "",
        unit: None,
        help: "Rows written to the database and acknowledged.",
    },
    MetricDef {
        name: ROWS_REJECTED,
        kind: Kind::Counter,
        labels: "reason",
        unit: None,
        help: "Rows rejected into the dead-letter log, by reason code.",
    },
    MetricDef {
        name: DEAD_LETTER_DROPPED,
        kind: Kind::Counter,
        labels: "",
        unit: None,
        help: "Rejected rows counted but not kept in full in the dead-letter log (over its per-file budget).",
    },
    MetricDef {
        name: BYTES_READ,
        kind: Kind::Counter,
        labels: "",
        unit: Some(Unit::Bytes),
        help: "Bytes of input files read (counted once per file, at validation).",
    },
    MetricDef {
        name: BACKLOG_FILES,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "Files waiting: in the inbox plus claimed and being loaded.",
    },
    MetricDef {
        name: BACKLOG_BYTES,
        kind: Kind::Gauge,
        labels: "",
        unit: Some(Unit::Bytes),
        help: "Bytes of the files waiting: in the inbox plus claimed and being loaded.",
    },
    MetricDef {
        name: BATCHES_IN_FLIGHT,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "Batches (and range deletes) holding a slot in flight: sent and not yet acknowledged, or waiting to be retried.",
    },
    MetricDef {
        name: WRITE_CONCURRENCY_LIMIT,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "The adaptive limit on batches in flight, between ingest.min_batches_in_flight and ingest.max_batches_in_flight.",
    },
    MetricDef {
        name: MAX_ROWS_PER_SECOND,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "The cap on rows sent per second in force (ingest.max_rows_per_second; 0: none).",
    },
    MetricDef {
        name: MAX_BYTES_PER_SECOND,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "The cap on estimated batch bytes sent per second in force (ingest.max_bytes_per_second; 0: none).",
    },
    MetricDef {
        name: WRITE_RETRIES,
        kind: Kind::Counter,
        labels: "cause",
        unit: None,
        help: "Database requests retried, by cause (timeouts, unavailable, overloaded, connection).",
    },
    MetricDef {
        name: WRITE_LATENCY,
        kind: Kind::Histogram,
        labels: "",
        unit: Some(Unit::Seconds),
        help: "Latency of one successful batch write, in seconds.",
    },
    MetricDef {
        name: FILE_DURATION,
        kind: Kind::Histogram,
        labels: "",
        unit: Some(Unit::Seconds),
        help: "Time to load one file from claim to outcome, in seconds.",
    },
    MetricDef {
        name: DATABASE_UP,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "1 when the last database request succeeded, 0 while the database is unreachable.",
    },
    MetricDef {
        name: READY,
        kind: Kind::Gauge,
        labels: "",
        unit: None,
        help: "1 when /readyz answers 200 (database reachable, inbox watcher running, free space above the floor), else 0.",
    },
    MetricDef {
        name: LAST_SUCCESS,
        kind: Kind::Gauge,
        labels: "",
        unit: Some(Unit::Seconds),
        help: "Unix time of the last file loaded (absent until the first one).",
    },
    MetricDef {
        name: RETENTION_REMOVED_FILES,
        kind: Kind::Counter,
        labels: "folder",
        unit: None,
        help: "Files removed by the retention policy, by archive folder.",
    },
    MetricDef {
        name: RETENTION_REMOVED_BYTES,
        kind: Kind::Counter,
        labels: "folder",
        unit: Some(Unit::Bytes),
        help: "Bytes of the files removed by the retention policy, by archive folder.",
    },
    MetricDef {
        name: ARCHIVE_BYTES,
        kind: Kind::Gauge,
        labels: "folder",
        unit: Some(Unit::Bytes),
        help: "Bytes in each archive folder at the last retention sweep.",
    },
    MetricDef {
        name: FREE_BYTES,
        kind: Kind::Gauge,
        labels: "",
        unit: Some(Unit::Bytes),
        help: "Bytes free on the state root's filesystem (the inbox's too).",
    },
    MetricDef {
        name: FREE_BYTES_FLOOR,
        kind: Kind::Gauge,
        labels: "",
        unit: Some(Unit::Bytes),
        help: "The free-space floor: below it no new file is claimed.",
    },
    MetricDef {
        name: CLAIMS_PAUSED,
        kind: Kind::Gauge,
        labels: "reason",
        unit: None,
        help: "1 while no new file is claimed, by reason (disk_space_low), else 0.",
    },
    MetricDef {
        name: BUILD_INFO,
        kind: Kind::Gauge,
        labels: "version",
        unit: None,
        help: "Always 1; the version label names the running build.",
    },
];

/// What happened to a file, as a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileOutcomeLabel {
    Loaded,
    Duplicate,
    Quarantined,
    Failed,
    Empty,
}

impl FileOutcomeLabel {
    /// Every outcome, for series created at zero at start.
    pub(crate) const ALL: [Self; 5] = [
        Self::Loaded,
        Self::Duplicate,
        Self::Quarantined,
        Self::Failed,
        Self::Empty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Duplicate => "duplicate",
            Self::Quarantined => "quarantined",
            Self::Failed => "failed",
            Self::Empty => "empty",
        }
    }
}

/// Label values known in advance, whose series exist at zero from the first scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownLabels {
    /// Every reject reason code (`reason` of the rejected-rows counter).
    pub reject_reasons: &'static [&'static str],
    /// Every retry cause (`cause` of the retries counter).
    pub retry_causes: &'static [&'static str],
}

/// Registers the help text of every metric and creates the series whose label values are
/// known in advance at zero, so that rates, dashboards and alerts see them from the first
/// scrape. Called once by the exporter, after the recorder is installed. The label values of
/// rejects and retries belong to the stages that produce them; the caller passes them in, so
/// this module imports nothing of the pipeline.
pub fn describe(labels: &KnownLabels) {
    for def in CATALOGUE {
        let (name, help) = (def.name, def.help);
        match (def.kind, def.unit) {
            (Kind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => metrics::describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
    for outcome in FileOutcomeLabel::ALL {
        metrics::counter!(FILES, "outcome" => outcome.as_str()).absolute(0);
    }
    for reason in labels.reject_reasons {
        metrics::counter!(ROWS_REJECTED, "reason" => *reason).absolute(0);
    }
    for cause in labels.retry_causes {
        metrics::counter!(WRITE_RETRIES, "cause" => *cause).absolute(0);
    }
    for folder in RETENTION_FOLDERS {
        metrics::counter!(RETENTION_REMOVED_FILES, "folder" => folder).absolute(0);
        metrics::counter!(RETENTION_REMOVED_BYTES, "folder" => folder).absolute(0);
    }
    metrics::gauge!(CLAIMS_PAUSED, "reason" => PAUSED_DISK_SPACE_LOW).set(0.0);
    metrics::counter!(ROWS_WRITTEN).absolute(0);
    metrics::counter!(TASK_PANICS).absolute(0);
    metrics::counter!(BYTES_READ).absolute(0);
    metrics::counter!(DEAD_LETTER_DROPPED).absolute(0);
    metrics::gauge!(BATCHES_IN_FLIGHT).set(0.0);
    metrics::gauge!(DATABASE_UP).set(0.0);
    metrics::gauge!(READY).set(0.0);
    for (name, _) in HISTOGRAMS {
        // Registers the histogram so that its buckets render (all zero) before the first sample.
        let _ = metrics::histogram!(*name);
    }
}

pub(crate) fn file_finished(outcome: FileOutcomeLabel, duration: Duration) {
    metrics::counter!(FILES, "outcome" => outcome.as_str()).increment(1);
    metrics::histogram!(FILE_DURATION).record(duration.as_secs_f64());
    if outcome == FileOutcomeLabel::Loaded {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        metrics::gauge!(LAST_SUCCESS).set(now.as_secs_f64());
    }
}

pub fn rows_written(n: u64) {
    metrics::counter!(ROWS_WRITTEN).increment(n);
}

pub fn rows_rejected(reason_code: &'static str, n: u64) {
    metrics::counter!(ROWS_REJECTED, "reason" => reason_code).increment(n);
}

pub(crate) fn dead_letter_lines_dropped(n: u64) {
    metrics::counter!(DEAD_LETTER_DROPPED).increment(n);
}

pub(crate) fn bytes_read(n: u64) {
    metrics::counter!(BYTES_READ).increment(n);
}

pub(crate) fn backlog(files: u64, bytes: u64) {
    metrics::gauge!(BACKLOG_FILES).set(files as f64);
    metrics::gauge!(BACKLOG_BYTES).set(bytes as f64);
}

pub(crate) fn batches_in_flight(n: usize) {
    metrics::gauge!(BATCHES_IN_FLIGHT).set(n as f64);
}

pub(crate) fn write_concurrency_limit(n: usize) {
    metrics::gauge!(WRITE_CONCURRENCY_LIMIT).set(n as f64);
}

/// The pace caps in force (0: none).
pub(crate) fn pace_limits(rows_per_second: u64, bytes_per_second: u64) {
    metrics::gauge!(MAX_ROWS_PER_SECOND).set(rows_per_second as f64);
    metrics::gauge!(MAX_BYTES_PER_SECOND).set(bytes_per_second as f64);
}

pub(crate) fn write_retry(cause: &'static str) {
    metrics::counter!(WRITE_RETRIES, "cause" => cause).increment(1);
}

pub(crate) fn write_latency(d: Duration) {
    metrics::histogram!(WRITE_LATENCY).record(d.as_secs_f64());
}

pub(crate) fn database_up(up: bool) {
    metrics::gauge!(DATABASE_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn ready(ready: bool) {
    metrics::gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

pub(crate) fn task_panicked() {
    metrics::counter!(TASK_PANICS).increment(1);
}

/// One folder's retention sweep: what it removed and what it holds now.
pub(crate) fn retention_swept(
    folder: &'static str,
    removed_files: u64,
    removed_bytes: u64,
    kept_bytes: u64,
) {
    metrics::counter!(RETENTION_REMOVED_FILES, "folder" => folder).increment(removed_files);
    metrics::counter!(RETENTION_REMOVED_BYTES, "folder" => folder).increment(removed_bytes);
    metrics::gauge!(ARCHIVE_BYTES, "folder" => folder).set(kept_bytes as f64);
}

/// Free space on the state root and the floor under it.
pub(crate) fn free_space(free_bytes: u64, floor_bytes: u64) {
    metrics::gauge!(FREE_BYTES).set(free_bytes as f64);
    metrics::gauge!(FREE_BYTES_FLOOR).set(floor_bytes as f64);
}

/// Claiming paused (or resumed) because free space is below (or back above) the floor.
pub(crate) fn claims_paused_for_space(paused: bool) {
    metrics::gauge!(CLAIMS_PAUSED, "reason" => PAUSED_DISK_SPACE_LOW).set(if paused {
        1.0
    } else {
        0.0
    });
}

pub(crate) fn build_info() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_unique_and_follow_the_conventions() {
        let mut seen = std::collections::HashSet::new();
        for def in CATALOGUE {
            assert!(def.name.starts_with("bar_ingest_"), "{}", def.name);
            assert!(seen.insert(def.name), "{} listed twice", def.name);
            assert_eq!(
                def.kind == Kind::Counter,
                def.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                def.name
            );
            if def.unit == Some(Unit::Seconds) {
                assert!(def.name.ends_with("seconds"), "{}", def.name);
            }
            assert!(!def.help.is_empty());
        }
        for (name, buckets) in HISTOGRAMS {
            let def = CATALOGUE.iter().find(|d| d.name == *name).unwrap();
            assert_eq!(def.kind, Kind::Histogram);
            assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{name}: buckets");
        }
        assert_eq!(
            CATALOGUE
                .iter()
                .filter(|d| d.kind == Kind::Histogram)
                .count(),
            HISTOGRAMS.len(),
            "every histogram needs explicit buckets"
        );
    }

    /// `deploy/README.md` documents every metric, with its type and labels.
    #[test]
    fn deploy_readme_documents_every_metric() {
        let readme = include_str!("../../deploy/README.md");
        for def in CATALOGUE {
            let labels = if def.labels.is_empty() {
                "-".to_owned()
            } else {
                format!("`{}`", def.labels)
            };
            let row = format!("| `{}` | {} | {} |", def.name, def.kind.as_str(), labels);
            assert!(
                readme.contains(&row),
                "deploy/README.md has no row starting `{row}`"
            );
        }
    }
}
