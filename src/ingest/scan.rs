//! Pass 1 over a unit of a delivery: fingerprint its decoded content, validate its records, log
//! the rejects, learn the local days it covers and what the time-zone gate makes of its times.
//! Validation stops early once the unit is certain to be quarantined; the rest is still hashed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::Progress;
use super::outcome::LoadError;
use super::plan::{Plan, Refusal};
use super::spacing::Spacing;
use super::verify::{Content, Recorded, Verified};
use crate::account::dead_letter::DeadLetterLog;
use crate::model::reject::RejectReason;
use crate::model::{Bucket, Symbol};
use crate::pipeline::gate::Verdict;
use crate::pipeline::validate::{BarReader, Row};
use crate::source::Source;
use crate::source::container::{Packaging, Unit};

/// Read buffer of both passes.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Rows between two looks at the cancellation in pass 1 (a few milliseconds of work).
const ROWS_PER_CANCEL_CHECK: u64 = 4096;

/// What pass 1 learned of a file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// BLAKE3 of the whole content, hex.
    pub(crate) fingerprint: String,
    pub(crate) size: u64,
    pub(crate) rows_in: u64,
    pub(crate) rows_rejected: u64,
    pub(crate) rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Validation stopped after this line, the file being certain to be quarantined: the counts
    /// are those of the lines up to it (the fingerprint still covers the whole file).
    pub(crate) stopped_after_line: Option<u64>,
    /// Validation stopped early, and the file did not have the size the bound assumed: it
    /// changed while it was read, and the early stop may be wrong.
    pub(crate) changed: bool,
    /// Month buckets holding at least one good row.
    pub(crate) months: BTreeSet<Bucket>,
    /// Per symbol (None: the delivery's, from its name), the exchange-local days of its
    /// earliest and latest good row: what the delivery replaces.
    pub(crate) days: BTreeMap<Option<Symbol>, (NaiveDate, NaiveDate)>,
    /// UTC milliseconds of the earliest and the latest good row.
    pub(crate) first_bar: Option<i64>,
    pub(crate) last_bar: Option<i64>,
    /// What the time-zone gate made of the good rows (None when validation stopped early).
    pub(crate) verdict: Option<Verdict>,
    /// The decoded content's length and chunk hashes: pass 2 writes rows of exactly this.
    pub(crate) content: Arc<Content>,
    /// A stop cancelled the scan before the end: nothing else here counts.
    pub(crate) interrupted: bool,
    /// The unit is refused whole: by its plan (nothing parsed), by a record that says it is no
    /// one-minute bar (validation stopped there), or by the spacing of its times.
    pub(crate) refused: Option<Refusal>,
}

impl Scan {
    fn add_bar(&mut self, ts_millis: i64, bucket: Bucket, day: NaiveDate, symbol: Option<Symbol>) {
        self.first_bar = Some(self.first_bar.map_or(ts_millis, |t| t.min(ts_millis)));
        self.last_bar = Some(self.last_bar.map_or(ts_millis, |t| t.max(ts_millis)));
        self.months.insert(bucket);
        match self.days.get_mut(&symbol) {
            Some((first, last)) => {
                *first = (*first).min(day);
                *last = (*last).max(day);
            }
            None => {
                self.days.insert(symbol, (day, day));
            }
        }
    }
}

/// The running BLAKE3 hash of everything read, and how many bytes that is.
#[derive(Default)]
struct HashState {
    hasher: blake3::Hasher,
    bytes: u64,
    /// The chunk hashes pass 2 verifies against.
    recorded: Recorded,
}

/// Shared so the caller can finish the hash after the reader was consumed.
type SharedHasher = Arc<Mutex<HashState>>;

