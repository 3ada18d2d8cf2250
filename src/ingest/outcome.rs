//! What became of a file: its counts, its outcome, the typed reason a load failed, and the one
//! place a file's metrics are recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::names::Shown;
use crate::store::retry::RequestError;
use crate::telemetry::metrics::{self, FileOutcomeLabel};

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
    /// Rejected rows per reason code.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Month buckets holding the file's good rows, `YYYY-MM`.
    pub months: BTreeSet<String>,
    /// The file's dead-letter log, if anything was rejected.
    pub dead_letter: Option<PathBuf>,
    /// Rejected rows counted but not kept in full in the dead-letter log (over its budget).
    pub dead_letter_dropped: u64,
    /// Validation stopped after this line, the file being certain to be quarantined; the
    /// counts are those of the lines up to it.
    pub scan_stopped_after_line: Option<u64>,
    /// The layout it was read in (`firstrate`, `polygon`, ...; empty when not decided).
    pub layout: &'static str,
    /// Symbols its rows were loaded under (one for a single-symbol file).
    pub symbols: u64,
    /// Why it was quarantined or failed, as a stable code (`too_many_rejects`,
    /// `suspect_timezone`, `container_corrupt`, ...).
    pub reason: Option<&'static str>,
}

/// Why an empty file (or a zip holding no file) is not loaded.
pub(crate) const NO_DATA_LINES: &str = "the file has no data lines";

/// What became of a delivery (one file of the inbox): one result per unit, in order (a plain,
/// gzip or zstd file has one unit, a zip one per member), or one result for the whole delivery
/// when it could not be opened or its units listed. Units after a change or an interruption are
/// not attempted: the delivery is handed back or resumed whole.
#[derive(Debug, Default)]
pub struct DeliveryResult {
    pub units: Vec<FileResult>,
}

impl DeliveryResult {
    /// The result of a delivery of one unit (a plain, gzip or zstd file); None for a zip of
    /// several members (or none).
    pub fn into_single(mut self) -> Option<FileResult> {
        (self.units.len() == 1).then(|| self.units.remove(0))
    }

    /// A shutdown interrupted a unit: the delivery stays claimed and resumes at the next start.
    pub fn interrupted(&self) -> bool {
        self.units
            .iter()
            .any(|r| matches!(r, FileResult::Interrupted))
    }

    /// A unit changed while it was loaded: the delivery goes back to the inbox.
    pub fn changed(&self) -> bool {
        self.units
            .iter()
            .any(|r| matches!(r, FileResult::Changed(_)))
    }

    /// Every unit loaded, already loaded, or a duplicate (an empty zip has no units: false).
    pub fn all_loaded(&self) -> bool {
        !self.units.is_empty()
            && self.units.iter().all(|r| {
                matches!(
                    r,
                    FileResult::Loaded(_) | FileResult::AlreadyDone(_) | FileResult::Duplicate(_)
                )
            })
    }

    /// Every unit a duplicate of content already loaded.
    pub fn all_duplicates(&self) -> bool {
        !self.units.is_empty()
            && self
                .units
                .iter()
                .all(|r| matches!(r, FileResult::Duplicate(_)))
    }
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
    Failed(FileSummary, LoadError),
    /// The file changed while it was being loaded: hand it back to be loaded again whole.
    Changed(FileSummary),
    /// Shutdown interrupted it; it stays claimed and is resumed at the next start.
    Interrupted,
}

impl FileResult {
    /// A failed unit (or delivery), its reason code kept in the summary.
    pub(crate) fn failed(mut summary: FileSummary, e: LoadError) -> Self {
        summary.reason = Some(e.reason());
        Self::Failed(summary, e)
    }

