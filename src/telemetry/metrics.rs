//! Every metric bar-ingest exports: names, label values and the one function that records each.
//!
//! Nothing else in the code names a metric. Counters reconcile with the load history:
//! files seen = loaded + duplicate + quarantined + failed + empty (+ in progress), and
//! rows read = written + rejected.

use std::time::Duration;

/// Files finished, by outcome (`outcome` label: see [`FileOutcomeLabel`]).
pub const FILES: &str = "bar_ingest_files_total";
/// Rows written to the database.
pub const ROWS_WRITTEN: &str = "bar_ingest_rows_written_total";
/// Rows rejected, by reason code.
pub const ROWS_REJECTED: &str = "bar_ingest_rows_rejected_total";
/// Bytes of input read (first pass: fingerprint and validation).
pub const BYTES_READ: &str = "bar_ingest_bytes_read_total";
/// Files waiting: in the inbox plus being processed.
pub const BACKLOG_FILES: &str = "bar_ingest_backlog_files";
/// Bytes waiting: in the inbox plus not yet read of files being processed.
pub const BACKLOG_BYTES: &str = "bar_ingest_backlog_bytes";
/// Batches sent and not yet acknowledged.
pub const BATCHES_IN_FLIGHT: &str = "bar_ingest_batches_in_flight";
/// Write retries, by cause.
pub const WRITE_RETRIES: &str = "bar_ingest_write_retries_total";
/// Latency of one successful batch write, seconds.
pub const WRITE_LATENCY: &str = "bar_ingest_write_latency_seconds";
/// Time to load one file, seconds.
pub const FILE_DURATION: &str = "bar_ingest_file_duration_seconds";
/// 1 when the last database request succeeded, 0 while it is unreachable.
pub const DATABASE_UP: &str = "bar_ingest_database_up";
/// Unix time of the last file loaded.
pub const LAST_SUCCESS: &str = "bar_ingest_last_success_timestamp_seconds";
/// Always 1; labels carry the version.
pub const BUILD_INFO: &str = "bar_ingest_build_info";

/// Histogram buckets of [`WRITE_LATENCY`], seconds.
pub const WRITE_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram buckets of [`FILE_DURATION`], seconds.
pub const FILE_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// What happened to a file, as a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcomeLabel {
    Loaded,
    Duplicate,
    Quarantined,
    Failed,
    Empty,
}

impl FileOutcomeLabel {
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

pub fn file_finished(outcome: FileOutcomeLabel, duration: Duration) {
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

pub fn bytes_read(n: u64) {
    metrics::counter!(BYTES_READ).increment(n);
}

pub fn backlog(files: u64, bytes: u64) {
    metrics::gauge!(BACKLOG_FILES).set(files as f64);
    metrics::gauge!(BACKLOG_BYTES).set(bytes as f64);
}

pub fn batches_in_flight(delta: f64) {
    metrics::gauge!(BATCHES_IN_FLIGHT).increment(delta);
}

pub fn write_retry(cause: &'static str) {
    metrics::counter!(WRITE_RETRIES, "cause" => cause).increment(1);
}

pub fn write_latency(d: Duration) {
    metrics::histogram!(WRITE_LATENCY).record(d.as_secs_f64());
}

pub fn database_up(up: bool) {
    metrics::gauge!(DATABASE_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn build_info() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}