/// Reads everything through a BLAKE3 hasher (one lock per buffer refill, not per line); in
/// pass 2 (no hasher) only counts the progress.
struct Hashing<R> {
    inner: R,
    hasher: Option<SharedHasher>,
    progress: Option<Arc<Progress>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &self.hasher {
            hash(hasher, &buf[..n]);
        }
        if let Some(p) = &self.progress {
            p.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Adds `bytes` to the hash and the chunk hashes.
fn hash(hasher: &SharedHasher, bytes: &[u8]) {
    let mut h = hasher.lock().unwrap_or_else(PoisonError::into_inner);
    h.hasher.update(bytes);
    h.recorded.update(bytes);
    h.bytes += bytes.len() as u64;
}

/// A unit opened for one pass: validated rows, and the hash of what was read.
pub(crate) struct Pass<'a> {
    unit: &'a Unit,
    plan: &'a Plan,
    rows: BarReader<Box<dyn Source + Send>>,
    hasher: SharedHasher,
    progress: Option<Arc<Progress>>,
}

impl<'a> Pass<'a> {
    /// A pass over `unit` of the delivery `file`, from the unit's first byte, read as `plan`
    /// says. Pass 1 (`verify` None) hashes what it reads; pass 2 reads only the content pass 1
    /// recorded (`verify`), each chunk checked before its rows come out, and fails with
    /// [`ContentChanged`](super::verify::ContentChanged) where it differs. A plain file counts
    /// its bytes in `progress` as they are read; a compressed unit counts its compressed size
    /// once the pass ends ([`Pass::end`]).
    pub(crate) fn new(
        file: &File,
        unit: &'a Unit,
        plan: &'a Plan,
        progress: Option<Arc<Progress>>,
        verify: Option<Arc<Content>>,
    ) -> Result<Self, LoadError> {
        let decoded = unit.open(file).map_err(|source| unit_error(unit, source))?;
        let hasher = SharedHasher::default();
        let counted = progress.clone().filter(|_| unit.is_whole_plain());
        let (inner, hashing): (Box<dyn Read + Send>, _) = match verify {
            Some(content) => (Box::new(Verified::new(decoded, content)), None),
            None => (decoded, Some(Arc::clone(&hasher))),
        };
        let reader = BufReader::with_capacity(
            READ_BUFFER_BYTES,
            Hashing {
                inner,
                hasher: hashing,
                progress: counted,
            },
        );
        Ok(Self {
            unit,
            plan,
            rows: BarReader::with_validator(plan.layout.open(reader), plan.validator()),
            hasher,
            progress,
        })
    }

    /// The next row, or None at the end of the unit. A record's symbol comes out renamed as
    /// the rule says.
    #[inline]
    pub(crate) fn next_row(&mut self) -> Result<Option<Row>, LoadError> {
        match self.rows.next() {
            None => Ok(None),
            Some(Ok(Row::Bar(mut bar))) => {
                bar.symbol = self.plan.rename(bar.symbol.take());
                Ok(Some(Row::Bar(bar)))
            }
            Some(Ok(row)) => Ok(Some(row)),
            Some(Err(source)) => Err(unit_error(self.unit, source)),
        }
    }

    /// Bytes of the lines the reader consumed so far: the rows handed out, and a row it may
    /// hold back behind a run of blank lines (not the read buffer's further bytes).
    fn bytes_in_rows(&self) -> u64 {
        self.rows.bytes_read()
    }

    /// Hashes the unit whole, anew, without parsing it (the early stop: no row is read after
    /// this); returns the bytes hashed.
    fn hash_whole(&mut self, file: &File) -> Result<u64, LoadError> {
        let mut decoded = self
            .unit
            .open(file)
            .map_err(|source| unit_error(self.unit, source))?;
        let fresh = SharedHasher::default();
        let mut buf = vec![0; READ_BUFFER_BYTES];
        loop {
            let n = match decoded.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(unit_error(self.unit, e)),
            };
            hash(&fresh, &buf[..n]);
        }
        self.hasher = fresh;
        Ok(self.hashed_bytes())
    }