    /// The outcome as the sidecar and `load` name it.
    pub fn outcome_name(&self) -> &'static str {
        match self {
            Self::Loaded(_) | Self::AlreadyDone(_) => "loaded",
            Self::Duplicate(_) => "duplicate",
            Self::Quarantined(..) => "quarantined",
            Self::Empty(_) => "empty",
            Self::Failed(..) => "failed",
            Self::Changed(_) => "changed",
            Self::Interrupted => "interrupted",
        }
    }

    /// Why a unit was not loaded, in words (None for loaded, duplicate, changed, interrupted).
    pub fn why(&self) -> Option<String> {
        match self {
            Self::Quarantined(_, why) => Some(why.clone()),
            Self::Failed(_, e) => Some(e.chain()),
            Self::Empty(_) => Some(NO_DATA_LINES.to_owned()),
            _ => None,
        }
    }

    /// The file's counts (None when interrupted).
    pub fn summary(&self) -> Option<&FileSummary> {
        match self {
            Self::Loaded(s)
            | Self::Duplicate(s)
            | Self::AlreadyDone(s)
            | Self::Quarantined(s, _)
            | Self::Empty(s)
            | Self::Failed(s, _)
            | Self::Changed(s) => Some(s),
            Self::Interrupted => None,
        }
    }

    /// Records the file's metrics: the outcome counter and duration, and rejected rows by reason
    /// for the outcomes that account for them. Called once per file, by the loader.
    pub(crate) fn record_metrics(&self, duration: Duration) {
        // The rejects of a loaded or quarantined file; an already-done file's were counted by
        // the run that loaded it.
        let (label, rejects) = match self {
            Self::Loaded(s) => (FileOutcomeLabel::Loaded, Some(s)),
            // A resumed file counts once in the process that finishes it.
            Self::AlreadyDone(_) => (FileOutcomeLabel::Loaded, None),
            Self::Quarantined(s, _) => (FileOutcomeLabel::Quarantined, Some(s)),
            Self::Duplicate(_) => (FileOutcomeLabel::Duplicate, None),
            Self::Empty(_) => (FileOutcomeLabel::Empty, None),
            Self::Failed(..) => (FileOutcomeLabel::Failed, None),
            // Handed back or resumed later: counted when it finishes.
            Self::Changed(_) | Self::Interrupted => return,
        };
        for (code, n) in rejects.iter().flat_map(|s| &s.rejected_by_reason) {
            metrics::rows_rejected(code, *n);
        }
        if let Some(s) = rejects {
            metrics::dead_letter_lines_dropped(s.dead_letter_dropped);
        }
        metrics::file_finished(label, duration);
    }
}

/// Why a file could not be loaded. Each says what failed and on which file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The symbol comes from the file name, and this one names none (or the rule wants a
    /// symbol column the layout does not have).
    #[error(
        "cannot tell the symbol of `{}`: {}",
        Shown(Path::new(file_name)),
        if *column {
            format!("the rule `{rule}` takes it from a symbol column, and the layout has none")
        } else {
            format!(
                "its name names none under the rule `{rule}` (expected e.g. \
                 AAPL_full_1min_adjsplit.txt, or a [[source]] rule with a symbol_pattern)"
            )
        }
    )]
    NoSymbol {
        file_name: String,
        /// The `[[source]]` rule that covers the file (`default` when none does).
        rule: String,
        /// The rule takes the symbol from a column.
        column: bool,
    },
    /// Neither a rule nor detection says the file's layout.
    #[error(transparent)]
    Layout(#[from] crate::source::layout::DetectError),
    /// The delivery (a zip's directory, a gzip or zstd stream) or one of its units cannot be
    /// decoded: corrupt, truncated, encrypted, unsupported, over a limit, or unreadable.
    #[error("cannot decode {}", Shown(Path::new(unit)))]
    Unit {
        /// The unit's name (`bundle.zip!AAPL_...txt`), or the delivery's.
        unit: String,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be opened, read or stat'ed.
    #[error("cannot read {}", Shown(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Only regular files are loaded: not a symbolic link, FIFO, socket, device or directory.
    #[error("{} is {kind}, not a regular file: not read", Shown(path))]
    NotRegular { path: PathBuf, kind: &'static str },
    /// The dead-letter log could not be written (its folder is full or not writable).
    #[error("cannot write the dead-letter log")]
    DeadLetter(#[source] std::io::Error),
    /// The database refused a request for good (schema, authorization, batch too large).
    #[error("{step}")]
    Database {
        /// What the loader was doing, e.g. "cannot record the load history".
        step: &'static str,
        #[source]
        source: RequestError,
    },
    /// A task of the loader panicked (a bug): the file is failed, the daemon goes on.
    #[error("{what} failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl LoadError {
    /// A stable code for the failure, for the sidecar (`container_corrupt`, ...,
    /// `unknown_layout`, `no_symbol`, `not_regular`, `read_error`, `database`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            LoadError::NoSymbol { .. } => "no_symbol",
            LoadError::Layout(_) => "unknown_layout",
            LoadError::Unit { source, .. } | LoadError::Read { source, .. } => {
                crate::source::container::ContainerError::of(source)
                    .map_or("read_error", |e| e.reason())
            }
            LoadError::NotRegular { .. } => "not_regular",
            LoadError::DeadLetter(_) => "dead_letter_write",
            LoadError::Database { .. } => "database",
            LoadError::Task { .. } => "internal",
        }
    }

    /// The message with every source, `outer: inner: ...` (for sidecars and summaries).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}