    /// Decoded bytes hashed so far.
    pub(crate) fn hashed_bytes(&self) -> u64 {
        self.hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    /// The fingerprint of everything read (the whole unit once `next_row` returned None or
    /// `hash_whole` returned).
    pub(crate) fn fingerprint(&self) -> String {
        let h = self.hasher.lock().unwrap_or_else(PoisonError::into_inner);
        h.hasher.finalize().to_hex().to_string()
    }

    /// The length and chunk hashes of everything read (pass 1).
    fn content(&self) -> Content {
        let h = self.hasher.lock().unwrap_or_else(PoisonError::into_inner);
        h.recorded.content()
    }

    /// Ends the pass: a compressed unit's bytes count in the progress now.
    pub(crate) fn end(&self) {
        if let (Some(p), false) = (&self.progress, self.unit.is_whole_plain()) {
            p.bytes
                .fetch_add(self.unit.compressed_size(), Ordering::Relaxed);
        }
    }
}

/// A read error of a unit: decoding (the container error inside) or the file system.
fn unit_error(unit: &Unit, source: std::io::Error) -> LoadError {
    LoadError::Unit {
        unit: unit.name().to_string_lossy().into_owned(),
        source,
    }
}

/// Opens a claimed file once, for both passes: without following a symbolic link and without
/// blocking on a FIFO, and only if the descriptor is a regular file. Whatever is at the path
/// now is what is read, even if it was swapped in after the watcher saw a regular file there.
pub(crate) fn open_regular(path: &Path) -> Result<File, LoadError> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        // O_NOFOLLOW on a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LoadError::NotRegular {
                path: path.to_owned(),
                kind: "a symbolic link",
            });
        }
        Err(source) => {
            return Err(LoadError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let kind = file
        .metadata()
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(LoadError::NotRegular {
        path: path.to_owned(),
        kind: what,
    })
}

/// Pass 1: fingerprint, validate the records, write the dead-letter log, learn the covered
/// range, judge the times (the gate). Validation stops once the unit is certain to be
/// quarantined (share of rejected rows above `quarantine_above`); the rest is then only
/// hashed. Blocking (file I/O and CPU): run it off the async runtime. It looks at `cancel`
/// every [`ROWS_PER_CANCEL_CHECK`] rows and returns early, [`Scan::interrupted`], once it fires.
pub(crate) fn scan(
    file: &File,
    unit: &Unit,
    plan: &Plan,
    quarantine_above: f64,
    dead_letter: &mut DeadLetterLog,
    progress: Option<Arc<Progress>>,
    cancel: &CancellationToken,
) -> Result<Scan, LoadError> {
    // The size the early-stop bound relies on: from the descriptor being read for a plain
    // file, from its directory entry for a plain zip member; unknown for gzip and zstd (whose
    // units are then validated to their end, their dead letters bounded all the same).
    let size_at_start = if unit.is_whole_plain() {
        let metadata = file.metadata().map_err(|source| LoadError::Read {
            path: PathBuf::from(unit.name()),
            source,
        })?;
        Some(metadata.len())
    } else if unit.packaging() == Packaging::Plain {
        unit.declared_size()
    } else {
        None
    };
    scan_sized(
        file,
        unit,
        plan,
        size_at_start,
        quarantine_above,
        dead_letter,
        progress,
        cancel,
    )
}

/// [`scan`] of a unit whose decoded size was `size_at_start` when the scan began, if known.
#[allow(clippy::too_many_arguments)]
fn scan_sized(
    file: &File,
    unit: &Unit,
    plan: &Plan,
    size_at_start: Option<u64>,
    quarantine_above: f64,
    dead_letter: &mut DeadLetterLog,
    progress: Option<Arc<Progress>>,
    cancel: &CancellationToken,
) -> Result<Scan, LoadError> {
    let mut pass = Pass::new(file, unit, plan, progress, None)?;
    let mut s = Scan::default();
    if let Some(refused) = &plan.refused {
        // Refused whole: only its fingerprint is wanted (and whether it grew meanwhile).
        s.refused = Some(refused.clone());
        let hashed = pass.hash_whole(file)?;
        s.changed = size_at_start.is_some_and(|size| hashed != size);
        pass.end();
        s.fingerprint = pass.fingerprint();
        s.size = pass.hashed_bytes();
        return Ok(s);
    }
    let mut gate = plan.gate();
    let mut spacing = Spacing::new(plan.exchange_tz);
    let min_record_bytes = plan.layout.min_record_bytes();
    while let Some(row) = pass.next_row()? {
        s.rows_in += 1;
        if s.rows_in % ROWS_PER_CANCEL_CHECK == 0 && cancel.is_cancelled() {
            s.interrupted = true;
            return Ok(s);
        }
        let r = match row {
            Row::Bar(v) => {
                gate.observe(v.bar.ts_millis, v.bar.volume);
                spacing.observe(v.symbol.as_ref(), v.bar.ts_millis, v.local_date);
                s.add_bar(v.bar.ts_millis, v.bucket, v.local_date, v.symbol);
                continue;
            }
            Row::Rejected(r) => r,
        };
        dead_letter.reject(&r).map_err(LoadError::DeadLetter)?;
        if r.reason == RejectReason::NotOneMinute {
            // One record of another interval decides the unit: stop, as for the early stop.
            let how = format!("its records: line {}", r.line);
            s.refused = Some(Refusal::not_one_minute(&r.message, &how));
            s.stopped_after_line = Some(r.line);
            dead_letter.scan_stopped(r.line);
            let hashed = pass.hash_whole(file)?;
            s.changed = size_at_start.is_some_and(|size| hashed != size);
            break;
        }
        let Some(size) = size_at_start else { continue };
        let bytes_left = size.saturating_sub(pass.bytes_in_rows());
        if certain_to_quarantine(
            dead_letter.rejected(),
            s.rows_in,
            bytes_left,
            min_record_bytes,
            quarantine_above,
        ) {
            s.stopped_after_line = Some(r.line);
            dead_letter.scan_stopped(r.line);
            let hashed = pass.hash_whole(file)?;
            s.changed = hashed != size;
            break;
        }
    }
    pass.end();
    s.rows_rejected = dead_letter.rejected();
    s.rejected_by_reason = dead_letter.by_reason().clone();
    s.fingerprint = pass.fingerprint();
    s.size = pass.hashed_bytes();
    s.content = Arc::new(pass.content());
    if s.stopped_after_line.is_none() {
        s.verdict = Some(gate.verdict());
        if let Some((interval, how)) = spacing.verdict() {
            s.refused = Some(Refusal::not_one_minute(interval.name(), &how));
        }
    }
    Ok(s)
}

/// The loader's rule: a file is quarantined when its share of rejected rows is above the
/// threshold (`ingest.reject_threshold`).
pub(crate) fn over_threshold(rejected: u64, rows: u64, threshold: f64) -> bool {
    rows > 0 && rejected as f64 / rows as f64 > threshold
}

/// Whether a file is certain to be quarantined, whatever its unread part holds: `rows` rows
/// examined so far, `rejected` of them rejected, `bytes_left` bytes of the unit (its size from
/// fstat, or a zip member's from its directory entry) after the last row read, and a good
/// record taking at least `min_record_bytes` with its `\n` (the layout's
/// [`Layout::min_record_bytes`](crate::source::layout::Layout::min_record_bytes): for
/// FirstRate `2021-03-01 09:30,1,1,1,1`, 25 bytes).
///
/// The argument. The file ends with `rejected + x` rejected rows out of `rows + x + g`, where
/// `x` rejected and `g` good rows come from what is not examined yet. That is the bytes left,
/// plus at most one row the reader already read ahead (it holds the row after a run of blank
/// lines while it reports their rejections); blank lines at the end are no rows at all. A good
/// row takes at least `min_record_bytes` bytes with its `\n`, and only the last line may
/// lack the `\n`, so `g <= G = (bytes_left + 1) / min_record_bytes + 1`. Since
/// `rejected <= rows`, adding rejected rows never lowers the share
/// (`(r + x) / (n + x) >= r / n`), so the lowest share the file can end with is
/// `rejected / (rows + G)`. If even that is above the threshold, the file is quarantined. In
/// floating point the same holds: counts below 2^53 convert exactly, and a correctly rounded
/// division is monotone, so the loader's final share is at least the one tested here.
fn certain_to_quarantine(
    rejected: u64,
    rows: u64,
    bytes_left: u64,
    min_record_bytes: u64,
    threshold: f64,
) -> bool {
    let read_ahead = 1;
    let most_good_rows_left = (bytes_left + 1) / min_record_bytes + read_ahead;
    over_threshold(rejected, rows + most_good_rows_left, threshold)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;
    use crate::config::{DeadLetterConfig, SourceRule};
    use crate::source::Interval;
    use crate::source::container::{Delivery, Limits};
    use crate::source::layout::Layout;

    const NY: chrono_tz::Tz = chrono_tz::America::New_York;
    /// FirstRate's shortest good line with its `\n` (no volume).
    const MIN_GOOD_LINE_BYTES: u64 = 25;

    /// A one-minute FirstRate file of symbol T in New York time.
    fn firstrate_plan() -> Plan {
        Plan {
            layout: Layout::FirstRate {
                interval: Interval::OneMinute,
            },
            exchange_tz: NY,
            naive_tz: NY,
            symbol: Symbol::new("T"),
            rule: SourceRule::default_rule(),
            refused: None,
            volumes: crate::model::VolumeColumn::Double,
        }
    }

    /// The one unit of the plain file `file` named `name`.
    fn unit_of(file: &File, name: &str) -> Unit {
        let delivery = Delivery::read(file, OsStr::new(name), Limits::default()).unwrap();
        delivery.into_units().remove(0)
    }

    /// The `i`th shortest good line (24 bytes, no `\n`): times increase with `i`.
    fn shortest_good(i: u32) -> String {
        let (day, minute) = (1 + i / 1440, i % 1440);
        format!(
            "2021-03-{day:02} {:02}:{:02},1,1,1,1",
            minute / 60,
            minute % 60
        )
    }

    /// Scans `content` with `threshold`; the scan and the dead-letter directory.
    fn scan_bytes(content: &[u8], threshold: f64) -> (Scan, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("T_full_1min_adjsplit.txt");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        let file = open_regular(&path).unwrap();
        let mut log = DeadLetterLog::new(
            &dir.path().join("dead-letter"),
            path.file_name().unwrap(),
            "t",
            DeadLetterConfig::default(),
        );
        let unit = unit_of(&file, "T_full_1min_adjsplit.txt");
        let cancel = CancellationToken::new();
        let s = scan(
            &file,
            &unit,
            &firstrate_plan(),
            threshold,
            &mut log,
            None,
            &cancel,
        )
        .unwrap();
        log.discard();
        (s, dir)
    }

    #[test]
    fn the_shortest_good_line_is_good_and_one_byte_less_never_is() {
        let line = shortest_good(0);
        assert_eq!(line.len() as u64 + 1, MIN_GOOD_LINE_BYTES);
        assert_eq!(
            firstrate_plan().layout.min_record_bytes(),
            MIN_GOOD_LINE_BYTES
        );
        let row = |text: &str| BarReader::new(text.as_bytes(), NY).next().unwrap().unwrap();
        assert!(matches!(row(&line), Row::Bar(_)), "{line}");
        for cut in 0..line.len() {
            let mut shorter = line.clone();
            shorter.remove(cut);
            assert!(
                matches!(row(&shorter), Row::Rejected(_)),
                "{shorter:?} must not be a good line"
            );
        }
    }

    #[test]
    fn the_bound_counts_the_last_line_without_newline_and_the_read_ahead() {
        // 1 rejected of 1, nothing left: the read-ahead row may be good, 1 of 2 at best.
        assert!(!certain_to_quarantine(1, 1, 0, 27, 0.5));
        assert!(certain_to_quarantine(1, 1, 0, 27, 0.49));
        // 26 bytes left hold one good line without its `\n`: 1 of 3 at best.
        assert!(certain_to_quarantine(1, 1, 26, 27, 0.33));
        assert!(!certain_to_quarantine(1, 1, 26, 27, 0.34));
        // 25 bytes hold no good line: 1 of 2 at best.
        assert!(certain_to_quarantine(1, 1, 25, 27, 0.49));
        assert!(!certain_to_quarantine(1, 1, 25, 27, 0.5));
        // Threshold 1: never quarantined, never certain. Threshold 0: one reject is enough.
        assert!(!certain_to_quarantine(10, 10, 0, 27, 1.0));
        assert!(certain_to_quarantine(1, 1, 1 << 40, 27, 0.0));
        assert!(!certain_to_quarantine(0, 5, 0, 27, 0.0));
    }

    #[test]
    fn a_file_of_bad_lines_stops_early_and_is_still_hashed_whole() {
        let content = b"x\n".repeat(10_000);
        let (s, _dir) = scan_bytes(&content, 0.5);
        // k rejected rows stop the scan once k / (k + (20000 - 2k + 1) / 27 + 1) > 0.5.
        let k = (1..10_000u64)
            .find(|&k| k > (20_000 - 2 * k + 1) / MIN_GOOD_LINE_BYTES + 1)
            .unwrap();
        assert_eq!(s.stopped_after_line, Some(k));
        assert!(k < 1_000, "stopped at line {k} of 10000");
        assert_eq!((s.rows_in, s.rows_rejected), (k, k));
        assert_eq!(s.rejected_by_reason.get("field_count"), Some(&k));
        assert_eq!(s.fingerprint, blake3::hash(&content).to_hex().to_string());
        assert_eq!(s.size, content.len() as u64);
        assert!(!s.changed);
    }

    #[test]
    fn an_early_stop_on_a_file_whose_size_changed_says_so() {
        let content = b"x\n".repeat(1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("G_full_1min_adjsplit.txt");
        std::fs::write(&path, &content).unwrap();
        let file = open_regular(&path).unwrap();
        let unit = unit_of(&file, "G_full_1min_adjsplit.txt");
        let plan = firstrate_plan();
        let scan_with_size = |size: u64| {
            let mut log = DeadLetterLog::new(
                dir.path(),
                OsStr::new("G"),
                "t",
                DeadLetterConfig::default(),
            );
            let cancel = CancellationToken::new();
            scan_sized(
                &file,
                &unit,
                &plan,
                Some(size),
                0.5,
                &mut log,
                None,
                &cancel,
            )
            .unwrap()
        };
        let same = scan_with_size(content.len() as u64);
        assert!(same.stopped_after_line.is_some() && !same.changed);
        // The file grew (or shrank) after the size was taken: the bound relied on a wrong size.
        let grew = scan_with_size(content.len() as u64 - 100);
        assert!(grew.stopped_after_line.is_some() && grew.changed);
        assert_eq!(grew.fingerprint, same.fingerprint);
    }

    #[test]
    fn a_file_below_the_threshold_is_read_to_its_end() {
        let mut content = String::new();
        for i in 0..100 {
            content.push_str(&shortest_good(i));
            content.push('\n');
            if i % 10 == 0 {
                content.push_str("bad\n");
            }
        }
        let (s, _dir) = scan_bytes(content.as_bytes(), 0.5);
        assert_eq!(s.stopped_after_line, None);
        assert_eq!((s.rows_in, s.rows_rejected), (110, 10));
    }

    /// One line of a generated file: bad, blank, or the next shortest good line.
    #[derive(Debug, Clone, Copy)]
    enum Kind {
        Bad,
        Blank,
        Good,
    }

    fn file_of(kinds: &[Kind], last_newline: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut good = 0;
        for kind in kinds {
            match kind {
                Kind::Bad => out.extend_from_slice(b"x"),
                Kind::Blank => {}
                Kind::Good => {
                    out.extend_from_slice(shortest_good(good).as_bytes());
                    good += 1;
                }
            }
            out.push(b'\n');
        }
        if !last_newline && !kinds.is_empty() {
            out.pop();
        }
        out
    }

    proptest! {
        /// Sound: whenever the scan stops early, the whole file is quarantined too (scanned to
        /// its end, its share of rejects is above the threshold). Good lines are the shortest
        /// possible ones, which is the case the bound has to survive.
        #[test]
        fn an_early_stop_never_quarantines_a_file_that_would_pass(
            kinds in proptest::collection::vec(
                prop_oneof![Just(Kind::Bad), Just(Kind::Blank), Just(Kind::Good)], 0..120),
            last_newline in any::<bool>(),
            threshold in prop_oneof![Just(0.0), Just(0.5), Just(1.0), 0.0..1.0f64],
        ) {
            let content = file_of(&kinds, last_newline);
            let (early, _d1) = scan_bytes(&content, threshold);
            // Threshold 1 never stops: the whole file's counts.
            let (whole, _d2) = scan_bytes(&content, 1.0);
            prop_assert_eq!(whole.stopped_after_line, None);
            prop_assert_eq!(&early.fingerprint, &whole.fingerprint);
            if early.stopped_after_line.is_some() {
                prop_assert!(
                    over_threshold(whole.rows_rejected, whole.rows_in, threshold),
                    "stopped early, but the whole file has {} of {} rejected",
                    whole.rows_rejected, whole.rows_in
                );
                prop_assert!(over_threshold(early.rows_rejected, early.rows_in, threshold));
            } else {
                prop_assert_eq!(early.rows_in, whole.rows_in);
            }
        }
    }
}
